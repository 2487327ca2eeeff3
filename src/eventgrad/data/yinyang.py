"""The Yin-Yang data set (Kriener et al. 2021) and a latency code that turns it into input spikes.

A small, hard-to-linearly-separate 2-D task used to benchmark spiking networks trained on exact spike
times (Göltz et al. 2021, Wunderlich & Pehle 2021). The generator reproduces the reference
implementation (github.com/lkriener/yin_yang_data_set) draw for draw, so that a seed gives the same
samples as in the papers: reference sets are train (seed 42, 5000), validation (41, 1000) and test
(40, 1000).
"""

from __future__ import annotations

import numpy as np

from eventgrad.data.spikes import SpikeBatch

CLASS_NAMES = ("yin", "yang", "dot")  # the reference's names for labels 0, 1, 2
REFERENCE_SPLITS = {"train": (42, 5000), "validation": (41, 1000), "test": (40, 1000)}


def yinyang_class(x: float, y: float, r_small: float = 0.1, r_big: float = 0.5) -> int:
    """Label of a point inside the big circle: 2 in either dot, 1 in the region the reference calls
    ``is_yin``, else 0 (as in the reference, label 1 is the ``is_yin`` region although its
    class_names list calls label 0 'yin')."""
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    in_right_dot = d_right <= r_small
    in_left_ring = r_small < d_left <= 0.5 * r_big
    in_upper_half = y > r_big and d_right > 0.5 * r_big
    if d_right < r_small or d_left < r_small:
        return 2
    return int(in_right_dot or in_left_ring or in_upper_half)


def _sample(rng: np.random.RandomState, goal: int, r_small: float, r_big: float) -> tuple[float, float]:
    """Rejection sampling: (x, y) uniform in the square [0, 2 r_big]^2, inside the big circle, of class goal."""
    while True:
        x, y = rng.rand(2) * 2.0 * r_big
        if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
            continue
        if yinyang_class(x, y, r_small, r_big) == goal:
            return x, y


def yinyang(n: int, seed: int, r_small: float = 0.1, r_big: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """n samples: X (n, 4) = (x, y, 1 - x, 1 - y) and labels (n,) int64 in {0, 1, 2}.

    Per sample, in the reference's draw order on ``RandomState(seed)``: the goal class
    (``randint(3)``, which keeps the classes balanced), then pairs ``rand(2)`` until one is of that class.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer number of samples, got {n!r}")
    if not 0 < r_small < 0.5 * r_big:
        raise ValueError(f"need 0 < r_small < r_big / 2 for the dots to fit, got r_small={r_small}, r_big={r_big}")
    rng = np.random.RandomState(seed)
    X = np.empty((n, 4))
    labels = np.empty(n, np.int64)
    for i in range(n):
        goal = rng.randint(3)
        x, y = _sample(rng, goal, r_small, r_big)
        X[i] = (x, y, 1.0 - x, 1.0 - y)
        labels[i] = goal
    return X, labels


def latency_encode(X, t_min: float = 0.0, t_max: float = 20.0, bias_time: float | None = None) -> SpikeBatch:
    """One spike per feature at t_min + value * (t_max - t_min) (unit = column), for values in [0, 1].

    With ``bias_time``, every sample gets one more spike, of unit X.shape[1], at that time: a constant
    input that lets the first layer learn thresholds (Göltz et al. 2021 use one). Early = large value
    is the reverse choice; flip the features (1 - X) for it.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be (samples, features), got shape {X.shape}")
    if not (np.isfinite(t_min) and np.isfinite(t_max) and t_max > t_min):
        raise ValueError(f"need finite t_min < t_max, got t_min={t_min}, t_max={t_max}")
    if X.size and not (np.all(np.isfinite(X)) and X.min() >= 0.0 and X.max() <= 1.0):
        raise ValueError(f"values must lie in [0, 1], got from {np.nanmin(X)} to {np.nanmax(X)}")
    times = t_min + X * (t_max - t_min)
    units = np.broadcast_to(np.arange(X.shape[1]), X.shape)
    if bias_time is not None:
        times = np.hstack([times, np.full((X.shape[0], 1), float(bias_time))])
        units = np.hstack([units, np.full((X.shape[0], 1), X.shape[1])])
    order = np.argsort(times, axis=1, kind="stable")
    times = np.take_along_axis(times, order, axis=1)
    units = np.take_along_axis(units, order, axis=1)
    return SpikeBatch(times=list(times), units=list(units))
