"""Tests for bpviz.core.presets: the bundled presets load, match their datasets, and bad
preset dicts / files are refused with a message naming the preset, the field and the rule.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from bpviz.core import presets
from bpviz.core.datasets import load_dataset, reference_case
from bpviz.core.presets import Preset, PresetError, list_presets, load_preset, preset_from_dict

REQUIRED = {"reference", "xor", "deep-sigmoid", "deep-relu", "cnn-shapes", "lenet-digits"}


def test_list_holds_the_required_presets_sorted():
    names = list_presets()
    assert REQUIRED <= set(names) and names == sorted(names)


@pytest.mark.parametrize("name", sorted(REQUIRED | {"mlp-digits"}))
def test_every_preset_loads_and_fits_its_dataset(name):
    p = load_preset(name)
    assert isinstance(p, Preset) and p.name == name and p.title and p.description
    ds = load_dataset(p.dataset)
    assert p.input_shape == ds.input_shape
    last = p.layers[-1]
    if p.loss == "cross_entropy":
        assert last == {**last, "type": "Dense", "activation": "softmax"}
        assert last["units"] == ds.num_classes
    if p.loss == "bce":
        assert last["units"] == 1 and last["activation"] == "sigmoid"
    if len(p.input_shape) == 3 and any(layer["type"] == "Dense" for layer in p.layers):
        assert "Flatten" in [layer["type"] for layer in p.layers]


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_to_dict_round_trips_through_json(name):
    p = load_preset(name)
    text = json.dumps(p.to_dict(), allow_nan=False)
    assert preset_from_dict(json.loads(text), name=name) == p
    d = p.to_dict()
    d["layers"][0]["type"] = "changed"
    assert p.layers[0]["type"] != "changed"          # to_dict is a copy


def test_reference_preset_is_math_md_conv_case():
    p, ref = load_preset("reference"), reference_case()
    assert p.input_shape == (3, 5, 5) and p.dataset == "reference"
    assert p.layers == ({"type": "Conv2D", "filters": 2, "kernel_size": 3, "stride": 2,
                         "padding": 1, "activation": "identity"},)
    assert (p.loss, p.reduction, p.training["lr"]) == ("mse", "sum", 0.001)
    arrays = p.param_arrays()
    assert set(arrays) == {0}
    assert np.array_equal(arrays[0]["W"], ref["W"]) and np.array_equal(arrays[0]["b"], ref["b"])


def test_lesson_pairs_differ_only_where_they_should():
    sig, relu = load_preset("deep-sigmoid"), load_preset("deep-relu")
    hidden = [layer for layer in sig.layers[:-1]]
    assert len(hidden) >= 6 and all(layer["activation"] == "sigmoid" for layer in hidden)
    swap = [{**layer, "activation": "relu"} for layer in hidden] + [sig.layers[-1]]
    assert list(relu.layers) == swap
    assert (sig.dataset, sig.training, sig.loss) == (relu.dataset, relu.training, relu.loss)
    lenet = [layer["type"] for layer in load_preset("lenet-digits").layers]
    assert lenet == ["Conv2D", "MaxPool2D", "Conv2D", "MaxPool2D", "Flatten", "Dense", "Dense",
                     "Dense"]


def test_defaults_are_filled_for_optional_keys():
    d = _valid()
    for key in ("description", "seed", "dtype", "reduction", "params"):
        del d[key]
    d["training"] = {"lr": 0.5, "mode": "full-batch"}
    p = preset_from_dict(d)
    assert (p.description, p.seed, p.dtype, p.reduction, p.params) == ("", 0, "float64",
                                                                      "mean", None)
    assert p.training == {"lr": 0.5, "mode": "full-batch", "batch_size": None, "momentum": 0.0,
                          "l2": 0.0, "clip_value": None, "clip_norm": None}


# ---------------------------------------------------------------- bad names and dicts

@pytest.mark.parametrize("name", ["nope", "../reference", "", None])
def test_unknown_preset_lists_the_valid_names(name):
    with pytest.raises(PresetError, match="unknown preset.*valid names:.*xor"):
        load_preset(name)
    assert issubclass(PresetError, ValueError)


def _valid() -> dict:
    return {"format": 1, "name": "mine", "title": "T", "description": "d",
            "input_shape": [2], "seed": 0, "dtype": "float64", "loss": "bce",
            "reduction": "mean", "dataset": "xor4",
            "layers": [{"type": "Dense", "units": 4, "activation": "tanh"},
                       {"type": "Dense", "units": 1, "activation": "sigmoid"}],
            "training": {"lr": 0.5, "mode": "full-batch", "batch_size": 4, "momentum": 0.0,
                         "l2": 0.0, "clip_value": None, "clip_norm": None},
            "params": None}


def _set(path: str, value):
    """Mutation setting d[path...] = value (a missing-key marker deletes it)."""
    def apply(d):
        *parents, last = path.split("/")
        for key in parents:
            d = d[int(key)] if isinstance(d, list) else d[key]
        if value is _DELETE:
            del d[last]
        else:
            d[int(last) if isinstance(d, list) else last] = value
    return apply


_DELETE = object()
W_OK = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]]
BAD = [
    (_set("loss", _DELETE), "loss = None: required key is missing"),
    (_set("colour", "red"), "preset.colour = 'red': unknown key"),
    (_set("format", 2), "format = 2:.*newer"),
    (_set("format", "1"), "format = '1'"),
    (_set("format", True), "format = True"),
    (_set("name", "../evil"), "name = '../evil'"),
    (_set("title", ""), "title = ''"),
    (_set("input_shape", [2, 2]), r"input_shape = \[2, 2\]"),
    (_set("input_shape", [0]), r"input_shape\[0\] = 0"),
    (_set("seed", -1), "seed = -1"),
    (_set("dtype", "int8"), "dtype = 'int8'"),
    (_set("loss", "hinge"), "loss = 'hinge': must be one of mse, bce, cross_entropy"),
    (_set("reduction", "avg"), "reduction = 'avg'"),
    (_set("dataset", "nope"), "dataset = 'nope'"),
    (_set("layers", []), r"layers = \[\]: must be a non-empty list"),
    (_set("layers/0", "Dense"), r"layers\[0\] = 'Dense'"),
    (_set("layers/0/type", "Dense3"), r"layers\[0\].type = 'Dense3'"),
    (_set("layers/0/units", 0), r"layers\[0\].units = 0: must be an integer >= 1"),
    (_set("layers/0/units", 2.5), r"layers\[0\].units = 2.5"),
    (_set("layers/0/units", _DELETE), r"layers\[0\].units = None: required key is missing"),
    (_set("layers/1/activation", "gelu"), r"layers\[1\].activation = 'gelu'"),
    (_set("layers/1/kernel", 3), r"layers\[1\].kernel = 3: unknown key"),
    (_set("layers/0", {"type": "Conv2D", "kernel_size": 3}), r"layers\[0\].filters"),
    (_set("layers/0", {"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": -1}),
     r"layers\[0\].padding = -1"),
    (_set("layers/0", {"type": "MaxPool2D", "size": 2, "stride": 0}), r"layers\[0\].stride = 0"),
    (_set("layers/0", {"type": "MaxPool2D", "size": [2, 0]}), r"layers\[0\].size\[1\] = 0"),
    (_set("layers/0", {"type": "AvgPool2D", "size": [2, 2, 2]}), r"layers\[0\].size = \[2, 2, 2\]"),
    (_set("layers/0", {"type": "AvgPool2D", "size": 2, "ceil_mode": 1}), r"ceil_mode = 1"),
    (_set("layers/0", {"type": "Conv2D", "filters": 1, "kernel_size": True}), "kernel_size = True"),
    (_set("training", None), "training = None"),
    (_set("training/lr", 0), "training.lr = 0"),
    (_set("training/lr", -0.1), "training.lr = -0.1"),
    (_set("training/lr", float("nan")), "training.lr = nan"),
    (_set("training/lr", True), "training.lr = True"),
    (_set("training/lr", "0.1"), "training.lr = '0.1'"),
    (_set("training/mode", "online"), "training.mode = 'online'"),
    (_set("training/mode", "mini-batch"), None),                           # batch_size 4: fine
    (_set("training/batch_size", 0), "training.batch_size = 0"),
    (_set("training/momentum", 1.0), "training.momentum = 1.0"),
    (_set("training/l2", -0.1), "training.l2 = -0.1"),
    (_set("training/clip_value", 0), "training.clip_value = 0"),
    (_set("training/clip_norm", float("inf")), "training.clip_norm = inf"),
    (_set("training/epochs", 5), "training.epochs = 5: unknown key"),
    (_set("params", [1]), r"params = \[1\]: must be null"),
    (_set("params", {"2": {"W": W_OK, "b": [0] * 4}}), r"params\['2'\] = '2'.*layer index"),
    (_set("params", {"0": {"W": W_OK}}), r"params\['0'\].b = None: required key is missing"),
    (_set("params", {"0": {"W": W_OK[:3], "b": [0] * 4}}),
     r"params\['0'\].W = shape \(3, 2\): must be \(4, in_features\)"),
    (_set("params", {"0": {"W": [[1, 2], [3]], "b": [0] * 4}}), r"params\['0'\].W.*rectangular"),
    (_set("params", {"0": {"W": [[float("nan")] * 2] * 4, "b": [0] * 4}}), r"\['0'\].W.*finite"),
    (_set("params", {"0": {"W": [["a", "b"]] * 4, "b": [0] * 4}}), r"params\['0'\].W"),
    (_set("params", {"0": {"W": [[1, 2, 3]] * 4, "b": [0] * 4}}), "input size must be 2"),
    (_set("params", {"0": {"W": W_OK, "b": [0] * 3}}),
     r"params\['0'\].b = shape \(3,\): must have shape \(4,\)"),
]


@pytest.mark.parametrize("mutate, message", BAD)
def test_bad_preset_dicts_are_refused_naming_preset_and_field(mutate, message):
    d = copy.deepcopy(_valid())
    mutate(d)
    if message is None:
        preset_from_dict(d, name="mine")
        return
    with pytest.raises(PresetError, match=message) as info:
        preset_from_dict(d, name="mine")
    assert str(info.value).startswith("preset 'mine': ")


def test_params_only_on_layers_with_parameters():
    d = _valid()
    d["input_shape"] = [1, 2, 2]
    d["layers"].insert(0, {"type": "Flatten"})
    d["params"] = {"0": {"W": [[1.0]], "b": [0.0]}}
    with pytest.raises(PresetError, match=r"params\['0'\] = 'Flatten'"):
        preset_from_dict(d, name="mine")


def test_not_a_dict_is_refused():
    with pytest.raises(PresetError, match="preset 'x': preset = \\[\\]"):
        preset_from_dict([], name="x")


# ---------------------------------------------------------------- files on disk

@pytest.fixture
def preset_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "_presets_dir", lambda: tmp_path)
    return tmp_path


def test_files_are_listed_and_loaded_from_the_presets_folder(preset_dir):
    (preset_dir / "mine.json").write_text(json.dumps(_valid()))
    (preset_dir / "README.txt").write_text("not a preset")
    assert list_presets() == ["mine"] and load_preset("mine").title == "T"


@pytest.mark.parametrize("text, message", [
    ('{"format": NaN}', "NaN is not allowed"),
    ('{"format": 1, "format": 1}', "key 'format' appears twice"),
    ('{"format": 1,', "not valid JSON"),
    (b"\xff\xfe\x00", "not valid JSON"),
])
def test_bad_json_files_are_refused(preset_dir, text, message):
    path = preset_dir / "mine.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(PresetError, match=f"preset 'mine': .*{message}"):
        load_preset("mine")


def test_name_inside_the_file_must_match_the_file_name(preset_dir):
    (preset_dir / "other.json").write_text(json.dumps(_valid()))
    with pytest.raises(PresetError, match="name = 'mine': must equal the file name 'other'"):
        load_preset("other")


@pytest.mark.parametrize("w_shape, message", [
    ((2, 3, 2, 2), r"W = shape \(2, 3, 2, 2\): must be \(2, in_channels, 3, 3\)"),
    ((2, 4, 3, 3), r"W = shape \(2, 4, 3, 3\): input size must be 3 \(from input_shape\)"),
])
def test_conv_params_must_match_the_layer_and_input(w_shape, message):
    d = load_preset("reference").to_dict()
    d["params"]["0"]["W"] = np.zeros(w_shape).tolist()
    with pytest.raises(PresetError, match=r"preset 'reference': params\['0'\]\." + message):
        preset_from_dict(d, name="reference")


def test_layer_options_the_core_accepts_are_allowed():
    d = _valid()
    d["input_shape"] = [1, 6, 6]
    d["layers"] = [
        {"type": "Conv2D", "filters": 2, "kernel_size": [3, 2], "stride": [1, 2],
         "padding": [1, 0], "activation": "relu"},
        {"type": "MaxPool2D", "size": 2, "stride": None, "padding": 1, "ceil_mode": True},
        {"type": "AvgPool2D", "size": [2, 1], "stride": [2, 1]},
        {"type": "Flatten"}, {"type": "Dense", "units": 1, "activation": "sigmoid"}]
    d["params"] = {"0": {"W": np.zeros((2, 1, 3, 2)).tolist(), "b": [0.0, 0.0]}}
    assert preset_from_dict(d).layers == tuple(d["layers"])
    d["params"]["0"]["W"] = np.zeros((2, 1, 3, 3)).tolist()
    with pytest.raises(PresetError, match=r"must be \(2, in_channels, 3, 2\)"):
        preset_from_dict(d)
