"""Quantised, time-stepped inference as a Loihi-2-style chip computes it (numpy, vectorised over the batch).

``quantize(sim)`` turns a trained network of built-in LIF / LI / IF populations with Exponential or Delta
synapses into integer arithmetic, per step of dt and per neuron (Lava's bit-accurate CUBA neuron,
``PyLifModelBitAcc``; decays as in nengo-loihi and mlGeNN's NetX exporter):

    u <- sign(u) * ((|u| * (2**D - d_u)) >> D) + a_in        synaptic current, clipped to +-(2**(S-1) - 1)
    v <- sign(v) * ((|v| * (2**D - d_v)) >> D) + u           voltage, clipped likewise
    spike if v > theta, then v <- v_reset

(Lava wraps a value that leaves the 24-bit range around; here it saturates and is counted in
``saturated``, so that an overflow is reported rather than silently turned into a sign flip.)

with D = ``decay_bits`` (12), d = round(2**D (1 - exp(-dt / tau))), S = ``state_bits`` (24). A presynaptic
spike adds its integer weight m * 2**(e_c - e_min + F) to a_in: m has ``weight_bits`` (8, sign included),
e_c is the connection's power-of-two scale, chosen so that the ``percentile`` (99th) of |w| fits m's range
(larger weights saturate), F = ``frac_bits`` (6, Loihi's weight shift) extra bits of state resolution.
The state unit of a population is 2**(e_min - F) (e_min over its incoming connections), and theta =
round(v_thresh / unit). The weights folded into m are eventgrad's weights times the step's input gain, so
that the step model is the exact solution for spikes on the grid (``_gain``; for a Delta synapse the current
lasts one step, d_u = 2**D).

Time: step k runs from k dt to (k + 1) dt; u and v are the state at its end. An input spike at t counts as
arriving at the step start nearest t (after the trial: dropped), where the step model is exact. A spike
found in step k happened inside it, so it reaches its targets at the start of step k + 1 + floor(D / dt)
(D its delay; every population-to-population connection takes at least one step, as on Loihi), and an
input's delay is rounded to whole steps. ``weight_bits=None`` runs the same time-stepped model in float64
(no rounding), which separates what the grid costs from what the integers cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eventgrad.data.spikes import SpikeBatch, SpikeDataError
from eventgrad.kinds import UnsupportedModel, describe, model_params, network_values, neuron_kind, population_synapse
from eventgrad.readouts import FIRST_SPIKE, MAX, SPIKE_COUNT


class DeployError(UnsupportedModel):
    """A network or option the quantiser cannot take; the message names the population or connection."""


@dataclass
class Layer:
    """One population's fixed-point (or float) constants; all arrays are per neuron."""

    name: str
    size: int
    spiking: bool
    decay_u: np.ndarray      # d_u (integer, out of 2**decay_bits) or 1 - exp(-dt / tau) in float mode
    decay_v: np.ndarray
    threshold: np.ndarray    # in state units
    reset: np.ndarray
    unit: float              # value of one state unit in eventgrad's units of v
    inputs: list = field(default_factory=list)  # (source name, delay steps (int or (pre, post) array), weight)
    exponents: dict = field(default_factory=dict)  # connection -> its power-of-two scale e_c


def _exp_decay(dt: float, tau: np.ndarray) -> np.ndarray:
    return -np.expm1(-dt / tau)


def _gain(neuron: str, synapse: str, params: dict, dt: float) -> np.ndarray:
    """eventgrad weight -> the step model's a_in, so that the model is exact for spikes arriving on the grid.

    With v_k, u_k the state at the end of step k (time (k + 1) dt) and a spike arriving at the start of step k,
    exact integration over a step (Rotter & Diesmann 1999) gives v_k = e_m v_{k-1} + P21 I_k, where I_k is
    the current at the start of step k, I_k = e_s I_{k-1} + w (arrivals): with u = P21 I this is the chip's
    update, and a_in = P21 w. Exponential into LIF / LI: P21 = tau_s (e_s - e_m) / (tau_s - tau_m)
    (e = exp(-dt / tau); (dt / tau) e when the taus are equal); into IF: tau_s (1 - e_s). Delta (the current
    lasts one step): v jumps by w / tau_m and decays over the step, e_m / tau_m (LIF, LI); 1 (IF).
    """
    leaky = neuron in ("LIF", "LI")
    if synapse == "Delta":
        return np.exp(-dt / params["tau_mem"]) / params["tau_mem"] if leaky else np.ones_like(params["v_thresh"])
    tau_s = params["tau_syn"]
    if not leaky:
        return -tau_s * np.expm1(-dt / tau_s)
    tau_m = params["tau_mem"]
    e_s, e_m = np.exp(-dt / tau_s), np.exp(-dt / tau_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        p21 = tau_s * (e_s - e_m) / (tau_s - tau_m)
    return np.where(np.abs(tau_s - tau_m) < 1e-9 * tau_m, dt / tau_m * e_m, p21)


def _scale_exponent(w: np.ndarray, bits: int, percentile: float) -> int:
    """e with 2**e the step of a ``bits``-bit signed weight whose range holds the percentile of |w|."""
    magnitude = np.percentile(np.abs(w), percentile) if w.size else 0.0
    magnitude = magnitude if magnitude > 0 else float(np.max(np.abs(w), initial=0.0))
    if magnitude == 0:
        return 0
    return int(np.ceil(np.log2(magnitude / (2 ** (bits - 1) - 1))))


@dataclass
class QuantizedNetwork:
    """A trained network as fixed-point (or, with ``weight_bits=None``, float) time-stepped arithmetic."""

    layers: list[Layer]
    inputs: dict[str, int]
    dt: float
    n_steps: int
    readout: object
    weight_bits: int | None
    state_bits: int
    decay_bits: int
    sample_every: int = 1  # steps per step of the simulator that was trained (its readout's grid)
    saturated: int = 0  # state values clipped to the state range in the last run

    @property
    def integer(self) -> bool:
        return self.weight_bits is not None

    def _bin(self, batch) -> dict[str, np.ndarray]:
        """Input spikes per step: {input: (n_steps, B, size)}; several spikes in one step add."""
        if isinstance(batch, SpikeBatch):
            if len(self.inputs) != 1:
                raise SpikeDataError(f"the network has inputs {list(self.inputs)}; pass a dict name -> SpikeBatch")
            batch = {next(iter(self.inputs)): batch}
        if not isinstance(batch, dict) or set(batch) != set(self.inputs):
            raise SpikeDataError(f"expected spike batches for inputs {list(self.inputs)}")
        out = {}
        for name, size in self.inputs.items():
            sb = batch[name]
            sb.check(size, self.n_steps * self.dt, name)
            if sb.graded and self.integer:
                raise SpikeDataError(f"input '{name}' carries graded values; the integer model takes binary spikes")
            x = np.zeros((self.n_steps, len(sb.times), size))
            for b, (t, u) in enumerate(zip(sb.times, sb.units)):
                k = np.rint(np.asarray(t) / self.dt).astype(np.int64)
                keep = k < self.n_steps  # those nearer the end of the trial than to its last step start act after it
                value = sb.values[b][keep] if sb.graded else 1.0
                np.add.at(x, (k[keep], b, np.asarray(u)[keep]), value)
            out[name] = x
        return out

    def run(self, batch, record=()) -> dict[str, np.ndarray]:
        """{population: (n_steps, B, size) spikes (bool) or, for a non-spiking one, v in eventgrad's units}.

        ``record``: population names whose state is returned too, as "<name>.u" and "<name>.v" (n_steps, B,
        size) after each step, in state units (integers in the fixed-point model).
        """
        history = self._bin(batch)
        n_batch = next(iter(history.values())).shape[1]
        limit = 2 ** (self.state_bits - 1) - 1
        self.saturated = 0
        out = {f"{name}.{var}": np.zeros((self.n_steps, n_batch, self._layer(name).size))
               for name in record for var in "uv"}
        for layer in self.layers:
            history[layer.name] = np.zeros((self.n_steps, n_batch, layer.size), bool if layer.spiking else float)
        state = {layer.name: (np.zeros((n_batch, layer.size)), np.zeros((n_batch, layer.size)))
                 for layer in self.layers}
        for k in range(self.n_steps):
            for layer in self.layers:
                u, v = state[layer.name]
                a_in = np.zeros((n_batch, layer.size))
                for source, delay, weight in layer.inputs:
                    if k - delay >= 0:  # float64 products of integers stay exact (|sum| << 2**53)
                        a_in += history[source][k - delay] @ weight
                u, v = self._step(layer, u, v, a_in, limit)
                if layer.spiking:
                    fired = v > layer.threshold
                    v = np.where(fired, layer.reset, v)
                    history[layer.name][k] = fired
                else:
                    history[layer.name][k] = v * layer.unit
                state[layer.name] = (u, v)
                if layer.name in record:
                    out[f"{layer.name}.u"][k], out[f"{layer.name}.v"][k] = u, v
        for layer in self.layers:
            out[layer.name] = history[layer.name]
        return out

    def _layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise DeployError(f"no population '{name}' (have {[layer.name for layer in self.layers]})")

    def _step(self, layer: Layer, u, v, a_in, limit: int):
        if not self.integer:
            u = (1.0 - layer.decay_u) * u + a_in
            return u, (1.0 - layer.decay_v) * v + u
        one = 2 ** self.decay_bits
        u = np.sign(u) * np.floor(np.abs(u) * (one - layer.decay_u) / one) + a_in
        u = self._clip(u, limit)
        v = np.sign(v) * np.floor(np.abs(v) * (one - layer.decay_v) / one) + u
        return u, self._clip(v, limit)

    def _clip(self, x, limit: int):
        over = np.abs(x) > limit
        if np.any(over):
            self.saturated += int(np.count_nonzero(over))
            x = np.clip(x, -limit, limit)
        return x

    def predict(self, batch) -> np.ndarray:
        """The readout's logits (B, classes), computed as the simulator's readout does on the grid."""
        ro = self.readout
        result = self.run(batch)[ro.group]
        if ro.kind not in (SPIKE_COUNT, FIRST_SPIKE):  # sample v on the trained simulator's grid, as it did
            result = result[self.sample_every - 1::self.sample_every]
        if ro.kind == SPIKE_COUNT:
            y = result.sum(axis=0).astype(float)
        elif ro.kind == FIRST_SPIKE:
            fired = result.any(axis=0)
            y = np.where(fired, (np.argmax(result, axis=0) + 1) * self.dt, self.n_steps * self.dt)
        elif ro.kind == MAX:
            y = result.max(axis=0)
        else:
            y = np.tensordot(ro.step_weights(len(result), self.dt * self.sample_every), result, axes=(0, 0))
        return ro.logits(y)[0]

    def accuracy(self, data, batch_size: int = 256) -> float:
        """Fraction of ``data`` (a SpikeDataset with class labels) classified right; ``saturated`` then counts
        the state values clipped over the whole set."""
        correct = saturated = 0
        for start in range(0, len(data), batch_size):
            batch, labels = data.batch(np.arange(start, min(start + batch_size, len(data))))
            correct += int(np.sum(np.argmax(self.predict(batch), axis=1) == labels))
            saturated += self.saturated
        self.saturated = saturated
        return correct / len(data)


def float_accuracy(sim, data, batch_size: int = 256) -> float:
    """Accuracy of the simulator itself (exact event-based float simulation) on ``data``."""
    correct = 0
    for start in range(0, len(data), batch_size):
        batch, labels = data.batch(np.arange(start, min(start + batch_size, len(data))))
        logits = sim.readout.logits(sim.run(batch).readout)[0]
        correct += int(np.sum(np.argmax(logits, axis=1) == labels))
    return correct / len(data)


def _delay_steps(c, values: dict, dt: float) -> np.ndarray:
    """Steps from the step a spike is counted in to the step it arrives at (see the module docstring)."""
    d = np.asarray(values[f"{c.name}.delay"], np.float64) / dt if c.delayed else np.zeros(())
    if c.pre.is_input:  # an input spike at t is counted at the step start nearest t
        return np.rint(d).astype(np.int64)
    return 1 + np.floor(d).astype(np.int64)  # a spike found in step k happened inside it: (k + 1/2) dt + D


def _layer(net, g, values, dt, delays, options) -> Layer:
    kind = neuron_kind(g.neuron, g.size)
    if kind is None:
        raise DeployError(f"population '{g.name}' is not a model the quantiser can run ({describe(g.neuron)}); it "
                          "runs LIF, LI and IF with v starting at 0 (eventgrad.neurons.LIF / LI / IF)")
    try:
        synapse, syn_params = population_synapse(net, g, values)
    except UnsupportedModel as err:
        raise DeployError(str(err)) from err
    if kind.name == "IF" and synapse == "Exponential":
        raise DeployError(f"population '{g.name}': an IF neuron fed by Exponential synapses has no CUBA form here; "
                          "use LIF or Delta synapses")
    params = model_params(g.neuron, g.name, values, g.size)
    gain = _gain(kind.name, synapse, {**params, **syn_params}, dt)
    bits, integer = options["weight_bits"], options["weight_bits"] is not None
    weights = {c.name: np.asarray(values[f"{c.name}.weight"], np.float64) * gain[None, :] for c in net.incoming(g)}
    exps = {name: _scale_exponent(w, bits, options["percentile"]) for name, w in weights.items()} if integer else {}
    e_min = min(exps.values(), default=0)
    unit = 2.0 ** (e_min - options["frac_bits"]) if integer else 1.0
    one = 2 ** options["decay_bits"]
    decay_u = (np.full(g.size, 1.0) if synapse == "Delta" else _exp_decay(dt, syn_params["tau_syn"]))
    decay_v = _exp_decay(dt, params["tau_mem"]) if "tau_mem" in params else np.zeros(g.size)
    if integer:
        decay_u, decay_v = np.rint(decay_u * one), np.rint(decay_v * one)
    spiking = kind.name != "LI"
    threshold = params["v_thresh"] / unit if spiking else np.full(g.size, np.inf)
    reset = params["v_reset"] / unit if spiking else np.zeros(g.size)
    if integer:
        threshold, reset = np.rint(threshold), np.rint(reset)
    layer = Layer(g.name, g.size, spiking, decay_u, decay_v, threshold, reset, unit, exponents=exps)
    top = 2 ** (bits - 1) - 1 if integer else None
    for c in net.incoming(g):
        w = weights[c.name]
        if integer:  # mantissa times the shift to the population's state unit
            shift = exps[c.name] - e_min + options["frac_bits"]
            w = np.clip(np.rint(w / 2.0 ** exps[c.name]), -top, top) * 2.0 ** shift
        steps = delays[c.name]
        for d in np.unique(steps):  # per-synapse delays: one weight matrix per distinct delay
            layer.inputs.append((c.pre.name, int(d), np.where(steps == d, w, 0.0) if steps.ndim else w))
    return layer


def _check_readout(readout, net) -> None:
    g = net.group(readout.group)
    if g.is_input or readout.var not in (None, g.neuron.output_var):
        raise DeployError(f"the readout reads '{readout.group}.{readout.var}'; the quantised model reads the output "
                          "variable v of a population")
    if g.neuron.threshold is not None and readout.kind not in (FIRST_SPIKE, SPIKE_COUNT):
        raise DeployError(f"the readout reads v of the spiking population '{g.name}'; the quantised model reads "
                          "spikes of spiking populations (FirstSpikeTime, SpikeCount) and v of LI ones")


def quantize(sim, weight_bits: int | None = 8, state_bits: int = 24, decay_bits: int = 12, frac_bits: int = 6,
             percentile: float = 99.0, dt: float | None = None) -> QuantizedNetwork:
    """The simulator's network (with its current parameters) as Loihi-2-style fixed-point arithmetic.

    ``weight_bits=None``: the same time-stepped model in float64. ``dt`` (ms): the chip's time step
    (default: the simulator's). Refused with an error naming the population: models other than LIF / LI / IF
    with Exponential or Delta synapses (one kind and one tau per population), as in NIR export.
    """
    for name, value, low in (("state_bits", state_bits, 2), ("decay_bits", decay_bits, 1), ("frac_bits", frac_bits, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise DeployError(f"{name} must be an integer >= {low}, got {value!r}")
    if weight_bits is not None and (isinstance(weight_bits, bool) or not isinstance(weight_bits, (int, np.integer))
                                    or weight_bits < 2):
        raise DeployError(f"weight_bits must be an integer >= 2 (sign included) or None (float), got {weight_bits!r}")
    if weight_bits is not None and state_bits + decay_bits > 53:
        raise DeployError(f"state_bits + decay_bits = {state_bits + decay_bits} > 53: the decays would not be computed "
                          "exactly (the integer arithmetic runs in float64, exact up to 2**53)")
    if not 0 < percentile <= 100:
        raise DeployError(f"percentile must be in (0, 100], got {percentile!r}")
    net, values = network_values(sim)
    dt = float(dt if dt is not None else sim.dt)
    if not dt > 0:
        raise DeployError(f"dt must be a positive time step in ms, got {dt!r}")
    if getattr(sim, "readout", None) is None:
        raise DeployError("the simulator has no readout; give it the readout the network was trained with")
    _check_readout(sim.readout, net)
    delays = {c.name: _delay_steps(c, values, dt) for c in net.connections}
    options = {"weight_bits": weight_bits, "decay_bits": decay_bits, "frac_bits": frac_bits, "percentile": percentile}
    layers = [_layer(net, g, values, dt, delays, options) for g in net.groups if not g.is_input]
    inputs = {g.name: g.size for g in net.groups if g.is_input}
    ratio = sim.dt / dt
    if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
        raise DeployError(f"dt = {dt:g} ms must divide the simulator's dt = {sim.dt:g} ms, whose grid the readout "
                          "samples")
    n_steps = int(round(sim.duration / dt))
    if weight_bits is not None:
        limit = 2 ** (state_bits - 1) - 1
        for layer in layers:
            if np.any(np.abs(layer.threshold[np.isfinite(layer.threshold)]) > limit):
                raise DeployError(
                    f"population '{layer.name}': its threshold is {np.abs(layer.threshold).max():.0f} state units, "
                    f"beyond the {state_bits}-bit state range (+-{limit}); raise state_bits or lower weight_bits "
                    "or frac_bits")
    return QuantizedNetwork(layers, inputs, dt, n_steps, sim.readout, weight_bits, state_bits, decay_bits,
                            sample_every=int(round(ratio)))
