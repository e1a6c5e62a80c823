"""SGD with clipping, L2 weight decay and momentum; every update is recorded.

For each parameter:  g = clip(∂loss/∂W)  (by value, then by global norm),
ΔW = −η (g + λW) (λ applies to weights "W" only, not biases), with momentum μ:
v ← μ v + ΔW and the update is v. The record keeps W before, g, λW, ΔW and W after, so the
app can show all of them. A non-finite update is never applied.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from . import guard
from .errors import NonFiniteError, SettingsError
from .layers.base import shown


def _number(value, name: str, rule: str, ok) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} {shown(value)} is not a number; it must be {rule}") from None
    if not math.isfinite(v) or not ok(v):
        raise SettingsError(f"{name} {shown(value)} is out of range; it must be {rule}")
    return v


def _optional(value, name):
    if value is None:
        return None
    return _number(value, name, "a finite number > 0 (or off)", lambda v: v > 0)


class ParamUpdate:
    """One parameter's update: ``after = before + update``, ``update = −η(grad + decay)``
    (plus momentum).

    A plain step (no momentum, no L2) makes ``after`` in place as (−η·g) + W and computes
    ``update`` = −η·g again on first use: bitwise the array that was added (IEEE products and
    sums are commutative), without a third weight-sized array per step when no one looks
    (~7 % of a LeNet batch-1 step here).
    """
    __slots__ = ("before", "raw_grad", "grad", "decay", "after", "clipped", "_update", "_lr")

    def __init__(self, before, raw_grad, grad, decay, update, after, clipped: int = 0,
                 lr: float | None = None):
        self.before = before
        self.raw_grad = raw_grad      # ∂loss/∂W before clipping
        self.grad = grad              # the gradient used, after clipping
        self.decay = decay            # λW (None where L2 does not apply)
        self.after = after
        self.clipped = clipped        # elements changed by value clipping
        self._update, self._lr = update, lr
        if update is None and (lr is None or decay is not None):
            raise ValueError("ParamUpdate: without the update array, lr is needed and "
                             "decay must be None")

    @property
    def update(self) -> np.ndarray:
        """ΔW actually applied."""
        if self._update is None:
            self._update = np.multiply(self.grad, -self._lr)
        return self._update

    def __repr__(self) -> str:
        return f"ParamUpdate(shape={self.after.shape}, clipped={self.clipped})"


class UpdateRecord:
    """One update: the settings it used, the global gradient norm, and per layer a dict of
    ``ParamUpdate`` by parameter name (``layers``, made on first use when the step left a
    recipe for it: most steps of a training run are never looked at)."""

    __slots__ = ("lr", "l2", "momentum", "grad_norm", "clip_factor", "_layers", "_make")

    def __init__(self, lr: float, l2: float, momentum: float, grad_norm: float,
                 clip_factor: float, layers=None, make=None):
        self.lr, self.l2, self.momentum = lr, l2, momentum
        self.grad_norm = grad_norm          # global ‖∂loss/∂θ‖ before norm clipping
        self.clip_factor = clip_factor      # global norm-clipping factor (1.0 when none)
        self._layers = [] if layers is None and make is None else layers
        self._make = make

    @property
    def layers(self) -> list[dict[str, ParamUpdate]]:
        if self._layers is None:
            self._layers, self._make = self._make(), None
        return self._layers

    @layers.setter
    def layers(self, value) -> None:
        self._layers, self._make = value, None

    def __repr__(self) -> str:
        return (f"UpdateRecord(lr={self.lr}, l2={self.l2}, momentum={self.momentum}, "
                f"grad_norm={self.grad_norm}, clip_factor={self.clip_factor})")


class SGD:
    def __init__(self, lr: float = 0.01, momentum: float = 0.0, l2: float = 0.0,
                 clip_value: float | None = None, clip_norm: float | None = None):
        self.configure(lr=lr, momentum=momentum, l2=l2, clip_value=clip_value,
                       clip_norm=clip_norm)
        self.velocity: dict = {}
        self.steps = 0

    def configure(self, **settings) -> None:
        """Change settings, validated all together first (nothing changes on an error)."""
        cur = self.settings() if hasattr(self, "lr") else {}
        cur.update(settings)
        unknown = set(cur) - {"lr", "momentum", "l2", "clip_value", "clip_norm"}
        if unknown:
            raise SettingsError(f"optimiser: unknown setting(s) {', '.join(sorted(unknown))}")
        lr = _number(cur["lr"], "learning rate", "a finite number > 0", lambda v: v > 0)
        mom = _number(cur["momentum"], "momentum", "in [0, 1)", lambda v: 0 <= v < 1)
        l2 = _number(cur["l2"], "L2", "a finite number ≥ 0", lambda v: v >= 0)
        cv = _optional(cur["clip_value"], "clip value")
        cn = _optional(cur["clip_norm"], "clip norm")
        self.lr, self.momentum, self.l2, self.clip_value, self.clip_norm = lr, mom, l2, cv, cn

    def settings(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "l2": self.l2,
                "clip_value": self.clip_value, "clip_norm": self.clip_norm}

    def reset(self) -> None:
        self.velocity.clear()
        self.steps = 0

    def _clipped(self, net):
        """[layer, key, raw, used, count] for every parameter, and the global-norm numbers."""
        out, sq, cv = [], 0.0, self.clip_value
        for layer, k, _, _ in net.buffer.entries:
            g = layer.grads[k]
            used, count = g, 0
            if cv is not None:
                used = np.clip(g, -cv, cv)
                count = int(np.count_nonzero(used != g))
            sq += float(np.vdot(used, used))
            out.append([layer, k, g, used, count])
        norm = math.sqrt(sq)
        factor = 1.0
        if self.clip_norm is not None and norm > self.clip_norm:
            factor = self.clip_norm / norm
            for entry in out:
                entry[3] = entry[3] * factor
        return out, norm, factor

    def step(self, net) -> UpdateRecord:
        """Apply one update from the gradients of the last backward pass; return its record."""
        for layer in net.layers:
            if layer.params and layer.delta is None:
                raise SettingsError("update: no gradients yet; run forward and backward first")
        plain = (self.clip_value is None and self.clip_norm is None
                 and self.momentum == 0 and self.l2 == 0)
        flat = net.buffer.current() if plain else None
        if flat is not None:
            return self._flat_step(net, *flat)
        with np.errstate(over="ignore", invalid="ignore"):   # non-finite is reported below
            return self._step(net)

    def _flat_step(self, net, params, grads) -> UpdateRecord:
        """The plain step W ← W − η g over the network's whole parameter and gradient buffers
        (flat.py): the norm, the update and the new weights in three NumPy calls. The record
        holds the views of all three (the lists the buffer keeps), equal element by element
        to what ``_step`` makes; its ``ParamUpdate``s are made when someone asks."""
        buf, lr = net.buffer, self.lr
        norm = math.sqrt(float(np.vdot(grads, grads)))       # (BLAS: never a NumPy warning)
        after, views = buf.fresh()
        # A norm that proves the new weights finite also rules out any overflow to silence.
        with (contextlib.nullcontext() if self._proves_finite(norm)
              else np.errstate(over="ignore", invalid="ignore")):
            np.multiply(grads, -lr, out=after)
            after += params
        layers, entries = net.layers, buf.entries
        befores, used = buf.param_views, buf.grad_views

        def make():
            rows = {id(layer): {} for layer in layers}
            for (layer, k, _, _), before, g, a in zip(entries, befores, used, views):
                rows[id(layer)][k] = ParamUpdate(before, g, g, None, None, a, 0, lr=lr)
            return [rows[id(layer)] for layer in layers]

        record = UpdateRecord(lr, self.l2, self.momentum, norm, 1.0, make=make)
        return self._apply(net, record, {}, after, views)

    def _step(self, net) -> UpdateRecord:
        """Clipping, L2 and momentum, one parameter at a time; the new weights are written
        into the views of one new buffer, as the flat step's are."""
        clipped, norm, factor = self._clipped(net)
        record = UpdateRecord(self.lr, self.l2, self.momentum, norm, factor)
        new_velocity = {}
        after, views = net.buffer.fresh()
        entries = {id(layer): {} for layer in net.layers}
        for (layer, k, raw, g, count), out in zip(clipped, views):
            entries[id(layer)][k] = self._param_update(layer, k, raw, g, count, new_velocity, out)
        record.layers = [entries[id(layer)] for layer in net.layers]
        return self._apply(net, record, new_velocity, after, views)

    def _param_update(self, layer, k, raw, g, count, new_velocity, out) -> ParamUpdate:
        """ΔW = −η (g + λW) (plus momentum) and W + ΔW (written to ``out``) for one parameter
        (not applied)."""
        W = layer.params[k]
        decay = self.l2 * W if (k == "W" and self.l2 > 0) else None
        if decay is None and self.momentum == 0:
            np.multiply(g, -self.lr, out=out)
            out += W
            return ParamUpdate(W, raw, g, None, None, out, count, lr=self.lr)
        step = -self.lr * (g if decay is None else g + decay)
        if self.momentum > 0:
            v = self.velocity.get((layer.index, k))
            if v is not None and v.shape == step.shape:
                step = self.momentum * v + step
            new_velocity[(layer.index, k)] = step
        np.add(W, step, out=out)
        return ParamUpdate(W, raw, g, decay, step, out, count)

    def _proves_finite(self, norm: float) -> bool:
        """Weights are always finite (checked on load and on every update), so a finite
        gradient norm with no overflow risk proves every new weight finite too."""
        return math.isfinite(norm) and self.lr * (norm + 1.0) < 1e100 and self.l2 < 1e100

    def _apply(self, net, record, new_velocity, after, views) -> UpdateRecord:
        """Check the new weights (unless the norm proves them finite), then apply them all:
        ``after`` becomes the network's parameter buffer."""
        norm = record.grad_norm
        if not self._proves_finite(norm):
            for (layer, k, _, _), a in zip(net.buffer.entries, views):
                if not guard.is_finite(a):
                    raise NonFiniteError(guard.report("update", layer, layer.index, k, a,
                                                      math.isfinite(norm)))
        net.buffer.install(after, views)                   # all finite: apply together
        self.velocity.update(new_velocity)
        self.steps += 1
        return record
