"""The Spiking Heidelberg Digits (SHD, Cramer et al. 2020) from their HDF5 files, as a SpikeDataset.

The files (``shd_train.h5``, ``shd_test.h5``; the Spiking Speech Commands, SSC, use the same layout) hold
``spikes/times`` (per sample, a variable-length array of spike times in seconds), ``spikes/units`` (the
matching channel indices, 0..699) and ``labels``; ``extra/`` holds metadata (speakers, keys) not used here.
SHD has 20 classes (8156 train / 2264 test samples), SSC 35. Users download the files themselves; eventgrad
never fetches data.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np

from eventgrad.data.dataset import SpikeDataset, _check_size
from eventgrad.data.spikes import SpikeDataError

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


def load_shd(path, max_samples: int | None = None, n_classes: int = SHD_CLASSES,
             duration: float | None = None) -> SpikeDataset:
    """Read an SHD (or, with ``n_classes=35``, SSC) HDF5 file into a SpikeDataset of 700 units.

    Times are converted from seconds to milliseconds (float64, as stored: not rounded) and sorted within
    each sample (stably; the order of events in the file carries no meaning). ``max_samples`` reads only
    the first samples of the file. ``duration`` (ms) defaults to the latest spike, rounded up to a whole
    ms; give the same value for train and test files (e.g. 1400 ms for SHD) so that trials match.
    """
    if max_samples is not None:
        _check_size("max_samples", max_samples)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no SHD file at {path!r}; download shd_train.h5 / shd_test.h5 and give their path")
    import h5py  # imported here, not at module level, so that `import eventgrad` stays quick

    with h5py.File(path, "r") as f:
        times_s, units_list, labels = _read_fields(f, path, max_samples)
    times_list, sorted_units = [], []
    for b, (t, u) in enumerate(zip(times_s, units_list)):
        t = np.asarray(t, dtype=np.float64) * 1000.0  # seconds -> ms
        if np.shape(t) != np.shape(u):
            raise SpikeDataError(f"{path}: sample {b} has {np.size(t)} spike times but {np.size(u)} units")
        if not np.all(np.isfinite(t)):
            bad = int(np.argmin(np.isfinite(t)))
            raise SpikeDataError(f"{path}: sample {b} has a NaN or infinite spike time (spike {bad}: {t[bad]} ms)")
        order = np.argsort(t, kind="stable")
        times_list.append(t[order])
        sorted_units.append(np.asarray(u)[order])
    if duration is None:
        latest = max((t[-1] for t in times_list if t.size), default=0.0)
        duration = max(float(math.ceil(latest)), 1.0)
    return SpikeDataset(times_list, sorted_units, labels, SHD_CHANNELS, duration, n_classes=n_classes)
