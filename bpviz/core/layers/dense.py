"""Fully connected layer: z = x Wᵀ + b, W of shape (units, in_features) as in MATH.md."""
from __future__ import annotations

import numpy as np

from ..errors import LayerConfigError
from .base import Layer, positive_int, shape_text


class Dense(Layer):
    kind = "Dense"

    def __init__(self, units, activation: str = "identity"):
        super().__init__(activation)
        self.units = positive_int(units, "units", self.kind)

    def config(self) -> dict:
        return {"type": self.kind, "units": self.units, "activation": self.activation}

    def describe(self) -> str:
        n_in = self.input_shape[0] if self.input_shape else "?"
        return f"Dense({n_in}→{self.units}, {self.activation})"

    def infer(self, input_shape):
        if len(input_shape) != 1:
            raise LayerConfigError(
                f"{self.where()}: input of shape {shape_text(input_shape)} is not a vector; "
                f"Dense needs a 1-D input (insert a Flatten before it)")
        if input_shape[0] < 1:
            raise LayerConfigError(f"{self.where()}: input has {input_shape[0]} features; "
                                   f"Dense needs at least 1")
        return (self.units,)

    def init_params(self, rng):
        n_in = self.input_shape[0]
        return {"W": self._init_weight(rng, (self.units, n_in), n_in, self.units),
                "b": np.zeros(self.units)}

    def linear(self, x):
        z = x @ self.params["W"].T
        z += self.params["b"]                # in place: one array fewer than x Wᵀ + b
        return z

    def param_grads(self, delta):
        x = self.x
        if len(x) == 1:
            # Outer product δ xᵀ: np.dot hands it to BLAS, ~2× faster here than the broadcast
            # product (np.matmul, with its inner dimension of 1, is ~3× slower). Each entry is
            # one rounded product either way, so the values are the same.
            self.grads["W"] = np.dot(delta.T, x, out=self.grad_out("W"))
        else:
            self.grads["W"] = np.matmul(delta.T, x, out=self.grad_out("W"))
        self.grads["b"] = np.add.reduce(delta, axis=0, out=self.grad_out("b"))  # = Σ δ

    def input_gradient(self):
        return self.delta @ self.params["W"]
