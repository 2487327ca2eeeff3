"""Losses on readouts, each the mean over the batch, with their gradient with respect to the readout."""

from __future__ import annotations

import numpy as np


class LossError(ValueError):
    """Labels or targets that do not fit the readout."""


class SoftmaxCrossEntropy:
    """-log softmax(logits)[label], logits from the readout (e.g. -t/tau0 for first spike times)."""

    def value_and_grad(self, logits: np.ndarray, labels) -> tuple[float, np.ndarray]:
        labels = np.asarray(labels)
        B, C = logits.shape
        if labels.shape != (B,) or not np.issubdtype(labels.dtype, np.integer):
            raise LossError(f"labels must be {B} integers, got shape {labels.shape} and dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= C):
            raise LossError(f"labels must lie in [0, {C}), got values from {labels.min()} to {labels.max()}")
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
