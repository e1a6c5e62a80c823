"""Saturation panel: f′(z) of the selected layer, and per layer how much of the error the
activations let back through — the cause of vanishing gradients made visible.

Left: f′(z) of every channel / unit of the selected layer for the displayed sample, one
mosaic on a sequential map from 0 to max(1, f′max) — the same 0 … 1 scale for every
activation, so a sigmoid layer (σ′ ≤ 0.25) never gets brighter than a quarter. Right, per layer
(bars, click one to select it): the share of units dead (ReLU) or saturated (sigmoid, tanh)
and the mean f′; below, the product of the mean f′ from the output down to each layer (log):
how much the activations alone shrink δ on its way back. Rules and numbers come from
``bpviz.session.saturation``; statistics cover the batch of the present pass, or only the
displayed sample for a past snapshot from the timeline. Nothing is computed while hidden.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from bpviz.session import saturation as sat
from bpviz.session.recorder import from_timeline
from bpviz.ui.panels import colors
from bpviz.ui.panels.base import Panel, fmt, layer_header, layer_name
from bpviz.ui.panels.gradients import log_ticks
from bpviz.ui.panels.mapview import MosaicView
from bpviz.ui.panels.mosaic import as_tiles, unit_ticks

HINT = "No pre-activations yet — run the forward pass (F11 one layer, F10 a whole step)"
LOW_COLOR = QColor(214, 39, 40)         # dead / saturated units
MEAN_COLOR = QColor(23, 190, 207)       # mean f′
ATT_COLOR = QColor(148, 103, 189)       # ∏ mean f′
BAR_W = 0.36


class SaturationPanel(Panel):
    title = "Saturation"
    defer_while_hidden = True       # nothing is computed while the dock is closed

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.view = MosaicView("f′(z)")
        self.view.hovered.connect(self._set_hover)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.ci.setContentsMargins(2, 2, 2, 2)
        self.bars = self._plot(0, "")
        self.bars.setYRange(0, 1.12, padding=0)
        self.low_bars = pg.BarGraphItem(x=[], height=[], width=BAR_W, brush=LOW_COLOR, pen=None)
        self.mean_bars = pg.BarGraphItem(x=[], height=[], width=BAR_W, brush=MEAN_COLOR,
                                         pen=None)
        self.att = self._plot(1, "")
        self.att_bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=ATT_COLOR, pen=None)
        self.highlights = []
        for plot, items in ((self.bars, (self.low_bars, self.mean_bars)),
                            (self.att, (self.att_bars,))):
            region = pg.LinearRegionItem((-0.5, 0.5), movable=False,
                                         brush=pg.mkBrush(255, 200, 0, 60), pen=pg.mkPen(None))
            region.setZValue(-10)
            plot.addItem(region, ignoreBounds=True)
            self.highlights.append(region)
            for item in items:
                plot.addItem(item)
        self.att.setXLink(self.bars)
        self.glw.ci.layout.setRowStretchFactor(0, 3)
        self.glw.ci.layout.setRowStretchFactor(1, 2)
        self.rules = QLabel("")
        self.rules.setWordWrap(True)
        self.rules.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        right = QWidget()
        col = QVBoxLayout(right)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.glw, 1)
        col.addWidget(self.rules)
        content = QWidget()
        row = QHBoxLayout(content)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.view, 4)
        row.addWidget(right, 5)
        self.body.set_content(content)
        self.body.show_hint(HINT)
        self.counts: list[pg.TextItem] = []      # "3/16" over each layer's units bar
        self.stats: list = []
        self._stats_of = None                    # the snapshot self.stats belong to
        self._bar_data: dict = {}
        self.statistics_of = ""
        self._ticks = None
        self._labels: list = []
        self.bars.getViewBox().sigResized.connect(self._fit_ticks)
        self.glw.scene().sigMouseClicked.connect(self._clicked)
        self.glw.scene().sigMouseMoved.connect(self._moved)
        self.apply_theme()

    def _plot(self, row: int, title: str) -> pg.PlotItem:
        plot = self.glw.addPlot(row=row, col=0)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.showGrid(y=True, alpha=0.25)
        return plot

    # ----- the Panel contract ----------------------------------------------------------------
    def _redraw(self, texts: bool = True) -> None:
        if self.isVisible():
            super()._redraw(texts)

    def _statistics(self, snap) -> list:
        net = self.session.net
        if from_timeline(snap) or len(net.layers) != len(snap.layers):
            self.statistics_of = "the displayed sample (a past snapshot keeps one sample)"
            return sat.snapshot_saturation(snap)
        stats = sat.network_saturation(net)
        batch = max((st.batch for st in stats), default=0)
        self.statistics_of = f"the batch of {batch} sample{'s' * (batch != 1)}"
        return stats

    def _draw(self, snap) -> None:
        fresh = snap is not self._stats_of
        if fresh:                            # statistics once per snapshot, not per layer pick
            self.stats, self._stats_of = self._statistics(snap), snap
        if not any(st.units for st in self.stats):
            self.body.show_hint(HINT)
            self._displayed = {}
            return
        self.body.show_content()
        shown = self._draw_map(snap)
        if fresh or not self._bar_data:
            self._bar_data = self._draw_bars(self.stats, snap)
        for region in self.highlights:
            region.setRegion((self.layer_index - 0.5, self.layer_index + 0.5))
        shown.update(self._bar_data)
        self._displayed = shown

    def _draw_map(self, snap) -> dict:
        layer = self.current_layer(snap)
        st = self.stats[layer.index]
        note = f" · {st.count} of {st.units} units {st.rule} ({self.statistics_of})" \
            if st.rule and st.units else ""
        self._set_header(layer_header(layer) + note)
        if layer.z is None or "W" not in layer.params:
            self.view.clear(f"{layer.kind}: no activation of its own, δ passes without an f′"
                            if layer.z is not None else
                            "no z yet: the forward pass has not reached this layer")
            self.view.set_title("f′(z)")
            return {}
        f = sat.sample_derivative(layer.activation, layer.z)
        fmax = sat.max_derivative(layer.activation)
        tiles, layout, is_maps = as_tiles(f)
        prefix = f"{layer_name(layer)} · {layer.activation}′"
        what = "channel" if is_maps else "unit"

        def describe(k, r, c, v):
            where = f"{what} {k}" + (f" · row {r} · col {c}" if is_maps else "")
            return f"{prefix} · {where} · f′(z) = {fmt(v)}"
        self.view.show_tiles(tiles, layout, signed=False, mode="fixed", fixed=max(1.0, fmax),
                             cmap_kind="sequential", describe=describe,
                             labels=[f"c{k}" for k in range(layout.n)] if is_maps else None,
                             values=not is_maps, ticks=unit_ticks(layout, is_maps))
        self.view.set_title(f"f′(z) = {layer.activation}′(z) · sample #{snap.sample_index}")
        low = sat.low_mask(layer.activation, layer.z)
        state = "off" if st.rule == "dead" else "saturated"
        low_text = "" if low is None else \
            f" · {fmt(100 * float(np.mean(low)))} % of values {state}"
        self.view.set_caption(f"{layer.activation}′ ≤ {fmt(fmax)} (colours 0 … 1) · this sample: "
                              f"mean {fmt(float(np.mean(f)))}{low_text}")
        return {"fprime": f, "mosaic": self.view.mosaic, "levels": np.array(self.view.levels)}

    def _draw_bars(self, stats, snap) -> dict:
        n = len(stats)
        weighted = np.array(["W" in l.params for l in snap.layers])
        low = np.array([st.fraction if st.rule and st.units else math.nan for st in stats])
        mean = np.array([st.mean_derivative if w else math.nan
                         for st, w in zip(stats, weighted)])
        att = sat.attenuation(stats, getattr(self.session.net, "loss", None))
        att = np.where(weighted, att, math.nan)
        k = np.flatnonzero(np.isfinite(low))
        self.low_bars.setOpts(x=k - BAR_W / 2, height=low[k], width=BAR_W)
        self._count_labels([(i, low[i], f"{stats[i].count}/{stats[i].units}") for i in k])
        m = np.flatnonzero(np.isfinite(mean))
        self.mean_bars.setOpts(x=m + BAR_W / 2, height=mean[m], width=BAR_W)
        a = np.flatnonzero(np.isfinite(att) & (att > 0))
        logs = np.log10(att[a]) if a.size else np.zeros(0)
        floor = math.floor(logs.min()) if a.size else -1
        top = max(math.ceil(logs.max()) if a.size else 0, floor + 1)
        self.att_bars.setOpts(x=a, y0=floor, height=logs - floor, width=0.6)
        self.att.setYRange(floor - 0.3, top + 0.4, padding=0)
        self.att.getAxis("left").setTicks(log_ticks(floor, top))
        self.bars.setXRange(-0.6, n - 0.4, padding=0)
        self._labels = [(i, l.kind) for i, l in enumerate(snap.layers)]
        self._fit_ticks()
        acts = sorted({st.activation for st in stats if st.rule})
        quarter = " · σ′ ≤ 0.25: each sigmoid layer passes back at most ¼ of δ, saturated or " \
            "not" if "sigmoid" in acts else ""
        self.rules.setText(" · ".join(sat.rule_text(a) for a in acts)
                           + f" — over {self.statistics_of}{quarter}")
        return {"low_fraction": low, "mean_derivative": mean, "attenuation": att}

    def _fit_ticks(self, *args) -> None:
        """'0 Conv2D' when there is room, the kind under the index when it fits, else the
        index only (hovering a bar names the layer)."""
        if not self._labels:
            return
        room = (self.bars.getViewBox().width() or 400) / len(self._labels)
        kind = max(len(k) for _, k in self._labels)
        if room >= (kind + 3) * 7.5:
            ticks, height = [(i, f"{i} {k}") for i, k in self._labels], None
        elif room >= kind * 7.0:
            ticks, height = [(i, f"{i}\n{k}") for i, k in self._labels], 36
        else:
            ticks, height = [(i, str(i)) for i, _ in self._labels], None
        if (ticks, height) != self._ticks:
            self._ticks = (ticks, height)
            for plot in (self.bars, self.att):
                plot.getAxis("bottom").setTicks([ticks])
                plot.getAxis("bottom").setHeight(height)

    def _count_labels(self, entries) -> None:
        _, fg, _ = colors.theme(self.palette())
        while len(self.counts) < len(entries):
            item = pg.TextItem("", color=fg, anchor=(0.5, 1.0))
            font = item.textItem.font()
            font.setPointSizeF(max(6.5, font.pointSizeF() * 0.8))
            item.setFont(font)
            self.bars.addItem(item, ignoreBounds=True)
            self.counts.append(item)
        for item, (i, value, text) in zip(self.counts, entries):
            if item.textItem.toPlainText() != text:
                item.setText(text)
            item.setPos(i - BAR_W / 2, value)
            item.setVisible(True)
        for item in self.counts[len(entries):]:
            item.setVisible(False)

    # ----- interaction, theme ----------------------------------------------------------------
    def _layer_at(self, pos):
        for plot in (self.bars, self.att):
            vb = plot.getViewBox()
            if vb.sceneBoundingRect().contains(pos):
                i = int(round(vb.mapSceneToView(pos).x()))
                return i if 0 <= i < len(self.stats) else None
        return None

    def _clicked(self, event) -> None:
        i = self._layer_at(event.scenePos())
        if i is not None:
            self.layerPicked.emit(i)

    def _moved(self, pos) -> None:
        i = self._layer_at(pos)
        if i is None or not self._displayed:
            return
        st, d = self.stats[i], self._displayed
        parts = [f"layer {i} {st.kind} ({st.activation})"]
        if st.rule and st.units:
            parts.append(f"{st.count} of {st.units} units {st.rule}")
        if np.isfinite(d["mean_derivative"][i]):
            parts.append(f"mean f′ = {fmt(d['mean_derivative'][i])}")
        if np.isfinite(d["attenuation"][i]):
            parts.append(f"∏ mean f′ from the output = {fmt(d['attenuation'][i])}")
        self._set_hover(" · ".join(parts))

    def set_layer(self, index: int) -> None:
        self.layer_index = int(index)
        if self.last_snapshot is not None and self.isVisible():
            super().show_snapshot(self.last_snapshot)

    def changeEvent(self, event) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_theme()
        super().changeEvent(event)

    def apply_theme(self) -> None:
        bg, fg, _ = colors.theme(self.palette())
        self.glw.setBackground(bg)
        for plot in (self.bars, self.att):
            colors.style_plot(plot, fg)
        self.bars.setTitle(f"{colors.key_html(LOW_COLOR, 'units dead/saturated')} &nbsp;"
                           f"{colors.key_html(MEAN_COLOR, 'mean f′(z)')}", color=fg, size="9pt")
        self.att.setTitle(f"{colors.key_html(ATT_COLOR, '∏ mean f′')}, output → layer (log)",
                          color=fg, size="9pt")
        for item in self.counts:
            item.setColor(fg)


PANELS = [("saturationDock", "Saturation", SaturationPanel)]
