"""The Spiking Heidelberg Digits (SHD, Cramer et al. 2020) from their HDF5 files, as a SpikeDataset.

The files (``shd_train.h5``, ``shd_test.h5``; the Spiking Speech Commands, SSC, use the same layout) hold
``spikes/times`` (per sample, a variable-length array of spike times in seconds), ``spikes/units`` (the
matching channel indices, 0..699) and ``labels``; ``extra/speaker`` holds the speaker of each sample
(kept, for speaker-independent splits). ``save_shd`` writes the same layout (the audio front end's output).
SHD has 20 classes (8156 train / 2264 test samples), SSC 35. Users download the files themselves; eventgrad
never fetches data.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np

from eventgrad.data.dataset import SpikeDataset, _check_size
from eventgrad.data.spikes import SpikeBatch, SpikeDataError

if TYPE_CHECKING:
    import h5py

SHD_CHANNELS = 700
SHD_CLASSES = 20
SSC_CLASSES = 35
_FIELDS = ("spikes/times", "spikes/units", "labels")


def _read_fields(f: h5py.File, path: str, max_samples: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """spikes/times, spikes/units and labels (the first max_samples of each), after checking they exist
    and agree in length; a missing field is named together with what the file does contain."""
    import h5py

    for field in _FIELDS:
        if not isinstance(f.get(field), h5py.Dataset):
            present = []
            f.visit(present.append)
            raise SpikeDataError(
                f"{path} is not in the SHD layout: it has no dataset '{field}' "
                f"(it contains: {', '.join(present) or 'nothing'})"
            )
        if f[field].ndim != 1:
            raise SpikeDataError(f"{path}: '{field}' must hold one entry per sample (1-D), got shape {f[field].shape}")
    lengths = {field: f[field].shape[0] for field in _FIELDS}
    if len(set(lengths.values())) != 1:
        counts = ", ".join(f"'{k}' has {v}" for k, v in lengths.items())
        raise SpikeDataError(f"{path}: the fields disagree on the number of samples ({counts})")
    end = lengths["labels"] if max_samples is None else min(max_samples, lengths["labels"])
    return tuple(f[field][:end] for field in _FIELDS)


def _flat(path: str, field: str, per_sample) -> tuple[np.ndarray, np.ndarray]:
    """The variable-length entries of ``field`` laid end to end, and the offsets of each sample."""
    lengths = np.fromiter((len(x) for x in per_sample), dtype=np.int64, count=len(per_sample))
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    try:
        flat = np.concatenate(list(per_sample)) if lengths.size else np.zeros(0)
    except ValueError as err:
        raise SpikeDataError(f"{path}: '{field}' must hold one 1-D array per sample ({err})") from err
    return flat, offsets


def _check_spikes(path: str, times: np.ndarray, units: np.ndarray, offsets: np.ndarray, n_units: int,
                  sort_times: bool) -> np.ndarray:
    """Refuse non-finite or negative times, units outside 0..n_units-1 and (unless ``sort_times``) times
    that go backwards within a sample, naming the file, the field and the sample. Returns the order that
    sorts each sample's spikes by time (the identity when they are sorted)."""
    sample_of = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    bad = np.flatnonzero(~np.isfinite(times))
    if bad.size:
        k = bad[0]
        raise SpikeDataError(f"{path}: sample {sample_of[k]} has a NaN or infinite spike time (spike "
                             f"{k - offsets[sample_of[k]]}: {times[k] * 1000.0} ms) in 'spikes/times'")
    bad = np.flatnonzero(times < 0)
    if bad.size:
        k = bad[0]
        raise SpikeDataError(f"{path}: 'spikes/times' of sample {sample_of[k]} holds {times[k]}, not a time >= 0 s")
    if not np.issubdtype(units.dtype, np.integer) and units.size:
        raise SpikeDataError(f"{path}: 'spikes/units' must hold integer channel indices, got dtype {units.dtype}")
    bad = np.flatnonzero((units < 0) | (units >= n_units))
    if bad.size:
        k = bad[0]
        raise SpikeDataError(f"{path}: 'spikes/units' of sample {sample_of[k]} holds unit {units[k]}, outside the "
                             f"{n_units} channels 0..{n_units - 1}")
    back = np.flatnonzero((np.diff(times) < 0) & (sample_of[1:] == sample_of[:-1]))
    if back.size and not sort_times:
        k = back[0]
        raise SpikeDataError(f"{path}: 'spikes/times' of sample {sample_of[k]} are not sorted ({times[k + 1]} s comes "
                             f"after {times[k]} s); pass sort_times=True to sort each sample's spikes")
    if not back.size:
        return np.arange(times.size)
    return np.lexsort((times, sample_of))  # stable: equal times keep their file order


def load_shd(path, max_samples: int | None = None, n_classes: int = SHD_CLASSES,
             duration: float | None = None, n_units: int = SHD_CHANNELS, sort_times: bool = False) -> SpikeDataset:
    """Read an SHD (or, with ``n_classes=35``, SSC) HDF5 file into a SpikeDataset of ``n_units`` (700) units.

    The whole file is read at once (one read per field, checks and conversion on flat arrays, no loop
    over samples). Times are converted from seconds to milliseconds (float64, not rounded). Spikes must be
    sorted by time within each sample, as the published files are; ``sort_times=True`` sorts them instead
    (stably). The speaker of each sample (``extra/speaker``, when present) is kept in ``.speakers``.
    ``max_samples`` reads only the first samples. ``duration`` (ms) defaults to the latest spike, rounded
    up to a whole ms; give the same value for train and test files (e.g. 1400 ms for SHD) so that trials
    match; spikes after it are refused (by the data set's checks), not dropped.
    """
    if max_samples is not None:
        _check_size("max_samples", max_samples)
    _check_size("n_units", n_units)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no SHD file at {path!r}; download shd_train.h5 / shd_test.h5 and give their path")
    import h5py  # imported here, not at module level, so that `import eventgrad` stays quick

    with h5py.File(path, "r") as f:
        times_s, units_list, labels = _read_fields(f, path, max_samples)
        speakers = f.get("extra/speaker")
        speakers = speakers[:len(labels)] if isinstance(speakers, h5py.Dataset) and speakers.ndim == 1 else None
    if speakers is not None and speakers.dtype.kind in "OS":  # strings come back from h5py as bytes
        speakers = np.array([x.decode() if isinstance(x, bytes) else str(x) for x in speakers])
    if speakers is not None and speakers.shape[0] != len(labels):
        raise SpikeDataError(f"{path}: 'extra/speaker' has {speakers.shape[0]} entries for {len(labels)} samples")
    times, offsets = _flat(path, "spikes/times", times_s)
    units, unit_offsets = _flat(path, "spikes/units", units_list)
    if not np.array_equal(offsets, unit_offsets):
        k = int(np.flatnonzero(np.diff(offsets) != np.diff(unit_offsets))[0])
        raise SpikeDataError(f"{path}: sample {k} has {offsets[k + 1] - offsets[k]} spike times but "
                             f"{unit_offsets[k + 1] - unit_offsets[k]} units ('spikes/times' and 'spikes/units')")
    order = _check_spikes(path, times, units, offsets, n_units, sort_times)
    times_ms = np.asarray(times, dtype=np.float64)[order] * 1000.0  # seconds -> ms
    units = np.asarray(units)[order].astype(np.int64)
    if duration is None:
        duration = max(float(math.ceil(times_ms.max())) if times_ms.size else 0.0, 1.0)
    cuts = offsets[1:-1]
    try:
        return SpikeDataset.from_batch(SpikeBatch._from_checked(np.split(times_ms, cuts), np.split(units, cuts)),
                                       labels, n_units, duration, n_classes=n_classes, speakers=speakers)
    except SpikeDataError as err:
        raise SpikeDataError(f"{path}: {err}") from err


def save_shd(path, dataset: SpikeDataset, speakers=None) -> str:
    """Write ``dataset`` to an HDF5 file in SHD's layout (``spikes/times`` in seconds, kept in float64 so that
    times come back to rounding; ``spikes/units`` uint16; ``labels``; ``extra/speaker``), which :func:`load_shd`
    reads back with the same ``n_units``. Speakers default to the data set's own (0 when it has none)."""
    import h5py

    if dataset.values is not None:
        raise SpikeDataError("graded events have no place in the SHD layout (it stores spike times and units only)")
    speakers = dataset.speakers if speakers is None else np.asarray(speakers)
    speakers = np.zeros(len(dataset), np.uint16) if speakers is None else speakers
    if speakers.dtype.kind == "U":
        speakers = speakers.astype(h5py.string_dtype())
    path = os.fspath(path)
    cuts = dataset.offsets[1:-1]
    with h5py.File(path, "w") as f:
        for name, arrays, dtype in (("spikes/times", np.split(dataset.times / 1000.0, cuts), np.float64),
                                    ("spikes/units", np.split(dataset.units, cuts), np.uint16)):
            field = f.create_dataset(name, (len(dataset),), dtype=h5py.vlen_dtype(dtype))
            field[...] = np.array([a.astype(dtype) for a in arrays] + [None], dtype=object)[:-1]
        f.create_dataset("labels", data=np.asarray(dataset.labels, np.uint16))
        f.create_dataset("extra/speaker", data=speakers)
    return path
