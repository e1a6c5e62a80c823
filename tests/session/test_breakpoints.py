"""Breakpoint conditions (bpviz.session.breakpoints), without Qt: each stops training at the
exact layer and phase where it first holds, names what it saw, and costs nothing when unset."""
import re

import numpy as np
import pytest

from bpviz.session import breakpoints as bp
from bpviz.session.session import BreakpointHit, Session, dataset_targets
from bpviz.session.snapshot import norm


def run_until_hit(session, max_steps=20) -> BreakpointHit:
    for _ in range(max_steps):
        try:
            session.train_step()
        except BreakpointHit as hit:
            return hit
    pytest.fail(f"no breakpoint hit in {max_steps} steps")


def test_vanishing_stops_in_backward_at_the_first_layer_below_the_threshold():
    probe = Session("deep-sigmoid")                   # same seed: the same first batch
    batch = probe.trainer.next_indices()              # as continuous training takes it
    probe.net.forward(probe.dataset.x[batch])
    probe.net.backward(dataset_targets(probe.dataset)[batch])
    norms = [norm(l.delta) for l in probe.net.layers]
    # backward runs from the last layer down: the first one below 1e-3 in that order
    expected = next(i for i in range(len(norms) - 1, -1, -1) if norms[i] < 1e-3)
    assert 0 < expected < len(norms) - 1

    s = Session("deep-sigmoid")
    got = []
    monitor = bp.Monitor(s, got.append)
    monitor.add(bp.vanishing(1e-3))
    hit = run_until_hit(s)
    assert (hit.phase, hit.layer) == ("backward", expected)
    assert (s.phase, s.layer) == ("backward", expected)          # the cursor stays there
    here = norm(s.net.layers[expected].delta)
    assert here == pytest.approx(norms[expected]) and here < 1e-3
    assert all(norm(s.net.layers[i].delta) >= 1e-3 for i in range(expected + 1, len(norms)))
    assert s.net.layers[expected - 1].delta is None              # not computed yet
    total = len(norms)
    assert hit.reason == (f"vanishing: layer {expected} Dense ‖δ‖ = {bp.sci(here)} < 0.001 "
                          f"(backward · layer {expected} ({expected + 1} of {total}))")
    assert [h.layer for h in got] == [expected] and got[0].reason == hit.reason


def test_vanishing_weight_gradient_and_exploding_on_one_layer():
    probe = Session("deep-sigmoid")
    probe.backward()
    gnorms = [norm(l.grads["W"]) for l in probe.net.layers]
    thr = (gnorms[1] + gnorms[2]) / 2                     # layer 1 below, layer 2 above
    s = Session("deep-sigmoid")
    bp.Monitor(s).add(bp.vanishing(thr, tensor="dW"))
    hit = run_until_hit(s)
    assert (hit.phase, hit.layer) == ("backward", 1)
    assert "‖∂loss/∂W‖" in hit.reason

    s = Session("deep-sigmoid")
    bp.Monitor(s).add(bp.exploding(1e-9, layer=3))        # holds everywhere; only layer 3 asked
    hit = run_until_hit(s)
    assert (hit.phase, hit.layer) == ("backward", 3)
    assert hit.reason.startswith("exploding: layer 3 Dense ‖δ‖ = ")


def test_first_nonfinite_names_layer_tensor_and_counts_with_a_huge_learning_rate():
    s = Session("deep-relu")
    s.set_training(lr=1e6)
    bp.Monitor(s).add(bp.nonfinite())
    hit = run_until_hit(s)
    first = s.net.nonfinite[0]
    assert (hit.phase, hit.layer) == (first.phase, first.layer_index) == ("forward", s.layer)
    assert (f"NaN/Inf: layer {first.layer_index} Dense {first.tensor} has {first.nan_count} "
            f"NaN and {first.inf_count} Inf of {first.size}") in hit.reason
    assert "created here" in hit.reason
    for layer in s.net.layers:                            # no non-finite update was applied
        assert np.isfinite(layer.params["W"]).all()


def test_nonfinite_on_a_later_layer_reports_what_it_received():
    s = Session("deep-relu")
    s.set_training(lr=1e6)
    probe = Session("deep-relu")
    probe.set_training(lr=1e6)
    bp.Monitor(probe).add(bp.nonfinite())
    first = run_until_hit(probe).layer
    bp.Monitor(s).add(bp.nonfinite(layer=first + 1))
    hit = run_until_hit(s)
    assert (hit.phase, hit.layer) == ("forward", first + 1)
    assert "received from an earlier layer" in hit.reason


def test_dead_relu_fraction_of_never_active_units():
    s = Session("deep-relu")
    s.net.layers[2].params["b"][:10] = -1e3               # 10 of 16 units can never fire
    bp.Monitor(s).add(bp.dead_relu(0.5))
    hit = run_until_hit(s)
    assert (hit.phase, hit.layer) == ("forward", 2)
    assert "10/16 units (62 %) never active over the batch of 32 > 50 %" in hit.reason
    assert bp.dead_units(s.net.layers[2].z) == (10, 16)


def test_dead_relu_counts_whole_filters_of_a_conv_layer():
    z = np.ones((2, 4, 3, 3))
    z[:, 1] = -1.0                                        # filter 1 never active
    z[0, 2] = -1.0                                        # filter 2 active in sample 1 only
    z[:, 3] = -1.0
    z[1, 3, 2, 2] = 0.5                                   # one position of one sample is enough
    assert bp.dead_units(z) == (1, 4)
    s = Session("cnn-shapes")
    s.net.layers[0].params["b"][:3] = -1e3
    bp.Monitor(s).add(bp.dead_relu(0.6, layer=0))
    hit = run_until_hit(s)
    assert (hit.phase, hit.layer) == ("forward", 0)
    assert "3/4 filters (75 %)" in hit.reason


def test_no_breakpoints_keeps_the_fast_path(monkeypatch):
    s = Session("deep-sigmoid")
    calls = []
    original = s.step_into
    monkeypatch.setattr(s, "step_into", lambda: (calls.append(1), original())[1])
    monitor = bp.Monitor(s)
    cond = monitor.add(bp.vanishing(1e-3))
    monitor.set_enabled(cond, False)                      # disabled = not in the session's list
    assert s.breakpoints == []
    for _ in range(3):
        s.train_step()
    assert calls == [] and s.step_count == 3
    monitor.set_enabled(cond, True)
    with pytest.raises(BreakpointHit):
        s.train_step()
    assert calls                                          # now it runs unit by unit


def test_a_condition_for_all_layers_fires_once_per_pass_then_next_step():
    s = Session("deep-sigmoid")
    bp.Monitor(s).add(bp.vanishing(1e-3))
    first = run_until_hit(s)
    s.train_step()                                        # continue: finishes the step
    assert s.phase == "update" and s.step_count == 1
    second = run_until_hit(s)
    assert second.phase == "backward" and s.step_count == 1
    assert first.layer >= second.layer - 1


def test_monitor_reports_what_stepping_passed_f10_and_f11():
    s = Session("deep-sigmoid")
    monitor = bp.Monitor(s)
    monitor.add(bp.vanishing(1e-3))
    s.update()                                            # F10: a whole step at once
    hits = monitor.after_action()
    assert [(h.phase, h.layer, h.step) for h in hits] == [("backward", 2, 0)]
    assert monitor.after_action() == []                   # nothing new since
    s.forward()
    assert monitor.after_action() == []                   # forward units: nothing to see
    s.step_into()                                         # F11: backward · last layer
    assert monitor.after_action() == []
    found = []
    while s.phase == "backward" and not found:
        s.step_into()
        found = monitor.after_action()
    assert [(h.phase, h.layer) for h in found] == [("backward", s.layer)]


def test_monitor_leaves_other_conditions_and_unknown_layers_alone():
    s = Session("xor")
    other = lambda session: None                          # noqa: E731  (another module's)
    s.breakpoints.append(other)
    monitor = bp.Monitor(s)
    far = monitor.add(bp.exploding(1.0, layer=5))         # xor has 2 layers: waits, inactive
    near = monitor.add(bp.nonfinite(layer=1))
    assert s.breakpoints == [other, near]
    monitor.remove(near)
    assert s.breakpoints == [other] and far in monitor.conditions


@pytest.mark.parametrize("args, message", [
    (("sideways",), "kind 'sideways' is unknown"),
    (("vanishing", None, -1.0), "threshold -1.0"),
    (("exploding", None, float("nan")), "threshold nan"),
    (("dead_relu", None, 1.0), "in [0, 1)"),
    (("vanishing", None, 1.0, "dz"), "tensor 'dz'"),
    (("vanishing", -2), "layer -2"),
])
def test_conditions_reject_bad_settings(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        bp.Condition(*args)


def test_describe_and_position_order():
    assert bp.vanishing(1e-6).describe() == "‖δ‖ < 1e-06"
    assert bp.exploding(1e3, tensor="dW").describe() == "‖∂loss/∂W‖ > 1e+03"
    assert bp.dead_relu(0.25, layer=2).layer_text() == "layer 2"
    s = Session("xor")
    order = []
    while s.step_count == 0:
        s.step_into()
        order.append(bp.position(s))
    assert order == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)]   # f0 f1 b1 b0 update
