"""How long the kernels take to compile, and to load once compiled: the wait before a new network's first
run, and most of the test suite's duration.

Each row runs in fresh processes with an empty kernel cache (a temporary directory): the first process
compiles, a second one loads what the first left on disk. The network is the SHD benchmark's, small
(70 inputs, 25 recurrent LIF, 20 LI outputs, 100 ms): compile time does not depend on the sizes.

    python benchmarks/compile_time.py
    python benchmarks/compile_time.py --kernels generic --dtypes float32
    python benchmarks/compile_time.py --kernels step     # the step-parallel kernels: a 1 ms recurrent delay
    python benchmarks/compile_time.py --concurrent 2    # two processes start at once on one empty cache

With ``--concurrent N`` the first processes start together and share the empty cache, like the test
suite's workers or a parameter sweep: one compiles, the others wait for its file lock and load (their CPU
time stays small).

The last column names each kernel function that the compiling process compiled more than once, with the
argument whose type differed. numba compiles a version per distinct tuple of argument types, and a literal
constant is a type of its own: a call site that passes a bare ``0`` where others pass an ``np.int64``
costs a whole compile more. A process that loaded from the cache compiled nothing ("loaded").
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

    cpu = time.process_time()
    rng = np.random.default_rng(0)
    delay = 1.0 if kernels == "step" else None  # the step-parallel kernels need a delay on the recurrent loop
    sim = shd_synthetic.build(rng, 70, 25, 20, dtype, 100.0, kernels=kernels, recurrent_delay=delay)
    batch, labels = shd_synthetic.make_batch(rng, 2, 70, 100.0, 1000.0)
    t0 = time.perf_counter()
    sim.run(batch)
    t1 = time.perf_counter()
    sim.loss_and_grad(batch, labels)
    t2 = time.perf_counter()
    sim.loss_and_grad(batch, labels)  # compiled now: what the first call spent beyond this was compiling
    t3 = time.perf_counter()
    return {"forward": t1 - t0, "backward": (t2 - t1) - (t3 - t2), "cpu": time.process_time() - cpu,
            "path": sim.kernels_used, "twice": compiled_twice(sim.layout.kernels)}


def compiled_twice(module) -> str:
    """The module's functions with more than one compiled version, each with the arguments whose types
    differ between its versions; "loaded" if nothing beyond the entry points was compiled in this process."""
    from eventgrad.codegen.cache import ENTRY_POINTS

    found, compiled = [], 0
    for name in sorted(vars(module)):
        func = getattr(module, name)
        func = getattr(func, "kernel", func)  # an entry point, behind its cache lock
        sigs = getattr(func, "signatures", None)
        if not sigs:
            continue
        compiled += 1
        if len(sigs) > 1:
            names = func.py_func.__code__.co_varnames
            differ = [names[i] for i in range(len(sigs[0])) if len({str(sig[i]) for sig in sigs}) > 1]
            found.append(f"{name} ({len(sigs)}: {', '.join(differ)})")
    if compiled <= len(ENTRY_POINTS):  # at most the entry points, loaded from the cache
        return "loaded"
    return "; ".join(found) or "none"


def run_children(kernels: str, dtype: str, cache: str, n: int) -> list[dict]:
    """n processes started together on ``cache``; their measurements."""
    env = dict(os.environ, EVENTGRAD_CACHE_DIR=cache)
    procs = [subprocess.Popen([sys.executable, __file__, "--child", kernels, dtype], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a measuring process failed ({kernels}, {dtype})")
    return [json.loads(out.strip().splitlines()[-1]) for out in outs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", nargs="+", default=["auto", "generic"], choices=["auto", "generic", "step"])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--concurrent", type=int, default=1, help="processes started at once on the empty cache")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    print("| kernels | dtype | process | forward, compiled [s] | backward, compiled [s] | CPU [s] | "
          "both, loaded from the cache [s] | compiled twice |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for kernels in args.kernels:
        for dtype in args.dtypes:
            with tempfile.TemporaryDirectory() as cache:
                cold = run_children(kernels, dtype, cache, args.concurrent)
                warm = run_children(kernels, dtype, cache, 1)[0]
            for k, c in enumerate(cold):
                print(f"| {c['path']} | {dtype} | {k + 1} | {c['forward']:.1f} | {c['backward']:.1f} | "
                      f"{c['cpu']:.1f} | {warm['forward'] + warm['backward']:.1f} | {c['twice']} |", flush=True)


if __name__ == "__main__":
    main()
