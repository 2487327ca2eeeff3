"""Graded input events (a value per spike that multiplies its weights) and direct current input."""

from __future__ import annotations

import numpy as np
import pytest

import eventgrad as eg
from eventgrad.data import SpikeBatch, SpikeDataError, SpikeDataset, current_encode, n_input_units


def test_current_encode_sends_one_graded_event_per_nonzero_feature():
    X = np.array([[0.5, 0.0, -2.0], [0.0, 0.0, 0.0]])
    b = current_encode(X, t_on=1.5, bias=True)
    assert b.graded and len(b) == 2
    np.testing.assert_array_equal(b.units[0], [0, 2, 3])
    np.testing.assert_array_equal(b.values[0], [0.5, -2.0, 1.0])
    np.testing.assert_array_equal(b.times[0], [1.5, 1.5, 1.5])
    np.testing.assert_array_equal(b.units[1], [3])  # only the bias: zeros would add nothing
    assert n_input_units(current_encode, 3, bias=True) == 4
    with pytest.raises(ValueError, match=r"X\[0, 1\] = nan"):
        current_encode(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="samples, features"):
        current_encode(np.ones(3))
    with pytest.raises(ValueError, match="t_on"):
        current_encode(np.ones((1, 2)), t_on=-1.0)


def test_bad_values_are_refused_with_the_sample_and_spike():
    with pytest.raises(SpikeDataError, match="sample 1: spike 0 has value nan"):
        SpikeBatch([[1.0], [2.0]], [[0], [0]], values=[[1.0], [np.nan]])
    with pytest.raises(SpikeDataError, match="one entry per spike"):
        SpikeBatch([[1.0, 2.0]], [[0, 1]], values=[[1.0]])
    with pytest.raises(SpikeDataError, match="values has 1"):
        SpikeBatch([[1.0], [2.0]], [[0], [0]], values=[[1.0]])
    with pytest.raises(SpikeDataError, match="real numbers"):
        SpikeBatch([[1.0]], [[0]], values=[np.array(["a"])])


def test_dataset_keeps_values_through_batches_subsets_and_splits():
    ds = SpikeDataset([[0.0, 1.0], [0.5], [0.0], [2.0]], [[0, 1], [1], [0], [1]], [0, 1, 0, 1], n_units=2,
                      duration=5.0, values_list=[[0.5, -1.0], [2.0], [3.0], [4.0]])
    assert "graded" in repr(ds)
    batch, labels = ds.batch([3, 0])
    np.testing.assert_array_equal(batch.values[0], [4.0])
    np.testing.assert_array_equal(batch.values[1], [0.5, -1.0])
    sub = ds.subset([1, 2])
    np.testing.assert_array_equal(np.concatenate(sub.batch([0, 1])[0].values), [2.0, 3.0])
    a, b = ds.split(0.5, seed=0)
    assert sorted(np.concatenate([a.values, b.values])) == [-1.0, 0.5, 2.0, 3.0, 4.0]
    plain = SpikeDataset([[0.0]], [[0]], [0], n_units=1, duration=1.0)
    assert plain.values is None and not plain.batch([0])[0].graded


def _network(syn, w_in, seed=1):
    r = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", 4)
    h = net.add_population("h", 6, eg.neurons.LIF(tau_mem=10.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, syn, weight=w_in * r.uniform(0.4, 1.6, (4, 6)), name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=4.0), weight=r.normal(0, 0.3, (6, 6)), name="hh")
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=r.normal(0, 1.0, (6, 3)), name="ho")
    return net


def _sim(net, kernels="auto", method="eventprop", dt=1.0):
    kw = {"kernels": kernels} if method == "eventprop" else {"method": "bptt"}
    return eg.Simulator(net, dt=dt, duration=40.0, dtype="float64", readout=eg.readouts.SumVar("o"),
                        loss=eg.losses.SoftmaxCrossEntropy(), **kw)


@pytest.mark.parametrize("kernels, method", [("auto", "eventprop"), ("generic", "eventprop"), ("auto", "bptt")])
def test_a_graded_event_is_that_many_unit_spikes(kernels, method):
    """Value 2 (or -1) at t: the same run as two spikes (or one spike through negated weights) at t."""
    rng = np.random.default_rng(3)
    times = [np.sort(rng.uniform(0, 30, 12)) for _ in range(2)]
    units = [rng.integers(0, 4, 12) for _ in range(2)]
    values = [np.where(rng.random(12) < 0.5, 2.0, 1.0) for _ in range(2)]
    graded = SpikeBatch(times, units, values)
    repeated = SpikeBatch([np.repeat(t, v.astype(int)) for t, v in zip(times, values)],
                          [np.repeat(u, v.astype(int)) for u, v in zip(units, values)])
    net = _network(eg.synapses.Exponential(tau=4.0), 1.0)
    a, b = _sim(net, kernels, method).run(graded), _sim(net, kernels, method).run(repeated)
    assert a.spike_counts("h").sum() > 0
    np.testing.assert_allclose(a.readout, b.readout, rtol=1e-9, atol=1e-9)
    for s in range(2):
        np.testing.assert_allclose(a.spike_times("h", s)[0], b.spike_times("h", s)[0], atol=1e-9)
    negative = SpikeBatch(times, units, [-np.ones(12)] * 2)
    sim = _sim(net, kernels, method)
    c = sim.run(negative)
    sim.params["xh.weight"][:] *= -1.0
    d = sim.run(SpikeBatch(times, units))
    np.testing.assert_allclose(c.readout, d.readout, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kernels", ["auto", "generic"])
@pytest.mark.parametrize("seed", [0, 1])
def test_direct_current_gradients_match_finite_differences(kernels, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-0.5, 1.0, (2, 3))
    batch = current_encode(X, t_on=rng.uniform(0.0, 5.0), bias=True)
    sim = _sim(_network(eg.synapses.Constant(), 1.0, seed=seed + 1), kernels)
    assert sim.run(batch).spike_counts("h").sum() > 0
    report = eg.check_gradients(sim, batch, np.array([0, 2]), eps=1e-6)
    assert sim.kernels_used == ("fast" if kernels == "auto" else "generic")
    assert report.worst < 1e-5, str(report)


def test_bptt_trains_on_direct_current_input():
    X = np.random.default_rng(0).uniform(0.0, 1.0, (4, 3))
    batch = current_encode(X, bias=True)
    sim = _sim(_network(eg.synapses.Constant(), 1.0), method="bptt", dt=0.5)
    loss, grads = sim.loss_and_grad(batch, np.array([0, 1, 2, 0]))
    assert np.isfinite(loss) and np.abs(grads["xh.weight"]).sum() > 0


def test_bptt_gradients_with_graded_events_match_finite_differences():
    """Without spikes BPTT is exact backpropagation on its grid: graded values (through a Constant and an
    Exponential synapse) must enter the weight gradients exactly."""
    rng = np.random.default_rng(5)
    net = eg.Network()
    x = net.add_input("x", 3)
    o = net.add_population("o", 2, eg.neurons.LI(tau_mem=8.0, trainable=("tau_mem",)))
    net.connect(x, o, eg.synapses.Constant(), weight=rng.normal(0, 1, (3, 2)), name="xc")
    net.connect(x, o, eg.synapses.Exponential(tau=3.0), weight=rng.normal(0, 1, (3, 2)), name="xe")
    times = [np.sort(rng.uniform(0.0, 15.0, 8)) for _ in range(2)]
    batch = SpikeBatch(times, [rng.integers(0, 3, 8) for _ in range(2)], [rng.normal(0, 2, 8) for _ in range(2)])
    sim = eg.Simulator(net, dt=1.0, duration=20.0, dtype="float64", readout=eg.readouts.SumVar("o"),
                       loss=eg.losses.SoftmaxCrossEntropy(), method="bptt")
    report = eg.check_gradients(sim, batch, np.array([0, 1]))
    assert set(report.errors) == {"xc.weight", "xe.weight", "o.tau_mem"}
    assert report.worst < 1e-6, str(report)
