"""PlotsPanel: the shared frame of the two plot panels (gradient magnitudes, loss).

One ``GraphicsLayoutWidget`` holding PlotItems, styled from the application palette; hover over
any plot is turned into a read-out by the subclass's ``_hover(plot, x, y)``. Titles double as
legends (coloured keys; a legend inside a plot hides the curves under its box) and never force the panel wider than its dock; step axes tick whole
steps only.

History plots do not auto-range (that relabels both axes on every training step and paints
the plot twice: once with the new data, once more when the range catches up): ``follow``
sets the range itself, changing it only when the data leave it (or fill less than half of
it): ends rounded out to a multiple of a "nice" tenth of the span — until the user pans or
zooms the plot. Axes are cached as pixmaps (mapview.cache_axes).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen

from . import colors
from .base import Panel
from .mapview import CACHED, cache_axes
from .peaks import peak_reduce


SYMBOLS_UP_TO = 30
FADED = 140                # alpha of the curves that are not emphasised (colors.over)
GRID_ALPHA = 64
AXIS_WIDTH = 46            # px of every left axis (fits "−0.0025", "10⁻¹²")


class Trace(pg.GraphicsObject):
    """One history curve: a 1-px cosmetic line through the finite points (NaN leaves a gap),
    with dots on short histories (a single step draws no line).

    pyqtgraph's PlotDataItem re-derives bounds, clipping and downsampling on every new
    array and at paint time (~0.7 ms a curve and frame, ×8 curves); the panels already
    hand over data reduced to the view (``PlotsPanel.reduced``), so this item only builds
    the path. 1 px because wider pens are stroked segment by segment (+1 to 2.5 ms a curve,
    offscreen): emphasis is by colour and opacity. ``opts``, ``name`` and ``getData`` are
    what a LegendItem and the tests read."""

    DOT = 5.0

    def __init__(self, pen=None, name: str | None = None):
        super().__init__()
        self.opts = {"pen": pg.mkPen(pen), "name": name, "symbol": None, "antialias": False,
                     "fillLevel": None}
        self.xData = self.yData = np.empty(0)
        self._path = QPainterPath()
        self._rect = QRectF()
        self._dots = None                   # (QColor, points) on short histories

    def name(self):
        return self.opts["name"]

    def setPen(self, pen) -> None:
        self.opts["pen"] = pg.mkPen(pen)
        self.update()

    def getData(self):
        return self.xData, self.yData

    def setData(self, x, y) -> None:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        self.xData, self.yData = x, y
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            fx, fy = x[ok], y[ok]
            x0, x1, y0, y1 = fx.min(), fx.max(), fy.min(), fy.max()
            pad_x, pad_y = 0.01 * (x1 - x0) or 0.5, 0.01 * (y1 - y0) or 0.5
            rect = QRectF(x0 - pad_x, y0 - pad_y, x1 - x0 + 2 * pad_x, y1 - y0 + 2 * pad_y)
            path = pg.arrayToQPath(x, y, connect="finite") if len(x) > 1 else QPainterPath()
        else:
            rect, path = QRectF(), QPainterPath()
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
        self._path = path
        if self._dots is not None:
            self._dots = (self._dots[0], [QPointF(a, b) for a, b in zip(x[ok], y[ok])])
        self.update()

    def set_dots(self, color) -> None:
        """Dots at every point in ``color``, or none (None)."""
        if color is None:
            if self._dots is not None:
                self._dots = None
                self.update()
            return
        ok = np.isfinite(self.xData) & np.isfinite(self.yData)
        self._dots = (pg.mkColor(color),
                      [QPointF(a, b) for a, b in zip(self.xData[ok], self.yData[ok])])
        self.update()

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        r = self._rect
        if r.isNull():
            return (None, None)
        return (r.left(), r.right()) if ax == 0 else (r.top(), r.bottom())

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter, *args) -> None:
        painter.setPen(self.opts["pen"])
        painter.drawPath(self._path)
        if self._dots is not None and self._dots[1]:
            color, points = self._dots
            t = painter.transform()
            painter.resetTransform()
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            r = self.DOT / 2
            for point in points:
                painter.drawEllipse(t.map(point), r, r)


class GridLines(pg.GraphicsObject):
    """Horizontal lines across a plot at its left axis's major tick values, under the
    curves. (pyqtgraph's own grid is drawn by the axis, whose cached pixmap then covers the
    whole plot and is blended over it on every repaint: ~0.4 ms a plot and frame.)"""

    def __init__(self, plot: pg.PlotItem):
        super().__init__()
        self.plot, self.ys, self._rect = plot, [], QRectF()
        self._lines, self._lines_rect = [], QRectF()
        self.pen = QPen(QColor(128, 128, 128))
        self.pen.setCosmetic(True)
        self.setZValue(-100)
        plot.addItem(self, ignoreBounds=True)
        vb = plot.getViewBox()
        vb.sigYRangeChanged.connect(self.refresh)
        vb.sigXRangeChanged.connect(self.refresh)
        vb.sigResized.connect(self.refresh)

    def set_color(self, color, background) -> None:
        self.pen.setColor(colors.over(color, background, GRID_ALPHA))
        self.update()

    def refresh(self, *args) -> None:
        """Follow the axis (after a range change or new explicit ticks)."""
        vb, axis = self.plot.getViewBox(), self.plot.getAxis("left")
        (x0, x1), (y0, y1) = vb.viewRange()
        if axis._tickLevels is not None:                 # explicit ticks (setTicks)
            ys = [v for v, _ in axis._tickLevels[0]] if axis._tickLevels else []
        else:
            levels = axis.tickValues(y0, y1, max(vb.height(), 1.0))
            ys = list(levels[0][1]) if levels else []
        rect = QRectF(x0, min(y0, y1), x1 - x0, abs(y1 - y0))
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
        if ys != self.ys or rect != self._lines_rect:
            self.ys, self._lines_rect = ys, rect
            self._lines = [QLineF(rect.left(), y, rect.right(), y) for y in ys
                           if rect.top() <= y <= rect.bottom()]
            self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter, *args) -> None:
        painter.setPen(self.pen)
        painter.drawLines(self._lines)          # one call: a log axis may have ~60 lines


class StepAxis(pg.AxisItem):
    """A bottom axis for step numbers: no tick spacing below 1."""

    def tickSpacing(self, minVal, maxVal, size):
        levels = [(sp, off) for sp, off in super().tickSpacing(minVal, maxVal, size) if sp >= 1]
        return levels or [(1.0, 0.0)]


class PlotsPanel(Panel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.ci.setContentsMargins(4, 4, 4, 4)
        self.plots: list[pg.PlotItem] = []
        self._titles: dict[int, str] = {}
        self._ranges: dict[int, tuple] = {}      # per plot: the range ``follow`` last set
        self._manual: set[int] = set()           # plots the user panned or zoomed
        self.panned = 0                          # counts the user's pans and zooms
        self.body.set_content(self.glw)
        self.glw.scene().sigMouseMoved.connect(self._mouse_moved)
        self.glw.scene().sigMouseClicked.connect(self._mouse_clicked)

    def add_plot(self, row: int, title: str, steps: bool = False) -> pg.PlotItem:
        axes = {"bottom": StepAxis("bottom")} if steps else None
        if steps:
            axes["bottom"].enableAutoSIPrefix(False)
        plot = self.glw.addPlot(row=row, col=0, axisItems=axes)
        plot.hideButtons()
        plot.grid = GridLines(plot)
        plot.getAxis("left").setWidth(AXIS_WIDTH)     # new tick labels: no relayout
        cache_axes(plot)
        plot.getViewBox().sigRangeChangedManually.connect(
            lambda *_a, key=id(plot): self._panned(key))
        if steps:
            plot.setLabel("bottom", "step")
        self.plots.append(plot)
        self._titles[id(plot)] = title
        return plot

    def set_title(self, plot: pg.PlotItem, html: str) -> None:
        """Set a title (HTML allowed) in the theme's text colour; a long title is cut rather
        than making the panel wider than its dock."""
        self._titles[id(plot)] = html
        _, fg, _ = colors.theme(self.palette())
        plot.setTitle(html, color=fg)
        plot.titleLabel.setMinimumWidth(0)
        plot.titleLabel.item.setCacheMode(CACHED)

    def _panned(self, key) -> None:
        """The user panned or zoomed a plot: it stops following, and the curves are reduced
        again for the new range."""
        self._manual.add(key)
        self.panned += 1
        self._redraw()

    def reduced(self, plot: pg.PlotItem, steps, peaks):
        """``steps`` and the columns of ``peaks`` (a peaks.HistoryPeaks) reduced for
        ``plot`` at ~1 point per pixel: the whole history while the plot follows it (from
        the new rows only), the range the user chose once it was panned or zoomed."""
        vb = plot.getViewBox()
        bins = max(int(vb.width()) // 2, 50)
        if id(plot) in self._manual:
            return peak_reduce(steps, peaks.values, vb.viewRange()[0], bins)
        return peaks.reduced(steps, bins)

    def follow(self, plot: pg.PlotItem, steps, values=None, y_range=None) -> None:
        """Show ``steps`` (x, increasing) and ``values`` (y: only their smallest and largest
        finite value count; or an explicit ``y_range``) in ``plot``; the range moves only
        when the data leave it (see the module docstring)."""
        key = id(plot)
        if key in self._manual:
            return
        old = self._ranges.get(key)
        x = step_range(steps[[0, -1]] if len(steps) else steps)     # steps increase
        if y_range is None and values is not None:
            y_range = value_range(values, None if old is None else old[1])
        new = (x, y_range)
        if new == old or new == (None, None):
            return
        self._ranges[key] = new
        plot.getViewBox().setRange(xRange=x, yRange=y_range, padding=0.02,
                                   disableAutoRange=True)

    @staticmethod
    def mark_points(curve: Trace, rows: int, color) -> None:
        """Dots on short histories of ``rows`` steps (a single step draws no line), none
        on long ones."""
        curve.set_dots(color if rows <= SYMBOLS_UP_TO else None)

    def _mouse_moved(self, pos) -> None:
        for plot in self.plots:
            vb = plot.getViewBox()
            if vb.sceneBoundingRect().contains(pos):
                p = vb.mapSceneToView(pos)
                self._set_hover(self._hover(plot, p.x(), p.y()))
                return

    def _mouse_clicked(self, event) -> None:
        for plot in self.plots:
            vb = plot.getViewBox()
            if vb.sceneBoundingRect().contains(event.scenePos()):
                p = vb.mapSceneToView(event.scenePos())
                self._clicked(plot, p.x(), p.y())
                return

    def _hover(self, plot, x: float, y: float) -> str:
        return ""

    def _clicked(self, plot, x: float, y: float) -> None:
        pass

    def changeEvent(self, event) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_theme()
        super().changeEvent(event)

    def apply_theme(self) -> None:
        bg, fg, _ = colors.theme(self.palette())
        self.glw.setBackground(bg)
        for plot in self.plots:
            colors.style_plot(plot, fg)
            plot.grid.set_color(fg, bg)
            self.set_title(plot, self._titles.get(id(plot), ""))
        self.theme_changed(fg)

    def theme_changed(self, fg) -> None:
        """Hook for text that embeds colours (HTML titles)."""


def step_range(steps):
    """(first, last) steps rounded out to a multiple of a "nice" quarter of the span, or
    None: the range moves ahead in jumps of about a quarter (each jump relabels the step
    axes, ~4 ms an axis), so while training it changes every span/4 steps."""
    s = np.asarray(steps, dtype=float)
    if s.size == 0:
        return None
    first, last = float(np.nanmin(s)), float(np.nanmax(s))
    if not (math.isfinite(first) and math.isfinite(last)):
        return None
    unit = max(1.0, colors.nice_ceil(max(last - first, 1.0) / 4))
    lo, hi = math.floor(first / unit) * unit, math.ceil(last / unit) * unit
    return (lo, hi if hi > lo else lo + unit)


def value_range(values, old=None):
    """(lo, hi) around the finite ``values``, rounded out to a multiple of a "nice" tenth of
    their span; ``old`` (the previous range) is kept while it holds the values and they fill
    at least half of it. None when there is no finite value."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return old
    bottom, top = float(v.min()), float(v.max())
    if old is not None and old[0] <= bottom and top <= old[1] and \
            top - bottom >= 0.5 * (old[1] - old[0]):
        return old
    span = top - bottom
    unit = colors.nice_ceil(span / 10 if span > 0 else max(abs(top), 1e-12) / 10)
    lo, hi = math.floor(bottom / unit) * unit, math.ceil(top / unit) * unit
    return (lo, hi if hi > lo else lo + unit)
