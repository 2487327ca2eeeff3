"""Optimisers that update a parameter dictionary (such as ``Simulator.params``) in place.

The simulator returns gradients as a dict keyed like its parameters, so an optimiser only needs the
arrays and the gradients; writing in place keeps ``sim.params`` the one place the values live. The
moments are kept in float64 whatever the parameters' dtype, so that float32 training does not also
round the optimiser's state. Nothing is random: the same gradients give the same updates.
"""

from __future__ import annotations

import fnmatch

import numpy as np


def _match(patterns: dict | None, what: str, params: dict) -> dict:
    """{key: value} for every parameter key matched by a glob pattern (first matching pattern wins)."""
    out: dict = {}
    for pattern, value in (patterns or {}).items():
        hits = [k for k in params if fnmatch.fnmatchcase(k, pattern)]
        if not hits:
            raise KeyError(f"{what} pattern '{pattern}' matches no parameter; known: {sorted(params)}")
        for k in hits:
            out.setdefault(k, value)
    return out


class Optimizer:
    """Shared bookkeeping: which keys to update, gradient checks, clipping, per-key rates and bounds.

    lr_scale: {glob pattern: factor} multiplies the learning rate of matching keys (time constants and
    delays want smaller steps than weights), e.g. ``{"*.tau_*": 0.1}``. bounds: {pattern: (low, high)}
    clips matching parameters after every step (None for no limit), e.g. ``{"h.tau_mem": (1.0, None)}``
    keeps a time constant positive. clip_norm: the gradients of one step are scaled down together so
    that their global L2 norm is at most this. ``lr`` is the base rate; a schedule may rewrite it.
    """

    def __init__(self, params: dict, lr: float, keys=None, lr_scale: dict | None = None, bounds: dict | None = None,
                 clip_norm: float | None = None):
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be positive and finite, got {lr}")
        self.params = params
        self.lr = float(lr)
        self.keys = None if keys is None else list(keys)
        for key in self.keys or []:
            if key not in params:
                raise KeyError(f"optimiser key '{key}' is not a parameter; known: {sorted(params)}")
        self.lr_scale = _match(lr_scale, "lr_scale", params)
        for key, factor in self.lr_scale.items():
            if not (np.isfinite(factor) and factor >= 0):
                raise ValueError(f"lr_scale for '{key}' must be a finite factor >= 0, got {factor}")
        self.bounds = _match(bounds, "bounds", params)
        for key, pair in self.bounds.items():
            low, high = pair
            if low is not None and high is not None and low > high:
                raise ValueError(f"bounds for '{key}': low {low} is above high {high}")
        if clip_norm is not None and not (np.isfinite(clip_norm) and clip_norm > 0):
            raise ValueError(f"clip_norm must be positive and finite, got {clip_norm}")
        self.clip_norm = clip_norm
        self.t = 0

    def _pairs(self, grads: dict):
        """(key, parameter array, gradient as float64) for every key this step updates."""
        keys = self.keys if self.keys is not None else list(grads)
        for key in keys:
            if key not in grads:
                raise KeyError(f"no gradient for '{key}'; the gradients have {sorted(grads)}")
            if key not in self.params:
                raise KeyError(f"gradient '{key}' has no parameter; known: {sorted(self.params)}")
            p = self.params[key]
            if not isinstance(p, np.ndarray):
                raise TypeError(f"parameter '{key}' is a {type(p).__name__}, not a numpy array to update in place")
            g = np.asarray(grads[key], dtype=np.float64)
            if g.shape != p.shape:
                raise ValueError(f"gradient '{key}' has shape {g.shape}, but the parameter has {p.shape}")
            if not np.all(np.isfinite(g)):
                raise ValueError(f"gradient '{key}' contains NaN or infinite values")
            yield key, p, g

    def step(self, grads: dict) -> float:
        """One update of every key; returns the gradients' global L2 norm before clipping."""
        self.t += 1
        pairs = list(self._pairs(grads))
        norm = float(np.sqrt(sum(float(np.sum(g * g)) for _, _, g in pairs)))
        factor = 1.0 if self.clip_norm is None or norm <= self.clip_norm else self.clip_norm / norm
        for key, p, g in pairs:
            value = p - self.lr_scale.get(key, 1.0) * self._update(key, g * factor)
            low, high = self.bounds.get(key, (None, None))
            p[...] = np.clip(value, low, high) if (low is not None or high is not None) else value
        return norm

    def _update(self, key: str, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Everything a checkpoint needs to resume: step count, rate, and the per-key buffers."""
        return {"t": self.t, "lr": self.lr, **{name: dict(getattr(self, name)) for name in self._buffers}}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state_dict(), checked first: a step count that is not a count, a rate that is not positive,
        buffers of unknown parameters or of the wrong shape, or no buffers at all after steps that keep some
        (the optimiser would silently start over) are refused, and nothing changes."""
        t, lr = state.get("t"), state.get("lr")
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"the optimiser state's step count t={t!r} is not a count of steps")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"the optimiser state's learning rate lr={lr!r} is not positive and finite")
        buffers = {name: {k: np.array(v, dtype=np.float64) for k, v in state.get(name, {}).items()}
                   for name in self._buffers}
        if t > 0 and self._keeps_buffers() and not any(buffers.values()):
            raise ValueError(f"the optimiser state has taken {t} steps but holds none of its buffers "
                             f"{list(self._buffers)}; resuming from it would restart the optimiser")
        for name, values in buffers.items():
            for key, value in values.items():
                if key not in self.params or np.shape(self.params[key]) != value.shape:
                    raise ValueError(f"the optimiser buffer '{name}/{key}' does not fit the parameters ("
                                     f"{'no such parameter' if key not in self.params else f'shape {value.shape}'})")
        self.t, self.lr = int(t), float(lr)
        for name, values in buffers.items():
            setattr(self, name, values)

    def _keeps_buffers(self) -> bool:
        """Whether a step stores buffers (plain SGD keeps none)."""
        return True


class SGD(Optimizer):
    """p <- p - lr * b, with b <- momentum * b + g (b = g on the first step; plain SGD for momentum 0)."""

    _buffers = ("buffers",)

    def __init__(self, params: dict, lr: float, momentum: float = 0.0, keys=None, **options):
        super().__init__(params, lr, keys, **options)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.buffers: dict[str, np.ndarray] = {}

    def _keeps_buffers(self) -> bool:
        return self.momentum != 0.0

    def _update(self, key, g):
        if self.momentum == 0.0:
            return self.lr * g
        b = self.buffers.get(key)
        b = g.copy() if b is None else self.momentum * b + g
        self.buffers[key] = b
        return self.lr * b


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), as in PyTorch without weight decay.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    p <- p - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t).
    """

    _buffers = ("m", "v")

    def __init__(self, params: dict, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, keys=None,
                 **options):
        super().__init__(params, lr, keys, **options)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def _update(self, key, g):
        b1, b2 = self.betas
        m = b1 * self.m.get(key, 0.0) + (1.0 - b1) * g  # first moment
        v = b2 * self.v.get(key, 0.0) + (1.0 - b2) * g * g  # second moment
        self.m[key], self.v[key] = m, v
        m_hat = m / (1.0 - b1**self.t)  # bias corrections for the zero start
        v_hat = v / (1.0 - b2**self.t)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
