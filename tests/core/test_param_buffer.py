"""The flat parameter and gradient buffers (core/flat.py) and the SGD step over them.

The buffers exist only for speed. These tests hold them to what they promise: the flat step
makes exactly the numbers of the per-parameter step, and a buffer is reused only when no
layer, record or caller can still see it.
"""
from __future__ import annotations

import warnings
import weakref

import numpy as np
import pytest

from bpviz.core import SGD, Conv2D, Dense, Flatten, MaxPool2D, Network
from bpviz.core import flat as flat_module
from bpviz.core.guard import is_finite


def small_cnn(dtype=np.float64):
    return Network((1, 8, 8), [Conv2D(3, 3, padding=1, activation="relu"), MaxPool2D(2),
                               Flatten(), Dense(5, "tanh"), Dense(3, "softmax")],
                   loss="cross_entropy", seed=4, dtype=dtype)


def batch(n=2, seed=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 8, 8)), rng.integers(0, 3, size=n)


def train_step(net, opt, x, t):
    net.forward(x)
    net.backward(t)
    return opt.step(net)


def copies(record):
    return [{k: (u.before.copy(), u.grad.copy(), u.update.copy(), u.after.copy())
             for k, u in row.items()} for row in record.layers]


def test_parameters_and_gradients_are_views_of_two_buffers():
    net = small_cnn()
    x, t = batch()
    net.forward(x)
    net.backward(t)
    params, grads = net.buffer.current()
    assert params.size == grads.size == net.param_count()
    for layer in net.layers:
        for k in layer.params:
            assert layer.params[k].base is params and layer.grads[k].base is grads


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_flat_step_makes_the_numbers_of_the_per_parameter_step(dtype, monkeypatch):
    """Three plain steps over the buffers and three one parameter at a time (the path that
    clipping, L2 and momentum take) give bitwise the same records and weights."""
    x, t = batch(3)
    flat_net, flat_opt = small_cnn(dtype), SGD(lr=0.2)
    flat_records = [train_step(flat_net, flat_opt, x, t) for _ in range(3)]
    monkeypatch.setattr(flat_module.ParamBuffer, "current", lambda self: None)
    slow_net, slow_opt = small_cnn(dtype), SGD(lr=0.2)
    slow_records = [train_step(slow_net, slow_opt, x, t) for _ in range(3)]
    for fr, sr in zip(flat_records, slow_records):
        assert fr.grad_norm == pytest.approx(sr.grad_norm, rel=1e-6 if dtype == np.float32
                                             else 1e-13)
        for frow, srow in zip(copies(fr), copies(sr)):
            assert frow.keys() == srow.keys()
            for k in frow:
                assert all(np.array_equal(a, b) for a, b in zip(frow[k], srow[k]))
    for p, q in zip(flat_net.get_params(), slow_net.get_params()):
        assert all(np.array_equal(p[k], q[k]) for k in p)


def test_held_records_and_arrays_keep_their_values_while_training_goes_on():
    """Arrays a caller still holds are never written again: a record kept from an early
    step (its entries made only after later steps), a gradient view and a weight view."""
    net, opt = small_cnn(), SGD(lr=0.5)
    x, t = batch()
    kept = train_step(net, opt, x, t)               # record: entries not made yet
    before = net.get_params()                       # copies of the weights after it
    grad_view = net.layers[3].grads["W"]
    grad_copy = grad_view.copy()
    weight_view = net.layers[0].params["W"]
    weight_copy = weight_view.copy()
    seen = train_step(net, opt, x, t)
    seen_copies = copies(seen)
    for _ in range(6):
        train_step(net, opt, x, t)
    assert np.array_equal(grad_view, grad_copy) and np.array_equal(weight_view, weight_copy)
    for row, want in zip(kept.layers, before):               # after = the weights then
        for k, u in row.items():
            assert np.array_equal(u.after, want[k])
            assert np.array_equal(u.after, u.before + u.update)
    for row, want in zip(copies(seen), seen_copies):
        for k in row:
            assert all(np.array_equal(a, b) for a, b in zip(row[k], want[k]))


@pytest.mark.parametrize("which", ["params", "grads"])
def test_a_held_flat_buffer_is_never_reused(which):
    """Holding a whole flat array (no view of it, no record) keeps it too."""
    net, opt = small_cnn(), SGD(lr=0.5)
    x, t = batch()
    for _ in range(3):
        train_step(net, opt, x, t)                  # records dropped: buffers recycle
    held = getattr(net.buffer, which)
    want = held.copy()
    for _ in range(6):
        train_step(net, opt, x, t)
    assert np.array_equal(held, want)


@pytest.mark.parametrize("hold_last", [False, True])
def test_buffers_are_reused_when_nothing_holds_them(hold_last):
    """A training run keeps to a few buffers (they stay alive in the pool, and the weights
    always live in one of them), also when the last step's record is held, as the app's
    session does."""
    net, opt = small_cnn(), SGD(lr=0.1)
    x, t = batch()

    def step():                                  # the record kept until the next step, or not
        record = train_step(net, opt, x, t)
        return record if hold_last else None

    for _ in range(3):
        last = step()
    refs = []
    for _ in range(8):
        last = step()
        refs.append(weakref.ref(net.buffer.params))
        refs.append(weakref.ref(net.buffer.grads))
    assert (last is not None) == hold_last
    alive = {id(r()) for r in refs if r() is not None}
    assert all(r() is not None for r in refs)
    assert len(alive) <= flat_module.POOL_SIZE


def test_set_params_and_edits_move_the_weights_into_a_new_buffer():
    net = small_cnn()
    x, t = batch()
    record = train_step(net, SGD(lr=0.1), x, t)
    old_after = [{k: u.after.copy() for k, u in row.items()} for row in record.layers]
    new = [{k: np.full_like(v, 0.01) for k, v in p.items()} for p in net.get_params()]
    net.set_params(new)
    for row, want in zip(record.layers, old_after):          # the record is untouched
        assert all(np.array_equal(row[k].after, want[k]) for k in row)
    net.forward(x)
    net.backward(t)
    assert net.buffer.current() is not None
    assert all(np.all(l.params[k] == 0.01) for l in net.layers for k in l.params)
    net.insert_layer(4, Dense(4, "relu"))
    net.forward(x)
    net.backward(t)
    assert net.buffer.current()[0].size == net.param_count()


def test_a_replaced_gradient_sends_the_step_down_the_per_parameter_path():
    """A layer whose ∂W is not the buffer's view (a subclass, a test's broken layer) is
    still updated with the gradient it holds."""
    net, opt = small_cnn(), SGD(lr=0.1)
    x, t = batch()
    net.forward(x)
    net.backward(t)
    own = np.ones_like(net.layers[3].grads["W"])
    net.layers[3].grads["W"] = own
    assert net.buffer.current() is None
    W = net.layers[3].params["W"].copy()
    record = opt.step(net)
    assert np.array_equal(record.layers[3]["W"].grad, own)
    assert np.array_equal(net.layers[3].params["W"], W + (-0.1 * own))


@pytest.mark.parametrize("values,finite", [
    ([1.0, -2.0], True), (["huge", "-huge"], True), (["huge", np.nan], False),
    ([np.inf], False), ([-np.inf, 1.0], False), ([], True),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_is_finite_without_false_alarms_or_warnings(values, finite, dtype):
    """A sum of squares overflows for huge finite values (half the dtype's largest); the
    check must still say finite, and never warn."""
    huge = float(np.finfo(dtype).max) / 2
    arr = np.array([{"huge": huge, "-huge": -huge}.get(v, v) for v in values], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert is_finite(arr) is finite
        assert is_finite(arr.reshape(-1, 1)[::-1]) is finite
