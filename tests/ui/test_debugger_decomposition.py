"""Update decomposition panel in the real window: the norms it shows are those of the
optimiser record's own arrays (−η·g, −η·λW, momentum, ΔW), ‖ΔW‖/‖W‖ per layer follows
every step, and a hidden panel computes nothing."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from bpviz.session import decomposition as core_decomposition
from bpviz.ui.debugger import decomposition
from bpviz.ui.debugger.decomposition import GHOSTS, DecompositionPanel

NAME, TITLE = "decompositionDock", "Update decomposition"
LEFT = Qt.MouseButton.LeftButton


def open_dock(window, qtbot, name=NAME, title=TITLE, cls=DecompositionPanel):
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


def n(a) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64).ravel()))


@pytest.fixture
def deep(make_window):
    w = make_window("deep-sigmoid")
    w.session.set_training(momentum=0.9, l2=1e-3, clip_norm=0.5)
    return w


def test_panels_list():
    assert decomposition.PANELS == [(NAME, TITLE, DecompositionPanel)]


def test_parts_are_the_norms_of_the_record_arrays(deep, qtbot):
    w, s = deep, deep.session
    panel = open_dock(w, qtbot)
    assert "No update yet" in panel.hint
    f10(qtbot, w, 3)
    w.select_layer(2)
    rec = s.last_update
    u, ub = rec.layers[2]["W"], rec.layers[2]["b"]
    shown = panel.displayed()
    lr = rec.lr
    assert shown["W_gradient"] == pytest.approx(n(-lr * u.grad), rel=1e-12)
    assert shown["W_decay"] == pytest.approx(n(-lr * u.decay), rel=1e-12)
    assert shown["W_momentum"] == pytest.approx(n(u.update + lr * (u.grad + u.decay)),
                                                rel=1e-9)
    assert shown["W_update"] == pytest.approx(n(u.update), rel=1e-14)
    assert shown["W_clipping"] == pytest.approx(n(-lr * (u.grad - u.raw_grad)), rel=1e-12)
    assert shown["b_decay"] == 0 and shown["b_update"] == pytest.approx(n(ub.update))
    expected = [n(l["W"].update) / n(l["W"].before) for l in rec.layers]
    np.testing.assert_allclose(shown["ratio"], expected, rtol=1e-12)
    t = panel.parts
    assert t.item(0, 1).text() == f"{shown['W_gradient']:.3e}"
    assert t.item(3, 1).text() == f"{shown['W_update']:.3e}"
    assert t.item(t.rowCount() - 1, 1).text() == f"{expected[2]:.3e}"
    assert panel.layers.rowCount() == len(s.net.layers)
    assert panel.layers.item(4, 6).text() == f"{expected[4]:.3e}"
    header = panel.header.text()
    assert f"update of step {s.step_count}" in header and "clipped by norm" in header
    assert "layer 2 Dense" in panel.layer_title.text()


def test_ratio_plot_follows_every_step_with_earlier_steps_faded(make_window, qtbot):
    w = make_window("deep-sigmoid")
    panel = open_dock(w, qtbot)
    for k in range(1, GHOSTS + 3):
        f10(qtbot, w)
        rec = w.session.last_update
        ratios = [n(l["W"].update) / n(l["W"].before) for l in rec.layers]
        x, y = panel.curve.getData()
        np.testing.assert_allclose(10 ** y, ratios, rtol=1e-12)
        shown = [g for g in panel._ghost_items
                 if g.getData()[0] is not None and len(g.getData()[0])]
        assert len(shown) == min(k - 1, GHOSTS - 1)
    # vanishing gradients in a deep sigmoid stack: the first layer moves least
    assert y[0] < y[-1] - 1
    assert "momentum off" in panel.header.text() and "L2 off" in panel.header.text()
    assert panel.parts.item(1, 1).text() == "—"              # L2 is off


def test_hidden_panel_computes_nothing_until_shown(make_window, qtbot, monkeypatch):
    w = make_window("deep-sigmoid")
    panel = open_dock(w, qtbot)
    w.docks[NAME].hide()
    qtbot.waitUntil(lambda: not panel.isVisible(), timeout=2000)
    calls = []
    real = core_decomposition.decompose
    monkeypatch.setattr(decomposition, "decompose",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    f10(qtbot, w, 3)
    qtbot.keyClick(w, Qt.Key.Key_F11)            # stepping layer by layer selects layers too
    w.select_layer(1)
    assert calls == []
    w.docks[NAME].show()
    qtbot.waitUntil(lambda: calls == [1], timeout=2000)
    np.testing.assert_allclose(panel.displayed()["ratio"], core_decomposition.decompose(
        w.session.last_update).ratios)
    w.refresh()                                  # the same record: no second computation
    assert calls == [1]


def test_picking_a_layer_in_the_table_selects_it_everywhere(deep, qtbot):
    w = deep
    panel = open_dock(w, qtbot)
    f10(qtbot, w, 2)
    rect = panel.layers.visualItemRect(panel.layers.item(4, 0))
    with qtbot.waitSignal(panel.layerPicked) as picked:
        qtbot.mouseClick(panel.layers.viewport(), LEFT, pos=rect.center())
    assert picked.args == [4] and w._selected == 4
    assert "layer 4 Dense" in panel.layer_title.text()


def test_layers_without_weights_and_edits(make_window, qtbot):
    w = make_window("cnn-shapes")
    panel = open_dock(w, qtbot)
    f10(qtbot, w)
    w.select_layer(1)                                    # MaxPool2D
    assert "no weights" in panel.parts.item(0, 0).text()
    assert math.isnan(panel.displayed()["ratio"][1])
    assert panel.layers.rowCount() == 3                  # the three weighted layers
    w.session.edit("remove_layer", 1)
    w.refresh()
    assert "No update yet" in panel.hint
