"""2-D convolution (cross-correlation, as every framework), NCHW, W of shape (F, C, kh, kw).

Forward is im2col + one matmul. Backward: ∂W = δ correlated with the input (one matmul over
the same columns), ∂b = Σ δ, and ∂x spreads each δ back over the pixels its window touched
(one matmul, then one add per kernel offset).
Columns are laid out (C·kh·kw, N·OH·OW) so copies run over contiguous rows.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .base import Layer, int_pair, pair_text, positive_int
from .windows import check_image_input, output_hw, window_slices


def pad_input(x, p):
    """Zero-pad the two spatial axes (a preallocated copy: np.pad costs more at batch 1)."""
    if p == (0, 0):
        return x
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), dtype=x.dtype)
    xp[:, :, p[0]:p[0] + h, p[1]:p[1] + w] = x
    return xp


def windows(xp, k, s, out_hw):
    """Read-only view (N, C, OH, OW, kh, kw) of every window, without copying."""
    n, c = xp.shape[:2]
    sn, sc, sh, sw = xp.strides
    return as_strided(xp, (n, c, out_hw[0], out_hw[1], k[0], k[1]),
                      (sn, sc, sh * s[0], sw * s[1], sh, sw), writeable=False)


def im2col(xp, k, s, out_hw):
    """Columns (C·kh·kw, N·OH·OW): column (n, i, j) holds the window under output (i, j).

    This layout copies whole output rows at a time and lets ∂W and ∂x be plain matmuls.
    """
    win = windows(xp, k, s, out_hw)
    n, c = xp.shape[:2]
    return win.transpose(1, 4, 5, 0, 2, 3).reshape(c * k[0] * k[1], n * out_hw[0] * out_hw[1])


def conv2d_forward(x, W, b, stride=(1, 1), padding=(0, 0)):
    """z[n, f, i, j] = Σ_c Σ_m Σ_n x_pad[n, c, i·s + m, j·s + n] · W[f, c, m, n] + b[f].

    Returns z (an NCHW view of filter-major memory) and the columns, kept for ∂W.
    """
    f, _, kh, kw = W.shape
    xp = pad_input(x, padding)
    oh = (xp.shape[2] - kh) // stride[0] + 1
    ow = (xp.shape[3] - kw) // stride[1] + 1
    cols = im2col(xp, (kh, kw), stride, (oh, ow))
    z = W.reshape(f, -1) @ cols
    z += b[:, None]
    return z.reshape(f, len(x), oh, ow).transpose(1, 0, 2, 3), cols


def filter_major(delta):
    """δ as (F, N·OH·OW); free when δ already lies in filter-major memory (as z does)."""
    return delta.transpose(1, 0, 2, 3).reshape(delta.shape[1], -1)


def conv2d_backward_input(delta, W, input_hw, stride=(1, 1), padding=(0, 0)):
    """∂loss/∂x: every δ[f, i, j] times the kernel weight that linked it to each pixel.

    dcols[m, n, c, ·, i, j] = Σ_f W[f, c, m, n] δ[·, f, i, j] (one matmul); each kernel offset
    (m, n) then adds its slice onto the input pixels it touched. (Measured faster here than
    MATH.md's equivalent full correlation with the rotated kernel, whose matmul is skinny.)
    """
    n, f, oh, ow = delta.shape
    _, c, kh, kw = W.shape
    dcols = (W.transpose(2, 3, 1, 0).reshape(kh * kw * c, f) @ filter_major(delta))
    dcols = dcols.reshape(kh, kw, c, n, oh, ow)
    (h, w), p = input_hw, padding
    dxp = np.zeros((c, n, h + 2 * p[0], w + 2 * p[1]), dtype=delta.dtype)
    for m, k, sl in window_slices((kh, kw), stride, (oh, ow)):
        dxp[sl] += dcols[m, k]
    return dxp[:, :, p[0]:p[0] + h, p[1]:p[1] + w].transpose(1, 0, 2, 3)


class Conv2D(Layer):
    kind = "Conv2D"

    def __init__(self, filters, kernel_size, stride=1, padding=0, activation="identity"):
        super().__init__(activation)
        self.filters = positive_int(filters, "filters", self.kind)
        self.kernel_size = int_pair(kernel_size, "kernel_size", self.kind)
        self.stride = int_pair(stride, "stride", self.kind)
        self.padding = int_pair(padding, "padding", self.kind, minimum=0)
        self._cols = None

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

    def linear(self, x):
        z, self._cols = conv2d_forward(x, self.params["W"], self.params["b"],
                                       self.stride, self.padding)
        return z

    def param_grads(self, delta):
        d2 = filter_major(delta)
        self.grads["W"] = (d2 @ self._cols.T).reshape(self.params["W"].shape)
        self.grads["b"] = d2.sum(axis=1)

    def input_gradient(self):
        return conv2d_backward_input(self.delta, self.params["W"], self.input_shape[1:],
                                     self.stride, self.padding)
