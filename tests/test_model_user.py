"""Tests of UserNeuron, UserSynapse and the built-in models."""

import dataclasses

import numpy as np
import pytest
import sympy

from eventgrad import neurons, synapses
from eventgrad.model import ModelError, StateVar, UserNeuron, UserSynapse, symbol

S = {name: symbol(name) for name in "v u a x y i g tau tau_mem v_th v_reset Isyn weight E_rev".split()}


def same(a, b) -> bool:
    return sympy.simplify(a - b) == 0


def lif(**overrides):
    """The design document's LIF, with any argument replaced."""
    kwargs = dict(
        vars={"v": ("(-v + Isyn) / tau_mem", "v_reset")},
        threshold="v - v_th",
        output_var_name="v",
        param_vals={"tau_mem": 20.0, "v_th": 1.0, "v_reset": 0.0},
    )
    kwargs.update(overrides)
    return UserNeuron(**kwargs)


def exp_synapse(**overrides):
    kwargs = dict(vars={"i": ("-i / tau", "i + weight")}, inject_current="i", param_vals={"tau": 5.0})
    kwargs.update(overrides)
    return UserSynapse(**kwargs)


# ---- neurons: what a valid definition becomes ----------------------------------------------------------


def test_neuron_is_converted_into_state_vars_of_sympy():
    # The engine reads only these typed fields; a wrong ODE, reset or initial value here breaks everything.
    neuron = lif(var_vals={"v": 0.5}, trainable=["tau_mem"])
    (v,) = neuron.variables
    assert isinstance(v, StateVar) and v.name == "v"
    assert same(v.ode, (-S["v"] + S["Isyn"]) / S["tau_mem"])
    assert v.reset == S["v_reset"] and v.reset_text == "v_reset"
    assert v.ode_text == "(-v + Isyn) / tau_mem"
    assert v.initial == 0.5 and isinstance(v.initial, float)
    assert neuron.threshold == S["v"] - S["v_th"] and neuron.threshold_text == "v - v_th"
    assert neuron.output_var == "v"
    assert list(neuron.params) == ["tau_mem", "v_th", "v_reset"]
    assert neuron.trainable == ("tau_mem",)
    assert neuron.variable("v") is v


def test_variables_keep_the_order_of_vars_and_default_to_zero():
    # The engine indexes state by position; a reordering would swap variables.
    neuron = UserNeuron(vars={"b": ("-b", None), "a": ("-a + b", None)}, threshold=None, output_var_name="a")
    assert [var.name for var in neuron.variables] == ["b", "a"]
    assert [var.initial for var in neuron.variables] == [0.0, 0.0]


def test_threshold_comparison_is_the_same_model_as_the_difference():
    # Writing "v >= v_th" or "v - v_th" must give identical thresholds (invariance).
    assert lif(threshold="v >= v_th").threshold == lif().threshold
    assert lif(threshold="v_th <= v").threshold == lif().threshold
    assert lif(threshold="v >= v_th").threshold_text == "v >= v_th"


def test_numeric_resets_and_none():
    # Resets given as numbers (as mlGeNN users write them) must become constants, None must stay None.
    neuron = lif(vars={"v": ("-v", 0), "u": (None, -2.5)}, param_vals={"v_th": 1.0}, threshold="v - v_th")
    assert neuron.variable("v").reset == sympy.Integer(0) and neuron.variable("v").reset_text == "0"
    assert neuron.variable("u").reset == sympy.Float(-2.5) and neuron.variable("u").reset_text == "-2.5"
    assert neuron.variable("u").ode is None and neuron.variable("u").ode_text is None


def test_isyn_is_allowed_in_neuron_odes_resets_and_thresholds():
    # Isyn is a neuron input; refusing it in resets or thresholds would reject valid models.
    neuron = lif(vars={"v": ("Isyn", "v - Isyn")}, threshold="v + Isyn - v_th", param_vals={"v_th": 1.0})
    assert neuron.threshold == S["v"] + S["Isyn"] - S["v_th"]


def test_array_values_are_read_only_float64_copies():
    # A model must not change when the caller later edits the arrays it passed in.
    tau = np.array([10, 20, 30])
    v0 = [0.1, 0.2, 0.3]
    neuron = lif(param_vals={"tau_mem": tau, "v_th": 1, "v_reset": 0.0}, var_vals={"v": v0})
    tau[0] = 99
    stored = neuron.params["tau_mem"]
    assert stored.dtype == np.float64 and stored.tolist() == [10.0, 20.0, 30.0]
    assert not stored.flags.writeable
    assert neuron.params["v_th"] == 1.0 and isinstance(neuron.params["v_th"], float)
    assert neuron.variable("v").initial.tolist() == v0


def test_model_attributes_are_read_only():
    # The engine caches what it derives from a model; a model mutated afterwards would desynchronise it.
    neuron = lif()
    neuron.params["tau_mem"] = 1.0
    assert neuron.params["tau_mem"] == 20.0
    with pytest.raises(AttributeError):
        neuron.threshold = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        neuron.variables[0].reset = None


def test_state_var_equality_handles_arrays():
    # The dataclass default would compare arrays elementwise and raise; equal models must compare equal.
    a = lif(var_vals={"v": [0.0, 1.0]}).variable("v")
    b = lif(var_vals={"v": np.array([0.0, 1.0])}).variable("v")
    c = lif(var_vals={"v": [0.0, 2.0]}).variable("v")
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert a != lif().variable("v")


def test_repr_names_the_equations():
    # A repr without the threshold and parameters makes failing tests hard to read.
    text = repr(lif(param_vals={"tau_mem": [1.0, 2.0], "v_th": 1.0, "v_reset": 0.0}))
    assert text.startswith("UserNeuron(vars=[v], threshold='v - v_th', output_var='v'")
    assert "tau_mem=<2 values>" in text


# ---- neurons: what is refused --------------------------------------------------------------------------


def test_unknown_symbol_in_threshold_names_field_text_and_symbol():
    # The documented message: the user must see which expression refers to what.
    with pytest.raises(
        ModelError,
        match=r"^the threshold 'v - v_th' refers to 'v_th', which is neither a variable nor a parameter "
        r"of this neuron",
    ):
        lif(param_vals={"tau_mem": 20.0, "v_reset": 0.0})


def test_unknown_symbol_suggests_a_close_name():
    # A typo is the common cause; naming the likely intended symbol saves a search.
    with pytest.raises(
        ModelError,
        match=r"^the ODE dv/dt = '\(-v \+ Isyn\) / tau' refers to 'tau'.*"
        r"did you mean 'tau_mem'\?",
    ):
        lif(vars={"v": ("(-v + Isyn) / tau", "v_reset")})


def test_unknown_symbol_in_reset():
    # Resets are checked like ODEs; an unknown name there would fail only at code generation.
    with pytest.raises(
        ModelError, match=r"^the reset of 'v' to 'v_rest' refers to 'v_rest', which is neither"
    ):
        lif(vars={"v": ("-v", "v_rest")})


@pytest.mark.parametrize(
    ("vars", "match"),
    [
        ({"Isyn": ("-Isyn", None)}, r"the variable name 'Isyn' of this neuron is reserved"),
        ({"t": ("1", None)}, r"the variable name 't' of this neuron is reserved for time"),
        (
            {"lambda_v": ("-lambda_v", None)},
            r"the variable name 'lambda_v' of this neuron starts with 'lambda_'",
        ),
        ({"v": "-v"}, r"vars\['v'\] of this neuron must be a pair \(ODE, reset\)"),
        ({"v": ("-v",)}, r"vars\['v'\] of this neuron must be a pair"),
    ],
)
def test_bad_vars_are_refused(vars, match):
    # Reserved or malformed variables would collide with engine symbols or be misread.
    with pytest.raises(ModelError, match=match):
        UserNeuron(vars=vars, threshold=None, output_var_name="v")


def test_vars_must_be_a_dict():
    # A list of names (a common slip) must not be iterated as if it were a dict.
    with pytest.raises(ModelError, match=r"vars of this neuron must be a dict .* not list"):
        UserNeuron(vars=["v"], threshold=None, output_var_name="v")


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"tau_mem": float("nan")}, r"the parameter 'tau_mem' of this neuron is nan"),
        ({"tau_mem": [1.0, np.inf]}, r"'tau_mem' of this neuron holds inf at index 1"),
        ({"tau_mem": np.ones((2, 2))}, r"'tau_mem' .* got shape \(2, 2\)"),
        ({"tau_mem": "20"}, r"'tau_mem' of this neuron must be a finite number .* str"),
        ({"tau_mem": True}, r"'tau_mem' of this neuron is a boolean"),
        ({"tau_mem": 1j}, r"'tau_mem' of this neuron must be a finite number"),
        ({"v": 1.0}, r"'v' is both a variable and a parameter"),
        ({"dt": 0.1}, r"the parameter name 'dt' of this neuron"),
    ],
)
def test_bad_parameters_are_refused_by_name(extra, match):
    # A non-finite or malformed parameter would poison the simulation far from its cause.
    with pytest.raises(ModelError, match=match):
        lif(param_vals={"tau_mem": 20.0, "v_th": 1.0, "v_reset": 0.0, **extra})


def test_unused_parameters_are_allowed():
    # Models ported from mlGeNN often carry parameters they do not use.
    assert "spare" in lif(param_vals={"tau_mem": 20.0, "v_th": 1.0, "v_reset": 0.0, "spare": 3.0}).params


def test_unknown_var_vals_key_is_refused():
    # A misspelt initial value would otherwise be ignored and the variable silently start at 0.
    with pytest.raises(
        ModelError,
        match=r"var_vals gives a value for 'V', which is not a variable of this "
        r"neuron \(its variables: v\)",
    ):
        lif(var_vals={"V": 1.0})


def test_bad_initial_value_is_refused():
    # A NaN initial state would propagate through every step.
    with pytest.raises(ModelError, match=r"the initial value of 'v' of this neuron is nan"):
        lif(var_vals={"v": float("nan")})


@pytest.mark.parametrize(
    ("trainable", "match"),
    [
        (
            ("tau",),
            r"trainable names 'tau', which is not a parameter of this neuron \(its parameters: "
            r"tau_mem, v_th, v_reset\)",
        ),
        ("tau_mem", r"trainable of this neuron must be a tuple or list of parameter names, not 'tau_mem'"),
        (("tau_mem", "tau_mem"), r"trainable lists 'tau_mem' twice"),
        (("v",), r"trainable names 'v', which is not a parameter"),
    ],
)
def test_trainable_must_name_parameters(trainable, match):
    # Training a name that is not a parameter cannot produce a gradient; a string would be split into letters.
    with pytest.raises(ModelError, match=match):
        lif(trainable=trainable)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"vars": {"v": ("(-v + Isyn) / tau_mem + t", "v_reset")}}, r"^the ODE dv/dt = .* refers to 't'"),
        ({"vars": {"v": ("-v * dt", "v_reset")}}, r"^the ODE dv/dt = '-v \* dt' refers to 'dt'"),
        ({"vars": {"v": ("-v", "v_reset + t")}}, r"^the reset of 'v' to 'v_reset \+ t' refers to 't'"),
        ({"threshold": "v - v_th - t"}, r"^the threshold 'v - v_th - t' refers to 't'"),
    ],
)
def test_explicit_time_is_not_supported_yet(overrides, match):
    # The adjoint derivation assumes autonomous equations; an explicit t would give wrong gradients.
    time = r", but time-dependent \(explicit t\) models are not supported"
    with pytest.raises(ModelError, match=match + time):
        lif(**overrides)


def test_weight_is_not_available_in_neurons():
    # weight belongs to a connection; a neuron using it would have no value for it.
    with pytest.raises(
        ModelError, match=r"the reset of 'v' to 'weight' refers to 'weight', which only synapses"
    ):
        lif(vars={"v": ("-v", "weight")})


def test_non_spiking_neuron_with_a_reset_is_refused():
    # Without a threshold the reset can never happen; the user almost certainly forgot the threshold.
    with pytest.raises(
        ModelError, match=r"this neuron has no threshold, so the resets of v would never happen"
    ):
        lif(threshold=None)


def test_non_spiking_neuron_without_resets_is_accepted():
    # LI readouts are the reason threshold may be None.
    neuron = lif(threshold=None, vars={"v": ("(-v + Isyn) / tau_mem", None)})
    assert neuron.threshold is None and neuron.threshold_text is None


def test_threshold_without_any_variable_is_refused():
    # A constant threshold never crosses zero, so the neuron could never spike.
    with pytest.raises(
        ModelError,
        match=r"the threshold 'v_th - 1' depends on none of the variables of this "
        r"neuron \(v\), so it can never be crossed",
    ):
        lif(threshold="v_th - 1")


def test_output_var_must_be_a_variable():
    # The readout reads this variable; a typo must not surface only at run time.
    with pytest.raises(ModelError, match=r"output_var_name 'V' is not a variable of this neuron"):
        lif(output_var_name="V")
    with pytest.raises(ModelError, match=r"this neuron has no variable 'V' \(its variables: v\)"):
        lif().variable("V")


def test_parse_errors_in_models_name_the_field():
    # A parse error must say which of the model's expressions is broken.
    with pytest.raises(ModelError, match=r"^cannot parse the reset of 'v' of this neuron, 'v\.real'"):
        lif(vars={"v": ("-v", "v.real")})
    with pytest.raises(ModelError, match=r"^cannot parse the threshold of this neuron, '1 < v < 2'"):
        lif(threshold="1 < v < 2")


# ---- synapses ---------------------------------------------------------------------------------------------


def test_exponential_synapse_is_converted():
    # The engine adds weight through the reset and reads the injected current; both must be exact.
    synapse = exp_synapse(trainable=("tau",))
    (i,) = synapse.variables
    assert same(i.ode, -S["i"] / symbol("tau")) and i.reset == S["i"] + S["weight"]
    assert synapse.inject_current == S["i"] and synapse.inject_current_text == "i"
    assert not synapse.is_impulse and synapse.external_names == frozenset()
    assert synapse.trainable == ("tau",)


def test_conductance_synapse_records_postsynaptic_names():
    # "g * (E_rev - v)" needs v from the target neuron; the network must learn which names to supply.
    synapse = UserSynapse(
        vars={"g": ("-g / tau", "g + weight")},
        inject_current="g * (E_rev - v)",
        param_vals={"tau": 5.0, "E_rev": 0.0},
    )
    assert synapse.external_names == frozenset({"v"})
    assert synapse.inject_current == S["g"] * (S["E_rev"] - S["v"])


def test_impulse_synapse_without_variables():
    # A synapse without variables injects a delta of area inject_current; weight must be in it.
    synapse = UserSynapse(vars={}, inject_current="weight * scale", param_vals={"scale": 2.0})
    assert synapse.is_impulse and synapse.variables == ()
    assert synapse.inject_current == S["weight"] * symbol("scale")


def test_impulse_synapse_without_weight_is_refused():
    # Without weight the connection's weights would have no effect and no gradient.
    with pytest.raises(
        ModelError,
        match=r"^the weight never reaches the postsynaptic neuron: this synapse has no "
        r"variables, so the injected current '1.0' must contain 'weight'",
    ):
        UserSynapse(vars={}, inject_current="1.0")


def test_stateful_synapse_without_weight_in_a_reset_is_refused():
    # The weight would never enter the synapse state, so the connection would do nothing.
    with pytest.raises(
        ModelError,
        match=r"^the weight never reaches the postsynaptic neuron: no reset of this "
        r"synapse uses 'weight'",
    ):
        exp_synapse(vars={"i": ("-i / tau", "i + 1")})


def test_weight_that_never_reaches_the_injected_current_is_refused():
    # Here weight changes x, but the injected current reads only y, which x never influences.
    with pytest.raises(
        ModelError,
        match=r"^the weight never reaches the postsynaptic neuron: the injected current "
        r"'y' depends on none of the variables that 'weight' changes \(x\)",
    ):
        exp_synapse(vars={"x": ("-x / tau", "x + weight"), "y": ("-y / tau", None)}, inject_current="y")


def test_weight_reaching_through_a_chain_of_odes_is_accepted():
    # The alpha synapse injects i, which weight reaches only through x's influence on di/dt.
    synapse = exp_synapse(
        vars={"x": ("-x / tau", "x + weight"), "y": ("x - y", None), "i": ("y - i", None)}, inject_current="i"
    )
    assert [v.name for v in synapse.variables] == ["x", "y", "i"]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            {"inject_current": "i * weight"},
            r"^the injected current 'i \* weight' refers to 'weight', which a "
            r"synapse may use only in resets",
        ),
        (
            {"vars": {"i": ("-i / tau * weight", "i + weight")}},
            r"^the ODE di/dt = '-i / tau \* weight' refers "
            r"to 'weight'",
        ),
        ({"vars": {"i": ("-i / tau + Isyn", "i + weight")}}, r"refers to 'Isyn', which only neurons have"),
        ({"inject_current": "i + Isyn"}, r"^the injected current 'i \+ Isyn' refers to 'Isyn', which only"),
        ({"inject_current": "i * t"}, r"^the injected current 'i \* t' refers to 't', but time-dependent"),
        ({"inject_current": "i * lambda_v"}, r"refers to 'lambda_v', a name kept for adjoint variables"),
        (
            {"vars": {"i": ("-i / tau + v", "i + weight")}},
            r"^the ODE di/dt = .* refers to 'v', which is neither a"
            r" variable nor a parameter of this synapse",
        ),
        (
            {"var_vals": {"j": 1.0}},
            r"var_vals gives a value for 'j', which is not a variable of this synapse",
        ),
        ({"trainable": ("tau_syn",)}, r"trainable names 'tau_syn', which is not a parameter of this synapse"),
    ],
)
def test_bad_synapses_are_refused(overrides, match):
    # Each of these would give the engine a synapse whose meaning it cannot derive.
    with pytest.raises(ModelError, match=match):
        exp_synapse(**overrides)


# ---- built-in models ---------------------------------------------------------------------------------------


def _odes(model) -> dict:
    return {var.name: var.ode for var in model.variables}


def test_builtin_lif_if_li_equations():
    # Built-ins are ordinary UserNeurons; their equations must be the documented ones.
    v, Isyn, tau = S["v"], S["Isyn"], S["tau_mem"]
    model = neurons.LIF(tau_mem=10.0, trainable=("tau_mem",))
    assert same(model.variable("v").ode, (-v + Isyn) / tau)
    assert model.threshold == v - symbol("v_thresh") and model.variable("v").reset == symbol("v_reset")
    assert model.params == {"tau_mem": 10.0, "v_thresh": 1.0, "v_reset": 0.0}
    assert model.trainable == ("tau_mem",)
    model = neurons.IF()
    assert model.variable("v").ode == Isyn and model.threshold == v - symbol("v_thresh")
    model = neurons.LI()
    assert same(model.variable("v").ode, (-v + Isyn) / tau)
    assert model.threshold is None and model.variable("v").reset is None


def test_builtin_adaptive_lif_equations():
    # The adaptation must raise the threshold by beta per spike and decay with tau_adapt.
    model = neurons.AdaptiveLIF()
    v, a = S["v"], S["a"]
    assert same(model.variable("a").ode, -a / symbol("tau_adapt"))
    assert same(model.variable("a").reset, a + 1)
    assert same(model.threshold, v - symbol("v_thresh") - symbol("beta") * a)


def test_builtin_resonate_and_fire_has_complex_eigenvalues():
    # The point of this model is oscillation: eigenvalues -damping +- i omega.
    model = neurons.ResonateAndFire()
    x, y = S["x"], S["y"]
    odes = _odes(model)
    values = {symbol("omega"): 0.3, symbol("damping"): 0.05, S["Isyn"]: 0}
    jacobian = sympy.Matrix([[sympy.diff(odes[r], c) for c in (x, y)] for r in ("x", "y")]).subs(values)
    eigenvalues = sorted((complex(e) for e in jacobian.eigenvals()), key=lambda z: z.imag)
    assert np.allclose(eigenvalues, [-0.05 - 0.3j, -0.05 + 0.3j])
    assert model.output_var == "y" and model.threshold == y - symbol("v_thresh")
    assert model.variable("x").reset.is_zero and model.variable("y").reset.is_zero


def test_builtin_qif_and_izhikevich_equations():
    # Nonlinear built-ins: the quadratic terms and Izhikevich's constants must be exact.
    v, u, Isyn = S["v"], S["u"], S["Isyn"]
    qif = neurons.QIF()
    expected = ((v - symbol("v_rest")) * (v - symbol("v_crit")) + Isyn) / S["tau_mem"]
    assert same(qif.variable("v").ode, expected)
    izh = neurons.Izhikevich()
    assert same(izh.variable("v").ode, sympy.Rational(1, 25) * v**2 + 5 * v + 140 - u + Isyn)
    assert same(izh.variable("u").ode, symbol("a") * (symbol("b") * v - u))
    assert izh.variable("v").reset == symbol("c") and izh.variable("u").reset == u + symbol("d")
    assert izh.variable("v").initial == -65.0 and izh.variable("u").initial == -13.0
    assert izh.threshold == v - symbol("v_peak")


def test_builtin_synapse_equations():
    # Exponential and alpha kernels must be the documented ones; Delta must be an impulse of area weight.
    tau, i, x = symbol("tau"), S["i"], S["x"]
    exp = synapses.Exponential(tau=2.0)
    assert same(exp.variable("i").ode, -i / tau) and exp.variable("i").reset == i + S["weight"]
    assert exp.params == {"tau": 2.0}
    alpha = synapses.Alpha()
    assert same(alpha.variable("x").ode, -x / tau) and same(alpha.variable("i").ode, (x - i) / tau)
    assert alpha.variable("x").reset == x + S["weight"] and alpha.variable("i").reset is None
    assert alpha.inject_current == i
    delta = synapses.Delta()
    assert delta.is_impulse and delta.inject_current == S["weight"]


@pytest.mark.parametrize(
    "factory",
    [
        neurons.LIF,
        neurons.IF,
        neurons.LI,
        neurons.AdaptiveLIF,
        neurons.ResonateAndFire,
        neurons.QIF,
        neurons.Izhikevich,
        synapses.Exponential,
        synapses.Alpha,
    ],
)
def test_every_builtin_parameter_can_be_trained(factory):
    # Gradients for every parameter are a design goal; a factory that refused one would block it.
    names = tuple(factory().params)
    assert factory(trainable=names).trainable == names
