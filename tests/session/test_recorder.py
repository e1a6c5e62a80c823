"""Time travel: the Recorder keeps every step and phase exactly, within its memory budget,
and restoring a record replays the original run bit for bit (no Qt)."""
from __future__ import annotations

from dataclasses import fields, is_dataclass

import numpy as np
import pytest

from bpviz.session.recorder import Recorder, from_timeline
from bpviz.session.session import Session


def same(a, b, path="snapshot") -> None:
    """Bitwise equality of snapshots, records and parameter lists (arrays, dataclasses …)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), path
        assert a.shape == b.shape and a.dtype == b.dtype, path
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    elif is_dataclass(a):
        assert type(a) is type(b), path
        for f in fields(a):
            if f.name == "history_generation":   # which History the rows came from, not data
                continue
            same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), path
    else:
        assert a == b, path


def params_equal(p, q) -> bool:
    return all(np.array_equal(x[k], y[k]) for x, y in zip(p, q) for k in x)


def recording(preset="cnn-shapes", budget=1 << 30):
    s = Session(preset)
    r = Recorder(s, budget)
    r.set_enabled(True)
    return s, r


def test_disabled_recorder_is_not_subscribed_and_keeps_nothing():
    s = Session("cnn-shapes")
    listeners = list(s.events._listeners)
    r = Recorder(s)
    s.step()
    s.step_into()
    assert len(r) == 0 and s.events._listeners == listeners
    r.set_enabled(True)
    r.set_enabled(False)
    s.step()
    assert len(r) == 1 and s.events._listeners == listeners    # only the enable-time record


def test_every_phase_and_step_is_recorded_once_with_the_snapshot_of_that_moment():
    s, r = recording()
    seen = [s.snapshot()]                            # the present when recording began
    s.events.subscribe(lambda e: e.kind == "phase" and seen.append(s.snapshot()))
    for action in ("step_into", "step_into", "finish_pass", "backward", "update", "step",
                   "step_into"):
        getattr(s, action)()
    # F10 from a step boundary announces forward done, backward done and the update
    assert [rec.label for rec in r.records] == [snap.label for snap in seen]
    assert len(seen) == 1 + 3 + 1 + 1 + 3 + 1
    assert len({rec.seq for rec in r.records}) == len(seen)
    for i, snap in enumerate(seen):
        same(r.snapshot(i), snap)                    # history curves rebuilt exactly
        assert from_timeline(r.snapshot(i)) and not from_timeline(snap)
    # the update emits "step" and then "phase": recorded once
    assert sum(1 for rec in r.records if rec.phase == "update") == 2


def test_record_holds_the_core_arrays_and_all_parameters_of_that_moment():
    s, r = recording()
    core = []
    for _ in range(5):
        s.step_into()
        layer = s.net.layers[s.layer]
        core.append((s.layer, layer.z[0].copy(), s.net.get_params()))
    for rec, (index, z, params) in zip(r.records[1:], core):
        assert np.array_equal(rec.snapshot.layers[index].z, z)
        assert params_equal(rec.params, params)


def test_continuous_training_records_every_step():
    s, r = recording("deep-sigmoid")
    weights = []
    for _ in range(12):
        s.train_step()
        weights.append(s.net.get_params())
    assert [rec.step for rec in r.records] == list(range(13))
    for rec, w in zip(r.records[1:], weights):
        assert rec.phase == "update" and params_equal(rec.params, w)


def test_record_size_is_the_sum_of_its_arrays_and_history_is_stored_once():
    s, r = recording("deep-sigmoid")
    for _ in range(20):
        s.train_step()
    rec = r.record(len(r) - 1)
    snap = r.snapshot(len(r) - 1)
    arrays = []
    for l in snap.layers:
        arrays += [x for x in (l.z, l.a, l.delta) if x is not None]
        arrays += list(l.params.values()) + list(l.grads.values())
        for u in l.updates.values():
            arrays += [x for x in (u.before, u.raw_grad, u.grad, u.decay, u.update, u.after)
                       if x is not None]
    arrays += [snap.batch_indices, snap.x, snap.target]
    arrays += [x for x in (snap.output, snap.input_grad) if x is not None]
    arrays += [v for p in rec.params for v in p.values()]
    arrays += list(rec.tail) + [rec.start.order]
    assert rec.nbytes == sum(a.nbytes for a in arrays)
    assert len(rec.snapshot.loss_history) == 0 and len(snap.loss_history) == 20
    assert r.history_bytes == 20 * 8 * (3 + 2 * len(s.net.layers))       # one shared copy
    assert r.used_bytes == sum(x.nbytes for x in r.records) + r.history_bytes


def test_budget_evicts_oldest_first_and_counts_them():
    s, r = recording("deep-sigmoid")
    for _ in range(3):
        s.train_step()
    per = max(rec.nbytes for rec in r.records)
    r.set_budget(4 * per)
    for _ in range(20):
        s.train_step()
        assert r.used_bytes <= r.budget_bytes
    assert 0 < len(r) <= 4 and r.evicted == 24 - len(r)
    assert [rec.step for rec in r.records] == list(range(24 - len(r), 24))
    r.set_budget(per + r.history_bytes + 1)                # shrinking evicts at once
    assert len(r) == 1 and r.records[0].step == 23 and r.evicted == 23
    r.set_budget(10)                                       # too small for any record
    s.train_step()
    assert len(r) == 0 and r.too_large == 1
    with pytest.raises(ValueError):
        r.set_budget(0)


def run(session, actions):
    for name in actions:
        getattr(session, name)()


STEPS = ["step", "step_into", "step_into", "finish_pass", "step", "step", "backward",
         "update"] + ["step"] * 6


def test_two_sessions_with_the_same_seed_record_identical_timelines():
    a, ra = recording("deep-sigmoid")
    b, rb = recording("deep-sigmoid")
    run(a, STEPS)
    run(b, STEPS)
    assert len(ra) == len(rb) > 15
    for i in range(len(ra)):
        same(ra.snapshot(i), rb.snapshot(i))
        same(ra.record(i).params, rb.record(i).params)
        same(ra.record(i).start, rb.record(i).start)


@pytest.mark.parametrize("mode", ["mini-batch", "sample", "full-batch"])
def test_restoring_step_k_and_rerunning_reproduces_the_original_weights(mode):
    s, r = recording("deep-sigmoid")
    s.set_training(mode=mode, batch_size=8)
    for _ in range(4):
        s.step()
    s.step_into()
    s.step_into()                       # a mid-step record: forward of step 5, layer 1
    for _ in range(8):
        s.step()                        # the original run: steps 5 … 12 (it goes past 12)
    original = {rec.step: rec.params for rec in r.records if rec.phase == "update"}
    batches = {rec.step: rec.snapshot.batch_indices for rec in r.records
               if rec.phase == "update"}
    mid = next(i for i, rec in enumerate(r.records) if rec.phase == "forward" and rec.step == 4)
    events = []
    s.events.subscribe(events.append)
    r.restore(mid)
    assert [e.kind for e in events] == ["restore", "phase"] and events[0].payload == 4
    assert s.step_count == 4 and s.phase == "idle" and s.optimizer.velocity == {}
    assert len(r) == mid + 1 and s.history.steps.tolist() == [0, 1, 2, 3]
    assert s.last_update is None and all(l.z is None for l in s.net.layers)
    for k in range(5, 13):
        s.step()
        assert s.step_count == k
        assert np.array_equal(s.batch, batches[k])
        assert params_equal(s.net.get_params(), original[k]), f"step {k}"


def test_restore_of_an_update_record_and_replay_with_a_changed_setting():
    s, r = recording("cnn-shapes")
    for _ in range(6):
        s.train_step()
    at3 = next(i for i, rec in enumerate(r.records) if rec.step == 3)
    later = r.record(at3 + 2).params
    r.restore(at3)
    assert params_equal(s.net.get_params(), r.record(at3).params)
    s.set_training(lr=0.01)                            # settings are not rewound
    s.step()
    s.step()
    assert s.step_count == 5 and not params_equal(s.net.get_params(), later)


def test_momentum_restarts_from_zero_after_a_restore():
    s, r = recording("deep-sigmoid")
    s.set_training(momentum=0.9)
    for _ in range(3):
        s.step()
    assert s.optimizer.velocity
    r.restore(1)
    assert s.optimizer.velocity == {}


def test_a_record_whose_step_start_was_not_seen_cannot_be_restored():
    s = Session("deep-sigmoid")
    s.step_into()                                       # mini-batch step under way
    r = Recorder(s)
    r.set_enabled(True)
    s.step_into()
    assert r.restorable(0) and r.restorable(1)
    with pytest.raises(ValueError, match="middle of this mini-batch step"):
        r.restore(1)
    s.finish_pass()
    s.update()
    assert r.restorable(len(r) - 1) == ""


def test_architecture_reset_and_dataset_changes_clear_the_timeline():
    s, r = recording("deep-sigmoid")
    s.step()
    s.reset_weights()
    assert len(r) == 0
    s.step()
    s.edit("replace_layer", 0, {"type": "Dense", "units": 16, "activation": "relu"})
    assert len(r) == 0
    s.step()
    n = len(r)
    s.select_sample(3)                                  # same dataset: kept
    assert len(r) == n == 3


def test_difference_maps_are_b_minus_a_of_weights_delta_and_activation():
    s, r = recording("cnn-shapes")
    s.step()
    w1, d1, a1 = (s.net.layers[2].params["W"].copy(), s.net.layers[2].delta[0].copy(),
                  s.net.layers[2].a[0].copy())
    for _ in range(3):
        s.step()
    after1 = next(i for i, rec in enumerate(r.records) if rec.phase == "update")
    d = r.diff(after1, len(r) - 1, 2)
    assert np.array_equal(d["W"], s.net.layers[2].params["W"] - w1)
    assert np.array_equal(d["delta"], s.net.layers[2].delta[0] - d1)
    assert np.array_equal(d["a"], s.net.layers[2].a[0] - a1)
    assert r.diff(0, after1, 1)["W"] is None            # pooling has no weights
    assert r.diff(0, after1, 2)["delta"] is None        # no δ before the first backward
