"""Saturation panel: the f′ map and the per-layer bars hold exactly the session's numbers,
which are checked here against independent formulas on the core's own z."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from bpviz.session import saturation as sat
from bpviz.session.recorder import Recorder
from bpviz.session.session import Session
from bpviz.ui.debugger import saturation as panel_module
from bpviz.ui.debugger.saturation import SaturationPanel
from test_debugger_timeline import f10, open_dock

NAME, TITLE = "saturationDock", "Saturation"


def sigmoid_prime(z):
    return np.exp(-z) / (1 + np.exp(-z)) ** 2


def shown_panel(qtbot, session):
    panel = SaturationPanel(session)
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    with qtbot.waitExposed(panel):
        panel.show()
    return panel


def test_deep_sigmoid_map_and_bars_match_independent_formulas(make_window, qtbot):
    assert panel_module.PANELS == [(NAME, TITLE, SaturationPanel)]
    w = make_window("deep-sigmoid")
    s = w.session
    panel = open_dock(w, qtbot, NAME, TITLE, SaturationPanel)
    f10(qtbot, w, 10)
    w.select_layer(2)
    d = panel.displayed()
    z = s.net.layers[2].z
    np.testing.assert_allclose(d["fprime"], sigmoid_prime(z[0]), rtol=1e-12)
    assert tuple(d["levels"]) == (0.0, 1.0)                  # 0 … max(1, 0.25)
    assert panel.view.cmap_kind == "sequential"
    means = [float(np.mean(sigmoid_prime(l.z))) for l in s.net.layers[:-1]]
    np.testing.assert_allclose(d["mean_derivative"][:-1], means, rtol=1e-12)
    low = [np.all(sigmoid_prime(l.z) < 0.01, axis=0).mean() for l in s.net.layers[:-1]]
    np.testing.assert_allclose(d["low_fraction"][:-1], low)
    assert np.isnan(d["low_fraction"][-1])                   # softmax: no rule
    np.testing.assert_allclose(d["attenuation"][:-1],
                               [np.prod(means[k:]) for k in range(6)], rtol=1e-12)
    assert d["attenuation"][0] < 1e-3                         # the vanishing-gradient cause
    assert "of 16 units saturated (the batch of 32 samples)" in panel.header.text()
    assert "|z| > 4.58" in panel.rules.text()


def test_dead_relu_units_are_counted_over_the_whole_batch(qtbot):
    s = Session("deep-relu")
    for _ in range(20):
        s.step()
    panel = shown_panel(qtbot, s)
    panel.show_snapshot(s.snapshot())
    d = panel.displayed()
    for i, layer in enumerate(s.net.layers[:-1]):
        dead = np.all(layer.z <= 0, axis=0)
        assert panel.stats[i].count == int(dead.sum())
        assert d["low_fraction"][i] == pytest.approx(dead.mean())
        assert d["mean_derivative"][i] == pytest.approx(np.mean(layer.z > 0))
    np.testing.assert_array_equal(d["fprime"], (s.net.layers[0].z[0] > 0).astype(float))


def test_a_hidden_panel_computes_nothing(qtbot, monkeypatch):
    calls = []
    real = sat.network_saturation
    monkeypatch.setattr(sat, "network_saturation", lambda net: calls.append(1) or real(net))
    s = Session("deep-sigmoid")
    panel = SaturationPanel(s)
    qtbot.addWidget(panel)                                  # never shown
    s.step()
    panel.show_snapshot(s.snapshot())
    panel.set_layer(3)
    panel.set_scale_mode("per-map")
    assert calls == [] and panel.displayed() == {}
    with qtbot.waitExposed(panel):
        panel.show()                                        # drawn when shown
    assert calls and panel.displayed()["fprime"].shape == (16,)


def test_a_past_snapshot_uses_its_displayed_sample_only(qtbot):
    s = Session("deep-relu")
    rec = Recorder(s)
    rec.set_enabled(True)
    for _ in range(3):
        s.step()
    panel = shown_panel(qtbot, s)
    past = rec.snapshot(3)
    panel.show_snapshot(past)
    z0 = past.layers[0].z
    assert panel.stats[0].batch == 1 and panel.stats[0].count == int((z0 <= 0).sum())
    assert "displayed sample" in panel.rules.text()
    panel.show_snapshot(s.snapshot())
    assert panel.stats[0].batch == len(s.batch)


def test_before_any_forward_pass_a_hint_is_shown_and_clicking_a_bar_picks_a_layer(qtbot):
    s = Session("deep-sigmoid")
    panel = shown_panel(qtbot, s)
    panel.show_snapshot(s.snapshot())
    assert "forward pass" in panel.hint
    s.forward()
    panel.show_snapshot(s.snapshot())
    assert panel.hint == ""
    picked = []
    panel.layerPicked.connect(picked.append)
    vb = panel.bars.getViewBox()
    from PySide6.QtCore import QPointF
    scene = vb.mapViewToScene(QPointF(4, 0.5))
    view_pos = panel.glw.mapFromScene(scene)
    qtbot.mouseClick(panel.glw.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)
    assert picked == [4]


def test_selected_layer_without_weights_explains_instead_of_drawing(qtbot):
    s = Session("cnn-shapes")
    s.step()
    panel = shown_panel(qtbot, s)
    panel.set_layer(1)
    panel.show_snapshot(s.snapshot())
    assert "fprime" not in panel.displayed() and "no activation" in panel.view.placeholder.text()
    panel.set_layer(0)
    d = panel.displayed()
    np.testing.assert_array_equal(d["fprime"], (s.net.layers[0].z[0] > 0).astype(float))
    assert d["fprime"].shape == (4, 12, 12)
