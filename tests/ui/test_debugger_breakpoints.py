"""The breakpoints panel, driven through its widgets and the real window's keys: breakpoints
set in the panel stop F5 at the exact layer (reason logged, layer selected, status bar), F10 and
F11 report what they stepped past, and an empty list leaves training on its fast path."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from bpviz.session.session import Session
from bpviz.session.snapshot import norm
from bpviz.ui.debugger import breakpoints as ui


def dock_panel(window, qtbot):
    """Open the window's breakpointsDock (the panel is built when first shown) and return it."""
    dock = window.docks["breakpointsDock"]
    dock.show()
    dock.raise_()
    qtbot.waitUntil(lambda: isinstance(window.panels.get("breakpointsDock"), ui.BreakpointsPanel)
                    and window.panels["breakpointsDock"].isVisible(), timeout=3000)
    panel = window.panels["breakpointsDock"]
    return panel


def add_via_widgets(qtbot, panel, label, layer_text, threshold):
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findText(label))
    panel.layer_combo.setCurrentIndex(panel.layer_combo.findText(layer_text,
                                                                 Qt.MatchFlag.MatchStartsWith))
    panel.threshold_edit.clear()
    qtbot.keyClicks(panel.threshold_edit, threshold)
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)


@pytest.fixture
def standalone(qtbot):
    session = Session("deep-sigmoid")
    panel = ui.BreakpointsPanel(session)
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    return session, panel


def test_panel_widgets_add_enable_and_remove_breakpoints(qtbot, standalone):
    s, p = standalone
    assert p.header.text().startswith("No breakpoint on")
    add_via_widgets(qtbot, p, "Vanishing ‖δ‖ below", "all layers", "1e-3")
    assert len(s.breakpoints) == 1 and s.breakpoints[0].threshold == 1e-3
    assert p.table.item(0, 1).text() == "‖δ‖ < 0.001" and p.table.item(0, 2).text() == "all layers"
    add_via_widgets(qtbot, p, "Dead ReLU units above", "layer 2", "150 %")
    assert "0 … 99 %" in p.error_label.text() and len(s.breakpoints) == 1
    add_via_widgets(qtbot, p, "Exploding ‖∂loss/∂W‖ above", "layer 2", "abc")
    assert "not a number" in p.error_label.text() and len(s.breakpoints) == 1
    add_via_widgets(qtbot, p, "Exploding ‖∂loss/∂W‖ above", "layer 2", "10")
    assert p.error_label.text() == "" and len(s.breakpoints) == 2
    assert p.table.item(1, 2).text() == "layer 2 Dense"
    assert p.header.text().startswith("2 breakpoints on")
    p.table.item(0, 0).setCheckState(Qt.CheckState.Unchecked)      # the user's checkbox
    assert [c.kind for c in s.breakpoints] == ["exploding"]
    p.table.selectRow(1)
    qtbot.mouseClick(p.remove_button, Qt.MouseButton.LeftButton)
    assert s.breakpoints == [] and p.table.rowCount() == 1
    assert p.header.text().startswith("No breakpoint on")


def test_stepping_reports_the_hit_selects_its_layer_and_sends_the_reason(qtbot, standalone):
    s, p = standalone
    add_via_widgets(qtbot, p, "Vanishing ‖δ‖ below", "all layers", "1e-3")
    picked, messages = [], []
    p.layerPicked.connect(picked.append)
    p.message.connect(messages.append)
    s.update()                                              # F10: the whole step at once
    qtbot.waitUntil(lambda: p.log.rowCount() == 1, timeout=2000)
    step, phase, layer, reason = p.log_rows()[0]
    assert (step, phase, layer) == ("0", "backward", "2")
    assert reason.startswith("vanishing: layer 2 Dense ‖δ‖ = ")
    assert picked == [2] and messages == [f"Breakpoint: {reason}"]
    assert p.table.item(0, 3).text() == "1"                 # hit count
    s.forward()
    s.step_into()                                           # F11 into the backward pass
    qtbot.wait(20)
    assert p.log.rowCount() == 1                            # nothing yet at layer 6
    while p.log.rowCount() == 1:
        s.step_into()
        qtbot.wait(5)
    assert s.phase == "backward" and p.log_rows()[1][1:3] == ("backward", str(s.layer))
    p.log.selectRow(0)                                      # clicking a hit selects its layer
    assert picked[-1] == 2
    qtbot.mouseClick(p.clear_button, Qt.MouseButton.LeftButton)
    assert p.log.rowCount() == 0


def test_f5_stops_at_the_vanishing_layer_in_the_window(qtbot, make_window):
    w = make_window("deep-sigmoid")
    p = dock_panel(w, qtbot)
    add_via_widgets(qtbot, p, "Vanishing ‖δ‖ below", "all layers", "1e-3")
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: p.log.rowCount() >= 1 and not w.trainer.running, timeout=15000)
    s = w.session
    assert (s.phase, s.layer) == ("backward", 2)
    here = norm(s.net.layers[2].delta)
    assert here < 1e-3 <= norm(s.net.layers[3].delta)
    reason = p.log_rows()[0][3]
    assert reason.startswith("vanishing: layer 2 Dense") and "(backward · layer 2 (3 of 7))" in reason
    assert reason in w.statusBar().currentMessage()
    assert w.panels["sensitivityDock"].layer_index == 2      # selected everywhere


def test_f11_in_the_window_reports_the_exact_unit(qtbot, make_window):
    w = make_window("deep-sigmoid")
    p = dock_panel(w, qtbot)
    add_via_widgets(qtbot, p, "Vanishing ‖δ‖ below", "all layers", "1e-3")
    for _ in range(30):
        qtbot.keyClick(w, Qt.Key.Key_F11)
        qtbot.wait(5)
        if p.log.rowCount():
            break
    assert p.log_rows()[0][1:3] == ("backward", "2")
    assert (w.session.phase, w.session.layer) == ("backward", 2)


def test_no_breakpoint_keeps_f5_on_the_fast_path(qtbot, make_window, monkeypatch):
    w = make_window("deep-sigmoid")
    p = dock_panel(w, qtbot)
    add_via_widgets(qtbot, p, "First NaN / Inf", "all layers", "")
    p.table.item(0, 0).setCheckState(Qt.CheckState.Unchecked)
    calls = []
    original = w.session.step_into
    monkeypatch.setattr(w.session, "step_into", lambda: (calls.append(1), original())[1])
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: w.session.step_count >= 5, timeout=10000)
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: not w.trainer.running, timeout=5000)
    assert calls == [] and w.session.breakpoints == [] and p.log.rowCount() == 0


def test_the_session_outlives_a_closed_panel(qtbot):
    """Conditions stay in the session; once the widget is gone nothing calls into it."""
    from bpviz.session.session import BreakpointHit
    s = Session("deep-sigmoid")
    p = ui.BreakpointsPanel(s)
    p.add_breakpoint(ui.bp.vanishing(1e-3))
    p.deleteLater()
    qtbot.waitUntil(lambda: not ui.shiboken6.isValid(p), timeout=2000)
    with pytest.raises(BreakpointHit):
        s.train_step()
    s.finish_pass()                                         # events reach no dead widget
    assert s.phase == "backward" and s.done


def test_a_new_session_in_the_window_takes_the_old_breakpoints_away(qtbot, make_window):
    w = make_window("deep-sigmoid")
    p = dock_panel(w, qtbot)
    add_via_widgets(qtbot, p, "First NaN / Inf", "all layers", "")
    old = w.session
    assert len(old.breakpoints) == 1
    w.set_session(Session("xor"))
    assert old.breakpoints == []
    fresh = w.panels["breakpointsDock"]
    assert fresh is not p and fresh.session is w.session and w.session.breakpoints == []
