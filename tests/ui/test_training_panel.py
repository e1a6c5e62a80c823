"""TrainingPanel: typed settings reach the optimiser and trainer; bad values are refused with
a message and the old value is shown again."""
import os

if not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from bpviz.core.presets import preset_from_dict  # noqa: E402
from bpviz.session.session import Session  # noqa: E402
from bpviz.ui.fields import format_number  # noqa: E402
from bpviz.ui.training_panel import TrainingPanel  # noqa: E402


def make_session(reduction="mean"):
    return Session(preset_from_dict({
        "format": 1, "name": "test", "title": "test", "input_shape": [2], "loss": "bce",
        "reduction": reduction, "dataset": "xor",
        "layers": [{"type": "Dense", "units": 4, "activation": "tanh"},
                   {"type": "Dense", "units": 1, "activation": "sigmoid"}],
        "training": {"lr": 0.1, "mode": "mini-batch", "batch_size": 16}}))


@pytest.fixture
def panel(qtbot):
    p = TrainingPanel(make_session())
    qtbot.addWidget(p)
    p.resize(360, 500)
    with qtbot.waitExposed(p):
        p.show()
    return p


def type_into(qtbot, widget, text):
    widget.setFocus()
    widget.selectAll()
    if text:
        qtbot.keyClicks(widget, text)
    else:
        qtbot.keyClick(widget, Qt.Key_Backspace)
    qtbot.keyClick(widget, Qt.Key_Return)


def test_numbers_apply_to_the_optimiser(qtbot, panel):
    s = panel.session
    seen = []
    panel.settingsApplied.connect(seen.append)
    type_into(qtbot, panel.edits["lr"], "0.05")
    type_into(qtbot, panel.edits["momentum"], "0.9")
    type_into(qtbot, panel.edits["l2"], "1e-4")
    assert (s.optimizer.lr, s.optimizer.momentum, s.optimizer.l2) == (0.05, 0.9, 1e-4)
    assert panel.edits["l2"].text() == "0.0001"
    assert len(seen) == 3 and seen[-1]["l2"] == 1e-4
    assert not panel.error_label.isVisible()


def test_mode_and_batch_size(qtbot, panel):
    s = panel.session
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findText("sample"))
    assert s.trainer.mode == "sample" and not panel.batch_spin.isEnabled()
    assert panel.batch_note.text().startswith("1 of 200")
    assert "selected sample" not in panel.batch_note.text()
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findText("mini-batch"))
    assert panel.batch_spin.isEnabled()
    panel.batch_spin.selectAll()
    qtbot.keyClicks(panel.batch_spin, "8")
    qtbot.keyClick(panel.batch_spin, Qt.Key_Return)
    assert s.trainer.batch_size == 8 and s.trainer.effective_batch == 8
    # the panels draw one sample of the batch: the note says which
    assert panel.batch_note.text().startswith("8 of 200")
    assert "includes the selected sample and the panels show it" in panel.batch_note.text()
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findText("full-batch"))
    assert s.trainer.mode == "full-batch" and panel.batch_note.text().startswith("200 of 200")


def test_clipping_switches_on_and_off(qtbot, panel):
    s = panel.session
    qtbot.mouseClick(panel.checks["clip_value"], Qt.LeftButton)
    assert s.optimizer.clip_value == 1.0 and panel.edits["clip_value"].isEnabled()
    type_into(qtbot, panel.edits["clip_value"], "0.5")
    assert s.optimizer.clip_value == 0.5
    qtbot.mouseClick(panel.checks["clip_value"], Qt.LeftButton)
    assert s.optimizer.clip_value is None and not panel.edits["clip_value"].isEnabled()
    assert panel.edits["clip_value"].text() == "0.5"          # remembered for next time
    qtbot.mouseClick(panel.checks["clip_norm"], Qt.LeftButton)
    type_into(qtbot, panel.edits["clip_norm"], "2.5")
    assert s.optimizer.clip_norm == 2.5


@pytest.mark.parametrize("key, text, fragments", [
    ("lr", "", ["learning rate is empty"]),
    ("lr", "abc", ["learning rate 'abc'", "not a number"]),
    ("lr", "nan", ["learning rate 'nan'"]),
    ("lr", "1e999", ["learning rate '1e999'", "infinity"]),
    ("lr", "0", ["learning rate 0", "> 0"]),
    ("lr", "-1", ["learning rate -1", "> 0"]),
    ("momentum", "1", ["momentum 1", "[0, 1)"]),
    ("momentum", "inf", ["momentum 'inf'"]),
    ("l2", "-0.1", ["L2 -0.1", "≥ 0"]),
])
def test_bad_values_are_refused(qtbot, panel, key, text, fragments):
    s = panel.session
    before = s.training_settings()
    old_text = panel.edits[key].text()
    type_into(qtbot, panel.edits[key], text)
    assert panel.error_label.isVisible() and panel.error_label.objectName() == "trainingError"
    for fragment in fragments:
        assert fragment in panel.error_label.text()
    assert s.training_settings() == before
    assert panel.edits[key].text() == old_text


@pytest.mark.parametrize("key, text", [("clip_value", "0"), ("clip_norm", "-2"),
                                       ("clip_norm", "abc")])
def test_bad_clip_threshold_is_refused(qtbot, panel, key, text):
    s = panel.session
    qtbot.mouseClick(panel.checks[key], Qt.LeftButton)
    before = s.training_settings()
    type_into(qtbot, panel.edits[key], text)
    assert "clip" in panel.error_label.text()
    assert s.training_settings() == before
    assert panel.edits[key].text() == format_number(before[key])


def test_batch_of_zero_is_refused(qtbot, panel):
    s = panel.session
    panel.batch_spin.selectAll()
    qtbot.keyClicks(panel.batch_spin, "0")
    qtbot.keyClick(panel.batch_spin, Qt.Key_Return)
    assert "batch size 0" in panel.error_label.text()
    assert s.trainer.batch_size == 16 and panel.batch_spin.value() == 16


def test_refresh_shows_outside_changes_and_the_reduction(qtbot):
    p = TrainingPanel(make_session(reduction="sum"))
    qtbot.addWidget(p)
    assert p.reduction_label.text().startswith("sum")
    p.session.set_training(lr=0.3, clip_norm=4.0, mode="sample")
    p.refresh()
    assert p.edits["lr"].text() == "0.3" and p.checks["clip_norm"].isChecked()
    assert p.edits["clip_norm"].text() == "4" and p.mode_combo.currentText() == "sample"
