"""The shipped SHD recipe, end to end, on synthetic files in SHD's layout: how long an epoch of SHD's 8,156
training samples would take on this machine (measured on a subset, scaled linearly).

    python benchmarks/shd_recipe_synthetic.py                            # 256 training samples, 2 epochs
    python benchmarks/shd_recipe_synthetic.py --train 512 --epochs 2 --threads 2

The files: 700 channels, 20 classes, 10 speakers; each sample has about ``--spikes`` spikes in 800 ms,
half of them in a band of channels centred on its class (so that there is something to learn), half
spread over all channels. They are written with ``eventgrad.data.shd.save_shd`` and read by the recipe
through ``load_shd``, like the real ones. The recipe runs unchanged (10 delay lines: 7,000 inputs, 256
recurrent LIF with a 1 ms recurrent delay, 20 LI, shift 40 and blend 0.5 every epoch) except for the
number of epochs and threads. An epoch trains on 1.5 times the training samples (blend adds half as many)
and evaluates the validation split; both scale with the set's size, so the time for 8,156 samples is the
measured epoch time times 8,156 / samples.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

SHD_TRAIN = 8156


def synthetic_file(path: str, n: int, spikes: int, seed: int) -> None:
    from eventgrad.data import SpikeDataset
    from eventgrad.data.shd import save_shd

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 20, n)
    times, units = [], []
    for c in labels:
        k = rng.poisson(spikes)
        band = rng.random(k) < 0.5
        u = np.where(band, np.clip(np.rint(rng.normal(35 * c + 17, 20, k)), 0, 699), rng.integers(0, 700, k))
        t = rng.uniform(0.0, 800.0, k)
        order = np.argsort(t)
        times.append(t[order])
        units.append(u[order].astype(np.int64))
    ds = SpikeDataset(times, units, labels, 700, 1000.0, n_classes=20, speakers=rng.integers(0, 10, n))
    save_shd(path, ds)


def main(argv=None) -> None:
    from eventgrad.config import read_config, recipe_path, resolve, set_value
    from eventgrad.experiment import run

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=256, help="training samples in the synthetic file")
    parser.add_argument("--test", type=int, default=64)
    parser.add_argument("--spikes", type=int, default=8000, help="mean spikes per sample (SHD: several thousand)")
    parser.add_argument("--epochs", type=int, default=2, help="the first compiles, later ones time")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        paths = {key: os.path.join(folder, f"{key}.h5") for key in ("train", "test")}
        synthetic_file(paths["train"], args.train, args.spikes, seed=0)
        synthetic_file(paths["test"], args.test, args.spikes, seed=1)
        raw = read_config(recipe_path("shd"))
        for assignment in (f"data.path={paths['train']}", f"data.test_path={paths['test']}",
                           f"training.epochs={args.epochs}", f"simulation.threads={args.threads}",
                           "output.progress=false"):
            raw = set_value(raw, assignment)
        start = time.perf_counter()
        result = run(resolve(raw))
        total = time.perf_counter() - start
    times = [h["time"] for h in result["history"]]
    epoch = min(np.diff([0.0] + times)[1:]) if len(times) > 1 else times[0]
    print(f"SHD recipe on {args.train} synthetic samples ({args.spikes} spikes each), {args.threads} thread(s): "
          f"epoch {epoch:.1f} s (the first includes compiling: {times[0]:.1f} s); an epoch of {SHD_TRAIN} samples "
          f"would take about {epoch * SHD_TRAIN / args.train / 60:.1f} min; test accuracy "
          f"{result['test_accuracy']:.3f}; {total:.1f} s in all")


if __name__ == "__main__":
    main()
