"""The formula view renders formula_for's result as rich text, follows the selected layer, the
picker and clicks on the sensitivity map, and computes nothing while hidden."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from bpviz.session.formulas import num
from bpviz.session.session import Session
from bpviz.ui.debugger import formula as ui


def dock_panel(window, qtbot):
    """Open the window's formulaDock (the panel is built when first shown) and return it."""
    dock = window.docks["formulaDock"]
    dock.show()
    dock.raise_()
    qtbot.waitUntil(lambda: isinstance(window.panels.get("formulaDock"), ui.FormulaPanel)
                    and window.panels["formulaDock"].isVisible(), timeout=3000)
    panel = window.panels["formulaDock"]
    # the window itself connects sensitivity clicks to this panel when it builds it
    return panel


def make(qtbot, preset="xor", loss=None):
    s = Session(preset)
    if loss:
        s.edit("set_loss", loss)
    p = ui.FormulaPanel(s)
    qtbot.addWidget(p)
    p.resize(900, 500)
    p.show()
    return s, p


def test_backward_of_xor_shows_the_core_numbers(qtbot):
    s, p = make(qtbot)
    s.backward()
    p.show_snapshot(s.snapshot())
    p.set_layer(0)
    f = p.formula
    j = f.unit[0]
    assert f.values["δ"] == s.net.layers[0].delta[0, j]
    text = p.browser.toPlainText()
    assert "δ⁰ = (W¹)ᵀ δ¹ ⊙ f′(z⁰)" in text
    assert num(s.net.layers[0].delta[0, j]) in text
    assert "∂C/∂b" in text and "tanh′(z)" in text
    assert p.header.text() == "Backward pass done · cursor at layer 0 Dense"
    html = p.browser.toHtml()
    assert "<sub>" not in f.symbolic and "DejaVu Serif" in html


def test_the_slow_pairing_note_is_shown(qtbot):
    s, p = make(qtbot, loss="mse")
    s.backward()
    p.show_snapshot(s.snapshot())
    p.set_layer(1)
    text = p.browser.toPlainText()
    assert "Slow learning" in text and "sigmoid + BCE it would be a − y" in text
    s2, p2 = make(qtbot)
    s2.backward()
    p2.show_snapshot(s2.snapshot())
    p2.set_layer(1)
    assert "Slow learning" not in p2.browser.toPlainText()


def test_phases_follow_the_session(qtbot):
    s, p = make(qtbot, "cnn-shapes")
    p.set_layer(0)
    assert "No pass yet" in p.browser.toPlainText()
    s.forward()
    p.show_snapshot(s.snapshot())
    assert p.formula.title.startswith("Forward · layer 0")
    assert p.formula.values["z"] == s.net.layers[0].z[(0,) + p.formula.unit]
    s.update()
    p.show_snapshot(s.snapshot())
    assert p.formula.title.startswith("Update · layer 0")
    assert p.formula.values["W after"] in s.net.layers[0].params["W"]


def test_picker_chooses_the_unit_and_the_layer(qtbot):
    s, p = make(qtbot, "cnn-shapes")
    s.backward()
    p.show_snapshot(s.snapshot())
    p.set_layer(2)
    p.picker.spins[0].setValue(7)
    p.picker.spins[1].setValue(1)
    p.picker.spins[2].setValue(2)
    assert p.formula.unit == (7, 1, 2)
    assert p.formula.values["δ"] == s.net.layers[2].delta[0, 7, 1, 2]
    picked = []
    p.layerPicked.connect(picked.append)
    p.picker.layer_combo.setCurrentIndex(5)
    assert picked == [5] and p.formula.title.startswith("Backward · layer 5 Dense")
    assert [sp.isHidden() for sp in p.picker.spins] == [False, True, True, True]


def test_a_click_on_the_sensitivity_map_sets_the_unit(qtbot, make_window):
    w = make_window("cnn-shapes")
    p = dock_panel(w, qtbot)
    w.do_backward()
    w.select_layer(2)
    sens = w.panels["sensitivityDock"]
    qtbot.waitUntil(lambda: "delta" in sens.displayed(), timeout=3000)
    y0, x0 = sens.view.layout_.origin(3)
    assert sens.view.click_at(x0 + 4.5, y0 + 1.5) == (3, 1, 4)
    qtbot.waitUntil(lambda: p.formula is not None and p.formula.unit == (3, 1, 4), timeout=3000)
    assert p.formula.values["δ"] == w.session.net.layers[2].delta[0, 3, 1, 4]


def test_a_hidden_formula_view_computes_nothing(qtbot, monkeypatch):
    s = Session("xor")
    s.backward()
    calls = []
    original = ui.formula_for
    monkeypatch.setattr(ui, "formula_for", lambda *a, **k: (calls.append(a), original(*a, **k))[1])
    p = ui.FormulaPanel(s)
    qtbot.addWidget(p)
    p.show_snapshot(s.snapshot())
    p.set_layer(1)
    p.show_unit(0, (2,))
    assert calls == []
    p.show()
    qtbot.waitUntil(lambda: p.formula is not None, timeout=2000)
    assert len(calls) == 1 and p.formula.unit == (2,)


@pytest.mark.parametrize("preset", ["lenet-digits", "reference", "deep-relu"])
def test_every_layer_renders_in_every_phase(qtbot, preset):
    s, p = make(qtbot, preset)
    for action in (s.forward, s.backward, s.update):
        action()
        p.show_snapshot(s.snapshot())
        for i in range(len(s.net.layers)):
            p.set_layer(i)
            assert p.formula is not None and p.browser.toPlainText().strip()
