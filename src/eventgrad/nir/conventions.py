"""Every convention that links eventgrad's models to NIR's nodes, written down once (pure numpy, no ``nir``).

Sources (read 2026-12):
  [P] NIR's primitives table, docs/source/primitives.md of github.com/neuromorphs/NIR, and the docstrings
      of nir/ir/neuron.py (nir 1.0.8): LI   tau dv/dt = (v_leak - v) + R I
                                           LIF  the same, spike when v > v_threshold, then v -> v_reset
                                           CubaLI(F)  tau_syn dI/dt = -I + w_in S;  tau_mem dv/dt = (v_leak - v) + R I
                                           IF   dv/dt = R I, spike and reset as LIF;  Delay  y(t) = x(t - tau)
      Affine / Linear: y = W x (+ b) with W of shape [out, in] (torch's layout; eventgrad stores [pre, post]).
  [S] snnTorch 1.0.0 snntorch/export_nir.py and import_nir.py: Leaky -> LIF(tau = dt / (1 - beta),
      r = tau / dt), Synaptic -> CubaLIF(..., r = tau_mem / dt, w_in = tau_syn / dt), dt = 1e-4 hard-coded;
      RLeaky / RSynaptic -> a nested NIRGraph {input, lif, w_rec, output} with the cycle lif -> w_rec -> lif;
      the importer asserts r == tau / dt and v_leak == 0.
  [N] Norse norse/torch/utils/export_nir.py and import_nir.py: LIFCell -> CubaLIF(tau = 1 / tau_inv, r = 1,
      w_in = 1), LIFBoxCell -> LIF, LIBoxCell -> LI, IAFCell -> IF; the importer simulates with dt = 1e-3
      and forward Euler, reading CubaLIF as w_in, then an LI synapse (tau_syn), then r, then an LIF.
  [I] NIR's issues: snnTorch #334 / #435 and Norse #411 show the writers disagree about dt and the spike's size.

What NIR leaves open, and what eventgrad assumes (the reading both [S] and [N] simulate):
  - Time: NIR's table [P] says ms, but snnTorch and Norse write seconds (their taus are dt / (1 - beta) with
    dt = 1e-4, and 1 / tau_inv with tau_inv = 100 for 10 ms). eventgrad writes seconds by default
    (``time_unit="s"``; "ms" on request) and records the unit and dt in the graph's metadata.
  - A spike is a pulse of height 1 lasting one time step dt (integral dt), not a Dirac delta of area 1:
    then Synaptic's update syn <- alpha syn + W x is exactly CubaLIF with w_in = tau_syn / dt [S], and the
    graph is read at a step dt that it does not carry. So r and w_in depend on dt; ``to_nir(dt=...)`` and
    ``from_nir(dt=...)`` take it (default: the simulator's dt / the graph's metadata / 1 ms).
  - A connection without delay between populations (a cycle) acts in a discrete-time reader one step late;
    eventgrad's continuous model delivers it at once. Spikes agree to the grid's resolution, not exactly.

eventgrad's models (time in ms): LIF/LI  dv/dt = (-v + Isyn) / tau_mem;  IF  dv/dt = Isyn;
Exponential synapse  di/dt = -i / tau, i -> i + w per spike, injects i;  Delta synapse  injects w delta(t).
The gain of a NIR weight, in eventgrad's jump per spike, per target neuron (pulse reading, dt and taus in
the NIR unit, tau_ms in ms):
  CubaLIF / CubaLI:  i jumps by r I's jump = W * w_in * r * dt / tau_syn        (eventgrad's i is r I)
  LIF / LI:          v jumps by W * r * dt / tau = w / tau_ms,  so  w = W * r * dt / tau * tau_ms
  IF:                v jumps by W * r * dt = w
eventgrad writes the forms snnTorch's importer accepts (r = tau / dt): CubaLIF with w_in = tau_syn / tau_mem
(gain 1: NIR weights are eventgrad's weights), LIF / LI with W = w / tau_ms (gain tau_ms), IF with
r = 1 / dt (gain 1).
"""

from __future__ import annotations

import numpy as np

from eventgrad.kinds import UnsupportedModel

TIME_UNITS = {"s": 1e-3, "ms": 1.0}  # NIR time per eventgrad millisecond


class NIRConversionError(UnsupportedModel):
    """A network or graph that cannot be converted; the message names the population, node or connection."""


def time_scale(time_unit: str) -> float:
    """NIR time units per ms."""
    if time_unit not in TIME_UNITS:
        raise NIRConversionError(f"time_unit must be one of {sorted(TIME_UNITS)}, got {time_unit!r}")
    return TIME_UNITS[time_unit]


def transpose_weight(weight: np.ndarray) -> np.ndarray:
    """eventgrad's [pre, post] weights <-> NIR's [out, in] (= [post, pre]); the same operation both ways."""
    return np.ascontiguousarray(np.asarray(weight, np.float64).T)


# ------------------------------------------------------------------------------------------- export
def neuron_to_nir(kind: str, params: dict, synapse: str, dt_ms: float, time_unit: str) -> tuple[str, dict]:
    """(NIR node type, its parameters) for a built-in population fed by ``synapse`` ("Exponential"/"Delta").

    ``params`` holds the eventgrad parameters per neuron (ms); for Exponential, ``params["tau_syn"]`` too.
    """
    s = time_scale(time_unit)
    dt = dt_ms * s
    if kind in ("LIF", "LI"):
        tau = params["tau_mem"] * s
        node = {"r": tau / dt, "v_leak": np.zeros_like(tau)}
        if synapse == "Exponential":
            node.update(tau_mem=tau, tau_syn=params["tau_syn"] * s, w_in=params["tau_syn"] / params["tau_mem"])
        else:
            node.update(tau=tau)
        if kind == "LIF":
            node.update(v_threshold=params["v_thresh"].copy(), v_reset=params["v_reset"].copy())
        return ("Cuba" + kind if synapse == "Exponential" else kind), node
    if kind == "IF" and synapse == "Delta":
        return "IF", {"r": np.full_like(params["v_thresh"], 1.0 / dt), "v_threshold": params["v_thresh"].copy(),
                      "v_reset": params["v_reset"].copy()}
    raise NIRConversionError(f"NIR has no node for an {kind} neuron fed by a {synapse} synapse")


def weight_gain(node_type: str, node: dict, dt_ms: float, time_unit: str) -> np.ndarray:
    """Per target neuron: eventgrad's weight = NIR weight * gain (the table in the module docstring)."""
    dt = dt_ms * time_scale(time_unit)
    if node_type in ("CubaLIF", "CubaLI"):
        return node["w_in"] * node["r"] * dt / node["tau_syn"]
    if node_type in ("LIF", "LI"):
        return node["r"] * dt / node["tau"] * (node["tau"] / time_scale(time_unit))
    if node_type == "IF":
        return node["r"] * dt
    raise NIRConversionError(f"no weight convention for NIR node type {node_type}")


# ------------------------------------------------------------------------------------------- import
def neuron_from_nir(node_type: str, node: dict, time_unit: str) -> tuple[str, dict, str, dict]:
    """(eventgrad neuron kind, its parameters in ms, synapse kind, synapse parameters) for a NIR neuron node.

    A nonzero v_leak is refused by the caller: eventgrad's built-in models rest at 0.
    """
    s = time_scale(time_unit)
    if node_type in ("CubaLIF", "CubaLI"):
        neuron = {"tau_mem": node["tau_mem"] / s}
        synapse = ("Exponential", {"tau": node["tau_syn"] / s})
    elif node_type in ("LIF", "LI"):
        neuron = {"tau_mem": node["tau"] / s}
        synapse = ("Delta", {})
    elif node_type == "IF":
        neuron, synapse = {}, ("Delta", {})
    else:
        raise NIRConversionError(f"no neuron convention for NIR node type {node_type}")
    if node_type in ("CubaLIF", "LIF", "IF"):
        neuron.update(v_thresh=node["v_threshold"], v_reset=node["v_reset"])
    kind = {"CubaLIF": "LIF", "CubaLI": "LI"}.get(node_type, node_type)
    return kind, neuron, synapse[0], synapse[1]
