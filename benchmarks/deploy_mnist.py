"""Fixed-point accuracy of a latency-MNIST network trained by examples/mnist_wp2021.py.

Loads the example's checkpoint, tests the exact float simulation, the same network time-stepped in float,
and Loihi-2-style fixed point at each weight bit width (``eventgrad.deploy.quantize``), on the example's
test images (``eventgrad deploy RUN`` does the same for runs of ``eventgrad train``):

    python examples/mnist_wp2021.py --epochs 1 --train-size 10000 --eval-size 2000 --threads 1 --out runs/mnist
    python benchmarks/deploy_mnist.py runs/mnist/seed0/last.npz --eval-size 2000 --bits 8 6 4
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

import eventgrad as eg
from eventgrad.deploy import float_accuracy, quantize
from eventgrad.train import load_checkpoint

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mnist_wp2021.py"


def example():
    spec = importlib.util.spec_from_file_location("mnist_wp2021", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="the example's checkpoint (OUT/seed0/last.npz or best.npz)")
    parser.add_argument("--eval-size", type=int, default=2000, help="test images (the example's test split)")
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 6, 4])
    parser.add_argument("--dt", type=float, nargs="+", default=[0.5], help="time steps of the fixed-point model (ms)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    mnist = example()
    settings = argparse.Namespace(train_size=1, eval_size=args.eval_size, duration=40.0, jitter=0.0)
    test = mnist.datasets(settings, 0)["test"]
    sim = eg.Simulator(mnist.build_network(np.random.default_rng(0)), dt=0.5, duration=40.0, dtype="float32",
                       readout=eg.readouts.MaxVar("o"), threads=args.threads)
    load_checkpoint(args.checkpoint, sim.params)
    start = time.perf_counter()
    print(f"float, exact event-based simulation: {float_accuracy(sim, test):.4f} on {len(test)} test images "
          f"({time.perf_counter() - start:.0f} s)")
    for dt in args.dt:
        start = time.perf_counter()
        print(f"float, time-stepped at dt {dt:g} ms: {quantize(sim, None, dt=dt).accuracy(test):.4f} "
              f"({time.perf_counter() - start:.0f} s)")
        for bits in args.bits:
            q = quantize(sim, bits, dt=dt)
            print(f"  {bits}-bit weights, 24-bit state, 12-bit decays: {q.accuracy(test):.4f} "
                  f"({q.saturated} state values saturated)")


if __name__ == "__main__":
    main()
