"""Update decomposition panel: what the last weight update ΔW was made of, layer by layer.

Left, for the selected layer (weights W and bias b): the norms of −η·∇loss (the clipped
gradient actually used), −η·λW (L2) and the momentum term, which sum to ΔW, plus what
clipping changed and how many values it clipped; below, the same norms for every layer.
Right: ‖ΔW‖/‖W‖ per layer on a log scale, the usual 1e-4 … 1e-2 band shaded and the 1e-3 rule
of thumb dashed; the last few updates seen stay as faded lines. Numbers come from
``bpviz.session.decomposition.decompose(session.last_update)``, computed once per update and
only while the panel is visible. Clicking a layer (table row or plot) picks it.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QSizePolicy,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from bpviz.session.decomposition import BAND, RULE_OF_THUMB, decompose, describe_ratio
from bpviz.ui.panels import colors
from bpviz.ui.panels.base import fmt
from bpviz.ui.panels.gradients import log_ticks
from bpviz.ui.panels.plots import PlotsPanel

HINT = ("No update yet — F10 completes a step and applies one.\n\nEach update ΔW is then "
        "split into −η·∇loss (after clipping), −η·λW (L2) and momentum, with ‖ΔW‖/‖W‖ per layer.")
PART_ROWS = (("gradient", "−η·∇loss  (clipped gradient used)"),
             ("decay", "−η·λW  (L2 weight decay)"),
             ("momentum", "momentum  ΔW − (−η(g + λW))"),
             ("update", "= ΔW applied"),
             ("clipping", "clipping changed −η·∇loss by"))
LAYER_COLUMNS = ("Layer", "‖ΔW‖", "‖−η∇‖", "‖−ηλW‖", "‖mom.‖", "clipped", "‖ΔW‖/‖W‖")
GHOSTS = 6
RATIO_COLOR = pg.mkColor(31, 119, 180)


def _table(rows: int, headers) -> QTableWidget:
    t = QTableWidget(rows, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().hide()
    t.verticalHeader().setDefaultSectionSize(21)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    head = t.horizontalHeader()
    head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    head.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return t


def _item(text: str, right: bool = True, bold: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if bold:
        font = item.font()
        font.setBold(True)
        item.setFont(font)
    return item


def _fit_height(t: QTableWidget) -> None:
    """No empty rows below the last one (the column's spare room goes below the tables)."""
    h = t.horizontalHeader().height() + 2 * t.frameWidth()
    h += sum(t.rowHeight(r) for r in range(t.rowCount()))
    if t.horizontalScrollBar().isVisible():
        h += t.horizontalScrollBar().height()
    t.setMaximumHeight(h + 1)


def _num(v: float) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.3e}"


class DecompositionPanel(PlotsPanel):
    title = "Update decomposition"
    defer_while_hidden = True       # nothing is computed while the dock is closed

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.decomposition = None
        self._record = None
        self._ghosts: deque = deque(maxlen=GHOSTS)
        self._ghost_items: list[pg.PlotDataItem] = []
        self.plot = self.add_plot(0, None)      # titled by a QLabel: it wraps, never clips
        self.plot_title = QLabel(
            "<b>‖ΔW‖/‖W‖ per layer</b> (log) · "
            + colors.key_html(pg.mkColor(60, 170, 80), "usual band 1e-4 … 1e-2") + " · "
            "<span style='color:rgb(40,120,50)'>rule of thumb 1e-3</span> (dashed) · "
            "<span style='color:gray'>earlier updates</span> (grey)")
        self.plot_title.setWordWrap(True)
        self.plot_title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        lo, hi = math.log10(BAND[0]), math.log10(BAND[1])
        self.band = pg.LinearRegionItem((lo, hi), orientation="horizontal", movable=False,
                                        brush=pg.mkBrush(60, 170, 80, 40), pen=pg.mkPen(None))
        self.rule = pg.InfiniteLine(pos=math.log10(RULE_OF_THUMB), angle=0, pen=pg.mkPen(
            (40, 120, 50), width=2, style=Qt.PenStyle.DashLine))
        self.highlight = pg.LinearRegionItem((-0.5, 0.5), movable=False, pen=pg.mkPen(None),
                                             brush=pg.mkBrush(255, 200, 0, 60))
        for item in (self.band, self.rule, self.highlight):
            item.setZValue(-10)
            self.plot.addItem(item, ignoreBounds=True)
        self.curve = self.plot.plot(pen=pg.mkPen(RATIO_COLOR, width=2), symbol="o",
                                    symbolSize=8, symbolBrush=RATIO_COLOR, symbolPen=None,
                                    connect="finite")
        self.layer_title = QLabel("")
        font = self.layer_title.font()
        font.setBold(True)
        self.layer_title.setFont(font)
        self.parts = _table(len(PART_ROWS) + 2, ("part", "‖·‖ of W", "‖·‖ of b",
                                                 "‖·‖/‖ΔW‖"))
        self.parts.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.parts.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.verdict = QLabel("", wordWrap=True)
        self.layers = _table(0, LAYER_COLUMNS)
        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.layer_title)
        col.addWidget(self.parts, 3)
        col.addWidget(QLabel("All layers (norms of the W parts):"))
        col.addWidget(self.layers, 3)
        col.addStretch(1)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.body.removeWidget(self.glw)          # the plot sits beside the tables
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        rcol.addWidget(self.plot_title)
        rcol.addWidget(self.glw, 1)
        rcol.addWidget(self.verdict)
        self.split.addWidget(left)
        self.split.addWidget(right)
        self.glw.show()                           # a page taken out of a stack stays hidden
        self.split.setStretchFactor(0, 5)
        self.split.setStretchFactor(1, 4)
        self.body.content = self.split
        self.body.addWidget(self.split)
        self._split_moved = False
        self.split.splitterMoved.connect(lambda *_: setattr(self, "_split_moved", True))
        self.layers.itemSelectionChanged.connect(self._row_picked)
        self.body.show_hint(HINT)
        self.apply_theme()

    def resizeEvent(self, event) -> None:
        """Wide: tables beside the plot; narrow (a docked tab): tables above the plot."""
        super().resizeEvent(event)
        wide = self.width() >= max(640, 1.3 * self.height())
        self.split.setOrientation(Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical)
        total = self.split.width() if wide else self.split.height()
        if not self._split_moved and total > 0:
            first = max(total * 11 // 20, min(total - 260, 480)) if wide else total * 3 // 5
            self.split.setSizes([first, total - first])
        if self.decomposition is not None:
            self._draw_plot()

    # ----- computing only when visible -------------------------------------------------------
    def _draw(self, snap) -> None:
        record = self.session.last_update
        if record is None:
            self.decomposition, self._record = None, None
            self._ghosts.clear()
            self._displayed = {}
            self._set_header(f"step {snap.step} · no update yet")
            self.body.show_hint(HINT)
            return
        if record is not self._record:
            kinds = [l.kind for l in snap.layers]
            self.decomposition = decompose(record, kinds, step=snap.step, keep_arrays=False)
            self._record = record
            self._ghosts.append(self.decomposition.ratios)
            self._fill_layers()
            self._draw_plot()
        self.body.show_content()
        self._set_header(_summary(self.decomposition))
        self._fill_parts()
        self._select_row()

    # ----- tables ----------------------------------------------------------------------------
    def _fill_parts(self) -> None:
        d = self.decomposition
        layer = d.layers[min(self.layer_index, len(d.layers) - 1)]
        self.layer_title.setText(f"layer {layer.index} {layer.kind} · update of step {d.step}")
        t, W, b = self.parts, layer.params.get("W"), layer.params.get("b")
        if W is None:
            t.setRowCount(1)
            t.setItem(0, 0, _item(f"{layer.kind} has no weights: nothing is updated", False))
            self.verdict.setText("")
            for c in (1, 2, 3):
                t.setItem(0, c, _item(""))
            self._displayed = self._arrays()
            return
        t.setRowCount(len(PART_ROWS) + 2)
        off = {"decay": d.l2 == 0, "momentum": d.momentum == 0,
               "clipping": not (d.norm_clipped or layer.clipped_values)}
        total = W.norms["update"]
        for r, (key, label) in enumerate(PART_ROWS):
            bold = key == "update"
            t.setItem(r, 0, _item(label + ("   (off)" if off.get(key) else ""), False, bold))
            for c, p in ((1, W), (2, b)):
                text = "—" if p is None or off.get(key) else _num(p.norms[key])
                if p is not None and key == "decay" and not p.has_decay and p.name == "b":
                    text = "n/a"
                t.setItem(r, c, _item(text, bold=bold))
            share = W.norms[key] / total if total > 0 else math.nan
            t.setItem(r, 3, _item("" if key == "update" else "—" if off.get(key) or not
                                  math.isfinite(share) else f"{share:.1%}", bold=bold))
        n = len(PART_ROWS)
        t.setItem(n, 0, _item("values clipped (by value)", False))
        t.setItem(n, 1, _item(f"{W.clipped_values:,} of {W.size:,}"))
        t.setItem(n, 2, _item(f"{b.clipped_values:,} of {b.size:,}" if b else "—"))
        t.setItem(n, 3, _item(""))
        t.setItem(n + 1, 0, _item("‖ΔW‖/‖W‖  (≈ 1e-3 is typical)", False, True))
        t.setItem(n + 1, 1, _item(_num(W.ratio), bold=True))
        outside = math.isfinite(W.ratio) and not BAND[0] <= W.ratio <= BAND[1]
        t.item(n + 1, 1).setForeground(pg.mkColor(200, 110, 0) if outside else
                                       self.palette().text().color())
        self.verdict.setText(f"layer {layer.index}: ‖ΔW‖/‖W‖ = {fmt(W.ratio)}, "
                             f"{describe_ratio(W.ratio)}")
        t.setItem(n + 1, 2, _item(_num(b.ratio) if b else "—"))
        t.setItem(n + 1, 3, _item(""))
        for c in range(4):
            t.item(n + 1, c).setToolTip(describe_ratio(W.ratio))
        _fit_height(t)
        self._displayed = self._arrays(layer)

    def _fill_layers(self) -> None:
        d = self.decomposition
        rows = d.weighted()
        t = self.layers
        t.blockSignals(True)
        t.setRowCount(len(rows))
        for r, layer in enumerate(rows):
            W = layer.params["W"]
            off = {"decay": d.l2 == 0, "momentum": d.momentum == 0}
            cells = [_item(f"{layer.index} {layer.kind}", False)] + [
                _item("—" if off.get(k) else _num(W.norms[k]))
                for k in ("update", "gradient", "decay", "momentum")]
            cells += [_item(f"{layer.clipped_values:,}"), _item(_num(layer.ratio), bold=True)]
            ratio = layer.ratio
            if math.isfinite(ratio) and not BAND[0] <= ratio <= BAND[1]:
                cells[-1].setForeground(pg.mkColor(200, 110, 0))
            cells[-1].setToolTip(describe_ratio(ratio))
            for c, item in enumerate(cells):
                t.setItem(r, c, item)
        t.blockSignals(False)
        _fit_height(t)

    def _select_row(self) -> None:
        rows = [l.index for l in self.decomposition.weighted()]
        t = self.layers
        t.blockSignals(True)
        if self.layer_index in rows:
            t.selectRow(rows.index(self.layer_index))
        else:
            t.clearSelection()
        t.blockSignals(False)
        self.highlight.setRegion((self.layer_index - 0.5, self.layer_index + 0.5))

    def _row_picked(self) -> None:
        r = self.layers.currentRow()
        rows = self.decomposition.weighted() if self.decomposition else []
        if 0 <= r < len(rows):
            self.layerPicked.emit(rows[r].index)
            self.set_layer(rows[r].index)

    def _arrays(self, layer=None) -> dict:
        d = self.decomposition
        out = {"ratio": d.ratios}
        if layer is not None:
            for name, p in layer.params.items():
                out.update({f"{name}_{k}": np.array(v) for k, v in p.norms.items()})
        return out

    # ----- plot ------------------------------------------------------------------------------
    def _draw_plot(self) -> None:
        d = self.decomposition
        n = len(d.layers)
        x = np.arange(n, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = [np.where(r > 0, np.log10(r), np.nan) for r in self._ghosts]
        keep = np.isfinite(logs[-1])
        self.curve.setData(x[keep], logs[-1][keep])
        while len(self._ghost_items) < GHOSTS - 1:
            item = self.plot.plot(connect="finite")
            item.setZValue(-5)
            self._ghost_items.append(item)
        old = [g for g in logs[:-1] if len(g) == n]
        for k, item in enumerate(self._ghost_items):
            if k < len(old):
                alpha = int(40 + 90 * (k + 1) / max(len(old), 1))
                ok = np.isfinite(old[k])
                item.setData(x[ok], old[k][ok], pen=pg.mkPen(120, 120, 120, alpha, width=1))
            else:
                item.setData([], [])
        finite = np.concatenate([g[np.isfinite(g)] for g in logs] + [np.array(
            [math.log10(BAND[0]), math.log10(BAND[1])])])
        lo, hi = math.floor(finite.min()), math.ceil(finite.max())
        self.plot.setYRange(lo, hi, padding=0.05)
        self.plot.getAxis("left").setTicks(log_ticks(lo, max(hi, lo + 1)))
        self.plot.setXRange(-0.6, n - 0.4, padding=0)
        room = self.plot.getViewBox().width() / max(n, 1)
        two = room > 8 * max(len(l.kind) for l in d.layers)
        axis = self.plot.getAxis("bottom")
        axis.setTicks([[(l.index, f"{l.index}\n{l.kind}" if two else str(l.index))
                        for l in d.layers]])
        axis.setHeight(40 if two else None)

    def _hover(self, plot, x, y) -> str:
        d = self.decomposition
        if d is None or not 0 <= round(x) < len(d.layers):
            return ""
        layer = d.layers[int(round(x))]
        if "W" not in layer.params:
            return f"layer {layer.index} {layer.kind} · no weights"
        return (f"layer {layer.index} {layer.kind} · ‖ΔW‖/‖W‖ = {fmt(layer.ratio)} · "
                f"{describe_ratio(layer.ratio)}")

    def _clicked(self, plot, x, y) -> None:
        d = self.decomposition
        if d is not None and 0 <= round(x) < len(d.layers):
            self.layerPicked.emit(int(round(x)))
            self.set_layer(int(round(x)))


def _summary(d) -> str:
    parts = [f"update of step {d.step}", f"η = {fmt(d.lr)}",
             f"L2 λ = {fmt(d.l2)}" if d.l2 else "L2 off",
             f"momentum μ = {fmt(d.momentum)}" if d.momentum else "momentum off",
             f"global ‖∇loss‖ = {fmt(d.grad_norm)}"]
    if d.norm_clipped:
        parts.append(f"clipped by norm × {fmt(d.clip_factor)}")
    if d.clipped_values:
        parts.append(f"{d.clipped_values:,} values clipped")
    return " · ".join(parts)


PANELS = [("decompositionDock", "Update decomposition", DecompositionPanel)]
