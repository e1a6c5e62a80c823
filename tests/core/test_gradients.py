"""Finite-difference checks of every layer, activation, loss and stack (tests/core/gradtools.py).

Central differences in float64 with h = 1e-6; relative error ≤ 1e-6 for one smooth layer,
≤ 1e-5 for stacks, plus allclose(atol=1e-5, rtol=1e-3). ReLU and max-pool inputs are kept
away from kinks (|z| and top-two gaps ≫ 100·h); exact ties are tested against the rules.
"""
from __future__ import annotations

import numpy as np
import pytest

from bpviz.core import (AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Network,
                        gradient_check)
from gradtools import (H, REL_ONE_LAYER, REL_STACK, check_layer, check_network,
                       distinct_values)

SMOOTH = ["identity", "sigmoid", "tanh", "softmax"]


def built(layer, input_shape, seed=0):
    layer.build(input_shape, np.random.default_rng(seed), np.float64, 0)
    return layer


def relu_safe_input(layer, shape, rng, margin=100 * H, tries=200):
    """An input whose pre-activations all satisfy |z| > margin (no ReLU kink nearby)."""
    for _ in range(tries):
        x = rng.normal(size=shape)
        layer.forward(x)
        if np.min(np.abs(layer.z)) > 1e3 * margin:
            return x
    pytest.fail("could not draw a kink-free input")


# ----- single layers ----------------------------------------------------------------------------
@pytest.mark.parametrize("activation", SMOOTH)
def test_dense_layer_gradients(activation):
    """Dense with each smooth activation: dx, dW, db match finite differences (≤ 1e-6)."""
    rng = np.random.default_rng(1)
    layer = built(Dense(4, activation), (5,))
    check_layer(layer, rng.normal(size=(3, 5)), rng)


def test_dense_relu_gradients_away_from_kinks():
    """Dense + ReLU with every |z| ≫ 100·h: gradients match finite differences."""
    rng = np.random.default_rng(2)
    layer = built(Dense(6, "relu"), (5,))
    x = relu_safe_input(layer, (4, 5), rng)
    assert 0 < np.mean(layer.z > 0) < 1          # both sides of the kink are exercised
    check_layer(layer, x, rng)


@pytest.mark.parametrize("kernel,stride,padding,hw", [
    (3, 1, 0, (5, 5)),
    (3, 2, 1, (5, 5)),
    ((2, 3), 1, 0, (4, 6)),            # non-square kernel
    ((3, 2), (2, 1), (1, 0), (6, 5)),  # (h, w) pairs for stride and padding
    (2, 2, 0, (5, 5)),                 # dropped last row/column
    (1, 3, 0, (7, 4)),
    (4, (1, 3), (2, 1), (3, 7)),
])
def test_conv_layer_gradients(kernel, stride, padding, hw):
    """Conv2D (tanh) with strides, padding, non-square kernels and (h, w) pairs matches FD."""
    rng = np.random.default_rng(3)
    layer = built(Conv2D(3, kernel, stride=stride, padding=padding, activation="tanh"),
                  (2,) + hw)
    layer.params["b"][...] = rng.normal(size=3)
    check_layer(layer, rng.normal(size=(2, 2) + hw), rng)


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "softmax"])
def test_conv_activation_gradients(activation):
    """Conv2D with identity, sigmoid and softmax (over channels) activations matches FD."""
    rng = np.random.default_rng(4)
    layer = built(Conv2D(4, 2, padding=1, activation=activation), (3, 4, 4))
    out = layer.forward(rng.normal(size=(2, 3, 4, 4)))
    if activation == "softmax":                   # softmax is over axis 1, the channels
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    check_layer(layer, rng.normal(size=(2, 3, 4, 4)), rng)


def test_conv_relu_gradients_away_from_kinks():
    """Conv2D + ReLU with every |z| ≫ 100·h matches FD."""
    rng = np.random.default_rng(5)
    layer = built(Conv2D(2, 3, padding=1, activation="relu"), (1, 4, 4))
    x = relu_safe_input(layer, (1, 1, 4, 4), rng)
    check_layer(layer, x, rng)


POOLS = [
    (2, None, 0, False, (4, 4)),
    (2, 1, 0, False, (4, 5)),          # stride ≠ size (overlapping windows)
    (3, 2, 0, False, (7, 6)),
    (2, 3, 0, False, (7, 7)),          # stride > size (gaps between windows)
    (2, 2, 0, True, (5, 5)),           # ceil_mode: a partial last window
    (3, 2, 1, True, (6, 5)),           # ceil_mode with padding
    (3, 2, 1, False, (5, 5)),          # pool padding
    ((2, 3), (1, 2), (1, 1), False, (4, 6)),
]


@pytest.mark.parametrize("size,stride,padding,ceil,hw", POOLS)
def test_avgpool_gradients(size, stride, padding, ceil, hw):
    """AvgPool2D with stride ≠ size, ceil_mode and padding matches FD."""
    rng = np.random.default_rng(6)
    layer = built(AvgPool2D(size, stride=stride, padding=padding, ceil_mode=ceil), (2,) + hw)
    check_layer(layer, rng.normal(size=(2, 2) + hw), rng)


@pytest.mark.parametrize("size,stride,padding,ceil,hw", POOLS)
def test_maxpool_gradients_with_distinct_values(size, stride, padding, ceil, hw):
    """MaxPool2D (stride ≠ size, ceil_mode, padding) on inputs with gaps ≥ 0.01 matches FD."""
    rng = np.random.default_rng(7)
    layer = built(MaxPool2D(size, stride=stride, padding=padding, ceil_mode=ceil), (2,) + hw)
    check_layer(layer, distinct_values(rng, (2, 2) + hw), rng)


def test_avgpool_ceil_mode_partial_window_divides_by_covered_count():
    """A ceil_mode window hanging over the edge averages only the positions it covers."""
    layer = built(AvgPool2D(2, ceil_mode=True), (1, 3, 3))
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    out = layer.forward(x)
    expected = np.array([[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8 / 1]])
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-12)


def test_avgpool_padding_counts_padded_zeros():
    """With pool padding, the zeros of the padding count in the window size (3×3 → /9)."""
    layer = built(AvgPool2D(3, stride=1, padding=1), (1, 2, 2))
    out = layer.forward(np.ones((1, 1, 2, 2)))
    np.testing.assert_allclose(out, np.full((1, 1, 2, 2), 4 / 9), rtol=1e-12)


def test_flatten_gradients():
    """Flatten passes δ back reshaped to the input (FD check)."""
    rng = np.random.default_rng(8)
    layer = built(Flatten(), (2, 3, 4))
    check_layer(layer, rng.normal(size=(2, 2, 3, 4)), rng)
    assert layer.output_shape == (24,)


# ----- exact ties: the stated rules --------------------------------------------------------------
def test_relu_derivative_at_zero_is_zero():
    """ReLU'(0) = 0: where z is exactly 0, no δ passes."""
    layer = built(Dense(3, "relu"), (2,))
    layer.params["W"][...] = np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]])
    layer.params["b"][...] = 0.0
    layer.forward(np.array([[0.0, 5.0], [2.0, 1.0]]))
    assert layer.z[0, 0] == 0 and layer.z[0, 1] == 0 and layer.z[1, 1] == 0
    layer.backward(np.ones((2, 3)))
    assert np.array_equal(layer.delta, np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))


def test_maxpool_tie_goes_to_first_maximum_row_major():
    """On ties, max-pool sends the whole δ to the first maximum in row-major order."""
    layer = built(MaxPool2D(2), (1, 4, 4))
    x = np.array([[1, 3, 5, 5],
                  [3, 2, 5, 5],
                  [7, 0, 0, 1],
                  [0, 7, 1, 0]], dtype=np.float64)[None, None]
    out = layer.forward(x)
    assert np.array_equal(out[0, 0], [[3, 5], [7, 1]])
    dx = layer.backward(np.array([[10.0, 20.0], [30.0, 40.0]])[None, None])
    expected = np.array([[0, 10, 20, 0],
                         [0, 0, 0, 0],
                         [30, 0, 0, 40],
                         [0, 0, 0, 0]], dtype=np.float64)
    assert np.array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("memory", ["NCHW", "CNHW", "CHWN", "strided"])
def test_maxpool_tiled_windows_route_like_the_general_path(memory):
    """Windows tiling the input exactly take a two-pass shortcut; on data full of ties (and
    in every memory layout a layer can receive) it must route δ as the general path does,
    here run on the same data with one extra row and column that floor mode drops."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(3, 4, 7, 9)).astype(np.float64)     # many ties
    d = rng.standard_normal((3, 4, 3, 4))
    inner = x[:, :, :6, :8]
    if memory == "CNHW":
        inner = np.ascontiguousarray(inner.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif memory == "CHWN":                        # a convolution's output (conv.py)
        inner = np.ascontiguousarray(inner.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    elif memory == "strided":
        inner = x[:, :, :6, :8]                   # a view with gaps
    else:
        inner = np.ascontiguousarray(inner)
    tiled = built(MaxPool2D(2), (4, 6, 8))
    general = built(MaxPool2D(2), (4, 7, 9))
    assert np.array_equal(tiled.forward(inner), general.forward(x))
    dx_tiled, dx_general = tiled.backward(d.copy()), general.backward(d.copy())
    assert np.array_equal(dx_tiled, dx_general[:, :, :6, :8])
    assert not dx_general[:, :, 6:, :].any() and not dx_general[:, :, :, 8:].any()
    assert np.array_equal(tiled.routing(), general.routing())


def test_maxpool_all_equal_overlapping_windows_route_to_each_windows_first_cell():
    """Stride 1 over a constant image: each window's δ lands on its own top-left cell."""
    layer = built(MaxPool2D(2, stride=1), (1, 3, 3))
    layer.forward(np.zeros((1, 1, 3, 3)))
    d = np.array([[1.0, 2.0], [4.0, 8.0]])
    dx = layer.backward(d[None, None])
    expected = np.zeros((3, 3))
    expected[:2, :2] = d
    assert np.array_equal(dx[0, 0], expected)


# ----- losses × output activations, through a small network ------------------------------------
def _targets(loss, rng, n, k):
    if loss == "cross_entropy":
        p = rng.uniform(0.1, 1, size=(n, k))
        return p / p.sum(axis=1, keepdims=True)       # probability targets
    return rng.uniform(0.05, 0.95, size=(n, k))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss,activation", [
    ("mse", "identity"), ("mse", "sigmoid"), ("mse", "tanh"), ("mse", "softmax"),
    ("bce", "sigmoid"),                 # fused (from logits)
    ("bce", "softmax"),                 # unfused (from probabilities)
    ("cross_entropy", "softmax"),       # fused (log-softmax)
    ("cross_entropy", "sigmoid"),       # unfused
])
def test_loss_and_output_activation_gradients(loss, activation, reduction):
    """Every loss × output activation, fused or not, "mean" and "sum": FD on all params and x."""
    rng = np.random.default_rng(9)
    net = Network((4,), [Dense(5, "tanh"), Dense(3, activation)], loss=loss,
                  reduction=reduction, seed=1)
    check_network(net, rng.normal(size=(3, 4)), _targets(loss, rng, 3, 3))


def test_cross_entropy_with_integer_labels_gradients():
    """Cross-entropy on class labels (one-hot internally) matches FD."""
    rng = np.random.default_rng(10)
    net = Network((4,), [Dense(4, "sigmoid"), Dense(3, "softmax")], loss="cross_entropy")
    check_network(net, rng.normal(size=(4, 4)), np.array([0, 2, 1, 2]))


def test_softmax_cross_entropy_on_conv_channels_gradients():
    """Softmax over channels of a conv output with per-pixel CE targets matches FD."""
    rng = np.random.default_rng(11)
    net = Network((2, 4, 4), [Conv2D(3, 3, padding=1, activation="softmax")],
                  loss="cross_entropy", seed=2)
    t = np.eye(3)[rng.integers(0, 3, size=(2, 4, 4))].transpose(0, 3, 1, 2)
    check_network(net, rng.normal(size=(2, 2, 4, 4)), t, rel_tol=REL_ONE_LAYER)


# ----- whole stacks -------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_smooth_cnn_stack_gradients(reduction):
    """Conv(tanh) → AvgPool → Conv(sigmoid, stride 2) → Flatten → Dense(softmax): FD ≤ 1e-5."""
    rng = np.random.default_rng(12)
    net = Network((2, 6, 6), [
        Conv2D(3, 3, padding=1, activation="tanh"),
        AvgPool2D(2, stride=1),
        Conv2D(2, (2, 3), stride=2, activation="sigmoid"),
        Flatten(),
        Dense(3, "softmax"),
    ], loss="cross_entropy", reduction=reduction, seed=3)
    check_network(net, rng.normal(size=(2, 2, 6, 6)), np.array([1, 2]))


def test_five_layer_mlp_gradients():
    """A 5-layer MLP with mixed smooth activations and MSE: FD ≤ 1e-5 on every parameter."""
    rng = np.random.default_rng(13)
    net = Network((3,), [Dense(4, "tanh"), Dense(4, "sigmoid"), Dense(4, "identity"),
                         Dense(3, "tanh"), Dense(2, "sigmoid")], loss="mse", seed=4)
    check_network(net, rng.normal(size=(3, 3)), rng.uniform(size=(3, 2)), rel_tol=REL_STACK)


def test_relu_maxpool_cnn_with_core_gradient_check():
    """Conv(relu) → MaxPool → Flatten → Dense: core gradient_check passes, ≤ 1 % skipped."""
    rng = np.random.default_rng(14)
    net = Network((1, 6, 6), [Conv2D(2, 3, padding=1, activation="relu"), MaxPool2D(2),
                              Flatten(), Dense(2, "sigmoid")], loss="bce", seed=5)
    x = distinct_values(rng, (2, 1, 6, 6), spacing=0.1)
    result = gradient_check(net, x, np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert result.worst == "pass", [(r.layer_index, r.tensor, r.rel_error) for r in result.results]
    for r in result.results:
        assert r.skipped_fraction <= 0.01
        assert r.rel_error <= REL_STACK


# ----- the core's gradient_check itself -----------------------------------------------------------
def _small_net():
    return Network((1, 5, 5), [Conv2D(2, 3, activation="tanh"), Flatten(),
                               Dense(3, "tanh"), Dense(2, "identity")], loss="mse", seed=6)


def test_gradient_check_passes_a_correct_network():
    """gradient_check returns "pass" for every tensor of a correct network."""
    rng = np.random.default_rng(15)
    x, t = rng.normal(size=(2, 1, 5, 5)), rng.normal(size=(2, 2))
    result = gradient_check(_small_net(), x, t)
    assert result.worst == "pass"
    kinds = {(r.layer_index, r.tensor) for r in result.results}
    assert {(0, "W"), (0, "b"), (2, "W"), (3, "b"), (3, "delta")} <= kinds


def test_gradient_check_catches_scaled_input_gradient(monkeypatch):
    """A Dense backward whose ∂x is 1.01× too large is reported as "fail"."""
    original = Dense.input_gradient
    monkeypatch.setattr(Dense, "input_gradient", lambda self: 1.01 * original(self))
    rng = np.random.default_rng(16)
    result = gradient_check(_small_net(), rng.normal(size=(2, 1, 5, 5)), rng.normal(size=(2, 2)))
    assert result.worst == "fail"
    assert any(r.status == "fail" and r.layer_index == 0 for r in result.results)


def test_gradient_check_catches_transposed_kernel_gradient(monkeypatch):
    """A Conv2D whose ∂W has its kernel axes transposed is reported as "fail"."""
    original = Conv2D.param_grads

    def broken(self, delta):
        original(self, delta)
        self.grads["W"] = self.grads["W"].transpose(0, 1, 3, 2).copy()
    monkeypatch.setattr(Conv2D, "param_grads", broken)
    rng = np.random.default_rng(17)
    result = gradient_check(_small_net(), rng.normal(size=(2, 1, 5, 5)), rng.normal(size=(2, 2)))
    bad = [r for r in result.results if r.layer_index == 0 and r.tensor == "W"]
    assert bad and bad[0].status == "fail" and result.worst == "fail"


def test_gradient_check_skips_kinks_and_does_not_pass_when_too_many():
    """With ReLU z exactly at 0, kinked coordinates are skipped and the badge is not "pass"."""
    net = Network((2,), [Dense(2, "relu"), Dense(1, "identity")], loss="mse", seed=7)
    net.set_params([{"W": np.array([[1.0, 0.0], [0.0, 1.0]]), "b": np.zeros(2)},
                    {"W": np.array([[1.0, 1.0]]), "b": np.zeros(1)}])
    x = np.array([[0.0, 1.0], [0.0, 2.0]])               # unit 0 sits at z = 0 exactly
    result = gradient_check(net, x, np.zeros((2, 1)))
    first = {r.tensor: r for r in result.results if r.layer_index == 0}
    assert first["b"].skipped >= 1
    assert first["b"].status != "pass"


# ----- determinism ----------------------------------------------------------------------------------
def test_two_backward_passes_are_bitwise_identical():
    """Forward + backward twice on the same input gives identical δ and gradients."""
    rng = np.random.default_rng(18)
    net = Network((2, 6, 6), [Conv2D(3, 3, activation="relu"), MaxPool2D(2), Flatten(),
                              Dense(4, "tanh"), Dense(3, "softmax")], loss="cross_entropy")
    x, t = rng.normal(size=(3, 2, 6, 6)), np.array([0, 1, 2])
    runs = []
    for _ in range(2):
        net.forward(x)
        loss = net.backward(t)
        runs.append((loss, [(l.delta.copy(), {k: g.copy() for k, g in l.grads.items()})
                            for l in net.layers], net.input_grad.copy()))
    (l1, r1, dx1), (l2, r2, dx2) = runs
    assert l1 == l2 and np.array_equal(dx1, dx2)
    for (d1, g1), (d2, g2) in zip(r1, r2):
        assert np.array_equal(d1, d2)
        assert g1.keys() == g2.keys() and all(np.array_equal(g1[k], g2[k]) for k in g1)


def test_vanishing_gradients_are_not_flagged_as_wrong():
    """A deep sigmoid stack's tiny but correct gradients pass (differences below FD noise)."""
    from bpviz.core import Dense, Network, gradient_check
    layers = [Dense(16, activation="sigmoid") for _ in range(8)] + [Dense(2, activation="softmax")]
    net = Network((2,), layers, loss="cross_entropy", seed=3)
    x = np.random.default_rng(0).normal(size=(4, 2))
    report = gradient_check(net, x, np.array([0, 1, 0, 1]), max_coords=12, tensors=("W",))
    first = report.results[0]
    assert np.max(np.abs(first.analytic)) < 1e-4          # the gradient really has vanished
    assert [r.status for r in report.results] == ["pass"] * len(report.results)
