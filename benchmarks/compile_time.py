"""How long the kernels take to compile, and to load once compiled: the wait before a new network's first
run, and most of the test suite's duration.

Each row runs in fresh processes with an empty kernel cache (a temporary directory): the first process
compiles, a second one loads what the first left on disk, and a third builds another network on the
cache the first two left: other models, so other generated code, the same kernel family (for the fast and
step-parallel rows adaptive LIF hidden neurons and synapses with another time constant; for the generic
row a neuron written by the user, quadratic integrate-and-fire as a ``UserNeuron``, with alpha-shaped
synapses written as a ``UserSynapse``). The network is the SHD benchmark's, small (70 inputs, 25
recurrent LIF, 20 LI outputs, 100 ms): compile time does not depend on the sizes.

The engines (generic, fast and step-parallel) are the same code for every network and are compiled once
per machine and precision (the first process's time); a new network compiles only its model functions,
as C callbacks (the third process's time).

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


def measure(kernels: str, dtype: str, other: bool = False) -> dict:
    """One process: the first forward pass and the first loss_and_grad (on top of it), timed. ``other``: the
    network with other models (see the module docstring)."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import shd_synthetic

    import eventgrad as eg

    cpu = time.process_time()
    rng = np.random.default_rng(0)
    delay = 1.0 if kernels == "step" else None  # the step-parallel kernels need a delay on the recurrent loop
    if other:
        net = eg.Network()
        x = net.add_input("x", 70)
        if kernels == "generic":  # models a user writes: nonlinear, and a synapse of two variables
            neuron = eg.UserNeuron(vars={"v": ("(v * v - v + Isyn) / tau_mem", "v_reset")}, threshold="v - v_thresh",
                                   output_var_name="v", param_vals={"tau_mem": 20.0, "v_thresh": 1.0, "v_reset": 0.0},
                                   var_vals={"v": 0.0})
            synapse = eg.UserSynapse(vars={"i": ("(-i + a) / tau", "i"), "a": ("-a / tau", "a + weight")},
                                     inject_current="i", param_vals={"tau": 3.0})
        else:
            neuron, synapse = eg.neurons.AdaptiveLIF(tau_mem=20.0), eg.synapses.Exponential(tau=3.0)
        h = net.add_population("h", 25, neuron)
        o = net.add_population("o", 20, eg.neurons.LI(tau_mem=20.0))
        net.connect(x, h, synapse, weight=rng.normal(0.04, 0.02, (70, 25)), name="xh")
        net.connect(h, h, synapse, weight=rng.normal(0.0, 0.02, (25, 25)), name="hh", delay=delay)
        net.connect(h, o, eg.synapses.Exponential(tau=3.0), weight=rng.normal(0.0, 0.03, (25, 20)), name="ho")
        sim = eg.Simulator(net, dt=1.0, duration=100.0, dtype=dtype, readout=eg.readouts.SumVar("o"),
                           loss=eg.losses.SoftmaxCrossEntropy(), kernels=kernels)
    else:
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
            "path": sim.kernels_used,
            "twice": compiled_twice(sim.layout.engine)}


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


def run_children(kernels: str, dtype: str, cache: str, n: int, other: bool = False) -> list[dict]:
    """n processes started together on ``cache``; their measurements."""
    env = dict(os.environ, EVENTGRAD_CACHE_DIR=cache)
    child = ["--child", kernels, dtype] + (["--other"] if other else [])
    procs = [subprocess.Popen([sys.executable, __file__, *child], env=env,
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
    ap.add_argument("--other", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, other=args.other)))
        return
    print("| kernels | dtype | process | forward, compiled [s] | backward, compiled [s] | CPU [s] | "
          "both, loaded from the cache [s] | another network: forward + backward [s] | compiled twice |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for kernels in args.kernels:
        for dtype in args.dtypes:
            with tempfile.TemporaryDirectory() as cache:
                cold = run_children(kernels, dtype, cache, args.concurrent)
                warm = run_children(kernels, dtype, cache, 1)[0]
                other = run_children(kernels, dtype, cache, 1, other=True)[0]
            for k, c in enumerate(cold):
                print(f"| {c['path']} | {dtype} | {k + 1} | {c['forward']:.1f} | {c['backward']:.1f} | "
                      f"{c['cpu']:.1f} | {warm['forward'] + warm['backward']:.1f} | "
                      f"{other['forward'] + other['backward']:.1f} ({other['path']}) | {c['twice']} |", flush=True)


if __name__ == "__main__":
    main()
