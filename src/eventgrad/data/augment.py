"""Augmentations of spike data sets, as mlGeNN's SHD recipes use them, and speaker-independent splits.

Each augmentation is a function ``f(dataset, ..., seed) -> new dataset`` working on the flat arrays
(no loop over spikes): the same seed gives the same result. ``Augment`` chains them into one callable
``augment(dataset, seed)``, which ``Trainer.fit(..., augment=...)`` applies to the training set at the
start of every epoch with a seed derived from the run's seed and the epoch number, so a resumed run sees
the data an uninterrupted one would. Spikes an augmentation moves out of the input (a channel outside
0..n_units-1, a time outside [0, duration]) are dropped, as in mlGeNN.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from eventgrad.data.dataset import SpikeDataset
from eventgrad.data.spikes import SpikeDataError


def _sample_of(ds: SpikeDataset) -> np.ndarray:
    return np.repeat(np.arange(len(ds)), np.diff(ds.offsets))


def _rebuild(ds: SpikeDataset, times, units, sample, labels=None, n_units=None, duration=None,
             speakers=None) -> SpikeDataset:
    """A data set from flat spikes (any order) of samples ``sample``; spikes out of range are dropped."""
    n_units = ds.n_units if n_units is None else n_units
    duration = ds.duration if duration is None else duration
    labels = ds.labels if labels is None else labels
    speakers = ds.speakers if speakers is None else speakers
    keep = (units >= 0) & (units < n_units) & (times >= 0) & (times <= duration)
    times, units, sample = times[keep], units[keep].astype(np.int64), sample[keep]
    order = np.lexsort((times, sample))
    offsets = np.zeros(len(labels) + 1, dtype=np.int64)
    np.cumsum(np.bincount(sample, minlength=len(labels)), out=offsets[1:])
    out = SpikeDataset.__new__(SpikeDataset)
    out._set(times[order].astype(np.float64), units[order], offsets, np.array(labels), n_units, float(duration),
             ds.n_classes)
    out.speakers = None if speakers is None else np.array(speakers)
    return out


def _check_graded(ds: SpikeDataset, what: str) -> None:
    if ds.values is not None:
        raise SpikeDataError(f"{what} works on spikes; this data set holds graded events")


def shift_channels(ds: SpikeDataset, max_shift: int = 0, sd: float = 0.0, seed=None,
                   channels: int | None = None) -> SpikeDataset:
    """Move every spike of a sample by the same number of channels: uniform integer in [-max_shift, max_shift]
    (mlGeNN's Shift) plus, with ``sd``, a Gaussian draw rounded to an integer. Spikes moved outside the
    channels are dropped.

    ``channels``: the width of one copy when the data set holds delay lines (unit k * channels + c is channel
    c of copy k, see :func:`delay_lines`): channel c moves and the spike stays in its copy, so that
    ``shift_channels(delay_lines(ds, ...), ..., channels=ds.n_units)`` equals ``delay_lines(shift_channels(ds,
    ...), ...)`` for the same seed. Default: the data set's units, one copy."""
    _check_graded(ds, "shift_channels")
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise SpikeDataError(f"max_shift must be a whole number of channels >= 0, got {max_shift!r}")
    if not (np.isfinite(sd) and sd >= 0):
        raise SpikeDataError(f"sd must be a number >= 0 (channels), got {sd!r}")
    channels = ds.n_units if channels is None else channels
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1 \
            or ds.n_units % channels:
        raise SpikeDataError(f"channels must divide the data set's {ds.n_units} units (the width of one delay-line "
                             f"copy), got {channels!r}")
    rng = np.random.default_rng(seed)
    shift = rng.integers(-max_shift, max_shift + 1, len(ds))
    if sd > 0:
        shift = shift + np.rint(rng.normal(0.0, sd, len(ds))).astype(np.int64)
    moved = np.repeat(shift, np.diff(ds.offsets))
    channel = ds.units % channels + moved
    return _keep(ds, (channel >= 0) & (channel < channels), ds.units + moved)


def _keep(ds: SpikeDataset, keep: np.ndarray, units: np.ndarray) -> SpikeDataset:
    """The spikes ``keep`` (a mask) of ``ds`` with new ``units``, in their stored order: for augmentations that
    move no spike in time, whose samples therefore stay sorted by time without a sort."""
    kept_before = np.zeros(keep.size + 1, dtype=np.int64)
    np.cumsum(keep, out=kept_before[1:])
    offsets = kept_before[ds.offsets]
    out = SpikeDataset.__new__(SpikeDataset)
    out._set(ds.times[keep], units[keep].astype(np.int64), offsets, ds.labels, ds.n_units, ds.duration, ds.n_classes)
    out.speakers = ds.speakers
    return out


def jitter_times(ds: SpikeDataset, sd: float, seed=None) -> SpikeDataset:
    """Add independent Gaussian noise of ``sd`` ms to every spike time (spikes leaving the trial dropped)."""
    _check_graded(ds, "jitter_times")
    if not (np.isfinite(sd) and sd >= 0):
        raise SpikeDataError(f"sd must be a time >= 0 (ms), got {sd!r}")
    rng = np.random.default_rng(seed)
    return _rebuild(ds, ds.times + rng.normal(0.0, sd, ds.times.size), ds.units.copy(), _sample_of(ds))


def stretch_times(ds: SpikeDataset, max_factor: float, seed=None) -> SpikeDataset:
    """Scale each sample's spike times by its own factor, log-uniform in [1 / max_factor, max_factor]
    (speaking faster or slower); spikes stretched past the trial are dropped."""
    _check_graded(ds, "stretch_times")
    if not (np.isfinite(max_factor) and max_factor >= 1):
        raise SpikeDataError(f"max_factor must be a number >= 1, got {max_factor!r}")
    rng = np.random.default_rng(seed)
    factor = np.exp(rng.uniform(-np.log(max_factor), np.log(max_factor), len(ds)))
    sample = _sample_of(ds)
    return _rebuild(ds, ds.times * factor[sample], ds.units.copy(), sample)


def blend(ds: SpikeDataset, fraction: float, seed=None, p_keep: float = 0.5) -> SpikeDataset:
    """The data set plus round(fraction * len) blends (mlGeNN's Blend): each of a random sample and a random
    sample of the same class, both moved half-way towards each other's centroid (in channel, rounded to an
    integer, and in time), each of their spikes kept with probability ``p_keep``. A blend has the class of
    its parents and at most their spike counts together (p_keep of that on average)."""
    _check_graded(ds, "blend")
    if ds.n_classes is None:
        raise SpikeDataError("blend mixes samples of the same class; this data set has real-valued targets")
    if not (np.isfinite(fraction) and fraction >= 0):
        raise SpikeDataError(f"fraction must be a number >= 0, got {fraction!r}")
    if not (0 < p_keep <= 1):
        raise SpikeDataError(f"p_keep must lie in (0, 1], got {p_keep!r}")
    rng = np.random.default_rng(seed)
    n_new = int(round(fraction * len(ds)))
    members = {c: np.flatnonzero(ds.labels == c) for c in np.unique(ds.labels)}
    first = rng.integers(0, len(ds), n_new)
    second = np.array([rng.choice(members[ds.labels[i]]) for i in first], dtype=np.int64)
    times, units, sample = [ds.times], [ds.units], [_sample_of(ds)]
    for k, (i, j) in enumerate(zip(first, second)):
        a, b = slice(ds.offsets[i], ds.offsets[i + 1]), slice(ds.offsets[j], ds.offsets[j + 1])
        ta, ua, tb, ub = ds.times[a], ds.units[a], ds.times[b], ds.units[b]
        if ta.size and tb.size:
            dc, dt = (ub.mean() - ua.mean()) / 2.0, (tb.mean() - ta.mean()) / 2.0
            ua, ub = ua + int(dc), ub - int(dc)
            ta, tb = ta + dt, tb - dt
        keep_a, keep_b = rng.random(ta.size) < p_keep, rng.random(tb.size) < p_keep
        times += [ta[keep_a], tb[keep_b]]
        units += [ua[keep_a], ub[keep_b]]
        sample.append(np.full(int(keep_a.sum() + keep_b.sum()), len(ds) + k, dtype=np.int64))
    labels = np.concatenate([ds.labels, ds.labels[first]])
    speakers = None if ds.speakers is None else np.concatenate([ds.speakers, ds.speakers[first]])
    return _rebuild(ds, np.concatenate(times), np.concatenate(units), np.concatenate(sample), labels=labels,
                    speakers=speakers)


def delay_lines(ds: SpikeDataset, copies: int, spacing: float, duration: float | None = None) -> SpikeDataset:
    """Input delay lines: ``copies`` copies of the input, copy k on units k * n_units to (k + 1) * n_units - 1,
    every spike ``k * spacing`` ms later (mlGeNN: 10 copies 30 ms apart, 7,000 inputs for SHD's 700). Spikes after
    ``duration`` (default: the data set's) are dropped."""
    _check_graded(ds, "delay_lines")
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < 1:
        raise SpikeDataError(f"copies must be a positive integer, got {copies!r}")
    if not (np.isfinite(spacing) and spacing >= 0):
        raise SpikeDataError(f"spacing must be a time >= 0 (ms), got {spacing!r}")
    k = np.repeat(np.arange(copies), ds.times.size)
    sample = np.tile(_sample_of(ds), copies)
    return _rebuild(ds, np.tile(ds.times, copies) + k * spacing, np.tile(ds.units, copies) + k * ds.n_units, sample,
                    n_units=ds.n_units * copies, duration=duration)


def split_by_speaker(ds: SpikeDataset, held_out) -> tuple[SpikeDataset, SpikeDataset]:
    """(the other speakers' samples, the samples of the speakers ``held_out``): a speaker-independent split."""
    if ds.speakers is None:
        raise SpikeDataError("this data set has no speakers (load_shd keeps them from extra/speaker)")
    held_out = [held_out] if np.ndim(held_out) == 0 else list(held_out)
    known = np.unique(ds.speakers)
    unknown = [s for s in held_out if s not in set(known.tolist())]
    if unknown or not held_out:
        raise SpikeDataError(f"speakers {unknown or held_out} are not in the data set; it has {known.tolist()}")
    mask = np.isin(ds.speakers, held_out)
    if mask.all():
        raise SpikeDataError(f"holding out {held_out} leaves no sample for the other part")
    return ds.subset(~mask), ds.subset(mask)


def choose_speakers(ds: SpikeDataset, n: int, seed=0) -> list:
    """``n`` speakers of the data set drawn without replacement (seeded), e.g. for a validation split."""
    if ds.speakers is None:
        raise SpikeDataError("this data set has no speakers (load_shd keeps them from extra/speaker)")
    known = np.unique(ds.speakers)
    if not (isinstance(n, (int, np.integer)) and 0 < n < known.size):
        raise SpikeDataError(f"choose between 1 and {known.size - 1} of the {known.size} speakers, got {n!r}")
    return np.random.default_rng(seed).choice(known, n, replace=False).tolist()


_DELAY_LINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # data set -> {(copies, spacing): lines}


@dataclass(frozen=True)
class Augment:
    """The recipes' augmentation, one callable ``augment(dataset, seed) -> dataset`` in mlGeNN's order: blend
    (``blend`` = fraction of blends added), then per sample a channel shift (``shift``: uniform integer
    +-shift; ``shift_sd``: Gaussian), time stretch (``stretch`` = max factor, 1: none) and jitter
    (``jitter`` = sd in ms), then delay lines (``delay_copies`` copies ``delay_spacing`` ms apart; 1: none),
    which every other set (validation, test) needs too: see :meth:`inputs`."""

    shift: int = 0
    shift_sd: float = 0.0
    blend: float = 0.0
    stretch: float = 1.0
    jitter: float = 0.0
    delay_copies: int = 1
    delay_spacing: float = 0.0

    def __post_init__(self):
        """Refuse settings the functions would refuse, at once rather than at the first epoch."""
        if isinstance(self.shift, bool) or not isinstance(self.shift, (int, np.integer)) or self.shift < 0:
            raise SpikeDataError(f"shift must be a whole number of channels >= 0, got {self.shift!r}")
        if isinstance(self.delay_copies, bool) or not isinstance(self.delay_copies, (int, np.integer)) \
                or self.delay_copies < 1:
            raise SpikeDataError(f"delay_copies must be a positive integer, got {self.delay_copies!r}")
        for name, low in (("shift_sd", 0.0), ("blend", 0.0), ("stretch", 1.0), ("jitter", 0.0), ("delay_spacing", 0.0)):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= low):
                raise SpikeDataError(f"{name} must be a number >= {low}, got {value!r}")

    def __call__(self, ds: SpikeDataset, seed) -> SpikeDataset:
        seeds = np.random.SeedSequence(seed).spawn(4)
        if self.delay_copies > 1 and not (self.blend or self.stretch != 1.0 or self.jitter):
            # Only channels move: shifting every copy of the delay lines (built once, see inputs) gives the
            # spikes that shifting first would, in the same order, without building and sorting the copies again
            # every epoch (for 6 copies of FSDD's training set, 15 s an epoch).
            lines = self.inputs(ds)
            if self.shift or self.shift_sd:
                lines = shift_channels(lines, self.shift, self.shift_sd, seed=seeds[1], channels=ds.n_units)
            return lines
        if self.blend:
            ds = blend(ds, self.blend, seed=seeds[0])
        if self.shift or self.shift_sd:
            ds = shift_channels(ds, self.shift, self.shift_sd, seed=seeds[1])
        if self.stretch != 1.0:
            ds = stretch_times(ds, self.stretch, seed=seeds[2])
        if self.jitter:
            ds = jitter_times(ds, self.jitter, seed=seeds[3])
        return self.inputs(ds)

    def inputs(self, ds: SpikeDataset) -> SpikeDataset:
        """The deterministic part (delay lines), for the validation and test sets. Built once per data set and
        kept while the data set lives (data sets are read-only), so that the training set's copies are not made
        again every epoch."""
        if self.delay_copies == 1:
            return ds
        held = _DELAY_LINES.setdefault(ds, {})
        key = (self.delay_copies, self.delay_spacing)
        if key not in held:
            held[key] = delay_lines(ds, self.delay_copies, self.delay_spacing)
        return held[key]

    def n_units(self, n_channels: int) -> int:
        """The network's input size for data of ``n_channels`` channels."""
        return n_channels * self.delay_copies
