"""Faults that used to hang a run or change its numbers: runaway networks, unstable parameters, thread counts.

Each test names what was wrong before. The networks reuse structures compiled by other test files
(test_bad_input.py, test_fast_kernels.py): weights, sizes and parameter values never recompile a kernel.
"""

import re
import time

import numpy as np
import pytest
import sympy
from fd_networks import recurrent_lif

import eventgrad as eg


def recurrent_network(rng, scale=1.0):
    """x -> LIF h (recurrent) -> LI o, exponential synapses (fd_networks.recurrent_lif)."""
    return recurrent_lif(rng, scale)


def random_batch(rng, n_samples, n_spikes=40):
    times = [np.sort(rng.uniform(0.0, 45.0, n_spikes)) for _ in range(n_samples)]
    return eg.SpikeBatch(times, [rng.integers(0, 5, n_spikes) for _ in range(n_samples)])


# ---- runaway networks stop within seconds -----------------------------------------------------------------------


def test_a_runaway_network_on_the_fast_kernels_stops_within_seconds_naming_the_population():
    # Before: input weights x1e6 made 'h' fire ever faster within one step, and the run took minutes to
    # hours (quadratic in the events of a step) before max_events ended it with an error naming nobody.
    rng = np.random.default_rng(0)
    sim = eg.Simulator(recurrent_network(rng), dt=1.0, duration=50.0, dtype="float64",
                       readout=eg.readouts.SumVar("o"), threads=1)
    batch = random_batch(rng, 1)
    sim.run(batch)  # compiles (or loads) the kernels, which the timing below must not include
    assert sim.kernels_used == "fast"
    sim.params["xh.weight"] = sim.params["xh.weight"] * 1e6
    start = time.perf_counter()
    with pytest.raises(eg.SimulationError, match=r"population 'h' \(neuron \d\) fires at a runaway rate: the step "
                                                 r"\[\d+, \d+\) ms holds more than max_spikes_per_step=512 spikes"):
        sim.run(batch)
    assert time.perf_counter() - start < 10.0


def test_a_runaway_neuron_on_the_generic_kernels_stops_naming_the_population():
    # Before: the generic kernels ran until max_events (2**24 events by default: minutes per sample).
    net = eg.Network()
    x = net.add_input("x", 1)
    o = net.add_population("o", 1, eg.neurons.LIF(tau_mem=20.0))
    net.connect(x, o, eg.synapses.Exponential(tau=5.0), weight=np.array([[1e7]]), name="xo")
    sim = eg.Simulator(net, dt=1.0, duration=30.0, dtype="float64", kernels="generic")
    assert sim.max_spikes_per_step == 64  # one spiking neuron, 64 spikes per step
    start = time.perf_counter()
    with pytest.raises(eg.SimulationError, match=r"population 'o' \(neuron 0\) fires at a runaway rate: the step "
                                                 r"\[5, 6\) ms holds more than max_spikes_per_step=64 spikes"):
        sim.run(eg.SpikeBatch(times=[[5.37]], units=[[0]]))
    assert time.perf_counter() - start < 60.0  # compiling included, where no other test compiled the kernels


def test_a_smaller_spike_budget_is_honoured_and_a_bad_one_refused():
    # A network at a normal rate passes the default budget; a budget below its spikes per step stops it.
    rng = np.random.default_rng(1)
    net = recurrent_network(rng)
    batch = random_batch(rng, 1, n_spikes=200)
    sim = eg.Simulator(net, dt=1.0, duration=50.0, dtype="float64", readout=eg.readouts.SumVar("o"), threads=1)
    times, _ = sim.run(batch).spike_times("h", 0)
    per_step = np.bincount(np.floor(times).astype(int)).max()
    assert per_step >= 2, "too few spikes per step: the test proves nothing"
    tight = eg.Simulator(net, dt=1.0, duration=50.0, dtype="float64", readout=eg.readouts.SumVar("o"), threads=1,
                         max_spikes_per_step=int(per_step) - 1)
    with pytest.raises(eg.SimulationError, match=r"population 'h'.*max_spikes_per_step"):
        tight.run(batch)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"max_spikes_per_step must be a positive integer"):
            eg.Simulator(net, dt=1.0, duration=50.0, max_spikes_per_step=bad, jit=False)


@pytest.mark.parametrize("where, key, value", [("neuron", "h.tau_mem", -10.0), ("synapse", "xh.tau", -5.0)])
def test_a_negative_time_constant_is_refused_before_the_run(where, key, value):
    # Before: a negative synaptic time constant made the state grow exponentially and the run hang.
    rng = np.random.default_rng(2)
    sim = eg.Simulator(recurrent_network(rng), dt=1.0, duration=50.0, dtype="float64", jit=False)
    sim.params[key] = np.array(value)
    with pytest.raises(ValueError, match=rf"the dynamics of population 'h' are unstable: its state would grow like "
                                         rf"exp\(0\.\d+ t\).*{key} = \[{value:g}\.?\]"):
        sim.run(random_batch(rng, 1))


def test_one_neurons_negative_time_constant_is_refused_naming_the_neuron():
    rng = np.random.default_rng(3)
    sim = eg.Simulator(recurrent_network(rng), dt=1.0, duration=50.0, dtype="float64", jit=False)
    sim.params["h.tau_mem"] = np.array([10.0] * 5 + [-2.0] + [10.0] * 2)
    with pytest.raises(ValueError, match=r"population 'h' \(neuron 5\) are unstable"):
        sim.run(random_batch(rng, 1))


# ---- results do not depend on the number of threads ------------------------------------------------------------


def test_float64_gradients_are_bit_identical_with_one_two_and_three_threads():
    # Before: the batch was split by thread and the per-thread sums added, so float64 gradients differed by
    # ~1e-15 with the thread count, and training diverged visibly after a few epochs (0.84 vs 0.77 accuracy).
    rng = np.random.default_rng(4)
    net = recurrent_network(rng)
    batch = random_batch(rng, 7)
    labels = rng.integers(0, 3, 7)
    results = []
    for threads in (1, 2, 3):
        sim = eg.Simulator(net, dt=1.0, duration=50.0, dtype="float64", readout=eg.readouts.SumVar("o"),
                           threads=threads)
        results.append(sim.loss_and_grad(batch, labels))
    assert sim.kernels_used == "fast"
    for loss, grads in results[1:]:
        assert loss == results[0][0]
        for key in grads:
            np.testing.assert_array_equal(grads[key], results[0][1][key], err_msg=key)


# ---- bad input gets a clear error at the door ---------------------------------------------------------------------


def tiny_sim(**kwargs):
    """A plain-Python simulator (jit=False: nothing to compile) of a 2-3-2 network."""
    rng = np.random.default_rng(5)
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.LIF(tau_mem=10.0))
    o = net.add_population("o", 2, eg.neurons.LI(tau_mem=20.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=rng.uniform(1.0, 3.0, (2, 3)), name="xh")
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=np.ones((3, 2)), name="ho")
    options = dict(dt=1.0, duration=5.0, dtype="float64", readout=eg.readouts.SumVar("o"), jit=False)
    return eg.Simulator(net, **{**options, **kwargs})


TINY_BATCH = eg.SpikeBatch([[0.5, 1.0, 2.5]], [[0, 1, 0]])


def test_every_symbol_the_adjoint_derivation_introduces_is_a_reserved_name():
    # Before: a parameter named 'threshold_rate' was accepted and failed at the first run with a NameError.
    from eventgrad.adjoint import derive
    from eventgrad.model.identifiers import RESERVED_NAMES

    internal = {v.name for v in vars(derive).values() if isinstance(v, sympy.Symbol)}
    assert {"threshold_rate", "dloss_dspike_time", "target_shift_sum"} <= internal <= RESERVED_NAMES
    for name in sorted(internal):
        with pytest.raises(eg.ModelError, match=rf"the parameter name '{name}' of this neuron is reserved"):
            eg.UserNeuron(vars={"v": ("(-v + Isyn) / tau", "0.0")}, threshold="v - 1.0", output_var_name="v",
                          param_vals={"tau": 10.0, name: 1.0})


@pytest.mark.parametrize("dt, duration, message", [
    ("1.0", 5.0, r"dt must be a number \(ms\), got '1.0' \(str\)"),
    (1.0, None, r"duration must be a number \(ms\), got None"),
    (1e-9, 50.0, r"duration/dt = 5e\+10 steps is more than 1e\+07.*choose a larger dt"),
])
def test_a_grid_given_as_text_or_of_billions_of_steps_is_refused(dt, duration, message):
    # Before: dt="1.0" was an unclear TypeError from numpy, and dt=1e-9 tried to allocate 373 GiB.
    with pytest.raises(ValueError, match=message):
        tiny_sim(dt=dt, duration=duration)


def test_complex_weights_are_refused_and_a_list_in_sim_params_works():
    # Before: complex weights were cut to their real part (a warning at most), and a list written into
    # sim.params was an AttributeError at the next run.
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.LIF(tau_mem=10.0))
    with pytest.raises(eg.NetworkError, match=r"connection 'xh': weight is complex"):
        net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=np.ones((2, 3)) * (1 + 1j), name="xh")
    sim = tiny_sim()
    expected = sim.run(TINY_BATCH).readout
    sim.params["xh.weight"] = sim.params["xh.weight"].tolist()
    np.testing.assert_array_equal(sim.run(TINY_BATCH).readout, expected)
    sim.params["xh.weight"] = np.asarray(sim.params["xh.weight"]) * (1 + 0.5j)
    with pytest.raises(ValueError, match=r"sim.params\['xh.weight'\] is complex"):
        sim.run(TINY_BATCH)
    sim.params["xh.weight"] = "heavy"
    with pytest.raises(ValueError, match=r"sim.params\['xh.weight'\] holds <U5 values \(str\)"):
        sim.run(TINY_BATCH)


def test_a_checkpoint_with_a_negative_epoch_or_without_optimiser_buffers_is_refused(tmp_path):
    # Before: both were accepted, and the optimiser silently started over.
    from eventgrad.optim import Adam
    from eventgrad.train import Trainer, TrainingError, load_checkpoint, save_checkpoint

    sim = tiny_sim()
    trainer = Trainer(sim, Adam(sim.params, lr=0.01, keys=sim.trainable))
    trainer.epoch = -5
    trainer.save(tmp_path / "last.npz")
    fresh = Trainer(sim, Adam(sim.params, lr=0.01, keys=sim.trainable))
    with pytest.raises(TrainingError, match=r"last.npz: the trainer state's epoch -5 is not a count of epochs"):
        fresh.resume(tmp_path / "last.npz")
    stepped = Adam(sim.params, lr=0.01, keys=sim.trainable)
    stepped.t = 3  # three steps taken, but the moments m and v are gone
    save_checkpoint(tmp_path / "c.npz", sim.params, stepped)
    before = {k: np.array(v) for k, v in sim.params.items()}
    with pytest.raises(ValueError, match=r"c.npz: the optimiser state has taken 3 steps but holds none of its "
                                         r"buffers \['m', 'v'\]"):
        load_checkpoint(tmp_path / "c.npz", sim.params, Adam(sim.params, lr=0.01))
    for key in before:
        np.testing.assert_array_equal(sim.params[key], before[key])  # refused before anything changed


def test_a_damaged_checkpoint_is_an_error_naming_the_file(tmp_path):
    from eventgrad.train import load_checkpoint

    path = tmp_path / "best.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=r"best.npz is not a readable checkpoint \(damaged or not an .npz file"):
        load_checkpoint(path)


@pytest.mark.parametrize("times, units, message", [
    ([[0.1, float("nan")]], [[1, 2]], r"sample 0 has a NaN or infinite spike time \(spike 1: nan ms\)"),
    ([[0.1, float("inf")]], [[1, 2]], r"sample 0 has a NaN or infinite spike time"),
    ([[0.1, 0.2], [0.3]], [[1, 2], [3, 4]], r"sample 1 has 1 spike times but 2 units"),
])
def test_shd_files_with_bad_times_or_mismatched_lengths_are_refused(tmp_path, times, units, message):
    # Before: numpy errors (or NaN spike times handed on to the simulator).
    from test_encoders_datasets import write_shd

    from eventgrad.data.shd import load_shd

    write_shd(tmp_path / "shd.h5", times, units, [0] * len(times))
    with pytest.raises(eg.SpikeDataError, match=message):
        load_shd(tmp_path / "shd.h5")


# ---- configuration files ------------------------------------------------------------------------------------------

BILLION_LAUGHS = """training:
  lr_scale:
    a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]
"""


@pytest.mark.parametrize("name, text, message", [
    ("bomb.yaml", BILLION_LAUGHS, r"bomb.yaml': YAML aliases \('\*a', line 4\) are not allowed"),
    ("deep.json", "[" * 10**5 + "]" * 10**5, r"deep.json': it is nested too deeply"),
    ("deep.toml", "a = " + "[" * 10**5 + "]" * 10**5, r"deep.toml': it is nested too deeply"),
    ("deep.yaml", "a: " + "[" * 10**5 + "]" * 10**5, r"deep.yaml': it is nested too deeply"),
    ("nested.json", '{"training": {"lr_scale": ' + '{"a": ' * 40 + "1" + "}" * 42, r"nested more than 32 levels"),
    ("big.json", '{"seed": 1' + " " * (1 << 20) + "}", r"has 1048587 bytes, more than 1048576"),
    ("broken.yaml", "training:\n  lr: [1, 2\n", r"cannot read '.*broken.yaml': ParserError: while parsing"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "")
def test_hostile_configuration_files_are_refused_in_one_line(tmp_path, capsys, name, text, message):
    # Before: the YAML file wrote 3 GB of config.json or died with a MemoryError; deep nesting was a RecursionError;
    # YAML syntax errors were raw tracebacks.
    from eventgrad.cli import main

    (tmp_path / name).write_text(text)
    assert main(["config", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eventgrad: ConfigError: ") and err.count("\n") == 1, err[:500]
    assert re.search(message, err), err[:500]


def test_the_command_line_shows_a_traceback_only_with_debug(tmp_path, capsys):
    from eventgrad.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "log.csv").write_text("epoch,loss\n1,0.5\n")
    (run / "best.npz").write_bytes(b"PK\x03\x04 broken zip")
    assert main(["plot", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "best.npz is not a readable checkpoint" in err
    with pytest.raises(ValueError, match=r"best.npz is not a readable checkpoint"):
        main(["--debug", "plot", str(run)])
