"""Flatten: rasterise every feature map of each sample into one vector (C·H·W,)."""
from __future__ import annotations

import numpy as np

from .base import Layer


class Flatten(Layer):
    kind = "Flatten"

    def __init__(self):
        super().__init__("identity")

    def config(self) -> dict:
        return {"type": self.kind}

    def describe(self) -> str:
        return "Flatten()"

    def infer(self, input_shape):
        return (int(np.prod(input_shape)),)

    def linear(self, x):
        return x.reshape(len(x), -1)

    def input_gradient(self):
        return self.delta.reshape((len(self.delta),) + self.input_shape)
