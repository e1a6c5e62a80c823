"""The δ inspector: a click on a pixel of the sensitivity map (or the picker) explains that δ,
and the terms it shows add up to the core's δ; a hidden inspector computes nothing."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from bpviz.session import explain as ex
from bpviz.session.session import Session
from bpviz.ui.debugger import inspector as ui


def dock_panel(window, qtbot):
    """Open the window's inspectorDock (the panel is built when first shown) and return it."""
    dock = window.docks["inspectorDock"]
    dock.show()
    dock.raise_()
    qtbot.waitUntil(lambda: isinstance(window.panels.get("inspectorDock"), ui.InspectorPanel)
                    and window.panels["inspectorDock"].isVisible(), timeout=3000)
    panel = window.panels["inspectorDock"]
    # the window itself connects sensitivity clicks to this panel when it builds it
    return panel


@pytest.fixture
def cnn(qtbot):
    s = Session("cnn-shapes")
    s.backward()
    p = ui.InspectorPanel(s)
    qtbot.addWidget(p)
    p.resize(900, 500)
    p.show()
    p.show_snapshot(s.snapshot())
    return s, p


def test_click_on_a_sensitivity_pixel_explains_it_in_the_window(qtbot, make_window):
    w = make_window("cnn-shapes")
    p = dock_panel(w, qtbot)
    w.do_backward()
    w.select_layer(1)                                       # MaxPool2D: its δ comes from a conv
    sens = w.panels["sensitivityDock"]
    qtbot.waitUntil(lambda: "delta" in sens.displayed(), timeout=3000)
    view = sens.view
    c, r, k = 2, 3, 1
    y0, x0 = view.layout_.origin(c)
    pos = view.glw.mapFromScene(view.scene_pos_of(y0 + r, x0 + k))
    qtbot.mouseClick(view.glw.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: p.explanation is not None and p.explanation.unit == (c, r, k),
                    timeout=3000)
    e = p.explanation
    core = w.session.net.layers[1].delta[0, c, r, k]
    assert e.layer == 1 and e.delta == core
    assert abs(e.terms.total() * e.fprime - core) <= 1e-12
    assert abs(e.terms.total() - e.upstream) <= 1e-12
    assert "Conv2D" in e.source and len(e.terms) > 10
    assert p.table.rowCount() == 11                          # top 10 + "… and N more"
    assert p.table.item(10, 0).text().startswith(f"… and {len(e.terms) - 10} more summing to")
    assert "✓" in p.check.text()
    assert [s.value() for s in p.picker.spins[:3]] == [c, r, k]


def test_clicking_a_dense_unit_explains_the_vector_delta(qtbot, make_window):
    w = make_window("cnn-shapes")
    p = dock_panel(w, qtbot)
    w.do_backward()
    w.select_layer(4)                                       # Flatten: traced to the Dense
    sens = w.panels["sensitivityDock"]
    qtbot.waitUntil(lambda: "delta" in sens.displayed(), timeout=3000)
    sens.view.click_at(5.5, 0.5)                             # unit 5 of the wrapped vector
    qtbot.waitUntil(lambda: p.explanation is not None and p.explanation.layer == 4, timeout=3000)
    e = p.explanation
    assert e.unit == (5,) and e.via == 5
    assert abs(e.rebuilt() - w.session.net.layers[4].delta[0, 5]) <= 1e-12


def test_picker_and_largest_button_choose_the_unit(qtbot, cnn):
    s, p = cnn
    p.set_layer(0)
    d = s.net.layers[0].delta[0]
    assert p.explanation.unit == ex.largest_unit(d)
    p.picker.spins[1].setValue(5)                           # row
    assert p.explanation.unit[1] == 5
    assert p.explanation.delta == d[p.explanation.unit]
    qtbot.mouseClick(p.largest, Qt.MouseButton.LeftButton)
    assert p.explanation.unit == ex.largest_unit(d)
    p.show_unit(3, (1, 2, 0))
    assert p.explanation.layer == 3 and p.explanation.unit == (1, 2, 0)
    picked = []
    p.layerPicked.connect(picked.append)
    p.picker.layer_combo.setCurrentIndex(2)                 # the user picks a layer here
    assert picked == [2] and p.explanation.layer == 2


def test_weight_gradient_mode_sums_to_the_core_gradient(qtbot, cnn):
    s, p = cnn
    p.set_layer(2)
    p.mode_combo.setCurrentIndex(1)                         # ∂loss/∂W of a weight
    e = p.explanation
    assert isinstance(e, ex.WeightGradExplanation) and e.layer == 2
    assert e.grad == s.net.layers[2].grads["W"][e.index]
    assert abs(e.rebuilt() - e.grad) <= 1e-12 * max(1, abs(e.grad))
    assert len(e.terms) == 32 * 6 * 6 and "✓" in p.check.text()
    p.mode_combo.setCurrentIndex(2)                         # bias
    assert p.explanation.param == "b"
    p.set_layer(1)
    assert p.explanation is None and "no parameters" in p.hint


def test_hints_before_backward_and_mid_pass(qtbot):
    s = Session("cnn-shapes")
    s.forward()
    p = ui.InspectorPanel(s)
    qtbot.addWidget(p)
    p.show()
    p.show_snapshot(s.snapshot())
    assert "No δ yet" in p.hint
    s.step_into()
    s.step_into()                                           # backward at layer 4
    p.set_layer(2)
    p.show_snapshot(s.snapshot())
    assert "at layer 4" in p.hint and p.explanation is None
    p.set_layer(5)
    assert p.hint == "" and "a − t" in p.formula.text()     # fused output: no sum to split


def test_a_hidden_inspector_computes_nothing(qtbot, monkeypatch):
    s = Session("cnn-shapes")
    s.backward()
    calls = []
    original = ex.explain_in_session
    monkeypatch.setattr(ex, "explain_in_session", lambda *a: (calls.append(a), original(*a))[1])
    p = ui.InspectorPanel(s)
    qtbot.addWidget(p)
    for i in range(3):
        p.show_snapshot(s.snapshot())
        p.set_layer(i)
    p.show_unit(1, (0, 0, 0))
    assert calls == []
    p.show()
    qtbot.waitUntil(lambda: p.explanation is not None, timeout=2000)
    assert len(calls) == 1 and p.explanation.unit == (0, 0, 0)


def test_training_pauses_the_inspector_and_a_pause_brings_it_back(qtbot, make_window,
                                                                   monkeypatch):
    w = make_window("cnn-shapes")
    p = dock_panel(w, qtbot)
    w.do_backward()
    w.select_layer(1)
    qtbot.waitUntil(lambda: p.explanation is not None and p.explanation.layer == 1,
                    timeout=3000)
    calls = []
    original = ex.explain_in_session
    monkeypatch.setattr(ex, "explain_in_session", lambda *a: (calls.append(a), original(*a))[1])
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: w.session.step_count >= 3 and w.repaints > 3, timeout=10000)
    assert calls == [] and p.header.text().startswith("Training is running")
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: not w.trainer.running, timeout=5000)
    qtbot.waitUntil(lambda: len(calls) >= 1, timeout=3000)
    e = p.explanation                                       # the update phase: pre-update W
    assert w.session.phase == "update" and abs(e.rebuilt() - e.delta) <= 1e-12
