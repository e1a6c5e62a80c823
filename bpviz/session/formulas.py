"""The formula in force at the cursor (MATH.md), with the selected unit's numbers. No Qt.

``formula_for(source, layer, unit)`` → ``Formula(title, symbolic, numeric, note, …)`` where
``source`` is a ``Session`` (everything, including the backward sums taken apart by
``bpviz.session.explain``) or a ``Snapshot`` (forward, output error and update numbers; a
hidden layer's backward shows δ, f′(z) and ∂C/∂a = δ / f′(z); pass ``loss=`` since a snapshot
does not carry it).

Which formula: the phase of the source — forward → z = W a + b / the convolution sum /
pooling / flattening, then a = f(z); backward → the output error δᴸ for the loss/activation
pair, or δˡ from the next layer ⊙ f′(zˡ), plus ∂C/∂W = δ aᵀ and ∂C/∂b = δ; update →
W ← W − η(∂C/∂W + λW). Every number printed is also in ``values`` (exact floats, the core's),
so tests compare them with the network. ``note`` warns (a pairing that learns slowly,
clipping); ``tip`` informs (what the activation does to δ, the pass has not got there yet).
Units: (c, r, k) of a map, (j,) of a vector; ``None`` picks the largest |δ| (|z| before δ).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from bpviz.core import losses

from . import explain as ex

ACT = {"identity": "zˡ", "relu": "ReLU(zˡ)", "sigmoid": "σ(zˡ)", "tanh": "tanh(zˡ)",
       "softmax": "softmax(zˡ)"}
DERIV = {"identity": "1", "relu": "1 if z > 0 else 0", "sigmoid": "σ(z)(1 − σ(z))",
         "tanh": "1 − tanh²(z)", "softmax": "a(1 − a)"}
LOSS_GRAD = {"mse": "a − y", "bce": "(1 − y)/(1 − a) − y/a", "cross_entropy": "−y/a"}
LOSS_NAME = {"mse": "MSE", "bce": "BCE", "cross_entropy": "cross-entropy"}
TIPS = {"sigmoid": "Each sigmoid layer multiplies δ by σ′(z) ≤ 0.25: in deep stacks the early "
                   "layers' δ vanish.",
        "relu": "ReLU passes δ unchanged where z > 0 and blocks it where z ≤ 0.",
        "tanh": "tanh′(z) = 1 − a² ≤ 1: δ shrinks where the unit saturates."}
HIDDEN = {
    "Dense": "δˡ = (Wˡ⁺¹)ᵀ δˡ⁺¹ ⊙ f′(zˡ)",
    "Conv2D": "δˡ = (δˡ⁺¹ spread back through the kernels Wˡ⁺¹: a full convolution with the "
              "kernels rotated 180°, zeros between δ for stride > 1) ⊙ f′(zˡ)",
    "MaxPool2D": "δˡ = (δˡ⁺¹ routed to each window's maximum, 0 elsewhere) ⊙ f′(zˡ)",
    "AvgPool2D": "δˡ = (δˡ⁺¹ ÷ window count, spread over each window) ⊙ f′(zˡ)",
    "Flatten": "δˡ = reshape((Wᵏ)ᵀ δᵏ) ⊙ f′(zˡ)   (through the Flatten to Dense layer k)",
}
UPDATE = "W ← W − η (∂C/∂W + λW),   b ← b − η ∂C/∂b"
SHOWN = 4                     # terms written out before "… N more"


@dataclass(frozen=True)
class Formula:
    title: str
    symbolic: str
    numeric: str
    note: str = ""             # a warning: slow pairing, clipping
    values: dict = field(default_factory=dict)
    extra: tuple = ()          # further (symbolic, numeric) pairs, e.g. ∂C/∂W and ∂C/∂b
    unit: tuple = ()           # the unit whose numbers are shown
    tip: str = ""              # information


def num(v) -> str:
    """4 significant digits, Unicode minus."""
    if v is None:
        return "—"
    v = float(v)
    if not math.isfinite(v):
        return "NaN" if v != v else ("∞" if v > 0 else "−∞")
    return f"{v:.4g}".replace("-", "−")


def par(v) -> str:
    """A factor in a product: negative numbers in parentheses."""
    s = num(v)
    return f"({s})" if s.startswith("−") else s


def idx(unit) -> str:
    return "[" + ",".join(str(int(u)) for u in unit) + "]"


def sup(i: int) -> str:
    return ex._sup(i)


def _subst(text: str, i: int) -> str:
    """Write the layer numbers in: ˡ → 2, ˡ⁻¹ → 1 (x for the input), ˡ⁺¹ → 3."""
    text = text.replace("aˡ⁻¹", f"a{sup(i - 1)}" if i > 0 else "x")
    return text.replace("ˡ⁺¹", sup(i + 1)).replace("ˡ", sup(i))


def sum_text(pairs, total=None, shown=SHOWN) -> str:
    """'0.5·0.1 + (−0.3)·0.9 + … 14 more' from (left, right) pairs, largest first."""
    parts = [f"{par(a)}·{par(b)}" for a, b in pairs[:shown]]
    n = (len(pairs) if total is None else total) - len(parts)
    return " + ".join(parts + ([f"… {n} more"] if n > 0 else [])) or "0"


# ----------------------------------------------------------------------------- source views

def _view(source):
    """Session or Snapshot → one namespace: phase, cursor, layers (sample 0 arrays), loss…"""
    if hasattr(source, "net"):                                    # a Session
        s, net = source, source.net
        rec = s.last_update.layers if s.last_update is not None else []
        rec = rec if len(rec) == len(net.layers) else [{}] * len(net.layers)
        first = (lambda arr: None if arr is None else arr[0])
        layers = [SimpleNamespace(
            index=i, kind=l.kind, title=l.describe(), activation=l.activation,
            output_shape=l.output_shape, z=first(l.z), a=first(l.a), delta=first(l.delta),
            x=first(l.x), params=l.params, grads=l.grads if l.delta is not None else {},
            updates=rec[i], geometry={k: getattr(l, k) for k in
                                      ("kernel_size", "stride", "padding", "size")
                                      if hasattr(l, k)})
            for i, l in enumerate(net.layers)]
        t = getattr(net, "targets", None)
        t = t[0] if t is not None and len(t) == len(s.batch) else np.asarray(s.targets())[0]
        return SimpleNamespace(phase=s.phase, cursor=s.layer, done=s.done, layers=layers,
                               session=s, loss=net.loss, reduction=net.reduction,
                               batch=len(s.batch), target=t, lr=s.optimizer.lr,
                               momentum=s.optimizer.momentum)
    snap = source
    layers = [SimpleNamespace(
        index=i, kind=l.kind, title=l.title, activation=l.activation,
        output_shape=l.output_shape, z=l.z, a=l.a, delta=l.delta,
        x=snap.layers[i - 1].a if i > 0 else snap.x, params=l.params, grads=l.grads,
        updates=l.updates, geometry=_parse_geometry(l.title))
        for i, l in enumerate(snap.layers)]
    return SimpleNamespace(phase=snap.phase, cursor=snap.layer, done=snap.done, layers=layers,
                           session=None, loss=None, reduction="mean",
                           batch=len(snap.batch_indices), target=snap.target, lr=snap.lr,
                           momentum=0.0)


def _parse_geometry(title: str) -> dict:
    """kernel/size, stride, padding from a title such as 'Conv2D(1→4, k=3, s=1, p=1, relu)'."""
    def pair(m):
        return (int(m.group(2)), int(m.group(3))) if m.group(2) else (int(m.group(1)),) * 2
    out = {}
    for key, name in (("k", "kernel_size"), ("s", "stride"), ("p", "padding")):
        m = re.search(rf"\b{key}=(\((\d+), (\d+)\)|\d+)", title)
        out[name] = pair(m) if m else (0, 0)
    m = re.match(r"\w+Pool2D\((\((\d+), (\d+)\)|\d+)", title)
    if m:
        out["size"] = pair(m)
    return out


# ----------------------------------------------------------------------------- entry point

def formula_for(source, layer: int, unit=None, *, loss: str | None = None) -> Formula:
    """The formula of ``layer`` at the source's phase, with ``unit``'s numbers filled in."""
    v = _view(source)
    v.loss = loss or v.loss
    if not 0 <= layer < len(v.layers):
        raise ValueError(f"layer {layer} does not exist (0 … {len(v.layers) - 1})")
    L = v.layers[layer]
    unit = _pick_unit(L, unit)
    phase = v.phase if v.phase in ("forward", "backward", "update") else "forward"
    head = f"{phase.capitalize()} · layer {layer} {L.title} · unit {idx(unit)}"
    symbolic = {"forward": _forward_symbolic, "backward": _backward_symbolic,
                "update": lambda v, L: UPDATE}[phase](v, L)
    if v.phase == "idle" or not _reached(v, layer, phase):
        tip = ("No pass yet: F11 steps the forward pass one layer at a time." if v.phase == "idle"
               else f"This {phase} pass has not reached layer {layer} yet (the cursor is at "
                    f"layer {v.cursor}); the numbers appear when it does.")
        return Formula(head, symbolic, "—", unit=unit, tip=tip)
    numeric, values, extra, note, tip = {"forward": _forward, "backward": _backward,
                                         "update": _update}[phase](v, L, unit)
    return Formula(head, symbolic, numeric, note, values, extra, unit, tip)


def _reached(v, layer, phase) -> bool:
    if phase == "forward":
        return v.done or (v.cursor is not None and layer <= v.cursor)
    if phase == "backward":
        return v.done or (v.cursor is not None and layer >= v.cursor)
    return True


def _pick_unit(L, unit) -> tuple:
    shape = tuple(L.output_shape)
    if unit is not None:
        unit = tuple(int(u) for u in np.atleast_1d(unit))
        if len(unit) != len(shape) or not all(0 <= u < n for u, n in zip(unit, shape)):
            raise ValueError(f"layer {L.index}: unit {unit} is outside {shape}")
        return unit
    src = L.delta if L.delta is not None else L.z
    return ex.largest_unit(src) if src is not None else (0,) * len(shape)


# ----------------------------------------------------------------------------- forward

def _forward_symbolic(v, L) -> str:
    i, g = L.index, L.geometry
    act = "" if L.activation == "identity" else f",   aˡ = {ACT[L.activation]}"
    if L.kind == "Dense":
        return _subst("zˡ = Wˡ aˡ⁻¹ + bˡ" + act, i)
    if L.kind == "Conv2D":
        s, p = g["stride"], g["padding"]
        return _subst(f"zˡ[f,i,j] = Σ_c Σ_m Σ_n aˡ⁻¹_pad[c, {s[0]}i+m, {s[1]}j+n] · "
                      f"Wˡ[f,c,m,n] + bˡ[f]   (zero padding {p[0]})" + act, i)
    if "Pool" in L.kind:
        op = "max" if L.kind == "MaxPool2D" else "mean"
        return _subst(f"aˡ[c,i,j] = {op} of aˡ⁻¹[c] over the {g['size'][0]}×{g['size'][1]} "
                      f"window at row {g['stride'][0]}i, column {g['stride'][1]}j", i)
    return _subst("aˡ[c·H·W + r·W + k] = aˡ⁻¹[c,r,k]   (every map rasterised into one column)", i)


def _forward(v, L, unit):
    if L.z is None or L.x is None:
        return "—", {}, (), "", ""
    z, a, x = float(L.z[unit]), float(L.a[unit]), np.asarray(L.x)
    values = {"z": z, "a": a}
    if L.kind in ("Dense", "Conv2D"):
        if L.kind == "Dense":
            W, inputs = L.params["W"][unit[0]], x
        else:
            f, r, c = unit
            (kh, kw), (sh, sw), (ph, pw) = (L.geometry[k] for k in
                                            ("kernel_size", "stride", "padding"))
            xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
            W, inputs = L.params["W"][f], xp[:, r * sh:r * sh + kh, c * sw:c * sw + kw]
        W, inputs = W.reshape(-1), inputs.reshape(-1)
        b = values["b"] = float(L.params["b"][unit[0]])
        order = np.argsort(-np.abs(W * inputs), kind="stable")
        products = sum_text([(W[k], inputs[k]) for k in order])
        numeric = f"z{sup(L.index)}{idx(unit)} = {products} + {par(b)} = {num(z)}"
        if L.activation != "identity":
            numeric += f";   a = {_act_num(L.activation, z)} = {num(a)}"
        return numeric, values, (), "", f"{W.size} products W·a, largest first."
    if "Pool" in L.kind:
        window = _window(x, L.geometry, unit)
        vals = ", ".join(num(w) for w in window[:9]) + (" …" if len(window) > 9 else "")
        op = "max" if L.kind == "MaxPool2D" else "mean"
        return f"a{sup(L.index)}{idx(unit)} = {op}({vals}) = {num(a)}", values, (), "", ""
    src = np.unravel_index(unit[0], x.shape)
    prev = f"a{sup(L.index - 1)}" if L.index else "x"
    return f"a{sup(L.index)}[{unit[0]}] = {prev}{idx(src)} = {num(a)}", values, (), "", ""


def _act_num(act, z) -> str:
    return {"relu": f"max(0, {num(z)})", "sigmoid": f"σ({num(z)})", "tanh": f"tanh({num(z)})",
            "softmax": f"e^({num(z)}) / Σ_k e^(z_k)"}.get(act, num(z))


def _window(x, geo, unit) -> list:
    c, i, j = unit
    (kh, kw), (sh, sw), (ph, pw) = geo["size"], geo["stride"], geo["padding"]
    rows = range(i * sh - ph, i * sh - ph + kh)
    cols = range(j * sw - pw, j * sw - pw + kw)
    return [float(x[c, r, k]) for r in rows for k in cols
            if 0 <= r < x.shape[1] and 0 <= k < x.shape[2]]


# ----------------------------------------------------------------------------- backward

def _fused(v, L) -> bool:
    return (v.loss, L.activation) in (("cross_entropy", "softmax"), ("bce", "sigmoid"))


def _backward_symbolic(v, L) -> str:
    if L.index < len(v.layers) - 1:
        if L.activation == "softmax":
            return _subst("δˡ = a ⊙ (g − Σ_k g_k a_k),   g = ∂C/∂aˡ from layer ˡ⁺¹", L.index)
        text = HIDDEN[v.layers[L.index + 1].kind]
        k = L.index + 1
        while k < len(v.layers) and v.layers[k].kind == "Flatten":
            k += 1
        if k < len(v.layers):
            text = text.replace("ᵏ", sup(k)).replace("layer k", f"layer {k}")
        return _subst(text, L.index)
    mean = v.reduction == "mean"
    if _fused(v, L):
        cancels = "σ′(z)" if L.activation == "sigmoid" else "the softmax Jacobian"
        n = f"; N = {v.batch}, the batch mean" if mean else ""
        return (f"δᴸ = (aᴸ − y){' / N' if mean else ''}   ({L.activation} + "
                f"{LOSS_NAME.get(v.loss, v.loss)}: {cancels} cancels{n})")
    grad = LOSS_GRAD.get(v.loss, "∂C/∂a")
    grad = f"({grad}) / N" if mean else grad
    n = f"   (N = {v.batch}, the batch mean)" if mean else ""
    if L.activation == "softmax":
        return f"δᴸ = a ⊙ (g − Σ_k g_k a_k),   g = ∂C/∂aᴸ = {grad}{n}"
    return f"δᴸ = ∂C/∂aᴸ ⊙ f′(zᴸ),   ∂C/∂a = {grad},   f′(z) = {DERIV[L.activation]}{n}"


def _backward(v, L, unit):
    last = L.index == len(v.layers) - 1
    numeric, values, note, tip = (_output if last else _hidden)(v, L, unit)
    return numeric, values, _grad_lines(v, L, unit), note, tip


def _output(v, L, unit):
    loss, act, mean = v.loss, L.activation, v.reduction == "mean"
    d, z, a = float(L.delta[unit]), float(L.z[unit]), float(L.a[unit])
    t = _target(v, L, unit)
    values = {"δ": d, "z": z, "a": a, "y": t}
    if _fused(v, L):
        over = f" / {v.batch}" if mean else ""
        return (f"δ{sup(L.index)}{idx(unit)} = ({num(a)} − {num(t)}){over} = {num(d)}",
                values, "", "")
    if v.session is not None:
        e = ex.explain_in_session(v.session, L.index, unit)
        g, fp = e.upstream, e.fprime
    else:
        g = _loss_grad(loss, a, t) * (1 / v.batch if mean else 1.0) if loss else None
        fp = _deriv(act, z, a)
    values["∂C/∂a"] = g
    if act == "softmax":
        numeric = f"g{idx(unit)} = {num(g)};   δ{sup(L.index)}{idx(unit)} = {num(d)}"
    else:
        values["f′(z)"] = fp
        numeric = f"δ{sup(L.index)}{idx(unit)} = {par(g)} · {par(fp)} = {num(d)}"
        if loss == "mse":
            numeric = (f"∂C/∂a = ({num(a)} − {num(t)})" + (f" / {v.batch}" if mean else "")
                       + f" = {num(g)};   f′(z) = {num(fp)};   " + numeric)
    note = {("sigmoid", "mse"): "Slow learning: δᴸ carries σ′(z) ≤ 0.25 (≈ 0 when the output "
                                "saturates); with sigmoid + BCE it would be a − y.",
            ("softmax", "mse"): "Softmax + MSE keeps the Jacobian factor and learns slowly; "
                                "with cross-entropy δᴸ would be a − y.",
            ("sigmoid", "cross_entropy"): "Cross-entropy pairs with softmax; with a sigmoid "
                                          "output BCE gives δᴸ = a − y."}.get((act, loss), "")
    return numeric, values, note, ""


def _target(v, L, unit) -> float | None:
    if v.target is None:
        return None
    t = np.asarray(v.target, dtype=float)
    if t.ndim == 0 and L.output_shape[0] > 1:          # a class label → one-hot
        return float(unit[0] == int(t))
    return float(t.reshape(-1)[np.ravel_multi_index(unit, L.output_shape)]) if t.ndim \
        else float(t)


def _loss_grad(loss, a, t):
    if loss == "mse":
        return a - t
    lo, hi = max(a, losses.EPS), max(1 - a, losses.EPS)
    return -t / lo if loss == "cross_entropy" else (1 - t) / hi - t / lo


def _deriv(act, z, a) -> float:
    return {"identity": 1.0, "relu": float(z > 0), "tanh": 1 - a * a}.get(act, a * (1 - a))


def _hidden(v, L, unit):
    tip = TIPS.get(L.activation, "")
    if v.session is None:
        d, z, a = float(L.delta[unit]), float(L.z[unit]), float(L.a[unit])
        fp = _deriv(L.activation, z, a)
        up = f";   ∂C/∂a = δ / f′(z) = {num(d / fp)}" if fp else ""
        return f"δ{sup(L.index)}{idx(unit)} = {num(d)},   f′(z) = {num(fp)}{up}", \
            {"δ": d, "f′(z)": fp}, "", tip
    e = ex.explain_in_session(v.session, L.index, unit)
    values = {"δ": e.delta, "z": e.z, "a": e.a, "∂C/∂a": e.upstream}
    terms = sum_text([(t.left, t.right) for t in e.terms.top(SHOWN)], len(e.terms))
    if e.mode == "softmax":
        jac = sum_text([(t.left, t.right) for t in e.jacobian.top(SHOWN)], len(e.jacobian))
        return (f"∂C/∂a{sup(L.index)}{idx(unit)} = {terms} = {num(e.upstream)};   "
                f"δ = Σ_k g_k·∂a_k/∂z = {jac} = {num(e.delta)}"), values, "", tip
    values["f′(z)"] = e.fprime
    return (f"δ{sup(L.index)}{idx(unit)} = ({terms}) · {par(e.fprime)} = {par(e.upstream)} · "
            f"{par(e.fprime)} = {num(e.delta)}"), values, "", tip


def _grad_lines(v, L, unit) -> tuple:
    if L.grads.get("W") is None:
        return ()
    k = unit[0]
    g = np.asarray(L.grads["W"][k])
    wi = (k,) + tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(g))), g.shape))
    if L.kind == "Dense":
        sym_w = _subst("∂C/∂Wˡ = δˡ (aˡ⁻¹)ᵀ   (summed over the batch)", L.index)
        sym_b = _subst("∂C/∂bˡ = δˡ   (summed over the batch)", L.index)
    else:
        sym_w = _subst("∂C/∂Wˡ[f,c,m,n] = Σ_i Σ_j δˡ[f,i,j] · aˡ⁻¹_pad[c, si+m, sj+n]   "
                       "(and over the batch)", L.index)
        sym_b = _subst("∂C/∂bˡ[f] = Σ_i Σ_j δˡ[f,i,j]   (and over the batch)", L.index)
    text_w = f"∂C/∂W{sup(L.index)}{idx(wi)} = {num(L.grads['W'][wi])}"
    if v.session is not None:
        w = ex.explain_weight_in_session(v.session, L.index, wi)
        pairs = [(t.left, t.right) for t in w.terms.top(SHOWN)]
        text_w = (f"∂C/∂W{sup(L.index)}{idx(wi)} = {sum_text(pairs, len(w.terms))} = "
                  f"{num(w.grad)}")
    return ((sym_w, text_w),
            (sym_b, f"∂C/∂b{sup(L.index)}[{k}] = {num(L.grads['b'][k])}"))


# ----------------------------------------------------------------------------- update

def _update(v, L, unit):
    if not L.params:
        return f"layer {L.index} {L.kind} has no parameters: nothing to update", {}, (), "", ""
    u = L.updates.get("W") if L.updates else None
    if u is None:
        return "—", {}, (), "", "No update applied yet (F10 completes a step)."
    k = unit[0]
    g = np.asarray(u.grad[k])
    wi = (k,) + tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(g))), g.shape))
    before, grad, after = float(u.before[wi]), float(u.grad[wi]), float(u.after[wi])
    decay = float(u.decay[wi]) if u.decay is not None else 0.0
    step = float(u.update[wi])
    rec = v.session.last_update if v.session is not None else None
    lr, momentum = (rec.lr, rec.momentum) if rec is not None else (v.lr, v.momentum)
    values = {"W before": before, "∂C/∂W": grad, "λW": decay, "ΔW": step, "W after": after,
              "η": lr}
    if momentum > 0:
        numeric = (f"W{sup(L.index)}{idx(wi)} ← {num(before)} + {par(step)} = {num(after)}   "
                   f"(ΔW = μv − η(∂C/∂W + λW), μ = {num(momentum)})")
    else:
        numeric = (f"W{sup(L.index)}{idx(wi)} ← {num(before)} − {num(lr)}·({num(grad)} + "
                   f"{num(decay)}) = {num(after)}")
    extra = ()
    ub = L.updates.get("b")
    if ub is not None:
        bb, ba = float(ub.before[k]), float(ub.after[k])
        extra = (("b ← b − η ∂C/∂b",
                  f"b{sup(L.index)}[{k}] ← {num(bb)} − {num(lr)}·{par(float(ub.grad[k]))} = "
                  f"{num(ba)}"),)
        values.update({"b before": bb, "b after": ba})
    note = ""
    if float(u.raw_grad[wi]) != grad:
        note = (f"Clipped: the raw gradient {num(float(u.raw_grad[wi]))} was limited to "
                f"{num(grad)} before the update.")
    return numeric, values, extra, note, "The weight of this unit with the largest |∂C/∂W|."
