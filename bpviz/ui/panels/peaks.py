"""History curves reduced to about one point per pixel, keeping every spike (no Qt).

``peak_reduce`` reduces any range of a history at once. ``HistoryPeaks`` keeps what a
history plot draws while training — the curves' columns derived from the history (log10
norms, running means) and their smallest and largest value per block of rows — and
updates both from the new rows only, so that a frame costs the same at step 100 and at
step 100,000. Blocks are a power of two rows long and aligned to the first row: a block,
once whole, never changes, and the block length changes (everything re-reduced once) only
when the history has doubled. Rows are known to be the same as last time by the snapshot's
``history_generation`` (see bpviz/session/history.py).
"""
from __future__ import annotations

import math

import numpy as np


def peak_reduce(x, ys, x_range, bins: int):
    """The rows of ``ys`` (n, k) at increasing ``x`` (n,) inside ``x_range`` (one more row
    each side), reduced when there are more than 2 × ``bins`` of them: each of ``bins``
    equal runs of rows becomes its smallest and its largest value (NaN-aware; an all-NaN
    run stays NaN, a gap), so spikes survive at about one point per pixel. Returns (x, ys)."""
    x = np.asarray(x, dtype=float)
    ys = np.asarray(ys, dtype=float)
    if ys.ndim == 1:
        ys = ys[:, None]
    if x_range is not None and len(x):
        first = max(int(np.searchsorted(x, x_range[0], "left")) - 1, 0)
        last = min(int(np.searchsorted(x, x_range[1], "right")) + 1, len(x))
        x, ys = x[first:last], ys[first:last]
    n = len(x)
    if n <= 2 * max(bins, 1):
        return x, ys
    run = -(-n // bins)
    runs = n // run
    cut = runs * run
    block = ys[:cut].reshape(runs, run, ys.shape[1])
    peaks = np.empty((2 * runs, ys.shape[1]))
    peaks[0::2] = np.fmin.reduce(block, axis=1)
    peaks[1::2] = np.fmax.reduce(block, axis=1)
    xs = np.repeat(x[:cut:run], 2)
    tail = slice(cut, None) if cut < n else slice(n - 1, None)     # the newest row as is
    return np.concatenate([xs, x[tail]]), np.concatenate([peaks, ys[tail]])


class HistoryPeaks:
    """Derived columns of a growing history and their peaks per block (module docstring).

    ``update(n, generation, derive)``: the history now has ``n`` rows; ``derive(start)``
    returns the derived rows start … n-1 as (n - start, k) floats (it may read earlier
    rows, e.g. for a running mean). Only new rows are derived and reduced, unless the
    generation changed (or is 0, unknown): then everything is, once."""

    def __init__(self):
        self.generation = None
        self.rows_derived = 0        # rows passed through ``derive`` so far (tests)
        self.rows_reduced = 0        # rows reduced into block peaks so far (tests)
        self._clear(0)

    def _clear(self, k: int) -> None:
        self.n = 0
        self._cols = np.empty((0, k))
        self.lo = np.full(k, np.nan)          # finite min / max of each column
        self.hi = np.full(k, np.nan)
        self._run, self._blocks = 0, 0
        self._peaks = np.empty((0, 2, k))     # (blocks, min/max, k)

    @property
    def values(self) -> np.ndarray:
        """The derived columns, (n, k) (a view: earlier rows never change)."""
        return self._cols[:self.n]

    def update(self, n: int, generation: int, derive) -> bool:
        """True when there are rows not drawn before (see the class docstring)."""
        fresh = generation != self.generation or not generation or n < self.n
        if not fresh and n == self.n:
            return False
        new = _rows(derive(0 if fresh else self.n))
        if not fresh and new.shape[1] != self._cols.shape[1]:
            fresh, new = True, _rows(derive(0))
        if fresh:
            self.generation = generation
            self._clear(new.shape[1])
        self.rows_derived += len(new)
        self._append(new)
        return True

    def _append(self, new: np.ndarray) -> None:
        n = self.n + len(new)
        if n > self._cols.shape[0]:                 # new memory: views handed out keep theirs
            grown = np.empty((max(2 * self._cols.shape[0], n, 256), new.shape[1]))
            grown[:self.n] = self._cols[:self.n]
            self._cols = grown
        self._cols[self.n:n] = new
        self.n = n
        ok = np.isfinite(new)
        if ok.any():                                 # finite bounds only (±inf not drawn)
            lo = np.min(np.where(ok, new, np.inf), axis=0)
            hi = np.max(np.where(ok, new, -np.inf), axis=0)
            self.lo = np.fmin(self.lo, np.where(np.isfinite(lo), lo, np.nan))
            self.hi = np.fmax(self.hi, np.where(np.isfinite(hi), hi, np.nan))

    def reduced(self, x, bins: int):
        """(x, values) to draw: all rows up to 2 × ``bins``; else the smallest and largest
        value of each block of rows (a power of two long, at most ``bins`` blocks), then
        those of the rows after the last whole block, then the newest row as is."""
        n, v = self.n, self.values
        bins = max(int(bins), 1)
        if n <= 2 * bins:
            return np.asarray(x[:n], dtype=float), v
        run = 1 << max(math.ceil(math.log2(n / bins)), 0)
        if run != self._run:
            self._run, self._blocks = run, 0
            self._peaks = np.empty((0, 2, v.shape[1]))
        whole = n // run
        if whole > self._blocks:
            block = v[self._blocks * run:whole * run].reshape(whole - self._blocks, run, -1)
            self.rows_reduced += block.shape[0] * run
            fresh = np.stack([np.fmin.reduce(block, axis=1), np.fmax.reduce(block, axis=1)],
                             axis=1)
            self._peaks = np.concatenate([self._peaks, fresh])
            self._blocks = whole
        xs = [np.repeat(np.asarray(x[:whole * run:run], dtype=float), 2)]
        ys = [self._peaks.reshape(2 * whole, -1)]
        cut = whole * run
        if n - cut > 2:                              # the rows after the last whole block
            rest = v[cut:n - 1]
            xs.append(np.full(2, float(x[cut])))
            ys.append(np.stack([np.fmin.reduce(rest, axis=0), np.fmax.reduce(rest, axis=0)]))
            cut = n - 1
        tail = slice(cut, n) if cut < n else slice(n - 1, n)
        xs.append(np.asarray(x[tail], dtype=float))
        ys.append(v[tail])
        return np.concatenate(xs), np.concatenate(ys)


def _rows(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v[:, None] if v.ndim == 1 else v
