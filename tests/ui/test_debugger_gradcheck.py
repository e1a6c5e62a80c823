"""Gradient check panel in the real window: the table holds exactly the core's
gradient_check results for the current sample, a broken backward shows "fail", the check runs
on a thread (the window keeps working, stepping included) and Cancel stops it early."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from bpviz.core import gradient_check
from bpviz.core.layers import Dense
from bpviz.session import gradcheck_job
from bpviz.session.session import dataset_targets
from bpviz.ui.debugger import gradcheck
from bpviz.ui.debugger.gradcheck import GradCheckPanel

NAME, TITLE = "gradcheckDock", "Gradient check"
LEFT = Qt.MouseButton.LeftButton


def open_dock(window, qtbot, name=NAME, title=TITLE, cls=GradCheckPanel):
    """Show the panel's dock the way a user does (View menu): the window builds the panel on
    first show. (A window without the debugger docks gets one through add_panel_dock.)"""
    dock = window.docks.get(name)
    if dock is None:
        window.add_panel_dock(name, title, cls(window.session))
        dock = window.docks[name]
    dock.show()
    dock.raise_()
    qtbot.waitUntil(lambda: isinstance(window.panels.get(name), cls)
                    and window.panels[name].isVisible(), timeout=3000)
    window.refresh()
    return window.panels[name]


def f10(qtbot, w, times=1):
    for _ in range(times):
        qtbot.keyClick(w, Qt.Key.Key_F10)


def run(qtbot, panel, coords, timeout=60000):
    panel.coords.setValue(coords)
    qtbot.mouseClick(panel.run_button, LEFT)
    qtbot.waitUntil(lambda: not panel.running, timeout=timeout)
    return panel.job


def core_check(session, coords, net=None):
    i = session.sample_index
    return gradient_check(net or session.net, session.dataset.x[i:i + 1],
                          dataset_targets(session.dataset)[i:i + 1], max_coords=coords)


def after_each_coordinate(monkeypatch, pause):
    """Run ``pause()`` in the check's thread after each coordinate, then let the check see a
    cancel made meanwhile. A fast machine checked all of cnn-shapes (~1,700 coordinates) in
    ~0.5 s, before a test could watch it run or cancel it."""
    real = gradcheck_job.gradient_check

    def paced(*args, progress, **kwargs):
        def step(done, total):
            progress(done, total)
            pause()
            return progress(done, total)
        return real(*args, progress=step, **kwargs)
    monkeypatch.setattr(gradcheck_job, "gradient_check", paced)


@pytest.fixture
def shapes(make_window, qtbot):
    w = make_window("cnn-shapes")
    f10(qtbot, w, 3)
    w.session.select_sample(7)
    return w


def test_panels_list():
    assert gradcheck.PANELS == [(NAME, TITLE, GradCheckPanel)]


def test_table_holds_the_core_results_for_the_current_sample(shapes, qtbot):
    w, s = shapes, shapes.session
    panel = open_dock(w, qtbot)
    assert panel.hint and "Run check" in panel.hint
    job = run(qtbot, panel, 40)
    ref = core_check(s, 40)
    shown = panel.displayed()
    np.testing.assert_array_equal(shown["rel_error"], [r.rel_error for r in ref.results])
    np.testing.assert_array_equal(shown["max_abs_error"], [r.max_abs_error for r in ref.results])
    np.testing.assert_array_equal(shown["checked"], [r.checked for r in ref.results])
    assert panel.statuses() == [(r.layer_index, r.tensor, r.status) for r in ref.results]
    t = panel.table
    assert t.rowCount() == len(ref.results)
    for k, r in enumerate(ref.results):
        assert t.item(k, 2).text() == f"{r.rel_error:.2e}"
        assert t.item(k, 6).data(Qt.ItemDataRole.UserRole) == r.status == "pass"
        assert t.item(k, 5).text() == str(r.skipped)
    assert "sample 7" in panel.header.text() and "worst: PASS" in panel.header.text()
    assert job.context.step == s.step_count and panel.note.text() == ""
    assert "1,0" not in panel.progress.format() and "cancelled" not in panel.progress.format()


def test_broken_backward_shows_fail_for_the_affected_rows(shapes, qtbot, monkeypatch):
    original = Dense.input_gradient
    monkeypatch.setattr(Dense, "input_gradient", lambda self: original(self) * 1.01)
    panel = open_dock(shapes, qtbot)
    run(qtbot, panel, 25)
    dense = len(shapes.session.net.layers) - 1
    statuses = panel.statuses()
    assert {s for i, _, s in statuses if i < dense} == {"fail"}
    assert {s for i, _, s in statuses if i == dense} == {"pass"}
    assert "worst: FAIL" in panel.header.text()
    ref = core_check(shapes.session, 25)
    assert [s for _, _, s in statuses] == [r.status for r in ref.results]
    qtbot.mouseClick(panel.table.viewport(), LEFT,
                     pos=panel.table.visualItemRect(panel.table.item(0, 2)).center())
    assert panel.detail.text().startswith("Back-prop disagrees")


def test_selecting_a_row_selects_its_layer_and_plots_its_coordinates(shapes, qtbot):
    w = shapes
    panel = open_dock(w, qtbot)
    job = run(qtbot, panel, 30)
    row = next(k for k, (i, t, _) in enumerate(panel.statuses()) if (i, t) == (2, "W"))
    with qtbot.waitSignal(panel.layerPicked) as picked:
        qtbot.mouseClick(panel.table.viewport(), LEFT,
                         pos=panel.table.visualItemRect(panel.table.item(row, 1)).center())
    assert picked.args == [2] and w._selected == 2
    result = job.result.results[row]
    np.testing.assert_array_equal(panel.displayed()["analytic"], result.analytic)
    np.testing.assert_array_equal(panel.displayed()["numeric"], result.numeric)
    x, y = panel.points.getData()
    np.testing.assert_array_equal(x, result.numeric)
    panel.view_mode.setCurrentIndex(1)                      # difference a − n
    np.testing.assert_allclose(panel.points.getData()[1], result.analytic - result.numeric)
    w.select_layer(5)                                       # the window picks another layer
    assert panel.statuses()[panel.table.currentRow()][0] == 5


def test_runs_on_a_thread_while_the_user_keeps_stepping_and_cancel_stops_early(make_window,
                                                                               qtbot,
                                                                               monkeypatch):
    """The full check takes seconds: progress advances while the event loop runs, F10 steps
    the session meanwhile, results belong to the weights at Run time and are marked stale;
    Cancel ends the check well before the last coordinate."""
    after_each_coordinate(monkeypatch, lambda: time.sleep(0.002))   # ≥ 3.4 s in all
    w = make_window("cnn-shapes")
    s = w.session
    panel = open_dock(w, qtbot)
    frozen = s.net.clone()
    params = [dict(l.params) for l in s.net.layers]
    panel.coords.setValue(0)
    qtbot.mouseClick(panel.run_button, LEFT)
    assert panel.running and not panel.run_button.isEnabled()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=10000)
    first = panel.progress.value()
    qtbot.wait(300)
    assert panel.progress.value() > first, "progress is delivered while the check runs"
    assert all(a is b for p, l in zip(params, s.net.layers) for a, b in
               zip(p.values(), l.params.values())), "the check never writes session.net"
    f10(qtbot, w, 2)                                         # stepping still works
    assert s.step_count == 2
    qtbot.mouseClick(panel.cancel_button, LEFT)
    qtbot.waitUntil(lambda: not panel.running, timeout=10000)
    job = panel.job
    assert job.result.cancelled and 0 < job.done < job.total
    statuses = [st for _, _, st in panel.statuses()]
    assert "not run" in statuses and statuses[0] == "pass"
    assert "cancelled" in panel.progress.format() and panel.run_button.isEnabled()
    ref = gradient_check(frozen, s.dataset.x[0:1], dataset_targets(s.dataset)[0:1],
                         layers=[0], tensors=("W", "b"))     # the first tensors checked
    got = job.result.results
    assert [r.rel_error for r in got[:2]] == [r.rel_error for r in ref.results]
    assert "Out of date" in panel.note.text() and "weights have changed" in panel.note.text()


def test_a_float32_network_is_checked_in_float64(make_window, qtbot):
    w = make_window("cnn-shapes")
    w.session.net = w.session.net.clone(np.float32)
    panel = open_dock(w, qtbot)
    job = run(qtbot, panel, 10)
    assert "float32" in panel.header.text() and "float64 copy" in panel.header.text()
    assert job.result.worst in ("pass", "warn")
    assert max(panel.displayed()["rel_error"]) < 1e-6


def test_hidden_panel_does_nothing_while_stepping(make_window, qtbot, monkeypatch):
    w = make_window("cnn-shapes")
    panel = open_dock(w, qtbot)
    w.docks[NAME].hide()
    calls = []
    monkeypatch.setattr(gradcheck, "plan_check", lambda *a, **k: calls.append(1) or [])
    f10(qtbot, w, 2)
    w.select_layer(2)
    assert calls == [] and not panel.running


def test_deleting_the_panel_cancels_its_check(qtbot, monkeypatch):
    """A panel that goes away (window closed) stops its worker instead of running on."""
    from bpviz.session.session import Session
    # The worker is held after its first coordinate until the panel is gone, so the check
    # cannot finish first on a fast machine (the race made this test flaky).
    gate = threading.Event()
    after_each_coordinate(monkeypatch, lambda: gate.wait(10))
    panel = GradCheckPanel(Session("cnn-shapes"))
    qtbot.addWidget(panel)
    panel.show()
    panel.coords.setValue(0)
    panel.run_check()
    panel.destroyed.connect(lambda *_: gate.set())
    job = panel.job
    qtbot.waitUntil(lambda: job.done > 0, timeout=10000)
    panel.deleteLater()
    qtbot.waitUntil(lambda: job.result is not None, timeout=10000)
    assert job.result.cancelled and job.done < job.total
    gradcheck.stop_all()
    assert gradcheck._LIVE == []


def test_dock_is_hidden_and_unbuilt_by_default(window, qtbot):
    dock = window.docks[NAME]
    assert dock.objectName() == NAME and dock.windowTitle() == TITLE
    assert not dock.isVisible() and NAME not in window.panels
    menus = [a.menu() for a in window.view_menu.actions() if a.menu() is not None]
    assert any(dock.toggleViewAction() in m.actions() for m in menus + [window.view_menu])
    panel = open_dock(window, qtbot)
    assert isinstance(panel, GradCheckPanel) and panel.session is window.session


def test_a_new_session_stops_the_check_and_rebuilds_the_panel(window, qtbot, monkeypatch):
    from bpviz.session.session import Session
    # Held after its first coordinate until the old panel is gone (as in the test above):
    # the whole check takes ~0.2 s now, and finished before the new session was made.
    gate = threading.Event()
    after_each_coordinate(monkeypatch, lambda: gate.wait(10))
    panel = open_dock(window, qtbot)
    panel.coords.setValue(0)
    panel.destroyed.connect(lambda *_: gate.set())
    qtbot.mouseClick(panel.run_button, LEFT)
    job = panel.job
    qtbot.waitUntil(lambda: job.done > 0, timeout=10000)
    window.set_session(Session("xor"))
    qtbot.waitUntil(lambda: job.result is not None, timeout=10000)
    assert job.result.cancelled and job.done < job.total
    assert gate.is_set()                         # (so the new panel's check runs unpaced)
    fresh = open_dock(window, qtbot)
    assert fresh is not panel and fresh.session is window.session
    job = run(qtbot, fresh, 0)
    assert job.result.worst == "pass" and job.context.sample_label.startswith("class")
