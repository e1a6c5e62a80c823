"""The formula view's pure function (bpviz.session.formulas.formula_for), without Qt: the right
formula for the phase and layer, and every printed number equal to the core's."""
import numpy as np
import pytest

from bpviz.session.formulas import formula_for, num
from bpviz.session.session import Session


def test_xor_backward_output_is_a_minus_y_over_n_with_the_core_numbers():
    s = Session("xor")                              # sigmoid + BCE, full batch of 4
    s.backward()
    out = s.net.layers[1]
    f = formula_for(s, 1, (0,))
    assert f.title == "Backward · layer 1 Dense(4→1, sigmoid) · unit [0]"
    assert "δᴸ = (aᴸ − y) / N" in f.symbolic and "σ′(z) cancels" in f.symbolic
    assert f.values["δ"] == out.delta[0, 0]
    assert f.values["a"] == out.a[0, 0] and f.values["y"] == s.net.targets[0, 0]
    assert f.numeric.endswith(f"/ 4 = {num(out.delta[0, 0])}")
    assert f.note == ""                             # BCE with sigmoid learns fast


def test_hidden_dense_backward_prints_the_core_delta_and_its_sum():
    s = Session("xor")
    s.backward()
    hidden = s.net.layers[0]
    for j in range(4):
        f = formula_for(s, 0, (j,))
        assert f.symbolic.startswith("δ⁰ = (W¹)ᵀ δ¹ ⊙ f′(z⁰)")
        assert f.values["δ"] == hidden.delta[0, j]
        assert f.values["∂C/∂a"] * f.values["f′(z)"] == pytest.approx(hidden.delta[0, j],
                                                                      abs=1e-15)
        assert f.numeric.endswith(f"= {num(hidden.delta[0, j])}")
        assert "1 − tanh²" not in f.note and "tanh′(z)" in f.tip
    sym_w, text_w = f.extra[0]
    assert sym_w.startswith("∂C/∂W⁰ = δ⁰ (x)ᵀ")
    k = 3
    col = int(np.argmax(np.abs(hidden.grads["W"][k])))
    assert text_w.startswith(f"∂C/∂W⁰[{k},{col}] = ") and text_w.endswith(
        num(hidden.grads["W"][k, col]))
    assert f.extra[1][1] == f"∂C/∂b⁰[{k}] = {num(hidden.grads['b'][k])}"


def test_sigmoid_with_mse_warns_about_slow_learning():
    s = Session("xor")
    s.edit("set_loss", "mse")
    s.backward()
    f = formula_for(s, 1, (0,))
    assert "σ′(z) ≤ 0.25" in f.note and "sigmoid + BCE it would be a − y" in f.note
    assert "f′(z) = σ(z)(1 − σ(z))" in f.symbolic
    out = s.net.layers[1]
    assert f.values["δ"] == out.delta[0, 0]
    assert f.values["f′(z)"] == pytest.approx(out.a[0, 0] * (1 - out.a[0, 0]))
    assert f.values["∂C/∂a"] * f.values["f′(z)"] == pytest.approx(out.delta[0, 0], abs=1e-15)


def test_forward_formulas_of_every_layer_type_carry_z_and_a():
    s = Session("cnn-shapes")
    s.forward()
    for i, layer in enumerate(s.net.layers):
        f = formula_for(s, i, None)
        unit = f.unit
        assert f.title.startswith(f"Forward · layer {i} ")
        assert f.values["z"] == layer.z[(0,) + unit] and f.values["a"] == layer.a[(0,) + unit]
        assert num(layer.a[(0,) + unit]) in f.numeric
    assert formula_for(s, 0, (1, 2, 3)).symbolic.startswith(
        "z⁰[f,i,j] = Σ_c Σ_m Σ_n x_pad[c, 1i+m, 1j+n] · W⁰[f,c,m,n] + b⁰[f]")
    pool = formula_for(s, 1, (0, 1, 1))
    window = s.net.layers[0].a[0, 0, 2:4, 2:4]
    assert pool.values["a"] == window.max()
    assert pool.numeric.startswith("a¹[0,1,1] = max(")
    dense = formula_for(s, 5, (2,))
    assert dense.symbolic == "z⁵ = W⁵ a⁴ + b⁵,   a⁵ = softmax(z⁵)"
    assert dense.values["b"] == s.net.layers[5].params["b"][2]


def test_update_phase_prints_before_gradient_and_after():
    s = Session("xor")
    s.update()
    f = formula_for(s, 0, (1,))
    u = s.last_update.layers[0]["W"]
    w = (1, int(np.argmax(np.abs(u.grad[1]))))
    assert f.symbolic.startswith("W ← W − η (∂C/∂W + λW)")
    assert f.values["W before"] == u.before[w] and f.values["W after"] == s.net.layers[0].params["W"][w]
    assert f.values["η"] == 0.5
    assert f.values["b after"] == s.net.layers[0].params["b"][1]
    assert f.numeric.startswith(f"W⁰[{w[0]},{w[1]}] ← {num(u.before[w])} − 0.5·(")


def test_numbers_wait_until_the_pass_reaches_the_layer():
    s = Session("cnn-shapes")
    s.forward()
    s.step_into()                                   # backward at the last layer
    f = formula_for(s, 2, (0, 0, 0))
    assert f.numeric == "—" and f.values == {}
    assert "has not reached layer 2" in f.tip
    assert f.symbolic.startswith("δ² = (δ³ routed")
    fresh = Session("xor")
    idle = formula_for(fresh, 0, None)
    assert idle.numeric == "—" and "No pass yet" in idle.tip


def test_default_unit_is_the_largest_delta_and_bad_units_are_refused():
    s = Session("cnn-shapes")
    s.backward()
    d = s.net.layers[2].delta[0]
    f = formula_for(s, 2)
    assert f.unit == np.unravel_index(np.argmax(np.abs(d)), d.shape)
    with pytest.raises(ValueError, match="outside"):
        formula_for(s, 5, (9,))
    with pytest.raises(ValueError, match="does not exist"):
        formula_for(s, 6, (0,))


def test_a_snapshot_gives_the_same_numbers_as_the_session():
    s = Session("cnn-shapes")
    s.backward()
    snap = s.snapshot()
    for i in range(len(s.net.layers)):
        a = formula_for(s, i, None)
        b = formula_for(snap, i, a.unit, loss="cross_entropy")
        assert b.symbolic == a.symbolic
        assert b.values["δ"] == a.values["δ"]
    s.update()
    snap = s.snapshot()
    for i in (0, 2, 5):
        assert formula_for(snap, i, None).values == formula_for(s, i, None).values
    s.forward()
    snap = s.snapshot()
    for i in range(len(s.net.layers)):
        a, b = formula_for(s, i, None), formula_for(snap, i, None)
        assert (a.symbolic, a.numeric, a.values) == (b.symbolic, b.numeric, b.values)


@pytest.mark.parametrize("preset", ["lenet-digits", "deep-sigmoid", "reference", "mlp-digits"])
def test_every_layer_and_phase_of_the_presets(preset):
    s = Session(preset)
    for action in (s.forward, s.backward, s.update):
        action()
        for i, layer in enumerate(s.net.layers):
            f = formula_for(s, i, None)
            assert f.numeric != "—" or not layer.params
            if s.phase == "backward":
                assert f.values["δ"] == layer.delta[(0,) + f.unit]
