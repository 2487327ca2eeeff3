"""NIR interoperability with snnTorch, both ways, on the same input spikes.

1. eventgrad -> NIR -> snnTorch: a network built in eventgrad (8 inputs, 16 + 4 LIF neurons, exponential
   synapses) is written with ``eventgrad.nir.to_nir(dt=0.1)`` (snnTorch reads graphs at dt = 1e-4 s) and
   loaded with ``snntorch.import_nir.import_from_nir``; snnTorch runs it on its 0.1 ms grid.
2. snnTorch -> NIR -> eventgrad: a snnTorch network (Linear -> Synaptic -> Linear -> Synaptic, the same
   sizes) is written with ``snntorch.export_nir.export_to_nir`` and read with ``eventgrad.nir.from_nir``.

eventgrad simulates exactly (continuous time); snnTorch on its grid with forward Euler (beta = 1 - dt/tau),
so the output spikes agree to the grid's resolution: each spike time is compared with the end of the
snnTorch step that emitted it. Needs torch and snnTorch (``pip install "eventgrad[bench,nir]" nirtorch``):

    python benchmarks/nir_snntorch.py [--seed 0] [--samples 4]
"""

from __future__ import annotations

import argparse

import numpy as np

import eventgrad as eg
from eventgrad.nir import from_nir, to_nir

DT = 0.1  # ms: the step snnTorch's NIR import assumes (1e-4 s)
DURATION = 100.0  # ms
N_IN, N_HID, N_OUT = 8, 16, 4


def input_spikes(rng, samples: int):
    """Input spikes on the 0.1 ms grid (so both simulators see them at the same instants)."""
    times, units = [], []
    for _ in range(samples):
        steps = np.sort(rng.choice(int(DURATION / DT) - 100, 60, replace=False))
        times.append(steps * DT)
        units.append(rng.integers(0, N_IN, 60))
    return eg.SpikeBatch(times=times, units=units)


def run_snntorch(module, batch) -> list[list[np.ndarray]]:
    """Output spike times (end of the emitting step, ms) per sample and output neuron."""
    import torch

    n_steps = int(round(DURATION / DT))
    out = []
    for t, u in zip(batch.times, batch.units):
        x = torch.zeros(n_steps, 1, N_IN)
        x[np.rint(t / DT).astype(int), 0, u] = 1.0
        for m in module.modules():  # fresh hidden state per sample
            if hasattr(m, "reset_hidden"):
                m.reset_hidden()
        with torch.no_grad():
            spikes, state = [], None
            for k in range(n_steps):
                y = module(x[k]) if state is None else module(x[k], state)
                if isinstance(y, tuple) and len(y) == 2 and isinstance(y[1], dict):  # nirtorch: (output, state)
                    y, state = y
                y = y[0] if isinstance(y, tuple) else y  # snnTorch's output layer: (spikes, syn, mem)
                spikes.append(y.reshape(-1).numpy())
        spikes = np.array(spikes)
        out.append([(np.nonzero(spikes[:, j])[0] + 1) * DT for j in range(N_OUT)])
    return out


def run_eventgrad(net, batch) -> list[list[np.ndarray]]:
    sim = eg.Simulator(net, dt=1.0, duration=DURATION, dtype="float64", threads=1)
    result = sim.run(batch)
    out = []
    for s in range(len(batch.times)):
        t, u = result.spike_times(net.groups[-1].name, s)
        out.append([t[u == j] for j in range(N_OUT)])
    return out


def compare(name: str, ours, theirs) -> None:
    n_ours = sum(len(x) for sample in ours for x in sample)
    n_theirs = sum(len(x) for sample in theirs for x in sample)
    same_count, offsets = 0, []
    for a_sample, b_sample in zip(ours, theirs):
        for a, b in zip(a_sample, b_sample):
            if len(a) == len(b):
                same_count += 1
                offsets += list(b - a)
    offsets = np.abs(np.array(offsets)) if offsets else np.zeros(0)
    total = len(ours) * N_OUT
    print(f"{name}: output spikes eventgrad {n_ours}, snnTorch {n_theirs}; neurons with equal spike counts "
          f"{same_count}/{total}; among them |t_snnTorch - t_eventgrad| <= 1 step (0.1 ms) for "
          f"{np.mean(offsets <= DT + 1e-9):.1%}, <= 5 steps for {np.mean(offsets <= 5 * DT + 1e-9):.1%}, "
          f"max {offsets.max(initial=0.0):.2f} ms")


def eventgrad_network(rng) -> eg.Network:
    net = eg.Network()
    x = net.add_input("x", N_IN)
    h = net.add_population("h", N_HID, eg.neurons.LIF(tau_mem=20.0))
    o = net.add_population("o", N_OUT, eg.neurons.LIF(tau_mem=20.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=rng.uniform(0.0, 1.0, (N_IN, N_HID)), name="xh")
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.uniform(0.0, 0.8, (N_HID, N_OUT)), name="ho")
    return net


def snntorch_network(rng):
    import snntorch as snn
    import torch

    alpha, beta = 1 - DT / 5.0, 1 - DT / 20.0  # tau_syn 5 ms, tau_mem 20 ms at snnTorch's dt
    fc1, fc2 = torch.nn.Linear(N_IN, N_HID, bias=False), torch.nn.Linear(N_HID, N_OUT, bias=False)
    with torch.no_grad():  # weights that make a few spikes: jumps of the synaptic current, in units of threshold
        fc1.weight[:] = torch.tensor(rng.uniform(0.0, 0.004, (N_HID, N_IN)))
        fc2.weight[:] = torch.tensor(rng.uniform(0.0, 0.006, (N_OUT, N_HID)))

    def layer(n, **kwargs):  # per-neuron parameters: with scalars snnTorch writes nodes of shape [] (its issue #334)
        return snn.Synaptic(alpha=torch.full((n,), alpha), beta=torch.full((n,), beta), threshold=torch.ones(n),
                            init_hidden=True, reset_mechanism="zero", reset_delay=False, **kwargs)

    return torch.nn.Sequential(fc1, layer(N_HID), fc2, layer(N_OUT, output=True))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args(argv)
    import torch
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir

    rng = np.random.default_rng(args.seed)
    batch = input_spikes(rng, args.samples)
    net = eventgrad_network(rng)
    compare("eventgrad -> NIR -> snnTorch", run_eventgrad(net, batch),
            run_snntorch(import_from_nir(to_nir(net, dt=DT)), batch))
    module = snntorch_network(rng)
    graph = export_to_nir(module, torch.zeros(1, N_IN), ignore_dims=[0])
    imported = from_nir(graph, dt=DT, time_unit="s")
    print(f"snnTorch's graph imported as populations {[g.name for g in imported.groups]}, connections "
          f"{[c.name for c in imported.connections]}")
    compare("snnTorch -> NIR -> eventgrad", run_eventgrad(imported, batch), run_snntorch(module, batch))


if __name__ == "__main__":
    main()
