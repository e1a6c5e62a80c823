"""The loop reference (benchmarks/loop_reference.py) against MATH.md, then the core against it.

Part (a) pins the slow, per-output-pixel reference implementation to the numbers printed in
docs/MATH.md (the convolution tutorial's reference case and the 2×2-kernel worked case) and
to finite differences. Part (b) uses that reference as an independent oracle for the
vectorised layers in ``bpviz.core`` on random float64 inputs (forward, δ, parameter
gradients and input gradients at 1e-10), plus one whole-network step.
"""
from __future__ import annotations

import importlib.util
import pathlib
import sys
import zlib

import numpy as np
import pytest

from bpviz.core import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Network
from bpviz.core.layers import conv as conv_module

_REF_PATH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "loop_reference.py"
_spec = importlib.util.spec_from_file_location("bpviz_loop_reference", _REF_PATH)
ref = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ref
_spec.loader.exec_module(ref)

TOL = dict(rtol=1e-10, atol=1e-10)


def close(actual, expected, **tol):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), **(tol or TOL))


# =============================================================================================
# (a) the loop reference against MATH.md
# =============================================================================================

MATH_X = np.array([
    [[0, 1, 1, 0, 2], [2, 2, 2, 2, 1], [1, 0, 0, 2, 0], [0, 1, 1, 0, 0], [1, 2, 0, 0, 2]],
    [[1, 0, 2, 2, 0], [0, 0, 0, 2, 0], [1, 2, 1, 2, 1], [1, 0, 0, 0, 0], [1, 2, 1, 1, 1]],
    [[2, 1, 2, 0, 0], [1, 0, 0, 1, 0], [0, 2, 1, 0, 1], [0, 1, 2, 2, 2], [2, 1, 0, 0, 1]],
], dtype=np.float64)[None]

MATH_W = np.array([
    [[[-1, 1, 0], [0, 1, 0], [0, 1, 1]],
     [[-1, -1, 0], [0, 0, 0], [0, -1, 0]],
     [[0, 0, -1], [0, 1, 0], [1, -1, -1]]],
    [[[1, 1, -1], [-1, -1, 1], [0, -1, 1]],
     [[0, 1, 0], [-1, 0, -1], [-1, 1, 0]],
     [[-1, 0, 0], [-1, 0, 1], [-1, 0, 0]]],
], dtype=np.float64)
MATH_B = np.array([1.0, 0.0])

MATH_Z = np.array([
    [[6, 7, 5], [3, -1, -1], [2, -1, 4]],
    [[2, -5, -8], [1, -4, -4], [0, -5, -5]],
], dtype=np.float64)[None]

MATH_DELTA = np.array([
    [[0, 1, 1], [2, 2, 2], [1, 0, 0]],
    [[1, 0, 2], [0, 0, 0], [1, 2, 1]],
], dtype=np.float64)[None]

MATH_LR = 0.001

# Printed with 3 decimals; every gradient entry is an integer, so with lr = 0.001 the printed
# numbers are exact and the comparison can be tight.
MATH_W_AFTER = np.array([
    [[[-1.008, 0.990, -0.009], [-0.005, 0.994, -0.006], [-0.006, 0.995, 0.996]],
     [[-1.004, -1.001, -0.004], [-0.010, -0.009, -0.012], [-0.002, -1.002, -0.002]],
     [[-0.002, -0.002, -1.003], [-0.005, 0.992, -0.005], [0.993, -1.008, -1.007]]],
    [[[0.998, 0.998, -1.001], [-1.004, -1.007, 0.997], [-0.004, -1.004, 0.998]],
     [[0.000, 0.999, 0.000], [-1.009, -0.005, -1.004], [-1.004, 1.000, 0.000]],
     [[-1.004, -0.006, -0.005], [-1.002, -0.005, 0.998], [-1.002, -0.001, 0.000]]],
])
MATH_B_AFTER = np.array([0.991, -0.007])


def test_math_reference_case_forward():
    z = ref.conv2d_forward(MATH_X, MATH_W, MATH_B, stride=2, padding=1)
    assert z.shape == (1, 2, 3, 3)
    close(z, MATH_Z, rtol=0, atol=1e-12)


def test_math_reference_case_update():
    _, dW, db = ref.conv2d_backward(MATH_X, MATH_W, MATH_DELTA, stride=2, padding=1)
    # the gradients are whole numbers: the doc's 3-decimal figures are exact
    close(dW, np.round(dW), rtol=0, atol=1e-12)
    close(db, [9.0, 7.0], rtol=0, atol=1e-12)
    close(MATH_W - MATH_LR * dW, MATH_W_AFTER, rtol=0, atol=1e-9)
    close(MATH_B - MATH_LR * db, MATH_B_AFTER, rtol=0, atol=1e-9)


def test_math_worked_case_input_gradient():
    """∂E/∂i₂₂ = δ₁₁h₂₂ + δ₁₂h₂₁ + δ₂₁h₁₂ + δ₂₂h₁₁ (3×3 input, 2×2 kernel, stride 1)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 1, 3, 3))
    h = rng.standard_normal((1, 1, 2, 2))
    d = rng.standard_normal((1, 1, 2, 2))
    dx, _, _ = ref.conv2d_backward(x, h, d, stride=1, padding=0)
    H, D = h[0, 0], d[0, 0]
    # 1-based subscripts in the doc → 0-based here
    expected_centre = D[0, 0] * H[1, 1] + D[0, 1] * H[1, 0] + D[1, 0] * H[0, 1] + D[1, 1] * H[0, 0]
    close(dx[0, 0, 1, 1], expected_centre, rtol=0, atol=1e-14)
    # corners are touched by a single output each
    close(dx[0, 0, 0, 0], D[0, 0] * H[0, 0], rtol=0, atol=1e-14)
    close(dx[0, 0, 2, 2], D[1, 1] * H[1, 1], rtol=0, atol=1e-14)
    close(dx[0, 0, 0, 1], D[0, 0] * H[0, 1] + D[0, 1] * H[0, 0], rtol=0, atol=1e-14)


def _full_conv_rot180(delta_map, kernel, stride):
    """MATH.md's recipe: dilate δ by s−1 zeros, zero-pad by k−1, correlate with rot180(k)."""
    kh, kw = kernel.shape
    oh, ow = delta_map.shape
    dil = np.zeros(((oh - 1) * stride + 1, (ow - 1) * stride + 1))
    dil[::stride, ::stride] = delta_map
    padded = np.pad(dil, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    rot = kernel[::-1, ::-1]
    out = np.zeros((padded.shape[0] - kh + 1, padded.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(padded[i:i + kh, j:j + kw] * rot)
    return out


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_loop_input_gradient_matches_rot180_full_convolution(stride):
    rng = np.random.default_rng(stride)
    k = 3
    H = (4 - 1) * stride + k          # every pixel covered: no floor-mode leftovers
    x = rng.standard_normal((1, 1, H, H))
    kern = rng.standard_normal((1, 1, k, k))
    d = rng.standard_normal((1, 1, 4, 4))
    dx, _, _ = ref.conv2d_backward(x, kern, d, stride=stride, padding=0)
    close(dx[0, 0], _full_conv_rot180(d[0, 0], kern[0, 0], stride), rtol=1e-12, atol=1e-12)


def _numeric_grad(f, arr, eps=1e-6):
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        fp = f()
        arr[idx] = old - eps
        fm = f()
        arr[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g


def test_loop_conv_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 5, 6))
    W = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    probe = rng.standard_normal((2, 3, 3, 3))  # E = Σ probe · z  ⇒  δ = probe
    kw = dict(stride=(2, 2), padding=(1, 0))

    def energy():
        return float(np.sum(probe * ref.conv2d_forward(x, W, b, **kw)))

    assert ref.conv2d_forward(x, W, b, **kw).shape == probe.shape
    dx, dW, db = ref.conv2d_backward(x, W, probe, **kw)
    close(dx, _numeric_grad(energy, x), rtol=1e-6, atol=1e-7)
    close(dW, _numeric_grad(energy, W), rtol=1e-6, atol=1e-7)
    close(db, _numeric_grad(energy, b), rtol=1e-6, atol=1e-7)


def test_loop_pooling_and_dense_match_finite_differences():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 5, 5))          # distinct values: no max ties
    probe_p = rng.standard_normal((2, 2, 2, 2))
    for fwd, bwd in ((ref.maxpool_forward, ref.maxpool_backward),
                     (ref.avgpool_forward, ref.avgpool_backward)):
        def energy():
            return float(np.sum(probe_p * fwd(x, 3, 2)))
        close(bwd(x, probe_p, 3, 2), _numeric_grad(energy, x), rtol=1e-6, atol=1e-7)

    xd = rng.standard_normal((3, 4))
    Wd = rng.standard_normal((5, 4))
    bd = rng.standard_normal(5)
    probe_d = rng.standard_normal((3, 5))

    def energy_d():
        return float(np.sum(probe_d * ref.dense_forward(xd, Wd, bd)))

    dx, dW, db = ref.dense_backward(xd, Wd, probe_d)
    close(dx, _numeric_grad(energy_d, xd), rtol=1e-6, atol=1e-7)
    close(dW, _numeric_grad(energy_d, Wd), rtol=1e-6, atol=1e-7)
    close(db, _numeric_grad(energy_d, bd), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["identity", "relu", "sigmoid", "tanh", "softmax"])
def test_loop_activation_backward_matches_finite_differences(name):
    rng = np.random.default_rng(5)
    z = rng.standard_normal((3, 4))
    z[np.abs(z) < 1e-3] = 0.5                      # keep away from ReLU's kink
    probe = rng.standard_normal((3, 4))

    def energy():
        return float(np.sum(probe * ref.activation_forward(name, z)))

    a = ref.activation_forward(name, z)
    close(ref.activation_backward(name, z, a, probe), _numeric_grad(energy, z),
          rtol=1e-6, atol=1e-7)


def test_loop_softmax_cross_entropy_delta():
    rng = np.random.default_rng(6)
    z = rng.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    a = ref.softmax_forward(z)

    def loss():
        return ref.cross_entropy_loss(ref.softmax_forward(z), labels)

    d = ref.softmax_cross_entropy_delta(a, labels)
    close(d, (a - np.eye(3)[labels]) / 4, rtol=0, atol=1e-15)
    close(d, _numeric_grad(loss, z), rtol=1e-6, atol=1e-8)


def test_loop_maxpool_ties_go_to_first_maximum():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, :2, :2] = 7.0                             # all four tie
    x[0, 0, 0:2, 2:4] = [[1.0, 5.0], [5.0, 5.0]]      # three-way tie, first at (0, 1)
    d = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = ref.maxpool_backward(x, d, 2)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, 0, 0] = 1.0
    expected[0, 0, 0, 3] = 2.0
    expected[0, 0, 2, 0] = 3.0
    expected[0, 0, 2, 2] = 4.0
    close(dx, expected, rtol=0, atol=0)


def test_output_size_rule():
    assert ref.output_size(5, 3, 2, 1) == 3
    assert ref.output_size(28, 5, 1, 2) == 28
    assert ref.output_size(1000, 10, 1, 0) == 991
    assert ref.output_size(991, 2, 2, 0) == 495      # floor mode (ceil_mode would give 496)
    assert ref.output_size(7, 2, 3, 0) == 2


# =============================================================================================
# (b) the bpviz core against the loop reference
# =============================================================================================


def test_core_conv_math_reference_case():
    layer = Conv2D(2, 3, stride=2, padding=1, activation="identity")
    assert tuple(layer.build((3, 5, 5))) == (2, 3, 3)
    layer.params["W"][...] = MATH_W
    layer.params["b"][...] = MATH_B
    close(layer.forward(MATH_X.copy()), MATH_Z, rtol=0, atol=1e-12)
    layer.backward(MATH_DELTA.copy())
    close(MATH_W - MATH_LR * layer.grads["W"], MATH_W_AFTER, rtol=0, atol=1e-9)
    close(MATH_B - MATH_LR * layer.grads["b"], MATH_B_AFTER, rtol=0, atol=1e-9)


def test_core_conv_worked_case():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 1, 3, 3))
    h = rng.standard_normal((1, 1, 2, 2))
    d = rng.standard_normal((1, 1, 2, 2))
    layer = Conv2D(1, 2, activation="identity")
    assert tuple(layer.build((1, 3, 3))) == (1, 2, 2)
    layer.params["W"][...] = h
    layer.forward(x)
    dx = layer.backward(d)
    H, D = h[0, 0], d[0, 0]
    close(dx[0, 0, 1, 1],
          D[0, 0] * H[1, 1] + D[0, 1] * H[1, 0] + D[1, 0] * H[0, 1] + D[1, 1] * H[0, 0],
          rtol=0, atol=1e-14)


# (N, C, H, W, F, kernel, stride, padding)
CONV_CASES = [
    (2, 3, 5, 5, 2, 3, 2, 1),
    (3, 1, 6, 6, 4, 3, 1, 0),
    (2, 2, 7, 7, 3, 3, 1, 1),
    (1, 2, 8, 8, 2, 5, 1, 2),
    (2, 3, 9, 9, 2, 3, 3, 0),
    (2, 2, 7, 6, 3, 4, 2, 1),           # floor mode drops a row/column
    (2, 2, 6, 9, 3, (2, 3), 1, 0),      # non-square kernel, non-square input
    (2, 2, 7, 8, 2, (3, 2), (2, 1), (1, 0)),
    (1, 3, 5, 7, 4, (1, 5), (1, 2), (0, 2)),
    (2, 1, 4, 4, 2, 4, 1, 0),           # kernel covers the whole input: 1×1 output
    (3, 2, 5, 5, 2, 1, 1, 0),           # 1×1 kernel
    (2, 1, 3, 3, 1, 2, 1, 3),           # padding larger than the kernel
]


def _case_id(case):
    return "N{}C{}H{}W{}F{}-k{}-s{}-p{}".format(*case).replace(" ", "")


@pytest.mark.parametrize("scatter", ["bincount", "per-offset adds"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[_case_id(c) for c in CONV_CASES])
def test_core_conv2d_matches_loop(case, scatter, monkeypatch):
    # ∂x is scattered with one bincount for small batches and one add per kernel offset for
    # large ones; both must agree with the loops.
    monkeypatch.setattr(conv_module, "BINCOUNT_MAX", 2**16 if scatter == "bincount" else 0)
    N, C, H, Wd, F, k, s, p = case
    rng = np.random.default_rng(zlib.crc32(_case_id(case).encode()))
    kh, kw = ref._pair(k)
    x = rng.standard_normal((N, C, H, Wd))
    W = rng.standard_normal((F, C, kh, kw))
    b = rng.standard_normal(F)

    layer = Conv2D(F, k, stride=s, padding=p, activation="identity")
    out_shape = tuple(layer.build((C, H, Wd)))
    layer.params["W"][...] = W
    layer.params["b"][...] = b

    z_ref = ref.conv2d_forward(x, W, b, s, p)
    assert out_shape == z_ref.shape[1:]
    y = layer.forward(x.copy())
    assert y.shape == z_ref.shape
    close(y, z_ref)
    close(layer.z, z_ref)

    g = rng.standard_normal(z_ref.shape)
    dx = layer.backward(g.copy())
    dx_ref, dW_ref, db_ref = ref.conv2d_backward(x, W, g, s, p)
    close(layer.delta, g)                   # identity activation: δ = ∂loss/∂a
    close(layer.grads["W"], dW_ref)
    close(layer.grads["b"], db_ref)
    assert dx.shape == x.shape
    close(dx, dx_ref)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax"])
def test_core_conv2d_activation_matches_loop(activation):
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 2, 6, 5))
    W = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    layer = Conv2D(3, 3, stride=1, padding=1, activation=activation)
    layer.build((2, 6, 5))
    layer.params["W"][...] = W
    layer.params["b"][...] = b
    z_ref = ref.conv2d_forward(x, W, b, 1, 1)
    if activation == "softmax":   # softmax over the channel axis (axis 1)
        flat = z_ref.transpose(0, 2, 3, 1).reshape(-1, 3)
        a_ref = ref.softmax_forward(flat).reshape(2, 6, 5, 3).transpose(0, 3, 1, 2)
    else:
        a_ref = ref.activation_forward(activation, z_ref)
    close(layer.forward(x.copy()), a_ref)
    g = rng.standard_normal(a_ref.shape)
    dx = layer.backward(g.copy())
    if activation == "softmax":
        gf = g.transpose(0, 2, 3, 1).reshape(-1, 3)
        af = a_ref.transpose(0, 2, 3, 1).reshape(-1, 3)
        delta_ref = ref.softmax_backward(None, af, gf).reshape(2, 6, 5, 3).transpose(0, 3, 1, 2)
    else:
        delta_ref = ref.activation_backward(activation, z_ref, a_ref, g)
    close(layer.delta, delta_ref)
    dx_ref, dW_ref, db_ref = ref.conv2d_backward(x, W, delta_ref, 1, 1)
    close(layer.grads["W"], dW_ref)
    close(layer.grads["b"], db_ref)
    close(dx, dx_ref)


# (N, C, H, W, size, stride)
POOL_CASES = [
    (2, 3, 4, 4, 2, None),
    (2, 2, 5, 5, 2, None),               # floor mode: last row/column dropped
    (1, 2, 7, 7, 3, 2),                  # overlapping windows
    (2, 1, 6, 9, 3, 3),
    (2, 2, 6, 7, (2, 3), None),          # non-square window
    (1, 3, 8, 7, (3, 2), (2, 1)),
    (2, 2, 5, 5, 1, None),
    (1, 1, 6, 6, 2, 1),
]


def _pool_id(case):
    return "N{}C{}H{}W{}-k{}-s{}".format(*case).replace(" ", "")


def _pool_layer(cls, size, stride):
    return cls(size) if stride is None else cls(size, stride=stride)


@pytest.mark.parametrize("case", POOL_CASES, ids=[_pool_id(c) for c in POOL_CASES])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_core_pool_matches_loop(kind, case):
    N, C, H, Wd, size, stride = case
    cls, fwd, bwd = ((MaxPool2D, ref.maxpool_forward, ref.maxpool_backward) if kind == "max"
                     else (AvgPool2D, ref.avgpool_forward, ref.avgpool_backward))
    rng = np.random.default_rng(zlib.crc32((kind + _pool_id(case)).encode()))
    x = rng.standard_normal((N, C, H, Wd))
    layer = _pool_layer(cls, size, stride)
    out_shape = tuple(layer.build((C, H, Wd)))
    y_ref = fwd(x, size, stride)
    assert out_shape == y_ref.shape[1:]
    y = layer.forward(x.copy())
    close(y, y_ref)
    g = rng.standard_normal(y_ref.shape)
    dx = layer.backward(g.copy())
    assert dx.shape == x.shape
    close(dx, bwd(x, g, size, stride))


@pytest.mark.parametrize("size,stride", [(2, None), (3, 2), (2, 1), ((2, 3), None)])
def test_core_maxpool_ties_match_loop(size, stride):
    """Integer-valued inputs tie a lot; the first maximum (row-major) must get the δ."""
    rng = np.random.default_rng(31)
    x = rng.integers(0, 3, size=(2, 2, 7, 7)).astype(np.float64)
    x[0, 0] = 1.0                         # one map of all-equal values
    layer = _pool_layer(MaxPool2D, size, stride)
    layer.build((2, 7, 7))
    y_ref = ref.maxpool_forward(x, size, stride)
    close(layer.forward(x.copy()), y_ref)
    g = rng.standard_normal(y_ref.shape)
    close(layer.backward(g.copy()), ref.maxpool_backward(x, g, size, stride))


# (N, in, units)
DENSE_CASES = [(1, 5, 3), (4, 7, 2), (3, 1, 4), (6, 10, 1), (2, 784, 16)]


@pytest.mark.parametrize("N,n_in,units", DENSE_CASES)
@pytest.mark.parametrize("activation", ["identity", "relu", "sigmoid", "tanh", "softmax"])
def test_core_dense_matches_loop(N, n_in, units, activation):
    rng = np.random.default_rng(N * 1000 + n_in * 10 + units)
    x = rng.standard_normal((N, n_in))
    W = rng.standard_normal((units, n_in)) / np.sqrt(n_in)
    b = rng.standard_normal(units)
    layer = Dense(units, activation=activation)
    assert tuple(layer.build((n_in,))) == (units,)
    assert layer.params["W"].shape == (units, n_in)
    layer.params["W"][...] = W
    layer.params["b"][...] = b

    z_ref = ref.dense_forward(x, W, b)
    a_ref = ref.activation_forward(activation, z_ref)
    close(layer.forward(x.copy()), a_ref)
    close(layer.z, z_ref)

    g = rng.standard_normal(a_ref.shape)
    dx = layer.backward(g.copy())
    delta_ref = ref.activation_backward(activation, z_ref, a_ref, g)
    close(layer.delta, delta_ref)
    if activation == "identity":
        close(layer.delta, g)
    dx_ref, dW_ref, db_ref = ref.dense_backward(x, W, delta_ref)
    close(layer.grads["W"], dW_ref)
    close(layer.grads["b"], db_ref)
    close(dx, dx_ref)


def test_core_flatten_round_trip():
    rng = np.random.default_rng(41)
    x = rng.standard_normal((3, 2, 4, 5))
    layer = Flatten()
    assert tuple(layer.build((2, 4, 5))) == (40,)
    y = layer.forward(x.copy())
    close(y, x.reshape(3, -1))
    g = rng.standard_normal((3, 40))
    close(layer.backward(g.copy()), g.reshape(x.shape))


@pytest.mark.parametrize("layer_factory,in_shape", [
    (lambda: Conv2D(3, (3, 2), stride=(2, 1), padding=1, activation="tanh"), (2, 7, 6)),
    (lambda: MaxPool2D(2), (2, 6, 6)),
    (lambda: AvgPool2D(3, stride=2), (2, 7, 7)),
    (lambda: Dense(5, activation="sigmoid"), (9,)),
])
def test_core_float32_close_to_loop(layer_factory, in_shape):
    """float32 layers stay float32 and agree with the float64 reference to float32 accuracy."""
    rng = np.random.default_rng(51)
    layer = layer_factory()
    layer.build(in_shape, dtype=np.float32)
    x = rng.standard_normal((2,) + tuple(in_shape)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(g)
    assert dx.dtype == np.float32
    for v in layer.grads.values():
        assert v.dtype == np.float32

    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    P = {k: v.astype(np.float64) for k, v in layer.params.items()}
    tol = dict(rtol=1e-4, atol=1e-5)
    if isinstance(layer, Conv2D):
        z = ref.conv2d_forward(x64, P["W"], P["b"], layer.stride, layer.padding)
        a = ref.tanh_forward(z)
        close(y, a, **tol)
        delta = ref.tanh_backward(z, a, g64)
        dx_ref, dW, db = ref.conv2d_backward(x64, P["W"], delta, layer.stride, layer.padding)
        close(layer.grads["W"], dW, **tol)
        close(layer.grads["b"], db, **tol)
    elif isinstance(layer, Dense):
        z = ref.dense_forward(x64, P["W"], P["b"])
        a = ref.sigmoid_forward(z)
        close(y, a, **tol)
        delta = ref.sigmoid_backward(z, a, g64)
        dx_ref, dW, db = ref.dense_backward(x64, P["W"], delta)
        close(layer.grads["W"], dW, **tol)
        close(layer.grads["b"], db, **tol)
    elif isinstance(layer, MaxPool2D):
        close(y, ref.maxpool_forward(x64, 2), **tol)
        dx_ref = ref.maxpool_backward(x64, g64, 2)
    else:
        close(y, ref.avgpool_forward(x64, 3, 2), **tol)
        dx_ref = ref.avgpool_backward(x64, g64, 3, 2)
    close(dx, dx_ref, **tol)


# ---------------------------------------------------------------------------------------------
# a whole network: core Network vs LoopNetwork, one step


def _core_layers(net):
    layers = getattr(net, "layers", None)
    assert layers is not None, "Network should expose its layers as .layers"
    return list(layers)


def test_core_network_step_matches_loop_network():
    rng = np.random.default_rng(61)
    layers = [
        Conv2D(3, 3, padding=1, activation="relu"),
        MaxPool2D(2),
        Conv2D(4, (3, 2), stride=(1, 2), activation="tanh"),
        AvgPool2D(2, stride=1),
        Flatten(),
        Dense(6, activation="sigmoid"),
        Dense(4, activation="softmax"),
    ]
    net = Network(input_shape=(2, 10, 12), layers=layers, loss="cross_entropy", seed=0)
    spec = [
        {"type": "conv2d", "stride": 1, "padding": 1, "activation": "relu"},
        {"type": "maxpool", "size": 2, "stride": None},
        {"type": "conv2d", "stride": (1, 2), "padding": 0, "activation": "tanh"},
        {"type": "avgpool", "size": 2, "stride": 1},
        {"type": "flatten"},
        {"type": "dense", "activation": "sigmoid"},
        {"type": "dense", "activation": "softmax"},
    ]
    core_layers = _core_layers(net)
    params = [{k: v.copy() for k, v in L.params.items()} or None for L in core_layers]
    loop = ref.LoopNetwork(spec, params, loss="cross_entropy")

    x = rng.standard_normal((5, 2, 10, 12))
    labels = np.array([0, 3, 1, 2, 3])
    out = net.forward(x.copy())
    close(out, loop.forward(x))
    loss = net.backward(labels)
    loss_ref = loop.backward(labels)
    close(loss, loss_ref)
    for i, (L, g_ref) in enumerate(zip(core_layers, loop.grads)):
        for key, v in g_ref.items():
            np.testing.assert_allclose(L.grads[key], v, err_msg=f"layer {i} grad {key}", **TOL)
        if "delta" in loop.cache[i]:
            np.testing.assert_allclose(L.delta, loop.cache[i]["delta"],
                                       err_msg=f"layer {i} delta", **TOL)
