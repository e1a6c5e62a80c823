"""Losses, target validation, and the output error δ^L.

mse = ½ Σ (a − t)², bce = −Σ [t ln a + (1 − t) ln(1 − a)], cross_entropy = −Σ t ln a, summed
over output units; ``reduction`` "mean" averages over the batch, "sum" sums it. Softmax +
cross-entropy and sigmoid + BCE are *fused*: computed from z (log-softmax, logits) so that
logits of ±800 stay finite, with δ^L = (a − t) / N exactly.
"""
from __future__ import annotations

import numpy as np

from .errors import TargetError

NAMES = ("mse", "bce", "cross_entropy")
REDUCTIONS = ("mean", "sum")
LOG_FLOOR = -100.0          # PyTorch's clamp of log(a) in BCELoss
EPS = float(np.exp(LOG_FLOOR))


def is_fused(loss: str, activation: str) -> bool:
    return (loss, activation) in (("cross_entropy", "softmax"), ("bce", "sigmoid"))


_IDENTITIES: dict = {}
IDENTITY_MAX_CLASSES = 1024     # one-hot rows taken from a kept identity up to this many classes


def _one_hot(labels: np.ndarray, k: int, dtype) -> np.ndarray:
    """One-hot rows for integer ``labels`` < k (a new array). Up to IDENTITY_MAX_CLASSES
    classes they are taken from a kept k×k identity (~4× cheaper than filling zeros at
    batch 1); beyond, the identity would be too large to keep."""
    if k > IDENTITY_MAX_CLASSES:
        onehot = np.zeros((len(labels), k), dtype=dtype)
        onehot[np.arange(len(labels)), labels] = 1
        return onehot
    key = (k, np.dtype(dtype).str)
    eye = _IDENTITIES.get(key)
    if eye is None:
        eye = _IDENTITIES[key] = np.eye(k, dtype=dtype)
        eye.flags.writeable = False
    return eye.take(labels, axis=0)


def _class_labels(t: np.ndarray, k: int) -> np.ndarray:
    """``t`` as int64 class labels, each a whole number in 0 … k − 1 (else TargetError)."""
    whole = t.dtype.kind in "iub"                  # integer labels need no further check
    if not whole and (not np.all(np.isfinite(t)) or not np.all(np.mod(t, 1) == 0)):
        bad = t[~np.isfinite(t) | (np.mod(np.nan_to_num(t), 1) != 0)][0]
        raise TargetError(f"targets: label {float(bad)!r} is not a whole number; "
                          f"class labels must be integers 0 … {k - 1}")
    labels = t.astype(np.int64, copy=False)
    # (two reductions are cheaper than a mask every step; np.minimum.reduce is what
    # labels.min() calls, without its Python layer)
    if np.minimum.reduce(labels) < 0 or np.maximum.reduce(labels) >= k:
        wrong = (labels < 0) | (labels >= k)
        raise TargetError(f"targets: class label {int(labels[wrong][0])} is out of "
                          f"range; the output has {k} classes (labels 0 … {k - 1})")
    return labels


def targets(loss: str, t, out_shape: tuple, dtype) -> np.ndarray:
    """Validate ``t`` against the output (N, ...) and return float targets of that shape.

    Integer class labels of shape (N,) are accepted for a (N, K) output (one-hot) and for a
    (N, 1) output (the label itself).
    """
    t = np.asarray(t)
    n = out_shape[0]
    if t.dtype.kind not in "biufc":             # numbers or booleans
        raise TargetError(f"targets: dtype {t.dtype} is not numeric")
    if t.ndim == 1 and len(out_shape) == 2 and t.shape != out_shape:
        if len(t) != n:
            raise TargetError(f"targets: {len(t)} labels for a batch of {n}; "
                              f"there must be one label per sample")
        if out_shape[1] == 1:
            t = t.reshape(n, 1)
        else:
            return _one_hot(_class_labels(t, out_shape[1]), out_shape[1], dtype)
    if t.shape != out_shape:
        raise TargetError(f"targets: shape {t.shape} does not match the output shape "
                          f"{out_shape} (give the same shape, or one class label per sample)")
    t = t.astype(dtype, copy=False)
    if not np.all(np.isfinite(t)):
        raise TargetError("targets: contain NaN or Inf; every target must be finite")
    if loss == "bce" and (t.min() < 0 or t.max() > 1):
        bad = t[(t < 0) | (t > 1)].flat[0]
        raise TargetError(f"targets: BCE target {float(bad)!r} is outside [0, 1]")
    if loss == "cross_entropy" and t.min() < 0:
        raise TargetError(f"targets: cross-entropy target {float(t.min())!r} is negative; "
                          f"targets are probabilities ≥ 0")
    return t


def _scale(n: int, reduction: str) -> float:
    return 1.0 / n if reduction == "mean" else 1.0


def fused(loss: str, z: np.ndarray, a: np.ndarray, t: np.ndarray, reduction: str):
    """(loss, δ^L) for softmax + cross-entropy or sigmoid + BCE, from the logits z."""
    s = _scale(len(z), reduction)
    if loss == "cross_entropy":
        shifted = z - np.maximum.reduce(z, axis=1, keepdims=True)     # as z.max(axis=1)
        log_a = shifted - np.log(np.add.reduce(np.exp(shifted), axis=1, keepdims=True))
        value = -np.add.reduce(t * log_a, axis=None)
    else:
        value = (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).sum()
    delta = np.subtract(a, t)
    if s != 1.0:                        # (x · 1 = x: a batch of one or a sum skips the pass)
        delta *= s
    return float(value) * s, delta


def plain(loss: str, a: np.ndarray, t: np.ndarray, reduction: str):
    """(loss, ∂loss/∂a) for any output activation."""
    s = _scale(len(a), reduction)
    if loss == "mse":
        diff = a - t
        return 0.5 * float((diff * diff).sum()) * s, diff * s
    a_lo = np.maximum(a, EPS)
    if loss == "cross_entropy":
        value = -(t * np.maximum(np.log(a_lo), LOG_FLOOR)).sum()
        return float(value) * s, -t / a_lo * s
    a_hi = np.maximum(1 - a, EPS)
    value = -(t * np.maximum(np.log(a_lo), LOG_FLOOR)
              + (1 - t) * np.maximum(np.log(a_hi), LOG_FLOOR)).sum()
    return float(value) * s, ((1 - t) / a_hi - t / a_lo) * s
