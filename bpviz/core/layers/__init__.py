"""Layer classes and their construction from plain configs."""
from __future__ import annotations

from ..errors import LayerConfigError
from .base import Layer
from .conv import Conv2D
from .dense import Dense
from .flatten import Flatten
from .pool import AvgPool2D, MaxPool2D

LAYER_TYPES = {cls.kind: cls for cls in (Dense, Conv2D, MaxPool2D, AvgPool2D, Flatten)}

FIELDS = {
    "Dense": ("units", "activation"),
    "Conv2D": ("filters", "kernel_size", "stride", "padding", "activation"),
    "MaxPool2D": ("size", "stride", "padding", "ceil_mode"),
    "AvgPool2D": ("size", "stride", "padding", "ceil_mode"),
    "Flatten": (),
}


def layer_from_config(config, index: int | None = None) -> Layer:
    """Build a layer from ``{"type": ..., field: value}``; errors name index, field, value."""
    where = "layer" if index is None else f"layer {index}"
    if not isinstance(config, dict):
        raise LayerConfigError(f"{where}: config {config!r} must be an object with a 'type'")
    kind = config.get("type")
    if kind not in LAYER_TYPES:
        raise LayerConfigError(f"{where}: type {kind!r} is unknown; use one of "
                               f"{', '.join(LAYER_TYPES)}")
    unknown = sorted(set(config) - {"type"} - set(FIELDS[kind]))
    if unknown:
        raise LayerConfigError(f"{where} {kind}: unknown field(s) {', '.join(unknown)}; "
                               f"allowed: {', '.join(FIELDS[kind]) or 'none'}")
    kwargs = {k: v for k, v in config.items() if k != "type"}
    try:
        layer = LAYER_TYPES[kind](**kwargs)
    except LayerConfigError as exc:
        if index is None:
            raise
        raise LayerConfigError(f"layer {index} {exc}") from None
    except TypeError as exc:
        raise LayerConfigError(f"{where} {kind}: {exc}") from None
    layer.index = index
    return layer


__all__ = ["Layer", "Dense", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten",
           "LAYER_TYPES", "FIELDS", "layer_from_config"]
