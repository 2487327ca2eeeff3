"""Self-tests of the independent reference simulator (tests/reference_sim.py)."""

import numpy as np
import pytest
from reference_sim import simulate_lif_exp


def psp(u, w, tm, ts):
    """Closed-form v(u) of a LIF neuron at rest after one input of weight w at u = 0 (no threshold)."""
    u = np.asarray(u, dtype=float)
    up = np.maximum(u, 0.0)
    if tm == ts:
        v = w * up / tm * np.exp(-up / tm)
    else:
        v = w * ts / (ts - tm) * (np.exp(-up / ts) - np.exp(-up / tm))
    return np.where(u > 0.0, v, 0.0)


def psp_peak_time(tm, ts):
    return tm if tm == ts else np.log(ts / tm) * tm * ts / (ts - tm)


def single_neuron(w, tm, ts, thr=1.0, v_reset=0.0):
    return [dict(n=1, tau_mem=tm, tau_syn=ts, v_thresh=thr, v_reset=v_reset, w_in=[[w]], w_rec=None)]


@pytest.mark.parametrize("tm,ts", [(10.0, 5.0), (5.0, 10.0), (8.0, 8.0)])
def test_closed_form_psp_matches_rk4(tm, ts):
    # If this fails, the analytic formula the other tests trust is itself wrong.
    def f(y):
        return np.array([(-y[0] + y[1]) / tm, -y[1] / ts])

    y, dt = np.array([0.0, 0.7]), 1e-2
    for _ in range(500):
        k1 = f(y)
        k2 = f(y + dt / 2 * k1)
        k3 = f(y + dt / 2 * k2)
        k4 = f(y + dt * k3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    assert abs(y[0] - psp(5.0, 0.7, tm, ts)) < 1e-10


@pytest.mark.parametrize(
    "tm,ts,factor",
    [(10.0, 5.0, 1.3), (5.0, 10.0, 1.3), (8.0, 8.0, 1.3), (20.0, 5.0, 1.5), (10.0, 5.0, 1.001)],
)
def test_single_spike_time_matches_bisection(tm, ts, factor):
    # Wrong spike time: bad propagator, bad crossing interpolation, or input applied at the wrong time.
    # Wrong v after the spike: reset not done at the crossing time, or synaptic current reset with v.
    s, thr = 1.2345678, 1.0
    tp = psp_peak_time(tm, ts)
    w = factor * thr / float(psp(tp, 1.0, tm, ts))
    lo, hi = s, s + tp
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if psp(mid - s, w, tm, ts) < thr else (lo, mid)
    t_cross = 0.5 * (lo + hi)

    duration = 20.0
    spikes, v_trace = simulate_lif_exp([s], [0], 1, single_neuron(w, tm, ts, thr), duration)
    times, units = spikes[0]
    assert len(times) == 1 and units[0] == 0
    assert abs(times[0] - t_cross) < 1e-5

    grid = np.arange(1, 21, dtype=float)
    i_at_cross = w * np.exp(-(t_cross - s) / ts)
    expected = np.where(grid < t_cross, psp(grid - s, w, tm, ts), psp(grid - t_cross, i_at_cross, tm, ts))
    np.testing.assert_allclose(v_trace[0][:, 0], expected, rtol=0, atol=1e-6)


def test_no_input_no_spikes():
    # Spikes or nonzero v without input: spurious threshold detection or a nonzero rest state.
    rng = np.random.default_rng(0)
    layers = [
        dict(n=4, tau_mem=10.0, tau_syn=5.0, v_thresh=1.0, v_reset=0.0,
             w_in=rng.uniform(0, 2, (3, 4)), w_rec=rng.uniform(0, 2, (4, 4))),
        dict(n=2, tau_mem=10.0, tau_syn=5.0, v_thresh=None, v_reset=0.0,
             w_in=rng.uniform(0, 2, (4, 2)), w_rec=None),
    ]
    spikes, v_trace = simulate_lif_exp(np.array([]), np.array([], dtype=int), 3, layers, 10.0)
    for (times, units), tr, lay in zip(spikes, v_trace, layers, strict=True):
        assert times.size == 0 and units.size == 0
        assert tr.shape == (10, lay["n"])
        assert np.all(tr == 0.0)


@pytest.mark.parametrize("tm,ts", [(10.0, 5.0), (8.0, 8.0)])
def test_just_below_threshold_does_not_spike(tm, ts):
    # A spike here: threshold test triggers below v_thresh (e.g. off-by-one in the crossing test).
    s, thr = 0.5, 1.0
    w = (1.0 - 1e-4) * thr / float(psp(psp_peak_time(tm, ts), 1.0, tm, ts))
    spikes, v_trace = simulate_lif_exp([s], [0], 1, single_neuron(w, tm, ts, thr), 30.0)
    assert spikes[0][0].size == 0
    grid = np.arange(1, 31, dtype=float)
    np.testing.assert_allclose(v_trace[0][:, 0], psp(grid - s, w, tm, ts), rtol=0, atol=1e-12)


def small_network(rng, n_in=3, n_hid=5, n_out=2):
    return [
        dict(n=n_hid, tau_mem=10.0, tau_syn=5.0, v_thresh=1.0, v_reset=0.0,
             w_in=rng.uniform(0.2, 1.5, (n_in, n_hid)), w_rec=rng.uniform(-0.3, 0.6, (n_hid, n_hid))),
        dict(n=n_out, tau_mem=20.0, tau_syn=5.0, v_thresh=None, v_reset=0.0,
             w_in=rng.normal(0, 0.5, (n_hid, n_out)), w_rec=None),
    ]


def test_input_order_does_not_matter():
    # Different results: input events applied in array order instead of time order.
    rng = np.random.default_rng(1)
    times = np.round(rng.uniform(0, 20, 30), 2)
    times[5:8] = times[4]  # simultaneous spikes of different units
    units = rng.integers(0, 3, 30)
    layers = small_network(rng)
    ref_spikes, ref_v = simulate_lif_exp(times, units, 3, layers, 25.0)
    assert ref_spikes[0][0].size > 0
    perm = rng.permutation(30)
    spikes, v = simulate_lif_exp(list(times[perm]), list(units[perm]), 3, layers, 25.0)
    for (t1, u1), (t2, u2) in zip(ref_spikes, spikes, strict=True):
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(u1, u2)
    for a, b in zip(ref_v, v, strict=True):
        np.testing.assert_array_equal(a, b)


def test_spike_delivery_is_exact():
    # Wrong v of the recipients: recurrent or layer-to-layer spikes delivered at the step boundary
    # instead of at the interpolated spike time (an O(h) error), or to the wrong target.
    tm, ts, s = 10.0, 5.0, 0.3
    w0 = 1.5 / float(psp(psp_peak_time(tm, ts), 1.0, tm, ts))
    layers = [
        dict(n=2, tau_mem=tm, tau_syn=ts, v_thresh=1.0, v_reset=0.0,
             w_in=[[w0, 0.0]], w_rec=[[0.0, 0.4], [0.0, 0.0]]),
        dict(n=1, tau_mem=tm, tau_syn=ts, v_thresh=None, v_reset=0.0, w_in=[[0.7], [0.0]], w_rec=None),
    ]
    spikes, v_trace = simulate_lif_exp([s], [0], 1, layers, 30.0)
    times, units = spikes[0]
    assert list(units) == [0] and spikes[1][0].size == 0
    grid = np.arange(1, 31, dtype=float)
    np.testing.assert_allclose(v_trace[0][:, 1], psp(grid - times[0], 0.4, tm, ts), rtol=0, atol=1e-9)
    np.testing.assert_allclose(v_trace[1][:, 0], psp(grid - times[0], 0.7, tm, ts), rtol=0, atol=1e-9)


def test_halving_h_changes_little():
    # Large change: the fine-step scheme is not converged (e.g. events applied at step boundaries).
    rng = np.random.default_rng(3)
    times = rng.uniform(0, 25, 24)
    units = rng.integers(0, 3, 24)
    layers = small_network(rng)
    s1, v1 = simulate_lif_exp(times, units, 3, layers, 30.0, h=1e-3)
    s2, v2 = simulate_lif_exp(times, units, 3, layers, 30.0, h=5e-4)
    assert s1[0][0].size >= 5
    assert len(set(s1[0][1].tolist())) >= 3
    np.testing.assert_array_equal(s1[0][1], s2[0][1])
    assert np.max(np.abs(s1[0][0] - s2[0][0])) < 1e-5
    for a, b in zip(v1, v2, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
