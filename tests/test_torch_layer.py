"""eventgrad.torch.SpikingLayer: its gradients are EventProp's, for any torch loss; graded input values get
theirs too (a torch front end learns); both agree with finite differences in float64; the nn.Parameters and
sim.params stay one set of numbers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eventgrad as eg  # noqa: E402
from eventgrad.data import SpikeBatch, SpikeDataError  # noqa: E402
from eventgrad.torch import SpikingLayer  # noqa: E402


def _network(syn, w_in, seed=1):
    """The network of test_graded_inputs (its kernels are cached with it): 4 inputs, 6 recurrent LIF, 3 LI."""
    r = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", 4)
    h = net.add_population("h", 6, eg.neurons.LIF(tau_mem=10.0))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, syn, weight=w_in * r.uniform(0.4, 1.6, (4, 6)), name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=4.0), weight=r.normal(0, 0.3, (6, 6)), name="hh")
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=r.normal(0, 1.0, (6, 3)), name="ho")
    return net


def _sim(net, dtype="float64"):
    return eg.Simulator(net, dt=1.0, duration=40.0, dtype=dtype, readout=eg.readouts.SumVar("o"),
                        loss=eg.losses.SoftmaxCrossEntropy(), threads=1)


def _spikes(n=3, seed=3):
    rng = np.random.default_rng(seed)
    return SpikeBatch([np.sort(rng.uniform(0, 30, 12)) for _ in range(n)], [rng.integers(0, 4, 12) for _ in range(n)])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_layer_gradients_are_loss_and_grad_s(dtype):
    """Cross-entropy in torch on the layer's readout = the simulator's SoftmaxCrossEntropy on its SumVar readout."""
    sim = _sim(_network(eg.synapses.Exponential(tau=4.0), 1.0), dtype)
    batch, labels = _spikes(), np.array([0, 2, 1])
    loss, grads = sim.loss_and_grad(batch, labels)
    assert sim.last_result.spike_counts("h").sum() > 0
    layer = SpikingLayer(sim)
    y = layer(batch)
    assert y.shape == (3, 3) and y.dtype == getattr(torch, dtype)
    torch_loss = torch.nn.functional.cross_entropy(y.double(), torch.from_numpy(labels))
    torch_loss.backward()
    tol = 1e-10 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(torch_loss.item(), loss, rtol=tol)
    assert set(layer.keys) == set(grads) == {"xh.weight", "hh.weight", "ho.weight"}
    for key, g in grads.items():
        p = layer.parameter(key)
        assert p.grad.dtype == p.dtype == getattr(torch, dtype)
        np.testing.assert_allclose(p.grad.double().numpy(), g, rtol=tol, atol=tol * np.abs(g).max(), err_msg=key)


def test_parameters_and_sim_params_are_one_set_of_numbers():
    sim = _sim(_network(eg.synapses.Exponential(tau=4.0, trainable=("tau",)), 1.0))
    layer = SpikingLayer(sim)
    assert {n for n, _ in layer.named_parameters()} == {"weights.xh__weight", "weights.hh__weight",
                                                        "weights.ho__weight", "weights.xh__tau"}
    with torch.no_grad():
        layer.parameter("ho.weight").mul_(2.0)  # a torch optimiser's update ...
    np.testing.assert_array_equal(sim.params["ho.weight"], layer.parameter("ho.weight").detach().numpy())
    sim.params["hh.weight"][0, 0] = 7.0  # ... an eventgrad optimiser's, in place
    assert layer.parameter("hh.weight")[0, 0].item() == 7.0
    sim.params["xh.weight"] = np.full((4, 6), 0.5)  # a new array: taken over at the next forward pass
    layer(_spikes(1))
    assert torch.all(layer.parameter("xh.weight") == 0.5)
    sim.params["xh.weight"][1, 1] = 0.25
    assert layer.parameter("xh.weight")[1, 1].item() == 0.25
    torch.optim.SGD(layer.parameters(), lr=0.1).zero_grad()
    with pytest.raises(KeyError, match="'h.tau_mem' is not a trainable parameter"):
        layer.parameter("h.tau_mem")
    layer.double()  # float64 already: nothing changes
    with pytest.raises(TypeError, match="build the simulator with the dtype you want"):
        layer.float()(_spikes(1))


def test_bad_inputs_are_refused_clearly():
    layer = SpikingLayer(_sim(_network(eg.synapses.Constant(), 1.0)))
    with pytest.raises(SpikeDataError, match=r"shape \(batch, 4\).*got \(2, 5\)"):
        layer(torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(SpikeDataError, match=r"floating-point \(batch, 4\) tensor"):
        layer(torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(SpikeDataError, match=r"value \[1, 2\] is nan"):
        layer(torch.tensor([[0.0] * 4, [0.0, 0.0, float("nan"), 0.0]], dtype=torch.float64))
    with pytest.raises(SpikeDataError, match="unit"):
        layer(SpikeBatch([[1.0]], [[9]]))  # unit 9 of an input population of 4
    with pytest.raises(TypeError, match="takes a SpikeBatch"):
        layer(np.zeros((2, 4)))
    with pytest.raises(SpikeDataError, match="input_times must lie in"):
        SpikingLayer(layer.sim, input_times=50.0)
    count = eg.Simulator(_network(eg.synapses.Constant(), 1.0), dt=1.0, duration=40.0,
                         readout=eg.readouts.SpikeCount("h"))
    with pytest.raises(eg.NetworkError, match="cannot differentiate a spike count"):
        SpikingLayer(count)


def _graded_setup(seed=0):
    sim = _sim(_network(eg.synapses.Constant(), 1.0, seed=seed + 1))
    X = np.random.default_rng(seed).uniform(0.2, 1.5, (2, 4))
    X[0, 1], X[1, 2] = -0.3, 0.0  # a negative value, and a zero one (which still has a gradient)
    return sim, X


def test_graded_values_match_a_batch_of_graded_events():
    """The per-sample runs of the graded path give the readout and gradients of the same events in one batch."""
    sim, X = _graded_setup()
    layer = SpikingLayer(sim, input_times=[1.0, 2.5, 2.5, 4.0])
    y = layer(torch.from_numpy(X))
    batch = SpikeBatch([[1.0, 2.5, 2.5, 4.0]] * 2, [[0, 1, 2, 3]] * 2, values=list(X))
    res = sim.run(batch)
    assert res.spike_counts("h").sum() > 0
    np.testing.assert_allclose(y.detach().numpy(), res.readout, rtol=1e-12, atol=1e-12)
    cot = np.random.default_rng(1).normal(size=(2, 3))
    (y * torch.from_numpy(cot)).sum().backward()
    grads = sim.backward(res, cot)
    for key, g in grads.items():
        np.testing.assert_allclose(layer.parameter(key).grad.numpy(), g, rtol=1e-9, atol=1e-12, err_msg=key)


def test_layer_gradients_pass_torch_gradcheck_in_float64():
    """Central differences of the readout (torch.autograd.gradcheck) against the layer's gradients: the graded
    values, the input weights (scaled per sample inside) and the recurrent ones. The network spikes in both
    samples, and a perturbation of 1e-6 moves those spikes without adding or removing one (a spike that
    appeared would make the differences jump, and gradcheck fail)."""
    sim, X = _graded_setup()
    layer = SpikingLayer(sim, input_times=[1.0, 2.5, 2.5, 4.0])
    values = torch.from_numpy(X).requires_grad_(True)
    counts = [r.spike_counts("h").sum() for r in (layer(values), layer.last_result)[1].results]
    assert min(counts) > 0, "a silent sample would test nothing"
    w_in, w_rec = layer.parameter("xh.weight"), layer.parameter("hh.weight")

    def readout(v, a, b):  # a, b: the parameters, perturbed in place by gradcheck (sim.params is the same memory)
        return layer(v)

    assert torch.autograd.gradcheck(readout, (values, w_in, w_rec), eps=1e-6, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        w_rec[0, 1] += 1e-6  # one perturbation as gradcheck makes them: the same spikes
        assert [r.spike_counts("h").sum() for r in (layer(values), layer.last_result)[1].results] == counts


def test_a_torch_linear_front_end_learns_through_the_spiking_layer():
    """Three features -> torch Linear -> graded input of the spiking network -> mean voltage readout; Adam on
    both. Which feature is largest is the class: the loss falls below chance's, log 3."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.uniform(0, 1, (12, 3)))
    labels = torch.from_numpy(np.argmax(X.numpy(), axis=1))
    sim = eg.Simulator(_network(eg.synapses.Constant(), 1.0), dt=1.0, duration=40.0, dtype="float64",
                       readout=eg.readouts.MeanVar("o"), threads=1)
    front = torch.nn.Linear(3, 4, dtype=torch.float64)
    with torch.no_grad():
        front.bias.fill_(1.0)  # a drive that makes the hidden layer spike: a silent one passes no gradient
    model = torch.nn.Sequential(front, SpikingLayer(sim, input_times=1.0))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    front_before = front.weight.detach().clone()
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(X), labels)
        loss.backward()
        assert front.weight.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0] and losses[-1] < 0.9 * np.log(3), losses
    assert not torch.allclose(front.weight, front_before)
