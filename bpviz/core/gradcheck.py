"""Gradient check: central differences in float64, per layer and tensor, kink-aware.

For every checked coordinate θ_i:  n_i = (L(θ + h e_i) − L(θ − h e_i)) / 2h with h = 1e-6.
A coordinate is skipped when a ReLU mask or a max-pool routing differs between θ ± h (a kink
lies in between, where the derivative is undefined). Per tensor the relative error is
‖a − n‖ / (‖a‖ + ‖n‖). Badges: pass ≤ 1e-5 and elementwise allclose(atol=1e-5, rtol=1e-3);
warn ≤ 1e-3 or more than 1 % of coordinates skipped; fail otherwise. A tensor whose every
difference is ≤ 1e-8 (below the round-off of the differences themselves) also passes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PASS, WARN = 1e-5, 1e-3
ABS_FLOOR = 1e-8      # absolute differences below this are finite-difference noise
TENSORS = ("W", "b", "delta")


@dataclass
class CheckResult:
    layer_index: int
    layer_kind: str
    tensor: str                # "W", "b" or "delta"
    rel_error: float
    max_abs_error: float
    checked: int
    skipped: int
    status: str                # "pass", "warn" or "fail"
    analytic: np.ndarray       # values at the checked coordinates
    numeric: np.ndarray
    coords: np.ndarray | None = None   # flat indices of those coordinates (same order)

    @property
    def skipped_fraction(self) -> float:
        total = self.checked + self.skipped
        return self.skipped / total if total else 0.0


@dataclass
class GradientCheck:
    results: list[CheckResult]
    cancelled: bool = False

    @property
    def worst(self) -> str:
        order = {"pass": 0, "warn": 1, "fail": 2}
        return max((r.status for r in self.results), key=order.get, default="pass")


def relative_error(a: np.ndarray, n: np.ndarray) -> float:
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)


def status_of(rel: float, a: np.ndarray, n: np.ndarray, skipped_fraction: float) -> str:
    close = np.allclose(a, n, atol=1e-5, rtol=1e-3)
    # Tiny gradients (vanishing ones) carry central-difference round-off of ~1e-10, which can
    # exceed 1e-5 relative error although both agree to far below what h = 1e-6 resolves.
    below_noise = len(a) > 0 and float(np.max(np.abs(a - n))) <= ABS_FLOOR
    if (rel <= PASS or below_noise) and close and skipped_fraction <= 0.01:
        return "pass"
    return "warn" if rel <= WARN else "fail"


def _kinks(net):
    return [None if s is None else s.copy() for s in (l.kink_state() for l in net.layers)]


def _same(k1, k2) -> bool:
    return all((a is None and b is None) or np.array_equal(a, b) for a, b in zip(k1, k2))


def _coords(size: int, max_coords: int | None, rng) -> np.ndarray:
    if max_coords is None or size <= max_coords:
        return np.arange(size)
    return np.sort(rng.choice(size, max_coords, replace=False))


def gradient_check(net, x, t, h: float = 1e-6, max_coords: int | None = None, seed: int = 0,
                   tensors=TENSORS, layers=None, progress=None) -> GradientCheck:
    """Compare analytic and numerical gradients of ``net`` (copied to float64) on (x, t).

    ``max_coords`` samples that many coordinates per tensor; ``progress(done, total)`` is
    called as work proceeds and may return False to cancel (partial results are kept).
    """
    twin = net.clone(np.float64)
    x = np.asarray(x, dtype=np.float64)
    twin.forward(x)
    twin.backward(t)
    base_kinks = _kinks(twin)
    rng = np.random.default_rng(seed)
    chosen = range(len(twin.layers)) if layers is None else layers
    plan = []
    for i in chosen:
        layer = twin.layers[i]
        for name in tensors:
            if name == "delta":
                if layer.kind in ("Flatten",) or layer.delta is None:
                    continue
                size = layer.delta.size
            elif name in layer.params:
                size = layer.params[name].size
            else:
                continue
            plan.append((i, name, _coords(size, max_coords, rng)))
    total, done = sum(len(c) for _, _, c in plan), 0
    analytic = {(i, n): (twin.layers[i].delta if n == "delta" else twin.layers[i].grads[n]).copy()
                for i, n, _ in plan}
    z_base = {i: twin.layers[i].z.copy() for i, n, _ in plan if n == "delta"}
    results, cancelled = [], False
    for i, name, coords in plan:
        layer = twin.layers[i]
        num, ana, kept, skipped = [], [], [], 0
        for c in coords:
            plus, k_plus = _perturbed_loss(twin, x, t, i, name, c, h, z_base)
            minus, k_minus = _perturbed_loss(twin, x, t, i, name, c, -h, z_base)
            if not (_same(k_plus, base_kinks) and _same(k_minus, base_kinks)):
                skipped += 1
            else:
                num.append((plus - minus) / (2 * h))
                ana.append(analytic[(i, name)].flat[c])
                kept.append(c)
            done += 1
            if progress is not None and progress(done, total) is False:
                cancelled = True
                break
        a, n = np.array(ana), np.array(num)
        rel = relative_error(a, n)
        frac = skipped / max(1, skipped + len(num))
        results.append(CheckResult(i, layer.kind, name, rel,
                                   float(np.max(np.abs(a - n))) if len(a) else 0.0,
                                   len(num), skipped, status_of(rel, a, n, frac), a, n,
                                   np.array(kept, dtype=np.int64)))
        if cancelled:
            break
    return GradientCheck(results, cancelled)


def _perturbed_loss(net, x, t, i, name, coord, h, z_base):
    layer = net.layers[i]
    if name == "delta":
        z = z_base[i].copy()
        z.flat[coord] += h
        net.forward(x)                     # fresh caches for the layers before i
        net.forward_from(i, z)
    else:
        p = layer.params[name]
        old = p.flat[coord]
        p.flat[coord] = old + h
        net.forward(x)
        p.flat[coord] = old
    return net.loss_of(t), _kinks(net)
