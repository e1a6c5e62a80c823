"""2-D convolution (cross-correlation, as every framework), NCHW, W of shape (F, C, kh, kw).

Forward is im2col + one matmul. Backward: ∂W = δ correlated with the input (one matmul over
the same columns), ∂b = Σ δ, and ∂x spreads each δ back over the pixels its window touched
(one matmul, then one bincount, or one add per kernel offset for large batches).

Columns are laid out (C·kh·kw, OH·OW·N): one row per kernel entry, one column per output
position, the image index varying fastest. The padded input (and ∂x) is kept the same way,
(C, Hp, Wp, N), so a column row is a strided view of it whose runs go across the batch
(NumPy pays ~0.1 µs per contiguous run an add walks: at batch 32 this order cut the col2im
adds ~3× against image-major buffers). At batch 1 the layout is plain NCHW. Output rows
used to be taken padded-width wide (one contiguous run per kernel entry, extra positions
computed and dropped); in this layout that only costs: measured here, exact-width rows make
the LeNet step ×0.89 at batch 1, ×0.76 at batch 8, ×0.87 at batch 32 (float64/float32).

z, a and δ are (N, F, OH, OW) views of (F, OH, OW, N) memory; the max-pool layer works in
that order too (pool.py), so the next convolution's padded copy reads long runs.
"""
from __future__ import annotations

import numpy as np

from .. import activations
from .base import Layer, int_pair, pair_text, positive_int
from .windows import check_image_input, output_hw

BINCOUNT_MAX = 2**16     # column entries up to which ∂x is scattered with one np.bincount
COLUMN_BLOCK = 4096      # column products with more than twice this many columns go in blocks


def column_blocks(n):
    """Column slices for the products below: one, or equal blocks of about COLUMN_BLOCK
    when n is more than twice that (equal, so that no block is a thin remainder)."""
    if n <= 2 * COLUMN_BLOCK:
        return [slice(0, n)]
    size = -(-n // -(-n // COLUMN_BLOCK))
    return [slice(s, s + size) for s in range(0, n, size)]


def column_product(a, cols):
    """a @ cols for a matrix with many columns, taken a block of columns at a time.

    OpenBLAS runs LeNet's first conv (6×25 by 25×25088 at batch 32) ~3× slower in one call
    than in blocks that stay in cache; each entry is the same sum either way.
    """
    if cols.shape[1] <= 2 * COLUMN_BLOCK:               # one block (checked before the call)
        return a @ cols
    blocks = column_blocks(cols.shape[1])
    out = np.empty((a.shape[0], cols.shape[1]), dtype=np.result_type(a, cols))
    for sl in blocks:
        np.matmul(a, cols[:, sl], out=out[:, sl])
    return out


def column_sum_product(cols, d):
    """cols · dᵀ, the sum over columns, a block of columns at a time (~2.5× faster for the
    first conv's ∂W at batch 32); the blocks' partial sums are added in order, so the result
    is deterministic, though rounded differently from one call."""
    if cols.shape[1] <= 2 * COLUMN_BLOCK:
        return cols @ d.T
    first, *rest = column_blocks(cols.shape[1])
    total = cols[:, first] @ d[:, first].T
    for sl in rest:
        total += cols[:, sl] @ d[:, sl].T
    return total


def pad_input(x, p):
    """Zero-pad the two spatial axes (a preallocated copy: np.pad costs more at batch 1)."""
    if p == (0, 0):
        return x
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), dtype=x.dtype)
    xp[:, :, p[0]:p[0] + h, p[1]:p[1] + w] = x
    return xp


def image_minor(x):
    """The (C, H, W, N) view of an NCHW array (the layout of every buffer here)."""
    return x.transpose(1, 2, 3, 0)


class ColumnGeometry:
    """Where every kernel entry (c, m, n) reads its column row in a padded buffer.

    The buffer, for the input and for ∂x, is (C, Hp, Wp, N), Hp × Wp the padded size.
    """

    def __init__(self, input_hw, kernel, stride, padding):
        (h, w), (kh, kw), (sh, sw), (ph, pw) = input_hw, kernel, stride, padding
        self.h, self.w, self.kh, self.kw, self.sh, self.sw, self.ph, self.pw = (
            h, w, kh, kw, sh, sw, ph, pw)
        self.oh = (h + 2 * ph - kh) // sh + 1
        self.ow = (w + 2 * pw - kw) // sw + 1
        self.hp, self.wp = h + 2 * ph, w + 2 * pw
        self._inner = (slice(None), slice(ph, ph + h), slice(pw, pw + w))   # of a buffer
        self._target_cache = {}
        self._view_cache = {}

    def pad(self, x):
        """x (N, C, H, W) into a zeroed (C, Hp, Wp, N) buffer."""
        xm = x.transpose(1, 2, 3, 0)                    # image_minor(x)
        if self.hp == self.h and self.wp == self.w and xm.flags.c_contiguous:
            return xm
        buf = np.zeros((x.shape[1], self.hp, self.wp, len(x)), dtype=x.dtype)
        buf[self._inner] = xm
        return buf

    def _view(self, buf):
        """(C, kh, kw, OH, OW, N) strided view of the C-contiguous (C, Hp, Wp, N) ``buf``:
        kernel entry (c, m, n)'s column row. Offsets overlap each other (never themselves),
        so the view is added to one offset at a time. (Built with the ndarray constructor:
        ``as_strided`` costs ~10 µs a call.)"""
        key = (buf.shape, buf.strides)
        spec = self._view_cache.get(key)
        if spec is None:
            st = buf.strides
            spec = self._view_cache[key] = (
                (buf.shape[0], self.kh, self.kw, self.oh, self.ow, buf.shape[3]),
                (st[0], st[1], st[2], st[1] * self.sh, st[2] * self.sw, st[3]))
        return np.ndarray(spec[0], buf.dtype, buf, 0, spec[1])

    def columns(self, buf):
        """(C·kh·kw, OH·OW·N) columns from the (C, Hp, Wp, N) input buffer."""
        c, n = buf.shape[0], buf.shape[3]
        return self._view(buf).reshape(c * self.kh * self.kw, self.oh * self.ow * n)

    def as_nchw(self, out, n, f):
        """(F, OH·OW·N) → the NCHW view (N, F, OH, OW)."""
        return out.reshape(f, self.oh, self.ow, n).transpose(3, 0, 1, 2)

    def as_columns(self, delta):
        """δ (N, F, OH, OW) as (F, OH·OW·N) (a copy unless δ is in that memory order)."""
        return image_minor(delta).reshape(delta.shape[1], -1)

    def input_gradient(self, W, d2, n):
        """∂x (N, C, H, W) from δ as (F, OH·OW·N) columns ``d2`` (conv2d_backward_input)."""
        dcols = column_product(W.reshape(W.shape[0], -1).T, d2)
        return self.scatter(dcols, n)

    def scatter(self, dcols, n):
        """Sum (C·kh·kw, OH·OW·N) column gradients onto the pixels they read: ∂x (N, C, H, W).

        Small batches: one ``np.bincount`` over each entry's precomputed buffer position
        (kh·kw separate adds cost ~6 µs of call overhead each here, ~0.15 ms at batch 1).
        Larger ones: one add per kernel offset, each over long runs of the buffer.
        """
        c = dcols.shape[0] // (self.kh * self.kw)
        if dcols.size <= BINCOUNT_MAX:
            buf = np.bincount(self._targets(c, n), weights=dcols.ravel(),
                              minlength=c * self.hp * self.wp * n)
            buf = buf.astype(dcols.dtype, copy=False).reshape(c, self.hp, self.wp, n)
        else:
            buf = np.zeros((c, self.hp, self.wp, n), dtype=dcols.dtype)
            view = self._view(buf)
            dcols = dcols.reshape(c, self.kh, self.kw, self.oh, self.ow, n)
            for m in range(self.kh):
                for k in range(self.kw):
                    view[:, m, k] += dcols[:, m, k]
        return buf[self._inner].transpose(3, 0, 1, 2)

    def _targets(self, c, n):
        """Flat (C, Hp, Wp, N)-buffer position of every column entry, in column order."""
        key = (c, n)
        if key not in self._target_cache:
            cc, m, k, i, j, nn = np.indices((c, self.kh, self.kw, self.oh, self.ow, n),
                                            sparse=True)
            pos = ((cc * self.hp + m + i * self.sh) * self.wp + k + j * self.sw) * n + nn
            self._target_cache = {key: pos.ravel()}     # one batch size kept at a time
        return self._target_cache[key]


def conv2d_forward(x, W, b, stride=(1, 1), padding=(0, 0), geometry=None):
    """z[n, f, i, j] = Σ_c Σ_m Σ_n x_pad[n, c, i·s + m, j·s + n] · W[f, c, m, n] + b[f].

    Returns z (an NCHW view of (F, OH, OW, N) memory) and the columns, kept for ∂W.
    """
    f, _, kh, kw = W.shape
    g = geometry or ColumnGeometry(x.shape[2:], (kh, kw), stride, padding)
    cols = g.columns(g.pad(x))
    z = column_product(W.reshape(f, -1), cols)
    z += b[:, None]
    return g.as_nchw(z, len(x), f), cols


def conv2d_backward_input(delta, W, input_hw, stride=(1, 1), padding=(0, 0), geometry=None):
    """∂loss/∂x: every δ[f, i, j] times the kernel weight that linked it to each pixel.

    dcols[(c, m, n), ·] = Σ_f W[f, c, m, n] δ[f, ·] (one matmul); each kernel offset (m, n)
    then adds its rows onto the input pixels it read. (Measured faster here than MATH.md's
    equivalent full correlation with the rotated kernel, whose matmul is skinny.)
    """
    g = geometry or ColumnGeometry(input_hw, W.shape[2:], stride, padding)
    return g.input_gradient(W, g.as_columns(delta), len(delta))


class Conv2D(Layer):
    kind = "Conv2D"

    def __init__(self, filters, kernel_size, stride=1, padding=0, activation="identity"):
        super().__init__(activation)
        self.filters = positive_int(filters, "filters", self.kind)
        self.kernel_size = int_pair(kernel_size, "kernel_size", self.kind)
        self.stride = int_pair(stride, "stride", self.kind)
        self.padding = int_pair(padding, "padding", self.kind, minimum=0)
        self._cols = self._geometry = self._delta_columns = None

    def config(self) -> dict:
        def j(p):
            return p[0] if p[0] == p[1] else list(p)
        return {"type": self.kind, "filters": self.filters, "kernel_size": j(self.kernel_size),
                "stride": j(self.stride), "padding": j(self.padding),
                "activation": self.activation}

    def describe(self) -> str:
        c = self.input_shape[0] if self.input_shape else "?"
        return (f"Conv2D({c}→{self.filters}, k={pair_text(self.kernel_size)}, "
                f"s={pair_text(self.stride)}, p={pair_text(self.padding)}, {self.activation})")

    def infer(self, input_shape):
        check_image_input(self.where(), input_shape)
        (oh, ow), self.notes = output_hw(self.where(), "kernel_size", input_shape[1:],
                                         self.kernel_size, self.stride, self.padding)
        return (self.filters, oh, ow)

    def init_params(self, rng):
        c = self.input_shape[0]
        kh, kw = self.kernel_size
        shape = (self.filters, c, kh, kw)
        return {"W": self._init_weight(rng, shape, c * kh * kw, self.filters * kh * kw),
                "b": np.zeros(self.filters)}

    def build(self, input_shape, rng=None, dtype=np.float64, index=None):
        out = super().build(input_shape, rng, dtype, index)
        self._geometry = ColumnGeometry(self.input_shape[1:], self.kernel_size, self.stride,
                                        self.padding)
        return out

    def _columns(self) -> ColumnGeometry:
        """The column geometry for the built input shape."""
        if self._geometry is None:
            self._require_built()
        return self._geometry

    def linear(self, x):
        self._delta_columns = None
        z, self._cols = conv2d_forward(x, self.params["W"], self.params["b"],
                                       self.stride, self.padding, self._columns())
        return z

    def backward(self, grad_output, need_dx=True):
        """δ from ∂loss/∂a written straight into the (F, OH·OW·N) layout that ∂W and ∂x use
        (one pass instead of δ, then its copy in that layout once for ∂W and once for ∂x);
        ``delta`` is the NCHW view of it."""
        if self.activation == "softmax":        # not element-wise: the general way
            return super().backward(grad_output, need_dx)
        n, f = len(grad_output), self.filters
        g = self._columns()
        d2 = np.empty((f, g.oh * g.ow * n), dtype=grad_output.dtype)
        delta = g.as_nchw(d2, n, f)
        activations.backward(self.activation, grad_output, self.z, self.a, out=delta)
        self._delta_columns = (delta, d2)
        return self.backward_delta(delta, need_dx)

    def _columns_of(self, delta):
        """δ as (F, OH·OW·N): kept from ``backward``, or made."""
        kept = self._delta_columns
        if kept is not None and kept[0] is delta:
            return kept[1]
        return self._columns().as_columns(delta)

    def param_grads(self, delta):
        d2 = self._columns_of(delta)
        # (cols · δᵀ)ᵀ rather than δ · colsᵀ: the same sums, measured up to 1.7× faster here
        # with OpenBLAS for these skinny products (few filters, many positions).
        dW = self.grad_out("W")
        np.copyto(dW.reshape(self.filters, -1), column_sum_product(self._cols, d2).T)
        self.grads["W"] = dW
        self.grads["b"] = np.add.reduce(d2, axis=1, out=self.grad_out("b"))   # = Σ δ

    def input_gradient(self):
        return self._columns().input_gradient(self.params["W"], self._columns_of(self.delta),
                                              len(self.delta))
