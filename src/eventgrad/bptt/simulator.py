"""BPTTSimulator: surrogate-gradient backpropagation through time on the same models as EventProp.

"Discretize, then optimize": the network becomes a discrete-time system on the dt grid (explicit RK4 or
Euler sub-steps, spikes tested at grid times, see ``passes.py``), every state is stored, and the loss is
differentiated through the steps with dH/dg replaced by a surrogate. Its gradient is exact for the grid
simulation where no spike is involved (non-spiking networks, readout weights) and a heuristic elsewhere:
the baseline that EventProp is compared with, on the same ``UserNeuron``/``UserSynapse`` definitions,
the same parameter keys and the same readouts and losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventgrad.adjoint.system import PopulationSystem, build_population_system
from eventgrad.bptt.backprop import backward
from eventgrad.bptt.kernels import StepKernels, step_kernels
from eventgrad.bptt.passes import (
    ConnPlan,
    InputBins,
    Plan,
    PopPlan,
    ReadoutPlan,
    Trace,
    forward,
    grid_delay_steps,
    grid_index,
)
from eventgrad.bptt.surrogates import get_surrogate
from eventgrad.bptt.symbolic import INTEGRATORS, UnsupportedIntegrator
from eventgrad.engine.inputs import check_grid, merge_inputs
from eventgrad.engine.numeric import check_finite_dynamics
from eventgrad.engine.results import SimulationError, check_finite_gradients
from eventgrad.losses import SoftmaxCrossEntropy
from eventgrad.network import Group, Network, NetworkError
from eventgrad.readouts import FIRST_SPIKE, MAX, SPIKE_COUNT, SUM, Readout


@dataclass
class _Population:
    """A population with its symbolic system, generated step functions and parameter keys."""

    group: Group
    system: PopulationSystem
    kernels: StepKernels
    keys: list  # sim.params key of each system parameter, in the system's order
    trainable_keys: list
    incoming: list  # its incoming Connections, in the system's order


class BPTTResult:
    """Forward results of a batch: readout (B, outputs) and the spikes of every population (grid times)."""

    def __init__(self, sim: BPTTSimulator, plan: Plan, trace: Trace):
        self._sim = sim
        self.plan = plan
        self.trace = trace  # states for the backward pass; dropped once the gradient is computed
        self.readout = trace.readout
        self.batch = plan.batch
        self._spikes = {p.name: s for p, s in zip(plan.pops, trace.spikes)}

    def spike_times(self, group: str, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, units) of the spikes of population ``group`` in sample ``b``: grid times k dt, in time order."""
        self._sim.network.group(group)  # unknown names raise
        if not 0 <= b < self.batch:
            raise IndexError(f"sample {b} is outside the batch of {self.batch}")
        empty = np.zeros(0, np.int64)
        steps, samples, units = self._spikes.get(group, (empty, empty, empty))
        mask = samples == b
        return steps[mask] * self._sim.dt, units[mask].copy()

    def spike_counts(self, group: str) -> np.ndarray:
        """(B, size) number of spikes of each neuron of ``group`` in each sample."""
        size = self._sim.network.group(group).size
        return np.stack([np.bincount(self.spike_times(group, b)[1], minlength=size) for b in range(self.batch)])


class BPTTSimulator:
    """Simulate a network on the dt grid and differentiate a loss by BPTT with a surrogate spike derivative.

    The interface is ``eg.Simulator``'s: ``params`` (same keys; writing into them changes the next run),
    ``trainable``, ``run``, ``loss``, ``loss_and_grad``. ``surrogate``: a name ("fast_sigmoid",
    "arctan", "triangle", "heaviside") or an object from ``eventgrad.bptt.surrogates``; ``integrator``:
    "rk4" or "euler", with ``substeps`` sub-steps per dt. ``threads`` is accepted for parity with
    ``eg.Simulator`` and unused: the batch runs as one vectorised computation (numpy's BLAS picks its
    threads; set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS to limit them).
    """

    def __init__(self, net: Network, dt: float, duration: float, dtype="float32", readout: Readout | None = None,
                 loss=None, surrogate="fast_sigmoid", integrator: str = "rk4", substeps: int = 1,
                 threads: int | None = None):
        n_steps, self.dtype = check_grid(net, dt, duration, dtype, "BPTTSimulator")
        learned = [c.name for c in net.connections if c.learn_delay]
        if learned:
            raise NetworkError(f"method='bptt' cannot learn delays (connections {learned}): on the grid a delay is a "
                               "whole number of steps, so the loss is piecewise constant in it and has no gradient; "
                               "set learn_delay=False, or use method='eventprop' (exact delay gradients)")
        if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or substeps < 1:
            raise ValueError(f"substeps must be a positive integer (integrator sub-steps per dt), got {substeps!r}")
        if integrator not in INTEGRATORS:
            raise UnsupportedIntegrator(f"unknown integrator {integrator!r}; known: {sorted(INTEGRATORS)}")
        self.network = net
        self.dt, self.duration, self.n_steps, self.substeps = float(dt), float(duration), n_steps, int(substeps)
        self.integrator = integrator
        self.surrogate = get_surrogate(surrogate)
        self.readout = readout
        self.loss_fn = loss if loss is not None else SoftmaxCrossEntropy()
        if hasattr(self.loss_fn, "check_duration"):
            self.loss_fn.check_duration(self.duration)
        self._pops = [self._build_population(g) for g in net.groups if not g.is_input]
        self.params: dict[str, np.ndarray] = {f"{c.name}.weight": c.weight.astype(self.dtype)
                                              for c in net.connections}
        for c in net.connections:  # fixed on this method's grid (see grid_delay_steps); the same keys as EventProp
            if c.delayed:
                self.params[f"{c.name}.delay"] = c.delay.astype(self.dtype)
        for p in self._pops:
            for key, param in zip(p.keys, p.system.params):
                self.params[key] = np.array(param.value, dtype=self.dtype)
        self._param_keys = list(self.params)
        self.trainable = [f"{c.name}.weight" for c in net.connections]
        self.trainable += [k for p in self._pops for k in p.trainable_keys]
        self._readout_plan = self._configure_readout(readout) if readout is not None else None
        self._forward_spike = _heaviside  # g -> s in the forward pass; tests swap in a smooth one
        self.last_result: BPTTResult | None = None

    # ------------------------------------------------------------------------------------------ setup
    def _build_population(self, g) -> _Population:
        incoming = self.network.incoming(g)
        system = build_population_system(g.name, g.neuron, [(c.name, c.synapse) for c in incoming])
        keys = [p.key if "." in p.key else f"{g.name}.{p.key}" for p in system.params]
        trainable = [k for k, p in zip(keys, system.params) if p.trainable]
        return _Population(g, system, step_kernels(system, self.integrator), keys, trainable, incoming)

    def _configure_readout(self, readout: Readout) -> ReadoutPlan:
        if not isinstance(readout, Readout):
            raise TypeError(f"readout must be an eventgrad.readouts.Readout, got {type(readout).__name__}")
        if readout.kind == FIRST_SPIKE:
            raise NetworkError(
                f"method='bptt' cannot train the {type(readout).__name__} readout: spike times on the dt grid are "
                "piecewise constant and have no gradient in this method; use SumVar, MeanVar, ExpWeightedMeanVar, "
                "MaxVar or SpikeCount, or method='eventprop' (exact spike-time gradients)")
        if readout.kind not in (SUM, MAX, SPIKE_COUNT):
            raise NetworkError(f"method='bptt' does not know readout {type(readout).__name__} (kind {readout.kind})")
        g = self.network.group(readout.group)
        if g.is_input:
            raise NetworkError(f"readout group '{g.name}' is an input; read out a population")
        pos = next(i for i, p in enumerate(self._pops) if p.group is g)
        system = self._pops[pos].system
        var = readout.var if readout.var is not None else g.neuron.output_var
        if var not in system.state_names:
            raise NetworkError(f"readout variable '{var}' is not a variable of '{g.name}': {system.state_names}")
        if readout.kind == SPIKE_COUNT and not system.spiking:
            raise NetworkError(f"spike-count readout of '{g.name}', whose neurons never spike (no threshold)")
        weights = np.asarray(readout.step_weights(self.n_steps, self.dt), np.float64)
        return ReadoutPlan(pos, system.state_names.index(var), readout.kind, weights, g.size)

    def _values(self) -> dict[str, np.ndarray]:
        """The current ``params`` as arrays of the run's dtype, after checking keys, shapes and finiteness."""
        unknown = sorted(set(self.params) - set(self._param_keys))
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r} in sim.params; known: {self._param_keys}")
        missing = sorted(set(self._param_keys) - set(self.params))
        if missing:
            raise ValueError(f"parameter {missing[0]!r} was removed from sim.params")
        values = {}
        for c in self.network.connections:
            key = f"{c.name}.weight"
            w = np.asarray(self.params[key], self.dtype)
            if w.shape != c.weight.shape:
                raise ValueError(f"'{key}' has shape {w.shape}, expected {c.weight.shape}")
            values[key] = w
        for p in self._pops:
            size = p.group.size
            for key in p.keys:
                value = np.asarray(self.params[key], self.dtype)
                if value.shape not in ((), (size,)):
                    raise ValueError(f"parameter '{key}' has shape {value.shape}; expected () or ({size},)")
                values[key] = value
            by_system_key = {param.key: values[key] for key, param in zip(p.keys, p.system.params)}
            check_finite_dynamics(p.system, by_system_key, size)
        bad = [k for k, v in values.items() if not np.all(np.isfinite(v))]
        if bad:
            raise ValueError(f"parameter '{bad[0]}' contains NaN or infinite values")
        return values

    def _plan(self, batch) -> Plan:
        """Bin the inputs on the grid and gather this run's parameter values."""
        samples = merge_inputs(self.network, batch, self.duration, np.float64)
        values = self._values()
        inputs = {g.index: self._bin_inputs(g, samples) for g in self.network.groups if g.is_input}
        pops = []
        for p in self._pops:
            g, system = p.group, p.system
            conns = [ConnPlan(f"{c.name}.weight", c.pre.index, c.pre.is_input, values[f"{c.name}.weight"],
                              grid_delay_steps(self._delay_value(c), self.dt)) for c in p.incoming]
            pops.append(PopPlan(g.index, g.name, g.size, system.dim, p.kernels, system.spiking,
                                [np.asarray(v, self.dtype) for v in system.initial],
                                [values[k] for k in p.keys], p.trainable_keys, conns))
        return Plan(pops, self.n_steps, self.dt, self.substeps, len(samples), self.dtype, inputs,
                    self._readout_plan, self._forward_spike, self.surrogate)

    def _bin_inputs(self, group, samples) -> InputBins:
        """The spikes of input ``group`` in every sample, by the grid time that delivers them."""
        steps, batch_index, units, values = [], [], [], []
        for b, (t, u, gi, v) in enumerate(samples):
            mine = gi == group.index
            steps.append(grid_index(t[mine], self.dt))
            batch_index.append(np.full(int(mine.sum()), b, np.int64))
            units.append(u[mine])
            values.append(v[mine])
        return InputBins(group.size, len(samples), self.dtype, np.concatenate(steps), np.concatenate(batch_index),
                         np.concatenate(units).astype(np.int64), np.concatenate(values), self.n_steps)

    def _delay_value(self, c) -> np.ndarray | None:
        """Connection c's delays from ``params`` (checked like EventProp's), or None without delay."""
        if not c.delayed:
            return None
        key = f"{c.name}.delay"
        d = np.asarray(self.params[key], np.float64)
        if d.shape == (1,):
            d = d.reshape(())
        if d.shape != c.delay.shape:
            raise ValueError(f"'{key}' has shape {d.shape}, expected {c.delay.shape}")
        if not np.all(np.isfinite(d)) or np.any(d < 0):
            raise ValueError(f"'{key}' contains negative, NaN or infinite delays")
        return d

    # ---------------------------------------------------------------------------------------- running
    def run(self, batch) -> BPTTResult:
        """Simulate a batch on the grid; the result holds the readout and every population's spikes."""
        plan = self._plan(batch)
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            try:
                trace = forward(plan)
            except FloatingPointError as e:
                raise _simulation_error() from e
        return BPTTResult(self, plan, trace)

    def _require_readout(self):
        if self._readout_plan is None:
            raise NetworkError("this simulator has no readout; pass readout=eg.readouts.SumVar('out'), ...")

    def loss(self, batch, labels, regularizer=None) -> float:
        """Mean loss over the batch (plus the regularizer's value, as ``loss_and_grad`` counts it)."""
        self._require_readout()
        res = self.run(batch)
        logits, _ = self.readout.logits(res.readout)
        value = self.loss_fn.value_and_grad(logits, labels)[0]
        return value + (self._regularize(regularizer, res)[0] if regularizer is not None else 0.0)

    def loss_and_grad(self, batch, labels, regularizer=None):
        """(mean loss [+ regularizer value], dict of gradients) for every weight and trainable parameter.

        ``regularizer`` (e.g. ``eventgrad.train.SpikeCountRegularizer``): ``.groups`` names spiking
        populations and ``.penalty(counts)`` returns (value, dvalue/dcounts) for counts (batch, size) per
        group; the value is added to the loss and dvalue/dcounts enters every step's dL/ds (surrogate).
        """
        self._require_readout()
        self.last_result = None  # the last batch's result would otherwise live on through this batch's passes
        res = self.run(batch)
        logits, dlogits_dy = self.readout.logits(res.readout)
        loss, dL_dlogits = self.loss_fn.value_and_grad(logits, labels)
        dL_dy = dL_dlogits * dlogits_dy
        dL_ds = {}
        if self._readout_plan.kind == SPIKE_COUNT:
            dL_ds[self._pops[self._readout_plan.pop].group.index] = dL_dy
        if regularizer is not None:
            value, extra = self._regularize(regularizer, res)
            loss += value
            for index, d in extra.items():
                dL_ds[index] = dL_ds.get(index, 0.0) + d
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            try:
                grads = backward(res.plan, res.trace, dL_dy, dL_ds)
            except FloatingPointError as e:
                raise _simulation_error("the backward pass") from e
        res.trace = None  # the stored states are the bulk of BPTT's memory
        self.last_result = res
        grads = self._finish(grads)
        check_finite_gradients(grads, self.dtype)
        return float(loss), grads

    def _finish(self, grads) -> dict[str, np.ndarray]:
        """Gradients keyed like ``params``: per-neuron sums collapse to one number for a shared parameter."""
        weights = {f"{c.name}.weight" for c in self.network.connections}
        return {key: grads.values[key] if key in weights or np.ndim(self.params[key]) else grads.values[key].sum()
                for key in self.trainable}

    def _regularize(self, regularizer, res) -> tuple[float, dict]:
        """(penalty value, dL/ds per population index) from ``regularizer.penalty(counts)``."""
        counts = {}
        for name in regularizer.groups:
            g = self.network.group(name)
            pos = [i for i, p in enumerate(self._pops) if p.group is g]
            if not pos or not self._pops[pos[0]].system.spiking:
                raise NetworkError(f"the regularizer names '{name}', which is not a spiking population")
            counts[name] = res.trace.counts[pos[0]].copy()
        value, dcounts = regularizer.penalty(counts)
        extra = {}
        for name, d in dcounts.items():
            if name not in counts:
                raise ValueError(f"the regularizer returned a derivative for '{name}', not one of its groups "
                                 f"{list(counts)}")
            d = np.asarray(d, np.float64)
            if d.shape != counts[name].shape:
                raise ValueError(f"the regularizer's derivative for '{name}' has shape {d.shape}, expected "
                                 f"{counts[name].shape} (batch, size)")
            extra[self.network.group(name).index] = d
        return float(value), extra


def _heaviside(g: np.ndarray) -> np.ndarray:
    return g > 0


def _simulation_error(where: str = "the grid simulation") -> SimulationError:
    return SimulationError(f"{where} overflowed or produced NaN; check time constants, weights, dt and substeps")
