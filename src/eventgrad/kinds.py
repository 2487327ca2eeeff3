"""Which built-in model a neuron or synapse is, read from its equations (for NIR export and the quantiser).

Built-in models are ordinary ``UserNeuron``/``UserSynapse`` definitions, so nothing marks a population as
"LIF": a model is recognised when its variables, ODEs, resets, threshold and parameter names equal those
of the built-in factory called with its own parameter values (sympy equality, so "(Isyn - v) / tau_mem"
is the same LIF as "(-v + Isyn) / tau_mem"). Anything else is ``None``: a model the callers must refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from eventgrad import neurons, synapses
from eventgrad.model import UserNeuron, UserSynapse
from eventgrad.network import Group, Network

NEURON_FACTORIES = {"LIF": neurons.LIF, "LI": neurons.LI, "IF": neurons.IF}
SYNAPSE_FACTORIES = {"Exponential": synapses.Exponential, "Delta": synapses.Delta}


class UnsupportedModel(ValueError):
    """A model or network a converter (NIR, the quantiser) cannot express; the message names the population."""


@dataclass(frozen=True)
class Kind:
    """A recognised built-in: its name and its parameters, each broadcast to one value per neuron."""

    name: str
    params: dict[str, np.ndarray]


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return sympy.simplify(a - b) == 0


def _same_model(model, reference) -> bool:
    if set(model.params) != set(reference.params):
        return False
    if [v.name for v in model.variables] != [v.name for v in reference.variables]:
        return False
    return all(_same(v.ode, r.ode) and _same(v.reset, r.reset) for v, r in zip(model.variables, reference.variables))


def _per_neuron(params: dict, n: int) -> dict[str, np.ndarray]:
    return {k: np.broadcast_to(np.asarray(v, np.float64), (n,)).copy() for k, v in params.items()}


def neuron_kind(neuron: UserNeuron, n: int) -> Kind | None:
    """The built-in neuron (LIF, LI, IF) that ``neuron`` is, at rest (all variables start at 0), or None."""
    for name, factory in NEURON_FACTORIES.items():
        try:
            reference = factory(**neuron.params)
        except TypeError:  # other parameter names: not this model
            continue
        if not _same_model(neuron, reference) or neuron.output_var != reference.output_var:
            continue
        if not _same(neuron.threshold, reference.threshold):
            continue
        if any(np.any(np.asarray(v.initial) != 0.0) for v in neuron.variables):
            continue
        return Kind(name, _per_neuron(neuron.params, n))
    return None


def synapse_kind(synapse: UserSynapse, n: int) -> Kind | None:
    """The built-in synapse (Exponential, Delta) that ``synapse`` is, starting at 0, or None."""
    for name, factory in SYNAPSE_FACTORIES.items():
        try:
            reference = factory(**synapse.params)
        except TypeError:
            continue
        if not _same_model(synapse, reference) or not _same(synapse.inject_current, reference.inject_current):
            continue
        if any(np.any(np.asarray(v.initial) != 0.0) for v in synapse.variables):
            continue
        return Kind(name, _per_neuron(synapse.params, n))
    return None


def describe(model) -> str:
    """The model's equations in one line, for error messages."""
    parts = [f"d{v.name}/dt = {v.ode_text or 0}" + (f", after an event {v.name} -> {v.reset_text}" if v.reset_text
                                                     else "") for v in model.variables]
    if isinstance(model, UserNeuron):
        parts.append(f"threshold {model.threshold_text!r}")
    else:
        parts.append(f"injects {model.inject_current_text!r}")
    return "; ".join(parts)


def network_values(sim_or_network):
    """(network, values): parameter values by key ("xh.weight", "h.tau_mem"), the simulator's if given."""
    if isinstance(sim_or_network, Network):
        net, values = sim_or_network, {}
    elif isinstance(getattr(sim_or_network, "network", None), Network):
        net, values = sim_or_network.network, dict(sim_or_network.params)
    else:
        raise TypeError(f"expected an eventgrad Simulator or Network, got {type(sim_or_network).__name__}")
    for c in net.connections:
        values.setdefault(f"{c.name}.weight", c.weight)
        if c.delayed:
            values.setdefault(f"{c.name}.delay", c.delay)
    return net, values


def model_params(model, prefix: str, values: dict, n: int) -> dict[str, np.ndarray]:
    """The model's parameters, the trained values where ``values`` has them, one value per neuron."""
    out = {}
    for key, default in model.params.items():
        value = np.asarray(values.get(f"{prefix}.{key}", default), np.float64)
        out[key] = np.broadcast_to(value, (n,)).copy()
    return out


def population_synapse(net: Network, g: Group, values: dict) -> tuple[str, dict]:
    """The one synapse kind (and tau) that feeds ``g``: a NIR neuron node, like a CUBA neuron on a chip, has one."""
    found = []
    for c in net.incoming(g):
        kind = synapse_kind(c.synapse, g.size)
        if kind is None:
            raise UnsupportedModel(
                f"connection '{c.name}' into population '{g.name}' uses a synapse that NIR and the quantiser "
                f"cannot express ({describe(c.synapse)}); NIR's neurons take an exponential current (CubaLIF, "
                "CubaLI) or instantaneous input (LIF, LI, IF): use eventgrad.synapses.Exponential or Delta")
        found.append((c, kind.name, model_params(c.synapse, c.name, values, g.size)))
    if not found:
        return "Delta", {}
    kinds = {k for _, k, _ in found}
    if len(kinds) > 1:
        raise UnsupportedModel(
            f"population '{g.name}' is fed by {' and '.join(sorted(kinds))} synapses "
            f"({', '.join(c.name for c, _, _ in found)}); a NIR neuron node (or a chip's CUBA neuron) has one "
            "kind of synaptic input")
    taus = [p["tau"] for _, k, p in found if k == "Exponential"]
    if any(not np.array_equal(t, taus[0]) for t in taus):
        listed = ", ".join(f"{c.name}: tau {p['tau'][0]:g} ms" for c, _, p in found)
        raise UnsupportedModel(
            f"population '{g.name}' is fed by Exponential synapses with different time constants ({listed}); "
            "a NIR CubaLIF / CubaLI node (or a chip's CUBA neuron) has one tau_syn per neuron")
    return found[0][1], ({"tau_syn": taus[0]} if taus else {})
