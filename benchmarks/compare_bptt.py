"""EventProp vs surrogate-gradient BPTT (eventgrad.bptt) vs snnTorch on CPU PyTorch: time and memory.

The SHD-shaped synthetic task of ``shd_synthetic.py`` (700 Poisson inputs, recurrent LIF hidden layer,
20 LI outputs, exponential synapses tau = 5 ms, tau_mem = 20 ms, dt = 1 ms, float32, summed-voltage
readout, cross-entropy) and a smaller one (64 hidden, 0.2 s). All methods see the same weights and
input spikes. Every (task, method) runs in its own process: "peak MB" is the high-water mark of its
resident set (imports included: torch alone is a few hundred MB), "+MB" that peak minus the resident set
once the simulator and data are built and one sample has run (kernels and libraries loaded), i.e. what
the forward and backward passes of the batch themselves hold.
EventProp runs once beforehand to fill numba's on-disk kernel cache, so compilation is neither timed nor
counted. Times are the best of ``--repeats`` after one warm-up; bwd = (fwd+bwd) - fwd.

snnTorch: snn.Synaptic layers with alpha = exp(-dt/tau_syn), beta = exp(-dt/tau_mem), reset to zero,
fast-sigmoid surrogate of slope 10 (our BPTT's default scale), and weights scaled by (1 - beta) because
snnTorch's membrane adds the synaptic current unscaled (mem <- beta mem + syn) where the ODE adds
(1 - beta) syn per step. Each method uses ``--threads`` threads (BLAS, numba, torch).

    python benchmarks/compare_bptt.py                      # SHD 256 hidden 1 s, and the small task
    python benchmarks/compare_bptt.py --full               # SHD grid: 1 s and 10 s, 256 and 1024 hidden
    python benchmarks/compare_bptt.py --durations 1000 10000 --hidden 256 1024 --batch 8 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shd_synthetic import build_network, make_batch  # noqa: E402

N_OUT = 20
TAU_SYN, TAU_MEM, DT = 5.0, 20.0, 1.0
METHODS = ["eventprop", "bptt", "snntorch"]


# ------------------------------------------------------------------------------------------- memory
def _status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the resident-set high-water mark so that warm-up (kernel compilation) does not count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ runners
class EventgradRunner:
    """eg.Simulator with method "eventprop" (fast kernels where they apply) or "bptt" (RK4, fast sigmoid)."""

    def __init__(self, net, args):
        import eventgrad as eg

        common = dict(dt=DT, duration=args.duration, dtype="float32", readout=eg.readouts.SumVar("o"),
                      loss=eg.losses.SoftmaxCrossEntropy())
        if args.method == "bptt":
            self.sim = eg.Simulator(net, **common, method="bptt")
        else:
            self.sim = eg.Simulator(net, **common, threads=args.threads)

    def prepare(self, batch):
        return batch

    @property
    def detail(self) -> str:
        if self.sim.__class__.__name__ == "BPTTSimulator":
            return f"{self.sim.integrator}, {self.sim.surrogate.name}"
        return f"{self.sim.kernels_used} kernels"

    def forward(self, batch) -> float:
        """Hidden spikes per sample."""
        return float(self.sim.run(batch).spike_counts("h").sum()) / len(batch)

    def forward_backward(self, batch, labels) -> None:
        self.sim.loss_and_grad(batch, labels)


class SnnTorchRunner:
    """The same network with snnTorch's Synaptic neurons, unrolled over the grid by autograd."""

    def __init__(self, net, args):
        import snntorch as snn
        import torch
        from snntorch import surrogate

        torch.set_num_threads(args.threads)
        self.torch, self.n_steps = torch, int(round(args.duration / DT))
        alpha, beta = np.exp(-DT / TAU_SYN), np.exp(-DT / TAU_MEM)
        weights = {c.name: torch.tensor(c.weight * (1 - beta), dtype=torch.float32, requires_grad=True)
                   for c in net.connections}
        self.w_in, self.w_rec, self.w_out = weights["xh"], weights["hh"], weights["ho"]
        self.hidden = snn.Synaptic(alpha=alpha, beta=beta, spike_grad=surrogate.fast_sigmoid(slope=10),
                                   reset_mechanism="zero")
        self.output = snn.Synaptic(alpha=alpha, beta=beta, reset_mechanism="none")
        self.n_in, self.n_hidden = self.w_in.shape
        self.detail = f"snntorch {snn.__version__}, torch {torch.__version__}"

    def prepare(self, batch):
        """(steps, batch, inputs) boolean tensor: input spikes binned as eventgrad.bptt bins them."""
        from eventgrad.bptt.passes import grid_index

        x = np.zeros((self.n_steps, len(batch), self.n_in), bool)
        for b, (t, u) in enumerate(zip(batch.times, batch.units)):
            x[np.clip(grid_index(t, DT) - 1, 0, self.n_steps - 1), b, u] = True
        return self.torch.from_numpy(x)

    def _run(self, x):
        torch = self.torch
        B = x.shape[1]
        syn_h, mem_h = self.hidden.init_synaptic()
        syn_o, mem_o = self.output.init_synaptic()
        spk = torch.zeros(B, self.n_hidden)
        y, n_spikes = 0.0, 0.0
        for t in range(self.n_steps):
            cur = x[t].float() @ self.w_in + spk @ self.w_rec
            spk, syn_h, mem_h = self.hidden(cur, syn_h, mem_h)
            _, syn_o, mem_o = self.output(spk @ self.w_out, syn_o, mem_o)
            y = y + mem_o
            n_spikes += float(spk.detach().sum())
        return y, n_spikes / B

    def forward(self, x) -> float:
        return self._run(x)[1]

    def forward_backward(self, x, labels) -> None:
        y, _ = self._run(x)
        loss = self.torch.nn.functional.cross_entropy(y, self.torch.as_tensor(labels))
        loss.backward()
        for w in (self.w_in, self.w_rec, self.w_out):
            w.grad = None


def measure(args) -> dict:
    """One (task, method) configuration: warm up, then the best of ``repeats`` timed runs."""
    rng = np.random.default_rng(args.seed)
    net = build_network(rng, args.inputs, args.hidden, N_OUT)
    batch, labels = make_batch(rng, args.batch, args.inputs, args.duration, args.rate)
    runner = (SnnTorchRunner if args.method == "snntorch" else EventgradRunner)(net, args)
    data = runner.prepare(batch)
    one = runner.prepare(type(batch)(batch.times[:1], batch.units[:1]))
    runner.forward_backward(one, labels[:1])  # load kernels and libraries on one sample
    base = _status_mb("VmRSS")
    reset = _reset_peak()
    runner.forward_backward(data, labels)  # warm caches
    fwd, both = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        spikes = runner.forward(data)
        fwd.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        runner.forward_backward(data, labels)
        both.append(time.perf_counter() - t0)
    peak = _status_mb("VmHWM")
    f, fb = 1000 * min(fwd) / args.batch, 1000 * min(both) / args.batch
    return {"fwd": f, "bwd": fb - f, "fwd_bwd": fb, "peak_mb": peak, "extra_mb": peak - base, "peak_reset": reset,
            "hidden_hz": spikes / args.hidden / (args.duration / 1000.0), "detail": runner.detail}


# ------------------------------------------------------------------------------------------- driver
def _available(method: str) -> str | None:
    """None if the method can run here, else why not."""
    if method != "snntorch":
        return None
    import importlib.util

    missing = [m for m in ("torch", "snntorch") if importlib.util.find_spec(m) is None]
    return f"{' and '.join(missing)} not installed (pip install -e '.[bench]')" if missing else None


def _configs(args):
    for hidden in args.hidden:
        for duration in args.durations:
            yield "SHD", hidden, duration
    if "small" in args.tasks:
        yield "small", 64, 200.0


def _child(args, method, hidden, duration) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--hidden-one", str(hidden), "--duration-one", str(duration)]
    for k in ("batch", "repeats", "threads", "seed", "rate", "inputs"):
        cmd += [f"--{k}", str(getattr(args, k))]
    env = dict(os.environ, **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                              "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")})
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _print_table(rows, notes):
    head = ["task", "method", "hidden", "T [ms]", "hid Hz", "fwd ms/smp", "bwd ms/smp", "fwd+bwd ms/smp",
            "peak MB", "+MB"]
    print(" | ".join(head))
    for task, method, hidden, duration, r in rows:
        cells = [task, f"{method} ({r['detail']})" if "detail" in r else method, str(hidden), f"{duration:.0f}"]
        if "error" in r:
            cells.append(f"failed: {r['error']}")
        else:
            cells += [f"{r['hidden_hz']:.1f}", f"{r['fwd']:.2f}", f"{r['bwd']:.2f}", f"{r['fwd_bwd']:.2f}",
                      f"{r['peak_mb']:.0f}", f"{r['extra_mb']:.0f}"]
        print(" | ".join(cells))
    for note in notes:
        print(f"note: {note}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--durations", type=float, nargs="+", default=[1000.0], help="SHD trial lengths [ms]")
    p.add_argument("--hidden", type=int, nargs="+", default=[256], help="SHD hidden sizes")
    p.add_argument("--full", action="store_true", help="SHD grid: durations 1000 10000, hidden 256 1024")
    p.add_argument("--tasks", nargs="+", default=["SHD", "small"], choices=["SHD", "small"])
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="threads per method (BLAS, numba, torch)")
    p.add_argument("--inputs", type=int, default=700)
    p.add_argument("--rate", type=float, default=10000.0, help="input spikes per sample per second")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--hidden-one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--duration-one", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:  # one configuration, in its own process
        args.method, args.hidden, args.duration = args.child, args.hidden_one, args.duration_one
        print(json.dumps(measure(args)))
        return
    if args.full:
        args.durations, args.hidden = [1000.0, 10000.0], [256, 1024]
    if "SHD" not in args.tasks:
        args.hidden, args.durations = [], []
    notes, methods = [], []
    for m in args.methods:
        why = _available(m)
        if why:
            notes.append(f"{m} skipped: {why}")
        else:
            methods.append(m)
    rows = []
    for task, hidden, duration in _configs(args):
        for method in methods:
            if method == "eventprop":  # a first run fills numba's kernel cache: compiling is not measured
                _child(args, method, hidden, duration)
            rows.append((task, method, hidden, duration, _child(args, method, hidden, duration)))
    if any(not r.get("peak_reset", True) for *_, r in rows):
        notes.append("could not reset the memory high-water mark: peak MB includes the warm-up")
    notes.append(f"batch {args.batch}, best of {args.repeats}, {args.threads} thread(s) per method, float32, "
                 "dt = 1 ms; bwd = (fwd+bwd) - fwd")
    _print_table(rows, notes)


if __name__ == "__main__":
    main()
