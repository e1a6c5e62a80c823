"""NetworkBuilder: edits by clicks and keys reach the session; refused edits change nothing;
undo/redo restores the architecture and the weights."""
import os

if not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtGui import QDropEvent, QUndoStack  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from bpviz.core.presets import preset_from_dict  # noqa: E402
from bpviz.session.session import Session  # noqa: E402
from bpviz.ui.builder import NetworkBuilder  # noqa: E402

CNN_LAYERS = [
    {"type": "Conv2D", "filters": 4, "kernel_size": 3, "stride": 1, "padding": 1,
     "activation": "relu"},
    {"type": "MaxPool2D", "size": 2, "stride": None},
    {"type": "Conv2D", "filters": 8, "kernel_size": 3, "stride": 1, "padding": 1,
     "activation": "relu"},
    {"type": "MaxPool2D", "size": 2, "stride": None},
    {"type": "Flatten"},
    {"type": "Dense", "units": 4, "activation": "softmax"},
]


def make_session(layers, input_shape=(1, 12, 12), dataset="shapes", loss="cross_entropy"):
    return Session(preset_from_dict({
        "format": 1, "name": "test", "title": "test", "input_shape": list(input_shape),
        "loss": loss, "layers": layers, "dataset": dataset,
        "training": {"lr": 0.1, "mode": "mini-batch", "batch_size": 8}}))


def cnn_session():
    try:
        return Session("cnn-shapes")
    except ValueError:                       # presets not installed yet
        return make_session(CNN_LAYERS)


def weights(net):
    return [{k: v.copy() for k, v in layer.params.items()} for layer in net.layers]


def same_weights(a, b):
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
        for x, y in zip(a, b))


@pytest.fixture
def make_builder(qtbot):
    def make(session):
        stack = QUndoStack()
        builder = NetworkBuilder(session, stack)
        builder.stack = stack                    # keep the stack alive with the widget
        qtbot.addWidget(builder)
        builder.resize(380, 720)
        with qtbot.waitExposed(builder):
            builder.show()
        return builder
    return make


def click_row(qtbot, builder, row):
    tree = builder.tree
    rect = tree.visualItemRect(tree.topLevelItem(row))
    QTest.mouseClick(tree.viewport(), Qt.LeftButton, Qt.NoModifier, rect.center())


def type_into(qtbot, widget, text):
    """Replace the widget's text by typing, then press Enter."""
    widget.setFocus()
    widget.selectAll()
    if text:
        qtbot.keyClicks(widget, text)
    else:
        qtbot.keyClick(widget, Qt.Key_Backspace)
    qtbot.keyClick(widget, Qt.Key_Return)


def add(qtbot, builder, kind):
    builder.type_combo.setCurrentIndex(builder.type_combo.findText(kind))
    qtbot.mouseClick(builder.add_button, Qt.LeftButton)


def test_rows_show_description_output_shape_and_params(make_builder):
    s = cnn_session()
    b = make_builder(s)
    tree = b.tree
    assert tree.topLevelItemCount() == len(s.net.layers) + 1
    assert tree.topLevelItem(0).text(1) == "input" and tree.topLevelItem(0).text(2) == "1×12×12"
    for i, layer in enumerate(s.net.layers):
        item = tree.topLevelItem(i + 1)
        assert item.text(0) == str(i)
        assert tree.layer_text(i + 1) == layer.describe()
        assert item.text(2) == "×".join(map(str, layer.output_shape))
        assert item.text(3) == f"{layer.param_count():,}"
    assert f"{s.net.param_count():,} parameters" in b.total_label.text()


def test_build_a_small_cnn_by_clicks(qtbot, make_builder):
    """From Flatten → Dense: add Conv2D at the top, set its fields, add MaxPool2D and Dense."""
    s = make_session([{"type": "Flatten"}, {"type": "Dense", "units": 4,
                                            "activation": "softmax"}])
    b = make_builder(s)
    click_row(qtbot, b, 0)                               # the input row: insert at the top
    add(qtbot, b, "Conv2D")
    assert b.current_layer() == 0
    conv = b.fields["Conv2D"]
    conv["filters"].selectAll()
    qtbot.keyClicks(conv["filters"], "6")
    qtbot.keyClick(conv["filters"], Qt.Key_Return)
    type_into(qtbot, conv["kernel_size"], "5")
    type_into(qtbot, conv["padding"], "2")
    conv["activation"].setCurrentIndex(conv["activation"].findText("tanh"))
    add(qtbot, b, "MaxPool2D")                           # after the selected Conv2D
    click_row(qtbot, b, 3)                               # Flatten
    add(qtbot, b, "Dense")
    dense = b.fields["Dense"]
    dense["units"].selectAll()
    qtbot.keyClicks(dense["units"], "12")
    qtbot.keyClick(dense["units"], Qt.Key_Return)
    assert s.net.config()["layers"] == [
        {"type": "Conv2D", "filters": 6, "kernel_size": 5, "stride": 1, "padding": 2,
         "activation": "tanh"},
        {"type": "MaxPool2D", "size": 2, "stride": 2},
        {"type": "Flatten"},
        {"type": "Dense", "units": 12, "activation": "relu"},
        {"type": "Dense", "units": 4, "activation": "softmax"},
    ]
    assert b.tree.topLevelItem(1).text(2) == "6×12×12"
    assert b.tree.topLevelItem(1).text(3) == "156"          # 6·(1·5·5) + 6
    assert b.tree.topLevelItem(4).text(2) == "12"
    assert not b.error_label.isVisible()
    s.forward()                                            # the new stack really runs
    assert s.net.layers[-1].a.shape[1] == 4


@pytest.mark.parametrize("row, field, text, expected", [
    (1, "kernel_size", "99", ["layer 0 Conv2D", "kernel_size 99", "14×14", "12×12"]),
    (3, "kernel_size", "9", ["layer 2 Conv2D", "kernel_size 9", "8×8", "6×6"]),
    (1, "padding", "-1", ["layer 0 Conv2D", "padding -1", "≥ 0"]),
    (1, "stride", "0", ["layer 0 Conv2D", "stride 0", "≥ 1"]),
    (1, "kernel_size", "abc", ["layer 0 Conv2D", "kernel_size 'abc'", "not a whole number"]),
    (1, "stride", "1e999", ["layer 0 Conv2D", "stride '1e999'"]),
    (1, "padding", "nan", ["layer 0 Conv2D", "padding 'nan'"]),
    (1, "kernel_size", "", ["layer 0 Conv2D", "kernel_size is empty"]),
    (1, "kernel_size", "3.5", ["kernel_size '3.5'"]),
    (1, "kernel_size", "3, 3, 3", ["kernel_size '3, 3, 3'", "3 numbers"]),
    (2, "padding", "2", ["layer 1 MaxPool2D", "padding 2", "half the window"]),
])
def test_invalid_field_is_refused_and_changes_nothing(qtbot, make_builder, row, field, text,
                                                       expected):
    s = cnn_session()
    b = make_builder(s)
    click_row(qtbot, b, row)
    kind = s.net.layers[row - 1].kind
    editor = b.fields[kind][field]
    old_text = editor.text()
    config, params = s.net.config(), weights(s.net)
    type_into(qtbot, editor, text)
    assert b.error_label.isVisible()
    assert b.error_label.objectName() == "builderError"
    for fragment in expected:
        assert fragment in b.error_label.text()
    assert s.net.config() == config
    assert same_weights(weights(s.net), params)
    assert editor.text() == old_text                      # the old value is shown again
    assert b.undo_stack.count() == 0


def test_zero_units_refused_with_the_core_message(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    click_row(qtbot, b, len(s.net.layers))                # the Dense output layer
    config, params = s.net.config(), weights(s.net)
    spin = b.fields["Dense"]["units"]
    spin.selectAll()
    qtbot.keyClicks(spin, "0")
    qtbot.keyClick(spin, Qt.Key_Return)
    assert "units 0" in b.error_label.text() and "≥ 1" in b.error_label.text()
    assert s.net.config() == config and same_weights(weights(s.net), params)
    assert spin.value() == 4


def test_too_big_a_layer_is_refused_before_allocating(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    click_row(qtbot, b, 1)
    config = s.net.config()
    spin = b.fields["Conv2D"]["filters"]
    spin.selectAll()
    qtbot.keyClicks(spin, "50000")
    qtbot.keyClick(spin, Qt.Key_Return)
    assert "values per sample" in b.error_label.text()
    assert s.net.config() == config and spin.value() == 4


def test_removing_flatten_before_dense_is_refused(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    flatten = next(i for i, l in enumerate(s.net.layers) if l.kind == "Flatten")
    config, params = s.net.config(), weights(s.net)
    click_row(qtbot, b, flatten + 1)
    qtbot.mouseClick(b.remove_button, Qt.LeftButton)
    message = b.error_label.text()
    assert "Dense" in message and "Flatten" in message and "not a vector" in message
    assert s.net.config() == config and same_weights(weights(s.net), params)
    assert b.undo_stack.count() == 0


def test_adding_dense_after_a_convolution_is_refused(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    config = s.net.config()
    click_row(qtbot, b, 1)
    add(qtbot, b, "Dense")
    assert "layer 1 Dense" in b.error_label.text()
    assert s.net.config() == config


def test_undo_redo_remove_restores_the_same_layer_and_weights(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    config, params = s.net.config(), weights(s.net)
    removed = s.net.layers[2]
    w_removed = removed.params["W"].copy()
    click_row(qtbot, b, 3)
    qtbot.mouseClick(b.remove_button, Qt.LeftButton)
    assert len(s.net.layers) == len(config["layers"]) - 1
    after_config, after = s.net.config(), weights(s.net)
    b.undo_stack.undo()
    assert s.net.layers[2] is removed
    assert np.array_equal(s.net.layers[2].params["W"], w_removed)
    assert s.net.config() == config and same_weights(weights(s.net), params)
    assert b.tree.topLevelItemCount() == len(s.net.layers) + 1
    b.undo_stack.redo()
    assert s.net.config() == after_config and same_weights(weights(s.net), after)


def test_undo_redo_replace_restores_the_old_layer_object(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    config, params = s.net.config(), weights(s.net)
    old = s.net.layers[0]
    click_row(qtbot, b, 1)
    type_into(qtbot, b.fields["Conv2D"]["kernel_size"], "5")
    assert s.net.layers[0].kernel_size == (5, 5)
    after_config, after = s.net.config(), weights(s.net)
    b.undo_stack.undo()
    assert s.net.layers[0] is old
    assert s.net.config() == config and same_weights(weights(s.net), params)
    assert b.fields["Conv2D"]["kernel_size"].text() == "3"
    b.undo_stack.redo()
    assert s.net.config() == after_config and same_weights(weights(s.net), after)


def test_activation_edit_keeps_the_layers_weights(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    params = weights(s.net)
    click_row(qtbot, b, 1)
    combo = b.fields["Conv2D"]["activation"]
    combo.setCurrentIndex(combo.findText("tanh"))
    assert s.net.layers[0].activation == "tanh"
    assert same_weights(weights(s.net), params)


def test_undo_redo_insert_move_loss_and_input_shape(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    config, params = s.net.config(), weights(s.net)
    click_row(qtbot, b, 1)
    add(qtbot, b, "Conv2D")                                # after layer 0
    assert s.net.layers[1].kind == "Conv2D" and len(s.net.layers) == 7
    click_row(qtbot, b, 4)                                 # the second original Conv2D ...
    qtbot.mouseClick(b.up_button, Qt.LeftButton)           # ... above the first MaxPool2D
    assert [l.kind for l in s.net.layers][:4] == ["Conv2D", "Conv2D", "Conv2D", "MaxPool2D"]
    assert b.current_layer() == 2
    b.loss_combo.setCurrentIndex(b.loss_combo.findText("mse"))
    assert s.net.loss == "mse"
    type_into(qtbot, b.input_edit, "1, 16, 16")
    assert s.net.input_shape == (1, 16, 16)
    assert b.tree.topLevelItem(0).text(2) == "1×16×16"
    assert b.undo_stack.count() == 4
    final_config, final = s.net.config(), weights(s.net)
    for _ in range(4):
        b.undo_stack.undo()
    assert s.net.config() == config and same_weights(weights(s.net), params)
    assert b.loss_combo.currentText() == config["loss"]
    for _ in range(4):
        b.undo_stack.redo()
    assert s.net.config() == final_config and same_weights(weights(s.net), final)


def test_drag_and_drop_reorders_through_the_session(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    tree = b.tree
    second_conv = s.net.layers[2]
    click_row(qtbot, b, 3)
    target = tree.visualItemRect(tree.topLevelItem(2))       # the first MaxPool2D row
    pos = QPointF(target.center().x(), target.top() + 2)     # upper half: drop above it
    mime = tree.mimeData([tree.topLevelItem(3)])
    event = QDropEvent(pos, Qt.MoveAction, mime, Qt.LeftButton, Qt.NoModifier)
    tree.dropEvent(event)
    assert s.net.layers[1] is second_conv
    assert b.undo_stack.count() == 1 and b.current_layer() == 1
    assert tree.topLevelItemCount() == len(s.net.layers) + 1   # Qt moved no rows itself


def test_keys_delete_and_alt_arrows(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    n = len(s.net.layers)
    click_row(qtbot, b, 3)
    qtbot.keyClick(b.tree, Qt.Key_Up, Qt.AltModifier)
    assert s.net.layers[1].kind == "Conv2D" and b.current_layer() == 1
    b.undo_stack.undo()
    click_row(qtbot, b, 1)
    qtbot.keyClick(b.tree, Qt.Key_Delete)                 # remove the first Conv2D: valid
    assert len(s.net.layers) == n - 1


def test_selection_signal_and_programmatic_selection(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    seen = []
    b.layerSelected.connect(seen.append)
    click_row(qtbot, b, 3)
    assert seen == [2]
    b.select_layer(4)                                     # no feedback
    assert seen == [2] and b.current_layer() == 4
    assert b.editor_box.title() == "layer 4 · Flatten"
    click_row(qtbot, b, 0)                                # the input row is not a layer
    assert seen == [2] and b.current_layer() is None


def test_highlight_marks_one_row_bold(make_builder):
    s = cnn_session()
    b = make_builder(s)
    b.highlight_layer(2)
    bold = [b.tree.topLevelItem(r).font(1).bold() for r in range(b.tree.topLevelItemCount())]
    assert bold == [r == 3 for r in range(len(bold))]
    b.refresh()
    assert b.tree.topLevelItem(3).font(1).bold()
    b.highlight_layer(None)
    assert not any(b.tree.topLevelItem(r).font(1).bold()
                   for r in range(b.tree.topLevelItemCount()))


def test_notes_show_a_warning_icon_and_tooltip(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    type_into(qtbot, b.input_edit, "1, 13, 13")           # 13 → pool 2 drops a row
    pool = 1 + next(i for i, l in enumerate(s.net.layers) if l.notes)
    item = b.tree.topLevelItem(pool)
    assert not item.icon(1).isNull()
    assert "rounded down" in item.toolTip(1)
    assert b.tree.topLevelItem(1).icon(1).isNull()          # the Conv2D covers every row


def test_invalid_input_shape_is_refused(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    config = s.net.config()
    for text, fragment in (("1, 12", "2 sizes"), ("abc", "'abc'"), ("0, 12, 12", "≥ 1"),
                           ("1, 1, 1", "larger than the padded input")):
        type_into(qtbot, b.input_edit, text)
        assert fragment in b.error_label.text()
        assert s.net.config() == config and b.input_edit.text() == "1, 12, 12"


def test_outside_change_refreshes_rows_and_clears_the_stack(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    click_row(qtbot, b, 1)
    add(qtbot, b, "Conv2D")
    assert b.undo_stack.count() == 1
    s.edit("remove_layer", 1)                              # e.g. a file opened, a script
    b.refresh()
    assert b.tree.topLevelItemCount() == len(s.net.layers) + 1
    assert b.undo_stack.count() == 0


def test_text_typed_but_not_applied_never_lands_on_another_layer(qtbot, make_builder):
    s = cnn_session()
    b = make_builder(s)
    click_row(qtbot, b, 1)
    config = s.net.config()
    editor = b.fields["Conv2D"]["kernel_size"]
    b.activateWindow()
    qtbot.waitUntil(b.isActiveWindow)
    editor.setFocus()
    qtbot.waitUntil(editor.hasFocus)
    editor.selectAll()
    qtbot.keyClicks(editor, "5")                          # no Enter
    b.select_layer(1)                                     # e.g. the stepping cursor moved
    assert s.net.config() == config and b.undo_stack.count() == 0
    assert editor.text() == "3"


def test_the_wheel_over_an_unfocused_spin_box_edits_nothing(qtbot, make_builder):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication
    s = cnn_session()
    b = make_builder(s)
    click_row(qtbot, b, 1)
    b.tree.setFocus()
    spin = b.fields["Conv2D"]["filters"]
    centre = QPointF(spin.rect().center())
    event = QWheelEvent(centre, QPointF(spin.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                        QPoint(0, 120), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(spin, event)
    assert spin.value() == 4 and s.net.layers[0].filters == 4
