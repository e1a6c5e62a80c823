"""“Where did this δ come from?”: one δ (or one weight gradient) taken apart into the terms
the back-propagation summed. No Qt; reads the core's arrays, never changes them.

``explain_delta(net, layer_index, unit)`` — unit (channel, row, col) of a map or (index,) of a
vector, for one sample of the batch (0 = the displayed one):

    δ = ∂loss/∂a · f′(z)           element-wise activations
    δ = a ⊙ (g − Σ_k g_k a_k)       softmax (Jacobian-vector form, g = ∂loss/∂a of the group)
    δ = (a − t) · s                 fused output (softmax + cross-entropy, sigmoid + BCE)

and ∂loss/∂a itself as the sum the next layer sends back: Conv2D → every δ of the next layer
whose window touched the unit times the kernel weight that linked them (MATH.md's ∂E/∂i₂₂);
MaxPool2D → the δ of each window that covers it, times 1 if the unit was that window's (first)
maximum else 0; AvgPool2D → δ / count; Flatten → traced on to the Dense layer after it,
Σ_k W[k, idx] δ[k]; Dense → Σ_k W[k, j] δ[k]; the output layer → the loss's ∂loss/∂a.

``explain_weight_grad(net, layer_index, index)`` — one gradient entry, Σ δ · input over the
positions and the batch. Both return ``Terms`` sorted by |term| for display (top 10 and "…
and N more summing to X"), and the core's own value for the sum check.

The numbers are consistent only while δ, z, x and the weights belong to one pass:
``explain_in_session`` checks that (backward phase at or after the cursor, or the update phase
with the weights before the update) and raises ``ExplainError`` with what to do otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bpviz.core import activations, losses
from bpviz.core.layers.conv import conv2d_backward_input, pad_input


class ExplainError(ValueError):
    """The unit cannot be explained now (no δ yet, stale pass, bad index); says why."""


@dataclass(frozen=True)
class Term:
    index: dict            # e.g. {"f": 2, "i": 1, "j": 0, "m": 1, "n": 2}
    left: float            # δ of the next layer (or δ, for a weight gradient)
    right: float           # the weight / routing factor / 1/count / input that links them
    value: float           # left · right


@dataclass(frozen=True)
class Terms:
    """All terms of one sum, as arrays (a conv weight's gradient can have thousands)."""
    columns: tuple          # names of the index columns
    index: np.ndarray       # (n, len(columns)) ints
    left: np.ndarray
    right: np.ndarray
    left_name: str          # "δ³", "g", "δ"
    right_name: str         # "W³", "route", "1/count", "x"

    @property
    def values(self) -> np.ndarray:
        return self.left * self.right

    def __len__(self) -> int:
        return len(self.left)

    def total(self) -> float:
        return math.fsum(self.values.tolist())

    def order(self) -> np.ndarray:
        return np.argsort(-np.abs(self.values), kind="stable")

    def top(self, k: int = 10) -> list[Term]:
        vals = self.values
        return [Term(dict(zip(self.columns, (int(v) for v in self.index[i]))),
                     float(self.left[i]), float(self.right[i]), float(vals[i]))
                for i in self.order()[:k]]

    def rest(self, k: int = 10) -> tuple[int, float]:
        """(count, sum) of the terms after the top k."""
        idx = self.order()[k:]
        return len(idx), math.fsum(self.values[idx].tolist())


@dataclass(frozen=True)
class DeltaExplanation:
    layer: int
    kind: str
    activation: str
    unit: tuple
    sample: int
    delta: float                 # layer.delta[sample][unit]
    z: float
    a: float
    mode: str                    # "element-wise", "softmax" or "fused"
    fprime: float | None         # f′(z) at the unit (element-wise mode)
    upstream: float | None       # ∂loss/∂a at the unit, as the core computed it
    source: str                  # where ∂loss/∂a came from
    via: int | None              # the layer whose δ were summed (None: the loss)
    terms: Terms | None          # Σ terms = upstream
    jacobian: Terms | None       # softmax: Σ g_k ∂a_k/∂z_j = δ
    target: float | None = None  # fused: t at the unit
    scale: float = 1.0           # fused / loss: 1/N for a "mean" loss, else 1
    shape: tuple = ()            # the layer's output shape (per sample)

    @property
    def column(self) -> int:
        """The unit's position in the flattened output: its column j of the next Dense W."""
        return int(np.ravel_multi_index(self.unit, self.shape)) if self.shape else self.unit[0]

    def upstream_sum(self) -> float | None:
        return self.terms.total() if self.terms is not None else self.upstream

    def rebuilt(self) -> float:
        """δ rebuilt from the parts shown: Σ terms · f′(z), the Jacobian sum, or (a − t)s."""
        if self.mode == "fused":
            return (self.a - self.target) * self.scale
        if self.mode == "softmax":
            return self.jacobian.total()
        return self.upstream_sum() * self.fprime


@dataclass(frozen=True)
class WeightGradExplanation:
    layer: int
    kind: str
    param: str                   # "W" or "b"
    index: tuple
    grad: float                  # layer.grads[param][index] (the core's value)
    terms: Terms                 # δ · input over positions and the batch
    batch: int

    def rebuilt(self) -> float:
        return self.terms.total()


# ----------------------------------------------------------------------------- δ of a unit

def _unit(layer, unit) -> tuple:
    unit = tuple(int(u) for u in np.atleast_1d(unit))
    shape = layer.output_shape
    if len(unit) != len(shape) or not all(0 <= u < n for u, n in zip(unit, shape)):
        raise ExplainError(f"layer {layer.index} {layer.kind}: unit {unit} is outside its "
                           f"output {'×'.join(map(str, shape))}")
    return unit


def _weights(net, index, params):
    if params is not None and params[index] and "W" in params[index]:
        return params[index]["W"]
    return net.layers[index].params.get("W")


def explain_delta(net, layer_index: int, unit, sample: int = 0,
                  params: list | None = None) -> DeltaExplanation:
    """Take δ of one unit apart; ``params`` (per layer {name: array}) overrides the weights
    when they have changed since the backward pass (the session passes the pre-update ones)."""
    if not 0 <= layer_index < len(net.layers):
        raise ExplainError(f"layer {layer_index} does not exist (0 … {len(net.layers) - 1})")
    layer = net.layers[layer_index]
    if layer.delta is None or layer.z is None:
        raise ExplainError(f"layer {layer_index} {layer.kind} has no δ yet: run the backward "
                           f"pass (F11 steps it layer by layer)")
    if not 0 <= sample < len(layer.delta):
        raise ExplainError(f"sample {sample} is outside the batch of {len(layer.delta)}")
    unit = _unit(layer, unit)
    at = (sample,) + unit
    base = dict(layer=layer_index, kind=layer.kind, activation=layer.activation, unit=unit,
                sample=sample, delta=float(layer.delta[at]), z=float(layer.z[at]),
                a=float(layer.a[at]), shape=tuple(layer.output_shape))
    last = layer_index == len(net.layers) - 1
    if last and losses.is_fused(net.loss, layer.activation):
        t = float(net.targets[at])
        return DeltaExplanation(**base, mode="fused", fprime=None, upstream=None,
                                source=f"{net.loss} with {layer.activation}: δ = (a − t)·s",
                                via=None, terms=None, jacobian=None, target=t,
                                scale=_scale(net))
    up_all, terms, source, via = _upstream(net, layer_index, unit, sample, params)
    upstream = float(up_all[at])
    if layer.activation == "softmax":
        group = (slice(None),) if len(unit) == 1 else (slice(None), unit[1], unit[2])
        g = up_all[sample][group].reshape(-1)
        a = layer.a[sample][group].reshape(-1)
        j = unit[0]
        jac = a * ((np.arange(len(a)) == j) - a[j])       # ∂a_k/∂z_j
        col = "k" if len(unit) == 1 else "channel"
        jacobian = Terms((col,), np.arange(len(a))[:, None], g, jac, "g", "∂a/∂z")
        return DeltaExplanation(**base, mode="softmax", fprime=None, upstream=upstream,
                                source=source, via=via, terms=terms, jacobian=jacobian,
                                scale=_scale(net) if via is None else 1.0)
    fprime = float(activations.derivative(layer.activation, layer.z[at], layer.a[at]))
    return DeltaExplanation(**base, mode="element-wise", fprime=fprime, upstream=upstream,
                            source=source, via=via, terms=terms, jacobian=None,
                            scale=_scale(net) if via is None else 1.0)


def _scale(net) -> float:
    return 1.0 / len(net.layers[-1].a) if net.reduction == "mean" else 1.0


def _upstream(net, index, unit, sample, params):
    """(∂loss/∂a of layer ``index`` for the whole batch as the core computes it, the terms of
    the unit's entry, a description, the layer whose δ were summed)."""
    n = len(net.layers)
    if index == n - 1:
        _, grad = losses.plain(net.loss, net.layers[-1].a, net.targets, net.reduction)
        return grad, None, f"the loss ({net.loss}): ∂loss/∂a", None
    nxt = net.layers[index + 1]
    if nxt.delta is None:
        raise ExplainError(f"layer {index + 1} {nxt.kind} has no δ yet")
    W = _weights(net, index + 1, params)
    if nxt.kind == "Dense":
        up = nxt.delta @ W
    elif nxt.kind == "Conv2D":
        up = conv2d_backward_input(nxt.delta, W, nxt.input_shape[1:], nxt.stride, nxt.padding)
    else:
        up = nxt.input_gradient()
    kind = nxt.kind
    if kind == "Dense":
        terms = _dense_terms(nxt.delta[sample], W, unit[0], index + 1)
        return up, terms, f"layer {index + 1} Dense: Σ_k W[k, j] δ[k]", index + 1
    if kind == "Conv2D":
        terms = _conv_terms(nxt, nxt.delta[sample], W, unit)
        return up, terms, (f"layer {index + 1} Conv2D: every δ whose window touched the unit "
                           f"× the kernel weight that linked them"), index + 1
    if kind == "MaxPool2D":
        route = nxt.routing()[sample]
        terms = _pool_terms(nxt, nxt.delta[sample], unit, route=route)
        return up, terms, (f"layer {index + 1} MaxPool2D: δ of each window covering the unit, "
                           f"× 1 if it was the window's maximum else 0"), index + 1
    if kind == "AvgPool2D":
        terms = _pool_terms(nxt, nxt.delta[sample], unit)
        return up, terms, (f"layer {index + 1} AvgPool2D: δ of each window covering the "
                           f"unit ÷ the window's count"), index + 1
    return (up,) + _through_flatten(net, index, unit, sample, params)


def _dense_terms(delta_next, W, j, index) -> Terms:
    k = np.arange(len(delta_next))
    return Terms(("k",), k[:, None], np.asarray(delta_next, float), np.asarray(W[:, j], float),
                 f"δ{_sup(index)}", f"W{_sup(index)}")


def _covering(pos, pad, stride, size, out):
    """Pairs (output index, kernel offset) of the windows that cover input position pos."""
    pairs = []
    for i in range(out):
        m = pos + pad - i * stride
        if 0 <= m < size:
            pairs.append((i, m))
    return pairs


def _conv_terms(conv, delta_next, W, unit) -> Terms:
    c, r, col = unit
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    _, oh, ow = conv.output_shape
    rows = _covering(r, ph, sh, kh, oh)
    cols = _covering(col, pw, sw, kw, ow)
    idx = [(f, i, j, m, n) for f in range(conv.filters) for i, m in rows for j, n in cols]
    idx = np.array(idx, dtype=np.int64).reshape(-1, 5)
    left = delta_next[idx[:, 0], idx[:, 1], idx[:, 2]] if len(idx) else np.zeros(0)
    right = W[idx[:, 0], c, idx[:, 3], idx[:, 4]] if len(idx) else np.zeros(0)
    s = _sup(conv.index)
    return Terms(("f", "i", "j", "m", "n"), idx, np.asarray(left, float),
                 np.asarray(right, float), f"δ{s}", f"W{s}")


def _pool_terms(pool, delta_next, unit, route=None) -> Terms:
    c, r, col = unit
    (kh, kw), (sh, sw), (ph, pw) = pool.size, pool.stride, pool.padding
    _, oh, ow = pool.output_shape
    _, h, w = pool.input_shape
    idx, right = [], []
    for i, m in _covering(r, ph, sh, kh, oh):
        for j, n in _covering(col, pw, sw, kw, ow):
            idx.append((i, j, m, n))
            if route is not None:
                right.append(1.0 if route[c, i, j] == m * kw + n else 0.0)
            else:                     # positions of the window inside the padded input
                cnt_r = min(kh, h + 2 * ph - i * sh)
                cnt_c = min(kw, w + 2 * pw - j * sw)
                right.append(1.0 / (cnt_r * cnt_c))
    idx = np.array(idx, dtype=np.int64).reshape(-1, 4)
    left = np.asarray(delta_next[c, idx[:, 0], idx[:, 1]], float) if len(idx) else np.zeros(0)
    s = _sup(pool.index)
    return Terms(("i", "j", "m", "n"), idx, left, np.array(right, float), f"δ{s}",
                 "routed" if route is not None else "1/count")


def _through_flatten(net, index, unit, sample, params):
    """Follow Flatten layers to the Dense layer that reads the unit (or to the loss)."""
    flat = int(np.ravel_multi_index(unit, net.layers[index].output_shape))
    j = index + 1
    while j + 1 < len(net.layers) and net.layers[j + 1].kind == "Flatten":
        j += 1
    if j + 1 == len(net.layers):                      # Flatten is the output layer
        _, grad = losses.plain(net.loss, net.layers[-1].a, net.targets, net.reduction)
        g = float(grad[sample][flat])
        terms = Terms(("idx",), np.array([[flat]]), np.array([g]), np.array([1.0]),
                      "∂loss/∂a", "1")
        return terms, f"the loss ({net.loss}) at flattened index {flat}", None
    dense = net.layers[j + 1]
    if dense.delta is None:
        raise ExplainError(f"layer {j + 1} {dense.kind} has no δ yet")
    W = _weights(net, j + 1, params)
    terms = _dense_terms(dense.delta[sample], W, flat, j + 1)
    return terms, (f"layer {j + 1} Dense through Flatten (flattened index {flat}): "
                   f"Σ_k W[k, {flat}] δ[k]"), j + 1


# ----------------------------------------------------------------------------- ∂loss/∂W

def explain_weight_grad(net, layer_index: int, index, param: str = "W") -> WeightGradExplanation:
    """One gradient entry as Σ δ · input: Conv2D W[f, c, m, n] over (sample, i, j); Dense
    W[k, j] over samples; a bias over every δ of its unit/filter."""
    if not 0 <= layer_index < len(net.layers):
        raise ExplainError(f"layer {layer_index} does not exist (0 … {len(net.layers) - 1})")
    layer = net.layers[layer_index]
    if param not in layer.params:
        raise ExplainError(f"layer {layer_index} {layer.kind} has no parameter {param!r}")
    if layer.delta is None or layer.x is None:
        raise ExplainError(f"layer {layer_index} {layer.kind} has no gradient yet: run the "
                           f"backward pass")
    index = tuple(int(i) for i in np.atleast_1d(index))
    shape = layer.params[param].shape
    if len(index) != len(shape) or not all(0 <= i < n for i, n in zip(index, shape)):
        raise ExplainError(f"layer {layer_index}: {param}{list(index)} is outside its shape "
                           f"{'×'.join(map(str, shape))}")
    d, n_batch = layer.delta, len(layer.delta)
    if layer.kind == "Dense":
        s = np.arange(n_batch)
        if param == "W":
            k, j = index
            terms = Terms(("sample",), s[:, None], d[:, k].astype(float),
                          layer.x[:, j].astype(float), "δ", "x")
        else:
            terms = Terms(("sample",), s[:, None], d[:, index[0]].astype(float),
                          np.ones(n_batch), "δ", "1")
    else:
        f = index[0]
        _, oh, ow = layer.output_shape
        grid = np.stack(np.meshgrid(np.arange(n_batch), np.arange(oh), np.arange(ow),
                                    indexing="ij"), -1).reshape(-1, 3)
        left = d[:, f].reshape(-1).astype(float)
        if param == "W":
            _, c, m, n = index
            xp = pad_input(layer.x, layer.padding)
            (sh, sw) = layer.stride
            right = xp[grid[:, 0], c, grid[:, 1] * sh + m, grid[:, 2] * sw + n]
            terms = Terms(("sample", "i", "j"), grid, left, right.astype(float), "δ", "x")
        else:
            terms = Terms(("sample", "i", "j"), grid, left, np.ones(len(grid)), "δ", "1")
    return WeightGradExplanation(layer_index, layer.kind, param, index,
                                 float(layer.grads[param][index]), terms, n_batch)


# ----------------------------------------------------------------------------- session

def weights_used(session) -> list | None:
    """The weights the last backward pass used, when they have changed since (update phase)."""
    rec = session.last_update
    if session.phase != "update" or rec is None or len(rec.layers) != len(session.net.layers):
        return None
    return [{k: u.before for k, u in row.items()} for row in rec.layers]


def check_current(session, layer_index: int) -> None:
    """Raise ExplainError unless δ of the layer and the arrays it came from are one pass."""
    phase, cursor = session.phase, session.layer
    if phase == "update":
        return
    if phase == "backward" and cursor is not None and layer_index >= cursor:
        return
    if phase == "backward":
        raise ExplainError(f"The backward pass is at layer {cursor}; δ of layer {layer_index} "
                           f"is explained when the pass gets there (F11 steps one layer)")
    if session.net.layers[layer_index].delta is None:
        raise ExplainError("No δ yet — run the backward pass (F11 steps it layer by layer)")
    raise ExplainError("δ on screen belongs to the previous step while this step's forward "
                       "pass runs; run the backward pass (F11 or Shift+F11) to explain it")


def explain_in_session(session, layer_index: int, unit, sample: int = 0) -> DeltaExplanation:
    check_current(session, layer_index)
    return explain_delta(session.net, layer_index, unit, sample, weights_used(session))


def explain_weight_in_session(session, layer_index: int, index,
                              param: str = "W") -> WeightGradExplanation:
    check_current(session, layer_index)
    return explain_weight_grad(session.net, layer_index, index, param)


def largest_unit(delta_sample) -> tuple:
    """The unit with the largest |δ| (first on ties), as an index tuple."""
    d = np.nan_to_num(np.abs(np.asarray(delta_sample, float)), nan=-1.0, posinf=np.inf)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(d)), d.shape))


SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
UNSUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


def _sup(index: int) -> str:
    """Layer index as a superscript (δ² = δ of layer 2, the app's 0-based numbering)."""
    return str(index).translate(SUP)
