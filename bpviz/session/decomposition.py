"""Update decomposition: what each weight update ΔW is made of. Pure NumPy, no Qt.

From the optimiser's ``UpdateRecord`` (``session.last_update``), for every parameter::

    ΔW = −η·g            the gradient actually used (after clipping by value and by norm)
       + −η·λW           L2 weight decay (weights only; zero when λ = 0 or for biases)
       + momentum        ΔW − (−η(g + λW)), i.e. μ·v of the previous step (zero when μ = 0)

and, for information (not a fourth term): what clipping changed, −η(g − g_raw), and how many
values clipping by value changed. The three parts sum to ΔW up to rounding (exactly the same
arrays the optimiser applied). ``ratio`` is ‖ΔW‖/‖W_before‖; around 1e-3 is the usual rule of
thumb for a healthy learning rate (much smaller: the layer barely learns; much larger: it may
be unstable).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RULE_OF_THUMB = 1e-3          # ‖ΔW‖/‖W‖ for a healthy rate …
BAND = (1e-4, 1e-2)           # … and the broad band around it
PARTS = ("gradient", "decay", "momentum")


def norm(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    return math.sqrt(float(np.vdot(a, a)))


@dataclass(frozen=True)
class ParamParts:
    """One parameter's update and its parts (float64 arrays of the parameter's shape, or None
    when decomposed with ``keep_arrays=False``; ``norms`` and ``ratio`` are always there)."""
    name: str                 # "W" or "b"
    before: np.ndarray | None
    update: np.ndarray | None     # ΔW applied = gradient + decay + momentum
    gradient: np.ndarray | None   # −η·g, g = the clipped gradient used
    decay: np.ndarray | None      # −η·λW (zeros where L2 does not apply)
    momentum: np.ndarray | None   # ΔW − (−η(g + λW)) (zeros when μ = 0)
    clipping: np.ndarray | None   # −η(g − g_raw): the change clipping made to −η·g
    clipped_values: int       # elements changed by clipping by value
    has_decay: bool
    size: int
    norms: dict               # ‖·‖ of update, gradient, decay, momentum, clipping, before

    @property
    def ratio(self) -> float:
        """‖ΔW‖/‖W_before‖ (inf when W was all zero and moved, nan when both are 0)."""
        w, u = self.norms["before"], self.norms["update"]
        if w > 0:
            return u / w
        return math.inf if u > 0 else math.nan


@dataclass(frozen=True)
class LayerParts:
    index: int
    kind: str
    params: dict              # name -> ParamParts

    @property
    def ratio(self) -> float:
        """‖ΔW‖/‖W‖ of the weights (nan for a layer without weights)."""
        w = self.params.get("W")
        return w.ratio if w is not None else math.nan

    @property
    def clipped_values(self) -> int:
        return sum(p.clipped_values for p in self.params.values())

    @property
    def size(self) -> int:
        return sum(p.size for p in self.params.values())


@dataclass(frozen=True)
class Decomposition:
    lr: float
    l2: float
    momentum: float
    grad_norm: float          # global ‖∂loss/∂θ‖ before clipping by norm
    clip_factor: float        # global clipping-by-norm factor (1.0: not clipped)
    layers: tuple             # LayerParts per layer (parameter-free layers have no params)
    step: int | None = None   # the step this update completed, when known

    @property
    def norm_clipped(self) -> bool:
        return self.clip_factor < 1.0

    @property
    def clipped_values(self) -> int:
        return sum(l.clipped_values for l in self.layers)

    @property
    def ratios(self) -> np.ndarray:
        """‖ΔW‖/‖W‖ per layer (nan where a layer has no weights)."""
        return np.array([l.ratio for l in self.layers], dtype=np.float64)

    def weighted(self) -> list[LayerParts]:
        return [l for l in self.layers if "W" in l.params]


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def param_parts(name: str, u, lr: float, momentum: float, keep_arrays: bool = True
                ) -> ParamParts:
    """Split one ``ParamUpdate`` (see bpviz.core.optim) into its parts."""
    g, update = _f64(u.grad), _f64(u.update)
    decay = None if u.decay is None else _f64(u.decay)
    gradient = -lr * g
    decay_part = np.zeros_like(g) if decay is None else -lr * decay
    if momentum > 0:
        # the very expression the optimiser evaluated (in its dtype) before adding μ·v
        plain = -lr * (u.grad if u.decay is None else u.grad + u.decay)
        mom = update - _f64(plain)
    else:
        mom = np.zeros_like(g)
    clipping = -lr * (g - _f64(u.raw_grad))
    arrays = {"before": _f64(u.before), "update": update, "gradient": gradient,
              "decay": decay_part, "momentum": mom, "clipping": clipping}
    norms = {k: norm(v) for k, v in arrays.items()}
    if not keep_arrays:
        arrays = dict.fromkeys(arrays)
    return ParamParts(name, clipped_values=int(u.clipped), has_decay=decay is not None,
                      size=int(update.size), norms=norms, **arrays)


def decompose(record, kinds=None, step: int | None = None,
              keep_arrays: bool = True) -> Decomposition | None:
    """The decomposition of an ``UpdateRecord`` (None when there is no record).

    ``kinds`` names the layers (e.g. ``[l.kind for l in net.layers]``); without it, or when
    it does not match the record, layers are called "layer". ``keep_arrays=False`` keeps only
    the norms (a view's choice: six weight-sized arrays per parameter add up on big nets).
    """
    if record is None:
        return None
    kinds = list(kinds) if kinds is not None else []
    if len(kinds) != len(record.layers):
        kinds = ["layer"] * len(record.layers)
    layers = []
    for i, (kind, entry) in enumerate(zip(kinds, record.layers)):
        params = {k: param_parts(k, u, record.lr, record.momentum, keep_arrays)
                  for k, u in entry.items()}
        layers.append(LayerParts(i, kind, params))
    return Decomposition(record.lr, record.l2, record.momentum, float(record.grad_norm),
                         float(record.clip_factor), tuple(layers), step)


def describe_ratio(ratio: float) -> str:
    """A short verdict on ‖ΔW‖/‖W‖ against the 1e-3 rule of thumb."""
    if not math.isfinite(ratio):
        return "—"
    if ratio < BAND[0]:
        return "very small: this layer barely moves (vanishing gradient, or η too small?)"
    if ratio > BAND[1]:
        return "large: this layer changes fast (η too large, or exploding gradient?)"
    return "in the usual range (about 1e-3)"
