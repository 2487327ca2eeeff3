"""EventProp gradients against central finite differences of the forward loss, in float64.

Every built-in neuron model, with every built-in synapse type feeding it and a recurrent hidden layer,
with every model parameter trainable. If these fail, the derived adjoint (or the engine applying it)
is wrong for that model: the exact gradient of the simulated loss is what EventProp promises.
"""

import numpy as np
import pytest
from fd_networks import NEURONS, build, inputs

import eventgrad as eg

LINEAR = [name for name, spec in NEURONS.items() if spec[3]]
NONLINEAR = [name for name, spec in NEURONS.items() if not spec[3]]


def _check(neuron, seed, dt, readout=None, loss=None, labels=None):
    net = build(neuron, seed)
    sim = eg.Simulator(net, dt=dt, duration=40.0, dtype="float64", readout=readout or eg.readouts.MeanVar("o"),
                       loss=loss)
    batch, default_labels = inputs(seed)
    res = sim.run(batch)
    counts = res.spike_counts("h")
    assert counts.sum() > 10, f"{neuron}: too few hidden spikes ({counts.sum()}) for a meaningful check"
    return eg.check_gradients(sim, batch, default_labels if labels is None else labels, max_entries=6, seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("neuron", LINEAR)
def test_linear_model_gradients_are_exact_at_dt_1(neuron, seed):
    report = _check(neuron, seed, dt=1.0)
    assert report.worst < 1e-5, f"{neuron}, seed {seed}:\n{report}"


@pytest.mark.parametrize("neuron", NONLINEAR)
def test_nonlinear_model_gradient_error_shrinks_with_dt(neuron):
    worst = [_check(neuron, 0, dt=dt).worst for dt in (1.0, 0.5, 0.25)]
    assert worst[2] < worst[0], f"{neuron}: error does not shrink with dt: {worst}"
    assert worst[2] < 1e-3, f"{neuron}: error {worst[2]:.2e} at dt = 0.25 ms"


READOUTS = {
    "sum": eg.readouts.SumVar("o"),
    "mean": eg.readouts.MeanVar("o"),
    "exp_weighted_mean": eg.readouts.ExpWeightedMeanVar("o"),
    "max": eg.readouts.MaxVar("o"),
}


@pytest.mark.parametrize("name", list(READOUTS))
def test_state_readouts_have_exact_gradients(name):
    report = _check("LIF", 3, dt=1.0, readout=READOUTS[name])
    assert report.worst < 1e-5, f"readout {name}:\n{report}"


def test_mean_squared_error_gradient_is_exact():
    targets = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    report = _check("LIF", 4, dt=1.0, readout=eg.readouts.MeanVar("o"), loss=eg.losses.MeanSquaredError(),
                    labels=targets)
    assert report.worst < 1e-5, str(report)


def _first_spike_network(seed, tau_mem=10.0):
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", 4)
    h = net.add_population("h", 6, eg.neurons.LIF(tau_mem=tau_mem, trainable=("tau_mem", "v_thresh")))
    o = net.add_population("o", 3, eg.neurons.LIF(tau_mem=10.0, trainable=("tau_mem",)))
    net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.5, 1.5, (4, 6)), name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0, 0.3, (6, 6)), name="hh")
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.2, 1.2, (6, 3)), name="ho")
    return net


@pytest.mark.parametrize("seed", [0, 1])
def test_first_spike_time_loss_gradient_is_exact(seed):
    """The loss on -t_first/tau0 differentiates spike times themselves (the dl/dt_k term of the jump)."""
    sim = eg.Simulator(_first_spike_network(seed), dt=1.0, duration=40.0, dtype="float64",
                       readout=eg.readouts.FirstSpikeTime("o", tau0=5.0))
    batch, labels = inputs(seed)
    res = sim.run(batch)
    assert np.all(res.readout < 40.0), "every output neuron should spike for this check"
    report = eg.check_gradients(sim, batch, labels, max_entries=6)
    assert report.worst < 1e-5, str(report)


def test_plain_python_kernels_agree_with_numba():
    """The generated source runs unchanged as plain Python; both must give the same numbers."""
    net = _first_spike_network(5)
    batch, labels = inputs(5, n_samples=1, duration=20.0)
    kwargs = dict(dt=1.0, duration=20.0, dtype="float64", readout=eg.readouts.SumVar("o"))
    results = []
    for jit in (True, False):
        sim = eg.Simulator(net, jit=jit, **kwargs)
        res = sim.run(batch)
        loss, grads = sim.loss_and_grad(batch, labels)
        results.append((res.spike_times("h", 0)[0], loss, grads))
    (t_jit, l_jit, g_jit), (t_py, l_py, g_py) = results
    assert len(t_jit) > 0
    np.testing.assert_allclose(t_jit, t_py, rtol=0, atol=1e-12)
    assert abs(l_jit - l_py) < 1e-12
    for key in g_jit:
        np.testing.assert_allclose(g_jit[key], g_py[key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_identical_synapses_share_state_without_changing_results():
    """Two connections with identical, fixed exponential synapses share one synaptic current (an exact
    optimisation by linearity); the network must behave exactly as with two separate currents."""
    rng = np.random.default_rng(7)
    w_xh, w_hh = rng.uniform(0.5, 1.5, (4, 6)), rng.normal(0, 0.3, (6, 6))
    results = []
    for trainable in ((), ("tau",)):  # a trainable synapse is never merged
        net = eg.Network()
        x = net.add_input("x", 4)
        h = net.add_population("h", 6, eg.neurons.LIF(tau_mem=10.0))
        o = net.add_population("o", 3, eg.neurons.LI(tau_mem=10.0))
        net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=w_xh, name="xh")
        net.connect(h, h, eg.synapses.Exponential(tau=4.0, trainable=trainable), weight=w_hh, name="hh")
        net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=np.ones((6, 3)), name="ho")
        sim = eg.Simulator(net, dt=1.0, duration=30.0, dtype="float64", readout=eg.readouts.MeanVar("o"))
        results.append((sim, *sim.loss_and_grad(*inputs(7, duration=30.0))))
    (merged, loss_m, grads_m), (separate, loss_s, grads_s) = results
    assert merged.layout.adjoints[1].system.dim == 2 and separate.layout.adjoints[1].system.dim == 3
    assert abs(loss_m - loss_s) < 1e-12
    for key in ("xh.weight", "hh.weight", "ho.weight"):
        np.testing.assert_allclose(grads_m[key], grads_s[key], rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("neuron", ["LIF", "QIF"])
def test_checkpointed_recomputation_matches_storing_every_step(neuron):
    """The backward pass recomputes start-of-step states from checkpoints every K steps; the gradients
    must be those obtained by storing every step (K = 1), whatever K is."""
    batch, labels = inputs(0)
    grads = []
    for every in (1, 3, 40):
        sim = eg.Simulator(build(neuron, 0), dt=1.0, duration=40.0, dtype="float64",
                           readout=eg.readouts.MeanVar("o"))
        assert sim.layout.needs_state
        sim.checkpoint_every = every
        grads.append(sim.loss_and_grad(batch, labels)[1])
    for other in grads[1:]:
        for key in grads[0]:
            np.testing.assert_allclose(other[key], grads[0][key], rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("neuron", ["LIF", "QIF"])
def test_generic_kernels_run_in_float32_and_follow_float64(neuron):
    """float32 is the default dtype: the generic kernels (here: trainable time constants, a nonlinear
    model) must compile for it and give the float64 results to float32 accuracy."""
    batch, labels = inputs(1)
    out = []
    for dtype in ("float32", "float64"):
        sim = eg.Simulator(build(neuron, 1), dt=0.5, duration=40.0, dtype=dtype, readout=eg.readouts.MeanVar("o"))
        loss, grads = sim.loss_and_grad(batch, labels)
        assert sim.kernels_used == "generic"
        out.append((loss, grads))
    (l32, g32), (l64, g64) = out
    assert abs(l32 - l64) < 1e-4 * max(1.0, abs(l64))
    for key in ("xh_exp.weight", "hh.weight", "ho.weight", "h.v_thresh"):
        scale = np.abs(g64[key]).max()
        np.testing.assert_allclose(g32[key], g64[key], atol=2e-3 * scale, err_msg=key)


def test_per_neuron_parameters_get_per_neuron_gradients():
    """A parameter given one value per neuron is learned per neuron: its gradient has one entry per
    neuron, each matching finite differences (the propagator is then computed per neuron)."""
    net = _first_spike_network(6, tau_mem=np.linspace(8.0, 12.0, 6))
    sim = eg.Simulator(net, dt=1.0, duration=40.0, dtype="float64", readout=eg.readouts.MeanVar("o"))
    batch, labels = inputs(6)
    loss, grads = sim.loss_and_grad(batch, labels)
    assert grads["h.tau_mem"].shape == (6,) and np.ndim(grads["h.v_thresh"]) == 0
    report = eg.check_gradients(sim, batch, labels, params=["h.tau_mem", "xh.weight"], max_entries=6)
    assert report.worst < 1e-5, str(report)
