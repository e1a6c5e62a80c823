"""Speed shortcuts of the core against the general way of computing the same numbers.

Every shortcut here exists only for speed (see the layer docstrings); each test runs it and
an independent plain computation on data that would expose a slip: exact ties in max-pool
windows, padding, strides, odd sizes, batch 1 and larger batches, and buffers that start as
NaN instead of the zeros a fresh allocation usually happens to hold.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from bpviz.core import SGD, Conv2D, Dense, Flatten, MaxPool2D, Network, activations, losses


def built(layer, input_shape, seed=0):
    layer.build(input_shape, np.random.default_rng(seed), np.float64, 0)
    return layer


def max_pool_by_loops(x, size, stride, d):
    """Max-pool forward and backward one window at a time (first maximum in row-major
    order takes the window's δ); no padding, floor mode."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = size, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out, dx = np.zeros((n, c, oh, ow)), np.zeros_like(x)
    for b, ch, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        win = x[b, ch, i * sh:i * sh + kh, j * sw:j * sw + kw]
        out[b, ch, i, j] = win.max()
        m, k = divmod(int(np.argmax(win)), kw)        # argmax: first maximum, row-major
        dx[b, ch, i * sh + m, j * sw + k] += d[b, ch, i, j]
    return out, dx


@pytest.mark.parametrize("size,stride,hw", [
    (1, 1, (3, 5)),             # one-position windows
    (2, 2, (6, 8)),             # tiled (the two-pass shortcut)
    (3, 3, (6, 9)),             # tiled, three positions per pass
    ((2, 3), (2, 3), (4, 9)),   # tiled, rectangular
    (2, 2, (7, 9)),             # floor mode drops a row and a column: general path
    (3, 2, (7, 7)),             # overlapping windows
    (2, 1, (5, 6)),             # overlapping, stride 1
])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("memory", [(0, 1, 2, 3), (1, 0, 2, 3), (1, 2, 3, 0), (2, 3, 1, 0)])
def test_maxpool_routes_ties_like_a_window_by_window_loop(size, stride, hw, batch, memory):
    """Max-pool (tiled shortcut and general path) on data full of exact ties, in each memory
    order a layer can receive (NCHW, CNHW, conv.py's CHWN, and one it must copy), matches a
    window-by-window loop: same output, each δ to its window's first maximum, whatever the
    memory order of δ."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, size=(batch, 2) + hw).astype(np.float64)
    layer = built(MaxPool2D(size, stride=stride), (2,) + hw)
    inverse = np.argsort(memory)
    out = layer.forward(np.ascontiguousarray(x.transpose(memory)).transpose(inverse))
    d = rng.standard_normal(out.shape)
    d_in = np.ascontiguousarray(d.transpose(memory[::-1])).transpose(np.argsort(memory[::-1]))
    expected_out, expected_dx = max_pool_by_loops(x, layer.size, layer.stride, d)
    assert np.array_equal(out, expected_out)
    np.testing.assert_allclose(layer.backward(d_in), expected_dx, rtol=1e-15, atol=0)


@pytest.mark.parametrize("activation", ["relu", "identity", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("kernel,stride,padding,hw,batch", [
    (3, 1, 1, (5, 7), 1),
    (5, 1, 2, (9, 8), 3),
    (3, 2, 1, (7, 6), 2),
    ((2, 3), (1, 2), (0, 1), (6, 7), 2),
])
def test_conv_backward_writes_delta_as_the_general_path(activation, kernel, stride, padding,
                                                        hw, batch, monkeypatch):
    """Conv2D.backward computes δ straight into the layout ∂W and ∂x read; δ, ∂W, ∂b and ∂x
    equal those from δ computed on its own (NCHW) and handed to backward_delta, also when
    every new buffer starts as NaN (every entry must be written)."""
    rng = np.random.default_rng(12)
    layer = built(Conv2D(3, kernel, stride=stride, padding=padding, activation=activation),
                  (2,) + hw)
    x = rng.standard_normal((batch, 2) + hw)
    da = rng.standard_normal((batch,) + layer.output_shape)
    layer.forward(x)
    delta = activations.backward(activation, da, layer.z, layer.a).copy()
    dx_general = layer.backward_delta(delta, True)
    general = (delta, {k: g.copy() for k, g in layer.grads.items()}, dx_general)

    real_empty = np.empty
    monkeypatch.setattr(np, "empty", lambda *a, **k: np.full_like(real_empty(*a, **k), np.nan))
    layer.forward(x)
    dx = layer.backward(da, True)
    monkeypatch.undo()
    assert np.array_equal(layer.delta, general[0])
    for k, g in general[1].items():
        np.testing.assert_allclose(layer.grads[k], g, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(dx, general[2], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("kernel,stride,padding,hw", [
    (3, 1, 1, (9, 11)),
    ((5, 3), 1, (2, 0), (8, 9)),
    (3, 2, 1, (15, 14)),
    (3, 1, 1, (13, 12)),        # 9,984 columns at batch 64: products in column blocks
])
def test_conv_large_batch_equals_one_image_at_a_time(kernel, stride, padding, hw):
    """A batch of 64 (runs across the batch, ∂x by one add per kernel offset) gives per image
    the z, δ and ∂x of that image alone (∂x by bincount), and ∂W, ∂b equal the sum of the
    per-image ones."""
    from bpviz.core.layers import conv as conv_module
    rng = np.random.default_rng(16)
    n = 64
    layer = built(Conv2D(3, kernel, stride=stride, padding=padding, activation="tanh"), (3,) + hw)
    x = rng.standard_normal((n, 3) + hw)
    da = rng.standard_normal((n,) + layer.output_shape)
    layer.forward(x)
    dx = layer.backward(da)
    whole = (layer.z.copy(), layer.delta.copy(), dx, layer.grads["W"], layer.grads["b"])
    assert layer._cols.size > conv_module.BINCOUNT_MAX      # ∂x by adds, not bincount
    if hw == (13, 12):
        assert layer._cols.shape[1] > 2 * conv_module.COLUMN_BLOCK
    singles = []
    for i in range(n):
        layer.forward(x[i:i + 1])
        dx_i = layer.backward(da[i:i + 1])
        singles.append((layer.z.copy(), layer.delta, dx_i, layer.grads["W"], layer.grads["b"]))
    for k in range(3):
        np.testing.assert_allclose(whole[k], np.concatenate([s[k] for s in singles]),
                                   rtol=1e-12, atol=1e-13)
    for k in (3, 4):
        np.testing.assert_allclose(whole[k], sum(s[k] for s in singles), rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("n", [10, 2 * 4096 + 1, 3 * 4096, 5 * 4096 + 77])
def test_column_block_products_equal_one_product(n):
    """The conv products in column blocks equal one product up to rounding (a @ cols, the
    same sums; cols · dᵀ, summed over the columns in blocks), in both dtypes."""
    from bpviz.core.layers.conv import column_product, column_sum_product
    rng = np.random.default_rng(17)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-4)):
        a = rng.standard_normal((6, 25)).astype(dtype)
        cols = rng.standard_normal((25, n)).astype(dtype)
        d = rng.standard_normal((6, n)).astype(dtype)
        z = column_product(a, cols)
        assert z.dtype == dtype
        np.testing.assert_allclose(z, a @ cols, rtol=rtol / 100, atol=rtol / 100)
        total = column_sum_product(cols, d)
        assert total.dtype == dtype and total.shape == (25, 6)
        exact = cols.astype(np.float64) @ d.astype(np.float64).T
        np.testing.assert_allclose(total, exact, rtol=rtol, atol=rtol * np.sqrt(n))


@pytest.mark.parametrize("shape", [(1, 7), (1, 1)])
def test_dense_batch_one_weight_gradient_is_the_outer_product(shape):
    """At batch 1 ∂W = δ xᵀ goes through np.dot; each entry is the single product δᵢ·xⱼ."""
    rng = np.random.default_rng(13)
    layer = built(Dense(5, "tanh"), (shape[1],))
    x = rng.standard_normal(shape)
    x[0, 0] = 0.0
    layer.forward(x)
    layer.backward(rng.standard_normal((1, 5)))
    expected = layer.delta[0][:, None] * x[0][None, :]
    assert np.array_equal(layer.grads["W"], expected)


def lenet(dtype):
    return Network((1, 12, 12), [Conv2D(4, 5, padding=2, activation="relu"), MaxPool2D(2),
                                 Conv2D(6, 3, activation="relu"), MaxPool2D(2), Flatten(),
                                 Dense(8, "relu"), Dense(3, "softmax")],
                   loss="cross_entropy", seed=3, dtype=dtype)


@pytest.mark.parametrize("batch", [1, 4])
def test_training_steps_do_not_depend_on_what_new_buffers_hold(batch, monkeypatch):
    """Three SGD steps give the same numbers whether fresh buffers start as NaN or not: no
    shortcut reads memory it has not written."""
    rng = np.random.default_rng(14)
    x = np.maximum(rng.standard_normal((batch, 1, 12, 12)), 0)     # ties after ReLU too
    t = rng.integers(0, 3, size=batch)

    def run():
        net, opt = lenet(np.float64), SGD(lr=0.1)
        for _ in range(3):
            net.forward(x)
            net.backward(t)
            opt.step(net)
        return net.get_params(), [l.delta.copy() for l in net.layers]

    plain = run()
    real_empty = np.empty
    monkeypatch.setattr(np, "empty", lambda *a, **k: np.full_like(real_empty(*a, **k), np.nan))
    poisoned = run()
    monkeypatch.undo()
    for p, q in zip(plain[0], poisoned[0]):
        assert all(np.array_equal(p[k], q[k]) for k in p)
    assert all(np.array_equal(d, e) for d, e in zip(plain[1], poisoned[1]))


@pytest.mark.parametrize("first", ["conv", "dense"])
def test_backward_guard_reports_a_nan_that_reaches_the_first_layer(first):
    """The whole-pass backward check reads the first layer's ∂b = Σ δ instead of δ: a NaN
    born in the last layer's ∂x must still be reported, exactly as the per-layer check
    (stepping with iter_backward) reports it."""
    if first == "conv":
        net = lenet(np.float64)
        x = np.random.default_rng(15).standard_normal((2, 1, 12, 12))
    else:
        net = Network((5,), [Dense(4, "tanh"), Dense(3, "softmax")],
                      loss="cross_entropy", seed=3)
        x = np.random.default_rng(15).standard_normal((2, 5))
    t = np.array([0, 1])
    net.forward(x)
    net.layers[-1].params["W"][0, 0] = np.nan          # finite output, NaN ∂x below it
    net.backward(t)
    whole_pass = list(net.nonfinite)
    for _ in net.iter_backward(t, check_each=True):
        pass
    assert whole_pass and whole_pass[0].phase == "backward"
    assert whole_pass == net.nonfinite
    assert np.isnan(net.layers[0].delta).any()


@pytest.mark.parametrize("k", [3, losses.IDENTITY_MAX_CLASSES, losses.IDENTITY_MAX_CLASSES + 1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_integer_labels_become_one_hot_rows_of_their_own(k, dtype):
    """Labels → one-hot targets taken from a kept identity (few classes) or filled (many):
    the rows a hand-made one-hot has, in a new writable array each call."""
    labels = np.array([0, k - 1, 1, 0])
    expected = np.zeros((4, k), dtype=dtype)
    expected[np.arange(4), labels] = 1
    t = losses.targets("cross_entropy", labels, (4, k), dtype)
    assert t.dtype == dtype and np.array_equal(t, expected)
    t[0, 0] = 7.0                                     # writable, and shared with no one
    again = losses.targets("cross_entropy", labels, (4, k), dtype)
    assert np.array_equal(again, expected)
