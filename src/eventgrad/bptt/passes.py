"""The forward pass on the dt grid, with numpy arrays of shape (batch, neurons) per state variable.

Grid convention (the same as the EventProp engine's readout): x_k is the state at t_k = k dt. Step k
(k = 1..N) integrates every population from t_{k-1} to t_k (``substeps`` sub-steps), tests the threshold
(s_k = H(g) with g > 0), applies the reset where s_k = 1, and then delivers at t_k the spikes of that
grid time: population spikes s_k and the input spikes with times in (t_{k-1}, t_k] (an input spike at
t = 0 is delivered at t_0, before the first step). Readout samples are x_k, k = 1..N, taken after the
delivery, as the EventProp engine samples the state at t_k after the events at or before t_k. Input
spikes on grid times are therefore applied at their exact times; others are rounded up to the grid.
A population spike reaches its targets at the grid time it is emitted, and they test their threshold
(after integrating) at the next grid time. A connection with a delay D delivers ceil(D / dt) steps later
(``grid_delay_steps``: a D within 1e-9 of a whole number of steps counts as that number) what it would
deliver without one: a population's spike of t_k at t_{k + ceil(D/dt)}, an input spike, first put on the
grid as above, that many steps after; per-synapse delays per synapse. So a delay is rounded up to whole
steps (at most dt late, as the input spikes are), and a spike due after the trial never arrives.

The forward pass stores x_k for every k and every population (BPTT must: memory O(N T)); the backward
pass (``backprop.py``) recomputes the step from x_{k-1} with ``advance`` (integrator sub-steps, threshold,
reset) before multiplying the cotangents by the generated vector-Jacobian products, with dH/dg replaced
by the surrogate. Spikes enter as W^T s restricted to the units that spiked (``SourceSpikes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eventgrad.readouts import MAX, SPIKE_COUNT, SUM


@dataclass
class ConnPlan:
    """One connection: its weight key, source (input or population), weights [pre, post] as the run's dtype."""

    key: str
    pre: int
    pre_is_input: bool
    weight: np.ndarray
    delay_steps: np.ndarray | None = None  # whole steps, shape () or (pre, post); None: no delay


@dataclass
class PopPlan:
    """One population: its generated step functions and parameter values for this run."""

    index: int
    name: str
    size: int
    dim: int
    kernels: object  # StepKernels
    spiking: bool
    initial: list  # per state variable, broadcastable to (batch, size)
    params: list  # values in system order, each () or (size,)
    trainable_keys: list  # gradient keys in the order of the generated VJP outputs
    incoming: list  # ConnPlan per incoming connection, in the system's order


@dataclass
class ReadoutPlan:
    """The readout: which population and variable, its kind (readouts.SUM, MAX, SPIKE_COUNT), step weights."""

    pop: int  # position in Plan.pops
    var: int
    kind: int
    weights: np.ndarray  # per grid sample, (N,)
    size: int


@dataclass
class Plan:
    """Everything a pass needs that stays fixed during one run."""

    pops: list
    n_steps: int
    dt: float
    substeps: int
    batch: int
    dtype: np.dtype
    inputs: dict  # group index -> InputBins
    readout: ReadoutPlan | None
    spike_fn: object  # g -> s in the forward pass (Heaviside)
    surrogate: object

    @property
    def h(self) -> float:
        return self.dt / self.substeps


class InputBins:
    """The spikes of one input group binned by the grid time at which they are delivered (with their values:
    1, or a graded event's value)."""

    def __init__(self, size: int, batch: int, dtype, steps: np.ndarray, samples: np.ndarray, units: np.ndarray,
                 values: np.ndarray, n_steps: int):
        order = np.argsort(steps, kind="stable")
        self.size, self.batch, self.dtype = size, batch, dtype
        self.samples, self.units, self.values = samples[order], units[order], values[order]
        self.starts = np.searchsorted(steps[order], np.arange(n_steps + 2))

    def counts(self, k: int) -> np.ndarray | None:
        """(batch, size) sum of the values of the spikes delivered at t_k, or None when there are none."""
        lo, hi = self.starts[k], self.starts[k + 1]
        if lo == hi:
            return None
        u = np.zeros((self.batch, self.size), self.dtype)
        np.add.at(u, (self.samples[lo:hi], self.units[lo:hi]), self.values[lo:hi])
        return u


def grid_index(times: np.ndarray, dt: float) -> np.ndarray:
    """The smallest k with t <= k dt for each time (exact for times computed as k * dt)."""
    k = np.ceil(times / dt).astype(np.int64)
    k[k * dt < times] += 1
    k[(k > 0) & ((k - 1) * dt >= times)] -= 1
    return k


@dataclass
class Trace:
    """What the forward pass leaves: states, spike records, readout, spike counts (sum of s)."""

    states: list  # per population, (N + 1, dim, batch, size)
    spikes: list  # per population, (steps, samples, units) of every spike
    counts: list  # per population, (batch, size) float64
    readout: np.ndarray
    argmax: np.ndarray | None = None
    initial: list = field(default_factory=list)  # per population, the state at t_0 before the deliveries
    history: dict = field(default_factory=dict)  # population index -> {k: s_k}, for delayed connections


def _state(values, shape, dtype) -> list:
    return [np.broadcast_to(np.asarray(v, dtype), shape) for v in values]


def flush_subnormal(values: list, dtype) -> list:
    """The arrays with subnormal entries (below the dtype's smallest normal number) set to zero.

    Decaying states and cotangents reach them after a few hundred silent steps; x86 arithmetic on them
    is ~10-100x slower (a BLAS product with a few of them ran 10x slower), and they carry nothing a
    simulation or a gradient can use.
    """
    tiny = np.finfo(dtype).tiny
    out = []
    for v in values:
        small = np.abs(v) < tiny
        out.append(np.where(small, dtype.type(0), v) if small.any() else v)
    return out


def advance(plan: Plan, pop: PopPlan, x: list):
    """Step from x_{k-1}: (sub-step inputs, z, g, s, r) with z integrated, s the spikes, r after the reset."""
    k, shape = pop.kernels, (plan.batch, pop.size)
    no_lam = [0.0] * pop.dim
    subs, z = [], x
    for _ in range(plan.substeps):
        subs.append(z)
        z = flush_subnormal(_state(k.substep(*z, *pop.params, *no_lam, plan.h), shape, plan.dtype), plan.dtype)
    if not pop.spiking:
        return subs, z, None, None, z
    g = np.broadcast_to(k.threshold(*z, *pop.params, *no_lam, plan.h)[0], shape)
    s = plan.spike_fn(g).astype(plan.dtype, copy=False)
    delta = k.reset_delta(*z, *pop.params, *no_lam, plan.h)
    r = [zi if d is None else zi + s * d for zi, d in zip(z, delta)]
    return subs, z, g, s, r


@dataclass
class SourceSpikes:
    """A source's spikes at one grid time, restricted to the units that spiked in some sample (``rows``;
    None: all units), so that the drive W^T s and the weight gradient cost O(active units x targets)."""

    values: np.ndarray  # (batch, active units)
    rows: np.ndarray | None

    def drive(self, weight: np.ndarray) -> np.ndarray:
        """(batch, post) a = s W."""
        return self.values @ (weight if self.rows is None else weight[self.rows])

    def add_weight_grad(self, dL_da: np.ndarray, out: np.ndarray) -> None:
        """out += s^T dL/da (only the active rows change)."""
        if self.rows is None:
            out += self.values.T @ dL_da
        else:
            out[self.rows] += self.values.T @ dL_da


def grid_delay_steps(delay, dt: float):
    """A delay (ms, scalar or per synapse) as whole steps, rounded up; None stays None."""
    if delay is None:
        return None
    steps = np.ceil(np.asarray(delay, np.float64) / dt - 1e-9)
    return np.maximum(steps, 0).astype(np.int64)


def sent_at(plan: Plan, conn: ConnPlan, k: int, history: dict):
    """The spikes of conn's source that reached the grid at step k, (batch, pre) or None."""
    if k < 0:
        return None
    if conn.pre_is_input:
        return plan.inputs[conn.pre].counts(k)
    return history.get(conn.pre, {}).get(k)  # population spikes happen at k >= 1


def source_spikes(plan: Plan, conn: ConnPlan, k: int, spikes: dict, history: dict | None = None):
    """What connection ``conn`` delivers at t_k (SourceSpikes, DelayedSpikes for per-synapse delays), or
    None. ``spikes``: this step's population spikes; ``history``: earlier steps' (delayed connections)."""
    if conn.delay_steps is not None and (conn.delay_steps.ndim > 0 or conn.delay_steps > 0):
        if conn.delay_steps.ndim == 0:
            return _active(sent_at(plan, conn, k - int(conn.delay_steps), history or {}))
        parts = []
        for steps in np.unique(conn.delay_steps):
            u = _active(sent_at(plan, conn, k - int(steps), history or {}))
            if u is not None:
                parts.append((u, conn.delay_steps == steps, int(steps)))
        return DelayedSpikes(parts) if parts else None
    u = plan.inputs[conn.pre].counts(k) if conn.pre_is_input else spikes.get(conn.pre)
    return _active(u)


class DelayedSpikes:
    """A connection's deliveries at one grid time through per-synapse delays: the sources' spikes of
    several past steps, each through the synapses whose delay (in steps) brings them here."""

    def __init__(self, parts: list):
        self.parts = parts  # (SourceSpikes, mask of the synapses [pre, post], delay in steps)

    def drive(self, weight: np.ndarray) -> np.ndarray:
        return sum(u.drive(weight * mask) for u, mask, _ in self.parts)

    def add_weight_grad(self, dL_da: np.ndarray, out: np.ndarray) -> None:
        for u, mask, _ in self.parts:
            g = np.zeros(out.shape)
            u.add_weight_grad(dL_da, g)
            out += g * mask


def _active(u):
    """SourceSpikes for the units that spiked in some sample, or None."""
    if u is None:
        return None
    active = np.flatnonzero(u.any(axis=0))
    if active.size == 0:
        return None
    if 2 * active.size > u.shape[1]:
        return SourceSpikes(u, None)
    return SourceSpikes(u[:, active], active)


def deliver(plan: Plan, pop: PopPlan, k: int, r: list, spikes: dict, history: dict) -> list:
    """x_k = r + sum_c a_c D_c(r): each connection's jumps, a_c = W_c^T (its spikes at t_k)."""
    x = list(r)
    no_lam = [0.0] * pop.dim
    for conn, inc in zip(pop.incoming, pop.kernels.increments):
        u = source_spikes(plan, conn, k, spikes, history)
        if u is None:
            continue
        a = u.drive(conn.weight)
        for i, d in enumerate(inc.per_weight(*r, *pop.params, *no_lam, plan.h)):
            if d is not None:
                x[i] = x[i] + a * d
    return x


def forward(plan: Plan) -> Trace:
    """Simulate every grid step, storing every state (see the module docstring for the order)."""
    N, B = plan.n_steps, plan.batch
    states = [np.empty((N + 1, p.dim, B, p.size), plan.dtype) for p in plan.pops]
    x = [_state(p.initial, (B, p.size), plan.dtype) for p in plan.pops]
    initial = [list(xi) for xi in x]
    history = {c.pre: {} for p in plan.pops for c in p.incoming if c.delay_steps is not None and not c.pre_is_input}
    x = [deliver(plan, p, 0, xi, {}, history) for p, xi in zip(plan.pops, x)]
    records = [[] for _ in plan.pops]
    counts = [np.zeros((B, p.size)) for p in plan.pops]
    ro = _ReadoutAccumulator(plan)
    for i, xi in enumerate(x):
        states[i][0] = xi
    for k in range(1, N + 1):
        steps = [advance(plan, p, xi) for p, xi in zip(plan.pops, x)]
        spikes = {p.index: st[3] for p, st in zip(plan.pops, steps) if p.spiking}
        for index in history:
            history[index][k] = spikes[index]
        for i, (p, st) in enumerate(zip(plan.pops, steps)):
            x[i] = deliver(plan, p, k, st[4], spikes, history)
            states[i][k] = x[i]
            if p.spiking:
                counts[i] += st[3]
                b, u = np.nonzero(st[2] > 0)
                records[i].append((np.full(b.size, k), b, u))
        ro.sample(k, x, spikes)
    return Trace(states, [_concatenate(rec) for rec in records], counts, ro.y, ro.argmax, initial, history)


def _concatenate(record: list) -> tuple:
    """(steps, samples, units) of all spikes from the per-step pieces."""
    if not record:
        return (np.zeros(0, np.int64),) * 3
    return tuple(np.concatenate(column) for column in zip(*record))


class _ReadoutAccumulator:
    """y (batch, outputs) float64 built sample by sample: weighted sum, running max, or spike count."""

    def __init__(self, plan: Plan):
        self.plan = plan
        ro = plan.readout
        self.y = np.zeros((plan.batch, ro.size if ro is not None else plan.pops[-1].size))
        self.argmax = np.zeros(self.y.shape, np.int64) if ro is not None and ro.kind == MAX else None

    def sample(self, k: int, x: list, spikes: dict) -> None:
        ro = self.plan.readout
        if ro is None:
            return
        if ro.kind == SPIKE_COUNT:
            self.y += spikes[self.plan.pops[ro.pop].index]
            return
        v = x[ro.pop][ro.var].astype(np.float64)
        if ro.kind == SUM:
            self.y += ro.weights[k - 1] * v
            return
        better = v > self.y if k > 1 else np.ones(v.shape, bool)
        self.y[better] = v[better]
        self.argmax[better] = k
