"""Saturation: where f′(z) is small, the error δ cannot get back — the cause of vanishing
gradients, per unit and per layer. Pure NumPy, no Qt.

δ^l = (W^{l+1})ᵀ δ^{l+1} ⊙ f′(z^l): every layer multiplies the error by its activation's
derivative. ReLU passes it unchanged where z > 0 (f′ = 1) and not at all where z ≤ 0;
sigmoid passes at most a quarter (σ′ ≤ 0.25) even when nothing is saturated; tanh at most all.

Rules (a *unit* is a neuron of a Dense layer or a channel of a Conv2D layer, all positions):

* **dead** ReLU unit: z ≤ 0 for every sample of the batch (and every position) — its weights
  get no gradient at all from this batch;
* **saturated** sigmoid/tanh unit: f′(z) < ``SATURATED_BELOW`` = 0.01 for every sample (and
  position): it passes back less than 1 % of the error. That is |z| > 4.58 for sigmoid and
  |z| > 2.99 for tanh (``z_threshold``).

Per value (every sample, unit and position) ``values_fraction`` is the share of f′ below the
same limits (ReLU: z ≤ 0). ``attenuation`` multiplies the layers' mean f′ from the output down
to each layer: how much the activations alone shrink δ on its way back (the output layer's f′
does not count when the loss is fused with it: softmax + cross-entropy, sigmoid + BCE).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bpviz.core import activations, losses

SATURATED_BELOW = 0.01
MAX_DERIVATIVE = {"identity": 1.0, "relu": 1.0, "tanh": 1.0, "sigmoid": 0.25, "softmax": 0.25}
RULES = {"relu": "dead", "sigmoid": "saturated", "tanh": "saturated"}


def max_derivative(activation: str) -> float:
    """Largest value f′ can take (ReLU and tanh 1, sigmoid 0.25)."""
    return MAX_DERIVATIVE[activation]


def derivative(activation: str, z) -> np.ndarray:
    """f′(z) element-wise (softmax: the diagonal a(1 − a) of its Jacobian, over axis 1)."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return activations.derivative(activation, z, activations.forward(activation, z))


def sample_derivative(activation: str, z) -> np.ndarray:
    """f′ of one sample's z (no batch axis), e.g. a Snapshot's ``layer.z``."""
    return derivative(activation, np.asarray(z)[None])[0]


def z_threshold(activation: str) -> float | None:
    """|z| beyond which a sigmoid/tanh unit counts as saturated (f′ < SATURATED_BELOW)."""
    c = SATURATED_BELOW
    if activation == "sigmoid":                 # σ(1 − σ) = c  →  σ = (1 − √(1 − 4c)) / 2
        s = (1 - math.sqrt(1 - 4 * c)) / 2
        return -math.log(s / (1 - s))
    if activation == "tanh":                    # 1 − tanh² = c
        return math.atanh(math.sqrt(1 - c))
    return None


def rule_text(activation: str) -> str:
    """The rule in words, e.g. 'sigmoid unit saturated: f′ < 0.01 (|z| > 4.58) for every
    sample'."""
    if activation == "relu":
        return "ReLU unit dead: z ≤ 0 for every sample"
    if activation in ("sigmoid", "tanh"):
        return (f"{activation} unit saturated: f′ < {SATURATED_BELOW:g} "
                f"(|z| > {z_threshold(activation):.2f}) for every sample")
    return ""


def low_mask(activation: str, z, fprime=None) -> np.ndarray | None:
    """Per value: True where the unit passes (almost) nothing back; None without a rule."""
    if activation == "relu":
        return np.asarray(z) <= 0
    if activation in ("sigmoid", "tanh"):
        f = derivative(activation, z) if fprime is None else fprime
        return f < SATURATED_BELOW
    return None


@dataclass(frozen=True)
class LayerSaturation:
    index: int
    kind: str
    activation: str
    rule: str | None          # "dead", "saturated" or None (no rule for this activation)
    units: int
    count: int                # dead or saturated units (0 without a rule)
    values_fraction: float    # share of values below the limit (nan without a rule)
    mean_derivative: float    # mean f′(z) over every value (nan without z)
    max_derivative: float
    batch: int                # samples the statistics cover

    @property
    def fraction(self) -> float:
        return self.count / self.units if self.rule and self.units else math.nan


def layer_saturation(index: int, kind: str, activation: str, z) -> LayerSaturation:
    """Statistics of one layer from its pre-activation z of shape (N, units) or (N, C, H, W)."""
    fmax = MAX_DERIVATIVE.get(activation, 1.0)
    if z is None:
        return LayerSaturation(index, kind, activation, RULES.get(activation), 0, 0,
                               math.nan, math.nan, fmax, 0)
    z = np.asarray(z)
    units = int(z.shape[1]) if z.ndim > 1 else 1
    f = derivative(activation, z)
    mask = low_mask(activation, z, f)
    rule = RULES.get(activation)
    count, frac = 0, math.nan
    if mask is not None:
        per_unit = mask.reshape(z.shape[0], units, -1).all(axis=(0, 2))
        count, frac = int(per_unit.sum()), float(mask.mean())
    return LayerSaturation(index, kind, activation, rule, units, count, frac,
                           float(np.mean(f)), fmax, int(z.shape[0]))


def network_saturation(net) -> list[LayerSaturation]:
    """Every layer of a core Network, over the batch of its last forward pass."""
    return [layer_saturation(i, l.kind, l.activation, l.z) for i, l in enumerate(net.layers)]


def snapshot_saturation(snapshot) -> list[LayerSaturation]:
    """Every layer from a Snapshot: its displayed sample only (a batch of one)."""
    return [layer_saturation(l.index, l.kind, l.activation,
                             None if l.z is None else np.asarray(l.z)[None])
            for l in snapshot.layers]


def attenuation(stats: list[LayerSaturation], loss: str | None = None) -> np.ndarray:
    """Product of mean f′ from the output down to each layer (1 for layers without an
    activation; the output layer's f′ is skipped when ``loss`` is fused with it)."""
    factors = []
    for k, st in enumerate(stats):
        fused = k == len(stats) - 1 and loss is not None and losses.is_fused(loss, st.activation)
        f = st.mean_derivative
        factors.append(1.0 if fused or not np.isfinite(f) else f)
    return np.cumprod(np.array(factors[::-1], dtype=float))[::-1]
