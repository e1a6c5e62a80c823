"""Independent finite-difference helpers for the core tests (no use of bpviz.core.gradcheck).

Central differences in float64 with h = 1e-6; per-tensor relative error
‖a − n‖ / (‖a‖ + ‖n‖) plus an elementwise allclose(atol=1e-5, rtol=1e-3), as adopted in
docs/RELIABILITY.md.
"""
from __future__ import annotations

import numpy as np

H = 1e-6
REL_ONE_LAYER = 1e-6
REL_STACK = 1e-5


def rel_error(a, n) -> float:
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)


def numeric_grad(f, arr: np.ndarray, h: float = H) -> np.ndarray:
    """∂f/∂arr by central differences, perturbing ``arr`` in place (restored afterwards)."""
    grad = np.zeros(arr.shape, dtype=np.float64)
    flat = arr.reshape(-1)          # a view: arr must be contiguous
    assert np.shares_memory(flat, arr)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = f()
        flat[i] = old - h
        minus = f()
        flat[i] = old
        grad.reshape(-1)[i] = (plus - minus) / (2 * h)
    return grad


def assert_grad_close(analytic, numeric, rel_tol: float, what: str = "") -> None:
    rel = rel_error(analytic, numeric)
    assert rel <= rel_tol, f"{what}: relative error {rel:.3g} > {rel_tol:g}"
    np.testing.assert_allclose(analytic, numeric, atol=1e-5, rtol=1e-3, err_msg=what)


def check_layer(layer, x, rng, rel_tol: float = REL_ONE_LAYER) -> dict:
    """FD-check one built layer: loss = Σ forward(x) ⊙ R for a fixed random R.

    Checks ∂loss/∂x and every parameter gradient; returns the analytic gradients.
    """
    x = np.array(x, dtype=np.float64)
    out = layer.forward(x)
    R = rng.normal(size=out.shape)
    dx = layer.backward(R)
    analytic = {"x": dx.copy()}
    analytic.update({k: g.copy() for k, g in layer.grads.items()})

    def loss():
        return float(np.sum(layer.forward(x) * R))

    assert_grad_close(dx, numeric_grad(loss, x), rel_tol, f"{layer.describe()} dx")
    for k, p in layer.params.items():
        assert_grad_close(analytic[k], numeric_grad(loss, p), rel_tol,
                          f"{layer.describe()} d{k}")
    return analytic


def check_network(net, x, t, rel_tol: float = REL_STACK, check_input: bool = True) -> None:
    """FD-check every parameter of ``net`` (and ∂loss/∂x) against one backward pass."""
    x = np.array(x, dtype=np.float64)
    net.forward(x)
    net.backward(t)
    analytic = [{k: g.copy() for k, g in layer.grads.items()} for layer in net.layers]
    dx = None if not check_input else np.array(net.input_grad, copy=True)

    def loss():
        net.forward(x)
        return net.loss_of(t)

    for i, layer in enumerate(net.layers):
        for k, p in layer.params.items():
            assert_grad_close(analytic[i][k], numeric_grad(loss, p), rel_tol,
                              f"layer {i} {layer.kind} d{k}")
    if check_input:
        assert_grad_close(dx, numeric_grad(loss, x), rel_tol, "∂loss/∂x")


def distinct_values(rng, shape, spacing: float = 0.01) -> np.ndarray:
    """Values that are all different by at least ``spacing`` (no max-pool near-ties)."""
    size = int(np.prod(shape))
    return (rng.permutation(size) - size / 2).reshape(shape) * spacing
