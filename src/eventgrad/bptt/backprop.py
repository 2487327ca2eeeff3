"""Backpropagation through time of the grid simulation in ``passes.py``.

Going back from k = N to 1, with lambda = dL/dx_k of every population (the cotangent of the state after
step k's deliveries), each step is undone in the reverse order of the forward pass:

    delivery   x_k = r + sum_c a_c D_c(r):  dL/da_c = lambda . D_c;  dL/dW_c += u_c^T dL/da_c;
               dL/ds_pre += dL/da_c W_c^T;  lambda_r = lambda + a_c lambda^T dD_c/dr
    reset      r = z + s (f(z) - z):         dL/ds += lambda_r . (f - z);
                                             lambda_z = lambda_r + s lambda_r^T d(f - z)/dz
    spike      s = H(g(z)):                  dL/dg = dL/ds * surrogate'(g);  lambda_z += dL/dg dg/dz
    integrator z = Phi_h^m(x_{k-1}):         lambda_{x_{k-1}} = (dPhi/dx)^T ... (dPhi/dx)^T lambda_z

and every parameter collects lambda^T d(piece)/dp of each piece it enters. The products are the
generated vector-Jacobian products (``kernels.py``); nothing is specific to a model.
"""

from __future__ import annotations

import numpy as np

from eventgrad.bptt.passes import (
    MAX,
    SUM,
    DelayedSpikes,
    Plan,
    PopPlan,
    Trace,
    advance,
    flush_subnormal,
    source_spikes,
)


class Gradients:
    """Sums of dL/d(weight) and dL/d(parameter) in float64; per-neuron sums for the parameters."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.values: dict[str, np.ndarray] = {}
        for p in plan.pops:
            for conn in p.incoming:
                self.values[conn.key] = np.zeros(conn.weight.shape)
            for key in p.trainable_keys:
                self.values[key] = np.zeros(p.size)

    def add_params(self, pop: PopPlan, terms: list, factor=None) -> None:
        """Add factor * term, summed over the batch, to each trainable parameter of ``pop``."""
        for key, term in zip(pop.trainable_keys, terms):
            if term is None:
                continue
            if factor is not None:
                term = factor * term
            self.values[key] += np.broadcast_to(term, (self.plan.batch, pop.size)).sum(axis=0, dtype=np.float64)


def backward(plan: Plan, trace: Trace, dL_dy: np.ndarray, dL_ds: dict) -> Gradients:
    """Gradients of a loss whose derivative is ``dL_dy`` (readout) plus ``dL_ds`` (per population index,
    (batch, size), added to dL/ds_k at every step: spike-count readouts and regularizers)."""
    grads = Gradients(plan)
    B = plan.batch
    lam = [[np.zeros((B, p.size), plan.dtype) for _ in range(p.dim)] for p in plan.pops]
    pending = {}  # (population index, k): dL/ds_k from deliveries through delays, made at later steps
    for k in range(plan.n_steps, 0, -1):
        _readout_cotangent(plan, trace, k, dL_dy, lam)
        steps = [advance(plan, p, list(trace.states[i][k - 1])) for i, p in enumerate(plan.pops)]
        spikes = {p.index: st[3] for p, st in zip(plan.pops, steps) if p.spiking}
        lam_s = {p.index: _spike_cotangent(plan, p, dL_ds) + pending.pop((p.index, k), 0.0)
                 for p in plan.pops if p.spiking}
        lam_r = [_delivery_vjp(plan, p, k, st[4], spikes, lam[i], lam_s, grads, trace.history, pending)
                 for i, (p, st) in enumerate(zip(plan.pops, steps))]
        for i, (p, st) in enumerate(zip(plan.pops, steps)):
            lam[i] = _step_vjp(plan, p, st, lam_r[i], lam_s.get(p.index), grads)
    for i, p in enumerate(plan.pops):  # the input spikes delivered at t_0
        _delivery_vjp(plan, p, 0, trace.initial[i], {}, lam[i], {}, grads, trace.history, {})
    return grads


def _readout_cotangent(plan: Plan, trace: Trace, k: int, dL_dy: np.ndarray, lam: list) -> None:
    """Add dL/dx_k of the readout sample at t_k to the cotangent of the readout variable."""
    ro = plan.readout
    if ro is None or ro.kind not in (SUM, MAX):
        return
    if ro.kind == SUM:
        term = ro.weights[k - 1] * dL_dy
    else:
        term = np.where(trace.argmax == k, dL_dy, 0.0)
    lam[ro.pop][ro.var] = lam[ro.pop][ro.var] + term.astype(plan.dtype)


def _spike_cotangent(plan: Plan, pop: PopPlan, dL_ds: dict) -> np.ndarray:
    extra = dL_ds.get(pop.index)
    if extra is None:
        return np.zeros((plan.batch, pop.size), plan.dtype)
    return np.array(extra, plan.dtype)


def _delivery_vjp(plan, pop, k, r, spikes, lam_x, lam_s, grads, history, pending) -> list:
    """Cotangent of r (after the reset) from that of x_k; weight gradients; dL/ds of source populations
    (into ``pending`` for spikes of earlier steps, delivered now through delays)."""
    lam_r = list(lam_x)
    shape = (plan.batch, pop.size)
    for conn, inc in zip(pop.incoming, pop.kernels.increments):
        u = source_spikes(plan, conn, k, spikes, history)
        if u is None:
            continue
        args = (*r, *pop.params, *lam_x, plan.h)
        dL_da = np.broadcast_to(inc.lam_dot(*args)[0], shape)
        u.add_weight_grad(dL_da, grads.values[conn.key])  # summed in float64
        if not conn.pre_is_input:
            _spike_terms(conn, u, dL_da, k, lam_s, pending)
        if inc.vjp_x.nonzero or inc.vjp_p.nonzero:  # the jump depends on the state or a trainable parameter
            a = u.drive(conn.weight)
            for j, v in enumerate(inc.vjp_x(*args)):
                if v is not None:
                    lam_r[j] = lam_r[j] + a * v
            grads.add_params(pop, inc.vjp_p(*args), a)
    return lam_r


def _spike_terms(conn, u, dL_da, k, lam_s, pending) -> None:
    """dL/ds of the spikes connection ``conn`` delivered at step k: dL/da W^T, for the step each was sent at."""
    delayed = isinstance(u, DelayedSpikes)
    parts = u.parts if delayed else [(u, None, 0 if conn.delay_steps is None else int(conn.delay_steps))]
    for _, mask, steps in parts:
        term = dL_da @ (conn.weight if mask is None else conn.weight * mask).T
        if steps == 0:
            lam_s[conn.pre] += term
        else:
            key = (conn.pre, k - steps)
            pending[key] = pending.get(key, 0.0) + term


def _step_vjp(plan, pop, step, lam_r, lam_s, grads) -> list:
    """Cotangent of x_{k-1} from that of r: back through the reset, the threshold and the integrator."""
    subs, z, g, s, _ = step
    k = pop.kernels
    lam_z = list(lam_r)
    if pop.spiking:
        args = (*z, *pop.params, *lam_r, plan.h)
        through_reset = k.lam_dot_reset_delta(*args)[0]
        if through_reset is not None:
            lam_s = lam_s + through_reset  # dL/ds: the reset moves r by f(z) - z
        for j, v in enumerate(k.reset_vjp_x(*args)):
            if v is not None:
                lam_z[j] = lam_z[j] + s * v
        grads.add_params(pop, k.reset_vjp_p(*args), s)
        lam_g = lam_s * plan.surrogate.derivative(g).astype(plan.dtype, copy=False)  # dH/dg -> surrogate
        for j, v in enumerate(k.threshold_dx(*args)):
            if v is not None:
                lam_z[j] = lam_z[j] + lam_g * v
        grads.add_params(pop, k.threshold_dp(*args), lam_g)
    shape = (plan.batch, pop.size)
    for x in reversed(subs):
        args = (*x, *pop.params, *lam_z, plan.h)
        grads.add_params(pop, k.substep_vjp_p(*args))
        lam_z = [np.zeros(shape, plan.dtype) if v is None else np.broadcast_to(v, shape)
                 for v in k.substep_vjp_x(*args)]
    return flush_subnormal(lam_z, plan.dtype)
