"""TrainingPanel: learning rate, mode, batch size, momentum, L2 and clipping.

Each field applies on Enter / focus-out through ``Session.set_training``. Text that does not
parse (fields.py) or a value the core refuses (lr ≤ 0, momentum outside [0, 1), L2 < 0,
clip ≤ 0, batch size < 1) shows the message in the "trainingError" label, and the field shows
the old value again. The loss reduction (mean/sum) is a network property, shown read-only.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QLabel, QSpinBox,
                               QVBoxLayout, QWidget)

from bpviz.core.train import MODES

from .fields import MessageLabel, ValueEdit, format_number, guard_wheel, parse_number

NUMBER_FIELDS = {                      # setting → (label, tooltip)
    "lr": ("learning rate", "η: step size of every update, a finite number > 0"),
    "momentum": ("momentum", "μ in [0, 1): v ← μ·v + ΔW (0 = plain SGD)"),
    "l2": ("L2", "λ ≥ 0: weight decay λ·W added to the gradient of weights (not biases)"),
}
CLIP_FIELDS = {                        # setting → (checkbox text, default value, tooltip)
    "clip_value": ("clip by value", 1.0, "clip every gradient element to [−c, c] (c > 0)"),
    "clip_norm": ("clip by norm", 5.0, "scale all gradients down when their global norm "
                                       "exceeds c (c > 0)"),
}
MAX_BATCH = 1_000_000


class TrainingPanel(QWidget):
    """Optimiser and batching settings, validated by the core."""

    settingsApplied = Signal(dict)      # session.training_settings() after a successful change

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._syncing = False
        self.edits: dict[str, ValueEdit] = {}
        self.checks: dict[str, QCheckBox] = {}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        for key, (label, tip) in NUMBER_FIELDS.items():
            edit = self._edit(key, label, tip)
            edit.committed.connect(lambda v, k=key: self.apply(**{k: v}))
            form.addRow(label, edit)
        self.mode_combo = QComboBox()
        self.mode_combo.setObjectName("modeCombo")
        self.mode_combo.addItems(list(MODES))
        self.mode_combo.setToolTip("sample: one sample per step · mini-batch: batch size "
                                   "samples · full-batch: the whole dataset")
        self.mode_combo.currentTextChanged.connect(self._mode_changed)
        form.addRow("mode", self.mode_combo)
        self.batch_spin = QSpinBox()
        self.batch_spin.setObjectName("batchSizeSpin")
        self.batch_spin.setRange(0, MAX_BATCH)
        self.batch_spin.setKeyboardTracking(False)
        self.batch_spin.setToolTip("samples per mini-batch, a whole number ≥ 1")
        self.batch_spin.valueChanged.connect(self._batch_changed)
        form.addRow("batch size", self.batch_spin)
        for key, (label, default, tip) in CLIP_FIELDS.items():
            check = QCheckBox(label)
            check.setObjectName(f"{key}_check")
            check.setToolTip(tip)
            self.checks[key] = check
            edit = self._edit(key, label, tip)
            edit.setValue(default)
            edit.committed.connect(lambda v, k=key: self._clip_committed(k, v))
            check.toggled.connect(lambda on, k=key: self._clip_toggled(k, on))
            form.addRow(check, edit)
        self.reduction_label = QLabel()
        self.reduction_label.setObjectName("reductionLabel")
        self.reduction_label.setToolTip("How the loss combines a batch: set with the network "
                                        "(mean = average of the per-sample gradients, "
                                        "sum = their sum)")
        form.addRow("reduction", self.reduction_label)
        self.batch_note = QLabel()
        self.batch_note.setObjectName("batchNote")
        self.batch_note.setWordWrap(True)
        self.error_label = MessageLabel("trainingError")
        guard_wheel(self.mode_combo, self.batch_spin)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.batch_note)
        layout.addWidget(self.error_label)
        layout.addStretch(1)
        self.refresh()

    def _edit(self, key: str, label: str, tip: str) -> ValueEdit:
        edit = ValueEdit(lambda t, name=label: parse_number(t, name), format_number)
        edit.setObjectName(f"{key}_edit")
        edit.setToolTip(tip)
        edit.rejected.connect(self._show_error)
        self.edits[key] = edit
        return edit

    # ----- public API ------------------------------------------------------------------------
    def apply(self, **settings) -> bool:
        """``session.set_training(**settings)``; False (message shown, fields restored) if
        refused."""
        try:
            self.session.set_training(**settings)
        except ValueError as exc:
            self._show_error(str(exc))
            self.refresh(keep_error=True)
            return False
        self.error_label.clear()
        self.refresh()
        self.settingsApplied.emit(self.session.training_settings())
        return True

    def refresh(self, keep_error: bool = False) -> None:
        """Show ``session.training_settings()`` and the network's reduction."""
        t = self.session.training_settings()
        self._syncing = True
        try:
            for key in NUMBER_FIELDS:
                self.edits[key].setValue(t[key])
            for key in CLIP_FIELDS:
                on = t[key] is not None
                self.checks[key].setChecked(on)
                if on:
                    self.edits[key].setValue(t[key])
                else:
                    self.edits[key].revert()
                self.edits[key].setEnabled(on)
            self.mode_combo.setCurrentText(t["mode"])
            self.batch_spin.setValue(int(t["batch_size"]))
            self.batch_spin.setEnabled(t["mode"] == "mini-batch")
        finally:
            self._syncing = False
        self.reduction_label.setText(f"{self.session.net.reduction} over the batch")
        n = len(self.session.dataset)
        per_step = {"sample": 1, "full-batch": n}.get(t["mode"], min(t["batch_size"], n))
        note = f"{per_step} of {n} samples per step"
        if per_step > 1:        # see Session._next_batch
            note += ("; stepped by hand, each batch includes the selected sample and the "
                     "panels show it (while running: each batch's first sample)")
        self.batch_note.setText(note)
        if not keep_error:
            self.error_label.clear()

    # ----- slots -----------------------------------------------------------------------------
    def _show_error(self, message: str) -> None:
        self.error_label.show_error(message)

    def _mode_changed(self, mode: str) -> None:
        if not self._syncing:
            self.apply(mode=mode)

    def _batch_changed(self, size: int) -> None:
        if not self._syncing:
            self.apply(batch_size=size)

    def _clip_committed(self, key: str, value: float) -> None:
        if self.checks[key].isChecked():
            self.apply(**{key: value})
        else:
            self.edits[key].setValue(value)   # remembered for when clipping is switched on

    def _clip_toggled(self, key: str, on: bool) -> None:
        if self._syncing:
            return
        self.apply(**{key: self.edits[key].value() if on else None})
