"""MosaicView: one titled image view that draws a stack of tiles as a single mosaic.

A view holds, created once: a title and a caption (QLabels, so they follow the application's
font and palette), one pyqtgraph ``PlotItem`` with one ``MosaicImage`` (the mosaic coloured
through the colour map's 256-entry table, NaN transparent) and a ``ColorBar``. ``show_tiles``
only pushes data; tile labels (``TextItem``s) and axis ticks are rebuilt only when the
layout changes. Hovering the image reports "… · row r · col c · value" through ``hovered``
(the panel formats the text with a ``describe(k, r, c, value)`` callback).

Cost while training (frames of every panel at ~30 per second): axes and label texts are
cached as pixmaps, the colour bar draws prepared static texts, ``nice=True`` limits are
sticky (colours.sticky_limit) so the colour bar keeps its labels across steps, and
``text_held`` lets a panel skip caption/title text (which needs text layout) on frames that
are not due for it. On such a held frame a sticky limit also holds over a wider band (data
down to a quarter of it); data above a limit always raise it at once.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPen, QStaticText
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsRectItem, QLabel, QSizePolicy,
                               QStackedWidget, QToolTip, QVBoxLayout, QWidget)

from . import colors
from .base import steady_height
from .labels import TileLabels
from .mosaic import MosaicLayout, normalise_tiles, tile

LABEL_MIN_PX = (26, 16)          # a tile must be this large on screen to carry its label
VALUE_LABEL_MAX = 16             # print values inside cells of vectors up to this length
VALUE_MIN_PX = (34, 16)          # a cell must be this large on screen to carry its value
BAR_MAX_HEIGHT = 320
CACHED = QGraphicsItem.CacheMode.DeviceCoordinateCache


def cache_axes(plot) -> None:
    """Keep each axis of ``plot`` as a pixmap: repainting the view around it (a new image,
    a new curve) then blits it instead of replaying its text; a change of ticks, range, pen
    or size re-renders it (pyqtgraph calls update() for each)."""
    for name in ("left", "bottom", "right", "top"):
        plot.getAxis(name).setCacheMode(CACHED)


class MosaicImage(pg.GraphicsObject):
    """The mosaic as one QImage, coloured here through a 256-entry colour table
    (colors.to_argb; NaN transparent) and drawn pixel for pixel, unsmoothed, in mosaic
    coordinates (x = column, y = row). pyqtgraph's ImageItem does the same through a general
    pipeline that costs ~5× more per new image, which matters at 30 frames a second."""

    def __init__(self):
        super().__init__()
        self.image: np.ndarray | None = None       # the float mosaic drawn
        self.levels: tuple[float, float] | None = None
        self.qimage: QImage | None = None
        self._pixels = None                        # the ARGB32 buffer behind qimage

    def set_image(self, mosaic: np.ndarray, lo: float, hi: float, kind: str) -> None:
        pixels = colors.to_argb(mosaic, lo, hi, kind)
        h, w = pixels.shape
        if self._pixels is None or self._pixels.shape != pixels.shape:
            self.prepareGeometryChange()
        self._pixels, self.image, self.levels = pixels, mosaic, (lo, hi)
        self.qimage = QImage(pixels.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
        self.update()

    def clear(self) -> None:
        if self._pixels is not None:
            self.prepareGeometryChange()
        self._pixels = self.image = self.levels = self.qimage = None
        self.update()

    def width(self) -> int:
        return 0 if self._pixels is None else self._pixels.shape[1]

    def height(self) -> int:
        return 0 if self._pixels is None else self._pixels.shape[0]

    def getLevels(self):
        return self.levels

    def pixel(self, row: int, col: int) -> int:
        """The ARGB32 colour drawn for mosaic pixel (row, col) (tests)."""
        return int(self.qimage.pixel(col, row))

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.width(), self.height())

    def paint(self, painter, *args) -> None:
        if self.qimage is not None:
            painter.drawImage(self.boundingRect(), self.qimage)


class ColorBar(pg.GraphicsWidget):
    """A vertical colour bar for [lo, hi] with a few round tick values beside it.

    Drawn by hand: the gradient is one cached QImage of the colour map (the very table the
    mosaic is coloured with) and every tick label a ``QStaticText`` kept per string, so a
    new pair of limits costs a few blits instead of pyqtgraph's axis layout (~3 ms a bar,
    which at batch 1 is paid on almost every frame). Fixed width: new labels never change
    the layout."""

    BAR_W, GAP, TICK = 12, 3, 4
    MAX_TICKS = 7                        # labelled ticks at most (0 and the round steps)

    def __init__(self, kind: str = "diverging"):
        super().__init__()
        self.kind = kind
        self.lo, self.hi = 0.0, 1.0
        self._gradient = None
        self._texts: dict[str, QStaticText] = {}
        self._ticks: list[tuple[float, str]] = []
        self.text_color = QColor(0, 0, 0)
        self.font_ = QFont()
        self.font_.setPointSizeF(max(6.5, self.font_.pointSizeF() * 0.8))
        metrics = QFontMetricsF(self.font_)
        self._text_h = metrics.height()
        width = self.BAR_W + self.TICK + self.GAP + metrics.horizontalAdvance("−8.88e−88")
        self.setMinimumWidth(width)
        self.setMaximumWidth(width)
        self.setMinimumHeight(60)
        self.setMaximumHeight(BAR_MAX_HEIGHT)
        self.setCacheMode(CACHED)
        self.set_colormap(kind)

    # the names tests and callers know from pyqtgraph's ColorBarItem
    def colorMap(self) -> pg.ColorMap:
        return colors.cmap(self.kind)

    def levels(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def set_colormap(self, kind: str) -> None:
        self.kind = kind
        table = colors.lut32(kind)[:colors.LUT_SIZE][::-1].copy()     # top = hi
        self._gradient = (table, QImage(table.data, 1, table.size, 4,
                                        QImage.Format.Format_ARGB32_Premultiplied))
        self.update()

    def set_levels(self, lo: float, hi: float) -> None:
        if (lo, hi) != (self.lo, self.hi):
            self.lo, self.hi = float(lo), float(hi)
            self._ticks = bar_ticks(self.lo, self.hi, self.MAX_TICKS)
            self.update()

    def set_text_color(self, color: QColor) -> None:
        self.text_color = QColor(color)
        self.update()

    def _bar_rect(self) -> QRectF:
        r = self.rect()
        pad = self._text_h / 2
        return QRectF(r.left(), r.top() + pad, self.BAR_W, max(r.height() - 2 * pad, 1.0))

    def paint(self, painter, *args) -> None:
        bar = self._bar_rect()
        painter.drawImage(bar, self._gradient[1])
        pen = QPen(self.text_color)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(bar)
        painter.setFont(self.font_)
        span = self.hi - self.lo
        x = bar.right()
        for value, text in self._ticks:
            y = bar.bottom() - (value - self.lo) / span * bar.height() if span > 0 else \
                bar.center().y()
            painter.drawLine(QPointF(x, y), QPointF(x + self.TICK, y))
            static = self._texts.get(text)
            if static is None:
                if len(self._texts) > 256:
                    self._texts.clear()
                static = self._texts[text] = QStaticText(text)
                static.prepare(painter.transform(), self.font_)
            painter.drawStaticText(QPointF(x + self.TICK + self.GAP, y - self._text_h / 2),
                                   static)


def bar_ticks(lo: float, hi: float, most: int = 7) -> list[tuple[float, str]]:
    """(value, label) for round values in [lo, hi]: multiples of 1, 2, 2.5 or 5 × 10^k,
    at most ``most`` of them (0 among them when it is inside); labels with 3 significant
    digits at most and a real minus sign."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [(lo, _tick_text(lo))] if math.isfinite(lo) else []
    exp = math.floor(math.log10(span / most))
    step = None
    for e in (exp, exp + 1, exp + 2):
        for m in (1.0, 2.0, 2.5, 5.0):
            candidate = m * 10.0 ** e
            if math.floor(hi / candidate + 1e-9) - math.ceil(lo / candidate - 1e-9) + 1 <= most:
                step = candidate
                break
        if step is not None:
            break
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    return [(k * step, _tick_text(k * step)) for k in range(first, last + 1)]


def _tick_text(v: float) -> str:
    text = f"{float(f'{v:.12g}'):.3g}"
    return "0" if text in ("0", "-0") else text.replace("-", "−")


class MosaicView(QWidget):
    hovered = Signal(str)
    clicked = Signal(int, int, int)      # tile, row, col of a left click on the image

    def __init__(self, title: str = "", parent=None, *, lock_aspect: bool = True,
                 colorbar: bool = True):
        super().__init__(parent)
        self.title = QLabel(title)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        steady_height(self.caption)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setWordWrap(True)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.ci.setContentsMargins(2, 2, 2, 2)
        self.plot = self.glw.addPlot(row=0, col=0)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        cache_axes(self.plot)
        for name in ("left", "bottom"):
            self.plot.hideAxis(name)
        self.vb = self.plot.getViewBox()
        self.vb.invertY(True)
        self.vb.setAspectLocked(lock_aspect)
        self.vb.disableAutoRange()
        self.mat = QGraphicsRectItem(0, 0, 0, 0)       # shows through the NaN gaps
        self.mat.setBrush(colors.MAT)
        frame = QPen(colors.MAT)
        frame.setCosmetic(True)
        self.mat.setPen(frame)
        self.mat.setZValue(-1)
        self.plot.addItem(self.mat, ignoreBounds=True)
        self.image = MosaicImage()
        self.plot.addItem(self.image)
        self.bar = None
        if colorbar:
            self.bar = ColorBar("diverging")
            self.glw.addItem(self.bar, row=0, col=1)
            self.glw.ci.layout.setAlignment(self.bar, Qt.AlignmentFlag.AlignVCenter)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.title)
        self.placeholder = QLabel("")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.glw)
        self.stack.addWidget(self.placeholder)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.caption)
        self.layout_: MosaicLayout | None = None
        self.tiles: np.ndarray | None = None
        self.mosaic: np.ndarray | None = None
        self.levels: tuple[float, float] | None = None
        self.cmap_kind = "diverging"
        self.describe = None
        self._key = self._limit_source = None
        self._sticky = self._sticky_key = None   # the sticky "nice" limit and what it is for
        self.text_held = False           # set by the panel: skip title/caption text this frame
        self.labels = TileLabels(self._label_font())    # tile names, one item for all
        self.labels.setZValue(1)
        self.plot.addItem(self.labels, ignoreBounds=True)
        self._values: list[pg.TextItem] = []
        self._ticks_key = None
        self.hover_text = ""
        self.glw.scene().sigMouseMoved.connect(self._mouse_moved)
        self.glw.scene().sigMouseClicked.connect(self._mouse_clicked)
        self.vb.sigResized.connect(self._label_visibility)
        self.vb.sigRangeChanged.connect(self._label_visibility)
        self._apply_theme()

    # ----- drawing ---------------------------------------------------------------------------
    def show_tiles(self, tiles, layout: MosaicLayout, *, signed: bool, mode: str = "per-layer",
                   fixed: float = 1.0, cmap_kind: str | None = None, describe=None,
                   labels=None, values: bool = False, ticks=None,
                   limit_source=None, nice: bool = False, limit_key=None) -> None:
        """Draw ``tiles`` (n, h, w) placed by ``layout``; limits follow ``mode`` and come
        from ``limit_source`` when given (e.g. the whole array when only part is shown).
        ``nice``: a "per-layer" limit is rounded up to a nice value and kept while the data
        stay within [½, 1] × of it (colors.sticky_limit) — for as long as the drawing is of
        the same thing (same layout, mode, … and ``limit_key``, e.g. the layer index)."""
        tiles = np.asarray(tiles)
        key = (layout, signed, mode, fixed, cmap_kind, labels, values, ticks)
        same = (key == self._key and self.tiles is not None and self.tiles.shape == tiles.shape
                and (limit_source is None) == (self._limit_source is None)
                and (limit_source is None or np.array_equal(limit_source, self._limit_source))
                and np.array_equal(tiles, self.tiles))
        self.tiles, self.describe, self._key = tiles, describe, key
        self._limit_source = limit_source
        if same:
            return                                   # nothing changed: no new draw
        shown = normalise_tiles(tiles, signed) if mode == "per-map" else tiles
        lo, hi = colors.limits(tiles if limit_source is None else limit_source, signed, mode,
                               fixed)
        if nice and mode == "per-layer":
            what = (key, limit_key)
            band = colors.HELD_BAND if self.text_held else colors.STICKY_BAND
            hi = colors.sticky_limit(self._sticky if what == self._sticky_key else None, hi,
                                     band)
            self._sticky, self._sticky_key = hi, what
            lo = -hi if signed else 0.0
        mosaic = colors.for_display(tile(shown, layout), lo, hi)
        kind = cmap_kind or ("diverging" if signed else "sequential")
        if self.bar is not None and kind != self.cmap_kind:
            self.bar.set_colormap(kind)
        self.cmap_kind = kind
        self.image.set_image(mosaic, lo, hi, kind)
        if self.bar is not None:
            self.bar.set_levels(lo, hi)
        self.mosaic = mosaic
        if self.stack.currentIndex() != 0:
            self.stack.setCurrentIndex(0)
        self.levels = (float(lo), float(hi))
        if layout != self.layout_:
            self.layout_ = layout
            self._rebuild_labels(labels, values)
            self.mat.setRect(QRectF(0, 0, mosaic.shape[1], mosaic.shape[0]))
            self.vb.setRange(QRectF(0, 0, mosaic.shape[1], mosaic.shape[0]), padding=0.02)
        if ticks != self._ticks_key:
            self._set_ticks(ticks)
        if self._values:
            for item, v in zip(self._values, tiles[:, 0, 0]):
                item.setText(_short(v))

    def clear(self, message: str = "") -> None:
        """Nothing to draw: the view shows ``message`` in its place."""
        if self.mosaic is not None or self.layout_ is not None or self._ticks_key is not None:
            self._key = self._sticky = self._sticky_key = None
            self.image.clear()
            self.tiles = self.mosaic = self.levels = None
            self.layout_ = None
            self.mat.setRect(QRectF())
            self._rebuild_labels(None, False)
            self._set_ticks(None)
        if self.placeholder.text() != message:
            self.placeholder.setText(message)
        self.stack.setCurrentIndex(1)
        if self.caption.text():
            self.caption.setText("")

    def set_title(self, text: str) -> None:
        if not self.text_held and self.title.text() != text:
            self.title.setText(text)

    def set_caption(self, text: str) -> None:
        if not self.text_held and self.caption.text() != text:
            self.caption.setText(text)

    # ----- labels ----------------------------------------------------------------------------
    def _label_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.75))
        return font

    def _rebuild_labels(self, labels, values: bool) -> None:
        for item in self._values:
            self.plot.removeItem(item)
        self._values = []
        lay = self.layout_
        entries = []
        for k, text in enumerate((labels or []) if lay is not None else []):
            y, x = lay.origin(k)
            entries.append((x, y, text))
        extent = QRectF(0, 0, lay.shape[1], lay.shape[0]) if lay is not None else QRectF()
        self.labels.set_labels(entries, extent)
        if lay is None:
            return
        font = self._label_font()
        if values and lay.h == 1 and lay.n <= VALUE_LABEL_MAX:
            for k in range(lay.n):
                y, x = lay.origin(k)
                item = pg.TextItem("", color=(0, 0, 0), fill=pg.mkBrush(255, 255, 255, 170),
                                   anchor=(0.5, 0.5))
                item.setFont(font)
                item.setPos(x + lay.w / 2, y + 0.5)
                self.plot.addItem(item, ignoreBounds=True)
                self._values.append(item)
        self._label_visibility()

    def _label_visibility(self, *args) -> None:
        lay = self.layout_
        if lay is None or not (self.labels.items or self._values):
            return
        px = self.vb.viewPixelSize() if self.vb.width() > 0 else (1.0, 1.0)
        w_px, h_px = lay.w / max(px[0], 1e-9), lay.h / max(px[1], 1e-9)
        show = w_px >= LABEL_MIN_PX[0] and h_px >= LABEL_MIN_PX[1]
        self.labels.setVisible(show)
        show_values = w_px >= VALUE_MIN_PX[0] and h_px >= VALUE_MIN_PX[1]
        for item in self._values:
            item.setVisible(show_values)

    def set_aspect_locked(self, locked: bool) -> None:
        if self.vb.state["aspectLocked"] is not False and not locked:
            self.vb.setAspectLocked(False)
        elif locked and self.vb.state["aspectLocked"] is False:
            self.vb.setAspectLocked(True)

    def _set_ticks(self, ticks) -> None:
        """ticks: {"left": [(pos, text)], "top": [...], "bottom": [...],
        "left_label": "filter", ...} or None (no axes)."""
        self._ticks_key = ticks
        for name in ("left", "top", "bottom"):
            entries = (ticks or {}).get(name)
            if entries:
                self.plot.showAxis(name)
                axis = self.plot.getAxis(name)
                axis.setTicks([list(entries)])
                axis.setStyle(tickLength=0)
                axis.setLabel((ticks or {}).get(f"{name}_label") or None)
            else:
                self.plot.hideAxis(name)
        self._apply_theme()

    # ----- hover -----------------------------------------------------------------------------
    def _mouse_moved(self, scene_pos) -> None:
        if self.mosaic is None or not self.vb.sceneBoundingRect().contains(scene_pos):
            return
        p = self.vb.mapSceneToView(scene_pos)
        text = self.hover_at(p.x(), p.y())
        if text:
            view_pos = self.glw.mapFromScene(scene_pos)
            QToolTip.showText(self.glw.mapToGlobal(view_pos), text, self.glw)

    def hover_at(self, x: float, y: float) -> str:
        """Read-out for mosaic coordinates (x = column, y = row); '' over a gap."""
        if self.layout_ is None or self.tiles is None:
            return ""
        hit = self.layout_.locate(y, x)
        if hit is None:
            return ""
        k, r, c = hit
        value = float(self.tiles[k, r, c])
        text = self.describe(k, r, c, value) if self.describe else f"{value:.4g}"
        self.hover_text = text
        self.hovered.emit(text)
        return text

    def _mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.mosaic is None:
            return
        scene_pos = event.scenePos()
        if self.vb.sceneBoundingRect().contains(scene_pos):
            p = self.vb.mapSceneToView(scene_pos)
            self.click_at(p.x(), p.y())

    def click_at(self, x: float, y: float):
        """Emit ``clicked`` for mosaic coordinates (x = column, y = row); returns
        (tile, row, col) or None over a gap."""
        if self.layout_ is None or self.tiles is None:
            return None
        hit = self.layout_.locate(y, x)
        if hit is not None:
            self.clicked.emit(*hit)
        return hit

    def scene_pos_of(self, y: float, x: float) -> QPointF:
        """Scene position of mosaic pixel centre (y, x) (for tests and tours)."""
        return self.vb.mapViewToScene(QPointF(x + 0.5, y + 0.5))

    # ----- theme -----------------------------------------------------------------------------
    def changeEvent(self, event) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_theme()
        super().changeEvent(event)

    def _apply_theme(self) -> None:
        bg, fg, _ = colors.theme(self.palette())
        self.glw.setBackground(bg)
        for name in ("left", "bottom", "top"):          # index labels only, no axis lines
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(None))
            axis.setTextPen(pg.mkPen(fg))
        if self.bar is not None:
            self.bar.set_text_color(fg)


def _short(v: float) -> str:
    return f"{v:.3g}" if np.isfinite(v) else str(v)
