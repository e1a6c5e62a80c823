"""Export a network as a stand-alone PyTorch script (File ▸ Export to PyTorch…).

``export_torch_script(net)`` returns Python source text; generating it needs no torch. The
script defines ``build_model(dtype=torch.float64)``: an ``nn.Sequential`` with the same layers
(Conv2d, MaxPool2d/AvgPool2d with the same padding and ceil_mode — AvgPool2d with
count_include_pad=True, which is the core's divisor — Flatten, Linear, activations) and the
exact weights, and a ``__main__`` that prints a summary and runs one input through the model.

Weights are embedded as base64 text of little-endian float64 bytes, one string per tensor,
decoded with NumPy. Why not nested lists: base64 is ~11 characters per value against ~20 for
a lossless ``repr`` of each float, it is exact to the bit by construction, and Python parses
a multi-megabyte string literal instantly whereas a literal list of a million floats makes
the compiler build (and hold) a million AST nodes, taking seconds and gigabytes.
"""
from __future__ import annotations

import base64
import textwrap

import numpy as np

from .atomic import atomic_write

ACTIVATIONS = {"relu": "nn.ReLU()", "sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()",
               "softmax": "nn.Softmax(dim=1)"}
LOSS_NOTES = {
    "mse": "bpviz's mse is ½·Σ(a − t)² over the outputs: nn.MSELoss(reduction='sum')(a, t) / 2 "
           "per sample",
    ("bce", "sigmoid"): "bpviz's bce is −Σ[t·ln a + (1 − t)·ln(1 − a)]: nn.BCELoss on the "
                        "output, or (stabler) nn.BCEWithLogitsLoss on model[:-1](x), the logits",
    "bce": "bpviz's bce is −Σ[t·ln a + (1 − t)·ln(1 − a)] on the output: nn.BCELoss",
    ("cross_entropy", "softmax"): "nn.CrossEntropyLoss expects logits, not probabilities: "
                                  "train with model[:-1] (without the final Softmax), or use "
                                  "nn.NLLLoss on torch.log(model(x))",
    "cross_entropy": "bpviz's cross_entropy is −Σ t·ln a on the output as it is "
                     "(nn.NLLLoss on torch.log(model(x)))",
}
WRAP = 96


def _pair(p) -> str:
    return str(p[0]) if p[0] == p[1] else f"({p[0]}, {p[1]})"


def _b64(arr: np.ndarray) -> str:
    raw = np.ascontiguousarray(arr, dtype="<f8").tobytes()
    text = base64.b64encode(raw).decode("ascii")
    return "\n".join(text[i:i + WRAP] for i in range(0, len(text), WRAP))


def _modules(net) -> list[tuple[str, str, str]]:
    """(name, constructor source, comment line or '') for every torch module, in order."""
    out = []
    shape = tuple(net.input_shape)
    for layer in net.layers:
        i, k = layer.index, layer.kind
        head = f"layer {i}: {layer.describe()} → {'×'.join(map(str, layer.output_shape))}"
        if k == "Conv2D":
            src = (f"nn.Conv2d({shape[0]}, {layer.filters}, kernel_size={_pair(layer.kernel_size)}"
                   f", stride={_pair(layer.stride)}, padding={_pair(layer.padding)})")
            out.append((f"conv{i}", src, head))
        elif k in ("MaxPool2D", "AvgPool2D"):
            cls = "MaxPool2d" if k == "MaxPool2D" else "AvgPool2d"
            extra = ", count_include_pad=True" if k == "AvgPool2D" else ""
            src = (f"nn.{cls}(kernel_size={_pair(layer.size)}, stride={_pair(layer.stride)}, "
                   f"padding={_pair(layer.padding)}, ceil_mode={layer.ceil_mode}{extra})")
            out.append((f"{'max' if k == 'MaxPool2D' else 'avg'}pool{i}", src, head))
        elif k == "Flatten":
            out.append((f"flatten{i}", "nn.Flatten()", head + " (C, H, W order)"))
        elif k == "Dense":
            out.append((f"linear{i}", f"nn.Linear({shape[0]}, {layer.units})", head))
        else:
            raise ValueError(f"layer {i}: {k} cannot be exported to PyTorch")
        if layer.activation in ACTIVATIONS:
            note = ""
            if layer is net.layers[-1] and (net.loss, layer.activation) in (
                    ("cross_entropy", "softmax"), ("bce", "sigmoid")):
                note = "the matching torch loss wants logits: see the LOSS note above"
            out.append((f"{layer.activation}{i}", ACTIVATIONS[layer.activation], note))
        shape = tuple(layer.output_shape)
    return out


def _weights(net) -> list[str]:
    lines = []
    names = {"Conv2D": "conv", "Dense": "linear"}
    for layer in net.layers:
        prefix = names.get(layer.kind)
        if prefix is None:
            continue
        for key, torch_key in (("W", "weight"), ("b", "bias")):
            arr = layer.params[key]
            shape = tuple(int(s) for s in arr.shape)
            lines.append(f'    "{prefix}{layer.index}.{torch_key}": _array({shape!r}, """\n'
                         f'{_b64(arr)}"""),')
    return lines


def export_torch_script(net) -> str:
    """PyTorch source that rebuilds ``net`` (architecture and exact weights); see module doc."""
    modules = _modules(net)
    width = max(len(n) for n, _, _ in modules)
    body = []
    for name, src, note in modules:
        if note:
            body.append(f"        # {note}")
        body.append(f'        ("{name}",{" " * (width - len(name))} {src}),')
    summary = "\n".join("    " + line for line in net.summary().splitlines())
    last = net.layers[-1].activation
    loss_note = LOSS_NOTES.get((net.loss, last), LOSS_NOTES.get(net.loss, ""))
    params = _weights(net)
    loss_note = textwrap.fill(loss_note, 92, initial_indent="# ", subsequent_indent="# ")
    return TEMPLATE.format(
        summary=summary, input_shape=tuple(net.input_shape), loss=net.loss,
        reduction=net.reduction, loss_note=loss_note, modules="\n".join(body),
        params="\n".join(params) if params else "    # (no layer has parameters)",
        count=net.param_count(), dtype=net.dtype.name)


def save_torch_script(path, net) -> None:
    """Write the script atomically (temp file in the same folder, fsync, replace)."""
    text = export_torch_script(net)
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


TEMPLATE = '''"""PyTorch rebuild of a bpviz network: same layers, same weights (exported by bpviz).

Architecture:
{summary}

Run `python this_file.py` for a summary, or `from this_file import build_model`.
The weights are float64 (bpviz trained in {dtype}); build_model(torch.float32) converts them.
"""
import base64
from collections import OrderedDict

import numpy as np

# One sample's shape; the model takes a batch (N, *INPUT_SHAPE).
INPUT_SHAPE = {input_shape!r}
PARAMETER_COUNT = {count}
# The loss bpviz trained with ("{reduction}" over the batch).
LOSS = "{loss}"
{loss_note}


def _array(shape, text):
    """A float64 array from base64 text of its little-endian bytes (exact to the bit)."""
    return np.frombuffer(base64.b64decode(text), dtype="<f8").reshape(shape).copy()


PARAMS = {{
{params}
}}


def build_model(dtype=None):
    """nn.Sequential with bpviz's layers and weights (float64 unless ``dtype`` is given)."""
    import torch
    from torch import nn

    model = nn.Sequential(OrderedDict([
{modules}
    ]))
    model = model.to(dtype or torch.float64)
    state = {{k: torch.from_numpy(v) for k, v in PARAMS.items()}}
    model.load_state_dict(state)
    return model.eval()


if __name__ == "__main__":
    try:
        import torch
    except ImportError:
        raise SystemExit("PyTorch is not installed: pip install torch") from None
    model = build_model()
    print(model)
    print(f"{{sum(p.numel() for p in model.parameters())}} parameters (bpviz: {{PARAMETER_COUNT}})")
    x = torch.rand((1,) + INPUT_SHAPE, dtype=torch.float64)
    with torch.no_grad():
        for name, module in model.named_children():
            x = module(x)
            print(f"  {{name:<12}} → {{tuple(x.shape[1:])}}")
    print("output for a random input:", x.numpy().round(4).tolist())
'''
