"""NetworkBuilder: the layer list, its field editors, loss and input shape, all undoable.

Rows come from ``session.net`` (``describe()``, output shape, parameter count, notes); every
change goes through ``Session.edit`` inside a QUndoCommand (bpviz/ui/commands.py). The core
validates: a refused edit shows the core's message in the "builderError" label and changes
nothing (network, weights and the editor's value stay as they were).

The widget is a composition: the rows are a LayerTree (bpviz/ui/layer_tree.py), the field
editor a LayerEditor (bpviz/ui/layer_editor.py) and the size caps live in
bpviz/ui/stack_limits.py (``check_size`` is re-exported here for its older importers).
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton,
                               QSizePolicy, QVBoxLayout, QWidget)

from bpviz.core import losses
from bpviz.core.layers import layer_from_config
from bpviz.core.layers.base import shape_text

from .commands import (EditCommand, InsertLayerCommand, MoveLayerCommand, RemoveLayerCommand,
                       ReplaceLayerCommand, SetInputShapeCommand, SetLossCommand)
from .fields import MessageLabel, ValueEdit, format_shape, guard_wheel, parse_shape
from .layer_editor import LayerEditor, replace_field
from .layer_tree import LayerTree
from .stack_limits import check_size

__all__ = ["NetworkBuilder", "check_size"]

DEFAULTS = {
    "Dense": {"type": "Dense", "units": 16, "activation": "relu"},
    "Conv2D": {"type": "Conv2D", "filters": 4, "kernel_size": 3, "stride": 1, "padding": 1,
               "activation": "relu"},
    "MaxPool2D": {"type": "MaxPool2D", "size": 2, "stride": 2},
    "AvgPool2D": {"type": "AvgPool2D", "size": 2, "stride": 2},
    "Flatten": {"type": "Flatten"},
}


class NetworkBuilder(QWidget):
    """Layer list + field editors + loss + input shape; every edit is an undo command."""

    layerSelected = Signal(int)

    def __init__(self, session, undo_stack: QUndoStack, parent=None):
        super().__init__(parent)
        self.session, self.undo_stack = session, undo_stack
        self._syncing = False            # True while the code (not the user) sets widgets
        self._known = None               # network signature after our last command
        self._build_ui()
        self.refresh()
        self._known = self._signature()

    # ----- construction ----------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.tree = LayerTree()
        self.tree.setObjectName("layerList")
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.moveRequested.connect(self.move_layer)
        self.tree.removeRequested.connect(self.remove_selected)
        self.total_label = QLabel()
        self.total_label.setObjectName("builderTotal")
        self.note_label = MessageLabel("builderNote")
        self.editor_box = LayerEditor()
        self.editor_box.editRequested.connect(self._commit)
        self.editor_box.fieldRejected.connect(self._show_field_error)
        self.error_label = MessageLabel("builderError")
        top, buttons = self._build_top(), self._build_buttons()
        guard_wheel(self.loss_combo, self.type_combo)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.total_label)
        layout.addWidget(self.note_label)
        layout.addLayout(buttons)
        layout.addWidget(self.editor_box)
        layout.addWidget(self.error_label)

    def _build_top(self) -> QFormLayout:
        """Input shape and loss."""
        top = QFormLayout()
        top.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.input_edit = ValueEdit(parse_shape, format_shape)
        self.input_edit.setObjectName("inputShapeEdit")
        self.input_edit.setToolTip("Input shape: 'n' for vectors or 'C, H, W' for images")
        self.input_edit.committed.connect(self._set_input_shape)
        self.input_edit.rejected.connect(self._show_error)
        self.loss_combo = QComboBox()
        self.loss_combo.setObjectName("lossCombo")
        self.loss_combo.addItems(list(losses.NAMES))
        self.loss_combo.currentTextChanged.connect(self._set_loss)
        self.reduction_label = QLabel()
        loss_row = QHBoxLayout()
        loss_row.addWidget(self.loss_combo, 1)
        loss_row.addWidget(self.reduction_label)
        top.addRow("input shape", self.input_edit)
        top.addRow("loss", loss_row)
        return top

    def _build_buttons(self) -> QHBoxLayout:
        """Layer type + Add, Remove, move up / down."""
        self.type_combo = QComboBox()
        self.type_combo.setObjectName("layerTypeCombo")
        self.type_combo.addItems(list(DEFAULTS))
        self.type_combo.setToolTip("Type of layer to add after the selected row")
        self.add_button = self._button("Add", "addLayerButton",
                                       "Insert a layer of this type after the selected row")
        self.remove_button = self._button("Remove", "removeLayerButton",
                                          "Remove the selected layer (Delete)")
        self.up_button = self._button("▲", "moveUpButton",
                                      "Move the selected layer up (Alt+Up; or drag the row)")
        self.down_button = self._button("▼", "moveDownButton",
                                        "Move the selected layer down (Alt+Down; or drag the row)")
        for b in (self.up_button, self.down_button):
            b.setFixedWidth(b.fontMetrics().horizontalAdvance("▲") + 28)
        for b in (self.add_button, self.remove_button):   # may shrink below the 80 px default
            b.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
            b.setMinimumWidth(b.fontMetrics().horizontalAdvance(b.text()) + 24)
        self.add_button.clicked.connect(lambda: self.add_layer())
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.up_button.clicked.connect(lambda: self._move_selected(-1))
        self.down_button.clicked.connect(lambda: self._move_selected(1))
        buttons = QHBoxLayout()
        buttons.addWidget(self.type_combo, 1)
        for b in (self.add_button, self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(b)
        return buttons

    @staticmethod
    def _button(text: str, name: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        return button

    @property
    def fields(self) -> dict[str, dict[str, QWidget]]:
        """The editor's field widgets by layer type and field name."""
        return self.editor_box.fields

    # ----- public API ------------------------------------------------------------------------
    def current_layer(self) -> int | None:
        """Index of the selected layer (None when the input row or nothing is selected)."""
        item = self.tree.currentItem()
        row = self.tree.indexOfTopLevelItem(item) if item else -1
        return row - 1 if row >= 1 else None

    def select_layer(self, index: int | None) -> None:
        """Select a layer row (no layerSelected emitted); None clears the selection."""
        self._syncing = True
        try:
            if index is None or not 0 <= index < len(self.session.net.layers):
                self.tree.setCurrentItem(None)
                self.tree.clearSelection()
            else:
                self.tree.setCurrentItem(self.tree.topLevelItem(index + 1))
        finally:
            self._syncing = False
        self._show_editor()

    def highlight_layer(self, index: int | None) -> None:
        """Mark the layer being computed (bold, amber row); None clears the mark."""
        self.tree.highlight(index)

    def refresh(self) -> None:
        """Rebuild rows, loss and input shape from ``session.net`` (keeps the selection)."""
        net = self.session.net
        if not self._in_command() and self._known is not None and \
                self._signature() != self._known:
            self.undo_stack.clear()          # the network changed outside the undo stack
            self._known = self._signature()
        selected = self.current_layer()
        input_selected = self.tree.currentItem() is self.tree.topLevelItem(0) and \
            self.tree.currentItem() is not None
        self._syncing = True
        try:
            self.tree.show_network(net)
            self.input_edit.setValue(tuple(net.input_shape))
            self.loss_combo.setCurrentText(net.loss)
            self.reduction_label.setText(f"{net.reduction} over the batch")
            self.total_label.setText(f"{len(net.layers)} layers · {net.param_count():,} "
                                     f"parameters · output {shape_text(net.output_shape)}")
            if input_selected:
                self.tree.setCurrentItem(self.tree.topLevelItem(0))
            elif selected is not None:
                self.tree.setCurrentItem(self.tree.topLevelItem(
                    min(selected, len(net.layers) - 1) + 1))
        finally:
            self._syncing = False
        self._data_note()
        self._show_editor()

    # ----- notes and selection ---------------------------------------------------------------
    def _data_note(self) -> None:
        want, have = self.session.net.input_shape, self.session.dataset.input_shape
        if tuple(want) != tuple(have):
            self.note_label.show_note(
                f"dataset {self.session.dataset.name!r} gives {shape_text(have)} inputs but the "
                f"network expects {shape_text(want)}: load matching data before stepping")
        else:
            self.note_label.clear()

    def _current_changed(self, current, previous) -> None:
        if self._syncing:
            return
        self.error_label.clear()                 # the message was about another row
        self._show_editor()
        index = self.current_layer()
        if index is not None:
            self.layerSelected.emit(index)

    def _show_editor(self) -> None:
        index, net = self.current_layer(), self.session.net
        self.remove_button.setEnabled(index is not None and len(net.layers) > 1)
        self.up_button.setEnabled(index is not None and index > 0)
        self.down_button.setEnabled(index is not None and index < len(net.layers) - 1)
        input_row = self.tree.currentItem() is not None and index is None
        self.editor_box.show_layer(net, index, input_row)

    # ----- edits -----------------------------------------------------------------------------
    def _commit(self, field: str, value) -> None:
        index = self.editor_box.index
        if self._syncing or index is None or index >= len(self.session.net.layers):
            return
        try:
            edit = replace_field(self.session.net, index, field, value)
        except ValueError as exc:
            self._refuse(str(exc), index)
            return
        if edit is None:                 # the same layer (perhaps written differently)
            self.editor_box.load(self.session.net.layers[index])
            return
        new_layer, text = edit
        self._push(ReplaceLayerCommand(self.session, index, new_layer, text,
                                       self._after_command), index)

    def add_layer(self, kind: str | None = None) -> None:
        """Insert a layer of ``kind`` (default: the type combo's) after the selected row."""
        kind = kind or self.type_combo.currentText()
        item = self.tree.currentItem()
        row = self.tree.indexOfTopLevelItem(item) if item else -1
        index = row if row >= 0 else len(self.session.net.layers)
        cfg = dict(DEFAULTS[kind])
        try:
            layer = layer_from_config(cfg, index)
            configs = [l.config() for l in self.session.net.layers]
            configs.insert(index, cfg)
            check_size(self.session.net.input_shape, configs)
        except ValueError as exc:
            self._refuse(str(exc), None)
            return
        self._push(InsertLayerCommand(self.session, index, layer, self._after_command), index)

    def remove_selected(self) -> None:
        index = self.current_layer()
        if index is None:
            return
        self._push(RemoveLayerCommand(self.session, index, self._after_command),
                   min(index, len(self.session.net.layers) - 2))

    def move_layer(self, index: int, new_index: int) -> None:
        n = len(self.session.net.layers)
        if index == new_index or not (0 <= index < n and 0 <= new_index < n):
            return
        self._push(MoveLayerCommand(self.session, index, new_index, self._after_command),
                   new_index)

    def _move_selected(self, step: int) -> None:
        index = self.current_layer()
        if index is not None:
            self.move_layer(index, index + step)

    def _set_loss(self, name: str) -> None:
        if self._syncing or name == self.session.net.loss:
            return
        self._push(SetLossCommand(self.session, name, self._after_command), self.current_layer())

    def _set_input_shape(self, shape) -> None:
        try:
            check_size(shape, [l.config() for l in self.session.net.layers])
        except ValueError as exc:
            self.input_edit.revert()
            self._show_error(str(exc))
            return
        self._push(SetInputShapeCommand(self.session, shape, self._after_command),
                   self.current_layer())

    def _push(self, command, select: int | None) -> None:
        """Apply ``command`` once; on success put it on the stack (its first redo is a no-op)."""
        if self._known is not None and self._signature() != self._known:
            self.undo_stack.clear()
        try:
            command.apply()
        except ValueError as exc:
            self._refuse(str(exc), self.editor_box.index)
            return
        EditCommand.active += 1          # the stack's (skipped) first redo
        try:
            self.undo_stack.push(command)
        finally:
            EditCommand.active -= 1
        self._after_command(None, select)

    def _after_command(self, error: str | None, select: int | None) -> None:
        """Called after every apply / undo / redo: rows, selection, editor, error."""
        self._known = self._signature()
        self.refresh()
        if select is not None and 0 <= select < len(self.session.net.layers):
            self.select_layer(select)
            self.layerSelected.emit(select)    # the edit moved the user's selection
        if error:
            self._show_error(error)
        else:
            self.error_label.clear()

    def _refuse(self, message: str, index: int | None) -> None:
        """Show the message; put the editor back to the network's values."""
        self._show_error(message)
        self._syncing = True
        try:
            self.input_edit.setValue(tuple(self.session.net.input_shape))
            self.loss_combo.setCurrentText(self.session.net.loss)
        finally:
            self._syncing = False
        if index is not None and index == self.editor_box.index:
            self.editor_box.load(self.session.net.layers[index])

    def _show_error(self, message: str) -> None:
        self.error_label.show_error(message)

    def _show_field_error(self, message: str) -> None:
        index = self.editor_box.index
        where = self.session.net.layers[index].where() if index is not None else "layer"
        self._show_error(f"{where}: {message}")

    # ----- bookkeeping -----------------------------------------------------------------------
    @staticmethod
    def _in_command() -> bool:
        return EditCommand.active > 0

    def _signature(self):
        net = self.session.net
        return (id(net), tuple(net.input_shape), tuple(id(l) for l in net.layers), net.loss)
