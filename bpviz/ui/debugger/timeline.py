"""Timeline panel: record every step and phase, scrub back through them, compare two records,
restore a past step's weights. The recording lives in ``bpviz.session.recorder.Recorder``.

Controls: "Record" (off by default — recording costs memory and time only when on), the
memory budget in MB (oldest records are evicted first), the slider and a track of the records
(one dot per record on a forward / backward / update lane; click to jump), "Live".

Scrubbing emits ``snapshotChosen(snapshot)`` with the recorded ``Snapshot`` so that every
panel shows that moment; "Live" emits ``snapshotChosen(None)`` (back to the present). Any live
snapshot painted into this panel (the session stepped) also ends the visit to the past.

Compare: records A and B (spin boxes, or "A = here" / "B = here"); three difference maps
B − A of the selected layer's W, δ and a (diverging map centred on 0, symmetric limits).
"Restore…" rewinds the session to the start of the shown record's step (see the recorder).
"""
from __future__ import annotations

import bisect

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel,
                               QLayout, QMessageBox, QPushButton, QSizePolicy, QSlider,
                               QSpinBox, QVBoxLayout, QWidget)

from bpviz.session.recorder import DEFAULT_BUDGET, MB, Recorder
from bpviz.ui.panels import colors
from bpviz.ui.panels.base import Panel, fmt, layer_name, norm
from bpviz.ui.panels.mapview import MosaicView
from bpviz.ui.panels.mosaic import as_tiles, grid_layout, index_ticks, matrix_layout, unit_ticks

HINT = ("Tick “Record”, then step (F10 a whole step, F11 one layer) or run (F5).\n"
        "Every phase is kept; drag the slider to travel back, every panel follows.")
LANES = {"forward": 0, "backward": 1, "update": 2, "idle": 2}
MAX_DOTS = 400                          # per lane on the track
LANE_COLORS = {0: (59, 117, 175), 1: (230, 134, 42), 2: (40, 140, 80)}
TENSORS = (("W", "ΔW = W(B) − W(A)"), ("delta", "Δδ = δ(B) − δ(A)"), ("a", "Δa = a(B) − a(A)"))


class Track(pg.PlotWidget):
    """One dot per record on three lanes; a cursor line and the A / B markers."""

    clickedAt = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFixedHeight(92)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setYRange(-0.6, 2.6, padding=0)
        self.getAxis("left").setTicks([[(0, "forward"), (1, "backward"), (2, "update")]])
        self.getAxis("bottom").setLabel("step")
        self.dots = [pg.ScatterPlotItem(size=7, pen=None, brush=pg.mkBrush(*LANE_COLORS[k]))
                     for k in range(3)]              # one item per lane: one brush, fast
        for item in self.dots:
            self.addItem(item)
        self.cursor = pg.InfiniteLine(0, pen=pg.mkPen((230, 170, 0), width=3))
        self.marks = {k: pg.InfiniteLine(0, pen=pg.mkPen(c, width=1.5, style=Qt.PenStyle.DashLine),
                                         label=k, labelOpts={"position": 0.88, "color": c})
                      for k, c in (("A", (120, 60, 160)), ("B", (200, 50, 120)))}
        for item in (self.cursor, *self.marks.values()):
            self.addItem(item)
        self.scene().sigMouseClicked.connect(self._clicked)
        self._key = None
        self.apply_theme()

    def apply_theme(self) -> None:
        bg, fg, _ = colors.theme(self.palette())
        self.setBackground(bg)
        colors.style_plot(self.getPlotItem(), fg)

    def changeEvent(self, event) -> None:
        if hasattr(self, "dots") and event.type() in (QEvent.Type.PaletteChange,
                                                      QEvent.Type.ApplicationPaletteChange):
            self.apply_theme()
        super().changeEvent(event)

    def set_records(self, records) -> None:
        key = (len(records), records[0].seq if records else None,
               records[-1].seq if records else None)
        if key == self._key:
            return
        self._key = key
        lanes = np.array([LANES.get(r.phase, 2) for r in records], dtype=float)
        x = np.arange(len(records), dtype=float)
        for k, item in enumerate(self.dots):
            xs = x[lanes == k]
            if len(xs) > MAX_DOTS:                  # an overview: thin evenly
                xs = xs[np.linspace(0, len(xs) - 1, MAX_DOTS).astype(int)]
            item.setData(x=xs, y=np.full(len(xs), float(k)))
        firsts = [(i, r.step) for i, r in enumerate(records) if i == 0
                  or r.step != records[i - 1].step]
        every = max(1, len(firsts) // 10)
        self.getAxis("bottom").setTicks([[(i, str(s)) for i, s in firsts[::every]]])
        self.setXRange(-0.8, max(len(records) - 0.2, 4), padding=0)

    def set_marks(self, position: int, a: int | None, b: int | None) -> None:
        self.cursor.setValue(position)
        for name, value in (("A", a), ("B", b)):
            self.marks[name].setVisible(value is not None)
            if value is not None:
                self.marks[name].setValue(value)

    def _clicked(self, event) -> None:
        vb = self.getViewBox()
        if vb.sceneBoundingRect().contains(event.scenePos()):
            self.clickedAt.emit(int(round(vb.mapSceneToView(event.scenePos()).x())))


class TimelinePanel(Panel):
    title = "Timeline"
    snapshotChosen = Signal(object)       # a recorded Snapshot, or None: back to the present
    message = Signal(str)                 # for the status bar (after a restore)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.recorder = Recorder(session, DEFAULT_BUDGET)
        self.position: int | None = None    # record shown; None = live
        self._chosen = None                 # the snapshot last emitted
        self._ab = [None, None]             # record seq of A and B
        self._stale = True
        self._build()
        self.body.show_hint(HINT)
        self._sync()

    # ----- widgets ---------------------------------------------------------------------------
    def _build(self) -> None:
        top = self._build_controls()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("timelineSlider")
        self.slider.setPageStep(1)
        self.where = _label()
        self.track = Track()
        ab = self._build_compare()
        self.ab_note = _label(wrap=True)
        self.views = {key: MosaicView(title) for key, title in TENSORS}
        maps = QGridLayout()
        maps.setContentsMargins(0, 0, 0, 0)
        for k, (key, _) in enumerate(TENSORS):
            maps.addWidget(self.views[key], 0, k)
            self.views[key].hovered.connect(self._set_hover)
        content = QWidget()
        col = QVBoxLayout(content)
        col.setContentsMargins(0, 0, 0, 0)
        for item in (self.slider, self.where, self.track, ab, self.ab_note, maps):
            (col.addLayout if isinstance(item, QLayout) else col.addWidget)(item)
        col.setStretch(col.count() - 1, 1)
        self.body.set_content(content)
        self.layout().insertWidget(1, top)
        self.slider.valueChanged.connect(self._slid)
        self.track.clickedAt.connect(self.slider.setValue)      # clamped to the records

    def _build_controls(self) -> QWidget:
        """Record, budget (MB), usage, Live."""
        self.record_box = QCheckBox("Record")
        self.record_box.setObjectName("timelineRecord")
        self.record_box.setToolTip("Keep every step and phase (memory and time only while on)")
        self.budget = QDoubleSpinBox()
        self.budget.setObjectName("timelineBudget")
        self.budget.setRange(0.1, 65536.0)
        self.budget.setDecimals(1)
        self.budget.setSuffix(" MB")
        self.budget.setValue(DEFAULT_BUDGET / MB)
        self.budget.setToolTip("Memory budget: when it is full the oldest records are evicted")
        self.usage = _label()
        self.live_button = QPushButton("● Live")
        self.live_button.setObjectName("timelineLive")
        self.live_button.setToolTip("Back to the present")
        top = QWidget()
        row = QHBoxLayout(top)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.record_box, QLabel("budget"), self.budget):
            row.addWidget(w)
        row.addWidget(self.usage, 1)
        row.addWidget(self.live_button)
        self.record_box.toggled.connect(self.set_recording)
        self.budget.valueChanged.connect(self._set_budget)
        self.live_button.clicked.connect(self.go_live)
        return top

    def _build_compare(self) -> QHBoxLayout:
        """A and B (spin boxes and "= here" buttons), Restore."""
        self.spin = {}
        ab = QHBoxLayout()
        ab.addWidget(QLabel("compare"))
        for name in ("A", "B"):
            spin = self.spin[name] = QSpinBox()
            spin.setObjectName(f"timeline{name}")
            spin.setPrefix(f"{name}: record ")
            here = QPushButton(f"{name} = here")
            here.setObjectName(f"timeline{name}Here")
            here.clicked.connect(lambda _=False, n=name: self.set_ab(n, self._shown_index()))
            spin.valueChanged.connect(lambda v, n=name: self.set_ab(n, v))
            ab.addWidget(spin)
            ab.addWidget(here)
        ab.addStretch(1)
        self.restore_button = QPushButton("Restore this step…")
        self.restore_button.setObjectName("timelineRestore")
        self.restore_button.setToolTip("Rewind the network to the start of the shown record's "
                                       "step; later records are dropped")
        self.restore_button.clicked.connect(self.restore_shown)
        ab.addWidget(self.restore_button)
        return ab

    # ----- recording -------------------------------------------------------------------------
    def set_recording(self, on: bool) -> None:
        if self.record_box.isChecked() != on:
            self.record_box.setChecked(on)          # comes back here through toggled
            return
        self.recorder.set_enabled(on, record_present=not self._training())
        self._sync()

    def _set_budget(self, mb: float) -> None:
        self.recorder.set_budget(int(mb * MB))
        self._sync()

    def _training(self) -> bool:
        trainer = getattr(self.window(), "trainer", None)
        return bool(getattr(trainer, "running", False))

    def _pause_training(self) -> None:
        if self._training():
            self.window().pause()

    # ----- travelling ------------------------------------------------------------------------
    def _shown_index(self) -> int:
        n = len(self.recorder)
        return n - 1 if self.position is None else min(self.position, n - 1)

    def _slid(self, value: int) -> None:
        if 0 <= value < len(self.recorder):
            self.show_record(value)

    def show_record(self, index: int) -> None:
        """Travel to record ``index``: every panel (through ``snapshotChosen``) shows it.
        Training pauses first (its frames would bring the present back at once)."""
        self._pause_training()
        self.position = index
        self._chosen = self.recorder.snapshot(index)
        self.last_snapshot = self._chosen
        self._sync()
        self.snapshotChosen.emit(self._chosen)

    def go_live(self) -> None:
        self.position, self._chosen = None, None
        self._sync()
        self.snapshotChosen.emit(None)

    def restore_shown(self) -> None:
        if self.position is None or not len(self.recorder):
            return
        index = self._shown_index()
        rec = self.recorder.record(index)
        why = self.recorder.restorable(index)
        if why:
            QMessageBox.information(self, "Cannot restore", f"Record {index}: {why}.")
            return
        answer = QMessageBox.question(
            self, "Restore a past step",
            f"Rewind the network to the start of step {rec.step}?\n\nIts weights, the batch "
            f"order and the step counter go back; momentum restarts from 0; the records after "
            f"this one are dropped. Stepping on replays the original run exactly.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._pause_training()
        self.recorder.restore(index)
        self.go_live()
        self.message.emit(f"Restored the start of step {rec.step}: stepping on replays the "
                          f"recorded run")

    def close_session(self) -> None:
        """The window is replacing the session: stop recording it and free the records."""
        self.recorder.close()

    def set_ab(self, name: str, index: int) -> None:
        records = self.recorder.records
        if not 0 <= index < len(records):
            return
        self._ab["AB".index(name)] = records[index].seq
        self._sync()

    # ----- the Panel contract ----------------------------------------------------------------
    def show_snapshot(self, snapshot) -> None:
        if snapshot is not self._chosen or snapshot is None:
            self.position, self._chosen = None, None        # the present was painted
        self.last_snapshot = snapshot
        self._stale = True
        if self.isVisible():
            self._sync()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._sync()

    def _redraw(self, texts: bool = True) -> None:
        self._sync()

    def _sync(self) -> None:
        """Bring slider, labels, track and difference maps up to date (visible only)."""
        rec = self.recorder
        records = rec.records
        n = len(records)
        self.usage.setText(f"{n} record{'s' * (n != 1)} · {rec.used_bytes / MB:.1f} of "
                           f"{rec.budget_bytes / MB:.1f} MB · {rec.evicted} evicted"
                           + (f" · {rec.too_large} too large" if rec.too_large else "")
                           if rec.enabled or n else "not recording")
        self.live_button.setEnabled(self.position is not None)
        self.restore_button.setEnabled(self.position is not None and n > 0)
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        if n == 0:
            self._ab = [None, None]                  # a new timeline: A first, B last
            self.body.show_hint(HINT if not rec.enabled else
                                "Recording — step (F10, F11) or run (F5) to add records")
            self._set_header("Timeline · live" if rec.enabled else "Timeline · not recording")
            self._displayed = {"records": 0}
            return
        self.body.show_content()
        pos = self._shown_index()
        if self.position is not None and self.position >= n:
            self.position = pos
        seqs = [r.seq for r in records]
        a, b = (self._index_of(seqs, s) for s in self._ab)
        a = 0 if a is None else a
        b = n - 1 if b is None else b
        for widget, value in ((self.spin["A"], a), (self.spin["B"], b), (self.slider, pos)):
            widget.blockSignals(True)                 # no feedback into set_ab / _slid
            widget.setRange(0, n - 1)
            widget.setValue(value)
            widget.blockSignals(False)
        shown = records[pos]
        loss = shown.snapshot.loss
        self.where.setText(f"record {pos} / {n - 1} · step {shown.step} · {shown.label}"
                           + ("" if loss is None else f" · loss {fmt(loss)}"))
        self._set_header("Timeline · live: the panels show the present" if self.position is None
                         else f"Timeline · the panels show record {pos} (step {shown.step}) "
                              f"— “Live” returns to the present")
        self.track.set_records(records)
        self.track.set_marks(pos, a, b)
        self._draw_diff(a, b)

    @staticmethod
    def _index_of(seqs, seq):
        if seq is None:
            return None
        i = bisect.bisect_left(seqs, seq)
        return i if i < len(seqs) and seqs[i] == seq else min(i, len(seqs) - 1)

    # ----- difference maps -------------------------------------------------------------------
    def _draw_diff(self, a: int, b: int) -> None:
        ra, rb = self.recorder.record(a), self.recorder.record(b)
        layers = rb.snapshot.layers
        index = min(self.layer_index, len(layers) - 1)
        layer = layers[index]
        diff = self.recorder.diff(a, b, index)
        self.ab_note.setText(
            f"B − A for {layer_name(layer)} ({layer.title}) · A = record {a}: {ra.label} · "
            f"B = record {b}: {rb.label}"
            + ("" if diff["sample_a"] == diff["sample_b"] else
               f" · δ and a: sample #{diff['sample_b']} (B) − sample #{diff['sample_a']} (A)"))
        shown = {"records": len(self.recorder), "position": self._shown_index(), "a": a, "b": b}
        for key, _title in TENSORS:
            view, data = self.views[key], diff[key]
            if data is None:
                view.clear(_missing(key, layer))
                continue
            self._show(view, layer, key, np.asarray(data))
            shown[f"diff_{key}"] = np.asarray(data)
            shown[f"mosaic_{key}"] = view.mosaic
            shown[f"levels_{key}"] = np.array(view.levels)
        self._displayed = shown

    def _show(self, view, layer, key, data) -> None:
        name = {"W": "ΔW", "delta": "Δδ", "a": "Δa"}[key]
        tiles, layout, ticks, where = _placement(key, data)
        prefix = f"{layer_name(layer)} · {name}"
        view.set_aspect_locked(not (key == "W" and data.ndim == 2))
        view.show_tiles(tiles, layout, signed=True, mode=self.scale_mode, fixed=self.fixed_limit,
                        describe=lambda k, r, c, v: f"{prefix} · {where(k, r, c)} = {fmt(v)}",
                        ticks=ticks)
        hi = view.levels[1]
        view.set_caption("identical in A and B" if not np.any(data) else
                         f"‖{name}‖ = {fmt(norm(data))} · colours ±{fmt(hi)} (white = 0)")


def _placement(key: str, data: np.ndarray):
    """(tiles, layout, axis ticks, where(k, r, c) → text) for a difference map: conv
    kernels one row per filter, dense weights one matrix, z/δ/a as the feature-map panel."""
    if key == "W" and data.ndim == 4:
        F, C, kh, kw = data.shape
        ticks = {"left": index_ticks(F, 16, kh / 2 - (kh + 1) / 2, kh + 1),
                 "top": index_ticks(C, 6, kw / 2 - (kw + 1) / 2, kw + 1),
                 "left_label": "filter", "top_label": "input channel"}
        return (data.reshape(F * C, kh, kw), grid_layout(F, C, kh, kw), ticks,
                lambda k, r, c: f"filter {k // C} · channel {k % C} · row {r} · col {c}")
    if key == "W":
        ticks = {"left": index_ticks(data.shape[0], 12),
                 "bottom": index_ticks(data.shape[1], 4),
                 "left_label": "unit", "bottom_label": "input"}
        return (data[None], matrix_layout(*data.shape), ticks,
                lambda k, r, c: f"unit {r} · input {c}")
    tiles, layout, is_maps = as_tiles(data)
    if is_maps:
        return tiles, layout, None, lambda k, r, c: f"channel {k} · row {r} · col {c}"
    return tiles, layout, unit_ticks(layout, is_maps), lambda k, r, c: f"unit {k}"


def _label(wrap: bool = False) -> QLabel:
    """A label that never widens the panel."""
    label = QLabel("")
    label.setWordWrap(wrap)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


def _missing(key: str, layer) -> str:
    if key == "W":
        return f"{layer.kind} has no weights"
    what = "δ" if key == "delta" else "a"
    return f"no {what} in A or B yet\n(records before that pass reached this layer)"


PANELS = [("timelineDock", "Timeline", TimelinePanel)]
