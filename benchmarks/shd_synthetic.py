"""SHD-shaped synthetic benchmark: forward + backward time per sample, peak memory, synaptic events.

700 Poisson inputs (about 10,000 spikes per sample per second), 256 recurrent LIF neurons, 20 LI
outputs, exponential synapses, dt = 1 ms, float32. Each configuration runs in its own process so that
its peak resident memory is its own.

"floor" is the synaptic work alone, timed on the same events, weights and threads: every event's weight
row added once into its targets and once into its gradient row: the least that a simulator which
applies every event to its whole weight row in each pass can do. "x floor" (forward + backward over the
floor) says how close the kernels come to that bound of events x row length. "2-row floor" is the same
with two state rows per target, which exact event times need here: an input inside a step changes both
the synaptic current and the voltage at the step's end, and its gradient row reads both adjoint rows.
"delay floor" (with ``--input-delays``) is the 2-row floor with every input arrival added into the step its
own delay puts it in, and its targets' adjoint read back from that step into its weight- and delay-gradient
rows: a scatter and a gather per arrival, the least that an engine which keeps every arrival's exact time
can do once each synapse has its own delay.

    python benchmarks/shd_synthetic.py                      # the table (1 s and 10 s trials)
    python benchmarks/shd_synthetic.py --durations 1000 --batch 32 --repeats 3
    python benchmarks/shd_synthetic.py --recurrent-delay 1 --init mlgenn    # step-parallel kernels, 45 Hz
    python benchmarks/shd_synthetic.py --input-delays 64 --init mlgenn      # learnable per-synapse delays

``--init mlgenn`` draws the weights as mlGeNN's SHD recipe does (input N(0.03, 0.01), recurrent N(0, 0.02),
output N(0, 0.03)): the hidden layer fires at about 45 Hz, the rate training starts at; the default
(input N(0.02, 0.02), recurrent N(0, 0.02), output N(0, 0.1)) gives about 11 Hz. ``--recurrent-delay D``
gives the recurrent connection a delay of D ms (1 ms = dt lets the step-parallel kernels run it);
``--input-delays MAX`` gives every input synapse its own learnable delay, uniform in [0, MAX] ms (mlGeNN's
delay paper learns delays of up to 64 ms on SHD's input), and adds their gradient.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

W_IN_MEAN = 0.02
# (input mean, input sd, recurrent sd, output sd) of the weights
INITS = {"benchmark": (W_IN_MEAN, 0.02, 0.02, 0.1), "mlgenn": (0.03, 0.01, 0.02, 0.03)}


def make_batch(rng, batch, n_in, duration, spikes_per_second):
    import eventgrad as eg

    times, units = [], []
    for _ in range(batch):
        n = rng.poisson(spikes_per_second * duration / 1000.0)
        t = np.sort(rng.uniform(0.0, duration, n))
        times.append(t)
        units.append(rng.integers(0, n_in, n))
    return eg.SpikeBatch(times, units), rng.integers(0, 20, batch)


def build_network(rng, n_in, n_hidden, n_out, init="benchmark", recurrent_delay=None, input_delays=None):
    """The network (weights drawn from ``rng``), without a simulator: other benchmarks reuse it."""
    import eventgrad as eg

    w_in, sd_in, sd_rec, sd_out = INITS[init]
    net = eg.Network()
    x = net.add_input("x", n_in)
    h = net.add_population("h", n_hidden, eg.neurons.LIF(tau_mem=20.0))
    o = net.add_population("o", n_out, eg.neurons.LI(tau_mem=20.0))
    w = rng.normal(w_in, sd_in, (n_in, n_hidden))
    if input_delays:
        net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=w, name="xh",
                    delay=rng.uniform(0.0, input_delays, (n_in, n_hidden)), learn_delay=True)
    else:
        net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=w, name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, sd_rec, (n_hidden, n_hidden)),
                name="hh", delay=recurrent_delay)
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, sd_out, (n_hidden, n_out)), name="ho")
    return net


@numba.njit(nogil=True)
def _synaptic_work(pre, ptr, w, grad, z, b0, b1):
    """Samples b0..b1-1: each event of sample b (rows ``pre[ptr[b]:ptr[b + 1]]`` of ``w``) adds its weight row
    into the targets' state ``z`` (one row, or two rows with two coefficients), then adds ``z`` (standing in
    for the adjoint; two rows: their weighted sum) into its gradient row."""
    c0 = w.dtype.type(0.75)  # two-row coefficients, as the event's exponentials would be
    c1 = w.dtype.type(0.25)
    for b in range(b0, b1):
        z[:] = 0.0
        z0 = z[0]
        z1 = z[z.shape[0] - 1]
        for e in range(ptr[b], ptr[b + 1]):
            row = w[pre[e]]
            if z.shape[0] == 1:
                for m in range(row.shape[0]):
                    z0[m] += row[m]
            else:
                for m in range(row.shape[0]):
                    z0[m] += c0 * row[m]
                    z1[m] += c1 * row[m]
        for e in range(ptr[b], ptr[b + 1]):
            g_row = grad[pre[e]]
            if z.shape[0] == 1:
                for m in range(g_row.shape[0]):
                    g_row[m] += z0[m]
            else:
                for m in range(g_row.shape[0]):
                    g_row[m] += c0 * z0[m] + c1 * z1[m]


@numba.njit(nogil=True)
def _step_end_factors(t, s, dt, mu0, mu1):
    """exp(mu (t1 - t)) for both modes, t1 the end of step s: an event's factors to its own step's end."""
    t1 = (s + 1) * dt
    return np.exp(mu0 * (t1 - t)), np.exp(mu1 * (t1 - t))


@numba.njit(nogil=True)
def _ring_slot(s0, k, R):
    """The ring slot k steps after slot s0 (k < R), without a division."""
    slot = s0 + k
    return slot - R if slot >= R else slot


@numba.njit(nogil=True)
def _delayed_input_work(times, pre, ptr, WF, K, grad, ring, z, dt, n_steps, b0, b1):
    """Samples b0..b1-1 of the input events with a delay per synapse: each event of sample b (time
    ``times[e]``, source ``pre[e]``) adds its two shares into each target's cell of the ring slot of the step
    its own delay puts it in (K[i, m] whole steps after the sender's step; WF[i, m, k]: the weight times the
    factor for the delay's fraction of a step, as the kernels' tables hold it), and each step's slot is
    taken into the state z and cleared as time passes it. Backwards, in reverse time, each step's adjoint
    (z standing in) goes into the ring, and each event reads its targets' two adjoint values in their
    arrivals' steps into its weight- and delay-gradient rows (grad[i, m, 0] and [i, m, 1]). No lists, bounds
    or walks: the least that an engine which puts every arrival in its own step can do, on top of the
    two-row work of the undelayed events. Both cells of a target side by side (one cache line per target
    and slot): the faster of the layouts tried."""
    R = ring.shape[0]
    T = K.shape[1]
    one = WF.dtype.type(1.0)
    mu0 = -one / 20  # the LIF's membrane and synaptic rates
    mu1 = -one / 5
    decay = WF.dtype.type(0.95)
    for b in range(b0, b1):
        ring[:] = 0.0
        z[:] = 0.0
        cur = 0
        for e in range(ptr[b], ptr[b + 1] + 1):
            s = n_steps if e == ptr[b + 1] else min(int(times[e] / dt), n_steps - 1)
            while cur < s:  # the steps before this event's: take their slots into the state
                slot = cur % R
                for m in range(T):
                    for k in range(2):
                        z[m, k] = decay * z[m, k] + ring[slot, m, k]
                        ring[slot, m, k] = 0.0
                cur += 1
            if e == ptr[b + 1]:
                break
            i = pre[e]
            c0, c1 = _step_end_factors(times[e], s, dt, mu0, mu1)
            s0 = s % R
            for m in range(T):
                slot = _ring_slot(s0, K[i, m], R)
                ring[slot, m, 0] += c0 * WF[i, m, 0]
                ring[slot, m, 1] += c1 * WF[i, m, 1]
        ring[:] = 0.0  # backwards: the ring holds the adjoint of the last R steps reached
        cur = n_steps
        for e in range(ptr[b + 1] - 1, ptr[b] - 1, -1):
            s = min(int(times[e] / dt), n_steps - 1)
            while cur > s:
                cur -= 1
                slot = cur % R
                for m in range(T):
                    for k in range(2):
                        ring[slot, m, k] = z[m, k]
                        z[m, k] *= decay
            i = pre[e]
            c0, c1 = _step_end_factors(times[e], s, dt, mu0, mu1)
            s0 = s % R
            for m in range(T):
                slot = _ring_slot(s0, K[i, m], R)
                a0 = c0 * WF[i, m, 0] * ring[slot, m, 0]
                a1 = c1 * WF[i, m, 1] * ring[slot, m, 1]
                grad[i, m, 0] += a0 + a1  # the weight's gradient (times the weight: the same work)
                grad[i, m, 1] += mu0 * a0 + mu1 * a1  # the delay's


def _event_rows(rows):
    """(pre, ptr): the samples' event rows (one array of sources per sample) end to end, and where each
    sample's start."""
    pre = np.concatenate([np.asarray(r, np.int64) for r in rows])
    ptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    return pre, ptr


def _hidden_events(sim, res, n):
    """(pre, ptr, w): the hidden spikes of n samples as event rows, and the weights they read (the recurrent
    and output rows side by side)."""
    w = np.ascontiguousarray(np.concatenate([sim.params["hh.weight"], sim.params["ho.weight"]], axis=1))
    return (*_event_rows([res.spike_times("h", b)[1] for b in range(n)]), w)


def _best_ms_per_sample(pool, threads, chunk, repeats, n):
    """The best of ``repeats`` runs of chunk(0..threads-1) on the pool, in ms per sample of n samples, after
    one run of chunk(0) that compiles (the first time) and warms the caches."""
    chunk(0)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        list(pool.map(chunk, range(threads)))
        best = min(best, time.perf_counter() - t0)
    return 1000 * best / n


def delay_floor(sim, batch, res, threads, repeats):
    """Milliseconds per sample of the two-row synaptic work with the input connection's delays per synapse
    (``_delayed_input_work`` for the input events, ``_synaptic_work`` with two rows for the hidden ones), for
    the same events, weights, delays, dtype and threads; None without per-synapse input delays."""
    d = np.asarray(sim.params.get("xh.delay", np.zeros(1)))
    if d.ndim != 2:
        return None
    w = sim.params["xh.weight"]
    dt = w.dtype.type(sim.dt)
    K = np.floor(d.astype(w.dtype) / dt).astype(np.int32)
    frac = d - K * sim.dt
    WF = np.stack([np.exp(frac / 20.0) * w, np.exp(frac / 5.0) * w], axis=2).astype(w.dtype)  # w exp(-mu (d - K dt))
    times = np.concatenate([np.asarray(t, w.dtype) for t in batch.times])
    pre, ptr = _event_rows(batch.units)
    n = len(batch.units)
    h_pre, h_ptr, h_w = _hidden_events(sim, res, n)
    bounds = np.linspace(0, n, threads + 1).astype(np.int64)
    R = int(K.max()) + 2
    T = w.shape[1]
    work = [(np.zeros(WF.shape, w.dtype), np.zeros((R, T, 2), w.dtype), np.zeros((T, 2), w.dtype),
             np.zeros_like(h_w), np.zeros((2, h_w.shape[1]), w.dtype)) for _ in range(threads)]

    def chunk(k):
        grad, ring, z, h_grad, h_z = work[k]
        _delayed_input_work(times, pre, ptr, WF, K, grad, ring, z, dt, sim.n_steps, bounds[k], bounds[k + 1])
        _synaptic_work(h_pre, h_ptr, h_w, h_grad, h_z, bounds[k], bounds[k + 1])

    with ThreadPoolExecutor(threads) as pool:
        return _best_ms_per_sample(pool, threads, chunk, repeats, n)


def synaptic_floors(sim, batch, res, threads, repeats):
    """Milliseconds per sample of the synaptic work alone, with one and with two state rows per target
    ({1: ms, 2: ms}): every event's weight row added once forwards (into its targets) and once backwards
    (into its gradient row), for the same events, weights, dtype and threads. The kernels' time divided by
    this says how far they are from the bound of events x row length. Two rows: each event changes two
    state rows of its targets and its gradient row reads two adjoint rows, as exact event times need for a
    LIF neuron with an exponential synapse."""
    n = len(batch.units)
    h_pre, h_ptr, h_w = _hidden_events(sim, res, n)
    passes = [(*_event_rows(batch.units), sim.params["xh.weight"]), (h_pre, h_ptr, h_w)]
    bounds = np.linspace(0, n, threads + 1).astype(np.int64)
    floors = {}
    with ThreadPoolExecutor(threads) as pool:
        for state_rows in (1, 2):
            work = [[(np.zeros_like(w), np.zeros((state_rows, w.shape[1]), w.dtype)) for _, _, w in passes]
                    for _ in range(threads)]

            def chunk(k, work=work):
                for (pre, ptr, w), (grad, z) in zip(passes, work[k]):
                    _synaptic_work(pre, ptr, w, grad, z, bounds[k], bounds[k + 1])

            floors[state_rows] = _best_ms_per_sample(pool, threads, chunk, repeats, n)
    return floors


def build(rng, n_in, n_hidden, n_out, dtype, duration, kernels="auto", excursions="exact", init="benchmark",
          recurrent_delay=None, input_delays=None):
    import eventgrad as eg

    net = build_network(rng, n_in, n_hidden, n_out, init, recurrent_delay, input_delays)
    return eg.Simulator(net, dt=1.0, duration=duration, dtype=dtype, readout=eg.readouts.SumVar("o"),
                        loss=eg.losses.SoftmaxCrossEntropy(), kernels=kernels,
                        excursions=excursions)


def measure(args) -> dict:
    rng = np.random.default_rng(args.seed)
    sim = build(rng, args.inputs, args.hidden, 20, args.dtype, args.duration, args.kernels, args.excursions, args.init,
                args.recurrent_delay, args.input_delays)
    if args.threads:
        sim.threads = args.threads
    batch, labels = make_batch(rng, args.batch, args.inputs, args.duration, args.rate)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sim.loss_and_grad(batch, labels)  # compile (or load) kernels, warm caches
    fwd, both = [], []
    for _ in range(args.repeats):
        sim.last_result = None  # the peak memory is that of one batch's forward and backward passes
        t0 = time.perf_counter()
        sim.run(batch)  # not kept
        fwd.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sim.loss_and_grad(batch, labels)
        both.append(time.perf_counter() - t0)
    res = sim.last_result  # the forward pass of the last loss_and_grad
    step, nan = sim.kernels_used == "step", float("nan")
    n_input = sum(len(t) for t in batch.times)
    stats = np.mean([getattr(r, "search_stats", np.zeros(4)) for r in res.records], axis=0)
    n_hidden_spikes = int(res.spike_counts("h").sum())
    # every event reads one weight row forwards and one backwards: input rows have 256 targets,
    # hidden rows 256 (recurrent) + 20 (output)
    events = n_input * args.hidden + n_hidden_spikes * (args.hidden + 20)
    best_fwd, best_both = min(fwd), min(both)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before the floor compiles its loop
    # what a batch's input and its spike logs weigh (the event logs, the spikes' states): the memory that must
    # grow with the trial's length
    input_mb = sum(t.nbytes + np.asarray(u).nbytes for t, u in zip(batch.times, batch.units)) / 2**20
    log_mb = sum(r.log_t.nbytes + r.log_i.nbytes + r.sp_x.nbytes for r in res.records) / 2**20
    # the floors take a few per cent of the kernels' time: best of more runs, which steadies them
    floors = synaptic_floors(sim, batch, res, sim.threads, max(10, args.repeats))
    floor, floor_2 = floors[1], floors[2]
    floor_d = delay_floor(sim, batch, res, sim.threads, max(10, args.repeats)) or float("nan")
    return {
        "duration_ms": args.duration, "batch": args.batch, "threads": sim.threads,
        "input_spikes_per_sample": n_input / args.batch,
        "hidden_rate_hz": n_hidden_spikes / args.batch / args.hidden / (args.duration / 1000.0),
        "forward_ms_per_sample": 1000 * best_fwd / args.batch,
        # loss_and_grad runs the forward pass again, then the backward pass
        "fwd_bwd_ms_per_sample": 1000 * best_both / args.batch,
        "ns_per_synaptic_event": 1e9 * best_both / (2 * events) if events else float("nan"),  # --rate 0: none
        "floor_ms_per_sample": floor,
        "two_row_floor_ms_per_sample": floor_2,
        "times_floor": 1000 * best_both / args.batch / floor if floor > 0 else float("nan"),
        "times_two_row_floor": 1000 * best_both / args.batch / floor_2 if floor_2 > 0 else float("nan"),
        # --input-delays: the two-row floor with every input arrival in the step its own delay puts it in
        "delay_floor_ms_per_sample": floor_d,
        "times_delay_floor": 1000 * best_both / args.batch / floor_d,
        "init": args.init, "recurrent_delay": args.recurrent_delay or 0.0, "input_delays": args.input_delays or 0.0,
        "peak_rss_mb": peak_rss / 1024,
        "input_mb": input_mb, "log_mb": log_mb,
        "kernels": sim.kernels_used, "excursions": args.excursions,
        # step kernels: neurons walked and pieces walked per sample (the statistics are theirs, not the fast ones')
        "walks_per_sample": float(stats[0]) if step else float("nan"),
        "pieces_per_sample": float(stats[2]) if step else float("nan"),
        # fast kernels only: spike searches, candidate steps walked, candidates examined (per sample)
        "searches_per_sample": nan if step else float(stats[0]),
        "walk_steps_per_sample": nan if step else float(stats[1]),
        # spikes found after a later one had been emitted (missed at first by the end-of-step test)
        "late_spikes_per_sample": nan if step else float(stats[3]),
        # steps simulated again because a crossing was found late (so that spikes come out in time order)
        "steps_again_per_sample": float(stats[6]) if len(stats) > 6 and not step else nan,
        # root-finder iterations per located crossing (each evaluates d exponentials); older commits: none
        "root_iterations_per_crossing": float(stats[5] / stats[4]) if len(stats) > 5 and stats[4] and not step else nan,
        # spikes found before a maximum of the threshold function inside a piece (excursions="exact" only)
        "in_piece_spikes_per_sample": float(stats[7]) if len(stats) > 7 and not step else nan,
        "rss_before_mb": rss_before / 1024,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--durations", type=float, nargs="+", default=[1000.0, 10000.0])
    p.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--inputs", type=int, default=700)
    p.add_argument("--rate", type=float, default=10000.0, help="input spikes per sample per second")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="worker threads (0: one per core)")
    p.add_argument("--kernels", default="auto", choices=["auto", "step", "generic"])
    p.add_argument("--init", default="benchmark", choices=sorted(INITS), help="how the weights are drawn")
    p.add_argument("--recurrent-delay", type=float, default=None, help="delay of the recurrent connection [ms]")
    p.add_argument("--input-delays", type=float, default=None,
                   help="learnable per-synapse input delays, uniform in [0, this] ms")
    p.add_argument("--excursions", default="exact", choices=["exact", "step_end"],
                   help="the fast kernels' threshold test (see eventgrad.Simulator)")
    args = p.parse_args()
    if args.duration is not None:  # child process: one configuration
        print(json.dumps(measure(args)))
        return
    rows = []
    for duration in args.durations:
        keys = ("batch", "hidden", "inputs", "rate", "dtype", "repeats", "seed", "threads", "kernels", "excursions",
                "init", "recurrent_delay", "input_delays")
        given = [k for k in keys if getattr(args, k) is not None]
        cmd = [sys.executable, __file__, "--duration", str(duration)] + [
            a for k in given for a in (f"--{k.replace('_', '-')}", str(getattr(args, k)))]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    cols = [("duration_ms", "T [ms]", ".0f"), ("batch", "batch", "d"), ("threads", "thr", "d"),
            ("kernels", "kernels", "s"), ("excursions", "excursions", "s"), ("init", "init", "s"),
            ("recurrent_delay", "rec delay", "g"), ("input_delays", "in delays <=", "g"),
            ("input_spikes_per_sample", "in spikes", ".0f"), ("hidden_rate_hz", "hid Hz", ".1f"),
            ("forward_ms_per_sample", "fwd ms/smp", ".2f"), ("fwd_bwd_ms_per_sample", "fwd+bwd ms/smp", ".2f"),
            ("ns_per_synaptic_event", "ns/syn ev", ".2f"), ("floor_ms_per_sample", "floor ms/smp", ".3f"),
            ("two_row_floor_ms_per_sample", "2-row floor", ".3f"), ("times_floor", "x floor", ".1f"),
            ("times_two_row_floor", "x 2-row floor", ".1f"), ("delay_floor_ms_per_sample", "delay floor", ".3f"),
            ("times_delay_floor", "x delay floor", ".1f"),
            ("peak_rss_mb", "peak RSS MB", ".0f"), ("input_mb", "input MB", ".3g"), ("log_mb", "logs MB", ".3g"),
            ("walks_per_sample", "walks/smp", ".0f"), ("pieces_per_sample", "pieces/smp", ".0f"),
            ("searches_per_sample", "searches/smp", ".0f"), ("walk_steps_per_sample", "walk steps/smp", ".0f"),
            ("late_spikes_per_sample", "late spikes/smp", ".1f"), ("steps_again_per_sample", "steps again/smp", ".1f"),
            ("root_iterations_per_crossing", "root its", ".2f"),
            ("in_piece_spikes_per_sample", "in-piece spikes/smp", ".1f")]
    print(" | ".join(h for _, h, _ in cols))
    for r in rows:
        print(" | ".join(format(r[k], f) for k, _, f in cols))


if __name__ == "__main__":
    main()
