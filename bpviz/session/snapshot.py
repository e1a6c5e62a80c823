"""Immutable copies of what the panels show, made once per phase by the session.

Batch-sized tensors (x, z, a, δ) are copied for the displayed sample only; parameters,
gradients and the last update are copied whole. The history columns are read-only views
that the session's History never changes (copy-on-write, see history.py), so they cost
nothing to take. Views draw snapshots; they never compute.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def norm(arr) -> float:
    if arr is None:
        return float("nan")
    return math.sqrt(float(np.vdot(arr, arr)))


def _copy(arr, sample=None):
    if arr is None:
        return None
    out = arr[sample] if sample is not None else arr
    return np.array(out, copy=True)


@dataclass(frozen=True)
class ParamSnapshot:
    before: np.ndarray
    raw_grad: np.ndarray      # ∂loss/∂W before clipping
    grad: np.ndarray          # ∂loss/∂W after clipping (the gradient used)
    decay: np.ndarray | None  # λW
    update: np.ndarray        # ΔW applied
    after: np.ndarray
    clipped: int              # elements changed by clipping by value
    clip_factor: float        # global norm-clipping factor of that update (1.0 when none)


@dataclass(frozen=True)
class LayerSnapshot:
    index: int
    kind: str
    title: str                # e.g. "Conv2D(1→4, k=3, s=1, p=1, relu)"
    activation: str
    input_shape: tuple
    output_shape: tuple
    z: np.ndarray | None      # displayed sample only
    a: np.ndarray | None
    delta: np.ndarray | None
    params: dict              # name -> current values
    grads: dict               # name -> ∂loss/∂param of the last backward (None before)
    updates: dict             # name -> ParamSnapshot of the last update ({} before)
    grad_norm: float          # ‖∂loss/∂W‖ (nan without weights or before backward)
    delta_norm: float         # ‖δ‖ over the batch


@dataclass(frozen=True)
class Snapshot:
    step: int                 # updates applied so far
    phase: str                # "idle", "forward", "backward", "update"
    layer: int | None         # layer the cursor is on (None when no pass is in progress)
    done: bool                # the phase is complete
    label: str                # e.g. "backward · layer 2 Conv2D (3 of 7)"
    sample_index: int         # dataset index of the displayed sample
    batch_indices: np.ndarray
    x: np.ndarray             # the displayed input sample
    target: np.ndarray | None
    output: np.ndarray | None
    loss: float | None
    accuracy: float | None
    input_grad: np.ndarray | None
    layers: tuple
    history_steps: np.ndarray        # step number of each history row
    loss_history: np.ndarray
    accuracy_history: np.ndarray
    grad_norm_history: np.ndarray    # (steps, layers) ‖∂loss/∂W‖, nan for parameter-free layers
    delta_norm_history: np.ndarray   # (steps, layers) ‖δ‖
    nonfinite: object = None         # NonFiniteReport or None
    lr: float = 0.0
    classes: tuple = ()              # dataset class names (index = label)
    # History.generation of the history arrays (0: unknown). Two snapshots with the same
    # generation share their first rows: a view may draw only the new ones.
    history_generation: int = 0

    def layer_snapshot(self, index: int) -> LayerSnapshot:
        return self.layers[index]


def layer_snapshot(layer, sample: int, last_update: dict | None,
                   clip_factor: float = 1.0) -> LayerSnapshot:
    has_grads = layer.delta is not None
    grads = {k: _copy(v) for k, v in layer.grads.items()} if has_grads else {}
    updates = {}
    for k, u in (last_update or {}).items():
        updates[k] = ParamSnapshot(_copy(u.before), _copy(u.raw_grad), _copy(u.grad),
                                   _copy(u.decay), _copy(u.update), _copy(u.after),
                                   u.clipped, clip_factor)
    gnorm = norm(layer.grads.get("W")) if has_grads and "W" in layer.grads else float("nan")
    return LayerSnapshot(
        layer.index, layer.kind, layer.describe(), layer.activation,
        tuple(layer.input_shape), tuple(layer.output_shape),
        _copy(layer.z, sample) if layer.z is not None else None,
        _copy(layer.a, sample) if layer.a is not None else None,
        _copy(layer.delta, sample) if has_grads else None,
        {k: _copy(v) for k, v in layer.params.items()}, grads, updates,
        gnorm, norm(layer.delta) if has_grads else float("nan"))
