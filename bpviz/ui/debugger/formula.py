"""Formula view: the formula in force at the cursor, with the selected unit's numbers.

``bpviz.session.formulas.formula_for(session, layer, unit)`` decides which formula (forward /
backward / update, per layer type and loss/activation pair) and fills in the numbers; this
view renders it as rich text (HTML with Unicode math) in a ``QTextBrowser``: the title, the
symbolic line, the numeric line, the weight and bias gradient lines in backward, the update
lines, and a highlighted note when a pairing learns slowly (sigmoid + MSE). The layer follows
the selection; the unit follows the picker, a click on the sensitivity map (``show_unit``), or
defaults to the unit with the largest |δ| (|z| before the first backward pass).

A hidden formula view computes nothing until it is shown. ``UnitPicker`` (layer + index spin
boxes), ``math_html`` and ``sub`` are shared with the δ inspector.
"""
from __future__ import annotations

import html
import re

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QSpinBox, QTextBrowser,
                               QVBoxLayout, QWidget)

from bpviz.session.formulas import formula_for
from bpviz.ui.panels.base import Panel

MATH_FONT = "'DejaVu Serif', 'STIX Two Math', 'Cambria Math', serif"


def math_html(text: str) -> str:
    """Unicode math text → HTML: x_pad, Σ_k, g_k as subscripts, e^(…) as superscripts."""
    t = html.escape(text, quote=False)
    t = re.sub(r"\^\(([^)]*)\)", r"<sup>\1</sup>", t)
    t = re.sub(r"_([A-Za-z]+|\d+)", r"<sub>\1</sub>", t)
    return t.replace("   ", "&nbsp;&nbsp;&nbsp; ")


def sub(name: str, index) -> str:
    """'δ²' + (0, 1, 2) → δ²<sub>0,1,2</sub>."""
    parts = (str(int(i)) if isinstance(i, (int, np.integer)) else str(i) for i in index)
    return f"{html.escape(name)}<sub>{','.join(parts)}</sub>"


class UnitPicker(QWidget):
    """A layer combo and up to four labelled index spin boxes."""

    changed = Signal()
    layerChanged = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.layer_combo = QComboBox(objectName="pickerLayer")
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        row.addWidget(self.layer_combo)
        self.labels, self.spins = [], []
        for k in range(4):
            lab, spin = QLabel(""), QSpinBox(objectName=f"pickerIndex{k}")
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._spin_changed)
            row.addWidget(lab)
            row.addWidget(spin)
            self.labels.append(lab)
            self.spins.append(spin)
        row.addStretch(1)
        self._quiet = False
        self.names: list[str] = []
        self.layer_combo.currentIndexChanged.connect(self._layer_changed)

    def set_layers(self, names: list[str]) -> None:
        """The network's layers (only rebuilt when they changed)."""
        if names == self.names:
            return
        self.names = list(names)
        self._quiet = True
        keep = self.layer_combo.currentIndex()
        self.layer_combo.clear()
        for i, name in enumerate(names):
            self.layer_combo.addItem(f"layer {i} · {name}", i)
        self.layer_combo.setCurrentIndex(min(max(keep, 0), len(names) - 1))
        self._quiet = False

    def set_dims(self, names, shape, value=None) -> None:
        self._quiet = True
        for k, (lab, spin) in enumerate(zip(self.labels, self.spins)):
            on = k < len(shape)
            lab.setVisible(on)
            spin.setVisible(on)
            if on:
                lab.setText(names[k])
                spin.setRange(0, max(int(shape[k]) - 1, 0))
                spin.setValue(int(value[k]) if value is not None else 0)
        self._quiet = False

    def set_layer(self, index: int) -> None:
        self._quiet = True
        self.layer_combo.setCurrentIndex(index)
        self._quiet = False

    @property
    def layer(self) -> int:
        return max(self.layer_combo.currentIndex(), 0)

    def index(self) -> tuple:
        return tuple(s.value() for s in self.spins if not s.isHidden())

    def _spin_changed(self) -> None:
        if not self._quiet:
            self.changed.emit()

    def _layer_changed(self, i) -> None:
        if not self._quiet and i >= 0:
            self.layerChanged.emit(i)


def busy(widget, session, snap) -> bool:
    """True while continuous training owns the session (the window's trainer runs, or the
    snapshot drawn is not the session's state): the views then keep what they show."""
    trainer = getattr(widget.window(), "trainer", None)
    if trainer is not None and getattr(trainer, "running", False):
        return True
    return snap is not None and (snap.step, snap.phase, snap.layer) != \
        (session.step_count, session.phase, session.layer)


def formula_html(f, palette=None) -> str:
    """The Formula dataclass as an HTML page (readable in light and dark themes)."""
    dark = palette is not None and palette.base().color().lightness() < 128
    box, warn_bg, warn_fg, muted = (("#2b3340", "#4a3b10", "#ffe7a3", "#a8a8a8") if dark else
                                    ("#eef3fa", "#fff4d6", "#5c4400", "#6b6b6b"))
    parts = [f'<p style="font-size: 11pt; font-weight: 600; margin: 0 0 6px 0;">'
             f'{html.escape(f.title)}</p>',
             _line(f.symbolic, "13pt"), _line(f.numeric, "12pt", box)]
    if f.extra:
        parts.append(f'<p style="color: {muted}; margin: 10px 0 0 0;">What this δ gives the '
                     f'unit\'s parameters (its weight with the largest |∂C/∂W|, and its bias)'
                     f'</p>' if "∂C/∂W" in f.extra[0][0] else "")
        for sym, numeric in f.extra:
            parts += [_line(sym, "11pt"), _line(numeric, "11pt", box)]
    if f.note:
        parts.append(f'<p style="background-color: {warn_bg}; color: {warn_fg}; '
                     f'margin-top: 10px;">&nbsp;&#9888; {math_html(f.note)}&nbsp;</p>')
    if f.tip:
        parts.append(f'<p style="color: {muted}; margin-top: 8px;">{math_html(f.tip)}</p>')
    parts.append(f'<p style="color: {muted}; font-size: 9pt; margin-top: 10px;">⊙ element-wise '
                 f'product · f′ derivative of the activation · δ = ∂C/∂z · superscripts are '
                 f'layer numbers</p>')
    return "".join(parts)


def _line(text: str, size: str, background: str | None = None) -> str:
    bg = f" background-color: {background};" if background else ""
    return (f'<p style="font-family: {MATH_FONT}; font-size: {size};{bg} '
            f'margin: 4px 0 2px 0;">&nbsp;{math_html(text)}&nbsp;</p>')


class FormulaPanel(Panel):
    title = "Formula"

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.unit = None
        self.formula = None
        self._dirty = True
        self.picker = UnitPicker()
        self.picker.changed.connect(self._picked)
        self.picker.layerChanged.connect(self._layer_picked)
        self.browser = QTextBrowser(objectName="formulaText")
        self.browser.setOpenLinks(False)
        top = QHBoxLayout()
        top.addWidget(QLabel("Unit"))
        top.addWidget(self.picker, 1)
        content = QWidget()
        lay = QVBoxLayout(content)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.browser, 1)
        self.body.set_content(content)
        self.body.show_content()
        self.picker.set_layers([l.describe() for l in session.net.layers])

    # ----- public API -------------------------------------------------------------------------
    def set_session(self, session) -> None:
        self.session, self.unit = session, None
        self.picker.set_layers([l.describe() for l in session.net.layers])
        self._refresh()

    def close_session(self) -> None:
        """The window replaced the session (this panel is being replaced too)."""
        self.formula = None

    def show_unit(self, layer: int, unit) -> None:
        self.layer_index, self.unit = int(layer), tuple(unit)
        self._refresh()

    def set_layer(self, index: int) -> None:
        if int(index) != self.layer_index:
            self.layer_index, self.unit = int(index), None
        self._refresh()

    def show_snapshot(self, snapshot) -> None:
        self.last_snapshot = snapshot
        self._refresh()

    def displayed(self) -> dict:
        return dict(self.formula.values) if self.formula is not None else {}

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty:
            self._refresh()

    # ----- internals --------------------------------------------------------------------------
    def _picked(self) -> None:
        self.unit = self.picker.index()
        self._refresh()

    def _layer_picked(self, index: int) -> None:
        self.layer_index, self.unit = index, None
        self._refresh()
        self.layerPicked.emit(index)

    def _refresh(self) -> None:
        if not self.isVisible():
            self._dirty = True
            return
        self._dirty = False
        s = self.session
        if busy(self, s, self.last_snapshot):
            self._set_header("Training is running — pause (F5) to read the formula")
            return
        layers = s.net.layers
        self.picker.set_layers([l.describe() for l in layers])
        self.layer_index = min(self.layer_index, len(layers) - 1)
        layer = layers[self.layer_index]
        unit = self.unit
        if unit is not None and len(unit) != len(layer.output_shape):
            unit = None
        try:
            self.formula = formula_for(s, self.layer_index, unit)
        except ValueError as exc:
            self.formula = None
            self.body.show_hint(str(exc))
            return
        self.body.show_content()
        self._set_header(_where(s))
        shown = self.formula.unit
        names = ("channel", "row", "col") if len(layer.output_shape) == 3 else ("unit",)
        self.picker.set_layer(self.layer_index)
        self.picker.set_dims(names, layer.output_shape, shown)
        self.browser.setHtml(formula_html(self.formula, self.palette()))


def _where(s) -> str:
    """Where the cursor is, with the 0-based layer numbers the formulas use."""
    if s.phase == "idle":
        return "No pass yet"
    if s.phase == "update":
        return f"Update applied · {s.step_count} so far"
    kind = s.net.layers[s.layer].kind if s.layer is not None else ""
    return (f"{s.phase.capitalize()} pass{' done' if s.done else ''} · cursor at layer "
            f"{s.layer} {kind}")



PANELS = [("formulaDock", "Formula", FormulaPanel)]
