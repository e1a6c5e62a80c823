"""LayerEditor: the selected layer's settings, one page of field widgets per layer type.

The editor only shows values and reports what the user typed (``editRequested(field, value)``,
``fieldRejected(message)`` for text that does not parse); ``replace_field`` turns such an edit
into the replacement layer, validated by the core and the size limits, for the NetworkBuilder to
apply as an undo command.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel, QSpinBox,
                               QStackedWidget, QVBoxLayout, QWidget)

from bpviz.core import activations
from bpviz.core.layers import FIELDS, layer_from_config
from bpviz.core.layers.base import shape_text

from .fields import MessageLabel, ValueEdit, format_pair, guard_wheel, parse_pair
from .stack_limits import check_size

COUNT_FIELDS = ("units", "filters")
PAIR_FIELDS = ("kernel_size", "stride", "padding", "size")
MAX_COUNT = 100_000          # spin-box ceiling for units / filters


def replace_field(net, index: int, field: str, value):
    """Layer ``index`` of ``net`` with ``field`` set to ``value``, and the undo text.

    None when that is the layer already there (same value, or written differently as "3, 3");
    raises ValueError with the core's message when the core or the size limits refuse it."""
    layer = net.layers[index]
    cfg = layer.config()
    if cfg.get(field) == value:
        return None
    old = cfg.get(field)
    tied = field == "size" and cfg.get("stride") == cfg.get("size")
    cfg[field] = value
    if tied:
        cfg["stride"] = value        # a pool whose stride was its size keeps them tied
    new_layer = layer_from_config(cfg, index)
    if new_layer.config() == layer.config():
        return None
    configs = [l.config() for l in net.layers]
    configs[index] = cfg
    check_size(net.input_shape, configs)
    shown = format_pair if field in PAIR_FIELDS else (lambda v: v)
    return new_layer, f"layer {index} {layer.kind}: {field} {shown(old)} → {shown(value)}"


class LayerEditor(QGroupBox):
    """Field widgets of the layer shown (``index``), or a note for the input row / no selection."""

    editRequested = Signal(str, object)  # field, new value (not yet validated by the core)
    fieldRejected = Signal(str)          # a field's parse error; the old text is already back

    def __init__(self, parent=None):
        super().__init__("layer", parent)
        self.setObjectName("layerEditor")
        self.index: int | None = None    # layer shown; None: the input row or nothing
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
        box = QVBoxLayout(self)
        box.addWidget(self.pages)
        box.addWidget(self.layer_notes)
        guard_wheel(*(w for page in self.fields.values() for w in page.values()
                      if isinstance(w, (QSpinBox, QComboBox))))

    # ----- construction ----------------------------------------------------------------------
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
        request = lambda v, f=field: self.editRequested.emit(f, v)  # noqa: E731
        if field in COUNT_FIELDS:
            w = QSpinBox()
            w.setRange(0, MAX_COUNT)
            w.setKeyboardTracking(False)           # apply on Enter / arrows, not per key
            w.setToolTip(f"{field}: a whole number ≥ 1 (Enter applies)")
            w.valueChanged.connect(request)
        elif field == "activation":
            w = QComboBox()
            w.addItems(list(activations.NAMES))
            w.currentTextChanged.connect(request)
        elif field == "ceil_mode":
            w = QCheckBox("round the output size up")
            w.toggled.connect(lambda v, f=field: self.editRequested.emit(f, bool(v)))
        else:              # PAIR_FIELDS, and any field this UI does not know yet
            w = ValueEdit(lambda t, f=field: parse_pair(t, f), format_pair)
            if field in PAIR_FIELDS:
                w.setToolTip(f"{field}: one whole number, or 'h, w' (Enter applies)")
            w.committed.connect(request)
            w.rejected.connect(self.fieldRejected)
        return w

    # ----- showing a layer -------------------------------------------------------------------
    def show_layer(self, net, index: int | None, input_row: bool) -> None:
        """Show layer ``index`` of ``net``; None shows the input row's note or the hint."""
        # Text typed but not applied belongs to the layer being left: hiding its field must
        # not apply it to the next layer, so drop it quietly.
        leaving = self.pages.currentWidget().findChildren(ValueEdit) \
            if index != self.index else []
        for w in leaving:
            w.blockSignals(True)
            w.revert()
        try:
            self.index = index
            self._fill(net, index, input_row)
        finally:
            for w in leaving:
                w.blockSignals(False)

    def _fill(self, net, index: int | None, input_row: bool) -> None:
        notes = net.layers[index].notes if index is not None else []
        if notes:
            self.layer_notes.show_note("\n".join(f"⚠ {n}" for n in notes))
        else:
            self.layer_notes.clear()
        if index is None:
            self.setTitle("input" if input_row else "layer")
            self.placeholder.setText(
                f"The input: {shape_text(net.input_shape)} (edit the shape above). "
                f"Add inserts a layer at the top." if input_row else
                "Select a layer to edit its settings; Add inserts after the selection "
                "(at the end when nothing is selected).")
            self.pages.setCurrentWidget(self.placeholder)
            return
        layer = net.layers[index]
        self.setTitle(f"layer {index} · {layer.kind}")
        self.pages.setCurrentIndex(self._page_index[layer.kind])
        self.load(layer)

    def load(self, layer) -> None:
        """Show ``layer``'s current config in its page (no signals)."""
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
