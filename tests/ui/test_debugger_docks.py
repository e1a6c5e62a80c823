"""The gradient debugger's docks: present in the View menu, hidden and unbuilt until opened."""
import numpy as np


def test_debugger_docks_start_hidden_and_unbuilt(window):
    """Every debugger dock exists and is hidden; its panel is not created (costs nothing)."""
    from bpviz.ui.debugger import debugger_panels
    names = [name for name, _title, _cls in debugger_panels()]
    assert len(names) == 9 - 1           # PyTorch export is a File-menu action, not a dock
    for name in names:
        assert name in window.docks
        assert not window.docks[name].isVisible()
        assert name not in window.panels
    sub = next(a.menu() for a in window.view_menu.actions()
               if a.menu() is not None and a.text() == "Gradient debugger")
    assert [a.text() for a in sub.actions()] == [window.docks[n].windowTitle() for n in names]


def test_opening_a_debugger_dock_builds_and_paints_it(window, qtbot):
    """Showing a dock from the View menu creates its panel over the window's session."""
    dock = window.docks["saturationDock"]
    dock.toggleViewAction().trigger()
    qtbot.waitUntil(lambda: "saturationDock" in window.panels)
    panel = window.panels["saturationDock"]
    assert panel.session is window.session or getattr(panel, "_session", None) is window.session
    window.do_step()
    assert window.panels["saturationDock"].last_snapshot is not None


def test_stepping_with_debugger_closed_paints_only_the_five(window):
    """With the debugger docks closed, a step paints the five panels and nothing else."""
    before = dict(window.painted)
    window.do_step()
    changed = {n for n in window.painted if window.painted[n] != before.get(n, 0)}
    assert changed == {"featureMapsDock", "sensitivityDock", "kernelsDock", "gradientsDock",
                       "lossDock"}


def test_recorded_snapshot_is_shown_in_every_panel(window):
    """show_recorded(snapshot) puts a past snapshot in the panels; None returns to live."""
    window.do_step()
    past = window.session.snapshot()
    window.do_step()
    window.show_recorded(past)
    shown = window.panels["featureMapsDock"].last_snapshot
    assert shown is past
    window.show_recorded(None)
    assert window.panels["featureMapsDock"].last_snapshot.step == window.session.step_count
    assert not np.array_equal(past.layers[0].params["W"],
                              window.session.net.layers[0].params["W"])


def test_export_to_pytorch_from_the_file_menu(window, tmp_path, monkeypatch):
    """File ▸ Export ▸ To PyTorch writes a script holding this architecture and its weights."""
    import base64
    from PySide6.QtWidgets import QFileDialog
    target = tmp_path / "model.py"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "")))
    window.do_step()
    window.acts.export_torch.trigger()
    text = target.read_text()
    compile(text, str(target), "exec")
    assert "def build_model" in text
    for layer in window.session.net.layers:
        if "W" in layer.params:      # the exact weights are embedded (base64 float64)
            blob = base64.b64encode(layer.params["W"].astype("<f8").tobytes()).decode()
            assert blob[:40] in text
