"""How long the kernels take to compile, and to load once compiled: the wait before a new network's first
run, and most of the test suite's duration.

Each row runs in fresh processes with an empty kernel cache (a temporary directory): the first process
compiles, a second one loads what the first left on disk. The network is the SHD benchmark's, small
(70 inputs, 25 recurrent LIF, 20 LI outputs, 100 ms): compile time does not depend on the sizes.

    python benchmarks/compile_time.py
    python benchmarks/compile_time.py --kernels generic --dtypes float32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(kernels: str, dtype: str) -> dict:
    """One process: the first forward pass and the first loss_and_grad (on top of it), timed."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import shd_synthetic

    rng = np.random.default_rng(0)
    sim = shd_synthetic.build(rng, 70, 25, 20, dtype, 100.0, kernels=kernels)
    batch, labels = shd_synthetic.make_batch(rng, 2, 70, 100.0, 1000.0)
    t0 = time.perf_counter()
    sim.run(batch)
    t1 = time.perf_counter()
    sim.loss_and_grad(batch, labels)
    t2 = time.perf_counter()
    sim.loss_and_grad(batch, labels)  # compiled now: what the first call spent beyond this was compiling
    t3 = time.perf_counter()
    return {"forward": t1 - t0, "backward": (t2 - t1) - (t3 - t2), "path": sim.kernels_used}


def run_child(kernels: str, dtype: str, cache: str) -> dict:
    env = dict(os.environ, EVENTGRAD_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, __file__, "--child", kernels, dtype], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", nargs="+", default=["auto", "generic"], choices=["auto", "generic"])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    print("| kernels | dtype | forward, compiled [s] | backward, compiled [s] | both, loaded from the cache [s] |")
    print("|---|---|---:|---:|---:|")
    for kernels in args.kernels:
        for dtype in args.dtypes:
            with tempfile.TemporaryDirectory() as cache:
                cold = run_child(kernels, dtype, cache)
                warm = run_child(kernels, dtype, cache)
            print(f"| {cold['path']} | {dtype} | {cold['forward']:.1f} | {cold['backward']:.1f} | "
                  f"{warm['forward'] + warm['backward']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
