"""Update decomposition from the optimiser's record: the parts are the record's own arrays,
they sum to the ΔW that was applied, and ‖ΔW‖/‖W_before‖ is what it says. No Qt."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bpviz.session.decomposition import (BAND, decompose, describe_ratio, norm)
from bpviz.session.session import Session


def _run(preset="deep-sigmoid", steps=3, **training):
    s = Session(preset)
    if training:
        s.set_training(**training)
    records = []
    for _ in range(steps):
        s.step()
        records.append(s.last_update)
    return s, records


def _all_params(d):
    return [(l, k, p) for l in d.layers for k, p in l.params.items()]


def test_plain_sgd_is_all_gradient():
    s, (rec, *_) = _run(steps=1)
    d = decompose(rec, [l.kind for l in s.net.layers], step=s.step_count)
    assert d.step == 1 and d.lr == rec.lr and d.clip_factor == 1.0 and not d.norm_clipped
    for layer, k, p in _all_params(d):
        u = rec.layers[layer.index][k]
        np.testing.assert_array_equal(p.gradient, -rec.lr * u.grad)
        np.testing.assert_array_equal(p.update, u.update)
        np.testing.assert_array_equal(p.before, u.before)
        assert not p.decay.any() and not p.momentum.any() and not p.clipping.any()
        np.testing.assert_allclose(p.gradient + p.decay + p.momentum, u.update, rtol=0,
                                   atol=1e-12)
        assert p.clipped_values == 0 and not p.has_decay


@pytest.mark.parametrize("training", [
    dict(momentum=0.9, l2=1e-2),
    dict(momentum=0.5, l2=1e-3, clip_value=1e-3),
    dict(momentum=0.9, l2=1e-2, clip_norm=1e-3, clip_value=5e-3),
    dict(l2=0.1, clip_norm=1e-2),
], ids=["momentum+l2", "value-clip", "norm+value-clip", "no-momentum"])
def test_parts_sum_to_the_applied_update_and_equal_the_record(training):
    s, records = _run(steps=3, **training)
    prev, rec = records[-2], records[-1]
    d = decompose(rec, [l.kind for l in s.net.layers])
    assert d.grad_norm == rec.grad_norm and d.clip_factor == rec.clip_factor
    assert d.momentum == rec.momentum and d.l2 == rec.l2
    total_clipped = 0
    for layer, k, p in _all_params(d):
        u = rec.layers[layer.index][k]
        np.testing.assert_allclose(p.gradient + p.decay + p.momentum, u.update, rtol=0,
                                   atol=1e-12)
        np.testing.assert_allclose(p.gradient, -rec.lr * u.grad, rtol=1e-15, atol=0)
        np.testing.assert_allclose(p.clipping, -rec.lr * (u.grad - u.raw_grad), rtol=1e-15)
        if k == "W" and rec.l2 > 0:
            assert p.has_decay
            np.testing.assert_allclose(p.decay, -rec.lr * rec.l2 * u.before, rtol=1e-14)
        else:
            assert not p.decay.any() and not p.has_decay
        if rec.momentum > 0:   # the momentum part is μ·v, v = the previous step's ΔW
            v = prev.layers[layer.index][k].update
            np.testing.assert_allclose(p.momentum, rec.momentum * v, rtol=1e-9, atol=1e-15)
            assert norm(p.momentum) > 0
        else:
            assert not p.momentum.any()
        assert p.clipped_values == u.clipped
        total_clipped += u.clipped
        assert p.norms["update"] == pytest.approx(norm(u.update), rel=1e-15)
    assert d.clipped_values == total_clipped
    if "clip_norm" in training:
        assert d.norm_clipped and d.clip_factor < 1
        assert any(norm(p.clipping) > 0 for _, _, p in _all_params(d))
    if "clip_value" in training:
        assert total_clipped > 0


def test_first_momentum_step_has_no_momentum_part():
    s, (rec,) = _run(steps=1, momentum=0.9)
    d = decompose(rec)
    assert all(not p.momentum.any() for _, _, p in _all_params(d))


def test_ratio_is_update_norm_over_weight_norm_before():
    s, (rec, *_) = _run(steps=2)
    d = decompose(rec, [l.kind for l in s.net.layers])
    for layer in d.layers:
        u = rec.layers[layer.index]["W"]
        expected = np.linalg.norm(u.update) / np.linalg.norm(u.before)
        assert layer.ratio == pytest.approx(expected, rel=1e-14)
    np.testing.assert_allclose(d.ratios, [l.ratio for l in d.layers])
    # vanishing gradients in the deep sigmoid stack: the first layer moves far less
    assert d.ratios[0] < d.ratios[-1] / 10


def test_parameter_free_layers_have_no_parts_and_nan_ratio():
    s, (rec,) = _run("cnn-shapes", steps=1)
    d = decompose(rec, [l.kind for l in s.net.layers])
    kinds = [l.kind for l in d.layers]
    assert kinds == [l.kind for l in s.net.layers]
    for layer in d.layers:
        if layer.kind in ("MaxPool2D", "Flatten"):
            assert layer.params == {} and math.isnan(layer.ratio) and layer.size == 0
    assert [l.index for l in d.weighted()] == [0, 2, 5]
    assert np.isnan(d.ratios[[1, 3, 4]]).all() and np.isfinite(d.ratios[[0, 2, 5]]).all()


def test_float32_network_without_momentum_has_exactly_zero_momentum():
    s = Session("deep-sigmoid")
    s.net = s.net.clone(np.float32)
    s.trainer.net = s.net
    s.set_training(l2=1e-2)
    s.step()
    d = decompose(s.last_update)
    for _, _, p in _all_params(d):
        assert p.update.dtype == np.float64 and not p.momentum.any()
        np.testing.assert_allclose(p.gradient + p.decay, p.update, rtol=1e-5, atol=1e-9)


def test_no_record_and_mismatched_names():
    assert decompose(None) is None
    s, (rec,) = _run(steps=1)
    d = decompose(rec, ["Dense"])               # wrong length: generic names
    assert {l.kind for l in d.layers} == {"layer"}


def test_zero_weights_give_an_infinite_ratio_and_verdicts():
    s, (rec,) = _run("cnn-shapes", steps=1)
    d = decompose(rec)
    b = d.layers[0].params["b"]                  # biases start at 0
    assert b.ratio == math.inf and norm(b.before) == 0
    assert describe_ratio(1e-3).startswith("in the usual range")
    assert describe_ratio(BAND[0] / 10).startswith("very small")
    assert describe_ratio(BAND[1] * 10).startswith("large")
    assert describe_ratio(math.nan) == "—"


def test_norms_only_keeps_no_arrays_and_the_same_numbers():
    s, records = _run(steps=2, momentum=0.9, l2=1e-3, clip_norm=0.05)
    full, light = decompose(records[-1]), decompose(records[-1], keep_arrays=False)
    for (_, _, a), (_, _, b) in zip(_all_params(full), _all_params(light)):
        assert b.update is None and b.gradient is None and b.before is None
        assert a.norms == b.norms and a.ratio == b.ratio and a.size == b.size
        assert a.norms["momentum"] == pytest.approx(norm(a.momentum), rel=1e-15)
