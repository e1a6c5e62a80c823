"""The hand-typed reference cases of docs/MATH.md against the core.

Every expected number here is typed from MATH.md or computed by a short, independent NumPy
formula written in this file; nothing is computed with the code under test.
"""
from __future__ import annotations

import numpy as np
import pytest

from bpviz.core import SGD, Conv2D, Dense, MaxPool2D, Network, infer_shapes

# ----- §2 reference case, typed in from MATH.md ---------------------------------------------
X = np.array([
    [[0, 1, 1, 0, 2], [2, 2, 2, 2, 1], [1, 0, 0, 2, 0], [0, 1, 1, 0, 0], [1, 2, 0, 0, 2]],
    [[1, 0, 2, 2, 0], [0, 0, 0, 2, 0], [1, 2, 1, 2, 1], [1, 0, 0, 0, 0], [1, 2, 1, 1, 1]],
    [[2, 1, 2, 0, 0], [1, 0, 0, 1, 0], [0, 2, 1, 0, 1], [0, 1, 2, 2, 2], [2, 1, 0, 0, 1]],
], dtype=np.float64)[None]
W = np.array([
    [[[-1, 1, 0], [0, 1, 0], [0, 1, 1]],
     [[-1, -1, 0], [0, 0, 0], [0, -1, 0]],
     [[0, 0, -1], [0, 1, 0], [1, -1, -1]]],
    [[[1, 1, -1], [-1, -1, 1], [0, -1, 1]],
     [[0, 1, 0], [-1, 0, -1], [-1, 1, 0]],
     [[-1, 0, 0], [-1, 0, 1], [-1, 0, 0]]],
], dtype=np.float64)
B = np.array([1.0, 0.0])
OUT = np.array([
    [[6, 7, 5], [3, -1, -1], [2, -1, 4]],
    [[2, -5, -8], [1, -4, -4], [0, -5, -5]],
], dtype=np.float64)[None]
DELTA = np.array([
    [[0, 1, 1], [2, 2, 2], [1, 0, 0]],
    [[1, 0, 2], [0, 0, 0], [1, 2, 1]],
], dtype=np.float64)[None]
W_AFTER = np.array([
    [[[-1.008, 0.990, -0.009], [-0.005, 0.994, -0.006], [-0.006, 0.995, 0.996]],
     [[-1.004, -1.001, -0.004], [-0.010, -0.009, -0.012], [-0.002, -1.002, -0.002]],
     [[-0.002, -0.002, -1.003], [-0.005, 0.992, -0.005], [0.993, -1.008, -1.007]]],
    [[[0.998, 0.998, -1.001], [-1.004, -1.007, 0.997], [-0.004, -1.004, 0.998]],
     [[0.000, 0.999, 0.000], [-1.009, -0.005, -1.004], [-1.004, 1.000, 0.000]],
     [[-1.004, -0.006, -0.005], [-1.002, -0.005, 0.998], [-1.002, -0.001, 0.000]]],
])
B_AFTER = np.array([0.991, -0.007])


def reference_net(**kw) -> Network:
    net = Network((3, 5, 5), [Conv2D(2, 3, stride=2, padding=1)], **kw)
    net.layers[0].params["W"][...] = W
    net.layers[0].params["b"][...] = B
    return net


def test_reference_forward_reproduces_printed_output_exactly():
    """Conv2D(2, 3, stride 2, padding 1) on the MATH.md input gives the printed 2×3×3 maps."""
    net = reference_net()
    out = net.forward(X)
    assert out.shape == (1, 2, 3, 3)
    assert np.array_equal(out, OUT)
    assert np.array_equal(net.layers[0].z, OUT)        # identity activation: z == a


def test_reference_set_params_gives_same_forward():
    """Setting W, b through net.set_params gives the same printed output."""
    net = Network((3, 5, 5), [Conv2D(2, 3, stride=2, padding=1)])
    net.set_params([{"W": W, "b": B}])
    assert np.array_equal(net.forward(X), OUT)


def test_reference_update_gives_printed_weights():
    """MSE-sum with t = out − δ puts δ at the output; one SGD(0.001) step gives MATH.md's W, b."""
    net = reference_net(loss="mse", reduction="sum")
    out = net.forward(X)
    net.backward(out - DELTA)
    assert np.array_equal(net.layers[0].delta, DELTA)
    SGD(lr=0.001).step(net)
    w, b = net.layers[0].params["W"], net.layers[0].params["b"]
    np.testing.assert_allclose(w, W_AFTER, atol=5e-4, rtol=0)
    np.testing.assert_allclose(b, B_AFTER, atol=5e-4, rtol=0)
    # the exact values round to the printed three decimals
    np.testing.assert_allclose(np.round(w, 3), W_AFTER, atol=1e-12, rtol=0)
    np.testing.assert_allclose(np.round(b, 3), B_AFTER, atol=1e-12, rtol=0)


def test_reference_gradients_match_loop_formulas():
    """∂E/∂W = Σ_ij δ[f,i,j]·x_pad[c, 2i+m, 2j+n] and ∂E/∂b = Σ δ, written as plain loops."""
    net = reference_net(loss="mse", reduction="sum")
    net.backward(net.forward(X) - DELTA)
    xp = np.pad(X[0], ((0, 0), (1, 1), (1, 1)))
    dW = np.zeros_like(W)
    for f in range(2):
        for c in range(3):
            for m in range(3):
                for n in range(3):
                    dW[f, c, m, n] = sum(DELTA[0, f, i, j] * xp[c, 2 * i + m, 2 * j + n]
                                         for i in range(3) for j in range(3))
    assert np.array_equal(net.layers[0].grads["W"], dW)
    assert np.array_equal(net.layers[0].grads["b"], DELTA[0].sum(axis=(1, 2)))


# ----- §2 worked case: 2×2 kernel, stride 1, 3×3 input ---------------------------------------
def _conv_2x2(h, stride=1, size=3):
    layer = Conv2D(1, 2, stride=stride)
    layer.build((1, size, size), np.random.default_rng(0))
    layer.params["W"][...] = np.asarray(h, dtype=np.float64)[None, None]
    layer.params["b"][...] = 0.0
    return layer


def test_worked_case_center_pixel_gradient():
    """∂E/∂i₂₂ = δ₁₁h₂₂ + δ₁₂h₂₁ + δ₂₁h₁₂ + δ₂₂h₁₁ (1-based indices, as in MATH.md)."""
    h = np.array([[2.0, 3.0], [5.0, 7.0]])
    d = np.array([[11.0, 13.0], [17.0, 19.0]])
    layer = _conv_2x2(h)
    layer.forward(np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3))
    dx = layer.backward(d[None, None])
    expected = 11 * 7 + 13 * 5 + 17 * 3 + 19 * 2       # δ11h22 + δ12h21 + δ21h12 + δ22h11
    assert dx[0, 0, 1, 1] == expected == 231
    # corners touch only one output each: i11 = δ11h11, i33 = δ22h22
    assert dx[0, 0, 0, 0] == 11 * 2 and dx[0, 0, 2, 2] == 19 * 7


def _full_conv_rot180(d, h):
    """Full convolution of the zero-padded δ with the 180°-rotated kernel (MATH.md rule)."""
    kh, kw = h.shape
    dp = np.pad(d, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    r = h[::-1, ::-1]
    out = np.zeros((dp.shape[0] - kh + 1, dp.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(dp[i:i + kh, j:j + kw] * r)
    return out


def test_input_gradient_is_full_convolution_with_rotated_kernel():
    """Stride 1: the whole ∂E/∂x equals full-conv(δ, rot180(h))."""
    rng = np.random.default_rng(1)
    h, d = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    layer = _conv_2x2(h)
    layer.forward(rng.normal(size=(1, 1, 3, 3)))
    dx = layer.backward(d[None, None])
    np.testing.assert_allclose(dx[0, 0], _full_conv_rot180(d, h), rtol=1e-12, atol=1e-12)


def test_strided_input_gradient_is_dilated_full_convolution():
    """Stride 2: insert s − 1 zeros between δ's entries, then full-conv with rot180(h)."""
    rng = np.random.default_rng(2)
    h, d = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    layer = _conv_2x2(h, stride=2, size=4)           # 4×4 input, 2×2 output
    layer.forward(rng.normal(size=(1, 1, 4, 4)))
    dx = layer.backward(d[None, None])
    dilated = np.zeros((3, 3))
    dilated[::2, ::2] = d
    np.testing.assert_allclose(dx[0, 0], _full_conv_rot180(dilated, h), rtol=1e-12, atol=1e-12)


def test_output_size_examples_from_math_md():
    """10×10 kernel on 1000×1000 gives 991×991; 2×2 max-pooling with ceil_mode gives 496."""
    shapes = infer_shapes((1, 1000, 1000), [Conv2D(1, 10), MaxPool2D(2, ceil_mode=True)])
    assert shapes == [(1, 991, 991), (1, 496, 496)]
    assert infer_shapes((1, 991, 991), [MaxPool2D(2)]) == [(1, 495, 495)]


# ----- §1 MLP: δ^L by the table, and one step back ---------------------------------------------
def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _mlp(loss, out_act, reduction="sum", seed=3):
    net = Network((4,), [Dense(5, "sigmoid"), Dense(3, out_act)], loss=loss,
                  reduction=reduction, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 4))
    return net, x, rng


def _hand_forward(net, x):
    (W1, b1), (W2, b2) = [(l.params["W"], l.params["b"]) for l in net.layers]
    z1 = x @ W1.T + b1
    a1 = _sig(z1)
    z2 = a1 @ W2.T + b2
    return z1, a1, z2


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_mse_sigmoid_output_error_has_sigma_prime(reduction):
    """MSE + sigmoid: δ^L = (a − y) ⊙ σ(z)(1 − σ(z)) (divided by N for "mean")."""
    net, x, rng = _mlp("mse", "sigmoid", reduction)
    y = rng.uniform(size=(2, 3))
    _, _, z2 = _hand_forward(net, x)
    a = _sig(z2)
    net.forward(x)
    loss = net.backward(y)
    scale = 1.0 if reduction == "sum" else 0.5
    np.testing.assert_allclose(net.layers[1].delta, (a - y) * a * (1 - a) * scale, rtol=1e-12)
    assert loss == pytest.approx(0.5 * np.sum((a - y) ** 2) * scale, rel=1e-12)


def test_bce_sigmoid_output_error_is_a_minus_y():
    """BCE + sigmoid: δ^L = a − y, and C = −Σ [y ln a + (1 − y) ln(1 − a)]."""
    net, x, rng = _mlp("bce", "sigmoid")
    y = rng.uniform(size=(2, 3))
    _, _, z2 = _hand_forward(net, x)
    a = _sig(z2)
    net.forward(x)
    loss = net.backward(y)
    np.testing.assert_allclose(net.layers[1].delta, a - y, rtol=1e-12, atol=1e-15)
    assert loss == pytest.approx(-np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)), rel=1e-12)


def test_cross_entropy_softmax_output_error_is_a_minus_y():
    """CE + softmax: δ^L = a − y with one-hot y from labels, and C = −Σ y ln a."""
    net, x, _ = _mlp("cross_entropy", "softmax")
    labels = np.array([2, 0])
    y = np.eye(3)[labels]
    _, _, z2 = _hand_forward(net, x)
    a = np.exp(z2) / np.exp(z2).sum(axis=1, keepdims=True)
    net.forward(x)
    loss = net.backward(labels)
    np.testing.assert_allclose(net.layers[1].delta, a - y, rtol=1e-12, atol=1e-15)
    assert loss == pytest.approx(-np.sum(y * np.log(a)), rel=1e-12)


def test_mlp_hidden_error_and_gradients_follow_the_table():
    """δ^l = (W^{l+1})ᵀδ^{l+1} ⊙ σ'(z^l); ∂C/∂W^l = δ^l (a^{l-1})ᵀ summed over samples; ∂C/∂b^l = δ^l."""
    net, x, rng = _mlp("mse", "sigmoid")
    y = rng.uniform(size=(2, 3))
    z1, a1, z2 = _hand_forward(net, x)
    a2 = _sig(z2)
    d2 = (a2 - y) * a2 * (1 - a2)
    d1 = (d2 @ net.layers[1].params["W"]) * a1 * (1 - a1)
    net.forward(x)
    net.backward(y)
    np.testing.assert_allclose(net.layers[0].delta, d1, rtol=1e-12, atol=1e-15)
    dW1 = sum(np.outer(d1[s], x[s]) for s in range(2))
    dW2 = sum(np.outer(d2[s], a1[s]) for s in range(2))
    np.testing.assert_allclose(net.layers[0].grads["W"], dW1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.layers[1].grads["W"], dW2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.layers[0].grads["b"], d1.sum(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.layers[1].grads["b"], d2.sum(axis=0), rtol=1e-12, atol=1e-15)
    # update: W ← W − η ∂C/∂W, b ← b − η ∂C/∂b
    before = [{k: v.copy() for k, v in l.params.items()} for l in net.layers]
    SGD(lr=0.1).step(net)
    np.testing.assert_allclose(net.layers[0].params["W"], before[0]["W"] - 0.1 * dW1, rtol=1e-12)
    np.testing.assert_allclose(net.layers[1].params["b"], before[1]["b"] - 0.1 * d2.sum(0),
                               rtol=1e-12, atol=1e-15)


def test_sigmoid_derivative_is_at_most_a_quarter():
    """σ'(z) = σ(z)(1 − σ(z)) ≤ 0.25, with equality at z = 0."""
    net = Network((1,), [Dense(1, "sigmoid")], loss="mse", reduction="sum")
    net.set_params([{"W": np.ones((1, 1)), "b": np.zeros(1)}])
    z = np.linspace(-6, 6, 121)[:, None]
    a = net.forward(z)
    net.backward(a - 1.0)                              # ∂C/∂a = 1 everywhere
    sp = net.layers[0].delta[:, 0]
    assert np.all(sp <= 0.25) and sp[60] == 0.25
    np.testing.assert_allclose(sp, _sig(z[:, 0]) * (1 - _sig(z[:, 0])), rtol=1e-12)
