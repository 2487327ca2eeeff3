"""Gradients with respect to the values of graded input events: what a front end that computes them (a torch
layer, an encoder with parameters) needs from the spiking network.

Input unit i of sample b sends one event at a fixed time t_i carrying a value v_bi, which multiplies the
weights of its jumps (``SpikeBatch(values=...)``): each of its connections c to the network adds the jump of
the effective weight W^c_im v_bi to target m. The loss depends on v and W^c only through these products, so
with G^c_bim = dL/d(effective weight) of sample b,

    dL/dv_bi  = sum_c sum_m W^c_im G^c_bim          (the value's gradient)
    dL/dW^c_im = sum_b v_bi G^c_bim                 (the weight's, as the engine gives it)

G is the engine's own weight gradient of a run of sample b alone in which every event carries the value 1 and
the weights are the effective ones, W^c_im v_bi: the same jumps, so the same forward pass and adjoint. One run
per sample, then; every other gradient (later weights, delays, neuron parameters) is the sum of the samples'.
It needs at most one event per input unit and sample: two events of one unit with different values have
different effective weights, which one weight matrix per run cannot hold.
"""

from __future__ import annotations

import numpy as np

from eventgrad.data.spikes import SpikeBatch, SpikeDataError


def event_times(sim, times) -> np.ndarray:
    """The input population's event times (one per unit) as an array, checked against the simulation."""
    n_in = input_group(sim).size
    t = np.broadcast_to(np.asarray(times, dtype=np.float64), (n_in,)).copy() if np.ndim(times) == 0 else \
        np.asarray(times, dtype=np.float64)
    if t.shape != (n_in,):
        raise SpikeDataError(f"input_times must be one time or one per input unit ({n_in}), got shape {t.shape}")
    if not np.all(np.isfinite(t)) or t.min() < 0 or t.max() > sim.duration:
        raise SpikeDataError(f"input_times must lie in [0, {sim.duration}] ms (the trial), got {t.min()}..{t.max()}")
    return t


def input_group(sim):
    inputs = [g for g in sim.network.groups if g.is_input]
    if len(inputs) != 1:
        raise SpikeDataError(f"graded input values feed one input population; the network has {len(inputs)}")
    return inputs[0]


def check_values(sim, values: np.ndarray) -> np.ndarray:
    n_in = input_group(sim).size
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != n_in or values.shape[0] == 0:
        raise SpikeDataError(f"graded input values must have shape (batch, {n_in}) (one value per input unit of "
                             f"'{input_group(sim).name}'), got {values.shape}")
    if not np.all(np.isfinite(values)):
        b, i = np.argwhere(~np.isfinite(values))[0]
        raise SpikeDataError(f"graded input value [{b}, {i}] is {values[b, i]}, not a finite number")
    return values


class GradedRun:
    """What the forward pass leaves for the backward pass: each sample's result, the values, and the input
    connections' weights as they were."""

    def __init__(self, results: list, values: np.ndarray, weights: dict):
        self.results, self.values, self.weights = results, values, weights

    @property
    def readout(self) -> np.ndarray:
        return np.concatenate([r.readout for r in self.results])


def forward(sim, times: np.ndarray, values: np.ndarray) -> GradedRun:
    """Each sample's events (times, units, value 1) run at the effective weights."""
    values = check_values(sim, values)
    order = np.argsort(times, kind="stable")
    one = SpikeBatch([times[order]], [order.astype(np.int64)])
    results = []
    for v in values:
        with effective_weights(sim, v) as scaled:
            results.append(sim.run(one))
    weights = {key: np.array(w, dtype=np.float64) for key, w in scaled.saved.items()}
    return GradedRun(results, values, weights)


def backward(sim, run: GradedRun, cotangent: np.ndarray) -> tuple[dict, np.ndarray]:
    """(gradients like ``sim.backward``'s, dL/dvalues (batch, units)) for dL/dreadout = ``cotangent``."""
    cotangent = np.asarray(cotangent, dtype=np.float64)
    grads, dvalues = {}, np.zeros_like(run.values)
    for b, res in enumerate(run.results):
        g = sim.backward(res, cotangent[b:b + 1])
        for key, W in run.weights.items():
            G = np.asarray(g[key], dtype=np.float64)  # dL/d(effective weight) of this sample
            dvalues[b] += (W * G).sum(axis=1)
            g[key] = run.values[b][:, None] * G
        for key, value in g.items():
            grads[key] = grads[key] + value if key in grads else np.array(value, dtype=np.float64)
    return grads, dvalues


class effective_weights:
    """``with effective_weights(sim, v)``: the input connections' weights scaled row by row by ``v`` (one value
    per input unit), restored afterwards."""

    def __init__(self, sim, v):
        self.sim, self.v = sim, np.asarray(v, dtype=np.float64)
        self.keys = [f"{c.name}.weight" for c in sim.network.connections if c.pre.name == input_group(sim).name]

    def __enter__(self):
        self.saved = {key: self.sim.params[key] for key in self.keys}
        for key in self.keys:
            w = self.saved[key]
            self.sim.params[key] = (w * self.v[:, None].astype(w.dtype)).astype(w.dtype)
        return self

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            self.sim.params[key] = value
