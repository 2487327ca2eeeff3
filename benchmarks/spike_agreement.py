"""How far the spike trains of the SHD-shaped benchmark network follow those found on a finer grid.

A simulator that misses an excursion above threshold and back within a step gives spike trains that
depend on dt, and in this recurrent network any such difference then grows. This runs the first samples
of ``benchmarks/shd_synthetic.py`` (same seeds) for a short trial at ``--dt`` with ``--kernels`` and
``--excursions``, and again on a grid ``--fine`` ms with ``--reference`` kernels (the generic kernels test
the threshold at every event and grid point; the fast ones with excursions="exact" find every
crossing), in float64, and prints per sample the first hidden spike where the two differ (unit, or time
by more than 1e-6 ms).

    python benchmarks/spike_agreement.py                          # fast kernels, dt 1 ms, against generic 0.05
    python benchmarks/spike_agreement.py --excursions step_end    # the end-of-step test only
    python benchmarks/spike_agreement.py --reference fast         # against the fast kernels at 0.05 ms
    python benchmarks/spike_agreement.py --kernels generic
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import eventgrad as eg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shd_synthetic import build_network, make_batch  # noqa: E402


def hidden_spikes(batch, dt, duration, kernels, excursions):
    net = build_network(np.random.default_rng(1), 700, 256, 20)
    sim = eg.Simulator(net, dt=dt, duration=duration, dtype="float64", readout=eg.readouts.SumVar("o"),
                       kernels=kernels, excursions=excursions)
    res = sim.run(batch)
    return [res.spike_times("h", b) for b in range(len(batch))]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--duration", type=float, default=200.0, help="trial length in ms (the first part of each sample)")
    p.add_argument("--dt", type=float, default=1.0)
    p.add_argument("--kernels", default="auto", choices=["auto", "generic"])
    p.add_argument("--excursions", default="exact", choices=["exact", "step_end"])
    p.add_argument("--fine", type=float, default=0.05, help="grid of the run compared against")
    p.add_argument("--reference", default="generic", choices=["generic", "fast"],
                   help="kernels of the run compared against (fast: with excursions='exact')")
    args = p.parse_args()
    full, _ = make_batch(np.random.default_rng(0), args.samples, 700, 1000.0, 10000)
    keep = [t < args.duration for t in full.times]
    batch = eg.SpikeBatch([t[k] for t, k in zip(full.times, keep)], [u[k] for u, k in zip(full.units, keep)])
    runs = hidden_spikes(batch, args.dt, args.duration, args.kernels, args.excursions)
    fine = hidden_spikes(batch, args.fine, args.duration, "auto" if args.reference == "fast" else "generic", "exact")
    print(f"{args.kernels} kernels (excursions {args.excursions}) at dt {args.dt} ms against {args.reference} at "
          f"{args.fine} ms, first {args.duration} ms")
    print("sample | spikes | spikes (fine) | first different spike (index, fine time ms)")
    for b, ((t, u), (tf, uf)) in enumerate(zip(runs, fine)):
        n = min(len(t), len(tf))
        i = next((i for i in range(n) if u[i] != uf[i] or abs(t[i] - tf[i]) > 1e-6), None)
        if i is None and len(t) != len(tf):
            i = n
        where = "none" if i is None else f"{i}, {tf[i]:.3f}" if i < len(tf) else f"{i}, -"
        print(f"{b} | {len(t)} | {len(tf)} | {where}")


if __name__ == "__main__":
    main()
