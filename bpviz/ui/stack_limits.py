"""How big a network bpviz lets you build: caps checked before the core allocates anything.

``check_size`` is used wherever a stack or an input shape changes (the builder's edits, loading
a dataset with another input shape); the core still validates the layers themselves.
"""
from __future__ import annotations

import math

from bpviz.core.errors import LayerConfigError
from bpviz.core.layers.base import shape_text
from bpviz.core.network import infer_shapes

MAX_PARAMS = 10_000_000      # refused before the core allocates anything
MAX_VALUES = 2_000_000       # values per sample in one layer's output


def check_size(input_shape, layers) -> None:
    """Refuse stacks too big for an interactive tool (before any allocation).

    Raises the core's LayerConfigError for a stack that cannot be built at all."""
    shapes = infer_shapes(input_shape, layers)
    total, shape = 0, tuple(input_shape)
    for i, (layer, out) in enumerate(zip(layers, shapes)):
        cfg = layer if isinstance(layer, dict) else layer.config()
        if math.prod(out) > MAX_VALUES:
            raise LayerConfigError(
                f"layer {i} {cfg['type']}: output {shape_text(out)} would hold "
                f"{math.prod(out):,} values per sample; bpviz allows at most {MAX_VALUES:,}")
        if cfg["type"] == "Dense":
            total += cfg["units"] * (math.prod(shape) + 1)
        elif cfg["type"] == "Conv2D":
            k = cfg["kernel_size"]
            kh, kw = (k, k) if isinstance(k, int) else k
            total += cfg["filters"] * (shape[0] * kh * kw + 1)
        shape = out
    if total > MAX_PARAMS:
        raise LayerConfigError(f"network: {total:,} parameters; bpviz allows at most "
                               f"{MAX_PARAMS:,} (use fewer units/filters or pool first)")
