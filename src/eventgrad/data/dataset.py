"""SpikeDataset: a whole spike data set in three flat arrays, cut into batches without a loop over spikes.

Samples are stored CSR-style: the spikes of sample i are ``times[offsets[i]:offsets[i + 1]]`` (ms, float64)
and ``units[offsets[i]:offsets[i + 1]]`` (int64), sorted by time, with ``values`` alongside for graded
events (None otherwise). A batch gathers the spikes of its samples
with one fancy-indexing call per array, so its cost grows with the number of spikes it holds, not with the
size of the data set, and no per-sample Python object is kept for data that is not in use.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from eventgrad.data.spikes import SpikeBatch, SpikeDataError


def _check_size(name: str, value) -> int:
    """A count (units, classes, batch size, samples to read): a positive integer, and not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise SpikeDataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _class_labels(labels: np.ndarray, n_classes: int | None) -> tuple[np.ndarray, int]:
    """Integer class labels in [0, n_classes); whole-valued floats are accepted when n_classes is given."""
    if labels.ndim != 1:
        raise SpikeDataError(f"class labels must be one per sample (1-D), got shape {labels.shape}")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        if not np.issubdtype(labels.dtype, np.floating):
            raise SpikeDataError(f"class labels must be integers, got dtype {labels.dtype}")
        bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
        if bad.size:
            raise SpikeDataError(f"sample {bad[0]} has label {labels[bad[0]]}, which is not an integer class")
    labels = labels.astype(np.int64)
    if n_classes is None:
        n_classes = int(labels.max()) + 1 if labels.size else 0
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        raise SpikeDataError(
            f"sample {bad[0]} has label {labels[bad[0]]}, outside the {n_classes} classes 0..{n_classes - 1}"
        )
    return labels, n_classes


def _check_labels(labels, n_samples: int, n_classes: int | None) -> tuple[np.ndarray, int | None]:
    """Class labels (int64, with their class count) or real-valued targets (float64, n_classes None)."""
    labels = np.asarray(labels)
    if labels.ndim == 0 or labels.shape[0] != n_samples:
        got = "a scalar" if labels.ndim == 0 else f"{labels.shape[0]} labels"
        raise SpikeDataError(f"the data set has {n_samples} samples but {got}; give one label per sample")
    if n_classes is not None:
        return _class_labels(labels, _check_size("n_classes", n_classes))
    if np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool:
        return _class_labels(labels, None)
    if not np.issubdtype(labels.dtype, np.floating):
        raise SpikeDataError(f"labels must be integer classes or float targets, got dtype {labels.dtype}")
    bad = np.argwhere(~np.isfinite(labels))
    if bad.size:
        i = int(bad[0][0])
        what = "NaN" if np.isnan(labels[i]).any() else "an infinite value"
        raise SpikeDataError(f"the target of sample {i} contains {what}")
    return labels.astype(np.float64), None


def _gather(offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of the spikes of samples ``idx`` (in that order) and the offsets of the gathered samples."""
    start = offsets[idx]
    lengths = offsets[idx + 1] - start
    new_offsets = np.zeros(idx.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    positions = np.arange(new_offsets[-1], dtype=np.int64) + np.repeat(start - new_offsets[:-1], lengths)
    return positions, new_offsets


class SpikeDataset:
    """Spike trains of many samples with their labels, stored flat; batches, shuffles, subsets and splits.

    ``SpikeDataset(times_list, units_list, labels, n_units, duration, n_classes=None, values_list=None)``
    takes one array of spike times (ms) and one of units per sample (and, for graded events, one of values).
    Labels are either integer classes (int64; ``n_classes`` defaults to the largest label + 1, or give it so
    that a subset still knows all classes) or real-valued targets (float64, one row per sample, ``n_classes``
    None). ``speakers`` (optional, one per sample, e.g. SHD's ``extra/speaker``) travels with the samples
    through subsets and splits, for splits that hold out whole speakers. Everything is checked once, here; errors name
    the sample. The per-sample checks (shapes, integer units, finite and sorted times) are SpikeBatch's, and
    the range checks (units below n_units, times in [0, duration]) are ``SpikeBatch.check``'s.
    """

    times: np.ndarray
    units: np.ndarray
    values: np.ndarray | None
    offsets: np.ndarray
    labels: np.ndarray
    n_units: int
    duration: float
    n_classes: int | None
    speakers: np.ndarray | None = None

    def __init__(self, times_list, units_list, labels, n_units: int, duration: float, n_classes: int | None = None,
                 values_list=None, speakers=None):
        self._fill(SpikeBatch(times=times_list, units=units_list, values=values_list), labels, n_units, duration,
                   n_classes)
        self._set_speakers(speakers)

    @classmethod
    def from_batch(cls, batch: SpikeBatch, labels, n_units: int, duration: float,
                   n_classes: int | None = None, speakers=None) -> SpikeDataset:
        """A data set holding the samples of ``batch`` (already checked per sample by SpikeBatch)."""
        self = cls.__new__(cls)
        self._fill(batch, labels, n_units, duration, n_classes)
        self._set_speakers(speakers)
        return self

    def _set_speakers(self, speakers) -> None:
        """One speaker (any hashable id: int or str) per sample, or None."""
        if speakers is None:
            self.speakers = None
            return
        speakers = np.asarray(speakers)
        if speakers.shape != (len(self),):
            raise SpikeDataError(f"speakers must give one entry per sample ({len(self)}), got shape {speakers.shape}")
        speakers.setflags(write=False)
        self.speakers = speakers

    def _fill(self, batch: SpikeBatch, labels, n_units, duration, n_classes) -> None:
        n_units = _check_size("n_units", n_units)
        if not (np.ndim(duration) == 0 and np.isfinite(duration) and duration > 0):
            raise SpikeDataError(f"duration must be a finite positive time in ms, got {duration!r}")
        if len(batch) == 0:
            raise SpikeDataError("the data set is empty; it needs at least one sample")
        batch.check(n_units, float(duration), name="dataset")
        labels, n_classes = _check_labels(labels, len(batch), n_classes)
        offsets = np.zeros(len(batch) + 1, dtype=np.int64)
        np.cumsum([t.size for t in batch.times], out=offsets[1:])
        values = np.concatenate(batch.values) if batch.graded else None
        self._set(np.concatenate(batch.times), np.concatenate(batch.units), offsets, labels, n_units,
                  float(duration), n_classes, values)

    def _set(self, times, units, offsets, labels, n_units, duration, n_classes, values=None) -> None:
        """Store checked arrays, read-only: batches and subsets copy from them and rely on them not changing."""
        for a in (times, units, offsets, labels) + (() if values is None else (values,)):
            a.setflags(write=False)
        self.times, self.units, self.offsets, self.labels, self.values = times, units, offsets, labels, values
        self.n_units, self.duration, self.n_classes = n_units, duration, n_classes

    def __len__(self) -> int:
        return self.offsets.size - 1

    def __repr__(self) -> str:
        kind = f"{self.n_classes} classes" if self.n_classes is not None else "real-valued targets"
        spikes = "graded events" if self.values is not None else "spikes"
        return (f"SpikeDataset({len(self)} samples, {self.times.size} {spikes}, {self.n_units} units, "
                f"{self.duration} ms, {kind})")

    def _indices(self, indices) -> np.ndarray:
        """Sample indices as an int64 array; a boolean mask of length len(self) selects its True samples."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"a boolean mask must have shape ({len(self)},), got {idx.shape}")
            return np.flatnonzero(idx)
        if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
            raise IndexError(f"indices must be a 1-D array of integers, got shape {idx.shape}, dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        bad = np.flatnonzero((idx < 0) | (idx >= len(self)))
        if bad.size:
            raise IndexError(f"index {idx[bad[0]]} is outside the {len(self)} samples 0..{len(self) - 1}")
        return idx

    def batch(self, indices) -> tuple[SpikeBatch, np.ndarray]:
        """The samples ``indices`` (in that order) as a SpikeBatch, with their labels; copies, never views."""
        idx = self._indices(indices)
        if idx.size == 0:
            return SpikeBatch(times=[], units=[]), self.labels[idx]  # np.split would return one empty sample
        positions, offsets = _gather(self.offsets, idx)
        cuts = offsets[1:-1]
        values = None if self.values is None else np.split(self.values[positions], cuts)
        batch = SpikeBatch._from_checked(np.split(self.times[positions], cuts), np.split(self.units[positions], cuts),
                                         values)  # checked when the data set was filled
        return batch, self.labels[idx]

    def batches(self, batch_size: int, shuffle: bool = True, seed=None) -> Iterator[tuple[SpikeBatch, np.ndarray]]:
        """One epoch: every sample exactly once, in batches of ``batch_size``; the last batch holds the rest
        (it is kept, never dropped). With ``shuffle``, the order is ``default_rng(seed).permutation``, so a
        seed gives the same epoch again; without it, samples come in stored order."""
        batch_size = _check_size("batch_size", batch_size)
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        return (self.batch(order[i:i + batch_size]) for i in range(0, len(self), batch_size))

    def subset(self, indices) -> SpikeDataset:
        """A new data set of the samples ``indices`` (in that order), with the same units, duration and classes."""
        idx = self._indices(indices)
        if idx.size == 0:
            raise SpikeDataError("the subset is empty; give at least one index")
        positions, offsets = _gather(self.offsets, idx)
        out = SpikeDataset.__new__(SpikeDataset)
        out._set(self.times[positions], self.units[positions], offsets, self.labels[idx], self.n_units,
                 self.duration, self.n_classes, None if self.values is None else self.values[positions])
        out.speakers = None if self.speakers is None else self.speakers[idx]
        return out

    def split(self, fraction: float, seed=0) -> tuple[SpikeDataset, SpikeDataset]:
        """Two disjoint data sets, the first with round(fraction * len) samples, the second with the rest.

        Deterministic for a given seed. With class labels the split is stratified: each class goes to the
        first part in proportion ``fraction`` (rounded so that the total is exact), which keeps the class
        balance of a small validation set. Samples keep their stored order within each part."""
        if not (np.ndim(fraction) == 0 and 0.0 < fraction < 1.0):
            raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction!r}")
        n_first = int(round(fraction * len(self)))
        if n_first in (0, len(self)):
            raise ValueError(f"split({fraction}) of {len(self)} samples would leave one part empty")
        rng = np.random.default_rng(seed)
        if self.n_classes is None:
            first = rng.permutation(len(self))[:n_first]
        else:
            first = _stratified_first(self.labels, fraction, n_first, rng)
        mask = np.zeros(len(self), dtype=bool)
        mask[first] = True
        return self.subset(mask), self.subset(~mask)


def _stratified_first(labels: np.ndarray, fraction: float, n_first: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the first part: per class, floor(fraction * count) random members, plus one more for the
    classes with the largest remainders until the total is n_first (largest-remainder rounding)."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = fraction * counts
    quota = np.floor(exact).astype(np.int64)
    extra = np.argsort(-(exact - quota), kind="stable")[: n_first - int(quota.sum())]
    quota[extra] += 1
    return np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)])
