"""NaN/Inf guard: find the first non-finite tensor of a pass and say where it came from."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NonFiniteReport:
    phase: str            # "forward", "backward" or "update"
    layer_index: int
    layer_kind: str
    tensor: str           # "z", "a", "delta", "dW", "db", "W", "b", "loss"
    nan_count: int
    inf_count: int
    size: int
    created_here: bool    # False when the layer received an already non-finite input

    def describe(self) -> str:
        origin = ("created in this layer (its inputs were finite)" if self.created_here
                  else "received from an earlier step of the pass")
        return (f"{self.phase}: layer {self.layer_index} {self.layer_kind} {self.tensor} has "
                f"{self.nan_count} NaN and {self.inf_count} Inf of {self.size} values; {origin}")


def is_finite(arr) -> bool:
    """Fast check: Σ x² is finite only when every element is (NaN and ±Inf carry through a
    sum of squares, and no square is negative to cancel one): one BLAS call, which raises no
    floating-point warning. A non-finite sum also comes from squares beyond the float range
    (|x| > ~1e154, ~1e19 in float32); the largest and smallest element then decide (they
    are finite only when every element is, and cannot overflow)."""
    arr = np.asarray(arr)
    if arr.size and arr.dtype.kind == "f":
        if math.isfinite(np.vdot(arr, arr)):
            return True
        return (math.isfinite(np.maximum.reduce(arr, axis=None))
                and math.isfinite(np.minimum.reduce(arr, axis=None)))
    return bool(np.isfinite(arr).all())


def report(phase, layer, index, tensor, arr, created_here=True) -> NonFiniteReport:
    arr = np.asarray(arr)
    return NonFiniteReport(phase, index, layer.kind, tensor, int(np.isnan(arr).sum()),
                           int(np.isinf(arr).sum()), int(arr.size), created_here)
