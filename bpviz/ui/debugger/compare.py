"""A/B comparison panel: the session (A) and a twin with one change (B), stepped in lock-step
on the same batches; their gradient-norm histories and loss curves overlaid.

Controls: the change (hidden activation, loss, learning rate, clip by value / norm, L2,
initialisation seed) and its value, Start (B is built from A's present weights), Step N (A
takes N steps, B follows each), Stop. While started, B also follows every step A takes by
other means (F10, F5). The logic is ``bpviz.session.compare.Comparison``; this view draws
``histories()``: top ‖∂loss/∂W‖ per weighted layer (log, one colour per layer, A solid, B
dashed), bottom the loss (A solid, B dashed). Nothing is computed or drawn while hidden or
before Start.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QSpinBox, QVBoxLayout, QWidget)

from bpviz.core import BpvizError
from bpviz.core.losses import NAMES as LOSSES
from bpviz.session.compare import CHANGES, HIDDEN_ACTIVATIONS, Comparison
from bpviz.session.session import BreakpointHit
from bpviz.ui.panels import colors
from bpviz.ui.panels.base import Panel, fmt
from bpviz.ui.panels.plots import StepAxis

HINT = ("Choose one change and press Start: B is a copy of this network with that change,\n"
        "trained on exactly the same batches. Try deep-sigmoid with the hidden activation "
        "→ relu.")
SUGGESTIONS = {"activation": HIDDEN_ACTIVATIONS, "loss": LOSSES,
               "lr": ("0.01", "0.1", "0.5", "1"), "clip_value": ("0.01", "0.1", "1"),
               "clip_norm": ("0.1", "1", "5"), "l2": ("0.0001", "0.001", "0.01"),
               "seed": ("1", "2", "42")}
LOSS_A, LOSS_B = QColor(200, 60, 50), QColor(200, 60, 50)


def parse_value(key: str, text: str):
    """The typed value for change ``key`` (raises ValueError naming the rule)."""
    t = text.strip()
    if key in ("activation", "loss"):
        return t
    if key == "seed":
        try:
            return int(t)
        except ValueError:
            raise ValueError(f"seed {text!r} must be a whole number ≥ 0") from None
    if key in ("clip_value", "clip_norm") and t.lower() in ("off", "none", ""):
        return None
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"{CHANGES[key]} {text!r} is not a number") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and key != "l2"):
        raise ValueError(f"{CHANGES[key]} {text!r} must be a finite number "
                         f"{'≥' if key == 'l2' else '>'} 0")
    return v


class ComparePanel(Panel):
    title = "A/B comparison"
    message = Signal(str)            # for the status bar: why B stopped
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.comparison: Comparison | None = None
        self._arch = None
        self.curves: list = []
        self._build()
        self.body.show_hint(HINT)

    def _build(self) -> None:
        self.change_box = QComboBox()
        self.change_box.setObjectName("compareChange")
        for key, label in CHANGES.items():
            self.change_box.addItem(label, key)
        self.value_box = QComboBox()
        self.value_box.setObjectName("compareValue")
        self.value_box.setEditable(True)
        self.value_box.setMinimumContentsLength(8)
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("compareStart")
        self.steps_box = QSpinBox()
        self.steps_box.setObjectName("compareSteps")
        self.steps_box.setRange(1, 100000)
        self.steps_box.setValue(10)
        self.steps_box.setPrefix("N = ")
        self.step_button = QPushButton("Step N")
        self.step_button.setObjectName("compareStep")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("compareStop")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for w in (QLabel("B = A with"), self.change_box, QLabel("→"), self.value_box,
                  self.start_button, self.steps_box, self.step_button, self.stop_button):
            row.addWidget(w)
        row.addStretch(1)
        self.note = QLabel("")
        self.note.setObjectName("compareMessage")
        self.note.setWordWrap(True)
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        controls = QWidget()
        col = QVBoxLayout(controls)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(row)
        col.addWidget(self.note)
        self.layout().insertWidget(1, controls)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.ci.setContentsMargins(2, 2, 2, 2)
        self.grad_plot = self._plot(0)
        self.grad_plot.setLogMode(y=True)
        self.grad_plot.setLabel("bottom", None)
        self.loss_plot = self._plot(1)
        self.loss_plot.setXLink(self.grad_plot)
        self.loss_a = self.loss_plot.plot(pen=pg.mkPen(LOSS_A, width=2))
        self.loss_b = self.loss_plot.plot(pen=pg.mkPen(LOSS_B, width=2,
                                                       style=Qt.PenStyle.DashLine))
        self.glw.ci.layout.setRowStretchFactor(0, 3)
        self.glw.ci.layout.setRowStretchFactor(1, 2)
        self.keys = QLabel("")
        self.keys.setObjectName("compareKeys")
        self.keys.setWordWrap(True)
        self.keys.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        content = QWidget()
        box = QVBoxLayout(content)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(self.keys)
        box.addWidget(self.glw, 1)
        self.body.set_content(content)
        self.glw.scene().sigMouseMoved.connect(self._moved)
        self.change_box.currentIndexChanged.connect(self._suggest)
        self.start_button.clicked.connect(self.start)
        self.step_button.clicked.connect(lambda: self.step(self.steps_box.value()))
        self.stop_button.clicked.connect(self.stop)
        self._suggest()
        self._buttons()
        self.apply_theme()

    def _plot(self, row: int) -> pg.PlotItem:
        axis = StepAxis("bottom")
        axis.enableAutoSIPrefix(False)
        plot = self.glw.addPlot(row=row, col=0, axisItems={"bottom": axis})
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.showGrid(y=True, alpha=0.25)
        plot.setLabel("bottom", "step")
        return plot

    def _suggest(self) -> None:
        key = self.change_box.currentData()
        self.value_box.clear()
        self.value_box.addItems(list(SUGGESTIONS[key]))
        if key == "activation":
            self.value_box.setCurrentText("relu")

    def _buttons(self) -> None:
        running = self.comparison is not None and self.comparison.running
        self.start_button.setText("Restart" if running else "Start")
        self.stop_button.setEnabled(running)
        self.step_button.setEnabled(running)

    # ----- actions ---------------------------------------------------------------------------
    def set_change(self, key: str, value) -> None:
        """Choose the change in the controls (as a user would)."""
        self.change_box.setCurrentIndex(self.change_box.findData(key))
        self.value_box.setCurrentText(str(value))

    def start(self) -> None:
        key = self.change_box.currentData()
        try:
            change = {key: parse_value(key, self.value_box.currentText())}
            self._pause_training()
            if self.comparison is not None:
                self.comparison.stop()
            comparison = Comparison(self.session, change)
            comparison.start()
        except (ValueError, BpvizError) as exc:
            self._say(str(exc), error=True)
            return
        self.comparison = comparison
        self._say(f"A = this network · B = A with {comparison.describe()} · from step "
                  f"{comparison.start_step}, B takes a step on A's batch whenever A steps "
                  f"(Step N, F10, F5)")
        self._buttons()
        self._refresh()

    def step(self, n: int) -> None:
        if self.comparison is None or not self.comparison.running:
            return
        self._pause_training()
        try:
            self.comparison.step(n)
        except BreakpointHit as exc:
            self._say(f"A stopped at a breakpoint: {exc.reason}", error=True)
        except BpvizError as exc:
            self._say(f"A stopped: {exc}", error=True)
        self._refresh()

    def stop(self) -> None:
        if self.comparison is not None:
            self.comparison.stop("stopped")
        self._buttons()
        self._refresh()

    def _pause_training(self) -> None:
        win = self.window()
        trainer = getattr(win, "trainer", None)
        if getattr(trainer, "running", False):
            win.pause()

    def _say(self, text: str, error: bool = False) -> None:
        if text == self.note.text():
            return
        self.note.setStyleSheet("color: rgb(200, 40, 40);" if error else "")
        self.note.setText(text)
        if error:
            self.message.emit(f"A/B comparison: {text}")

    def close_session(self) -> None:
        """The window is replacing the session: B stops following it."""
        if self.comparison is not None:
            self.comparison.stop("the session was replaced")

    def _refresh(self) -> None:
        snap = self.last_snapshot
        if self.isVisible():
            self._draw(snap)

    # ----- the Panel contract ----------------------------------------------------------------
    def show_snapshot(self, snapshot) -> None:
        self.last_snapshot = snapshot
        if self.isVisible():
            self._draw(snapshot)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._draw(self.last_snapshot)

    def set_layer(self, index: int) -> None:
        self.layer_index = int(index)
        if self.isVisible():
            self._draw(self.last_snapshot)

    def _redraw(self, texts: bool = True) -> None:
        if self.isVisible():
            self._draw(self.last_snapshot)

    def _draw(self, _snap=None) -> None:
        c = self.comparison
        if c is None:
            self.body.show_hint(HINT)
            self._displayed = {}
            return
        if not c.running and c.stopped_reason and c.stopped_reason != "stopped":
            self._say(c.stopped_reason, error=True)
        self._buttons()
        h = c.histories()
        if h["steps_b"].size == 0:
            self.body.show_hint(f"B = A with {c.describe()}\nStep A (Step N, F10 or F5): "
                                f"B follows on the same batches")
            self._displayed = {}
            return
        self.body.show_content()
        self._rebuild(c)
        for layer, (ca, cb) in self.curves:
            for curve, g, steps in ((ca, h["grad_a"], h["steps_a"]),
                                    (cb, h["grad_b"], h["steps_b"])):
                y = g[:, layer] if g.shape[0] else np.empty(0)
                curve.setData(steps.astype(float), np.where(y > 0, y, np.nan), connect="finite")
        self.loss_a.setData(h["steps_a"].astype(float), h["loss_a"], connect="finite")
        self.loss_b.setData(h["steps_b"].astype(float), h["loss_b"], connect="finite")
        self._set_header(self._summary(c, h))
        self._select()
        self._displayed = dict(h)

    def _rebuild(self, c) -> None:
        arch = (id(c), tuple(l.kind for l in self.session.net.layers))
        if arch == self._arch:
            return
        self._arch = arch
        for _, pair in self.curves:
            for curve in pair:
                self.grad_plot.removeItem(curve)
        self.curves = []
        keys = []
        for i, layer in enumerate(self.session.net.layers):
            if "W" not in layer.params:
                continue
            a, b = pg.PlotDataItem(), pg.PlotDataItem()
            for curve in (a, b):
                self.grad_plot.addItem(curve)
            self.curves.append((i, (a, b)))
            keys.append(colors.key_html(colors.series_color(i), f"{i} {layer.kind}"))
        self.keys.setText("layers: " + " &nbsp;".join(keys) + " &nbsp;(selected: thick)")
        self._selected = None

    def _select(self) -> None:
        if self._selected == self.layer_index:
            return
        self._selected = self.layer_index
        for i, (a, b) in self.curves:
            chosen = i == self.layer_index
            color = QColor(colors.series_color(i))
            color.setAlpha(255 if chosen else 120)
            width = 3.2 if chosen else 1.3
            a.setPen(pg.mkPen(color, width=width))
            b.setPen(pg.mkPen(color, width=width, style=Qt.PenStyle.DashLine))
            for curve in (a, b):
                curve.setZValue(10 if chosen else 0)

    def _summary(self, c, h) -> str:
        n = h["steps_b"].size
        text = f"{n} step{'s' * (n != 1)} in lock-step"
        i = self.layer_index
        if h["grad_a"].shape[0] and i < h["grad_a"].shape[1] and h["grad_b"].shape[0]:
            ga, gb = h["grad_a"][-1, i], h["grad_b"][-1, i]
            if np.isfinite(ga) and np.isfinite(gb):
                ratio = f" · B/A = {fmt(gb / ga)}" if ga > 0 else ""
                text += f" · layer {i}: ‖∂loss/∂W‖ A {fmt(ga)}, B {fmt(gb)}{ratio}"
        la, lb = h["loss_a"][-1], h["loss_b"][-1]
        return text + f" · loss A {fmt(la)}, B {fmt(lb)}"

    # ----- hover, theme ----------------------------------------------------------------------
    def _moved(self, pos) -> None:
        d = self._displayed
        if not d:
            return
        for plot in (self.grad_plot, self.loss_plot):
            vb = plot.getViewBox()
            if not vb.sceneBoundingRect().contains(pos):
                continue
            x = vb.mapSceneToView(pos).x()
            k = int(np.argmin(np.abs(d["steps_b"] - x)))
            step = int(d["steps_b"][k])
            ka = int(np.searchsorted(d["steps_a"], step))
            i = self.layer_index
            if plot is self.loss_plot:
                text = f"step {step} · loss A {fmt(d['loss_a'][ka])} · B {fmt(d['loss_b'][k])}"
            elif i < d["grad_b"].shape[1]:
                text = (f"step {step} · layer {i} ‖∂loss/∂W‖ A {fmt(d['grad_a'][ka, i])} · "
                        f"B {fmt(d['grad_b'][k, i])}")
            else:
                return
            self._set_hover(text)

    def changeEvent(self, event) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_theme()
        super().changeEvent(event)

    def apply_theme(self) -> None:
        bg, fg, _ = colors.theme(self.palette())
        self.glw.setBackground(bg)
        for plot in (self.grad_plot, self.loss_plot):
            colors.style_plot(plot, fg)
        self.grad_plot.setTitle("‖∂loss/∂W‖ per layer (log) · A —— solid, B - - - dashed",
                                color=fg, size="9pt")
        self.loss_plot.setTitle(f"{colors.key_html(LOSS_A, 'loss')} · A —— solid, "
                                f"B - - - dashed", color=fg, size="9pt")


PANELS = [("compareDock", "A/B comparison", ComparePanel)]
