"""EventProp against surrogate-gradient BPTT on Yin-Yang: the same network, data and training, over seeds.

Both runs use the configuration of ``eventgrad train`` (5-100-3, LIF hidden, LI output, mean-voltage
readout, Adam with cosine decay, the silent-neuron push) and differ only in ``simulation.method``.
Prints one row per method: test accuracy (mean +- standard deviation over the seeds, and each seed),
the best validation epoch and wall time per epoch.

    python benchmarks/yinyang_methods.py --seeds 3
    python benchmarks/yinyang_methods.py --seeds 5 --epochs 25 --surrogate arctan
"""

from __future__ import annotations

import argparse

import numpy as np

from eventgrad.config import resolve
from eventgrad.experiment import run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 for each method")
    parser.add_argument("--epochs", type=int, default=None, help="override training.epochs (default: 25)")
    parser.add_argument("--surrogate", default="fast_sigmoid", help="BPTT surrogate (fast_sigmoid, arctan, ...)")
    parser.add_argument("--methods", nargs="+", default=["eventprop", "bptt"])
    args = parser.parse_args(argv)
    rows = []
    for method in args.methods:
        accs, epochs, per_epoch = [], [], []
        for seed in range(args.seeds):
            override = {"seed": seed, "simulation": {"method": method, "surrogate": args.surrogate},
                        "output": {"progress": False}}
            if args.epochs:
                override["training"] = {"epochs": args.epochs}
            cfg = resolve(override)
            result = run(cfg, out=lambda *a: None)
            accs.append(result["test_accuracy"])
            epochs.append(result["best_epoch"])
            per_epoch.append(result["history"][-1]["time"] / len(result["history"]))
            print(f"{method} seed {seed}: test accuracy {accs[-1]:.4f}, best epoch {epochs[-1]}, "
                  f"{per_epoch[-1]:.1f} s per epoch", flush=True)
        name = method if method == "eventprop" else f"bptt ({args.surrogate})"
        rows.append((name, np.mean(accs), np.std(accs), accs, epochs, np.mean(per_epoch)))
    print()
    print("| method | test accuracy [%] | per seed [%] | best epochs | s per epoch |")
    print("|---|---:|---|---|---:|")
    for name, mean, std, accs, epochs, sec in rows:
        seeds = ", ".join(f"{100 * a:.1f}" for a in accs)
        print(f"| {name} | {100 * mean:.1f} +- {100 * std:.1f} | {seeds} | {', '.join(map(str, epochs))} | {sec:.1f} |")


if __name__ == "__main__":
    main()
