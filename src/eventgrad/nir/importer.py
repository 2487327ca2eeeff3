"""NIR graph -> eventgrad ``Network``: the inverse of ``export``, and the patterns snnTorch and Norse write.

Nested graphs (snnTorch's recurrent layers: {input, lif, w_rec, output} with the cycle lif <-> w_rec) are
flattened first; a subgraph with one neuron node names its population after the subgraph. Node names
become eventgrad names, made into identifiers ("lif1.w_rec" -> "lif1_w_rec", "0" -> "n0"); a round trip
of an eventgrad graph keeps them ("h" stays "h"). Parameter conventions: ``eventgrad.nir.conventions``.
"""

from __future__ import annotations

import os
import re

import numpy as np

from eventgrad import neurons, synapses
from eventgrad.network import Network

from .conventions import NIRConversionError, neuron_from_nir, time_scale, transpose_weight, weight_gain
from .export import _nir

NEURON_TYPES = ("CubaLIF", "CubaLI", "LIF", "LI", "IF")
SUPPORTED = ("Input", "Output", "Linear", "Affine", "Delay", "Identity", "NIRGraph") + NEURON_TYPES


def _identifier(name: str) -> str:
    out = re.sub(r"\W", "_", str(name)).lstrip("_")
    return out if out and not out[0].isdigit() else f"n{out}"


def _flatten(nir, graph, prefix: str = ""):
    """(nodes, edges) with every nested NIRGraph replaced by its inner nodes; inner Input/Output nodes vanish."""
    nodes, edges, entry, exit_ = {}, [], {}, {}
    for name, node in graph.nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = _flatten(nir, node, f"{full}.")
            ins = {k for k, v in node.nodes.items() if isinstance(v, nir.Input)}
            outs = {k for k, v in node.nodes.items() if isinstance(v, nir.Output)}
            entry[full] = [f"{full}.{b}" for a, b in node.edges if a in ins]
            exit_[full] = [f"{full}.{a}" for a, b in node.edges if b in outs]
            skip = {f"{full}.{k}" for k in ins | outs}
            neurons_inside = [k for k, v in inner_nodes.items() if type(v).__name__ in NEURON_TYPES]
            rename = {neurons_inside[0]: full} if len(neurons_inside) == 1 else {}
            nodes.update({rename.get(k, k): v for k, v in inner_nodes.items() if k not in skip})
            edges += [(rename.get(a, a), rename.get(b, b)) for a, b in inner_edges if a not in skip and b not in skip]
            entry[full] = [rename.get(k, k) for k in entry[full]]
            exit_[full] = [rename.get(k, k) for k in exit_[full]]
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = f"{prefix}{a}", f"{prefix}{b}"
        edges += [(x, y) for x in exit_.get(a, [a]) for y in entry.get(b, [b])]
    return nodes, edges


def _metadata_value(metadata: dict, key: str):
    value = (metadata or {}).get(key)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    return value.decode() if isinstance(value, bytes) else value


def _scalar_or_array(value: np.ndarray):
    value = np.asarray(value, np.float64).ravel()
    return float(value[0]) if np.all(value == value[0]) else value


def _size(name: str, node) -> int:
    shapes = list((node.output_type or {}).values()) or list((node.input_type or {}).values())
    if len(shapes) != 1 or np.asarray(shapes[0]).size == 0:
        raise NIRConversionError(f"node '{name}': cannot read its size from its type {shapes}")
    return int(np.prod(np.asarray(shapes[0])))


def _population(name: str, node, dt_ms: float, time_unit: str):
    """(neuron model, size, synapse factory, weight gain per neuron) for a NIR neuron node."""
    node_type = type(node).__name__
    fields = {k: np.asarray(v, np.float64).ravel() for k, v in vars(node).items()
              if isinstance(v, (np.ndarray, float, int)) and k not in ("input_type", "output_type")}
    if "v_leak" in fields and np.any(fields["v_leak"] != 0):
        raise NIRConversionError(f"node '{name}' ({node_type}) has v_leak != 0 (mean {fields['v_leak'].mean():g}); "
                                 "eventgrad's LIF, LI and IF rest at 0")
    if node_type == "IF" and fields.get("r") is None:
        raise NIRConversionError(f"node '{name}' (IF) has no r")
    kind, params, synapse, syn_params = neuron_from_nir(node_type, fields, time_unit)
    factory = {"LIF": neurons.LIF, "LI": neurons.LI, "IF": neurons.IF}[kind]
    neuron = factory(**{k: _scalar_or_array(v) for k, v in params.items()})
    syn_factory = synapses.Exponential if synapse == "Exponential" else synapses.Delta
    syn_kwargs = {k: _scalar_or_array(v) for k, v in syn_params.items()}
    return neuron, fields["r"].size, (lambda: syn_factory(**syn_kwargs)), weight_gain(node_type, fields, dt_ms,
                                                                                        time_unit)


def _path_to_target(name, succ, nodes, nir):
    """From a Linear node forwards: (optional post Delay node, target neuron name)."""
    targets = succ.get(name, [])
    delay = None
    if len(targets) == 1 and isinstance(nodes[targets[0]], nir.Delay):
        delay, targets = nodes[targets[0]], succ.get(targets[0], [])
    return delay, targets


def from_nir(graph_or_path, dt: float | None = None, time_unit: str | None = None) -> Network:
    """A ``Network`` with the weights and parameters of a NIR graph (or of the NIR file at a path).

    ``dt`` (ms) and ``time_unit`` ("s" or "ms") say how to read the graph (see ``conventions``); a graph
    written by eventgrad carries both in its metadata. Node types other than Input, Output, Linear,
    Affine (with zero bias), Delay, Identity, nested graphs and the neurons CubaLIF, CubaLI, LIF, LI, IF
    are refused by name, as are v_leak != 0 and weights that do not lead from a source to a neuron.
    """
    nir = _nir()
    graph = nir.read(os.fspath(graph_or_path)) if isinstance(graph_or_path, (str, os.PathLike)) else graph_or_path
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"from_nir needs a nir.NIRGraph or a path to a NIR file, got {type(graph).__name__}")
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    time_unit = time_unit or _metadata_value(meta, "time_unit") or "s"
    s = time_scale(time_unit)
    if dt is None:
        dt_nir = _metadata_value(meta, "dt")
        if dt_nir is None:
            raise NIRConversionError(
                "this graph does not say which time step it was written for (no 'dt' in its metadata); pass "
                "from_nir(..., dt=MS): snnTorch writes graphs for dt = 1e-4 s (dt=0.1), Norse for 1e-3 s (dt=1.0)")
        dt = float(dt_nir) / s
    nodes, edges = _flatten(nir, graph)
    for name, node in nodes.items():
        if type(node).__name__ not in SUPPORTED:
            raise NIRConversionError(f"node '{name}' is a {type(node).__name__}, which eventgrad cannot import "
                                     f"(supported: {', '.join(SUPPORTED)})")
    succ, pred = {}, {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    # Identity nodes pass their input on unchanged: bridge them
    for name in [n for n, v in nodes.items() if type(v).__name__ == "Identity"]:
        for a in pred.get(name, []):
            succ[a] = [b for b in succ[a] if b != name] + succ.get(name, [])
        for b in succ.get(name, []):
            pred[b] = [a for a in pred[b] if a != name] + pred.get(name, [])
    return _build(nir, nodes, succ, pred, dt, time_unit, s)


def _build(nir, nodes, succ, pred, dt, time_unit, s) -> Network:
    names = {k: _identifier(k) for k in nodes}
    if len(set(names.values())) != len(names):
        raise NIRConversionError(f"node names collide once made into Python identifiers: {sorted(names)}")
    sources = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    pops = {k: _population(k, v, dt, time_unit) for k, v in nodes.items() if type(v).__name__ in NEURON_TYPES}
    links = _links(nir, nodes, succ, pred, sources, pops)
    order = list(sources)  # breadth-first from the inputs: the order an eventgrad user would write
    while len(order) < len(sources) + len(pops):
        nxt = [post for pre, _, _, _, post in links if pre in order and post not in order]
        nxt = nxt or [k for k in pops if k not in order]
        order.append(nxt[0])
    net, groups = Network(), {}
    for k in order:
        if k in pops:
            neuron, size, _, _ = pops[k]
            groups[k] = net.add_population(names[k], size, neuron)
        else:
            groups[k] = net.add_input(names[k], _size(k, nodes[k]))
    links.sort(key=lambda link: (order.index(link[4]), order.index(link[0])))
    for pre, conn, d_pre, d_post, post in links:
        n_pre, n_post = groups[pre].size, groups[post].size
        if conn is None:
            w_nir = np.eye(n_post, n_pre)
            if n_pre != n_post:
                raise NIRConversionError(f"edge '{pre}' -> '{post}' has no weights and joins {n_pre} to {n_post} units")
        else:
            w_nir = np.asarray(nodes[conn].weight, np.float64)
            if w_nir.shape != (n_post, n_pre):
                raise NIRConversionError(f"node '{conn}': weight has shape {w_nir.shape}, expected [out, in] = "
                                         f"({n_post}, {n_pre}) for '{pre}' -> '{post}'")
        weight = transpose_weight(w_nir) * pops[post][3][None, :]  # [post, pre] -> [pre, post], NIR -> eventgrad
        delay = None
        if d_pre is not None or d_post is not None:
            delay = np.zeros((n_pre, n_post))
            delay += 0.0 if d_pre is None else np.asarray(d_pre.delay, np.float64).reshape(-1, 1) / s
            delay += 0.0 if d_post is None else np.asarray(d_post.delay, np.float64).reshape(1, -1) / s
            delay = float(delay.flat[0]) if np.all(delay == delay.flat[0]) else delay
        name = names[conn] if conn is not None else f"{names[pre]}_{names[post]}"
        net.connect(groups[pre], groups[post], pops[post][2](), weight=weight, name=name, delay=delay)
    return net


def _links(nir, nodes, succ, pred, sources, pops):
    """Every (source, Linear node or None, pre Delay, post Delay, target neuron) chain of the graph."""
    links = []
    for name, node in nodes.items():
        if isinstance(node, (nir.Linear, nir.Affine)):
            if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
                raise NIRConversionError(f"node '{name}' (Affine) has a nonzero bias; eventgrad's synapses carry "
                                         "spikes only (a constant input current is not supported)")
            ins = pred.get(name, [])
            d_pre = None
            if len(ins) == 1 and isinstance(nodes[ins[0]], nir.Delay):
                d_pre, ins = nodes[ins[0]], pred.get(ins[0], [])
            d_post, outs = _path_to_target(name, succ, nodes, nir)
            if len(ins) != 1 or (ins[0] not in pops and ins[0] not in sources):
                raise NIRConversionError(f"node '{name}' ({type(node).__name__}) must be fed by exactly one input "
                                         f"or neuron node, possibly through a Delay; it is fed by {ins}")
            if len(outs) != 1 or outs[0] not in pops:
                raise NIRConversionError(f"node '{name}' ({type(node).__name__}) must feed exactly one neuron node, "
                                         f"possibly through a Delay; it feeds {outs}")
            links.append((ins[0], name, d_pre, d_post, outs[0]))
        elif name in pops or name in sources:
            for b in succ.get(name, []):
                if b in pops:  # a direct edge: one-to-one
                    links.append((name, None, None, None, b))
                elif isinstance(nodes[b], nir.Delay) and len(succ.get(b, [])) == 1 and succ[b][0] in pops:
                    links.append((name, None, nodes[b], None, succ[b][0]))
    return links
