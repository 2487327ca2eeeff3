"""Speech: the audio front end on synthetic tones, SHD files written and read back, the augmentations,
FSDD on the shared data, per-epoch augmentation in the trainer, and the shipped recipes."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_encoders_datasets import write_shd

import eventgrad as eg
from eventgrad.cli import main
from eventgrad.config import read_config, recipe_path, recipes, resolve
from eventgrad.data import SpikeDataError, SpikeDataset
from eventgrad.data.audio import AudioError, audio_to_spikes, erb_space
from eventgrad.data.augment import (
    Augment,
    blend,
    choose_speakers,
    delay_lines,
    jitter_times,
    shift_channels,
    split_by_speaker,
    stretch_times,
)
from eventgrad.data.shd import load_shd, save_shd
from eventgrad.data.spoken_digits import FSDD_ENV, fsdd, fsdd_path, fsdd_to_shd

pytest.importorskip("scipy")

FSDD = os.environ.get(FSDD_ENV) or str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fsdd")
needs_fsdd = pytest.mark.skipif(not os.path.isfile(os.path.join(FSDD, "fsdd.npz")),
                                reason=f"FSDD not found (set {FSDD_ENV}, or place it at ../shared/data/fsdd)")


def tone(freq, rate=16000, ms=100.0, amplitude=0.3):
    t = np.arange(int(rate * ms / 1000)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


# ------------------------------------------------------------------------------------------ front end
def test_a_tone_drives_the_channels_near_its_frequency_and_not_the_others():
    """A 1 kHz tone: the channel with most spikes is the one centred nearest 1 kHz, and channels more than
    two octaves away fire less than a tenth as often; a 3 kHz tone moves the peak up. The duration
    returned is the clip's length; times lie inside it and are sorted."""
    centres = erb_space(100.0, 6000.0, 24)
    for freq in (1000.0, 3000.0):
        batch, durations = audio_to_spikes([tone(freq)], 16000, n_channels=24, f_min=100.0, f_max=6000.0)
        counts = np.bincount(batch.units[0], minlength=24)
        assert np.argmax(counts) == np.argmin(np.abs(centres - freq))
        far = (centres < freq / 4) | (centres > freq * 4)
        assert far.any() and counts[far].max() < 0.1 * counts.max()
        assert durations == [100.0]
        assert np.all(np.diff(batch.times[0]) >= 0) and 0 <= batch.times[0][0] and batch.times[0][-1] <= 100.0


def test_spike_times_are_the_exact_crossings_of_the_integrated_envelope():
    """The same chain written out here (scipy's gammatone, rectification, compression) and integrated on
    a grid 1000 times finer than the sample period: every spike of every channel lies within one fine
    step of the front end's time, and the counts agree."""
    from scipy.signal import gammatone, lfilter

    rate, threshold, comp = 8000, 0.5, 0.3
    rng = np.random.default_rng(0)
    clip = tone(440.0, rate, 40.0) + 0.05 * rng.normal(size=320)
    batch, _ = audio_to_spikes([clip], rate, n_channels=4, f_min=200.0, threshold=threshold, compression=comp)
    x = clip / np.sqrt(np.mean(clip ** 2))
    period, fine = 1000.0 / rate, 1000
    for c, f in enumerate(erb_space(200.0, 0.9 * rate / 2, 4)):
        envelope = np.maximum(lfilter(*gammatone(f, "iir", fs=rate), x), 0.0) ** comp
        integral = np.cumsum(np.repeat(envelope, fine) * period / fine)
        level = np.floor(integral / threshold)
        reference = (np.flatnonzero(np.diff(np.concatenate(([0.0], level))) > 0) + 1) * period / fine
        ours = batch.times[0][batch.units[0] == c]
        assert ours.size == reference.size > 0
        np.testing.assert_allclose(ours, reference, atol=period / fine)


def test_each_clip_starts_afresh_and_spikes_do_not_depend_on_loudness():
    """Two copies of a clip, the second 10 times louder, converted together, give the same spike trains
    (the filters leak less than 1e-9 of their peak from one clip into the next, the hair cell restarts,
    loudness is removed). Times agree to a microsecond: the compression's infinite slope at 0 turns the
    1e-9 leak into that much where the filtered signal crosses zero."""
    clip = tone(700.0, 8000, 60.0) + tone(1500.0, 8000, 60.0, 0.1)
    batch, durations = audio_to_spikes([clip, 10 * clip], 8000, n_channels=6)
    assert durations == [60.0, 60.0]
    np.testing.assert_allclose(batch.times[0], batch.times[1], rtol=0, atol=1e-3)
    np.testing.assert_array_equal(batch.units[0], batch.units[1])


@pytest.mark.parametrize("clips, rate, options, match", [
    ([np.array([0.1, np.nan, 0.2])], 8000, {}, r"clip 0: sample 1 is nan"),
    ([tone(440, 8000), np.zeros(0)], 8000, {}, "clip 1 is empty"),
    ([np.zeros(100)], 8000, {}, "clip 0 is silent"),
    ([tone(440, 8000)], 0, {}, "sample_rate must be a positive number"),
    ([tone(440, 8000)], float("nan"), {}, "sample_rate must be a positive number"),
    ([tone(440, 8000)], 8000, {"f_max": 6000.0}, "f_max=6000.0 Hz is at or above the Nyquist frequency 4000.0"),
    ([tone(440, 8000)], 8000, {"scale": "bark"}, "unknown frequency scale 'bark'"),
    ([np.ones((2, 3))], 8000, {}, "clip 0: a waveform must be 1-D"),
])
def test_bad_audio_is_refused_with_the_clip_and_the_reason(clips, rate, options, match):
    with pytest.raises(AudioError, match=match):
        audio_to_spikes(clips, rate, **options)


def test_the_front_end_writes_shd_files_that_load_shd_reads_back(tmp_path):
    """Spikes, labels and speakers survive save_shd -> load_shd (times in seconds, float64: to rounding)."""
    batch, _ = audio_to_spikes([tone(500.0, 8000, 50.0), tone(2000.0, 8000, 80.0)], 8000, n_channels=8)
    ds = SpikeDataset.from_batch(batch, [3, 7], n_units=8, duration=80.0, n_classes=10,
                                 speakers=np.array(["ann", "bob"]))
    save_shd(tmp_path / "tones.h5", ds)
    back = load_shd(tmp_path / "tones.h5", n_units=8, n_classes=10, duration=80.0)
    np.testing.assert_allclose(back.times, ds.times, rtol=1e-15, atol=1e-12)
    np.testing.assert_array_equal(back.units, ds.units)
    assert back.labels.tolist() == [3, 7] and back.speakers.tolist() == ["ann", "bob"]
    assert back.subset([1]).speakers.tolist() == ["bob"]


# ------------------------------------------------------------------------------------------ SHD files
def test_load_shd_keeps_the_speaker_and_refuses_bad_files_naming_file_and_field(tmp_path):
    write_shd(tmp_path / "ok.h5", [[0.1, 0.2], [0.3]], [[1, 2], [3]], [0, 1])
    assert load_shd(tmp_path / "ok.h5").speakers.tolist() == [0, 0]
    cases = [([[0.2, 0.1]], [[1, 2]], r"unsorted.h5: 'spikes/times' of sample 0 are not sorted"),
             ([[0.1]], [[700]], r"units.h5: 'spikes/units' of sample 0 holds unit 700, outside the 700 channels"),
             ([[0.1, np.nan]], [[1, 2]], (r"nan.h5: sample 0 has a NaN or infinite spike time "
                                          r"\(spike 1: nan ms\) in 'spikes/times'")),
             ([[0.1, 0.2]], [[1]], (r"lengths.h5: sample 0 has 2 spike times but 1 units "
                                      r"\('spikes/times' and 'spikes/units'\)"))]
    for times, units, match in cases:
        name = match.split(".h5")[0] + ".h5"
        write_shd(tmp_path / name, times, units, [0])
        with pytest.raises(SpikeDataError, match=match):
            load_shd(tmp_path / name)
    sorted_ds = load_shd(tmp_path / "unsorted.h5", sort_times=True)
    assert sorted_ds.units.tolist() == [2, 1]


# --------------------------------------------------------------------------------------- augmentation
def speech_set(n=12, n_units=20, seed=0):
    rng = np.random.default_rng(seed)
    times = [np.sort(rng.uniform(0, 100, rng.integers(5, 30))) for _ in range(n)]
    units = [rng.integers(0, n_units, t.size) for t in times]
    return SpikeDataset(times, units, np.arange(n) % 3, n_units, 100.0, n_classes=3,
                        speakers=np.array(["a", "b", "c", "d"])[np.arange(n) % 4])


def test_channel_shift_moves_whole_samples_keeps_channels_in_range_and_reproduces():
    ds = speech_set()
    out = shift_channels(ds, max_shift=5, seed=1)
    assert out.units.min() >= 0 and out.units.max() < ds.n_units and len(out) == len(ds)
    np.testing.assert_array_equal(out.units, shift_channels(ds, max_shift=5, seed=1).units)
    assert not np.array_equal(out.units, shift_channels(ds, max_shift=5, seed=2).units)
    moved = []
    for i in range(len(ds)):  # every kept spike of a sample moved by the same shift, within +-5
        a, b = ds.batch([i])[0], out.batch([i])[0]
        kept = np.isin(a.times[0], b.times[0])
        shifts = set((b.units[0] - a.units[0][kept]).tolist())
        assert len(shifts) <= 1 and all(abs(s) <= 5 for s in shifts)
        moved += list(shifts)
    assert len(set(moved)) > 2
    gauss = shift_channels(ds, sd=3.0, seed=1)
    assert gauss.units.min() >= 0 and gauss.units.max() < ds.n_units and not np.array_equal(gauss.units, ds.units)
    with pytest.raises(SpikeDataError, match="max_shift must be a whole number"):
        shift_channels(ds, max_shift=-1)


def test_blend_keeps_the_class_and_bounds_the_spike_count():
    """Each blend has its parents' class, at most their spikes together, channels and times in range;
    the originals come first, unchanged; the same seed gives the same blends."""
    ds = speech_set()
    out = blend(ds, 1.0, seed=3)
    assert len(out) == 2 * len(ds)
    np.testing.assert_array_equal(out.subset(np.arange(len(ds))).times, ds.times)
    counts = np.diff(ds.offsets)
    biggest_pair = max(counts[ds.labels == c].max() * 2 for c in range(3))
    new_counts = np.diff(out.offsets)[len(ds):]
    assert new_counts.max() <= biggest_pair and new_counts.sum() > 0
    assert set(out.labels[len(ds):].tolist()) <= {0, 1, 2}
    assert out.units.max() < ds.n_units and out.times.min() >= 0 and out.times.max() <= ds.duration
    np.testing.assert_array_equal(out.times, blend(ds, 1.0, seed=3).times)
    one = SpikeDataset([[10.0, 20.0]], [[1, 2]], [0], 5, 50.0, n_classes=1)
    pair = blend(one, 1.0, seed=0, p_keep=1.0)  # a sample blended with itself: every spike twice
    assert pair.batch([1])[0].units[0].tolist() == [1, 1, 2, 2] and pair.labels.tolist() == [0, 0]


def test_jitter_stretch_delay_lines_and_speaker_splits():
    ds = speech_set()
    for out in (jitter_times(ds, 2.0, seed=0), stretch_times(ds, 1.3, seed=0)):
        assert out.times.min() >= 0 and out.times.max() <= ds.duration
        for i in range(len(out)):
            assert np.all(np.diff(out.batch([i])[0].times[0]) >= 0)
    stretched = stretch_times(ds, 1.3, seed=0)
    ratio = stretched.batch([0])[0].times[0][:3] / ds.batch([0])[0].times[0][:3]
    assert np.allclose(ratio, ratio[0]) and 1 / 1.3 <= ratio[0] <= 1.3
    lines = delay_lines(ds, copies=3, spacing=40.0)
    assert lines.n_units == 60 and lines.duration == ds.duration
    t, u = lines.batch([0])[0].times[0], lines.batch([0])[0].units[0]
    t0, u0 = ds.batch([0])[0].times[0], ds.batch([0])[0].units[0]
    for k in range(3):
        copy = (u >= 20 * k) & (u < 20 * (k + 1))
        inside = t0 + 40 * k <= 100.0
        np.testing.assert_allclose(t[copy], t0[inside] + 40 * k)
        np.testing.assert_array_equal(u[copy], u0[inside] + 20 * k)
    rest, held = split_by_speaker(ds, ["a", "c"])
    assert set(held.speakers) == {"a", "c"} and set(rest.speakers) == {"b", "d"} and len(rest) + len(held) == 12
    assert len(choose_speakers(ds, 2, seed=0)) == 2 and choose_speakers(ds, 2, seed=0) == choose_speakers(ds, 2, 0)
    with pytest.raises(SpikeDataError, match=r"speakers \['z'\] are not in the data set"):
        split_by_speaker(ds, ["z"])
    aug = Augment(shift=2, blend=0.5, stretch=1.1, jitter=1.0, delay_copies=2, delay_spacing=10.0)
    a, b = aug(ds, 7), aug(ds, 7)
    assert len(a) == 18 and a.n_units == 40 and np.array_equal(a.times, b.times)


def test_a_shift_of_delay_lines_equals_delay_lines_of_the_shift_and_they_are_built_once():
    """Shifting every copy of delay-lined data (channels=) gives exactly the spikes, in the same order, that
    shifting first and building the delay lines after does; a spike never leaves its copy. Augment takes that
    path when only channels move, so each epoch's result equals the general order of operations, and it
    builds a data set's delay lines once: what would be wrong is an epoch that differs from the slow path,
    or copies rebuilt (and re-sorted) every epoch."""
    ds = speech_set(n=30, seed=4)
    lines = delay_lines(ds, copies=3, spacing=30.0)
    for max_shift, sd in ((4, 0.0), (0, 2.0), (2, 1.5)):
        fast = shift_channels(lines, max_shift, sd, seed=11, channels=ds.n_units)
        slow = delay_lines(shift_channels(ds, max_shift, sd, seed=11), copies=3, spacing=30.0)
        for field in ("times", "units", "offsets", "labels", "speakers"):
            np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field))
        assert fast.n_units == 60
    copy_of = {t: u // 20 for t, u in zip(lines.times.tolist(), lines.units.tolist())}
    moved = shift_channels(lines, 5, seed=1, channels=20)
    assert all(copy_of[t] == u // 20 for t, u in zip(moved.times.tolist(), moved.units.tolist()))
    with pytest.raises(SpikeDataError, match="channels must divide the data set's 60 units"):
        shift_channels(lines, 1, channels=7)
    aug = Augment(shift=3, shift_sd=1.0, delay_copies=3, delay_spacing=30.0)
    seeds = np.random.SeedSequence(9).spawn(4)
    general = delay_lines(shift_channels(ds, 3, 1.0, seed=seeds[1]), copies=3, spacing=30.0)
    epoch = aug(ds, 9)
    np.testing.assert_array_equal(epoch.times, general.times)
    np.testing.assert_array_equal(epoch.units, general.units)
    assert aug.inputs(ds) is aug.inputs(ds) and Augment(delay_copies=3, delay_spacing=30.0).inputs(ds) is aug.inputs(ds)
    assert Augment(delay_copies=2, delay_spacing=30.0).inputs(ds).n_units == 40


def test_the_trainer_augments_per_epoch_and_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    """fit(augment=...) calls the augmentation once per epoch with the epoch's seed (a function of the run's
    seed and the epoch alone), so training 1 epoch, saving, resuming and training 1 more ends with the
    parameters of 2 epochs in one go."""
    from eventgrad.optim import Adam
    from eventgrad.train import Trainer

    ds = speech_set(n=16, n_units=5, seed=1)

    def make():
        rng = np.random.default_rng(0)
        net = eg.Network()
        x = net.add_input("x", 5)
        h = net.add_population("h", 4, eg.neurons.LIF(tau_mem=20.0))
        o = net.add_population("o", 3, eg.neurons.LI(tau_mem=20.0))
        net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=rng.normal(1.0, 0.5, (5, 4)), name="xh")
        net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, 0.5, (4, 3)), name="ho")
        sim = eg.Simulator(net, dt=1.0, duration=100.0, readout=eg.readouts.MeanVar("o"), threads=1)
        return Trainer(sim, Adam(sim.params, lr=0.01, keys=sim.trainable))

    seen = []

    def augment(data, seed):
        seen.append(seed)
        return shift_channels(data, max_shift=1, seed=seed)

    whole = make()
    whole.fit(ds, epochs=2, batch_size=8, seed=5, augment=augment)
    assert len(seen) == 2 and seen[0] != seen[1] and seen == [whole.epoch_seed(1), whole.epoch_seed(2)]
    first = make()
    first.fit(ds, epochs=1, batch_size=8, seed=5, augment=augment)
    first.save(tmp_path / "last.npz")
    second = make()
    second.resume(tmp_path / "last.npz")
    second.fit(ds, epochs=1, batch_size=8, seed=999, augment=augment)
    assert seen[2:] == seen[:2]
    for key in whole.sim.params:
        np.testing.assert_array_equal(second.sim.params[key], whole.sim.params[key])


# ----------------------------------------------------------------------------------------------- FSDD
def test_fsdd_path_errors_name_the_argument_and_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(FSDD_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=f"pass path=... or set the environment variable {FSDD_ENV}"):
        fsdd_path()
    monkeypatch.setenv(FSDD_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=rf"fsdd.npz' \(from \${FSDD_ENV}\)"):
        fsdd_path()


@needs_fsdd
def test_fsdd_both_splits_on_the_real_recordings(tmp_path):
    """Takes 0 and 5 only (120 clips), 8 channels: the dataset's split puts take 0 in the test set and
    take 5 in training, every digit and speaker on both sides; the speaker split holds whole speakers out.
    Written in SHD's layout (fsdd_to_shd), load_shd reads the same spikes, labels and speakers back."""
    train, test = fsdd(FSDD, takes=[0, 5], n_channels=8, duration=600.0)
    files = fsdd_to_shd(tmp_path, FSDD, takes=[0, 5], n_channels=8, duration=600.0)
    for ds, file in zip((train, test), files):
        back = load_shd(file, n_units=8, n_classes=10, duration=600.0)
        np.testing.assert_allclose(back.times, ds.times, rtol=1e-15, atol=1e-12)
        np.testing.assert_array_equal(back.units, ds.units)
        assert back.labels.tolist() == ds.labels.tolist() and back.speakers.tolist() == ds.speakers.tolist()
    assert len(train) == len(test) == 60 and train.n_units == 8 and test.duration == 600.0
    assert sorted(np.bincount(test.labels).tolist()) == [6] * 10 and len(set(test.speakers)) == 6
    assert np.diff(train.offsets).min() > 0 and train.times.max() <= 600.0
    train, test = fsdd(FSDD, split="speakers", test_speakers=["george", "theo"], takes=[0, 5], n_channels=8)
    assert set(test.speakers) == {"george", "theo"} and not {"george", "theo"} & set(train.speakers)
    assert len(test) == 40 and len(train) == 80
    with pytest.raises(SpikeDataError, match=r"test_speakers from \['george', 'jackson'"):
        fsdd(FSDD, split="speakers", test_speakers=["nobody"], takes=[0])


# -------------------------------------------------------------------------------------------- recipes
def test_recipes_are_listed_and_resolve(capsys):
    assert {"shd", "ssc", "fsdd"} <= set(recipes())
    for name in recipes():
        cfg = resolve(read_config(recipe_path(name)))
        assert cfg["model"]["recurrent"] and cfg["simulation"]["readout"] == "exp_mean"
    shd = resolve(read_config(recipe_path("shd")))
    assert shd["data"]["delay_lines"] == {"copies": 10, "spacing": 30.0} and shd["model"]["hidden"] == [256]
    fsdd_cfg = resolve(read_config(recipe_path("fsdd")))
    assert fsdd_cfg["data"]["delay_lines"] == {"copies": 6, "spacing": 50.0} and fsdd_cfg["data"]["name"] == "fsdd"
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fsdd") and "\nshd " in out and "ssc" in out
    assert main(["train", "--recipe", "nosuch"]) == 2
    assert "no recipe 'nosuch'" in capsys.readouterr().err


# not recurrent: the recipes' network without its loop compiles the kernels test_cli.py's runs compile
# already (a recurrent delay would add a kernel build of about a minute to a cold cache)
TINY_SETS = ["model.hidden=[6]", "model.recurrent=false", "training.epochs=1", "training.batch_size=8",
             "simulation.duration=120.0", "simulation.threads=1", "output.progress=false"]


def test_the_shd_recipe_trains_end_to_end_on_a_generated_file(tmp_path, capsys):
    """The SHD recipe (delay lines, shift, blend) with tiny sizes on SHD-layout files,
    holding out a speaker for validation: it trains one epoch and tests."""
    rng = np.random.default_rng(0)
    for name, n in (("train.h5", 24), ("test.h5", 8)):
        times = [np.sort(rng.uniform(0, 0.1, 40)) for _ in range(n)]
        write_shd(tmp_path / name, times, [rng.integers(0, 700, 40) for _ in range(n)], rng.integers(0, 20, n))
        with h5py.File(tmp_path / name, "a") as f:
            f["extra/speaker"][...] = np.arange(n) % 3
    sets = TINY_SETS + [f"data.path={tmp_path / 'train.h5'}", f"data.test_path={tmp_path / 'test.h5'}",
                        "data.validation_speakers=1", "data.delay_lines.copies=2", "data.delay_lines.spacing=30.0"]
    assert main(["train", "--recipe", "shd"] + [a for s in sets for a in ("--set", s)]) == 0
    out = capsys.readouterr().out
    assert "network 1400-6-20" in out and "8 validation" in out and "test accuracy" in out


@needs_fsdd
def test_the_fsdd_recipe_trains_end_to_end(capsys, monkeypatch):
    monkeypatch.setenv(FSDD_ENV, FSDD)
    sets = TINY_SETS + ["data.takes=[0,5]", "data.audio.n_channels=8"]
    assert main(["train", "--recipe", "fsdd"] + [a for s in sets for a in ("--set", s)]) == 0
    out = capsys.readouterr().out
    # 8 channels x the recipe's 6 delay lines
    assert "54 training / 6 validation / 60 test" in out and "network 48-6-10" in out and "test accuracy" in out


def test_recipes_reach_the_engines_learnable_delays():
    """model.input_delay / learn_input_delay give every input synapse its own learnable delay in
    [0, input_delay]; learn_recurrent_delay makes the recurrent delay one learnable value per synapse."""
    from eventgrad.experiment import build_network

    cfg = resolve({"model": {"hidden": [4], "recurrent": True, "recurrent_delay": 1.0, "learn_recurrent_delay": True,
                             "input_delay": 20.0, "learn_input_delay": True}})
    net = build_network(cfg, 7, 3, np.random.default_rng(0))
    xh, hh, ho = (next(c for c in net.connections if c.name == name) for name in ("xh", "hh", "ho"))
    assert np.shape(xh.delay) == (7, 4) and 0 <= np.min(xh.delay) and np.max(xh.delay) <= 20.0 and xh.learn_delay
    assert np.shape(hh.delay) == (4, 4) and np.all(np.asarray(hh.delay) == 1.0) and hh.learn_delay
    assert ho.delay is None and not ho.learn_delay


@pytest.mark.parametrize("override, match", [
    ({"data": {"augment": {"shift": 3}}}, "apply to spike data sets"),
    ({"data": {"name": "fsdd", "augment": {"stretch": 0.5}}}, "stretch must be a number >= 1.0"),
    ({"model": {"learn_input_delay": True}}, "learn_input_delay needs a delay to learn"),
    ({"model": {"recurrent": True, "learn_recurrent_delay": True}}, "set model.recurrent_delay > 0"),
])
def test_speech_configurations_are_checked_before_anything_runs(override, match):
    from eventgrad.config import ConfigError
    from eventgrad.experiment import build_augment, build_network

    cfg = resolve(override)
    with pytest.raises(ConfigError, match=match):
        build_augment(cfg)
        build_network(cfg, 3, 2, np.random.default_rng(0))
