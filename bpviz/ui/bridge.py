"""The one adapter between the session and Qt: events → signals, and the training thread.

``SessionBridge`` subscribes to ``session.events`` and re-emits every event as a Qt signal;
events may come from the training thread, and Qt queues those signals to the GUI thread.

``Trainer`` runs ``session.train_step()`` in a ``TrainWorker`` moved to a ``QThread``. The
worker makes a snapshot (copied arrays) at most every ``interval`` seconds *and* only after
the GUI has taken the previous one, so snapshots never pile up when painting is slow. The
GUI holds the trainer (``Trainer.hold``) while it paints a frame: the worker finishes the
step it is in and waits, so painting runs without fighting the worker for the GIL (PySide
releases the GIL on every Qt call, and each re-acquisition against a busy thread can cost a
switch interval). Two locks make that fair: the worker takes ``gate`` around each step and
passes ``turn`` before it; the GUI takes ``turn`` first (no new step starts) and then
``gate`` (the step in progress ends). With ``gate`` alone the worker, which holds the GIL
when it releases ``gate``, took it again before the waiting GUI thread woke up: frames
timed out waiting and were painted against a running worker. While
the worker runs it is the only code touching the session: ``guard_session`` wraps the
session's mutating methods so that calling any of them from the GUI first stops training.
"""
from __future__ import annotations

import functools
import threading
import time
import traceback
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from . import gui_gc

MAIN = threading.main_thread()
# Session methods that change state; the GUI may call them only while no worker runs.
MUTATORS = ("edit", "set_dataset", "select_sample", "reset_weights", "open", "save",
            "forward", "backward", "update", "step", "step_into", "finish_pass")


class SessionBridge(QObject):
    """Re-emits session events as Qt signals (queued to the GUI thread when needed)."""

    phaseChanged = Signal(str)
    architectureChanged = Signal()
    settingsChanged = Signal()
    dataChanged = Signal()
    nonFinite = Signal(object)        # NonFiniteReport
    fileChanged = Signal(str)
    errorRaised = Signal(str)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        session.events.subscribe(self._on_event)

    def detach(self) -> None:
        self.session.events.unsubscribe(self._on_event)

    def _on_event(self, event) -> None:
        kind = event.kind
        if kind == "phase":
            self.phaseChanged.emit(str(event.payload))
        elif kind == "architecture":
            self.architectureChanged.emit()
        elif kind == "settings":
            self.settingsChanged.emit()
        elif kind == "data":
            self.dataChanged.emit()
        elif kind == "nonfinite":
            self.nonFinite.emit(event.payload)
        elif kind == "file":
            self.fileChanged.emit(str(event.payload))
        elif kind == "error":
            self.errorRaised.emit(str(event.payload))


@dataclass(frozen=True)
class Status:
    """What the status bar shows between frames: the fields of a Snapshot it reads, without
    the arrays (a full snapshot copies every tensor and the whole history: ~9 ms at 2,500
    steps of LeNet-5, four training steps)."""
    step: int
    label: str
    loss: float | None
    accuracy: float | None


class TrainWorker(QObject):
    """Loops ``session.train_step()`` until stopped; offers snapshots at a capped rate."""

    snapshotReady = Signal(object, int)      # snapshot, run id
    statusReady = Signal(object, int)        # Status, run id
    finished = Signal(int, object, int)      # steps done, exception or None, run id

    def __init__(self, session, interval: float = 0.025, max_steps: int | None = None,
                 run_id: int = 0, gate: threading.Lock | None = None,
                 turn: threading.Lock | None = None):
        super().__init__()
        self.run_id = run_id
        self.gate = gate or threading.Lock()
        self.turn = turn or threading.Lock()
        self.session = session
        self.interval = interval
        self.max_steps = max_steps
        self.steps = 0
        self._stop = threading.Event()
        self._wanted = threading.Event()
        self._wanted.set()
        self._status_wanted = threading.Event()
        self.error = None
        self.error_text = ""

    def stop(self) -> None:
        self._stop.set()

    def want_snapshot(self) -> None:
        """The GUI has taken the last snapshot: the worker may make the next one."""
        self._wanted.set()

    def want_status(self) -> None:
        """The GUI wants the step, loss and accuracy after the next step (a Status)."""
        self._status_wanted.set()

    @Slot()
    def run(self) -> None:
        session, last, gate, turn = self.session, 0.0, self.gate, self.turn
        try:
            while not self._stop.is_set():
                # the GUI holds turn and gate while it paints a frame; time out to see stop()
                if not turn.acquire(timeout=0.05):
                    continue
                turn.release()
                if not gate.acquire(timeout=0.05):
                    continue
                try:
                    session.train_step()
                    self.steps += 1
                    now = time.perf_counter()
                    snap = status = None
                    if self._wanted.is_set() and now - last >= self.interval:
                        self._wanted.clear()
                        last = now
                        snap = session.snapshot()
                    elif self._status_wanted.is_set():
                        self._status_wanted.clear()
                        status = Status(session.step_count, session.label(), session.loss,
                                        session.acc)
                finally:
                    gate.release()
                if snap is not None:
                    self.snapshotReady.emit(snap, self.run_id)
                elif status is not None:
                    self.statusReady.emit(status, self.run_id)
                if self.max_steps is not None and self.steps >= self.max_steps:
                    break
        except Exception as exc:          # reported to the GUI; training stops
            self.error = exc
            self.error_text = traceback.format_exc()
        finally:
            main = QCoreApplication.instance()
            if main is not None:          # hand the object back before its thread ends
                self.moveToThread(main.thread())
            self.finished.emit(self.steps, self.error, self.run_id)


class Trainer(QObject):
    """Starts and stops the worker thread; the GUI's view of "is training running"."""

    started = Signal()
    stopped = Signal(int, object)     # steps done in this run, exception or None
    snapshotReady = Signal(object)
    statusReady = Signal(object)      # Status

    def __init__(self, session, parent=None, interval: float = 0.025):
        super().__init__(parent)
        self.session = session
        self.interval = interval
        self._thread: QThread | None = None
        self._worker: TrainWorker | None = None
        self._runs = 0
        # Held by the GUI while it paints a frame (``hold``): the worker waits between steps
        # (its GIL released) instead of competing for the GIL with every Qt call of the paint.
        self.gate = threading.Lock()
        self.turn = threading.Lock()

    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def steps_this_run(self) -> int:
        return self._worker.steps if self._worker is not None else 0

    def start(self, max_steps: int | None = None) -> None:
        if self.running:
            return
        self._runs += 1
        gui_gc.collect_in_gui_thread()
        worker = TrainWorker(self.session, self.interval, max_steps, self._runs, self.gate,
                             self.turn)
        thread = QThread()
        thread.setObjectName("bpviz-training")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.snapshotReady.connect(self._on_snapshot)
        worker.statusReady.connect(self._on_status)
        worker.finished.connect(self._on_finished)
        self._worker, self._thread = worker, thread
        thread.start()
        self.started.emit()

    def hold(self, timeout: float) -> bool:
        """Stop the worker between two steps (GUI thread): waits at most ``timeout`` s for
        the step in progress. True when held; then ``release()`` must follow."""
        if not self.turn.acquire(timeout=timeout):
            return False
        if self.gate.acquire(timeout=timeout):
            return True
        self.turn.release()
        return False

    def release(self) -> None:
        self.gate.release()
        self.turn.release()

    def want_snapshot(self) -> None:
        if self._worker is not None:
            self._worker.want_snapshot()

    def want_status(self) -> None:
        if self._worker is not None:
            self._worker.want_status()

    def stop(self) -> None:
        """Stop and wait for the worker (it finishes the step it is in); GUI thread only."""
        worker, thread = self._worker, self._thread
        if worker is None:
            return
        worker.stop()
        thread.quit()
        thread.wait()
        self._finish(worker)

    def _current(self, run_id) -> bool:
        return self._worker is not None and self._worker.run_id == run_id

    @Slot(object, int)
    def _on_snapshot(self, snapshot, run_id) -> None:
        if self._current(run_id):               # drop late snapshots of a stopped run
            self.snapshotReady.emit(snapshot)

    @Slot(object, int)
    def _on_status(self, status, run_id) -> None:
        if self._current(run_id):
            self.statusReady.emit(status)

    @Slot(int, object, int)
    def _on_finished(self, _steps, _error, run_id) -> None:
        if self._current(run_id):               # the worker stopped by itself
            worker = self._worker
            self._thread.quit()
            self._thread.wait()
            self._finish(worker)

    def _finish(self, worker) -> None:
        self._worker = self._thread = None
        self.stopped.emit(worker.steps, worker.error)


def guard_session(session, trainer: Trainer, pause_then, resume_after=("set_training",)):
    """Wrap the session's mutating methods: each first stops training (``pause_then()``).

    ``set_training`` pauses, applies and resumes, so settings can change during a run.
    Returns a function that removes the wrappers.
    """
    originals = {}

    def wrap(name, resume):
        method = getattr(session, name)

        @functools.wraps(method)
        def guarded(*args, **kwargs):
            # only the GUI (main) thread is guarded; the worker calls through freely
            was_running = trainer.running and threading.current_thread() is MAIN
            if was_running:
                pause_then()
            try:
                return method(*args, **kwargs)
            finally:
                if resume and was_running and not trainer.running:
                    trainer.start()
        return guarded

    for name in MUTATORS + tuple(resume_after):
        originals[name] = session.__dict__.get(name)
        setattr(session, name, wrap(name, name in resume_after))

    def unguard():
        for name, old in originals.items():
            if old is None:
                session.__dict__.pop(name, None)
            else:
                setattr(session, name, old)
    return unguard
