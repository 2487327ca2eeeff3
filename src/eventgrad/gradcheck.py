"""Check a simulator's EventProp gradients against central finite differences of its own forward loss."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GradCheckReport:
    """Worst relative error per parameter: max |fd - adjoint| / max(|fd|, |adjoint|) over checked entries."""

    errors: dict[str, float] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)
    loss: float = float("nan")

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    def __str__(self) -> str:
        rows = [f"{'parameter':<24} {'entries':>8} {'worst rel. error':>18}"]
        rows += [f"{k:<24} {self.checked[k]:>8} {v:>18.3e}" for k, v in self.errors.items()]
        return "\n".join(rows)


def check_gradients(sim, batch, labels, params=None, eps: float = 1e-6, max_entries: int = 12,
                    seed: int = 0, regularizer=None) -> GradCheckReport:
    """Compare ``sim.loss_and_grad`` with central differences, entry by entry, for each parameter.

    Up to ``max_entries`` entries per parameter (chosen with ``seed``) are perturbed by ``eps`` times
    max(1, |value|). Run it in float64: float32 differences drown in rounding. Choose ``eps`` small
    enough that no spike appears or vanishes, else the difference quotient measures a jump.
    ``regularizer``: checked together with the loss (e.g. a loss on spike times; see Simulator.loss_and_grad).
    """
    if np.dtype(sim.dtype) != np.float64:
        raise ValueError("check_gradients needs a float64 simulator (dtype='float64')")
    rng = np.random.default_rng(seed)
    loss, grads = sim.loss_and_grad(batch, labels, regularizer=regularizer)
    report = GradCheckReport(loss=loss)
    for key in params if params is not None else sim.trainable:
        if key not in grads:
            raise KeyError(f"'{key}' has no gradient; trainable: {sorted(grads)}")
        value = sim.params[key]
        flat = value.reshape(-1)
        idx = np.arange(flat.size)
        if flat.size > max_entries:
            idx = rng.choice(flat.size, max_entries, replace=False)
        fd = np.empty(len(idx))
        for n, i in enumerate(idx):
            original = flat[i]
            step = eps * max(1.0, abs(original))
            flat[i] = original + step
            plus = sim.loss(batch, labels, regularizer=regularizer)
            flat[i] = original - step
            minus = sim.loss(batch, labels, regularizer=regularizer)
            flat[i] = original
            fd[n] = (plus - minus) / (2 * step)
        ad = np.asarray(grads[key], dtype=np.float64).reshape(-1)[idx]
        scale = max(np.abs(fd).max(), np.abs(ad).max(), 1e-300)
        report.errors[key] = float(np.abs(fd - ad).max() / scale)
        report.checked[key] = len(idx)
    return report
