"""Learning-rate schedules: a factor of the base rate as a function of training progress in epochs.

Progress is a float (epoch 2, half-way through, is 2.5), so that one schedule object serves decays
stated per epoch and warm-ups that last a fraction of one. The trainer sets
``optimizer.lr = base_lr * schedule(progress)`` before every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _positive(name: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return float(value)


def _fraction(name: str, value: float) -> float:
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return float(value)


class Schedule:
    def __call__(self, progress: float) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    """Factor 1 throughout."""

    def __call__(self, progress):
        return 1.0


@dataclass(frozen=True)
class StepDecay(Schedule):
    """gamma ** floor(progress / every): the rate drops by gamma every ``every`` epochs."""

    every: float
    gamma: float = 0.1

    def __post_init__(self):
        _positive("StepDecay.every", self.every)
        _positive("StepDecay.gamma", self.gamma)

    def __call__(self, progress):
        return self.gamma ** math.floor(progress / self.every + 1e-9)


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """gamma ** progress: a smooth decay by gamma per epoch."""

    gamma: float

    def __post_init__(self):
        _positive("ExponentialDecay.gamma", self.gamma)

    def __call__(self, progress):
        return self.gamma**progress


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from 1 down to ``floor`` over ``epochs``; ``floor`` after that."""

    epochs: float
    floor: float = 0.0

    def __post_init__(self):
        _positive("Cosine.epochs", self.epochs)
        _fraction("Cosine.floor", self.floor)

    def __call__(self, progress):
        x = min(max(progress / self.epochs, 0.0), 1.0)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * x))


@dataclass(frozen=True)
class Warmup(Schedule):
    """A linear ramp from ``start`` to 1 over ``epochs``, then ``then`` (shifted to begin at the ramp's end)."""

    epochs: float
    then: Schedule = Constant()
    start: float = 0.0

    def __post_init__(self):
        _positive("Warmup.epochs", self.epochs)
        _fraction("Warmup.start", self.start)

    def __call__(self, progress):
        if progress < self.epochs:
            return self.start + (1.0 - self.start) * progress / self.epochs
        return self.then(progress - self.epochs)


SCHEDULES = {"constant": Constant, "step": StepDecay, "exponential": ExponentialDecay, "cosine": Cosine}


def make_schedule(spec: dict | None) -> Schedule:
    """A schedule from a configuration table: ``{"kind": "cosine", "epochs": 20, "warmup": 0.5}``."""
    if spec is None:
        return Constant()
    spec = dict(spec)
    kind = spec.pop("kind", "constant")
    warmup = spec.pop("warmup", None)
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule kind '{kind}'; known: {sorted(SCHEDULES)}")
    try:
        schedule = SCHEDULES[kind](**spec)
    except TypeError as err:
        raise ValueError(f"schedule '{kind}': {err}") from err
    return Warmup(warmup, schedule) if warmup else schedule
