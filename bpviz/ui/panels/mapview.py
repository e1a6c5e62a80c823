"""MosaicView: one titled image view that draws a stack of tiles as a single mosaic.

A view holds, created once: a title and a caption (QLabels, so they follow the application's
font and palette), one pyqtgraph ``PlotItem`` with one ``ImageItem``, and a non-interactive
``ColorBarItem``. ``show_tiles`` only pushes data (``setImage`` with explicit float32 levels);
tile labels (``TextItem``s) and axis ticks are rebuilt only when the layout changes.
Hovering the image reports "… · row r · col c · value" through ``hovered`` (the panel formats
the text with a ``describe(k, r, c, value)`` callback).

Cost while training: axes and tile labels are cached as pixmaps (an axis is re-rendered only
when its ticks change), ``nice=True`` limits are sticky (colours.sticky_limit) so the colour
bar keeps its labels across steps, and ``text_held`` lets a panel skip caption/title text
(which needs text layout) on frames that are not due for it. The colour bar's labels are
text too: on a held frame a sticky limit stays as it is (values beyond it show in the end
colours until the next due frame; image and bar always agree).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QFont, QPen
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsRectItem, QLabel, QSizePolicy,
                               QStackedWidget, QToolTip, QVBoxLayout, QWidget)

from . import colors
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


def remember_specs(axis: pg.AxisItem, size: int = 12) -> None:
    """Reuse the axis's tick layout for a range, size and style it has drawn before: a colour
    bar's limits move among a few "nice" values, and laying out its tick labels is the
    expensive part of drawing it."""
    generate, memo = axis.generateDrawSpecs, {}

    def generate_remembered(painter):
        st = axis.style
        key = (tuple(axis.range), axis.width(), axis.height(), axis.pen().color().rgba(),
               axis.textPen().color().rgba(), st["showValues"], st["tickLength"],
               str(st["tickFont"]), repr(axis._tickLevels), axis.label.isVisible())
        specs = memo.get(key)
        if specs is None:
            specs = generate(painter)
            if len(memo) >= size:
                memo.pop(next(iter(memo)))
            memo[key] = specs
        return specs
    axis.generateDrawSpecs = generate_remembered


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
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.bar = None
        if colorbar:
            self.bar = pg.ColorBarItem(interactive=False, width=12, colorMapMenu=False,
                                       colorMap=colors.cmap("diverging"))
            self.bar.setImageItem(self.image)
            self.glw.addItem(self.bar, row=0, col=1)
            self.bar.setMaximumHeight(BAR_MAX_HEIGHT)
            self.bar.axis.enableAutoSIPrefix(False)        # plain numbers; no relabel cost
            cache_axes(self.bar)
            remember_specs(self.bar.axis)
            self.glw.ci.layout.setAlignment(self.bar, Qt.AlignmentFlag.AlignVCenter)
        else:
            self.image.setColorMap(colors.cmap("diverging"))
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
        self._labels: list[pg.TextItem] = []
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
            same_thing = what == self._sticky_key and self._sticky is not None
            if same_thing and self.text_held:
                hi = self._sticky        # the bar's labels are text: they change when due
            else:
                hi = colors.sticky_limit(self._sticky if same_thing else None, hi)
            self._sticky, self._sticky_key = hi, what
            lo = -hi if signed else 0.0
        mosaic = colors.for_display(tile(shown, layout), lo, hi)
        kind = cmap_kind or ("diverging" if signed else "sequential")
        if self.bar is not None and kind != self.cmap_kind:
            self.bar.setColorMap(colors.cmap(kind))
        elif self.bar is None and kind != self.cmap_kind:
            self.image.setColorMap(colors.cmap(kind))
        self.cmap_kind = kind
        self.image.setImage(mosaic, autoLevels=False, levels=(lo, hi))
        # ImageItem applies levels deferred from before its first image (ColorBarItem sets
        # (0, 1) on attach) *after* ours: set them again, without an extra render.
        if tuple(self.image.getLevels()) != (lo, hi):
            self.image.setLevels((lo, hi), update=False)
        if self.bar is not None and tuple(self.bar.levels()) != (lo, hi):
            self.bar.setLevels((lo, hi), update_items=False)
        self.mosaic = mosaic
        self.stack.setCurrentIndex(0)
        self.levels = tuple(float(v) for v in self.image.getLevels())
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
    def _rebuild_labels(self, labels, values: bool) -> None:
        for item in self._labels + self._values:
            self.plot.removeItem(item)
        self._labels, self._values = [], []
        lay = self.layout_
        if lay is None:
            return
        font = QFont(self.font())
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.75))
        for k, text in enumerate(labels or []):
            y, x = lay.origin(k)
            item = pg.TextItem(text, color=(255, 255, 255), fill=pg.mkBrush(0, 0, 0, 120),
                               anchor=(0, 0))
            item.setFont(font)
            item.setPos(x, y)
            self.plot.addItem(item, ignoreBounds=True)
            self._labels.append(item)
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
        if lay is None or not (self._labels or self._values):
            return
        px = self.vb.viewPixelSize() if self.vb.width() > 0 else (1.0, 1.0)
        w_px, h_px = lay.w / max(px[0], 1e-9), lay.h / max(px[1], 1e-9)
        show = w_px >= LABEL_MIN_PX[0] and h_px >= LABEL_MIN_PX[1]
        for item in self._labels:
            item.setVisible(show)
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
            for name in ("left", "right", "top", "bottom"):
                colors.style_axis(self.bar.getAxis(name), fg)


def _short(v: float) -> str:
    return f"{v:.3g}" if np.isfinite(v) else str(v)
