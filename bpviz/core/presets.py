"""Presets: ready-made lessons (architecture + dataset + training settings) stored as JSON.

Each preset is ``resources/presets/NAME.json`` (packaged as ``bpviz.resources``). This module
reads and validates the JSON schema only -- types, known keys, allowed names, value ranges --
and never builds a network (that needs the core's layers; see ``build_network`` elsewhere).

Schema, format 1 (keys marked * are optional; the default is shown)::

    {"format": 1, "name": "xor", "title": "...", "description"*: "",
     "input_shape": [2] or [C, H, W], "seed"*: 0, "dtype"*: "float64",
     "loss": "mse" | "bce" | "cross_entropy", "reduction"*: "mean" | "sum",
     "layers": [{"type": "Dense", "units": 4, "activation": "tanh"}, ...],
     "dataset": "xor4",
     "training": {"lr": 0.5, "mode": "sample" | "mini-batch" | "full-batch",
                  "batch_size"*: null, "momentum"*: 0.0, "l2"*: 0.0,
                  "clip_value"*: null, "clip_norm"*: null},
     "params"*: null or {"0": {"W": nested lists, "b": list}, ...}}

Layer dicts hold the core constructors' keyword arguments and are kept exactly as written
(omitted optional keys take the constructor's defaults). Every problem raises ``PresetError``
(a ``ValueError``) naming the preset, the field, the value and the rule.
"""
from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from bpviz.core.datasets import list_datasets

FORMAT = 1
ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "softmax")
LOSSES = ("mse", "bce", "cross_entropy")
REDUCTIONS = ("mean", "sum")
MODES = ("sample", "mini-batch", "full-batch")
DTYPES = ("float64", "float32")

# layer type -> {key: (kind, required)}. Kinds: "count" an int >= 1; "size" an int >= 1 or an
# [h, w] pair of them ("size?" also null); "pad" the same with >= 0; "flag" true/false.
_POOL = {"size": ("size", True), "stride": ("size?", False), "padding": ("pad", False),
         "ceil_mode": ("flag", False)}
LAYER_KEYS: dict[str, dict[str, tuple[str, bool]]] = {
    "Dense": {"units": ("count", True), "activation": ("activation", False)},
    "Conv2D": {"filters": ("count", True), "kernel_size": ("size", True),
               "stride": ("size", False), "padding": ("pad", False),
               "activation": ("activation", False)},
    "MaxPool2D": _POOL,
    "AvgPool2D": _POOL,
    "Flatten": {},
}
TOP_REQUIRED = ("format", "name", "title", "input_shape", "loss", "layers", "dataset",
                "training")
TOP_DEFAULTS = {"description": "", "seed": 0, "dtype": "float64", "reduction": "mean",
                "params": None}
TRAINING_DEFAULTS = {"batch_size": None, "momentum": 0.0, "l2": 0.0, "clip_value": None,
                     "clip_norm": None}
_NAME_RULE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class PresetError(ValueError):
    """A preset name or file was rejected; the message names preset, field, value and rule."""


@dataclass(frozen=True)
class Preset:
    """One validated preset; the fields mirror the JSON keys (see the module docstring)."""

    name: str
    title: str
    description: str
    input_shape: tuple[int, ...]
    seed: int
    dtype: str
    loss: str
    reduction: str
    layers: tuple[dict, ...]
    dataset: str
    training: dict
    params: dict | None = None
    format: int = FORMAT

    def to_dict(self) -> dict:
        """A JSON-ready deep copy; ``preset_from_dict(p.to_dict())`` gives an equal preset."""
        return {"format": self.format, "name": self.name, "title": self.title,
                "description": self.description, "input_shape": list(self.input_shape),
                "seed": self.seed, "dtype": self.dtype, "loss": self.loss,
                "reduction": self.reduction, "layers": copy.deepcopy(list(self.layers)),
                "dataset": self.dataset, "training": dict(self.training),
                "params": copy.deepcopy(self.params)}

    def param_arrays(self) -> dict[int, dict[str, np.ndarray]]:
        """Explicit initial weights as float64 arrays, keyed by layer index ({} if none)."""
        return {int(k): {p: np.array(v[p], dtype=np.float64) for p in ("W", "b")}
                for k, v in (self.params or {}).items()}


# ---------------------------------------------------------------- value checks

class _Checker:
    """Raises PresetError with the preset's name and the field path in every message."""

    def __init__(self, preset: str) -> None:
        self.preset = preset

    def fail(self, field: str, value: Any, rule: str) -> PresetError:
        return PresetError(f"preset {self.preset!r}: {field} = {value!r}: {rule}")

    def integer(self, field: str, value: Any, low: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(field, value, f"must be an integer >= {low}")
        return value

    def number(self, field: str, value: Any, low: float, low_open: bool,
               high: float = math.inf, high_open: bool = True) -> float:
        ok = (not isinstance(value, bool) and isinstance(value, (int, float))
              and math.isfinite(value)
              and (value > low if low_open else value >= low)
              and (value < high if high_open else value <= high))
        if not ok:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            raise self.fail(field, value, f"must be a finite number in {left}{low}, {high}{right}")
        return float(value)

    def choice(self, field: str, value: Any, allowed) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(field, value, f"must be one of {', '.join(allowed)}")
        return value

    def text(self, field: str, value: Any, nonempty: bool = True) -> str:
        if not isinstance(value, str) or (nonempty and not value.strip()):
            raise self.fail(field, value, "must be a " + ("non-empty " if nonempty else "")
                            + "string")
        return value

    def keys(self, field: str, d: Any, required, optional) -> dict:
        if not isinstance(d, dict):
            raise self.fail(field, d, "must be a JSON object")
        unknown = sorted(set(d) - set(required) - set(optional))
        if unknown:
            allowed = ", ".join(sorted(set(required) | set(optional)))
            raise self.fail(f"{field}.{unknown[0]}", d[unknown[0]],
                            f"unknown key (allowed: {allowed})")
        missing = [k for k in required if k not in d]
        if missing:
            raise self.fail(f"{field}.{missing[0]}", None, "required key is missing")
        return d


def _check_layer(c: _Checker, i: int, layer: Any) -> dict:
    field = f"layers[{i}]"
    if not isinstance(layer, dict) or "type" not in layer:
        raise c.fail(field, layer, "must be an object with a 'type'")
    kind = c.choice(f"{field}.type", layer["type"], tuple(LAYER_KEYS))
    spec = LAYER_KEYS[kind]
    required = ["type"] + [k for k, (_, req) in spec.items() if req]
    c.keys(field, layer, required, [k for k, (_, req) in spec.items() if not req])
    for key, value in layer.items():
        if key != "type":
            _check_layer_value(c, f"{field}.{key}", spec[key][0], value)
    return copy.deepcopy(layer)


def _check_layer_value(c: _Checker, where: str, kind: str, value: Any) -> None:
    if kind == "activation":
        c.choice(where, value, ACTIVATIONS)
    elif kind == "flag":
        if not isinstance(value, bool):
            raise c.fail(where, value, "must be true or false")
    elif kind == "count":
        c.integer(where, value, 1)
    elif not (kind == "size?" and value is None):
        low = 0 if kind == "pad" else 1
        if isinstance(value, list) and len(value) == 2:
            for j, v in enumerate(value):
                c.integer(f"{where}[{j}]", v, low)
        elif isinstance(value, list) or not isinstance(value, int) or isinstance(value, bool):
            raise c.fail(where, value, f"must be an integer >= {low} or an [h, w] pair of them")
        else:
            c.integer(where, value, low)


def _pair(value: int | list) -> tuple[int, int]:
    return tuple(value) if isinstance(value, list) else (value, value)


def _check_array(c: _Checker, field: str, value: Any, ndim: int) -> np.ndarray:
    try:
        arr = np.array(value)
    except (ValueError, TypeError):
        arr = np.array(None)
    if arr.dtype.kind not in "iuf" or arr.ndim != ndim or not np.isfinite(arr).all():
        raise c.fail(field, _short(value), f"must be a rectangular {ndim}-D list of finite "
                                           "numbers")
    return arr


def _check_params(c: _Checker, params: Any, layers: tuple, input_shape: tuple) -> dict | None:
    if params is None:
        return None
    if not isinstance(params, dict):
        raise c.fail("params", _short(params), "must be null or an object")
    for key, value in params.items():
        field = f"params[{key!r}]"
        if not (isinstance(key, str) and key.isdigit() and int(key) < len(layers)):
            raise c.fail(field, key, f"key must be a layer index 0..{len(layers) - 1}")
        layer = layers[int(key)]
        if layer["type"] not in ("Dense", "Conv2D"):
            raise c.fail(field, layer["type"], "only Dense and Conv2D layers have parameters")
        c.keys(field, value, ("W", "b"), ())
        conv = layer["type"] == "Conv2D"
        w = _check_array(c, f"{field}.W", value["W"], 4 if conv else 2)
        b = _check_array(c, f"{field}.b", value["b"], 1)
        out, k = (layer["filters"], _pair(layer["kernel_size"])) if conv else (layer["units"], 0)
        first = int(key) == 0 and len(input_shape) == (3 if conv else 1)
        expected_in = input_shape[0] if first else max(w.shape[1], 1)
        w_shape, where = _Text(f"shape {w.shape}"), f"{field}.W"
        if conv and (w.shape[0], w.shape[2], w.shape[3]) != (out, *k):
            raise c.fail(where, w_shape, f"must be ({out}, in_channels, {k[0]}, {k[1]})")
        if not conv and w.shape[0] != out:
            raise c.fail(where, w_shape, f"must be ({out}, in_features)")
        if w.shape[1] != expected_in:
            raise c.fail(where, w_shape, f"input size must be {expected_in}"
                         + (" (from input_shape)" if first else " (> 0)"))
        if b.shape != (out,):
            raise c.fail(f"{field}.b", _Text(f"shape {b.shape}"), f"must have shape ({out},)")
    return copy.deepcopy(params)


class _Text(str):
    """A value already formatted for a message (its repr is the text itself)."""

    def __repr__(self) -> str:
        return str(self)


def _short(value: Any) -> _Text:
    text = repr(value)
    return _Text(text if len(text) <= 60 else text[:57] + "...")


def _check_training(c: _Checker, t: Any) -> dict:
    c.keys("training", t, ("lr", "mode"), tuple(TRAINING_DEFAULTS))
    out = {"lr": c.number("training.lr", t["lr"], 0.0, True),
           "mode": c.choice("training.mode", t["mode"], MODES)}
    for key, default in TRAINING_DEFAULTS.items():
        out[key] = t.get(key, default)
    if out["batch_size"] is not None:
        c.integer("training.batch_size", out["batch_size"], 1)
    if out["mode"] == "mini-batch" and out["batch_size"] is None:
        raise c.fail("training.batch_size", None, "mode 'mini-batch' needs a batch_size >= 1")
    if out["mode"] == "sample" and out["batch_size"] not in (None, 1):
        raise c.fail("training.batch_size", out["batch_size"], "mode 'sample' uses 1 (or null)")
    out["momentum"] = c.number("training.momentum", out["momentum"], 0.0, False, 1.0, True)
    out["l2"] = c.number("training.l2", out["l2"], 0.0, False)
    for key in ("clip_value", "clip_norm"):
        if out[key] is not None:
            out[key] = c.number(f"training.{key}", out[key], 0.0, True)
    return out


# ---------------------------------------------------------------- public API

def preset_from_dict(d: Any, name: str = "<dict>") -> Preset:
    """Validate a preset dict (as parsed from JSON) and return a Preset."""
    c = _Checker(name)
    c.keys("preset", d, TOP_REQUIRED, tuple(TOP_DEFAULTS))
    version = c.integer("format", d["format"], 1)
    if version != FORMAT:
        raise c.fail("format", version, f"this bpviz reads format {FORMAT} only"
                     + (" (the file is newer)" if version > FORMAT else ""))
    full = {**TOP_DEFAULTS, **d}
    shape = full["input_shape"]
    if not isinstance(shape, list) or len(shape) not in (1, 3):
        raise c.fail("input_shape", shape, "must be [features] or [channels, height, width]")
    shape = tuple(c.integer(f"input_shape[{i}]", v, 1) for i, v in enumerate(shape))
    layers = full["layers"]
    if not isinstance(layers, list) or not layers:
        raise c.fail("layers", _short(layers), "must be a non-empty list of layer objects")
    layers = tuple(_check_layer(c, i, layer) for i, layer in enumerate(layers))
    preset_name = c.text("name", full["name"])
    if not _NAME_RULE.match(preset_name):
        raise c.fail("name", preset_name, "must use a-z, 0-9, '-' and '_' only")
    return Preset(
        name=preset_name, title=c.text("title", full["title"]),
        description=c.text("description", full["description"], nonempty=False),
        input_shape=shape, seed=c.integer("seed", full["seed"], 0),
        dtype=c.choice("dtype", full["dtype"], DTYPES),
        loss=c.choice("loss", full["loss"], LOSSES),
        reduction=c.choice("reduction", full["reduction"], REDUCTIONS),
        layers=layers, dataset=c.choice("dataset", full["dataset"], list_datasets()),
        training=_check_training(c, full["training"]),
        params=_check_params(c, full["params"], layers, shape), format=FORMAT)


def _presets_dir():
    return resources.files("bpviz.resources") / "presets"


def list_presets() -> list[str]:
    """Names of the bundled presets, sorted."""
    return sorted(entry.name[:-5] for entry in _presets_dir().iterdir()
                  if entry.name.endswith(".json"))


def _reject_constant(token: str):
    raise ValueError(f"{token} is not allowed (numbers must be finite)")


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise ValueError(f"key {k!r} appears twice")
    return dict(pairs)


def load_preset(name: str) -> Preset:
    """Read and validate the bundled preset NAME (see list_presets())."""
    valid = list_presets()
    if name not in valid:
        raise PresetError(f"unknown preset {name!r}; valid names: {', '.join(valid)}")
    try:
        text = (_presets_dir() / f"{name}.json").read_text(encoding="utf-8")
        d = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except (OSError, ValueError) as exc:   # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise PresetError(f"preset {name!r}: file {name}.json is not valid JSON: {exc}") from exc
    preset = preset_from_dict(d, name=name)
    if preset.name != name:
        raise PresetError(f"preset {name!r}: name = {preset.name!r}: must equal the file name "
                          f"{name!r}")
    return preset
