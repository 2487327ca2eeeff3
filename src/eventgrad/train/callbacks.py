"""Callbacks: what a training run reports and keeps besides the parameters.

A callback is any object with some of the hooks ``on_train_begin(trainer)``, ``on_epoch_begin(trainer,
epoch)``, ``on_batch_end(trainer, i, logs)``, ``on_epoch_end(trainer, epoch, logs)``,
``on_train_end(trainer)``; it may set ``trainer.stop_training``.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from eventgrad.train.checkpoint import save_checkpoint


def format_logs(logs: dict) -> str:
    parts = []
    for key, value in logs.items():
        if key == "epoch":
            continue
        if isinstance(value, float):
            parts.append(f"{key} {value:.3g}" if key in ("lr", "time") else f"{key} {value:.4f}")
        else:
            parts.append(f"{key} {value}")
    return "  ".join(parts)


class ProgressBar:
    """A bar over the batches of each epoch (tqdm: count of total, rate, time left) and one line per epoch.

    ``bar=False`` keeps only the lines (logs, non-interactive runs); ``stream``: where both go (stderr
    for the bar by default, stdout for the lines)."""

    def __init__(self, total_epochs: int | None = None, bar: bool = True, stream=None):
        self.total_epochs = total_epochs
        self.stream = stream
        self.bar = bar
        self._bar = None

    def on_epoch_begin(self, trainer, epoch):
        if self.bar:
            from tqdm import tqdm

            of = f"/{self.total_epochs}" if self.total_epochs else ""
            self._bar = tqdm(total=getattr(trainer, "steps_per_epoch", None), desc=f"epoch {epoch}{of}",
                             unit="batch", leave=False, file=self.stream, dynamic_ncols=True)

    def on_batch_end(self, trainer, i, logs):
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{logs['loss']:.4f}")

    def close(self):
        """Clear the bar of an epoch cut short (Ctrl-C), so that what is printed next starts a line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_epoch_end(self, trainer, epoch, logs):
        self.close()
        of = f"/{self.total_epochs}" if self.total_epochs else ""
        print(f"epoch {epoch}{of}  {format_logs(logs)}", file=self.stream, flush=True)


class CSVLogger:
    """One row per epoch; the file is rewritten whole each epoch, so it always holds complete rows."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def on_epoch_end(self, trainer, epoch, logs):
        keys = list(dict.fromkeys(k for row in trainer.history for k in row))
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(trainer.history)
        os.replace(tmp, self.path)


class JSONLogger:
    """One JSON object per line and epoch (JSON lines). The file is rewritten whole from the trainer's history
    when training starts and as each epoch ends (atomically): a resumed run keeps the epochs before the
    checkpoint, and a resume that fails before training starts leaves the log as it was."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def on_train_begin(self, trainer):
        """A resumed run's trainer starts with the saved epochs' history: write them first."""
        self._write(trainer.history)

    def on_epoch_end(self, trainer, epoch, logs):
        self._write(trainer.history)

    def _write(self, history):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in history)
        os.replace(tmp, self.path)


class Checkpoint:
    """Save the run after every epoch (``last.npz``, which ``Trainer.resume`` continues) and the parameters
    and optimiser state at the best validation (``best.npz``)."""

    def __init__(self, folder, meta: dict | None = None):
        self.folder = os.fspath(folder)
        self.meta = meta or {}
        self.saved_epoch: int | None = None  # the epoch last.npz holds, once this callback wrote it

    def on_epoch_end(self, trainer, epoch, logs):
        meta = {**self.meta, "epoch": epoch, "logs": logs}
        trainer.save(os.path.join(self.folder, "last.npz"), meta)
        self.saved_epoch = epoch
        if trainer.best is not None and trainer.best["epoch"] == epoch:
            save_checkpoint(os.path.join(self.folder, "best.npz"), trainer.sim.params, trainer.optimizer, meta)


class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0):
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = "max" if "accuracy" in monitor else "min"
        self.best = None
        self.wait = 0

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping monitors '{self.monitor}', which the logs lack: {sorted(logs)}")
        value = logs[self.monitor]
        improved = self.best is None or (value > self.best + self.min_delta if self.mode == "max"
                                         else value < self.best - self.min_delta)
        if improved:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training = True


class Recorder:
    """Record spikes and state variables of chosen populations on fixed samples at the end of epochs.

    ``variables``: {population: [variable names]}; ``every``: record every that many epochs.
    ``records`` holds one dict per recording: {"epoch", "spikes": {pop: [(times, units) per sample]},
    "traces": {"pop.var": (samples, steps, neurons)}, "times": grid times}.
    """

    def __init__(self, data, populations=(), variables: dict | None = None, samples=(0,), every: int = 1):
        self.data, self.populations, self.variables = data, tuple(populations), dict(variables or {})
        self.samples = np.asarray(samples, dtype=np.int64)
        self.every = every
        self.records: list[dict] = []

    def on_train_begin(self, trainer):
        if self.variables and not hasattr(trainer.sim, "record"):
            raise TypeError(f"{type(trainer.sim).__name__} cannot record state variables (only spikes); record "
                            "them with the EventProp simulator, e.g. on the trained parameters afterwards")

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch % self.every:
            return
        batch, _ = self.data.batch(self.samples)
        sim = trainer.sim
        res = sim.run(batch)
        spikes = {p: [res.spike_times(p, b) for b in range(len(self.samples))] for p in self.populations}
        traces = sim.record(batch, self.variables) if self.variables else {}
        self.records.append({"epoch": epoch, "spikes": spikes, "traces": traces,
                             "times": sim.dt * np.arange(sim.n_steps)})
