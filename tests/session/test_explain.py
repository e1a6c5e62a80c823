"""“Where did this δ come from” (bpviz.session.explain), without Qt: on random networks of every
layer type the terms sum to the core's ∂loss/∂a and, times f′(z), to the core's δ (1e-12);
weight-gradient terms sum to the core's ∂loss/∂W; the MATH.md ∂E/∂i₂₂ case has its 4 terms."""
import math

import numpy as np
import pytest

from bpviz.core import Network
from bpviz.session import explain as ex
from bpviz.session.session import Session

TOL = 1e-12

CONV_STACK = [
    {"type": "Conv2D", "filters": 3, "kernel_size": 3, "stride": 2, "padding": 1,
     "activation": "relu"},
    {"type": "MaxPool2D", "size": 3, "stride": 2, "padding": 1, "ceil_mode": True},  # overlap
    {"type": "Conv2D", "filters": 4, "kernel_size": 2, "stride": [1, 2],
     "padding": 1, "activation": "tanh"},
    {"type": "AvgPool2D", "size": 2, "stride": 1, "padding": 1},                     # overlap
    {"type": "Conv2D", "filters": 3, "kernel_size": 1, "activation": "softmax"},     # channels
    {"type": "AvgPool2D", "size": 3, "stride": 2, "ceil_mode": True},
    {"type": "Flatten"},
    {"type": "Dense", "units": 5, "activation": "sigmoid"},
    {"type": "Dense", "units": 4, "activation": "relu"},
]


def close(a, b) -> bool:
    return abs(a - b) <= TOL * max(1.0, abs(b))


def check_every_unit(net, samples=(0, 2)):
    checked = 0
    for li, layer in enumerate(net.layers):
        for sample in samples:
            for unit in np.ndindex(*layer.output_shape):
                e = ex.explain_delta(net, li, unit, sample)
                assert e.delta == layer.delta[(sample,) + unit]
                if e.mode != "fused":
                    assert close(e.upstream_sum(), e.upstream), (li, unit, e.source)
                assert close(e.rebuilt(), e.delta), (li, unit, e.mode)
                checked += 1
    return checked


@pytest.mark.parametrize("head, loss, reduction", [
    ({"type": "Dense", "units": 3, "activation": "softmax"}, "cross_entropy", "mean"),  # fused
    ({"type": "Dense", "units": 3, "activation": "softmax"}, "mse", "sum"),      # Jacobian
    ({"type": "Dense", "units": 3, "activation": "sigmoid"}, "mse", "mean"),
    ({"type": "Dense", "units": 3, "activation": "sigmoid"}, "bce", "sum"),      # fused
    ({"type": "Dense", "units": 3, "activation": "tanh"}, "mse", "mean"),
])
def test_terms_sum_to_the_core_for_every_unit_of_every_layer_type(head, loss, reduction):
    rng = np.random.default_rng(7)
    net = Network((2, 13, 11), CONV_STACK + [head], loss=loss, seed=3, reduction=reduction)
    x = rng.normal(size=(3, 2, 13, 11))
    t = rng.random((3, 3)) if loss != "cross_entropy" else np.array([0, 2, 1])
    net.forward(x)
    net.backward(t)
    assert check_every_unit(net) > 500


def test_flatten_as_output_and_a_hidden_softmax_vector():
    rng = np.random.default_rng(1)
    net = Network((2, 5, 5), [{"type": "Conv2D", "filters": 2, "kernel_size": 3,
                               "activation": "sigmoid"}, {"type": "Flatten"}], loss="mse")
    net.forward(rng.normal(size=(3, 2, 5, 5)))
    net.backward(rng.random((3, 18)))
    check_every_unit(net)
    e = ex.explain_delta(net, 0, (1, 2, 0))
    assert e.via is None and e.terms.columns == ("idx",)
    net = Network((4,), [{"type": "Dense", "units": 5, "activation": "softmax"},
                         {"type": "Dense", "units": 2, "activation": "identity"}], loss="mse")
    net.forward(rng.normal(size=(3, 4)))
    net.backward(rng.random((3, 2)))
    check_every_unit(net)
    e = ex.explain_delta(net, 0, (3,))
    assert e.mode == "softmax" and len(e.jacobian) == 5 and e.fprime is None


def test_math_md_worked_case_four_terms_for_the_centre_pixel():
    """∂E/∂i₂₂ = δ₁₁h₂₂ + δ₁₂h₂₁ + δ₂₁h₁₂ + δ₂₂h₁₁ (2×2 kernel h, stride 1, 1-based)."""
    net = Network((1, 3, 3), [{"type": "Conv2D", "filters": 1, "kernel_size": 1},
                              {"type": "Conv2D", "filters": 1, "kernel_size": 2}], loss="mse")
    params = net.get_params()
    params[0]["W"][:] = 1.0
    params[1]["W"][0, 0] = [[1.0, 2.0], [3.0, 4.0]]
    net.set_params(params)
    net.forward(np.arange(9.0).reshape(1, 1, 3, 3))
    net.backward(np.zeros((1, 1, 2, 2)))
    e = ex.explain_delta(net, 0, (0, 1, 1))                 # i₂₂ in 0-based (1, 1)
    pairs = {(t.index["i"], t.index["j"]): (t.index["m"], t.index["n"])
             for t in e.terms.top(10)}
    assert pairs == {(0, 0): (1, 1), (0, 1): (1, 0), (1, 0): (0, 1), (1, 1): (0, 0)}
    d = net.layers[1].delta[0, 0]
    h = net.layers[1].params["W"][0, 0]
    expected = d[0, 0] * h[1, 1] + d[0, 1] * h[1, 0] + d[1, 0] * h[0, 1] + d[1, 1] * h[0, 0]
    assert close(e.upstream_sum(), expected) and close(e.delta, expected)
    corner = ex.explain_delta(net, 0, (0, 0, 0))            # touched by one window only
    assert len(corner.terms) == 1


def test_pooling_routes_and_counts():
    net = Network((1, 4, 4), [{"type": "Conv2D", "filters": 1, "kernel_size": 1},
                              {"type": "MaxPool2D", "size": 2},
                              {"type": "Flatten"}], loss="mse")
    params = net.get_params()
    params[0]["W"][:] = 1.0
    net.set_params(params)
    x = np.array([[1, 5, 0, 0], [2, 3, 0, 0], [9, 9, 1, 2], [0, 0, 3, 4]], float)  # a tie
    net.forward(x.reshape(1, 1, 4, 4))
    net.backward(np.ones((1, 4)))
    winner = ex.explain_delta(net, 0, (0, 0, 1))
    loser = ex.explain_delta(net, 0, (0, 0, 0))
    first_of_tie, second_of_tie = (ex.explain_delta(net, 0, (0, 2, k)) for k in (0, 1))
    assert [t.right for t in winner.terms.top()] == [1.0]
    assert [t.right for t in loser.terms.top()] == [0.0] and loser.delta == 0.0
    assert first_of_tie.terms.right.tolist() == [1.0] and second_of_tie.delta == 0.0
    # 6×6, window 3, stride 2, padding 1, ceil mode: the last window hangs over the edge
    net = Network((1, 6, 6), [{"type": "Conv2D", "filters": 1, "kernel_size": 1},
                              {"type": "AvgPool2D", "size": 3, "stride": 2, "padding": 1,
                               "ceil_mode": True}, {"type": "Flatten"}], loss="mse")
    assert net.layers[1].output_shape == (1, 4, 4)
    rng = np.random.default_rng(0)
    net.forward(rng.normal(size=(1, 1, 6, 6)))
    net.backward(rng.normal(size=(1, 16)))
    corner = ex.explain_delta(net, 0, (0, 5, 5))
    assert sorted(corner.terms.right.tolist()) == [1 / 9, 1 / 6, 1 / 6, 1 / 4]
    check_every_unit(net, samples=(0,))


@pytest.mark.parametrize("preset", ["cnn-shapes", "xor", "reference"])
def test_weight_gradient_terms_sum_to_the_core(preset):
    s = Session(preset)
    s.backward()
    for li, layer in enumerate(s.net.layers):
        for param in layer.params:
            grads = layer.grads[param]
            for index in [np.unravel_index(k, grads.shape) for k in (0, grads.size // 2,
                                                                    grads.size - 1)]:
                w = ex.explain_weight_grad(s.net, li, index, param)
                assert w.grad == grads[index]
                assert close(w.rebuilt(), w.grad), (preset, li, param, index)
                assert len(w.terms) == w.batch * (int(np.prod(layer.output_shape[1:]))
                                                  if layer.kind == "Conv2D" else 1)


def test_top_terms_are_sorted_and_the_rest_adds_up():
    s = Session("cnn-shapes")
    s.backward()
    e = ex.explain_in_session(s, 1, (2, 3, 1))
    top = e.terms.top(10)
    mags = [abs(t.value) for t in top]
    assert mags == sorted(mags, reverse=True) and len(top) == 10
    count, rest = e.terms.rest(10)
    assert count == len(e.terms) - 10
    assert close(math.fsum([t.value for t in top]) + rest, e.terms.total())
    assert set(top[0].index) == {"f", "i", "j", "m", "n"}
    assert top[0].value == top[0].left * top[0].right


def test_session_state_decides_what_can_be_explained():
    s = Session("cnn-shapes")
    s.forward()
    with pytest.raises(ex.ExplainError, match="No δ yet"):
        ex.explain_in_session(s, 0, (0, 0, 0))
    s.step_into()
    s.step_into()                                           # backward at layer 4
    assert s.layer == 4
    with pytest.raises(ex.ExplainError, match="is at layer 4"):
        ex.explain_in_session(s, 2, (0, 0, 0))
    assert close(ex.explain_in_session(s, 4, (7,)).rebuilt(), s.net.layers[4].delta[0, 7])
    s.update()                                              # weights changed since backward
    e = ex.explain_in_session(s, 3, (1, 1, 1))
    assert close(e.upstream_sum(), e.upstream) and close(e.rebuilt(), e.delta)
    stale = ex.explain_delta(s.net, 3, (1, 1, 1))           # current weights: no longer adds up
    assert not close(stale.upstream_sum(), e.upstream)
    s.step_into()                                           # next step's forward
    with pytest.raises(ex.ExplainError, match="No δ yet"):       # the new pass cleared δ
        ex.explain_in_session(s, 3, (1, 1, 1))


@pytest.mark.parametrize("layer, unit, message", [
    (9, (0,), "layer 9 does not exist"),
    (5, (4,), "outside its output 4"),
    (0, (0, 0), "outside its output"),
])
def test_bad_units_are_refused(layer, unit, message):
    s = Session("cnn-shapes")
    s.backward()
    with pytest.raises(ex.ExplainError, match=message):
        ex.explain_delta(s.net, layer, unit)
    with pytest.raises(ex.ExplainError, match="no parameter"):
        ex.explain_weight_grad(s.net, 1, (0,))


def test_largest_unit_picks_the_biggest_magnitude():
    d = np.array([[0.1, -3.0], [2.0, np.nan]])
    assert ex.largest_unit(d) == (0, 1)
