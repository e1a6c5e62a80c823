"""Timeline panel in the real window: recording, scrubbing (every panel follows), budget,
A/B difference maps and restore — compared with the core arrays recorded while stepping."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from bpviz.session.recorder import MB
from bpviz.session.session import Session
from bpviz.ui.debugger import timeline
from bpviz.ui.debugger.timeline import TimelinePanel

NAME, TITLE = "timelineDock", "Timeline"


def open_dock(window, qtbot, name, title, cls):
    """The debugger panel ``name`` in the window: its (hidden by default) dock is shown, which
    makes the window build the panel over its session and paint it."""
    dock = window.docks[name]
    assert dock.isHidden() and name not in window.panels        # hidden: nothing built
    dock.show()
    dock.raise_()
    qtbot.waitUntil(lambda: isinstance(dock.widget(), cls) and dock.widget().isVisible(),
                    timeout=3000)
    panel = dock.widget()
    assert panel.session is window.session and window.panels[name] is panel
    return panel


def f10(qtbot, w, times=1):
    for _ in range(times):
        qtbot.keyClick(w, Qt.Key.Key_F10)


def test_panels_list_and_a_hidden_panel_costs_nothing(qtbot):
    assert timeline.PANELS == [(NAME, TITLE, TimelinePanel)]
    s = Session("cnn-shapes")
    listeners = list(s.events._listeners)
    panel = TimelinePanel(s)
    qtbot.addWidget(panel)                       # never shown
    for _ in range(3):
        s.step()
        panel.show_snapshot(s.snapshot())
    assert len(panel.recorder) == 0 and s.events._listeners == listeners
    assert panel.displayed() == {} and not panel.recorder.enabled


def test_scrubbing_shows_the_recorded_step_in_every_panel(make_window, qtbot):
    w = make_window("cnn-shapes")
    s = w.session
    panel = open_dock(w, qtbot, NAME, TITLE, TimelinePanel)
    qtbot.mouseClick(panel.record_box, Qt.MouseButton.LeftButton)
    assert panel.recorder.enabled
    core = {}
    for _ in range(5):
        f10(qtbot, w)
        core[s.step_count] = (s.net.layers[2].z[0].copy(), s.net.layers[2].delta[0].copy())
    fm, sens = w.panels["featureMapsDock"], w.panels["sensitivityDock"]
    w.select_layer(2)                        # (stepping selects the layer the cursor is on)
    records = panel.recorder.records
    for k in (1, 3, 2):
        pos = next(i for i, r in enumerate(records) if r.phase == "update" and r.step == k)
        panel.slider.setValue(pos)
        np.testing.assert_array_equal(fm.displayed()["z"], core[k][0])
        np.testing.assert_array_equal(sens.displayed()["delta"], core[k][1])
        assert w.steps_label.text() == f"step {k}"
        assert panel.position == pos and panel.live_button.isEnabled()
    qtbot.mouseClick(panel.live_button, Qt.MouseButton.LeftButton)
    assert panel.position is None
    np.testing.assert_array_equal(fm.displayed()["z"], s.net.layers[2].z[0])
    assert w.steps_label.text() == "step 5"


def test_a_mid_pass_record_shows_the_pass_as_it_was(make_window, qtbot):
    w = make_window("cnn-shapes")
    s = w.session
    panel = open_dock(w, qtbot, NAME, TITLE, TimelinePanel)
    panel.set_recording(True)
    f10(qtbot, w)
    qtbot.keyClick(w, Qt.Key.Key_F11)
    qtbot.keyClick(w, Qt.Key.Key_F11)                  # forward of step 2 at layer 1
    z_then = s.net.layers[1].z[0].copy()
    f10(qtbot, w, 2)
    w.select_layer(1)
    pos = next(i for i, r in enumerate(panel.recorder.records)
               if r.phase == "forward" and r.layer == 1)
    panel.slider.setValue(pos)
    np.testing.assert_array_equal(w.panels["featureMapsDock"].displayed()["z"], z_then)
    assert w.phase_label.text().startswith("forward · layer 1 MaxPool2D (2 of 6)")
    f10(qtbot, w)                                      # stepping returns to the present
    assert panel.position is None and w.steps_label.text() == "step 4"


def test_budget_spin_box_evicts_oldest_records(make_window, qtbot):
    w = make_window("deep-sigmoid")
    panel = open_dock(w, qtbot, NAME, TITLE, TimelinePanel)
    panel.set_recording(True)
    f10(qtbot, w, 4)
    rec = panel.recorder
    per = max(r.nbytes for r in rec.records)
    panel.budget.setValue(max(0.1, round(6 * per / MB + 0.05, 1)))
    f10(qtbot, w, 6)
    assert rec.evicted > 0 and rec.used_bytes <= rec.budget_bytes
    assert f"{rec.evicted} evicted" in panel.usage.text()
    assert panel.slider.maximum() == len(rec) - 1
    assert rec.records[-1].step == 10 and rec.records[0].step > 0


def test_difference_maps_are_b_minus_a_of_the_selected_layer(make_window, qtbot):
    w = make_window("cnn-shapes")
    s = w.session
    panel = open_dock(w, qtbot, NAME, TITLE, TimelinePanel)
    panel.set_recording(True)
    f10(qtbot, w)
    w1 = s.net.layers[0].params["W"].copy()
    a1 = s.net.layers[0].a[0].copy()
    f10(qtbot, w, 3)
    w.select_layer(0)
    records = panel.recorder.records
    pos1 = next(i for i, r in enumerate(records) if r.phase == "update" and r.step == 1)
    panel.spin["A"].setValue(pos1)
    panel.spin["B"].setValue(len(records) - 1)
    d = panel.displayed()
    np.testing.assert_array_equal(d["diff_W"], s.net.layers[0].params["W"] - w1)
    np.testing.assert_array_equal(d["diff_a"], s.net.layers[0].a[0] - a1)
    lo, hi = d["levels_W"]
    assert lo == -hi and hi == pytest.approx(np.abs(d["diff_W"]).max(), rel=1e-6)
    assert panel.views["W"].cmap_kind == "diverging"
    w.select_layer(1)                                  # pooling: no weights
    assert "diff_W" not in panel.displayed() and "diff_a" in panel.displayed()


def test_restore_rewinds_the_window_and_replays_the_original_run(make_window, qtbot,
                                                                 monkeypatch):
    w = make_window("cnn-shapes")
    s = w.session
    panel = open_dock(w, qtbot, NAME, TITLE, TimelinePanel)
    panel.set_recording(True)
    f10(qtbot, w, 6)
    records = panel.recorder.records
    original = {r.step: r.params for r in records if r.phase == "update"}
    pos = next(i for i, r in enumerate(records) if r.phase == "update" and r.step == 2)
    panel.slider.setValue(pos)
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(panel.restore_button, Qt.MouseButton.LeftButton)
    assert asked and s.step_count == 2 and s.phase == "idle"
    assert panel.position is None and len(panel.recorder) == pos + 1
    assert w.steps_label.text() == "step 2" and w.phase_label.text() == "ready · step 2"
    f10(qtbot, w, 3)
    for layer, expected in zip(s.net.layers, original[5]):
        for k in expected:
            np.testing.assert_array_equal(layer.params[k], expected[k])


def test_restore_cancelled_changes_nothing(make_window, qtbot, monkeypatch):
    w = make_window("cnn-shapes")
    panel = open_dock(w, qtbot, NAME, TITLE, TimelinePanel)
    panel.set_recording(True)
    f10(qtbot, w, 2)
    n = len(panel.recorder)
    panel.slider.setValue(1)
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Cancel)
    qtbot.mouseClick(panel.restore_button, Qt.MouseButton.LeftButton)
    assert w.session.step_count == 2 and len(panel.recorder) == n == 6


def test_unticking_record_stops_recording(make_window, qtbot):
    w = make_window("deep-sigmoid")
    panel = open_dock(w, qtbot, NAME, TITLE, TimelinePanel)
    panel.set_recording(True)
    f10(qtbot, w)
    n = len(panel.recorder)
    panel.set_recording(False)
    f10(qtbot, w, 2)
    assert len(panel.recorder) == n and not panel.record_box.isChecked()


def test_recording_while_training_in_the_worker_keeps_every_step(make_window, qtbot):
    w = make_window("deep-sigmoid")
    s = w.session
    panel = open_dock(w, qtbot, NAME, TITLE, TimelinePanel)
    panel.set_recording(True)
    qtbot.keyClick(w, Qt.Key.Key_F5)
    assert w.trainer.running
    qtbot.waitUntil(lambda: s.step_count >= 15, timeout=10000)
    panel.set_recording(False)                   # unticking during the run is safe too
    panel.set_recording(True)
    qtbot.waitUntil(lambda: s.step_count >= 20, timeout=10000)
    qtbot.keyClick(w, Qt.Key.Key_F5)
    assert not w.trainer.running
    updates = [r for r in panel.recorder.records if r.phase == "update"]
    steps = [r.step for r in updates]
    assert steps[-1] == s.step_count and len(steps) >= 15
    last = updates[-1].params
    for layer, p in zip(s.net.layers, last):
        np.testing.assert_array_equal(layer.params["W"], p["W"])
    assert panel.slider.maximum() == len(panel.recorder) - 1


def test_scrubbing_while_training_pauses_it(make_window, qtbot):
    w = make_window("deep-sigmoid")
    panel = open_dock(w, qtbot, NAME, TITLE, TimelinePanel)
    panel.set_recording(True)
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: len(panel.recorder) >= 6, timeout=10000)
    panel.show_record(2)
    assert not w.trainer.running and panel.position == 2
    assert w.steps_label.text() == f"step {panel.recorder.record(2).step}"
