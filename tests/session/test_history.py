"""History: columns recorded in place, snapshots take views that never change afterwards."""
from __future__ import annotations

import math

import numpy as np

from bpviz.session.history import FIRST_CAPACITY
from bpviz.session.session import Session
from bpviz.session.snapshot import norm


def reference_row(s: Session) -> tuple:
    """What one row must hold, computed here from the core's arrays."""
    layers = s.net.layers
    return (s.step_count, float(s.loss), math.nan if s.acc is None else float(s.acc),
            [norm(l.grads["W"]) if "W" in l.grads else math.nan for l in layers],
            [norm(l.delta) for l in layers])


def test_rows_recorded_in_place_equal_the_core_values_across_growth():
    s = Session("xor")
    rows = []
    for _ in range(FIRST_CAPACITY * 2 + 7):          # grows twice
        s.train_step()
        s.step_count -= 1                             # the row was recorded before the update
        rows.append(reference_row(s))
        s.step_count += 1
    steps, loss, acc, g, d = s.history.arrays(len(s.net.layers))
    np.testing.assert_array_equal(steps, [r[0] for r in rows])
    np.testing.assert_array_equal(loss, [r[1] for r in rows])
    np.testing.assert_array_equal(acc, [r[2] for r in rows])
    np.testing.assert_array_equal(g, np.array([r[3] for r in rows]))
    np.testing.assert_array_equal(d, np.array([r[4] for r in rows]))


def test_snapshot_history_is_a_view_that_later_changes_never_reach():
    s = Session("cnn-shapes")
    for _ in range(5):
        s.step()
    snap = s.snapshot()
    before = [np.array(a, copy=True) for a in (snap.history_steps, snap.loss_history,
                                                snap.grad_norm_history)]
    assert not snap.loss_history.flags.writeable
    gen = snap.history_generation
    for _ in range(3):                       # appending after the shared rows: same generation
        s.step()
    assert s.history.generation == gen and len(s.history) == 8
    s.backward()                              # a new pass …
    s.backward()                              # … recomputed: its row is replaced, not added
    assert len(s.history) == 9 and s.history.generation != gen
    s.rewind(2)                               # rows of step 2 on dropped, then new ones
    for _ in range(6):
        s.step()
    assert s.history.steps.tolist() == list(range(8))
    for old, now in zip(before, (snap.history_steps, snap.loss_history,
                                 snap.grad_norm_history)):
        np.testing.assert_array_equal(now, old)


def test_generation_tells_when_earlier_rows_may_differ():
    s = Session("cnn-shapes")
    s.step()
    first = s.snapshot()
    s.step()
    second = s.snapshot()
    assert second.history_generation == first.history_generation
    np.testing.assert_array_equal(second.loss_history[:1], first.loss_history)
    s.history.clear()
    s.step()
    assert s.snapshot().history_generation != first.history_generation
