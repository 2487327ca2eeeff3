"""The event-accumulating kernels (linear populations, additive synapses) against finite differences
and against the generic kernels. If these fail, the superposition bookkeeping (end-of-step states,
walks through the step, end-of-step adjoints) is wrong."""

import numpy as np
import pytest
from fd_networks import inputs

import eventgrad as eg

FAST_NEURONS = {
    "LIF": lambda: eg.neurons.LIF(tau_mem=10.0, trainable=("v_thresh", "v_reset")),
    "IF": lambda: eg.neurons.IF(trainable=("v_thresh",)),
    "AdaptiveLIF": lambda: eg.neurons.AdaptiveLIF(tau_mem=10.0, tau_adapt=30.0, trainable=("beta", "v_thresh")),
}
SCALE = {"LIF": 1.0, "IF": 0.15, "AdaptiveLIF": 1.0}


def build(neuron, seed, output_spiking=False):
    rng = np.random.default_rng(seed)
    s = SCALE[neuron]
    net = eg.Network()
    x = net.add_input("x", 4)
    h = net.add_population("h", 6, FAST_NEURONS[neuron]())
    o = net.add_population("o", 3, eg.neurons.LIF(tau_mem=8.0) if output_spiking else eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=s * rng.uniform(0.2, 1.0, (4, 6)), name="xh")
    net.connect(x, h, eg.synapses.Delta(), weight=s * 4.0 * rng.uniform(0.0, 1.0, (4, 6)), name="xh_delta")
    net.connect(h, h, eg.synapses.Exponential(tau=4.0), weight=s * rng.normal(0, 0.3, (6, 6)), name="hh")
    w_out = rng.uniform(0.3, 1.5, (6, 3)) if output_spiking else rng.normal(0, 1.0, (6, 3))
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=w_out, name="ho")
    return net


def sim_for(net, readout=None, **kwargs):
    return eg.Simulator(net, dt=1.0, duration=40.0, dtype=kwargs.pop("dtype", "float64"),
                        readout=readout or eg.readouts.MeanVar("o"), **kwargs)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("neuron", list(FAST_NEURONS))
def test_fast_kernels_give_exact_gradients(neuron, seed):
    sim = sim_for(build(neuron, seed))
    batch, labels = inputs(seed)
    res = sim.run(batch)
    assert sim.kernels_used == "fast", sim.kernel_reason
    assert res.spike_counts("h").sum() > 10
    report = eg.check_gradients(sim, batch, labels, max_entries=6, seed=seed)
    assert report.worst < 1e-5, f"{neuron}, seed {seed}:\n{report}"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("neuron", list(FAST_NEURONS))
def test_fast_and_generic_kernels_agree(neuron, seed):
    """Same network, same inputs: both kernel families must give the same spikes, loss and gradients."""
    net = build(neuron, seed)
    batch, labels = inputs(seed)
    out = []
    for kernels in ("auto", "generic"):
        sim = sim_for(net, kernels=kernels)
        res = sim.run(batch)
        loss, grads = sim.loss_and_grad(batch, labels)
        out.append((sim.kernels_used, res, loss, grads))
    (k_fast, r_fast, l_fast, g_fast), (k_gen, r_gen, l_gen, g_gen) = out
    assert (k_fast, k_gen) == ("fast", "generic")
    for b in range(len(batch)):
        t_f, u_f = r_fast.spike_times("h", b)
        t_g, u_g = r_gen.spike_times("h", b)
        np.testing.assert_array_equal(u_f, u_g)
        np.testing.assert_allclose(t_f, t_g, rtol=0, atol=1e-9)
    np.testing.assert_allclose(r_fast.readout, r_gen.readout, rtol=1e-10, atol=1e-10)
    assert abs(l_fast - l_gen) < 1e-10
    for key in g_fast:
        np.testing.assert_allclose(g_fast[key], g_gen[key], rtol=1e-7, atol=1e-10, err_msg=key)


def build_feed_forward(seed, output_spiking):
    """4 -> 16 LIF -> 3 (LI or LIF), no recurrence, strong input with delta jumps: several hidden spikes per
    step. With LI outputs the hidden layer's spikes reach no spiking population, so the fast kernels keep
    their candidate pool after each of them instead of scanning again (with LIF outputs they do scan)."""
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", 4)
    h = net.add_population("h", 16, eg.neurons.LIF(tau_mem=10.0, trainable=("v_thresh",)))
    o = net.add_population("o", 3, eg.neurons.LIF(tau_mem=8.0) if output_spiking else eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.5, 2.0, (4, 16)), name="xh")
    net.connect(x, h, eg.synapses.Delta(), weight=rng.uniform(0.0, 0.8, (4, 16)), name="xh_delta")
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.1, 0.6, (16, 3)), name="ho")
    return net


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("output_spiking", [False, True])
def test_feed_forward_layers_agree_with_generic_kernels(seed, output_spiking):
    net = build_feed_forward(seed, output_spiking)
    batch, labels = inputs(seed, n_spikes=60)
    out = []
    for kernels in ("auto", "generic"):
        sim = sim_for(net, kernels=kernels)
        res = sim.run(batch)
        out.append((sim.kernels_used, res, *sim.loss_and_grad(batch, labels)))
    (k_fast, r_fast, l_fast, g_fast), (k_gen, r_gen, l_gen, g_gen) = out
    assert (k_fast, k_gen) == ("fast", "generic")
    per_step = [np.bincount(np.floor(r_fast.spike_times("h", b)[0]).astype(int)).max() for b in range(len(batch))]
    assert max(per_step) >= 3, "the check needs steps with several hidden spikes"
    for group in ("h", "o") if output_spiking else ("h",):
        for b in range(len(batch)):
            t_f, u_f = r_fast.spike_times(group, b)
            t_g, u_g = r_gen.spike_times(group, b)
            np.testing.assert_array_equal(u_f, u_g)
            np.testing.assert_allclose(t_f, t_g, rtol=0, atol=1e-9)
    assert abs(l_fast - l_gen) < 1e-10
    for key in g_fast:
        np.testing.assert_allclose(g_fast[key], g_gen[key], rtol=1e-7, atol=1e-10, err_msg=key)


def test_first_spike_time_gradient_on_fast_kernels():
    sim = sim_for(build("LIF", 3, output_spiking=True), readout=eg.readouts.FirstSpikeTime("o", tau0=5.0))
    batch, labels = inputs(3)
    res = sim.run(batch)
    assert sim.kernels_used == "fast" and np.all(res.readout < 40.0)
    report = eg.check_gradients(sim, batch, labels, max_entries=6)
    assert report.worst < 1e-5, str(report)


def test_float32_follows_float64():
    """float32 runs the same algorithm: spike times agree to float32 precision, gradients to ~1e-4."""
    net = build("LIF", 4)
    batch, labels = inputs(4)
    runs = []
    for dtype in ("float32", "float64"):
        sim = sim_for(net, dtype=dtype)
        runs.append((sim.run(batch), sim.loss_and_grad(batch, labels)))
    (r32, (l32, g32)), (r64, (l64, g64)) = runs
    t32, u32 = r32.spike_times("h", 0)
    t64, u64 = r64.spike_times("h", 0)
    np.testing.assert_array_equal(u32, u64)
    np.testing.assert_allclose(t32, t64, atol=1e-3)
    assert abs(l32 - l64) < 1e-4 * max(1.0, abs(l64))
    for key in g64:
        scale = np.abs(g64[key]).max()
        np.testing.assert_allclose(g32[key], g64[key], atol=1e-3 * scale, err_msg=key)


def test_alpha_synapses_fall_back_to_generic_kernels_and_say_why():
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.LIF())
    net.connect(x, h, eg.synapses.Alpha(tau=5.0), weight=np.ones((2, 3)), name="xh")
    sim = eg.Simulator(net, dt=1.0, duration=10.0, dtype="float64", jit=False)
    sim.run(eg.SpikeBatch([[1.0]], [[0]]))
    assert sim.kernels_used == "generic"
    assert "repeated eigenvalues" in sim.kernel_reason


def test_a_step_that_overflows_the_event_log_is_run_again_with_more_room():
    """300 neurons spiking at each of 5 inputs (delta jumps of v over threshold, tau_mem 10 ms): 1,500 spikes
    overflow the first log (1,024 events) in the middle of a step. The sample is run again with more room and
    gives what a run with room from the start gives, gradients included."""
    rng = np.random.default_rng(5)
    net = eg.Network()
    x = net.add_input("x", 1)
    h = net.add_population("h", 300, eg.neurons.LIF(tau_mem=10.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, eg.synapses.Delta(), weight=rng.uniform(11.0, 20.0, (1, 300)), name="xh")
    net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.0, 0.5, (1, 300)), name="xh_exp")
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0, 0.1, (300, 3)), name="ho")
    batch = eg.SpikeBatch([[1.3, 5.7, 9.2, 14.4, 20.1]], [[0, 0, 0, 0, 0]])
    labels = np.array([1])
    runs = []
    for room in (None, 1 << 14):
        sim = sim_for(net)
        if room:
            sim._capacity = room
        runs.append((sim.run(batch), *sim.loss_and_grad(batch, labels), sim._capacity))
    (r_small, l_small, g_small, cap_small), (r_big, l_big, g_big, cap_big) = runs
    assert r_big.spike_counts("h").sum() == 1500
    assert cap_small > 1024, "the first log should have overflowed"
    t_s, u_s = r_small.spike_times("h", 0)
    t_b, u_b = r_big.spike_times("h", 0)
    np.testing.assert_array_equal(u_s, u_b)
    np.testing.assert_array_equal(t_s, t_b)
    np.testing.assert_array_equal(r_small.readout, r_big.readout)
    assert l_small == l_big
    for key in g_big:
        np.testing.assert_array_equal(g_small[key], g_big[key], err_msg=key)


def one_neuron_driven_hard(weight):
    """One LIF neuron (tau_mem 20 ms) behind an exponential synapse (5 ms) with a large weight: up to dozens of
    spikes per 1 ms step after each of three inputs."""
    net = eg.Network()
    x = net.add_input("x", 1)
    o = net.add_population("o", 1, eg.neurons.LIF(tau_mem=20.0))
    net.connect(x, o, eg.synapses.Exponential(tau=5.0), weight=np.array([[weight]]), name="xo")
    return net, eg.SpikeBatch(times=[[0.3, 5.37, 11.1]], units=[[0, 0, 0]])


@pytest.mark.parametrize("excursions", ["exact", "step_end"])
def test_a_neuron_firing_many_times_in_one_step_in_float32(excursions):
    """A spike's time is logged in the working precision, and the neuron's walks after its reset start there:
    in float32 that can be before the float64 crossing. The crossing located before the spike must not be
    found again from there (it was: the same spike twice, or the same spike forever). Against the generic
    kernels in float64 at dt 0.05 ms: the same number of spikes at float32's precision."""
    for weight in (100.0, 1000.0):
        net, batch = one_neuron_driven_hard(weight)
        ref, _ = eg.Simulator(net, dt=0.05, duration=30.0, dtype="float64",
                              kernels="generic").run(batch).spike_times("o", 0)
        sim = eg.Simulator(net, dt=1.0, duration=30.0, dtype="float32", excursions=excursions,
                           max_events=1 << 14)
        t, _ = sim.run(batch).spike_times("o", 0)
        assert sim.kernels_used == "fast"
        assert len(t) == len(ref) > 70
        np.testing.assert_allclose(t, ref, atol=1e-4)


def test_a_sample_that_outgrows_max_events_is_an_error_that_names_it():
    net, batch = one_neuron_driven_hard(1000.0)  # 741 spikes and 3 inputs
    sim = eg.Simulator(net, dt=1.0, duration=30.0, max_events=300)
    with pytest.raises(eg.SimulationError, match="max_events=300"):
        sim.run(batch)
    assert eg.Simulator(net, dt=1.0, duration=30.0, max_events=800).run(batch).spike_counts("o").sum() == 741
    with pytest.raises(ValueError, match="max_events"):
        eg.Simulator(net, dt=1.0, duration=30.0, max_events=0)


@pytest.mark.parametrize("kernels", ["auto", "generic"])
def test_spike_times_are_the_roots_of_the_analytic_trajectory(kernels):
    """One LIF neuron (tau_mem 20 ms) fed through an exponential synapse (5 ms): between spikes its voltage is
    a sum of exponentials known in closed form, v(t) = sum_k w_k K(t - t_k) - sum_s exp(-(t - s) / tau_mem)
    over the inputs k and its own spikes s (each reset subtracts the threshold, 1), with
    K(u) = tau_s / (tau_m - tau_s) (exp(-u / tau_m) - exp(-u / tau_s)). Every spike time must be the root
    located by mpmath at 30 digits, to a few float64 ulps: the root finders stop where the threshold function
    is zero to rounding, and must not stop earlier."""
    import mpmath

    tau_m, tau_s = 20.0, 5.0
    in_t = [0.3, 0.9, 2.47, 2.5, 7.1, 7.65, 11.2, 15.05, 15.3, 22.4]
    in_w = [6.0, 3.5, 4.0, -1.5, 5.5, 2.0, 4.5, 6.0, -2.0, 7.0]
    net = eg.Network()
    x = net.add_input("x", len(in_t))
    h = net.add_population("h", 1, eg.neurons.LIF(tau_mem=tau_m))
    o = net.add_population("o", 1, eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, eg.synapses.Exponential(tau=tau_s), weight=np.array(in_w)[:, None], name="xh")
    net.connect(h, o, eg.synapses.Exponential(tau=tau_s), weight=np.ones((1, 1)), name="ho")
    sim = sim_for(net, kernels=kernels)
    res = sim.run(eg.SpikeBatch([in_t], [list(range(len(in_t)))]))
    assert sim.kernels_used == ("fast" if kernels == "auto" else "generic")
    times, _ = res.spike_times("h", 0)
    assert len(times) >= 4

    mpmath.mp.dps = 30

    def v(t, spikes):
        kernel = sum(w * tau_s / (tau_m - tau_s) * (mpmath.exp(-(t - tk) / tau_m) - mpmath.exp(-(t - tk) / tau_s))
                     for tk, w in zip(in_t, in_w) if tk < t)
        return kernel - sum(mpmath.exp(-(t - s) / tau_m) for s in spikes)

    spikes = []
    for t_found in times:
        # the exact crossing: v - 1 changes sign within a few ulps of the located time (and not before it,
        # on a grid of the previous spike or input to the located time)
        lo, hi = t_found * (1 - 1e-13), t_found * (1 + 1e-13)
        assert v(mpmath.mpf(lo), spikes) < 1 < v(mpmath.mpf(hi), spikes), t_found
        root = mpmath.findroot(lambda t: v(t, spikes) - 1, (lo, hi), solver="anderson")
        assert abs(float(root) - t_found) <= 1e-13 * t_found, (float(root), t_found)
        start = max([s for s in spikes] + [tk for tk in in_t if tk < t_found])
        grid = np.linspace(start, t_found, 200)[1:-1]
        assert all(v(mpmath.mpf(t), spikes) < 1 for t in grid), f"a crossing before {t_found}"
        spikes.append(mpmath.mpf(t_found))


def test_a_crossing_inside_a_step_is_found_in_time_order():
    """An SHD-shaped recurrent layer (700 Poisson inputs, 256 LIF, the benchmark's weights): in the step
    [75, 76] ms neuron 169 crosses at 75.099 and is below threshold again at 76. With excursions="step_end"
    the end-of-step test misses it until a later spike (34's) raises its end-of-step state; the step is then
    simulated again with the neuron watched and a probe event where it was above threshold, so that spikes
    still come out in time order. With excursions="exact" (the default) it is found in its own search. Both
    equal what the generic kernels find on a grid 20 times finer (they test the threshold at every event
    and every grid point)."""
    rng = np.random.default_rng(0)
    times, units = [], []
    for _ in range(4):  # the benchmark's first four samples; the fourth has the late crossing
        n = rng.poisson(10000)
        times.append(np.sort(rng.uniform(0.0, 1000.0, n)))
        units.append(rng.integers(0, 700, n))
    t, u = times[3], units[3]
    batch = eg.SpikeBatch([t[t < 80.0]], [u[t < 80.0]])
    rng = np.random.default_rng(1)
    net = eg.Network()
    x = net.add_input("x", 700)
    h = net.add_population("h", 256, eg.neurons.LIF(tau_mem=20.0))
    o = net.add_population("o", 20, eg.neurons.LI(tau_mem=20.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.02, 0.02, (700, 256)), name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, 0.02, (256, 256)), name="hh")
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, 0.1, (256, 20)), name="ho")
    runs = {}
    for dt, kernels, excursions in ((1.0, "auto", "step_end"), (1.0, "auto", "exact"), (0.05, "generic", "exact")):
        sim = eg.Simulator(net, dt=dt, duration=80.0, dtype="float64", readout=eg.readouts.SumVar("o"),
                           kernels=kernels, excursions=excursions)
        runs[kernels, excursions] = sim.run(batch)
    step_end = runs["auto", "step_end"].records[0].search_stats
    exact = runs["auto", "exact"].records[0].search_stats
    assert step_end[3] == 0 and exact[3] == 0, "a crossing was emitted out of time order"
    assert step_end[6] >= 1, "no step was simulated again: the late crossing this test is about did not occur"
    assert exact[6] == 0, "with excursions='exact' no crossing should be found late"
    t_fine, u_fine = runs["generic", "exact"].spike_times("h", 0)
    assert len(t_fine) > 100
    for excursions in ("step_end", "exact"):
        t_fast, u_fast = runs["auto", excursions].spike_times("h", 0)
        np.testing.assert_array_equal(u_fast, u_fine, err_msg=excursions)
        np.testing.assert_allclose(t_fast, t_fine, rtol=0, atol=1e-9, err_msg=excursions)


@pytest.mark.parametrize("neuron", ["LIF", "AdaptiveLIF"])
def test_an_excursion_above_threshold_within_one_step_is_a_spike(neuron):
    """One neuron (tau_mem 20 ms), one input spike at 0.3 ms through an exponential synapse (5 ms) whose
    weight puts the voltage's peak, at 9.54 ms, 2e-4 above threshold: it is above threshold from about 9.34
    to 9.74 ms, inside the step [9, 10], and below at both of its ends. With excursions="exact" that is a
    spike at the analytic crossing (mpmath, 30 digits), at dt 1 ms and at 0.1 ms alike; with "step_end" it
    is missed. The adaptive LIF has three variables (v, a and the current), so its pieces go through the
    general search for critical points; its adaptation is 0 until its first spike, so the crossing is the
    same."""
    import mpmath

    mpmath.mp.dps = 30
    tau_m, tau_s, t_in = 20.0, 5.0, 0.3
    u_peak = np.log(tau_m / tau_s) * tau_m * tau_s / (tau_m - tau_s)

    def kernel(u):  # the voltage per unit weight, u ms after the input
        return tau_s / (tau_m - tau_s) * (mpmath.exp(-u / tau_m) - mpmath.exp(-u / tau_s))

    w = float(1.0002 / kernel(mpmath.mpf(u_peak)))
    assert kernel(mpmath.mpf(9.0 - t_in)) * w < 1 and kernel(mpmath.mpf(10.0 - t_in)) * w < 1
    root = float(mpmath.findroot(lambda t: w * kernel(t - t_in) - 1, (9.0, t_in + u_peak), solver="anderson"))
    assert 9.0 < root < 9.5
    model = eg.neurons.LIF(tau_mem=tau_m) if neuron == "LIF" else eg.neurons.AdaptiveLIF(tau_mem=tau_m,
                                                                                         tau_adapt=30.0)
    net = eg.Network()
    x = net.add_input("x", 1)
    h = net.add_population("h", 1, model)
    o = net.add_population("o", 1, eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, eg.synapses.Exponential(tau=tau_s), weight=np.array([[w]]), name="xh")
    net.connect(h, o, eg.synapses.Exponential(tau=tau_s), weight=np.ones((1, 1)), name="ho")
    batch = eg.SpikeBatch([[t_in]], [[0]])
    for dt, excursions, expected in ((1.0, "exact", [root]), (0.1, "exact", [root]), (1.0, "step_end", [])):
        sim = eg.Simulator(net, dt=dt, duration=20.0, dtype="float64", readout=eg.readouts.SumVar("o"),
                           excursions=excursions)
        times, _ = sim.run(batch).spike_times("h", 0)
        assert sim.kernels_used == "fast", sim.kernel_reason
        np.testing.assert_allclose(times, expected, rtol=1e-12, err_msg=f"dt {dt}, {excursions}")


def test_the_zeros_of_a_sum_of_exponentials_are_all_found():
    """The fast kernels' search for critical points (exp_sum_zeros) against a fine grid: sums of two to
    four exponentials built to have up to three zeros in the interval, and random ones."""
    sim = sim_for(build("LIF", 0))
    zeros_of = sim.layout.engine.exp_sum_zeros
    rng = np.random.default_rng(3)
    grid = np.linspace(0.0, 2.0, 200001)
    found_some = 0
    for trial in range(60):
        d = 2 + trial % 3
        mu = -np.sort(rng.uniform(0.05, 4.0, d))
        if trial % 2:  # a product of (e^{-s} - e^{-z}) factors has zeros at z (one fewer than terms)
            r = np.poly(np.exp(-rng.uniform(0.1, 1.9, d - 1)))  # in powers of e^{-s}, the highest first
            mu = -np.arange(d - 1, -1, -1, dtype=float)
        else:
            r = rng.normal(0.0, 1.0, d)
        work = [np.empty((d, d)) for _ in range(3)]
        n = zeros_of(r, mu, d, 2.0, *work, np.empty(d, np.int64))
        h = (r[None, :] * np.exp(np.outer(grid, mu))).sum(axis=1)
        flips = np.nonzero(np.sign(h[:-1]) * np.sign(h[1:]) < 0)[0]
        assert n == len(flips), (r, mu)
        np.testing.assert_allclose(work[2][0, :n], grid[flips], atol=2e-5)
        found_some += n
    assert found_some > 30
