"""Quantised inference: the integer arithmetic against a step computed by hand, the fixed-point model against
the same time-stepped model in float at high bit widths, the time-stepped model against the exact
simulation on a fine grid, refusals, and ``eventgrad deploy`` on a run folder."""

import json
import types

import numpy as np
import pytest
from test_cli import TINY
from test_nir import busy_network, simulator

import eventgrad as eg
from eventgrad.cli import main
from eventgrad.config import read_config, resolve
from eventgrad.deploy import DeployError, quantize
from eventgrad.experiment import build_network, build_simulator
from eventgrad.nir import read as read_nir
from eventgrad.train import save_checkpoint


def one_spike(t=0.3):
    return eg.SpikeBatch(times=[np.array([t])], units=[np.array([0])])


def test_integer_arithmetic_matches_a_step_computed_by_hand():
    # LIF tau_mem 10 ms fed by Exponential tau 5 ms, all weights 1.5, dt 1 ms, one input spike at 0.3 ms
    # (counted at the step start nearest it: step 0). Step gain (exact for a spike at a step start)
    # P21 = tau_s (e_s - e_m) / (tau_s - tau_m) = 5 (0.8187308 - 0.9048374) / -5 = 0.0861067; w P21 = 0.1291600.
    # Scale: 0.12916 / 127 = 2**-9.94 -> e = -9; mantissa round(0.12916 * 2**9) = round(66.13) = 66;
    # state unit 2**(-9 - 6), so the spike adds 66 * 2**6 = 4224 and the threshold is 2**15 = 32768.
    # Decays: d_u = round(4096 (1 - e**-0.2)) = 742, d_v = round(4096 (1 - e**-0.1)) = 390.
    # Step 0: u = 4224, v = 4224.  Step 1: u = floor(4224 * 3354 / 4096) = floor(3458.81) = 3458,
    # v = floor(4224 * 3706 / 4096) + 3458 = 3821 + 3458 = 7279.
    # Fails if the rounding direction, the shift of the weights, a decay or the order u-then-v changes.
    net = busy_network(np.random.default_rng(0))
    net.connections[0].weight[:] = 1.5
    net.connections[1].weight[:] = 0.0
    q = quantize(simulator(net))
    h = q.layers[0]
    assert h.name == "h" and h.exponents == {"xh": -9, "hh": 0}
    assert h.decay_u[0] == 742 and h.decay_v[0] == 390 and h.threshold[0] == 32768 and h.unit == 2.0 ** -15
    out = q.run(one_spike(), record=("h",))
    np.testing.assert_array_equal(out["h.u"][:2, 0, 0], [4224, 3458])
    np.testing.assert_array_equal(out["h.v"][:2, 0, 0], [4224, 7279])
    assert not out["h"].any()  # 7279 < 32768


def test_fixed_point_at_high_bit_widths_equals_the_float_step_model_and_8_bits_stays_close():
    # Fails if the integer model is not the float time-stepped model rounded (a scale, shift or unit lost).
    rng = np.random.default_rng(1)
    sim = simulator(busy_network(rng))
    batch = eg.SpikeBatch(times=[np.sort(rng.uniform(0, 40, 30)) for _ in range(4)],
                          units=[rng.integers(0, 5, 30) for _ in range(4)])
    ref = quantize(sim, weight_bits=None)
    wide = quantize(sim, weight_bits=16, state_bits=29, decay_bits=24)
    a, b = ref.run(batch), wide.run(batch)
    assert a["h"].sum() > 100
    np.testing.assert_array_equal(a["h"], b["h"])
    np.testing.assert_allclose(b["o"], a["o"], atol=1e-4 * np.abs(a["o"]).max())
    eight = quantize(sim).run(batch)
    assert abs(int(eight["h"].sum()) - int(a["h"].sum())) < 0.05 * a["h"].sum()
    with pytest.raises(DeployError, match="population 'h': its threshold is .* beyond the 24-bit state range"):
        quantize(sim, weight_bits=16)


def test_time_stepped_model_follows_the_exact_simulation_on_a_fine_grid():
    # The step model integrates the exact solution between grid times; on a 0.1 ms grid its spikes may lag
    # the exact ones by up to a step each. Fails if a gain or a decay is wrong (spike counts drift apart).
    rng = np.random.default_rng(2)
    sim = simulator(busy_network(rng))
    batch = eg.SpikeBatch(times=[np.sort(rng.uniform(0, 40, 30)) for _ in range(3)],
                          units=[rng.integers(0, 5, 30) for _ in range(3)])
    exact = sim.run(batch)
    stepped = quantize(sim, weight_bits=None, dt=0.1)
    spikes = stepped.run(batch)["h"]
    counts = spikes.sum(axis=0)
    assert np.abs(counts - exact.spike_counts("h")).max() <= 1
    for s in range(3):
        t, u = exact.spike_times("h", s)
        for j in range(8):
            first_exact = t[u == j][0]
            first_stepped = (np.argmax(spikes[:, s, j]) + 1) * 0.1
            assert abs(first_stepped - first_exact) < 0.2, (s, j)  # inputs are rounded to the nearest step
    scale = np.abs(exact.readout).max()
    np.testing.assert_allclose(stepped.predict(batch), exact.readout, rtol=0.05, atol=0.05 * scale)


def test_models_the_chip_cannot_run_are_refused_by_name():
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.AdaptiveLIF())
    o = net.add_population("o", 2, eg.neurons.LI())
    net.connect(x, h, eg.synapses.Exponential(), weight=np.ones((2, 3)), name="xh")
    net.connect(h, o, eg.synapses.Exponential(), weight=np.ones((3, 2)), name="ho")
    fake = types.SimpleNamespace(network=net, params={}, dt=1.0, duration=10.0, readout=eg.readouts.MeanVar("o"))
    with pytest.raises(DeployError, match="population 'h' is not a model the quantiser can run"):
        quantize(fake)
    fake.readout = eg.readouts.MeanVar("h")
    with pytest.raises(DeployError, match="reads v of the spiking population 'h'"):
        quantize(fake)
    fake.readout = eg.readouts.MeanVar("o")
    with pytest.raises(DeployError, match="must divide the simulator's dt"):
        quantize(types.SimpleNamespace(**{**vars(fake), "network": busy_network(np.random.default_rng(0))}), dt=0.3)
    with pytest.raises(DeployError, match="weight_bits must be an integer >= 2"):
        quantize(fake, weight_bits=1)
    with pytest.raises(DeployError, match="state_bits \\+ decay_bits = 56 > 53"):
        quantize(fake, state_bits=32, decay_bits=24)


def test_deploy_command_reports_accuracies_and_writes_nir(tmp_path, capsys):
    # A run folder as `eventgrad train --out` leaves it (config and checkpoint), without the training.
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    cfg = resolve(read_config(str(config)))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(cfg))
    sim = build_simulator(cfg, build_network(cfg, 5, 3, np.random.default_rng(cfg["seed"])))
    save_checkpoint(str(run / "best.npz"), sim.params)
    assert main(["deploy", str(run), "--bits", "8", "4"]) == 0
    out = capsys.readouterr().out
    for line in ("float, exact event-based simulation", "float, time-stepped at dt 1 ms", "8-bit weights",
                 "4-bit weights", "wrote"):
        assert line in out, line
    net = read_nir(run / "network.nir")
    assert [g.name for g in net.groups] == ["x", "h", "o"]
    np.testing.assert_allclose(net.connections[0].weight, sim.params["xh.weight"], rtol=1e-6)
    assert main(["deploy", str(tmp_path / "nothing")]) == 2
    assert "holds no config.json" in capsys.readouterr().err


def test_delays_arrive_at_the_steps_they_should():
    # An input spike at 0.3 ms counts at step 0; through a delay of 3 ms (unit 1) it arrives at step 3, without
    # (unit 0) at step 0. A spike that h emits in step k reaches o at step k + 1 + floor(1.5 / 1) = k + 2.
    # Fails if per-synapse delays are merged, rounded the wrong way, or a population's spike is used early.
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 1, eg.neurons.LIF(tau_mem=10.0))
    o = net.add_population("o", 1, eg.neurons.LI(tau_mem=20.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=np.array([[0.5], [30.0]]), name="xh",
                delay=np.array([[0.0], [3.0]]))
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=np.ones((1, 1)), name="ho", delay=1.5)
    fake = types.SimpleNamespace(network=net, params={}, dt=1.0, duration=10.0, readout=eg.readouts.MeanVar("o"))
    q = quantize(fake)
    out = q.run(eg.SpikeBatch(times=[np.array([0.3, 0.3])], units=[np.array([0, 1])]), record=("h", "o"))
    du = np.diff(np.concatenate([[0.0], out["h.u"][:, 0, 0]]))
    assert du[0] > 0 and du[1] <= 0 and du[2] <= 0 and du[3] > 20 * du[0]  # small weight at step 0, large at 3
    fired = np.nonzero(out["h"][:, 0, 0])[0]
    assert fired[0] == 3
    first_o = np.nonzero(out["o.u"][:, 0, 0])[0][0]
    assert first_o == fired[0] + 2
