"""The simulator: runs batches through the generated kernels and turns adjoint results into gradients.

Samples of a batch are independent; they run on a thread pool (the kernels release the GIL); their gradients
are summed in fixed chunks of samples, in an order that does not depend on the number of threads.  Event logs
start small and are grown (and the sample rerun) whenever a kernel reports that one would overflow: nothing is
ever dropped.
"""

from __future__ import annotations

import ctypes
import inspect
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from eventgrad.engine import steppath
from eventgrad.engine.fastpath import modal_tables, static_reason
from eventgrad.engine.inputs import MergedInputs, check_grid, merge_inputs
from eventgrad.engine.layout import build_layout
from eventgrad.engine.numeric import check_finite_dynamics, check_stable_dynamics
from eventgrad.engine.results import (
    ERR_BUDGET,
    ERR_CAPACITY,
    ERR_ROOM,
    Result,
    SampleRecord,
    SimulationError,
    check_finite_gradients,
    raise_for_status,
)
from eventgrad.losses import SoftmaxCrossEntropy
from eventgrad.network import Network, NetworkError
from eventgrad.readouts import FIRST_SPIKE, SPIKE_COUNT, Readout

KERNELS = ("auto", "generic", "step")  # Simulator(kernels=...)
SPIKES_PER_NEURON_AND_STEP, SPIKES_PER_NEURON_AND_MS = 64, 10  # the default spike budget (spike_budget)
GRADIENT_CHUNKS = 8  # a batch's gradient is summed in this many chunks of samples, whatever the thread count


def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (macOS, Windows, musl)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _malloc_trim()


# a sample with at least this many inputs and logged events hands its work's memory back when it ends
TRIM_ABOVE_EVENTS = 1 << 16


def sample_events(n_inputs: int, n_logged: int, step_kernels: bool) -> int:
    """A sample's inputs and logged events (the step-parallel kernels log spikes only, the others inputs too):
    what its work arrays grow with."""
    return n_logged + (n_inputs if step_kernels else 0)


def release_freed_memory(events: int) -> None:
    """After a sample of ``events`` inputs and logged events (``sample_events``), hand the memory that its work
    arrays used back to the system, if the sample was large.

    A sample's work (its merged inputs, the room of its log, the kernels' per-event arrays: megabytes at
    10 s) is freed when the sample ends, but glibc keeps freed blocks in each thread's heap: over a batch
    the worker threads' heaps hold about 30 MB more than a batch's input and logs at 10 s on the
    SHD-shaped benchmark. malloc_trim gives their free pages back; it changes no allocator option of the
    process and runs without the GIL (ctypes releases it). The price is the next sample touching fresh
    pages: about 8 % of the time at 10 s on that benchmark (docs/benchmarks.md). Smaller samples keep
    little and skip it; raising TRIM_ABOVE_EVENTS skips it for larger ones too. Nothing happens where the
    C library has no malloc_trim."""
    if _MALLOC_TRIM is not None and events >= TRIM_ABOVE_EVENTS:
        _MALLOC_TRIM(0)


def spike_budget(layout, dt: float, asked: int | None) -> int:
    """The most spikes one step may hold: ``asked``, or by default every spiking neuron firing 64 times in
    the step, or 10 times per ms of it if that is more (see Simulator's ``max_spikes_per_step``)."""
    if asked is not None:
        if isinstance(asked, bool) or not isinstance(asked, (int, np.integer)) or asked < 1:
            raise ValueError(f"max_spikes_per_step must be a positive integer (spikes in one step of dt, all "
                             f"populations together), got {asked!r}")
        return int(asked)
    n_spiking = sum(g.size for g, adj in zip(layout.network.groups, layout.adjoints)
                    if adj is not None and adj.system.spiking)
    per_neuron = max(SPIKES_PER_NEURON_AND_STEP, int(np.ceil(SPIKES_PER_NEURON_AND_MS * dt)))
    return max(1, n_spiking * per_neuron)
EXCURSIONS = ("exact", "step_end")  # Simulator(excursions=...)


def _check_per_step(per_step) -> None:
    if isinstance(per_step, bool) or not isinstance(per_step, (int, np.integer)) or per_step < 1:
        raise ValueError(f"per_step must be a positive integer (grid points per dt), got {per_step!r}")


class Simulator:
    """Simulate a network on a batch of input spikes and differentiate a loss with EventProp.

    dt is the grid of the readout samples (spike times and input times are exact, never rounded to it);
    ``substeps`` sets the RK4 sub-step (dt / substeps) for nonlinear models. ``kernels``: "auto" runs a
    network with transmission delays on the step-parallel kernels where they apply (``engine/steppath.py``:
    linear models, current-like synapses, delays >= dt on every loop between spiking populations), any
    other network on the event-accumulating kernels where they apply (``engine/fastpath.py``), and the
    generic ones elsewhere; "step" asks for the step-parallel kernels (an error where they cannot run);
    "generic" forces the generic kernels. All locate spike times exactly; they differ in speed. ``dtype`` is
    the precision of parameters, weights, logs and results; the generic kernels integrate their states and
    adjoints in float64 whatever it is (and store them in it).
    ``kernels_used`` and ``kernel_reason`` say which ran last and why.

    ``excursions`` (fast kernels): "exact" finds every crossing of the threshold, including an excursion
    above it and back within one step, from bounds on the trajectory between the step's events and, for
    the neurons they leave in doubt, the trajectory itself; the spike trains then do not depend on dt.
    "step_end" only finds crossings whose neuron is above threshold at the end of a step (or raised there
    by a later spike of the step), the usual test of time-stepped simulators: faster (about a third less
    forward time on the SHD benchmark), and an excursion within a step is missed. The generic kernels
    test the threshold at every event and at the end of every step; the step-parallel kernels always find every
    crossing, as "exact" does (their bound covers the whole step), whatever ``excursions`` says.

    ``max_events``: the most events (inputs and spikes) one sample's log may hold. The log starts small
    and doubles when a sample overflows it; past this bound the run stops with an error instead, since
    a sample that needs ever more is almost always a network firing at a runaway rate.

    ``max_spikes_per_step``: the most spikes (all populations together) one step of dt may hold; a step with
    more stops the run with an error that names a population firing in it. A runaway network (huge weights,
    a time constant near zero) fires ever faster within one step, and the work of a step grows with its
    spikes, so without a bound it would run for hours before reaching ``max_events``. The default
    (``spike_budget``) lets every spiking neuron fire 64 times in each step, or 10 times per ms of the step
    if that is more: far above what trained networks do (a few spikes per neuron per trial).
    """

    def __new__(cls, net=None, *args, method: str = "eventprop", surrogate=None, **kwargs):
        """Dispatch on ``method``: "bptt" returns an ``eventgrad.bptt.BPTTSimulator`` (surrogate-gradient BPTT on
        the dt grid, same models, parameter keys, readouts and losses); anything else builds this class."""
        if method != "bptt":
            return super().__new__(cls)
        if len(args) > 5:
            raise TypeError("with method='bptt', pass the options after 'loss' by keyword (surrogate, integrator, "
                            "substeps, threads); the EventProp options jit, kernels, min_threshold_rate do not apply")
        from eventgrad.bptt import BPTTSimulator

        return BPTTSimulator(net, *args, **kwargs, **({} if surrogate is None else {"surrogate": surrogate}))

    def __init__(self, net: Network, dt: float, duration: float, dtype="float32", readout: Readout | None = None,
                 loss=None, substeps: int = 4, threads: int | None = None, jit: bool = True,
                 min_threshold_rate: float = 1e-9, kernels: str = "auto", method: str = "eventprop", surrogate=None,
                 excursions: str = "exact", max_events: int = 2**24, max_spikes_per_step: int | None = None):
        if method != "eventprop":
            raise ValueError(f"unknown method {method!r}; known: 'eventprop' (exact gradients, the default) and "
                             "'bptt' (surrogate-gradient backpropagation through time)")
        if surrogate is not None:
            raise ValueError(f"surrogate={surrogate!r} applies only to method='bptt'; EventProp computes exact "
                             "gradients and uses no surrogate")
        n_steps, self.dtype = check_grid(net, dt, duration, dtype, "Simulator")
        # what rebuilds this simulator in another process (pickling: Ray workers, multiprocessing)
        self._options = {"dt": dt, "duration": duration, "dtype": dtype, "readout": readout, "loss": loss,
                         "substeps": substeps, "threads": threads, "jit": jit, "min_threshold_rate": min_threshold_rate,
                         "kernels": kernels, "excursions": excursions, "max_events": max_events,
                         "max_spikes_per_step": max_spikes_per_step}
        self.network = net
        self.dt, self.duration, self.n_steps = float(dt), float(duration), n_steps
        if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or substeps < 1:
            raise ValueError(f"substeps must be a positive integer (RK4 sub-steps per dt), got {substeps!r}")
        self.h_max = float(dt) / int(substeps)
        # generic kernels that need the state in the backward pass keep it every `checkpoint_every` steps
        # and recompute the steps in between: memory O(N (T/K + K)), at most one extra forward pass
        self.checkpoint_every = max(1, int(np.ceil(np.sqrt(n_steps))))
        self.tol = float(np.finfo(np.float64).eps) * 64 * max(1.0, dt)  # root finding runs in float64
        self.min_threshold_rate = min_threshold_rate
        self.readout = readout
        self.loss_fn = loss if loss is not None else SoftmaxCrossEntropy()
        if hasattr(self.loss_fn, "check_duration"):
            self.loss_fn.check_duration(self.duration)
        self.threads = threads or os.cpu_count() or 1
        self.jit = jit
        if kernels not in KERNELS:
            raise ValueError(f"kernels must be 'auto', 'step' or 'generic', got {kernels!r}")
        if excursions not in EXCURSIONS:
            raise ValueError(f"excursions must be 'exact' or 'step_end', got {excursions!r}")
        self.excursions = excursions
        if isinstance(max_events, bool) or not isinstance(max_events, (int, np.integer)) or max_events < 1:
            raise ValueError(f"max_events must be a positive integer, got {max_events!r}")
        self.max_events = int(max_events)
        self.layout = build_layout(net, jit)
        self.max_spikes_per_step = spike_budget(self.layout, self.dt, max_spikes_per_step)
        self._kernels_asked = kernels
        self.fast_reason = static_reason(self.layout) if kernels == "auto" else f"{kernels} kernels requested"
        self.step_reason = steppath.static_reason(self.layout, self.dt) if kernels != "generic" else \
            "generic kernels requested"
        if kernels == "step" and self.step_reason is not None:
            raise NetworkError(f"kernels='step': the step-parallel kernels cannot run this network: {self.step_reason}")
        if kernels == "auto" and self.step_reason is None and not any(c.delayed for c in net.connections):
            self.step_reason = "the network has no delays (the event-accumulating kernels run it)"
        self._step_order = np.array(steppath.population_order(net, self.dt) or [], np.int64)
        # which kernels run, and why not the faster ones, as far as the network alone says (runs update them)
        self._kernels_used = "step" if self.step_reason is None else "generic" if self.fast_reason else "fast"
        self.kernel_reason = self.fast_reason if self.step_reason is not None else None
        if self.step_reason is not None and self.fast_reason is not None and kernels == "auto" and \
                any(c.delayed for c in net.connections):
            self.kernel_reason = f"{self.step_reason}; {self.fast_reason}"
        self.params: dict[str, np.ndarray] = {}
        for c in net.connections:
            self.params[f"{c.name}.weight"] = c.weight.astype(self.dtype)
            if c.delayed:  # shape (): one delay for the connection; (pre, post): one per synapse
                self.params[f"{c.name}.delay"] = c.delay.astype(self.dtype)
        for slot in self.layout.param_slots:
            value = self._model_value(slot.key)
            self.params[slot.key] = np.array(value, dtype=self.dtype)
        self._param_keys = list(self.params)
        self.trainable = [f"{c.name}.weight" for c in net.connections]
        self.trainable += [f"{c.name}.delay" for c in net.connections if c.learn_delay]
        self.trainable += [s.key for s in self.layout.param_slots if s.trainable_column >= 0]
        self._capacity = 1024
        self._step_capacity = 4096
        self._arrival_room = 1024  # the step kernels' lists of one step's arrivals (grown on ERR_ROOM)
        self._readout_cfg = self._configure_readout(readout) if readout is not None else None

    # help(eg.Simulator) and editors show __init__'s parameters, not those of the dispatching __new__
    __signature__ = inspect.Signature(list(inspect.signature(__init__).parameters.values())[1:])

    def __reduce__(self):
        """Pickled as its network, constructor options and current parameters: the copy is built again (its
        kernels load from the on-disk cache) and takes the parameters; compiled kernels never travel."""
        params = {key: np.array(value, copy=True) for key, value in self.params.items()}
        return _rebuild_simulator, (self.network, self._options, params)

    # ------------------------------------------------------------------------------------------ setup
    def _model_value(self, key: str):
        group_or_conn, name = key.split(".", 1)
        for c in self.network.connections:
            if c.name == group_or_conn:
                return c.synapse.params[name]
        return self.network.group(group_or_conn).neuron.params[name]

    def _configure_readout(self, readout: Readout):
        g = self.network.group(readout.group)
        if g.is_input:
            raise NetworkError(f"readout group '{g.name}' is an input; read out a population")
        system = self.layout.adjoints[g.index].system
        var = readout.var if readout.var is not None else g.neuron.output_var
        if var not in system.state_names:
            raise NetworkError(f"readout variable '{var}' is not a variable of '{g.name}': {system.state_names}")
        if readout.kind in (FIRST_SPIKE, SPIKE_COUNT) and not system.spiking:
            raise NetworkError(f"{type(readout).__name__} readout of '{g.name}', whose neurons never spike "
                               "(no threshold)")
        if readout.kind == SPIKE_COUNT:  # counted from the spike log after the run; the kernels sample nothing
            return np.array([g.index, 0, 0], np.int64), np.zeros(self.n_steps, self.dtype), g.size
        RO = np.array([g.index, system.state_names.index(var), readout.kind], np.int64)
        return RO, readout.step_weights(self.n_steps, self.dt).astype(self.dtype), g.size

    def _flat_params(self):
        L = self.layout
        unknown = sorted(set(self.params) - set(self._param_keys))
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r} in sim.params; known: {self._param_keys}")
        missing = sorted(set(self._param_keys) - set(self.params))
        if missing:
            raise ValueError(f"parameter {missing[0]!r} was removed from sim.params")
        for key in self._param_keys:  # a list or a number written into sim.params becomes an array; text does not
            self.params[key] = _real_array(key, self.params[key])
        GI = L.GI.copy()
        PR = np.zeros(int(sum(GI[:, 1] * GI[:, 5])), self.dtype)
        for g in range(GI.shape[0]):
            if GI[g, 0] == 1:
                continue
            table = PR[GI[g, 4]:GI[g, 4] + GI[g, 1] * GI[g, 5]].reshape(GI[g, 1], GI[g, 5])
            shared = True
            for slot in (s for s in L.param_slots if s.group == g):
                value = np.asarray(self.params[slot.key], dtype=self.dtype)
                if value.shape not in ((), (GI[g, 1],)):
                    raise ValueError(f"parameter '{slot.key}' has shape {value.shape}; expected () or ({GI[g, 1]},)")
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"parameter '{slot.key}' contains NaN or infinite values")
                table[:, slot.column] = value
                shared &= value.ndim == 0 or bool(np.all(value == value.flat[0]))
            GI[g, 7] = int(shared)
            system = L.adjoints[g].system
            values = {p.key: self.params[p.key if "." in p.key else f"{system.name}.{p.key}"] for p in system.params}
            check_finite_dynamics(system, values, GI[g, 1])
            check_stable_dynamics(system, values, GI[g, 1])
        W = np.concatenate([np.asarray(self.params[f"{c.name}.weight"], self.dtype).ravel()
                            for c in self.network.connections] or [np.zeros(0, self.dtype)])
        for c in self.network.connections:
            if self.params[f"{c.name}.weight"].shape != c.weight.shape:
                raise ValueError(f"'{c.name}.weight' has shape {self.params[c.name + '.weight'].shape}, "
                                 f"expected {c.weight.shape}")
        if not np.all(np.isfinite(W)):
            raise ValueError("a weight matrix contains NaN or infinite values")
        return GI, PR, W, self._flat_delays()

    def _flat_delays(self) -> np.ndarray:
        """Every delayed connection's delays in one float64 array (arrival times are computed in float64)."""
        parts = []
        for c in (c for c in self.network.connections if c.delayed):
            key = f"{c.name}.delay"
            value = np.asarray(self.params[key])
            if value.shape == (1,):
                value = value.reshape(())
            if value.shape != c.delay.shape:
                raise ValueError(f"'{key}' has shape {value.shape}, expected {c.delay.shape}")
            if np.iscomplexobj(value) or not np.all(np.isfinite(value)):
                raise ValueError(f"'{key}' contains NaN, infinite or complex values")
            if np.any(value < 0):
                raise ValueError(f"'{key}' contains negative delays (min {value.min():g} ms); keep delays >= 0 "
                                 "(the optimisers take bounds per parameter pattern)")
            parts.append(value.astype(np.float64).ravel())
        return np.concatenate(parts) if parts else np.zeros(0, np.float64)

    def _initial_state(self):
        Z0 = np.zeros(self.layout.ztot, self.dtype)
        for _, zoff, size, initial in self.layout.z0_parts:
            d = len(initial)
            block = Z0[zoff:zoff + size * d].reshape(size, d)
            for i, value in enumerate(initial):
                block[:, i] = value
        return Z0

    def _merge_inputs(self, batch) -> MergedInputs:
        return merge_inputs(self.network, batch, self.duration, self.dtype)

    # ---------------------------------------------------------------------------------------- running
    def _map(self, fn, items):
        if self.jit and self.threads > 1 and len(items) > 1:
            pool = ThreadPoolExecutor(self.threads)
            try:
                return list(pool.map(fn, items))
            finally:  # on Ctrl-C, drop the samples not yet started instead of running them all first
                pool.shutdown(wait=True, cancel_futures=True)
        return [fn(item) for item in items]

    def _first_capacity(self, n_inputs: int) -> int:
        """The event log's size for a sample's first try: what the last samples needed, within max_events."""
        return min(max(self._capacity, 2 * n_inputs + 64), max(self.max_events, n_inputs + 1))

    def _grown(self, cap: int) -> int:
        """The event log's next size, after a sample did not fit in ``cap`` events; an error past
        ``max_events``, since a log that keeps growing is far more often a runaway than a real need."""
        if cap >= self.max_events:
            raise SimulationError(f"a sample needs more than max_events={self.max_events} events (inputs, spikes and "
                                  "arrivals of delayed spikes) in its log, or spikes in flight: some neurons fire at a "
                                  "runaway rate (check weights, thresholds and resets), or pass a larger max_events "
                                  "to Simulator if that many are expected")
        return min(2 * cap, self.max_events)

    def _forward_sample(self, tables, modal, Z0, RO, ws, n_out, sample, step=None):
        GI, PR, W, DL = tables
        t_in, u_in, g_in, v_in = sample
        L = self.layout
        # the step-parallel kernels log spikes only, and list each step's arrivals in room of their own
        cap = self._first_capacity(len(t_in)) if step is None else min(max(self._step_capacity, 4096), self.max_events)
        room = self._arrival_room
        while True:
            log_t = np.empty(cap, self.dtype)
            log_i = np.empty((cap, 5 if step is None else 2), np.int64)  # the step kernels log [group, unit]
            sp_x = np.empty((cap, L.dmax), self.dtype)
            Zs = np.empty((-(-self.n_steps // self.checkpoint_every) if L.needs_state else 0, L.ztot), self.dtype)
            y = np.full(n_out, self.duration if RO[2] == FIRST_SPIKE else 0.0, self.dtype)
            first = np.full(n_out, -1, np.int64)
            counts = np.zeros(12, np.int64)  # events, -, error group, error unit, then search statistics
            if step is not None:
                Zs = Zs[:0]
                sp_first = np.zeros(self.n_steps + 1, np.int64)
                status = L.engine.forward_step(GI, L.CI, step.CS, self._step_order, *step.incoming, PR, W, step.DS,
                                               step.ER, Z0, self.dtype.type(self.dt), self.n_steps, self.tol,
                                               self.max_spikes_per_step, room, t_in, u_in, g_in, v_in, RO, ws,
                                               *step.tables, log_t, log_i, sp_x, y, first, counts, sp_first,
                                               L.model_callbacks("step", self.dtype))
            elif modal is not None:
                Zs = Zs[:0]
                status = L.engine.forward_fast(GI, L.CI, L.OC, PR, W, Z0, self.dtype.type(self.dt), self.n_steps,
                                               self.tol, self.excursions == "exact", self.max_spikes_per_step, t_in,
                                               u_in, g_in, v_in, RO, ws, *modal[:4], *modal[5:],
                                               log_t, log_i, sp_x, y, first, counts,
                                               L.model_callbacks("fast", self.dtype))
            else:
                status = L.engine.forward(GI, L.CI, L.OC, PR.astype(np.float64), W, DL, Z0, self.dtype.type(self.dt),
                                          self.n_steps, self.h_max, self.tol, self.max_spikes_per_step, t_in, u_in,
                                          g_in, v_in, RO, ws, log_t, log_i, sp_x, Zs, self.checkpoint_every, y, first,
                                          counts, *self._pending(cap), L.model_callbacks("generic", self.dtype))
            if status == ERR_ROOM:  # a step's arrivals filled their lists (bounded: see arrival_room)
                room = self._grown(room)  # the same bound as the log's: never a loop without end
                continue
            if status != ERR_CAPACITY:
                break
            cap = self._grown(cap)
        if step is None:
            self._capacity = max(self._capacity, cap)
        else:
            self._step_capacity = max(self._step_capacity, cap)
            self._arrival_room = max(self._arrival_room, room)
        raise_for_status(status, counts, self)
        n = int(counts[0])  # held until the backward pass: only what was logged, not the room left
        record = SampleRecord(log_t[:n].copy(), log_i[:n].copy(), sp_x[:n].copy(), n, Zs, first)
        if step is not None:
            record.sp_first = sp_first
        # searches, pieces walked, candidates, late spikes, crossings located, root-finder iterations, steps
        # simulated again for a crossing found late
        record.search_stats = counts[4:12].copy()
        return record, y

    def _default_readout_cfg(self):
        if self._readout_cfg is None:
            last = [g for g in self.network.groups if not g.is_input][-1]
            RO = np.array([last.index, 0, 0], np.int64)
            return RO, np.zeros(self.n_steps, self.dtype), last.size
        return self._readout_cfg

    def run(self, batch) -> Result:
        """Simulate a batch; the result holds the readout and every population's spikes."""
        samples = self._merge_inputs(batch)
        tables = self._flat_params()
        step = self._step_tables(tables)
        modal = self._modal_tables(tables) if step is None else None
        Z0 = self._initial_state()
        RO, ws, n_out = self._default_readout_cfg()
        # by index: each worker merges its sample's inputs when it starts it (MergedInputs)

        def forward(b):
            sample = samples[b]
            n_inputs = len(sample[0])
            out = self._forward_sample(tables, modal, Z0, RO, ws, n_out, sample, step)
            del sample  # freed before the memory is handed back
            release_freed_memory(sample_events(n_inputs, out[0].n_events, step is not None))
            return out

        out = self._map(forward, range(len(samples)))
        records = [r for r, _ in out]
        readout = np.stack([y for _, y in out]).astype(np.float64)
        result = Result(self, records, readout)
        if self.readout is not None and self.readout.kind == SPIKE_COUNT:
            result.readout = result.spike_counts(self.readout.group).astype(np.float64)
        result.tables = tables
        result.modal = modal
        result.step = step
        result.samples = samples  # the step-parallel backward pass reads each sample's inputs again
        return result

    def record(self, batch, variables: dict, per_step: int = 1) -> dict:
        """State traces: {"pop.var": (B, n_steps * per_step, size)} at t = n dt / per_step.

        ``variables`` maps population names to variable names (e.g. ``{"h": ["v"]}``). Runs the generic
        kernels with a state snapshot every (sub)step (memory B x steps x per_step x all state), so keep
        batches small. Spike times are exact on any grid; a finer one (``per_step`` > 1) samples the trajectory
        between the grid points, and can only find more of the brief excursions above threshold that the
        generic kernels miss between their checks (``eventgrad.engine.trajectory`` adds the states at the
        spikes).
        """
        _check_per_step(per_step)
        picks = self._record_picks(variables)
        samples = self._merge_inputs(batch)
        out = {key: np.empty((len(samples), self.n_steps * per_step, g.size)) for g, _, key in picks}
        for b, sample in enumerate(samples):
            Zs, GI, _ = self._record_sample(sample, per_step)
            for g, var, key in picks:
                d, zoff = GI[g.index, 2], GI[g.index, 3]
                out[key][b] = Zs[:, zoff + var:zoff + g.size * d:d]
        return out

    def _record_picks(self, variables: dict) -> list:
        picks = []
        for group, names in variables.items():
            g = self.network.group(group)
            if g.is_input:
                raise NetworkError(f"'{group}' is an input and has no state to record")
            states = self.layout.adjoints[g.index].system.state_names
            for name in [names] if isinstance(names, str) else names:
                if name not in states:
                    raise NetworkError(f"'{name}' is not a variable of '{group}': {states}")
                picks.append((g, states.index(name), f"{group}.{name}"))
        return picks

    def _record_sample(self, sample, per_step: int = 1):
        """Run one merged sample on the generic kernels on a grid of dt / per_step, keeping the state at
        every grid point: (states (steps, ztot), index tables GI, SampleRecord of its event log)."""
        _check_per_step(per_step)
        L = self.layout
        t_in, u_in, g_in, v_in = sample
        GI, PR, W, DL = self._flat_params()
        Z0 = self._initial_state()
        RO, ws, n_out = self._default_readout_cfg()
        n_steps, dt = self.n_steps * int(per_step), self.dt / int(per_step)
        ws = np.zeros(n_steps, self.dtype) if per_step > 1 else ws  # the readout is not used here
        cap = self._first_capacity(len(t_in))
        while True:
            Zs = np.empty((n_steps, L.ztot), self.dtype)
            log_t, log_i, sp_x = np.empty(cap, self.dtype), np.empty((cap, 5), np.int64), np.empty((cap, L.dmax),
                                                                                                  self.dtype)
            y, first, counts = np.zeros(n_out, self.dtype), np.full(n_out, -1, np.int64), np.zeros(8, np.int64)
            status = L.engine.forward(GI, L.CI, L.OC, PR.astype(np.float64), W, DL, Z0, self.dtype.type(dt), n_steps,
                                      min(self.h_max, dt), self.tol, self.max_spikes_per_step, t_in, u_in, g_in, v_in,
                                      RO, ws, log_t, log_i, sp_x, Zs, 1, y, first, counts, *self._pending(cap),
                                      L.model_callbacks("generic", self.dtype))
            if status != ERR_CAPACITY:
                break
            cap = self._grown(cap)
        if status == ERR_BUDGET:
            counts[1] //= int(per_step)  # the step of dt that holds the fine step at fault
        raise_for_status(status, counts, self)
        n = int(counts[0])
        return Zs, GI, SampleRecord(log_t[:n], log_i[:n], sp_x[:n], n, Zs[:0], first)

    def _pending(self, cap: int):
        """The queue of delayed spikes in flight (times, [connection, pre, post, sending event], values): as many
        entries as the event log, grown with it; empty for a network without delays."""
        n = cap if self.layout.n_delays else 0
        return np.empty(n, np.float64), np.empty((n, 4), np.int64), np.empty(n, np.float64)

    def _shared_values(self, GI, PR):
        """Each population's parameter values (every neuron's the same), or None and why not."""
        values = {}
        for g in range(GI.shape[0]):
            if GI[g, 0] == 1:
                continue
            if GI[g, 7] == 0:
                return None, f"population '{self.network.groups[g].name}' has per-neuron parameter values"
            values[g] = [float(v) for v in PR[GI[g, 4]:GI[g, 4] + GI[g, 5]]]
        return values, None

    def _step_tables(self, tables):
        """The step-parallel kernels' tables for the current parameters, or None (and why in ``kernel_reason``)."""
        self._kernels_used = "step"
        self.kernel_reason = self.step_reason
        if self.step_reason is None:
            values, self.kernel_reason = self._shared_values(*tables[:2])
            if values is not None:
                step, self.kernel_reason = steppath.StepPlan.build(self, values, tables[3])
                if step is not None:
                    return step
        if self._kernels_asked == "step":
            raise SimulationError(f"kernels='step' cannot run with these parameter values: {self.kernel_reason}")
        self._why_not_step = self.kernel_reason
        return None

    def _modal_tables(self, tables):
        """The fast kernels' tables for the current parameters, or None (and why in ``kernel_reason``)."""
        self._kernels_used = "generic"
        self.kernel_reason = self.fast_reason
        if any(c.delayed for c in self.network.connections) and self._kernels_asked != "generic":
            self.kernel_reason = f"{self._why_not_step}; {self.fast_reason}"  # the step kernels were asked first
        if self.fast_reason is not None:
            return None
        values, self.kernel_reason = self._shared_values(*tables[:2])
        if values is None:
            return None
        key = tuple((g, tuple(v)) for g, v in values.items())
        if getattr(self, "_modal_cache", (None,))[0] != key:  # the tables depend on neuron parameters only
            self._modal_cache = (key, modal_tables(self.layout, values, self.layout.dmax))
        modal, reason = self._modal_cache[1]
        self.kernel_reason = reason
        self._kernels_used = "fast" if modal is not None else "generic"
        return modal  # float64 whatever the state's dtype: they set spike times and are small

    @property
    def kernels_used(self) -> str:
        """'step', 'fast' or 'generic' for the last run (``kernel_reason`` says why not the faster ones)."""
        if not hasattr(self, "_kernels_used"):
            return "generic" if self.fast_reason else "fast"
        return self._kernels_used

    def _require_readout(self):
        if self._readout_cfg is None:
            raise NetworkError("this simulator has no readout; pass readout=eg.readouts.SumVar('out'), ...")

    def loss(self, batch, labels, regularizer=None) -> float:
        """Mean loss over the batch (plus the regulariser's value, as ``loss_and_grad`` counts it)."""
        self._require_readout()
        res = self.run(batch)
        logits, _ = self.readout.logits(res.readout)
        value = self.loss_fn.value_and_grad(logits, labels)[0]
        return value + (regularizer.spike_terms(res, self.duration)[0] if regularizer is not None else 0.0)

    def loss_and_grad(self, batch, labels, regularizer=None):
        """(mean loss, dict of gradients) for every weight and trainable parameter, by EventProp.

        ``regularizer`` (e.g. ``eventgrad.train.SpikeCountRegularizer``) adds a loss that is linear in
        the spike times of chosen populations: its ``spike_terms(result, duration)`` gives the value and
        dL/dt_k per neuron and sample, which enter the adjoint jumps at every spike. The returned loss
        includes it; ``last_result`` keeps the forward result (spike counts for the caller).
        """
        self._check_differentiable()
        self.last_result = None  # the last batch's logs would otherwise live on through this batch's passes
        res = self.run(batch)
        self.last_result = res
        loss, dLdy = self.readout_cotangent(res.readout, labels)
        spike_terms = None
        if regularizer is not None:
            value, spike_terms = regularizer.spike_terms(res, self.duration)
            loss += value
        return loss, self.backward(res, dLdy, spike_terms)

    def _check_differentiable(self):
        self._require_readout()
        if self.readout.kind == SPIKE_COUNT:
            raise NetworkError("EventProp cannot differentiate a spike count: it is piecewise constant in every "
                               "parameter, so its exact gradient is zero almost everywhere. Train on a voltage "
                               "readout (MeanVar, ExpWeightedMeanVar, MaxVar) or first spike times, or use "
                               "method='bptt' with a surrogate; SpikeCount works with run() for evaluation.")

    def readout_cotangent(self, readout: np.ndarray, labels) -> tuple[float, np.ndarray]:
        """(mean loss over the batch, dL/dreadout (B, outputs)) of this simulator's loss on a readout that
        ``run`` returned; what :meth:`backward` takes."""
        self._require_readout()
        logits, dlogits_dy = self.readout.logits(readout)
        loss, dL_dlogits = self.loss_fn.value_and_grad(logits, labels)
        return loss, dL_dlogits * dlogits_dy

    def backward(self, result: Result, dL_dreadout, spike_terms: dict | None = None) -> dict:
        """The gradients (dict like ``sim.params``' trainable entries) of any loss L whose derivative with
        respect to the readout of ``result`` (from :meth:`run`) is ``dL_dreadout`` (B, outputs): the
        vector-Jacobian product of the whole network, by EventProp. ``spike_terms``: {population: dL/dt_k
        (B, size)}, a loss term linear in each neuron's spike times (what a regulariser's ``spike_terms``
        gives). ``loss_and_grad`` is ``run``, ``readout_cotangent`` and this."""
        self._check_differentiable()
        n = len(result.records)
        dLdy = np.asarray(dL_dreadout, dtype=np.float64)
        if dLdy.shape != result.readout.shape:
            raise ValueError(f"dL_dreadout has shape {dLdy.shape}; the readout has {result.readout.shape} "
                             "(batch, outputs)")
        if not np.all(np.isfinite(dLdy)):
            raise ValueError("dL_dreadout contains NaN or infinite values")
        spike_dldt = None
        if spike_terms:
            spike_dldt = self._spike_dldt(spike_terms, n, result.modal is not None or result.step is not None)
        grads, self.last_grazing = self._backward(result, dLdy.astype(self.dtype), spike_dldt)
        return grads

    def _spike_dldt(self, per_group: dict, n_samples: int, soa: bool) -> np.ndarray:
        """(B, ztot) array with dL/dt_k of neuron j of group g at the index of its first state variable."""
        out = np.zeros((n_samples, self.layout.ztot), self.dtype)
        GI = self.layout.GI
        for name, coef in per_group.items():
            g = self.network.group(name)
            if g.is_input:
                raise NetworkError(f"'{name}' is an input: its spike times are data, not something to differentiate")
            coef = np.asarray(coef, dtype=np.float64)
            if coef.shape != (n_samples, g.size):
                raise ValueError(f"spike-time coefficients for '{name}' have shape {coef.shape}, "
                                 f"expected {(n_samples, g.size)}")
            if not np.all(np.isfinite(coef)):
                raise ValueError(f"spike-time coefficients for '{name}' contain NaN or infinite values")
            step = 1 if soa else GI[g.index, 2]
            out[:, GI[g.index, 3] + step * np.arange(g.size)] = coef
        return out

    def _backward(self, res: Result, dLdy: np.ndarray, spike_dldt: np.ndarray | None = None):
        L = self.layout
        if spike_dldt is None:
            spike_dldt = np.zeros((len(res.records), L.ztot), self.dtype)
        GI, PR, W, DL = res.tables
        RO, ws, _ = self._readout_cfg
        n_pg = int(sum(GI[:, 1] * GI[:, 12]))
        PR64 = PR.astype(np.float64)  # the generic engine's parameters, whatever the run's precision

        def chunk(samples):
            """Adjoint passes of some samples, accumulated in float64 in sample order (one accumulator per chunk)."""
            GW = np.zeros(W.shape, np.float64)
            GD = np.zeros(DL.shape, np.float64)
            PG = np.zeros(n_pg, np.float64)
            counts = np.zeros(4, np.int64)
            for b in samples:
                rec = res.records[b]
                if res.step is not None:
                    st = res.step
                    t_in, u_in, g_in, v_in = res.samples[b]  # merged again: not kept since the forward pass
                    L.engine.backward_step(GI, L.CI, st.CS, self._step_order, *st.incoming, PR, W, st.DS, st.ER,
                                           self.dtype.type(self.dt), self.n_steps, self.min_threshold_rate, RO, ws,
                                           dLdy[b], spike_dldt[b], t_in, u_in, g_in, v_in, rec.log_t, rec.log_i,
                                           rec.n_events, rec.sp_x, rec.first, *st.backward_tables, rec.sp_first, GW,
                                           GD, PG, counts, L.model_callbacks("step", self.dtype))
                    n_inputs = len(t_in)
                    del t_in, u_in, g_in, v_in  # freed before the memory is handed back
                elif res.modal is not None:
                    MU, PI, PIB, PB, PT, _, _ = res.modal
                    L.engine.backward_fast(GI, L.CI, L.OC, PR, W, self.dtype.type(self.dt), self.n_steps,
                                           self.min_threshold_rate, RO, ws, dLdy[b], spike_dldt[b], rec.log_t,
                                           rec.log_i, rec.n_events, rec.sp_x, L.ztot, rec.first, MU, PI, PIB, PB, PT,
                                           GW, PG, counts, L.model_callbacks("fast", self.dtype))
                else:
                    L.engine.backward(GI, L.CI, L.OC, PR64, W, DL, self.dtype.type(self.dt), self.n_steps, self.h_max,
                                      self.min_threshold_rate, RO, ws, dLdy[b], spike_dldt[b], rec.log_t, rec.log_i,
                                      rec.n_events, rec.sp_x, rec.Zs, self.checkpoint_every, L.ztot, rec.first, GW,
                                      GD, PG, counts, L.model_callbacks("generic", self.dtype))
                release_freed_memory(sample_events(n_inputs if res.step is not None else 0, rec.n_events,
                                                   res.step is not None))
            return GW, PG, int(counts[1]), GD

        # The batch is cut into the same chunks whatever the number of threads, each summed in sample order, and the
        # chunks' sums are added in chunk order: float64 gradients are then bit-identical with any thread count
        # (a sum split by thread would round differently on a machine with other cores, or with threads=1)
        n = len(res.records)
        n_chunks = min(n, GRADIENT_CHUNKS)
        parts = self._map(chunk, [range(k * n // n_chunks, (k + 1) * n // n_chunks) for k in range(n_chunks)])
        GW, PG, GD = (_ordered_sum([p[i] for p in parts]) for i in (0, 1, 3))
        grads = {}
        woff = 0
        for c in self.network.connections:
            n = c.pre.size * c.post.size
            grads[f"{c.name}.weight"] = GW[woff:woff + n].reshape(c.pre.size, c.post.size)
            woff += n
            if c.learn_delay:
                doff = L.CI[c.index, 4]
                grads[f"{c.name}.delay"] = GD[doff:doff + c.delay.size].reshape(c.delay.shape)
        for slot in L.param_slots:
            if slot.trainable_column < 0:
                continue
            g = slot.group
            per_neuron = PG[GI[g, 11]:GI[g, 11] + GI[g, 1] * GI[g, 12]].reshape(GI[g, 1], GI[g, 12])
            column = per_neuron[:, slot.trainable_column]
            grads[slot.key] = column.sum() if np.ndim(self.params[slot.key]) == 0 else column
        check_finite_gradients(grads, self.dtype, "smaller weights, a shorter trial or a larger min_threshold_rate")
        return grads, sum(p[2] for p in parts)


def _ordered_sum(arrays: list[np.ndarray]) -> np.ndarray:
    """arrays[0] + arrays[1] + ..., left to right (the order fixes the rounding)."""
    total = arrays[0].copy()
    for a in arrays[1:]:
        total += a
    return total


def _real_array(key: str, value) -> np.ndarray:
    """``value`` (written into sim.params[key]) as a real array: a list or number is converted, a complex or
    non-numeric value refused (numpy would cut a complex value to its real part with only a warning)."""
    array = np.asarray(value)
    if np.iscomplexobj(array):
        raise ValueError(f"sim.params['{key}'] is complex; parameters and weights must be real")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"sim.params['{key}'] holds {array.dtype} values ({type(value).__name__}); it must hold "
                         "real numbers")
    return array


def _rebuild_simulator(network, options: dict, params: dict) -> Simulator:
    sim = Simulator(network, **options)
    for key, value in params.items():  # copies: what unpickling gives may be read-only (Ray's object store)
        sim.params[key] = np.array(value, copy=True)
    return sim
