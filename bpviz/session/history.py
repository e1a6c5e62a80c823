"""Per-step history: loss, accuracy and each layer's gradient magnitudes."""
from __future__ import annotations

import math

import numpy as np

from .snapshot import norm


class History:
    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.accuracy: list[float] = []
        self.grad_norms: list[list[float]] = []
        self.delta_norms: list[list[float]] = []

    def truncate(self, step: int) -> None:
        """Drop the rows of step ``step`` and later (rewinding to the start of that step)."""
        keep = sum(1 for s in self.steps if s < step)
        for column in (self.steps, self.loss, self.accuracy, self.grad_norms,
                       self.delta_norms):
            del column[keep:]

    def __len__(self) -> int:
        return len(self.loss)

    def record(self, step: int, net, loss: float, accuracy: float | None) -> None:
        """One row after a completed backward pass (a recomputed pass replaces its row)."""
        if self.steps and self.steps[-1] == step:
            for column in (self.steps, self.loss, self.accuracy, self.grad_norms,
                           self.delta_norms):
                column.pop()
        self.steps.append(step)
        self.loss.append(float(loss))
        self.accuracy.append(math.nan if accuracy is None else float(accuracy))
        self.grad_norms.append([norm(l.grads["W"]) if "W" in l.grads else math.nan
                                for l in net.layers])
        self.delta_norms.append([norm(l.delta) for l in net.layers])

    def arrays(self, layers: int):
        shape = (0, layers)
        g = np.array(self.grad_norms, dtype=float) if self.grad_norms else np.empty(shape)
        d = np.array(self.delta_norms, dtype=float) if self.delta_norms else np.empty(shape)
        return (np.array(self.steps, dtype=np.int64), np.array(self.loss, dtype=float),
                np.array(self.accuracy, dtype=float), g, d)

    def to_csv(self, names: list[str]) -> str:
        """Step, loss, accuracy, then ‖∂loss/∂W‖ and ‖δ‖ for every layer."""
        head = ["step", "loss", "accuracy"]
        head += [f"grad_norm[{n}]" for n in names] + [f"delta_norm[{n}]" for n in names]
        rows = [",".join(head)]
        for i, step in enumerate(self.steps):
            vals = [self.loss[i], self.accuracy[i], *self.grad_norms[i], *self.delta_norms[i]]
            rows.append(",".join([str(step)] + [repr(float(v)) for v in vals]))
        return "\n".join(rows) + "\n"
