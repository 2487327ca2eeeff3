"""The kernel cache shared by processes: entry points compile under a file lock, once per kind of
arguments, so that two processes never write numba's cache files for one function at the same time; and
a kernel's source file, once written, is never replaced."""

import tempfile
import threading

import numba
import numpy as np
import pytest

import eventgrad as eg
from eventgrad.codegen.cache import ENTRY_POINTS, LockedFirstCall, file_lock, write_once


@numba.njit
def _scaled_sum(x, a):
    return a * x.sum()


def _call_in_thread(fn, *args):
    """Start fn(*args) in a thread; return (thread, event set when the call has returned)."""
    done = threading.Event()

    def run():
        fn(*args)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, done


def test_a_first_call_waits_for_the_lock_and_a_repeated_one_does_not(tmp_path):
    lock = tmp_path / "k.lock"
    kernel = LockedFirstCall(_scaled_sum, lock)
    x = np.arange(4.0)
    _scaled_sum(x, 1.0), _scaled_sum(x.astype(np.float32), 1.0)  # compiled now: any wait below is the lock's
    with file_lock(lock):  # another process compiling this module
        thread, done = _call_in_thread(kernel, x, 2.0)
        assert not done.wait(0.5), "the first call did not wait for the lock"
    thread.join(10)
    assert done.is_set()
    with file_lock(lock):
        assert kernel(x, 3.0) == 18.0  # same kinds of arguments: no lock, no wait (a wait would hang here)
        thread, done = _call_in_thread(kernel, x.astype(np.float32), 2.0)  # a new dtype compiles: it waits
        assert not done.wait(0.5), "a call with a new dtype did not wait for the lock"
    thread.join(10)
    assert done.is_set()


@numba.njit
def _weighted_sum(x, w):
    total = 0.0
    for i in range(x.shape[0]):
        total += w[i] * x[i]
    return total


def test_later_calls_skip_the_dispatcher_only_for_arguments_of_a_kind_already_compiled(tmp_path):
    """After the first call of a kind, the kernel's compiled version is called directly; an array of another
    layout (a strided view), dtype or dimension is another kind, which numba types and compiles (or converts)
    as usual: never run by a version compiled for other argument types."""
    kernel = LockedFirstCall(_weighted_sum, tmp_path / "k.lock")
    x = np.arange(8.0)
    w = np.linspace(1.0, 2.0, 8)
    assert kernel(x, w) == pytest.approx(float(w @ x))
    [direct] = kernel.seen.values()
    assert direct is not _weighted_sum and direct is _weighted_sum.overloads[_weighted_sum.signatures[0]].entry_point
    assert kernel(2 * x, w) == pytest.approx(2 * float(w @ x))  # the same kind: the compiled version itself
    wide_x, wide_w = np.arange(16.0), np.linspace(1.0, 2.0, 16)
    strided = (wide_x[::2], wide_w[::2])  # every other element: not contiguous
    assert kernel(*strided) == pytest.approx(float(wide_w[::2] @ wide_x[::2]))
    assert kernel(x.astype(np.float32), w) == pytest.approx(float(w @ x))
    readonly = x.copy()
    readonly.flags.writeable = False
    assert kernel(readonly, w) == pytest.approx(float(w @ x))
    assert len(kernel.seen) == 4
    assert len(_weighted_sum.signatures) >= 3  # C, strided and float32 versions (read-only may reuse one)


def test_compiled_networks_get_locked_entry_points_and_plain_python_ones_do_not():
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.LIF(tau_mem=10.0))
    net.connect(x, h, eg.synapses.Exponential(tau=5.0), weight=np.ones((2, 3)), name="xh")
    compiled = eg.Simulator(net, dt=1.0, duration=5.0, readout=eg.readouts.SumVar("h"))  # compiles lazily
    plain = eg.Simulator(net, dt=1.0, duration=5.0, readout=eg.readouts.SumVar("h"), jit=False)
    # the engines are shared by every network; the network's own module holds only its model functions
    for sim, locked in ((compiled, True), (plain, False)):
        for name in ("forward", "backward", "forward_fast", "backward_fast", "forward_step", "backward_step"):
            assert name in ENTRY_POINTS
            assert isinstance(getattr(sim.layout.engine, name), LockedFirstCall) == locked, name
        assert not hasattr(sim.layout.kernels, "forward")


def test_a_source_file_another_process_wrote_first_is_kept(tmp_path, monkeypatch):
    """numba's cache index is stamped with the source file's modification time: a process that replaced
    the file after another had compiled from it would make all of that compiling stale."""
    path = tmp_path / "k_abc.py"
    real_mkstemp = tempfile.mkstemp

    def other_process_first(*args, **kwargs):  # between our existence check and our write
        path.write_text("x = 1\n")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", other_process_first)
    write_once(path, "x = 1\n")
    before = path.stat()
    monkeypatch.setattr(tempfile, "mkstemp", real_mkstemp)
    write_once(path, "x = 1\n")
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in tmp_path.iterdir()] == ["k_abc.py"]  # no temporary file left


def test_a_new_source_file_is_written_whole(tmp_path):
    path = tmp_path / "k_new.py"
    write_once(path, "y = 2\n")
    assert path.read_text() == "y = 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["k_new.py"]


def _small_network(n_hidden, tau_mem, neuron, delay, rng, synapse=eg.synapses.Exponential):
    net = eg.Network()
    x = net.add_input("x", 4)
    h = net.add_population("h", n_hidden, neuron(tau_mem=tau_mem))
    o = net.add_population("o", 2, eg.neurons.LI(tau_mem=tau_mem))
    net.connect(x, h, synapse(tau=5.0), weight=rng.normal(0.6, 0.2, (4, n_hidden)), name="xh")
    net.connect(h, h, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, 0.1, (n_hidden, n_hidden)),
                name="hh", delay=delay)
    net.connect(h, o, eg.synapses.Exponential(tau=5.0), weight=rng.normal(0.0, 0.5, (n_hidden, 2)), name="ho")
    return net


@pytest.mark.parametrize("family, delay", [("fast", None), ("step", 1.0), ("generic", None), ("generic", 2.5)])
def test_sizes_weights_values_and_other_models_never_recompile_the_engines(family, delay):
    """Every network runs on the same compiled engines: sizes, weights and parameter values do not even change
    a network's own module (its model functions), other models do. The generic engine's networks here: alpha
    synapses (repeated eigenvalues), then a nonlinear neuron (QIF), with and without delays."""
    rng = np.random.default_rng(3)
    batch = eg.SpikeBatch([np.sort(rng.uniform(0, 20, 12)) for _ in range(2)],
                          [rng.integers(0, 4, 12) for _ in range(2)])
    if family == "generic":
        alpha = eg.synapses.Alpha
        nets = [_small_network(5, 10.0, eg.neurons.LIF, delay, rng, alpha),
                _small_network(9, 25.0, eg.neurons.LIF, delay, rng, alpha),
                _small_network(6, 15.0, eg.neurons.QIF, delay, rng)]
    else:
        nets = [_small_network(5, 10.0, eg.neurons.LIF, delay, rng),
                _small_network(9, 25.0, eg.neurons.LIF, delay, rng),
                _small_network(6, 15.0, eg.neurons.AdaptiveLIF, delay, rng)]
    sims = [eg.Simulator(n, dt=1.0, duration=20.0, readout=eg.readouts.SumVar("o"),
                         loss=eg.losses.SoftmaxCrossEntropy()) for n in nets]
    names = {"fast": ("forward_fast", "backward_fast"), "step": ("forward_step", "backward_step"),
             "generic": ("forward", "backward")}[family]
    engine = sims[0].layout.engine
    versions = None
    for sim in sims:
        sim.loss_and_grad(batch, np.array([0, 1]))
        assert sim.kernels_used == family
        assert sim.layout.engine is engine
        now = [len(getattr(engine, name).kernel.signatures) for name in names]
        assert versions is None or now == versions, "a network compiled a new version of the shared engine"
        versions = now
    assert sims[0].layout.kernels is sims[1].layout.kernels
    assert sims[2].layout.kernels is not sims[0].layout.kernels
