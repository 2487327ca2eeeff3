"""Faults that used to hang a run or change its numbers: runaway networks, unstable parameters, thread counts.

Each test names what was wrong before. The networks reuse structures compiled by other test files
(test_bad_input.py, test_fast_kernels.py): weights, sizes and parameter values never recompile a kernel.
"""

import time

import numpy as np
import pytest

import eventgrad as eg


def recurrent_network(rng, scale=1.0):
    """x -> LIF h (recurrent) -> LI o, exponential synapses: the structure of test_bad_input's busy_network."""
    net = eg.Network()
    x = net.add_input("x", 5)
    h = net.add_population("h", 8, eg.neurons.LIF(tau_mem=10.0, v_thresh=1.0, v_reset=0.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=20.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=scale * rng.uniform(0.8, 2.4, (5, 8)), name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=5.0), weight=rng.uniform(-0.1, 0.1, (8, 8)), name="hh")
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, 0.1, (8, 3)), name="ho")
    return net


def random_batch(rng, n_samples, n_spikes=40):
    times = [np.sort(rng.uniform(0.0, 45.0, n_spikes)) for _ in range(n_samples)]
    return eg.SpikeBatch(times, [rng.integers(0, 5, n_spikes) for _ in range(n_samples)])


# ---- runaway networks stop within seconds -----------------------------------------------------------------------


def test_a_runaway_network_on_the_fast_kernels_stops_within_seconds_naming_the_population():
    # Before: input weights x1e6 made 'h' fire ever faster within one step, and the run took minutes to
    # hours (quadratic in the events of a step) before max_events ended it with an error naming nobody.
    rng = np.random.default_rng(0)
    sim = eg.Simulator(recurrent_network(rng), dt=1.0, duration=50.0, dtype="float64",
                       readout=eg.readouts.SumVar("o"), threads=1)
    batch = random_batch(rng, 1)
    sim.run(batch)  # compiles (or loads) the kernels, which the timing below must not include
    assert sim.kernels_used == "fast"
    sim.params["xh.weight"] = sim.params["xh.weight"] * 1e6
    start = time.perf_counter()
    with pytest.raises(eg.SimulationError, match=r"population 'h' \(neuron \d\) fires at a runaway rate: the step "
                                                 r"\[\d+, \d+\) ms holds more than max_spikes_per_step=512 spikes"):
        sim.run(batch)
    assert time.perf_counter() - start < 10.0


def test_a_runaway_neuron_on_the_generic_kernels_stops_naming_the_population():
    # Before: the generic kernels ran until max_events (2**24 events by default: minutes per sample).
    net = eg.Network()
    x = net.add_input("x", 1)
    o = net.add_population("o", 1, eg.neurons.LIF(tau_mem=20.0))
    net.connect(x, o, eg.synapses.Exponential(tau=5.0), weight=np.array([[1e7]]), name="xo")
    sim = eg.Simulator(net, dt=1.0, duration=30.0, dtype="float64", kernels="generic")
    assert sim.max_spikes_per_step == 64  # one spiking neuron, 64 spikes per step
    start = time.perf_counter()
    with pytest.raises(eg.SimulationError, match=r"population 'o' \(neuron 0\) fires at a runaway rate: the step "
                                                 r"\[5, 6\) ms holds more than max_spikes_per_step=64 spikes"):
        sim.run(eg.SpikeBatch(times=[[5.37]], units=[[0]]))
    assert time.perf_counter() - start < 60.0  # compiling included, where no other test compiled the kernels


def test_a_smaller_spike_budget_is_honoured_and_a_bad_one_refused():
    # A network at a normal rate passes the default budget; a budget below its spikes per step stops it.
    rng = np.random.default_rng(1)
    net = recurrent_network(rng)
    batch = random_batch(rng, 1, n_spikes=200)
    sim = eg.Simulator(net, dt=1.0, duration=50.0, dtype="float64", readout=eg.readouts.SumVar("o"), threads=1)
    times, _ = sim.run(batch).spike_times("h", 0)
    per_step = np.bincount(np.floor(times).astype(int)).max()
    assert per_step >= 2, "too few spikes per step: the test proves nothing"
    tight = eg.Simulator(net, dt=1.0, duration=50.0, dtype="float64", readout=eg.readouts.SumVar("o"), threads=1,
                         max_spikes_per_step=int(per_step) - 1)
    with pytest.raises(eg.SimulationError, match=r"population 'h'.*max_spikes_per_step"):
        tight.run(batch)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"max_spikes_per_step must be a positive integer"):
            eg.Simulator(net, dt=1.0, duration=50.0, max_spikes_per_step=bad, jit=False)


@pytest.mark.parametrize("where, key, value", [("neuron", "h.tau_mem", -10.0), ("synapse", "xh.tau", -5.0)])
def test_a_negative_time_constant_is_refused_before_the_run(where, key, value):
    # Before: a negative synaptic time constant made the state grow exponentially and the run hang.
    rng = np.random.default_rng(2)
    sim = eg.Simulator(recurrent_network(rng), dt=1.0, duration=50.0, dtype="float64", jit=False)
    sim.params[key] = np.array(value)
    with pytest.raises(ValueError, match=rf"the dynamics of population 'h' are unstable: its state would grow like "
                                         rf"exp\(0\.\d+ t\).*{key} = \[{value:g}\.?\]"):
        sim.run(random_batch(rng, 1))


def test_one_neurons_negative_time_constant_is_refused_naming_the_neuron():
    rng = np.random.default_rng(3)
    sim = eg.Simulator(recurrent_network(rng), dt=1.0, duration=50.0, dtype="float64", jit=False)
    sim.params["h.tau_mem"] = np.array([10.0] * 5 + [-2.0] + [10.0] * 2)
    with pytest.raises(ValueError, match=r"population 'h' \(neuron 5\) are unstable"):
        sim.run(random_batch(rng, 1))


# ---- results do not depend on the number of threads ------------------------------------------------------------


def test_float64_gradients_are_bit_identical_with_one_two_and_three_threads():
    # Before: the batch was split by thread and the per-thread sums added, so float64 gradients differed by
    # ~1e-15 with the thread count, and training diverged visibly after a few epochs (0.84 vs 0.77 accuracy).
    rng = np.random.default_rng(4)
    net = recurrent_network(rng)
    batch = random_batch(rng, 7)
    labels = rng.integers(0, 3, 7)
    results = []
    for threads in (1, 2, 3):
        sim = eg.Simulator(net, dt=1.0, duration=50.0, dtype="float64", readout=eg.readouts.SumVar("o"),
                           threads=threads)
        results.append(sim.loss_and_grad(batch, labels))
    assert sim.kernels_used == "fast"
    for loss, grads in results[1:]:
        assert loss == results[0][0]
        for key in grads:
            np.testing.assert_array_equal(grads[key], results[0][1][key], err_msg=key)
