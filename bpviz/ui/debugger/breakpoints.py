"""Breakpoints panel: add / remove / enable gradient breakpoints, and the log of hits.

The conditions live in ``bpviz.session.breakpoints`` (vanishing, exploding, first NaN/Inf,
dead ReLU); this view edits the panel's ``Monitor``, which puts the enabled ones into
``session.breakpoints`` (none = training keeps its fast path). Hits arrive two ways:

* continuous training (F5): ``train_step`` stops on a condition and raises ``BreakpointHit``;
  the condition tells the monitor, in the training thread, and the hit reaches this panel
  through a queued signal (the main window's run loop pauses on the exception);
* stepping (F10, F11, Shift+F11): after each action the panel checks every unit the cursor
  passed (the session's "phase" event, on the GUI thread) and reports what held.

A hit is added to the log, its layer is selected everywhere (``layerPicked``) and the reason
goes to the status bar (``message``; ``MainWindow.add_panel_dock`` connects both). Breakpoints are active session state: they are checked
while the dock is hidden too (that costs nothing when none is set).
"""
from __future__ import annotations

import math
import threading
import weakref

import shiboken6

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QGridLayout, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QPushButton, QSplitter,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from bpviz.session import breakpoints as bp
from bpviz.ui.panels.base import Panel

KIND_CHOICES = (                      # (label, kind, tensor)
    ("Vanishing ‖δ‖ below", "vanishing", "delta"),
    ("Vanishing ‖∂loss/∂W‖ below", "vanishing", "dW"),
    ("Exploding ‖δ‖ above", "exploding", "delta"),
    ("Exploding ‖∂loss/∂W‖ above", "exploding", "dW"),
    ("First NaN / Inf", "nonfinite", "delta"),
    ("Dead ReLU units above", "dead_relu", "delta"),
)
DEFAULT_TEXT = {"vanishing": "1e-6", "exploding": "1e3", "nonfinite": "", "dead_relu": "50 %"}
LOG_MAX = 500


def parse_threshold(kind: str, text: str) -> float | None:
    """The threshold typed for ``kind`` (a percentage or fraction for dead ReLU); raises
    ValueError with the rule broken."""
    if kind == "nonfinite":
        return None
    t = text.strip().replace("−", "-")
    percent = t.endswith("%")
    try:
        value = float(t.rstrip("%").strip())
    except ValueError:
        raise ValueError(f"threshold {text!r} is not a number") from None
    if kind == "dead_relu":
        if percent or value >= 1:
            value /= 100
        if not 0 <= value < 1:
            raise ValueError(f"threshold {text!r}: give a fraction of units, 0 … 99 %")
        return value
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"threshold {text!r} must be a finite number > 0")
    return value


class BreakpointsPanel(Panel):
    title = "Breakpoints"
    message = Signal(str)                 # a hit's reason, for the status bar
    _hitFromSession = Signal(object)      # queued: train_step stopped (any thread)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = None
        self.monitor = None
        self._check_pending = False
        self._build()
        self._hitFromSession.connect(self._on_session_hit, Qt.ConnectionType.QueuedConnection)
        self.set_session(session)

    # ----- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        self.kind_combo = QComboBox(objectName="breakpointKind")
        for label, kind, tensor in KIND_CHOICES:
            self.kind_combo.addItem(label, (kind, tensor))
        self.layer_combo = QComboBox(objectName="breakpointLayer")
        self.threshold_edit = QLineEdit(objectName="breakpointThreshold")
        self.threshold_edit.setPlaceholderText("threshold")
        self.threshold_edit.setMaximumWidth(110)
        self.add_button = QPushButton("Add", objectName="breakpointAdd")
        self.error_label = QLabel("", objectName="breakpointError")
        self.error_label.setStyleSheet("color: #c0392b;")
        self.error_label.setWordWrap(True)
        self.kind_combo.currentIndexChanged.connect(self._kind_changed)
        self.add_button.clicked.connect(self.add_from_editor)
        self.threshold_edit.returnPressed.connect(self.add_from_editor)

        form = QGridLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addWidget(QLabel("Stop when"), 0, 0)
        form.addWidget(self.kind_combo, 0, 1, 1, 2)
        form.addWidget(QLabel("in"), 1, 0)
        form.addWidget(self.layer_combo, 1, 1, 1, 2)
        form.addWidget(QLabel("threshold"), 2, 0)
        form.addWidget(self.threshold_edit, 2, 1)
        form.addWidget(self.add_button, 2, 2)
        form.setColumnStretch(1, 1)

        self.table = _table(("On", "Condition", "Layer", "Hits"), "breakpointTable")
        self.table.itemChanged.connect(self._item_changed)
        self.remove_button = QPushButton("Remove", objectName="breakpointRemove")
        self.remove_button.clicked.connect(self.remove_selected)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 4, 0)
        lv.addLayout(form)
        lv.addWidget(self.error_label)
        lv.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.remove_button)
        lv.addLayout(row)

        self.log = _table(("Step", "Phase", "Layer", "Reason"), "breakpointLog")
        self.log.setWordWrap(True)                 # reasons are long: two lines, not "…"
        self.log.itemSelectionChanged.connect(self._log_selected)
        self.clear_button = QPushButton("Clear log", objectName="breakpointClearLog")
        self.clear_button.clicked.connect(self.clear_log)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(4, 0, 0, 0)
        title = QLabel("Hits")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        rv.addWidget(title)
        rv.addWidget(self.log, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.clear_button)
        rv.addLayout(row)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([340, 560])
        split.setChildrenCollapsible(False)
        self.body.set_content(split)
        self.body.show_content()
        self._kind_changed()

    # ----- session -------------------------------------------------------------------------------
    def set_session(self, session) -> None:
        """Follow a new session; the breakpoints move to it (layers beyond its stack wait)."""
        if self.session is not None:
            self.session.events.unsubscribe(self._listener)
        self.session = session
        if self.monitor is None:
            self.monitor = bp.Monitor(session, _guarded(self, "_hitFromSession", "emit"))
            self._listener = _guarded(self, "_on_event")
        else:
            self.monitor.set_session(session)
        session.events.subscribe(self._listener)
        self._fill_layers()
        self._refresh_table()

    def close_session(self) -> None:
        """Let go of the session: its breakpoints from this panel are removed from it."""
        if self.session is not None:
            self.session.events.unsubscribe(self._listener)
            self.monitor.conditions.clear()
            self.monitor.sync()

    def _on_event(self, event) -> None:
        """Session events (any thread). Only the GUI thread checks and touches widgets; in the
        training thread the monitor just follows the cursor (train_step checks by itself)."""
        if threading.current_thread() is not threading.main_thread():
            if event.kind in ("phase", "step"):
                self.monitor.track()
            return
        if event.kind == "phase":
            if not self._check_pending:       # once the action is over (F10 = many units)
                self._check_pending = True
                QTimer.singleShot(0, self.check_now)
        elif event.kind in ("architecture", "file"):
            self.monitor.structure_changed()
            self._fill_layers()
            self._refresh_table()
        elif event.kind == "data":
            self.monitor.track()

    def check_now(self) -> list:
        """Check the units stepped since the last check; report and return the hits."""
        self._check_pending = False
        hits = self.monitor.after_action()
        self.report(hits)
        return hits

    # ----- editing -------------------------------------------------------------------------------
    def _fill_layers(self) -> None:
        current = self.layer_combo.currentData()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItem("all layers", None)
        for layer in self.session.net.layers:
            self.layer_combo.addItem(f"layer {layer.index} · {layer.describe()}", layer.index)
        i = self.layer_combo.findData(current)
        self.layer_combo.setCurrentIndex(max(i, 0))
        self.layer_combo.blockSignals(False)

    def _kind_changed(self) -> None:
        kind = self.kind_combo.currentData()[0]
        self.threshold_edit.setEnabled(kind != "nonfinite")
        self.threshold_edit.setText(DEFAULT_TEXT[kind])
        self.error_label.setText("")

    def add_from_editor(self) -> bp.Condition | None:
        kind, tensor = self.kind_combo.currentData()
        try:
            threshold = parse_threshold(kind, self.threshold_edit.text())
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return None
        self.error_label.setText("")
        return self.add_breakpoint(bp.Condition(kind, self.layer_combo.currentData(),
                                                threshold, tensor))

    def add_breakpoint(self, condition: bp.Condition) -> bp.Condition:
        self.monitor.add(condition)
        self._refresh_table()
        return condition

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        for r in rows:
            self.monitor.remove(self.monitor.conditions[r])
        self._refresh_table()

    def set_enabled(self, row: int, enabled: bool) -> None:
        self.monitor.set_enabled(self.monitor.conditions[row], enabled)
        self._refresh_table()

    def _item_changed(self, item) -> None:
        if item.column() == 0 and item.row() < len(self.monitor.conditions):
            cond = self.monitor.conditions[item.row()]
            on = item.checkState() == Qt.CheckState.Checked
            if on != cond.enabled:
                self.monitor.set_enabled(cond, on)
                self._update_header()

    def _refresh_table(self) -> None:
        n_layers = len(self.session.net.layers)
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.monitor.conditions))
        for r, c in enumerate(self.monitor.conditions):
            on = QTableWidgetItem()
            on.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled
                        | Qt.ItemFlag.ItemIsSelectable)
            on.setCheckState(Qt.CheckState.Checked if c.enabled else Qt.CheckState.Unchecked)
            self.table.setItem(r, 0, on)
            layer = c.layer_text()
            if c.layer is not None and c.layer >= n_layers:
                layer += " (not in the network)"
            elif c.layer is not None:
                layer += f" {self.session.net.layers[c.layer].kind}"
            for col, text in ((1, c.describe()), (2, layer), (3, str(c.hits))):
                self.table.setItem(r, col, _item(text))
        self.table.blockSignals(False)
        self._update_header()

    def _update_header(self) -> None:
        n = len(self.monitor.active())
        self._set_header(f"{n} breakpoint{'s' if n != 1 else ''} on · F5 runs one layer at a "
                         f"time and stops where one holds; F10/F11 report hits as they step"
                         if n else "No breakpoint on · F5 trains at full speed")

    # ----- hits ----------------------------------------------------------------------------------
    def _on_session_hit(self, hit) -> None:
        self.report([hit])

    def report(self, hits) -> None:
        """Log hits; select the first one's layer and send its reason to the status bar."""
        if not hits:
            return
        for hit in hits:
            self._log_row(hit)
        self._refresh_table()
        first = hits[0]
        more = f" (+{len(hits) - 1} more in the log)" if len(hits) > 1 else ""
        self.log.blockSignals(True)
        self.log.selectRow(self.log.rowCount() - len(hits))
        self.log.blockSignals(False)
        self.readout.setText(first.reason)
        self.layerPicked.emit(first.layer)
        self.message.emit(f"Breakpoint: {first.reason}{more}")

    def _log_row(self, hit) -> None:
        if self.log.rowCount() >= LOG_MAX:
            self.log.removeRow(0)
        r = self.log.rowCount()
        self.log.insertRow(r)
        for col, text in enumerate((str(hit.step), hit.phase, str(hit.layer), hit.reason)):
            item = _item(text)
            item.setData(Qt.ItemDataRole.UserRole, hit.layer)
            item.setToolTip(hit.reason)
            self.log.setItem(r, col, item)
        self.log.resizeRowToContents(r)
        self.log.scrollToBottom()

    def _log_selected(self) -> None:
        items = self.log.selectedItems()
        if items:
            self.layerPicked.emit(int(items[0].data(Qt.ItemDataRole.UserRole)))

    def clear_log(self) -> None:
        self.log.setRowCount(0)
        self.monitor.hits.clear()

    def log_rows(self) -> list[tuple]:
        """(step, phase, layer, reason) of every logged hit (for tests)."""
        return [tuple(self.log.item(r, c).text() for c in range(4))
                for r in range(self.log.rowCount())]

    def _draw(self, snap) -> None:
        self._update_header()


def _guarded(panel, *path):
    """A callback into the panel that does nothing once the panel is gone (the session and
    its conditions may outlive the widget)."""
    ref = weakref.ref(panel)

    def call(*args):
        obj = ref()
        if obj is None or not shiboken6.isValid(obj):
            return None
        for name in path:
            obj = getattr(obj, name)
        return obj(*args)
    return call


def _item(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    return item


def _table(columns, name) -> QTableWidget:
    t = QTableWidget(0, len(columns), objectName=name)
    t.setHorizontalHeaderLabels(list(columns))
    t.verticalHeader().setVisible(False)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setWordWrap(False)
    t.verticalHeader().setDefaultSectionSize(t.fontMetrics().height() + 8)
    head = t.horizontalHeader()
    for i in range(len(columns) - 1):
        head.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
    head.setSectionResizeMode(len(columns) - 1, QHeaderView.ResizeMode.Stretch)
    return t


PANELS = [("breakpointsDock", "Breakpoints", BreakpointsPanel)]
