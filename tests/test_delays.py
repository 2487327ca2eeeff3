"""Transmission delays: exact arrival times, exact delay gradients, and the step-parallel kernels.

A spike of pre i at t must reach post j at exactly t + delay[i, j]: a delayed input equals the same input
shifted in time; none is lost in flight or past the trial's end. The delay gradient is checked against
central finite differences (float64), on both kernel families, and the step-parallel kernels must give the
generic kernels' spikes, readouts and gradients to rounding.
"""

import numpy as np
import pytest
import sympy

import eventgrad as eg
from eventgrad.adjoint.derive import derive_adjoint
from eventgrad.adjoint.system import build_population_system
from eventgrad.network import NetworkError

N_IN, N_HID, N_OUT = 4, 6, 3
DURATION = 40.0


def linear_net(seed, hh_delay=1.5, xh_delay=None, ho_delay=None, xa_delay=2.3, learn=True, alpha=True):
    """LIF hidden layer with an exponential (per-synapse delays) and an alpha (one delay) input connection, a
    recurrent connection with one delay, and per-synapse delays to a leaky-integrator output. The kernels'
    source does not depend on the delays' values: every variant shares one compiled module. The alpha
    synapse's two variables share one rate (a repeated eigenvalue), which only the generic kernels take:
    ``alpha=False`` puts a second exponential synapse (tau 2 ms) in its place."""
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", N_IN)
    h = net.add_population("h", N_HID, eg.neurons.LIF(tau_mem=10.0, trainable=("v_thresh",)))
    o = net.add_population("o", N_OUT, eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.2, 1.0, (N_IN, N_HID)), name="xh",
                delay=rng.uniform(0.0, 6.0, (N_IN, N_HID)) if xh_delay is None else xh_delay, learn_delay=learn)
    second = eg.synapses.Alpha(tau=3.0) if alpha else eg.synapses.Exponential(tau=2.0)
    net.connect(x, h, second, weight=rng.uniform(0.2, 1.5, (N_IN, N_HID)), name="xa",
                delay=xa_delay, learn_delay=learn)
    net.connect(h, h, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0.0, 0.6, (N_HID, N_HID)), name="hh",
                delay=hh_delay, learn_delay=learn)
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0.0, 1.0, (N_HID, N_OUT)), name="ho",
                delay=rng.uniform(0.0, 4.0, (N_HID, N_OUT)) if ho_delay is None else ho_delay, learn_delay=learn)
    return net


def inputs(seed, n_samples=2, n_spikes=24):
    rng = np.random.default_rng(seed + 1000)
    times = [np.sort(rng.uniform(0.0, 30.0, n_spikes)) for _ in range(n_samples)]
    units = [rng.integers(0, N_IN, n_spikes) for _ in range(n_samples)]
    return eg.SpikeBatch(times, units), rng.integers(0, N_OUT, n_samples)


def simulator(net, kernels, dtype="float64", dt=1.0):
    return eg.Simulator(net, dt=dt, duration=DURATION, dtype=dtype, readout=eg.readouts.MeanVar("o"),
                        kernels=kernels)


@pytest.mark.parametrize("kernels", ["generic", "step"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delay_gradients_match_finite_differences(kernels, seed):
    """Per-synapse and per-connection delays on input, recurrent and output connections, exponential and
    alpha synapses: every delay, weight and the threshold against central differences."""
    sim = simulator(linear_net(seed, alpha=kernels == "generic"), kernels)
    batch, labels = inputs(seed)
    assert sim.run(batch).spike_counts("h").sum() > 10
    assert sim.kernels_used == kernels
    # eps 1e-7: with the alpha synapse, seed 2's threshold sits within 1e-6 (relative) of a spike appearing,
    # where the difference quotient measures that jump (2e-2 at 1e-5, 1e-5 at 1e-6, 1e-7 at 1e-7)
    report = eg.check_gradients(sim, batch, labels, max_entries=6, seed=seed, eps=1e-7)
    assert set(report.errors) >= {"xh.delay", "xa.delay", "hh.delay", "ho.delay"}
    assert report.worst < 1e-5, f"{kernels}, seed {seed}:\n{report}"


@pytest.mark.parametrize("kernels", ["generic", "step"])
def test_per_synapse_recurrent_delay_gradients_match_finite_differences(kernels):
    """A delay per synapse on the recurrent connection too (between one and eight steps: on the step kernels
    a population's spikes reach its own ring, and their arrivals' time shifts join their adjoint jumps)."""
    hh = np.random.default_rng(11).uniform(1.0, 8.0, (N_HID, N_HID))
    sim = simulator(linear_net(4, hh_delay=hh, alpha=False), kernels)
    batch, labels = inputs(4)
    assert sim.run(batch).spike_counts("h").sum() > 10
    assert sim.kernels_used == kernels
    report = eg.check_gradients(sim, batch, labels, max_entries=6, seed=4, eps=1e-7)
    assert set(report.errors) >= {"xh.delay", "hh.delay", "ho.delay", "hh.weight"}
    assert report.worst < 1e-5, f"{kernels}:\n{report}"


def test_nonlinear_neuron_delay_gradients_converge_with_dt():
    """A QIF hidden layer (generic kernels, RK4) with delays on its input and recurrent connections and a
    trainable time constant: the error shrinks with dt, as for the other gradients of nonlinear models."""
    rng = np.random.default_rng(5)
    net = eg.Network()
    x = net.add_input("x", N_IN)
    h = net.add_population("h", N_HID, eg.neurons.QIF(tau_mem=10.0, trainable=("tau_mem",)))
    o = net.add_population("o", N_OUT, eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=1.2 * rng.uniform(0.2, 1.0, (N_IN, N_HID)), name="xh",
                delay=rng.uniform(0.0, 5.0, (N_IN, N_HID)), learn_delay=True)
    net.connect(h, h, eg.synapses.Alpha(tau=3.0), weight=rng.normal(0.0, 0.5, (N_HID, N_HID)), name="hh", delay=2.0,
                learn_delay=True)
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0.0, 1.0, (N_HID, N_OUT)), name="ho")
    batch, labels = inputs(5)
    worst = []
    for dt in (1.0, 0.25):
        sim = simulator(net, "auto", dt=dt)
        assert sim.kernels_used == "generic" and "nonlinear" in sim.kernel_reason
        assert sim.run(batch).spike_counts("h").sum() > 10
        report = eg.check_gradients(sim, batch, labels, max_entries=6, seed=5)
        worst.append(max(report.errors["xh.delay"], report.errors["hh.delay"]))
    assert worst[1] < worst[0] and worst[1] < 1e-3, worst


def assert_step_kernels_agree_with_generic(net, batch, labels, dt=1.0):
    """The kernels "auto" picks are the step kernels, and they give the generic kernels' spikes of 'h',
    readouts and gradients to rounding. Both families locate a crossing to 64 eps (their root finders
    differ: safeguarded Newton steps, against a cubic guess and Halley steps); their spike times agreed to
    1e-13 ms on these networks, the tolerance leaves a hundredfold margin."""
    generic, step = simulator(net, "generic", dt=dt), simulator(net, "auto", dt=dt)
    res_g, res_s = generic.run(batch), step.run(batch)
    assert step.kernels_used == "step" and step.kernel_reason is None
    for b in range(2):
        tg, ug = res_g.spike_times("h", b)
        ts, us = res_s.spike_times("h", b)
        assert len(tg) > 5 and np.array_equal(ug, us)
        np.testing.assert_allclose(ts, tg, rtol=0, atol=1e-11)
    np.testing.assert_allclose(res_s.readout, res_g.readout, rtol=1e-10, atol=1e-12)
    _, grads_g = generic.loss_and_grad(batch, labels)
    _, grads_s = step.loss_and_grad(batch, labels)
    for key, g in grads_g.items():
        np.testing.assert_allclose(grads_s[key], g, rtol=1e-8, atol=1e-10 * np.abs(g).max(), err_msg=key)


@pytest.mark.parametrize("hh_delay", [1.0, 12.5, "per synapse"])
def test_step_kernels_agree_with_generic_kernels(hh_delay):
    """A recurrent delay of exactly one step, one long enough to keep many spikes in flight, and one per
    synapse (between one and eight steps: a population's spikes reach its own ring, taken the step after
    they are sent): the two kernel families (a heap of arrivals against a ring of steps ahead) give the
    same spikes, readouts and gradients to rounding."""
    if hh_delay == "per synapse":
        hh_delay = np.random.default_rng(7).uniform(1.0, 8.0, (N_HID, N_HID))
    net = linear_net(3, hh_delay=hh_delay, alpha=False)
    batch, labels = inputs(3, n_spikes=40)
    assert_step_kernels_agree_with_generic(net, batch, labels)


def two_mode_net(seed, per_synapse):
    """Like linear_net, but the hidden LIF neurons have one synapse type (two modes: the SHD network's
    neurons, which the step kernels walk with loops of their own: a turning point in closed form, and,
    where no connection into them has a delay per synapse, all candidates' pieces cleared in lockstep),
    per-synapse delays on the output connection, and on the input and recurrent ones if ``per_synapse``."""
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", N_IN)
    h = net.add_population("h", N_HID, eg.neurons.LIF(tau_mem=10.0, trainable=("v_thresh",)))
    o = net.add_population("o", N_OUT, eg.neurons.LI(tau_mem=15.0))
    syn = eg.synapses.Exponential(tau=4.0)
    xh_delay = rng.uniform(0.0, 6.0, (N_IN, N_HID)) if per_synapse else 2.5
    hh_delay = rng.uniform(1.0, 8.0, (N_HID, N_HID)) if per_synapse else 1.0
    net.connect(x, h, syn, weight=rng.uniform(0.3, 1.6, (N_IN, N_HID)), name="xh", delay=xh_delay, learn_delay=True)
    net.connect(h, h, syn, weight=rng.normal(0.0, 0.6, (N_HID, N_HID)), name="hh", delay=hh_delay, learn_delay=True)
    net.connect(h, o, syn, weight=rng.normal(0.0, 1.0, (N_HID, N_OUT)), name="ho",
                delay=rng.uniform(0.0, 4.0, (N_HID, N_OUT)), learn_delay=True)
    return net


@pytest.mark.parametrize("per_synapse", [False, True], ids=["one delay per connection", "delays per synapse"])
def test_step_kernels_agree_with_generic_kernels_on_two_mode_neurons(per_synapse):
    """Hidden neurons whose threshold function is a sum of two exponentials (LIF, one exponential synapse):
    the step kernels give the generic kernels' spikes, readouts and gradients to rounding."""
    net = two_mode_net(6, per_synapse)
    batch, labels = inputs(6, n_spikes=40)
    assert_step_kernels_agree_with_generic(net, batch, labels)


@pytest.mark.parametrize("dt", [1.0, 0.1])
def test_step_kernels_agree_with_generic_kernels_on_delays_of_whole_steps(dt):
    """Per-synapse delays of whole steps (and 0), with a dt of 1 ms and one that is no binary fraction: the
    step kernels factor each arrival's exponentials by the delay's whole steps K = floor(d / dt) (computed
    alike by the kernels and by the table of exp(-mu (d - K dt)) they read), which is where such delays sit
    on the edge; the generic kernels take the exponentials directly. Same spikes, readouts and gradients."""
    rng = np.random.default_rng(11)
    net = linear_net(5, hh_delay=np.round(rng.integers(1, 9, (N_HID, N_HID)) * dt, 10),
                     xh_delay=np.round(rng.integers(0, 7, (N_IN, N_HID)) * dt, 10),
                     ho_delay=np.round(rng.integers(0, 5, (N_HID, N_OUT)) * dt, 10), alpha=False)
    batch, labels = inputs(5, n_spikes=40)
    assert_step_kernels_agree_with_generic(net, batch, labels, dt)


def test_a_runaway_network_on_the_step_kernels_stops_at_the_spike_budget():
    """Input weights x1e4 make 'h' fire as fast as its reset allows: the step-parallel kernels stop at the
    first step past the spike budget with an error naming the population, instead of filling the log."""
    net = linear_net(4, alpha=False)
    sim = simulator(net, "step")
    batch, _ = inputs(4)
    for key in ("xh.weight", "xa.weight"):
        sim.params[key] = sim.params[key] * 1e4
    with pytest.raises(eg.SimulationError, match=r"population 'h' \(neuron \d\) fires at a runaway rate: the step "
                                                 r"\[\d+, \d+\) ms holds more than max_spikes_per_step=384 spikes"):
        sim.run(batch)


def test_the_step_kernels_arrival_lists_are_sized_by_what_a_step_can_deliver_not_the_trial_length():
    """The step-parallel forward pass lists one step's row arrivals into a population: the room the simulator
    asks for (doubled when a step fills it), or less where the sources of the connections' windows of steps
    cannot send more (inputs counted, spikes at most the budget per step), the same for a trial of 40 steps
    as for one of 4,000 at the same input rate; a neuron's own single-synapse arrivals in a step, one per
    source of the windows. The pool of pending single-synapse arrivals holds what can be in flight: every
    target of the inputs of a window, and of the spikes of one (those capped by the room); the ring spans
    the longest window. A simulator whose room is too small runs the sample again with more and gets the
    same result."""
    sim = simulator(linear_net(0, alpha=False), "step")
    step = sim._step_tables(sim._flat_params())
    GI, CI, budget = sim.layout.GI, sim.layout.CI, 384
    rooms = []
    for n_steps in (40, 4000):
        in_first = np.arange(n_steps + 1, dtype=np.int64)  # one input spike per step
        rooms.append(sim.layout.engine.arrival_room(GI, CI, step.CS, *step.incoming, in_first, n_steps, budget,
                                                    10**9))
    assert rooms[0] == rooms[1]
    windows = {c: step.CS[c, 2] for c in range(len(CI))}
    # h: the one-delay input (one row per step of its window) and the recurrent connection (at most the budget of
    # spikes per step of its window); the per-synapse input: a row of targets per input of its window
    assert rooms[0][0] == (windows[1] + 1) + (windows[2] + 1) * budget
    assert rooms[0][1] == max(windows[0] + 1, (windows[3] + 1) * budget)  # per target neuron and step
    assert rooms[0][2] == (windows[0] + 1) * N_HID + (windows[3] + 1) * budget * N_OUT
    assert rooms[0][3] == max(windows[0], windows[3]) + 1
    assert sim.layout.engine.arrival_room(GI, CI, step.CS, *step.incoming, np.arange(41, dtype=np.int64), 40, budget,
                                          100) == (100, rooms[0][1], (windows[0] + 1) * N_HID + 100, rooms[0][3])
    batch, labels = inputs(0)
    expected = sim.loss_and_grad(batch, labels)
    small = simulator(linear_net(0, alpha=False), "step")
    small._arrival_room = 1
    got = small.loss_and_grad(batch, labels)
    assert small._arrival_room > 1 and got[0] == expected[0]
    for key in expected[1]:
        np.testing.assert_array_equal(got[1][key], expected[1][key])


@pytest.mark.parametrize("kernels", ["generic", "step"])
@pytest.mark.parametrize("per_synapse", [False, True])
def test_a_delayed_input_is_the_input_shifted_in_time(kernels, per_synapse):
    """Delay D on the input connections equals the inputs shifted by D: none lost while many are in flight
    on one synapse (a burst of 30 spikes of unit 0 within D), none early, and those that would arrive after
    the trial never arrive."""
    D = 7.3
    burst = np.linspace(1.0, 6.0, 30)
    late = np.array([DURATION - 3.0, DURATION - 1.0])  # arrive after the trial's end
    other = np.array([3.3, 11.0, 17.5, 24.2])
    times = np.concatenate([burst, other, late])
    units = np.concatenate([np.zeros(30, int), [1, 2, 3, 1], [2, 3]])
    order = np.argsort(times, kind="stable")
    delayed = eg.SpikeBatch([times[order]], [units[order]])
    keep = times[order] + D <= DURATION
    shifted = eg.SpikeBatch([times[order][keep] + D], [units[order][keep]])
    delay = np.full((N_IN, N_HID), D) if per_synapse else D
    alpha = kernels == "generic"
    with_delay = simulator(linear_net(4, xh_delay=delay, xa_delay=D, learn=False, alpha=alpha), kernels)
    without = simulator(linear_net(4, xh_delay=np.zeros((N_IN, N_HID)) if per_synapse else 0.0, xa_delay=0.0,
                                   learn=False, alpha=alpha), kernels)
    res_d, res_s = with_delay.run(delayed), without.run(shifted)
    assert res_d.spike_counts("h").sum() > 3
    for b in range(1):
        np.testing.assert_allclose(res_d.spike_times("h", b)[0], res_s.spike_times("h", b)[0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res_d.readout, res_s.readout, rtol=1e-9, atol=1e-12)


def test_delay_gradient_is_derived_from_the_jump():
    """dL/d(delay) = lambda+ . (dR/dx F(x-) - F(R(x-))); for a current jump onto a LIF neuron that is the
    change of F across the jump, lambda . (F- - F+), as the design notes state it."""
    system = build_population_system("h", eg.neurons.LIF(), [("xh", eg.synapses.Exponential())])
    adj = derive_adjoint(system)
    conn = system.incoming[0]
    lam = sympy.Matrix(adj.lam)
    F_after = system.rhs.xreplace(dict(zip(system.state, conn.jump)))
    expected = (lam.T * (system.rhs - F_after))[0, 0]
    assert sympy.simplify(adj.connections[0].delay_grad - expected) == 0


def test_delays_live_in_params_and_are_checked_before_running():
    sim = simulator(linear_net(0, alpha=False), "auto")
    assert sim.params["hh.delay"].shape == () and sim.params["xh.delay"].shape == (N_IN, N_HID)
    assert {"xh.delay", "xa.delay", "hh.delay", "ho.delay"} <= set(sim.trainable)
    batch, _ = inputs(0)
    for bad, match in ((-0.5, "negative"), (np.nan, "NaN"), (np.inf, "infinite")):
        sim.params["hh.delay"] = np.array(bad)
        with pytest.raises(ValueError, match=match):
            sim.run(batch)
    sim.params["hh.delay"] = np.array(1.5)
    sim.params["xh.delay"] = np.zeros((N_HID, N_IN))
    with pytest.raises(ValueError, match=r"'xh.delay' has shape \(6, 4\), expected \(4, 6\)"):
        sim.run(batch)


@pytest.mark.parametrize("delay, match", [
    (-1.0, "negative"), (np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"),
    (np.ones((2, 2)), r"shape \(2, 2\), expected a scalar or \(pre, post\)"), ("1 ms", "a number"),
    (1 + 2j, "complex|real number"),
])
def test_bad_delays_are_refused_by_name(delay, match):
    net = eg.Network()
    x = net.add_input("x", 3)
    h = net.add_population("h", 4, eg.neurons.LIF())
    with pytest.raises(NetworkError, match=f"connection 'xh'.*({match})"):
        net.connect(x, h, eg.synapses.Exponential(), weight=np.ones((3, 4)), name="xh", delay=delay)


def test_learn_delay_is_refused_where_the_gradient_cannot_exist():
    net = eg.Network()
    x = net.add_input("x", 3)
    h = net.add_population("h", 4, eg.neurons.LIF())
    with pytest.raises(NetworkError, match="learn_delay=True needs a delay"):
        net.connect(x, h, eg.synapses.Exponential(), weight=np.ones((3, 4)), name="a", learn_delay=True)
    with pytest.raises(NetworkError, match="fire the target at that very instant"):
        net.connect(x, h, eg.synapses.Delta(), weight=np.ones((3, 4)), name="b", delay=1.0, learn_delay=True)
    net.connect(x, h, eg.synapses.Delta(), weight=np.ones((3, 4)), name="c", delay=1.0)  # a fixed delay is fine


def test_step_kernels_refuse_a_loop_without_delay():
    net = linear_net(0, hh_delay=None, learn=False, alpha=False)
    with pytest.raises(NetworkError, match=r"\['hh'\] close a loop"):
        simulator(net, "step")
    net = linear_net(0, hh_delay=0.5, learn=False, alpha=False)  # below dt: back within its own step
    with pytest.raises(NetworkError, match=r"\['hh'\] close a loop"):
        simulator(net, "step")
    sim = simulator(net, "auto")  # the general path takes it
    sim.run(inputs(0)[0])
    assert sim.kernels_used == "generic" and "close a loop" in sim.kernel_reason


def test_bptt_refuses_to_learn_delays_by_name():
    match = r"method='bptt' cannot learn delays \(connections \['xh', 'xa', 'hh', 'ho'\]"
    with pytest.raises(NetworkError, match=match):
        eg.Simulator(linear_net(0), dt=1.0, duration=DURATION, method="bptt")


def bptt_net(seed):
    """Delays in whole and fractional steps, per synapse and per connection, into and out of a recurrent
    LIF layer; weights and the hidden time constant trainable (delays are fixed on the grid)."""
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", N_IN)
    h = net.add_population("h", N_HID, eg.neurons.LIF(tau_mem=10.0, trainable=("tau_mem",)))
    o = net.add_population("o", N_OUT, eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.2, 1.0, (N_IN, N_HID)), name="xh",
                delay=rng.uniform(0.0, 4.0, (N_IN, N_HID)))
    net.connect(h, h, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0.0, 0.6, (N_HID, N_HID)), name="hh",
                delay=2.5)
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0.0, 1.0, (N_HID, N_OUT)), name="ho",
                delay=rng.uniform(0.0, 3.0, (N_HID, N_OUT)))
    return net


def test_bptt_with_delays_is_the_derivative_of_the_smoothed_network():
    """BPTT on the grid with delays (rounded up to whole steps): with the forward spike replaced by the
    surrogate's primitive, its gradient must be the exact gradient of that smooth network, so a spike's
    cotangent has to reach the step the spike was sent at, through every delay."""
    sim = eg.Simulator(bptt_net(6), dt=1.0, duration=DURATION, dtype="float64", readout=eg.readouts.SumVar("o"),
                       method="bptt", surrogate="fast_sigmoid")
    sim._forward_spike = sim.surrogate.primitive
    batch, labels = inputs(6)
    _, grads = sim.loss_and_grad(batch, labels)
    assert "hh.delay" in sim.params and "hh.delay" not in grads
    for key in ("xh.weight", "hh.weight", "ho.weight", "h.tau_mem"):
        value = sim.params[key].reshape(-1)
        for i in range(0, value.size, max(1, value.size // 5)):
            original = value[i]
            step = 1e-6 * max(1.0, abs(original))
            value[i] = original + step
            plus = sim.loss(batch, labels)
            value[i] = original - step
            minus = sim.loss(batch, labels)
            value[i] = original
            fd = (plus - minus) / (2 * step)
            g = np.asarray(grads[key]).reshape(-1)[i] if np.ndim(grads[key]) else float(grads[key])
            assert g == pytest.approx(fd, rel=1e-5, abs=1e-9 * np.abs(grads[key]).max()), (key, i)


def test_bptt_delays_round_up_to_whole_steps():
    """On the grid an input spike is delivered at the first grid time at or after it; a delay adds
    ceil(delay / dt) steps: 7.0 ms and 6.2 ms both arrive as the inputs shifted by 7 ms do."""
    batch, _ = inputs(7)
    shifted = eg.SpikeBatch([t + 7.0 for t in batch.times], batch.units)
    runs = []
    for delay, data in ((7.0, batch), (6.2, batch), (None, shifted)):
        net = eg.Network()
        x = net.add_input("x", N_IN)
        h = net.add_population("h", N_HID, eg.neurons.LIF(tau_mem=10.0))
        net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=np.full((N_IN, N_HID), 0.8), name="xh", delay=delay)
        sim = eg.Simulator(net, dt=1.0, duration=DURATION, dtype="float64", readout=eg.readouts.SumVar("h"),
                           method="bptt")
        runs.append(sim.run(data).readout)
    np.testing.assert_array_equal(runs[0], runs[2])
    np.testing.assert_array_equal(runs[1], runs[2])


def test_configurations_set_a_recurrent_delay():
    from eventgrad.config import resolve
    from eventgrad.experiment import build_network

    cfg = resolve({"model": {"recurrent": True, "recurrent_delay": 1.0, "hidden": [8]}})
    net = build_network(cfg, 5, 3, np.random.default_rng(0))
    hh = next(c for c in net.connections if c.name == "hh")
    assert float(hh.delay) == 1.0 and not hh.learn_delay
    assert all(c.delay is None for c in net.connections if c.name != "hh")
    negative = resolve({"model": {"recurrent": True, "recurrent_delay": -1.0}})
    with pytest.raises(NetworkError, match="connection 'hh': delay contains negative"):
        build_network(negative, 5, 3, np.random.default_rng(0))


def test_graded_events_keep_their_value_through_a_delay():
    """A graded input event's value multiplies its weights when it arrives, however late: both kernel
    families agree, and doubling every value doubles the delayed drive of a leaky integrator."""
    batch, labels = inputs(8)
    rng = np.random.default_rng(8)
    values = [rng.uniform(-1.0, 2.0, len(t)) for t in batch.times]
    graded = eg.SpikeBatch(batch.times, batch.units, values)
    net = linear_net(8, alpha=False)
    res = {k: simulator(net, k).run(graded) for k in ("generic", "step")}
    np.testing.assert_allclose(res["step"].readout, res["generic"].readout, rtol=1e-10, atol=1e-12)
    _, g_generic = simulator(net, "generic").loss_and_grad(graded, labels)
    _, g_step = simulator(net, "step").loss_and_grad(graded, labels)
    for key, g in g_generic.items():
        np.testing.assert_allclose(g_step[key], g, rtol=1e-8, atol=1e-10 * np.abs(g).max(), err_msg=key)
    lin = eg.Network()
    x = lin.add_input("x", N_IN)
    o = lin.add_population("o", N_OUT, eg.neurons.LI(tau_mem=15.0))
    lin.connect(x, o, eg.synapses.Exponential(tau=4.0), weight=np.ones((N_IN, N_OUT)), name="xo",
                delay=rng.uniform(0.0, 9.0, (N_IN, N_OUT)))
    sim = eg.Simulator(lin, dt=1.0, duration=DURATION, dtype="float64", readout=eg.readouts.MeanVar("o"))
    once = sim.run(graded).readout
    twice = sim.run(eg.SpikeBatch(batch.times, batch.units, [2 * v for v in values])).readout
    assert sim.kernels_used == "step"
    np.testing.assert_allclose(twice, 2 * once, rtol=1e-12)


@pytest.mark.parametrize("kernels", ["generic", "step"])
def test_spike_time_terms_through_delays_match_finite_differences(kernels):
    """The two other ways a loss reaches spike times, with delays: a loss linear in the hidden spike times
    (the regulariser's path) and a first-spike readout of the hidden layer, each against central
    differences. On the generic kernels the output delays' gradient is exactly 0 with a hidden readout, and
    moving them only cuts the hidden layer's pieces elsewhere (rounding), so they are left out there."""
    from test_training import SpikeTimeLoss

    net = linear_net(3, alpha=False)
    batch, labels = inputs(3)
    sim = simulator(net, kernels)
    reg = SpikeTimeLoss(np.random.default_rng(0).normal(0.0, 1.0, (2, N_HID)))
    report = eg.check_gradients(sim, batch, labels, regularizer=reg, max_entries=5, eps=1e-7)
    assert report.worst < 1e-5, str(report)
    first = eg.Simulator(net, dt=1.0, duration=DURATION, dtype="float64", readout=eg.readouts.FirstSpikeTime("h"),
                         loss=eg.losses.FirstSpikeCrossEntropy(tau0=5.0, tau1=10.0, alpha=1e-3), kernels=kernels)
    keys = [k for k in first.trainable if not (kernels == "generic" and k.startswith("ho."))]
    report = eg.check_gradients(first, batch, np.array([0, 1]), params=keys, max_entries=5, eps=1e-7)
    assert report.worst < 1e-5, str(report)
