"""Compiling says so (what, and where it is cached for next time) and reports progress; a kernel that
numba's disk cache serves prints nothing. A tiny generated module stands in for a network's kernels: the
messages depend only on numba's compile events, not on what the kernel computes."""

import sys

import numba
import numpy as np
import pytest

from eventgrad.codegen import cache, feedback

SOURCE = """
from numba import njit

@njit(cache=True)
def helper(x):
    return 2.0 * x

@njit(cache=True)
def forward_fast(x):
    return helper(x).sum()
"""


def _fresh_load(source):
    """Import the cached module again as a new process would: new dispatchers, numba's disk cache kept."""
    key = cache.source_key(source)
    cache._LOADED.pop(key, None)
    sys.modules.pop(f"eventgrad_kernels_{key}", None)
    feedback._announced.discard(f"eventgrad_kernels_{key}")
    return cache.load_kernels(source)


def test_compiling_is_announced_with_progress_and_a_cached_kernel_is_silent(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVENTGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(feedback, "HEARTBEAT_S", 0.01)  # a progress line even for this short compile
    source = SOURCE + f"# {tmp_path}\n"  # a module no earlier run compiled
    kernels = _fresh_load(source)
    assert kernels.forward_fast(np.ones(3)) == 6.0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (f"eventgrad: compiling the kernels of this network's models and structure (once: they are "
                        f"cached in {tmp_path} for next time)"), lines
    assert lines[-1].startswith("eventgrad: compiled kernel 1/2 (forward_fast): 2 functions in "), lines
    assert any(line.startswith("eventgrad:   compiling kernel 1/2 (forward_fast): ") for line in lines[1:-1]), lines
    kernels.forward_fast(np.ones(3))
    kernels.forward_fast(np.ones(3, np.float32))  # a new kind of argument: compiled, but no new header line
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("eventgrad: compiled kernel 1/2 (forward_fast)") and "compiling the" not in lines[0]
    again = _fresh_load(source)  # numba's cache on disk serves both kinds: not a word
    assert again.forward_fast(np.ones(3)) == 6.0 and again.forward_fast(np.ones(3, np.float32)) == 6.0
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("EVENTGRAD_COMPILE_MESSAGES", "0")
    quiet = _fresh_load(source + "# quiet\n")
    assert quiet.forward_fast(np.ones(3)) == 6.0 and capsys.readouterr().err == ""


def _forget(layout):
    """Drop a network's module from this process, so that the next build_layout loads it again from the
    cache directory set now."""
    name = layout.kernels.__name__
    cache._LOADED.pop(name.removeprefix("eventgrad_kernels_"), None)
    sys.modules.pop(name, None)


@numba.njit
def _call_through(f, g, x, p):
    return f(g, x, p)


@pytest.mark.parametrize("family, count, thr_at, what", [("fast", 5, 0, "spike"), ("generic", 13, 4, "model")])
def test_a_new_networks_model_functions_compile_in_seconds_with_one_line_and_load_silently(
        tmp_path, monkeypatch, capsys, family, count, thr_at, what):
    """The shared engines take a network's model functions as C callbacks (the fast and step-parallel ones its
    spike functions, the generic one all of them): a network never seen compiles only those (one line says so),
    and the next process loads them from the cache without a word."""
    import eventgrad as eg
    from eventgrad.engine.layout import build_layout

    monkeypatch.setenv("EVENTGRAD_CACHE_DIR", str(tmp_path))
    net = eg.Network()
    x = net.add_input("x", 2)
    h = net.add_population("h", 3, eg.neurons.LIF(tau_mem=12.0))
    synapse = eg.synapses.Alpha(tau=3.0) if family == "generic" else eg.synapses.Exponential(tau=3.0)
    net.connect(x, h, synapse, weight=np.ones((2, 3)), name="xh")  # a network that runs on that engine
    _forget(build_layout(net, jit=True))  # an earlier test may have loaded its module, from another cache
    layout = build_layout(net, jit=True)
    callbacks = layout.model_callbacks(family, np.dtype(np.float64))
    assert len(callbacks) == count and all(cb.cache_hits == 0 for cb in callbacks)
    d, n_par = layout.GI[1, 2], layout.GI[1, 5]
    state, p = np.linspace(0.5, 1.5, d), np.linspace(1.0, 2.0, n_par)
    # the compiled threshold function, called as the engines call it, is the model's
    assert _call_through(callbacks[thr_at], 1, state, p) == layout.kernels.mf_thr(1, state, p) != 0.0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"eventgrad: compiled this network's {what} functions for the "
                                               f"{family} engine in "), err
    _forget(layout)  # as a new process would
    layout = build_layout(net, jit=True)
    again = layout.model_callbacks(family, np.dtype(np.float64))
    assert all(cb.cache_hits == 1 for cb in again)
    if family == "generic":  # float64 arrays whatever the run's precision: one set serves both
        assert layout.model_callbacks(family, np.dtype(np.float32)) is again
    assert capsys.readouterr().err == ""
