"""LossPanel: loss and accuracy over the recorded steps, with the current values as text.

Top: the loss of every recorded backward pass (light) and its running mean over the last 10
(dark), so the trend shows through mini-batch noise. Bottom: the batch accuracy's running
mean over the last 10 on a fixed 0–1 axis, x linked to the loss plot (at batch 1 each step's
accuracy is 0 or 1: drawn raw it is a solid block); hovering reads each step's own value.
Values come from the snapshot's history arrays; long histories are drawn reduced to about
one point per pixel, keeping every spike, and while training only the new steps are
reduced (peaks.HistoryPeaks).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from . import colors
from .base import fmt
from .peaks import HistoryPeaks
from .plots import PlotsPanel, Trace

HINT = "No loss yet — finish a backward pass (F10 runs a whole step)"
MEAN_WINDOW = 10
ACC_TITLE = f"batch accuracy, mean of last {MEAN_WINDOW}"
LIGHT = pg.mkColor(235, 160, 150)        # every step, light; the mean is LOSS_COLOR, dark


class LossPanel(PlotsPanel):
    title = "Loss and accuracy"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss_plot = self.add_plot(
            0, f"{colors.key_html(LIGHT, 'loss')} &nbsp;"
               f"{colors.key_html(colors.LOSS_COLOR, f'mean of last {MEAN_WINDOW}')}", steps=True)
        self.loss_plot.setLabel("bottom", None)            # the accuracy plot names the axis
        self.loss_curve, self.mean_curve = Trace(LIGHT), Trace(colors.LOSS_COLOR)
        self.loss_plot.addItem(self.loss_curve)
        self.loss_plot.addItem(self.mean_curve)
        self.acc_plot = self.add_plot(1, ACC_TITLE, steps=True)
        self.acc_curve = Trace(colors.ACC_COLOR)
        self.acc_plot.addItem(self.acc_curve)
        self.acc_plot.setYRange(-0.04, 1.04, padding=0)
        self.acc_plot.setLimits(yMin=-0.05, yMax=1.05)
        self.acc_plot.setMouseEnabled(y=False)
        self.acc_plot.setXLink(self.loss_plot)
        self.loss_plot.disableAutoRange()              # ranges follow the data (PlotsPanel.follow)
        self.acc_plot.disableAutoRange()
        self.glw.ci.layout.setRowStretchFactor(0, 3)
        self.glw.ci.layout.setRowStretchFactor(1, 2)
        self._has_acc = True
        self._drawn_panned = None
        # loss, its running mean, the accuracy's running mean, the accuracy
        self.peaks = HistoryPeaks()
        self.body.show_hint(HINT)
        self.apply_theme()

    def _draw(self, snap) -> None:
        loss = np.asarray(snap.loss_history, dtype=float)
        acc = np.asarray(snap.accuracy_history, dtype=float)
        if loss.size == 0:
            self.body.show_hint(HINT)
            self._set_header(f"step {snap.step}")
            self._displayed = {}
            return
        self.body.show_content()
        steps = np.asarray(snap.history_steps)
        peaks = self.peaks
        new_rows = peaks.update(loss.size, snap.history_generation,
                                lambda start: _derived(loss, acc, start))
        mean = peaks.values[:, 1]
        if not new_rows and self._drawn_panned == self.panned and self._displayed:
            self._set_header(_current(snap, loss, acc, mean))
            return                                   # same history: nothing to push
        self._drawn_panned = self.panned
        has_acc = bool(np.isfinite(peaks.hi[3]))
        self.mark_points(self.loss_curve, loss.size, colors.LOSS_COLOR)
        self.mark_points(self.acc_curve, loss.size, colors.ACC_COLOR)
        x, ys = self.reduced(self.loss_plot, steps, peaks)
        self.loss_curve.setData(x, ys[:, 0])
        self.mean_curve.setData(x, ys[:, 1])
        self.mean_curve.setVisible(loss.size >= MEAN_WINDOW)
        self.acc_curve.setData(x, ys[:, 2] if has_acc else np.full_like(x, np.nan))
        self.follow(self.loss_plot, steps, np.array([peaks.lo[0], peaks.hi[0]]))
        if has_acc != self._has_acc:
            self._has_acc = has_acc
            self.set_title(self.acc_plot, ACC_TITLE if has_acc else
                           "accuracy — not defined for this loss/target")
        self._set_header(_current(snap, loss, acc, mean))
        self._displayed = {"loss": loss, "accuracy": acc, "steps": steps, "loss_mean": mean,
                           "accuracy_mean": peaks.values[:, 2]}

    def _hover(self, plot, x, y) -> str:
        d = self._displayed
        if not d:
            return ""
        k = int(np.argmin(np.abs(d["steps"] - x)))
        acc = d["accuracy"][k]
        acc_text = f" · accuracy = {fmt(acc)}" if np.isfinite(acc) else ""
        return f"step {fmt(d['steps'][k])} · loss = {fmt(d['loss'][k])}{acc_text}"


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` finite values at each position (shorter at the start)."""
    v = np.where(np.isfinite(values), values, 0.0)
    n = np.isfinite(values).astype(float)
    cv, cn = np.cumsum(np.insert(v, 0, 0.0)), np.cumsum(np.insert(n, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    count = cn[idx] - cn[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (cv[idx] - cv[lo]) / count, np.nan)


def _derived(loss, acc, start: int) -> np.ndarray:
    """Rows start … of (loss, running mean of the loss, running mean of the accuracy,
    accuracy); the means read the MEAN_WINDOW - 1 rows before ``start`` too."""
    first = max(start - (MEAN_WINDOW - 1), 0)
    skip = start - first
    return np.column_stack([loss[start:], running_mean(loss[first:], MEAN_WINDOW)[skip:],
                            running_mean(acc[first:], MEAN_WINDOW)[skip:], acc[start:]])


def _current(snap, loss, acc, mean) -> str:
    parts = [f"step {snap.step}"]
    if snap.loss is not None:
        parts.append(f"loss {fmt(snap.loss)}")
    else:
        parts.append(f"last loss {fmt(loss[-1])}")
    if loss.size >= MEAN_WINDOW:
        parts.append(f"mean of last {MEAN_WINDOW} {fmt(mean[-1])}")
    a = snap.accuracy if snap.accuracy is not None else acc[-1]
    if a is not None and np.isfinite(a):
        parts.append(f"accuracy {a:.1%} (batch of {len(snap.batch_indices)})")
    return " · ".join(parts)
