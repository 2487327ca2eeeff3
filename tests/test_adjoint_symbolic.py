"""The symbolic adjoint derivation (eventgrad.adjoint) against EventProp formulas derived by hand.

Pure sympy: no code generation, no simulation.  Conventions are those of the docstring of
``eventgrad/adjoint/derive.py``: lambda = dL/dx, dlambda/dt = -J^T lambda between events, and at a
spike of neuron n with reset f and threshold g

    lambda_n- = (df/dx)^T lambda_n+ - (dg/dx)^T B / GDOT,
    B = lambda_n+ . (df/dx F(x-) - F(f(x-))) + target_shift_sum + dloss_dspike_time.

Hand derivation for LIF + exponential synapse, state x = (v, i), parameters tm = tau_mem,
th = v_thresh, vr = v_reset, ts = the synapse's tau:

    F = ((-v + i)/tm, -i/ts)                 J = [[-1/tm, 1/tm], [0, -1/ts]]
    dlambda_v/dt = lambda_v/tm               dlambda_i/dt = -lambda_v/tm + lambda_i/ts
    g = v - th, dg/dx = (1, 0)               gdot = dg/dx . F = (i - v)/tm
    f = (vr, i), df/dx = diag(0, 1)          F(f(x)) = ((i - vr)/tm, -i/ts)
    df/dx F - F(f) = ((vr - i)/tm, 0)        B = lambda_v (vr - i)/tm + S + dl
    lambda_v- = -B / GDOT = (lambda_v+ vdot+ - S - dl) / GDOT,  vdot+ = (i - vr)/tm  (Wunderlich & Pehle)
    lambda_i- = lambda_i+                    (i is not reset by the neuron's spike)

Presynaptic spike through the connection, R(x) = (v, i + w):

    dR/dx = I, so lambda passes through;     F(x) - F(R(x)) = (-w/tm, w/ts)
    target_shift = lambda . (dR/dx F - F(R)) = -lambda_v w/tm + lambda_i w/ts
    weight_grad  = lambda . dR/dw = lambda_i

Parameters: dL/dth = -(dg/dth) B / GDOT = B / GDOT (a higher threshold delays the spike);
integrand of tau_mem = lambda . dF/dtm = lambda_v (v - i)/tm^2; of ts: lambda_i i/ts^2.
"""

import pytest
import sympy

import eventgrad as eg
from eventgrad.adjoint.derive import DLOSS_DT, GDOT, TARGET_SHIFT, adjoint_symbols, derive_adjoint
from eventgrad.adjoint.system import WEIGHT, build_population_system
from eventgrad.model import ModelError, UserNeuron, UserSynapse

S, DL = TARGET_SHIFT, DLOSS_DT


def same(a, b) -> bool:
    return sympy.simplify(sympy.sympify(a) - sympy.sympify(b)) == 0


def same_matrix(a, b) -> bool:
    a, b = sympy.Matrix(a), sympy.Matrix(b)
    return a.shape == b.shape and all(same(x, y) for x, y in zip(a, b))


def lif_exp_system(trainable=("tau_mem", "v_thresh"), syn_trainable=()):
    neuron = eg.neurons.LIF(tau_mem=20.0, v_thresh=1.0, v_reset=0.0, trainable=trainable)
    return build_population_system("h", neuron, [("xh", eg.synapses.Exponential(tau=5.0, trainable=syn_trainable))])


def symbols_of(system):
    """(state symbols, adjoint symbols, parameter symbols by key) of a system."""
    return system.state, adjoint_symbols(system), {p.key: p.symbol for p in system.params}


@pytest.fixture(scope="module")
def lif():
    """The LIF + exponential synapse system, its adjoint, and the symbols the hand formulas use."""
    system = lif_exp_system()
    adj = derive_adjoint(system)
    (v, i), (lv, li), p = symbols_of(system)
    return dict(system=system, adj=adj, v=v, i=i, lv=lv, li=li, tm=p["tau_mem"], th=p["v_thresh"],
                vr=p["v_reset"], ts=p["xh.tau"])


def hand_bracket(s):
    return s["lv"] * (s["vr"] - s["i"]) / s["tm"] + S + DL


# ---- the system the derivation starts from ----------------------------------------------------------------


def test_lif_exp_system_has_v_then_the_synaptic_current_and_distinct_adjoint_symbols(lif):
    # Fails if the population state is not (neuron variables, then synapse variables), if parameters are
    # lost or misnamed, or if an adjoint symbol coincides with a state or parameter symbol (which would
    # silently merge lambda_v with v in every formula below).
    system, adj = lif["system"], lif["adj"]
    assert system.state_names == ("v", "xh.i")
    assert [p.key for p in system.params] == ["tau_mem", "v_thresh", "v_reset", "xh.tau"]
    assert [p.key for p in system.trainable_params] == ["tau_mem", "v_thresh"]
    assert tuple(adj.lam) == (lif["lv"], lif["li"])
    everything = list(adj.lam) + list(system.state) + list(system.param_symbols) + [S, DL, GDOT, WEIGHT]
    assert len(set(everything)) == len(everything)
    v, i, tm, ts = lif["v"], lif["i"], lif["tm"], lif["ts"]
    assert same_matrix(system.rhs, [(-v + i) / tm, -i / ts])


# ---- between events ------------------------------------------------------------------------------------------


def test_lif_adjoint_ode_is_minus_jacobian_transpose_times_lambda(lif):
    # Fails if the adjoint ODE uses J instead of J^T (lambda_v would get a lambda_i term), has the wrong
    # sign (adjoint growing instead of decaying backwards), or misses the synapse's own decay.
    lv, li, tm, ts = lif["lv"], lif["li"], lif["tm"], lif["ts"]
    assert same_matrix(lif["adj"].adjoint_rhs, [lv / tm, -lv / tm + li / ts])


def test_tau_mem_integrand_is_lambda_v_times_dF_dtau_mem_and_threshold_has_none(lif):
    # Fails if the parameter integrand has the wrong sign or power of tau_mem, or if v_thresh, which does
    # not appear in F, gets a nonzero integral (its gradient must come from the spike jump alone).
    ints = lif["adj"].param_integrands
    assert set(ints) <= {lif["tm"], lif["th"]}
    assert same(ints[lif["tm"]], lif["lv"] * (lif["v"] - lif["i"]) / lif["tm"] ** 2)
    assert same(ints.get(lif["th"], 0), 0)  # a zero integrand may be listed or left out


def test_synaptic_tau_integrand_is_lambda_i_times_i_over_tau_squared():
    # Fails if a trainable synapse parameter is not renamed consistently inside the population system
    # (then dF/dtau would be 0) or if its integrand has the wrong sign.
    system = lif_exp_system(trainable=(), syn_trainable=("tau",))
    adj = derive_adjoint(system)
    (v, i), (lv, li), p = symbols_of(system)
    assert [q.key for q in system.trainable_params] == ["xh.tau"]
    assert set(adj.param_integrands) == {p["xh.tau"]}
    assert same(adj.param_integrands[p["xh.tau"]], li * i / p["xh.tau"] ** 2)


# ---- at the population's own spikes -------------------------------------------------------------------------


def test_lif_threshold_rate_is_dv_dt_before_the_spike(lif):
    # Fails if gdot is taken after the reset, or from the wrong component of F; at the threshold
    # (v = 1) it must be (-1 + i)/tau_mem.
    gdot = lif["adj"].spike.gdot
    v, i, tm = lif["v"], lif["i"], lif["tm"]
    assert same(gdot, (-v + i) / tm)
    assert same(gdot.subs(v, 1), (-1 + i) / tm)


def test_lif_bracket_and_lambda_v_jump_match_wunderlich_pehle(lif):
    # Fails if the reset's time shift has the wrong sign or uses F before instead of after the reset,
    # if the target and spike-time-loss terms are missing, or if the jump is not divided by gdot.
    sp = lif["adj"].spike
    lv, i, vr, tm = lif["lv"], lif["i"], lif["vr"], lif["tm"]
    assert same_matrix(sp.own_shift, [(vr - i) / tm, 0])
    assert same(sp.bracket, hand_bracket(lif))
    assert same(sp.lambda_minus[0], -hand_bracket(lif) / GDOT)
    vdot_plus = (i - vr) / tm  # dv/dt right after the reset
    assert same(sp.lambda_minus[0], (lv * vdot_plus - S - DL) / GDOT)


def test_lif_spike_leaves_lambda_i_unchanged(lif):
    # Fails if the neuron's reset is applied to the synaptic current (i would be reset with v) or if the
    # threshold term leaks into lambda_i although g does not depend on i.
    sp = lif["adj"].spike
    assert same(sp.lambda_minus[1], lif["li"])
    assert same_matrix(sp.fixed_time_lambda_minus, [0, lif["li"]])


def test_lif_threshold_gradient_is_bracket_over_gdot_and_only_for_v_thresh(lif):
    # Fails if the threshold parameter gradient has the wrong sign (dg/dth = -1, so +B/gdot), or if
    # tau_mem, which is not in the threshold, gets a threshold term; LIF's reset to v_reset does not
    # depend on a trainable parameter, so no reset term either.
    sp = lif["adj"].spike
    assert set(sp.threshold_param_grads) == {lif["th"]}
    assert same(sp.threshold_param_grads[lif["th"]], hand_bracket(lif) / GDOT)
    assert sp.reset_param_grads == {}


def test_trainable_v_reset_collects_lambda_v_at_each_spike():
    # Fails if a parameter of the reset map gets no jump term: dL/dv_reset = sum over spikes of lambda_v+.
    system = lif_exp_system(trainable=("v_reset",))
    adj = derive_adjoint(system)
    (v, i), (lv, li), p = symbols_of(system)
    assert set(adj.spike.reset_param_grads) == {p["v_reset"]}
    assert same(adj.spike.reset_param_grads[p["v_reset"]], lv)
    assert same(adj.param_integrands.get(p["v_reset"], 0), 0)
    assert adj.spike.threshold_param_grads == {}


# ---- at presynaptic spikes -----------------------------------------------------------------------------------


def test_exponential_connection_target_shift_weight_grad_and_pass_through(lif):
    # Fails if the target shift uses F(R(x)) - F(x) (wrong sign), forgets the synapse's decay term, if the
    # weight gradient is not lambda_i, or if lambda is altered by a jump whose Jacobian is the identity.
    ca = lif["adj"].connections[0]
    lv, li, tm, ts = lif["lv"], lif["li"], lif["tm"], lif["ts"]
    w = WEIGHT
    assert ca.name == "xh"
    assert same(ca.target_shift, -lv * w / tm + li * w / ts)
    assert same(ca.weight_grad, li)
    assert same_matrix(ca.lambda_minus, [lv, li])
    assert ca.lambda_passes_through is True
    assert ca.param_grads == {}


def test_two_incoming_connections_each_jump_only_their_own_current():
    # Fails if the synapse copies of two connections share a variable or parameter (a spike on one would
    # move the other's current), or if Isyn is not the sum of both currents.
    neuron = eg.neurons.LIF(tau_mem=20.0)
    system = build_population_system(
        "h", neuron, [("xh", eg.synapses.Exponential(tau=5.0)), ("hh", eg.synapses.Exponential(tau=8.0))]
    )
    adj = derive_adjoint(system)
    (v, i0, i1), (lv, l0, l1), p = symbols_of(system)
    t0, t1, tm, w = p["xh.tau"], p["hh.tau"], p["tau_mem"], WEIGHT
    assert t0 != t1
    assert same_matrix(system.rhs, [(-v + i0 + i1) / tm, -i0 / t0, -i1 / t1])
    assert same_matrix(system.incoming[0].jump, [v, i0 + w, i1])
    assert same_matrix(system.incoming[1].jump, [v, i0, i1 + w])
    assert same(adj.connections[0].target_shift, -lv * w / tm + l0 * w / t0)
    assert same(adj.connections[1].target_shift, -lv * w / tm + l1 * w / t1)
    assert same(adj.connections[0].weight_grad, l0)
    assert same(adj.connections[1].weight_grad, l1)


# ---- invariance ------------------------------------------------------------------------------------------------


def _renamed_lif_exp():
    """LIF + exponential synapse with every name changed and the ODE written differently."""
    neuron = UserNeuron(
        vars={"u": ("-u / tm + Isyn / tm", "ur")},
        threshold="u - th",
        output_var_name="u",
        param_vals={"tm": 20.0, "th": 1.0, "ur": 0.0},
        trainable=("tm", "th"),
    )
    synapse = UserSynapse(vars={"s": ("-s / ts", "weight + s")}, inject_current="s", param_vals={"ts": 5.0})
    return build_population_system("pop", neuron, [("inp", synapse)])


def test_renamed_and_rewritten_lif_gives_the_same_adjoint_up_to_renaming(lif):
    # Fails if the derivation depends on variable or parameter names (e.g. looks up "v" or "tau_mem"),
    # on the connection's name, or on how the user wrote an equivalent ODE.
    other = _renamed_lif_exp()
    oadj = derive_adjoint(other)
    system, adj = lif["system"], lif["adj"]
    ren = dict(zip(other.state, system.state))
    ren.update(zip(oadj.lam, adj.lam))
    ren.update(zip(other.param_symbols, system.param_symbols))
    assert len(ren) == 2 + 2 + 4

    def back(e):
        return sympy.sympify(e).xreplace(ren)

    assert same_matrix(oadj.adjoint_rhs.xreplace(ren), adj.adjoint_rhs)
    assert same(back(oadj.spike.gdot), adj.spike.gdot)
    assert same(back(oadj.spike.bracket), adj.spike.bracket)
    assert same_matrix(oadj.spike.lambda_minus.xreplace(ren), adj.spike.lambda_minus)
    assert {back(k): v for k, v in oadj.spike.threshold_param_grads.items()}.keys() == \
        adj.spike.threshold_param_grads.keys()
    for k, e in oadj.spike.threshold_param_grads.items():
        assert same(back(e), adj.spike.threshold_param_grads[back(k)])
    assert {back(k) for k in oadj.param_integrands} == set(adj.param_integrands)
    for k, e in oadj.param_integrands.items():
        assert same(back(e), adj.param_integrands[back(k)])
    assert same(back(oadj.connections[0].target_shift), adj.connections[0].target_shift)
    assert same(back(oadj.connections[0].weight_grad), adj.connections[0].weight_grad)
    assert same_matrix(oadj.connections[0].lambda_minus.xreplace(ren), adj.connections[0].lambda_minus)


# ---- linearity --------------------------------------------------------------------------------------------------


def test_lif_exp_linear_form_is_the_hand_written_A_and_zero_b(lif):
    # Fails if A is transposed (the exact propagator would then run the current from v), if a rate has the
    # wrong sign, or if a spurious constant drive appears in b.
    A, b = lif["system"].linear_form()
    tm, ts = lif["tm"], lif["ts"]
    assert same_matrix(A, [[-1 / tm, 1 / tm], [0, -1 / ts]])
    assert same_matrix(b, [0, 0])


def test_constant_drive_appears_in_b_not_in_A():
    # Fails if an affine model's constant term (a resting potential) is dropped or folded into A.
    neuron = UserNeuron(vars={"v": ("(v_rest - v + Isyn) / tau_mem", None)}, threshold=None, output_var_name="v",
                        param_vals={"tau_mem": 20.0, "v_rest": 0.3})
    system = build_population_system("h", neuron, [("xh", eg.synapses.Exponential(tau=5.0))])
    _, _, p = symbols_of(system)
    A, b = system.linear_form()
    assert same_matrix(A, [[-1 / p["tau_mem"], 1 / p["tau_mem"]], [0, -1 / p["xh.tau"]]])
    assert same_matrix(b, [p["v_rest"] / p["tau_mem"], 0])


@pytest.mark.parametrize("model", [eg.neurons.Izhikevich, eg.neurons.QIF])
def test_nonlinear_neurons_have_no_linear_form(model):
    # Fails if a state-dependent Jacobian (v**2 in Izhikevich, (v - v_rest)(v - v_crit) in QIF) is taken for
    # a constant A: the engine would then use an exact "linear" propagator that is wrong.
    system = build_population_system("h", model(), [("xh", eg.synapses.Exponential(tau=5.0))])
    assert system.linear_form() is None


@pytest.mark.parametrize("model", [eg.neurons.AdaptiveLIF, eg.neurons.ResonateAndFire, eg.neurons.IF])
def test_linear_neurons_have_a_linear_form(model):
    # Fails if a linear model is refused the exact propagator (falls back to RK4, losing exactness).
    system = build_population_system("h", model(), [("xh", eg.synapses.Exponential(tau=5.0))])
    lin = system.linear_form()
    assert lin is not None
    A, b = lin
    x = sympy.Matrix(system.state)
    assert same_matrix(A * x + b, system.rhs)


# ---- impulse synapses ----------------------------------------------------------------------------------------


def test_delta_synapse_jump_is_weight_times_dF_dIsyn():
    # Fails if a delta synapse adds the weight to v directly (instead of weight / tau_mem for LIF, the
    # integral of a Dirac delta through dv/dt = (-v + Isyn)/tau_mem), or if its adjoint terms are derived
    # from the wrong jump.
    neuron = eg.neurons.LIF(tau_mem=20.0)
    system = build_population_system("h", neuron, [("xh", eg.synapses.Delta())])
    adj = derive_adjoint(system)
    (v,), (lv,), p = symbols_of(system)
    tm, w = p["tau_mem"], WEIGHT
    assert system.state_names == ("v",)
    assert same_matrix(system.rhs, [-v / tm])
    assert same_matrix(system.incoming[0].jump, [v + w / tm])
    ca = adj.connections[0]
    # F(x) - F(R(x)) = -v/tm + (v + w/tm)/tm = w/tm**2
    assert same(ca.target_shift, lv * w / tm**2)
    assert same(ca.weight_grad, lv / tm)
    assert ca.lambda_passes_through is True


def test_delta_synapse_into_a_neuron_not_affine_in_isyn_is_refused():
    # Fails if a delta current is accepted where its effect is undefined (F nonlinear in Isyn): the jump
    # would be computed from a meaningless slope.
    neuron = UserNeuron(vars={"v": ("(-v + Isyn**2) / tau_mem", "0.0")}, threshold="v - 1.0",
                        output_var_name="v", param_vals={"tau_mem": 20.0})
    with pytest.raises(ModelError, match=r"impulse \(delta\) synapse.*not affine in Isyn"):
        build_population_system("h", neuron, [("xh", eg.synapses.Delta())])


# ---- threshold depending on two variables --------------------------------------------------------------------


def test_adaptive_lif_spike_jump_moves_both_v_and_a():
    # Hand derivation: x = (v, a, i), g = v - th - beta a, dg/dx = (1, -beta, 0), f = (vr, a + 1, i),
    # gdot = (i - v)/tm + beta a/ta, df/dx F - F(f) = ((vr - i)/tm, 1/ta, 0),
    # B = lambda_v (vr - i)/tm + lambda_a/ta + S + dl,
    # lambda- = (-B/GDOT, lambda_a + beta B/GDOT, lambda_i).
    # Fails if only the first variable of the threshold gets the jump term, if the adaptation's own reset
    # shift (1/ta) is missing from B, or if its sign is wrong.
    system = build_population_system("h", eg.neurons.AdaptiveLIF(trainable=("beta",)),
                                     [("xh", eg.synapses.Exponential(tau=5.0))])
    adj = derive_adjoint(system)
    (v, a, i), (lv, la, li), p = symbols_of(system)
    tm, ta, beta, vr = p["tau_mem"], p["tau_adapt"], p["beta"], p["v_reset"]
    sp = adj.spike
    assert system.state_names == ("v", "a", "xh.i")
    assert same(sp.gdot, (i - v) / tm + beta * a / ta)
    B = lv * (vr - i) / tm + la / ta + S + DL
    assert same(sp.bracket, B)
    assert same_matrix(sp.lambda_minus, [-B / GDOT, la + beta * B / GDOT, li])
    # beta is a threshold parameter: dg/dbeta = -a, so dL/dbeta gets a B / GDOT at each spike.
    assert same(sp.threshold_param_grads[beta], a * B / GDOT)
