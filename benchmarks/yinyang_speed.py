"""Forward time per sample of the Yin-Yang network (5 -> hidden LIF -> 3 LI, exponential synapses, 30 ms).

A feed-forward layer whose neurons all receive the same few input spikes: many of them cross threshold
in the same piece of a step, which is what the fast kernels' spike search finds hardest. Prints one
row per hidden size: ms per sample (one thread, best of the repeats), hidden spikes, spike searches,
walk steps and candidates per sample. Uses only the core API, so it runs on older commits too.

    python benchmarks/yinyang_speed.py
    python benchmarks/yinyang_speed.py --hidden 100 400 --samples 256 --repeats 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import eventgrad as eg
from eventgrad.data import latency_encode, yinyang


def measure(hidden: int, samples: int, repeats: int) -> tuple[float, np.ndarray, float]:
    rng = np.random.default_rng(0)
    net = eg.Network()
    x = net.add_input("x", 5)
    h = net.add_population("h", hidden, eg.neurons.LIF(tau_mem=20.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=20.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=rng.normal(2.0, 1.5, (5, hidden)), name="xh")
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0, 0.3, (hidden, 3)), name="ho")
    sim = eg.Simulator(net, dt=1.0, duration=30.0, readout=eg.readouts.MeanVar("o"), threads=1)
    X, _ = yinyang(samples, seed=42)
    batch = latency_encode(X, t_max=15.0, bias_time=0.0)
    res = sim.run(batch)  # compile or load the kernels
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = sim.run(batch)
        best = min(best, time.perf_counter() - t0)
    stats = np.mean([r.search_stats for r in res.records], axis=0)
    return 1000 * best / samples, stats, res.spike_counts("h").sum() / samples


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print("| hidden | forward [ms/sample] | hidden spikes | searches | walk steps | candidates |")
    print("|---:|---:|---:|---:|---:|---:|")
    for hidden in args.hidden:
        ms, stats, spikes = measure(hidden, args.samples, args.repeats)
        print(f"| {hidden} | {ms:.2f} | {spikes:.1f} | {stats[0]:.0f} | {stats[1]:.0f} | {stats[2]:.0f} |", flush=True)


if __name__ == "__main__":
    main()
