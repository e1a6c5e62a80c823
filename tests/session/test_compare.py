"""A/B comparison (no Qt): B is A with one change, stepped on A's batches in lock-step."""
from __future__ import annotations

import numpy as np
import pytest

from bpviz.session.compare import Comparison, check_change, twin_network
from bpviz.session.session import Session


def params_equal(a, b) -> bool:
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def test_no_change_keeps_the_twins_bitwise_identical_through_every_kind_of_step():
    s = Session("cnn-shapes")
    s.set_training(momentum=0.5)
    s.step()                                     # A has momentum before B exists
    c = Comparison(s, {})
    c.start()
    s.step()
    for _ in range(4):
        s.step_into()
    s.finish_pass()
    s.update()
    c.step(5)                                    # continuous steps, one announcement
    for _ in range(3):
        s.train_step()
    assert c.b.steps == 10 and s.step_count == 11
    assert params_equal(s.net.get_params(), c.b.net.get_params())
    h = c.histories()
    for key in ("steps", "loss", "accuracy", "grad"):
        assert np.array_equal(h[f"{key}_a"], h[f"{key}_b"], equal_nan=key != "steps")
    assert list(h["steps_a"]) == list(range(1, 11))


def test_sigmoid_versus_relu_the_first_layer_of_b_gets_orders_of_magnitude_more_gradient():
    s = Session("deep-sigmoid")
    c = Comparison(s, {"activation": "relu"})
    c.start()
    assert params_equal(s.net.get_params(), c.b.net.get_params())   # same weights
    assert [l.activation for l in c.b.net.layers] == ["relu"] * 6 + ["softmax"]
    c.step(30)
    h = c.histories()
    ratio = h["grad_b"][-1, 0] / h["grad_a"][-1, 0]
    assert ratio > 100, ratio
    # the last layer, by contrast, is not starved in A
    assert h["grad_a"][-1, -1] > h["grad_a"][-1, 0] * 1e3
    assert c.describe() == "hidden activation sigmoid → relu"


def test_b_is_driven_by_a_s_batch_indices_not_its_own_order():
    s = Session("deep-sigmoid")
    c = Comparison(s, {"lr": 0.5})
    c.start()
    seen = []
    original = c.b.step
    c.b.step = lambda x, t, n: (seen.append(x.copy()), original(x, t, n))
    batches = []
    for _ in range(4):
        s.step()
        batches.append(s.dataset.x[s.batch])
    assert all(np.array_equal(x, y) for x, y in zip(seen, batches))
    assert c.b.optimizer.lr == 0.5 and s.optimizer.lr == 0.1


def test_each_change_is_applied_to_b_only():
    s = Session("deep-sigmoid")
    for change, check in [
        ({"loss": "mse"}, lambda b: b.net.loss == "mse"),
        ({"clip_value": 0.01}, lambda b: b.optimizer.clip_value == 0.01),
        ({"clip_norm": 1.0}, lambda b: b.optimizer.clip_norm == 1.0),
        ({"l2": 0.001}, lambda b: b.optimizer.l2 == 0.001),
    ]:
        c = Comparison(s, change)
        c.start()
        assert check(c.b) and params_equal(s.net.get_params(), c.b.net.get_params())
        c.stop()
    assert s.net.loss == "cross_entropy" and s.optimizer.settings()["l2"] == 0.0
    seeded = twin_network(s.net, {"seed": 7})
    assert seeded.seed == 7 and not params_equal(s.net.get_params(), seeded.get_params())


def test_bad_changes_are_refused_with_the_rule():
    for bad, words in [({"colour": 1}, "unknown"), ({"activation": "softmax"}, "activation"),
                       ({"loss": "hinge"}, "loss"), ({"seed": -1}, "seed"),
                       ({"seed": True}, "seed")]:
        with pytest.raises(ValueError, match=words):
            check_change(bad)
    s = Session("deep-sigmoid")
    with pytest.raises(ValueError):
        Comparison(s, {"lr": -1.0}).start()


def test_comparison_stops_when_a_is_replaced_and_costs_nothing_when_stopped():
    s = Session("deep-sigmoid")
    listeners = list(s.events._listeners)
    c = Comparison(s, {"activation": "tanh"})
    s.step()
    assert c.b is None and s.events._listeners == listeners       # not started: no cost
    c.start()
    s.step()
    s.reset_weights()
    assert not c.running and "network changed" in c.stopped_reason
    assert s.events._listeners == listeners
    steps = c.b.steps
    s.step()
    assert c.b.steps == steps


def test_b_meeting_nan_stops_b_and_a_goes_on():
    s = Session("deep-sigmoid")
    c = Comparison(s, {"activation": "relu", "lr": 1e100})
    c.start()
    for _ in range(5):
        s.step()
    assert not c.running and c.stopped_reason.startswith("B stopped")
    assert s.step_count == 5 and c.b.steps == 1 and "Inf" in c.stopped_reason


def test_restoring_a_past_step_of_a_stops_the_comparison():
    from bpviz.session.recorder import Recorder
    s = Session("deep-sigmoid")
    r = Recorder(s)
    r.set_enabled(True)
    s.step()
    c = Comparison(s, {"activation": "relu"})
    c.start()
    s.step()
    r.restore(0)
    assert not c.running and "restored" in c.stopped_reason
    rows = c.histories()["steps_a"].tolist()
    assert rows == [1] and c.histories()["steps_b"].tolist() == [1]   # kept after the rewind
