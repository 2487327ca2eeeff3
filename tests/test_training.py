"""Training: schedules, optimiser options, the spike-count regulariser, the trainer loop, checkpoints,
callbacks and state recording. Networks are tiny Yin-Yang ones (LIF hidden, LI output, exponential
synapses: one compiled kernel for the whole file)."""

import io
import json
import math
import os

import numpy as np
import pytest
from fd_networks import inputs

import eventgrad as eg
from eventgrad.data import SpikeDataset, latency_encode, yinyang
from eventgrad.optim import SGD, Adam
from eventgrad.schedules import Constant, Cosine, ExponentialDecay, StepDecay, Warmup, make_schedule
from eventgrad.train import (
    Checkpoint,
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    ProgressBar,
    Recorder,
    SpikeCountRegularizer,
    Trainer,
    TrainingError,
    load_checkpoint,
    save_checkpoint,
)


def yinyang_data(n, seed, duration=30.0):
    X, y = yinyang(n, seed=seed)
    return SpikeDataset.from_batch(latency_encode(X, t_max=15.0, bias_time=0.0), y, n_units=5, duration=duration,
                                   n_classes=3)


def yinyang_sim(hidden=12, seed=0, dtype="float32", readout=None, duration=30.0):
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", 5)
    h = net.add_population("h", hidden, eg.neurons.LIF(tau_mem=20.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=20.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=rng.normal(2.0, 1.5, (5, hidden)), name="xh")
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0, 1.0, (hidden, 3)), name="ho")
    return eg.Simulator(net, dt=1.0, duration=duration, dtype=dtype, readout=readout or eg.readouts.MeanVar("o"))


# ------------------------------------------------------------------------------------------ schedules
def test_schedules_follow_their_formulas():
    """Each schedule's factor at a few progress points, as its docstring states."""
    assert Constant()(7.3) == 1.0
    assert StepDecay(every=2, gamma=0.5)(1.99) == 1.0 and StepDecay(every=2, gamma=0.5)(2.0) == 0.5
    assert ExponentialDecay(0.9)(2.5) == pytest.approx(0.9**2.5)
    assert Cosine(epochs=10, floor=0.1)(0) == 1.0 and Cosine(epochs=10, floor=0.1)(10) == pytest.approx(0.1)
    assert Cosine(epochs=10)(5) == pytest.approx(0.5)
    w = Warmup(1.0, then=ExponentialDecay(0.5))
    assert w(0.0) == 0.0 and w(0.5) == 0.5 and w(1.0) == 1.0 and w(2.0) == pytest.approx(0.5)
    assert make_schedule({"kind": "cosine", "epochs": 4, "warmup": 1})(3.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown schedule kind 'linear'"):
        make_schedule({"kind": "linear"})
    with pytest.raises(ValueError, match="schedule 'step'"):
        make_schedule({"kind": "step", "gamma": 0.5})  # 'every' is missing
    with pytest.raises(ValueError, match="gamma must be positive"):
        ExponentialDecay(-1.0)


# ---------------------------------------------------------------------------------- optimiser options
def test_clipping_rates_and_bounds():
    """clip_norm rescales all gradients together; lr_scale applies per pattern; bounds clip the result."""
    params = {"a.weight": np.zeros(2), "h.tau_mem": np.array(5.0)}
    opt = SGD(params, lr=1.0, clip_norm=1.0, lr_scale={"h.tau_*": 0.1}, bounds={"h.tau_mem": (4.95, None)})
    norm = opt.step({"a.weight": np.array([3.0, 0.0]), "h.tau_mem": np.array(4.0)})
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(params["a.weight"], [-0.6, 0.0])  # 3 * (1/5)
    assert params["h.tau_mem"] == pytest.approx(4.95)  # 5 - 0.1 * 0.8 = 4.92, clipped at 4.95
    with pytest.raises(KeyError, match="lr_scale pattern 'o.*' matches no parameter"):
        SGD(params, lr=1.0, lr_scale={"o.*": 2.0})
    with pytest.raises(ValueError, match="low 2 is above high 1"):
        SGD(params, lr=1.0, bounds={"a.weight": (2, 1)})


def test_optimizer_state_round_trip_continues_identically(tmp_path):
    """Resuming Adam from a checkpoint gives the same parameters as never stopping."""
    rng = np.random.default_rng(0)
    grads = [{"w": rng.normal(size=3)} for _ in range(6)]
    ref = {"w": np.zeros(3)}
    opt = Adam(ref, lr=0.1)
    for g in grads:
        opt.step(g)
    part = {"w": np.zeros(3)}
    opt1 = Adam(part, lr=0.1)
    for g in grads[:3]:
        opt1.step(g)
    save_checkpoint(tmp_path / "c.npz", part, opt1, meta={"epoch": 3})
    resumed = {"w": np.full(3, 99.0)}
    opt2 = Adam(resumed, lr=0.5)
    info = load_checkpoint(tmp_path / "c.npz", resumed, opt2)
    assert info["meta"] == {"epoch": 3} and opt2.t == 3 and opt2.lr == 0.1
    for g in grads[3:]:
        opt2.step(g)
    np.testing.assert_array_equal(resumed["w"], ref["w"])


def test_checkpoint_is_atomic_and_checks_shapes(tmp_path, monkeypatch):
    """A write that fails midway leaves the previous checkpoint intact and no temporary file behind."""
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": np.ones(2)})

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": np.zeros(2)})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    np.testing.assert_array_equal(load_checkpoint(path)["params"]["w"], np.ones(2))
    with pytest.raises(ValueError, match="'w' has shape"):
        load_checkpoint(path, {"w": np.zeros(3)})
    with pytest.raises(ValueError, match="missing \\['v'\\]"):
        load_checkpoint(path, {"w": np.zeros(2), "v": np.zeros(1)})
    with pytest.raises(ValueError, match="holds no SGD state"):
        load_checkpoint(path, {"w": np.zeros(2)}, SGD({"w": np.zeros(2)}, lr=1.0))


# ---------------------------------------------------------------------------------------- regulariser
def test_penalty_and_its_count_derivative():
    """P = lu/2 (N - nu)^2 above nu_upper, ll/2 (nl - N)^2 below nu_lower, mean over the batch."""
    reg = SpikeCountRegularizer(("h",), nu_upper=3, lambda_upper=2.0, nu_lower=1, lambda_lower=4.0)
    counts = {"h": np.array([[0, 2, 5], [1, 4, 3]])}
    value, grad = reg.penalty(counts)
    assert value == pytest.approx((0.5 * 4.0 * 1 + 0.5 * 2.0 * 4 + 0.5 * 2.0 * 1) / 2)
    np.testing.assert_allclose(grad["h"], np.array([[-4.0, 0.0, 4.0], [0.0, 2.0, 0.0]]) / 2)
    with pytest.raises(ValueError, match="nu_upper \\(1\\) must not be below nu_lower \\(2\\)"):
        SpikeCountRegularizer("h", nu_upper=1, nu_lower=2)


class SpikeTimeLoss:
    """l = mean_b sum_j c_bj sum_k t_k over the spikes of population 'h': a loss linear in spike times."""

    def __init__(self, coef):
        self.coef = coef

    def spike_terms(self, result, duration):
        B = len(result.records)
        value = sum(float(np.sum(self.coef[b, result.spike_times("h", b)[1]] * result.spike_times("h", b)[0]))
                    for b in range(B))
        return value / B, {"h": self.coef / B}


@pytest.mark.parametrize("kernels", ["auto", "generic"])
def test_spike_time_losses_have_exact_gradients(kernels):
    """The per-spike dL/dt_k the regulariser uses enters the adjoint jumps exactly (finite differences)."""
    rng = np.random.default_rng(3)
    net = eg.Network()
    x = net.add_input("x", 4)
    h = net.add_population("h", 6, eg.neurons.LIF(tau_mem=10.0, trainable=("tau_mem", "v_thresh")))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.5, 1.5, (4, 6)), name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0, 0.3, (6, 6)), name="hh")
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0, 1.0, (6, 3)), name="ho")
    sim = eg.Simulator(net, dt=1.0, duration=40.0, dtype="float64", readout=eg.readouts.MeanVar("o"),
                       kernels=kernels)
    batch, labels = inputs(3)
    assert sim.run(batch).spike_counts("h").sum() > 10
    reg = SpikeTimeLoss(rng.normal(0, 1.0, (2, 6)))
    report = eg.check_gradients(sim, batch, labels, regularizer=reg, max_entries=6)
    assert report.worst < 1e-5, str(report)
    without = eg.check_gradients(sim, batch, labels, max_entries=6)
    assert abs(report.loss - without.loss) > 1e-3, "the spike-time term should change the loss"


def test_regulariser_moves_spike_counts_towards_the_target():
    """Training only the regulariser (lambda on a loss of 0) lowers the counts of over-active neurons."""
    sim = yinyang_sim(hidden=12, seed=1)
    sim.params["xh.weight"][...] = np.abs(sim.params["xh.weight"]) + 2.0  # many spikes
    data = yinyang_data(32, seed=42)
    batch, labels = data.batch(np.arange(32))
    before = sim.run(batch).spike_counts("h").mean()
    reg = SpikeCountRegularizer(("h",), nu_upper=1.0, lambda_upper=1.0)
    opt = Adam(sim.params, lr=0.05, keys=["xh.weight"])
    for _ in range(15):
        _, grads = sim.loss_and_grad(batch, labels, regularizer=reg)
        task = sim.loss_and_grad(batch, labels)[1]  # remove the task gradient: only the penalty acts
        opt.step({"xh.weight": grads["xh.weight"] - task["xh.weight"]})
    after = sim.run(batch).spike_counts("h").mean()
    assert after < 0.8 * before, (before, after)


def test_silent_push_wakes_silent_neurons():
    """A hidden neuron that never spikes gets no EventProp gradient; the push raises its input weights."""
    sim = yinyang_sim(hidden=12, seed=2)
    sim.params["xh.weight"][:, :4] = -0.3  # neurons 0..3 silent
    data = yinyang_data(64, seed=42)
    reg = SpikeCountRegularizer(("h",), silent_push=1.0)
    trainer = Trainer(sim, Adam(sim.params, lr=0.1, keys=sim.trainable), regularizer=reg)
    _, grads = sim.loss_and_grad(*data.batch(np.arange(8)))
    assert np.all(grads["xh.weight"][:, :4] == 0.0), "silent neurons should get no exact gradient"
    history = trainer.fit(data, epochs=4, batch_size=8, restore_best=False)
    assert history[0]["silent"] >= 4
    assert history[-1]["silent"] == 0, history


# --------------------------------------------------------------------------------------------- trainer
def test_trainer_learns_and_is_reproducible():
    """Same seed, same history and parameters; validation picks and restores the best epoch."""
    train, val = yinyang_data(96, seed=42), yinyang_data(64, seed=41)

    def fit():
        sim = yinyang_sim(hidden=16, seed=0)
        trainer = Trainer(sim, Adam(sim.params, lr=0.02, keys=sim.trainable), schedule=ExponentialDecay(0.9))
        history = trainer.fit(train, epochs=4, batch_size=20, validation=val, seed=5)
        return sim, trainer, history

    sim, trainer, history = fit()
    sim2, _, history2 = fit()
    assert [h["loss"] for h in history] == [h["loss"] for h in history2]
    for key in sim.params:
        np.testing.assert_array_equal(sim.params[key], sim2.params[key])
    assert history[-1]["loss"] < history[0]["loss"]
    assert set(history[0]) >= {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "silent", "time"}
    assert history[0]["lr"] == pytest.approx(0.02 * 0.9 ** (4 / 5))  # the lr of the last step of epoch 1
    best = max(history, key=lambda h: h["val_accuracy"])
    assert trainer.best["epoch"] == best["epoch"]
    assert trainer.evaluate(val)["accuracy"] == pytest.approx(best["val_accuracy"])


def test_every_sample_is_used_once_per_epoch_with_current_weights():
    """The last, smaller batch is kept; each batch's gradient is applied before the next is computed."""
    sim = yinyang_sim(hidden=8)
    seen, weights_at_call = [], []
    original = sim.loss_and_grad

    def spy(batch, labels, regularizer=None):
        seen.append(len(labels))
        weights_at_call.append(sim.params["ho.weight"].copy())
        return original(batch, labels, regularizer=regularizer)

    sim.loss_and_grad = spy
    Trainer(sim, SGD(sim.params, lr=0.1, keys=sim.trainable)).fit(yinyang_data(45, seed=42), epochs=1,
                                                                  batch_size=20)
    assert seen == [20, 20, 5]
    assert not np.array_equal(weights_at_call[1], weights_at_call[2])


def test_a_run_split_in_two_equals_one_run(tmp_path):
    """Resuming from the Checkpoint callback's last.npz continues the shuffling, the optimiser, the epoch
    count (hence the schedule), the history and the best-validation parameters exactly."""
    train, val = yinyang_data(60, seed=42), yinyang_data(30, seed=41)

    def trainer_for(callbacks=()):
        sim = yinyang_sim(hidden=10, seed=3)
        opt = Adam(sim.params, lr=0.02, keys=sim.trainable)
        return Trainer(sim, opt, schedule=StepDecay(every=1, gamma=0.5), callbacks=callbacks)

    whole = trainer_for()
    whole.fit(train, epochs=4, batch_size=16, validation=val, seed=7, restore_best=False)
    first = trainer_for([Checkpoint(tmp_path)])
    first.fit(train, epochs=2, batch_size=16, validation=val, seed=7, restore_best=False)
    second = trainer_for([CSVLogger(tmp_path / "log.csv")])
    meta = second.resume(tmp_path / "last.npz")
    assert meta["epoch"] == 2 and second.epoch == 2
    history = second.fit(train, epochs=2, batch_size=16, validation=val, seed=999, restore_best=False)
    drop_time = [{k: v for k, v in h.items() if k != "time"} for h in history]
    assert drop_time == [{k: v for k, v in h.items() if k != "time"} for h in whole.history]
    for key in whole.sim.params:
        np.testing.assert_array_equal(second.sim.params[key], whole.sim.params[key])
        np.testing.assert_array_equal(second.best["params"][key], whole.best["params"][key])
    assert second.best["epoch"] == whole.best["epoch"] and second.optimizer.t == whole.optimizer.t
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 5  # the header and all four epochs
    with pytest.raises(TrainingError, match="no trainer state"):
        trainer_for().resume(tmp_path / "best.npz")


def test_trainer_refuses_bad_data_before_training():
    sim = yinyang_sim(hidden=8)
    trainer = Trainer(sim, Adam(sim.params, lr=0.01, keys=sim.trainable))
    X, _ = yinyang(10, seed=1)
    wrong_units = SpikeDataset.from_batch(latency_encode(X, t_max=15.0), np.zeros(10, int), n_units=4, duration=30.0)
    with pytest.raises(TrainingError, match="4 input units; input 'x' has 5"):
        trainer.fit(wrong_units, epochs=1)
    too_many = SpikeDataset.from_batch(latency_encode(X, t_max=15.0, bias_time=0.0), np.full(10, 7), n_units=5,
                                       duration=30.0)
    with pytest.raises(TrainingError, match="labels must be integers in \\[0, 3\\)"):
        trainer.fit(too_many, epochs=1)
    too_long = SpikeDataset.from_batch(latency_encode(X, t_max=15.0, bias_time=0.0), np.zeros(10, int), n_units=5,
                                       duration=50.0)
    with pytest.raises(TrainingError, match="run to 50.0 ms; the simulation lasts 30.0 ms"):
        trainer.fit(too_long, epochs=1)
    with pytest.raises(TrainingError, match="epochs and batch_size must be positive"):
        trainer.fit(yinyang_data(10, seed=1), epochs=0)
    with pytest.raises(TrainingError, match="built on sim.params"):
        Trainer(sim, Adam({"w": np.zeros(1)}, lr=0.1))


def test_callbacks_log_stop_and_record(tmp_path):
    """CSV and JSON-lines logs hold every epoch; early stopping ends the run; the recorder keeps traces."""
    sim = yinyang_sim(hidden=8)
    data = yinyang_data(40, seed=42)
    stop = EarlyStopping("val_accuracy", patience=1, min_delta=2.0)  # nothing improves by 2: stop at epoch 2
    recorder = Recorder(data, populations=("h",), variables={"o": ["v"]}, samples=[0, 1], every=1)
    bar = ProgressBar(total_epochs=5, stream=io.StringIO())
    bars = []  # (total, count) of the epoch's bar at each batch
    update = bar.on_batch_end
    bar.on_batch_end = lambda trainer, i, logs: (update(trainer, i, logs), bars.append((bar._bar.total, bar._bar.n)))
    callbacks = [CSVLogger(tmp_path / "log.csv"), JSONLogger(tmp_path / "log.jsonl"), stop, recorder, bar]
    trainer = Trainer(sim, Adam(sim.params, lr=0.01, keys=sim.trainable), callbacks=callbacks)
    history = trainer.fit(data, epochs=5, batch_size=20, validation=data)
    assert len(history) == 2
    assert bars == [(2, 1), (2, 2)] * 2, "the bar's total is the epoch's batch count (40 samples / 20)"
    shown = bar.stream.getvalue()
    assert "epoch 1/5: " in shown and "0/2 [00:00<?, ?batch/s]" in shown and "epoch 2/5  loss " in shown
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,loss,accuracy,val_loss,val_accuracy")
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    rec = recorder.records[-1]
    assert rec["traces"]["o.v"].shape == (2, 30, 3) and len(rec["spikes"]["h"]) == 2


def test_recorded_traces_are_the_readout_samples():
    """record() gives v(t_n) at n = 0..N-1; a SumVar readout over N steps sums v(t_1..t_N)."""
    data = yinyang_data(3, seed=42)
    batch, _ = data.batch(np.arange(3))
    short = yinyang_sim(hidden=10, seed=4, dtype="float64", readout=eg.readouts.SumVar("o"), duration=29.0)
    longer = yinyang_sim(hidden=10, seed=4, dtype="float64", duration=30.0)
    traces = longer.record(batch, {"o": "v", "h": ["v", "xh.i"]})
    np.testing.assert_allclose(traces["o.v"][:, 1:, :].sum(axis=1), short.run(batch).readout, rtol=1e-9, atol=1e-9)
    assert np.all(traces["o.v"][:, 0] == 0.0)
    assert traces["h.v"].max() <= 1.0 + 1e-9, "recorded at grid times, v stays at or below threshold"
    with pytest.raises(eg.NetworkError, match="'w' is not a variable of 'o'"):
        longer.record(batch, {"o": ["w"]})


def test_state_trace_follows_the_exact_trajectory_through_its_spikes():
    """The plots' traces: between grid points they follow the closed form of a silent LIF neuron's voltage
    (a sum of exponential-synapse kernels); each spike adds the crossing (v = threshold) and the reset
    (v = v_reset) at the spike time the simulator reports; on the dt grid they are record()'s values."""
    from eventgrad.engine.trajectory import state_trace

    batch, _ = yinyang_data(1, seed=42).batch([0])
    sim = yinyang_sim(hidden=10, seed=4, dtype="float64")
    sim.params["xh.weight"][:, :4] *= 0.05  # neurons 0-3 stay silent
    trace = state_trace(sim, batch, "h", per_step=8)
    assert trace.name == "h.v" and trace.threshold == 1.0 and trace.times[1] == 1.0 / 8
    tau_m, tau_s, w = 20.0, 5.0, sim.params["xh.weight"][:, :4]
    lag = trace.times[:, None] - batch.times[0][None, :]  # (T, inputs)
    kernel = np.where(lag > 0, tau_s / (tau_m - tau_s) * (np.exp(-lag / tau_m) - np.exp(-lag / tau_s)), 0.0)
    np.testing.assert_allclose(trace.values[:, :4], kernel @ w[batch.units[0]], atol=1e-9)
    assert len(trace.spike_times) > 3 and not np.isin(trace.spike_units, [0, 1, 2, 3]).any()
    np.testing.assert_allclose(trace.before, 1.0, atol=1e-9)
    np.testing.assert_array_equal(trace.after, 0.0)
    times, units = sim.run(batch).spike_times("h", 0)
    np.testing.assert_allclose(trace.spike_times, times, atol=1e-9)
    np.testing.assert_array_equal(trace.spike_units, units)
    np.testing.assert_allclose(trace.values[::8], sim.record(batch, {"h": "v"})["h.v"][0], atol=1e-12)
    assert state_trace(sim, batch, "o").threshold is None  # LI: no threshold
    with pytest.raises(ValueError, match="per_step must be a positive integer"):
        state_trace(sim, batch, "h", per_step=0)


def test_spike_count_readout_counts_and_eventprop_refuses_to_train_on_it():
    sim = yinyang_sim(hidden=8, readout=eg.readouts.SpikeCount("h"))
    batch, labels = yinyang_data(4, seed=42).batch(np.arange(4))
    res = sim.run(batch)
    np.testing.assert_array_equal(res.readout, res.spike_counts("h"))
    with pytest.raises(eg.NetworkError, match="EventProp cannot differentiate a spike count.*method='bptt'"):
        sim.loss_and_grad(batch, labels)
    assert math.isfinite(sim.loss(batch, np.zeros(4, int)))


def test_the_last_batchs_result_is_released_before_the_next_batch_runs():
    """A training step keeps its forward result (``last_result``: spike counts for the caller) until the next
    step, but not through it: two batches' spike logs at once would double the memory that grows with the
    trial's length."""
    import gc
    import weakref

    sim = yinyang_sim()
    data = yinyang_data(8, seed=1)
    batch, labels = data.batch(np.arange(8))
    sim.loss_and_grad(batch, labels)
    previous = weakref.ref(sim.last_result)
    alive_during_next = []
    run = sim.run

    def watching_run(b):
        gc.collect()
        alive_during_next.append(previous() is not None)
        return run(b)

    sim.run = watching_run
    sim.loss_and_grad(batch, labels)
    assert alive_during_next == [False] and sim.last_result is not None


@pytest.mark.parametrize("kernels", ["fast", "step", "generic"])
def test_each_samples_freed_work_is_handed_back_to_the_system_after_each_pass(monkeypatch, kernels):
    """glibc keeps what a sample's work arrays used in its worker thread's heap; the simulator calls
    malloc_trim after each large sample's forward and backward pass, so that a batch of long trials does
    not hold its largest samples' work several times over (docs/benchmarks.md, memory at 10 s); small
    samples skip it (a call costs about a millisecond)."""
    import platform

    from eventgrad.engine import simulator as simulator_module

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert simulator_module._MALLOC_TRIM is not None  # found where it exists
    calls = []
    monkeypatch.setattr(simulator_module, "_MALLOC_TRIM", lambda pad: calls.append(pad) or 1)
    rng = np.random.default_rng(3)
    net = eg.Network()
    x = net.add_input("x", 5)
    h = net.add_population("h", 8, eg.neurons.LIF(tau_mem=20.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=20.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=rng.normal(2.0, 1.5, (5, 8)), name="xh")
    if kernels == "step":  # a delayed loop: the step-parallel kernels
        net.connect(h, h, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0, 0.3, (8, 8)), name="hh", delay=1.0)
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0, 1.0, (8, 3)), name="ho")
    sim = eg.Simulator(net, dt=1.0, duration=30.0, readout=eg.readouts.MeanVar("o"),
                       kernels="generic" if kernels == "generic" else "auto")
    data = yinyang_data(6, seed=2)
    batch, labels = data.batch(np.arange(6))
    sim.loss_and_grad(batch, labels)
    assert sim.kernels_used == kernels
    assert calls == []  # 30 ms samples: far below the threshold
    monkeypatch.setattr(simulator_module, "TRIM_ABOVE_EVENTS", 1)  # every sample counts as large
    sim.run(batch)
    assert calls == [0] * 6  # once per sample's forward pass
    calls.clear()
    sim.loss_and_grad(batch, labels)
    assert calls == [0] * 12  # and once per sample's backward pass
