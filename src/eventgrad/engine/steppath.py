"""When the step-parallel kernels apply, the order they take populations in, and the tables they read.

The step-parallel kernels (``codegen/step_template.py``) need what the event-accumulating ones need (linear
populations with real, distinct eigenvalues, additive jumps, affine thresholds, no trainable parameter in
the dynamics or the jumps), jumps that do not move the threshold function at once (current-like synapses:
no spike is ever triggered by an arrival), and delays of at least dt on some connection of every loop
between spiking populations, so that the populations can be ordered with every shorter connection
pointing forwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from eventgrad.adjoint.system import WEIGHT
from eventgrad.engine.fastpath import affine_threshold, dynamics_reason, modal_decomposition
from eventgrad.engine.numeric import evaluate

N_STEP_COLUMNS = 4  # CS_OFF, CS_PER, CS_WINDOW, CS_FIRST (codegen/step_template.py)


def _short_edges(net, dt: float) -> list:
    """Connections from a spiking population with a delay below dt (none counts as 0): a spike sent through
    one may arrive within the step it was sent in."""
    return [c for c in net.connections if not c.pre.is_input and c.pre.neuron.threshold is not None
            and (c.delay is None or float(np.min(c.delay)) < dt)]


def population_order(net, dt: float) -> list[int] | None:
    """Populations in an order where every short connection (``_short_edges``) points forwards; None if
    those connections close a loop."""
    pops = [g.index for g in net.groups if not g.is_input]
    edges = {g: set() for g in pops}
    for c in _short_edges(net, dt):
        edges[c.pre.index].add(c.post.index)
    indegree = {g: 0 for g in pops}
    for g in pops:
        for h in edges[g]:
            indegree[h] += 1
    order = []
    ready = [g for g in pops if indegree[g] == 0]
    while ready:
        g = ready.pop(0)
        order.append(g)
        for h in sorted(edges[g]):
            indegree[h] -= 1
            if indegree[h] == 0:
                ready.append(h)
    return order if len(order) == len(pops) else None


def loop_connections(net, dt: float) -> list[str]:
    """The short connections that lie on a loop of short connections."""
    short = _short_edges(net, dt)

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            g = todo.pop()
            if g == goal:
                return True
            if g not in seen:
                seen.add(g)
                todo += [c.post.index for c in short if c.pre.index == g]
        return False

    return [c.name for c in short if reaches(c.post.index, c.pre.index)]


def static_reason(layout, dt: float) -> str | None:
    """Why the step-parallel kernels can never run this network (None if they can, given suitable values)."""
    reason = dynamics_reason(layout)
    if reason is not None:
        return reason
    for adj in layout.adjoints:
        if adj is None or not adj.system.spiking:
            continue
        s = adj.system
        grad = sympy.Matrix([s.threshold]).jacobian(sympy.Matrix(s.state))
        for conn in s.incoming:
            moved = (grad * conn.jump.diff(WEIGHT))[0, 0]
            if sympy.simplify(moved) != 0:
                return (f"connection '{conn.name}' jumps a variable of the threshold of '{s.name}' at once, so an "
                        "arrival can fire its target in the same instant")
    if population_order(layout.network, dt) is None:
        loop = loop_connections(layout.network, dt)
        return (f"connections {loop} close a loop between spiking populations with delays below dt, so a spike "
                "can reach its own loop within the step it is sent in")
    return None


def step_tables(layout, params_by_group: dict[int, list[float]], dt: float):
    """(SMU, SBM, SCK, STH, SED, SAD, SPB, SPQ, SV, SVI) for the current parameter values, or (None, reason).

    Per population: eigenvalues mu, V and V^-1 (A = V diag(mu) V^-1), the affine term in modes bm = V^-1 b,
    the threshold f = STH + SCK . y (SCK = TH V), one step's free flow y -> SED y + SAD. Per connection: its
    jump per unit weight in modes SPB = V^-1 beta, and SPQ = SCK * SPB, its shares of the threshold."""
    net = layout.network
    G, C, dmax = len(net.groups), len(net.connections), layout.dmax
    SMU, SBM, SCK, SED, SAD = (np.zeros((G, dmax)) for _ in range(5))
    STH = np.zeros(G)
    SV, SVI = np.zeros((G, dmax, dmax)), np.zeros((G, dmax, dmax))
    SPB, SPQ = np.zeros((C, dmax)), np.zeros((C, dmax))
    for g, adj in enumerate(layout.adjoints):
        if adj is None:
            continue
        s = adj.system
        d = s.dim
        values = params_by_group[g]
        modes, reason = modal_decomposition(s, values)
        if modes is None:
            return None, reason
        _, b, mu, V, Vinv = modes
        SMU[g, :d], SV[g, :d, :d], SVI[g, :d, :d] = mu, V, Vinv
        bm = Vinv @ b
        SBM[g, :d] = bm
        SED[g, :d] = np.exp(mu * dt)
        with np.errstate(divide="ignore", invalid="ignore"):
            phi = np.where(mu == 0.0, dt, np.expm1(mu * dt) / np.where(mu == 0.0, 1.0, mu))
        SAD[g, :d] = phi * bm
        if s.spiking:
            threshold, reason = affine_threshold(s, values)
            if threshold is None:
                return None, reason
            SCK[g, :d] = threshold[0] @ V
            STH[g] = threshold[1]
        for conn in s.incoming:
            c = next(x.index for x in net.connections if x.name == conn.name)
            beta = evaluate(conn.jump.diff(WEIGHT), s.param_symbols, values).reshape(d)
            SPB[c, :d] = Vinv @ beta
            SPQ[c, :d] = SCK[g, :d] * SPB[c, :d]
    return (SMU, SBM, SCK, STH, SED, SAD, SPB, SPQ, SV, SVI), None


def delay_tables(net, delays: dict[str, np.ndarray], SMU: np.ndarray, dt: float, dtype=np.float64):
    """(CS, DS, ER): every connection's delays in DS (one, or one per synapse laid out like its weights);
    exp(-mu_k (d - K dt)) for the target's modes (ER: mode k's of synapse i at k len(DS) + i), K = floor(d /
    dt) the delay's whole steps as the kernels compute them (``whole_steps``: d as DS holds it, dt in the
    simulation's type, as the kernels get it); and the table CS. The kernels factor an arrival's
    exp(mu_k (t1 - t_a)) with it (single_arrivals_2): each factor lies between 1 and exp(-mu_k dt), so it
    neither overflows nor loses digits for any delay. A connection without delay has one delay, 0. DS and ER
    in the simulation's type: the kernels stream them once per source in each pass, and half the bytes is
    half the traffic in float32 (the delays are the parameters' own values)."""
    CS = np.zeros((len(net.connections), N_STEP_COLUMNS), np.int64)
    DS, ER = [], []
    off = 0
    dt_k = float(np.dtype(dtype).type(dt))
    inv = 1.0 / dt_k
    for c in net.connections:
        d = np.zeros(())
        if c.delay is not None:
            d = np.asarray(delays[f"{c.name}.delay"], np.float64).reshape(c.delay.shape)
        flat = d.ravel().astype(dtype)
        DS.append(flat)
        held = flat.astype(np.float64)
        rest = held - np.floor(held * inv) * dt_k
        # a delay too long to arrive in any trial leaves no rest worth the name: never read (it never arrives)
        rest = np.where(np.abs(rest) <= 2.0 * dt_k, rest, 0.0)
        ER.append(np.exp(-np.outer(SMU[c.post.index], rest)).astype(dtype))
        # the window of steps a source can still send arrivals into (capped: the trial is never that long)
        CS[c.index] = (off, int(d.ndim == 2), int(min(np.floor(float(np.max(d)) / dt), 2**40)) + 2,
                       int(float(np.min(d)) >= dt))
        off += flat.size
    return CS, np.concatenate(DS), np.concatenate(ER, axis=1).ravel()


@dataclass
class StepPlan:
    """What the step-parallel kernels read for one run: the modal tables, the delays, and each population's
    incoming connections (ICL[ICS[g]:ICS[g + 1]])."""

    tables: tuple  # forward_step's SMU, SBM, SCK, STH, SED, SAD, SPB, SPQ, SV, SVI
    CS: np.ndarray
    DS: np.ndarray
    ER: np.ndarray
    incoming: tuple

    @property
    def backward_tables(self) -> tuple:
        SMU, _, _, _, SED, _, SPB, _, SV, SVI = self.tables
        return SMU, SV, SVI, SED, SPB

    @classmethod
    def build(cls, sim, values: dict, DL: np.ndarray):
        """The plan for the simulator's current parameter values, or (None, reason)."""
        key = tuple((g, tuple(v)) for g, v in values.items())
        cached = getattr(sim, "_step_cache", (None,))
        if cached[0] != key:  # the modal tables depend on neuron parameters only
            sim._step_cache = (key, step_tables(sim.layout, values, sim.dt))
        tables, reason = sim._step_cache[1]
        if tables is None:
            return None, reason
        net = sim.network
        CS, DS, ER = delay_tables(net, sim.params, tables[0], sim.dt, sim.dtype)
        ICS = np.zeros(len(net.groups) + 1, np.int64)
        ICL = []
        for g in net.groups:
            ICL += [c.index for c in net.connections if c.post is g]
            ICS[g.index + 1] = len(ICL)
        return cls(tables, CS, DS, ER, (ICS, np.array(ICL, np.int64))), None
