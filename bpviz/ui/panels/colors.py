"""Colour maps, colour limits and theme colours shared by the panels.

* Signed data (z, δ, gradients, updates) → diverging ``CET-D1`` (blue–white–red) with limits
  symmetric about 0, so white always means 0.
* Unsigned data (a after ReLU / sigmoid / softmax, or any map with no negative value) →
  sequential ``viridis`` from 0; the input image → grey ``CET-L1``.
* Scale modes: "per-layer" (one limit for every map of a tensor), "per-map" (each tile divided
  by its own maximum, limits ±1 / [0, 1]), "fixed" (± the user's limit).
* The panels' "per-layer" limit is "nice" and sticky (``sticky_limit``): the largest |value|
  rounded up to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k, kept while the data's largest
  value stays within [½, 1] × of it. The colour bar then reads in round numbers and is not
  relabelled on every training step (relabelling an axis is most of a frame's cost).

Panels follow the application palette (light or dark) for backgrounds and text; mosaics sit
on a neutral grey "mat" so the transparent 1-px gaps between tiles read as frames.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette

SCALE_MODES = ("per-map", "per-layer", "fixed")
UNSIGNED_ACTIVATIONS = ("relu", "sigmoid", "softmax")
MAT = QColor(128, 128, 128)
LIMIT_MAX = 1e38

GRAD_COLOR = QColor(230, 134, 42)      # ‖∂loss/∂W‖ bars
DELTA_COLOR = QColor(59, 117, 175)     # ‖δ‖ bars
LOSS_COLOR = QColor(200, 60, 50)
ACC_COLOR = QColor(40, 140, 80)
# Tableau 10: distinct, readable on light and dark backgrounds
SERIES = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]

_CMAPS: dict[str, pg.ColorMap] = {}


def cmap(kind: str) -> pg.ColorMap:
    """'diverging', 'sequential' or 'grey' (cached)."""
    name = {"diverging": "CET-D1", "sequential": "viridis", "grey": "CET-L1"}[kind]
    if name not in _CMAPS:
        _CMAPS[name] = pg.colormap.get(name)
    return _CMAPS[name]


LUT_SIZE = 256
_LUTS: dict[str, np.ndarray] = {}


def lut32(kind: str) -> np.ndarray:
    """The colour map ``kind`` as LUT_SIZE + 1 opaque ARGB32 pixels (uint32, the layout of
    QImage.Format_ARGB32_Premultiplied); the extra last entry is transparent, for NaN."""
    if kind not in _LUTS:
        rgb = cmap(kind).getLookupTable(0.0, 1.0, LUT_SIZE, alpha=False).astype(np.uint32)
        argb = (0xFF << 24) | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        _LUTS[kind] = np.append(argb, 0).astype(np.uint32)
    return _LUTS[kind]


def lut_index(mosaic: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Entry of the LUT for every value: [lo, hi] split into LUT_SIZE equal bins (values
    beyond the limits take the end colours), NaN → LUT_SIZE (transparent)."""
    m = np.asarray(mosaic, dtype=np.float32)
    span = float(hi) - float(lo)
    scale = LUT_SIZE / span if span > 0 and math.isfinite(span) else 0.0
    scale = np.float32(scale if scale < LIMIT_MAX else LIMIT_MAX)
    with np.errstate(invalid="ignore", over="ignore"):
        x = (m - np.float32(lo)) * scale
    np.clip(x, 0, LUT_SIZE - 1, out=x)             # NaN stays NaN
    x[np.isnan(x)] = LUT_SIZE
    return x.astype(np.intp)


def to_argb(mosaic: np.ndarray, lo: float, hi: float, kind: str) -> np.ndarray:
    """A float mosaic as ARGB32 pixels (uint32, C-contiguous) of colour map ``kind``."""
    return lut32(kind).take(lut_index(mosaic, lo, hi))


def series_color(i: int) -> QColor:
    return QColor(SERIES[i % len(SERIES)])


def is_signed(data: np.ndarray, activation: str | None = None, tensor: str = "") -> bool:
    """False for post-activation maps of ReLU/sigmoid/softmax or data with no negative value."""
    if tensor == "a" and activation in UNSIGNED_ACTIVATIONS:
        return False
    finite = np.asarray(data)[np.isfinite(data)]
    return bool(finite.size and finite.min() < 0)


def largest(data: np.ndarray, signed: bool) -> float:
    """max |finite value| (signed) or max finite value (unsigned); 0 when there is none."""
    d = np.asarray(data, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return 0.0
    return float(np.abs(d).max() if signed else max(d.max(), 0.0))


def limits(data: np.ndarray, signed: bool, mode: str, fixed: float) -> tuple[float, float]:
    """Colour limits (lo, hi): symmetric about 0 when signed, from 0 when unsigned."""
    if mode == "per-map":
        hi = 1.0
    elif mode == "fixed":
        hi = float(fixed)
    else:
        hi = largest(data, signed)
        if not hi > 0:
            hi = 1.0                      # all zero: any range draws it as 0
    hi = min(hi, LIMIT_MAX)               # images are float32
    return (-hi, hi) if signed else (0.0, hi)


NICE_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
STICKY_BAND = 0.5          # a sticky limit holds while largest ∈ [STICKY_BAND × limit, limit]
HELD_BAND = 0.25           # … and within [HELD_BAND × limit, limit] while text is held


def nice_ceil(value: float) -> float:
    """The smallest "nice" number (NICE_STEPS × 10^k) ≥ value (value itself when not > 0 or
    not finite; capped at LIMIT_MAX)."""
    v = float(value)
    if not (v > 0 and math.isfinite(v)):
        return v
    if v >= LIMIT_MAX:
        return LIMIT_MAX
    exp = math.floor(math.log10(v))
    for _ in range(2):                          # log10 may land one decade off
        for step in NICE_STEPS:
            nice = float(f"{step * 10.0 ** exp:.6g}")
            if nice >= v:
                return min(nice, LIMIT_MAX)
        exp += 1
    return min(v, LIMIT_MAX)


def sticky_limit(previous: float | None, largest_value: float,
                 band: float = STICKY_BAND) -> float:
    """A "nice" colour limit for ``largest_value`` (> 0) that stays ``previous`` while
    ``largest_value`` lies within [band × previous, previous]."""
    if previous is not None and band * previous <= largest_value <= previous:
        return previous
    return nice_ceil(largest_value)


def check_mode(mode: str) -> str:
    if mode not in SCALE_MODES:
        raise ValueError(f"scale mode {mode!r} must be one of {', '.join(SCALE_MODES)}")
    return mode


def check_limit(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"fixed colour limit {value!r} must be a number > 0") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"fixed colour limit {value!r} must be a finite number > 0")
    return v


def for_display(mosaic: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """float32 with ±inf clamped to the limits (NaN kept: drawn transparent)."""
    with np.errstate(over="ignore"):
        m = np.asarray(mosaic, dtype=np.float32)
    if np.isinf(m).any():
        m = np.where(np.isposinf(m), np.float32(hi), np.where(np.isneginf(m), np.float32(lo), m))
    return m


# ----------------------------------------------------------------------------- theme

def theme(palette: QPalette) -> tuple[QColor, QColor, QColor]:
    """(background, foreground, dim foreground) from a widget palette."""
    bg = palette.color(QPalette.ColorRole.Base)
    fg = palette.color(QPalette.ColorRole.Text)
    dim = QColor(fg)
    dim.setAlpha(150)
    return bg, fg, dim


def over(color, background, alpha: int) -> QColor:
    """``color`` drawn at ``alpha`` (0–255) over ``background``, as one opaque colour. Lines
    under or beside the data are drawn with it: Qt's raster engine strokes a translucent
    1-px line 3–6× slower than an opaque one (~2 ms for 60 grid lines across a plot)."""
    c, b, a = QColor(color), QColor(background), alpha / 255.0
    return QColor(round(a * c.red() + (1 - a) * b.red()),
                  round(a * c.green() + (1 - a) * b.green()),
                  round(a * c.blue() + (1 - a) * b.blue()))


def style_axis(axis: pg.AxisItem, fg: QColor) -> None:
    axis.setPen(pg.mkPen(fg))
    axis.setTextPen(pg.mkPen(fg))


def style_plot(plot: pg.PlotItem, fg: QColor) -> None:
    for name in ("left", "bottom", "right", "top"):
        style_axis(plot.getAxis(name), fg)


def key_html(color, text: str) -> str:
    """A coloured square and a label, for plot titles that double as legends."""
    return f"<span style='color:{pg.mkColor(color).name()}'>■</span>&nbsp;{text}"
