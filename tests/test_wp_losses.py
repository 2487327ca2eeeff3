"""The time-to-first-spike loss of Wunderlich & Pehle (2021): its formula, its gradient in the logits, and
the exact gradient of a spiking network trained with it (against central finite differences, float64).

If the formula test fails, the loss is not the paper's; if the finite-difference tests fail, the
conversion between logits (-t/tau0) and spike times, or the sign of the early-spike term, is wrong.
"""

import numpy as np
import pytest
from fd_networks import inputs

import eventgrad as eg
from eventgrad.losses import FirstSpikeCrossEntropy, LossError, SoftmaxCrossEntropy


def _paper_loss(t, labels, tau0, tau1, alpha):
    """The paper's formula written out directly on spike times, one sample at a time."""
    out = []
    for times, label in zip(t, labels):
        ce = -np.log(np.exp(-times[label] / tau0) / np.exp(-times / tau0).sum())
        out.append(ce + alpha * (np.exp(times[label] / tau1) - 1.0))
    return float(np.mean(out))


def test_value_is_the_papers_formula():
    rng = np.random.default_rng(0)
    t = rng.uniform(10.0, 40.0, (5, 3))
    labels = np.array([0, 1, 2, 1, 0])
    loss = FirstSpikeCrossEntropy(tau0=2.0, tau1=6.4, alpha=3e-3)  # tau0 = 2 keeps the softmax unsaturated
    value, _ = loss.value_and_grad(-t / loss.tau0, labels)
    assert value == pytest.approx(_paper_loss(t, labels, loss.tau0, 6.4, 3e-3), rel=1e-12)


def test_gradient_in_the_logits_matches_finite_differences():
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 2.0, (4, 3))
    labels = np.array([2, 0, 1, 1])
    loss = FirstSpikeCrossEntropy(tau0=2.0, tau1=6.4, alpha=0.05)
    _, grad = loss.value_and_grad(logits, labels)
    fd = np.empty_like(logits)
    eps = 1e-6
    for idx in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[idx] += eps
        down[idx] -= eps
        fd[idx] = (loss.value_and_grad(up, labels)[0] - loss.value_and_grad(down, labels)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_alpha_zero_is_plain_cross_entropy():
    """Without the early-spike term the loss must be SoftmaxCrossEntropy on the same logits, exactly."""
    logits = np.random.default_rng(2).normal(size=(3, 4))
    labels = np.array([3, 0, 1])
    a = FirstSpikeCrossEntropy(tau0=1.0, tau1=5.0, alpha=0.0).value_and_grad(logits, labels)
    b = SoftmaxCrossEntropy().value_and_grad(logits, labels)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_for_readout_takes_tau0_and_refuses_other_readouts():
    loss = FirstSpikeCrossEntropy.for_readout(eg.readouts.FirstSpikeTime("o", tau0=0.5), tau1=6.4, alpha=3e-3)
    assert (loss.tau0, loss.tau1, loss.alpha) == (0.5, 6.4, 3e-3)
    with pytest.raises(LossError, match="not a first-spike-time readout"):
        FirstSpikeCrossEntropy.for_readout(eg.readouts.MaxVar("o"), tau1=6.4, alpha=3e-3)
    with pytest.raises(LossError, match="tau1 must be a positive time"):
        FirstSpikeCrossEntropy(tau0=0.5, tau1=0.0, alpha=3e-3)


def test_skip_silent_label_leaves_those_samples_out_as_the_authors_do():
    """A sample whose label neuron is silent (t = trial length) adds no loss and no gradient; the rest are
    averaged as if it were not in the batch. The trial length must be the simulation's duration."""
    t = np.array([[12.0, 15.0, 60.0], [60.0, 20.0, 14.0], [13.0, 60.0, 60.0]])
    labels = np.array([1, 0, 0])
    skip = FirstSpikeCrossEntropy(tau0=2.0, tau1=6.4, alpha=0.05, skip_silent_label=True, trial_length=60.0)
    plain = FirstSpikeCrossEntropy(tau0=2.0, tau1=6.4, alpha=0.05)
    value, grad = skip.value_and_grad((-t / 2.0).astype(np.float32), labels)  # float32 logits, as simulated
    kept_value, kept_grad = plain.value_and_grad(-t[[0, 2]] / 2.0, labels[[0, 2]])
    assert value == pytest.approx(kept_value, rel=1e-6)
    np.testing.assert_allclose(grad[[0, 2]], kept_grad, rtol=1e-5)
    assert np.all(grad[1] == 0.0)
    logits = -t / 2.0  # central differences in every entry of the kept rows (the skipped row has none)
    _, grad64 = skip.value_and_grad(logits, labels)
    for idx in [(r, k) for r in (0, 2) for k in range(3)]:
        up, down = logits.copy(), logits.copy()
        up[idx] += 1e-6
        down[idx] -= 1e-6
        fd = (skip.value_and_grad(up, labels)[0] - skip.value_and_grad(down, labels)[0]) / 2e-6
        assert fd == pytest.approx(grad64[idx], rel=1e-6, abs=1e-9), idx
    assert skip.value_and_grad(-t[[1]] / 2.0, labels[[1]]) == (0.0, pytest.approx(np.zeros((1, 3))))
    with pytest.raises(LossError, match="skip_silent_label needs trial_length"):
        FirstSpikeCrossEntropy(tau0=2.0, tau1=6.4, alpha=0.05, skip_silent_label=True)
    readout = eg.readouts.FirstSpikeTime("o", tau0=2.0)
    loss = FirstSpikeCrossEntropy.for_readout(readout, tau1=6.4, alpha=0.05, skip_silent_label=True, trial_length=30)
    with pytest.raises(LossError, match="trial_length is 30.0 ms but the simulation lasts 40.0 ms"):
        eg.Simulator(_network(0, False), dt=1.0, duration=40.0, readout=readout, loss=loss)


def test_overflow_of_the_early_spike_term_is_named():
    with pytest.raises(LossError, match="overflows"):
        FirstSpikeCrossEntropy(tau0=1.0, tau1=0.01, alpha=1.0).value_and_grad(np.array([[-40.0, -50.0]]), [0])


def _network(seed, trainable_tau: bool):
    """input 4 -> LIF 6 (recurrent) -> LIF 3, exponential synapses; every output neuron spikes."""
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", 4)
    tr = ("tau_mem", "v_thresh") if trainable_tau else ()
    h = net.add_population("h", 6, eg.neurons.LIF(tau_mem=10.0, trainable=tr))
    o = net.add_population("o", 3, eg.neurons.LIF(tau_mem=10.0))
    net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.5, 1.5, (4, 6)), name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0, 0.3, (6, 6)), name="hh")
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.2, 1.2, (6, 3)), name="ho")
    return net


@pytest.mark.parametrize("seed,trainable_tau", [(0, False), (1, False), (0, True)])
def test_network_gradient_with_the_wp_loss_is_exact(seed, trainable_tau):
    """EventProp with the W&P loss against central differences; fast kernels (fixed taus, the path the
    examples use) and generic kernels (trainable tau_mem and threshold)."""
    readout = eg.readouts.FirstSpikeTime("o", tau0=2.0)
    sim = eg.Simulator(_network(seed, trainable_tau), dt=1.0, duration=40.0, dtype="float64", readout=readout,
                       loss=FirstSpikeCrossEntropy.for_readout(readout, tau1=6.4, alpha=0.05))
    batch, labels = inputs(seed)
    res = sim.run(batch)
    assert np.all(res.readout < 40.0), "every output neuron should spike for this check"
    assert sim.kernels_used == ("generic" if trainable_tau else "fast")
    report = eg.check_gradients(sim, batch, labels, max_entries=6)
    assert report.worst < 1e-5, str(report)
