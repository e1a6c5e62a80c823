"""Panel: the small base every snapshot panel shares (see docs/UI-CONTRACT.md).

A panel draws ``Snapshot``s (bpviz/session/snapshot.py) and never computes a gradient. It keeps
the last snapshot so that ``set_layer``, ``set_scale_mode`` and ``set_fixed_limit`` redraw
without a new one, exposes what it drew through ``displayed()`` (so tests can compare it with
the core), and reports the last hover read-out in ``hover_text``.

Layout shared by all panels: a header line (which layer, which pass the arrays belong to), a
body that is either the content or a centred hint ("Press F11 …"), and a read-out line for
hovering.

While training runs (``live`` set by the main window) a panel redraws its images and curves on
every frame but its text (header, titles, captions: text layout is a large part of a frame's
cost) at most every TEXT_INTERVAL seconds; any other redraw (a new layer, a scale mode, a
step while paused) writes all text at once.
"""
from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

from . import colors

TEXT_INTERVAL = 0.5        # s between text updates while training (live)


class HintStack(QStackedWidget):
    """Either a centred hint (page 0) or the content (page 1)."""

    def __init__(self, content: QWidget | None = None, parent=None):
        super().__init__(parent)
        self.hint_label = QLabel("")
        self.hint_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint_label.setWordWrap(True)
        self.hint_label.setObjectName("panelHint")
        self.hint_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        font = self.hint_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.hint_label.setFont(font)
        self.addWidget(self.hint_label)
        self.content = content or QWidget()
        self.addWidget(self.content)

    def set_content(self, widget: QWidget) -> None:
        self.removeWidget(self.content)
        self.content.deleteLater()
        self.content = widget
        self.addWidget(widget)

    def show_hint(self, text: str) -> None:
        if self.hint_label.text() != text:
            self.hint_label.setText(text)
        self.setCurrentIndex(0)

    def show_content(self) -> None:
        self.setCurrentIndex(1)

    @property
    def hint(self) -> str:
        """The hint shown, or '' when the content is shown."""
        return self.hint_label.text() if self.currentIndex() == 0 else ""


class Panel(QWidget):
    """Base of the five panels: ``show_snapshot``, ``set_layer``, scale modes, ``displayed``."""

    layerPicked = Signal(int)
    hoverChanged = Signal(str)
    title = "Panel"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.layer_index = 0
        self.last_snapshot = None
        self.hover_text = ""
        self.scale_mode = "per-layer"
        self.fixed_limit = 1.0
        self._displayed: dict[str, np.ndarray] = {}
        self.live = False                # training runs: text at most every TEXT_INTERVAL
        self.texts_due = True            # this draw writes its text
        self._text_time = 0.0
        self._text_views = None
        self.header = QLabel("")
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.header.setObjectName("panelHeader")
        self.header.setWordWrap(True)
        steady_height(self.header)
        self.readout = QLabel(" ")
        self.readout.setTextFormat(Qt.TextFormat.PlainText)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setObjectName("panelReadout")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body = HintStack()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(3)
        outer.addWidget(self.header)
        outer.addWidget(self.body, 1)
        outer.addWidget(self.readout)

    # ----- the contract ----------------------------------------------------------------------
    defer_while_hidden = False     # True: compute nothing while hidden, draw when shown

    def show_snapshot(self, snapshot) -> None:
        self.last_snapshot = snapshot
        if self.defer_while_hidden and not self.isVisible():
            self._deferred = True
            return
        self._deferred = False
        if snapshot is not None and snapshot.layers:
            self.layer_index = min(max(self.layer_index, 0), len(snapshot.layers) - 1)
        now = time.perf_counter()
        due = not self.live or now - self._text_time >= TEXT_INTERVAL
        if due:
            self._text_time = now
        self._redraw(texts=due)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if getattr(self, "_deferred", False) and self.last_snapshot is not None:
            self.show_snapshot(self.last_snapshot)

    def set_layer(self, index: int) -> None:
        self.layer_index = int(index)
        self._text_time = 0.0            # a new layer: its text at once
        if self.last_snapshot is not None:
            self.show_snapshot(self.last_snapshot)

    def set_scale_mode(self, mode: str) -> None:
        self.scale_mode = colors.check_mode(mode)
        self._redraw()

    def set_fixed_limit(self, value: float) -> None:
        self.fixed_limit = colors.check_limit(value)
        if self.scale_mode == "fixed":
            self._redraw()

    def displayed(self) -> dict:
        """The arrays currently drawn, by stable name ({} when nothing is drawn)."""
        return dict(self._displayed)

    @property
    def hint(self) -> str:
        """The hint text shown instead of the content, or ''."""
        return self.body.hint

    # ----- for subclasses --------------------------------------------------------------------
    def _redraw(self, texts: bool = True) -> None:
        if self.last_snapshot is None:
            return
        if self._text_views is None:
            from .mapview import MosaicView
            self._text_views = self.findChildren(MosaicView)
        self.texts_due = texts
        for view in self._text_views:
            view.text_held = not texts
        try:
            self._draw(self.last_snapshot)
        finally:
            self.texts_due = True
            for view in self._text_views:
                view.text_held = False

    def _draw(self, snap) -> None:
        raise NotImplementedError

    def _set_hover(self, text: str) -> None:
        if not text:
            return
        self.hover_text = text
        self.readout.setText(text)
        self.hoverChanged.emit(text)

    def _set_header(self, text: str) -> None:
        if self.texts_due and self.header.text() != text:
            self.header.setText(text)

    def current_layer(self, snap):
        if not snap.layers:
            return None
        return snap.layers[min(self.layer_index, len(snap.layers) - 1)]


# ----------------------------------------------------------------------------- text helpers

def steady_height(label: QLabel, lines: int = 2) -> None:
    """Room for ``lines`` wrapped lines from the start: a read-out that changes between one
    and two lines while training then does not resize the views below it (a resize
    re-renders their whole scene and relabels their axes, ~10 ms a panel)."""
    m = label.contentsMargins()
    label.setMinimumHeight(math.ceil(lines * label.fontMetrics().lineSpacing())
                           + m.top() + m.bottom())



def shape_text(shape) -> str:
    return "×".join(str(s) for s in shape)


def layer_name(layer) -> str:
    """'layer 2 Conv2D' — the prefix of every read-out."""
    return f"layer {layer.index} {layer.kind}"


def layer_header(layer) -> str:
    return (f"layer {layer.index} · {layer.title} · {shape_text(layer.input_shape)} → "
            f"{shape_text(layer.output_shape)}")


def fmt(value: float) -> str:
    return f"{value:.4g}"


def norm(a) -> float:
    """‖a‖ for display: NaNs skipped, overflow gives inf without a warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.nansum(np.square(np.asarray(a, dtype=np.float64)))))


def forward_note(snap, index: int) -> str:
    """Why z/a of layer ``index`` may not belong to the pass in progress ('' when they do)."""
    if snap.phase == "forward" and not snap.done and snap.layer is not None \
            and snap.layer < index:
        return (f"from the previous step — this forward pass is at layer {snap.layer} "
                f"and has not reached layer {index} yet")
    return ""


def backward_note(snap, index: int) -> str:
    """Why δ/gradients of layer ``index`` may be from an earlier pass ('' when current)."""
    if snap.phase == "forward":
        return "from the previous step's backward pass (this step's forward pass is running)"
    if snap.phase == "backward" and not snap.done and snap.layer is not None \
            and snap.layer > index:
        return (f"from the previous step — this backward pass is at layer {snap.layer} "
                f"and has not reached layer {index} yet")
    return ""
