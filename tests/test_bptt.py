"""Surrogate-gradient BPTT (eventgrad.bptt): gradients, surrogates, the grid convention, the API, training.

BPTT differentiates the simulation on the dt grid. Where no spike is involved its gradient is the exact
gradient of that simulation, so finite differences must agree; through spikes it is a surrogate, which we
check by making the forward spike function the surrogate's primitive (then BPTT must again be exact).
"""

import numpy as np
import pytest

import eventgrad as eg
from eventgrad.bptt import BPTTSimulator, get_surrogate
from eventgrad.bptt.passes import grid_index
from eventgrad.bptt.surrogates import ArcTan, FastSigmoid, Heaviside, Triangle


@pytest.fixture(autouse=True)
def strict_numerics():
    with np.errstate(all="raise"):
        yield


def _linear_net(seed, tau_mem=8.0):
    """Input -> LI (no threshold) through an Exponential and an Alpha synapse, every parameter trainable."""
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", 3)
    o = net.add_population("o", 2, eg.neurons.LI(tau_mem=tau_mem, trainable=("tau_mem",)))
    net.connect(x, o, eg.synapses.Exponential(tau=3.0, trainable=("tau",)), weight=rng.normal(0, 1, (3, 2)), name="xe")
    net.connect(x, o, eg.synapses.Alpha(tau=2.0, trainable=("tau",)), weight=rng.normal(0, 1, (3, 2)), name="xa")
    return net


def _spiking_net(seed, hidden_trainable=("tau_mem", "v_thresh")):
    """Input -> LIF hidden (recurrent) -> LI output, with exponential, delta and alpha synapses."""
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", 3)
    h = net.add_population("h", 5, eg.neurons.LIF(tau_mem=10.0, trainable=hidden_trainable))
    o = net.add_population("o", 2, eg.neurons.LI(tau_mem=8.0, trainable=("tau_mem",)))
    net.connect(x, h, eg.synapses.Exponential(tau=3.0, trainable=("tau",)), weight=rng.uniform(0.5, 2.0, (3, 5)),
                name="xh")
    net.connect(x, h, eg.synapses.Delta(), weight=rng.uniform(0.5, 2.0, (3, 5)), name="xd")
    net.connect(h, h, eg.synapses.Exponential(tau=3.0), weight=rng.normal(0, 0.5, (5, 5)), name="hh")
    net.connect(h, o, eg.synapses.Alpha(tau=2.0, trainable=("tau",)), weight=rng.normal(0, 1, (5, 2)), name="ho")
    return net


def _batch(seed, n_samples=2, n_in=3, n_spikes=12, duration=15.0):
    rng = np.random.default_rng(seed + 100)
    times = [np.sort(rng.uniform(0.0, duration, n_spikes)) for _ in range(n_samples)]
    units = [rng.integers(0, n_in, n_spikes) for _ in range(n_samples)]
    return eg.SpikeBatch(times, units), rng.integers(0, 2, n_samples)


def _fd_errors(sim, grads, loss_of_params, eps=1e-6):
    """Worst relative error of ``grads`` against central differences of ``loss_of_params()``, per key;
    None for a key whose gradient and differences are both zero (the caller says which may be)."""
    errors = {}
    for key in sim.trainable:
        value = sim.params[key]
        fd = np.zeros(value.shape)
        for idx in np.ndindex(value.shape):
            original = value[idx]
            step = eps * max(1.0, abs(original))
            value[idx] = original + step
            plus = loss_of_params()
            value[idx] = original - step
            minus = loss_of_params()
            value[idx] = original
            fd[idx] = (plus - minus) / (2 * step)
        scale = max(np.abs(fd).max(), np.abs(grads[key]).max())
        errors[key] = float(np.abs(fd - grads[key]).max() / scale) if scale > 0 else None
    return errors


# ------------------------------------------------------------------------------------- (a) exact gradients
@pytest.mark.parametrize("integrator,substeps,readout,loss", [
    ("rk4", 1, eg.readouts.SumVar("o"), eg.losses.SoftmaxCrossEntropy()),
    ("euler", 2, eg.readouts.ExpWeightedMeanVar("o"), eg.losses.SoftmaxCrossEntropy()),
    ("rk4", 2, eg.readouts.MaxVar("o"), eg.losses.MeanSquaredError()),
])
def test_nonspiking_gradients_match_finite_differences(integrator, substeps, readout, loss):
    """Without spikes BPTT is plain backpropagation through the grid map: every weight and time constant must
    match central differences to ~1e-6. If not, the generated Jacobians, the step order or the readout's
    cotangent are wrong."""
    net = _linear_net(0, tau_mem=np.array([8.0, 11.0]))  # a per-neuron parameter: its gradient is per neuron
    sim = BPTTSimulator(net, 1.0, 20.0, "float64", readout=readout, loss=loss, integrator=integrator,
                        substeps=substeps)
    batch, labels = _batch(0)
    if isinstance(loss, eg.losses.MeanSquaredError):
        labels = np.ones((2, 2))
    report = eg.check_gradients(sim, batch, labels)
    assert set(report.errors) == {"xe.weight", "xa.weight", "o.tau_mem", "xe.tau", "xa.tau"}
    assert report.worst < 1e-6, str(report)
    assert sim.loss_and_grad(batch, labels)[1]["o.tau_mem"].shape == (2,)


class _SquaredCounts:
    """A regularizer: 0.01 * sum of squared spike counts of 'h'."""

    groups = ["h"]

    def penalty(self, counts):
        c = counts["h"]
        return 0.01 * float((c**2).sum()), {"h": 0.02 * c}


@pytest.mark.parametrize("surrogate,readout,unused", [
    ("fast_sigmoid", eg.readouts.SumVar("o"), set()),
    ("arctan", eg.readouts.SpikeCount("h"), {"ho.weight", "ho.tau", "o.tau_mem"}),  # the loss never sees 'o'
])
def test_backprop_through_spikes_is_the_derivative_of_the_smoothed_network(surrogate, readout, unused):
    """With the forward spike s = H(g) replaced by the surrogate's primitive, the surrogate gradient becomes the
    exact gradient of that smooth network: every weight and parameter (through resets, recurrent and delta
    synapses, a spike-count readout and a regularizer) must match finite differences. If not, the backward
    pass mishandles a spike path (reset, delivery to targets, dL/ds of a source)."""
    net = _spiking_net(1, hidden_trainable=("tau_mem", "v_thresh", "v_reset"))
    sim = BPTTSimulator(net, 1.0, 20.0, "float64", readout=readout, surrogate=surrogate, substeps=2)
    sim._forward_spike = sim.surrogate.primitive
    batch, labels = _batch(1)
    regularizer = _SquaredCounts()

    def full_loss():
        res = sim.run(batch)
        value = sim.loss_fn.value_and_grad(sim.readout.logits(res.readout)[0], labels)[0]
        return value + regularizer.penalty({"h": res.trace.counts[0]})[0]

    loss, grads = sim.loss_and_grad(batch, labels, regularizer=regularizer)
    assert loss == pytest.approx(full_loss(), rel=1e-12)
    assert sim.loss(batch, labels, regularizer=regularizer) == pytest.approx(loss, rel=1e-12)
    errors = _fd_errors(sim, grads, full_loss)
    assert {k for k, e in errors.items() if e is None} == unused, errors
    assert max(e for e in errors.values() if e is not None) < 1e-6, errors


def test_spike_count_regularizer_of_the_training_package_is_differentiated():
    """eventgrad.train.SpikeCountRegularizer (groups + penalty(counts)) must work with BPTT: with smoothed spikes
    its surrogate gradient is exact, so check_gradients (which adds it to both losses) must agree."""
    from eventgrad.train import SpikeCountRegularizer

    sim = BPTTSimulator(_spiking_net(11), 1.0, 20.0, "float64", readout=eg.readouts.SumVar("o"), surrogate="arctan")
    sim._forward_spike = sim.surrogate.primitive
    batch, labels = _batch(11)
    # the smoothed counts of this network lie between 4.4 and 6.7: both branches of the penalty are active
    regularizer = SpikeCountRegularizer(groups=("h",), nu_upper=5.5, lambda_upper=0.3, nu_lower=5.0,
                                        lambda_lower=0.2)
    plain = sim.loss_and_grad(batch, labels)[1]
    report = eg.check_gradients(sim, batch, labels, regularizer=regularizer)
    assert report.worst < 1e-6, str(report)
    assert not np.allclose(sim.loss_and_grad(batch, labels, regularizer=regularizer)[1]["xh.weight"],
                           plain["xh.weight"]), "the regularizer did not change the gradient"


def test_state_dependent_jump_gradient():
    """A saturating synapse g -> g + weight (1 - g) has a jump that depends on the state: its Jacobian term
    a lambda^T dD/dx must enter the backward pass. Finite differences on a non-spiking network check it."""
    sat = eg.UserSynapse(vars={"g": ("-g / tau", "g + weight * (1 - g)")}, inject_current="g",
                         param_vals={"tau": 4.0}, trainable=("tau",))
    net = eg.Network()
    x = net.add_input("x", 3)
    o = net.add_population("o", 2, eg.neurons.LI(tau_mem=6.0, trainable=("tau_mem",)))
    net.connect(x, o, sat, weight=np.random.default_rng(3).uniform(0.1, 0.5, (3, 2)), name="xs")
    sim = BPTTSimulator(net, 1.0, 20.0, "float64", readout=eg.readouts.SumVar("o"))
    batch, labels = _batch(3)
    report = eg.check_gradients(sim, batch, labels)
    assert report.worst < 1e-6, str(report)


# --------------------------------------------------------------------------------- (b) heaviside control
def test_heaviside_surrogate_blocks_everything_upstream_of_spikes():
    """With dH/dg = 0 nothing upstream of a spike learns, but the readout weights and the output's time
    constant (no spike between them and the loss) keep their exact gradient. A nonzero upstream gradient
    would mean a path that bypasses the surrogate; a wrong readout gradient, a broken readout backward."""
    sim = BPTTSimulator(_spiking_net(2), 1.0, 20.0, "float64", readout=eg.readouts.SumVar("o"),
                        surrogate="heaviside")
    batch, labels = _batch(2)
    loss, grads = sim.loss_and_grad(batch, labels)
    assert sim.last_result.spike_counts("h").sum() > 5, "the hidden layer must spike for this test to mean anything"
    for key in ("xh.weight", "xd.weight", "hh.weight", "h.tau_mem", "h.v_thresh", "xh.tau"):
        assert np.all(grads[key] == 0), key
    report = eg.check_gradients(sim, batch, labels, params=["ho.weight", "o.tau_mem", "ho.tau"])
    assert report.worst < 1e-6, str(report)
    assert np.abs(grads["ho.weight"]).max() > 0


# -------------------------------------------------------------------------------------- (c) surrogates
@pytest.mark.parametrize("surrogate,area", [(FastSigmoid(4.0), 2 / 4.0), (ArcTan(3.0), 1.0), (Triangle(2.0), 0.5)])
def test_surrogate_is_the_derivative_of_its_primitive(surrogate, area):
    """derivative() must be d/dg primitive() (central differences away from kinks) and have the stated area
    (integral over R). A mismatch means the backward pass differentiates a different spike function."""
    g = np.array([-0.9, -0.31, -0.05, 0.02, 0.17, 0.6, 1.3])
    h = 1e-6
    fd = (surrogate.primitive(g + h) - surrogate.primitive(g - h)) / (2 * h)
    np.testing.assert_allclose(surrogate.derivative(g), fd, rtol=1e-7, atol=1e-9)
    grid = np.linspace(-2000.0, 2000.0, 4_000_001)
    integral = np.sum(surrogate.derivative(grid)) * (grid[1] - grid[0])
    exact = surrogate.primitive(np.array(1e300 if isinstance(surrogate, Triangle) else 2000.0)) - \
        surrogate.primitive(np.array(-1e300 if isinstance(surrogate, Triangle) else -2000.0))
    assert integral == pytest.approx(exact, rel=1e-5)
    assert area == pytest.approx(exact, rel=2e-3)  # the tails of fast_sigmoid and arctan beyond |g| = 2000


def test_surrogate_formulas_at_known_points():
    """The documented formulas, evaluated by hand: SuperSpike 1/(1 + b|g|)^2, snnTorch's atan
    (a/2)/(1 + (pi a g/2)^2), the triangle max(0, 1 - b|g|) and the exact (zero) derivative."""
    assert FastSigmoid(10.0).derivative(np.array(0.1)) == pytest.approx(0.25)
    assert FastSigmoid(10.0).derivative(np.array(-0.3)) == pytest.approx(1 / 16)
    assert ArcTan(2.0).derivative(np.array(0.0)) == pytest.approx(1.0)
    assert ArcTan(2.0).derivative(np.array(1 / np.pi)) == pytest.approx(0.5)
    np.testing.assert_allclose(Triangle(2.0).derivative(np.array([-0.6, -0.25, 0.0, 0.5])), [0.0, 0.5, 1.0, 0.0])
    np.testing.assert_array_equal(Heaviside().derivative(np.array([-1.0, 0.0, 1.0])), 0.0)
    assert isinstance(get_surrogate("superspike"), FastSigmoid)
    s = ArcTan(5.0)
    assert get_surrogate(s) is s


def test_surrogate_names_and_scales_are_checked():
    """Unknown names must be refused with the list of known ones, non-positive scales with the value."""
    with pytest.raises(ValueError, match=r"unknown surrogate 'sigmoid'; known: \['arctan', 'fast_sigmoid'"):
        get_surrogate("sigmoid")
    with pytest.raises(ValueError, match="scale of the triangle surrogate must be positive"):
        Triangle(0.0)


# ------------------------------------------------------------------------- (d) agreement with EventProp
def test_grid_forward_agrees_with_eventprop_for_inputs_on_grid_times():
    """Inputs on grid times are applied at their exact times, before the readout sample of that time, as in the
    EventProp engine, so the readouts differ only by the integrator error. RK4's amplification factor at
    z = dt/tau = 0.5 (the alpha synapse, tau = 2) differs from exp(-z) by 4e-4 relative per step; summed over the
    decay of a jump (sum_n n eps e^-nz / sum_n e^-nz ~ 2.5 eps) that is ~1e-3 of the readout; the error must
    shrink ~16x per halving of the sub-step (4th order). A delivery one step late would be off by ~dt/tau = 50 %."""
    net = _linear_net(4)
    times = [np.array([0.0, 2.0, 2.0, 5.0, 9.0, 13.0]), np.array([1.0, 3.0, 4.0, 4.0, 11.0, 20.0])]
    units = [np.array([0, 1, 2, 0, 1, 2]), np.array([2, 2, 0, 1, 0, 1])]
    batch = eg.SpikeBatch(times, units)
    exact = eg.Simulator(net, 1.0, 20.0, "float64", readout=eg.readouts.SumVar("o"), jit=False).run(batch).readout
    errors = []
    for substeps in (1, 2, 4):
        sim = eg.Simulator(net, 1.0, 20.0, "float64", readout=eg.readouts.SumVar("o"), method="bptt",
                           substeps=substeps)
        errors.append(np.abs(sim.run(batch).readout - exact).max() / np.abs(exact).max())
    assert errors[0] < 2e-3, errors
    assert errors[0] / errors[1] > 10 and errors[1] / errors[2] > 10, errors


def test_off_grid_inputs_are_delivered_at_the_next_grid_time():
    """The documented convention: a spike at t in (t_(k-1), t_k] is delivered at t_k (exact grid times stay put,
    t = 0 is delivered at t_0)."""
    np.testing.assert_array_equal(grid_index(np.array([0.0, 0.2, 1.0, 1.0000001, 2.5, 3.0]), 1.0),
                                  [0, 1, 1, 2, 3, 3])
    np.testing.assert_array_equal(grid_index(np.array([0.1, 0.2, 0.30000000000000004]), 0.1), [1, 2, 3])
    sim = BPTTSimulator(_linear_net(5), 1.0, 10.0, "float64", readout=eg.readouts.SumVar("o"))
    off = eg.SpikeBatch([np.array([0.3, 2.5, 2.999])], [np.array([0, 1, 2])])
    on = eg.SpikeBatch([np.array([1.0, 3.0, 3.0])], [np.array([0, 1, 2])])
    np.testing.assert_array_equal(sim.run(off).readout, sim.run(on).readout)


def test_decayed_states_hold_no_subnormal_numbers():
    """After a long silence the states decay below float32's smallest normal number; arithmetic on such
    subnormals is 10-100x slower on x86 (it made the SHD backward pass 4x slower), so they must be zero."""
    sim = BPTTSimulator(_linear_net(12), 1.0, 400.0, readout=eg.readouts.SumVar("o"))
    batch = eg.SpikeBatch([np.array([0.0])], [np.array([0])])
    res = sim.run(batch)
    states = np.concatenate([s.ravel() for s in res.trace.states])
    assert np.any(states != 0) and np.all(states[-4:] == 0)
    assert not np.any((states != 0) & (np.abs(states) < np.finfo(np.float32).tiny))


# ------------------------------------------------------------------------------------------------ (e) API
def test_simulator_method_bptt_returns_bptt_simulator_with_the_same_parameters():
    """eg.Simulator(..., method='bptt') must build a BPTTSimulator whose params (keys, order, values, dtype) and
    trainable list are those of the EventProp simulator, so that training code and optimisers carry over."""
    net = _linear_net(6)
    ep = eg.Simulator(net, 1.0, 10.0, readout=eg.readouts.SumVar("o"), jit=False)
    bp = eg.Simulator(net, 1.0, 10.0, readout=eg.readouts.SumVar("o"), method="bptt", surrogate="triangle")
    assert isinstance(bp, BPTTSimulator) and isinstance(bp.surrogate, Triangle)
    assert list(bp.params) == list(ep.params) and bp.trainable == ep.trainable
    for key in ep.params:
        assert bp.params[key].dtype == np.float32 and bp.params[key].shape == ep.params[key].shape
        np.testing.assert_array_equal(bp.params[key], ep.params[key])


def test_method_and_surrogate_arguments_are_checked():
    """Unknown methods, a surrogate with EventProp, unknown surrogates and integrators, and EventProp-only
    positional options must be refused with a message naming the problem."""
    net = _linear_net(7)
    with pytest.raises(ValueError, match="unknown method 'adjoint'; known: 'eventprop'"):
        eg.Simulator(net, 1.0, 10.0, method="adjoint")
    with pytest.raises(ValueError, match="surrogate='arctan' applies only to method='bptt'"):
        eg.Simulator(net, 1.0, 10.0, surrogate="arctan")
    with pytest.raises(ValueError, match="unknown surrogate 'relu'"):
        eg.Simulator(net, 1.0, 10.0, method="bptt", surrogate="relu")
    with pytest.raises(ValueError, match="unknown integrator 'rk45'; known: \\['euler', 'rk4'\\]"):
        eg.Simulator(net, 1.0, 10.0, method="bptt", integrator="rk45")
    with pytest.raises(TypeError, match="pass the options after 'loss' by keyword"):
        eg.Simulator(net, 1.0, 10.0, "float32", None, None, 4, method="bptt")


def test_first_spike_readout_is_refused():
    """Spike times on the grid have no gradient in BPTT: FirstSpikeTime must be refused, not silently zero."""
    with pytest.raises(eg.NetworkError, match="cannot train the FirstSpikeTime readout"):
        BPTTSimulator(_spiking_net(8), 1.0, 10.0, readout=eg.readouts.FirstSpikeTime("o"))
    with pytest.raises(eg.NetworkError, match="spike-count readout of 'o', whose neurons never spike"):
        BPTTSimulator(_spiking_net(8), 1.0, 10.0, readout=eg.readouts.SpikeCount("o"))


def test_jump_not_linear_in_the_weight_is_refused_naming_the_connection():
    """W^T s sums simultaneous spikes only for jumps linear in the weight; others must be refused by name."""
    odd = eg.UserSynapse(vars={"i": ("-i / tau", "i + weight**2")}, inject_current="i", param_vals={"tau": 2.0})
    net = eg.Network()
    x = net.add_input("x", 2)
    o = net.add_population("o", 2, eg.neurons.LI())
    net.connect(x, o, odd, weight=np.ones((2, 2)), name="squared")
    with pytest.raises(eg.ModelError, match="synapse of connection 'squared' into 'o'.*not linear in 'weight'"):
        BPTTSimulator(net, 1.0, 10.0)


def test_result_params_and_regularizer_interface():
    """Spike times lie on the grid and agree with the counts; writing into params changes the next run; a
    regularizer whose derivative has the wrong shape is refused; last_result holds the forward result."""
    sim = BPTTSimulator(_spiking_net(9), 1.0, 20.0, readout=eg.readouts.SumVar("o"))
    batch, labels = _batch(9)
    res = sim.run(batch)
    assert res.readout.shape == (2, 2) and res.readout.dtype == np.float64
    counts = res.spike_counts("h")
    assert counts.shape == (2, 5) and counts.sum() > 0
    for b in range(2):
        times, units = res.spike_times("h", b)
        np.testing.assert_array_equal(times, np.round(times))
        assert np.all(np.diff(times) >= 0) and len(units) == counts[b].sum()
    assert res.spike_counts("o").sum() == 0
    sim.params["ho.weight"] *= 2.0
    assert not np.allclose(sim.run(batch).readout, res.readout)

    class Bad:
        groups = ["h"]

        def penalty(self, counts):
            return 0.0, {"h": np.zeros(3)}

    with pytest.raises(ValueError, match=r"derivative for 'h' has shape \(3,\), expected \(2, 5\)"):
        sim.loss_and_grad(batch, labels, regularizer=Bad())
    sim.loss_and_grad(batch, labels)
    assert sim.last_result is not None and sim.last_result.trace is None
    sim.params["h.tau_mem"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"'h.tau_mem' has shape \(3,\); expected \(\) or \(5,\)"):
        sim.run(batch)


# ------------------------------------------------------------------------------------------ (f) training
def test_a_few_adam_steps_reduce_the_loss():
    """Surrogate gradients must point downhill: ten Adam steps on two samples must lower the loss clearly.
    If not, the gradient has the wrong sign or does not reach the weights."""
    sim = BPTTSimulator(_spiking_net(10), 1.0, 20.0, readout=eg.readouts.SumVar("o"))
    batch, _ = _batch(10)
    labels = np.array([0, 1])
    opt = eg.optim.Adam(sim.params, 0.05, keys=sim.trainable)
    first, _ = sim.loss_and_grad(batch, labels)
    for _ in range(10):
        loss, grads = sim.loss_and_grad(batch, labels)
        opt.step(grads)
    assert sim.loss(batch, labels) < 0.5 * first
