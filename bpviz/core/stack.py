"""Checks of a network's settings and stack before anything is built: dtype, input shape,
seed, every layer's output shape and the size caps (split from network.py to keep it short).
"""
from __future__ import annotations

import math

import numpy as np

from .errors import LayerConfigError
from .layers import Layer, layer_from_config
from .layers.base import shape_text

DTYPES = {"float64": np.float64, "float32": np.float32}
CONFIG_KEYS = {"input_shape", "layers", "loss", "reduction", "dtype", "seed"}


def _dtype(dtype) -> np.dtype:
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d is None or d.name not in DTYPES:
        raise LayerConfigError(f"network: dtype {dtype!r} is not supported; use float64 or float32")
    return d


def _input_shape(shape) -> tuple:
    try:
        shape = tuple(shape)
    except TypeError:
        raise LayerConfigError(f"network: input_shape {shape!r} must be (n,) or (C, H, W)") from None
    ok = len(shape) in (1, 3) and all(isinstance(s, (int, np.integer))
                                      and not isinstance(s, bool) and s >= 1 for s in shape)
    if not ok:
        raise LayerConfigError(f"network: input_shape {shape!r} must be (n,) or (C, H, W) "
                               f"with every size a whole number ≥ 1")
    return tuple(int(s) for s in shape)


def _seed(seed):
    if seed is None:
        return None
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise LayerConfigError(f"network: seed {seed!r} must be a whole number ≥ 0 "
                               f"(or None for a random start)")
    return int(seed)


MAX_VALUES_PER_SAMPLE = 2**24     # one layer's output for one sample
MAX_PARAMS = 2**26                # all weights of the network


def _weight_count(layer, input_shape) -> int:
    if layer.kind == "Dense":
        return layer.units * (input_shape[0] + 1)
    if layer.kind == "Conv2D":
        return layer.filters * (input_shape[0] * layer.kernel_size[0] * layer.kernel_size[1] + 1)
    return 0


def infer_shapes(input_shape, layers) -> list[tuple]:
    """Output shape of every layer; raises naming the first layer that cannot be built
    (including one too large to allocate)."""
    shapes, shape = [], _input_shape(input_shape)
    total = 0
    for i, layer in enumerate(layers):
        probe = layer_from_config(layer.config() if isinstance(layer, Layer) else layer, i)
        total += _weight_count(probe, shape)
        shape = probe.infer(shape)
        if math.prod(shape) > MAX_VALUES_PER_SAMPLE:
            raise LayerConfigError(f"{probe.where()}: output {shape_text(shape)} has "
                                   f"{math.prod(shape)} values per sample; the limit is "
                                   f"{MAX_VALUES_PER_SAMPLE}")
        if total > MAX_PARAMS:
            raise LayerConfigError(f"{probe.where()}: the network would have {total} "
                                   f"parameters; the limit is {MAX_PARAMS}")
        shapes.append(shape)
    return shapes
