"""The Free Spoken Digit Dataset (FSDD) through the audio front end, with its own and speaker-independent splits.

FSDD: 3,000 recordings of the digits 0-9 (6 speakers x 10 digits x 50 takes, 8 kHz mono; CC BY-SA 4.0,
Zohar Jackson and contributors). eventgrad reads it packed as one ``fsdd.npz`` (``audio`` int16 clips laid
end to end, ``offsets``, ``labels``, ``speakers``, ``index``: the take 0-49) and never ships or fetches it;
the path comes from the call or from the environment variable ``EVENTGRAD_FSDD`` (the folder holding
``fsdd.npz``, or the file itself).

Splits: ``"takes"`` is the dataset's own (takes 0-4 of every speaker and digit are the test set: 300 of
3,000); ``"speakers"`` holds out whole speakers, as SHD's test set does, which is harder.
"""

from __future__ import annotations

import os

import numpy as np

from eventgrad.data.audio import audio_to_spikes
from eventgrad.data.dataset import SpikeDataset
from eventgrad.data.spikes import SpikeDataError

FSDD_ENV = "EVENTGRAD_FSDD"
FSDD_RATE = 8000
SPLITS = ("takes", "speakers")


def fsdd_path(path=None) -> str:
    """The ``fsdd.npz`` file: ``path`` (a file or the folder holding it), else ``$EVENTGRAD_FSDD``."""
    given = path if path not in (None, "") else os.environ.get(FSDD_ENV, "")
    if not given:
        raise FileNotFoundError(f"no FSDD path: pass path=... or set the environment variable {FSDD_ENV} to the "
                                "folder holding fsdd.npz")
    given = os.fspath(given)
    file = os.path.join(given, "fsdd.npz") if os.path.isdir(given) else given
    if not os.path.isfile(file):
        source = "path" if path not in (None, "") else f"${FSDD_ENV}"
        raise FileNotFoundError(f"no FSDD file at {file!r} (from {source}); give the folder holding fsdd.npz "
                                f"as path=... or in {FSDD_ENV}")
    return file


def load_fsdd_audio(path=None) -> dict:
    """The raw clips: {"clips": list of int16 arrays, "labels", "speakers", "takes", "sample_rate"}."""
    file = fsdd_path(path)
    with np.load(file, allow_pickle=False) as f:
        missing = [k for k in ("audio", "offsets", "labels", "speakers", "index") if k not in f.files]
        if missing:
            raise SpikeDataError(f"{file}: not a packed FSDD file, it has no {', '.join(missing)} "
                                 f"(it holds: {', '.join(f.files)})")
        audio, offsets = f["audio"], f["offsets"].astype(np.int64)
        labels, speakers, takes = f["labels"].astype(np.int64), f["speakers"].astype(str), f["index"].astype(np.int64)
    if offsets.ndim != 1 or offsets.size != labels.size + 1 or np.any(np.diff(offsets) < 0) \
            or offsets[-1] != audio.size or not (speakers.size == takes.size == labels.size):
        raise SpikeDataError(f"{file}: 'offsets' must cut 'audio' into one clip per label "
                             f"({labels.size} labels, {offsets.size} offsets, {audio.size} samples)")
    clips = [audio[offsets[k]:offsets[k + 1]] for k in range(labels.size)]
    return {"clips": clips, "labels": labels, "speakers": speakers, "takes": takes, "sample_rate": FSDD_RATE}


def fsdd(path=None, split: str = "takes", test_speakers=(), takes=None, duration: float | None = None,
         progress: bool = False, **front_end) -> tuple[SpikeDataset, SpikeDataset]:
    """(train, test) spike data sets of FSDD through :func:`eventgrad.data.audio.audio_to_spikes`.

    ``split="takes"``: takes 0-4 are the test set; ``split="speakers"``: the clips of ``test_speakers``
    (names, e.g. ("george", "lucas")) are. ``takes`` keeps only those take numbers (e.g. range(10) for a
    quick look). ``duration`` (ms) defaults to the longest clip; with a shorter one, longer clips are cut
    (their later spikes dropped). ``front_end`` goes to ``audio_to_spikes`` (n_channels, f_min, threshold,
    ...). Both sets keep each sample's speaker (``.speakers``).
    """
    raw = load_fsdd_audio(path)
    keep = np.ones(raw["labels"].size, dtype=bool) if takes is None else np.isin(raw["takes"], list(takes))
    if not keep.any():
        raise SpikeDataError(f"no FSDD clip has a take in {list(takes)}; takes are numbered 0-49")
    if split == "takes":
        test = raw["takes"] < 5
    elif split == "speakers":
        known = sorted(set(raw["speakers"].tolist()))
        test_speakers = [test_speakers] if isinstance(test_speakers, str) else list(test_speakers)
        unknown = [s for s in test_speakers if s not in known]
        if not test_speakers or unknown:
            raise SpikeDataError(f"split='speakers' needs test_speakers from {known}; got {test_speakers}")
        if len(set(test_speakers)) == len(known):
            raise SpikeDataError("split='speakers' holds out every speaker; leave at least one for training")
        test = np.isin(raw["speakers"], test_speakers)
    else:
        raise SpikeDataError(f"unknown FSDD split '{split}'; known: {', '.join(SPLITS)}")
    index = np.flatnonzero(keep)
    batch, lengths = audio_to_spikes([raw["clips"][k] for k in index], raw["sample_rate"], progress=progress,
                                     **front_end)
    if duration is None:
        duration = float(np.ceil(max(lengths)))
    times, units = [], []
    for t, u in zip(batch.times, batch.units):
        inside = t <= duration
        times.append(t[inside])
        units.append(u[inside])
    n_channels = front_end.get("n_channels", 64)
    parts = []
    for mask in (~test[index], test[index]):
        if not mask.any():
            raise SpikeDataError(f"the FSDD split '{split}' leaves one part empty with takes={takes}")
        k = np.flatnonzero(mask)
        parts.append(SpikeDataset([times[i] for i in k], [units[i] for i in k], raw["labels"][index[k]], n_channels,
                                  duration, n_classes=10, speakers=raw["speakers"][index[k]]))
    return parts[0], parts[1]


def fsdd_to_shd(folder, path=None, **options) -> tuple[str, str]:
    """Convert FSDD once and write ``fsdd_train.h5`` and ``fsdd_test.h5`` in SHD's layout into ``folder``
    (``options`` as for :func:`fsdd`: split, test_speakers, takes, duration, progress, front end), so that
    ``load_shd(file, n_units=n_channels, n_classes=10)`` reads them back without the front end."""
    from eventgrad.data.shd import save_shd

    os.makedirs(folder, exist_ok=True)
    train, test = fsdd(path, **options)
    return tuple(save_shd(os.path.join(os.fspath(folder), f"fsdd_{part}.h5"), ds)
                 for part, ds in (("train", train), ("test", test)))
