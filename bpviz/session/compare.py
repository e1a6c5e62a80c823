"""A/B comparison: a twin of the session with one change, stepped in lock-step. No Qt.

``Comparison(session, change)`` builds B from A (the session) at ``start()``: the same
architecture, data, settings and — where the shapes allow — the same weights and momentum,
then the change. Changes (``CHANGES``): ``activation`` (every hidden layer's, e.g. sigmoid →
relu; weights stay identical), ``loss``, ``lr``, ``clip_value``, ``clip_norm``, ``l2`` (B's
optimiser), ``seed`` (B's own initial weights: they differ by design).

Lock-step: while started, every "step" event of A (stepping or continuous training) makes B
take one step on *A's batch* (``session.batch``: the same sample indices, never B's own
order), recorded under A's step number. With ``change={}`` B stays bitwise identical to A.
``histories()`` returns both runs' loss and per-layer ‖∂loss/∂W‖ since the start (A's rows are
copied as each step happens, equal to A's own history, and kept when that is cleared). The
comparison stops itself when A's network, data or weights are replaced (architecture change,
reset, another dataset, a file opened, a restore) or when B meets a NaN/Inf.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from bpviz.core import SGD, Network, NonFiniteError, accuracy
from bpviz.core import activations as core_activations
from bpviz.core import losses

from .history import History
from .session import dataset_targets

CHANGES = {
    "activation": "hidden activation",
    "loss": "loss",
    "lr": "learning rate",
    "clip_value": "clip by value",
    "clip_norm": "clip by norm",
    "l2": "L2",
    "seed": "initialisation (seed)",
}
HIDDEN_ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity")


def check_change(change: dict | None) -> dict:
    """A validated copy of ``change`` (raises ValueError naming the key, value and rule)."""
    change = dict(change or {})
    for key, value in change.items():
        if key not in CHANGES:
            raise ValueError(f"A/B change {key!r} is unknown; use one of {', '.join(CHANGES)}")
        if key == "activation" and value not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"A/B activation {value!r} must be one of "
                             f"{', '.join(HIDDEN_ACTIVATIONS)}")
        if key == "loss" and value not in losses.NAMES:
            raise ValueError(f"A/B loss {value!r} must be one of {', '.join(losses.NAMES)}")
        if key == "seed" and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                              or value < 0):
            raise ValueError(f"A/B seed {value!r} must be a whole number ≥ 0")
    return change


def twin_network(net, change: dict) -> Network:
    """B's network: A's configuration with the change; A's weights where shapes match
    (always, except for a seed change, which keeps B's own initial weights)."""
    cfg = net.config()
    last = len(cfg["layers"]) - 1
    if "activation" in change:
        for i, layer in enumerate(cfg["layers"]):
            if i < last and "activation" in layer:
                layer["activation"] = core_activations.check_name(change["activation"], "A/B")
    if "loss" in change:
        cfg["loss"] = change["loss"]
    if "seed" in change:
        cfg["seed"] = int(change["seed"])
    twin = Network.from_config(cfg)
    if "seed" not in change:
        twin.set_params(net.get_params())
    return twin


class Twin:
    """B: a network, an optimiser and a history; stepped on batches chosen elsewhere."""

    def __init__(self, net: Network, optimizer: SGD):
        self.net, self.optimizer = net, optimizer
        self.history = History()
        self.steps = 0
        self.loss = self.acc = None

    def step(self, x, t, step_number: int) -> None:
        """Forward, backward, history row (as A's step ``step_number``), update."""
        out = self.net.forward(x)
        self.loss = self.net.backward(t)
        self.acc = accuracy(out, np.asarray(t))
        self.history.record(step_number, self.net, self.loss, self.acc)
        if self.net.nonfinite:
            raise NonFiniteError(self.net.first_nonfinite)
        self.optimizer.step(self.net)
        self.steps += 1


class Comparison:
    """A (the session) and B (a twin with ``change``) in lock-step (module docstring)."""

    def __init__(self, session, change: dict | None = None):
        self.session = session
        self.change = check_change(change)
        self.b: Twin | None = None
        self.a_history = History()       # A's rows of the lock-stepped steps (kept after
        #                                  A's own history is cleared or truncated)
        self.start_step = session.step_count
        self.running = False
        self.stopped_reason = ""
        self._dataset = None
        self._lock = threading.RLock()

    def describe(self) -> str:
        """e.g. 'hidden activation sigmoid → relu'."""
        if not self.change:
            return "no change (B is a copy of A)"
        parts = [f"{CHANGES[k]} {self._a_value(k)} → {_text(v)}" for k, v in self.change.items()]
        return ", ".join(parts)

    def _a_value(self, key) -> str:
        s = self.session
        if key == "activation":
            acts = {l.activation for l in s.net.layers[:-1] if "W" in l.params}
            return "/".join(sorted(acts)) or "—"
        if key == "loss":
            return s.net.loss
        if key == "seed":
            return _text(s.net.seed)
        return _text(s.optimizer.settings()[key])

    # ----- start / stop --------------------------------------------------------------------
    def start(self) -> None:
        """Build B from A's present weights and settings, then follow A's steps."""
        if self.running:
            return
        s = self.session
        net = twin_network(s.net, self.change)
        losses.targets(net.loss, dataset_targets(s.dataset), (len(s.dataset),)
                       + tuple(net.output_shape), net.dtype)       # raises if B cannot learn
        settings = s.optimizer.settings()
        settings.update({k: v for k, v in self.change.items() if k in settings})
        opt = SGD(**settings)
        if "seed" not in self.change:                 # same weights: same momentum too
            opt.velocity = {k: v.copy() for k, v in s.optimizer.velocity.items()}
        with self._lock:
            self.b = Twin(net, opt)
            self.a_history = History()
            self.start_step = s.step_count
            self._dataset = s.dataset
            self.running, self.stopped_reason = True, ""
        s.events.subscribe(self._on_event)

    def stop(self, reason: str = "") -> None:
        if self.running:
            self.session.events.unsubscribe(self._on_event)
        self.running = False
        if reason:
            self.stopped_reason = reason

    def step(self, n: int = 1) -> None:
        """Step A ``n`` times (B follows each step); one announcement at the end."""
        s = self.session
        for _ in range(max(int(n), 1) - 1):
            s.train_step()
        s.step()

    # ----- following A ---------------------------------------------------------------------
    def _on_event(self, event) -> None:
        s, kind = self.session, event.kind
        if kind == "step":
            self._follow()
        elif kind in ("architecture", "file"):
            self.stop("A's network changed (edit, reset or file); press Start again")
        elif kind == "restore":
            self.stop("A's weights were restored from the timeline; press Start again")
        elif kind == "data" and s.dataset is not self._dataset:
            self.stop("A's dataset changed; press Start again")

    def _follow(self) -> None:
        s = self.session
        idx = np.array(s.batch, copy=True)
        t = dataset_targets(s.dataset)[idx]
        with self._lock:
            # A's row as A's own history has it (its grads are still this step's)
            self.a_history.record(s.step_count - 1, s.net, s.loss, s.acc)
            try:
                self.b.step(s.dataset.x[idx], t, s.step_count - 1)
            except NonFiniteError as exc:
                self.stop(f"B stopped: {exc}")

    # ----- data ----------------------------------------------------------------------------
    def histories(self) -> dict:
        """Since the start: steps, loss, accuracy and ‖∂loss/∂W‖ (steps, layers) of A and B."""
        n = len(self.session.net.layers)
        with self._lock:
            n = len(self.b.net.layers) if self.b else n
            a = self.a_history.arrays(n)
            b = self.b.history.arrays(n) if self.b else History().arrays(n)
        out = {}
        for side, (steps, loss, acc, grad, _) in (("a", a), ("b", b)):
            out.update({f"steps_{side}": steps, f"loss_{side}": loss,
                        f"accuracy_{side}": acc, f"grad_{side}": grad})
        return out


def _text(value) -> str:
    if value is None:
        return "off"
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    return str(value)
