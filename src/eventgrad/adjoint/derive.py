"""Derive the adjoint (EventProp) system of a population symbolically.

Conventions (design notes, section 2): ``lambda = dL/dx``; between events, backwards in time,
``dlambda/dt = -J^T lambda`` with ``J = dF/dx`` (the loss here has no running integrand: readouts sample
the state on the grid, which adds ``dL/dx(t_n)`` to lambda at each grid time t_n).  At a spike of neuron n
at t_k, with ``x-`` its state just before, ``f`` the reset and ``g`` the threshold:

    lambda_n- = (df/dx)^T lambda_n+ - (dg/dx)^T / gdot * B
    B = lambda_n+ . (df/dx F(x-) - F(f(x-)))            # moving the reset later
        + sum_m lambda_m+ . (dR/dx F(x_m-) - F(R(x_m-)))  # moving every target's jump later
        + dl/dt_k                                         # a loss on the spike time itself
    gdot = dg/dx . F(x-)

Targets keep ``lambda_m- = (dR/dx_m)^T lambda_m+`` and the weight gradient collects
``lambda_m+ . dR/dw``. A transmission delay d moves the target's jump from t_k to t_k + d: its gradient is
the target's term of B at the arrival, ``lambda_m+ . (dR/dx F(x_m-) - F(R(x_m-)))`` (``delay_grad``), and
with a delay that term joins B of the sending spike from the arrival, not from t_k.
Parameters collect ``integral lambda . dF/dp dt`` plus the jump terms
``lambda_n+ . df/dp``, ``lambda_m+ . dR/dp`` and ``-(dg/dp) / gdot * B`` (a threshold parameter moves the
spike).  The sum over targets and dl/dt_k are not known to one population, so they appear as the symbols
``TARGET_SHIFT`` and ``DLOSS_DT``; the engine adds them up.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from eventgrad.adjoint.system import WEIGHT, PopulationSystem
from eventgrad.model import symbol

TARGET_SHIFT = symbol("target_shift_sum")
DLOSS_DT = symbol("dloss_dspike_time")
GDOT = symbol("threshold_rate")  # stands for gdot in the jump, so that the engine can guard grazing spikes


def adjoint_symbols(system: PopulationSystem) -> tuple[sympy.Symbol, ...]:
    """lambda_<var> for every state variable of the population."""
    return tuple(symbol(f"lambda_{s.name}") for s in system.state)


@dataclass(frozen=True)
class SpikeAdjoint:
    """The adjoint jump at a spike of a neuron of this population."""

    gdot: sympy.Expr          # dg/dx . F(x-); the jump formulas below use the symbol GDOT in its place
    own_shift: sympy.Matrix
    bracket: sympy.Expr
    lambda_minus: sympy.Matrix
    fixed_time_lambda_minus: sympy.Matrix
    threshold_param_grads: dict
    reset_param_grads: dict


@dataclass(frozen=True)
class ConnectionAdjoint:
    """What a presynaptic spike arriving through one incoming connection contributes backwards."""

    name: str
    target_shift: sympy.Expr
    delay_grad: sympy.Expr  # dL/d(delay) per arrival: moving the jump later, the same expression as target_shift
    weight_grad: sympy.Expr
    lambda_minus: sympy.Matrix
    lambda_passes_through: bool
    param_grads: dict


@dataclass(frozen=True)
class AdjointSystem:
    system: PopulationSystem
    lam: tuple[sympy.Symbol, ...]
    adjoint_rhs: sympy.Matrix
    param_integrands: dict
    spike: SpikeAdjoint | None
    connections: tuple[ConnectionAdjoint, ...]


def adjoint_ode(system: PopulationSystem) -> sympy.Matrix:
    """dlambda/dt = -J^T lambda, J = dF/dx."""
    lam = sympy.Matrix(adjoint_symbols(system))
    jac = system.rhs.jacobian(sympy.Matrix(system.state))
    return -jac.T * lam


def adjoint_jump(system: PopulationSystem) -> SpikeAdjoint:
    """The general jump rule of the module docstring, for the population's own spikes."""
    if system.threshold is None:
        raise ValueError(f"population '{system.name}' has no threshold, so it never spikes")
    x = sympy.Matrix(system.state)
    lam = sympy.Matrix(adjoint_symbols(system))
    F = system.rhs
    f = system.reset
    dg_dx = sympy.Matrix([system.threshold]).jacobian(x)           # 1 x d
    df_dx = f.jacobian(x)                                          # d x d
    F_after = F.xreplace(dict(zip(system.state, f)))               # F(f(x-)), simultaneous substitution
    gdot = (dg_dx * F)[0, 0]
    own_shift = df_dx * F - F_after
    bracket = (lam.T * own_shift)[0, 0] + TARGET_SHIFT + DLOSS_DT
    lambda_minus = df_dx.T * lam - dg_dx.T * (bracket / GDOT)
    threshold_grads = {}
    reset_grads = {}
    for p in system.trainable_params:
        dg_dp = sympy.diff(system.threshold, p.symbol)
        if dg_dp != 0:
            threshold_grads[p.symbol] = -dg_dp / GDOT * bracket
        df_dp = f.diff(p.symbol)
        if any(e != 0 for e in df_dp):
            reset_grads[p.symbol] = (lam.T * df_dp)[0, 0]
    return SpikeAdjoint(gdot, own_shift, bracket, lambda_minus, df_dx.T * lam, threshold_grads, reset_grads)


def connection_adjoint(system: PopulationSystem, index: int) -> ConnectionAdjoint:
    """Backward terms of incoming connection ``index``: target shift, weight gradient, lambda map."""
    conn = system.incoming[index]
    x = sympy.Matrix(system.state)
    lam = sympy.Matrix(adjoint_symbols(system))
    R = conn.jump
    dR_dx = R.jacobian(x)
    F_after = system.rhs.xreplace(dict(zip(system.state, R)))
    target_shift = (lam.T * (dR_dx * system.rhs - F_after))[0, 0]  # d/dt of x+(t) = R(x(t)) minus F(x+)
    weight_grad = (lam.T * R.diff(WEIGHT))[0, 0]
    param_grads = {}
    for p in system.trainable_params:
        dR_dp = R.diff(p.symbol)
        if any(e != 0 for e in dR_dp):
            param_grads[p.symbol] = (lam.T * dR_dp)[0, 0]
    passes = dR_dx == sympy.eye(len(system.state))
    shift = sympy.expand(target_shift)
    return ConnectionAdjoint(conn.name, shift, shift, weight_grad, dR_dx.T * lam, passes, param_grads)


def parameter_integrands(system: PopulationSystem) -> dict:
    """lambda . dF/dp for every trainable parameter p (integrated over the trial by the engine)."""
    lam = sympy.Matrix(adjoint_symbols(system))
    out = {}
    for p in system.trainable_params:
        integrand = (lam.T * system.rhs.diff(p.symbol))[0, 0]
        if integrand != 0:
            out[p.symbol] = integrand
    return out


def derive_adjoint(system: PopulationSystem) -> AdjointSystem:
    """The complete adjoint system of one population (a pure function of its symbolic system)."""
    return AdjointSystem(
        system=system,
        lam=adjoint_symbols(system),
        adjoint_rhs=adjoint_ode(system),
        param_integrands=parameter_integrands(system),
        spike=adjoint_jump(system) if system.spiking else None,
        connections=tuple(connection_adjoint(system, k) for k in range(len(system.incoming))),
    )
