"""2-D convolution (cross-correlation, as every framework), NCHW, W of shape (F, C, kh, kw).

Forward is im2col + one matmul. Backward: ∂W = δ correlated with the input (one matmul over
the same columns), ∂b = Σ δ, and ∂x spreads each δ back over the pixels its window touched
(col2im: one add per kernel offset).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import Layer, int_pair, pair_text, positive_int
from .windows import check_image_input, output_hw, window_slices


def pad_input(x, p):
    if p == (0, 0):
        return x
    return np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))


def im2col(xp, k, s, out_hw):
    """Columns (N·OH·OW, C·kh·kw): row (n, i, j) holds the window under output (i, j)."""
    win = sliding_window_view(xp, k, axis=(2, 3))[:, :, ::s[0], ::s[1]]
    win = win[:, :, :out_hw[0], :out_hw[1]]
    n, c = xp.shape[:2]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_hw[0] * out_hw[1], c * k[0] * k[1])


def conv2d_forward(x, W, b, stride=(1, 1), padding=(0, 0)):
    """z[n, f, i, j] = Σ_c Σ_m Σ_n x_pad[n, c, i·s + m, j·s + n] · W[f, c, m, n] + b[f]."""
    f, _, kh, kw = W.shape
    xp = pad_input(x, padding)
    oh = (xp.shape[2] - kh) // stride[0] + 1
    ow = (xp.shape[3] - kw) // stride[1] + 1
    cols = im2col(xp, (kh, kw), stride, (oh, ow))
    z = cols @ W.reshape(f, -1).T
    z += b
    return z.reshape(len(x), oh, ow, f).transpose(0, 3, 1, 2), cols


def conv2d_backward_input(delta, W, input_hw, stride=(1, 1), padding=(0, 0)):
    """∂loss/∂x: every δ[f, i, j] times the kernel weight that linked it to each pixel."""
    n, f, oh, ow = delta.shape
    _, c, kh, kw = W.shape
    d2 = delta.transpose(0, 2, 3, 1).reshape(-1, f)
    dcols = (d2 @ W.reshape(f, -1)).reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
    h, w = input_hw
    p = padding
    dxp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), dtype=delta.dtype)
    for m, k, sl in window_slices((kh, kw), stride, (oh, ow)):
        dxp[sl] += dcols[:, :, :, :, m, k]
    return dxp[:, :, p[0]:p[0] + h, p[1]:p[1] + w]


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
        f = self.filters
        d2 = delta.transpose(0, 2, 3, 1).reshape(-1, f)
        self.grads["W"] = (d2.T @ self._cols).reshape(self.params["W"].shape)
        self.grads["b"] = d2.sum(axis=0)

    def input_gradient(self):
        return conv2d_backward_input(self.delta, self.params["W"], self.input_shape[1:],
                                     self.stride, self.padding)
