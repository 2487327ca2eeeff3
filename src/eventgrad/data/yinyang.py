"""The Yin-Yang data set (Kriener et al. 2021); its latency code lives in eventgrad.data.encoders.

A small, hard-to-linearly-separate 2-D task used to benchmark spiking networks trained on exact spike
times (Göltz et al. 2021, Wunderlich & Pehle 2021). The generator reproduces the reference
implementation (github.com/lkriener/yin_yang_data_set) draw for draw, so that a seed gives the same
samples as in the papers: reference sets are train (seed 42, 5000), validation (41, 1000) and test
(40, 1000).
"""

from __future__ import annotations

import numpy as np

from eventgrad.data.encoders import latency_encode  # noqa: F401  (moved to encoders; kept importable here)

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
