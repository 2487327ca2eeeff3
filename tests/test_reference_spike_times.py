"""Spike times and readout of eventgrad against the independent fine-step reference (tests/reference_sim.py).

Network: input x -> LIF hidden layer h (exponential synapses, recurrent connection h -> h, v_reset 0)
-> LI output o.  The reference integrates the same model exactly between fine steps of h = 1e-3 ms and
locates crossings to O(h^2), so its spike times are accurate to ~1e-6 ms; eventgrad is event-driven
with exact propagators, so the two must agree far below the readout grid dt = 1 ms.  A disagreement
means eventgrad rounds events to the grid, applies a jump at the wrong time or to the wrong target,
locates threshold crossings loosely, or propagates the state wrongly.

The network structure here (models, connection names, no trainable parameters) is the same as in
test_bad_input.py, so both files share one compiled kernel.
"""

import numpy as np
import pytest
from reference_sim import simulate_lif_exp

import eventgrad as eg

N_IN, N_H, N_O = 5, 8, 3
TAU_H, TAU_O, TAU_SYN = 10.0, 20.0, 5.0
DURATION = 50.0
H_REF = 1e-3
SPIKE_TOL = 1e-4   # ms; measured agreement is ~2e-6 ms, the brief's bound is 1e-3 ms (a tenth of dt / 100)
READOUT_TOL = 1e-4  # on a sum of 50 samples of magnitude up to ~100; measured ~1e-6


@pytest.fixture(autouse=True)
def strict_numerics():
    with np.errstate(all="raise"):
        yield


def make_network(W_xh, W_hh, W_ho):
    net = eg.Network()
    x = net.add_input("x", N_IN)
    h = net.add_population("h", N_H, eg.neurons.LIF(tau_mem=TAU_H, v_thresh=1.0, v_reset=0.0))
    o = net.add_population("o", N_O, eg.neurons.LI(tau_mem=TAU_O))
    net.connect(x, h, eg.synapses.Exponential(tau=TAU_SYN), weight=W_xh, name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=TAU_SYN), weight=W_hh, name="hh")
    net.connect(h, o, eg.synapses.Exponential(tau=TAU_SYN), weight=W_ho, name="ho")
    return net


def random_weights(rng):
    W_xh = rng.uniform(0.2, 1.2, (N_IN, N_H))
    W_hh = rng.uniform(-0.4, 0.3, (N_H, N_H))  # mixed excitation and inhibition
    np.fill_diagonal(W_hh, 0.0)
    W_ho = rng.normal(0.0, 0.5, (N_H, N_O))
    return W_xh, W_hh, W_ho


def reference_layers(W_xh, W_hh, W_ho):
    return [
        dict(n=N_H, tau_mem=TAU_H, tau_syn=TAU_SYN, v_thresh=1.0, v_reset=0.0, w_in=W_xh, w_rec=W_hh),
        dict(n=N_O, tau_mem=TAU_O, tau_syn=TAU_SYN, v_thresh=None, v_reset=0.0, w_in=W_ho, w_rec=None),
    ]


def by_time(times, units):
    order = np.lexsort((units, times))
    return np.asarray(times)[order], np.asarray(units)[order]


def compare(weights, times, units, dt=1.0):
    """(eventgrad result, reference spikes, reference v traces) for one sample."""
    sim = eg.Simulator(make_network(*weights), dt=dt, duration=DURATION, dtype="float64",
                       readout=eg.readouts.SumVar("o"), jit=True)
    res = sim.run(eg.SpikeBatch([times], [units]))
    spikes, v_trace = simulate_lif_exp(times, units, N_IN, reference_layers(*weights), DURATION, h=H_REF)
    return res, spikes, v_trace


def assert_same_spikes(res, ref_spikes):
    t, u = by_time(*res.spike_times("h", 0))
    rt, ru = by_time(*ref_spikes[0])
    assert len(t) == len(rt), f"eventgrad has {len(t)} hidden spikes, the reference {len(rt)}"
    np.testing.assert_array_equal(u, ru)
    diff = float(np.max(np.abs(t - rt)))
    assert diff < SPIKE_TOL, f"max spike-time difference {diff} ms"
    return diff


@pytest.mark.parametrize("seed", [0, 3])
def test_hidden_spike_times_and_output_sum_match_reference(seed):
    # Fails if hidden spike times differ from the reference by more than 1e-4 ms (events rounded to the
    # grid, jumps at the wrong time, a loose root finder, a wrong propagator, recurrent spikes delivered to
    # the wrong neuron), or if the output's SumVar differs from the sum of the reference's v on t = 1..50.
    rng = np.random.default_rng(seed)
    weights = random_weights(rng)
    times = np.sort(rng.uniform(0.0, 40.0, 40))
    units = rng.integers(0, N_IN, 40)
    res, ref_spikes, v_trace = compare(weights, times, units)
    assert len(ref_spikes[0][0]) >= 50  # enough spikes, of several neurons, for the comparison to mean something
    assert len(set(ref_spikes[0][1].tolist())) >= 6
    assert_same_spikes(res, ref_spikes)
    assert v_trace[1].shape == (50, N_O)
    np.testing.assert_allclose(res.readout[0], v_trace[1].sum(axis=0), rtol=0, atol=READOUT_TOL)
    assert np.max(np.abs(res.readout[0])) > 10.0  # the output is driven, so the comparison is not 0 == 0


def test_inputs_on_grid_points_and_simultaneous_inputs_match_reference():
    # Fails if an input exactly at a grid time t_n is applied to the wrong side of the step boundary (its
    # effect would be missing from the sample at t_n or counted twice), if an input at t = 0 is lost, or if
    # simultaneous inputs of different units are not all delivered.
    rng = np.random.default_rng(7)
    weights = random_weights(rng)
    times = np.array([0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 5.0, 7.25, 10.0, 10.0, 13.0, 13.0, 20.0, 21.0, 30.0, 30.0])
    units = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 2, 1, 3, 4, 0])
    res, ref_spikes, v_trace = compare(weights, times, units)
    assert len(ref_spikes[0][0]) >= 10
    assert_same_spikes(res, ref_spikes)
    np.testing.assert_allclose(res.readout[0], v_trace[1].sum(axis=0), rtol=0, atol=READOUT_TOL)


@pytest.mark.parametrize("dt", [0.5, 0.25])
def test_spike_times_do_not_depend_on_the_readout_grid(dt):
    # Fails if the spike times depend on dt (dt is only the grid of readout samples; input and spike times
    # must never be rounded to it): a finer grid must reproduce the reference's spike times as well.
    rng = np.random.default_rng(0)
    weights = random_weights(rng)
    times = np.sort(rng.uniform(0.0, 40.0, 40))
    units = rng.integers(0, N_IN, 40)
    res, ref_spikes, _ = compare(weights, times, units, dt=dt)
    assert_same_spikes(res, ref_spikes)
