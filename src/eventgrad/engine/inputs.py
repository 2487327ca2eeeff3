"""Input spike batches checked against a network and merged per sample, for any simulator.

The checks every simulator applies to its input (one SpikeBatch for a single input, else a dict keyed by
input name; equal sample counts; units and times inside the inputs and the trial), shared by the
EventProp simulator and ``eventgrad.bptt``.
"""

from __future__ import annotations

import numpy as np

from eventgrad.data.spikes import SpikeBatch, SpikeDataError
from eventgrad.network import Network


def merge_inputs(network: Network, batch, duration: float, dtype) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per sample, (times as ``dtype``, units, input group index) of all inputs, sorted by time (stable)."""
    inputs = [g for g in network.groups if g.is_input]
    if isinstance(batch, SpikeBatch):
        if len(inputs) != 1:
            names = [g.name for g in inputs]
            raise SpikeDataError(f"the network has inputs {names}; pass a dict name -> SpikeBatch")
        batch = {inputs[0].name: batch}
    if not isinstance(batch, dict) or set(batch) != {g.name for g in inputs}:
        raise SpikeDataError(f"expected spike batches for inputs {[g.name for g in inputs]}")
    sizes = {len(b) for b in batch.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise SpikeDataError(f"every input needs the same, non-zero number of samples, got {sorted(sizes)}")
    for g in inputs:
        batch[g.name].check(g.size, duration, g.name)
    merged = []
    for b in range(sizes.pop()):
        t = np.concatenate([batch[g.name].times[b] for g in inputs])
        u = np.concatenate([batch[g.name].units[b] for g in inputs])
        gi = np.concatenate([np.full(len(batch[g.name].times[b]), g.index, np.int64) for g in inputs])
        order = np.argsort(t, kind="stable")
        merged.append((t[order].astype(dtype), u[order], gi[order]))
    return merged
