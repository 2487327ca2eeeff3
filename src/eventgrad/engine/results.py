"""What a forward pass leaves behind: the per-sample event logs, the batch result, and the kernels'
status codes with the errors they stand for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from eventgrad.engine.simulator import Simulator

OK, ERR_CAPACITY, ERR_RESET, ERR_CASCADE, ERR_NONFINITE, ERR_BUDGET, ERR_ROOM = range(7)
KIND_INPUT = 2  # kinds below it are spikes; inputs and arrivals of delayed spikes are logged too


class SimulationError(RuntimeError):
    """The simulation reached a state the model does not define (e.g. a reset above threshold)."""


@dataclass
class SampleRecord:
    """What the forward pass of one sample leaves for the backward pass and for the user."""

    log_t: np.ndarray
    log_i: np.ndarray
    sp_x: np.ndarray
    n_events: int
    Zs: np.ndarray
    first: np.ndarray


class Result:
    """Forward results of a batch: readout (B, outputs) and the spikes of every population."""

    def __init__(self, sim: Simulator, records: list[SampleRecord], readout: np.ndarray):
        self._sim = sim
        self.records = records
        self.readout = readout

    def spike_times(self, group: str, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, units) of the spikes of population ``group`` in sample ``b``, in time order."""
        g = self._sim.network.group(group)
        rec = self.records[b]
        mask = _spikes_of(rec, g.index)
        times, units = rec.log_t[: rec.n_events][mask].astype(np.float64), rec.log_i[: rec.n_events][mask, 1]
        order = np.argsort(times, kind="stable")  # the step-parallel kernels log a step's spikes by neuron
        return times[order], units[order]

    def spike_counts(self, group: str) -> np.ndarray:
        """(B, size) number of spikes of each neuron of ``group`` in each sample."""
        g = self._sim.network.group(group)
        counts = np.zeros((len(self.records), g.size), np.int64)
        for b, rec in enumerate(self.records):  # counted from the log: the times are not needed
            counts[b] = np.bincount(rec.log_i[: rec.n_events][_spikes_of(rec, g.index), 1], minlength=g.size)
        return counts


def _spikes_of(rec: SampleRecord, group: int) -> np.ndarray:
    """Which events of a sample's log are spikes of population ``group`` (the generic and fast kernels log
    inputs and arrivals too, in rows [group, unit, kind, ...]; the step kernels log spikes only, [group, unit])."""
    log_i = rec.log_i[: rec.n_events]
    if log_i.shape[1] == 2:
        return log_i[:, 0] == group
    return (log_i[:, 0] == group) & (log_i[:, 2] < KIND_INPUT)


def raise_for_status(status, counts, sim: Simulator) -> None:
    """Turn a kernel's status into the error it stands for (``counts[1:4]``: the step, group and unit at fault)."""
    if status == OK:
        return
    network = sim.network
    if status == ERR_BUDGET:
        g = network.groups[int(counts[2])]
        t0 = int(counts[1]) * sim.dt
        raise SimulationError(f"population '{g.name}' (neuron {counts[3]}) fires at a runaway rate: the step "
                              f"[{t0:g}, {t0 + sim.dt:g}) ms holds more than max_spikes_per_step="
                              f"{sim.max_spikes_per_step} spikes. Check its weights, time constants and threshold "
                              "(a time constant near zero or huge input weights make a neuron fire ever faster), or "
                              "pass a larger max_spikes_per_step to Simulator if that many are expected")
    if status == ERR_RESET:
        g = network.groups[int(counts[2])]
        raise SimulationError(f"neuron {counts[3]} of '{g.name}' is still above threshold right after its "
                              f"reset; the model '{g.neuron.threshold_text}' would spike forever")
    if status == ERR_CASCADE:
        raise SimulationError("a cascade of simultaneous spikes did not end (jumps keep pushing neurons over "
                              "threshold at the same instant)")
    if status == ERR_NONFINITE:
        raise SimulationError("the state became NaN or infinite; check time constants, weights and dt")
    raise SimulationError(f"kernel status {status}")


def check_finite_gradients(grads: dict, dtype, remedies: str = "smaller weights or a shorter trial") -> None:
    """A NaN or infinite gradient is an error that names it, never a value handed on to an optimiser."""
    bad = [f"'{k}' ({np.size(v) - int(np.isfinite(v).sum())} of {np.size(v)} entries)"
           for k, v in grads.items() if not np.all(np.isfinite(v))]
    if not bad:
        return
    hint = "; dtype='float64' has a wider range" if np.dtype(dtype) == np.float32 else ""
    raise SimulationError(f"the gradient is NaN or infinite in {', '.join(bad)}: the backward pass overflowed{hint}. "
                          f"Gradients of strongly driven or chaotic dynamics can grow without bound: {remedies} "
                          "keep them finite")
