"""Max and average pooling over (size × size) windows, NCHW, no parameters.

Max-pooling sends δ to the window's first maximum in row-major order (PyTorch's rule on
ties); average pooling spreads δ / count over the window, where count is the number of
positions the window covers inside the padded input (a partial ``ceil_mode`` window counts
only what it covers).
"""
from __future__ import annotations

import numpy as np

from ..errors import LayerConfigError
from .base import Layer, int_pair, pair_text
from .windows import check_image_input, output_hw, window_slices


class _Pool2D(Layer):
    fill = 0.0

    def __init__(self, size, stride=None, padding=0, ceil_mode=False):
        super().__init__("identity")
        self.size = int_pair(size, "size", self.kind)
        self.stride = self.size if stride is None else int_pair(stride, "stride", self.kind)
        self.padding = int_pair(padding, "padding", self.kind, minimum=0)
        if not isinstance(ceil_mode, (bool, np.bool_)):
            raise LayerConfigError(f"{self.kind}: ceil_mode {ceil_mode!r} must be true or false")
        self.ceil_mode = bool(ceil_mode)
        self._slices_key = self._slice_list = None
        for p, k in zip(self.padding, self.size):
            if 2 * p > k:
                raise LayerConfigError(
                    f"{self.kind}: padding {pair_text(self.padding)} is more than half the "
                    f"window {pair_text(self.size)}; it must be at most size / 2")

    def config(self) -> dict:
        def j(p):
            return p[0] if p[0] == p[1] else list(p)
        cfg = {"type": self.kind, "size": j(self.size), "stride": j(self.stride)}
        if self.padding != (0, 0):
            cfg["padding"] = j(self.padding)
        if self.ceil_mode:
            cfg["ceil_mode"] = True
        return cfg

    def describe(self) -> str:
        extra = f", p={pair_text(self.padding)}" if self.padding != (0, 0) else ""
        extra += ", ceil" if self.ceil_mode else ""
        return f"{self.kind}({pair_text(self.size)}, s={pair_text(self.stride)}{extra})"

    def infer(self, input_shape):
        check_image_input(self.where(), input_shape)
        (oh, ow), self.notes = output_hw(self.where(), "size", input_shape[1:], self.size,
                                         self.stride, self.padding, self.ceil_mode)
        return (input_shape[0], oh, ow)

    def _buffer_hw(self):
        """Padded buffer big enough for every window, including ceil-mode overhang."""
        (_, h, w), (oh, ow) = self.input_shape, self.output_shape[1:]
        return (max(h + 2 * self.padding[0], (oh - 1) * self.stride[0] + self.size[0]),
                max(w + 2 * self.padding[1], (ow - 1) * self.stride[1] + self.size[1]))

    def _padded(self, x):
        (_, h, w), (p, q) = self.input_shape, self.padding
        if self._buffer_hw() == (h, w):
            return x
        xp = np.full(x.shape[:2] + self._buffer_hw(), self.fill, dtype=x.dtype)
        xp[:, :, p:p + h, q:q + w] = x
        return xp

    def _slices(self):
        """[(m, n, slices)] for every window offset, row-major (kept per output shape)."""
        key = (self.size, self.stride, self.output_shape)
        if self._slices_key != key:
            self._slices_key = key
            self._slice_list = list(window_slices(self.size, self.stride, self.output_shape[1:]))
        return self._slice_list

    def _scatter(self, parts):
        """Sum per-offset gradient pieces back into an input-shaped array."""
        (_, h, w), (p, q) = self.input_shape, self.padding
        dxp = np.zeros(self.delta.shape[:2] + self._buffer_hw(), dtype=self.delta.dtype)
        for sl, part in parts:
            dxp[sl] += part
        return dxp[:, :, p:p + h, q:q + w]


def _max_of(views):
    """Element-wise maximum of equally shaped arrays (a new array)."""
    if len(views) == 1:
        return views[0].copy()
    out = np.maximum(views[0], views[1])
    for v in views[2:]:
        np.maximum(out, v, out=out)
    return out


def _first_max_shares(rest, views, best, outs):
    """Split ``rest`` over ``views``: all of it to the first view equal to ``best`` (the
    row-major tie rule), zero to the others; piece i is written to ``outs[i]`` (or a new
    array when that is None). x·1 and x − x are exact, so every value lands whole once.
    The last view needs no comparison: what is left when no earlier view took it is its
    (one multiply and one compare fewer per split, ~30 % of the max-pool backward here)."""
    if len(views) == 2:                  # the usual 2-wide window: the loop below, unrolled
        first = np.multiply(rest, views[0] == best, out=outs[0])
        return [first, np.subtract(rest, first, out=outs[1])]
    pieces, last = [], len(views) - 1
    for i in range(last):
        pieces.append(np.multiply(rest, views[i] == best, out=outs[i]))
        rest = np.subtract(rest, pieces[-1], out=outs[last] if i == last - 1 else None)
    if last == 0:                        # a one-position window takes everything
        if outs[0] is None:
            rest = rest.copy()
        else:
            np.copyto(outs[0], rest)
            rest = outs[0]
    pieces.append(rest)
    return pieces


# Memory orders the tiled max-pool works in, as (axes of x in memory order, their inverse,
# images last?): NCHW, its N↔C transpose, and the image-innermost (C, H, W, N) order of
# conv.py's buffers.
_ORDERS = (((0, 1, 2, 3), (0, 1, 2, 3), False), ((1, 0, 2, 3), (1, 0, 2, 3), False),
           ((1, 2, 3, 0), (3, 0, 1, 2), True))


def _memory_order(x):
    """The first of ``_ORDERS`` in which x is C-contiguous, else NCHW (for a copy)."""
    if x.flags.c_contiguous:             # NCHW (at batch 1 also the image-innermost order)
        return _ORDERS[0]
    for order in _ORDERS[1:]:
        if x.transpose(order[0]).flags.c_contiguous:
            return order
    return _ORDERS[0]


class MaxPool2D(_Pool2D):
    """Max pooling. Windows that tile the input exactly (stride = size, no padding, sizes
    dividing the input) take two passes in memory order, across columns then across rows:
    long runs instead of one short strided run per output row, measured ~2× faster at batch
    32 here. The first maximum of the columns' winners, taken row by row, is the window's
    first maximum in row-major order, so both ways route δ identically. In the
    image-innermost order (a convolution's output) a window position is a run over the
    batch, so the passes compare runs of N values instead of every other value."""

    kind = "MaxPool2D"
    fill = -np.inf
    _stages = None                       # the tiled forward's intermediates, for backward
    _tiled = False                       # windows tile the input (set by build)

    def _tiles(self) -> bool:
        (_, h, w), (kh, kw) = self.input_shape, self.size
        return (self.stride == self.size and self.padding == (0, 0)
                and h % kh == 0 and w % kw == 0)

    def build(self, input_shape, rng=None, dtype=np.float64, index=None):
        out = super().build(input_shape, rng, dtype, index)
        self._tiled = self._tiles()
        self._plans = {}                 # (input shape, memory order) -> _tile_plan
        return out

    def linear(self, x):
        self._stages = None
        if self._tiled:
            out = self._tiled_forward(x)
        else:
            xp = self._padded(x)
            self._xp = xp
            out = _max_of([xp[sl] for _, _, sl in self._slices()])
        self._max = out
        return out

    def _tiled_forward(self, x):
        order = _memory_order(x)
        plan = self._plans.get((x.shape, order))
        if plan is None:
            plan = self._plans[(x.shape, order)] = self._tile_plan(x.shape, order)
        cols_shape, rows_shape, out_shape = plan
        axes, inverse, _ = order
        m = x if order is _ORDERS[0] and x.flags.c_contiguous else \
            np.ascontiguousarray(x.transpose(axes))
        cols = m.reshape(cols_shape)                # [row, window column, offset, image]
        # (iterating a transposed view makes each offset's view in C, cheaper than indexing)
        col_max = _max_of(list(cols.transpose(2, 0, 1, 3)))
        out = _max_of(list(col_max.reshape(rows_shape).transpose(1, 0, 2)))
        self._xp, self._stages = x, (cols, col_max, out, order, m.shape)
        return out.reshape(out_shape).transpose(inverse)

    def _tile_plan(self, shape, order):
        """The shapes ``_tiled_forward`` reshapes to, for an input of ``shape`` in ``order``:
        columns [row, window column, offset, image], rows [row pair, row, OW · images], and
        the output in memory order."""
        axes, _, images_last = order
        m = tuple(shape[a] for a in axes)
        (kh, kw), (h, w) = self.size, self.input_shape[1:]
        oh, ow = h // kh, w // kw
        b = m[3] if images_last else 1                      # values per window position
        out = (m[0], oh, ow, b) if images_last else m[:2] + (oh, ow)
        return (-1, ow, kw, b), (-1, kh, ow * b), out

    def routing(self):
        """For each output, the row-major offset (m·size_w + n) of the first maximum."""
        xp = self._xp                    # the padded input (tiled windows have no padding)
        won = np.zeros(self._max.shape, dtype=bool)
        route = np.zeros(self._max.shape, dtype=np.int64)
        for m, n, sl in self._slices():
            hit = (xp[sl] == self._max) & ~won
            route[hit] = m * self.size[1] + n
            won |= hit
        return route

    def input_gradient(self):
        """δ to each window's first maximum (``_first_max_shares``)."""
        if self._stages is not None:
            return self._tiled_backward()
        slices = [sl for _, _, sl in self._slices()]
        overlap = any(s < k for s, k in zip(self.stride, self.size))
        dxp = np.zeros(self.delta.shape[:2] + self._buffer_hw(), dtype=self.delta.dtype)
        views = [self._xp[sl] for sl in slices]
        if overlap:                      # windows share inputs: add each piece
            for sl, piece in zip(slices, _first_max_shares(self.delta, views, self._max,
                                                           [None] * len(slices))):
                dxp[sl] += piece
        else:                            # each input in at most one window: write in place
            _first_max_shares(self.delta, views, self._max, [dxp[sl] for sl in slices])
        (_, h, w), (p, q) = self.input_shape, self.padding
        return dxp[:, :, p:p + h, q:q + w]

    def _tiled_backward(self):
        cols, col_max, out, (axes, inverse, _), shape = self._stages
        kh = self.size[0]
        r2, wide = out.shape                                 # wide = OW · values per position
        d = self.delta.transpose(axes).reshape(r2, wide)
        d_rows = np.empty((r2, kh, wide), dtype=d.dtype)    # δ of each row's column winner
        rows = col_max.reshape(r2, kh, wide)
        _first_max_shares(d, list(rows.transpose(1, 0, 2)), out,
                          list(d_rows.transpose(1, 0, 2)))
        dx = np.empty(cols.shape, dtype=d.dtype)
        _first_max_shares(d_rows.reshape(col_max.shape), list(cols.transpose(2, 0, 1, 3)),
                          col_max, list(dx.transpose(2, 0, 1, 3)))
        return dx.reshape(shape).transpose(inverse)

    def kink_state(self):
        return None if self.z is None else self.routing()


class AvgPool2D(_Pool2D):
    kind = "AvgPool2D"

    def _count(self):
        (_, h, w), (p, q) = self.input_shape, self.padding
        inside = np.zeros((1, 1) + self._buffer_hw())
        inside[:, :, :h + 2 * p, :w + 2 * q] = 1.0
        count = sum(inside[sl] for _, _, sl in self._slices())
        return count[0, 0]

    def build(self, input_shape, rng=None, dtype=np.float64, index=None):
        out = super().build(input_shape, rng, dtype, index)
        self._inv_count = (1.0 / self._count()).astype(self.dtype)
        return out

    def linear(self, x):
        xp = self._padded(x)
        total = None
        for _, _, sl in self._slices():
            total = xp[sl].copy() if total is None else np.add(total, xp[sl], out=total)
        return total * self._inv_count

    def input_gradient(self):
        share = self.delta * self._inv_count
        return self._scatter((sl, share) for _, _, sl in self._slices())
