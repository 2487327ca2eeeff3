"""Train a 5-(hidden)-3 spiking network on Yin-Yang with exact (EventProp) gradients and Adam.

Each sample's four coordinates (x, y, 1 - x, 1 - y) become one input spike each (latency code, small
value = early spike), plus a bias spike at t = 0; a hidden layer of LIF neurons feeds three leaky
integrators whose mean voltage over the trial is the class score (softmax cross-entropy).

Why the mean and not the maximum voltage: an output whose voltage never rises above its start has its
maximum at the first grid step, before any hidden spike arrives, so its gradient is zero; with MaxVar
some seeds sat at chance (one class everywhere) for several epochs. The mean always has a gradient.

    python examples/train_yinyang.py --quick      # a short run (under ~3 minutes on 2 cores)
    python examples/train_yinyang.py              # the full run

Everything random (weights, shuffling) follows --seed; the data sets are the reference ones.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import eventgrad as eg
from eventgrad.data import latency_encode, yinyang
from eventgrad.optim import Adam

T_MAX_INPUT = 15.0  # ms: the latest input spike (value 1)
DURATION = 30.0  # ms: the trial
BATCH = 32


def build(hidden: int, rng: np.random.Generator) -> eg.Network:
    """Input (4 coordinates + bias) -> LIF hidden -> LI output, exponential synapses."""
    net = eg.Network()
    x = net.add_input("x", 5)
    h = net.add_population("h", hidden, eg.neurons.LIF(tau_mem=20.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=20.0))
    # A unit weight gives a PSP peak of ~0.16 (tau_syn 5, tau_mem 20): with mean 2, most hidden neurons
    # spike about once. Neurons that never spike get no gradient, so a lower mean (1.5) learns worse.
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=rng.normal(2.0, 1.5, (5, hidden)), name="xh")
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, 3.0 / np.sqrt(hidden), (hidden, 3)),
                name="ho")
    return net


def encode(X: np.ndarray) -> eg.SpikeBatch:
    return latency_encode(X, t_min=0.0, t_max=T_MAX_INPUT, bias_time=0.0)


def accuracy(sim: eg.Simulator, X: np.ndarray, labels: np.ndarray, chunk: int = 256) -> float:
    hits = 0
    for i in range(0, len(X), chunk):
        y = sim.run(encode(X[i:i + chunk])).readout
        hits += int((y.argmax(axis=1) == labels[i:i + chunk]).sum())
    return hits / len(X)


def train(args) -> None:
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    X_train, y_train = yinyang(5000, seed=42)
    X_val, y_val = yinyang(1000, seed=41)
    X_test, y_test = yinyang(1000, seed=40)
    if args.train_size:
        X_train, y_train = X_train[:args.train_size], y_train[:args.train_size]
    sim = eg.Simulator(build(args.hidden, rng), dt=1.0, duration=DURATION, dtype="float32",
                       readout=eg.readouts.MeanVar("o"), loss=eg.losses.SoftmaxCrossEntropy())
    opt = Adam(sim.params, lr=args.lr, keys=sim.trainable)
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(X_train))
        losses = []
        for i in range(0, len(order), BATCH):  # the last, smaller batch is kept
            idx = order[i:i + BATCH]
            loss, grads = sim.loss_and_grad(encode(X_train[idx]), y_train[idx])
            opt.step(grads)
            losses.append(loss * len(idx))
        opt.lr *= args.decay
        train_acc = accuracy(sim, X_train, y_train)
        val_acc = accuracy(sim, X_val, y_val)
        print(f"epoch {epoch:3d}  loss {sum(losses) / len(order):.4f}  train {train_acc:.3f}  "
              f"validation {val_acc:.3f}  ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"test accuracy {accuracy(sim, X_test, y_test):.3f}  wall time {time.perf_counter() - start:.1f} s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="passes over the training set")
    parser.add_argument("--hidden", type=int, default=None, help="hidden LIF neurons")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the shuffling")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    parser.add_argument("--decay", type=float, default=0.9, help="learning rate factor after each epoch")
    parser.add_argument("--train-size", type=int, default=None, help="use the first N training samples")
    parser.add_argument("--quick", action="store_true", help="a short run (under ~3 minutes on 2 cores)")
    args = parser.parse_args(argv)
    quick = dict(epochs=5, hidden=100, lr=1e-2)
    full = dict(epochs=20, hidden=100, lr=1e-2)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    train(args)


if __name__ == "__main__":
    main()
