"""Export to PyTorch: the generated script is valid Python, rebuilds the same architecture and
weights, and (where torch is importable) gives the core's outputs to 1e-10 in float64."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bpviz.core import Network
from bpviz.core.export_torch import export_torch_script, save_torch_script

NO_TORCH = "torch not installed: export is text-only; install torch to compare outputs"
MLP = ((6,), [{"type": "Dense", "units": 8, "activation": "relu"},
              {"type": "Dense", "units": 7, "activation": "tanh"},
              {"type": "Dense", "units": 5, "activation": "sigmoid"},
              {"type": "Dense", "units": 4, "activation": "identity"},
              {"type": "Dense", "units": 3, "activation": "softmax"}], "cross_entropy")

# every layer type and activation, rectangular kernel/stride/padding pairs, padded ceil pools
CNN = ((2, 11, 9), [
    {"type": "Conv2D", "filters": 3, "kernel_size": [3, 2], "stride": [2, 1],
     "padding": [1, 0], "activation": "tanh"},
    {"type": "MaxPool2D", "size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"type": "Conv2D", "filters": 4, "kernel_size": 2, "stride": 1, "padding": 1,
     "activation": "relu"},
    {"type": "AvgPool2D", "size": [2, 3], "stride": [2, 1], "padding": [1, 1],
     "ceil_mode": True},
    {"type": "Conv2D", "filters": 3, "kernel_size": 1, "activation": "softmax"},
    {"type": "AvgPool2D", "size": 2, "stride": 2},
    {"type": "Flatten"},
    {"type": "Dense", "units": 5, "activation": "sigmoid"},
    {"type": "Dense", "units": 2, "activation": "identity"}], "mse")

GEOMETRIES = [  # (input HW, conv kernel, stride, padding, pool kind, size, stride, pad, ceil)
    ((7, 7), 3, 1, 0, "MaxPool2D", 2, 2, 0, True),
    ((8, 5), (3, 1), (1, 2), (1, 0), "AvgPool2D", 2, 2, 1, True),
    ((9, 9), 5, 2, 2, "MaxPool2D", 3, 3, 1, True),
    ((6, 10), (2, 4), (2, 3), (0, 2), "AvgPool2D", (3, 2), (1, 2), (1, 0), False),
    ((5, 5), 2, 2, 0, "AvgPool2D", 2, 2, 0, True),          # 5, kernel 2, stride 2: row dropped
    ((10, 10), 3, 3, 1, "MaxPool2D", (2, 3), (2, 1), (1, 1), True),
]


def _net(spec, dtype=np.float64, seed=3):
    shape, layers, loss = spec
    net = Network(shape, layers, loss=loss, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    params = [{k: rng.normal(0, 0.5, v.shape) for k, v in l.params.items()} for l in net.layers]
    net.set_params(params)                     # non-zero biases too
    return net


def _geometry_net(g):
    hw, k, s, p, pool, size, ps, pp, ceil = g
    return _net(((2,) + hw, [
        {"type": "Conv2D", "filters": 3, "kernel_size": k, "stride": s, "padding": p,
         "activation": "relu"},
        {"type": pool, "size": size, "stride": ps, "padding": pp, "ceil_mode": ceil},
        {"type": "Flatten"}, {"type": "Dense", "units": 3, "activation": "identity"}], "mse"))


def _load(source):
    namespace = {"__name__": "bpviz_export"}
    exec(compile(source, "exported.py", "exec"), namespace)
    return namespace


def _compare(net, n=6, seed=0):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    model = _load(export_torch_script(net))["build_model"]()
    x = np.random.default_rng(seed).normal(size=(n,) + net.input_shape)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    ref = net.clone(np.float64).forward(x)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    return model


# ----------------------------------------------------------------------------- text only

@pytest.mark.parametrize("spec", [MLP, CNN], ids=["mlp", "cnn"])
def test_script_is_valid_python_with_build_model_and_main(spec):
    source = export_torch_script(_net(spec))
    code = compile(source, "exported.py", "exec")
    assert "build_model" in code.co_names or "def build_model" in source
    assert 'if __name__ == "__main__":' in source
    assert "import torch" not in source.split("def build_model")[0], "torch imported lazily"


def test_weights_round_trip_exactly_without_torch():
    """PARAMS decodes (NumPy only) to the network's very weights, keyed like torch's state."""
    net = _net(CNN)
    params = _load(export_torch_script(net))["PARAMS"]
    for layer in net.layers:
        prefix = {"Conv2D": "conv", "Dense": "linear"}.get(layer.kind)
        if prefix is None:
            continue
        np.testing.assert_array_equal(params[f"{prefix}{layer.index}.weight"], layer.params["W"])
        np.testing.assert_array_equal(params[f"{prefix}{layer.index}.bias"], layer.params["b"])
    assert len(params) == 2 * sum(l.kind in ("Conv2D", "Dense") for l in net.layers)


def test_architecture_text_names_every_layer_and_the_softmax_note():
    source = export_torch_script(_net(MLP))
    assert source.count("nn.Linear(") == 5
    assert source.rstrip().count("nn.Softmax(dim=1)") == 1
    assert "CrossEntropyLoss expects logits" in source
    cnn = export_torch_script(_net(CNN))
    assert "ceil_mode=True, count_include_pad=True" in cnn
    assert "nn.Conv2d(2, 3, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0))" in cnn
    assert "nn.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)" in cnn


def test_large_network_stays_compact_and_generation_needs_no_torch(tmp_path):
    """~11 characters per weight (base64 float64); made in a process without torch."""
    code = ("import sys, numpy as np\n"
            "from bpviz.core import Network\n"
            "from bpviz.core.export_torch import export_torch_script\n"
            "net = Network((784,), [{'type': 'Dense', 'units': 256, 'activation': 'relu'},"
            " {'type': 'Dense', 'units': 10, 'activation': 'softmax'}], loss='cross_entropy')\n"
            "s = export_torch_script(net)\n"
            "assert 'torch' not in sys.modules\n"
            "print(len(s), net.param_count())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    chars, count = map(int, out.stdout.split())
    assert chars < 11.2 * count + 5000


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text("old")
    save_torch_script(path, _net(MLP))
    assert path.read_text().startswith('"""PyTorch rebuild')
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]


# ----------------------------------------------------------------------------- with torch

def test_mlp_outputs_match_core():
    model = _compare(_net(MLP))
    assert list(dict(model.named_children())) == [
        "linear0", "relu0", "linear1", "tanh1", "linear2", "sigmoid2", "linear3",
        "linear4", "softmax4"]


def test_cnn_with_every_layer_type_matches_core():
    _compare(_net(CNN))


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[str(i) for i in range(len(GEOMETRIES))])
def test_padding_stride_pairs_and_ceil_mode_pooling_match_core(geometry):
    _compare(_geometry_net(geometry), n=4)


def test_float32_network_exports_its_exact_weights():
    """A float32 net's weights are exported exactly (float64 holds every float32)."""
    net = _net(CNN, dtype=np.float32)
    _compare(net)


def test_presets_export_and_match(tmp_path):
    from bpviz.session.session import Session
    for preset in ("cnn-shapes", "lenet-digits", "deep-sigmoid"):
        _compare(Session(preset).net, n=3)


def test_script_runs_as_main_and_prints_a_summary(tmp_path):
    pytest.importorskip("torch", reason=NO_TORCH)
    path = tmp_path / "model.py"
    save_torch_script(path, _net(CNN))
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert "Sequential(" in out and "parameters (bpviz:" in out
    assert "linear8" in out and "output for a random input" in out
