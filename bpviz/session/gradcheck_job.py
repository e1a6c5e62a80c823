"""GradCheckJob: one gradient check of the current sample, with progress and cancel. No Qt.

The job is made in the GUI thread and copies everything it needs there: a float64 clone of
the network, the sample and its target. ``run()`` may then execute on any thread (the panel
runs it on a QThread) without ever reading ``session.net``, which the user may keep stepping.

``run(progress)`` wraps ``bpviz.core.gradient_check``: ``progress(done, total)`` is called
at most every ``interval`` seconds (and once at the end); ``cancel()`` from any thread stops
the check at the next coordinate and keeps the results so far (the last tensor then is
*partial*). ``plan`` lists every tensor the check will visit, so a view can show the rows
still to come. ``is_current(session)`` tells whether the session still holds the exact
weights, sample and architecture the check was made for.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from bpviz.core.gradcheck import PASS, TENSORS, WARN, GradientCheck, gradient_check
from bpviz.core.network import Network

from .session import dataset_targets

H = 1e-6                       # central-difference step (RELIABILITY.md)
THRESHOLDS = (PASS, WARN)      # pass ≤ 1e-5 (and allclose), warn ≤ 1e-3, else fail


@dataclass(frozen=True)
class PlannedTensor:
    layer_index: int
    layer_kind: str
    tensor: str        # "W", "b" or "delta"
    shape: tuple       # of the tensor for one sample (δ without the batch axis)
    size: int          # coordinates in the tensor
    coords: int        # coordinates that will be checked


@dataclass(frozen=True)
class CheckContext:
    """What a check belongs to: the step, the sample, the network's float type."""
    step: int
    sample_index: int
    sample_label: str   # e.g. "class 2 (circle)" or "target [0, 1]"
    dtype: str          # the network's own float type (the check itself is float64)
    max_coords: int | None


def plan_check(net, max_coords: int | None = None, tensors=TENSORS) -> list[PlannedTensor]:
    """The tensors ``gradient_check`` visits, in its order, with how many coordinates each."""
    plan = []
    for layer in net.layers:
        for name in tensors:
            if name == "delta":
                if layer.kind == "Flatten":
                    continue
                shape = tuple(layer.output_shape)
            elif name in layer.params:
                shape = tuple(layer.params[name].shape)
            else:
                continue
            size = int(np.prod(shape))
            n = size if max_coords is None else min(size, max_coords)
            plan.append(PlannedTensor(layer.index, layer.kind, name, shape, size, n))
    return plan


def _sample_label(dataset, index: int, target) -> str:
    t = np.asarray(target)
    classes = tuple(getattr(dataset, "classes", ()) or ())
    if t.ndim == 0 and float(t) == int(t):
        k = int(t)
        name = f" ({classes[k]})" if 0 <= k < len(classes) else ""
        return f"class {k}{name}"
    flat = np.round(t.ravel()[:6], 3).tolist()
    return "target " + str(flat) + (" …" if t.size > 6 else "")


class GradCheckJob:
    """A gradient check of one sample on a private float64 copy of the network."""

    def __init__(self, net, x, t, max_coords: int | None = None, seed: int = 0,
                 context: CheckContext | None = None, interval: float = 0.05):
        if max_coords is not None and max_coords < 1:
            max_coords = None                       # 0 (or less) means every coordinate
        self.net = net.clone(np.float64)            # frozen now: stepping cannot reach it
        self.x = np.array(x, dtype=np.float64, copy=True)
        self.t = np.array(t, copy=True)
        self.max_coords, self.seed, self.interval = max_coords, seed, interval
        self.context = context
        self.plan = plan_check(self.net, max_coords)
        self.total = sum(p.coords for p in self.plan)
        self.done = 0
        self.result: GradientCheck | None = None
        self.elapsed = 0.0
        self._cancel = threading.Event()
        self._source = ()                           # what is_current compares with

    @classmethod
    def from_session(cls, session, max_coords: int | None = None, **kw) -> "GradCheckJob":
        """The check of ``session.sample_index`` with the session's current weights."""
        net, source = frozen_copy(session)
        i, targets = int(session.sample_index), dataset_targets(session.dataset)
        ctx = CheckContext(source[1], i, _sample_label(session.dataset, i, targets[i]),
                           session.net.dtype.name, max_coords or None)
        job = cls(net, session.dataset.x[i:i + 1], targets[i:i + 1], max_coords, context=ctx,
                  **kw)
        job._source = source
        return job

    # ----- running ---------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop at the next coordinate (safe from any thread)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self, progress=None) -> GradientCheck:
        """Run the check (blocking); returns the results, partial if cancelled."""
        start = last = time.perf_counter()

        def step(done, total):
            nonlocal last
            self.done, self.total = done, total
            now = time.perf_counter()
            if progress is not None and (now - last >= self.interval or done == total):
                last = now
                progress(done, total)
            return not self._cancel.is_set()

        if self._cancel.is_set():
            result = GradientCheck([], cancelled=True)
        else:
            result = gradient_check(self.net, self.x, self.t, h=H, max_coords=self.max_coords,
                                    seed=self.seed, progress=step)
        self.elapsed = time.perf_counter() - start
        self.result = result
        self.net = None                             # the copy is no longer needed
        return result

    # ----- reading the results ---------------------------------------------------------------
    def partial(self, result) -> bool:
        """Whether a result row covers fewer coordinates than planned (cut by cancel)."""
        for p in self.plan:
            if (p.layer_index, p.tensor) == (result.layer_index, result.tensor):
                return result.checked + result.skipped < p.coords
        return False

    def pending(self) -> list[PlannedTensor]:
        """Planned tensors with no result (not reached, or everything before a run)."""
        seen = {(r.layer_index, r.tensor) for r in (self.result.results if self.result else [])}
        return [p for p in self.plan if (p.layer_index, p.tensor) not in seen]

    def coordinate_name(self, result, flat_index: int) -> str:
        """'W[2,0,1,1]' or 'δ[3,4,5]' for a flat index into that tensor."""
        for p in self.plan:
            if (p.layer_index, p.tensor) == (result.layer_index, result.tensor):
                idx = np.unravel_index(int(flat_index), p.shape)
                name = "δ" if p.tensor == "delta" else p.tensor
                return f"{name}[{','.join(str(int(i)) for i in idx)}]"
        return f"#{flat_index}"

    def rows(self) -> list[tuple]:
        """(PlannedTensor, CheckResult or None, status) per planned tensor; status is the
        core's "pass"/"warn"/"fail", or "partial" (cut by cancel), or "not run"."""
        got = {(r.layer_index, r.tensor): r for r in (self.result.results if self.result else [])}
        out = []
        for p in self.plan:
            r = got.get((p.layer_index, p.tensor))
            out.append((p, r, "not run" if r is None else
                        "partial" if self.partial(r) else r.status))
        return out

    def summary(self) -> str:
        """One line: sample, step, worst status, how much was checked."""
        ctx, result = self.context, self.result
        worst = result.worst.upper() if result and result.results else "—"
        done = len(result.results) if result else 0
        tail = f"worst: {worst} · {done} of {len(self.plan)} tensors"
        if ctx is None:
            return tail
        extra = (f" (the network trains in {ctx.dtype}; checked on a float64 copy)"
                 if ctx.dtype != "float64" else "")
        return (f"sample {ctx.sample_index} · {ctx.sample_label} · weights of step {ctx.step}"
                f" · {tail}{extra}")

    def worst_coordinate(self, result) -> tuple[int, str]:
        """(position in the result's arrays, coordinate name) of the largest |a − n|."""
        k = int(np.argmax(np.abs(np.asarray(result.analytic) - np.asarray(result.numeric))))
        coords = result.coords
        return k, self.coordinate_name(result, coords[k]) if coords is not None else f"#{k}"


    def is_current(self, session) -> bool:
        """True while the session holds the very weights, sample and architecture checked."""
        return bool(self._source) and _same_source(self._source, _fingerprint(session))

    def stale_reason(self, session) -> str:
        """Why the results no longer describe the session ('' when they do)."""
        if not self._source or self.is_current(session):
            return ""
        old, new = self._source, _fingerprint(session)
        if old[0] != new[0]:
            return "the architecture has changed since this check"
        if old[2] is not new[2] or old[3] != new[3]:
            return f"another sample is selected now (checked: sample {old[3]})"
        return f"the weights have changed since this check (made at step {old[1]})"


def explain(planned: PlannedTensor, result, status: str) -> str:
    """What a row means, in words (tooltips and the read-out line)."""
    name = "δ" if planned.tensor == "delta" else planned.tensor
    head = f"layer {planned.layer_index} {planned.layer_kind} · {name} · {planned.size:,} values"
    if result is None:
        return head + " · not checked"
    why = {"pass": "analytic and numerical gradients agree",
           "warn": "small disagreement, or many coordinates at kinks",
           "fail": "the back-propagated gradient is wrong here",
           "partial": "cancelled part-way: only some coordinates were checked"}[status]
    if result.checked == 0 and result.skipped:
        why = ("every coordinate sits at a kink (a ReLU input at exactly 0 or a max-pool tie) "
               "where the derivative is undefined; nothing could be compared")
    elif result.skipped:
        why += f"; {result.skipped_fraction:.1%} skipped at kinks (ReLU at 0, max-pool ties)"
    return (f"{head}\nrelative error {result.rel_error:.3e} · max |a − n| "
            f"{result.max_abs_error:.3e}\n{why}")


def frozen_copy(session, attempts: int = 100):
    """(float64 copy of ``session.net``, its fingerprint), consistent even while a training
    thread is updating: the weight arrays are read until two reads agree (an update replaces
    every array, so a torn read shows up as a difference)."""
    for _ in range(attempts):
        first = _fingerprint(session)
        second = _fingerprint(session)
        if _same_source(first, second):
            break
    cfg = session.net.config()
    cfg["dtype"] = "float64"
    twin = Network.from_config(cfg)
    it = iter(first[4])
    twin.set_params([{k: next(it) for k in layer.params} for layer in twin.layers])
    return twin, first


def _fingerprint(session) -> tuple:
    """Architecture, step, dataset, sample and the weight arrays themselves (every update or
    load replaces the arrays, so identity tells whether the weights are the same)."""
    net = session.net
    arrays = tuple(v for layer in net.layers for v in layer.params.values())
    return (repr(net.config()), session.step_count, session.dataset, session.sample_index,
            arrays)


def _same_source(a: tuple, b: tuple) -> bool:
    return (a[0] == b[0] and a[1] == b[1] and a[2] is b[2] and a[3] == b[3]
            and len(a[4]) == len(b[4]) and all(x is y for x, y in zip(a[4], b[4])))
