"""Training frames: when the window paints its panels while the worker thread trains.

A frame draws every visible panel from the newest snapshot and paints it at once
(``MainWindow.show_snapshot(snapshot, now=True)``) while it holds the trainer
(``bridge.Trainer.hold``): the worker finishes its step and waits instead of fighting the
painting for the GIL. Frames are spaced by their measured cost / GUI_SHARE (at most
MAX_FPS a second; measured from when frames really start, which is a little after they are
due), so painting takes no more than GUI_SHARE of the time and training keeps the rest.
The worker makes a snapshot only when asked (its interval is 0): this pacer alone decides.

Nothing polls: one single-shot timer wakes the GUI thread when there is something to do.
Every wake-up while the worker runs costs both threads a GIL hand-over, so there are three
kinds only: ask the worker for a snapshot (ahead of the frame by the time one takes to
arrive), paint it when the frame is due, and — only when frames are further apart than
1/STATUS_HZ — ask for a light Status (step, loss, accuracy) for the status bar in between.
A frame updates the status bar itself, before its panels, so the bar is painted with them.
"""
from __future__ import annotations

import math
import time

from PySide6.QtCore import QObject, Qt, QTimer

GATE_WAIT = 0.05           # s the GUI waits for the worker's step before painting anyway
GUI_SHARE = 0.32           # most of the time painting may take while training
# Frames a second at most. A frame costs training more than its own time: the worker's
# caches are cold after it (~1 ms over its next few steps on LeNet-5), it copies a snapshot
# (~0.4 ms), and the GUI thread's wake-ups take the GIL from it. Measured on LeNet-5 at
# batch 1 (8 s runs, 7-9 ms frames): GUI_SHARE 0.30 -> 33-34 frames/s at 53-56 % of the
# headless speed, 0.32 -> 35-37 at 54 %, 0.35 -> 38-39 at 52 %. With cheaper frames (~5 ms
# once LeNet-5 has converged) this cap binds first.
MAX_FPS = 42
STATUS_HZ = 10
EARLY = 0.001              # s a frame or a request may come before it is due


class FramePacer(QObject):
    """Schedules the training frames of ``window`` (a MainWindow) over ``trainer``."""

    def __init__(self, window, trainer):
        super().__init__(window)
        self.window, self.trainer = window, trainer
        self.cost = 0.0              # EMA of a frame's draw + paint time (s)
        self.lead = 0.0              # EMA of the time a snapshot takes to arrive (s)
        self.late = 0.0              # EMA of how late frames start (s)
        self.frames = 0
        self._timer = QTimer(self, singleShot=True, timeout=self._wake)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._reset()

    def _reset(self) -> None:
        self._pending = None         # the newest snapshot, not yet painted
        self._asked = True           # the worker starts wanting a snapshot
        self._asked_at = None        # when the snapshot on its way was asked for
        self._next_frame = self._next_status = 0.0

    _active = False

    def start(self) -> None:
        self._reset()
        self._active = True

    def stop(self) -> None:
        self._active = False
        self._timer.stop()
        self._pending = None

    # ----- from the worker (queued to the GUI thread) ----------------------------------------
    def on_snapshot(self, snapshot) -> None:
        now = time.perf_counter()
        if self._asked_at is not None:           # how long a snapshot takes to arrive
            wait = now - self._asked_at
            self.lead = 0.7 * self.lead + 0.3 * wait if self.lead else wait
            self._asked_at = None
        self._pending, self._asked = snapshot, False
        if self._active:
            self._wake()

    def on_status(self, status) -> None:
        self._asked = False
        if self._active:
            self.window.show_status(status)
            self._next_status = time.perf_counter() + 1 / STATUS_HZ
            self._wake()

    # ----- the one timer -----------------------------------------------------------------
    def _wake(self) -> None:
        """Do what is due now (paint, ask), then sleep until the next thing is due."""
        if not self._active:
            return
        now = time.perf_counter() + EARLY        # a whole wake-up for 1 ms: not worth it
        if self._pending is not None:
            if now >= self._next_frame:
                self._paint(now)
                now = time.perf_counter()
            else:
                return self._sleep_until(self._next_frame, now)
        if self._asked:
            return                               # the worker answers; that wakes us
        ask_at = self._next_frame - self.lead
        if now >= ask_at:
            self._asked, self._asked_at = True, now
            self.trainer.want_snapshot()
        elif ask_at - now <= 1 / STATUS_HZ:
            self._sleep_until(ask_at, now)
        elif now >= self._next_status:           # a long wait: the status bar in between
            self._asked = True
            self.trainer.want_status()
        else:
            self._sleep_until(self._next_status, now)

    def _sleep_until(self, when: float, now: float) -> None:
        """Wake at ``when`` (whole ms, never earlier than EARLY before it: no wake-up that
        only finds it is too early and sleeps again)."""
        self._timer.start(max(1, math.ceil(1000 * (when - now))))

    def _paint(self, now: float) -> None:
        """Paint the pending snapshot; the next frame is due cost / GUI_SHARE later, less
        how late frames start on average (waking the GUI thread while the worker holds
        the GIL takes ~1-3 ms), so that frames really are that far apart."""
        late = max(time.perf_counter() - self._next_frame, 0.0) if self._next_frame else 0.0
        self.late = 0.8 * self.late + 0.2 * late
        snapshot, self._pending = self._pending, None
        held = self.trainer.hold(GATE_WAIT)      # a slow step must not freeze the GUI
        try:
            t0 = time.perf_counter()
            self.window.show_snapshot(snapshot, now=True)
            cost = time.perf_counter() - t0
        finally:
            if held:
                self.trainer.release()
        self.frames += 1
        self.cost = 0.7 * self.cost + 0.3 * cost if self.cost else cost
        spacing = max(1 / MAX_FPS, self.cost / GUI_SHARE)
        # (at most half of it: when frames are late because steps are slow, the worker
        # paces them anyway)
        self._next_frame = now + spacing - min(self.late, spacing / 2)
        self._next_status = now + 1 / STATUS_HZ
