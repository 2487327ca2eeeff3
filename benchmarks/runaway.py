"""How long a runaway network takes to fail: the cost of reaching ``max_events``, and the spike budget.

A 5-8-3 network (LIF hidden layer with recurrence, LI outputs, exponential synapses) whose input weights
are multiplied by 1e6 fires ever faster within one step. With the spike budget switched off (a huge
``max_spikes_per_step``) the run goes on until the event log reaches ``max_events``; the time that takes
should grow linearly with ``max_events`` (it grew with its square in the fast kernels before). With the
default budget the run stops in the first step that holds more spikes than it allows.

    python benchmarks/runaway.py
    python benchmarks/runaway.py --max-events 20000 40000 80000 160000 --kernels auto generic

Each row is one run after a warm-up run (kernels compiled or loaded from the cache, not timed).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import eventgrad as eg


def network(rng, scale: float) -> eg.Network:
    net = eg.Network()
    x = net.add_input("x", 5)
    h = net.add_population("h", 8, eg.neurons.LIF(tau_mem=10.0, v_thresh=1.0, v_reset=0.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=20.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=scale * rng.uniform(0.8, 2.4, (5, 8)), name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=5.0), weight=rng.uniform(-0.1, 0.1, (8, 8)), name="hh")
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, 0.1, (8, 3)), name="ho")
    return net


def time_to_fail(kernels: str, max_events: int, budget: int | None, seed: int = 0) -> tuple[float, str, str]:
    """(seconds, kernels used, the error's first words) of one runaway run."""
    rng = np.random.default_rng(seed)
    net = network(rng, 1.0)
    batch = eg.SpikeBatch([np.sort(rng.uniform(0, 40, 20))], [rng.integers(0, 5, 20)])
    sim = eg.Simulator(net, dt=1.0, duration=50.0, dtype="float64", readout=eg.readouts.SumVar("o"),
                       kernels=kernels, max_events=max_events, max_spikes_per_step=budget, threads=1)
    sim.run(batch)  # warm-up: compiles or loads the kernels
    sim.params["xh.weight"] = sim.params["xh.weight"] * 1e6
    start = time.perf_counter()
    try:
        sim.run(batch)
        message = "no error"
    except eg.SimulationError as err:
        message = " ".join(str(err).split()[:6])
    return time.perf_counter() - start, sim.kernels_used, message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-events", type=int, nargs="+", default=[20000, 40000, 80000, 160000])
    parser.add_argument("--kernels", nargs="+", default=["auto", "generic"])
    args = parser.parse_args()
    print("kernels | budget | max_events | seconds | error")
    for kernels in args.kernels:
        for max_events in args.max_events:
            seconds, used, message = time_to_fail(kernels, max_events, 10**9)
            print(f"{used} | off | {max_events} | {seconds:.2f} | {message}", flush=True)
        seconds, used, message = time_to_fail(kernels, 2**24, None)
        print(f"{used} | default | {2**24} | {seconds:.2f} | {message}", flush=True)


if __name__ == "__main__":
    main()
