"""Independent fine-step reference simulator for current-based LIF neurons with exponential synapses.

Deliberately plain numpy, no imports from eventgrad: this is the check the event-driven engine is
compared against.

Dynamics (time in ms), for every neuron of a layer and every connection c (w_in, w_rec):

    dv/dt   = (-v + sum_c I_c) / tau_mem
    dI_c/dt = -I_c / tau_syn
    a presynaptic spike at time s adds w[pre, post] to I_c of the target at time s (no delay);
    v reaching v_thresh from below emits a spike, and v is set to v_reset at that time.

Exact propagator of the linear system over a time dt (derived by variation of constants):

    I(t+dt) = I e^{-dt/ts}
    v(t+dt) = v e^{-dt/tm} + I K(dt),
    K(dt)   = (1/tm) int_0^dt e^{-(dt-u)/tm} e^{-u/ts} du
            = ts/(ts - tm) (e^{-dt/ts} - e^{-dt/tm})          (tm != ts)
            = (dt/tm) e^{-dt/tm}                              (tm == ts)

K is evaluated as (dt/tm) e^{-dt/tm} expm1(x)/x with x = dt (1/tm - 1/ts), which is the same
function written without the cancellation of the first form when tm is close to ts.

Time stepping: fine steps of length h. Inside a step, the step is split exactly at every incoming
spike time (input spikes for layer 0, spikes of the previous layer found in the same step for the
others). On each piece the state is propagated exactly; a threshold crossing is located by linear
interpolation of v between the two ends of the piece (time error O(h^2)); the neuron is reset at
that time and the rest of the piece is propagated exactly from the reset state.

Recurrent spikes found in a piece [a, b] at time t_c are delivered at t_c exactly by linearity:
the state at b gets I_rec += w e^{-(b-t_c)/ts}, v += w K(b-t_c). Documented shortcut (all effects
are confined to the rare case of two spikes of one layer within the same piece, i.e. < h apart):
(i) a neuron that crosses later in the same piece had its crossing time computed without this
input (error O(w h^2 / tm) in v), and the part of the input injected before its reset is not
erased by the reset (O(w h / tm)); (ii) a neuron pushed over threshold by this correction spikes
at b. A neuron is also assumed not to cross twice within one piece (needs a current ~tm/h).

Input spikes outside [0, n_steps * h) are ignored. h is rounded to 1/round(1/h) so that the 1 ms
recording grid falls on step boundaries; duration is rounded to a whole number of steps.
"""

import numpy as np


def _kernel(dt, tau_mem, tau_syn):
    """K(dt): coefficient of I(t) in v(t + dt) (see module docstring). Accepts arrays."""
    dt = np.asarray(dt, dtype=float)
    if tau_mem == tau_syn:
        return dt / tau_mem * np.exp(-dt / tau_mem)
    x = dt * (1.0 / tau_mem - 1.0 / tau_syn)
    safe_x = np.where(x == 0.0, 1.0, x)
    phi = np.where(x == 0.0, 1.0, np.expm1(safe_x) / safe_x)
    return dt / tau_mem * np.exp(-dt / tau_mem) * phi


class _Layer:
    def __init__(self, spec, h):
        self.n = int(spec["n"])
        self.tm = float(spec["tau_mem"])
        self.ts = float(spec["tau_syn"])
        self.thr = spec.get("v_thresh")
        self.v_reset = float(spec.get("v_reset", 0.0) or 0.0)
        self.w_in = np.asarray(spec["w_in"], dtype=float)
        w_rec = spec.get("w_rec")
        self.w_rec = None if w_rec is None else np.asarray(w_rec, dtype=float)
        assert self.w_in.ndim == 2 and self.w_in.shape[1] == self.n
        assert self.w_rec is None or self.w_rec.shape == (self.n, self.n)
        self.v = np.zeros(self.n)
        self.I_in = np.zeros(self.n)
        self.I_rec = np.zeros(self.n)
        self.h = h
        self.h_consts = self._consts(h)
        self.spike_t, self.spike_i = [], []

    def _consts(self, dt):
        return np.exp(-dt / self.tm), float(_kernel(dt, self.tm, self.ts)), np.exp(-dt / self.ts)

    def _piece(self, a, b):
        """Propagate over [a, b] (no incoming events inside). Returns list of (t_spike, unit)."""
        dt = b - a
        if dt <= 0.0:
            return []
        dv, kern, dI = self.h_consts if dt == self.h else self._consts(dt)
        v0, I0 = self.v, self.I_in + self.I_rec
        v1 = v0 * dv + I0 * kern
        self.I_in *= dI
        self.I_rec *= dI
        self.v = v1
        if self.thr is None:
            return []
        cross = np.flatnonzero((v0 < self.thr) & (v1 >= self.thr))
        if cross.size == 0:
            return []
        # Linear interpolation of v inside the piece, then reset and exact propagation to b.
        tc = a + dt * (self.thr - v0[cross]) / (v1[cross] - v0[cross])
        rem = b - tc
        I_tc = I0[cross] * np.exp(-(tc - a) / self.ts)
        v1[cross] = self.v_reset * np.exp(-rem / self.tm) + I_tc * _kernel(rem, self.tm, self.ts)
        spikes = sorted(zip(tc.tolist(), cross.tolist(), strict=True))
        if self.w_rec is not None:
            for t, j in list(spikes):  # deliver at t exactly, by linearity (see module docstring)
                v_before = self.v.copy()
                self.I_rec += self.w_rec[j] * np.exp(-(b - t) / self.ts)
                self.v += self.w_rec[j] * _kernel(b - t, self.tm, self.ts)
                pushed = np.flatnonzero((v_before < self.thr) & (self.v >= self.thr))
                for k in pushed.tolist():  # shortcut (ii): spike at b; K(0) = 0 so no cascade in v
                    spikes.append((b, k))
                    self.v[k] = self.v_reset
                    self.I_rec += self.w_rec[k]
        return spikes

    def step(self, t0, t1, events):
        """Advance over [t0, t1]; events: time-sorted list of (time, pre index) on w_in."""
        spikes = []
        a = t0
        for t, j in events:
            spikes += self._piece(a, t)
            self.I_in += self.w_in[j]
            a = max(a, t)
        spikes += self._piece(a, t1)
        spikes.sort()
        for t, j in spikes:
            self.spike_t.append(t)
            self.spike_i.append(j)
        return spikes


def simulate_lif_exp(input_times, input_units, n_inputs, layers, duration, h=1e-3):
    """Fine-step simulation of a feed-forward stack of LIF layers with exponential synapses.

    input_times, input_units: 1-D arrays of spike times (ms, any order) and input unit indices.
    layers: list of dicts in feed-forward order with keys "n", "tau_mem", "tau_syn", "v_thresh"
        (None: non-spiking leaky integrator), "v_reset", "w_in" [n_pre, n] (layer 0: from the
        inputs), optional "w_rec" [n, n] (pre, post) or None.
    Returns (spikes, v_trace): spikes is a list per layer of (times, units) arrays sorted by time;
    v_trace is a list per layer of arrays [n_grid, n] with v at t = k ms, k = 1..floor(duration).
    """
    steps_per_ms = max(1, int(round(1.0 / h)))
    h = 1.0 / steps_per_ms
    n_steps = int(round(duration / h))
    n_grid = int(np.floor(duration + 1e-9))
    times = np.asarray(input_times, dtype=float).ravel()
    units = np.asarray(input_units, dtype=int).ravel()
    assert times.shape == units.shape
    assert units.size == 0 or (units.min() >= 0 and units.max() < n_inputs)
    order = np.lexsort((units, times))  # by time, ties by unit: result independent of input order
    times, units = times[order], units[order]
    bounds = np.searchsorted(times, np.arange(n_steps + 1) * h, side="left")

    sim = [_Layer(spec, h) for spec in layers]
    assert sim[0].w_in.shape[0] == n_inputs
    for prev, lay in zip(sim[:-1], sim[1:], strict=True):
        assert lay.w_in.shape[0] == prev.n
    v_trace = [np.zeros((n_grid, lay.n)) for lay in sim]

    for k in range(n_steps):
        t0, t1 = k * h, (k + 1) * h
        lo, hi = bounds[k], bounds[k + 1]
        events = list(zip(times[lo:hi].tolist(), units[lo:hi].tolist(), strict=True))
        for lay in sim:
            events = lay.step(t0, t1, events)
        g = (k + 1) // steps_per_ms
        if (k + 1) % steps_per_ms == 0 and g <= n_grid:
            for lay, tr in zip(sim, v_trace, strict=True):
                tr[g - 1] = lay.v

    spikes = [(np.array(lay.spike_t, dtype=float), np.array(lay.spike_i, dtype=int)) for lay in sim]
    return spikes, v_trace
