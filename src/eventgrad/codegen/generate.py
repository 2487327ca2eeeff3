"""Generate the Python source of a network's kernels from the symbolic adjoint systems.

For every population g the generator emits small functions named ``<role>_<g>`` (``rhs_0``, ``thr_1``,
...), for every connection c the functions ``<role>_c<c>``, one dispatcher per role that selects the
function by index (``rhs(g, x, p, out)`` for any population), and a wrapper ``mf_<role>`` of each
dispatcher: that module is all that is specific to a network.

The engines (``engine_source``: the generic, fast and step-parallel ones) are the same source for every
network, so numba compiles them once per machine and precision. They take a network's model code as an
argument: its ``mf_*`` functions compiled as C callbacks (``callbacks.py``), all thirteen for the generic
engine (MG), the five it runs at a spike for the fast and step-parallel engines, which read dynamics,
thresholds and jumps from tables (MF). A new network compiles only those small callbacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sympy

from eventgrad.adjoint.derive import DLOSS_DT, GDOT, TARGET_SHIFT, AdjointSystem
from eventgrad.adjoint.system import WEIGHT
from eventgrad.codegen.printer import Lines, emit_function

# the engines shared by every network: the generic engine, the fast and step-parallel kernels
SHARED_TEMPLATES = [Path(__file__).with_name(n) for n in ("engine_template.py", "fast_template.py",
                                                          "step_template.py", "step_backward_template.py")]
# the spike functions the shared engines take (MF, in the order of MF_THR, ... in engine_template.py)
SPIKE_ROLES = ("thr", "thrdot", "reset", "spikeadj", "fixedadj")

# role name -> (arguments, what it returns when the index has no such function: None for nothing)
GROUP_ROLES = {
    "rhs": ("x, p, out", None),
    "lin": ("p, M", None),
    "adjrhs": ("x, p, lam, out", None),
    "pint": ("x, p, lam, out", None),
    "thr": ("x, p", "0.0"),
    "thrdot": ("x, p", "0.0"),
    "reset": ("x, p, out", None),
    "spikeadj": ("x, p, lam, S, dldt, gdot, out, pg", None),
    "fixedadj": ("x, p, lam, out, pg", None),
    "scanrow": ("Z, P, size, hits", "0"),
}
CONNECTION_ROLES = {
    "jump": ("x, w, p, out", None),
    "jumprow": ("Z, P, w, m_from, m_to, check, tmp, hits", "0"),
    "adjrow": ("X, P, L, w, scale, m_from, m_to, q, gw, PG, tmp", None),
}
# the model functions the generic engine takes (MG, in the order of MG_RHS, ... in engine_template.py): per
# neuron, and per population or connection row where the engine would call them for every neuron of one
# (the threshold scan, a spike's jumps onto its targets and their adjoint): a call through a pointer per row,
# with the loop over neurons compiled with the model's code
MODEL_ROLES = ("rhs", "lin", "adjrhs", "pint", "thr", "thrdot", "reset", "spikeadj", "fixedadj", "scanrow", "jump",
               "jumprow", "adjrow")


@dataclass(frozen=True)
class ConnectionSite:
    """Connection ``index`` (global) enters population ``post`` as its incoming connection ``local``."""

    index: int
    post: int
    local: int


def _reads(adj: AdjointSystem) -> dict:
    s = adj.system
    reads = {sym: f"x[{i}]" for i, sym in enumerate(s.state)}
    reads.update({sym: f"p[{i}]" for i, sym in enumerate(s.param_symbols)})
    reads.update({sym: f"lam[{i}]" for i, sym in enumerate(adj.lam)})
    reads.update({WEIGHT: "w", TARGET_SHIFT: "S", DLOSS_DT: "dldt", GDOT: "gdot"})
    return reads


def _trainable_index(adj: AdjointSystem) -> dict:
    return {p.symbol: q for q, p in enumerate(adj.system.trainable_params)}


def _emit_group(lines: Lines, g: int, adj: AdjointSystem) -> None:
    s = adj.system
    reads = _reads(adj)
    d = s.dim
    emit_function(lines, f"rhs_{g}", ["x", "p", "out"], reads, [(f"out[{i}]", e) for i, e in enumerate(s.rhs)])
    lin = s.linear_form()
    if lin is not None:
        A, b = lin
        writes = [(f"M[{i}, {j}]", A[i, j]) for i in range(d) for j in range(d) if A[i, j] != 0]
        writes += [(f"M[{i}, {d}]", b[i]) for i in range(d) if b[i] != 0]
        emit_function(lines, f"lin_{g}", ["p", "M"], reads, writes)
    jac_t_lam = -adj.adjoint_rhs  # dlambda/dtau in reversed time tau = T - t
    emit_function(lines, f"adjrhs_{g}", ["x", "p", "lam", "out"], reads,
                  [(f"out[{i}]", e) for i, e in enumerate(jac_t_lam)])
    tidx = _trainable_index(adj)
    # every trainable parameter gets an entry (zero where the ODE does not contain it): callers sum them all
    emit_function(lines, f"pint_{g}", ["x", "p", "lam", "out"], reads,
                  [(f"out[{q}]", adj.param_integrands.get(p, sympy.Integer(0))) for p, q in tidx.items()])
    if adj.spike is None:
        return
    sp = adj.spike
    emit_function(lines, f"thr_{g}", ["x", "p"], reads, [], returns=s.threshold)
    emit_function(lines, f"thrdot_{g}", ["x", "p"], reads, [], returns=sp.gdot)
    emit_function(lines, f"reset_{g}", ["x", "p", "out"], reads, [(f"out[{i}]", e) for i, e in enumerate(s.reset)])
    writes = [(f"out[{i}]", e) for i, e in enumerate(sp.lambda_minus)]
    grads = {**{p: 0 for p in tidx}}
    for p, e in sp.threshold_param_grads.items():
        grads[p] = grads[p] + e
    for p, e in sp.reset_param_grads.items():
        grads[p] = grads[p] + e
    pg_writes = [(f"pg[{tidx[p]}]", e) for p, e in grads.items() if e != 0]
    _emit_two_part(lines, f"spikeadj_{g}", ["x", "p", "lam", "S", "dldt", "gdot", "out", "pg"], reads, writes,
                   pg_writes)
    fixed_writes = [(f"out[{i}]", e) for i, e in enumerate(sp.fixed_time_lambda_minus)]
    reset_pg = [(f"pg[{tidx[p]}]", e) for p, e in sp.reset_param_grads.items()]
    _emit_two_part(lines, f"fixedadj_{g}", ["x", "p", "lam", "out", "pg"], reads, fixed_writes, reset_pg)


def _emit_two_part(lines, name, args, reads, writes, accum_writes, returns=None) -> None:
    """A function that assigns ``writes`` and adds ``accum_writes`` (two helpers, one public name)."""
    emit_function(lines, f"{name}_set", args, reads, writes, returns=returns)
    emit_function(lines, f"{name}_add", args, reads, accum_writes, accumulate=True)
    lines.add("@leaf")
    lines.add(f"def {name}({', '.join(args)}):")
    lines.indent()
    lines.add(f"{name}_add({', '.join(args)})")
    lines.add(f"{'return ' if returns is not None else ''}{name}_set({', '.join(args)})")
    lines.indent(-1)
    lines.add()


def _emit_connection(lines: Lines, c: int, adj: AdjointSystem, local: int) -> None:
    s = adj.system
    ca = adj.connections[local]
    reads = _reads(adj)
    jump = s.incoming[local].jump
    emit_function(lines, f"jump_c{c}", ["x", "w", "p", "out"], reads, [(f"out[{i}]", e) for i, e in enumerate(jump)])
    emit_function(lines, f"tshift_c{c}", ["x", "w", "p", "lam"], reads, [], returns=ca.target_shift)
    emit_function(lines, f"wgrad_c{c}", ["x", "w", "p", "lam"], reads, [], returns=ca.weight_grad)
    emit_function(lines, f"tadj_c{c}", ["x", "w", "p", "lam", "out"], reads,
                  [(f"out[{i}]", e) for i, e in enumerate(ca.lambda_minus)])
    tidx = _trainable_index(adj)
    emit_function(lines, f"jpgrad_c{c}", ["x", "w", "p", "lam", "pg"], reads,
                  [(f"pg[{tidx[p]}]", e) for p, e in ca.param_grads.items()], accumulate=True)


def _emit_rows(lines: Lines, g: int, adj: AdjointSystem) -> None:
    """scanrow_<g>: the neurons of population g at or above threshold (their indices into hits; how many)."""
    if adj.spike is None:
        return
    d, npar = adj.system.dim, len(adj.system.params)
    lines.add("@leaf")
    lines.add(f"def scanrow_{g}(Z, P, size, hits):")
    lines.indent()
    lines.add("n = 0")
    lines.add("for j in range(size):")
    lines.add(f"    if thr_{g}(Z[j * {d}:(j + 1) * {d}], P[j * {npar}:(j + 1) * {npar}]) >= 0.0:")
    lines.add("        hits[n] = j")
    lines.add("        n += 1")
    lines.add("return n")
    lines.indent(-1)
    lines.add()


def _emit_connection_rows(lines: Lines, c: int, g: int, adj: AdjointSystem) -> None:
    """jumprow_c<c>: the jumps of one presynaptic unit onto targets m_from..m_to-1 of population g (Z, P: g's
    states and parameters, w: the weights, already scaled), each target's new state checked against threshold
    when ``check`` (those at or above it into hits; how many). adjrow_c<c>: the same jumps undone in the adjoint
    pass (X: the targets' states just before, L: their adjoint, updated in place), with each target's time
    shift into q, its weight gradient (times scale) added to gw and its parameter gradients to PG."""
    s = adj.system
    d, npar, nt = s.dim, len(s.params), len(s.trainable_params)
    lines.add("@leaf")
    lines.add(f"def jumprow_c{c}(Z, P, w, m_from, m_to, check, tmp, hits):")
    lines.indent()
    lines.add("n = 0")
    lines.add("for m in range(m_from, m_to):")
    lines.indent()
    lines.add(f"x = Z[m * {d}:(m + 1) * {d}]")
    lines.add(f"p = P[m * {npar}:(m + 1) * {npar}]")
    lines.add(f"jump_c{c}(x, w[m], p, tmp)")
    lines.add(f"for i in range({d}):")
    lines.add("    x[i] = tmp[i]")
    if adj.spike is not None:
        lines.add(f"if check and thr_{g}(x, p) >= 0.0:")
        lines.add("    hits[n] = m")
        lines.add("    n += 1")
    lines.indent(-1)
    lines.add("return n")
    lines.indent(-1)
    lines.add()
    lines.add("@leaf")
    lines.add(f"def adjrow_c{c}(X, P, L, w, scale, m_from, m_to, q, gw, PG, tmp):")
    lines.indent()
    lines.add("for m in range(m_from, m_to):")
    lines.indent()
    lines.add(f"x = X[m * {d}:(m + 1) * {d}]")
    lines.add(f"p = P[m * {npar}:(m + 1) * {npar}]")
    lines.add(f"lam = L[m * {d}:(m + 1) * {d}]")
    lines.add(f"q[m] = tshift_c{c}(x, w[m], p, lam)")
    lines.add(f"gw[m] += scale * wgrad_c{c}(x, w[m], p, lam)")
    if nt:
        lines.add(f"jpgrad_c{c}(x, w[m], p, lam, PG[m * {nt}:(m + 1) * {nt}])")
    lines.add(f"tadj_c{c}(x, w[m], p, lam, tmp)")
    lines.add(f"for i in range({d}):")
    lines.add("    lam[i] = tmp[i]")
    lines.indent(-1)
    lines.indent(-1)
    lines.add()


def _emit_dispatcher(lines: Lines, role: str, args: str, returns: str | None, indices: list, prefix: str) -> None:
    lines.add("@leaf")
    lines.add(f"def {role}(k, {args}):")
    lines.indent()
    for n, k in enumerate(indices):
        lines.add(f"{'if' if n == 0 else 'elif'} k == {k}:")
        lines.indent()
        lines.add(f"{'return ' if returns else ''}{role}_{prefix}{k}({args})")
        if returns is None:
            lines.add("return")
        lines.indent(-1)
    lines.add(f"return {returns}" if returns else "return")
    lines.indent(-1)
    lines.add()


def _header(lines: Lines, doc: str, jit: bool) -> None:
    lines.add(f'"""{doc} Do not edit: regenerated on demand."""')
    lines.add("import math")
    lines.add("import numpy as np")
    lines.add(f"from eventgrad.codegen.jit import {'JIT' if jit else 'PLAIN'} as jit")
    lines.add("from eventgrad.codegen.jit import PARALLEL as parallel_jit")
    lines.add(f"from eventgrad.codegen.jit import {'LEAF' if jit else 'PLAIN'} as leaf")
    lines.add(f"from eventgrad.codegen.jit import {'REDUCE' if jit else 'PLAIN'} as reduce_jit")
    lines.add(f"from eventgrad.codegen.jit import {'FLAT' if jit else 'PLAIN'} as flat_jit")
    lines.add()


def engine_source(jit: bool) -> str:
    """The module of the fast and step-parallel engines: the same for every network."""
    lines = Lines()
    _header(lines, "eventgrad's fast and step-parallel engines, shared by every network.", jit)
    return lines.text() + "".join("\n" + t.read_text() for t in SHARED_TEMPLATES)


def generate_source(groups: list[AdjointSystem | None], sites: list[ConnectionSite], jit: bool) -> str:
    """The module of a network's models: generated functions, dispatchers and the functions that the shared
    engines call back (``mf_<role>``, plain functions compiled on demand as C callbacks)."""
    lines = Lines()
    _header(lines, "Kernels generated by eventgrad for one network.", jit)
    have = {role: [] for role in GROUP_ROLES}
    for g, adj in enumerate(groups):
        if adj is None:
            continue
        _emit_group(lines, g, adj)
        _emit_rows(lines, g, adj)
        for role in GROUP_ROLES:
            if role == "lin" and adj.system.linear_form() is None:
                continue
            if role in ("thr", "thrdot", "reset", "spikeadj", "fixedadj", "scanrow") and adj.spike is None:
                continue
            have[role].append(g)
    for site in sites:
        _emit_connection(lines, site.index, groups[site.post], site.local)
        _emit_connection_rows(lines, site.index, site.post, groups[site.post])
    for role, (args, returns) in GROUP_ROLES.items():
        _emit_dispatcher(lines, role, args, returns, have[role], "")
    for role, (args, returns) in CONNECTION_ROLES.items():
        _emit_dispatcher(lines, role, args, returns, [s.index for s in sites], "c")
    for role in MODEL_ROLES:
        args, returns = {**GROUP_ROLES, **CONNECTION_ROLES}[role]
        lines.add(f"def mf_{role}(k, {args}):")
        lines.add(f"    {'return ' if returns else ''}{role}(k, {args})")
        lines.add()
    return lines.text()


def needs_trajectory_state(adj: AdjointSystem, local_sites: list[int]) -> bool:
    """Whether the backward pass of a population needs its state along the trajectory (not only at its
    spikes): nonlinear dynamics, trainable ODE parameters, or jump terms that read the target's state."""
    s = adj.system
    if s.linear_form() is None or adj.param_integrands:
        return True
    state = set(s.state)
    for k in local_sites:
        ca = adj.connections[k]
        exprs = [ca.target_shift, ca.weight_grad, *ca.lambda_minus, *ca.param_grads.values()]
        if any(state & sympy.sympify(e).free_symbols for e in exprs):
            return True
    return False
