"""Data-parallel gradients on Ray: each worker runs the engine on its share of a batch, with the same parameters.

A batch is cut into contiguous shares, one per worker (actors built once per run, each holding a copy of the
simulator). A step takes two round trips, so that every quantity that couples the samples of a batch is
computed once, on the whole batch, exactly as in one process:

1. forward: the parameters go out once per batch (``ray.put``); each worker runs its share and keeps the
   result; it returns its readout and spike counts;
2. the driver computes the loss and its cotangent dL/dreadout on the whole batch (a loss that is not a plain
   mean over samples, such as FirstSpikeCrossEntropy's skip_silent_label, stays exact), and the
   regulariser's spike-time terms from the whole batch's counts;
3. backward: each worker gets its rows of both and runs EventProp; the driver adds the workers' float64
   gradients in worker order.

The result equals the single-process gradient up to the order of the summation. Nothing is applied until
every worker has answered: a worker that dies or fails makes the step raise (naming the worker) before any
parameter changes.

Workers get ``threads`` each (the cluster's CPUs shared out, unless given), ``NUMBA_NUM_THREADS`` to match,
and the driver's ``EVENTGRAD_CACHE_DIR``: they load kernels from the shared on-disk cache, whose entry points
compile under a file lock (``eventgrad.codegen.cache``), so workers that build the same new kernel at once
compile it once.
"""

from __future__ import annotations

import os
import time

import numpy as np

from eventgrad.data.spikes import SpikeBatch


class WorkerError(RuntimeError):
    """A Ray worker died or could not be reached: the batch's gradient is incomplete and was not applied."""


def import_ray():
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("training with workers > 1 (and eventgrad sweep) runs on Ray, which is not installed: "
                          "pip install 'eventgrad[ray]'") from err
    return ray


def check_workers(workers) -> int:
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer (1: no Ray, one process), got {workers!r}")
    return int(workers)


def shares(n: int, workers: int) -> list[range]:
    """Contiguous shares of n samples, as equal as possible, in worker order; empty shares left out."""
    bounds = [k * n // workers for k in range(workers + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def rows_of(batch, rows: range):
    """Samples ``rows`` of a SpikeBatch (or of each SpikeBatch of a dict input name -> SpikeBatch)."""
    if isinstance(batch, dict):
        return {name: rows_of(b, rows) for name, b in batch.items()}
    cut = slice(rows.start, rows.stop)
    return SpikeBatch._from_checked(batch.times[cut], batch.units[cut], None if batch.values is None else
                                    batch.values[cut])


def batch_size(batch) -> int:
    return len(next(iter(batch.values()))) if isinstance(batch, dict) else len(batch)


class _Worker:
    """A Ray actor: one copy of the simulator, the forward result of its share kept for the backward pass."""

    def __init__(self, sim, threads: int):
        self.sim = sim
        self.sim.threads = threads
        self.result = None
        self.calls = 0
        self.exit_on_call = None  # a test hook: the process exits at this forward call (a lost machine)

    def ready(self) -> int:
        return os.getpid()

    def exit_at(self, call: int) -> None:
        self.exit_on_call = self.calls + int(call)

    def forward(self, params: dict, batch, groups: list[str], keep: bool):
        self.calls += 1
        if self.exit_on_call == self.calls:
            os._exit(1)
        start = time.perf_counter()
        for key, value in params.items():
            self.sim.params[key][...] = value
        res = self.sim.run(batch)
        self.result = res if keep else None
        counts = {name: res.spike_counts(name) for name in groups}
        return res.readout, counts, time.perf_counter() - start

    def backward(self, dL_dreadout, spike_terms):
        start = time.perf_counter()
        res, self.result = self.result, None
        if res is None:
            raise RuntimeError("backward without a forward pass kept on this worker")
        return self.sim.backward(res, dL_dreadout, spike_terms), time.perf_counter() - start


class RayWorkers:
    """``workers`` Ray actors holding copies of ``sim``; see the module notes.

    ``address``: an existing cluster ("auto", "ray://host:10001", ...); None starts a local one unless Ray
    is already initialised in this process (a cluster started here is shut down by :meth:`close`).
    ``threads``: per worker; default: the cluster's CPUs divided by ``workers`` (at least 1)."""

    def __init__(self, sim, workers: int, address: str | None = None, threads: int | None = None,
                 start_timeout: float = 600.0):
        ray = import_ray()
        self.workers = check_workers(workers)
        self._ray = ray
        self._started_ray = False
        if not ray.is_initialized():
            ray.init(address=address or None, include_dashboard=False, log_to_driver=True)
            self._started_ray = True
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < self.workers:
            self.close()
            raise ValueError(f"the Ray cluster has {cpus} CPUs; {self.workers} workers need one each")
        self.threads = int(threads) if threads else max(1, cpus // self.workers)
        env = {"NUMBA_NUM_THREADS": str(self.threads)}
        if os.environ.get("EVENTGRAD_CACHE_DIR"):
            env["EVENTGRAD_CACHE_DIR"] = os.environ["EVENTGRAD_CACHE_DIR"]
        actor = ray.remote(_Worker).options(num_cpus=self.threads, max_restarts=0, runtime_env={"env_vars": env})
        sim_ref = ray.put(sim)
        self.actors = [actor.remote(sim_ref, self.threads) for _ in range(self.workers)]
        self._groups = [g.name for g in sim.network.groups if not g.is_input]
        self._broken: str | None = None
        self.compute_seconds: list[float] = []  # per training step: slowest forward + slowest backward pass
        start = time.perf_counter()
        self._gather([a.ready.remote() for a in self.actors], "starting", timeout=start_timeout)
        self.start_seconds = time.perf_counter() - start

    @property
    def broken(self) -> bool:
        """Whether a worker died or failed: the pool cannot take another batch."""
        return self._broken is not None

    # ------------------------------------------------------------------------------------------ steps
    def forward(self, sim, batch, keep: bool = False):
        """(readout (B, outputs), {population: counts (B, size)}) of ``batch`` at ``sim.params``."""
        if self._broken:
            raise WorkerError(f"the Ray workers are unusable since {self._broken}; the trainer's next fit (or "
                              "start_workers) starts new ones")
        params = self._ray.put({k: np.asarray(v) for k, v in sim.params.items()})
        self._parts = shares(batch_size(batch), self.workers)
        refs = [a.forward.remote(params, rows_of(batch, part), self._groups, keep)
                for a, part in zip(self.actors, self._parts)]
        out = self._gather(refs, "the forward pass")
        readout = np.concatenate([r for r, _, _ in out])
        counts = {name: np.concatenate([c[name] for _, c, _ in out]) for name in self._groups}
        self._forward_seconds = [t for _, _, t in out]
        return readout, counts

    def backward(self, dL_dreadout: np.ndarray, spike_terms: dict | None) -> dict:
        """The batch's gradients: the workers' own for their rows of the cotangents, added in worker order."""
        refs = []
        for actor, part in zip(self.actors, self._parts):
            rows = slice(part.start, part.stop)
            terms = {k: v[rows] for k, v in spike_terms.items()} if spike_terms else None
            refs.append(actor.backward.remote(dL_dreadout[rows], terms))
        out = self._gather(refs, "the backward pass")
        parts = [g for g, _ in out]
        # the simulation's share of the step (each pass waits for its slowest worker): the rest is the overhead
        # (see benchmarks/ray_scaling.py)
        self.compute_seconds.append(max(self._forward_seconds) + max(b for _, b in out))
        return {key: _ordered_sum([p[key] for p in parts]) for key in parts[0]}

    def _gather(self, refs, what: str, timeout: float | None = None) -> list:
        """Every worker's answer, in worker order, or an error naming the first worker that failed."""
        ray = self._ray
        out = []
        deadline = None if timeout is None else time.perf_counter() + timeout
        for i, ref in enumerate(refs):
            left = None if deadline is None else max(0.0, deadline - time.perf_counter())
            try:
                out.append(ray.get(ref, timeout=left))
            except ray.exceptions.RayTaskError as err:  # the worker's own exception: raise it as it was
                self._broken = f"worker {i} failed in {what}"
                cause = err.as_instanceof_cause()
                raise cause from None
            except ray.exceptions.GetTimeoutError as err:
                self._broken = f"worker {i} did not start"
                raise WorkerError(f"Ray worker {i} of {len(refs)} did not start within {timeout:g} s (too few free "
                                  "CPUs on the cluster, or its kernels did not load)") from err
            except ray.exceptions.RayError as err:  # the actor died, its node was lost, ...
                self._broken = f"worker {i} died in {what}"
                raise WorkerError(f"Ray worker {i} of {len(refs)} died during {what} of this batch "
                                  f"({type(err).__name__}); no gradient of the batch was applied, the parameters "
                                  "are those before it") from err
        return out

    def kill_on_next_forward(self, worker: int, calls: int = 1) -> None:
        """Testing: make worker ``worker`` exit (as a lost machine would) at its ``calls``-th next forward pass."""
        self._ray.get(self.actors[worker].exit_at.remote(calls))

    def close(self) -> None:
        """Stop the actors, and Ray itself if it was started here."""
        ray = self._ray
        for actor in getattr(self, "actors", []):
            try:
                ray.kill(actor)
            except Exception:  # already dead
                pass
        self.actors = []
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray = False


def _ordered_sum(arrays):
    total = np.array(arrays[0], dtype=np.float64, copy=True)
    for a in arrays[1:]:
        total += a
    return total
