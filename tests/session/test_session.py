"""The session: stepping cursor, phase semantics, snapshots, settings, edits, files (no Qt)."""
from __future__ import annotations

import numpy as np
import pytest

from bpviz.core import NonFiniteError
from bpviz.core.datasets import reference_case
from bpviz.session.session import Session


def events_of(session):
    seen = []
    session.events.subscribe(seen.append)
    return seen


def test_step_into_walks_forward_then_backward_then_update():
    """F11 visits every layer forward (first to last), backward (last to first), then updates."""
    s = Session("cnn-shapes")
    n = len(s.net.layers)
    visited = []
    for _ in range(2 * n + 1):
        s.step_into()
        visited.append((s.phase, s.layer))
    expected = ([("forward", i) for i in range(n)] + [("backward", i) for i in reversed(range(n))]
                + [("update", None)])
    assert visited == expected
    assert s.step_count == 1


def test_stepped_step_equals_whole_step_bitwise():
    """Stepping one layer at a time gives exactly the arrays of a whole F10 step."""
    a, b = Session("cnn-shapes"), Session("cnn-shapes")
    for _ in range(2 * len(a.net.layers) + 1):
        a.step_into()
    b.step()
    for la, lb in zip(a.net.layers, b.net.layers):
        for k in la.params:
            assert np.array_equal(la.params[k], lb.params[k])
        assert np.array_equal(la.delta, lb.delta)
    assert a.loss == b.loss


def test_reference_preset_reproduces_math_md_update():
    """One step of the reference preset gives the W and b printed in MATH.md."""
    s = Session("reference")
    s.forward()
    case = reference_case()
    assert np.array_equal(s.net.layers[0].z, case["out"])
    s.backward()
    assert np.array_equal(s.net.layers[0].delta, case["delta"])
    s.update()
    layer = s.net.layers[0]
    np.testing.assert_allclose(layer.params["W"], case["W_after"], atol=1e-12)
    np.testing.assert_allclose(layer.params["b"], case["b_after"], atol=1e-12)


def test_phase_labels_name_layer_and_kind():
    s = Session("cnn-shapes")
    s.forward()
    s.step_into()
    n = len(s.net.layers)
    assert s.label() == f"backward · layer {n - 1} {s.net.layers[-1].kind} ({n} of {n})"


def test_finish_pass_runs_to_phase_boundaries():
    s = Session("cnn-shapes")
    s.step_into()
    s.finish_pass()
    assert (s.phase, s.done) == ("forward", True)
    s.finish_pass()
    assert (s.phase, s.done, s.layer) == ("backward", True, 0)
    s.finish_pass()
    assert s.phase == "update" and s.step_count == 1


def test_backward_twice_is_identical_and_does_not_update():
    s = Session("cnn-shapes")
    s.backward()
    first = [l.delta.copy() for l in s.net.layers]
    s.backward()
    assert all(np.array_equal(a, l.delta) for a, l in zip(first, s.net.layers))
    assert s.step_count == 0


def test_snapshot_holds_copies_equal_to_the_core():
    """Snapshot arrays equal the core's for the displayed sample and do not alias them."""
    s = Session("cnn-shapes")
    s.step()
    s.backward()
    snap = s.snapshot()
    for ls, layer in zip(snap.layers, s.net.layers):
        assert np.array_equal(ls.z, layer.z[0])
        assert np.array_equal(ls.delta, layer.delta[0])
        assert ls.delta_norm == pytest.approx(np.sqrt((layer.delta ** 2).sum()))
    snap.layers[0].params["W"][...] = 99
    assert not np.any(s.net.layers[0].params["W"] == 99)
    upd = snap.layers[0].updates["W"]
    np.testing.assert_allclose(upd.after, upd.before + upd.update)
    assert snap.grad_norm_history.shape == (2, len(s.net.layers))


def test_sample_mode_uses_the_selected_sample_then_advances():
    s = Session("cnn-shapes")
    s.set_training(mode="sample")
    s.select_sample(7)
    s.forward()
    assert list(s.batch) == [7]
    np.testing.assert_array_equal(s.net.layers[0].x[0], s.dataset.x[7])
    s.update()
    assert s.sample_index == 8


@pytest.mark.parametrize("bad", [{"lr": 0}, {"lr": float("nan")}, {"lr": "abc"},
                                 {"l2": -1}, {"clip_norm": 0}, {"mode": "batchy"},
                                 {"batch_size": 0}, {"lr": 0.5, "batch_size": -3}])
def test_bad_training_settings_change_nothing(bad):
    s = Session("cnn-shapes")
    before = s.training_settings()
    with pytest.raises(ValueError):
        s.set_training(**bad)
    assert s.training_settings() == before


def test_failed_edit_keeps_network_and_weights():
    s = Session("cnn-shapes")
    s.step()
    cfg, weights = s.net.config(), s.net.get_params()
    flatten = next(i for i, l in enumerate(s.net.layers) if l.kind == "Flatten")
    with pytest.raises(ValueError, match="Dense"):
        s.edit("remove_layer", flatten)
    assert s.net.config() == cfg
    for w, layer in zip(weights, s.net.layers):
        for k in w:
            assert np.array_equal(w[k], layer.params[k])
    assert s.step_count == 1


def test_edit_clears_history_and_announces():
    s = Session("cnn-shapes")
    seen = events_of(s)
    s.step()
    s.edit("insert_layer", 0, {"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": 1})
    assert len(s.history) == 0 and s.step_count == 0
    assert "architecture" in [e.kind for e in seen]


def test_exploding_learning_rate_is_caught_and_weights_kept():
    """With lr 1e6 the NaN guard stops training and the last good weights stay."""
    s = Session("deep-relu")
    s.set_training(lr=1e6)
    seen = events_of(s)
    with pytest.raises(NonFiniteError) as info:
        for _ in range(200):
            good = s.net.get_params()
            s.train_step()
    assert info.value.report.layer_kind in ("Dense",)
    for w, layer in zip(good, s.net.layers):
        assert np.array_equal(w["W"], layer.params["W"])
    assert any(e.kind == "nonfinite" for e in seen)


def test_save_open_round_trip_and_damaged_file(tmp_path):
    s = Session("cnn-shapes")
    s.step()
    path = tmp_path / "net.bpviz"
    s.save(path)
    other = Session("xor")
    other.open(path)
    for a, b in zip(s.net.layers, other.net.layers):
        for k in a.params:
            assert np.array_equal(a.params[k], b.params[k])
    assert other.dataset.input_shape == s.net.input_shape
    assert other.step_count == 1
    bad = tmp_path / "bad.bpviz"
    bad.write_bytes(b"not a zip at all")
    cfg = other.net.config()
    with pytest.raises(ValueError, match="damaged"):
        other.open(bad)
    assert other.net.config() == cfg


def test_dataset_with_too_many_classes_is_refused():
    from bpviz.core.datasets import Dataset
    s = Session("deep-relu")               # 2-D input, 2 softmax outputs
    five = Dataset("five", np.zeros((5, 2)), np.arange(5), tuple("abcde"), "5 classes")
    with pytest.raises(ValueError, match="5 classes but the output layer has 2 units"):
        s.set_dataset(five)
    assert s.dataset.name == "spirals"


def test_a_batch_stepped_by_hand_starts_with_the_selected_sample():
    """Mini-batch mode, stepped by hand: the panels draw the batch's first sample, which is
    the one the user selected (in the batch once, batch size kept); the rest is the
    trainer's batch."""
    s, twin = Session("cnn-shapes"), Session("cnn-shapes")      # same seed, same batches
    assert s.trainer.mode == "mini-batch"
    s.select_sample(7)
    s.forward()
    expected = twin.trainer.next_indices()
    assert s.batch[0] == 7 and len(s.batch) == len(expected) == s.trainer.batch_size
    assert len(set(s.batch.tolist())) == len(s.batch)
    others = [i for i in expected.tolist() if i != 7]
    assert s.batch[1:].tolist() == others[:len(expected) - 1]
    snap = s.snapshot()
    assert snap.sample_index == s.sample_index == 7
    np.testing.assert_array_equal(snap.x, s.dataset.x[7])


def test_continuous_training_takes_the_trainers_batches_unchanged():
    s, twin = Session("cnn-shapes"), Session("cnn-shapes")
    s.select_sample(7)
    for _ in range(3):
        s.train_step()
        np.testing.assert_array_equal(s.batch, twin.trainer.next_indices())


def test_loss_and_accuracy_belong_to_the_pass_in_progress():
    """A new forward pass clears both; the first backward layer already knows both."""
    s = Session("cnn-shapes")
    s.step()
    assert s.loss is not None and s.acc is not None
    s.step_into()                                   # the next step's forward starts
    assert s.phase == "forward" and s.loss is None and s.acc is None
    s.finish_pass()
    s.step_into()                                   # the output layer's δ
    assert s.phase == "backward" and s.loss == s.net.loss_value
    out, t = s.net.layers[-1].a, s.targets()
    assert s.acc == np.mean(np.argmax(out, axis=1) == np.asarray(t))
