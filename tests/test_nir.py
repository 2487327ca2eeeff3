"""NIR export and import: a round trip through a file keeps every spike; the unit conventions are pinned by
hand-computed cases; graphs in the patterns snnTorch and Norse write import with the weights their own
simulators use; what NIR cannot express is refused by name."""

import nir
import numpy as np
import pytest
from fd_networks import recurrent_lif

import eventgrad as eg
from eventgrad.kinds import synapse_kind
from eventgrad.nir import NIRConversionError, from_nir, to_nir, write


def busy_network(rng, delay=None):
    """A recurrent LIF layer and an LI readout (fd_networks.recurrent_lif: kernels shared with other tests)."""
    return recurrent_lif(rng, delay=delay)


def simulator(net):
    return eg.Simulator(net, dt=1.0, duration=50.0, dtype="float64", readout=eg.readouts.SumVar("o"), jit=True)


def test_round_trip_through_a_file_keeps_names_parameters_and_every_spike(tmp_path):
    # Fails if a conversion is not inverted exactly (a unit, r, w_in, the [out, in] transpose), if names are
    # lost, or if trained parameters in sim.params are not the ones exported.
    rng = np.random.default_rng(0)
    sim = simulator(busy_network(rng))
    sim.params["xh.weight"] = sim.params["xh.weight"] * 1.1  # "trained": differs from the network's own weights
    sim.params["h.tau_mem"] = np.array(12.0)
    path = tmp_path / "net.nir"
    write(path, sim)
    graph = nir.read(str(path))
    assert {k: type(v).__name__ for k, v in graph.nodes.items()} == {
        "x": "Input", "h": "CubaLIF", "o": "CubaLI", "xh": "Linear", "hh": "Linear", "ho": "Linear",
        "_output": "Output"}
    assert ("h", "hh") in graph.edges and ("hh", "h") in graph.edges  # the recurrent connection is a cycle
    net = from_nir(path)
    assert [g.name for g in net.groups] == ["x", "h", "o"] and [c.name for c in net.connections] == ["xh", "hh", "ho"]
    assert net.group("h").neuron.params == {"tau_mem": 12.0, "v_thresh": 1.0, "v_reset": 0.0}
    again = simulator(net)
    for key, value in sim.params.items():
        np.testing.assert_allclose(again.params[key], value, rtol=1e-14, err_msg=key)
    batch = eg.SpikeBatch(times=[np.sort(rng.uniform(0, 40, 40)) for _ in range(3)],
                          units=[rng.integers(0, 5, 40) for _ in range(3)])
    a, b = sim.run(batch), again.run(batch)
    for s in range(3):
        (ta, ua), (tb, ub) = a.spike_times("h", s), b.spike_times("h", s)
        assert len(ta) > 20 and np.array_equal(ua, ub)
        np.testing.assert_allclose(ta, tb, atol=1e-9)
    np.testing.assert_allclose(a.readout, b.readout, rtol=1e-9)


def test_conversions_pinned_by_hand():
    # Fails if a unit (s vs ms), the pulse reading of spikes (r = tau / dt, w_in = tau_syn / tau_mem, W = w /
    # tau_mem for instantaneous input, r = 1 / dt for IF) or the [out, in] layout changes.
    net = eg.Network()
    x = net.add_input("x", 2)
    a = net.add_population("a", 3, eg.neurons.LIF(tau_mem=20.0, v_thresh=1.5, v_reset=0.2))
    b = net.add_population("b", 2, eg.neurons.LIF(tau_mem=10.0))
    c = net.add_population("c", 1, eg.neurons.IF(v_thresh=2.0))
    w_xa, w_ab, w_bc = np.arange(6.0).reshape(2, 3), np.arange(6.0).reshape(3, 2), np.array([[1.0], [3.0]])
    net.connect(x, a, eg.synapses.Exponential(tau=5.0), weight=w_xa, name="xa")
    net.connect(a, b, eg.synapses.Delta(), weight=w_ab, name="ab")
    net.connect(b, c, eg.synapses.Delta(), weight=w_bc, name="bc")
    g = to_nir(net, dt=0.5)  # seconds
    assert isinstance(g.nodes["a"], nir.CubaLIF) and isinstance(g.nodes["b"], nir.LIF) and isinstance(g.nodes["c"],
                                                                                                         nir.IF)
    np.testing.assert_allclose(g.nodes["a"].tau_mem, [0.02] * 3)
    np.testing.assert_allclose(g.nodes["a"].tau_syn, [0.005] * 3)
    np.testing.assert_allclose(g.nodes["a"].r, [40.0] * 3)       # 20 ms / 0.5 ms
    np.testing.assert_allclose(g.nodes["a"].w_in, [0.25] * 3)    # 5 ms / 20 ms
    np.testing.assert_allclose(g.nodes["a"].v_threshold, [1.5] * 3)
    np.testing.assert_allclose(g.nodes["a"].v_reset, [0.2] * 3)
    np.testing.assert_allclose(g.nodes["xa"].weight, w_xa.T)     # [out, in]
    np.testing.assert_allclose(g.nodes["b"].tau, [0.01] * 2)
    np.testing.assert_allclose(g.nodes["b"].r, [20.0] * 2)
    np.testing.assert_allclose(g.nodes["ab"].weight, w_ab.T / 10.0)  # v jumps by W: w / tau_mem
    np.testing.assert_allclose(g.nodes["c"].r, [2000.0])         # 1 / (0.5e-3 s)
    np.testing.assert_allclose(g.nodes["bc"].weight, w_bc.T)
    assert g.metadata["time_unit"] == "s" and g.metadata["dt"] == pytest.approx(5e-4)
    g_ms = to_nir(net, dt=0.5, time_unit="ms")
    np.testing.assert_allclose(g_ms.nodes["a"].tau_mem, [20.0] * 3)
    np.testing.assert_allclose(g_ms.nodes["c"].r, [2.0])


def test_delays_become_delay_nodes_and_come_back():
    # Fails if a delay is dropped, put on the wrong side of the Linear, converted with the wrong unit, or if
    # delays NIR cannot express (depending on source and target) are exported silently.
    rng = np.random.default_rng(1)
    g = to_nir(busy_network(rng, delay=1.5))
    assert ("hh", "_hh_delay_post") in g.edges and ("_hh_delay_post", "h") in g.edges
    np.testing.assert_allclose(g.nodes["_hh_delay_post"].delay, [1.5e-3] * 8)
    assert from_nir(g).connections[1].delay == pytest.approx(1.5)
    per_source = np.repeat(rng.uniform(0, 3, (8, 1)), 8, axis=1)
    g = to_nir(busy_network(rng, delay=per_source))
    assert ("h", "_hh_delay_pre") in g.edges and ("_hh_delay_pre", "hh") in g.edges
    np.testing.assert_allclose(from_nir(g).connections[1].delay, per_source, rtol=1e-12)
    with pytest.raises(NIRConversionError, match="connection 'hh' has a delay per synapse that depends on both"):
        to_nir(busy_network(rng, delay=rng.uniform(0, 3, (8, 8))))


def test_snntorch_recurrent_pattern_imports_with_its_own_weights():
    # The nested graph snnTorch 1.0 writes for Linear -> RLeaky(beta) -> Linear -> Leaky (dt = 1e-4 s,
    # tau = dt / (1 - beta), r = tau / dt): snnTorch's own update is mem <- beta mem + W x, so each input
    # spike must move v by W. Fails if the nested graph is not flattened, its name not kept, or the
    # weight gain differs from snnTorch's.
    dt, beta, n = 1e-4, 0.9, 4
    tau = dt / (1 - beta)
    lif = nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt), v_leak=np.zeros(n), v_threshold=np.ones(n),
                  v_reset=np.zeros(n))
    w_rec, w_in, w_out = np.full((n, n), 0.1), np.arange(12.0).reshape(n, 3), np.ones((2, n))
    rleaky = nir.NIRGraph(nodes={"input": nir.Input(input_type=[n]), "lif": lif, "w_rec": nir.Linear(weight=w_rec),
                                 "output": nir.Output(output_type=[n])},
                          edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    out = nir.LIF(tau=np.full(2, tau), r=np.full(2, tau / dt), v_leak=np.zeros(2), v_threshold=np.ones(2),
                  v_reset=np.zeros(2))
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=[3]), "fc1": nir.Linear(weight=w_in), "lif1": rleaky,
                                "fc2": nir.Linear(weight=w_out), "lif2": out, "output": nir.Output(output_type=[2])},
                         edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
                                ("lif2", "output")])
    with pytest.raises(NIRConversionError, match="pass from_nir"):
        from_nir(graph)  # a foreign graph does not say its dt
    net = from_nir(graph, dt=0.1, time_unit="s")
    assert [g.name for g in net.groups] == ["input", "lif1", "lif2"]
    assert [(c.name, c.pre.name, c.post.name) for c in net.connections] == [
        ("fc1", "input", "lif1"), ("lif1_w_rec", "lif1", "lif1"), ("fc2", "lif1", "lif2")]
    assert net.group("lif1").neuron.params["tau_mem"] == pytest.approx(1.0)  # 1e-3 s
    for c, w in zip(net.connections, (w_in, w_rec, w_out)):
        assert synapse_kind(c.synapse, 1).name == "Delta"
        jump = c.weight / c.post.neuron.params["tau_mem"]  # a Delta synapse moves v by w / tau_mem
        np.testing.assert_allclose(jump, w.T, rtol=1e-12)


def test_norse_pattern_imports_as_norse_simulates_it():
    # Norse writes LIFCell as CubaLIF(r = 1, w_in = 1) in seconds and reads it with dt = 1e-3 s and forward
    # Euler: the synaptic current jumps by W dt / tau_syn. Fails if that gain is not applied.
    cuba = nir.CubaLIF(tau_syn=np.full(2, 5e-3), tau_mem=np.full(2, 1e-2), r=np.ones(2), v_leak=np.zeros(2),
                       v_threshold=np.ones(2), w_in=np.ones(2))
    li = nir.LI(tau=np.full(1, 2e-2), r=np.ones(1), v_leak=np.zeros(1))
    w1, w2 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([[1.0, -1.0]])
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=[3]), "0": nir.Linear(weight=w1), "1": cuba,
                                "2": nir.Affine(weight=w2, bias=np.zeros(1)), "3": li},
                         edges=[("input", "0"), ("0", "1"), ("1", "2"), ("2", "3")])
    net = from_nir(graph, dt=1.0)
    assert [g.name for g in net.groups] == ["input", "n1", "n3"]
    np.testing.assert_allclose(net.connections[0].weight, w1.T * 1e-3 / 5e-3)
    assert net.connections[0].synapse.params == {"tau": pytest.approx(5.0)}
    np.testing.assert_allclose(net.connections[1].weight / 20.0, w2.T * 1e-3 / 2e-2)  # v's jump, Euler at dt


def test_what_nir_cannot_express_is_refused_by_name():
    rng = np.random.default_rng(2)
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.AdaptiveLIF())
    net.connect(x, h, eg.synapses.Exponential(), weight=np.ones((2, 3)), name="xh")
    with pytest.raises(NIRConversionError, match="population 'h' is not a model NIR can express"):
        to_nir(net)
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.LIF())
    net.connect(x, h, eg.synapses.Alpha(), weight=np.ones((2, 3)), name="xh")
    with pytest.raises(NIRConversionError, match="connection 'xh' into population 'h' uses a synapse"):
        to_nir(net)
    net.connections.clear()
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=np.ones((2, 3)), name="a")
    net.connect(x, h, eg.synapses.Exponential(tau=3.0), weight=np.ones((2, 3)), name="b")
    with pytest.raises(NIRConversionError, match="population 'h' is fed by Exponential synapses with different"):
        to_nir(net)
    graph = to_nir(busy_network(rng))
    graph.nodes["thr"] = nir.Threshold(threshold=np.ones(3))
    graph.edges.append(("o", "thr"))
    with pytest.raises(NIRConversionError, match="node 'thr' is a Threshold, which eventgrad cannot import"):
        from_nir(graph)
    graph = to_nir(busy_network(rng))
    graph.nodes["h"].v_leak = np.full(8, 0.5)
    with pytest.raises(NIRConversionError, match=r"node 'h' \(CubaLIF\) has v_leak != 0"):
        from_nir(graph)
