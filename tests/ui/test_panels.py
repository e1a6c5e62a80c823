"""The five snapshot panels hold exactly the core's arrays, placed where the mosaic says.

Every test drives a real Session and compares what a panel drew (``displayed()``, the
ImageItem's image and levels, bar heights, curve data) with the core network's own arrays.
"""
import gc
import sys
import time
import warnings
from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor

import bpviz.ui  # noqa: F401  (pyqtgraph options)
from bpviz.core.presets import preset_from_dict
from bpviz.session.session import Session
from bpviz.ui.panels import (PANEL_CLASSES, FeatureMapsPanel, GradientPanel, KernelsPanel,
                             LossPanel, Panel, SensitivityPanel)
from bpviz.ui.panels import colors, sensitivity
from bpviz.ui.panels.colors import nice_ceil, sticky_limit
from bpviz.ui.panels.base import fmt
from bpviz.ui.panels.mosaic import (as_tiles, grid_layout, maps_layout, normalise_tiles, tile,
                                    vector_layout)


def make(qtbot, cls, size=(900, 600)):
    panel = cls()
    qtbot.addWidget(panel)
    panel.resize(*size)
    with qtbot.waitExposed(panel):
        panel.show()
    return panel


def tile_of(mosaic, layout, k):
    """Tile k cut out of a mosaic by hand: grid cell (k // cols, k % cols), pitch h+gap."""
    gr, gc_ = divmod(k, layout.cols)
    y, x = gr * (layout.h + layout.gap), gc_ * (layout.w + layout.gap)
    return mosaic[y:y + layout.h, x:x + layout.w]


@pytest.fixture
def cnn():
    return Session("cnn-shapes")


WIDE = {"format": 1, "name": "wide", "title": "wide conv", "input_shape": [1, 12, 12],
        "loss": "cross_entropy", "dataset": "shapes",
        "layers": [{"type": "Conv2D", "filters": 18, "kernel_size": 3, "padding": 1},
                   {"type": "Conv2D", "filters": 20, "kernel_size": 3, "padding": 1},
                   {"type": "Flatten"}, {"type": "Dense", "units": 4,
                                         "activation": "softmax"}],
        "training": {"lr": 0.01, "mode": "mini-batch", "batch_size": 4}}


# ----------------------------------------------------------------------------- mosaic helper

def test_mosaic_places_every_tile_where_locate_finds_it():
    rng = np.random.default_rng(0)
    for n, h, w in [(1, 5, 5), (4, 12, 12), (7, 3, 5), (64, 6, 6), (10, 1, 1)]:
        tiles = rng.normal(size=(n, h, w)).astype(np.float32)
        lay = maps_layout(n, h, w)
        assert lay.rows * lay.cols >= n and (lay.rows - 1) * lay.cols < n
        m = tile(tiles, lay)
        assert m.shape == lay.shape and m.dtype == np.float32
        for k in range(n):
            np.testing.assert_array_equal(tile_of(m, lay, k), tiles[k])
            y, x = lay.origin(k)
            assert lay.locate(y + h - 1, x + w - 1) == (k, h - 1, w - 1)
        assert np.isnan(m).sum() == m.size - tiles.size       # gaps and empty cells only
    assert maps_layout(64, 6, 6).rows == maps_layout(64, 6, 6).cols == 8


def test_mosaic_vectors_grids_and_normalisation():
    v = np.arange(5.0)
    tiles, lay, is_maps = as_tiles(v)
    assert not is_maps and (lay.rows, lay.cols) == (5, 1)
    np.testing.assert_array_equal(tile(tiles, lay)[:, 0], v)
    long = vector_layout(400)
    assert long.rows * long.cols >= 400 and long.h == long.w == 1
    g = grid_layout(3, 2, 3, 3)
    assert g.locate(4, 4) == (3, 0, 0)        # filter 1, channel 1, top-left
    assert g.locate(3, 0) is None              # the gap row
    t = normalise_tiles(np.array([[[2.0, -4.0]], [[0.0, 0.0]]]), signed=True)
    np.testing.assert_array_equal(t, [[[0.5, -1.0]], [[0.0, 0.0]]])


def test_panel_classes_follow_the_contract(qtbot):
    names = [n for n, _, _ in PANEL_CLASSES]
    assert names == ["featureMapsDock", "sensitivityDock", "kernelsDock", "gradientsDock",
                     "lossDock"]
    for _, title, cls in PANEL_CLASSES:
        p = make(qtbot, cls)
        assert isinstance(p, Panel) and p.title == title
        assert p.displayed() == {} and p.hover_text == "" and p.last_snapshot is None
        for attr in ("show_snapshot", "set_layer", "layerPicked", "set_scale_mode",
                     "set_fixed_limit", "layer_index"):
            assert hasattr(p, attr)


# ----------------------------------------------------------------------------- feature maps

def test_feature_maps_hint_before_the_first_forward(qtbot, cnn):
    p = make(qtbot, FeatureMapsPanel)
    p.show_snapshot(cnn.snapshot())
    assert p.hint.startswith("Press F11 to step the forward pass one layer at a time")
    assert p.maps.hint_label.isVisible()
    d = p.displayed()
    assert "z" not in d
    np.testing.assert_array_equal(d["x"], cnn.dataset.x[cnn.sample_index])


def test_feature_maps_hold_z_and_a_of_every_layer(qtbot, cnn):
    p = make(qtbot, FeatureMapsPanel)
    cnn.forward()
    for i, layer in enumerate(cnn.net.layers):
        p.set_layer(i)
        p.show_snapshot(cnn.snapshot())
        d = p.displayed()
        assert p.hint == ""
        np.testing.assert_array_equal(d["z"], layer.z[0])
        np.testing.assert_array_equal(d["a"], layer.a[0])
        view = p.view_z
        np.testing.assert_array_equal(view.image.image, d["mosaic_z"])
        assert view.image.width() == d["mosaic_z"].shape[1]       # row-major: x = columns
        if layer.z[0].ndim == 3:
            lay = view.layout_
            for k in range(layer.z.shape[1]):
                np.testing.assert_array_equal(tile_of(d["mosaic_z"], lay, k),
                                              layer.z[0, k].astype(np.float32))
        else:                       # a column of wide cells, or row-major rows of 1×1 cells
            v = layer.z[0].astype(np.float32)
            m = d["mosaic_z"]
            got = m[:, 0] if view.layout_.cols == 1 else m.reshape(-1)[:v.size]
            np.testing.assert_array_equal(got, v)


def test_feature_maps_colours_signed_z_and_unsigned_relu_a(qtbot, cnn):
    p = make(qtbot, FeatureMapsPanel)
    cnn.forward()
    p.show_snapshot(cnn.snapshot())
    z, a = cnn.net.layers[0].z[0], cnn.net.layers[0].a[0]
    lo, hi = p.displayed()["levels_z"]      # per-layer limits: max |z| rounded up, nicely
    assert lo == -hi and hi == nice_ceil(np.abs(z).max()) >= np.abs(z).max()
    assert tuple(p.displayed()["levels_a"]) == (0.0, nice_ceil(a.max()))
    assert p.view_z.bar.colorMap().name == "CET-D1"
    assert p.view_a.cmap_kind == "sequential"
    assert tuple(p.view_z.bar.levels()) == (lo, hi)


def test_feature_maps_hover_names_channel_row_col_and_value(qtbot, cnn):
    p = make(qtbot, FeatureMapsPanel)
    cnn.forward()
    p.set_layer(2)
    p.show_snapshot(cnn.snapshot())
    z = cnn.net.layers[2].z[0]                         # (8, 6, 6)
    view, lay = p.view_z, p.view_z.layout_
    k, r, c = 3, 4, 5
    y0, x0 = lay.origin(k)
    expected = f"layer 2 Conv2D · channel 3 · row 4 · col 5 · z = {fmt(z[k, r, c])}"
    assert view.hover_at(x0 + c + 0.5, y0 + r + 0.5) == expected
    assert p.hover_text == expected
    p.hover_text = ""
    view._mouse_moved(view.scene_pos_of(y0 + r, x0 + c))  # through the scene mapping
    assert p.hover_text == expected
    assert p.readout.text() == expected
    assert view.hover_at(x0 + lay.w + 0.5, y0 + 0.5) == ""  # the gap column


def test_feature_maps_dense_network_and_mid_pass_hint(qtbot):
    s = Session("deep-sigmoid")
    p = make(qtbot, FeatureMapsPanel)
    s.update()
    p.set_layer(6)
    p.show_snapshot(s.snapshot())
    np.testing.assert_array_equal(p.displayed()["a"], s.net.layers[6].a[0])
    text = p.view_a.hover_at(1.5, 0.5)
    assert text == f"layer 6 Dense · unit 0 · a = {fmt(s.net.layers[6].a[0, 0])}"
    assert [it.textItem.toPlainText() for it in p.view_a._values] == \
        [f"{v:.3g}" for v in s.net.layers[6].a[0]]
    s.step_into()                           # the next forward pass is at layer 0
    p.show_snapshot(s.snapshot())
    assert p.hint.startswith("The forward pass is at layer 0; z and a of layer 6")
    assert "z" not in p.displayed()


def test_set_layer_redraws_from_the_last_snapshot(qtbot, cnn):
    p = make(qtbot, FeatureMapsPanel)
    cnn.forward()
    p.show_snapshot(cnn.snapshot())
    p.set_layer(5)
    np.testing.assert_array_equal(p.displayed()["z"], cnn.net.layers[5].z[0])
    assert p.layer_index == 5


# ----------------------------------------------------------------------------- sensitivity

def test_sensitivity_empty_before_backward_then_delta(qtbot, cnn):
    p = make(qtbot, SensitivityPanel)
    p.show_snapshot(cnn.snapshot())
    assert p.hint == sensitivity.HINT and p.displayed() == {}
    cnn.forward()
    p.show_snapshot(cnn.snapshot())
    assert p.hint == sensitivity.HINT and p.body.hint_label.isVisible()
    cnn.backward()
    for i, layer in enumerate(cnn.net.layers):
        p.set_layer(i)
        p.show_snapshot(cnn.snapshot())
        d = p.displayed()
        assert p.hint == ""
        np.testing.assert_array_equal(d["delta"], layer.delta[0])
        lo, hi = d["levels_delta"]
        assert lo == -hi and hi == nice_ceil(np.abs(layer.delta[0]).max())
        assert tuple(p.view.image.getLevels()) == (lo, hi)
        assert p.view.bar.colorMap().name == "CET-D1"
    norm = np.linalg.norm(cnn.net.layers[-1].delta[0])
    assert f"‖δ‖ = {fmt(norm)}" in p.view.caption.text()


def test_per_layer_limits_are_nice_and_sticky(qtbot, cnn):
    """Rounded up to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k; kept while the data's
    largest |value| stays within [½, 1] × the limit; recomputed for another layer."""
    assert [nice_ceil(v) for v in (0.7384, 1.0, 1.01, 2.6e-5, 9.99, 0.35, 7.0)] == \
        [0.8, 1.0, 1.2, 3e-5, 10.0, 0.4, 8.0]
    assert sticky_limit(1.0, 0.6) == 1.0 and sticky_limit(1.0, 0.5) == 1.0
    assert sticky_limit(1.0, 0.45) == 0.5 and sticky_limit(1.0, 1.1) == 1.2
    assert sticky_limit(None, 0.6) == 0.6
    p = make(qtbot, SensitivityPanel)
    cnn.backward()
    p.set_layer(2)
    snap = cnn.snapshot()
    p.show_snapshot(snap)
    peak = np.abs(snap.layers[2].delta[0]).max()
    hi = nice_ceil(peak)
    assert tuple(p.displayed()["levels_delta"]) == (-hi, hi)
    for factor, expected in ((0.6 * hi / peak, hi), (0.4 * hi / peak, nice_ceil(0.4 * hi)),
                             (1.5 * hi / peak, nice_ceil(1.5 * hi))):
        scaled = snap.layers[2].delta * factor
        layers = snap.layers[:2] + (replace(snap.layers[2], delta=scaled),) + snap.layers[3:]
        p.show_snapshot(replace(snap, layers=layers))
        lo, top = p.displayed()["levels_delta"]
        assert lo == -top and top == pytest.approx(expected) and \
            top >= np.abs(scaled[0]).max()
    p.set_layer(3)                           # another layer: its own limit, not the last one
    assert p.displayed()["levels_delta"][1] == nice_ceil(np.abs(snap.layers[3].delta[0]).max())


def test_sensitivity_first_layer_shows_input_gradient(qtbot, cnn):
    p = make(qtbot, SensitivityPanel)
    cnn.backward()
    p.show_snapshot(cnn.snapshot())
    np.testing.assert_array_equal(p.displayed()["input_grad"], cnn.net.input_grad[0])


def test_scale_modes_set_the_levels(qtbot, cnn):
    p = make(qtbot, SensitivityPanel)
    cnn.backward()
    p.set_layer(2)
    p.show_snapshot(cnn.snapshot())
    delta = cnn.net.layers[2].delta[0]                   # (8, 6, 6)
    assert tuple(p.displayed()["levels_delta"]) == (-nice_ceil(np.abs(delta).max()),
                                                     nice_ceil(np.abs(delta).max()))
    p.set_scale_mode("per-map")
    d = p.displayed()
    assert tuple(d["levels_delta"]) == (-1.0, 1.0)
    lay = p.view.layout_
    for k in range(delta.shape[0]):
        peak = np.abs(delta[k]).max()
        expected = delta[k] / peak if peak > 0 else delta[k]
        np.testing.assert_allclose(tile_of(d["mosaic_delta"], lay, k), expected, rtol=1e-6)
    p.set_fixed_limit(0.25)
    assert tuple(p.displayed()["levels_delta"]) == (-1.0, 1.0)   # not fixed mode yet
    p.set_scale_mode("fixed")
    assert tuple(p.displayed()["levels_delta"]) == (-0.25, 0.25)
    for bad in (0, -1, float("nan"), float("inf"), "abc"):
        with pytest.raises(ValueError):
            p.set_fixed_limit(bad)
    with pytest.raises(ValueError):
        p.set_scale_mode("per-planet")
    f = make(qtbot, FeatureMapsPanel)
    f.show_snapshot(cnn.snapshot())
    f.set_scale_mode("fixed")
    f.set_fixed_limit(2.0)
    assert tuple(f.displayed()["levels_z"]) == (-2.0, 2.0)
    assert tuple(f.displayed()["levels_a"]) == (0.0, 2.0)        # relu: from 0


# ----------------------------------------------------------------------------- kernels

def test_kernels_show_the_update_record(qtbot, cnn):
    p = make(qtbot, KernelsPanel)
    cnn.update()
    for i in (0, 2, 5):
        rec = cnn.last_update.layers[i]["W"]
        p.set_layer(i)
        p.show_snapshot(cnn.snapshot())
        d = p.displayed()
        for name in ("before", "grad", "update", "after"):
            np.testing.assert_array_equal(d[name], getattr(rec, name))
            lo, hi = d[f"levels_{name}"]
            assert lo == -hi > -np.inf
        np.testing.assert_array_equal(d["after"], d["before"] + d["update"])
        np.testing.assert_array_equal(d["after"], cnn.net.layers[i].params["W"])
        if rec.before.ndim == 4:
            lay = p.views["grad"].layout_
            F, C = rec.grad.shape[:2]
            if C > 1:                   # one row per filter, one column per input channel
                assert (lay.rows, lay.cols) == (F, C)
            else:                       # one input channel: filters in a grid, row by row
                assert lay.n == F and 1 < lay.cols < F and lay.rows * lay.cols >= F
                view = p.views["grad"]
                assert view.caption.text().startswith(f"filters 0–{F - 1} row by row")
                y0, x0 = lay.origin(F - 1)
                assert view.hover_at(x0 + 1.5, y0 + 0.5).startswith(
                    f"layer {i} Conv2D · ∂loss/∂W (used) · filter {F - 1} · input channel 0 · "
                    f"row 0 · col 1 · value = {fmt(rec.grad[F - 1, 0, 0, 1])}")
            for f in range(F):
                for c in range(C):
                    np.testing.assert_array_equal(tile_of(d["mosaic_grad"], lay, f * C + c),
                                                  rec.grad[f, c].astype(np.float32))
        else:
            np.testing.assert_array_equal(d["mosaic_update"], rec.update.astype(np.float32))
    text = p.views["grad"].hover_at(0.5, 2.5)       # Dense W: x = input 0, y = unit 2
    assert text == (f"layer 5 Dense · ∂loss/∂W (used) · unit 2 · input 0 · value = "
                    f"{fmt(cnn.last_update.layers[5]['W'].grad[2, 0])}")


def test_kernels_before_any_update_and_parameter_free_layers(qtbot, cnn):
    p = make(qtbot, KernelsPanel)
    p.show_snapshot(cnn.snapshot())
    d = p.displayed()
    np.testing.assert_array_equal(d["before"], cnn.net.layers[0].params["W"])
    assert "grad" not in d and "update" not in d and "no update yet" in p.header.text()
    cnn.backward()
    p.show_snapshot(cnn.snapshot())
    np.testing.assert_array_equal(p.displayed()["grad"], cnn.net.layers[0].grads["W"])
    p.set_layer(1)
    assert p.hint == "MaxPool2D has no weights; select a Conv2D or Dense layer"
    assert p.displayed() == {}


def test_kernels_cap_wide_layers_at_16_by_16(qtbot):
    s = Session(preset_from_dict(WIDE))
    p = make(qtbot, KernelsPanel)
    s.update()
    p.set_layer(1)
    p.show_snapshot(s.snapshot())
    lay = p.views["before"].layout_
    assert (lay.rows, lay.cols) == (16, 16)
    assert "showing 16 of 20 filters, 16 of 18 input channels" in \
        p.views["before"].caption.text()
    np.testing.assert_array_equal(p.displayed()["before"], s.last_update.layers[1]["W"].before)
    W = s.last_update.layers[1]["W"].before
    hi = max(np.abs(W).max(), np.abs(s.last_update.layers[1]["W"].after).max())
    assert p.displayed()["levels_before"][1] == nice_ceil(hi)   # whole array, not shown part


# ----------------------------------------------------------------------------- gradients, loss

def test_gradient_bars_and_history_match_the_core(qtbot, cnn):
    p = make(qtbot, GradientPanel)
    p.show_snapshot(cnn.snapshot())
    assert p.hint.startswith("No gradients yet")
    for step in range(1, 4):
        cnn.update()
        p.show_snapshot(cnn.snapshot())
        d = p.displayed()
        assert d["grad_norm_history"].shape == (step, 6) == (len(cnn.history), 6)
        for i, curve in p._curve_items():                    # y holds log10 of the norms
            assert len(curve.xData) == step
            np.testing.assert_allclose(10 ** curve.yData, [g[i] for g in cnn.history.grad_norms],
                                       rtol=1e-12)
    for i, layer in enumerate(cnn.net.layers):
        expected = np.linalg.norm(layer.grads["W"]) if "W" in layer.grads else np.nan
        np.testing.assert_allclose(d["grad_norm"][i], expected, rtol=1e-12)
        np.testing.assert_allclose(d["delta_norm"][i], np.linalg.norm(layer.delta), rtol=1e-12)
    opts = p.grad_bars.opts
    bars = dict(zip(np.round(opts["x"] + 0.18).astype(int),
                    10 ** (opts["y0"] + np.asarray(opts["height"]))))
    assert sorted(bars) == [0, 2, 5]                        # NaN layers skipped
    for i, v in bars.items():
        assert v == pytest.approx(np.linalg.norm(cnn.net.layers[i].grads["W"]), rel=1e-9)
    assert [i for i, _ in p.history_keys] == [0, 2, 5]           # one key per curve
    title = p.history.titleLabel.text
    assert all(colors.series_color(i).name() in title for i in (0, 2, 5))
    assert p.history.legend is None                               # nothing over the curves
    labels = [t for _, t in p.bars.getAxis("bottom")._tickLevels[0]]
    assert labels[0].replace("\n", " ") == "0 Conv2D" and len(labels) == 6
    with qtbot.waitSignal(p.layerPicked) as picked:
        p._clicked(p.bars, 2.1, 0.0)
    assert picked.args == [2]
    p.set_layer(2)
    assert p.highlight.getRegion() == (1.5, 2.5)
    assert "<b>2</b>" in p.history.titleLabel.text and "<b>0</b>" not in p.history.titleLabel.text
    band, (y0, y1) = p.highlight.boundingRect(), p.bars.getViewBox().viewRange()[1]
    assert band.left() == 1.5 and band.right() == 2.5 and band.top() <= y0 < y1 <= band.bottom()


def test_lines_drawn_every_frame_are_opaque(qtbot, cnn):
    """Faded history curves and grid lines are the blend of their colour with the
    background, drawn opaque (translucent 1-px lines are several times slower to draw)."""
    from bpviz.ui.panels import colors
    from bpviz.ui.panels.plots import FADED, GRID_ALPHA
    p = make(qtbot, GradientPanel)
    for _ in range(3):
        cnn.update()
    p.show_snapshot(cnn.snapshot())
    p.set_layer(2)
    bg, fg, _ = colors.theme(p.palette())
    for i, curve in p._curve_items():
        want = colors.series_color(i) if i == 2 else colors.over(colors.series_color(i), bg,
                                                                  FADED)
        assert curve.opts["pen"].color() == want and want.alpha() == 255
    for plot in p.plots:
        assert plot.grid.pen.color() == colors.over(fg, bg, GRID_ALPHA)
        assert plot.grid.pen.color().alpha() == 255 and plot.grid.ys
    mid = QColor(100, 150, 200)
    assert colors.over(mid, QColor(255, 255, 255), 255) == mid
    assert colors.over(mid, QColor(0, 0, 0), 0) == QColor(0, 0, 0)


def test_bar_axis_holds_every_bar_and_rarely_relabels_while_norms_jump(qtbot):
    """At batch 1 the norms jump by a decade or two from step to step: every bar stays
    inside the axis range, which grows at once but shrinks only on text frames and only by
    whole empty decades, so it changes on few frames."""
    p = make(qtbot, GradientPanel)
    rng = np.random.default_rng(0)
    changes, key = 0, None
    for frame in range(400):
        p.texts_due = frame % 15 == 0                    # text every 0.5 s at 30 frames/s
        grad = 10.0 ** (rng.normal(-2, 0.8, 6) + (-3 if frame > 200 else 0))
        delta = 10.0 ** rng.normal(-1, 0.8, 6)
        p._draw_bars(grad, delta)
        floor, top, _ = p._bar_key
        logs = np.log10(np.concatenate([grad, delta]))
        assert floor <= logs.min() and logs.max() <= top
        changes += p._bar_key != key
        key = p._bar_key
    assert changes <= 20                     # (shrinking to the exact range: ~40)
    assert floor >= np.floor(logs.min()) - 3                 # it did follow the data down


def test_loss_panel_curves_equal_the_history(qtbot, cnn):
    p = make(qtbot, LossPanel)
    p.show_snapshot(cnn.snapshot())
    assert p.hint.startswith("No loss yet")
    for _ in range(12):
        cnn.update()
    p.show_snapshot(cnn.snapshot())
    x, y = p.loss_curve.getData()
    np.testing.assert_array_equal(y, cnn.history.loss)
    np.testing.assert_array_equal(p.displayed()["accuracy"], cnn.history.accuracy)
    np.testing.assert_allclose(p.displayed()["loss_mean"][-1], np.mean(cnn.history.loss[-10:]))
    assert f"loss {fmt(cnn.loss)}" in p.header.text()
    assert p.acc_plot.getViewBox().viewRange()[1][0] < 0 < 1 < \
        p.acc_plot.getViewBox().viewRange()[1][1]
    assert p._hover(p.loss_plot, 3.2, 0).startswith(f"step 3 · loss = {fmt(cnn.history.loss[3])}")


def test_a_training_frame_reduces_only_the_new_steps_and_equals_a_full_redraw(qtbot):
    """Frame cost independent of the history's length: after thousands of steps, a frame
    five steps later derives (log10, running means) and reduces only about those five rows,
    takes the snapshot's history without copying it, and draws exactly what a panel
    drawing that snapshot from scratch draws."""
    s = Session("xor")
    for _ in range(3000):
        s.train_step()
    panels = [make(qtbot, cls, (500, 400)) for cls in (LossPanel, GradientPanel)]
    first = s.snapshot()
    for p in panels:
        p.show_snapshot(first)
    derived = [p.peaks.rows_derived for p in panels]
    reduced = [p.peaks.rows_reduced for p in panels]
    for _ in range(5):
        s.train_step()
    snap = s.snapshot()
    assert np.shares_memory(snap.loss_history, first.loss_history)      # a view, no copy
    for p, d0, r0 in zip(panels, derived, reduced):
        p.show_snapshot(snap)
        assert p.peaks.rows_derived - d0 == 5
        assert p.peaks.rows_reduced - r0 <= 5 + 32        # at most the blocks just completed
    for p in panels:
        fresh = make(qtbot, type(p), (500, 400))
        fresh.show_snapshot(snap)
        curves = ([p.loss_curve, p.mean_curve, p.acc_curve] if isinstance(p, LossPanel)
                  else [c for _, c in p._curve_items()])
        again = ([fresh.loss_curve, fresh.mean_curve, fresh.acc_curve]
                 if isinstance(p, LossPanel) else [c for _, c in fresh._curve_items()])
        for a, b in zip(curves, again):
            np.testing.assert_array_equal(a.xData, b.xData)      # running means: a cumsum
            np.testing.assert_allclose(a.yData, b.yData, rtol=1e-9, equal_nan=True)  # rounds
    loss = np.asarray(s.history.loss)
    mean = panels[0].displayed()["loss_mean"]
    np.testing.assert_allclose(mean[[9, 1000, -1]], [loss[:10].mean(), loss[991:1001].mean(),
                                                     loss[-10:].mean()], rtol=1e-12)


def test_long_histories_are_drawn_reduced_but_keep_their_spikes(qtbot):
    """Thousands of steps: a curve holds about one point per pixel of its plot, and the
    reduction keeps each run's smallest and largest value (a single spike stays visible),
    gaps (NaN) stay gaps, and the last step is drawn."""
    from bpviz.ui.panels.peaks import peak_reduce
    x = np.arange(5000.0)
    y = np.column_stack([np.sin(x / 300), np.cos(x / 300)])
    y[1234, 0] = 50.0
    y[2000:2600, 1] = np.nan
    rx, ry = peak_reduce(x, y, (0.0, 4999.0), 200)
    assert len(rx) <= 2 * 200 + 25 and rx[0] == 0 and rx[-1] == 4999
    np.testing.assert_array_equal(ry[-1], y[-1])
    assert np.nanmax(ry[:, 0]) == 50.0 and np.nanmin(ry[:, 0]) == pytest.approx(-1, abs=1e-3)
    assert np.isnan(ry[:, 1]).any() and not np.isnan(ry[:, 0]).any()
    assert peak_reduce(x[:300], y[:300], (0.0, 299.0), 200)[0].shape == (300,)  # short: as is
    assert peak_reduce(x[:0], y[:0], None, 200)[1].shape == (0, 2)            # empty
    s = Session("xor")
    p = make(qtbot, LossPanel, (500, 400))
    for _ in range(3000):
        s.train_step()
    p.show_snapshot(s.snapshot())
    loss = np.asarray(s.history.loss)
    x, y = p.loss_curve.getData()
    assert len(x) <= p.loss_plot.getViewBox().width() + 50 < len(loss)
    assert np.nanmax(y) == np.nanmax(loss) and np.nanmin(y) == np.nanmin(loss)
    assert x[-1] == s.snapshot().history_steps[-1]                 # the newest step
    np.testing.assert_array_equal(p.displayed()["loss"], loss)


# ----------------------------------------------------------------------------- robustness

def test_non_finite_values_are_drawn_without_breaking_the_limits(qtbot, cnn):
    p = make(qtbot, SensitivityPanel)
    cnn.backward()
    snap = cnn.snapshot()
    delta = snap.layers[0].delta.copy()
    delta[0, 0, 0], delta[1, 1, 1], delta[2, 2, 2] = np.nan, np.inf, -np.inf
    layers = (replace(snap.layers[0], delta=delta),) + snap.layers[1:]
    p.show_snapshot(replace(snap, layers=layers))
    lo, hi = p.displayed()["levels_delta"]
    assert np.isfinite(hi) and lo == -hi
    assert np.nanmax(p.displayed()["mosaic_delta"]) == np.float32(hi)
    delta[3, 3, 3] = 1e300                          # exploding: beyond float32
    layers = (replace(snap.layers[0], delta=delta),) + snap.layers[1:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p.show_snapshot(replace(snap, layers=layers))
        p.repaint()
    lo, hi = p.displayed()["levels_delta"]
    assert lo == -hi and np.isfinite(np.float32(hi))


def test_panels_follow_a_dark_palette(qtbot, cnn):
    from PySide6.QtGui import QColor, QPalette
    p = make(qtbot, FeatureMapsPanel)
    dark = QPalette()
    dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 30))
    dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
    p.setPalette(dark)
    qtbot.waitUntil(lambda: p.view_z.glw.backgroundBrush().color() == QColor(30, 30, 30))


def rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return None


def test_thousands_of_repaints_leak_nothing(qtbot, cnn):
    """Guards the PySide6 6.12.0 refcount crash and leaks: 3,000 refreshes, every 10th
    painted, alternating two snapshots over the five panels."""
    panels = [make(qtbot, cls, (640, 420)) for _, _, cls in PANEL_CLASSES]
    cnn.update()
    first = cnn.snapshot()
    cnn.update()
    second = cnn.snapshot()
    for p in panels:
        p.set_layer(2)

    def run(n):
        for k in range(n):
            p = panels[k % len(panels)]
            p.show_snapshot(first if (k // len(panels)) % 2 else second)
            if k % 10 == 0:
                p.repaint()
        qtbot.wait(0)

    run(200)                                          # warm caches
    gc.collect()
    true_refs, objects, rss = sys.getrefcount(True), len(gc.get_objects()), rss_bytes()
    start = time.perf_counter()
    counts = []
    for _ in range(3):
        run(1000)
        gc.collect()
        counts.append((len(gc.get_objects()), rss_bytes()))
    elapsed = time.perf_counter() - start
    assert abs(sys.getrefcount(True) - true_refs) <= 50
    assert counts[-1][0] - objects < 1000, counts
    assert abs(counts[2][0] - counts[1][0]) < 200, counts     # levelled off
    if rss is not None:
        assert counts[2][1] - counts[1][1] < 8 * 2**20, counts
    assert elapsed < 30, f"3,000 refreshes took {elapsed:.1f} s"
    for p in panels:
        assert p.last_snapshot in (first, second)


def test_tile_labels_name_each_tile_at_its_corner_and_hide_on_small_tiles(qtbot, cnn):
    """One label per channel ("c0" …) at the top-left pixel of its tile, drawn at screen
    size on the image; hidden when the tiles are too small on screen to carry them."""
    from bpviz.ui.panels.mapview import LABEL_MIN_PX
    p = make(qtbot, FeatureMapsPanel, (1400, 900))
    cnn.forward()
    p.show_snapshot(cnn.snapshot())
    view, n = p.view_z, cnn.net.layers[0].z.shape[1]
    labels = view.labels
    assert labels.texts() == [f"c{k}" for k in range(n)]
    for k, (pos, _, _, _) in enumerate(labels.items):
        assert (pos.y(), pos.x()) == view.layout_.origin(k)
    w_px = view.layout_.w / view.vb.viewPixelSize()[0]
    assert labels.isVisible() == (w_px >= LABEL_MIN_PX[0])
    image = view.glw.grab().toImage()                  # the label boxes are on screen
    assert labels.isVisible()
    corner = view.vb.mapViewToScene(labels.items[0][0]).toPoint()
    box = image.pixelColor(view.glw.mapFromScene(corner) + QPoint(1, 1))
    under = QColor.fromRgba(view.image.pixel(*view.layout_.origin(0)))   # the map there
    keep = 1 - labels.fill.alpha() / 255                 # the translucent dark box over it
    for got, was in zip(box.getRgb()[:3], under.getRgb()[:3]):
        assert abs(got - keep * was) <= 12
    p.resize(250, 200)
    qtbot.waitUntil(lambda: not labels.isVisible(), timeout=3000)


def test_mosaic_pixels_are_the_colour_map_of_the_values(qtbot, cnn):
    """The image on screen: each mosaic pixel has the colour-map entry of its value's bin in
    [lo, hi] (256 bins), gaps between tiles are transparent, and the colour bar beside it
    is labelled with round values inside the same limits."""
    from bpviz.ui.panels import colors
    p = make(qtbot, FeatureMapsPanel)
    cnn.forward()
    p.show_snapshot(cnn.snapshot())
    view = p.view_z
    z = cnn.net.layers[0].z[0]
    lo, hi = view.levels
    table = colors.cmap("diverging").getLookupTable(0.0, 1.0, 256, alpha=False)
    lay = view.layout_
    for k, r, c in ((0, 0, 0), (1, 3, 4), (z.shape[0] - 1, z.shape[1] - 1, z.shape[2] - 1)):
        y0, x0 = lay.origin(k)
        value = float(np.float32(z[k, r, c]))
        i = min(int((value - lo) / (hi - lo) * 256), 255)
        argb = view.image.pixel(y0 + r, x0 + c)
        assert argb >> 24 == 255
        assert ((argb >> 16) & 255, (argb >> 8) & 255, argb & 255) == tuple(table[i])
    assert view.image.pixel(0, lay.w) >> 24 == 0               # the gap column
    assert view.image.width() == view.mosaic.shape[1] and view.image.height() == \
        view.mosaic.shape[0]
    ticks = view.bar._ticks
    assert tuple(view.bar.levels()) == (lo, hi) and 3 <= len(ticks) <= view.bar.MAX_TICKS
    assert (0.0, "0") in ticks
    for value, text in ticks:
        assert lo <= value <= hi and float(text.replace("−", "-")) == pytest.approx(value)
