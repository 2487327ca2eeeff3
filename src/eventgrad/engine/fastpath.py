"""When the event-accumulating kernels apply, and the modal tables they need.

The fast kernels (``codegen/fast_template.py``) need every population linear with one A per population
and real, distinct, well-separated eigenvalues, and every synaptic jump of the form ``x + weight * beta``
with beta free of the state; no trainable parameter may sit in the dynamics or in a jump (their
gradients need the state along the trajectory). Anything else runs on the generic kernels, which are
exact too, only slower.
"""

from __future__ import annotations

import numpy as np
import sympy

from eventgrad.adjoint.system import WEIGHT
from eventgrad.engine.numeric import evaluate

MAX_CONDITION = 1e6


def static_reason(layout) -> str | None:
    """Why the fast kernels can never run this network (None if they can, given suitable values)."""
    for c in layout.network.connections:
        if c.delayed:
            return f"connection '{c.name}' has transmission delays, which the event-accumulating kernels do not take"
    return dynamics_reason(layout)


def dynamics_reason(layout) -> str | None:
    """Why some population's dynamics or jumps rule out the modal (fast and step-parallel) kernels, or None."""
    for adj in layout.adjoints:
        if adj is None:
            continue
        s = adj.system
        if s.linear_form() is None:
            return f"population '{s.name}' has nonlinear dynamics"
        if adj.param_integrands:
            return f"population '{s.name}' has trainable parameters in its ODE"
        state = set(s.state)
        for conn, ca in zip(s.incoming, adj.connections):
            delta = (conn.jump - sympy.Matrix(s.state)).applyfunc(sympy.expand)
            if not ca.lambda_passes_through or any(state & e.free_symbols for e in delta):
                return f"connection '{conn.name}' has a jump that depends on the target's state"
            if any(sympy.diff(e, WEIGHT, 2) != 0 or e.subs(WEIGHT, 0) != 0 for e in delta):
                return f"connection '{conn.name}' has a jump that is not proportional to the weight"
            if ca.param_grads:
                return f"connection '{conn.name}' has trainable parameters in its jump"
    return None


def modal_decomposition(s, values):
    """((A, b, mu, V, V^-1), None) for population system s at parameter ``values`` (dx/dt = A x + b,
    A = V diag(mu) V^-1), or (None, reason) where the eigenvalues are complex or (nearly) repeated."""
    d = s.dim
    A_sym, b_sym = s.linear_form()
    A = evaluate(A_sym, s.param_symbols, values).reshape(d, d)
    b = evaluate(b_sym, s.param_symbols, values).reshape(d)
    mu, V = np.linalg.eig(A)
    if np.any(np.abs(mu.imag) > 0):
        return None, f"population '{s.name}' has complex eigenvalues (oscillating dynamics)"
    mu, V = mu.real, V.real
    if np.linalg.cond(V) > MAX_CONDITION:
        return None, f"population '{s.name}' has (nearly) repeated eigenvalues"
    return (A, b, mu, V, np.linalg.inv(V)), None


def affine_threshold(s, values):
    """((coefficients, constant), None) with threshold = coefficients . x + constant, or (None, reason)."""
    grad = sympy.Matrix([s.threshold]).jacobian(sympy.Matrix(s.state))
    if any(not e.free_symbols.isdisjoint(s.state) for e in grad):
        return None, f"population '{s.name}' has a threshold that is not affine in its state"
    coefficients = evaluate(grad, s.param_symbols, values).reshape(s.dim)
    constant = float(evaluate(sympy.Matrix([s.threshold.xreplace({v: 0 for v in s.state})]), s.param_symbols,
                              values).reshape(()))
    return (coefficients, constant), None


def modal_tables(layout, params_by_group: dict[int, list[float]], dmax: int):
    """(MU, PI, PIB, PB, PT, TH, BETA) for the current parameter values, or (None, reason) when they do not
    fit. BETA[c] is connection c's jump per unit weight (x += w * BETA[c])."""
    net = layout.network
    G, C = len(net.groups), len(net.connections)
    MU = np.zeros((G, dmax))
    PI = np.zeros((G, dmax, dmax, dmax))
    PIB = np.zeros((G, dmax, dmax))
    PB = np.zeros((C, dmax, dmax))
    PT = np.zeros((C, dmax, dmax))
    TH = np.zeros((G, dmax + 2))  # affine thresholds: coefficients, constant, 1.0 if affine
    BETA = np.zeros((C, dmax))
    for g, adj in enumerate(layout.adjoints):
        if adj is None:
            continue
        s = adj.system
        d = s.dim
        values = params_by_group[g]
        modes, reason = modal_decomposition(s, values)
        if modes is None:
            return None, reason
        A, b, mu, V, Vinv = modes
        if s.spiking:
            threshold, reason = affine_threshold(s, values)
            if threshold is None:
                return None, reason
            TH[g, :d], TH[g, d], TH[g, d + 1] = threshold[0], threshold[1], 1.0
        MU[g, :d] = mu
        for k in range(d):
            proj = np.outer(V[:, k], Vinv[k, :])
            PI[g, k, :d, :d] = proj
            PIB[g, k, :d] = proj @ b
        for conn in s.incoming:
            c = next(x.index for x in net.connections if x.name == conn.name)
            beta = evaluate(conn.jump.diff(WEIGHT), s.param_symbols, values).reshape(d)
            tau = -A @ beta  # dR/dx F(x) - F(R(x, w)) = -w A beta for additive jumps
            BETA[c, :d] = beta
            for k in range(d):
                proj = PI[g, k, :d, :d]
                PB[c, k, :d] = proj @ beta
                PT[c, k, :d] = proj @ tau
    return (MU, PI, PIB, PB, PT, TH, BETA), None
