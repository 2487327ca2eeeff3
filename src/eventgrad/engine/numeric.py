"""Evaluate symbolic model expressions at numbers (compiled once per expression: runs repeat this)."""

from __future__ import annotations

import numpy as np
import sympy

_LAMBDIFIED: dict = {}


def evaluate(matrix, symbols, values) -> np.ndarray:
    """The entries of a sympy matrix at ``symbols = values`` (values may be arrays: evaluated elementwise, and
    an entry that does not depend on them, such as a constant 0 rate, is broadcast to their shape)."""
    matrix = sympy.ImmutableMatrix(matrix)
    key = (matrix, tuple(symbols))
    f = _LAMBDIFIED.get(key)
    if f is None:
        f = _LAMBDIFIED[key] = sympy.lambdify(symbols, list(matrix), "numpy")
    if matrix.shape[0] * matrix.shape[1] == 0:
        return np.zeros(matrix.shape)
    with np.errstate(all="ignore"):  # a division by zero shows up as inf/nan, which the callers report
        entries = np.broadcast_arrays(*(np.asarray(e, dtype=np.float64) for e in f(*values)))
    return np.stack(entries).reshape(matrix.shape + entries[0].shape)


def check_finite_dynamics(system, param_values: dict, n: int) -> None:
    """Refuse parameters for which dx/dt at the initial state is not finite (e.g. a zero time constant)."""
    values = [np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) for v in system.initial]
    values += [np.broadcast_to(np.asarray(param_values[p.key], dtype=np.float64), (n,)) for p in system.params]
    rhs = evaluate(system.rhs, list(system.state) + list(system.param_symbols), values)
    if not np.all(np.isfinite(rhs)):
        used = sorted({str(s) for s in system.rhs.free_symbols} & {str(p.symbol) for p in system.params})
        shown = ", ".join(f"{system.name}.{p.key}" if "." not in p.key else p.key for p in system.params
                          if str(p.symbol) in used)
        details = ", ".join(f"{p.key} = {np.asarray(param_values[p.key]).ravel()[:3]}" for p in system.params
                            if str(p.symbol) in used)
        raise ValueError(f"the dynamics of population '{system.name}' are not finite at its initial state "
                         f"(division by zero?); check the parameters {shown}: {details}")


def check_stable_dynamics(system, param_values: dict, n: int) -> None:
    """Refuse parameters that make a linear population's free dynamics grow exponentially (an eigenvalue of A
    in dx/dt = A x + b with a positive real part: a negative time constant). Such a population runs away (the
    state explodes, or the neuron fires ever faster) instead of failing, so it is refused before the run."""
    form = system.linear_form()
    if form is None or not system.params:  # nonlinear models (QIF, Izhikevich) grow by design near threshold
        return
    d = system.dim
    values = [np.asarray(param_values[p.key], dtype=np.float64) for p in system.params]
    if all(v.ndim == 0 or np.all(v == v.flat[0]) for v in values):  # one matrix for the whole population
        values = [v.ravel()[:1] for v in values]
    else:
        values = [np.broadcast_to(v, (n,)) for v in values]
    A = evaluate(form[0], system.param_symbols, values).reshape(d, d, -1)
    if not np.all(np.isfinite(A)):
        return  # check_finite_dynamics names the cause
    rates = np.linalg.eigvals(np.moveaxis(A, -1, 0)).real  # (neurons, d)
    scale = np.abs(A).max(axis=(0, 1))[:, None]
    bad = rates > 1e-9 * np.maximum(scale, 1e-300)
    if not np.any(bad):
        return
    neuron = int(np.argwhere(bad.any(axis=1))[0, 0])
    used = {str(s) for s in form[0].free_symbols}
    details = ", ".join(f"{_shown(system, p)} = {np.asarray(param_values[p.key]).ravel()[:3]}"
                        for p in system.params if str(p.symbol) in used)
    where = "" if values[0].shape[0] == 1 else f" (neuron {neuron})"
    raise ValueError(f"the dynamics of population '{system.name}'{where} are unstable: its state would grow "
                     f"like exp({rates[neuron].max():.3g} t) between spikes (a negative time constant?); check "
                     f"the parameters {details}")


def _shown(system, p) -> str:
    """A parameter's key as the user writes it in sim.params ("h.tau_mem", "xh.tau")."""
    return p.key if "." in p.key else f"{system.name}.{p.key}"
