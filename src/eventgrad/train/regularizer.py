"""Keeping hidden populations in a useful activity range: a spike-count penalty and a silent-neuron push.

The penalty, per sample b and neuron j of a regularised population with N_bj spikes:

    P = lambda_upper / 2 * max(0, N - nu_upper)^2 + lambda_lower / 2 * max(0, nu_lower - N)^2,

averaged over the batch and summed over neurons.  A count has no gradient (it is piecewise constant),
so each method differentiates it its own way:

- BPTT backpropagates dP/dN through its surrogate spikes (``penalty``);
- EventProp treats each spike as the smooth count N ~ sum_k (1 - t_k / T): a spike moved to the end
  of the trial leaves it. Then dP/dt_k = -dP/dN / T for every spike of the neuron, a loss linear in
  spike times that enters the adjoint jumps (``spike_terms``).  This is the mlGeNN scheme (a term
  proportional to the count excess added at every spike of an over-active neuron) with its scale and
  sign derived rather than chosen: too many spikes push spikes later, too few pull them earlier.

A neuron that never spikes has no spike to carry any of this (design notes, section 2): EventProp gives
everything upstream of it zero gradient, and it stays silent for good. ``silent_push`` gives it a
gradient: for a neuron silent in every sample of the batch, dL/dW_ij = -silent_push * (mean presynaptic
count of i), the gradient of the under-activity penalty in a rate model where the input drive grows
with W_ij times the presynaptic count.  With Adam this raises its active inputs' weights by about one
learning rate per step until it spikes, and then the exact gradients take over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SpikeCountRegularizer:
    """Penalise spike counts outside [nu_lower, nu_upper] in ``groups`` and push silent neurons back."""

    groups: tuple[str, ...]
    nu_upper: float = np.inf
    lambda_upper: float = 0.0
    nu_lower: float = 0.0
    lambda_lower: float = 0.0
    silent_push: float = 0.0

    def __post_init__(self):
        if isinstance(self.groups, str):
            self.groups = (self.groups,)
        self.groups = tuple(self.groups)
        if not self.groups:
            raise ValueError("SpikeCountRegularizer needs at least one population in groups")
        for name in ("lambda_upper", "lambda_lower", "silent_push", "nu_lower"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"SpikeCountRegularizer.{name} must be finite and >= 0, got {value}")
        if not self.nu_upper >= self.nu_lower:
            raise ValueError(f"nu_upper ({self.nu_upper}) must not be below nu_lower ({self.nu_lower})")

    def penalty(self, counts: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        """(mean over the batch of sum_j P(N_bj), dP/dN per sample and neuron, already divided by B)."""
        value, grads = 0.0, {}
        for name in self.groups:
            N = np.asarray(counts[name], dtype=np.float64)
            over = np.maximum(N - self.nu_upper, 0.0) if self.lambda_upper else np.zeros_like(N)
            under = np.maximum(self.nu_lower - N, 0.0) if self.lambda_lower else np.zeros_like(N)
            B = N.shape[0]
            value += float(0.5 * (self.lambda_upper * (over**2).sum() + self.lambda_lower * (under**2).sum()) / B)
            grads[name] = (self.lambda_upper * over - self.lambda_lower * under) / B
        return value, grads

    def spike_terms(self, result, duration: float) -> tuple[float, dict[str, np.ndarray]]:
        """For EventProp: (penalty, dL/dt_k per sample and neuron) from the forward result's counts."""
        return self.spike_terms_of_counts({name: result.spike_counts(name) for name in self.groups}, duration)

    def spike_terms_of_counts(self, counts: dict[str, np.ndarray], duration: float) -> tuple[float, dict]:
        """``spike_terms`` from the counts (B, size) of the whole batch, wherever its samples ran."""
        value, dP_dN = self.penalty(counts)
        return value, {name: -g / duration for name, g in dP_dN.items()}

    def silent_grads(self, network, counts: dict[str, np.ndarray], input_counts: dict[str, np.ndarray]) -> dict:
        """Extra weight gradients for neurons of ``groups`` silent in every sample (see the module notes)."""
        out = {}
        if not self.silent_push:
            return out
        for c in network.connections:
            if c.post.name not in self.groups:
                continue
            silent = counts[c.post.name].sum(axis=0) == 0
            if not silent.any():
                continue
            pre = input_counts[c.pre.name] if c.pre.is_input else counts[c.pre.name]
            drive = np.asarray(pre, dtype=np.float64).mean(axis=0)
            g = np.zeros((c.pre.size, c.post.size))
            g[:, silent] = -self.silent_push * drive[:, None]
            out[f"{c.name}.weight"] = g
        return out


def silent_counts(counts: dict[str, np.ndarray]) -> dict[str, int]:
    """How many neurons of each population never spiked in any of the samples ``counts`` covers."""
    return {name: int((np.asarray(c).sum(axis=0) == 0).sum()) for name, c in counts.items()}
