"""δ inspector: “where did this δ come from?” for one unit, or one weight's gradient.

The numbers come from ``bpviz.session.explain`` (explain_in_session / explain_weight_in_session);
this view shows them: the formula with the largest terms written out (MATH.md's
∂E/∂i₂₂ = δ₁₁h₂₂ + δ₁₂h₂₁ + … style), a table of the ten largest terms, and the sum check
against the core's value. The unit is chosen with the picker (layer, channel, row, col / unit),
the "Largest |δ|" button, or by clicking a pixel of the sensitivity map
(``SensitivityPanel.unitClicked`` → ``show_unit``; see ``wire``).

A hidden inspector computes nothing: it remembers what to show and does it when shown.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from bpviz.session import explain as ex
from bpviz.session.formulas import num, par
from bpviz.ui.panels.base import Panel

from .formula import MATH_FONT, UnitPicker, busy, sub

MODES = (("δ of a unit", "delta"), ("∂loss/∂W of a weight", "W"), ("∂loss/∂b of a bias", "b"))
TOP = 10
SHOWN = 4
HEADERS = {"routed": "r (1 = the window's max)", "1/count": "1/n (window size)",
           "x": "x (input)", "g": "g = ∂loss/∂a", "∂a/∂z": "∂a_k/∂z (Jacobian)",
           "δ": "δ (this layer)"}


def _header(name: str) -> str:
    if name in HEADERS:
        return HEADERS[name]
    if name.startswith("δ"):
        return f"{name} (δ of layer {name[1:].translate(ex.UNSUP)})"
    if name.startswith("W"):
        return f"{name} (weight)"
    return name
class InspectorPanel(Panel):
    title = "δ inspector"

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.mode = "delta"
        self.unit = None                  # chosen index (None: the largest |δ| / |∂W|)
        self.explanation = None
        self._dirty = True
        self.mode_combo = QComboBox(objectName="inspectorMode")
        for label, mode in MODES:
            self.mode_combo.addItem(label, mode)
        self.picker = UnitPicker()
        self.largest = QPushButton("Largest", objectName="inspectorLargest")
        self.largest.setToolTip("The unit (or weight) with the largest magnitude")
        top = QHBoxLayout()
        top.addWidget(self.mode_combo)
        top.addWidget(self.picker, 1)
        top.addWidget(self.largest)
        self.formula = _label("inspectorFormula", rich=True)
        font = self.formula.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.formula.setFont(font)
        self.formula.setStyleSheet("QLabel { padding: 6px; border: 1px solid palette(mid); "
                                   "border-radius: 3px; background: palette(base); }")
        self.source = _label("inspectorSource")
        self.table = QTableWidget(0, 0, objectName="inspectorTerms")
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.check = _label("inspectorCheck", rich=True)
        content = QWidget()
        lay = QVBoxLayout(content)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.formula)
        lay.addWidget(self.source)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.check)
        self.body.set_content(content)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.picker.changed.connect(self._picked)
        self.picker.layerChanged.connect(self._layer_picked)
        self.largest.clicked.connect(self._largest)
        self._fill_layers()

    # ----- public API -------------------------------------------------------------------------
    def set_session(self, session) -> None:
        self.session, self.unit, self.explanation = session, None, None
        self._fill_layers()
        self._refresh()

    def close_session(self) -> None:
        """The window replaced the session (this panel is being replaced too)."""
        self.explanation = None

    def show_unit(self, layer: int, unit) -> None:
        """Explain δ of ``unit`` of ``layer`` (the sensitivity map's click)."""
        self.mode_combo.blockSignals(True)
        self.mode_combo.setCurrentIndex(0)
        self.mode_combo.blockSignals(False)
        self.mode, self.layer_index, self.unit = "delta", int(layer), tuple(unit)
        self._refresh()

    def set_layer(self, index: int) -> None:
        if int(index) != self.layer_index:
            self.layer_index, self.unit = int(index), None
        self._refresh()

    def show_snapshot(self, snapshot) -> None:
        self.last_snapshot = snapshot
        self._refresh()

    def displayed(self) -> dict:
        e = self.explanation
        if e is None:
            return {}
        terms = e.jacobian if getattr(e, "mode", "") == "softmax" else e.terms
        out = {"value": np.array(e.delta if hasattr(e, "delta") else e.grad)}
        if terms is not None:
            out["terms"] = terms.values
        return out

    # ----- events -----------------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty:
            self._refresh()

    def _fill_layers(self) -> None:
        self.picker.set_layers([l.describe() for l in self.session.net.layers])
        self.layer_index = min(self.layer_index, len(self.session.net.layers) - 1)

    def _mode_changed(self) -> None:
        self.mode, self.unit = self.mode_combo.currentData(), None
        self._refresh()

    def _picked(self) -> None:
        self.unit = self.picker.index()
        self._refresh()

    def _layer_picked(self, index: int) -> None:
        self.layer_index, self.unit = index, None
        self._refresh()
        self.layerPicked.emit(index)

    def _largest(self) -> None:
        self.unit = None
        self._refresh()

    # ----- computing --------------------------------------------------------------------------
    def _refresh(self) -> None:
        if not self.isVisible():
            self._dirty = True               # a hidden panel computes nothing
            return
        self._dirty = False
        s = self.session
        if busy(self, s, self.last_snapshot):
            self._set_header("Training is running — pause (F5) to inspect a δ")
            return
        self._fill_layers()
        layer = s.net.layers[self.layer_index]
        self.picker.set_layer(self.layer_index)
        try:
            self.explanation = self._explain(layer)
        except ex.ExplainError as exc:
            self.explanation = None
            self._set_header(f"layer {layer.index} · {layer.describe()}")
            self.body.show_hint(str(exc))
            return
        self.body.show_content()
        self._show(self.explanation)

    def _explain(self, layer):
        s = self.session
        if self.mode == "delta":
            ex.check_current(s, layer.index)
            names = ("channel", "row", "col") if len(layer.output_shape) == 3 else ("unit",)
            unit = self.unit or ex.largest_unit(layer.delta[0])
            self.picker.set_dims(names, layer.output_shape, unit)
            return ex.explain_in_session(s, layer.index, unit)
        if self.mode not in layer.params:
            raise ex.ExplainError(f"layer {layer.index} {layer.kind} has no parameters; "
                                  f"choose a Dense or Conv2D layer")
        ex.check_current(s, layer.index)
        shape = layer.params[self.mode].shape
        names = {4: ("f", "c", "m", "n"), 2: ("k", "j"), 1: ("f" if layer.kind == "Conv2D"
                                                                 else "k",)}[len(shape)]
        index = self.unit or ex.largest_unit(layer.grads[self.mode])
        self.picker.set_dims(names, shape, index)
        return ex.explain_weight_in_session(s, layer.index, index, self.mode)

    # ----- drawing ----------------------------------------------------------------------------
    def _show(self, e) -> None:
        layer = self.session.net.layers[e.layer]
        batch = len(layer.delta)
        self._set_header(f"layer {e.layer} · {layer.describe()} · sample 0 of the batch of "
                         f"{batch}" if isinstance(e, ex.DeltaExplanation) else
                         f"layer {e.layer} · {layer.describe()} · summed over the batch of "
                         f"{batch}")
        if isinstance(e, ex.DeltaExplanation):
            self.formula.setText(_delta_html(e))
            self.source.setText(_source_text(e))
            terms = e.jacobian if e.mode == "softmax" else e.terms
            self.check.setText(_delta_check(e))
        else:
            self.formula.setText(_weight_html(e, getattr(layer, "stride", (1, 1))))
            self.source.setText("Every position where the kernel weight met an input, times "
                                "the δ it produced there" if e.kind == "Conv2D" else
                                "One product per sample of the batch")
            terms = e.terms
            self.check.setText(_check_line(len(terms), terms.total(), e.grad,
                                           f"∂loss/∂{e.param} (core)"))
        self._fill_table(terms)

    def _fill_table(self, terms) -> None:
        t = self.table
        if terms is None:
            t.setRowCount(0)
            t.setColumnCount(0)
            t.setVisible(False)
            return
        t.setVisible(True)
        cols = list(terms.columns) + [_header(terms.left_name),
                                      _header(terms.right_name), "product"]
        top = terms.top(TOP)
        more, rest = terms.rest(TOP)
        t.setColumnCount(len(cols))
        t.setHorizontalHeaderLabels(cols)
        t.setRowCount(len(top) + (1 if more else 0))
        for r, term in enumerate(top):
            vals = [str(v) for v in term.index.values()] + [num(term.left), num(term.right),
                                                             num(term.value)]
            for c, text in enumerate(vals):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                t.setItem(r, c, item)
        if more:
            t.setSpan(len(top), 0, 1, len(cols))
            t.setItem(len(top), 0, QTableWidgetItem(f"… and {more} more summing to {num(rest)}"))
        head = t.horizontalHeader()
        for c in range(len(cols)):
            head.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch if c >= len(cols) - 3
                                      else QHeaderView.ResizeMode.ResizeToContents)


def _label(name: str, rich: bool = False) -> QLabel:
    lab = QLabel("", objectName=name)
    lab.setWordWrap(True)
    lab.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return lab


def _sum_html(terms, left_sym, right_sym, shown=SHOWN) -> tuple[str, str]:
    """Symbolic and numeric sums of the largest terms: ('δ²₀,₁·W²₀,₁ + …', '0.1·0.2 + …')."""
    top = terms.top(shown)
    more = len(terms) - len(top)
    sym = [f"{left_sym(t)}·{right_sym(t)}" for t in top]
    nums = [f"{par(t.left)}·{par(t.right)}" for t in top]
    if more:
        sym.append(f"… {more} more")
        nums.append("…")
    return " + ".join(sym) or "0", " + ".join(nums) or "0"


def _delta_html(e) -> str:
    at = sub(f"δ{ex._sup(e.layer)}", e.unit)
    font = f"<span style=\"font-family: {MATH_FONT};\">"
    if e.mode == "fused":
        scale = "" if e.scale == 1 else f" · {num(e.scale)}"
        return (f"{font}{at} = (a − t){' / N' if e.scale != 1 else ''} = ({num(e.a)} − "
                f"{num(e.target)}){scale} = <b>{num(e.delta)}</b></span>")
    if e.mode == "softmax":
        sym, nums = _sum_html(e.jacobian, lambda t: sub("g", t.index.values()),
                              lambda t: f"∂a<sub>{t.index[e.jacobian.columns[0]]}</sub>/∂z")
        return (f"{font}{at} = Σ<sub>k</sub> g<sub>k</sub> ∂a<sub>k</sub>/∂z = {sym}<br>"
                f"= {nums} = <b>{num(e.delta)}</b></span>")
    if e.terms is None:                                    # the loss itself
        up = f"∂loss/∂a{ex._sup(e.layer)}"
        return (f"{font}{at} = {up} · f′(z) = {par(e.upstream)} · {par(e.fprime)} = "
                f"<b>{num(e.delta)}</b></span>")
    T = e.terms
    left, right = _term_symbols(e, T)
    sym, nums = _sum_html(T, left, right)
    fp = "f′(z)"
    return (f"{font}{at} = ({sym}) · {fp}<br>"
            f"&nbsp;&nbsp;&nbsp;= ({nums}) · {par(e.fprime)}<br>"
            f"&nbsp;&nbsp;&nbsp;= {par(e.upstream)} · {par(e.fprime)} = <b>{num(e.delta)}</b>"
            f"</span>")


def _term_symbols(e, T):
    """Functions giving the HTML symbols of a term's two factors, MATH.md style."""
    kind = T.columns[0]
    ix = (lambda t, *names: tuple(t.index[n] for n in names))

    def left(t):
        if kind == "f":                                   # conv: δ[f,i,j]
            return sub(T.left_name, ix(t, "f", "i", "j"))
        if kind == "i":                                   # pooling: δ[c,i,j]
            return sub(T.left_name, (e.unit[0],) + ix(t, "i", "j"))
        if kind == "k":                                   # dense: δ[k]
            return sub(T.left_name, ix(t, "k"))
        return sub("∂loss/∂a", ix(t, kind))               # flatten as the output layer

    def right(t):
        if kind == "f":                                   # the kernel weight that linked them
            return sub(T.right_name, (t.index["f"], e.unit[0]) + ix(t, "m", "n"))
        if kind == "i":
            return "(1/n)" if T.right_name == "1/count" else sub("r", ix(t, "i", "j"))
        if kind == "k":
            return sub(T.right_name, (t.index["k"], e.column))
        return "1"
    return left, right


def _source_text(e) -> str:
    if e.mode == "fused":
        return ("The loss and the output activation combine: δ = (a − t)·s. There is no sum "
                "to take apart here; pick a hidden layer to see where its δ came from.")
    f = "" if e.fprime is None else f"  ·  f′(z) = {num(e.fprime)} ({e.activation}, z = {num(e.z)})"
    where = f"∂loss/∂a = {num(e.upstream)} from {e.source}"
    if e.mode == "softmax":
        return where + "  ·  softmax: δ takes every g of the group through the Jacobian"
    if e.terms is not None and e.terms.right_name == "routed":
        where += "  ·  r = 1 where the unit was the window's maximum, else 0"
    elif e.terms is not None and e.terms.right_name == "1/count":
        where += "  ·  n = positions in the window"
    return where + f


def _check_line(n, total, core, what) -> str:
    diff = abs(total - core)
    ok = diff <= 1e-12 * max(1.0, abs(core))
    mark = "<span style='color:#1e8449'>✓</span>" if ok else "<span style='color:#c0392b'>✗</span>"
    return (f"Σ of all {n} terms = {num(total)}  ·  {what} = {num(core)}  ·  "
            f"|difference| = {diff:.1e} {mark}")


def _delta_check(e) -> str:
    rebuilt = e.rebuilt()
    line = _check_line(len(e.jacobian) if e.mode == "softmax" else
                       (len(e.terms) if e.terms is not None else 1),
                       e.upstream_sum() if e.mode == "element-wise" else rebuilt,
                       e.upstream if e.mode == "element-wise" else e.delta,
                       "∂loss/∂a (core)" if e.mode == "element-wise" else "δ (core)")
    if e.mode == "element-wise":
        line += "<br>" + _check_line(len(e.terms) if e.terms is not None else 1, rebuilt,
                                     e.delta, "δ (core)").replace(
            f"Σ of all {len(e.terms) if e.terms is not None else 1} terms", "× f′(z)")
    return line


def _weight_html(e, stride=(1, 1)) -> str:
    """∂loss/∂W[f,c,m,n] = Σ δ · x_pad (conv) or Σ_n δ[n,k] x[n,j] (dense), largest first."""
    font = f"<span style=\"font-family: {MATH_FONT};\">"
    at = sub(f"∂loss/∂{e.param}{ex._sup(e.layer)}", e.index)
    conv, weight = e.kind == "Conv2D", e.param == "W"

    def left(t):
        cell = (t.index["i"], t.index["j"]) if conv else ()
        return sub("δ", (t.index["sample"], e.index[0]) + cell)

    def right(t):
        if not weight:
            return "1"
        if not conv:
            return sub("x", (t.index["sample"], e.index[1]))
        pos = (t.index["sample"], e.index[1], t.index["i"] * stride[0] + e.index[2],
               t.index["j"] * stride[1] + e.index[3])
        return f"x<sub>pad {','.join(map(str, pos))}</sub>"

    if conv:
        head = "Σ<sub>n</sub> Σ<sub>i</sub> Σ<sub>j</sub> δ<sub>n,f,i,j</sub>" + \
            (" · x<sub>pad n,c,i·s+m,j·s+n</sub>" if weight else "")
    else:
        head = "Σ<sub>n</sub> δ<sub>n,k</sub>" + (" · x<sub>n,j</sub>" if weight else "")
    sym, nums = _sum_html(e.terms, left, right)
    return (f"{font}{at} = {head}<br>&nbsp;&nbsp;&nbsp;= {sym}<br>&nbsp;&nbsp;&nbsp;= {nums} = "
            f"<b>{num(e.grad)}</b></span>")



PANELS = [("inspectorDock", "δ inspector", InspectorPanel)]
