"""Stepping one layer at a time: iter_forward / iter_backward against the whole passes."""
from __future__ import annotations

import numpy as np
import pytest

from bpviz.core import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Network, TargetError
from gradtools import REL_STACK, assert_grad_close, numeric_grad


def make_net(seed=0):
    return Network((2, 6, 6), [
        Conv2D(3, 3, padding=1, activation="tanh"),
        MaxPool2D(2),
        Conv2D(2, 2, activation="sigmoid"),
        AvgPool2D(2, stride=1),
        Flatten(),
        Dense(4, "tanh"),
        Dense(3, "softmax"),
    ], loss="cross_entropy", seed=seed)


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(3, 2, 6, 6)), np.array([0, 2, 1])


def test_iter_forward_yields_each_layer_in_order_setting_only_that_layer(data):
    """iter_forward yields 0 … L−1; at each yield layers ≤ i have z and a, later ones none."""
    x, _ = data
    net = make_net()
    net.forward(x)                                   # earlier pass: caches must be cleared
    seen = []
    for i in net.iter_forward(x):
        seen.append(i)
        for j, layer in enumerate(net.layers):
            if j <= i:
                assert layer.z is not None and layer.a is not None, (i, j)
            else:
                assert layer.z is None and layer.a is None, (i, j)
        prev = x if i == 0 else net.layers[i - 1].a
        assert net.layers[i].x is prev                # the layer consumed the previous output
    assert seen == list(range(len(net.layers)))


def test_iter_backward_yields_last_to_first_setting_only_that_layer(data):
    """iter_backward yields L−1 … 0; at each yield layers ≥ i have δ and fresh grads, others not."""
    x, t = data
    net = make_net()
    net.forward(x)
    old_grads = [{k: g for k, g in l.grads.items()} for l in net.layers]
    seen = []
    for i in net.iter_backward(t):
        seen.append(i)
        for j, layer in enumerate(net.layers):
            if j >= i:
                assert layer.delta is not None, (i, j)
                assert all(layer.grads[k] is not old_grads[j][k] for k in layer.grads), (i, j)
            else:
                assert layer.delta is None, (i, j)
                assert all(layer.grads[k] is old_grads[j][k] for k in layer.grads), (i, j)
    assert seen == list(range(len(net.layers) - 1, -1, -1))
    assert net.loss_value is not None


def test_stepped_passes_equal_whole_passes_bitwise(data):
    """Stepping forward and backward layer by layer gives exactly the whole-pass arrays."""
    x, t = data
    whole, stepped = make_net(), make_net()
    out = whole.forward(x)
    loss = whole.backward(t)
    for _ in stepped.iter_forward(x):
        pass
    assert np.array_equal(stepped.layers[-1].a, out)
    for _ in stepped.iter_backward(t):
        pass
    assert stepped.loss_value == loss
    for a, b in zip(whole.layers, stepped.layers):
        for name in ("z", "a", "delta"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (a.index, name)
        for k in a.grads:
            assert np.array_equal(a.grads[k], b.grads[k]), (a.index, k)
    assert np.array_equal(whole.input_grad, stepped.input_grad)


def test_stepping_can_pause_and_resume_between_layers(data):
    """Advancing the generators with next() one layer at a time gives the same result."""
    x, t = data
    whole, stepped = make_net(), make_net()
    whole.forward(x)
    whole.backward(t)
    fwd = stepped.iter_forward(x)
    assert next(fwd) == 0
    assert stepped.layers[1].z is None
    rest = list(fwd)
    assert rest == list(range(1, len(stepped.layers)))
    bwd = stepped.iter_backward(t)
    assert next(bwd) == len(stepped.layers) - 1
    assert stepped.layers[-2].delta is None
    list(bwd)
    for a, b in zip(whole.layers, stepped.layers):
        assert np.array_equal(a.delta, b.delta)


def test_input_grad_matches_finite_differences(data):
    """net.input_grad equals a central-difference derivative of the loss w.r.t. x."""
    x, t = data
    net = make_net(seed=3)
    x = x[:2].copy()
    net.forward(x)
    net.backward(t[:2])
    analytic = np.array(net.input_grad, copy=True)
    assert analytic.shape == x.shape

    def loss():
        net.forward(x)
        return net.loss_of(t[:2])
    assert_grad_close(analytic, numeric_grad(loss, x), REL_STACK, "input_grad")


def test_input_grad_mlp_is_first_delta_times_weights():
    """For a Dense first layer, input_grad = δ¹ W¹ (independent formula)."""
    rng = np.random.default_rng(4)
    net = Network((3,), [Dense(4, "tanh"), Dense(2, "identity")], loss="mse")
    x = rng.normal(size=(2, 3))
    net.forward(x)
    net.backward(rng.normal(size=(2, 2)))
    np.testing.assert_allclose(net.input_grad, net.layers[0].delta @ net.layers[0].params["W"],
                               rtol=1e-12)


def test_backward_before_forward_is_refused():
    """iter_backward without a forward pass raises a TargetError (a ValueError)."""
    net = make_net()
    with pytest.raises(TargetError, match="forward"):
        next(net.iter_backward(np.array([0])))
    assert net.input_grad is None


def test_forward_clears_previous_backward_state(data):
    """A new forward pass clears every δ and the input gradient of the previous pass."""
    x, t = data
    net = make_net()
    net.forward(x)
    net.backward(t)
    net.forward(x)
    assert all(l.delta is None for l in net.layers)
    assert net.input_grad is None
