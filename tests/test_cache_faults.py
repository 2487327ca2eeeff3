"""A damaged, planted or read-only kernel cache: what eventgrad loads is what it wrote, and a broken entry is
rebuilt with a warning that names it instead of breaking every later run.

The kernels here are a two-line numba function (compiled in well under a second), loaded through the same
``load_kernels`` the simulator uses, in a private cache directory.
"""

import builtins
import sys
import tempfile

import numpy as np
import pytest

from eventgrad.codegen import cache
from eventgrad.codegen.cache import CacheError, CacheWarning, load_kernels

SOURCE = """import numba


@numba.njit(cache=True)
def forward(x):
    return x + 1.0
"""


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private cache, and a clean slate in this process (modules loaded earlier are forgotten)."""
    monkeypatch.setenv("EVENTGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "_LOADED", {})
    yield tmp_path
    for name in [n for n in sys.modules if n.startswith("eventgrad_kernels_")]:
        if getattr(sys.modules[name], "__file__", "").startswith(str(tmp_path)):
            del sys.modules[name]


def fresh_load(source=SOURCE):
    """load_kernels as a new process would run it: nothing of this process's earlier loads reused."""
    cache._LOADED.clear()
    return load_kernels(source)


def entry_path(cache_dir, source=SOURCE):
    return cache_dir / f"k_{cache.source_key(source)}.py"


def test_a_truncated_source_file_is_rewritten_with_a_warning_naming_it(cache_dir):
    # Before: the truncated file was imported (a SyntaxError that never mentions the cache) in every later run.
    assert fresh_load().forward(np.float64(1.0)) == 2.0
    path = entry_path(cache_dir)
    path.write_text(SOURCE[: len(SOURCE) // 2])
    with pytest.warns(CacheWarning, match=rf"the kernel cache entry {path} does not hold the source it should"):
        kernels = fresh_load()
    assert kernels.forward(np.float64(2.0)) == 3.0
    assert path.read_text() == SOURCE


def test_a_file_planted_under_a_kernels_name_is_never_executed(cache_dir):
    # Before: whatever sat at k_<hash>.py was imported and run.
    path = entry_path(cache_dir)
    marker = cache_dir / "planted_code_ran"
    path.write_text(f"open({str(marker)!r}, 'w').close()\n" + SOURCE)
    with pytest.warns(CacheWarning, match=r"not written by eventgrad"):
        kernels = fresh_load()
    assert not marker.exists(), "the planted file was executed"
    assert kernels.forward(np.float64(0.5)) == 1.5
    assert path.read_text() == SOURCE


@pytest.mark.parametrize("damage", ["empty index", "truncated data"])
def test_numba_files_that_fail_to_load_are_deleted_and_compiled_again(cache_dir, damage):
    # Before: an empty or half-written numba index or data file made every later run fail with EOFError or an
    # UnpicklingError, until someone found and deleted the file by hand.
    fresh_load().forward(np.float64(1.0))  # compiles and saves numba's files
    stem = entry_path(cache_dir).stem
    index = list((cache_dir / "__pycache__").glob(f"{stem}.forward-*.nbi"))
    data = list((cache_dir / "__pycache__").glob(f"{stem}.forward-*.nbc"))
    assert index and data, "numba saved nothing: the test proves nothing"
    if damage == "empty index":
        index[0].write_bytes(b"")
    else:
        data[0].write_bytes(data[0].read_bytes()[:20])
    with pytest.warns(CacheWarning, match=rf"numba's cached code for the kernel .*{stem}\.py failed to load"):
        assert fresh_load().forward(np.float64(4.0)) == 5.0


def read_only(monkeypatch):
    """Make the cache behave as a read-only directory: no file can be created or opened for writing there."""
    real_open = builtins.open

    def no_write_open(path, mode="r", *args, **kwargs):
        if any(m in mode for m in "wax+"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, mode, *args, **kwargs)

    def no_mkstemp(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache, "open", no_write_open, raising=False)
    monkeypatch.setattr(tempfile, "mkstemp", no_mkstemp)


def test_a_read_only_cache_that_holds_the_kernel_works(cache_dir, monkeypatch):
    # Before: the lock file was opened for appending, a PermissionError in a cache that held everything.
    fresh_load().forward(np.float64(1.0))
    read_only(monkeypatch)
    assert fresh_load().forward(np.float64(6.0)) == 7.0


def test_a_read_only_cache_that_lacks_a_kernel_says_so(cache_dir, monkeypatch):
    read_only(monkeypatch)
    with pytest.raises(CacheError, match=rf"the kernel cache {cache_dir} is read-only or full .* and lacks the "
                                         r"kernel k_\w+\.py; set EVENTGRAD_CACHE_DIR to a writable directory"):
        fresh_load()
