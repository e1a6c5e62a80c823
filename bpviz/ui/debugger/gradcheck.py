"""Gradient check panel: back-propagated vs numerical gradients of every layer, on demand.

"Run check" makes a ``GradCheckJob`` (bpviz/session/gradcheck_job.py) for the current sample
— a float64 copy of the network, taken in the GUI thread — and runs it on a QThread, with a
progress bar, an estimate of the time left and Cancel; results are applied in the GUI thread.
The table shows per layer and tensor (W, b, δ) the relative error ‖a − n‖/(‖a‖ + ‖n‖), the
largest |a − n|, how many coordinates were checked and skipped (kinks), and the core's
pass/warn/fail badge. The selected row's coordinates are plotted, analytic against numerical
(on the diagonal when they agree). Picking a row picks its layer. Results say when the
session has moved on (another step, sample or architecture). Nothing runs unless asked.
"""
from __future__ import annotations

import atexit
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QRectF, Qt, QThread, Signal, Slot
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QHBoxLayout,
                               QHeaderView, QLabel, QProgressBar, QPushButton, QSpinBox,
                               QSplitter, QStyle, QStyledItemDelegate, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from bpviz.session.gradcheck_job import H, THRESHOLDS, GradCheckJob, explain, plan_check
from bpviz.ui import gui_gc
from bpviz.ui.panels import colors
from bpviz.ui.panels.base import Panel

COLUMNS = ("Layer", "Tensor", "Rel. error", "Max |a − n|", "Checked", "Skipped", "Status")
BADGES = {"pass": QColor(46, 125, 50), "warn": QColor(230, 140, 0), "fail": QColor(198, 40, 40),
          "partial": QColor(117, 117, 117), "not run": QColor(0, 0, 0, 0)}
RULES = (f"rel. error ‖a − n‖/(‖a‖ + ‖n‖) · pass ≤ {THRESHOLDS[0]:g} · warn ≤ "
         f"{THRESHOLDS[1]:g} or > 1 % at kinks · fail above")
RULES_TIP = (f"a = back-propagated (analytic), n = numerical: central differences in float64 "
             f"with h = {H:g}.\npass: relative error ≤ {THRESHOLDS[0]:g} and every coordinate "
             f"within 1e-5 + 1e-3·|n| (and at most 1 % skipped)\nwarn: relative error ≤ "
             f"{THRESHOLDS[1]:g}, or more than 1 % of coordinates skipped at kinks (ReLU at 0, "
             f"max-pool ties)\nfail: relative error above {THRESHOLDS[1]:g}")
HINT = ("Compare every layer's back-propagated gradients (∂loss/∂W, ∂loss/∂b and δ) with "
        "numerical ones from central differences, on the current sample.\n\nPress Run check.")
DEFAULT_COORDS = 200
_LIVE: list = []            # (thread, runner) of running checks, until they finish


class _Runner(QObject):
    progressed = Signal(int, int)
    ended = Signal(object, str)          # (GradientCheck or None, error message or "")

    def __init__(self, job):
        super().__init__()
        self.job = job

    @Slot()
    def run(self) -> None:
        try:
            result, error = self.job.run(self.progressed.emit), ""
        except Exception as exc:             # shown in the panel, never lost in the thread
            result, error = None, f"{type(exc).__name__}: {exc}"
        self.ended.emit(result, error)


def stop_all(wait_ms: int = 10000) -> None:
    """Cancel every running check and wait for its thread (application exit)."""
    for thread, runner in list(_LIVE):
        runner.job.cancel()
        thread.quit()
        thread.wait(wait_ms)
    _LIVE.clear()


atexit.register(stop_all)


class BadgeDelegate(QStyledItemDelegate):
    """Draws the status column as a coloured pill with the status word."""

    def paint(self, painter, option, index) -> None:
        status = index.data(Qt.ItemDataRole.UserRole) or ""
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter,
                            option.widget)
        if status not in BADGES or status == "not run":
            return super().paint(painter, option, index)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(option.rect).adjusted(6, 3, -6, -3)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(BADGES[status])
        painter.drawRoundedRect(r, r.height() / 2, r.height() / 2)
        font = option.font
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(r, Qt.AlignmentFlag.AlignCenter, status)
        painter.restore()


class GradCheckPanel(Panel):
    title = "Gradient check"
    defer_while_hidden = True       # nothing is computed while the dock is closed

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.job: GradCheckJob | None = None
        self._runner = self._thread = None
        self._started = 0.0
        self.rows: list[tuple] = []          # (PlannedTensor, CheckResult | None, status)
        self._build()
        self.body.show_hint(HINT)
        self._set_header("Gradient check · not run yet")

    # ----- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        self.run_button = QPushButton("Run check")
        self.run_button.setToolTip("Check the current sample on a float64 copy of the network")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.coords = QSpinBox(minimum=0, maximum=10_000_000, singleStep=50,
                               specialValueText="all", value=DEFAULT_COORDS)
        self.coords.setToolTip("Coordinates sampled per tensor (0 = all). Each costs two "
                               "forward passes; sample big layers.")
        self.progress = QProgressBar(value=0, format="")
        bar = QWidget()
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.run_button, self.cancel_button, QLabel("max coordinates per tensor"),
                  self.coords):
            row.addWidget(w)
        row.addStretch(1)
        self.note = QLabel("", wordWrap=True)
        for k, w in enumerate((bar, self.progress, self.note)):
            self.layout().insertWidget(1 + k, w)
        t = self.table = QTableWidget(0, len(COLUMNS))
        t.setHorizontalHeaderLabels(COLUMNS)
        t.verticalHeader().hide()
        t.verticalHeader().setDefaultSectionSize(24)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setItemDelegateForColumn(6, BadgeDelegate(t))
        t.setMouseTracking(True)
        head = t.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(6, QHeaderView.ResizeMode.Fixed)
        head.resizeSection(6, 74)
        self.glw = pg.GraphicsLayoutWidget()
        self.plot = self.glw.addPlot()
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "numerical")
        self.plot.titleLabel.setMinimumWidth(0)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.diagonal = self.plot.plot(pen=pg.mkPen((150, 150, 150), style=Qt.PenStyle.DashLine))
        self.points = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(31, 119, 180, 170))
        self.worst = pg.ScatterPlotItem(size=13, brush=None, pen=pg.mkPen(198, 40, 40, width=2))
        self.plot.addItem(self.points)
        self.plot.addItem(self.worst)
        self.detail = QLabel("", wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        self.view_mode = QComboBox()
        self.view_mode.addItem("analytic vs numerical", "scatter")
        self.view_mode.addItem("difference a − n vs numerical", "difference")
        self.view_mode.setToolTip("The difference view magnifies small disagreements (a 1 % "
                                  "error is a sloped line instead of a point off the diagonal)")
        right = QWidget()
        col = QVBoxLayout(right)
        col.setContentsMargins(0, 0, 0, 0)
        for w, stretch in ((self.view_mode, 0), (self.glw, 1), (self.detail, 0)):
            col.addWidget(w, stretch)
        self.split = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        self.split.addWidget(t)
        self.split.addWidget(right)
        self._split_moved = False
        self.split.splitterMoved.connect(lambda *_: setattr(self, "_split_moved", True))
        self.body.set_content(self.split)
        self.readout.setText(RULES)
        self.readout.setToolTip(RULES_TIP)
        self.run_button.clicked.connect(self.run_check)
        self.cancel_button.clicked.connect(self.cancel_check)
        self.coords.valueChanged.connect(self._estimate)
        self.view_mode.currentIndexChanged.connect(lambda _i: self._show_detail(t.currentRow()))
        t.itemSelectionChanged.connect(self._row_selected)
        t.cellEntered.connect(self._row_hovered)
        self._apply_theme()

    def _apply_theme(self) -> None:
        bg, fg, _ = colors.theme(self.palette())
        self.glw.setBackground(bg)
        colors.style_plot(self.plot, fg)
        self._fg = fg

    def changeEvent(self, event) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._apply_theme()
        super().changeEvent(event)

    def _title(self, text: str) -> None:
        self.plot.setTitle(text, color=self._fg, size="9pt")

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_split()

    def _fit_split(self) -> None:
        """Wide: table beside the plot, as wide as its columns (the plot keeps ≥ 260 px);
        narrow (a docked tab): table above the plot."""
        wide = self.width() >= max(640, 1.3 * self.height())
        self.split.setOrientation(Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical)
        head = self.table.horizontalHeader()
        need = head.length() + self.table.frameWidth() * 2 + 2
        if self.table.verticalScrollBar().isVisible():
            need += self.table.verticalScrollBar().width()
        total = self.split.width() if wide else self.split.height()
        if total > 0 and not self._split_moved:
            table = max(min(need, total - 260), total // 2) if wide else total * 11 // 20
            self.split.setSizes([table, total - table])

    def close_session(self) -> None:
        """The window replaced the session (and this panel): stop a running check."""
        if self.job is not None:
            self.job.cancel()

    # ----- running ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None

    def run_check(self) -> None:
        if self.running:
            return
        try:
            job = GradCheckJob.from_session(self.session, self.coords.value() or None)
        except Exception as exc:           # e.g. targets that do not fit the output
            self.note.setText(f"Cannot check: {exc}")
            return
        self.job, self._started = job, time.perf_counter()
        self._show_rows([(p, None, "not run") for p in job.plan])
        gui_gc.collect_in_gui_thread()
        thread, runner = QThread(), _Runner(job)
        runner.moveToThread(thread)
        thread.started.connect(runner.run)
        runner.progressed.connect(self._on_progress)
        runner.ended.connect(self._on_ended)
        runner.ended.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread, self._runner = thread, runner
        _LIVE.append((thread, runner))
        self.destroyed.connect(job.cancel)        # closing the window stops the check
        self.progress.setRange(0, max(job.total, 1))
        self.progress.setValue(0)
        self.progress.setFormat(f"0 / {job.total:,} coordinates")
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._set_header("Gradient check · running …")
        self.note.setText(f"Checking sample {job.context.sample_index}, "
                          f"{job.context.sample_label}, on a float64 copy of the network …")
        thread.start()

    def cancel_check(self) -> None:
        if self.job is not None and self.running:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.note.setText("Cancelling …")

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if self._runner is None or self.sender() is not self._runner:
            return
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        spent = time.perf_counter() - self._started
        left = spent / done * (total - done) if done else 0.0
        self.progress.setFormat(f"{done:,} / {total:,} coordinates · {left:.1f} s left")

    @Slot(object, str)
    def _on_ended(self, result, error: str) -> None:
        thread, runner = self._thread, self._runner
        if runner is None or self.sender() is not runner:
            return
        self._thread = self._runner = None
        thread.quit()
        thread.wait()
        if (thread, runner) in _LIVE:
            _LIVE.remove((thread, runner))
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        job = self.job
        if result is None:
            self.progress.setFormat("failed")
            self._set_header("Gradient check · failed")
            self.note.setText(f"The check failed: {error}")
            return
        self._show_rows(job.rows())
        self.progress.setFormat(f"{job.done:,} / {job.total:,} coordinates · {job.elapsed:.1f}"
                                f" s" + (" · cancelled" if result.cancelled else ""))
        self._refresh_note()
        self.set_layer(self.layer_index)

    # ----- showing results -------------------------------------------------------------------
    def _show_rows(self, rows) -> None:
        self.rows = rows
        self.body.show_content()
        t = self.table
        t.blockSignals(True)
        t.setRowCount(len(rows))
        base, alt = self.palette().base().color(), self.palette().alternateBase().color()
        group, last = 0, None
        for k, (p, r, status) in enumerate(rows):
            first = p.layer_index != last
            group += first and last is not None
            last = p.layer_index
            size = f" of {p.size:,}" if p.coords < p.size else ""
            cells = (f"{p.layer_index} {p.layer_kind}" if first else "",
                     "δ" if p.tensor == "delta" else p.tensor,
                     "—" if r is None else f"{r.rel_error:.2e}",
                     "—" if r is None else f"{r.max_abs_error:.2e}",
                     "—" if r is None else f"{r.checked:,}{size}",
                     "—" if r is None else f"{r.skipped:,}", status)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setBackground(alt if group % 2 else base)
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if c == 6:
                    item.setData(Qt.ItemDataRole.UserRole, status)
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setToolTip(explain(p, r, status))
                t.setItem(k, c, item)
        t.blockSignals(False)
        self._fit_split()
        self._displayed = self._arrays()
        self._show_detail(t.currentRow())

    def _arrays(self) -> dict:
        got = [(p.layer_index, r) for p, r, _ in self.rows if r is not None]
        if not got:
            return {}
        out = {k: np.array([getattr(r, k) for _, r in got])
               for k in ("rel_error", "max_abs_error", "checked", "skipped")}
        out["layer_index"] = np.array([i for i, _ in got])
        return out

    def statuses(self) -> list[tuple[int, str, str]]:
        """(layer index, tensor, status) per table row."""
        return [(p.layer_index, p.tensor, s) for p, _, s in self.rows]

    def _row_selected(self) -> None:
        k = self.table.currentRow()
        self._show_detail(k)
        if 0 <= k < len(self.rows):
            self.layer_index = self.rows[k][0].layer_index
            self.layerPicked.emit(self.layer_index)

    def _row_hovered(self, k: int, _col: int) -> None:
        if 0 <= k < len(self.rows):
            p, r, status = self.rows[k]
            self._set_hover(explain(p, r, status).replace("\n", " · "))

    def _show_detail(self, k: int) -> None:
        if not 0 <= k < len(self.rows) or self.rows[k][1] is None or not self.rows[k][1].checked:
            for item in (self.points, self.worst):
                item.setData([], [])
            self.diagonal.setData([], [])
            self._title("select a checked row")
            self.detail.setText("")
            return
        p, r, status = self.rows[k]
        a, n = np.asarray(r.analytic, float), np.asarray(r.numeric, float)
        diff = self.view_mode.currentData() == "difference"
        y = a - n if diff else a
        self.points.setData(n, y)
        lo, hi = float(n.min()), float(n.max())
        if not diff:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
        pad = (hi - lo) * 0.05 or 1e-12
        self.diagonal.setData([lo - pad, hi + pad], [0, 0] if diff else [lo - pad, hi + pad])
        self.plot.setLabel("left", "a − n" if diff else "analytic (back-prop)")
        w, coord = self.job.worst_coordinate(r)
        self.worst.setData([n[w]], [y[w]])
        name = "δ" if p.tensor == "delta" else p.tensor
        self._title(f"layer {p.layer_index} {p.layer_kind} · {name} · {r.checked:,} coordinates")
        verdict = {"fail": f"Back-prop disagrees: relative error {r.rel_error:.1e} > "
                           f"{THRESHOLDS[1]:g}.",
                   "warn": "Small disagreement or many kinks (see the row's tooltip)."}.get(
            status, "Differences sit near 0: the two agree." if diff else
            "On the dashed line the two agree.")
        self.detail.setText(f"{verdict} Largest |a − n| (ringed) at {coord}: analytic "
                            f"{a[w]:.6g}, numerical {n[w]:.6g}, |a − n| = "
                            f"{abs(a[w] - n[w]):.2e}")
        self._displayed.update({"analytic": a, "numeric": n})

    # ----- the panel contract ----------------------------------------------------------------
    def _draw(self, snap) -> None:
        self._refresh_note()
        if self.job is None:
            self._estimate()

    def _estimate(self) -> None:
        if not self.running:
            plan = plan_check(self.session.net, self.coords.value() or None)
            total = sum(p.coords for p in plan)
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(0)
            self.progress.setFormat(f"{total:,} coordinates to check · {len(plan)} tensors")

    def _refresh_note(self) -> None:
        job = self.job
        if job is None or job.result is None:
            return
        self._set_header(job.summary())
        stale = job.stale_reason(self.session)
        self.note.setText(f"⚠ Out of date: {stale}. Run the check again." if stale else "")
        self.note.setStyleSheet("color: rgb(200, 110, 0);" if stale else "")

    def set_layer(self, index: int) -> None:
        self.layer_index = int(index)
        k = self.table.currentRow()
        if 0 <= k < len(self.rows) and self.rows[k][0].layer_index == index:
            return
        for k, (p, _, _) in enumerate(self.rows):
            if p.layer_index == index:
                self.table.blockSignals(True)
                self.table.selectRow(k)
                self.table.blockSignals(False)
                self._show_detail(k)
                return


PANELS = [("gradcheckDock", "Gradient check", GradCheckPanel)]
