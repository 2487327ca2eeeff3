"""Readouts: what the loss sees of the output population.

State readouts sample the output variable on the grid t_n = n dt (n = 1..N) and combine the samples;
their gradient enters the adjoint as a jump dL/dx(t_n) at each grid time, so it is exact for the
quantity computed.  The spike-time readout uses exact spike times.  The spike count is piecewise constant
in every parameter: EventProp can report it but not differentiate it (its gradient is zero almost
everywhere); surrogate-gradient BPTT can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUM, MAX, FIRST_SPIKE, SPIKE_COUNT = 0, 1, 2, 3


@dataclass(frozen=True)
class Readout:
    """Base: ``group`` is the output population, ``var`` its variable (default: the model's output)."""

    group: str
    var: str | None = None
    kind = SUM

    def step_weights(self, n_steps: int, dt: float) -> np.ndarray:
        return np.ones(n_steps)

    def logits(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """(values a classification loss uses, their derivative with respect to y)."""
        return y, 1.0


@dataclass(frozen=True)
class SumVar(Readout):
    """y_k = sum over grid times of v_k(t_n)."""


@dataclass(frozen=True)
class MeanVar(Readout):
    """y_k = mean over grid times of v_k(t_n)."""

    def step_weights(self, n_steps, dt):
        return np.full(n_steps, 1.0 / n_steps)


@dataclass(frozen=True)
class ExpWeightedMeanVar(Readout):
    """y_k = (1/T) integral exp(-t/T) v_k dt (Riemann sum on the grid); T defaults to the trial length.

    The "loss shaping" of mlGeNN: late samples count less, which favours early decisions.
    """

    tau: float | None = None

    def step_weights(self, n_steps, dt):
        T = self.tau if self.tau is not None else n_steps * dt
        t = dt * np.arange(1, n_steps + 1)
        return np.exp(-t / T) * dt / T


@dataclass(frozen=True)
class MaxVar(Readout):
    """y_k = max over grid times of v_k(t_n)."""

    kind = MAX


@dataclass(frozen=True)
class FirstSpikeTime(Readout):
    """y_k = time of the first spike of neuron k (the trial length if it never spikes).

    As logits for classification: -y / tau0 (earliest spike wins), as in Wunderlich & Pehle 2021.
    """

    tau0: float = 5.0
    kind = FIRST_SPIKE

    def logits(self, y):
        return -y / self.tau0, -1.0 / self.tau0


@dataclass(frozen=True)
class SpikeCount(Readout):
    """y_k = number of spikes of neuron k in the trial (a rate code).

    For evaluation with any method; as a training loss only with ``method="bptt"``, whose surrogate gives
    it a gradient. EventProp refuses to differentiate it: the exact gradient is zero almost everywhere.
    """

    kind = SPIKE_COUNT
