"""Per-step history: loss, accuracy and each layer's gradient magnitudes.

The rows live in preallocated NumPy columns that grow by doubling, so recording a step is
O(1) and ``arrays()`` (what every snapshot carries) is O(1) too: it hands out read-only
views of the rows recorded so far instead of copying them. Views must stay what they were
when handed out (a Snapshot is immutable), so the columns are copy-on-write: a change to a
row that a view may show (a recomputed pass replacing the last row, a rewind followed by new
rows) first moves the columns to fresh memory. Appending below the shared rows never
touches them, and that is all continuous training does.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .snapshot import norm

FIRST_CAPACITY = 256
_GENERATIONS = itertools.count(1)


class History:
    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self._n = 0
        self._shared = 0                 # rows 0 … _shared-1 may be seen through a view
        self._cols = _columns(0, 0)
        # New (unique among all histories) whenever a recorded row changes or goes: rows
        # 0 … k of two views with the same generation are the same rows.
        self.generation = next(_GENERATIONS)

    # ----- the columns, as read-only views of the recorded rows ------------------------------
    def _view(self, name: str) -> np.ndarray:
        self._shared = self._n
        view = self._cols[name][:self._n]
        view.flags.writeable = False
        return view

    @property
    def steps(self) -> np.ndarray:
        return self._view("steps")

    @property
    def loss(self) -> np.ndarray:
        return self._view("loss")

    @property
    def accuracy(self) -> np.ndarray:
        return self._view("accuracy")

    @property
    def grad_norms(self) -> np.ndarray:
        """(rows, layers) ‖∂loss/∂W‖, NaN for layers without weights."""
        return self._view("grad_norms")

    @property
    def delta_norms(self) -> np.ndarray:
        """(rows, layers) ‖δ‖."""
        return self._view("delta_norms")

    def __len__(self) -> int:
        return self._n

    # ----- changes ---------------------------------------------------------------------------
    def truncate(self, step: int) -> None:
        """Drop the rows of step ``step`` and later (rewinding to the start of that step)."""
        keep = int(np.count_nonzero(self._cols["steps"][:self._n] < step))
        if keep < self._n:
            self._n = keep
            self.generation = next(_GENERATIONS)

    def record(self, step: int, net, loss: float, accuracy: float | None) -> None:
        """One row after a completed backward pass (a recomputed pass replaces its row)."""
        grads = [norm(l.grads["W"]) if "W" in l.grads else math.nan for l in net.layers]
        deltas = [norm(l.delta) for l in net.layers]
        row = self._n
        if row and self._cols["steps"][row - 1] == step:
            row -= 1
            self.generation = next(_GENERATIONS)
        self._writable(row, len(grads))
        cols = self._cols
        cols["steps"][row] = step
        cols["loss"][row] = float(loss)
        cols["accuracy"][row] = math.nan if accuracy is None else float(accuracy)
        cols["grad_norms"][row] = grads
        cols["delta_norms"][row] = deltas
        self._n = row + 1

    def _writable(self, row: int, layers: int) -> None:
        """Make row ``row`` writable: new memory when it is past the capacity, when a view
        may show it, or when the layer count changed."""
        cols = self._cols
        capacity, width = cols["loss"].shape[0], cols["grad_norms"].shape[1]
        if width != layers and self._n:
            self.generation = next(_GENERATIONS)
        if row < capacity and row >= self._shared and width == layers:
            return
        size = max(capacity * 2 if row >= capacity else capacity, FIRST_CAPACITY)
        fresh = _columns(size, layers)
        keep = min(row, self._n)
        for name, old in cols.items():
            if old.ndim == 2:
                w = min(old.shape[1], layers)
                fresh[name][:keep, :w] = old[:keep, :w]
            else:
                fresh[name][:keep] = old[:keep]
        self._cols, self._shared = fresh, 0

    # ----- export ----------------------------------------------------------------------------
    def arrays(self, layers: int):
        """(steps, loss, accuracy, grad_norms, delta_norms): read-only views, no copy."""
        if self._n == 0:
            shape = (0, layers)
            return (np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), np.empty(shape),
                    np.empty(shape))
        return (self.steps, self.loss, self.accuracy, self.grad_norms, self.delta_norms)

    def to_csv(self, names: list[str]) -> str:
        """Step, loss, accuracy, then ‖∂loss/∂W‖ and ‖δ‖ for every layer."""
        head = ["step", "loss", "accuracy"]
        head += [f"grad_norm[{n}]" for n in names] + [f"delta_norm[{n}]" for n in names]
        rows = [",".join(head)]
        steps, loss, acc, grads, deltas = self.arrays(len(names))
        for i, step in enumerate(steps.tolist()):
            vals = [loss[i], acc[i], *grads[i], *deltas[i]]
            rows.append(",".join([str(step)] + [repr(float(v)) for v in vals]))
        return "\n".join(rows) + "\n"


def _columns(rows: int, layers: int) -> dict:
    return {"steps": np.zeros(rows, dtype=np.int64), "loss": np.full(rows, np.nan),
            "accuracy": np.full(rows, np.nan), "grad_norms": np.full((rows, layers), np.nan),
            "delta_norms": np.full((rows, layers), np.nan)}
