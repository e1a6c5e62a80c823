"""GradCheckJob: the core's gradient check of the current sample on a frozen float64 copy,
with throttled progress, cancel (also from another thread) and staleness. No Qt."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from bpviz.core import gradient_check
from bpviz.core.layers import Dense
from bpviz.session.gradcheck_job import GradCheckJob, plan_check
from bpviz.session.session import Session, dataset_targets


@pytest.fixture(scope="module")
def shapes():
    s = Session("cnn-shapes")
    for _ in range(3):                 # non-zero biases: no ReLU input sits exactly at 0
        s.step()
    s.select_sample(7)
    return s


def _sample(s):
    i = s.sample_index
    return s.dataset.x[i:i + 1], dataset_targets(s.dataset)[i:i + 1]


def _key(r):
    return (r.layer_index, r.tensor)


def test_results_equal_core_gradient_check_on_the_same_sample(shapes):
    job = GradCheckJob.from_session(shapes, max_coords=20)
    got = job.run()
    ref = gradient_check(shapes.net, *_sample(shapes), max_coords=20)
    assert [_key(r) for r in got.results] == [_key(r) for r in ref.results]
    for a, b in zip(got.results, ref.results):
        assert a.rel_error == b.rel_error and a.status == b.status
        assert (a.checked, a.skipped) == (b.checked, b.skipped)
        np.testing.assert_array_equal(a.analytic, b.analytic)
    assert got.worst == "pass" and not got.cancelled
    assert job.context.sample_index == 7 and job.context.step == shapes.step_count
    assert job.done == job.total == sum(p.coords for p in job.plan)


def test_plan_matches_the_core_order_and_counts(shapes):
    plan = plan_check(shapes.net, max_coords=50)
    ref = gradient_check(shapes.net, *_sample(shapes), max_coords=50)
    assert [(p.layer_index, p.tensor) for p in plan] == [_key(r) for r in ref.results]
    assert [p.coords for p in plan] == [r.checked + r.skipped for r in ref.results]
    assert all(p.tensor != "delta" or p.layer_kind != "Flatten" for p in plan)
    every = plan_check(shapes.net, max_coords=None)
    assert [p.coords for p in every] == [p.size for p in every]


def test_zero_max_coords_means_every_coordinate(shapes):
    job = GradCheckJob.from_session(shapes, max_coords=0)
    assert job.max_coords is None and job.total == sum(p.size for p in job.plan)


def test_job_never_touches_the_session_network(shapes):
    """The copy is made at construction: stepping afterwards changes nothing in the job,
    and running the job leaves the session's arrays (weights and caches) as they were."""
    s = Session("cnn-shapes")
    s.forward()
    job = GradCheckJob.from_session(s, max_coords=8)
    before = [{k: v.copy() for k, v in l.params.items()} for l in s.net.layers]
    frozen = s.net.clone()
    s.step()                                   # the weights move on
    after = [{k: v.copy() for k, v in l.params.items()} for l in s.net.layers]
    caches = [(l.x, l.z, l.a, l.delta) for l in s.net.layers]
    result = job.run()
    ref = gradient_check(frozen, *_sample_of(s, job.context.sample_index), max_coords=8)
    assert [r.rel_error for r in result.results] == [r.rel_error for r in ref.results]
    for layer, p in zip(s.net.layers, after):
        for k, v in p.items():
            np.testing.assert_array_equal(layer.params[k], v)
    assert all(all(a is b for a, b in zip(c, (l.x, l.z, l.a, l.delta)))
               for c, l in zip(caches, s.net.layers))
    assert not all(np.array_equal(b["W"], a["W"]) for b, a in zip(before, after) if "W" in b)
    assert job.net is None                     # the private copy is released after the run


def _sample_of(s, i):
    return s.dataset.x[i:i + 1], dataset_targets(s.dataset)[i:i + 1]


def test_float32_network_is_checked_in_float64():
    s = Session("cnn-shapes")
    s.net = s.net.clone(np.float32)
    job = GradCheckJob.from_session(s, max_coords=10)
    assert job.net.dtype == np.float64 and job.context.dtype == "float32"
    result = job.run()
    assert result.worst == "pass"
    assert max(r.rel_error for r in result.results) < 1e-6


def test_broken_backward_fails_the_affected_rows(shapes, monkeypatch):
    """Dense.input_gradient × 1.01 corrupts δ (and W, b) of every layer below the Dense."""
    original = Dense.input_gradient
    monkeypatch.setattr(Dense, "input_gradient", lambda self: original(self) * 1.01)
    result = GradCheckJob.from_session(shapes, max_coords=15).run()
    status = {_key(r): r.status for r in result.results}
    dense = shapes.net.layers[-1].index
    assert all(v == "fail" for (i, _), v in status.items() if i < dense)
    assert len([k for k in status if k[0] < dense]) == 8
    assert all(v == "pass" for (i, _), v in status.items() if i == dense)
    assert result.worst == "fail"


def test_cancel_from_the_progress_callback_stops_early(shapes):
    job = GradCheckJob.from_session(shapes, interval=0.0)
    calls = []

    def progress(done, total):
        calls.append(done)
        if done == 30:
            job.cancel()

    result = job.run(progress)
    assert result.cancelled and job.cancelled
    assert job.done == 30 < job.total          # stopped right there
    last = result.results[-1]
    planned = job.plan[len(result.results) - 1]
    assert job.partial(last) and last.checked + last.skipped < planned.coords
    assert len(job.pending()) == len(job.plan) - len(result.results)
    assert calls == list(range(1, 31))


def test_cancel_from_another_thread():
    s = Session("cnn-shapes")
    job = GradCheckJob.from_session(s)
    seen = threading.Event()
    worker = threading.Thread(target=job.run, args=(lambda d, t: seen.set(),))
    t0 = time.perf_counter()
    worker.start()
    assert seen.wait(10)
    job.cancel()
    worker.join(5)
    assert not worker.is_alive() and time.perf_counter() - t0 < 5
    assert job.result.cancelled and job.done < job.total


def test_a_sample_on_relu_kinks_is_a_warning_not_a_pass():
    """At step 0 the biases are 0 and the images have a zero background: every z of the first
    conv there is exactly 0, so moving a bias by ±h flips ReLUs; those coordinates are
    skipped and the row is 'warn' (more than 1 % skipped), as the core decides."""
    s = Session("cnn-shapes")
    s.select_sample(7)
    result = GradCheckJob.from_session(s, max_coords=20).run()
    b0 = next(r for r in result.results if _key(r) == (0, "b"))
    assert b0.skipped == 4 and b0.checked == 0 and b0.status == "warn"


def test_cancel_before_run_returns_empty_cancelled():
    job = GradCheckJob.from_session(Session("xor"))
    job.cancel()
    result = job.run()
    assert result.cancelled and result.results == [] and len(job.pending()) == len(job.plan)


def test_progress_is_throttled_but_always_reports_the_end(shapes):
    job = GradCheckJob.from_session(shapes, max_coords=10, interval=60.0)
    calls = []
    job.run(lambda d, t: calls.append((d, t)))
    assert calls == [(job.total, job.total)]


def test_staleness_follows_steps_samples_and_edits():
    s = Session("cnn-shapes")
    job = GradCheckJob.from_session(s, max_coords=3)
    assert job.is_current(s) and job.stale_reason(s) == ""
    s.forward()                                # a forward pass changes no weight
    assert job.is_current(s)
    s.select_sample(3)
    assert "another sample" in job.stale_reason(s)
    s.select_sample(0)
    assert job.is_current(s)
    s.step()
    assert "weights have changed" in job.stale_reason(s)
    job2 = GradCheckJob.from_session(s, max_coords=3)
    s.edit("remove_layer", 1)
    assert "architecture" in job2.stale_reason(s)


def test_labels_and_coordinate_names(shapes):
    job = GradCheckJob.from_session(shapes, max_coords=5)
    label = dataset_targets(shapes.dataset)[7]
    assert job.context.sample_label.startswith(f"class {int(label)} (")
    result = job.run()
    conv_w = result.results[0]
    assert job.coordinate_name(conv_w, 0) == "W[0,0,0,0]"
    pool_delta = next(r for r in result.results if r.tensor == "delta" and r.layer_index == 1)
    assert job.coordinate_name(pool_delta, 4 * 6 * 6 - 1) == "δ[3,5,5]"
    assert len(conv_w.coords) == conv_w.checked


def test_copy_is_consistent_while_a_training_thread_updates():
    """Jobs made while another thread trains hold one step's weights, never a mix."""
    s = Session("deep-sigmoid")
    states = [[{k: v.copy() for k, v in l.params.items()} for l in s.net.layers]]
    stop = threading.Event()

    def train():
        while not stop.is_set():
            s.train_step()
            states.append([{k: u.after for k, u in e.items()} for e in s.last_update.layers])

    worker = threading.Thread(target=train)
    worker.start()
    try:
        jobs = [GradCheckJob.from_session(s, max_coords=1) for _ in range(30)]
    finally:
        stop.set()
        worker.join(10)
    for job in jobs:
        got = [{k: v for k, v in l.params.items()} for l in job.net.layers]
        assert any(all(np.array_equal(g[k], st[k]) for g, st in zip(got, state) for k in g)
                   for state in states)


def test_rows_summary_and_explanations(shapes):
    from bpviz.session.gradcheck_job import explain
    job = GradCheckJob.from_session(shapes, max_coords=6, interval=0.0)
    assert [s for _, _, s in job.rows()] == ["not run"] * len(job.plan)
    job.run(lambda d, t: job.cancel() if d == 20 else None)
    rows = job.rows()
    assert [s for _, _, s in rows].count("partial") <= 1 and rows[-1][2] == "not run"
    assert "worst: PASS" in job.summary() and f"of {len(job.plan)} tensors" in job.summary()
    p, r, status = rows[0]
    text = explain(p, r, status)
    assert text.startswith("layer 0 Conv2D · W · 36 values") and "agree" in text
    k, name = job.worst_coordinate(r)
    assert name == job.coordinate_name(r, r.coords[k])
    assert abs(r.analytic[k] - r.numeric[k]) == r.max_abs_error
    assert explain(*rows[-1]).endswith("not checked")
    bare = GradCheckJob(shapes.net, *_sample(shapes), max_coords=2)
    bare.run()
    assert bare.summary().startswith("worst: ")
