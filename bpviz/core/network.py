"""Network: a validated stack of layers with a loss, stepped whole or one layer at a time.

``forward(x)`` and ``backward(t)`` consume the generators ``iter_forward`` and
``iter_backward``, which yield after each layer: the debugger steps the same code.
Edits (insert, remove, replace, move, loss, input shape) are checked on fresh copies of the
stack first; a failed edit raises ``LayerConfigError`` and changes nothing.
"""
from __future__ import annotations

import math

import numpy as np

from . import guard, losses
from .errors import LayerConfigError, TargetError
from .flat import ParamBuffer
from .layers import Layer, layer_from_config
from .layers.base import shape_text
from .stack import (CONFIG_KEYS, DTYPES, MAX_PARAMS, MAX_VALUES_PER_SAMPLE,  # noqa: F401
                    _dtype, _input_shape, _seed, infer_shapes)


def quiet():
    """No NumPy warnings for overflow or invalid values: the NaN/Inf guard reports them."""
    return np.errstate(over="ignore", invalid="ignore")


class Network:
    """A stack of layers and a loss; forward, backward and stepping one layer at a time."""

    def __init__(self, input_shape, layers, loss: str = "mse", seed: int | None = 0,
                 dtype=np.float64, reduction: str = "mean"):
        self.dtype = _dtype(dtype)
        self.seed = _seed(seed)
        self._rng = np.random.default_rng(self.seed)
        self.loss = self._check_loss(loss)
        self.reduction = self._check_reduction(reduction)
        self.input_shape = _input_shape(input_shape)
        self.layers: list[Layer] = []
        self._install([self._as_layer(l, i) for i, l in enumerate(layers)], self.input_shape)
        self.loss_value: float | None = None
        self.nonfinite: list[guard.NonFiniteReport] = []
        self._input_grad = None
        self._x = None

    # ----- construction and edits ---------------------------------------------------------
    @staticmethod
    def _check_loss(loss):
        if loss not in losses.NAMES:
            raise LayerConfigError(f"network: loss {loss!r} is unknown; use one of "
                                   f"{', '.join(losses.NAMES)}")
        return loss

    @staticmethod
    def _check_reduction(reduction):
        if reduction not in losses.REDUCTIONS:
            raise LayerConfigError(f"network: reduction {reduction!r} is unknown; use "
                                   f"'mean' (average over the batch) or 'sum'")
        return reduction

    @staticmethod
    def _as_layer(layer, index):
        if isinstance(layer, Layer):
            return layer
        return layer_from_config(layer, index)

    def _install(self, new_layers: list[Layer], input_shape: tuple) -> None:
        """Validate the whole new stack, then build what changed; keep unchanged weights."""
        if not new_layers:
            raise LayerConfigError("network: the stack is empty; add at least one layer")
        if len(set(map(id, new_layers))) != len(new_layers):
            raise LayerConfigError("network: the same layer object appears twice in the stack")
        infer_shapes(input_shape, new_layers)            # raises before anything changes
        shape = input_shape
        for i, layer in enumerate(new_layers):
            # A layer that was built for this input shape keeps its weights, also one that
            # comes back into the stack (undo of a removal or replacement).
            keep = (layer.output_shape is not None and layer.input_shape == shape
                    and layer.dtype == self.dtype)
            layer.index = i
            if keep:
                layer.infer(shape)                       # refresh notes and messages
            else:
                layer.build(shape, self._rng, self.dtype, i)
            shape = layer.output_shape
        self.layers, self.input_shape = list(new_layers), input_shape
        self.buffer = ParamBuffer(self.layers, self.dtype)
        self.buffer.adopt()
        self.clear_pass()

    def clear_pass(self):
        """Forget the last pass: no x, z, a, δ, loss or NaN/Inf report left (weights kept)."""
        self.nonfinite, self.loss_value = [], None
        self._x = None
        self._input_grad = None
        for layer in self.layers:
            layer.x = layer.z = layer.a = layer.delta = None

    def insert_layer(self, index: int, layer) -> None:
        new = list(self.layers)
        new.insert(index, self._as_layer(layer, index))
        self._install(new, self.input_shape)

    def remove_layer(self, index: int) -> None:
        self._check_index(index)
        self._install(self.layers[:index] + self.layers[index + 1:], self.input_shape)

    def replace_layer(self, index: int, layer) -> None:
        self._check_index(index)
        new = list(self.layers)
        new[index] = self._as_layer(layer, index)
        self._install(new, self.input_shape)

    def move_layer(self, index: int, new_index: int) -> None:
        self._check_index(index)
        self._check_index(new_index)
        new = list(self.layers)
        new.insert(new_index, new.pop(index))
        self._install(new, self.input_shape)

    def set_input_shape(self, shape) -> None:
        self._install(list(self.layers), _input_shape(shape))

    def set_loss(self, loss: str, reduction: str | None = None) -> None:
        self.loss = self._check_loss(loss)
        if reduction is not None:
            self.reduction = self._check_reduction(reduction)

    def _check_index(self, index):
        if not 0 <= index < len(self.layers):
            raise LayerConfigError(f"network: layer index {index} is out of range "
                                   f"(0 … {len(self.layers) - 1})")

    # ----- description ---------------------------------------------------------------------
    @property
    def output_shape(self) -> tuple:
        return self.layers[-1].output_shape

    def param_count(self) -> int:
        return sum(layer.param_count() for layer in self.layers)

    def summary_rows(self) -> list[dict]:
        return [{"index": l.index, "type": l.kind, "layer": l.describe(),
                 "output_shape": l.output_shape, "params": l.param_count(),
                 "notes": list(l.notes)} for l in self.layers]

    def summary(self) -> str:
        lines = [f"input {shape_text(self.input_shape)}"]
        for row in self.summary_rows():
            lines.append(f"{row['index']:>3}  {row['layer']:<44} {shape_text(row['output_shape']):>12}"
                         f"  {row['params']:>8} params")
            lines += [f"       note: {n}" for n in row["notes"]]
        lines.append(f"loss {self.loss} ({self.reduction} over the batch), "
                     f"{self.param_count()} parameters, {self.dtype.name}")
        return "\n".join(lines)

    def config(self) -> dict:
        return {"input_shape": list(self.input_shape),
                "layers": [l.config() for l in self.layers],
                "loss": self.loss, "reduction": self.reduction,
                "dtype": self.dtype.name, "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict) -> "Network":
        unknown = sorted(set(config) - CONFIG_KEYS)
        if unknown:
            raise LayerConfigError(f"network: unknown key(s) {', '.join(unknown)}; allowed: "
                                   f"{', '.join(sorted(CONFIG_KEYS))}")
        return cls(config["input_shape"], config["layers"], loss=config.get("loss", "mse"),
                   seed=config.get("seed", 0), dtype=config.get("dtype", "float64"),
                   reduction=config.get("reduction", "mean"))

    def clone(self, dtype=None) -> "Network":
        """An independent copy with the same weights (optionally in another dtype)."""
        cfg = self.config()
        if dtype is not None:
            cfg["dtype"] = np.dtype(dtype).name
        twin = Network.from_config(cfg)
        twin.set_params(self.get_params())
        return twin

    def get_params(self) -> list[dict]:
        return [{k: v.copy() for k, v in l.params.items()} for l in self.layers]

    def set_params(self, params: list[dict]) -> None:
        """Replace every parameter (validated shapes and finiteness first; all or nothing)."""
        if len(params) != len(self.layers):
            raise LayerConfigError(f"parameters for {len(params)} layers; the network has "
                                   f"{len(self.layers)}")
        for layer, p in zip(self.layers, params):
            if set(p) != set(layer.params):
                raise LayerConfigError(f"{layer.where()}: parameters {sorted(p)}; expected "
                                       f"{sorted(layer.params)}")
            for k, v in p.items():
                v = np.asarray(v)
                if v.shape != layer.params[k].shape:
                    raise LayerConfigError(f"{layer.where()}: {k} has shape {v.shape}; the "
                                           f"architecture needs {layer.params[k].shape}")
                if not np.all(np.isfinite(v)):
                    raise LayerConfigError(f"{layer.where()}: {k} contains NaN or Inf")
        for layer, p in zip(self.layers, params):
            for k, v in p.items():
                layer.params[k] = np.asarray(v, dtype=self.dtype)
        self.buffer.adopt()                              # copies them into a new buffer

    # ----- passes ----------------------------------------------------------------------------
    def check_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind not in "iufc":              # numbers (not bool, object, text, time)
            raise TargetError(f"input: dtype {x.dtype} is not numeric")
        if x.shape[1:] != self.input_shape or x.ndim != len(self.input_shape) + 1:
            raise TargetError(f"input: shape {x.shape} does not match (N, "
                              f"{', '.join(map(str, self.input_shape))})")
        if len(x) == 0:
            raise TargetError("input: batch of 0 samples; a batch needs at least 1")
        x = x.astype(self.dtype, copy=False)
        if not guard.is_finite(x):
            raise TargetError("input: contains NaN or Inf; every input value must be finite")
        return x

    def iter_forward(self, x, check_each: bool = True):
        """Run the forward pass, yielding each layer's index once its z and a are set.

        With ``check_each`` every layer is checked for NaN/Inf as it is computed; without, only
        the output is, and the first bad layer is then looked for in order (same report).
        NumPy's overflow/invalid warnings are silenced while a layer computes (the guard
        reports instead), per layer, so that a caller stepping the generator keeps its own
        settings between steps.
        """
        a = self._start_forward(x)
        for i, layer in enumerate(self.layers):
            with quiet():
                a = layer.forward(a)
            if check_each:
                self._check_forward(i)
            yield i
        if not check_each:
            self._find_nonfinite_forward(a)

    def forward(self, x) -> np.ndarray:
        """The whole pass: ``iter_forward``'s steps in one loop under one warnings context
        (at batch 1 a generator step and a context per layer cost ~2 % of a training step)."""
        with quiet():
            a = self._start_forward(x)
            for layer in self.layers:
                a = layer.forward(a)
            self._find_nonfinite_forward(a)
        return a

    def _start_forward(self, x):
        """Check x and forget the last pass; return the checked input."""
        x = self.check_input(x)
        self.clear_pass()
        self._x = x
        return x

    def _find_nonfinite_forward(self, a) -> None:
        """Check the output only; when it is not finite, look for the first bad layer."""
        if not guard.is_finite(a):
            for i in range(len(self.layers)):
                if not self._check_forward(i):
                    break

    def _check_forward(self, i) -> bool:
        if self.nonfinite:
            return False
        layer = self.layers[i]
        for name in ("z", "a"):
            arr = getattr(layer, name)
            if not guard.is_finite(arr):
                self.nonfinite.append(guard.report("forward", layer, i, name, arr))
                return False
        return True

    def iter_backward(self, t, check_each: bool = True):
        """Loss and δ^L first, then each layer's gradients, yielding its index (last to first).

        NaN/Inf checks as in ``iter_forward``: per layer, or (without ``check_each``) on the
        loss and the first layer's δ (through its ∂b), which every non-finite δ upstream
        reaches.
        """
        grad, fused = self._start_backward(t)
        incoming_ok = bool(np.isfinite(self.loss_value))
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            back = layer.backward_delta if fused else layer.backward   # fused: grad is δ
            fused = False
            with quiet():
                grad = back(grad, i > 0)
            if check_each:
                incoming_ok = self._guard_backward(layer, i, incoming_ok)
            yield i
        self._end_backward(check_each)

    def backward(self, t) -> float:
        """The whole pass: ``iter_backward``'s steps in one loop under one warnings context;
        returns the loss."""
        with quiet():
            grad, fused = self._start_backward(t)
            for i in range(len(self.layers) - 1, -1, -1):
                layer = self.layers[i]
                grad = (layer.backward_delta if fused else layer.backward)(grad, i > 0)
                fused = False
            self._end_backward(False)
        return self.loss_value

    def _start_backward(self, t):
        """The loss and the gradient at the output (δ^L itself when ``fused``); fresh
        gradient arrays for the layers."""
        if self.layers[-1].a is None:
            raise TargetError("backward: run forward first; there is no output to compare")
        self.loss_value, grad, fused = self._output_error(t)
        self.buffer.hand_out_grads()
        return grad, fused

    def _end_backward(self, checked: bool) -> None:
        """Without per-layer checks: check the loss and the first δ; when either is not
        finite, look for the first bad tensor layer by layer."""
        self._input_grad = None
        if not checked and not (math.isfinite(self.loss_value) and self._first_delta_finite()):
            incoming_ok = math.isfinite(self.loss_value)
            for i in range(len(self.layers) - 1, -1, -1):
                incoming_ok = self._guard_backward(self.layers[i], i, incoming_ok)

    def _first_delta_finite(self) -> bool:
        """Whether the first layer's δ is finite, read from its ∂b = Σ δ when it has one: a
        sum is non-finite whenever a term is (an overflow only sends it to the per-layer
        check). A few numbers instead of all of δ (~60 µs at LeNet batch 32)."""
        first = self.layers[0]
        db = first.grads.get("b")
        return guard.is_finite(first.delta if db is None else db)

    def _output_error(self, t):
        """(loss, gradient at the output, fused?) for the current output and targets t."""
        out = self.layers[-1]
        t = losses.targets(self.loss, t, out.a.shape, self.dtype)
        self.targets = t
        if losses.is_fused(self.loss, out.activation):
            value, delta = losses.fused(self.loss, out.z, out.a, t, self.reduction)
            return value, delta, True
        value, grad = losses.plain(self.loss, out.a, t, self.reduction)
        return value, grad, False

    def loss_of(self, t) -> float:
        """The loss of the current output against t, without a backward pass."""
        if self.layers[-1].a is None:
            raise TargetError("loss: run forward first; there is no output to compare")
        return self._output_error(t)[0]

    def forward_from(self, index: int, z) -> np.ndarray:
        """Re-run the pass from layer ``index`` with its pre-activation set to ``z``."""
        from . import activations
        layer = self.layers[index]
        layer.z = z
        a = layer.a = activations.forward(layer.activation, z)
        for later in self.layers[index + 1:]:
            a = later.forward(a)
        return a

    def _guard_backward(self, layer, i, incoming_ok) -> bool:
        if self.nonfinite and self.nonfinite[0].phase == "backward":
            return False
        tensors = [("delta", layer.delta)] + [("d" + k, g) for k, g in layer.grads.items()]
        for name, arr in tensors:
            if not guard.is_finite(arr):
                self.nonfinite.append(guard.report("backward", layer, i, name, arr, incoming_ok))
                return False
        return incoming_ok

    @property
    def input_grad(self):
        """∂loss/∂x of the last backward pass (computed on first use)."""
        first = self.layers[0]
        if first.delta is None:
            return None
        if self._input_grad is None:
            with quiet():
                self._input_grad = first.input_gradient()
        return self._input_grad

    @property
    def first_nonfinite(self):
        return self.nonfinite[0] if self.nonfinite else None

    # ----- files ---------------------------------------------------------------------------
    def save(self, path, optimizer=None, step: int | None = None) -> None:
        from .fileformat import save_network
        save_network(path, self, optimizer=optimizer, step=step)

    @classmethod
    def load(cls, path) -> "Network":
        from .fileformat import load_network
        return load_network(path).network

    def __repr__(self) -> str:
        inner = ", ".join(l.describe() for l in self.layers)
        return f"Network({shape_text(self.input_shape)} → [{inner}], loss={self.loss})"
