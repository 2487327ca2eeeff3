"""eventgrad network -> NIR graph: one node per input, population and connection, named as in eventgrad.

Inputs become ``Input`` nodes, populations ``CubaLIF`` / ``CubaLI`` / ``LIF`` / ``LI`` / ``IF`` nodes,
connections ``Linear`` nodes (weights [post, pre]), delays ``Delay`` nodes beside them, and a recurrent
connection the cycle pop -> conn -> pop (NIR allows cycles; snnTorch's importer turns such a cycle into
its recurrent layer). Populations that feed nothing get an ``Output`` node ("_output", or
"_output_<name>" for several; eventgrad names never start with "_", so these never collide).
Parameter conventions: ``eventgrad.nir.conventions``.
"""

from __future__ import annotations

import numpy as np

import eventgrad
from eventgrad.kinds import UnsupportedModel, describe, model_params, network_values, neuron_kind, population_synapse
from eventgrad.network import Connection, Group, Network

from .conventions import NIRConversionError, neuron_to_nir, time_scale, transpose_weight, weight_gain


def _nir():
    try:
        import nir
    except ImportError as err:  # an optional extra
        raise ImportError('NIR export and import need the nir package: pip install "eventgrad[nir]"') from err
    return nir


def _neuron_node(nir, net: Network, g: Group, values: dict, dt: float, time_unit: str):
    kind = neuron_kind(g.neuron, g.size)
    if kind is None:
        raise NIRConversionError(
            f"population '{g.name}' is not a model NIR can express ({describe(g.neuron)}); NIR's neurons are "
            "LIF, LI and IF with v starting at 0 (eventgrad.neurons.LIF / LI / IF)")
    try:
        synapse, syn_params = population_synapse(net, g, values)
    except UnsupportedModel as err:
        raise NIRConversionError(str(err)) from err
    params = model_params(g.neuron, g.name, values, g.size)
    params.update(syn_params)
    try:
        node_type, fields = neuron_to_nir(kind.name, params, synapse, dt, time_unit)
    except NIRConversionError as err:
        raise NIRConversionError(f"population '{g.name}': {err}") from err
    return node_type, getattr(nir, node_type)(**fields), fields


def _delay_nodes(nir, c: Connection, delay: np.ndarray, s: float):
    """(Delay before the Linear (per presynaptic unit), Delay after it (per target)); either may be None."""
    d = np.asarray(delay, np.float64) * s
    if d.ndim == 0:
        return None, nir.Delay(delay=np.full(c.post.size, float(d)))
    if np.all(d == d[:, :1]):  # each presynaptic unit has one delay to all its targets
        return nir.Delay(delay=d[:, 0].copy()), None
    if np.all(d == d[:1, :]):  # each target receives with one delay from all its sources
        return None, nir.Delay(delay=d[0, :].copy())
    raise NIRConversionError(
        f"connection '{c.name}' has a delay per synapse that depends on both the source and the target; NIR's "
        "Delay node delays each element of a signal, so it can express delays per source unit (before the "
        "Linear) or per target neuron (after it), not a general (pre, post) array")


def to_nir(sim_or_network, dt: float | None = None, time_unit: str = "s"):
    """The network (with a simulator's current parameters, if given one) as a ``nir.NIRGraph``.

    ``dt`` (ms): the time step a discrete-time reader simulates the graph at, which NIR's pulse reading of
    spikes needs (default: the simulator's dt, else 1 ms); ``time_unit``: "s" (what snnTorch and Norse
    write, the default) or "ms" (NIR's table). Both are stored in the graph's metadata for ``from_nir``.
    Refused, with an error naming the population or connection: models other than LIF / LI / IF with
    Exponential or Delta synapses, a population fed by two synapse kinds or time constants, and delays per
    synapse that depend on both source and target.
    """
    nir = _nir()
    net, values = network_values(sim_or_network)
    dt = float(dt if dt is not None else getattr(sim_or_network, "dt", 1.0))
    if not dt > 0:
        raise NIRConversionError(f"dt must be a positive time step in ms, got {dt!r}")
    s = time_scale(time_unit)
    nodes, edges, gains = {}, [], {}
    for g in net.groups:
        if g.is_input:
            nodes[g.name] = nir.Input(input_type={"input": np.array([g.size])})
        else:
            node_type, nodes[g.name], fields = _neuron_node(nir, net, g, values, dt, time_unit)
            gains[g.name] = weight_gain(node_type, fields, dt, time_unit)
    for c in net.connections:
        # NIR stores weights [out, in] = [post, pre]; eventgrad stores [pre, post]
        weight = transpose_weight(values[f"{c.name}.weight"]) / gains[c.post.name][:, None]
        nodes[c.name] = nir.Linear(weight=weight)
        before, after = _delay_nodes(nir, c, values[f"{c.name}.delay"], s) if c.delayed else (None, None)
        path = [c.pre.name]
        for node, where in ((before, "pre"), (nodes[c.name], None), (after, "post")):
            if node is None:
                continue
            name = c.name if where is None else f"_{c.name}_delay_{where}"
            nodes[name] = node
            path.append(name)
        path.append(c.post.name)
        edges += list(zip(path[:-1], path[1:]))
    sinks = [g for g in net.groups if not g.is_input and not any(c.pre is g for c in net.connections)]
    for g in sinks:
        name = "_output" if len(sinks) == 1 else f"_output_{g.name}"
        nodes[name] = nir.Output(output_type={"output": np.array([g.size])})
        edges.append((g.name, name))
    metadata = {"generator": f"eventgrad {eventgrad.__version__}", "time_unit": time_unit, "dt": dt * s}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write(path, sim_or_network, dt: float | None = None, time_unit: str = "s"):
    """``to_nir`` written to ``path`` (HDF5, with ``nir.write``); returns the graph."""
    graph = to_nir(sim_or_network, dt=dt, time_unit=time_unit)
    _nir().write(path, graph)
    return graph
