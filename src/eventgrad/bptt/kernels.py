"""The symbolic step map of a population as vectorised numpy functions.

Every function takes the same arguments, (x_1..x_d, p_1..p_P, lambda_1..lambda_d, h), each an array
of shape (batch, neurons), a per-neuron array (neurons,) or a scalar, and returns one array per
expression (broadcasting does the rest). ``sympy.lambdify`` with common-subexpression elimination writes
the code; entries that are identically zero are not computed and come back as None, so that callers
skip them (a jump touches one state variable; most Jacobian entries of a reset vanish).
Generated once per distinct system and integrator in a process.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from eventgrad.adjoint.system import PopulationSystem
from eventgrad.bptt.symbolic import H, build_step_map

_CACHE: dict = {}


class Vectorised:
    """``exprs`` as one numpy function of ``args``; zero entries give None."""

    def __init__(self, exprs, args):
        exprs = [sympy.sympify(e) for e in exprs]
        self.size = len(exprs)
        self.nonzero = [i for i, e in enumerate(exprs) if e != 0]
        self._fn = sympy.lambdify(args, [exprs[i] for i in self.nonzero], "numpy", cse=True) if self.nonzero else None

    def __call__(self, *values) -> list:
        out = [None] * self.size
        if self._fn is not None:
            for i, value in zip(self.nonzero, self._fn(*values)):
                out[i] = value
        return out


@dataclass
class IncrementKernels:
    """Connection jump per unit weight D(r, p), lambda . D, and a-free parts of its VJPs."""

    per_weight: Vectorised
    lam_dot: Vectorised
    vjp_x: Vectorised
    vjp_p: Vectorised


@dataclass
class StepKernels:
    """Numpy versions of every piece of ``StepMap`` (same names, same meaning).

    Shared by every population with the same equations: nothing here holds parameter values.
    """

    substep: Vectorised
    substep_vjp_x: Vectorised
    substep_vjp_p: Vectorised
    threshold: Vectorised | None
    threshold_dx: Vectorised | None
    threshold_dp: Vectorised | None
    reset_delta: Vectorised
    reset_vjp_x: Vectorised
    reset_vjp_p: Vectorised
    lam_dot_reset_delta: Vectorised
    increments: tuple[IncrementKernels, ...]


def _cache_key(s: PopulationSystem, integrator: str):
    jumps = tuple(tuple(c.jump) for c in s.incoming)
    trainable = tuple(p.symbol for p in s.trainable_params)
    return (s.state, tuple(s.rhs), s.threshold, tuple(s.reset), jumps, s.param_symbols, trainable, integrator)


def step_kernels(system: PopulationSystem, integrator: str = "rk4") -> StepKernels:
    """Build (or reuse) the numpy step functions of a PopulationSystem for ``integrator``."""
    key = _cache_key(system, integrator)
    if key in _CACHE:
        return _CACHE[key]
    step_map = build_step_map(system, integrator)
    args = list(system.state) + list(system.param_symbols) + list(step_map.lam) + [H]

    def vec(exprs):
        return Vectorised(exprs, args)

    spiking = step_map.threshold is not None
    kernels = StepKernels(
        substep=vec(step_map.substep),
        substep_vjp_x=vec(step_map.substep_vjp_x),
        substep_vjp_p=vec(step_map.substep_vjp_p),
        threshold=vec([step_map.threshold]) if spiking else None,
        threshold_dx=vec(step_map.threshold_dx) if spiking else None,
        threshold_dp=vec(step_map.threshold_dp) if spiking else None,
        reset_delta=vec(step_map.reset_delta),
        reset_vjp_x=vec(step_map.reset_vjp_x),
        reset_vjp_p=vec(step_map.reset_vjp_p),
        lam_dot_reset_delta=vec([step_map.lam_dot_reset_delta]),
        increments=tuple(IncrementKernels(vec(i.per_weight), vec([i.lam_dot]), vec(i.vjp_x), vec(i.vjp_p))
                         for i in step_map.increments),
    )
    _CACHE[key] = kernels
    return kernels
