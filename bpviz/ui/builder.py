"""NetworkBuilder: the layer list, its field editors, loss and input shape, all undoable.

Rows come from ``session.net`` (``describe()``, output shape, parameter count, notes); every
change goes through ``Session.edit`` inside a QUndoCommand (bpviz/ui/commands.py). The core
validates: a refused edit shows the core's message in the "builderError" label and changes
nothing (network, weights and the editor's value stay as they were).
"""
from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QIcon, QUndoStack
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QPushButton, QSizePolicy,
                               QSpinBox,
                               QStackedWidget, QStyle, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from bpviz.core import activations, losses
from bpviz.core.errors import LayerConfigError
from bpviz.core.layers import FIELDS, layer_from_config
from bpviz.core.layers.base import shape_text
from bpviz.core.network import infer_shapes

from .commands import (EditCommand, InsertLayerCommand, MoveLayerCommand, RemoveLayerCommand,
                       ReplaceLayerCommand, SetInputShapeCommand, SetLossCommand)
from .fields import (MessageLabel, ValueEdit, format_pair, format_shape, guard_wheel, parse_pair,
                     parse_shape)

DEFAULTS = {
    "Dense": {"type": "Dense", "units": 16, "activation": "relu"},
    "Conv2D": {"type": "Conv2D", "filters": 4, "kernel_size": 3, "stride": 1, "padding": 1,
               "activation": "relu"},
    "MaxPool2D": {"type": "MaxPool2D", "size": 2, "stride": 2},
    "AvgPool2D": {"type": "AvgPool2D", "size": 2, "stride": 2},
    "Flatten": {"type": "Flatten"},
}
COUNT_FIELDS = ("units", "filters")
PAIR_FIELDS = ("kernel_size", "stride", "padding", "size")
MAX_COUNT = 100_000          # spin-box ceiling for units / filters
MAX_PARAMS = 10_000_000      # refused before the core allocates anything
MAX_VALUES = 2_000_000       # values per sample in one layer's output
HIGHLIGHT = QColor(255, 213, 79)


def check_size(input_shape, layers) -> None:
    """Refuse stacks too big for an interactive tool (before any allocation).

    Raises the core's LayerConfigError for a stack that cannot be built at all."""
    shapes = infer_shapes(input_shape, layers)
    total, shape = 0, tuple(input_shape)
    for i, (layer, out) in enumerate(zip(layers, shapes)):
        cfg = layer if isinstance(layer, dict) else layer.config()
        if math.prod(out) > MAX_VALUES:
            raise LayerConfigError(
                f"layer {i} {cfg['type']}: output {shape_text(out)} would hold "
                f"{math.prod(out):,} values per sample; bpviz allows at most {MAX_VALUES:,}")
        if cfg["type"] == "Dense":
            total += cfg["units"] * (math.prod(shape) + 1)
        elif cfg["type"] == "Conv2D":
            k = cfg["kernel_size"]
            kh, kw = (k, k) if isinstance(k, int) else k
            total += cfg["filters"] * (shape[0] * kh * kw + 1)
        shape = out
    if total > MAX_PARAMS:
        raise LayerConfigError(f"network: {total:,} parameters; bpviz allows at most "
                               f"{MAX_PARAMS:,} (use fewer units/filters or pool first)")


class LayerTree(QTreeWidget):
    """Row 0 is the input; row r is layer r − 1. Drops and keys become requests."""

    moveRequested = Signal(int, int)     # layer index, new index (Network.move_layer)
    removeRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setColumnCount(4)
        self.setHeaderLabels(["#", "layer", "output", "params"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(False)        # a long description takes two lines
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setDragDropMode(QAbstractItemView.InternalMove)
        self.setDefaultDropAction(Qt.MoveAction)
        self.setTextElideMode(Qt.ElideNone)
        header = self.header()
        header.setStretchLastSection(False)
        for col, mode in enumerate((QHeaderView.ResizeToContents, QHeaderView.Stretch,
                                    QHeaderView.ResizeToContents, QHeaderView.ResizeToContents)):
            header.setSectionResizeMode(col, mode)
        self.headerItem().setTextAlignment(3, Qt.AlignRight | Qt.AlignVCenter)
        header.sectionResized.connect(self._section_resized)

    # Layer descriptions are wrapped by hand after a ", " when the column is too narrow
    # (QTreeView's own word wrap does not grow the row height): never elided or clipped.
    def set_layer_text(self, item: QTreeWidgetItem, text: str) -> None:
        item.setData(1, Qt.UserRole, text)
        self._refit(item, self.header().sectionSize(1))

    def layer_text(self, row: int) -> str:
        """The full, unwrapped text of column 1 of ``row``."""
        item = self.topLevelItem(row)
        return item.data(1, Qt.UserRole) or item.text(1)

    def refit(self) -> None:
        """Re-wrap every row (after a font change such as the bold highlight)."""
        for row in range(self.topLevelItemCount()):
            self._refit(self.topLevelItem(row), self.header().sectionSize(1))

    def _refit(self, item: QTreeWidgetItem, width: int) -> None:
        full = item.data(1, Qt.UserRole)
        if not full:
            return
        fm = QFontMetrics(item.font(1))
        icon_w = self.style().pixelMetric(QStyle.PM_SmallIconSize) + 4 \
            if not item.icon(1).isNull() else 0
        room = max(width - 14 - icon_w, 60)
        text = full
        if fm.horizontalAdvance(full) > room:
            cuts = [i for i in range(len(full)) if full.startswith(", ", i)
                    and fm.horizontalAdvance(full[:i + 1]) <= room]
            if cuts:
                text = full[:cuts[-1] + 1] + "\n    " + full[cuts[-1] + 2:]
        if text != item.text(1):
            item.setText(1, text)

    def _section_resized(self, column: int, old: int, new: int):
        if column == 1:                 # the header reports the new width before it applies
            for row in range(self.topLevelItemCount()):
                self._refit(self.topLevelItem(row), new)

    def drop_destination(self, pos) -> int:
        """Insertion row (0 … rowCount) for a drop at viewport position ``pos``."""
        item = self.itemAt(pos)
        if item is None:
            return self.topLevelItemCount()
        row = self.indexOfTopLevelItem(item)
        return row if pos.y() < self.visualItemRect(item).center().y() else row + 1

    def dropEvent(self, event):
        source = self.indexOfTopLevelItem(self.currentItem()) if self.currentItem() else -1
        if event.source() not in (self, None) or source < 1:
            event.ignore()
            return
        i = source - 1
        p = max(self.drop_destination(event.position().toPoint()) - 1, 0)
        j = min(p if p <= i else p - 1, self.topLevelItemCount() - 2)
        event.setDropAction(Qt.IgnoreAction)       # we move through the session, not Qt
        event.accept()
        self.stopAutoScroll()
        self.setState(QAbstractItemView.NoState)
        self.viewport().update()
        if j != i:
            self.moveRequested.emit(i, j)

    def keyPressEvent(self, event):
        row = self.indexOfTopLevelItem(self.currentItem()) if self.currentItem() else -1
        if event.key() in (Qt.Key_Delete, Qt.Key_Backspace) and row >= 1:
            self.removeRequested.emit()
            return
        if event.modifiers() & Qt.AltModifier and event.key() in (Qt.Key_Up, Qt.Key_Down):
            step = -1 if event.key() == Qt.Key_Up else 1
            if row >= 1 and 1 <= row + step < self.topLevelItemCount():
                self.moveRequested.emit(row - 1, row - 1 + step)
            return
        super().keyPressEvent(event)


class NetworkBuilder(QWidget):
    """Layer list + field editors + loss + input shape; every edit is an undo command."""

    layerSelected = Signal(int)

    def __init__(self, session, undo_stack: QUndoStack, parent=None):
        super().__init__(parent)
        self.session, self.undo_stack = session, undo_stack
        self._syncing = False            # True while the code (not the user) sets widgets
        self._highlight: int | None = None
        self._editing: int | None = None  # layer shown in the editor
        self._known = None               # network signature after our last command
        self._build_ui()
        self.refresh()
        self._known = self._signature()

    # ----- construction ----------------------------------------------------------------------
    def _build_ui(self) -> None:
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

        self.tree = LayerTree()
        self.tree.setObjectName("layerList")
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.moveRequested.connect(self.move_layer)
        self.tree.removeRequested.connect(self.remove_selected)
        self.total_label = QLabel()
        self.total_label.setObjectName("builderTotal")
        self.note_label = MessageLabel("builderNote")

        self.type_combo = QComboBox()
        self.type_combo.setObjectName("layerTypeCombo")
        self.type_combo.addItems(list(DEFAULTS))
        self.type_combo.setToolTip("Type of layer to add after the selected row")
        self.add_button = QPushButton("Add")
        self.add_button.setObjectName("addLayerButton")
        self.add_button.setToolTip("Insert a layer of this type after the selected row")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("removeLayerButton")
        self.remove_button.setToolTip("Remove the selected layer (Delete)")
        self.up_button = QPushButton("▲")
        self.up_button.setObjectName("moveUpButton")
        self.up_button.setToolTip("Move the selected layer up (Alt+Up; or drag the row)")
        self.down_button = QPushButton("▼")
        self.down_button.setObjectName("moveDownButton")
        self.down_button.setToolTip("Move the selected layer down (Alt+Down; or drag the row)")
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

        self.editor_box = QGroupBox("layer")
        self.editor_box.setObjectName("layerEditor")
        self.pages = QStackedWidget()
        self.fields: dict[str, dict[str, QWidget]] = {}
        self._page_index: dict[str, int] = {}
        self.placeholder = QLabel()
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.pages.addWidget(self.placeholder)
        for kind in FIELDS:
            self._page_index[kind] = self.pages.addWidget(self._make_page(kind))
        self.layer_notes = MessageLabel("layerNotes")
        box = QVBoxLayout(self.editor_box)
        box.addWidget(self.pages)
        box.addWidget(self.layer_notes)
        guard_wheel(self.loss_combo, self.type_combo,
                    *(w for page in self.fields.values() for w in page.values()
                      if isinstance(w, (QSpinBox, QComboBox))))
        self.error_label = MessageLabel("builderError")

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.total_label)
        layout.addWidget(self.note_label)
        layout.addLayout(buttons)
        layout.addWidget(self.editor_box)
        layout.addWidget(self.error_label)

    def _make_page(self, kind: str) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        widgets = self.fields.setdefault(kind, {})
        if not FIELDS[kind]:
            text = QLabel("No settings: Flatten turns each C×H×W sample into one vector of "
                          "C·H·W values.")
            text.setWordWrap(True)
            form.addRow(text)
        for field in FIELDS[kind]:
            w = self._make_field(field)
            w.setObjectName(f"{kind}_{field}")
            widgets[field] = w
            form.addRow(field, w)
        return page

    def _make_field(self, field: str) -> QWidget:
        if field in COUNT_FIELDS:
            w = QSpinBox()
            w.setRange(0, MAX_COUNT)
            w.setKeyboardTracking(False)           # apply on Enter / arrows, not per key
            w.setToolTip(f"{field}: a whole number ≥ 1 (Enter applies)")
            w.valueChanged.connect(lambda v, f=field: self._commit(f, v))
        elif field in PAIR_FIELDS:
            w = ValueEdit(lambda t, f=field: parse_pair(t, f), format_pair)
            w.setToolTip(f"{field}: one whole number, or 'h, w' (Enter applies)")
            w.committed.connect(lambda v, f=field: self._commit(f, v))
            w.rejected.connect(self._show_field_error)
        elif field == "activation":
            w = QComboBox()
            w.addItems(list(activations.NAMES))
            w.currentTextChanged.connect(lambda v, f=field: self._commit(f, v))
        elif field == "ceil_mode":
            w = QCheckBox("round the output size up")
            w.toggled.connect(lambda v, f=field: self._commit(f, bool(v)))
        else:                                       # a field this UI does not know yet
            w = ValueEdit(lambda t, f=field: parse_pair(t, f), format_pair)
            w.committed.connect(lambda v, f=field: self._commit(f, v))
            w.rejected.connect(self._show_field_error)
        return w

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
        if index == self._highlight:
            return
        self._highlight = index
        self._paint_highlight()

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
            self._fill_rows(net)
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
        self._paint_highlight()
        self._show_editor()

    # ----- rows ------------------------------------------------------------------------------
    def _fill_rows(self, net) -> None:
        tree, rows = self.tree, len(net.layers) + 1
        while tree.topLevelItemCount() > rows:
            tree.takeTopLevelItem(tree.topLevelItemCount() - 1)
        while tree.topLevelItemCount() < rows:
            item = QTreeWidgetItem()
            item.setTextAlignment(3, Qt.AlignRight | Qt.AlignVCenter)
            item.setTextAlignment(2, Qt.AlignRight | Qt.AlignVCenter)
            tree.addTopLevelItem(item)
        warn = self.style().standardIcon(QStyle.SP_MessageBoxWarning)
        head = tree.topLevelItem(0)
        head.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
        for col, text in enumerate(("", "input", shape_text(net.input_shape), "")):
            head.setText(col, text)
        head.setToolTip(1, "The network's input; new layers go after the selected row")
        for i, layer in enumerate(net.layers):
            item = tree.topLevelItem(i + 1)
            item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
            item.setIcon(1, warn if layer.notes else QIcon())
            item.setText(0, str(i))
            tree.set_layer_text(item, layer.describe())
            item.setText(2, shape_text(layer.output_shape))
            item.setText(3, f"{layer.param_count():,}")
            tip = f"layer {i}: {layer.describe()} → {shape_text(layer.output_shape)}, " \
                  f"{layer.param_count():,} parameters"
            if layer.notes:
                tip += "\n" + "\n".join(f"note: {n}" for n in layer.notes)
            for col in range(4):
                item.setToolTip(col, tip)

    def _paint_highlight(self) -> None:
        for row in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(row)
            on = self._highlight is not None and row == self._highlight + 1
            for col in range(4):
                font = item.font(col)
                font.setBold(on)
                item.setFont(col, font)
                item.setBackground(col, QBrush(HIGHLIGHT) if on else QBrush())
                item.setForeground(col, QBrush(QColor("black")) if on else QBrush())
        self.tree.refit()

    def _data_note(self) -> None:
        want, have = self.session.net.input_shape, self.session.dataset.input_shape
        if tuple(want) != tuple(have):
            self.note_label.show_note(
                f"dataset {self.session.dataset.name!r} gives {shape_text(have)} inputs but the "
                f"network expects {shape_text(want)}: load matching data before stepping")
        else:
            self.note_label.clear()

    # ----- selection and the editor ----------------------------------------------------------
    def _current_changed(self, current, previous) -> None:
        if self._syncing:
            return
        self.error_label.clear()                 # the message was about another row
        self._show_editor()
        index = self.current_layer()
        if index is not None:
            self.layerSelected.emit(index)

    def _show_editor(self) -> None:
        index = self.current_layer()
        # Text typed but not applied belongs to the layer being left: hiding its field must
        # not apply it to the next layer, so drop it quietly.
        leaving = self.pages.currentWidget().findChildren(ValueEdit) \
            if index != self._editing else []
        for w in leaving:
            w.blockSignals(True)
            w.revert()
        try:
            self._editing = index
            self._fill_editor(index)
        finally:
            for w in leaving:
                w.blockSignals(False)

    def _fill_editor(self, index: int | None) -> None:
        net = self.session.net
        input_row = self.tree.currentItem() is not None and index is None
        self.remove_button.setEnabled(index is not None and len(net.layers) > 1)
        self.up_button.setEnabled(index is not None and index > 0)
        self.down_button.setEnabled(index is not None and index < len(net.layers) - 1)
        notes = net.layers[index].notes if index is not None else []
        if notes:
            self.layer_notes.show_note("\n".join(f"⚠ {n}" for n in notes))
        else:
            self.layer_notes.clear()
        if index is None:
            self.editor_box.setTitle("input" if input_row else "layer")
            self.placeholder.setText(
                f"The input: {shape_text(net.input_shape)} (edit the shape above). "
                f"Add inserts a layer at the top." if input_row else
                "Select a layer to edit its settings; Add inserts after the selection "
                "(at the end when nothing is selected).")
            self.pages.setCurrentWidget(self.placeholder)
            return
        layer = net.layers[index]
        self.editor_box.setTitle(f"layer {index} · {layer.kind}")
        self.pages.setCurrentIndex(self._page_index[layer.kind])
        self._load_fields(index)

    def _load_fields(self, index: int) -> None:
        """Show the layer's current config in its page (no signals)."""
        layer = self.session.net.layers[index]
        cfg = layer.config()
        for field, w in self.fields.get(layer.kind, {}).items():
            value = cfg.get(field, getattr(layer, field, None))
            w.blockSignals(True)
            try:
                if isinstance(w, QSpinBox):
                    w.setValue(int(value))
                elif isinstance(w, ValueEdit):
                    w.setValue(value if value is not None else 0)
                elif isinstance(w, QComboBox):
                    w.setCurrentText(str(value))
                elif isinstance(w, QCheckBox):
                    w.setChecked(bool(value))
            finally:
                w.blockSignals(False)

    # ----- edits -----------------------------------------------------------------------------
    def _commit(self, field: str, value) -> None:
        index = self._editing
        if self._syncing or index is None or index >= len(self.session.net.layers):
            return
        layer = self.session.net.layers[index]
        cfg = layer.config()
        if cfg.get(field) == value:
            return
        tied = field == "size" and cfg.get("stride") == cfg.get("size")
        cfg[field] = value
        if tied:
            cfg["stride"] = value        # a pool whose stride was its size keeps them tied
        old = format_pair(layer.config().get(field)) if field in PAIR_FIELDS else \
            layer.config().get(field)
        new = format_pair(value) if field in PAIR_FIELDS else value
        try:
            new_layer = layer_from_config(cfg, index)
            if new_layer.config() == layer.config():
                self._load_fields(index)     # same layer written differently ("3, 3")
                return
            configs = [l.config() for l in self.session.net.layers]
            configs[index] = cfg
            check_size(self.session.net.input_shape, configs)
        except ValueError as exc:
            self._refuse(str(exc), index)
            return
        self._push(ReplaceLayerCommand(self.session, index, new_layer,
                                       f"layer {index} {layer.kind}: {field} {old} → {new}",
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
            self._refuse(str(exc), self._editing)
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
        if index is not None and index == self._editing:
            self._load_fields(index)

    def _show_error(self, message: str) -> None:
        self.error_label.show_error(message)

    def _show_field_error(self, message: str) -> None:
        index = self._editing
        where = self.session.net.layers[index].where() if index is not None else "layer"
        self._show_error(f"{where}: {message}")

    # ----- bookkeeping -----------------------------------------------------------------------
    @staticmethod
    def _in_command() -> bool:
        return EditCommand.active > 0

    def _signature(self):
        net = self.session.net
        return (id(net), tuple(net.input_shape), tuple(id(l) for l in net.layers), net.loss)
