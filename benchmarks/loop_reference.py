"""A deliberately slow, independent reference implementation of the bpviz math.

Every layer here loops over its output pixels in Python, exactly like the textbook code
the vectorised core (``bpviz.core``) replaces. NumPy is used only for storage and for the
small per-pixel products (``np.sum(window * kernel)``). Nothing in this module imports
``bpviz``: it is an *independent* oracle for the tests in ``tests/core`` and the slow
baseline for ``benchmarks/bench_core.py``.

Conventions (see docs/MATH.md):

* images are NCHW, kernels are ``(F, C, kh, kw)``, dense weights are ``(units, in)``;
* convolution is cross-correlation (no kernel flip), zero padding, output size
  ``floor((H + 2p - k) / s) + 1``;
* pooling has no padding and uses floor mode; max-pool ties send the whole delta to the
  first maximum in row-major order (as PyTorch does);
* ``*_backward`` functions of parameterised layers take ``delta = dLoss/dz`` (the
  pre-activation sensitivity) and return ``(dx, dW, db)``; gradients are *summed* over the
  batch, so a mean-reduced loss must already carry its ``1/N`` inside ``delta``;
* softmax + categorical cross-entropy (mean reduction) gives ``delta = (a - onehot) / N``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = [
    "output_size",
    "conv2d_forward",
    "conv2d_backward",
    "maxpool_forward",
    "maxpool_backward",
    "avgpool_forward",
    "avgpool_backward",
    "dense_forward",
    "dense_backward",
    "activation_forward",
    "activation_backward",
    "relu_forward",
    "relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
    "softmax_forward",
    "softmax_backward",
    "identity_forward",
    "identity_backward",
    "cross_entropy_loss",
    "softmax_cross_entropy_delta",
    "LoopNetwork",
    "LoopLeNet",
    "lenet_spec",
    "mlp_spec",
    "tiny_spec",
    "init_params",
]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def output_size(size: int, k: int, s: int, p: int = 0) -> int:
    """``floor((size + 2p - k) / s) + 1`` (integer arithmetic, no Python-2 division)."""
    return (size + 2 * p - k) // s + 1


def _pad(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


# --------------------------------------------------------------------------- convolution


def conv2d_forward(x, W, b, stride=1, padding=0):
    """``z[n, f, i, j] = sum(x_pad[n, :, i*s:i*s+kh, j*s:j*s+kw] * W[f]) + b[f]``."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    N, C, H, Wd = x.shape
    F, C2, kh, kw = W.shape
    assert C == C2, (x.shape, W.shape)
    OH = output_size(H, kh, sh, ph)
    OW = output_size(Wd, kw, sw, pw)
    xp = _pad(x, ph, pw)
    z = np.zeros((N, F, OH, OW), dtype=np.result_type(x, W))
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    window = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    z[n, f, i, j] = np.sum(window * W[f]) + b[f]
    return z


def conv2d_backward(x, W, delta, stride=1, padding=0):
    """Return ``(dx, dW, db)`` given ``delta = dE/dz`` of shape ``(N, F, OH, OW)``.

    ``dx`` spreads every ``delta[n, f, i, j]`` back over the input pixels its window
    touched (times the kernel weight that touched them); ``dW`` correlates the padded input
    with the sensitivity map; ``db`` is the sum of the map.
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    _, _, OH, OW = delta.shape
    xp = _pad(x, ph, pw)
    dt = np.result_type(x, W, delta)
    dxp = np.zeros(xp.shape, dtype=dt)
    dW = np.zeros(W.shape, dtype=dt)
    db = np.zeros((F,), dtype=dt)
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    d = delta[n, f, i, j]
                    r0, c0 = i * sh, j * sw
                    dxp[n, :, r0:r0 + kh, c0:c0 + kw] += d * W[f]
                    dW[f] += d * xp[n, :, r0:r0 + kh, c0:c0 + kw]
                    db[f] += d
    dx = dxp[:, :, ph:ph + H, pw:pw + Wd].copy()
    return dx, dW, db


# --------------------------------------------------------------------------- pooling


def _pool_geometry(x, size, stride):
    kh, kw = _pair(size)
    sh, sw = _pair(size if stride is None else stride)
    N, C, H, Wd = x.shape
    return N, C, kh, kw, sh, sw, output_size(H, kh, sh), output_size(Wd, kw, sw)


def maxpool_forward(x, size, stride=None):
    N, C, kh, kw, sh, sw, OH, OW = _pool_geometry(x, size, stride)
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    out[n, c, i, j] = np.max(x[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw])
    return out


def maxpool_backward(x, delta, size, stride=None):
    """The window's first maximum (row-major) receives the whole delta; others get 0."""
    N, C, kh, kw, sh, sw, OH, OW = _pool_geometry(x, size, stride)
    dx = np.zeros(x.shape, dtype=np.result_type(x, delta))
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = x[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    k = int(np.argmax(window))  # first maximum in row-major order
                    r, q = divmod(k, kw)
                    dx[n, c, i * sh + r, j * sw + q] += delta[n, c, i, j]
    return dx


def avgpool_forward(x, size, stride=None):
    N, C, kh, kw, sh, sw, OH, OW = _pool_geometry(x, size, stride)
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = x[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[n, c, i, j] = np.sum(window) / (kh * kw)
    return out


def avgpool_backward(x, delta, size, stride=None):
    """Every position of the window gets ``delta / (kh * kw)``."""
    N, C, kh, kw, sh, sw, OH, OW = _pool_geometry(x, size, stride)
    dx = np.zeros(x.shape, dtype=np.result_type(x, delta))
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    share = delta[n, c, i, j] / (kh * kw)
                    dx[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw] += share
    return dx


# --------------------------------------------------------------------------- dense


def dense_forward(x, W, b):
    """``z[n, u] = W[u] . x[n] + b[u]`` with ``W`` of shape ``(units, in)``."""
    N = x.shape[0]
    U = W.shape[0]
    z = np.zeros((N, U), dtype=np.result_type(x, W))
    for n in range(N):
        for u in range(U):
            z[n, u] = np.dot(W[u], x[n]) + b[u]
    return z


def dense_backward(x, W, delta):
    """Return ``(dx, dW, db)``; ``dW = sum_n delta[n] x[n]^T``, ``db = sum_n delta[n]``."""
    N = x.shape[0]
    U = W.shape[0]
    dt = np.result_type(x, W, delta)
    dx = np.zeros(x.shape, dtype=dt)
    dW = np.zeros(W.shape, dtype=dt)
    db = np.zeros((U,), dtype=dt)
    for n in range(N):
        for u in range(U):
            d = delta[n, u]
            dx[n] += d * W[u]
            dW[u] += d * x[n]
            db[u] += d
    return dx, dW, db


# --------------------------------------------------------------------------- activations
# forward(z) -> a; backward(z, a, grad_a) -> delta = grad_a * f'(z) (elementwise loops)


def identity_forward(z):
    return z.copy()


def identity_backward(z, a, grad):
    return grad.copy()


def relu_forward(z):
    a = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        v = z[idx]
        a[idx] = v if v > 0 else 0.0
    return a


def relu_backward(z, a, grad):
    d = np.zeros(np.broadcast_shapes(z.shape, grad.shape), dtype=np.result_type(z, grad))
    for idx in np.ndindex(z.shape):
        d[idx] = grad[idx] if z[idx] > 0 else 0.0
    return d


def _sigmoid_scalar(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def sigmoid_forward(z):
    a = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        a[idx] = _sigmoid_scalar(float(z[idx]))
    return a


def sigmoid_backward(z, a, grad):
    d = np.zeros_like(grad)
    for idx in np.ndindex(z.shape):
        s = a[idx]
        d[idx] = grad[idx] * s * (1.0 - s)
    return d


def tanh_forward(z):
    a = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        a[idx] = math.tanh(float(z[idx]))
    return a


def tanh_backward(z, a, grad):
    d = np.zeros_like(grad)
    for idx in np.ndindex(z.shape):
        t = a[idx]
        d[idx] = grad[idx] * (1.0 - t * t)
    return d


def softmax_forward(z):
    """Row-wise softmax of a ``(N, K)`` array (max subtracted for stability)."""
    a = np.zeros_like(z)
    N, K = z.shape
    for n in range(N):
        m = max(float(v) for v in z[n])
        exps = [math.exp(float(z[n, k]) - m) for k in range(K)]
        total = sum(exps)
        for k in range(K):
            a[n, k] = exps[k] / total
    return a


def softmax_backward(z, a, grad):
    """Full Jacobian product: ``delta_i = a_i (g_i - sum_j g_j a_j)`` per row."""
    d = np.zeros_like(grad)
    N, K = a.shape
    for n in range(N):
        dot = 0.0
        for k in range(K):
            dot += grad[n, k] * a[n, k]
        for k in range(K):
            d[n, k] = a[n, k] * (grad[n, k] - dot)
    return d


_ACTIVATIONS = {
    "identity": (identity_forward, identity_backward),
    "linear": (identity_forward, identity_backward),
    None: (identity_forward, identity_backward),
    "relu": (relu_forward, relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "softmax": (softmax_forward, softmax_backward),
}


def activation_forward(name, z):
    return _ACTIVATIONS[name][0](z)


def activation_backward(name, z, a, grad):
    return _ACTIVATIONS[name][1](z, a, grad)


# --------------------------------------------------------------------------- loss


def _onehot(labels, K, dtype):
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return labels.astype(dtype)
    y = np.zeros((labels.shape[0], K), dtype=dtype)
    for n, k in enumerate(labels):
        y[n, int(k)] = 1.0
    return y


def cross_entropy_loss(a, labels):
    """Mean over the batch of ``-sum_k y_k ln a_k`` (labels: ints or one-hot)."""
    N, K = a.shape
    y = _onehot(labels, K, a.dtype)
    total = 0.0
    for n in range(N):
        for k in range(K):
            if y[n, k] != 0:
                total -= float(y[n, k]) * math.log(max(float(a[n, k]), 1e-300))
    return total / N


def softmax_cross_entropy_delta(a, labels):
    """``delta = (a - onehot) / N`` (softmax output + categorical CE, mean reduction)."""
    N, K = a.shape
    y = _onehot(labels, K, a.dtype)
    d = np.zeros_like(a)
    for n in range(N):
        for k in range(K):
            d[n, k] = (a[n, k] - y[n, k]) / N
    return d


# --------------------------------------------------------------------------- network


def _layer_kind(spec: dict) -> str:
    kind = spec["type"].lower()
    aliases = {
        "conv": "conv2d", "conv2d": "conv2d",
        "maxpool": "maxpool", "maxpool2d": "maxpool",
        "avgpool": "avgpool", "avgpool2d": "avgpool",
        "dense": "dense", "linear": "dense",
        "flatten": "flatten",
    }
    return aliases[kind]


class LoopNetwork:
    """A feed-forward stack driven only by the loop functions above.

    ``spec`` is a list of dicts, one per layer:

    * ``{"type": "conv2d", "stride": 1, "padding": 0, "activation": "relu"}``
    * ``{"type": "maxpool", "size": 2, "stride": None}`` / ``{"type": "avgpool", ...}``
    * ``{"type": "flatten"}``
    * ``{"type": "dense", "activation": "softmax"}``

    ``params`` is a list of the same length: ``{"W": ..., "b": ...}`` for conv/dense layers,
    ``None`` (or ``{}``) for the others. Arrays are used (and updated) in place.

    ``loss`` is ``"cross_entropy"`` (softmax output, mean over the batch; the output delta
    is the fused ``(a - onehot)/N``) or ``"mse"`` (``0.5 * sum (a-y)^2 / N``).
    """

    def __init__(self, spec: list[dict], params: list[dict | None], loss: str = "cross_entropy"):
        assert len(spec) == len(params)
        self.spec = [dict(s) for s in spec]
        self.params = [p if p else {} for p in params]
        self.loss_name = loss
        self.grads: list[dict[str, np.ndarray]] = [{} for _ in spec]
        self.cache: list[dict[str, Any]] = [{} for _ in spec]

    # forward -------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        a = x
        for spec, p, cache in zip(self.spec, self.params, self.cache):
            kind = _layer_kind(spec)
            cache.clear()
            cache["x"] = a
            if kind == "conv2d":
                z = conv2d_forward(a, p["W"], p["b"], spec.get("stride", 1), spec.get("padding", 0))
                act = spec.get("activation", "identity")
                cache["z"] = z
                a = activation_forward(act, z)
                cache["a"] = a
            elif kind == "dense":
                z = dense_forward(a, p["W"], p["b"])
                act = spec.get("activation", "identity")
                cache["z"] = z
                a = activation_forward(act, z)
                cache["a"] = a
            elif kind == "maxpool":
                a = maxpool_forward(a, spec["size"], spec.get("stride"))
            elif kind == "avgpool":
                a = avgpool_forward(a, spec["size"], spec.get("stride"))
            elif kind == "flatten":
                a = a.reshape(a.shape[0], -1)
            cache["out"] = a
        self.output = a
        return a

    # backward ------------------------------------------------------------
    def backward(self, labels) -> float:
        """Back-propagate the loss for ``labels``; fills ``self.grads``; returns the loss."""
        a_out = self.output
        last = self.spec[-1]
        N = a_out.shape[0]
        if self.loss_name == "cross_entropy":
            loss = cross_entropy_loss(a_out, labels)
            if last.get("activation") == "softmax":
                # fused softmax + CE: delta at z of the last layer
                grad_z_last = softmax_cross_entropy_delta(a_out, labels)
                grad_a = None
            else:
                y = _onehot(labels, a_out.shape[1], a_out.dtype)
                grad_a = np.zeros_like(a_out)
                for idx in np.ndindex(a_out.shape):
                    grad_a[idx] = -y[idx] / a_out[idx] / N
                grad_z_last = None
        elif self.loss_name == "mse":
            y = np.asarray(labels, dtype=a_out.dtype).reshape(a_out.shape)
            loss = 0.0
            grad_a = np.zeros_like(a_out)
            for idx in np.ndindex(a_out.shape):
                diff = a_out[idx] - y[idx]
                loss += 0.5 * float(diff) ** 2
                grad_a[idx] = diff / N
            loss /= N
            grad_z_last = None
        else:
            raise ValueError(self.loss_name)

        g = grad_a
        for li in range(len(self.spec) - 1, -1, -1):
            spec, p, cache = self.spec[li], self.params[li], self.cache[li]
            kind = _layer_kind(spec)
            if kind in ("conv2d", "dense"):
                if li == len(self.spec) - 1 and grad_z_last is not None:
                    delta = grad_z_last
                else:
                    delta = activation_backward(spec.get("activation", "identity"),
                                                cache["z"], cache["a"], g)
                cache["delta"] = delta
                if kind == "conv2d":
                    dx, dW, db = conv2d_backward(cache["x"], p["W"], delta,
                                                 spec.get("stride", 1), spec.get("padding", 0))
                else:
                    dx, dW, db = dense_backward(cache["x"], p["W"], delta)
                self.grads[li] = {"W": dW, "b": db}
                g = dx
            elif kind == "maxpool":
                g = maxpool_backward(cache["x"], g, spec["size"], spec.get("stride"))
            elif kind == "avgpool":
                g = avgpool_backward(cache["x"], g, spec["size"], spec.get("stride"))
            elif kind == "flatten":
                g = g.reshape(cache["x"].shape)
        self.input_grad = g
        return loss

    # update --------------------------------------------------------------
    def sgd_update(self, lr: float) -> None:
        """Plain SGD: ``W <- W - lr * dW`` and ``b <- b - lr * db``, in place."""
        for p, g in zip(self.params, self.grads):
            for key, grad in g.items():
                arr = p[key]
                for idx in np.ndindex(arr.shape):
                    arr[idx] -= lr * grad[idx]

    def train_step(self, x: np.ndarray, labels, lr: float = 0.01) -> float:
        """One full training step: forward, backward, SGD update. Returns the loss."""
        self.forward(x)
        loss = self.backward(labels)
        self.sgd_update(lr)
        return loss


# --------------------------------------------------------------------------- ready-made specs


def tiny_spec() -> list[dict]:
    """1x4x4 input -> Conv2D(2 filters, 2x2) -> Flatten -> Dense(2, softmax)."""
    return [
        {"type": "conv2d", "filters": 2, "kernel_size": 2, "stride": 1, "padding": 0,
         "activation": "identity"},
        {"type": "flatten"},
        {"type": "dense", "units": 2, "activation": "softmax"},
    ]


def mlp_spec(sizes=(256, 128, 10), activations=("relu", "relu", "softmax")) -> list[dict]:
    """Flattened input -> Dense stack (default 784-256-128-10, relu/relu/softmax)."""
    return [{"type": "dense", "units": u, "activation": act} for u, act in zip(sizes, activations)]


def lenet_spec() -> list[dict]:
    """LeNet-5 for a 1x28x28 input (conv padding 2 on the first layer, max-pooling)."""
    return [
        {"type": "conv2d", "filters": 6, "kernel_size": 5, "stride": 1, "padding": 2,
         "activation": "relu"},
        {"type": "maxpool", "size": 2, "stride": 2},
        {"type": "conv2d", "filters": 16, "kernel_size": 5, "stride": 1, "padding": 0,
         "activation": "relu"},
        {"type": "maxpool", "size": 2, "stride": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 120, "activation": "relu"},
        {"type": "dense", "units": 84, "activation": "relu"},
        {"type": "dense", "units": 10, "activation": "softmax"},
    ]


def init_params(spec: list[dict], input_shape: tuple[int, ...], seed: int = 0,
                dtype=np.float64) -> list[dict | None]:
    """He-style random parameters for ``spec`` given a per-sample ``input_shape``."""
    rng = np.random.default_rng(seed)
    shape = tuple(input_shape)
    params: list[dict | None] = []
    for spec_i in spec:
        kind = _layer_kind(spec_i)
        if kind == "conv2d":
            C, H, Wd = shape
            kh, kw = _pair(spec_i["kernel_size"])
            sh, sw = _pair(spec_i.get("stride", 1))
            ph, pw = _pair(spec_i.get("padding", 0))
            F = spec_i["filters"]
            fan_in = C * kh * kw
            W = (rng.standard_normal((F, C, kh, kw)) * math.sqrt(2.0 / fan_in)).astype(dtype)
            params.append({"W": W, "b": np.zeros(F, dtype=dtype)})
            shape = (F, output_size(H, kh, sh, ph), output_size(Wd, kw, sw, pw))
        elif kind in ("maxpool", "avgpool"):
            C, H, Wd = shape
            kh, kw = _pair(spec_i["size"])
            sh, sw = _pair(spec_i.get("stride") or spec_i["size"])
            params.append(None)
            shape = (C, output_size(H, kh, sh), output_size(Wd, kw, sw))
        elif kind == "flatten":
            params.append(None)
            shape = (int(np.prod(shape)),)
        elif kind == "dense":
            (fan_in,) = shape
            U = spec_i["units"]
            W = (rng.standard_normal((U, fan_in)) * math.sqrt(2.0 / fan_in)).astype(dtype)
            params.append({"W": W, "b": np.zeros(U, dtype=dtype)})
            shape = (U,)
    return params


class LoopLeNet(LoopNetwork):
    """LeNet-5 (1x28x28 input) built from the loop functions, with random weights."""

    def __init__(self, seed: int = 0, dtype=np.float64, params=None):
        spec = lenet_spec()
        if params is None:
            params = init_params(spec, (1, 28, 28), seed=seed, dtype=dtype)
        super().__init__(spec, params, loss="cross_entropy")
