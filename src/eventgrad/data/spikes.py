"""A batch of input spike trains: per sample, spike times (ms, real numbers) and unit indices."""

from __future__ import annotations

import numpy as np


class SpikeDataError(ValueError):
    """Spike data that cannot be simulated as given."""


class SpikeBatch:
    """``times[b]`` and ``units[b]`` hold the spikes of sample b, sorted by time (not rounded to a grid).

    ``values[b]`` (optional) gives each spike a value that multiplies the weight of every jump it causes:
    graded events, e.g. one event per input unit at t = 0 carrying an analog value into a synapse that
    holds its current (``eventgrad.data.encoders.direct_current``). Without values every spike counts 1."""

    def __init__(self, times, units, values=None):
        if len(times) != len(units):
            raise SpikeDataError(f"times has {len(times)} samples but units has {len(units)}")
        if values is not None and len(values) != len(times):
            raise SpikeDataError(f"times has {len(times)} samples but values has {len(values)}")
        self.times: list[np.ndarray] = []
        self.units: list[np.ndarray] = []
        self.values: list[np.ndarray] | None = None if values is None else []
        for b, (t, u) in enumerate(zip(times, units)):
            t = np.asarray(t, dtype=np.float64)
            u = np.asarray(u)
            if t.ndim != 1 or u.ndim != 1 or t.shape != u.shape:
                raise SpikeDataError(
                    f"sample {b}: times and units must be 1-D arrays of equal length, got {t.shape} and {u.shape}"
                )
            if u.size and not np.issubdtype(u.dtype, np.integer):
                raise SpikeDataError(f"sample {b}: units must be integers, got dtype {u.dtype}")
            bad = np.flatnonzero(~np.isfinite(t))
            if bad.size:
                raise SpikeDataError(f"sample {b}: spike {bad[0]} has time {t[bad[0]]}, not a finite number")
            back = np.flatnonzero(np.diff(t) < 0)
            if back.size:
                i = back[0]
                raise SpikeDataError(
                    f"sample {b}: spike times are not sorted (spike {i + 1} at {t[i + 1]} comes after {t[i]}); "
                    "sort them with order = np.argsort(times, kind='stable')"
                )
            self.times.append(t)
            self.units.append(u.astype(np.int64))
            if values is not None:
                self.values.append(_check_values(values[b], t.shape, b))

    @classmethod
    def _from_checked(cls, times: list, units: list, values: list | None = None) -> SpikeBatch:
        """A batch of arrays that passed these checks already (float64 times, int64 units, float64 values, as a
        SpikeDataset stores them): batching a checked data set every step need not check it again."""
        self = cls.__new__(cls)
        self.times, self.units, self.values = list(times), list(units), None if values is None else list(values)
        return self

    @property
    def graded(self) -> bool:
        """Whether the spikes carry values (see the class docstring)."""
        return self.values is not None

    def __len__(self) -> int:
        return len(self.times)

    def check(self, n_units: int, duration: float, name: str) -> None:
        """Refuse units outside the input and times outside [0, duration]."""
        for b, (t, u) in enumerate(zip(self.times, self.units)):
            if u.size and (u.min() < 0 or u.max() >= n_units):
                k = int(np.flatnonzero((u < 0) | (u >= n_units))[0])
                raise SpikeDataError(f"sample {b}: spike {k} has unit {u[k]}, but input '{name}' has {n_units} units")
            if t.size and (t[0] < 0 or t[-1] > duration):
                k = int(np.flatnonzero((t < 0) | (t > duration))[0])
                raise SpikeDataError(
                    f"sample {b}: spike {k} at time {t[k]} lies outside the trial [0, {duration}] ms of input '{name}'"
                )


def _check_values(v, shape: tuple, b: int) -> np.ndarray:
    """One sample's spike values: real, finite, one per spike."""
    v = np.asarray(v)
    if v.shape != shape:
        raise SpikeDataError(f"sample {b}: values must have one entry per spike, shape {shape}, got {v.shape}")
    if v.size and not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
        raise SpikeDataError(f"sample {b}: values must be real numbers, got dtype {v.dtype}")
    v = v.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        raise SpikeDataError(f"sample {b}: spike {bad[0]} has value {v[bad[0]]}, not a finite number")
    return v
