"""Time travel: a ``Recorder`` keeps every step and phase of a session within a memory budget.

While enabled it listens to ``session.events`` ("phase" after each stepping action, "step"
after each update, also during continuous training) and keeps one ``Record`` per event: the
``Snapshot`` (already immutable copies), every parameter (``net.get_params()``) and the
trainer's batch-order state. Disabled, it is not subscribed and costs nothing.

Memory: a record's size is the sum of its arrays' ``nbytes``. The history curves of a
snapshot grow with the step count, so the recorder keeps one copy of the history rows
(appended as they appear; finished rows never change) and each record only its row count and
its own last row; ``snapshot(i)`` rebuilds the full snapshot. (The session's snapshot is made
with the history set aside, so recording a step costs the same at step 10 and step 10,000.)
When the total exceeds the budget the oldest records are evicted (``evicted`` counts them); a
record larger than the whole budget is not kept (``too_large``).

Restore (``restore(i)``) rewinds the session to the *start of the record's step*:

* weights ← the record's parameters; the optimiser's momentum is reset (velocity cleared);
* trainer ← its state at the start of that step: the RNG's ``bit_generator.state``, the
  epoch order, the cursor and the epoch (sample mode: the sample index), so the next step
  draws exactly the batch the original run drew and re-running reproduces the original
  weights bit for bit (with momentum 0; momentum restarts from 0 after a restore);
* step counter ← the record's step; history rows of later steps are dropped; the cursor is
  "ready" with no pass in progress (layer arrays cleared, ``last_update`` None);
* records after the restored one are dropped (the timeline forks there);
* events: "restore" (payload: the step; detail ``index``) then "phase" (so views repaint).

Settings (learning rate, mode, …) are not rewound: restoring then changing one replays the
past with the change. A mid-step record whose step start was not seen (recording enabled in
the middle of a mini-batch step) cannot be restored (``restorable``). The timeline is one run:
an architecture change, weight reset, another dataset or opening a file clears it.
"""
from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass, fields, is_dataclass, replace

import numpy as np

from .history import History

MB = 1 << 20
DEFAULT_BUDGET = 128 * MB
HISTORY = ("history_steps", "loss_history", "accuracy_history", "grad_norm_history",
           "delta_norm_history")
BOUNDARY = ("idle", "update")
_FROM_TIMELINE: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()  # id → snapshot


def nbytes(obj) -> int:
    """Bytes held by the NumPy arrays inside ``obj`` (dataclasses, dicts, lists, tuples)."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj)
    names = _FIELDS.get(type(obj))
    if names is None:
        names = _FIELDS[type(obj)] = (tuple(f.name for f in fields(obj))
                                      if is_dataclass(obj) and not isinstance(obj, type) else ())
    return sum(nbytes(getattr(obj, n)) for n in names)


_FIELDS: dict = {}


def from_timeline(snapshot) -> bool:
    """True for a snapshot handed out by ``Recorder.snapshot`` (a past state, not the present)."""
    return _FROM_TIMELINE.get(id(snapshot)) is snapshot


@dataclass(frozen=True)
class TrainerState:
    """What decides the next batch: the trainer's RNG, epoch order, cursor; the sample index."""
    rng: dict
    order: np.ndarray
    cursor: int
    epoch: int
    steps: int
    sample_index: int

    @classmethod
    def capture(cls, session, sample_index: int | None = None) -> "TrainerState":
        t = session.trainer
        return cls(copy.deepcopy(t._rng.bit_generator.state), np.array(t._order, copy=True),
                   int(t._cursor), int(t.epoch), int(t.steps),
                   int(session.sample_index if sample_index is None else sample_index))

    def apply(self, session) -> None:
        t = session.trainer
        t._rng.bit_generator.state = copy.deepcopy(self.rng)
        t._order = np.array(self.order, copy=True)
        t._cursor, t.epoch, t.steps = self.cursor, self.epoch, self.steps
        session.sample_index = self.sample_index


@dataclass(frozen=True)
class Record:
    seq: int                  # position over the recorder's life (unchanged by eviction)
    step: int
    phase: str
    layer: int | None
    label: str
    snapshot: object          # Snapshot with its history emptied (use Recorder.snapshot(i))
    params: list              # net.get_params() at that point
    rows: int                 # history rows the snapshot had
    tail: tuple               # its last history row (one per history array)
    start: TrainerState | None  # trainer state at the start of this step (None: unknown)
    nbytes: int


class Recorder:
    """Records a session's steps and phases while enabled (see the module docstring)."""

    def __init__(self, session, budget_bytes: int = DEFAULT_BUDGET):
        self.session = session
        self._lock = threading.RLock()
        self._records: list[Record] = []
        self._rows: list[tuple] = []        # history rows seen: (step, loss, acc, g, d)
        self._total = 0                     # bytes of the records
        self._seq = 0
        self._enabled = False
        self._restoring = False
        self._after_step = None
        self._boundary: tuple[int, TrainerState] | None = None
        self._dataset = session.dataset
        self.evicted = 0
        self.too_large = 0
        self.budget_bytes = self._check_budget(budget_bytes)

    # ----- switching ---------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, on: bool, record_present: bool = True) -> None:
        """Start listening (and record the present state at once, unless another thread is
        stepping the session: ``record_present=False``) or stop."""
        if on and not self._enabled:
            self._enabled = True
            self._dataset = self.session.dataset
            self.session.events.subscribe(self._on_event)
            if record_present:
                self._note_boundary()
                self.record_now()
        elif not on and self._enabled:
            self._enabled = False
            self.session.events.unsubscribe(self._on_event)

    def close(self) -> None:
        self.set_enabled(False)
        self.clear()

    @staticmethod
    def _check_budget(value) -> int:
        try:
            v = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"memory budget {value!r} must be a whole number of bytes") from None
        if v < 1:
            raise ValueError(f"memory budget {value!r} must be at least 1 byte")
        return v

    def set_budget(self, budget_bytes: int) -> None:
        """A new budget; records are evicted (oldest first) until they fit."""
        with self._lock:
            self.budget_bytes = self._check_budget(budget_bytes)
            self._evict()

    # ----- reading -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> tuple:
        with self._lock:
            return tuple(self._records)

    def record(self, index: int) -> Record:
        with self._lock:
            return self._records[index]

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return self._total + self.history_bytes

    def snapshot(self, index: int):
        """The full Snapshot of record ``index`` (history curves up to that point)."""
        with self._lock:
            rec = self._records[index]
            n = rec.rows
            full = _history_arrays(self._rows[:n - 1], len(rec.snapshot.layers)) if n else None
            hist = {name: (np.concatenate([f, tail]) if n else tail)
                    for name, f, tail in zip(HISTORY, full or rec.tail, rec.tail)}
        snap = replace(rec.snapshot, history_generation=0, **hist)     # rebuilt: unknown
        _FROM_TIMELINE[id(snap)] = snap
        return snap

    def params(self, index: int) -> list:
        return self.record(index).params

    def diff(self, a: int, b: int, layer: int) -> dict:
        """B − A for layer ``layer``: {"W", "delta", "a"} (None where either side has none).
        δ and a are the displayed sample's (see ``sample_a``/``sample_b``)."""
        ra, rb = self.record(a), self.record(b)
        la, lb = ra.snapshot.layers[layer], rb.snapshot.layers[layer]
        out = {"sample_a": ra.snapshot.sample_index, "sample_b": rb.snapshot.sample_index}
        wa, wb = ra.params[layer].get("W"), rb.params[layer].get("W")
        out["W"] = None if wa is None or wb is None else wb - wa
        for name in ("delta", "a"):
            x, y = getattr(la, name), getattr(lb, name)
            out[name] = None if x is None or y is None or x.shape != y.shape else y - x
        return out

    def restorable(self, index: int) -> str:
        """'' when record ``index`` can be restored, else why not."""
        if self.record(index).start is None:
            return ("recording began in the middle of this mini-batch step, so the state that "
                    "chose its batch is unknown; restore a record from a later step")
        return ""

    # ----- recording ---------------------------------------------------------------------
    def clear(self) -> None:
        with self._lock:
            self._records, self._rows, self._total = [], [], 0
            self.evicted = self.too_large = 0
            self._after_step = self._boundary = None

    def _on_event(self, event) -> None:
        s, kind = self.session, event.kind
        if kind in ("architecture", "file") or (kind == "data" and s.dataset is not self._dataset):
            self._dataset = s.dataset
            self.clear()
            self._note_boundary()
            return
        if self._restoring:
            return
        if kind == "step":
            self._note_boundary()
            self.record_now()
            self._after_step = s.step_count
        elif kind == "phase":
            if self._after_step == s.step_count and s.phase == "update":
                self._after_step = None        # the same state the "step" event recorded
                return
            self._after_step = None
            self._note_boundary()
            self.record_now()
        elif kind in ("data", "settings"):
            self._note_boundary()

    def _note_boundary(self) -> None:
        s = self.session
        if s.phase in BOUNDARY:
            self._boundary = (s.step_count, TrainerState.capture(s))

    def _start_state(self) -> TrainerState | None:
        s = self.session
        if s.phase in BOUNDARY:
            self._note_boundary()
        if self._boundary is not None and self._boundary[0] == s.step_count:
            return self._boundary[1]
        if s.trainer.mode == "sample":
            return TrainerState.capture(s, int(s.batch[0]))
        if s.trainer.mode == "full-batch":
            return TrainerState.capture(s)
        return None

    def record_now(self) -> Record | None:
        """Record the session's present state (called on every event while enabled)."""
        s = self.session
        history, s.history = s.history, _NO_HISTORY     # the snapshot without the curves
        try:
            stored = s.snapshot()
        finally:
            s.history = history
        params = s.net.get_params()
        rows = len(history.steps)
        tail = _history_arrays(_rows_of(history, rows - 1, rows), len(s.net.layers))
        size = nbytes(stored) + nbytes(params) + nbytes(tail)
        start = self._start_state()
        with self._lock:
            self._sync_rows(history)
            shared = self._records and self._records[-1].start is start   # same step start
            rec = Record(self._seq, stored.step, stored.phase, stored.layer, stored.label,
                         stored, params, rows, tail, start,
                         size + (0 if shared else nbytes(start)))
            self._seq += 1
            if rec.nbytes + self.history_bytes > self.budget_bytes:
                self.too_large += 1
                return None
            self._records.append(rec)
            self._total += rec.nbytes
            self._evict()
        return rec

    def _sync_rows(self, history) -> None:
        """Copy the history rows that are new (and the last one, which a recomputed
        backward pass may have replaced)."""
        n = len(history.steps)
        start = max(min(len(self._rows), n) - 1, 0)
        del self._rows[start:]
        self._rows += _rows_of(history, start, n)

    @property
    def history_bytes(self) -> int:
        """Bytes of the one shared copy of the history rows (8 per number)."""
        layers = len(self._rows[0][3]) if self._rows else 0
        return len(self._rows) * 8 * (3 + 2 * layers)

    def _evict(self) -> None:
        while self._records and self._total + self.history_bytes > self.budget_bytes:
            self._total -= self._records.pop(0).nbytes
            self.evicted += 1

    # ----- restore -----------------------------------------------------------------------
    def restore(self, index: int) -> Record:
        """Rewind the session to the start of record ``index``'s step (module docstring)."""
        s = self.session
        rec = self.record(index)
        why = self.restorable(index)
        if why:
            raise ValueError(f"cannot restore record {index}: {why}")
        s.net.set_params(rec.params)                 # validates first; raises changing nothing
        s.optimizer.reset()
        rec.start.apply(s)
        s.rewind(rec.step)
        with self._lock:
            pos = self._records.index(rec)
            self._records = self._records[:pos + 1]
            self._total = sum(r.nbytes for r in self._records)
            del self._rows[len(s.history.steps):]
            self._boundary = (s.step_count, rec.start)
            self._after_step = None
        self._restoring = True
        try:
            s.events.emit("restore", rec.step, index=pos)
            s.events.emit("phase", s.label())
        finally:
            self._restoring = False
        return rec


_NO_HISTORY = History()


def _rows_of(history, start: int, stop: int) -> list[tuple]:
    """Rows start … stop-1 of a History as tuples (step, loss, accuracy, grads, deltas)."""
    return [(history.steps[i], history.loss[i], history.accuracy[i],
             list(history.grad_norms[i]), list(history.delta_norms[i]))
            for i in range(max(start, 0), stop)]


def _history_arrays(rows: list[tuple], layers: int) -> tuple:
    """The five history arrays of a Snapshot from rows (as ``History.arrays``)."""
    shape = (0, layers)
    return (np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=float),
            np.array([r[2] for r in rows], dtype=float),
            np.array([r[3] for r in rows], dtype=float) if rows else np.empty(shape),
            np.array([r[4] for r in rows], dtype=float) if rows else np.empty(shape))
