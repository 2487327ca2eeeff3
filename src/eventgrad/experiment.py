"""From a resolved configuration (``eventgrad.config``) to data, network, simulator and trainer, and a run.

Everything random follows the configuration's seed: weights from one generator, shuffling from
another, both derived from it; the data sets have their own reference seeds (Yin-Yang) or none (files).
"""

from __future__ import annotations

import json
import os
import shlex
import time

import numpy as np

import eventgrad as eg
from eventgrad import neurons, readouts, synapses
from eventgrad.config import ConfigError
from eventgrad.data.augment import Augment, choose_speakers, split_by_speaker
from eventgrad.data.dataset import SpikeDataset
from eventgrad.data.encoders import latency_encode, threshold_latency_encode
from eventgrad.data.spikes import SpikeDataError
from eventgrad.data.yinyang import yinyang
from eventgrad.engine.simulator import EXCURSIONS, KERNELS
from eventgrad.optim import SGD, Adam
from eventgrad.schedules import make_schedule
from eventgrad.train import (
    Checkpoint,
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    ProgressBar,
    SpikeCountRegularizer,
    Trainer,
)

READOUTS = {"mean": readouts.MeanVar, "sum": readouts.SumVar, "exp_mean": readouts.ExpWeightedMeanVar,
            "max": readouts.MaxVar, "first_spike": readouts.FirstSpikeTime, "spike_count": readouts.SpikeCount}


# -------------------------------------------------------------------------------------------------- data
def _encode(cfg: dict, X: np.ndarray):
    enc = cfg["encoding"]
    bias = enc["bias_time"] if enc["bias_time"] >= 0 else None
    n_units = X.shape[1] + (bias is not None)
    if enc["kind"] == "latency":
        return latency_encode(X, t_min=enc["t_min"], t_max=enc["t_max"], bias_time=bias), n_units
    if enc["kind"] == "threshold_latency":
        return threshold_latency_encode(X, t_max=enc["t_max"], bias_time=bias), n_units
    raise ConfigError(f"unknown encoding.kind '{enc['kind']}' for data '{cfg['data']['name']}'; "
                      "known: latency, threshold_latency")


def _dataset(cfg: dict, X, y, n_classes: int) -> SpikeDataset:
    batch, n_units = _encode(cfg, X)
    return SpikeDataset.from_batch(batch, y, n_units=n_units, duration=cfg["simulation"]["duration"],
                                   n_classes=n_classes)


def build_data(cfg: dict) -> tuple[SpikeDataset, SpikeDataset, SpikeDataset]:
    """(train, validation, test) datasets."""
    data = cfg["data"]
    name = data["name"]
    if name == "yinyang":
        parts = [yinyang(data[f"{part}_size"], seed=seed) for part, seed in
                 (("train", 42), ("validation", 41), ("test", 40))]
        return tuple(_dataset(cfg, X, y, 3) for X, y in parts)
    if name in ("shd", "ssc"):
        return _spike_files(cfg)
    if name == "fsdd":
        return _fsdd(cfg)
    if name == "mnist":
        from eventgrad.data.mnist import load_mnist
        limit = data["max_samples"] or None
        X, y = load_mnist("train", max_samples=limit)
        Xt, yt = load_mnist("test", max_samples=limit)
        train = _dataset(cfg, X.reshape(len(X), -1), y, 10)
        val, train = train.split(data["validation_split"], seed=cfg["seed"])  # (fraction, rest)
        return train, val, _dataset(cfg, Xt.reshape(len(Xt), -1), yt, 10)
    raise ConfigError(f"unknown data.name '{name}'; known: yinyang, shd, ssc, fsdd, mnist")


def _validation(cfg: dict, train: SpikeDataset) -> tuple[SpikeDataset, SpikeDataset]:
    """(train, validation): whole speakers held out (data.validation_speakers) or a stratified fraction."""
    data = cfg["data"]
    if data["validation_speakers"]:
        held = choose_speakers(train, data["validation_speakers"], seed=cfg["seed"])
        return split_by_speaker(train, held)
    val, train = train.split(data["validation_split"], seed=cfg["seed"])  # (fraction, rest)
    return train, val


def _spike_files(cfg: dict) -> tuple[SpikeDataset, SpikeDataset, SpikeDataset]:
    """SHD (20 classes) or SSC (35) from their HDF5 files; delay lines on validation and test (see build_augment)."""
    from eventgrad.data.shd import SHD_CLASSES, SSC_CLASSES, load_shd

    data = cfg["data"]
    if not data["path"] or not data["test_path"]:
        raise ConfigError(f"data '{data['name']}' needs data.path and data.test_path (the HDF5 files)")
    n_classes = SHD_CLASSES if data["name"] == "shd" else SSC_CLASSES
    limit, duration = data["max_samples"] or None, cfg["simulation"]["duration"]

    def load(key):
        return load_shd(data[key], max_samples=limit, duration=duration, n_classes=n_classes)

    train, test = load("path"), load("test_path")
    train, val = (train, load("validation_path")) if data["validation_path"] else _validation(cfg, train)
    inputs = build_augment(cfg).inputs
    return train, inputs(val), inputs(test)


def _fsdd(cfg: dict) -> tuple[SpikeDataset, SpikeDataset, SpikeDataset]:
    """FSDD through the audio front end, in its own split or holding out test_speakers."""
    from eventgrad.data.spoken_digits import fsdd

    data, audio = cfg["data"], dict(cfg["data"]["audio"])
    audio["f_max"] = audio["f_max"] or None
    try:
        train, test = fsdd(data["path"] or None, split=data["split"], test_speakers=data["test_speakers"],
                           takes=data["takes"] or None, duration=cfg["simulation"]["duration"],
                           progress=cfg["output"]["progress"], **audio)
    except FileNotFoundError as err:
        raise ConfigError(str(err)) from err
    train, val = _validation(cfg, train)
    inputs = build_augment(cfg).inputs
    return train, inputs(val), inputs(test)


def build_augment(cfg: dict) -> Augment:
    """The training set's per-epoch augmentation and the delay lines of every set (data.augment, data.delay_lines)."""
    a, d = cfg["data"]["augment"], cfg["data"]["delay_lines"]
    try:
        augment = Augment(shift=a["shift"], shift_sd=a["shift_sd"], blend=a["blend"], stretch=a["stretch"],
                          jitter=a["jitter"], delay_copies=d["copies"], delay_spacing=d["spacing"])
    except SpikeDataError as err:
        raise ConfigError(f"data.augment / data.delay_lines: {err}") from err
    if augment != Augment() and cfg["data"]["name"] not in ("shd", "ssc", "fsdd"):
        raise ConfigError(f"data.augment and data.delay_lines apply to spike data sets (shd, ssc, fsdd), not to "
                          f"'{cfg['data']['name']}'")
    return augment


# ----------------------------------------------------------------------------------------------- network
def _model(spec, params: dict, trainable, library, cls, what: str):
    if isinstance(spec, dict):
        try:
            return cls(**spec)
        except TypeError as err:
            raise ConfigError(f"model.{what}: {err}") from err
    factory = getattr(library, spec, None)
    if factory is None or spec.startswith("_"):
        raise ConfigError(f"model.{what} '{spec}' is not a built-in; see eventgrad.{library.__name__.split('.')[-1]}")
    try:
        return factory(**params, **({"trainable": tuple(trainable)} if trainable else {}))
    except TypeError as err:
        raise ConfigError(f"model.{what} '{spec}': {err}") from err


def build_network(cfg: dict, n_inputs: int, n_outputs: int, rng: np.random.Generator) -> eg.Network:
    """Input -> hidden layers (optionally recurrent) -> output, one synapse type throughout."""
    m = cfg["model"]
    net = eg.Network()
    pre = net.add_input("x", n_inputs)
    for i, size in enumerate(m["hidden"]):
        if not (isinstance(size, int) and size > 0):
            raise ConfigError(f"model.hidden must list positive layer sizes, got {m['hidden']}")
        name = "h" if len(m["hidden"]) == 1 else f"h{i + 1}"
        layer = net.add_population(name, size, _model(m["neuron"], m["neuron_params"], m["trainable"], neurons,
                                                      eg.UserNeuron, "neuron"))
        mean, std = m["input_weight"] if i == 0 else m["hidden_weight"]
        std = std if i == 0 else std / np.sqrt(pre.size)
        weight = rng.normal(mean, std, (pre.size, size))
        for key, delay in (("learn_input_delay", "input_delay"), ("learn_recurrent_delay", "recurrent_delay")):
            if m[key] and not m[delay] > 0:
                raise ConfigError(f"model.{key} needs a delay to learn: set model.{delay} > 0 ms")
        if i == 0 and m["input_delay"]:
            net.connect(pre, layer, _synapse(m), weight=weight, name=f"{pre.name}{name}",
                        delay=rng.uniform(0.0, m["input_delay"], (pre.size, size)), learn_delay=m["learn_input_delay"])
        else:
            net.connect(pre, layer, _synapse(m), weight=weight, name=f"{pre.name}{name}")
        if m["recurrent"]:
            mean, std = m["recurrent_weight"]
            delay = m["recurrent_delay"] or None
            if delay is not None and m["learn_recurrent_delay"]:
                delay = np.full((size, size), delay)
            net.connect(layer, layer, _synapse(m), weight=rng.normal(mean, std / np.sqrt(size), (size, size)),
                        name=f"{name}{name}", delay=delay, learn_delay=m["learn_recurrent_delay"] and delay is not None)
        pre = layer
    output = _model(m["output_neuron"], m["output_params"], m["output_trainable"], neurons, eg.UserNeuron,
                    "output_neuron")
    out = net.add_population("o", n_outputs, output)
    mean, std = m["output_weight"]
    net.connect(pre, out, _synapse(m), weight=rng.normal(mean, std / np.sqrt(pre.size), (pre.size, n_outputs)),
                name=f"{pre.name}o")
    return net


def _synapse(m: dict):
    return _model(m["synapse"], m["synapse_params"], (), synapses, eg.UserSynapse, "synapse")


def build_simulator(cfg: dict, net: eg.Network):
    s = cfg["simulation"]
    if s["readout"] not in READOUTS:
        raise ConfigError(f"unknown simulation.readout '{s['readout']}'; known: {sorted(READOUTS)}")
    readout = (READOUTS["first_spike"]("o", tau0=s["tau0"]) if s["readout"] == "first_spike"
               else READOUTS[s["readout"]]("o"))
    for key, known in (("kernels", KERNELS), ("excursions", EXCURSIONS)):
        if s[key] not in known:
            raise ConfigError(f"unknown simulation.{key} '{s[key]}'; known: {list(known)}")
    if s["max_events"] < 1:
        raise ConfigError(f"simulation.max_events must be a positive integer, got {s['max_events']}")
    if s["method"] == "bptt":
        extra = {"method": "bptt", "surrogate": s["surrogate"]}
    else:
        extra = {"kernels": s["kernels"], "excursions": s["excursions"], "max_events": s["max_events"],
                 "max_spikes_per_step": s["max_spikes_per_step"] or None}
    return eg.Simulator(net, dt=s["dt"], duration=s["duration"], dtype=s["dtype"], readout=readout,
                        loss=eg.losses.SoftmaxCrossEntropy(), threads=s["threads"] or None, **extra)


def build_trainer(cfg: dict, sim, callbacks=()) -> Trainer:
    t = cfg["training"]
    options = {"lr_scale": t["lr_scale"] or None, "bounds": {k: tuple(v) for k, v in t["bounds"].items()} or None,
               "clip_norm": t["clip_norm"] or None}
    if t["optimizer"] == "adam":
        opt = Adam(sim.params, lr=t["lr"], keys=sim.trainable, **options)
    elif t["optimizer"] == "sgd":
        opt = SGD(sim.params, lr=t["lr"], momentum=t["momentum"], keys=sim.trainable, **options)
    else:
        raise ConfigError(f"unknown training.optimizer '{t['optimizer']}'; known: adam, sgd")
    r = cfg["regularizer"]
    hidden = [g.name for g in sim.network.groups if not g.is_input and g.name != "o"]
    reg = None
    if hidden and (r["lambda_upper"] or r["lambda_lower"] or r["silent_push"]):
        reg = SpikeCountRegularizer(tuple(hidden), **r)
    schedule = dict(t["schedule"])
    if schedule.get("kind") == "cosine":
        schedule.setdefault("epochs", t["epochs"])
    _check_workers(cfg)
    return Trainer(sim, opt, schedule=make_schedule(schedule), regularizer=reg, callbacks=callbacks,
                   workers=t["workers"], ray_address=t["ray_address"] or None)


# ------------------------------------------------------------------------------------------------- a run
def _check_workers(cfg: dict) -> None:
    workers = cfg["training"]["workers"]
    if workers < 1:
        raise ConfigError(f"training.workers must be a positive integer (1: one process), got {workers}")
    if workers > 1:
        from eventgrad.train.distributed import import_ray

        import_ray()


def run(cfg: dict, out=print, resume: bool = False) -> dict:
    """Train and test as ``cfg`` says; returns {"test_accuracy", "test_loss", "history", "seconds"}.

    ``resume``: continue the run whose ``last.npz`` is in ``cfg["output"]["dir"]`` up to
    ``training.epochs`` epochs in all, with the numbers an uninterrupted run would have given."""
    start = time.perf_counter()
    _check_workers(cfg)  # before the data and the kernels, which take a while
    rng = np.random.default_rng(cfg["seed"])
    train, val, test = build_data(cfg)
    augment = build_augment(cfg)
    sim = build_simulator(cfg, build_network(cfg, augment.n_units(train.n_units), train.n_classes, rng))
    folder = cfg["output"]["dir"]
    callbacks = [ProgressBar(cfg["training"]["epochs"], bar=cfg["output"]["progress"])]
    if cfg["training"]["early_stopping"]:
        callbacks.append(EarlyStopping("val_accuracy", patience=cfg["training"]["early_stopping"]))
    if folder:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        callbacks += [CSVLogger(os.path.join(folder, "log.csv")), JSONLogger(os.path.join(folder, "log.jsonl")),
                      Checkpoint(folder, meta={"config": cfg})]
    trainer = build_trainer(cfg, sim, callbacks)
    epochs = cfg["training"]["epochs"]
    if resume:
        last = os.path.join(folder, "last.npz") if folder else ""
        if not os.path.isfile(last):
            raise ConfigError(f"nothing to resume: '{folder}' holds no last.npz (train with --out first)")
        trainer.resume(last)
        epochs -= trainer.epoch
        if epochs < 1:
            raise ConfigError(f"the run in '{folder}' has done {trainer.epoch} of its {cfg['training']['epochs']} "
                              f"epochs; pass --epochs N with N > {trainer.epoch} to train on")
    out(f"data: {cfg['data']['name']}, {len(train)} training / {len(val)} validation / {len(test)} test samples; "
        f"network {augment.n_units(train.n_units)}-{'-'.join(map(str, cfg['model']['hidden']))}-{train.n_classes}, "
        f"method {cfg['simulation']['method']}, kernels {sim.kernels_used if hasattr(sim, 'kernels_used') else '-'}")
    where = _BatchCounter(trainer.epoch)
    trainer.callbacks.append(where)
    try:
        try:
            history = trainer.fit(train, epochs=epochs, batch_size=cfg["training"]["batch_size"], validation=val,
                                  seed=int(rng.integers(2**31)), restore_best=cfg["training"]["restore_best"],
                                  augment=None if augment == Augment() else augment)
        except KeyboardInterrupt:
            callbacks[0].close()  # the progress bar
            raise RunInterrupted(_interrupted_message(cfg, trainer, where)) from None
        metrics = trainer.evaluate(test)
    finally:
        trainer.close()  # the Ray workers, if any
    result = {"test_accuracy": metrics.get("accuracy"), "test_loss": metrics["loss"], "history": history,
              "seconds": time.perf_counter() - start,
              "best_epoch": trainer.best["epoch"] if trainer.best else None}
    if folder:
        with open(os.path.join(folder, "result.json"), "w") as f:
            json.dump({k: v for k, v in result.items() if k != "history"}, f, indent=2)
    return result


class RunInterrupted(Exception):
    """Ctrl-C during training; the message says what is saved and how to continue."""


class _BatchCounter:
    """Remembers how far the current epoch got, for the message of an interrupted run."""

    def __init__(self, start_epoch: int):
        self.start_epoch = start_epoch  # the epoch a resumed run's last.npz holds (0 for a new run)
        self.batch = 0

    def on_epoch_begin(self, trainer, epoch):
        self.batch = 0

    def on_batch_end(self, trainer, i, logs):
        self.batch = i + 1


def _interrupted_message(cfg: dict, trainer: Trainer, counter: _BatchCounter) -> str:
    """One line: where the run stopped, what is saved (the last finished epoch, by the Checkpoint
    callback: an epoch cut short is not, since it could not be continued exactly), how to go on."""
    total = cfg["training"]["epochs"]
    saved = [cb.saved_epoch for cb in trainer.callbacks if isinstance(cb, Checkpoint) and cb.saved_epoch]
    done = saved[0] if saved else counter.start_epoch
    where = (f"interrupted in epoch {trainer.epoch}/{total} after {counter.batch}/{trainer.steps_per_epoch} "
             "batches")
    folder = cfg["output"]["dir"]
    if not folder:
        return f"{where}; nothing saved (no --out): pass --out RUN_DIR to keep checkpoints that --resume continues"
    if done == 0:
        return f"{where}; no epoch finished, so there is nothing to resume: start the run again"
    saved = f"epochs 1-{done} are" if done > 1 else "epoch 1 is"
    return (f"{where}; {saved} saved in {folder} (last.npz); "
            f"continue with: eventgrad train --resume {shlex.quote(folder)}")


def load_run(folder: str, checkpoint: str = "best.npz"):
    """(config, simulator with the checkpoint's parameters, test data) of a run written with --out."""
    from eventgrad.config import resolve
    from eventgrad.train import load_checkpoint

    with open(os.path.join(folder, "config.json")) as f:
        cfg = resolve(json.load(f))
    _, _, test = build_data(cfg)
    sim = build_simulator(cfg, build_network(cfg, test.n_units, test.n_classes, np.random.default_rng(cfg["seed"])))
    load_checkpoint(os.path.join(folder, checkpoint), sim.params)
    return cfg, sim, test


def plot_run(folder: str, sample: int = 0) -> list[str]:
    """Learning curves, and a spike raster and state traces of one test sample, as PNGs in ``folder``.

    Traces come from the exact trajectory (``eventgrad.engine.trajectory``): a fine grid plus the states
    just before and after each spike; a hidden layer shows its most active neurons, the output layer
    every class. A BPTT run gets no traces (that simulator records spikes only)."""
    from eventgrad.engine.trajectory import state_trace
    from eventgrad.plots import MAX_TRACES, plot_learning_curves, plot_raster, plot_traces

    paths = [plot_learning_curves(os.path.join(folder, "log.csv"), os.path.join(folder, "learning_curves.png"))]
    _, sim, test = load_run(folder)
    batch, labels = test.batch([sample])
    res = sim.run(batch)
    spikes = {"input": (batch.times[0], batch.units[0])}
    spikes.update({g.name: res.spike_times(g.name, 0) for g in sim.network.groups
                   if not g.is_input and g.neuron.threshold is not None})
    title = f"test sample {sample}, label {labels[0]}, predicted {int(np.argmax(res.readout[0]))}"
    paths.append(plot_raster(spikes, os.path.join(folder, "raster.png"), title=title, duration=sim.duration))
    if not hasattr(sim, "record"):  # a BPTT run: its states live on the grid, and it does not record them
        return [str(p) for p in paths]
    for g in (g for g in sim.network.groups if not g.is_input):
        trace = state_trace(sim, batch, g.name)
        if g.name == sim.readout.group:
            shown, names, which = np.arange(g.size), [f"class {k}" for k in range(g.size)], ""
        else:  # the most active neurons (by spike count, then index), in index order
            counts = np.bincount(trace.spike_units, minlength=g.size)
            shown = np.sort(np.argsort(-counts, kind="stable")[:MAX_TRACES])
            names = [f"unit {j}" for j in shown]
            which = f"; the {len(shown)} most active of {g.size}" if len(shown) < g.size else ""
        keep = np.isin(trace.spike_units, shown)
        spikes_shown = (trace.spike_times[keep], np.searchsorted(shown, trace.spike_units[keep]),
                        trace.before[keep], trace.after[keep])
        paths.append(plot_traces(trace.times, trace.values[:, shown], os.path.join(folder, f"traces_{g.name}.png"),
                                 labels=names, threshold=trace.threshold, spikes=spikes_shown, duration=sim.duration,
                                 title=f"{trace.name}{which}\n{title}", ylabel=trace.name))
    return [str(p) for p in paths]


def deploy_run(folder: str, bits=(8,), checkpoint: str = "best.npz", nir_path: str | None = "", dt: float | None = None,
               time_unit: str = "s", out=print) -> dict:
    """Test accuracy of a saved run: exact float, time-stepped float, and fixed point at each of ``bits``.

    Writes the network as NIR to ``nir_path`` ("" for RUN/network.nir, None for no file). Returns the
    accuracies by label ("float", "float_stepped", "8", ...).
    """
    from eventgrad.deploy import float_accuracy, quantize

    _, sim, test = load_run(folder, checkpoint)
    if test.n_classes is None:
        raise ConfigError(f"the run in '{folder}' does not classify; deploy reports a classification accuracy")
    results = {"float": float_accuracy(sim, test)}
    out(f"float, exact event-based simulation (dt {sim.dt:g} ms): test accuracy {results['float']:.4f}")
    stepped = quantize(sim, weight_bits=None, dt=dt)
    results["float_stepped"] = stepped.accuracy(test)
    out(f"float, time-stepped at dt {stepped.dt:g} ms: {results['float_stepped']:.4f}")
    for b in bits:
        q = quantize(sim, weight_bits=int(b), dt=dt)
        results[str(b)] = q.accuracy(test)
        scales = ", ".join(f"{name} 2^{e}" for layer in q.layers for name, e in layer.exponents.items())
        out(f"{b}-bit weights, {q.state_bits}-bit state, {q.decay_bits}-bit decays: {results[str(b)]:.4f} "
            f"(weight steps: {scales}; {q.saturated} state values saturated)")
    if nir_path is not None:
        try:
            import nir  # noqa: F401

            from eventgrad.nir import write
        except ImportError:
            out('no NIR file written: the nir package is missing (pip install "eventgrad[nir]")')
            return results
        path = nir_path or os.path.join(folder, "network.nir")
        write(path, sim, dt=dt, time_unit=time_unit)
        out(f"wrote {path} (NIR; time unit {time_unit}, dt {dt if dt is not None else sim.dt:g} ms)")
    return results
