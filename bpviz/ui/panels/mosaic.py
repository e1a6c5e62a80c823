"""Tiling many small maps into one 2-D image (one ImageItem, one draw call), and back.

Pure NumPy, no Qt. A ``MosaicLayout`` places ``n`` tiles of ``h × w`` pixels on a grid of
``rows × cols`` (tile ``k`` at grid cell ``(k // cols, k % cols)``, row-major) separated by
``gap`` pixels of ``fill`` (NaN by default: drawn transparent, so the view's background shows
through as a thin frame). ``locate`` inverts the placement for hover read-outs.

Every source is turned into a stack of tiles ``(n, h, w)`` first:

* feature maps ``(C, H, W)``: a near-square grid (``maps_layout``);
* a grid of kernels ``(F, C, kh, kw)``: one row per filter, one column per input channel
  (``grid_layout``);
* a vector ``(n,)``: a column of n wide cells when short, else 1 × 1 cells wrapped into
  rows (``vector_layout``);
* a matrix ``(R, C)``: one tile (``matrix_layout``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MosaicLayout:
    n: int          # tiles
    rows: int       # grid rows
    cols: int       # grid columns
    h: int          # tile height (pixels of the source)
    w: int          # tile width
    gap: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the whole mosaic."""
        g = self.gap
        return (self.rows * (self.h + g) - g, self.cols * (self.w + g) - g)

    def cell(self, k: int) -> tuple[int, int]:
        """Grid (row, column) of tile k."""
        return divmod(int(k), self.cols)

    def origin(self, k: int) -> tuple[int, int]:
        """Mosaic (y, x) of the top-left pixel of tile k."""
        gr, gc = self.cell(k)
        return gr * (self.h + self.gap), gc * (self.w + self.gap)

    def locate(self, y: float, x: float):
        """(tile, row, col) under mosaic pixel (y, x), or None in a gap or outside."""
        y, x = math.floor(y), math.floor(x)
        if not (0 <= y < self.shape[0] and 0 <= x < self.shape[1]):
            return None
        gr, r = divmod(y, self.h + self.gap)
        gc, c = divmod(x, self.w + self.gap)
        k = gr * self.cols + gc
        if r >= self.h or c >= self.w or k >= self.n:
            return None
        return int(k), int(r), int(c)


def near_square(n: int, h: int = 1, w: int = 1, gap: int = 1) -> tuple[int, int]:
    """(rows, cols) for n tiles of h × w whose mosaic is closest to square."""
    n = max(int(n), 1)
    best = None
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        if rows * cols - n >= cols:          # a whole empty row: never better
            continue
        height, width = rows * (h + gap) - gap, cols * (w + gap) - gap
        score = abs(math.log(width / height)) + 0.02 * (rows * cols - n)
        if best is None or score <= best[0] + 1e-12:     # ties: the wider grid
            best = (score, rows, cols)
    return best[1], best[2]


def maps_layout(n: int, h: int, w: int, gap: int = 1) -> MosaicLayout:
    rows, cols = near_square(n, h, w, gap)
    return MosaicLayout(n, rows, cols, h, w, gap)


def grid_layout(rows: int, cols: int, h: int, w: int, gap: int = 1) -> MosaicLayout:
    return MosaicLayout(rows * cols, rows, cols, h, w, gap)


def vector_layout(n: int, column_max: int = 16, min_cols: int = 16) -> MosaicLayout:
    """Short vectors (n ≤ column_max) are a column of 1 × 3 cells (unit k in row k, wide
    enough to print its value); longer ones wrap row-major into rows of 1 × 1 cells."""
    if n <= column_max:
        return MosaicLayout(n, max(n, 1), 1, 1, 3, 0)
    cols = max(min_cols, math.ceil(math.sqrt(2 * n)))
    return MosaicLayout(n, math.ceil(n / cols), cols, 1, 1, 0)


def matrix_layout(rows: int, cols: int) -> MosaicLayout:
    return MosaicLayout(1, 1, 1, rows, cols, 0)


def tile(tiles: np.ndarray, layout: MosaicLayout, fill: float = np.nan) -> np.ndarray:
    """Place ``tiles`` (n, h, w) into a float32 mosaic of ``layout.shape``."""
    with np.errstate(over="ignore"):                 # beyond float32: ±inf, clamped later
        t = np.asarray(tiles, dtype=np.float32)
    lay = layout
    if t.shape != (lay.n, lay.h, lay.w):
        raise ValueError(f"tiles of shape {t.shape} do not fit layout "
                         f"({lay.n}, {lay.h}, {lay.w})")
    g = lay.gap
    padded = np.full((lay.rows * lay.cols, lay.h + g, lay.w + g), fill, dtype=np.float32)
    padded[:lay.n, :lay.h, :lay.w] = t
    big = padded.reshape(lay.rows, lay.cols, lay.h + g, lay.w + g).transpose(0, 2, 1, 3)
    big = big.reshape(lay.rows * (lay.h + g), lay.cols * (lay.w + g))
    height, width = lay.shape
    return np.ascontiguousarray(big[:height, :width])


def normalise_tiles(tiles: np.ndarray, signed: bool) -> np.ndarray:
    """Each tile divided by its own largest |value| (signed) or maximum (unsigned).

    All-zero (or all-NaN) tiles stay 0; the result lies in [-1, 1] or [0, 1]."""
    t = np.asarray(tiles, dtype=np.float64)
    finite = np.where(np.isfinite(t), t, 0.0)
    axes = tuple(range(1, t.ndim))
    scale = (np.abs(finite) if signed else np.clip(finite, 0, None)).max(axis=axes,
                                                                          keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    return t / scale


def as_tiles(arr: np.ndarray, gap: int = 1):
    """A layer tensor as (tiles, layout, is_maps): (C, H, W) maps tile near-square;
    a vector (n,) becomes n one-row cells (see vector_layout); 2-D (H, W) is one map."""
    a = np.asarray(arr)
    if a.ndim == 3:
        return a, maps_layout(a.shape[0], a.shape[1], a.shape[2], gap), True
    if a.ndim == 2:
        return a[None], maps_layout(1, a.shape[0], a.shape[1], gap), True
    v = a.reshape(-1)
    layout = vector_layout(v.size)
    return np.repeat(v.reshape(-1, 1, 1), layout.w, axis=2), layout, False


def unit_ticks(layout: MosaicLayout, is_maps: bool):
    """Left-axis ticks naming the units of a column-shaped vector (None otherwise)."""
    if is_maps or layout.cols != 1:
        return None
    return {"left": tuple((k + 0.5, str(k)) for k in range(layout.n))}


def index_ticks(n: int, max_labels: int = 8, offset: float = 0.0, pitch: float = 1.0):
    """Ticks (position, "k") at the centres of n cells of size ``pitch`` starting at
    ``offset``, every 1, 2, 5, 10, 20, 50 … cells so that at most ``max_labels`` show."""
    stride = 1
    for base in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        stride = base
        if math.ceil(n / base) <= max_labels:
            break
    return tuple((offset + (k + 0.5) * pitch, str(k)) for k in range(0, n, stride))
