"""Saturation statistics against independent formulas (no Qt): f′ maps, dead ReLU units,
saturated sigmoid/tanh units, and the attenuation of δ by the activations alone."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bpviz.session import saturation as sat
from bpviz.session.session import Session


def sigmoid_prime(z):
    return np.exp(-z) / (1 + np.exp(-z)) ** 2


def tanh_prime(z):
    return 1 / np.cosh(z) ** 2


def test_derivatives_match_textbook_formulas_and_their_maxima():
    z = np.linspace(-8, 8, 401).reshape(1, -1)
    np.testing.assert_allclose(sat.derivative("sigmoid", z), sigmoid_prime(z), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(sat.derivative("tanh", z), tanh_prime(z), rtol=1e-10,
                               atol=1e-15)
    np.testing.assert_array_equal(sat.derivative("relu", z), (z > 0).astype(float))
    np.testing.assert_array_equal(sat.derivative("identity", z), np.ones_like(z))
    assert sat.derivative("sigmoid", z).max() == pytest.approx(0.25)
    assert sat.derivative("tanh", z).max() == pytest.approx(1.0)
    assert [sat.max_derivative(a) for a in ("relu", "sigmoid", "tanh")] == [1.0, 0.25, 1.0]
    maps = np.random.default_rng(0).normal(size=(3, 4, 4)) * 3
    np.testing.assert_allclose(sat.sample_derivative("sigmoid", maps), sigmoid_prime(maps))


def test_saturation_thresholds_are_where_f_prime_falls_below_one_percent():
    for act, prime in (("sigmoid", sigmoid_prime), ("tanh", tanh_prime)):
        t = sat.z_threshold(act)
        assert prime(t) == pytest.approx(sat.SATURATED_BELOW, rel=1e-9)
        assert prime(t - 1e-6) > 0.01 > prime(t + 1e-6)
    assert sat.z_threshold("sigmoid") == pytest.approx(4.5849, abs=1e-4)
    assert sat.z_threshold("tanh") == pytest.approx(2.9932, abs=1e-4)
    assert sat.z_threshold("relu") is None
    assert "4.58" in sat.rule_text("sigmoid") and "z ≤ 0" in sat.rule_text("relu")


def test_dead_relu_units_are_those_with_z_at_most_zero_for_every_sample():
    z = np.array([[1.0, -1.0, 0.0, -2.0, 3.0],
                  [-1.0, -3.0, 0.0, 0.5, 1.0],
                  [-0.5, -0.1, -1.0, -1.0, 2.0]])
    st = sat.layer_saturation(0, "Dense", "relu", z)
    # unit 1 (all < 0) and unit 2 (0 counts as dead: ReLU'(0) = 0) are dead
    assert (st.rule, st.units, st.count, st.batch) == ("dead", 5, 2, 3)
    assert st.fraction == pytest.approx(2 / 5)
    assert st.values_fraction == pytest.approx(np.mean(z <= 0))
    assert st.mean_derivative == pytest.approx(np.mean(z > 0))


def test_conv_units_are_channels_over_every_position_and_sample():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 3, 5, 5))
    z[:, 1] = -np.abs(z[:, 1])                # channel 1 never fires
    z[2, 2, 4, 4] = 0.3                       # channel 2 fires at one place in one sample
    z[:, 2] = np.where(np.arange(25).reshape(5, 5) == 24, z[:, 2], -1.0)
    st = sat.layer_saturation(3, "Conv2D", "relu", z)
    assert st.units == 3 and st.count == 1


def test_saturated_sigmoid_and_tanh_units_follow_the_stated_rule():
    t_sig, t_tanh = sat.z_threshold("sigmoid"), sat.z_threshold("tanh")
    z = np.array([[6.0, -5.0, 4.0, 0.0],
                  [7.0, -4.7, 5.0, 0.1]])
    st = sat.layer_saturation(1, "Dense", "sigmoid", z)
    expected = np.all(np.abs(z) > t_sig, axis=0)            # units 0, 1 (unit 2 has 4.0)
    assert st.count == int(expected.sum()) == 2 and st.rule == "saturated"
    assert st.values_fraction == pytest.approx(np.mean(sigmoid_prime(z) < 0.01))
    assert st.mean_derivative == pytest.approx(sigmoid_prime(z).mean())
    st = sat.layer_saturation(1, "Dense", "tanh", z)
    assert st.count == int(np.all(np.abs(z) > t_tanh, axis=0).sum()) == 3
    none = sat.layer_saturation(2, "Dense", "softmax", z)
    assert none.rule is None and none.count == 0 and math.isnan(none.values_fraction)


def test_network_statistics_cover_the_batch_and_snapshot_ones_the_displayed_sample():
    s = Session("deep-relu")
    s.step()
    stats = sat.network_saturation(s.net)
    for layer, st in zip(s.net.layers, stats):
        assert st.batch == len(s.batch) and st.units == layer.z.shape[1]
        if layer.activation == "relu":
            assert st.count == int(np.all(layer.z <= 0, axis=0).sum())
    one = sat.snapshot_saturation(s.snapshot())
    z0 = s.net.layers[0].z[0]
    assert one[0].batch == 1 and one[0].count == int((z0 <= 0).sum())


def test_attenuation_multiplies_mean_derivatives_from_the_output_down():
    s = Session("deep-sigmoid")
    s.step()
    stats = sat.network_saturation(s.net)
    att = sat.attenuation(stats, s.net.loss)
    means = [float(np.mean(sigmoid_prime(l.z))) for l in s.net.layers[:-1]]
    assert att[-1] == 1.0                            # softmax + cross-entropy: fused
    for k in range(len(means)):
        assert att[k] == pytest.approx(np.prod(means[k:]), rel=1e-12)
    assert att[0] < 0.25 ** 5                        # six sigmoid layers: < 0.25⁵ … 0.25⁶
    plain = sat.attenuation(stats, "mse")            # not fused: the output's f′ counts
    assert plain[-1] == pytest.approx(stats[-1].mean_derivative)


def test_layers_without_z_have_no_statistics():
    s = Session("cnn-shapes")
    stats = sat.network_saturation(s.net)           # no forward pass yet
    assert all(st.units == 0 and math.isnan(st.mean_derivative) for st in stats)
    assert np.all(sat.attenuation(stats) == 1.0)
