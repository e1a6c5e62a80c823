"""GradientPanel: per-layer gradient magnitudes now, and their history — vanishing/exploding.

Top: for the current step, two bars per layer, ‖∂loss/∂W‖ (layers with weights) and ‖δ‖ over
the batch, on a log scale (bars are log10 values from a common floor; the axis prints powers
of ten). Bottom: ‖∂loss/∂W‖ of every weighted layer over the recorded steps (log y, one
coloured curve per layer, legend). The selected layer is highlighted in both; clicking a bar
picks that layer (``layerPicked``). Norms come from the snapshot; nothing is recomputed.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor

from . import colors
from .base import backward_note, fmt
from .peaks import HistoryPeaks
from .plots import FADED, PlotsPanel, Trace

HINT = "No gradients yet — run the backward pass (F11 steps it layer by layer, F10 a whole step)"
BAR_W = 0.36
HISTORY_TITLE = "‖∂loss/∂W‖ per layer over steps (log)"
KEYS_PER_ROW = 8           # history keys per title line (a long line widened the panel)


class GradientPanel(PlotsPanel):
    title = "Gradient magnitudes"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.bars = self.add_plot(0, "this step: "
                                  f"{colors.key_html(colors.GRAD_COLOR, '‖∂loss/∂W‖')} &nbsp;"
                                  f"{colors.key_html(colors.DELTA_COLOR, '‖δ‖ (batch)')} (log)")
        self.bars.setMenuEnabled(False)
        self.bars.setMouseEnabled(x=False, y=False)
        self.bars.disableAutoRange()
        self.highlight = Band(QColor(255, 200, 0, 60))
        self.highlight.setZValue(-10)
        self.bars.addItem(self.highlight, ignoreBounds=True)
        self.grad_bars = pg.BarGraphItem(x=[], height=[], width=BAR_W, y0=0,
                                         brush=colors.GRAD_COLOR, pen=pg.mkPen(None))
        self.delta_bars = pg.BarGraphItem(x=[], height=[], width=BAR_W, y0=0,
                                          brush=colors.DELTA_COLOR, pen=pg.mkPen(None))
        self.bars.addItem(self.grad_bars)
        self.bars.addItem(self.delta_bars)
        self.waiting = pg.TextItem("no gradients in this step yet — run the backward pass",
                                   anchor=(0.5, 0.5))
        self.bars.addItem(self.waiting, ignoreBounds=True)
        self.history = self.add_plot(1, HISTORY_TITLE, steps=True)
        self.history.disableAutoRange()                # ranges follow the data (follow)
        self.history_keys: list[tuple[int, QColor]] = []   # (layer, colour) per curve: the title
        self.curves: list[Trace | None] = []
        self.peaks = HistoryPeaks()                    # log10 ‖∂loss/∂W‖ per layer, reduced
        self._history_ticks = None
        self._history_panned = None
        self._bar_key = None
        self._selected = None
        self._arch = None
        self._labels = []
        self._ticks = None
        self.bars.getViewBox().sigResized.connect(self._fit_tick_labels)
        self.body.show_hint(HINT)
        self.apply_theme()

    # ----- drawing ---------------------------------------------------------------------------
    def _draw(self, snap) -> None:
        layers = snap.layers
        arch = tuple((l.index, l.kind) for l in layers)
        if arch != self._arch:
            self._rebuild(layers)
        grad = np.array([l.grad_norm for l in layers], dtype=float)
        delta = np.array([l.delta_norm for l in layers], dtype=float)
        g_hist = np.asarray(snap.grad_norm_history, dtype=float)
        if not np.isfinite(delta).any() and g_hist.shape[0] == 0:
            self.body.show_hint(HINT)
            self._displayed = {}
            return
        self.body.show_content()
        self._draw_bars(grad, delta)
        steps = np.asarray(snap.history_steps)
        new_rows = self.peaks.update(len(g_hist), snap.history_generation,
                                     lambda start: _log10(g_hist[start:]))
        if new_rows or self._history_panned != self.panned:
            self._history_panned = self.panned
            self._draw_history(steps)
        self._select(self.layer_index)
        note = backward_note(snap, self.layer_index) if np.isfinite(delta).any() else ""
        self._set_header(_summary(layers, grad) + (f"  ({note})" if note else ""))
        self._displayed = {"grad_norm": grad, "delta_norm": delta,
                           "grad_norm_history": g_hist, "steps": steps}

    def _draw_history(self, steps) -> None:
        """The curves hold log10 ‖∂loss/∂W‖ (the axis is labelled in powers of ten), NaN
        where there is no positive norm, reduced to the view (PlotsPanel.reduced)."""
        peaks = self.peaks
        x, reduced = self.reduced(self.history, steps, peaks)
        for i, curve in self._curve_items():
            self.mark_points(curve, peaks.n, colors.series_color(i))
            curve.setData(x, reduced[:, i] if reduced.size else np.empty(0))
        if np.isfinite(peaks.lo).any():
            lo, hi = np.nanmin(peaks.lo), np.nanmax(peaks.hi)
            finite = np.array([lo, hi])
            key = (math.floor(lo), max(math.ceil(hi), math.floor(lo) + 1))
            if key != self._history_ticks:
                self._history_ticks = key
                self.history.getAxis("left").setTicks(log_ticks(*key))
                self.history.grid.refresh()
            self.follow(self.history, steps, finite)
        else:
            self.follow(self.history, steps)

    def _draw_bars(self, grad, delta) -> None:
        logs = [np.log10(v) for v in np.concatenate([grad, delta]) if np.isfinite(v) and v > 0]
        floor = math.floor(min(logs)) if logs else -1.0        # whole decades: labelled ends
        top = math.ceil(max(logs)) if logs else 0.0
        old = self._bar_key
        if old is not None and old[2] == len(grad) and logs:
            # relabelling the axis costs ~1-4 ms: the range grows at once, but shrinks only
            # on text frames, only when two whole decades at an end are empty, and keeps one
            # (at batch 1 the norms jump by a decade from sample to sample)
            if not self.texts_due or (floor - 2 <= old[0] and old[1] <= top + 2):
                floor, top = min(floor, old[0]), max(top, old[1])
            else:
                floor, top = max(min(floor, old[0]), floor - 1), min(max(top, old[1]), top + 1)
        for item, values, shift in ((self.grad_bars, grad, -BAR_W / 2),
                                    (self.delta_bars, delta, BAR_W / 2)):
            keep = np.flatnonzero(np.isfinite(values) & (values > 0))
            item.setOpts(x=keep + shift, y0=floor, height=np.log10(values[keep]) - floor,
                         width=BAR_W)
        top = max(top, floor + 1)
        if (floor, top, len(grad)) != self._bar_key:
            self._bar_key = (floor, top, len(grad))
            self.bars.setYRange(floor, top, padding=0.08)
            self.bars.setXRange(-0.6, len(grad) - 0.4, padding=0)
            self.bars.getAxis("left").setTicks(log_ticks(int(floor), int(top)))
            self.highlight.set_height(floor - (top - floor), top + (top - floor))
            self.bars.grid.refresh()
        self.waiting.setVisible(not logs)
        if not logs:
            self.waiting.setPos((len(grad) - 1) / 2, (floor + top) / 2)
        self._grad, self._delta, self._floor = grad, delta, floor

    def _rebuild(self, layers) -> None:
        """New architecture: x-axis labels and one history curve per weighted layer."""
        self._arch = tuple((l.index, l.kind) for l in layers)
        self.peaks = HistoryPeaks()
        for curve in self.curves:
            if curve is not None:
                self.history.removeItem(curve)
        self.curves = []
        for l in layers:
            if "W" not in l.params:
                self.curves.append(None)
                continue
            curve = Trace(colors.series_color(l.index), name=f"{l.index} {l.kind}")
            self.history.addItem(curve)
            self.curves.append(curve)
        self.history_keys = [(i, colors.series_color(i)) for i, _ in self._curve_items()]
        self._labels = [(l.index, l.kind) for l in layers]
        self._fit_tick_labels()
        self.apply_theme()

    def _history_title(self) -> str:
        """The title names the curves: a coloured key per layer index (the bar chart above
        gives each index its kind), the selected layer's in bold. A legend inside the plot
        covered the first steps of every curve with its translucent box."""
        keys = [colors.key_html(c, f"<b>{i}</b>" if i == self.layer_index else str(i))
                for i, c in self.history_keys]
        rows = [" ".join(keys[k:k + KEYS_PER_ROW]) for k in range(0, len(keys), KEYS_PER_ROW)]
        return "<br>".join([HISTORY_TITLE] + rows)

    def theme_changed(self, fg) -> None:
        self.waiting.setColor(fg)
        self._selected = None                    # faded colours are mixed with the background
        self._select(self.layer_index)

    def _curve_items(self):
        return [(i, c) for i, c in enumerate(self.curves) if c is not None]

    def _fit_tick_labels(self, *args) -> None:
        """'0 Conv2D' on one line when there is room, on two lines when the kind fits, else
        the index only (hovering a bar names the layer)."""
        if not self._labels:
            return
        axis = self.bars.getAxis("bottom")
        room = (self.bars.getViewBox().width() or 600) / len(self._labels)
        kind = max(len(k) for _, k in self._labels)
        if room >= (kind + 3) * 7.5:
            ticks, height = [(i, f"{i} {k}") for i, k in self._labels], None
        elif room >= kind * 7.0:
            ticks, height = [(i, f"{i}\n{k}") for i, k in self._labels], 36
        else:
            ticks, height = [(i, str(i)) for i, _ in self._labels], None
        if ticks != self._ticks:
            self._ticks = ticks
            axis.setTicks([ticks])
            axis.setHeight(height)

    def _select(self, index: int) -> None:
        if (index, self._arch) == self._selected:
            return
        self._selected = (index, self._arch)
        self.highlight.setRegion((index - 0.5, index + 0.5))
        self.set_title(self.history, self._history_title())
        bg = colors.theme(self.palette())[0]
        for i, curve in self._curve_items():
            color = colors.series_color(i)
            if i != index:                       # faded, opaque (colors.over)
                color = colors.over(color, bg, FADED)
            curve.setPen(pg.mkPen(color))
            curve.setZValue(1 if i == index else 0)

    def set_layer(self, index: int) -> None:
        super().set_layer(index)
        self._select(self.layer_index)

    # ----- interaction -----------------------------------------------------------------------
    def _hover(self, plot, x, y) -> str:
        snap = self.last_snapshot
        if snap is None or not snap.layers:
            return ""
        if plot is self.bars:
            i = int(round(x))
            if not 0 <= i < len(snap.layers):
                return ""
            l = snap.layers[i]
            g = "no weights" if "W" not in l.params else f"‖∂loss/∂W‖ = {fmt(l.grad_norm)}"
            return f"layer {i} {l.kind} · {g} · ‖δ‖ = {fmt(l.delta_norm)} (batch)"
        hist = np.asarray(snap.grad_norm_history)
        steps = self._displayed.get("steps")
        if not hist.shape[0] or steps is None or not len(steps):
            return ""
        k = int(np.argmin(np.abs(steps - x)))
        i = min(self.layer_index, hist.shape[1] - 1)
        l = snap.layers[i]
        return (f"step {fmt(steps[k])} · layer {i} {l.kind} · "
                f"‖∂loss/∂W‖ = {fmt(hist[k, i])}")

    def _clicked(self, plot, x, y) -> None:
        snap = self.last_snapshot
        if plot is self.bars and snap is not None:
            i = int(round(x))
            if 0 <= i < len(snap.layers):
                self.layerPicked.emit(i)


class Band(pg.GraphicsObject):
    """The selected layer's column behind the bars: a filled rectangle from x0 to x1, as
    high as the plot (``set_height``). pyqtgraph's LinearRegionItem recomputes its lines'
    bounds while the view paints and so is painted twice after every new range."""

    def __init__(self, color):
        super().__init__()
        self.color = QColor(color)
        self._region, self._rect = (-0.5, 0.5), QRectF(-0.5, -1.0, 1.0, 2.0)

    def getRegion(self) -> tuple:
        return self._region

    def setRegion(self, region) -> None:
        self._region = (float(region[0]), float(region[1]))
        self._set_rect(self._rect.top(), self._rect.bottom())

    def set_height(self, bottom: float, top: float) -> None:
        self._set_rect(bottom, top)

    def _set_rect(self, bottom, top) -> None:
        x0, x1 = self._region
        rect = QRectF(x0, bottom, x1 - x0, top - bottom)
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
            self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter, *args) -> None:
        painter.fillRect(self._rect, self.color)


def _log10(norms) -> np.ndarray:
    """log10 of the positive norms, NaN elsewhere (no curve point)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, np.log10(np.where(norms > 0, norms, 1.0)), np.nan)


def _summary(layers, grad) -> str:
    """Header: how many decades ‖∂loss/∂W‖ spans across the layers this step."""
    pairs = [(l.index, g) for l, g in zip(layers, grad) if np.isfinite(g) and g > 0]
    if len(pairs) < 2:
        return "‖∂loss/∂W‖ and ‖δ‖ per layer"
    first, last = pairs[0], pairs[-1]
    logs = [np.log10(g) for _, g in pairs]
    span = max(logs) - min(logs)
    return (f"‖∂loss/∂W‖: layer {first[0]} {fmt(first[1])} … layer {last[0]} "
            f"{fmt(last[1])} · spans {span:.1f} decades across layers")


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_text(value: float) -> str:
    """0.01 … 1000 plainly, other powers of ten as 10⁻⁵; 2·10⁻⁵ style for multiples."""
    exp = math.floor(math.log10(value) + 1e-9)
    mant = round(value / 10 ** exp)
    if -2 <= exp <= 3:
        return f"{value:g}"
    return ("" if mant == 1 else f"{mant}·") + "10" + str(exp).translate(_SUPERSCRIPT)


def log_ticks(floor: int, top: int):
    """Ticks for an axis of log10 values: decades labelled, 2× and 5× as minor ticks
    (labelled too when the axis spans at most two decades)."""
    stride = max(1, math.ceil((top - floor + 1) / 7))
    decades = [(float(d), power_text(10.0 ** d) if (d - floor) % stride == 0 else "")
               for d in range(floor, top + 1)]
    minors = [(d + math.log10(m), power_text(m * 10.0 ** d))
              for d in range(floor, top) for m in (2, 5)]
    if top - floor <= 2:
        return [decades + minors]
    return [decades, [(p, "") for p, _ in minors]]

