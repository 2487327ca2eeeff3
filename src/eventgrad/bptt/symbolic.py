"""The one-step update map of a population on the dt grid, and its derivatives, as sympy (no numbers).

BPTT ("discretize, then optimize") treats a spiking network as a discrete-time system. For one
population with state x (per neuron) and parameters p, one grid step is built from these pieces:

    z = Phi_h(...Phi_h(x)...)       the integrator sub-step Phi_h (explicit RK4 or Euler) applied m times
    s = H(g(z, p))                  spike where the threshold expression is positive
    r = z + s (f(z, p) - z)         the reset f where the neuron spiked
    x' = r + sum_c a_c D_c(r, p)    connection c's jumps, a_c = W_c^T (spikes of its source)

D_c is the jump increment per unit weight: a synapse's jump x -> R(x, weight) must be
x + weight * D(x, p), linear in the weight, so that simultaneous spikes add up into W^T s.

For each piece this module also writes the vector-Jacobian products lambda^T d(piece)/dx and
lambda^T d(piece)/dp (trainable p), by ``sympy.diff`` of the composed expressions: the backward pass
only multiplies cotangents by these; no model has a hand-written derivative. Pure sympy: nothing here
knows about arrays, batches or code.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from eventgrad.adjoint.system import WEIGHT, PopulationSystem
from eventgrad.model import ModelError

H = sympy.Symbol("_h", positive=True)  # the sub-step length dt / substeps


class UnsupportedIntegrator(ValueError):
    """An integrator name that is not registered."""


def euler(rhs, state, h):
    """x + h F(x): first order."""
    return state + h * rhs(state)


def rk4(rhs, state, h):
    """The classical fourth-order Runge-Kutta step, stages composed into one expression."""
    k1 = rhs(state)
    k2 = rhs(state + h / 2 * k1)
    k3 = rhs(state + h / 2 * k2)
    k4 = rhs(state + h * k3)
    return state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


INTEGRATORS = {"rk4": rk4, "euler": euler}


def integrator_step(system: PopulationSystem, integrator: str) -> sympy.Matrix:
    """Phi_h(x, p): one sub-step of length ``H`` of dx/dt = F(x, p) with the named explicit integrator."""
    if integrator not in INTEGRATORS:
        raise UnsupportedIntegrator(f"unknown integrator {integrator!r}; known: {sorted(INTEGRATORS)}")
    x = sympy.Matrix(system.state)

    def rhs(values):  # F at other state values: replace all state symbols at once
        return system.rhs.xreplace(dict(zip(system.state, values)))

    return INTEGRATORS[integrator](rhs, x, H)


def vjp(outputs, wrt, lam) -> list[sympy.Expr]:
    """[sum_i lam_i d outputs_i / d w for w in wrt]: lambda^T times the Jacobian, one entry per w."""
    return [sympy.Add(*[li * sympy.diff(o, w) for li, o in zip(lam, outputs) if o != 0]) for w in wrt]


def dot(lam, exprs) -> sympy.Expr:
    """lambda . exprs."""
    return sympy.Add(*[li * e for li, e in zip(lam, exprs)])


@dataclass(frozen=True)
class Increment:
    """The jump of connection ``name`` per unit weight, D(x, p), and its products with a cotangent."""

    name: str
    per_weight: list  # D_i(x, p): x_i += a D_i
    lam_dot: sympy.Expr  # lambda . D: dL/da
    vjp_x: list  # lambda^T dD/dx (to be multiplied by a)
    vjp_p: list  # lambda^T dD/dp for each trainable p (to be multiplied by a)


@dataclass(frozen=True)
class StepMap:
    """All symbolic pieces of one population's grid step (see the module docstring)."""

    system: PopulationSystem
    lam: tuple  # cotangent symbols, one per state variable
    substep: list  # Phi_h(x, p)
    substep_vjp_x: list
    substep_vjp_p: list
    threshold: sympy.Expr | None
    threshold_dx: list  # dg/dz
    threshold_dp: list  # dg/dp
    reset_delta: list  # f_i(z) - z_i
    reset_vjp_x: list  # lambda^T d(f - z)/dz: the reset adds s times this to the cotangent of z
    reset_vjp_p: list  # lambda^T df/dp
    lam_dot_reset_delta: sympy.Expr  # lambda . (f(z) - z): dL/ds through the reset
    increments: tuple[Increment, ...]

    @property
    def trainable(self) -> tuple:
        return tuple(p.symbol for p in self.system.trainable_params)


def jump_increment(system: PopulationSystem, index: int) -> list[sympy.Expr]:
    """D(x, p) with R(x, weight) = x + weight D(x, p) for incoming connection ``index``, or a ModelError."""
    conn = system.incoming[index]
    per_weight = []
    for x, after in zip(system.state, conn.jump):
        delta = after - x
        d = sympy.diff(delta, WEIGHT)
        if WEIGHT in d.free_symbols or sympy.simplify(delta - WEIGHT * d) != 0:
            name = system.state_names[system.state.index(x)]
            raise ModelError(
                f"method='bptt' cannot use the synapse of connection '{conn.name}' into '{system.name}': a "
                f"spike changes '{name}' to '{after}', whose increment '{delta}' is not linear in 'weight' (of "
                "the form weight * D(x)); BPTT sums simultaneous spikes as W^T s, which needs that form"
            )
        per_weight.append(d)
    return per_weight


def _check_free_symbols(system: PopulationSystem) -> None:
    known = set(system.state) | set(system.param_symbols)
    exprs = list(system.rhs) + list(system.reset) + ([system.threshold] if system.threshold is not None else [])
    extra = sorted({str(s) for e in exprs for s in e.free_symbols} - {str(s) for s in known})
    if extra:
        raise ModelError(f"method='bptt': the equations of population '{system.name}' refer to {extra}, which "
                         "are neither state variables nor parameters (time-dependent inputs are not supported)")


def build_step_map(system: PopulationSystem, integrator: str = "rk4") -> StepMap:
    """Every symbolic piece of a grid step of ``system`` and their vector-Jacobian products."""
    _check_free_symbols(system)
    x = list(system.state)
    lam = tuple(sympy.Symbol(f"_lam{i}") for i in range(system.dim))
    params = [p.symbol for p in system.trainable_params]
    substep = list(integrator_step(system, integrator))
    g = system.threshold
    reset_delta = [f - xi for f, xi in zip(system.reset, x)] if g is not None else [sympy.Integer(0)] * len(x)
    increments = []
    for k, conn in enumerate(system.incoming):
        d = jump_increment(system, k)
        increments.append(Increment(conn.name, d, dot(lam, d),
                                    vjp(d, x, lam), vjp(d, params, lam)))
    return StepMap(
        system=system, lam=lam, substep=substep,
        substep_vjp_x=vjp(substep, x, lam), substep_vjp_p=vjp(substep, params, lam),
        threshold=g,
        threshold_dx=[sympy.diff(g, xi) for xi in x] if g is not None else [],
        threshold_dp=[sympy.diff(g, p) for p in params] if g is not None else [],
        reset_delta=reset_delta,
        reset_vjp_x=vjp(reset_delta, x, lam), reset_vjp_p=vjp(reset_delta, params, lam),
        lam_dot_reset_delta=dot(lam, reset_delta),
        increments=tuple(increments),
    )
