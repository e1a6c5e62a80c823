"""A/B comparison panel: controls start a twin, both step in lock-step (also on F10), and the
overlay holds exactly both runs' histories."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from bpviz.session.session import Session
from bpviz.ui.debugger import compare as panel_module
from bpviz.ui.debugger.compare import ComparePanel, parse_value
from test_debugger_timeline import f10, open_dock

NAME, TITLE = "compareDock", "A/B comparison"


def click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def curve_data(panel, layer):
    (a, b), = [pair for i, pair in panel.curves if i == layer]
    return a.getOriginalDataset(), b.getOriginalDataset()


def test_sigmoid_vs_relu_overlay_equals_both_histories(make_window, qtbot):
    assert panel_module.PANELS == [(NAME, TITLE, ComparePanel)]
    w = make_window("deep-sigmoid")
    s = w.session
    panel = open_dock(w, qtbot, NAME, TITLE, ComparePanel)
    panel.set_change("activation", "relu")
    click(qtbot, panel.start_button)
    c = panel.comparison
    assert c.running and c.describe() == "hidden activation sigmoid → relu"
    panel.steps_box.setValue(25)
    click(qtbot, panel.step_button)
    f10(qtbot, w, 5)                                     # B follows F10 too
    assert c.b.steps == 30 and w.steps_label.text() == "step 30"
    d = panel.displayed()
    steps, loss, acc, grad, _ = s.history.arrays(len(s.net.layers))
    keep = steps >= c.start_step
    np.testing.assert_array_equal(d["grad_a"], grad[keep])
    np.testing.assert_array_equal(d["loss_a"], loss[keep])
    b = c.b.history.arrays(len(c.b.net.layers))
    np.testing.assert_array_equal(d["grad_b"], b[3])
    np.testing.assert_array_equal(d["loss_b"], b[1])
    np.testing.assert_array_equal(d["steps_a"], d["steps_b"])
    (xa, ya), (xb, yb) = curve_data(panel, 0)             # what the curves were given
    np.testing.assert_array_equal(ya, grad[keep][:, 0])
    np.testing.assert_array_equal(yb, b[3][:, 0])
    assert d["grad_b"][-1, 0] / d["grad_a"][-1, 0] > 100  # the lesson
    assert panel.grad_plot.getAxis("left").logMode
    w.select_layer(0)
    assert "B/A = " in panel.header.text()


def test_no_change_twin_draws_identical_curves(qtbot):
    s = Session("cnn-shapes")
    panel = ComparePanel(s)
    qtbot.addWidget(panel)
    with qtbot.waitExposed(panel):
        panel.show()
    panel.set_change("lr", "0.1")                        # the same value as A: no change
    panel.start()
    panel.step(4)
    panel.show_snapshot(s.snapshot())
    d = panel.displayed()
    np.testing.assert_array_equal(d["grad_a"], d["grad_b"])
    np.testing.assert_array_equal(d["loss_a"], d["loss_b"])


def test_bad_value_is_refused_with_a_message_and_nothing_starts(qtbot):
    s = Session("deep-sigmoid")
    panel = ComparePanel(s)
    qtbot.addWidget(panel)
    panel.set_change("lr", "abc")
    panel.start()
    assert panel.comparison is None and "not a number" in panel.note.text()
    for key, text in (("lr", "-1"), ("lr", "nan"), ("lr", "1e999"), ("seed", "x")):
        panel.set_change(key, text)
        panel.start()
        assert panel.comparison is None
    assert parse_value("clip_norm", "off") is None and parse_value("l2", "0") == 0.0


def test_stop_ends_the_lock_step_and_a_hidden_panel_draws_nothing(qtbot):
    s = Session("deep-sigmoid")
    panel = ComparePanel(s)
    qtbot.addWidget(panel)                               # hidden
    s.step()
    panel.show_snapshot(s.snapshot())
    assert panel.comparison is None and panel.displayed() == {}
    panel.set_change("activation", "tanh")
    panel.start()
    s.step()
    panel.show_snapshot(s.snapshot())
    assert panel.comparison.b.steps == 1 and panel.displayed() == {}   # not drawn
    with qtbot.waitExposed(panel):
        panel.show()
    assert panel.displayed()["steps_b"].tolist() == [1]
    panel.stop()
    s.step()
    assert panel.comparison.b.steps == 1 and not panel.stop_button.isEnabled()


def test_reset_stops_b_and_the_panel_says_why(make_window, qtbot):
    w = make_window("deep-sigmoid")
    panel = open_dock(w, qtbot, NAME, TITLE, ComparePanel)
    panel.set_change("loss", "mse")
    panel.start()
    f10(qtbot, w, 2)
    assert panel.comparison.b.net.loss == "mse" and panel.comparison.b.steps == 2
    qtbot.keyClick(w, Qt.Key.Key_F5, Qt.KeyboardModifier.ShiftModifier)
    assert not panel.comparison.running
    assert "network changed" in panel.note.text()


def test_b_follows_a_during_continuous_training(make_window, qtbot):
    w = make_window("deep-sigmoid")
    s = w.session
    panel = open_dock(w, qtbot, NAME, TITLE, ComparePanel)
    panel.set_change("activation", "relu")
    panel.start()
    start = panel.comparison.start_step
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: s.step_count >= start + 20, timeout=10000)
    qtbot.keyClick(w, Qt.Key.Key_F5)
    assert not w.trainer.running
    c = panel.comparison
    assert c.b.steps == s.step_count - start
    w.refresh()
    assert panel.displayed()["steps_b"].tolist() == list(range(start, s.step_count))
