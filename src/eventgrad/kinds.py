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

NEURON_FACTORIES = {"LIF": neurons.LIF, "LI": neurons.LI, "IF": neurons.IF}
SYNAPSE_FACTORIES = {"Exponential": synapses.Exponential, "Delta": synapses.Delta}


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
