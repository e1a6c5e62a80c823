"""The Layer base class and the field validators every layer shares.

A layer is built late: ``build(input_shape)`` checks its fields against the input shape,
returns the output shape and creates parameters. ``forward(x)`` keeps ``x``, ``z`` and ``a``;
``backward(da)`` turns ∂loss/∂a into ``delta`` = ∂loss/∂z, fills ``grads`` and returns
∂loss/∂x. The optimiser, not the layer, applies the gradients.
"""
from __future__ import annotations

import numpy as np

from .. import activations
from ..errors import LayerConfigError


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def shown(value) -> str:
    """A value as a user typed it: NumPy scalars without their type wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def positive_int(value, field: str, where: str, minimum: int = 1) -> int:
    if not _is_int(value) or value < minimum:
        rule = "a whole number ≥ 1" if minimum == 1 else f"a whole number ≥ {minimum}"
        raise LayerConfigError(f"{where}: {field} {shown(value)} must be {rule}")
    return int(value)


def int_pair(value, field: str, where: str, minimum: int = 1) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each ≥ minimum."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise LayerConfigError(
                f"{where}: {field} {value!r} must be one whole number or an (h, w) pair")
        return (positive_int(value[0], field, where, minimum),
                positive_int(value[1], field, where, minimum))
    v = positive_int(value, field, where, minimum)
    return (v, v)


def pair_text(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"({p[0]}, {p[1]})"


def shape_text(shape) -> str:
    return "×".join(str(s) for s in shape)


class Layer:
    """Base of every layer. Subclasses set ``kind`` and implement the hooks below."""

    kind = "Layer"

    def __init__(self, activation: str = "identity"):
        self.index: int | None = None
        self.activation = activations.check_name(activation, self.kind)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self.notes: list[str] = []
        self.dtype = np.dtype(np.float64)
        self.x = self.z = self.a = self.delta = None
        # Where the next backward pass writes each gradient: arrays a network handed out (views
        # of one buffer for all its layers, see flat.py), or None: new arrays.
        self.grad_slots: dict[str, np.ndarray] | None = None

    # ----- description -------------------------------------------------------------------
    def where(self) -> str:
        return self.kind if self.index is None else f"layer {self.index} {self.kind}"

    def config(self) -> dict:
        """Constructor arguments as plain JSON-able values, with ``type``."""
        raise NotImplementedError

    def param_count(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def __repr__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        return f"{self.kind}()"

    # ----- shapes and parameters -----------------------------------------------------------
    def infer(self, input_shape: tuple) -> tuple:
        """Check the fields against ``input_shape`` and return the output shape (no side effects)."""
        raise NotImplementedError

    def build(self, input_shape, rng: np.random.Generator | None = None,
              dtype=np.float64, index: int | None = None) -> tuple:
        """Infer the output shape and create fresh parameters; return the output shape."""
        if index is not None:
            self.index = index
        input_shape = tuple(int(s) for s in input_shape)
        output_shape = self.infer(input_shape)
        self.input_shape, self.output_shape = input_shape, output_shape
        self.dtype = np.dtype(dtype)
        rng = np.random.default_rng() if rng is None else rng
        self.params = {k: v.astype(self.dtype) for k, v in self.init_params(rng).items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.x = self.z = self.a = self.delta = None
        self.grad_slots = None
        return output_shape

    def init_params(self, rng: np.random.Generator) -> dict:
        return {}

    def _init_weight(self, rng, shape, fan_in: int, fan_out: int) -> np.ndarray:
        """He normal before ReLU, Glorot uniform otherwise."""
        if self.activation == "relu":
            return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)

    def _require_built(self):
        if self.output_shape is None:
            raise LayerConfigError(f"{self.where()}: call build(input_shape) before forward")

    # ----- passes ----------------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.output_shape is None:
            self._require_built()
        self.x = x
        z = self.z = self.linear(x)
        # (identity, the pooling and flatten layers' activation, without a call: every call
        # counts at batch 1)
        a = self.a = z if self.activation == "identity" else \
            activations.forward(self.activation, z)
        return a

    def backward(self, grad_output: np.ndarray, need_dx: bool = True):
        """δ from ∂loss/∂a through the activation, then gradients and ∂loss/∂x."""
        if self.activation == "identity":
            return self.backward_delta(grad_output, need_dx)
        delta = activations.backward(self.activation, grad_output, self.z, self.a)
        return self.backward_delta(delta, need_dx)

    def backward_delta(self, delta: np.ndarray, need_dx: bool = True):
        """Take δ = ∂loss/∂z directly (fused loss), fill grads, return ∂loss/∂x (or None)."""
        self.delta = delta
        if self.params:
            self.param_grads(delta)
            self.grad_slots = None
        return self.input_gradient() if need_dx else None

    def grad_out(self, key: str) -> np.ndarray:
        """The array this pass's ∂``key`` is written into: a fresh one every pass, so that a
        recorded update may keep the last pass's gradients without copying them."""
        slots = self.grad_slots
        if slots is None:
            return np.empty_like(self.params[key])
        return slots[key]

    def linear(self, x):
        raise NotImplementedError

    def param_grads(self, delta):
        """Fill ``self.grads`` from ``delta`` and the cached input."""

    def input_gradient(self):
        """∂loss/∂x from the cached ``delta``."""
        raise NotImplementedError

    def kink_state(self):
        """What makes this layer non-differentiable locally (ReLU mask, pooling routing)."""
        if self.activation == "relu" and self.z is not None:
            return self.z > 0
        return None
