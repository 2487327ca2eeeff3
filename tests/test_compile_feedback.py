"""Compiling says so (what, and where it is cached for next time) and reports progress; a kernel that
numba's disk cache serves prints nothing. A tiny generated module stands in for a network's kernels: the
messages depend only on numba's compile events, not on what the kernel computes."""

import sys

import numpy as np

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
