"""Trainer modes and the SGD update: sums, clipping, L2, momentum and the update record."""
from __future__ import annotations

import numpy as np
import pytest

from bpviz.core import SGD, Dense, Network, SettingsError, TargetError, Trainer


def mlp(reduction="mean", seed=0):
    return Network((3,), [Dense(4, "tanh"), Dense(2, "sigmoid")], loss="mse",
                   reduction=reduction, seed=seed)


def data(n=12, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.uniform(size=(n, 2))


def raw_grads(net, x, t):
    """The gradients of one backward pass on a copy of ``net`` (the network is not touched)."""
    twin = net.clone()
    twin.forward(x)
    twin.backward(t)
    return [{k: g.copy() for k, g in l.grads.items()} for l in twin.layers]


# ----- modes and epochs --------------------------------------------------------------------------
@pytest.mark.parametrize("mode,batch,expected", [("sample", 5, 1), ("mini-batch", 4, 4),
                                                 ("mini-batch", 50, 12), ("full-batch", 4, 12)])
def test_mode_sets_batch_size(mode, batch, expected):
    """sample → 1, mini-batch → min(batch, n), full-batch → n samples per step."""
    x, y = data()
    tr = Trainer(mlp(), SGD(lr=0.1), x, y, mode=mode, batch_size=batch)
    assert tr.effective_batch == expected
    for _ in range(4):
        assert len(tr.step().indices) == expected


@pytest.mark.parametrize("mode,batch", [("sample", 1), ("mini-batch", 3), ("mini-batch", 4),
                                        ("mini-batch", 12)])
def test_every_sample_visited_once_per_epoch(mode, batch):
    """With a batch size dividing n, each epoch visits every sample exactly once."""
    x, y = data()
    tr = Trainer(mlp(), SGD(lr=0.1), x, y, mode=mode, batch_size=batch, seed=3)
    per_epoch = 12 // batch
    orders = []
    for _ in range(3):
        idx = np.concatenate([tr.next_indices() for _ in range(per_epoch)])
        assert sorted(idx.tolist()) == list(range(12))
        orders.append(idx.tolist())
    assert tr.epoch == 3
    if batch < 12:
        assert len({tuple(o) for o in orders}) > 1           # shuffled between epochs


def test_no_shuffle_walks_in_order():
    """shuffle=False walks the samples in order, batch after batch."""
    x, y = data()
    tr = Trainer(mlp(), SGD(lr=0.1), x, y, batch_size=5, shuffle=False)
    assert tr.next_indices().tolist() == [0, 1, 2, 3, 4]
    assert tr.next_indices().tolist() == [5, 6, 7, 8, 9]


def test_full_batch_uses_all_samples_in_order():
    """full-batch steps use indices 0 … n−1 every time."""
    x, y = data()
    tr = Trainer(mlp(), SGD(lr=0.1), x, y, mode="full-batch")
    for _ in range(3):
        assert tr.step().indices.tolist() == list(range(12))


def test_minibatch_never_repeats_a_sample_within_an_epoch():
    """Batch 5 over 12 samples: no sample appears twice in one epoch."""
    x, y = data()
    tr = Trainer(mlp(), SGD(lr=0.1), x, y, batch_size=5, seed=4)
    by_epoch = {}
    for _ in range(10):
        idx = tr.next_indices()
        by_epoch.setdefault(tr.epoch, []).extend(idx.tolist())
    assert len(by_epoch) >= 4
    for seen in by_epoch.values():
        assert len(seen) == len(set(seen))


def test_every_sample_visited_when_batch_does_not_divide_n():
    """Batch 5 over 12 samples: one epoch (3 batches, the last one short) covers all 12."""
    x, y = data()
    tr = Trainer(mlp(), SGD(lr=0.1), x, y, batch_size=5, seed=4)
    seen = [i for _ in range(3) for i in tr.next_indices().tolist()]
    assert sorted(seen) == list(range(12))


@pytest.mark.parametrize("kwargs,text", [({"mode": "online"}, "mode 'online'"),
                                         ({"batch_size": 0}, "batch size 0"),
                                         ({"batch_size": 2.5}, "batch size 2.5")])
def test_bad_trainer_settings(kwargs, text):
    """Unknown mode or batch size < 1 / not whole is refused naming the value."""
    x, y = data()
    with pytest.raises(SettingsError) as info:
        Trainer(mlp(), SGD(), x, y, **kwargs)
    assert text in str(info.value)


def test_dataset_length_mismatch_and_empty():
    """Inputs and targets of different lengths, or no samples, are refused."""
    x, y = data()
    with pytest.raises(TargetError, match="12 inputs but 11 targets"):
        Trainer(mlp(), SGD(), x, y[:11])
    with pytest.raises(TargetError, match="0 samples"):
        Trainer(mlp(), SGD(), x[:0], y[:0])


# ----- the update -------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_batch_update_is_sum_or_mean_of_per_sample_gradients(reduction):
    """reduction "sum": ΔW = −η Σ per-sample ∂C/∂W; "mean": −η (1/m) Σ ∂C/∂W."""
    x, y = data(n=5)
    net = mlp(reduction)
    per_sample = [raw_grads(net, x[i:i + 1], y[i:i + 1]) for i in range(5)]
    scale = 1.0 if reduction == "sum" else 1 / 5
    before = net.get_params()
    record = Trainer(net, SGD(lr=0.1), x, y, mode="full-batch").step().record
    for i, layer in enumerate(net.layers):
        for k in layer.params:
            total = scale * sum(g[i][k] for g in per_sample)
            np.testing.assert_allclose(record.layers[i][k].grad, total, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(layer.params[k], before[i][k] - 0.1 * total,
                                       rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_record_holds_before_grad_update_after(dtype):
    """after == before + update (bitwise), before is the old W, after is the new W; update
    (made on first use in a plain step) is bitwise −η·g, in the network's dtype."""
    x, y = data()
    net = mlp().clone(dtype)
    before = net.get_params()
    raw = raw_grads(net, x, y)
    net.forward(x)
    net.backward(y)
    record = SGD(lr=0.3).step(net)
    assert record.lr == 0.3 and record.clip_factor == 1.0
    for i, layer in enumerate(net.layers):
        for k, u in record.layers[i].items():
            assert np.array_equal(u.before, before[i][k])
            assert np.array_equal(u.raw_grad, raw[i][k]) and np.array_equal(u.grad, raw[i][k])
            assert np.array_equal(u.update, -0.3 * raw[i][k])
            assert u.update.dtype == u.after.dtype == dtype
            assert np.array_equal(u.after, u.before + u.update)
            assert np.array_equal(layer.params[k], u.after)
            assert u.decay is None and u.clipped == 0


def test_clip_by_value():
    """clip_value c: the gradient used is clip(g, −c, c); the record counts clipped elements."""
    x, y = data()
    net = mlp(reduction="sum")
    raw = raw_grads(net, x, y)
    c = float(np.median(np.abs(raw[0]["W"])))
    net.forward(x)
    net.backward(y)
    record = SGD(lr=0.1, clip_value=c).step(net)
    assert record.clip_factor == 1.0
    for i in range(2):
        for k, u in record.layers[i].items():
            np.testing.assert_array_equal(u.grad, np.minimum(np.maximum(raw[i][k], -c), c))
            assert u.clipped == int(np.sum(np.abs(raw[i][k]) > c))
            np.testing.assert_allclose(u.update, -0.1 * u.grad, rtol=1e-15)
    assert record.layers[0]["W"].clipped > 0


@pytest.mark.parametrize("ratio", [0.5, 2.0])
def test_clip_by_global_norm(ratio):
    """clip_norm c < ‖g‖: every gradient scaled by c/‖g‖ (global norm); c ≥ ‖g‖: unchanged."""
    x, y = data()
    net = mlp(reduction="sum")
    raw = raw_grads(net, x, y)
    norm = np.sqrt(sum(np.sum(g ** 2) for layer in raw for g in layer.values()))
    c = ratio * norm
    net.forward(x)
    net.backward(y)
    record = SGD(lr=0.1, clip_norm=c).step(net)
    factor = min(1.0, c / norm)
    assert record.grad_norm == pytest.approx(norm, rel=1e-12)
    assert record.clip_factor == pytest.approx(factor, rel=1e-12)
    used = [u.grad for layer in record.layers for u in layer.values()]
    assert np.sqrt(sum(np.sum(g ** 2) for g in used)) == pytest.approx(min(c, norm), rel=1e-12)
    for i in range(2):
        for k, u in record.layers[i].items():
            np.testing.assert_allclose(u.grad, raw[i][k] * factor, rtol=1e-12)


def test_clip_value_then_norm():
    """Both clips: values clipped first, then the clipped gradients scaled to the norm cap."""
    x, y = data()
    net = mlp(reduction="sum")
    raw = raw_grads(net, x, y)
    cv = float(np.median(np.abs(raw[0]["W"])))
    clipped = [{k: np.clip(g, -cv, cv) for k, g in layer.items()} for layer in raw]
    norm = np.sqrt(sum(np.sum(g ** 2) for layer in clipped for g in layer.values()))
    net.forward(x)
    net.backward(y)
    record = SGD(lr=0.1, clip_value=cv, clip_norm=norm / 4).step(net)
    assert record.clip_factor == pytest.approx(0.25, rel=1e-12)
    for i in range(2):
        for k, u in record.layers[i].items():
            np.testing.assert_allclose(u.grad, clipped[i][k] / 4, rtol=1e-12)


def test_l2_decays_weights_not_biases():
    """L2 λ: ΔW = −η (g + λW) exactly, Δb = −η g (biases are not decayed)."""
    x, y = data()
    net = mlp()
    before = net.get_params()
    raw = raw_grads(net, x, y)
    net.forward(x)
    net.backward(y)
    eta, lam = 0.2, 0.05
    record = SGD(lr=eta, l2=lam).step(net)
    for i in range(2):
        uw, ub = record.layers[i]["W"], record.layers[i]["b"]
        np.testing.assert_allclose(uw.decay, lam * before[i]["W"], rtol=1e-15)
        np.testing.assert_allclose(uw.update, -eta * (raw[i]["W"] + lam * before[i]["W"]),
                                   rtol=1e-14, atol=0)
        assert ub.decay is None
        np.testing.assert_array_equal(ub.update, -eta * raw[i]["b"])


def test_momentum_second_update_is_mu_v_plus_step():
    """Momentum μ: first update −η g₁; second update μ·(first update) − η g₂."""
    x, y = data()
    net = mlp()
    sgd = SGD(lr=0.1, momentum=0.9)
    tr = Trainer(net, sgd, x, y, mode="full-batch")
    first = tr.step().record
    second = tr.step().record
    for i in range(2):
        for k in ("W", "b"):
            u1, u2 = first.layers[i][k], second.layers[i][k]
            np.testing.assert_allclose(u1.update, -0.1 * u1.grad, rtol=1e-15)
            np.testing.assert_allclose(u2.update, 0.9 * u1.update - 0.1 * u2.grad,
                                       rtol=1e-13, atol=1e-16)
            assert np.array_equal(u2.after, u2.before + u2.update)
    sgd.reset()
    third = tr.step().record                                    # velocity forgotten
    np.testing.assert_allclose(third.layers[0]["W"].update, -0.1 * third.layers[0]["W"].grad,
                               rtol=1e-15)


def test_step_before_backward_is_refused():
    """SGD.step with no gradients yet raises SettingsError and changes nothing."""
    net = mlp()
    before = net.get_params()
    with pytest.raises(SettingsError, match="no gradients"):
        SGD().step(net)
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(before, net.get_params()) for k in a)


def test_evaluate_does_not_change_weights():
    """Trainer.evaluate returns the loss on the set and leaves the weights alone."""
    x, y = data()
    net = mlp()
    before = net.get_params()
    loss, acc = Trainer(net, SGD(), x, y).evaluate()
    expected = 0.5 * np.sum((net.forward(x) - y) ** 2) / len(x)
    assert loss == pytest.approx(expected, rel=1e-12) and acc is None
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(before, net.get_params()) for k in a)


# ----- learning ---------------------------------------------------------------------------------
XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([[0.0], [1.0], [1.0], [0.0]])


@pytest.mark.parametrize("mode", ["full-batch", "sample"])
def test_xor_loss_drops_tenfold(mode):
    """A 2-4-1 tanh/sigmoid MLP with BCE learns XOR: loss ÷10 within 2000 steps, all correct."""
    net = Network((2,), [Dense(4, "tanh"), Dense(1, "sigmoid")], loss="bce", seed=0)
    tr = Trainer(net, SGD(lr=0.5), XOR_X, XOR_Y, mode=mode, seed=0)
    start = tr.evaluate()[0]
    for _ in range(2000):
        tr.step()
        if tr.steps % 50 == 0 and tr.evaluate()[0] < start / 10:
            break
    assert tr.evaluate()[0] < start / 10
    assert np.array_equal(net.forward(XOR_X) > 0.5, XOR_Y > 0.5)


def test_accuracy_for_class_labels():
    """Trainer reports accuracy for integer class labels (argmax of a softmax output)."""
    from bpviz.core import accuracy
    out = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(out, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert accuracy(np.array([[0.2], [0.7]]), np.array([0, 1])) == 1.0
    assert accuracy(out, np.array([[1.0, 0.0]] * 3)) is None
