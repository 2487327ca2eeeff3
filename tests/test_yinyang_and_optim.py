"""The Yin-Yang generator (against the reference's fixed draws), its latency code, and the optimisers
(against updates computed by hand). If the class counts or first samples change, the draw order no longer
matches Kriener et al.'s reference code and published numbers stop being comparable."""

import numpy as np
import pytest

import eventgrad as eg
from eventgrad.data import latency_encode, yinyang
from eventgrad.data.yinyang import REFERENCE_SPLITS, yinyang_class
from eventgrad.optim import SGD, Adam

# Class counts of the reference splits (labels 0, 1, 2), as the reference implementation draws them.
REFERENCE_COUNTS = {"train": [1681, 1702, 1617], "validation": [316, 336, 348], "test": [350, 316, 334]}
FIRST_SAMPLE = {"train": ((0.68030754, 0.45049925), 2), "validation": ((0.68057273, 0.32097339), 0),
                "test": ((0.23409665, 0.40172498), 2)}


@pytest.fixture(scope="module")
def splits():
    return {name: yinyang(n, seed) for name, (seed, n) in REFERENCE_SPLITS.items()}


@pytest.mark.parametrize("name", list(REFERENCE_SPLITS))
def test_reference_splits_have_the_reference_draws(splits, name):
    """Counts and first sample pin the draw order (class, then rand(2) pairs) on RandomState(seed)."""
    X, labels = splits[name]
    assert labels.dtype == np.int64 and X.shape == (REFERENCE_SPLITS[name][1], 4)
    assert np.bincount(labels, minlength=3).tolist() == REFERENCE_COUNTS[name]
    (x0, y0), label0 = FIRST_SAMPLE[name]
    np.testing.assert_allclose(X[0, :2], [x0, y0], atol=5e-9)
    assert labels[0] == label0


@pytest.mark.parametrize("name", list(REFERENCE_SPLITS))
def test_inputs_lie_in_the_big_circle_with_mirrored_columns(splits, name):
    X, _ = splits[name]
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert np.all((X[:, 0] - 0.5) ** 2 + (X[:, 1] - 0.5) ** 2 <= 0.25)
    np.testing.assert_array_equal(X[:, 2:], 1.0 - X[:, :2])


def test_labels_match_the_geometry(splits):
    """Dots are the discs of radius 0.1 at (0.25, 0.5) and (0.75, 0.5); the sign is point-symmetric about
    the centre with labels 0 and 1 swapped. Both would fail if the class of a point were wrong."""
    X, labels = splits["test"]
    x, y = X[:, 0], X[:, 1]
    in_dot = (np.hypot(x - 0.25, y - 0.5) < 0.1) | (np.hypot(x - 0.75, y - 0.5) < 0.1)
    np.testing.assert_array_equal(labels == 2, in_dot)
    mirrored = np.array([yinyang_class(1.0 - a, 1.0 - b) for a, b in zip(x, y)])
    np.testing.assert_array_equal(mirrored, np.array([1, 0, 2])[labels])


def test_generator_is_deterministic_and_checks_arguments():
    a, b = yinyang(50, seed=3), yinyang(50, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], yinyang(50, seed=4)[0])
    with pytest.raises(ValueError, match="n must be"):
        yinyang(-1, seed=0)
    with pytest.raises(ValueError, match="r_small"):
        yinyang(10, seed=0, r_small=0.3)


def test_latency_code_has_one_spike_per_feature_plus_bias():
    X, _ = yinyang(20, seed=7)
    batch = latency_encode(X, t_min=2.0, t_max=12.0, bias_time=1.5)
    assert len(batch) == 20
    for b in range(20):
        t, u = batch.times[b], batch.units[b]
        assert np.all(np.diff(t) >= 0), "times must be sorted"
        assert sorted(u.tolist()) == [0, 1, 2, 3, 4], "one spike per feature and one bias spike"
        np.testing.assert_allclose(t[u < 4], 2.0 + 10.0 * X[b, u[u < 4]])
        assert t[u == 4].tolist() == [1.5]
        assert t[u < 4].min() >= 2.0 and t[u < 4].max() <= 12.0


def test_latency_code_keeps_equal_times_in_unit_order_and_refuses_bad_values():
    batch = latency_encode(np.array([[0.5, 0.0, 0.5]]), t_max=10.0, bias_time=5.0)
    assert batch.times[0].tolist() == [0.0, 5.0, 5.0, 5.0]
    assert batch.units[0].tolist() == [1, 0, 2, 3]  # stable: ties keep column order, bias last
    assert [u.tolist() for u in latency_encode(np.array([[0.2, 0.1]])).units] == [[1, 0]]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        latency_encode(np.array([[1.5, 0.0]]))
    with pytest.raises(ValueError, match="t_min < t_max"):
        latency_encode(np.array([[0.5]]), t_min=3.0, t_max=3.0)


def test_adam_matches_two_steps_by_hand():
    """lr 0.1, betas (0.5, 0.75), gradients 2 then -3 on p = 1.
    Step 1: m = 1, v = 1, m_hat = 2, v_hat = 4, p = 1 - 0.1 * 2 / 2 = 0.9.
    Step 2: m = 0.5 - 1.5 = -1, v = 0.75 + 2.25 = 3, m_hat = -4/3, v_hat = 3 / 0.4375 = 48/7."""
    params = {"p": np.array([1.0]), "frozen": np.array(5.0)}
    opt = Adam(params, lr=0.1, betas=(0.5, 0.75), eps=1e-12, keys=["p"])
    p = params["p"]
    opt.step({"p": np.array([2.0]), "frozen": np.array(1.0)})
    np.testing.assert_allclose(p, [0.9], rtol=1e-12)
    opt.step({"p": np.array([-3.0]), "frozen": np.array(1.0)})
    np.testing.assert_allclose(p, [0.9 + 0.1 * (4 / 3) / np.sqrt(48 / 7)], rtol=1e-12)
    assert params["p"] is p, "must update in place"
    assert params["frozen"] == 5.0, "keys not listed must not change"


def test_adam_updates_float32_and_scalar_parameters_in_place():
    params = {"w": np.ones((2, 2), np.float32), "tau": np.array(10.0, np.float32)}
    w, tau = params["w"], params["tau"]
    Adam(params, lr=0.5).step({"w": np.array([[1.0, -1.0], [0.0, 2.0]]), "tau": np.float64(-4.0)})
    np.testing.assert_allclose(w, [[0.5, 1.5], [1.0, 0.5]], rtol=1e-6)  # first step: lr * sign(g)
    assert w.dtype == np.float32 and params["w"] is w
    assert tau == pytest.approx(10.5) and params["tau"] is tau


def test_sgd_with_and_without_momentum_by_hand():
    params = {"p": np.array([1.0])}
    opt = SGD(params, lr=0.1, momentum=0.5)
    opt.step({"p": np.array([2.0])})  # buffer 2: p = 1 - 0.2
    np.testing.assert_allclose(params["p"], [0.8])
    opt.step({"p": np.array([-3.0])})  # buffer 0.5 * 2 - 3 = -2: p = 0.8 + 0.2
    np.testing.assert_allclose(params["p"], [1.0])
    plain = {"p": np.array([1.0, 2.0])}
    SGD(plain, lr=0.25).step({"p": np.array([4.0, -8.0])})
    np.testing.assert_allclose(plain["p"], [0.0, 4.0])


def test_optimisers_refuse_mismatched_gradients():
    params = {"w": np.zeros((2, 3))}
    with pytest.raises(ValueError, match=r"'w' has shape \(3, 2\)"):
        Adam(params).step({"w": np.zeros((3, 2))})
    with pytest.raises(KeyError, match="no gradient for 'w'"):
        SGD(params, lr=0.1, keys=["w"]).step({})
    with pytest.raises(KeyError, match="'v' is not a parameter"):
        Adam(params, keys=["v"])
    with pytest.raises(ValueError, match="NaN"):
        SGD(params, lr=0.1).step({"w": np.full((2, 3), np.nan)})


def test_one_adam_step_lowers_the_loss_on_a_tiny_network():
    """Gradients from the simulator, applied by Adam with a small step, must go downhill on the same batch;
    if the signs of the gradients or of the update were wrong the loss would rise."""
    rng = np.random.default_rng(0)
    net = eg.Network()
    x = net.add_input("x", 5)
    h = net.add_population("h", 4, eg.neurons.LIF(tau_mem=10.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=10.0))
    net.connect(x, h, eg.synapses.Exponential(tau=3.0), weight=rng.uniform(1.0, 3.0, (5, 4)), name="xh")
    net.connect(h, o, eg.synapses.Exponential(tau=3.0), weight=rng.normal(0.0, 1.0, (4, 3)), name="ho")
    sim = eg.Simulator(net, dt=1.0, duration=10.0, dtype="float64", readout=eg.readouts.MeanVar("o"), jit=False)
    X, labels = yinyang(4, seed=42)
    batch = latency_encode(X, t_max=5.0, bias_time=0.0)
    with np.errstate(all="raise"):
        assert sim.run(batch).spike_counts("h").sum() > 0, "hidden neurons must spike for xh to get gradients"
        before, grads = sim.loss_and_grad(batch, labels)
        assert all(np.any(grads[k] != 0) for k in sim.trainable)
        Adam(sim.params, lr=1e-2, keys=sim.trainable).step(grads)
        after = sim.loss(batch, labels)
    assert after < before - 1e-4, (before, after)
