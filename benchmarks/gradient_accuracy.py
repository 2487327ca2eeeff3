"""Worst relative error of EventProp gradients against central finite differences, per built-in neuron
model and dt, on the networks of the finite-difference tests (every synapse type, a recurrent hidden
layer, every parameter trainable; float64).

    python benchmarks/gradient_accuracy.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fd_networks import NEURONS, build, inputs  # noqa: E402

import eventgrad as eg  # noqa: E402


def main():
    print(f"{'neuron':<16} {'dt [ms]':>7} {'kernels':>8} {'hidden spikes':>13} {'worst rel. error':>17} {'s':>6}")
    for name, (_, _, _, linear) in NEURONS.items():
        for dt in (1.0,) if linear else (1.0, 0.5, 0.25):
            t0 = time.perf_counter()
            sim = eg.Simulator(build(name, 0), dt=dt, duration=40.0, dtype="float64",
                               readout=eg.readouts.MeanVar("o"))
            batch, labels = inputs(0)
            spikes = int(sim.run(batch).spike_counts("h").sum())
            report = eg.check_gradients(sim, batch, labels, max_entries=6)
            print(f"{name:<16} {dt:>7.2f} {sim.kernels_used:>8} {spikes:>13d} {report.worst:>17.2e} "
                  f"{time.perf_counter() - t0:>6.1f}")


if __name__ == "__main__":
    main()
