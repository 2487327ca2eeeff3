"""Data-parallel training on Ray: time per epoch of the SHD-shaped task in one process and on Ray workers, the
overhead of a worker step over a local step, and what N machines would give (Amdahl, with the measured serial
part).

The task is ``shd_synthetic.py``'s: 700 Poisson inputs (about 10,000 spikes per sample and second), 256
recurrent LIF neurons, 20 LI outputs, exponential synapses, dt = 1 ms, float32; here ``--samples`` samples of
``--duration`` ms with random labels, trained with Adam in batches of ``--batch``.

Rows, each timed over ``--epochs`` epochs (the best kept; the first epoch also loads the kernels in the workers,
so use at least 2):

- "local": ``Trainer(workers=1)``, the simulator's own threads (1, and all cores);
- "ray": ``Trainer(workers=N)`` on a local Ray cluster with every core, the cores shared out between the N
  workers (1 worker with all of them, then one core each).

Per step (medians over the epochs after the first), "compute" is the simulator's forward and backward pass of
the whole batch with all cores (``loss_and_grad``, timed inside the local run's steps), and "step" a trainer
step: that, the bookkeeping and the optimiser locally; on Ray also shipping the parameters and the batch out,
two round trips and the reduction. The serial part s (what N machines would not share out) is a 1-worker
step less the compute.

    python benchmarks/ray_scaling.py                       # 256 samples of 1 s, batch 32, 3 epochs
    python benchmarks/ray_scaling.py --samples 64 --duration 200 --hidden 64 --epochs 2     # a quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from shd_synthetic import build_network, make_batch  # noqa: E402


class EpochTimer:
    """Seconds of each epoch and of each step (a trainer callback)."""

    def __init__(self):
        self.epochs, self.steps = [], []

    def on_epoch_begin(self, trainer, epoch):
        self.start = self.last = time.perf_counter()

    def on_batch_end(self, trainer, i, logs):
        now = time.perf_counter()
        self.steps.append(now - self.last)
        self.last = now

    def on_epoch_end(self, trainer, epoch, logs):
        self.epochs.append(time.perf_counter() - self.start)


def dataset(args):
    from eventgrad.data import SpikeDataset

    rng = np.random.default_rng(args.seed)
    batch, labels = make_batch(rng, args.samples, 700, args.duration, args.rate)
    return SpikeDataset.from_batch(batch, labels, n_units=700, duration=args.duration, n_classes=20)


def simulator(args, threads):
    import eventgrad as eg

    net = build_network(np.random.default_rng(args.seed + 1), 700, args.hidden, 20)
    return eg.Simulator(net, dt=1.0, duration=args.duration, dtype="float32", readout=eg.readouts.SumVar("o"),
                        loss=eg.losses.SoftmaxCrossEntropy(), threads=threads)


def train(args, data, threads, workers, worker_threads=None):
    """(best epoch seconds, median step seconds, parameters after training, median seconds of a step besides
    the simulation (the simulator's loss_and_grad in this process; on Ray, the slowest worker's forward and
    backward passes)) of one configuration."""
    from eventgrad.optim import Adam
    from eventgrad.train import Trainer

    sim = simulator(args, threads)
    timer = EpochTimer()
    compute = []
    loss_and_grad = sim.loss_and_grad

    def timed(*a, **kw):
        t0 = time.perf_counter()
        out = loss_and_grad(*a, **kw)
        compute.append(time.perf_counter() - t0)
        return out

    sim.loss_and_grad = timed
    with Trainer(sim, Adam(sim.params, lr=1e-3, keys=sim.trainable), callbacks=[timer], workers=workers,
                 worker_threads=worker_threads) as trainer:
        trainer.fit(data, epochs=args.epochs, batch_size=args.batch, seed=0)
        if trainer._pool is not None:
            compute = trainer._pool.compute_seconds  # the slowest workers', step by step
    steps_per_epoch = -(-len(data) // args.batch)
    later = slice(steps_per_epoch, None)  # after the first epoch (which loads the kernels)
    rest = np.array(timer.steps[later]) - np.array(compute[later])  # what a step costs besides the simulation
    return min(timer.epochs), float(np.median(timer.steps[later])), sim.params, float(np.median(rest))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--duration", type=float, default=1000.0, help="trial length [ms]")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--rate", type=float, default=10000.0, help="input spikes per sample per second")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores of the Ray cluster and threads")
    args = p.parse_args()
    import ray

    data = dataset(args)
    cores = args.cores
    rows = []
    simulator(args, 1).loss_and_grad(*data.batch(np.arange(2)))  # compile or load the kernels once, untimed
    ref = None
    for label, threads in (("local, 1 thread", 1), (f"local, {cores} threads", cores)):
        epoch, step, params, rest = train(args, data, threads, 1)
        ref = ref if ref is not None else params
        rows.append((label, epoch, step, rest, max(float(np.abs(params[k] - ref[k]).max()) for k in ref)))
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    try:
        for workers in sorted({1, cores}):
            epoch, step, params, rest = train(args, data, cores, workers, worker_threads=cores // workers)
            differ = max(float(np.abs(params[k] - ref[k]).max()) for k in ref)
            threads = cores // workers
            rows.append((f"ray, {workers} worker{'s' if workers > 1 else ''} x {threads} thread"
                         f"{'s' if threads > 1 else ''}", epoch, step, rest, differ))
    finally:
        ray.shutdown()
    print(f"SHD-shaped task: {args.samples} samples of {args.duration:g} ms, batch {args.batch}, "
          f"{-(-args.samples // args.batch)} steps per epoch, hidden {args.hidden}; {cores} cores")
    print("| configuration | epoch [s] | step [ms] | step besides the simulation [ms] | max abs parameter "
          "difference to local, 1 thread |")
    print("|---|---:|---:|---:|---:|")
    for label, epoch, step, rest, differ in rows:
        print(f"| {label} | {epoch:.2f} | {1000 * step:.1f} | {1000 * rest:.1f} | {differ:.1e} |")
    _, _, local_step, local_rest, _ = rows[1]
    _, _, ray_step, ray_rest, _ = rows[2]
    overhead = ray_rest - local_rest  # shipping parameters and batch, two round trips, the reduction
    compute = ray_step - ray_rest  # the simulation, which N workers share out
    extra = ray_step - local_step
    print(f"\na worker step over a local step (both {cores} threads): {1000 * ray_step:.1f} - {1000 * local_step:.1f} "
          f"= {1000 * extra:.1f} ms ({100 * extra / local_step:.1f} %), of which shipping, round trips and reduction "
          f"(each step less its own simulation time): {1000 * ray_rest:.1f} - {1000 * local_rest:.1f} = "
          f"{1000 * overhead:.1f} ms, and the simulation in the worker: {1000 * (extra - overhead):.1f} ms")
    print(f"serial part s (a 1-worker step less the worker's simulation) = {1000 * ray_rest:.1f} ms, "
          f"{100 * ray_rest / ray_step:.1f} % of the step; the simulation {1000 * compute:.1f} ms")
    print("\nN machines like this one, one worker each (Amdahl: step = s + simulation / N, the batch split N ways):")
    print("| N | step [ms] | speed-up over one local process |")
    print("|---:|---:|---:|")
    for n in (1, 2, 4, 8, 16, 32):
        if n > args.batch:
            break
        t = ray_rest + compute / n
        print(f"| {n} | {1000 * t:.1f} | {local_step / t:.2f} |")
    print(f"limit (N -> infinity): {local_step / ray_rest:.1f}x")

if __name__ == "__main__":
    main()
