"""From a network description to the symbolic systems, the generated kernels and the index tables.

The kernels address every population, parameter and weight through flat arrays; the tables here say
where each piece lives (columns as in ``codegen/engine_template.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eventgrad.adjoint.derive import AdjointSystem, derive_adjoint
from eventgrad.adjoint.system import build_population_system
from eventgrad.codegen.cache import load_kernels
from eventgrad.codegen.callbacks import model_callbacks
from eventgrad.codegen.generate import ConnectionSite, engine_source, generate_source, needs_trajectory_state
from eventgrad.network import Network

N_GROUP_COLUMNS = 13
N_CONNECTION_COLUMNS = 6  # PRE, POST, WOFF, NPOST, DOFF, DPER


@dataclass
class ParamSlot:
    """Where the values of one model parameter go: population ``group``, column ``column`` of its table."""

    key: str
    group: int
    column: int
    trainable_column: int  # -1 if not trainable


@dataclass
class Layout:
    network: Network
    adjoints: list[AdjointSystem | None]
    kernels: object
    GI: np.ndarray
    CI: np.ndarray
    OC: np.ndarray
    param_slots: list[ParamSlot]
    ztot: int
    dmax: int
    n_delays: int  # length of the flat delay array DL (CI[:, DOFF] indexes it)
    needs_state: bool
    z0_parts: list[tuple[int, int, int, tuple]]  # (group, zoff, size, initial values per variable)
    jit: bool = True
    _engine: object = field(default=None, repr=False)

    @property
    def engine(self):
        """The generic, fast and step-parallel engines: one module for every network (compiled once per machine
        and precision)."""
        if self._engine is None:
            what = "eventgrad's engines, shared by every network"
            self._engine = load_kernels(engine_source(self.jit), what)
        return self._engine

    def model_callbacks(self, family: str, dtype) -> tuple:
        """This network's model functions, as the shared engines of ``family`` ("generic", "fast", "step") take
        them: MG for the generic engine, MF (the spike functions) for the others."""
        path = getattr(self.kernels, "__file__", None)
        return model_callbacks(self.kernels, Path(path).with_suffix(".lock"), family, dtype)


def build_layout(net: Network, jit: bool) -> Layout:
    """Derive every population's adjoint system, generate and load the kernels, and index everything."""
    adjoints: list[AdjointSystem | None] = []
    sites: list[ConnectionSite] = []
    needs_state = False
    for g in net.groups:
        if g.is_input:
            adjoints.append(None)
            continue
        incoming = net.incoming(g)
        system = build_population_system(g.name, g.neuron, [(c.name, c.synapse) for c in incoming])
        adj = derive_adjoint(system)
        adjoints.append(adj)
        for local, c in enumerate(incoming):
            sites.append(ConnectionSite(c.index, g.index, local))
        needs_state |= needs_trajectory_state(adj, list(range(len(incoming))))
    sites.sort(key=lambda s: s.index)
    kernels = load_kernels(generate_source(adjoints, sites, jit))

    G = len(net.groups)
    GI = np.zeros((G, N_GROUP_COLUMNS), np.int64)
    OC = np.array([c.index for g in net.groups for c in net.connections if c.pre is g], np.int64)
    zoff = poff = pgoff = out_start = 0
    slots: list[ParamSlot] = []
    z0_parts = []
    dmax = 1
    for g, adj in zip(net.groups, adjoints):
        n_out = sum(1 for c in net.connections if c.pre is g)
        row = GI[g.index]
        row[[1, 9, 10]] = g.size, out_start, n_out
        out_start += n_out
        if adj is None:
            row[0] = 1
            continue
        s = adj.system
        d = s.dim
        dmax = max(dmax, d)
        trainable = [p.key for p in s.trainable_params]
        row[2:9] = d, zoff, poff, len(s.params), int(s.linear_form() is not None), 0, int(s.spiking)
        row[11:13] = pgoff, len(trainable)
        for col, p in enumerate(s.params):
            key = p.key if "." in p.key else f"{g.name}.{p.key}"
            slots.append(ParamSlot(key, g.index, col, trainable.index(p.key) if p.trainable else -1))
        z0_parts.append((g.index, zoff, g.size, s.initial))
        zoff += g.size * d
        poff += g.size * len(s.params)
        pgoff += g.size * len(trainable)
    CI = np.zeros((len(net.connections), N_CONNECTION_COLUMNS), np.int64)
    woff = doff = 0
    for c in net.connections:
        CI[c.index] = c.pre.index, c.post.index, woff, c.post.size, -1, 0
        woff += c.pre.size * c.post.size
        if c.delayed:
            per_synapse = c.delay.ndim == 2
            CI[c.index, 4:6] = doff, int(per_synapse)
            doff += c.delay.size
    return Layout(net, adjoints, kernels, GI, CI, OC, slots, zoff, dmax, doff, needs_state, z0_parts, jit)
