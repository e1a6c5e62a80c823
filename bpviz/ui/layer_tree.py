"""LayerTree: the builder's layer list (one row per layer, the input first).

The rows show ``describe()``, output shape and parameter count of each layer, wrapped by hand to
the column width; the layer being computed is painted bold on amber. Drags and keys do not edit
anything: they become ``moveRequested`` / ``removeRequested`` for the NetworkBuilder to apply.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QIcon
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStyle, QTreeWidget, QTreeWidgetItem

from bpviz.core.layers.base import shape_text

HIGHLIGHT = QColor(255, 213, 79)


class LayerTree(QTreeWidget):
    """Row 0 is the input; row r is layer r − 1. Drops and keys become requests."""

    moveRequested = Signal(int, int)     # layer index, new index (Network.move_layer)
    removeRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._highlight: int | None = None
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

    # ----- rows ------------------------------------------------------------------------------
    def show_network(self, net) -> None:
        """One row for the input and one per layer of ``net`` (rows are reused)."""
        rows = len(net.layers) + 1
        while self.topLevelItemCount() > rows:
            self.takeTopLevelItem(self.topLevelItemCount() - 1)
        while self.topLevelItemCount() < rows:
            item = QTreeWidgetItem()
            item.setTextAlignment(3, Qt.AlignRight | Qt.AlignVCenter)
            item.setTextAlignment(2, Qt.AlignRight | Qt.AlignVCenter)
            self.addTopLevelItem(item)
        head = self.topLevelItem(0)
        head.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
        for col, text in enumerate(("", "input", shape_text(net.input_shape), "")):
            head.setText(col, text)
        head.setToolTip(1, "The network's input; new layers go after the selected row")
        warn = self.style().standardIcon(QStyle.SP_MessageBoxWarning)
        for i, layer in enumerate(net.layers):
            self._show_layer(self.topLevelItem(i + 1), i, layer, warn)
        self._paint_highlight()

    def _show_layer(self, item: QTreeWidgetItem, i: int, layer, warn: QIcon) -> None:
        item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
        item.setIcon(1, warn if layer.notes else QIcon())
        item.setText(0, str(i))
        self.set_layer_text(item, layer.describe())
        item.setText(2, shape_text(layer.output_shape))
        item.setText(3, f"{layer.param_count():,}")
        tip = f"layer {i}: {layer.describe()} → {shape_text(layer.output_shape)}, " \
              f"{layer.param_count():,} parameters"
        if layer.notes:
            tip += "\n" + "\n".join(f"note: {n}" for n in layer.notes)
        for col in range(4):
            item.setToolTip(col, tip)

    def highlight(self, index: int | None) -> None:
        """Mark layer ``index`` (bold, amber row); None clears the mark."""
        if index == self._highlight:
            return
        self._highlight = index
        self._paint_highlight()

    def _paint_highlight(self) -> None:
        for row in range(self.topLevelItemCount()):
            item = self.topLevelItem(row)
            on = self._highlight is not None and row == self._highlight + 1
            for col in range(4):
                font = item.font(col)
                font.setBold(on)
                item.setFont(col, font)
                item.setBackground(col, QBrush(HIGHLIGHT) if on else QBrush())
                item.setForeground(col, QBrush(QColor("black")) if on else QBrush())
        self.refit()

    # ----- text fitting ----------------------------------------------------------------------
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

    # ----- drag and drop, keys ----------------------------------------------------------------
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
