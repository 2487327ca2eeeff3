"""Encoders: turn real-valued features or time series into input spike trains with exact (real) spike times.

Every encoder returns a :class:`SpikeBatch` whose spikes are sorted by time within each sample (equal times
keep a fixed, documented order) and whose units are int64. Spike times are never rounded to a grid: the
simulator integrates between events, so a time that falls between two of its steps is used as it is.

Unit counts (the size of the input population a network needs), with C features or channels:

- ``latency_encode``: C units (unit c = feature c);
- ``threshold_latency_encode``: C units (unit c = feature c; features below threshold stay silent);
- ``rate_encode``: C units (unit c = feature c);
- ``sigma_delta_encode``: 2 C units (unit 2c = channel c going UP, unit 2c + 1 = channel c going DOWN);
- ``current_encode``: C units (unit c = feature c), graded events (direct current input).

With ``bias_time`` (``bias`` for ``current_encode``) each encoder adds one unit more, the last, which
spikes once per sample: a constant input that lets the first layer learn thresholds (Göltz et al. 2021).
:func:`n_input_units` computes these counts.
"""

from __future__ import annotations

import numpy as np

from eventgrad.data.spikes import SpikeBatch


def _check_bias_time(bias_time) -> float | None:
    """None, or the bias time as a finite float (a NaN would otherwise surface later as a bad spike)."""
    if bias_time is None:
        return None
    if not np.isfinite(bias_time):
        raise ValueError(f"bias_time must be a finite time in ms or None, got {bias_time}")
    return float(bias_time)


def _check_positive(name: str, value) -> float:
    """A finite, strictly positive scalar parameter (a duration, a rate, a step)."""
    if not (np.ndim(value) == 0 and np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def _check_features(X, what: str = "X") -> np.ndarray:
    """(samples, features) float64 array with every value in [0, 1]; names NaN separately from range errors."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{what} must be (samples, features), got shape {X.shape}")
    nan = np.argwhere(np.isnan(X))
    if nan.size:
        b, c = nan[0]
        raise ValueError(f"{what}[{b}, {c}] is NaN; values must lie in [0, 1]")
    if X.size and not (X.min() >= 0.0 and X.max() <= 1.0):
        b, c = np.argwhere((X < 0.0) | (X > 1.0))[0]
        raise ValueError(f"values must lie in [0, 1], but {what}[{b}, {c}] = {X[b, c]}")
    return X


def _sorted_batch(sample: np.ndarray, times: np.ndarray, units: np.ndarray, n_samples: int) -> SpikeBatch:
    """Gather flat spikes (sample index, time, unit) into a SpikeBatch sorted by time within each sample.

    The sort is stable, so spikes with equal times keep the order in which they appear in the flat arrays;
    callers list channel spikes before bias spikes, which puts the bias last among equal times."""
    if n_samples == 0:
        return SpikeBatch(times=[], units=[])  # np.split would return one empty sample
    order = np.lexsort((times, sample))
    counts = np.bincount(sample, minlength=n_samples)
    cuts = np.cumsum(counts)[:-1]
    return SpikeBatch(times=np.split(times[order], cuts), units=np.split(units[order].astype(np.int64), cuts))


def _with_bias(sample, times, units, n_samples: int, bias_unit: int, bias_time: float | None):
    """Append one spike of ``bias_unit`` at ``bias_time`` per sample, after all other spikes (see _sorted_batch)."""
    if bias_time is None:
        return sample, times, units
    return (np.concatenate([sample, np.arange(n_samples)]),
            np.concatenate([times, np.full(n_samples, bias_time)]),
            np.concatenate([units, np.full(n_samples, bias_unit)]))


def latency_encode(X, t_min: float = 0.0, t_max: float = 20.0, bias_time: float | None = None) -> SpikeBatch:
    """One spike per feature at t_min + value * (t_max - t_min) (unit = column), for values in [0, 1].

    With ``bias_time``, every sample gets one more spike, of unit X.shape[1], at that time: a constant
    input that lets the first layer learn thresholds (Göltz et al. 2021 use one). Early = large value
    is the reverse choice; flip the features (1 - X) for it. Equal times keep column order, bias last.
    """
    bias_time = _check_bias_time(bias_time)
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
        times = np.hstack([times, np.full((X.shape[0], 1), bias_time)])
        units = np.hstack([units, np.full((X.shape[0], 1), X.shape[1])])
    order = np.argsort(times, axis=1, kind="stable")
    times = np.take_along_axis(times, order, axis=1)
    units = np.take_along_axis(units, order, axis=1)
    return SpikeBatch(times=list(times), units=list(units))


def threshold_latency_encode(X, tau: float = 20.0, theta: float = 0.2, t_max: float | None = None,
                             bias_time: float | None = None) -> SpikeBatch:
    """At most one spike per feature, at the time a leaky integrator driven by the value reaches threshold.

    A unit with time constant tau, starting at rest and driven by the constant input x, follows
    v(t) = x (1 - exp(-t / tau)); it reaches theta at

        t(x) = tau * log(x / (x - theta))   for x > theta,

    and never for x <= theta, so dim features are silent (the "latency code" of Wunderlich & Pehle 2021
    and snnTorch's ``spikegen.latency``). Bright values spike early: t(1) = tau * log(1 / (1 - theta)), and
    t grows without bound as x falls towards theta. Spikes later than ``t_max`` (if given) are dropped,
    which silences every x below theta / (1 - exp(-t_max / tau)). Values must lie in [0, 1].
    Units: column c is unit c; ``bias_time`` adds unit X.shape[1], last among equal times.
    """
    bias_time = _check_bias_time(bias_time)
    X = _check_features(X)
    tau = _check_positive("tau", tau)
    if not (np.ndim(theta) == 0 and np.isfinite(theta) and 0.0 <= theta < 1.0):
        raise ValueError(f"theta must lie in [0, 1) so that bright values can spike, got {theta!r}")
    t_max = None if t_max is None else _check_positive("t_max", t_max)
    sample, unit = np.nonzero(X > theta)  # row-major: sample by sample, columns in order
    x = X[sample, unit]
    times = tau * np.log(x / (x - theta))
    if t_max is not None:
        keep = times <= t_max
        sample, unit, times = sample[keep], unit[keep], times[keep]
    sample, times, unit = _with_bias(sample, times, unit, X.shape[0], X.shape[1], bias_time)
    return _sorted_batch(sample, times, unit, X.shape[0])


def rate_encode(X, duration: float, max_rate: float, seed, min_rate: float = 0.0,
                bias_time: float | None = None) -> SpikeBatch:
    """Poisson spike trains on [0, duration] ms with rate min_rate + x (max_rate - min_rate), rates in Hz.

    A homogeneous Poisson process has exponential inter-spike intervals of mean 1 / rate; it is drawn here
    in its equivalent form (the count is Poisson with mean rate * duration / 1000, and given the count the
    times are independent and uniform on [0, duration]), which gives exact real times without a loop over
    spikes. Reproducible: ``seed`` (an int, or a ``numpy.random.Generator``) feeds ``default_rng``, which
    draws all counts, then all times. Values must lie in [0, 1].
    Units: column c is unit c; ``bias_time`` adds unit X.shape[1], last among equal times.
    """
    bias_time = _check_bias_time(bias_time)
    X = _check_features(X)
    duration = _check_positive("duration", duration)
    max_rate = _check_positive("max_rate", max_rate)
    if not (np.ndim(min_rate) == 0 and np.isfinite(min_rate) and 0.0 <= min_rate <= max_rate):
        raise ValueError(f"min_rate must lie in [0, max_rate={max_rate}] Hz, got {min_rate!r}")
    rng = np.random.default_rng(seed)
    rates = min_rate + X * (max_rate - min_rate)  # Hz
    counts = rng.poisson(rates * (duration / 1000.0))  # (B, C); time in ms, rates per second
    times = rng.uniform(0.0, duration, int(counts.sum()))
    sample = np.repeat(np.arange(X.shape[0]), counts.sum(axis=1))
    unit = np.repeat(np.tile(np.arange(X.shape[1]), X.shape[0]), counts.ravel())
    sample, times, unit = _with_bias(sample, times, unit, X.shape[0], X.shape[1], bias_time)
    return _sorted_batch(sample, times, unit, X.shape[0])


def _check_signal(signal, dt, delta) -> tuple[np.ndarray, float, float]:
    """(batch, steps, channels) finite float64 signal and positive dt, delta."""
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 3:
        raise ValueError(f"signal must be (samples, time steps, channels), got shape {signal.shape}")
    if signal.shape[1] == 0:
        raise ValueError("signal has no time steps; it needs at least one sample per channel")
    bad = np.argwhere(~np.isfinite(signal))
    if bad.size:
        b, k, c = bad[0]
        raise ValueError(f"signal[{b}, {k}, {c}] is {signal[b, k, c]}, not a finite number")
    return signal, _check_positive("dt", dt), _check_positive("delta", delta)


def _sigma_delta_levels(u: np.ndarray) -> np.ndarray:
    """Emitted level index m (in units of delta) after each sample, for the normalised signal u (B, T, C).

    The level follows the signal with a dead band of one delta: at each sample,
    m_k = min(max(m_{k-1}, floor(u_k)), ceil(u_k)), which keeps |u_k - m_k| < 1 and moves m only by whole
    levels the (linearly interpolated) signal has reached. m_0 = 0: the first sample is the reference."""
    m = np.zeros(u.shape, dtype=np.int64)
    lo, hi = np.floor(u).astype(np.int64), np.ceil(u).astype(np.int64)
    for k in range(1, u.shape[1]):
        m[:, k] = np.minimum(np.maximum(m[:, k - 1], lo[:, k]), hi[:, k])
    return m


def sigma_delta_encode(signal, dt: float, delta: float, bias_time: float | None = None) -> SpikeBatch:
    """Send-on-delta code of time series sampled every ``dt`` ms: a spike each time the signal moves by delta.

    ``signal`` is (samples, steps, channels); sample k is taken at time k * dt, and the signal between
    samples is the straight line joining them. Each channel c has an UP unit 2c and a DOWN unit 2c + 1.
    The reference level starts at the first sample; whenever the signal reaches the level + delta, UP
    spikes and the level rises by delta (DOWN, symmetrically, at the level - delta). The spike time is
    where the interpolated signal crosses that level, exactly, inside its sample interval; a steep interval
    crosses several levels and so holds several spikes. Hence the reconstruction

        signal[b, 0, c] + delta * (number of UP spikes - number of DOWN spikes up to time k * dt)

    stays within delta of signal[b, k, c] at every sample. Total units: 2 * channels, plus one for the bias
    (unit 2 * channels). Equal times keep the order (sample interval, channel, crossing), bias last.
    """
    bias_time = _check_bias_time(bias_time)
    signal, dt, delta = _check_signal(signal, dt, delta)
    B, T, C = signal.shape
    u = (signal - signal[:, :1, :]) / delta  # signal in units of delta above the reference level
    m = _sigma_delta_levels(u)
    steps = np.diff(m, axis=1)  # (B, T - 1, C): signed number of levels crossed in each interval
    b, k, c = np.nonzero(steps)
    n = np.abs(steps[b, k, c])
    direction = np.sign(steps[b, k, c])
    first = np.cumsum(n) - n  # index of each interval's first spike in the flat arrays
    j = np.arange(int(n.sum())) - np.repeat(first, n) + 1  # 1..n within each interval
    b, k, c, direction = (np.repeat(a, n) for a in (b, k, c, direction))
    level = m[b, k, c] + direction * j  # the level crossed, in units of delta
    u0, u1 = u[b, k, c], u[b, k + 1, c]
    fraction = np.clip((level - u0) / (u1 - u0), 0.0, 1.0)  # clip guards rounding at the interval's ends
    times = (k + fraction) * dt
    unit = 2 * c + (direction < 0)
    b, times, unit = _with_bias(b, times, unit, B, 2 * C, bias_time)
    return _sorted_batch(b, times, unit, B)


def current_encode(X, t_on: float = 0.0, bias: bool = False) -> SpikeBatch:
    """Direct current input: one graded event per non-zero feature at ``t_on``, unit c, value X[b, c].

    Connected through ``eventgrad.synapses.Constant``, whose current holds its value, each event switches on
    a current weight * X[b, c] into its targets for the rest of the trial: the first layer integrates the
    features themselves, as analog input, instead of spikes that encode them. Values may be any finite
    real numbers (scale them as the weights expect; a zero feature sends no event, it would add nothing).
    With ``bias``, unit X.shape[1] sends one event of value 1 per sample (a learnable constant current).
    Both methods take graded events: EventProp exactly, BPTT on its grid.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be (samples, features), got shape {X.shape}")
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        b, c = bad[0]
        raise ValueError(f"X[{b}, {c}] = {X[b, c]} is not a finite number")
    if not np.isfinite(t_on) or t_on < 0:
        raise ValueError(f"t_on must be a finite time >= 0 in ms, got {t_on}")
    times, units, values = [], [], []
    for row in X:
        on = np.flatnonzero(row != 0.0)
        v = row[on]
        if bias:
            on, v = np.append(on, X.shape[1]), np.append(v, 1.0)
        times.append(np.full(on.size, float(t_on)))
        units.append(on.astype(np.int64))
        values.append(v)
    return SpikeBatch(times=times, units=units, values=values)


_UNITS_PER_CHANNEL = {latency_encode: 1, threshold_latency_encode: 1, rate_encode: 1, sigma_delta_encode: 2,
                      current_encode: 1}


def n_input_units(encoder, n_channels: int, bias: bool = False) -> int:
    """Size of the input population that ``encoder``'s output needs: channels times units per channel,
    plus one with a bias unit. ``n_input_units(sigma_delta_encode, 3, bias=True) == 7``."""
    if encoder not in _UNITS_PER_CHANNEL:
        names = ", ".join(f.__name__ for f in _UNITS_PER_CHANNEL)
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {names}")
    return _UNITS_PER_CHANNEL[encoder] * int(n_channels) + int(bool(bias))
