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
