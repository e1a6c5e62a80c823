"""The core cases of docs/RELIABILITY.md's "bad inputs" list (numbers refer to that list).

Every error is a ValueError whose message names the field and the value; the network and its
weights stay as they were.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from bpviz.core import (SGD, Conv2D, Dense, Flatten, LayerConfigError, MaxPool2D, Network,
                        NonFiniteError, SettingsError, TargetError)


def snapshot(net):
    return net.config(), [{k: v.copy() for k, v in l.params.items()} for l in net.layers]


def assert_unchanged(net, snap):
    config, params = snap
    assert net.config() == config
    assert len(params) == len(net.layers)
    for layer, p in zip(net.layers, params):
        assert p.keys() == layer.params.keys()
        assert all(np.array_equal(p[k], layer.params[k]) for k in p)


# (1) ---------------------------------------------------------------------------------------------
def test_1_kernel_larger_than_input_quotes_both_sizes():
    """Kernel 5 on a 2×2 input, padding 0: LayerConfigError quoting kernel 5 and 2×2."""
    with pytest.raises(LayerConfigError) as info:
        Network((1, 2, 2), [Conv2D(1, 5)])
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "layer 0" in msg and "kernel_size 5" in msg and "2×2" in msg


# (2) ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config,text", [
    ({"type": "Conv2D", "filters": 1, "kernel_size": 1, "padding": -1}, "padding -1"),
    ({"type": "Conv2D", "filters": 1, "kernel_size": 1, "stride": 0}, "stride 0"),
    ({"type": "Conv2D", "filters": 1, "kernel_size": 1, "stride": -2}, "stride -2"),
    ({"type": "MaxPool2D", "size": 2, "stride": 0}, "stride 0"),
    ({"type": "AvgPool2D", "size": 2, "padding": -1}, "padding -1"),
    ({"type": "MaxPool2D", "size": 2, "padding": 2}, "padding 2"),
    ({"type": "AvgPool2D", "size": 3, "padding": 2}, "padding 2"),
    ({"type": "MaxPool2D", "size": [2, 4], "padding": [2, 1]}, "padding (2, 1)"),
])
def test_2_padding_stride_and_pool_padding_rules(config, text):
    """Negative padding, stride ≤ 0 and pool padding > half the window are refused by name."""
    with pytest.raises(LayerConfigError) as info:
        Network((1, 6, 6), [config])
    msg = str(info.value)
    assert "layer 0" in msg and text in msg, msg


def test_2_pool_padding_exactly_half_is_allowed():
    """Pool padding equal to half the window is accepted (PyTorch's limit)."""
    net = Network((1, 4, 4), [MaxPool2D(2, padding=1)])
    assert net.output_shape == (1, 3, 3)


# (3) ---------------------------------------------------------------------------------------------
def test_3_dropped_row_and_column_are_noted():
    """H = 5, kernel 2, stride 2: accepted, output 2×2, the dropped row/column noted."""
    net = Network((1, 5, 5), [Conv2D(1, 2, stride=2)])
    assert net.output_shape == (1, 2, 2)
    notes = net.layers[0].notes
    assert len(notes) == 2
    assert any("row" in n and "1" in n for n in notes)
    assert any("column" in n and "1" in n for n in notes)
    summary = net.summary()
    assert all(n in summary for n in notes)
    assert Network((1, 4, 4), [Conv2D(1, 2, stride=2)]).layers[0].notes == []


def test_3_pool_dropped_row_noted_only_on_the_short_axis():
    """MaxPool 2 on 5×4: one dropped row noted, no column note."""
    net = Network((1, 5, 4), [MaxPool2D(2)])
    notes = net.layers[0].notes
    assert net.output_shape == (1, 2, 2)
    assert len(notes) == 1 and "row" in notes[0]


# (4) ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,text", [
    (lambda: Network((0, 4, 4), [Flatten()]), "input_shape (0, 4, 4)"),
    (lambda: Network((3,), [Dense(0)]), "units 0"),
    (lambda: Network((3,), [{"type": "Dense", "units": 0}]), "units 0"),
    (lambda: Network((1, 4, 4), [{"type": "Conv2D", "filters": 0, "kernel_size": 1}]), "filters 0"),
    (lambda: Network((3,), []), "empty"),
])
def test_4_zero_channels_units_filters(make, text):
    """0 channels, 0 units, 0 filters and an empty stack are refused by name."""
    with pytest.raises(LayerConfigError, match=re.escape(text)):
        make()


def test_4_batch_of_zero_is_refused():
    """A batch of 0 samples raises TargetError; the network stays as it was."""
    net = Network((3,), [Dense(2)])
    snap = snapshot(net)
    with pytest.raises(TargetError, match="batch of 0"):
        net.forward(np.zeros((0, 3)))
    assert_unchanged(net, snap)
    with pytest.raises(TargetError, match=re.escape("(2, 4)")):
        net.forward(np.zeros((2, 4)))


# (5) ---------------------------------------------------------------------------------------------
def cnn():
    return Network((1, 6, 6), [Conv2D(2, 3), Flatten(), Dense(3, "tanh"), Dense(2)], seed=1)


@pytest.mark.parametrize("edit,text", [
    (lambda n: n.replace_layer(0, Conv2D(2, 7)), "kernel_size 7"),
    (lambda n: n.insert_layer(2, Conv2D(1, 1)), "layer 2 Conv2D"),
    (lambda n: n.remove_layer(1), "layer 1 Dense"),
    (lambda n: n.replace_layer(1, MaxPool2D(2)), "layer 2 Dense"),
    (lambda n: n.insert_layer(0, {"type": "Conv2D", "filters": 1, "kernel_size": 1,
                                  "stride": 0}), "stride 0"),
    (lambda n: n.move_layer(1, 0), "layer 1 Conv2D"),
    (lambda n: n.remove_layer(9), "index 9"),
    (lambda n: n.set_input_shape((1, 2, 2)), "kernel_size 3"),
])
def test_5_invalid_edit_raises_and_changes_nothing(edit, text):
    """An edit that breaks the stack raises naming the layer and leaves config and weights alone."""
    net = cnn()
    snap = snapshot(net)
    layers = list(net.layers)
    with pytest.raises(LayerConfigError) as info:
        edit(net)
    assert text in str(info.value), str(info.value)
    assert_unchanged(net, snap)
    assert net.layers == layers and [l.index for l in net.layers] == [0, 1, 2, 3]
    x = np.random.default_rng(0).normal(size=(2, 1, 6, 6))
    assert net.forward(x).shape == (2, 2)              # still usable


def test_5_valid_edit_reinfers_dense_input_and_keeps_other_weights():
    """Replacing the conv changes Flatten's size: the next Dense is rebuilt, the last one kept."""
    net = cnn()
    last_w = net.layers[3].params["W"].copy()
    assert net.layers[2].params["W"].shape == (3, 2 * 4 * 4)
    net.replace_layer(0, Conv2D(2, 2))
    assert net.layers[1].output_shape == (2 * 5 * 5,)
    assert net.layers[2].params["W"].shape == (3, 50)
    assert np.array_equal(net.layers[3].params["W"], last_w)
    net.insert_layer(1, MaxPool2D(2))                   # 2×5×5 → 2×2×2
    assert net.layers[3].params["W"].shape == (3, 8)
    assert net.forward(np.zeros((1, 1, 6, 6))).shape == (1, 2)


# (6), (7) ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("settings,field", [
    ({"lr": 0}, "learning rate 0"), ({"lr": -0.1}, "learning rate -0.1"),
    ({"lr": float("nan")}, "learning rate nan"), ({"lr": "abc"}, "learning rate 'abc'"),
    ({"lr": ""}, "learning rate ''"), ({"lr": "nan"}, "learning rate 'nan'"),
    ({"lr": "1e999"}, "learning rate '1e999'"), ({"lr": None}, "learning rate None"),
    ({"clip_value": 0}, "clip value 0"), ({"clip_norm": -1.0}, "clip norm -1.0"),
    ({"l2": -0.01}, "L2 -0.01"), ({"momentum": 1.0}, "momentum 1.0"),
])
def test_7_bad_optimizer_settings_rejected_and_nothing_changes(settings, field):
    """Bad SGD settings raise SettingsError naming field and value; configure() keeps old values."""
    with pytest.raises(SettingsError) as info:
        SGD(**settings)
    assert isinstance(info.value, ValueError) and field in str(info.value)
    sgd = SGD(lr=0.05, momentum=0.5, l2=0.001, clip_value=2.0, clip_norm=3.0)
    before = sgd.settings()
    with pytest.raises(SettingsError):
        sgd.configure(**settings)
    assert sgd.settings() == before
    good = {"l2": 0.5} if "lr" in settings else {"lr": 0.5}
    with pytest.raises(SettingsError):                  # all or nothing: a good value with a bad one
        sgd.configure(**good, **settings)
    assert sgd.settings() == before


def test_7_optimizer_can_turn_clipping_off():
    """clip_value / clip_norm None mean "off" and are accepted."""
    sgd = SGD(clip_value=1.0)
    sgd.configure(clip_value=None, clip_norm=None)
    assert sgd.clip_value is None and sgd.clip_norm is None


# (8) ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss,act,t,text", [
    ("cross_entropy", "softmax", np.array([0, 3]), "class label 3"),
    ("cross_entropy", "softmax", np.array([-1, 0]), "class label -1"),
    ("cross_entropy", "softmax", np.array([0.5, 1]), "label 0.5"),
    ("cross_entropy", "softmax", np.array([0, 1, 2]), "3 labels for a batch of 2"),
    ("bce", "sigmoid", np.array([[0.0, 1.5, 0.0], [0, 0, 0]]), "BCE target 1.5"),
    ("bce", "sigmoid", np.array([[0.0, -0.5, 0.0], [0, 0, 0]]), "BCE target -0.5"),
    ("mse", "identity", np.zeros((2, 4)), "shape (2, 4)"),
    ("mse", "identity", np.zeros((3, 3)), "shape (3, 3)"),
    ("mse", "identity", np.array([[0, np.nan, 0], [0, 0, 0]]), "NaN"),
])
def test_8_bad_targets_refused_and_network_untouched(loss, act, t, text):
    """Out-of-range labels, BCE targets outside [0, 1] and wrong shapes raise TargetError."""
    net = Network((4,), [Dense(3, act)], loss=loss)
    snap = snapshot(net)
    net.forward(np.ones((2, 4)))
    with pytest.raises(TargetError) as info:
        net.backward(t)
    assert text in str(info.value), str(info.value)
    assert_unchanged(net, snap)
    assert net.layers[0].delta is None and net.loss_value is None


# (9) ---------------------------------------------------------------------------------------------
def test_9_softmax_cross_entropy_logits_800_finite():
    """Logits (800, −800, 0) with label 1: CE loss 1600 and δ = a − y, all finite."""
    net = Network((2,), [Dense(3, "softmax")], loss="cross_entropy", reduction="sum")
    net.set_params([{"W": np.array([[400.0, 400.0], [-400.0, -400.0], [0.0, 0.0]]),
                     "b": np.zeros(3)}])
    net.forward(np.ones((1, 2)))
    loss = net.backward(np.array([1]))
    assert np.isfinite(loss) and loss == pytest.approx(1600.0, rel=1e-12)
    np.testing.assert_allclose(net.layers[0].delta, [[1.0, -1.0, 0.0]], atol=1e-300)
    assert all(np.all(np.isfinite(g)) for g in net.layers[0].grads.values())
    assert not net.nonfinite


def test_9_sigmoid_bce_logits_800_finite():
    """Logits ±800 with the wrong targets: BCE loss 800 + 800, δ = a − t, all finite."""
    net = Network((1,), [Dense(2, "sigmoid")], loss="bce", reduction="sum")
    net.set_params([{"W": np.array([[800.0], [-800.0]]), "b": np.zeros(2)}])
    net.forward(np.ones((1, 1)))
    loss = net.backward(np.array([[0.0, 1.0]]))
    assert loss == pytest.approx(1600.0, rel=1e-12)
    np.testing.assert_allclose(net.layers[0].delta, [[1.0, -1.0]])
    assert np.all(np.isfinite(net.input_grad)) and not net.nonfinite


@pytest.mark.parametrize("loss,act", [("bce", "softmax"), ("cross_entropy", "sigmoid"),
                                      ("mse", "sigmoid"), ("mse", "softmax")])
def test_9_unfused_pairs_stay_finite_at_800(loss, act):
    """Unfused loss/activation pairs at logits ±800 still give finite loss and gradients."""
    net = Network((1,), [Dense(2, act)], loss=loss)
    net.set_params([{"W": np.array([[800.0], [-800.0]]), "b": np.zeros(2)}])
    net.forward(np.ones((2, 1)))
    value = net.backward(np.array([[0.0, 1.0], [0.0, 1.0]]))
    assert np.isfinite(value)
    assert np.all(np.isfinite(net.layers[0].delta)) and not net.nonfinite


# (10) --------------------------------------------------------------------------------------------
def test_10_huge_learning_rate_breaks_with_last_good_weights_kept():
    """lr 1e6: steps eventually raise NonFiniteError naming layer and tensor; weights stay last good."""
    rng = np.random.default_rng(0)
    net = Network((2,), [Dense(4, "tanh"), Dense(1, "identity")], loss="mse", seed=2)
    x, t = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    sgd = SGD(lr=1e6)
    last_good = snapshot(net)
    with np.errstate(all="ignore"):
        for _ in range(500):
            net.forward(x)
            net.backward(t)
            try:
                sgd.step(net)
            except NonFiniteError as caught:
                exc, report = caught, caught.report
                break
            last_good = snapshot(net)
        else:
            pytest.fail("no NonFiniteError in 500 steps at lr 1e6")
    assert isinstance(exc, ValueError)
    assert report.phase == "update" and report.tensor in ("W", "b")
    assert report.layer_index in (0, 1) and report.nan_count + report.inf_count > 0
    assert f"layer {report.layer_index}" in str(exc) and report.tensor in str(exc)
    assert_unchanged(net, last_good)
    assert all(np.all(np.isfinite(v)) for l in net.layers for v in l.params.values())
    assert net.nonfinite, "the pass guard should also have seen the non-finite values"


def test_10_nan_weight_reported_where_created_then_received():
    """A NaN in layer 1's W: first_nonfinite is layer 1 'z', created here; later reports received."""
    net = Network((3,), [Dense(4, "tanh"), Dense(3, "tanh"), Dense(2, "sigmoid")], loss="bce")
    net.layers[1].params["W"][0, 0] = np.nan
    net.forward(np.ones((2, 3)))
    first = net.first_nonfinite
    assert (first.phase, first.layer_index, first.layer_kind, first.tensor) == \
        ("forward", 1, "Dense", "z")
    assert first.created_here is True
    assert first.nan_count == 2 and first.size == 6       # one unit × two samples
    assert "layer 1" in first.describe() and "created" in first.describe()
    with np.errstate(all="ignore"):
        net.backward(np.zeros((2, 2)))
    later = net.nonfinite[1:]
    assert later, "the backward pass should report the NaN it received"
    assert all(r.created_here is False for r in later)
    assert all("received" in r.describe() for r in later)
    with pytest.raises(NonFiniteError):
        SGD(lr=0.1).step(net)


def test_nonfinite_input_refused():
    """An input holding NaN or Inf is refused before the pass starts."""
    net = Network((2,), [Dense(1)])
    with pytest.raises(TargetError, match="NaN or Inf"):
        net.forward(np.array([[0.0, np.inf]]))
