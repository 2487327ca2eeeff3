"""The trainer: epochs of shuffled mini-batches, validation, the best model kept, callbacks.

Every batch's gradient is computed with the weights it is applied to (no stale gradients) and every
sample is used once per epoch (the last, smaller batch is kept). The simulator can be either gradient
method (``eg.Simulator(..., method="eventprop" | "bptt")``); they share this loop.
"""

from __future__ import annotations

import time

import numpy as np

from eventgrad.losses import SoftmaxCrossEntropy
from eventgrad.schedules import Constant, Schedule
from eventgrad.train.checkpoint import load_checkpoint, save_checkpoint
from eventgrad.train.distributed import check_workers, import_ray
from eventgrad.train.regularizer import SpikeCountRegularizer, silent_counts


class TrainingError(ValueError):
    """The training setup cannot work (empty data, wrong input size, labels out of range...)."""


class Trainer:
    """Fit a simulator's trainable parameters to a dataset.

    sim: an ``eg.Simulator`` with a readout and a loss. optimizer: from ``eventgrad.optim`` built on
    ``sim.params``. schedule: learning-rate factor by epoch progress. regularizer: a
    ``SpikeCountRegularizer`` (spike-count penalty and silent-neuron push) or None.

    ``workers`` > 1 computes each batch's gradient on that many Ray workers (``eventgrad.train.distributed``:
    the same numbers as one process, up to the order of summation), on the cluster at ``ray_address`` or a
    local one; ``worker_threads``: threads per worker (default: the cluster's CPUs shared out). The workers
    are started by the first ``fit`` and kept until :meth:`close` (or ``with Trainer(...) as trainer``).
    """

    def __init__(self, sim, optimizer, schedule: Schedule | None = None,
                 regularizer: SpikeCountRegularizer | None = None, callbacks=(), workers: int = 1,
                 ray_address: str | None = None, worker_threads: int | None = None):
        self.workers = check_workers(workers)
        if self.workers > 1:
            import_ray()  # fail now, with the install command, not at the first batch
            if not hasattr(sim, "backward"):
                raise TrainingError(f"workers > 1 splits batches for the EventProp simulator; {type(sim).__name__} "
                                    "trains in one process (workers=1)")
        self.ray_address, self.worker_threads = ray_address, worker_threads
        self._pool = None  # the Ray workers, built by the first fit() and kept until close()
        if getattr(sim, "readout", None) is None:
            raise TrainingError("the simulator has no readout; pass readout=eg.readouts.MeanVar('out'), ...")
        if optimizer.params is not sim.params:
            raise TrainingError("the optimiser must be built on sim.params (it updates them in place)")
        self.sim = sim
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.schedule = schedule or Constant()
        self.regularizer = regularizer
        self.callbacks = list(callbacks)
        self.history: list[dict] = []
        self.best: dict | None = None
        self.stop_training = False
        self.epoch = 0
        self.steps_per_epoch: int | None = None  # set by fit()
        self._rng: np.random.Generator | None = None  # the shuffling generator of the current run
        self._resumed_rng: np.random.Generator | None = None  # set by resume(), taken by the next fit()
        self._augment_seed: int | None = None  # the run's augmentation seed (saved, restored by resume())
        self._input = self._input_group()
        self._groups = [g.name for g in sim.network.groups if not g.is_input]

    # ---------------------------------------------------------------------------------------- checks
    def _input_group(self):
        inputs = [g for g in self.sim.network.groups if g.is_input]
        if len(inputs) != 1:
            raise TrainingError(f"the trainer feeds one input population; the network has {len(inputs)}")
        return inputs[0]

    def check_dataset(self, data, name: str) -> None:
        """Refuse a dataset that cannot feed this network, before any training starts."""
        if data is None or len(data) == 0:
            raise TrainingError(f"the {name} dataset is empty")
        if data.n_units != self._input.size:
            raise TrainingError(f"the {name} dataset has {data.n_units} input units; input '{self._input.name}' "
                                f"has {self._input.size}")
        if data.duration > self.sim.duration + 1e-9:
            raise TrainingError(f"the {name} dataset's spikes run to {data.duration} ms; the simulation lasts "
                                f"{self.sim.duration} ms")
        if self._classifies():
            labels = np.asarray(data.labels)
            n_out = self.sim.network.group(self.sim.readout.group).size
            if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= n_out:
                raise TrainingError(f"the {name} dataset's labels must be integers in [0, {n_out}) for the "
                                    f"{n_out} outputs; found {labels.dtype} values {labels.min()}..{labels.max()}")

    def _classifies(self) -> bool:
        return isinstance(self.sim.loss_fn, SoftmaxCrossEntropy)

    # -------------------------------------------------------------------------------------- training
    def _train_step(self, batch, labels):
        reg = self.regularizer
        if self._pool is None:
            loss, grads = self.sim.loss_and_grad(batch, labels, regularizer=reg)
            res = self.sim.last_result
            readout, counts = res.readout, {name: res.spike_counts(name) for name in self._groups}
        else:  # the same quantities, from the workers' shares of the batch (see eventgrad.train.distributed)
            readout, counts = self._pool.forward(self.sim, batch, keep=True)
            loss, dL_dreadout = self.sim.readout_cotangent(readout, labels)
            terms = None
            if reg is not None:
                value, terms = reg.spike_terms_of_counts({g: counts[g] for g in reg.groups}, self.sim.duration)
                loss += value
            grads = self._pool.backward(dL_dreadout, terms)
        if reg is not None and reg.silent_push:
            input_counts = {self._input.name: np.stack([np.bincount(u, minlength=self._input.size)
                                                        for u in batch.units])}
            for key, g in reg.silent_grads(self.sim.network, counts, input_counts).items():
                grads[key] = grads[key] + g
        norm = self.optimizer.step(grads)
        hits = self._hits(readout, labels)
        return loss, hits, norm, counts

    def start_workers(self):
        """Start the Ray workers (``workers`` > 1) unless they run already; ``fit`` calls it."""
        if self._pool is not None and self._pool.broken:  # a worker was lost: start afresh
            self.close()
        if self.workers > 1 and self._pool is None:
            from eventgrad.train.distributed import RayWorkers

            self._pool = RayWorkers(self.sim, self.workers, address=self.ray_address, threads=self.worker_threads)
        return self._pool

    def close(self) -> None:
        """Stop the Ray workers (and a Ray cluster this trainer started); a later ``fit`` starts new ones."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _hits(self, readout, labels) -> int:
        if not self._classifies():
            return 0
        logits, _ = self.sim.readout.logits(readout)
        return int((np.argmax(logits, axis=1) == np.asarray(labels)).sum())

    def fit(self, train, epochs: int, batch_size: int = 32, validation=None, seed: int = 0,
            restore_best: bool = True, augment=None) -> list[dict]:
        """Train for ``epochs`` more epochs; returns the history (one dict per epoch, all of the run's).
        With validation data, the parameters of the best validation epoch are restored at the end
        (``restore_best``). After :meth:`resume`, the shuffling continues the saved run's (``seed`` is
        not used). ``augment(train, epoch_seed) -> dataset`` (e.g. ``eventgrad.data.augment.Augment``)
        makes each epoch's training set; epoch e's seed is drawn from (``seed``, e) alone, so a resumed
        run augments exactly as an uninterrupted one."""
        if not (isinstance(epochs, int) and epochs >= 1) or not (isinstance(batch_size, int) and batch_size >= 1):
            raise TrainingError(f"epochs and batch_size must be positive integers, got {epochs}, {batch_size}")
        if augment is None:
            self.check_dataset(train, "training")
        elif not callable(augment):
            raise TrainingError(f"augment must be a callable (dataset, seed) -> dataset, got {augment!r}")
        if validation is not None:
            self.check_dataset(validation, "validation")
        if self._resumed_rng is None or self._augment_seed is None:
            self._augment_seed = int(seed)
        rng = self._resumed_rng if self._resumed_rng is not None else np.random.default_rng(seed)
        self._rng, self._resumed_rng = rng, None
        steps_per_epoch = -(-len(train) // batch_size)
        self.steps_per_epoch = steps_per_epoch  # batches per epoch, for callbacks (the progress bar's total)
        self.stop_training = False
        self.start_workers()
        self._call("on_train_begin")
        start = time.perf_counter()
        for _ in range(epochs):
            self.epoch += 1
            data = train
            if augment is not None:
                data = augment(train, self.epoch_seed(self.epoch))
                self.check_dataset(data, f"epoch {self.epoch}'s augmented training")
            steps_per_epoch = self.steps_per_epoch = -(-len(data) // batch_size)
            self._call("on_epoch_begin", self.epoch)
            totals = {"loss": 0.0, "hits": 0, "n": 0}
            epoch_counts = {name: 0 for name in self._groups}
            for i, (batch, labels) in enumerate(data.batches(batch_size, shuffle=True, seed=rng)):
                self.optimizer.lr = self.base_lr * self.schedule(self.epoch - 1 + i / steps_per_epoch)
                loss, hits, norm, counts = self._train_step(batch, labels)
                totals["loss"] += loss * len(labels)
                totals["hits"] += hits
                totals["n"] += len(labels)
                for name, c in counts.items():
                    epoch_counts[name] = epoch_counts[name] + c.sum(axis=0)
                self._call("on_batch_end", i, {"loss": loss, "grad_norm": norm, "size": len(labels)})
            logs = self._epoch_logs(totals, epoch_counts, validation, batch_size, start)
            self.history.append(logs)
            self._keep_best(logs)
            self._call("on_epoch_end", self.epoch, logs)
            if self.stop_training:
                break
        if restore_best and self.best is not None:
            for key, value in self.best["params"].items():
                self.sim.params[key][...] = value
        self._call("on_train_end")
        return self.history

    def epoch_seed(self, epoch: int) -> int:
        """The augmentation seed of ``epoch`` (1-based): a function of the run's seed and the epoch only."""
        return int(np.random.SeedSequence([self._augment_seed or 0, epoch]).generate_state(1)[0])

    def _epoch_logs(self, totals, epoch_counts, validation, batch_size, start) -> dict:
        logs = {"epoch": self.epoch, "loss": totals["loss"] / totals["n"]}
        if self._classifies():
            logs["accuracy"] = totals["hits"] / totals["n"]
        if validation is not None:
            metrics = self.evaluate(validation, batch_size=max(batch_size, 256))
            logs.update({f"val_{k}": v for k, v in metrics.items()})
        logs["lr"] = self.optimizer.lr
        spiking = [g for g in self._groups if self.sim.network.group(g).neuron.threshold is not None]
        silent = silent_counts({g: epoch_counts[g][None, :] for g in spiking if g != self.sim.readout.group})
        logs["silent"] = int(sum(silent.values()))
        logs["time"] = time.perf_counter() - start
        return logs

    def _keep_best(self, logs) -> None:
        key = "val_accuracy" if "val_accuracy" in logs else ("val_loss" if "val_loss" in logs else None)
        if key is None:
            return
        better = self.best is None or (logs[key] > self.best["value"] if key == "val_accuracy"
                                       else logs[key] < self.best["value"])
        if better:
            self.best = {"epoch": self.epoch, "metric": key, "value": logs[key],
                         "params": {k: np.array(v, copy=True) for k, v in self.sim.params.items()}}

    # ---------------------------------------------------------------------------------- save / resume
    def save(self, path, meta: dict | None = None) -> str:
        """Write what :meth:`resume` needs to continue this run as if it had never stopped: parameters,
        optimiser state, epoch count, history, the shuffling generator's state and the best-validation
        parameters. Atomic, like every checkpoint; also readable by ``load_checkpoint``."""
        state = {"epoch": self.epoch, "history": self.history,
                 "rng": None if self._rng is None else self._rng.bit_generator.state, "best": None,
                 "augment_seed": self._augment_seed}
        extra = {}
        if self.best is not None:
            state["best"] = {k: self.best[k] for k in ("epoch", "metric", "value")}
            extra = {f"best/{k}": v for k, v in self.best["params"].items()}
        return save_checkpoint(path, self.sim.params, self.optimizer, {**(meta or {}), "trainer": state}, extra)

    def resume(self, path) -> dict:
        """Load a file written by :meth:`save` (or the ``Checkpoint`` callback's ``last.npz``) into this
        trainer, its simulator and its optimiser; the next ``fit`` continues from the saved epoch with the
        same shuffling, so a run split in two gives the same numbers as one run. Returns the file's meta.

        Callbacks keep their own state (EarlyStopping's patience restarts); augmentation given to
        ``fit(augment=...)`` continues exactly (its seed is saved and each epoch's is derived from it).
        """
        data = load_checkpoint(path, None, None)
        state = data["meta"].get("trainer")
        if state is None:
            raise TrainingError(f"{path} holds parameters but no trainer state; write it with Trainer.save or "
                                "the Checkpoint callback (last.npz)")
        epoch, history = state.get("epoch"), state.get("history")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise TrainingError(f"{path}: the trainer state's epoch {epoch!r} is not a count of epochs")
        if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
            raise TrainingError(f"{path}: the trainer state's history is not a list of per-epoch records")
        load_checkpoint(path, self.sim.params, self.optimizer)
        self.epoch, self.history = epoch, list(history)
        self._augment_seed = state.get("augment_seed")
        self.best = None
        if state["best"] is not None:
            params = {k[len("best/"):]: v for k, v in data["extra"].items() if k.startswith("best/")}
            self.best = {**state["best"], "params": params}
        self._resumed_rng = None
        if state["rng"] is not None:
            self._resumed_rng = np.random.default_rng()
            self._resumed_rng.bit_generator.state = state["rng"]
        return data["meta"]

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook, lambda *a: None)(self, *args)

    # ------------------------------------------------------------------------------------ inference
    def predict(self, data, batch_size: int = 256) -> np.ndarray:
        """(N, outputs) readout of every sample, in dataset order."""
        if data is None or len(data) == 0:
            raise TrainingError("cannot predict on an empty dataset")
        out = []
        for start in range(0, len(data), batch_size):
            batch, _ = data.batch(np.arange(start, min(start + batch_size, len(data))))
            out.append(self.sim.run(batch).readout if self._pool is None else self._pool.forward(self.sim, batch)[0])
        return np.concatenate(out)

    def evaluate(self, data, batch_size: int = 256) -> dict:
        """{"loss": mean loss, "accuracy": fraction correct (classification)} over ``data``."""
        self.check_dataset(data, "evaluation")
        readout = self.predict(data, batch_size)
        logits, _ = self.sim.readout.logits(readout)
        loss, _ = self.sim.loss_fn.value_and_grad(logits, data.labels)
        metrics = {"loss": float(loss)}
        if self._classifies():
            metrics["accuracy"] = float(np.mean(np.argmax(logits, axis=1) == np.asarray(data.labels)))
        return metrics
