"""Losses on readouts, each the mean over the batch, with their gradient with respect to the readout."""

from __future__ import annotations

import numpy as np


class LossError(ValueError):
    """Labels or targets that do not fit the readout."""


class SoftmaxCrossEntropy:
    """-log softmax(logits)[label], logits from the readout (e.g. -t/tau0 for first spike times)."""

    @staticmethod
    def checked_labels(logits: np.ndarray, labels) -> np.ndarray:
        """``labels`` as an array, refused unless they are one class index per row of ``logits``."""
        labels = np.asarray(labels)
        B, C = logits.shape
        if labels.shape != (B,) or not np.issubdtype(labels.dtype, np.integer):
            raise LossError(f"labels must be {B} integers, got shape {labels.shape} and dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= C):
            raise LossError(f"labels must lie in [0, {C}), got values from {labels.min()} to {labels.max()}")
        return labels

    def value_and_grad(self, logits: np.ndarray, labels) -> tuple[float, np.ndarray]:
        labels = self.checked_labels(logits, labels)
        B = logits.shape[0]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -log_p[np.arange(B), labels].mean()
        grad = np.exp(log_p)
        grad[np.arange(B), labels] -= 1.0
        return float(loss), grad / B


class MeanSquaredError:
    """mean over batch of sum_k (y_k - target_k)^2 / 2, for regression."""

    def value_and_grad(self, y: np.ndarray, targets) -> tuple[float, np.ndarray]:
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != y.shape:
            raise LossError(f"targets must have shape {y.shape} (batch, outputs), got {targets.shape}")
        if not np.all(np.isfinite(targets)):
            raise LossError("targets contain NaN or infinite values")
        diff = y - targets
        B = y.shape[0]
        return float(0.5 * (diff**2).sum() / B), diff / B


class FirstSpikeCrossEntropy(SoftmaxCrossEntropy):
    """Wunderlich & Pehle's (2021) time-to-first-spike loss: cross-entropy plus a push to spike early.

    For first output spike times t_k and label l (their equation for the Yin-Yang task),

        L = -log( exp(-t_l / tau0) / sum_k exp(-t_k / tau0) ) + alpha * (exp(t_l / tau1) - 1),

    averaged over the batch. The first term is ``SoftmaxCrossEntropy`` on the logits -t/tau0 that
    ``readouts.FirstSpikeTime(group, tau0)`` gives; the second grows with the label neuron's latency and
    so rewards an early correct spike, which the cross-entropy alone (it sees only differences of spike
    times) does not. The loss receives those logits, not the times, because the simulator hands every
    loss the readout's logits; it recovers t = -tau0 * logit, so its ``tau0`` must be the readout's:
    build it with :meth:`for_readout` to take it from there. A neuron that never spikes reads as the
    trial length (the readout's convention); the loss is then constant in its time (no gradient), as
    it is for any neuron without a spike.

    A sample whose label neuron never spikes still counts by default: its loss is large and its gradient
    pushes the other outputs' spikes later. ``skip_silent_label=True`` does what the authors' code does
    instead: such a sample is left out of the loss and its gradient (the loss is the mean over the other
    samples; a batch with none left has loss 0 and no gradient). It needs ``trial_length``, the
    simulation's duration (the time a silent neuron reads as); the simulator checks that they agree.
    """

    def __init__(self, tau0: float, tau1: float, alpha: float, skip_silent_label: bool = False,
                 trial_length: float | None = None):
        for name, value in (("tau0", tau0), ("tau1", tau1)):
            if not (np.ndim(value) == 0 and np.isfinite(value) and value > 0):
                raise LossError(f"{name} must be a positive time in ms, got {value!r}")
        if not (np.ndim(alpha) == 0 and np.isfinite(alpha) and alpha >= 0):
            raise LossError(f"alpha must be a finite weight >= 0, got {alpha!r}")
        if skip_silent_label and not (trial_length is not None and np.ndim(trial_length) == 0
                                      and np.isfinite(trial_length) and trial_length > 0):
            raise LossError(f"skip_silent_label needs trial_length, the simulation's duration in ms (the time a "
                            f"neuron without a spike reads as); got {trial_length!r}")
        self.tau0, self.tau1, self.alpha = float(tau0), float(tau1), float(alpha)
        self.skip_silent_label = bool(skip_silent_label)
        self.trial_length = None if trial_length is None else float(trial_length)

    @classmethod
    def for_readout(cls, readout, tau1: float, alpha: float, **options) -> FirstSpikeCrossEntropy:
        """The loss for a ``FirstSpikeTime`` readout, with that readout's tau0 (so the two cannot disagree);
        ``options``: ``skip_silent_label``, ``trial_length``."""
        tau0 = getattr(readout, "tau0", None)
        if tau0 is None:
            raise LossError(f"{type(readout).__name__} is not a first-spike-time readout (it has no tau0); "
                            "use eventgrad.readouts.FirstSpikeTime")
        return cls(tau0, tau1, alpha, **options)

    def check_duration(self, duration: float) -> None:
        """Called by the simulators: a silent neuron reads as ``duration``, which must be ``trial_length``."""
        if self.trial_length is not None and not np.isclose(self.trial_length, duration, rtol=1e-12, atol=0.0):
            raise LossError(f"the loss's trial_length is {self.trial_length} ms but the simulation lasts "
                            f"{duration} ms; a neuron without a spike reads as the simulation's duration")

    def value_and_grad(self, logits: np.ndarray, labels) -> tuple[float, np.ndarray]:
        """(mean loss, dL/dlogits (B, n)) for logits = -t/tau0."""
        if not self.skip_silent_label:
            return self._every_sample(logits, labels)
        labels = self.checked_labels(logits, labels)
        # a neuron without a spike reads as t = trial_length, i.e. logit -trial_length / tau0 (float32 rounds)
        keep = -self.tau0 * logits[np.arange(len(labels)), labels] < self.trial_length * (1.0 - 1e-6)
        grad = np.zeros_like(logits, dtype=np.float64)
        if not keep.any():
            return 0.0, grad
        loss, grad[keep] = self._every_sample(logits[keep], labels[keep])
        return loss, grad

    def _every_sample(self, logits: np.ndarray, labels) -> tuple[float, np.ndarray]:
        loss, grad = super().value_and_grad(logits, labels)  # checks the labels
        B = logits.shape[0]
        rows, labels = np.arange(B), np.asarray(labels)
        t_label = -self.tau0 * logits[rows, labels]
        with np.errstate(over="ignore"):  # an overflow is reported below, with its cause
            growth = np.exp(t_label / self.tau1)  # exp(t_l / tau1)
        if not np.all(np.isfinite(growth)):
            raise LossError(f"alpha * (exp(t / tau1) - 1) overflows at t = {t_label.max()} ms with tau1 = "
                            f"{self.tau1} ms; use a larger tau1 or a shorter trial")
        loss += float(self.alpha * (growth - 1.0).mean())
        # d/dlogit [alpha (exp(t/tau1) - 1)] = alpha/tau1 exp(t/tau1) * dt/dlogit, with dt/dlogit = -tau0
        grad[rows, labels] -= self.alpha * self.tau0 / self.tau1 * growth / B
        return loss, grad
