"""What every simulator checks before it runs: the grid, the dtype, and the input spike batches.

The checks every simulator applies to its input (one SpikeBatch for a single input, else a dict keyed by
input name; equal sample counts; units and times inside the inputs and the trial), shared by the
EventProp simulator and ``eventgrad.bptt``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from eventgrad.data.spikes import SpikeBatch, SpikeDataError
from eventgrad.network import Network, NetworkError

MAX_STEPS = 10**7  # steps per trial (duration / dt); more is a dt typed in the wrong unit, not a real need


def check_grid(net: Network, dt: float, duration: float, dtype, who: str) -> tuple[int, np.dtype]:
    """(number of steps, dtype) after checking the network, the grid and the floating-point type."""
    if not isinstance(net, Network):
        raise NetworkError(f"{who} needs a Network, got {type(net).__name__}")
    for name, value in (("dt", dt), ("duration", duration)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be a number (ms), got {value!r} ({type(value).__name__})")
    if not (np.isfinite(dt) and dt > 0 and np.isfinite(duration) and duration > 0):
        raise ValueError(f"dt and duration must be positive and finite, got dt={dt}, duration={duration}")
    if duration / dt > MAX_STEPS:
        raise ValueError(f"duration/dt = {duration / dt:.3g} steps is more than {MAX_STEPS:.0e}: the readout and the "
                         f"kernels' work arrays hold a value per step (dt={dt:g}, duration={duration:g}); dt is the "
                         "readout grid, and spike times are exact whatever it is, so choose a larger dt")
    n_steps = int(round(duration / dt))
    if abs(n_steps * dt - duration) > 1e-9 * duration:
        raise ValueError(f"duration {duration} is not a whole number of steps dt={dt}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if not any(not g.is_input for g in net.groups):
        raise NetworkError("the network has no population to simulate")
    return n_steps, dtype


def merge_inputs(network: Network, batch, duration: float, dtype) -> MergedInputs:
    """Per sample, (times as ``dtype``, units, input group index, values as ``dtype``) of all inputs, sorted
    by time (stable); values are 1 for inputs whose batch carries none. The batch is checked here, whole;
    each sample's arrays are made when it is read (``MergedInputs``)."""
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
    return MergedInputs(inputs, batch, sizes.pop(), np.dtype(dtype))


class MergedInputs(Sequence):
    """A checked batch's samples as the kernels read them, each merged when it is read and not kept: a
    batch of long trials holds its spikes once (in the batch), not twice (the merged copies of every
    sample at once), and a sample read again (the backward pass) is merged again, which costs little
    beside simulating it."""

    def __init__(self, inputs, batch: dict, n: int, dtype: np.dtype):
        self._inputs, self._batch, self._n, self._dtype = inputs, batch, n, dtype

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, b):
        if not -self._n <= b < self._n:
            raise IndexError(f"sample {b} of a batch of {self._n}")
        b %= self._n
        batch, inputs, dtype = self._batch, self._inputs, self._dtype

        def values(g):
            sb = batch[g.name]
            return sb.values[b] if sb.graded else np.ones(len(sb.times[b]))

        g = inputs[0]
        t = batch[g.name].times[b]
        if len(inputs) == 1 and not np.any(t[1:] < t[:-1]):  # one input, already in time order: nothing to merge
            return (t.astype(dtype), np.asarray(batch[g.name].units[b], np.int64),
                    np.full(len(t), g.index, np.int64), np.asarray(values(g), dtype))
        t = np.concatenate([batch[g.name].times[b] for g in inputs])
        u = np.concatenate([batch[g.name].units[b] for g in inputs])
        gi = np.concatenate([np.full(len(batch[g.name].times[b]), g.index, np.int64) for g in inputs])
        v = np.concatenate([values(g) for g in inputs])
        order = np.argsort(t, kind="stable")
        return t[order].astype(dtype), u[order], gi[order], v[order].astype(dtype)
