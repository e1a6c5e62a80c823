"""Breakpoint conditions for ``session.breakpoints``, and the monitor that reports hits. No Qt.

A ``Condition`` is a callable ``condition(session) -> reason | None`` (the hook the session
checks after every unit while any breakpoint is set, see ``Session.train_step``). It looks
only at the unit just computed, so a stop lands on the exact layer and phase:

* ``vanishing`` / ``exploding`` — after a layer's backward unit: ‖δ‖ (over the whole batch,
  the norm the gradient panel and history show) or ‖∂loss/∂W‖ below / above a threshold;
* ``nonfinite`` — after a forward or backward unit whose per-layer NaN/Inf check
  (``net.nonfinite``) reported: layer, tensor, NaN and Inf counts, created here or received.
  For "all layers" only the first report of the pass fires (where the trouble starts); for
  one layer, any non-finite z/a (forward) or δ/∂W/∂b (backward) of that layer;
* ``dead_relu`` — after a ReLU layer's forward unit: the fraction of its units that are
  *never active for any sample of the batch* (z ≤ 0 everywhere) is above a threshold. A unit
  is a neuron of a Dense layer, or a whole filter (channel) of a Conv2D layer, since a
  filter's weights are shared by every position.

A condition set for all layers fires at the first matching layer of a pass and not again for
the rest of that pass (``once_per_pass``), so continuing (F5) runs to the next step.

``Monitor`` keeps the conditions, puts the enabled ones into ``session.breakpoints`` (an empty
list keeps ``train_step`` on its fast path) and, after a stepping action, checks every unit
the cursor passed (F10 runs many units at once), returning ``Hit`` records in order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .snapshot import norm

KINDS = ("vanishing", "exploding", "nonfinite", "dead_relu")
TENSORS = ("delta", "dW")
TENSOR_TEXT = {"delta": "‖δ‖", "dW": "‖∂loss/∂W‖"}
KIND_TEXT = {"vanishing": "vanishing", "exploding": "exploding",
             "nonfinite": "first NaN/Inf", "dead_relu": "dead ReLU"}
DEFAULT_THRESHOLD = {"vanishing": 1e-6, "exploding": 1e3, "nonfinite": None, "dead_relu": 0.5}


def sci(value: float) -> str:
    """Compact number for reasons: 3.2e-09, 0.0123, 1e+03."""
    if value is None or not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        mantissa, exp = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exp}"
    return f"{value:.3g}"


def where(session, phase: str, index: int) -> str:
    return f"{phase} · layer {index} ({index + 1} of {len(session.net.layers)})"


@dataclass(eq=False)
class Condition:
    """One breakpoint. ``layer`` None = every layer; ``threshold`` per ``kind`` (a fraction
    in (0, 1) for dead_relu, unused for nonfinite); ``tensor`` "delta" or "dW" for norms."""
    kind: str
    layer: int | None = None
    threshold: float | None = None
    tensor: str = "delta"
    enabled: bool = True
    once_per_pass: bool = True
    hits: int = 0
    last_reason: str = ""
    _fired: tuple | None = field(default=None, repr=False)
    # Called as listener(condition, reason) when the session's own check (train_step) stops
    # on this condition; set by Monitor.add.
    listener: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"breakpoint: kind {self.kind!r} is unknown; use one of "
                             f"{', '.join(KINDS)}")
        if self.tensor not in TENSORS:
            raise ValueError(f"breakpoint: tensor {self.tensor!r} must be 'delta' or 'dW'")
        if self.threshold is None:
            self.threshold = DEFAULT_THRESHOLD[self.kind]
        if self.kind != "nonfinite":
            t = float(self.threshold)
            if not math.isfinite(t) or t < 0 or (self.kind == "dead_relu" and t >= 1):
                rule = "in [0, 1)" if self.kind == "dead_relu" else "a finite number ≥ 0"
                raise ValueError(f"breakpoint: threshold {self.threshold!r} must be {rule}")
            self.threshold = t
        if self.layer is not None and (not isinstance(self.layer, (int, np.integer))
                                       or self.layer < 0):
            raise ValueError(f"breakpoint: layer {self.layer!r} must be an index ≥ 0 or None")

    # ----- what the session calls ------------------------------------------------------------
    def __call__(self, session) -> str | None:
        if session.phase not in ("forward", "backward") or session.layer is None:
            return None
        reason = self.check(session, session.phase, session.layer)
        if reason and self.listener is not None:
            self.listener(self, reason)
        return reason

    @property
    def phases(self) -> tuple:
        """The passes whose units this condition looks at."""
        return {"vanishing": ("backward",), "exploding": ("backward",),
                "dead_relu": ("forward",), "nonfinite": ("forward", "backward")}[self.kind]

    def check(self, session, phase: str, index: int, step: int | None = None) -> str | None:
        """Why to stop after unit (phase, layer index) of ``step`` (default: the step in
        progress), or None."""
        if not self.enabled or phase not in self.phases:
            return None
        if self.layer is not None and index != self.layer:
            return None
        if index >= len(session.net.layers):
            return None
        key = (session.step_count if step is None else step, phase)
        if self.once_per_pass and self.layer is None and self._fired == key:
            return None
        reason = getattr(self, "_" + self.kind)(session, phase, index)
        if reason:
            self._fired = key
            self.hits += 1
            self.last_reason = f"{reason} ({where(session, phase, index)})"
            return self.last_reason
        return None

    def reset(self) -> None:
        self._fired = None

    # ----- the four tests --------------------------------------------------------------------
    def _value(self, layer) -> float | None:
        if self.tensor == "dW":
            return norm(layer.grads["W"]) if "W" in layer.grads and layer.delta is not None \
                else None
        return norm(layer.delta) if layer.delta is not None else None

    def _vanishing(self, session, phase, index):
        layer = session.net.layers[index]
        v = self._value(layer)
        if v is None or not v < self.threshold:
            return None
        return (f"vanishing: layer {index} {layer.kind} {TENSOR_TEXT[self.tensor]} = {sci(v)} "
                f"< {sci(self.threshold)}")

    def _exploding(self, session, phase, index):
        layer = session.net.layers[index]
        v = self._value(layer)
        if v is None or not v > self.threshold:          # NaN never compares true
            return None
        return (f"exploding: layer {index} {layer.kind} {TENSOR_TEXT[self.tensor]} = {sci(v)} "
                f"> {sci(self.threshold)}")

    def _nonfinite(self, session, phase, index):
        reports = [r for r in session.net.nonfinite if r.phase == phase]
        report = next((r for r in reports if r.layer_index == index), None)
        if self.layer is None:
            first = session.net.nonfinite[0] if session.net.nonfinite else None
            if report is None or report is not first:
                return None
        elif report is None:
            report = _layer_report(session.net.layers[index], index, phase)
            if report is None:
                return None
        origin = "created here" if report.created_here else "received from an earlier layer"
        return (f"NaN/Inf: layer {index} {report.layer_kind} {report.tensor} has "
                f"{report.nan_count} NaN and {report.inf_count} Inf of {report.size}, {origin}")

    def _dead_relu(self, session, phase, index):
        layer = session.net.layers[index]
        if layer.activation != "relu" or layer.z is None:
            return None
        dead, units = dead_units(layer.z)
        frac = dead / units
        if not frac > self.threshold:
            return None
        what = "filters" if layer.z.ndim == 4 else "units"
        return (f"dead ReLU: layer {index} {layer.kind} {dead}/{units} {what} "
                f"({100 * frac:.0f} %) never active over the batch of {len(layer.z)} "
                f"> {100 * self.threshold:.0f} %")

    # ----- description -------------------------------------------------------------------------
    def describe(self) -> str:
        """'‖δ‖ < 1e-06' — the condition without the layer."""
        if self.kind == "nonfinite":
            return "NaN or Inf appears"
        if self.kind == "dead_relu":
            return f"never-active ReLU units > {100 * self.threshold:g} %"
        op = "<" if self.kind == "vanishing" else ">"
        return f"{TENSOR_TEXT[self.tensor]} {op} {sci(self.threshold)}"

    def layer_text(self) -> str:
        return "all layers" if self.layer is None else f"layer {self.layer}"


def dead_units(z) -> tuple[int, int]:
    """(never-active units, units) of a ReLU layer's z over the batch: Dense (N, n) counts
    neurons, Conv2D (N, C, H, W) counts filters (a filter is dead if z ≤ 0 everywhere)."""
    z = np.asarray(z)
    active = z > 0
    axes = (0,) if z.ndim == 2 else (0, 2, 3) if z.ndim == 4 else tuple(range(z.ndim - 1))
    alive = active.any(axis=axes)
    return int(alive.size - np.count_nonzero(alive)), int(alive.size)


def _layer_report(layer, index, phase):
    from bpviz.core import guard
    tensors = ([("z", layer.z), ("a", layer.a)] if phase == "forward" else
               [("delta", layer.delta)] + [("d" + k, g) for k, g in layer.grads.items()])
    for name, arr in tensors:
        if arr is not None and not guard.is_finite(arr):
            return guard.report(phase, layer, index, name, arr, created_here=False)
    return None


# ----------------------------------------------------------------------------- constructors

def vanishing(threshold: float = 1e-6, layer: int | None = None, tensor: str = "delta"):
    return Condition("vanishing", layer, threshold, tensor)


def exploding(threshold: float = 1e3, layer: int | None = None, tensor: str = "delta"):
    return Condition("exploding", layer, threshold, tensor)


def nonfinite(layer: int | None = None):
    return Condition("nonfinite", layer)


def dead_relu(fraction: float = 0.5, layer: int | None = None):
    return Condition("dead_relu", layer, fraction)


# ----------------------------------------------------------------------------- the monitor

@dataclass(frozen=True)
class Hit:
    step: int              # updates applied before this pass (the status bar's "step N")
    phase: str
    layer: int
    reason: str
    condition: Condition | None = None


def position(session) -> tuple[int, int]:
    """(step in progress, unit) of the cursor: forward i → i, backward i → 2L−1−i,
    update → 2L, idle → −1 (units in the order a step computes them)."""
    n = len(session.net.layers)
    phase, layer, step = session.phase, session.layer, session.step_count
    if phase == "forward" and layer is not None:
        return step, layer
    if phase == "backward" and layer is not None:
        return step, 2 * n - 1 - layer
    if phase == "update":
        return step - 1, 2 * n
    return step, -1


def unit_at(pos: int, n: int):
    """(phase, layer) of unit number ``pos`` (None for the update or idle)."""
    if 0 <= pos < n:
        return "forward", pos
    if n <= pos < 2 * n:
        return "backward", 2 * n - 1 - pos
    return None


class Monitor:
    """The breakpoint list of one session, and the check after each stepping action."""

    def __init__(self, session, on_hit=None):
        self.session = session
        self.conditions: list[Condition] = []
        self.hits: list[Hit] = []
        self.seen = position(session)
        # on_hit(hit) for stops made by train_step (possibly in the training thread)
        self.on_hit = on_hit

    def set_session(self, session) -> None:
        self._uninstall()
        self.session = session
        for c in self.conditions:
            c.reset()
        self.sync()
        self.seen = position(session)

    # ----- the list ----------------------------------------------------------------------------
    def add(self, condition: Condition) -> Condition:
        condition.listener = self._session_hit
        self.conditions.append(condition)
        self.sync()
        return condition

    def remove(self, condition: Condition) -> None:
        self.conditions.remove(condition)
        self.sync()

    def set_enabled(self, condition: Condition, enabled: bool) -> None:
        condition.enabled = bool(enabled)
        self.sync()

    def active(self) -> list[Condition]:
        n = len(self.session.net.layers)
        return [c for c in self.conditions
                if c.enabled and (c.layer is None or c.layer < n)]

    def sync(self) -> None:
        """Put exactly the active conditions into session.breakpoints (others' entries
        stay); with none the session keeps its fast path."""
        bps = self.session.breakpoints
        wanted = self.active()
        for c in [b for b in bps if isinstance(b, Condition) and b not in wanted]:
            bps.remove(c)
        for c in wanted:
            if not any(b is c for b in bps):
                bps.append(c)

    def _uninstall(self) -> None:
        bps = self.session.breakpoints
        for c in [b for b in bps if any(b is m for m in self.conditions)]:
            bps.remove(c)

    # ----- checking ----------------------------------------------------------------------------
    def track(self) -> None:
        """Remember where the cursor is (no checks): after a run or an edit."""
        self.seen = position(self.session)

    def structure_changed(self) -> None:
        for c in self.conditions:
            c.reset()
        self.sync()
        self.track()

    def units_since(self, before, now) -> list[tuple[str, int]]:
        """The units computed between two cursor positions (a new step or a restarted pass
        counts from its first unit)."""
        n = len(self.session.net.layers)
        (s0, p0), (s1, p1) = before, now
        start = p0 + 1 if (s1 == s0 and p1 >= p0) else 0
        units = [unit_at(p, n) for p in range(start, p1 + 1)]
        return [u for u in units if u is not None]

    def after_action(self) -> list[Hit]:
        """Check every unit the cursor passed since the last call; record and return hits."""
        now = position(self.session)
        before, self.seen = self.seen, now
        conditions = self.active()
        if not conditions:
            return []
        hits = []
        for phase, index in self.units_since(before, now):
            for c in conditions:
                reason = c.check(self.session, phase, index, now[0])
                if reason:
                    hits.append(Hit(now[0], phase, index, reason, c))
        self.hits += hits
        return hits

    def _session_hit(self, condition: Condition, reason: str) -> None:
        """train_step stopped on ``condition`` (the cursor is at the unit)."""
        s = self.session
        self.seen = position(s)
        hit = Hit(self.seen[0], s.phase, s.layer, reason, condition)
        self.hits.append(hit)
        if self.on_hit is not None:
            self.on_hit(hit)
