"""Activation functions by name: value, derivative, and the backward product.

``backward(da, z, a)`` returns δ = ∂loss/∂z given ∂loss/∂a. Element-wise activations use
f'(z); softmax (over axis 1, the feature or channel axis) uses its Jacobian.
"""
from __future__ import annotations

import numpy as np

from .errors import LayerConfigError

NAMES = ("identity", "sigmoid", "tanh", "relu", "softmax")


def sigmoid(z):
    """1 / (1 + e^{-z}) without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def softmax(z):
    # np.maximum/np.add.reduce: what z.max and e.sum call, without their Python layer
    shifted = z - np.maximum.reduce(z, axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / np.add.reduce(e, axis=1, keepdims=True)


def forward(name: str, z):
    if name == "identity":
        return z
    if name == "relu":
        return np.maximum(z, 0)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    return softmax(z)


def derivative(name: str, z, a):
    """f'(z) element-wise (for softmax: the diagonal a(1 − a) of its Jacobian)."""
    if name == "identity":
        return np.ones_like(z)
    if name == "relu":
        return (z > 0).astype(z.dtype)          # ReLU'(0) = 0, as PyTorch
    if name == "sigmoid" or name == "softmax":
        return a * (1 - a)
    return 1 - a * a


def backward(name: str, da, z, a, out=None):
    """δ = ∂loss/∂z from ∂loss/∂a (written into ``out`` when given)."""
    if name == "identity":
        if out is None:
            return da
        np.copyto(out, da)
        return out
    if name == "relu":
        return np.multiply(da, z > 0, out=out)
    if name == "sigmoid":
        return np.multiply(da * a, 1 - a, out=out)
    if name == "tanh":
        return np.multiply(da, 1 - a * a, out=out)
    return np.multiply(a, da - (da * a).sum(axis=1, keepdims=True), out=out)


def check_name(name, where: str) -> str:
    if name not in NAMES:
        raise LayerConfigError(
            f"{where}: activation {name!r} is unknown; use one of {', '.join(NAMES)}")
    return name
