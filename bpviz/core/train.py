"""Training over a dataset: per-sample, mini-batch or full-batch SGD steps.

A step is forward → backward → update on the next batch; with ``reduction="sum"`` the update
uses the sum of the per-sample gradients (the notes' batch gradient descent), with "mean"
their average.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import SettingsError, TargetError
from .optim import SGD, UpdateRecord

MODES = ("sample", "mini-batch", "full-batch")


def accuracy(output: np.ndarray, labels: np.ndarray) -> float | None:
    """Fraction of samples whose predicted class equals the label (None for regression)."""
    labels = np.asarray(labels)
    if output.ndim != 2 or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        return None
    if output.shape[1] == 1:
        predicted = (output[:, 0] > 0.5).astype(np.int64)
    else:
        predicted = output.argmax(axis=1)
    return float(np.mean(predicted == labels))


@dataclass
class StepResult:
    step: int
    loss: float
    accuracy: float | None
    indices: np.ndarray
    record: UpdateRecord


class Trainer:
    """Walks a dataset in batches and applies SGD steps to a network."""

    def __init__(self, net, optimizer: SGD, x, y, mode: str = "mini-batch",
                 batch_size: int = 32, shuffle: bool = True, seed: int = 0):
        x, y = np.asarray(x), np.asarray(y)
        if len(x) == 0:
            raise TargetError("dataset: 0 samples; training needs at least 1")
        if len(x) != len(y):
            raise TargetError(f"dataset: {len(x)} inputs but {len(y)} targets; "
                              f"they must be the same length")
        self.net, self.optimizer, self.x, self.y = net, optimizer, x, y
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self.set_mode(mode, batch_size)
        self.steps = 0
        self._order = np.arange(len(x))
        self._cursor = len(x)          # forces a fresh epoch order on the first batch
        self.epoch = 0

    def set_mode(self, mode: str, batch_size: int | None = None) -> None:
        if mode not in MODES:
            raise SettingsError(f"training mode {mode!r} is unknown; use one of {', '.join(MODES)}")
        size = self.__dict__.get("batch_size", 32) if batch_size is None else batch_size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise SettingsError(f"batch size {size!r} must be a whole number ≥ 1")
        self.mode, self.batch_size = mode, int(size)

    @property
    def effective_batch(self) -> int:
        return {"sample": 1, "full-batch": len(self.x)}.get(self.mode, min(self.batch_size,
                                                                              len(self.x)))

    def next_indices(self) -> np.ndarray:
        n, size = len(self.x), self.effective_batch
        if self.mode == "full-batch":
            return np.arange(n)
        if self._cursor >= n:            # a short last batch is kept (nothing skipped)
            self._order = self._rng.permutation(n) if self.shuffle else np.arange(n)
            self._cursor = 0
            self.epoch += 1
        idx = self._order[self._cursor:self._cursor + size]
        self._cursor += size
        return idx

    def step(self, indices=None) -> StepResult:
        idx = self.next_indices() if indices is None else np.asarray(indices)
        xb, yb = self.x[idx], self.y[idx]
        out = self.net.forward(xb)
        loss = self.net.backward(yb)
        record = self.optimizer.step(self.net)
        self.steps += 1
        return StepResult(self.steps, loss, accuracy(out, yb), idx, record)

    def evaluate(self, x=None, y=None) -> tuple[float, float | None]:
        """Loss and accuracy on a whole set (default: the training set), weights unchanged."""
        x = self.x if x is None else x
        y = self.y if y is None else y
        out = self.net.forward(x)
        return self.net.loss_of(y), accuracy(out, y)
