"""One state variable of one population along the exact trajectory of one sample, for plots.

Sampling the state on the dt grid and joining the points by lines turns a spike into a ramp that never
reaches threshold. Here the state is sampled on a finer grid (``per_step`` points per dt) and, at each
spike, the variable's value just before it (where the trajectory crosses the threshold) and just after
the reset are added at the spike's exact time. Both come from the simulation itself: the kernels log
each spiking neuron's state before its reset, and the reset map of the model's equations gives the state
after it. Spike times are exact on any grid (a finer one can only catch more of the brief excursions
above threshold that the generic kernels miss between their checks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from eventgrad.engine.results import KIND_INPUT
from eventgrad.network import NetworkError


@dataclass
class StateTrace:
    """``values[k, j]``: the variable of neuron j at ``times[k]`` (k dt / per_step); per spike (in time
    order) its time, unit, and the variable's value just before and just after it. ``threshold``: the
    value at which the variable fires the neuron, where that is one number for all of them (a threshold
    ``v - v_th``), else None."""

    name: str
    times: np.ndarray
    values: np.ndarray
    spike_times: np.ndarray
    spike_units: np.ndarray
    before: np.ndarray
    after: np.ndarray
    threshold: float | None
    duration: float


def state_trace(sim, batch, group: str, var: str | None = None, sample: int = 0, per_step: int = 20) -> StateTrace:
    """The trace of ``group.var`` (default: the neuron's output variable) in sample ``sample`` of
    ``batch``, on a grid of dt / per_step, with the states at its spikes. Runs the generic kernels."""
    if not hasattr(sim, "_record_sample"):
        raise TypeError(f"{type(sim).__name__} does not record states; state traces come from the EventProp "
                        "simulator (eg.Simulator(..., method='eventprop'))")
    g = sim.network.group(group)
    if g.is_input:
        raise NetworkError(f"'{group}' is an input and has no state to trace")
    var = var or g.neuron.output_var
    ((_, index, key),) = sim._record_picks({group: [var]})
    samples = sim._merge_inputs(batch)
    if not 0 <= sample < len(samples):
        raise ValueError(f"sample {sample} is not in the batch of {len(samples)}")
    Zs, GI, rec = sim._record_sample(samples[sample], per_step)
    d, zoff = GI[g.index, 2], GI[g.index, 3]
    values = Zs[:, zoff + index:zoff + g.size * d:d].astype(np.float64)
    times = sim.dt / per_step * np.arange(len(values))
    spikes = (rec.log_i[:, 0] == g.index) & (rec.log_i[:, 2] < KIND_INPUT)
    order = np.argsort(rec.log_t[spikes], kind="stable")
    t_s, units = rec.log_t[spikes][order].astype(np.float64), rec.log_i[spikes, 1][order]
    x_minus = rec.sp_x[spikes][order][:, :d].astype(np.float64)
    system = sim.layout.adjoints[g.index].system
    params = {p.symbol: np.broadcast_to(np.asarray(sim.params[_param_key(system, p)], np.float64), (g.size,))
              for p in system.params}
    after = _evaluate(system.reset[index], system, x_minus, {s: v[units] for s, v in params.items()})
    return StateTrace(key, times, values, t_s, units, x_minus[:, index], after,
                      _threshold_value(system, index, params), sim.duration)


def _param_key(system, p) -> str:
    return p.key if "." in p.key else f"{system.name}.{p.key}"


def _evaluate(expr, system, states: np.ndarray, params: dict) -> np.ndarray:
    """``expr`` (of the state and the parameters) at each row of ``states`` with its row of ``params``."""
    args = list(system.state) + list(params)
    f = sympy.lambdify(args, expr, modules="numpy")
    out = f(*states.T, *params.values())
    return np.broadcast_to(np.asarray(out, np.float64), (len(states),)).copy()


def _threshold_value(system, index: int, params: dict) -> float | None:
    """Solve threshold(x) = 0 for the traced variable: a number when the solution involves parameters only
    and is the same for every neuron; None otherwise (no threshold, or one that depends on other state)."""
    if system.threshold is None:
        return None
    solutions = sympy.solve(system.threshold, system.state[index])
    if len(solutions) != 1 or solutions[0].free_symbols & set(system.state):
        return None
    value = np.asarray(sympy.lambdify(list(params), solutions[0], modules="numpy")(*params.values()), np.float64)
    value = np.broadcast_to(value, (len(next(iter(params.values()))) if params else 1,))
    return float(value[0]) if np.all(value == value[0]) and np.isfinite(value[0]) else None
