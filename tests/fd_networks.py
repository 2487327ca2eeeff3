"""Small networks used by the finite-difference tests: one per built-in neuron model, each with every
built-in synapse type (three parallel input connections, a recurrent hidden connection) and every model
parameter marked trainable."""

from __future__ import annotations

import numpy as np

import eventgrad as eg

# neuron factory, keyword arguments, weight scale that gives a few spikes per neuron, linear dynamics?
NEURONS = {
    "LIF": (eg.neurons.LIF, {"tau_mem": 10.0}, 1.0, True),
    "IF": (eg.neurons.IF, {}, 0.15, True),
    "AdaptiveLIF": (eg.neurons.AdaptiveLIF, {"tau_mem": 10.0, "tau_adapt": 30.0}, 1.0, True),
    "ResonateAndFire": (eg.neurons.ResonateAndFire, {}, 0.6, True),
    "QIF": (eg.neurons.QIF, {"tau_mem": 10.0}, 1.2, False),
    "Izhikevich": (eg.neurons.Izhikevich, {}, 12.0, False),
}


def _all_params(factory, kwargs):
    model = factory(**kwargs)
    return factory(**kwargs, trainable=tuple(model.params))


def build(neuron: str, seed: int, n_in=4, n_hidden=6, n_out=3):
    """The network for ``neuron`` with weights drawn from ``seed``."""
    factory, kwargs, scale, _ = NEURONS[neuron]
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", n_in)
    h = net.add_population("h", n_hidden, _all_params(factory, kwargs))
    o = net.add_population("o", n_out, eg.neurons.LI(tau_mem=15.0, trainable=("tau_mem",)))
    syn = {
        "exp": eg.synapses.Exponential(tau=4.0, trainable=("tau",)),
        "alpha": eg.synapses.Alpha(tau=3.0, trainable=("tau",)),
        "delta": eg.synapses.Delta(),
    }
    for kind, s in syn.items():
        gain = {"exp": 1.0, "alpha": 2.0, "delta": 4.0}[kind]
        net.connect(x, h, s, weight=scale * gain * rng.uniform(0.2, 1.0, (n_in, n_hidden)), name=f"xh_{kind}")
    net.connect(h, h, eg.synapses.Exponential(tau=4.0), weight=scale * rng.normal(0, 0.3, (n_hidden, n_hidden)),
                name="hh")
    net.connect(h, o, eg.synapses.Exponential(tau=4.0, trainable=("tau",)),
                weight=rng.normal(0, 1.0, (n_hidden, n_out)), name="ho")
    return net


def inputs(seed: int, n_samples=2, n_in=4, n_spikes=24, duration=40.0):
    rng = np.random.default_rng(seed + 1000)
    times, units = [], []
    for _ in range(n_samples):
        t = np.sort(rng.uniform(0.0, duration * 0.8, n_spikes))
        times.append(t)
        units.append(rng.integers(0, n_in, n_spikes))
    labels = rng.integers(0, 3, n_samples)
    return eg.SpikeBatch(times, units), labels


def recurrent_lif(rng, scale=1.0, delay=None):
    """x (5) -> recurrent LIF h (8) -> LI o (3), exponential synapses: the network several test files drive
    (bad input, hardening, NIR, deployment), built once so that they share one compiled module. ``scale``
    multiplies the input weights, ``delay`` is the recurrent connection's."""
    net = eg.Network()
    x = net.add_input("x", 5)
    h = net.add_population("h", 8, eg.neurons.LIF(tau_mem=10.0, v_thresh=1.0, v_reset=0.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=20.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=scale * rng.uniform(0.8, 2.4, (5, 8)), name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=5.0), weight=rng.uniform(-0.1, 0.1, (8, 8)), name="hh",
                delay=delay)
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, 0.1, (8, 3)), name="ho")
    return net
