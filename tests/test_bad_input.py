"""Bad input is refused with an error that names the problem, and a growing event log drops nothing.

Each test states the mistake a user makes and what must come back.  A failure means the mistake is
accepted silently (wrong results later), or refused with an error that does not say what is wrong.
Most checks run on a tiny network in plain Python (jit=False: nothing to compile); the event-log test
uses numba with the same network structure as test_reference_spike_times.py (one shared kernel).
"""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from fd_networks import recurrent_lif

import eventgrad as eg
from eventgrad.losses import LossError

N_IN, N_H, N_O = 2, 3, 2
DURATION = 5.0


@pytest.fixture(autouse=True)
def strict_numerics():
    with np.errstate(all="raise"):
        yield


def tiny_network(neuron=None, synapse=None):
    net = eg.Network()
    x = net.add_input("x", N_IN)
    h = net.add_population("h", N_H, neuron if neuron is not None else eg.neurons.LIF(tau_mem=10.0))
    o = net.add_population("o", N_O, eg.neurons.LI(tau_mem=20.0))
    net.connect(x, h, synapse if synapse is not None else eg.synapses.Exponential(tau=5.0),
                weight=np.full((N_IN, N_H), 3.0), name="xh")
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=np.ones((N_H, N_O)), name="ho")
    return net


def tiny_sim(net=None, **kwargs):
    options = dict(dt=1.0, duration=DURATION, dtype="float64", readout=eg.readouts.SumVar("o"), jit=False)
    options.update(kwargs)
    return eg.Simulator(net if net is not None else tiny_network(), **options)


@pytest.fixture(scope="module")
def sim():
    """A plain-Python simulator that tests only run (never modify)."""
    return tiny_sim()


def good_batch(n=2):
    return eg.SpikeBatch([[0.5, 1.0, 2.5]] * n, [[0, 1, 0]] * n)


# ---- spike data --------------------------------------------------------------------------------------------


def test_nan_spike_time_is_refused_naming_sample_and_spike():
    # Accepted: the kernel would compare with NaN and silently never deliver the spike.
    with pytest.raises(eg.SpikeDataError, match=r"sample 1: spike 2 has time nan, not a finite number"):
        eg.SpikeBatch([[0.5], [0.1, 0.2, np.nan]], [[0], [0, 1, 1]])


def test_infinite_spike_time_is_refused():
    with pytest.raises(eg.SpikeDataError, match=r"sample 0: spike 0 has time inf, not a finite number"):
        eg.SpikeBatch([[np.inf]], [[0]])


def test_unsorted_spike_times_are_refused_with_the_fix():
    # Accepted: the event loop walks inputs in array order and would deliver the later one first.
    with pytest.raises(eg.SpikeDataError, match=r"sample 0: spike times are not sorted \(spike 2 at 1\.0 comes "
                                               r"after 3\.0\).*argsort"):
        eg.SpikeBatch([[0.5, 3.0, 1.0]], [[0, 1, 0]])


@pytest.mark.parametrize("times,bad", [([-0.5, 1.0], "-0.5"), ([1.0, DURATION + 1e-6], "5.000001")])
def test_spike_times_outside_the_trial_are_refused(sim, times, bad):
    # Accepted: a negative time is applied at t = 0 (or never), one after the end silently ignored.
    batch = eg.SpikeBatch([times], [[0, 1]])
    with pytest.raises(eg.SpikeDataError, match=rf"sample 0: spike \d at time {bad} lies outside the trial "
                                               rf"\[0, 5\.0\] ms of input 'x'"):
        sim.run(batch)


def test_spike_exactly_at_zero_and_at_the_end_are_accepted(sim):
    # Refused: the trial is the closed interval [0, duration]; its ends are valid times.
    res = sim.run(eg.SpikeBatch([[0.0, DURATION]], [[0, 1]]))
    rec = res.records[0]
    assert int(np.sum(rec.log_i[:rec.n_events, 2] == 2)) == 2


@pytest.mark.parametrize("unit", [N_IN, -1])
def test_unit_out_of_range_is_refused(sim, unit):
    # Accepted: the kernel would read the weight row of a unit that does not exist (another row, or memory).
    batch = eg.SpikeBatch([[0.5, 1.0]], [[0, unit]])
    with pytest.raises(eg.SpikeDataError, match=rf"sample 0: spike 1 has unit {unit}, but input 'x' has 2 units"):
        sim.run(batch)


@pytest.mark.parametrize("units", [[0.0, 1.0], [0.5, 1.0], [True, False]])
def test_non_integer_units_are_refused(units):
    # Accepted: float units would be truncated to a possibly different unit without a word.
    with pytest.raises(eg.SpikeDataError, match=r"sample 0: units must be integers, got dtype"):
        eg.SpikeBatch([[0.5, 1.0]], [units])


def test_times_and_units_of_different_length_are_refused():
    # Accepted: spikes would be paired with the wrong units or some dropped.
    with pytest.raises(eg.SpikeDataError, match=r"sample 0: times and units must be 1-D arrays of equal length, "
                                               r"got \(3,\) and \(2,\)"):
        eg.SpikeBatch([[0.5, 1.0, 2.0]], [[0, 1]])


def test_different_number_of_samples_in_times_and_units_is_refused():
    with pytest.raises(eg.SpikeDataError, match=r"times has 2 samples but units has 1"):
        eg.SpikeBatch([[0.5], [1.0]], [[0]])


def test_two_dimensional_times_are_refused():
    with pytest.raises(eg.SpikeDataError, match=r"must be 1-D arrays"):
        eg.SpikeBatch([[[0.5, 1.0]]], [[[0, 1]]])


def test_empty_batch_is_refused(sim):
    with pytest.raises(eg.SpikeDataError, match=r"non-zero number of samples"):
        sim.run(eg.SpikeBatch([], []))


def test_batch_for_a_wrongly_named_input_is_refused(sim):
    with pytest.raises(eg.SpikeDataError, match=r"expected spike batches for inputs \['x'\]"):
        sim.run({"y": good_batch()})


# ---- network description ---------------------------------------------------------------------------------


def test_weight_of_wrong_shape_is_refused_naming_the_expected_shape():
    # Accepted: a transposed (post, pre) matrix would connect the wrong neurons.
    net = eg.Network()
    x = net.add_input("x", 5)
    h = net.add_population("h", 8, eg.neurons.LIF())
    with pytest.raises(eg.NetworkError, match=r"connection 'xh': weight has shape \(8, 5\), expected \(pre, post\) "
                                             r"= \(5, 8\)"):
        net.connect(x, h, eg.synapses.Exponential(), weight=np.zeros((8, 5)), name="xh")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_weight_is_refused(value):
    # Accepted: one NaN weight turns every state it touches into NaN.
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.LIF())
    w = np.ones((2, 3))
    w[1, 2] = value
    with pytest.raises(eg.NetworkError, match=r"connection 'xh': weight contains NaN or infinite values"):
        net.connect(x, h, eg.synapses.Exponential(), weight=w, name="xh")


@pytest.mark.parametrize("second", ["input", "population", "connection"])
def test_duplicate_names_are_refused(second):
    # Accepted: parameters are keyed by name ("h.tau_mem", "h.weight"), so two owners of one name would
    # share or overwrite each other's parameters.
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.LIF())
    with pytest.raises(eg.NetworkError, match=r"name 'h' is already used"):
        if second == "input":
            net.add_input("h", 2)
        elif second == "population":
            net.add_population("h", 3, eg.neurons.LIF())
        else:
            net.connect(x, h, eg.synapses.Exponential(), weight=np.ones((2, 3)), name="h")


def test_connecting_into_an_input_is_refused():
    # Accepted: an input has no state; the connection would be ignored or corrupt the state of another group.
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.LIF())
    with pytest.raises(eg.NetworkError, match=r"connection 'hx': the target 'x' is an input, which has no state"):
        net.connect(h, x, eg.synapses.Exponential(), weight=np.ones((3, 2)), name="hx")


def test_connecting_a_group_of_another_network_is_refused():
    other = eg.Network()
    stranger = other.add_input("x", 2)
    net = eg.Network()
    net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.LIF())
    with pytest.raises(eg.NetworkError, match=r"connection 'xh': the source is not a group of this network"):
        net.connect(stranger, h, eg.synapses.Exponential(), weight=np.ones((2, 3)), name="xh")


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_population_size_must_be_a_positive_integer(size):
    net = eg.Network()
    with pytest.raises(eg.NetworkError, match=r"size of 'h' must be a positive integer"):
        net.add_population("h", size, eg.neurons.LIF())


def test_per_neuron_parameter_of_wrong_length_is_refused():
    # Accepted: 3 time constants for 8 neurons would be broadcast or read past the end.
    net = eg.Network()
    with pytest.raises(eg.NetworkError, match=r"population 'h': 'tau_mem' has 3 values for 8 neurons"):
        net.add_population("h", 8, eg.neurons.LIF(tau_mem=np.array([10.0, 20.0, 30.0])))


def test_per_neuron_initial_value_of_wrong_length_is_refused():
    neuron = eg.UserNeuron(vars={"v": ("(-v + Isyn) / tau", "0.0")}, threshold="v - 1.0", output_var_name="v",
                           param_vals={"tau": 10.0}, var_vals={"v": [0.1, 0.2]})
    with pytest.raises(eg.NetworkError, match=r"population 'h': 'v' has 2 values for 4 neurons"):
        eg.Network().add_population("h", 4, neuron)


def test_per_neuron_synapse_parameter_of_wrong_length_is_refused():
    # The synapse's per-neuron parameters are per target neuron.
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 4, eg.neurons.LIF())
    with pytest.raises(eg.NetworkError, match=r"the synapse of connection 'xh': 'tau' has 2 values for 4 neurons"):
        net.connect(x, h, eg.synapses.Exponential(tau=np.array([5.0, 6.0])), weight=np.ones((2, 4)), name="xh")


def test_per_neuron_parameter_of_right_length_reaches_each_neuron():
    # Refused, or applied to the wrong neurons: with v_thresh per neuron and identical input, only the
    # neuron with the low threshold may spike.
    net = eg.Network()
    x = net.add_input("x", 1)
    net.add_population("h", 3, eg.neurons.LIF(tau_mem=10.0, v_thresh=np.array([100.0, 0.5, 100.0])))
    net.connect(x, net.group("h"), eg.synapses.Exponential(tau=5.0), weight=np.full((1, 3), 3.0), name="xh")
    res = tiny_sim(net, readout=None).run(eg.SpikeBatch([[0.5]], [[0]]))
    _, units = res.spike_times("h", 0)
    assert units.size >= 1 and set(units.tolist()) == {1}


# ---- simulator options -------------------------------------------------------------------------------------


def test_duration_not_a_multiple_of_dt_is_refused():
    # Accepted: the last partial step would be dropped or stretched, changing every readout.
    with pytest.raises(ValueError, match=r"duration 10\.5 is not a whole number of steps dt=1\.0"):
        tiny_sim(duration=10.5)


def test_duration_that_is_a_multiple_up_to_rounding_is_accepted():
    # Refused: 0.3 / 0.1 = 2.9999999999999996 in floating point, but 0.3 ms is three steps of 0.1 ms.
    s = tiny_sim(dt=0.1, duration=0.3)
    assert s.n_steps == 3


@pytest.mark.parametrize("dt,duration", [(0.0, 5.0), (-1.0, 5.0), (1.0, 0.0), (np.nan, 5.0), (1.0, np.inf)])
def test_non_positive_or_non_finite_dt_or_duration_is_refused(dt, duration):
    with pytest.raises(ValueError, match=r"dt and duration must be positive and finite"):
        tiny_sim(dt=dt, duration=duration)


@pytest.mark.parametrize("dtype", ["float16", "int32", "complex128"])
def test_dtype_other_than_float32_or_float64_is_refused(dtype):
    with pytest.raises(ValueError, match=rf"dtype must be float32 or float64, got {dtype}"):
        tiny_sim(dtype=dtype)


@pytest.mark.parametrize("substeps", [
    0, -2, 1.5,
])
def test_substeps_must_be_a_positive_integer(substeps):
    # Accepted: a non-positive RK4 step count has no meaning; nonlinear models would be integrated with
    # one RK4 step per piece whatever the user asked for.
    with pytest.raises(ValueError, match=r"substeps"):
        tiny_sim(substeps=substeps)


def test_readout_of_unknown_group_is_refused():
    with pytest.raises(eg.NetworkError, match=r"no population or input named 'out'"):
        tiny_sim(readout=eg.readouts.SumVar("out"))


def test_readout_of_unknown_variable_is_refused():
    with pytest.raises(eg.NetworkError, match=r"readout variable 'u' is not a variable of 'o'"):
        tiny_sim(readout=eg.readouts.SumVar("o", var="u"))


def test_readout_of_an_input_is_refused():
    with pytest.raises(eg.NetworkError, match=r"readout group 'x' is an input"):
        tiny_sim(readout=eg.readouts.SumVar("x"))


def test_first_spike_readout_of_a_non_spiking_population_is_refused():
    # Accepted: every "first spike time" would be the trial length and the loss constant: no learning.
    with pytest.raises(eg.NetworkError, match=r"FirstSpikeTime readout of 'o', whose neurons never spike"):
        tiny_sim(readout=eg.readouts.FirstSpikeTime("o"))


def test_loss_without_readout_is_refused():
    s = tiny_sim(readout=None)
    with pytest.raises(eg.NetworkError, match=r"this simulator has no readout"):
        s.loss(good_batch(), [0, 1])


# ---- labels and targets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels,pattern", [
    ([0, 1, 1], r"labels must be 2 integers, got shape \(3,\)"),
    ([[0], [1]], r"labels must be 2 integers, got shape \(2, 1\)"),
    ([0.0, 1.0], r"labels must be 2 integers, got shape \(2,\) and dtype float64"),
    ([0, N_O], r"labels must lie in \[0, 2\), got values from 0 to 2"),
    ([-1, 0], r"labels must lie in \[0, 2\), got values from -1 to 0"),
])
def test_bad_labels_are_refused(sim, labels, pattern):
    # Accepted: a wrong count is broadcast, a float label truncated, an out-of-range label indexes another
    # class (or wraps around with -1): the loss would train towards the wrong class.
    with pytest.raises(LossError, match=pattern):
        sim.loss(good_batch(), labels)


@pytest.mark.parametrize("shape", [(2,), (2, 3), (1, 2)])
def test_mse_targets_of_wrong_shape_are_refused(shape):
    # Accepted: numpy broadcasting would compare each output with the wrong target.
    s = tiny_sim(loss=eg.losses.MeanSquaredError())
    with pytest.raises(LossError, match=re.escape(f"targets must have shape (2, 2) (batch, outputs), got {shape}")):
        s.loss(good_batch(), np.zeros(shape))


def test_mse_nan_targets_are_refused():
    s = tiny_sim(loss=eg.losses.MeanSquaredError())
    with pytest.raises(LossError, match=r"targets contain NaN or infinite values"):
        s.loss(good_batch(), np.array([[0.0, np.nan], [0.0, 0.0]]))


# ---- sim.params written by the user ---------------------------------------------------------------------------


def test_wrongly_shaped_parameter_written_into_params_is_refused_at_run():
    # Accepted: 2 time constants for 3 neurons would be read past the end of the parameter table.
    s = tiny_sim()
    s.params["h.tau_mem"] = np.array([10.0, 20.0])
    with pytest.raises(ValueError, match=r"parameter 'h.tau_mem' has shape \(2,\); expected \(\) or \(3,\)"):
        s.run(good_batch())


def test_wrongly_shaped_weight_written_into_params_is_refused_at_run():
    # Accepted: a transposed weight matrix has the right size, so it would silently connect the wrong pairs.
    s = tiny_sim()
    s.params["xh.weight"] = np.ones((N_H, N_IN))
    with pytest.raises(ValueError, match=r"'xh.weight' has shape \(3, 2\), expected \(2, 3\)"):
        s.run(good_batch())


def test_nan_written_into_params_is_refused_at_run():
    s = tiny_sim()
    s.params["h.tau_mem"] = np.array([10.0, np.nan, 10.0])
    with pytest.raises(ValueError, match=r"parameter 'h.tau_mem' contains NaN or infinite values"):
        s.run(good_batch())
    s = tiny_sim()
    s.params["ho.weight"][0, 1] = np.nan
    with pytest.raises(ValueError, match=r"a weight matrix contains NaN or infinite values"):
        s.run(good_batch())


def test_unknown_key_written_into_params_is_refused_at_run():
    # Accepted: the user believes the time constant changed (e.g. in a hyper-parameter sweep); it did not.
    s = tiny_sim()
    s.params["h.tau_mme"] = 3.0
    with pytest.raises((KeyError, ValueError), match=r"tau_mme"):
        s.run(good_batch())


def test_zero_time_constant_is_refused_instead_of_hanging():
    # Accepted: the run never returns. Run in a subprocess so that the hang is a failure, not a stuck suite.
    code = textwrap.dedent("""
        import numpy as np, eventgrad as eg
        net = eg.Network()
        x = net.add_input("x", 2)
        h = net.add_population("h", 3, eg.neurons.LIF(tau_mem=0.0))
        net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=np.ones((2, 3)), name="xh")
        sim = eg.Simulator(net, dt=1.0, duration=5.0, dtype="float64", jit=False)
        sim.run(eg.SpikeBatch([[0.5]], [[0]]))
    """)
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("a simulation with tau_mem = 0 did not finish within 15 s")
    assert proc.returncode != 0, "tau_mem = 0 was accepted"
    assert "tau_mem" in proc.stderr.splitlines()[-1], proc.stderr[-2000:]


# ---- models that cannot be simulated ---------------------------------------------------------------------------


def test_reset_that_leaves_the_neuron_above_threshold_raises_simulation_error():
    # Accepted: the neuron would spike again at the same instant forever (or the loop would hang).
    neuron = eg.UserNeuron(vars={"v": ("(-v + Isyn) / tau_mem", "v_thresh + 1")}, threshold="v - v_thresh",
                           output_var_name="v", param_vals={"tau_mem": 10.0, "v_thresh": 1.0})
    s = tiny_sim(tiny_network(neuron=neuron))
    with pytest.raises(eg.SimulationError, match=r"neuron \d of 'h' is still above threshold right after its reset; "
                                                r"the model 'v - v_thresh' would spike forever"):
        s.run(good_batch(1))


def test_synapse_injecting_into_a_variable_the_neuron_lacks_is_refused():
    # Accepted: 'u' would be read from some other state slot (or be an unbound symbol in generated code).
    synapse = eg.UserSynapse(vars={"g": ("-g / tau", "g + weight")}, inject_current="g * (E - u)",
                             param_vals={"tau": 5.0, "E": 0.0})
    with pytest.raises(eg.ModelError, match=r"connection 'xh' injects 'g \* \(E - u\)', which refers to 'u': "
                                           r"neither a variable of the synapse nor of the target neuron of 'h'"):
        tiny_sim(tiny_network(synapse=synapse))


def test_check_gradients_refuses_a_float32_simulator():
    # Accepted: float32 finite differences drown in rounding, and the report would blame the adjoint.
    s = tiny_sim(dtype="float32")
    with pytest.raises(ValueError, match=r"check_gradients needs a float64 simulator"):
        eg.check_gradients(s, good_batch(), [0, 1])


# ---- the event log grows without dropping anything ------------------------------------------------------------


def busy_network(rng):
    """fd_networks.recurrent_lif (kernels shared with other tests), driven hard: many hidden spikes."""
    net = recurrent_lif(rng)
    # driven far past any real rate on purpose (over 64 spikes per neuron in some 1 ms steps): above the default
    # spike budget, which stops runaway networks (tests/test_hardening.py)
    return eg.Simulator(net, dt=1.0, duration=50.0, dtype="float64", readout=eg.readouts.SumVar("o"), jit=True,
                        max_spikes_per_step=1 << 16)


def n_inputs_logged(rec):
    return int(np.sum(rec.log_i[:rec.n_events, 2] == 2))


def test_event_log_that_grows_several_times_drops_nothing():
    # Fails if events written before an overflow are lost or doubled when the log grows and the sample is
    # rerun (counts not reset, readout accumulated twice, inputs consumed by the failed attempt): the first
    # run, which grows the log, must equal a second run that starts with the grown log.
    rng = np.random.default_rng(0)
    sim = busy_network(rng)
    n = 5000
    times = np.sort(rng.uniform(0.0, 50.0, n))
    units = rng.integers(0, 5, n)
    batch = eg.SpikeBatch([times], [units])
    first = sim.run(batch)
    rec = first.records[0]
    initial = 2 * n + 64  # the simulator's first log size for this sample
    # (the records hold the logs trimmed to what was logged; the simulator remembers the size they needed)
    assert rec.n_events > 2 * initial, "the log did not have to grow twice; the test proves nothing"
    capacity = sim._capacity
    second = sim.run(batch)
    assert sim._capacity == capacity >= rec.n_events  # the second run started large enough: no retry
    assert n_inputs_logged(rec) == n
    assert n_inputs_logged(second.records[0]) == n
    t1, u1 = first.spike_times("h", 0)
    t2, u2 = second.spike_times("h", 0)
    assert len(t1) == len(t2)
    assert rec.n_events == n + len(t1) > 2 * initial  # every logged event is an input or a hidden spike
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(u1, u2)
    np.testing.assert_array_equal(first.readout, second.readout)
    np.testing.assert_array_equal(rec.log_t[:rec.n_events][rec.log_i[:rec.n_events, 2] == 2], times)


def test_samples_growing_the_log_together_equal_each_sample_alone():
    # Fails if samples run in parallel share or corrupt each other's log while it grows (the log size is
    # shared by the simulator), or if a batch result differs from running each sample by itself.
    rng = np.random.default_rng(1)
    sim = busy_network(rng)
    samples = []
    for n in (3000, 200, 2500):
        times = np.sort(rng.uniform(0.0, 50.0, n))
        samples.append((times, rng.integers(0, 5, n)))
    together = sim.run(eg.SpikeBatch([s[0] for s in samples], [s[1] for s in samples]))
    grown = [rec.n_events > 2 * (2 * len(s[0]) + 64) for rec, s in zip(together.records, samples)]
    assert grown[0] and grown[2], "the logs did not have to grow; the test proves nothing"
    for b, (times, units) in enumerate(samples):
        alone = sim.run(eg.SpikeBatch([times], [units]))
        assert n_inputs_logged(together.records[b]) == len(times)
        np.testing.assert_array_equal(together.spike_times("h", b)[0], alone.spike_times("h", 0)[0])
        np.testing.assert_array_equal(together.spike_times("h", b)[1], alone.spike_times("h", 0)[1])
        np.testing.assert_array_equal(together.readout[b], alone.readout[0])


class HugeSpikeTimeLoss:
    """A loss term linear in the hidden spike times with a coefficient near float32's largest value."""

    def spike_terms(self, result, duration):
        return 0.0, {"h": np.full((len(result.records), N_H), 1e38)}


def test_a_gradient_that_overflows_is_an_error_that_names_it():
    sim32 = tiny_sim(dtype="float32")
    with np.errstate(all="ignore"):  # the compiled kernels overflow silently; the plain-Python ones would raise
        assert sim32.run(good_batch()).spike_counts("h").sum() > 0
        with pytest.raises(eg.SimulationError, match=r"the gradient is NaN or infinite in 'xh.weight' \(\d+ of 6 "
                                                     r"entries\).*dtype='float64' has a wider range"):
            sim32.loss_and_grad(good_batch(), [0, 1], regularizer=HugeSpikeTimeLoss())



def test_a_surrogate_gradient_that_overflows_is_an_error_that_names_it(monkeypatch):
    import eventgrad.bptt.simulator as bptt_module

    real_backward = bptt_module.backward

    def overflowing_backward(*args):  # surrogate gradients rarely overflow in a tiny network: make one
        grads = real_backward(*args)
        grads.values["xh.weight"][0, 0] = np.inf
        return grads

    monkeypatch.setattr(bptt_module, "backward", overflowing_backward)
    bptt = eg.BPTTSimulator(tiny_network(), dt=1.0, duration=DURATION, dtype="float32", readout=eg.readouts.SumVar("o"))
    with pytest.raises(eg.SimulationError, match=r"the gradient is NaN or infinite in 'xh.weight' \(1 of 6 entries\)"):
        bptt.loss_and_grad(good_batch(), [0, 1])
