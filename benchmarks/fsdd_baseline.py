"""A non-spiking baseline on the audio front end's spikes: logistic regression on spike counts per channel and
time bin, so that a reader can judge the spiking networks' numbers on FSDD (docs/benchmarks.md).

    EVENTGRAD_FSDD=path/to/fsdd python benchmarks/fsdd_baseline.py                    # dataset split
    EVENTGRAD_FSDD=path/to/fsdd python benchmarks/fsdd_baseline.py --speakers george lucas

Features: the spikes of each channel counted in ``--bins`` equal bins of the trial, log(1 + count),
standardised on the training set. The model: multinomial logistic regression with an L2 penalty
(``--l2``), fitted by L-BFGS (scipy) to convergence; deterministic, no seed needed. The front end takes
the ``fsdd`` recipe's settings (its ``[data.audio]`` table and trial length, read from the shipped recipe
file, so that the baseline always sees the spikes the recipe trains on) unless told otherwise.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def features(ds, bins: int) -> np.ndarray:
    """(samples, channels * bins) log(1 + spike count) in each channel and time bin."""
    sample = np.repeat(np.arange(len(ds)), np.diff(ds.offsets))
    b = np.minimum((ds.times / ds.duration * bins).astype(np.int64), bins - 1)
    counts = np.zeros((len(ds), ds.n_units * bins))
    np.add.at(counts, (sample, ds.units * bins + b), 1.0)
    return np.log1p(counts)


def fit_logistic(X: np.ndarray, y: np.ndarray, n_classes: int, l2: float) -> np.ndarray:
    """Weights (features + 1, classes) minimising mean cross-entropy + l2 / 2 |W|^2 (bias not penalised)."""
    from scipy.optimize import minimize

    Xb = np.hstack([X, np.ones((X.shape[0], 1))])
    onehot = np.eye(n_classes)[y]

    def loss_grad(w):
        W = w.reshape(Xb.shape[1], n_classes)
        z = Xb @ W
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.mean(np.sum(onehot * np.log(p + 1e-300), axis=1)) + 0.5 * l2 * np.sum(W[:-1] ** 2)
        grad = Xb.T @ (p - onehot) / Xb.shape[0]
        grad[:-1] += l2 * W[:-1]
        return loss, grad.ravel()

    res = minimize(loss_grad, np.zeros(Xb.shape[1] * n_classes), jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000})
    return res.x.reshape(Xb.shape[1], n_classes)


def accuracy(W: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(np.hstack([X, np.ones((X.shape[0], 1))]) @ W, axis=1) == y))


def recipe_front_end() -> dict:
    """The ``fsdd`` recipe's front end ({"n_channels", "f_min", "f_max", "scale", "compression", "threshold"},
    the defaults filled in) and its trial length ``duration`` (ms)."""
    from eventgrad.config import read_config, recipe_path, resolve

    cfg = resolve(read_config(recipe_path("fsdd")))
    audio = dict(cfg["data"]["audio"])
    audio["f_max"] = audio["f_max"] or None
    return {**audio, "duration": cfg["simulation"]["duration"]}


def main(argv=None) -> None:
    from eventgrad.data.spoken_digits import fsdd

    recipe = recipe_front_end()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", default=None, help="fsdd.npz or its folder (default: $EVENTGRAD_FSDD)")
    parser.add_argument("--speakers", nargs="*", default=None, help="hold out these speakers (default: the "
                        "dataset's own split, takes 0-4)")
    parser.add_argument("--channels", type=int, default=recipe["n_channels"])
    parser.add_argument("--compression", type=float, default=recipe["compression"])
    parser.add_argument("--threshold", type=float, default=recipe["threshold"])
    parser.add_argument("--duration", type=float, default=recipe["duration"])
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--l2", type=float, default=1e-3)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    split = {"split": "speakers", "test_speakers": args.speakers} if args.speakers else {"split": "takes"}
    front_end = {k: recipe[k] for k in ("f_min", "f_max", "scale")}
    train, test = fsdd(args.path, duration=args.duration, n_channels=args.channels, compression=args.compression,
                       threshold=args.threshold, **front_end, **split)
    converted = time.perf_counter() - start
    X, Xt = features(train, args.bins), features(test, args.bins)
    mean, sd = X.mean(axis=0), X.std(axis=0) + 1e-9
    W = fit_logistic((X - mean) / sd, train.labels, 10, args.l2)
    print(f"FSDD {split['split']} split{' ' + ','.join(args.speakers) if args.speakers else ''}: "
          f"{len(train)} train / {len(test)} test; front end (compression {args.compression:g}, threshold "
          f"{args.threshold:g}: {np.diff(train.offsets).mean():.0f} spikes per training clip) {converted:.1f} s; "
          "logistic regression on "
          f"{args.channels} channels x {args.bins} bins: train {accuracy(W, (X - mean) / sd, train.labels):.4f}, "
          f"test {accuracy(W, (Xt - mean) / sd, test.labels):.4f}; {time.perf_counter() - start:.1f} s in all")


if __name__ == "__main__":
    main()
