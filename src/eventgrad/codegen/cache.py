"""Compile generated kernel source once and keep it on disk.

The key is a hash of the source and of every version that changes the compiled code; the source is
written to ``<cache>/k_<hash>.py`` (atomically, never replacing one that exists) and imported from
there, so that numba's own on-disk cache (``cache=True``) works on a real file and a user can read
exactly what ran.

Several processes may share the cache (a parameter sweep, the test suite's workers). numba saves a
compiled function as an index file and a data file, not atomically together, so two processes compiling
the same function at once can leave an index that names the other's machine code (numba issue #10128:
crashes). The entry points therefore compile under a file lock, ``<cache>/k_<hash>.lock``: a second
process waits, then loads what the first compiled instead of compiling it again.

What the cache holds is checked, never trusted: a ``k_<hash>.py`` is compared with the source it must hold
and compiled from the text that was checked (a truncated or planted file is rewritten, with a warning
that names it); numba files that fail to load are deleted and the kernel compiled again, with a warning;
a read-only cache that holds every kernel works (numba, which never reads a cache it cannot write, then
compiles into its user-wide cache), and one that lacks a kernel is an error that says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import platform
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from types import ModuleType

import numba
import numpy as np

from eventgrad.codegen.feedback import compile_feedback

_LOADED: dict[str, ModuleType] = {}


def cache_dir() -> Path:
    """``$EVENTGRAD_CACHE_DIR``, else ``~/.cache/eventgrad``."""
    root = os.environ.get("EVENTGRAD_CACHE_DIR")
    path = Path(root) if root else Path.home() / ".cache" / "eventgrad"
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_key(source: str) -> str:
    from eventgrad import __version__

    versions = f"{__version__}|{numba.__version__}|{np.__version__}|{platform.python_version()}"
    return hashlib.sha256((versions + "\n" + source).encode()).hexdigest()[:32]


def load_kernels(source: str, what: str = "the kernels of this network's models and structure") -> ModuleType:
    """Import the module for ``source``, writing it into the cache first if it is not there; ``what`` names it
    in the lines printed while it compiles."""
    key = source_key(source)
    if key in _LOADED:
        return _LOADED[key]
    path = cache_dir() / f"k_{key}.py"
    if not path.exists():
        write_once(path, source)
    check_entry(path, source)
    name = f"eventgrad_kernels_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # the text checked above, not the file read again: what runs is what this process wrote or verified
    exec(compile(source, str(path), "exec"), module.__dict__)
    for entry in ENTRY_POINTS:
        kernel = getattr(module, entry, None)
        if hasattr(kernel, "signatures"):  # compiled by numba (not the plain-Python kernels)
            setattr(module, entry, LockedFirstCall(kernel, path.with_suffix(".lock"), what))
    _LOADED[key] = module
    return module


def check_entry(path: Path, source: str) -> None:
    """Make sure ``path`` holds exactly ``source``: a file that differs (truncated by a crash, edited, or planted
    under the name) is replaced, with a warning that names it, and numba's files compiled from it deleted."""
    try:
        held = path.read_bytes()
    except OSError as exc:
        raise CacheError(f"cannot read the kernel cache entry {path}: {exc}") from exc
    if held == source.encode():
        return
    warnings.warn(f"the kernel cache entry {path} does not hold the source it should (truncated, changed or not "
                  "written by eventgrad); rebuilding it", CacheWarning, stacklevel=3)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(source)
        os.replace(tmp, path)
    except OSError as exc:
        raise CacheError(f"the kernel cache entry {path} is corrupt and cannot be rewritten ({exc}); delete it or "
                         "set EVENTGRAD_CACHE_DIR to a writable directory") from exc
    purge_compiled(path)


def purge_compiled(path: Path) -> list[Path]:
    """Delete numba's cached machine code for the kernel module ``path`` (its index and data files)."""
    removed = []
    for f in (path.parent / "__pycache__").glob(f"{path.stem}.*.nb[ic]"):
        with contextlib.suppress(OSError):
            f.unlink()
            removed.append(f)
    return removed


class CacheWarning(UserWarning):
    """A kernel cache entry was corrupt and is being rebuilt."""


class CacheError(OSError):
    """The kernel cache cannot provide a kernel (read-only and incomplete, unreadable)."""


def write_once(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``, whole or not at all, unless it exists already: a file another
    process created first is kept as it is. numba stamps its cache index with the source file's
    modification time, so replacing the file (even with the same text) would make every function that
    process compiled from it look stale, and be compiled again."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError as exc:
        raise CacheError(f"the kernel cache {path.parent} is read-only or full ({exc}) and lacks the kernel "
                         f"{path.name}; set EVENTGRAD_CACHE_DIR to a writable directory") from exc
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        try:
            os.link(tmp, path)  # atomic, and never replaces
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: the race is back, but only there
            if not path.exists():
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# the kernels the simulator calls from Python; every other compiled function is compiled inside them
ENTRY_POINTS = ("forward_fast", "forward", "backward_fast", "backward", "forward_step", "backward_step")


def _argument_kind(a):
    """What numba's type of an argument depends on, cheaply: an array's dtype, dimensions, layout, and whether
    it is writable and aligned; a tuple's elements (the model callbacks: each one's signature); a scalar's
    Python type."""
    if type(a) is np.ndarray:
        f = a.flags
        return (a.dtype.char, a.ndim, f.c_contiguous, f.f_contiguous, f.writeable, f.aligned)
    if type(a) is tuple:
        return tuple([getattr(x, "_sig", None) or type(x) for x in a])
    return type(a)


class LockedFirstCall:
    """A compiled entry point whose first call with each kind of arguments in this process holds the
    module's file lock, and whose later calls skip numba's dispatcher.

    The kind (``_argument_kind``) is what numba's type of each argument depends on. numba's dispatcher types
    every argument on every call, and a tuple of C callbacks (the engines' model functions) has no fast
    path there: typing it took about 0.75 ms per call, a tenth of a sample's simulation at 11 Hz. After the
    first call of a kind, its compiled version (the one numba would pick: found by its exact argument
    types) is called directly; a kind whose types name no compiled version keeps going through numba."""

    def __init__(self, kernel, lock_path: Path, what: str = "the kernels of this network's models and structure"):
        self.kernel = kernel
        self.what = what
        self.lock_path = lock_path
        self.seen: dict[tuple, object] = {}  # kind -> the compiled version to call (the dispatcher if none found)
        self.mutex = threading.Lock()

    def __call__(self, *args):
        kinds = tuple([_argument_kind(a) for a in args])
        compiled = self.seen.get(kinds)
        if compiled is not None:
            return compiled(*args)
        with self.mutex, file_lock(self.lock_path), compile_feedback(self.kernel, self.lock_path.parent, self.what):
            try:
                out = self.kernel(*args)
            except Exception as exc:
                # numba raises what unpickling gave (EOFError, UnpicklingError, ...) for a truncated index or
                # data file: delete the module's numba files and compile once more; a second failure is real,
                # and so is one of numba's own errors (a model that does not compile)
                if isinstance(exc, numba.core.errors.NumbaError):
                    raise
                removed = purge_compiled(self.lock_path.with_suffix(".py"))
                if not removed:
                    raise
                warnings.warn(f"numba's cached code for the kernel {self.lock_path.with_suffix('.py')} failed to "
                              f"load ({type(exc).__name__}: {exc}); deleted {len(removed)} files and compiling "
                              "again", CacheWarning, stacklevel=2)
                out = self.kernel(*args)
        types_ = tuple([self.kernel.typeof_pyval(a) for a in args])
        overload = self.kernel.overloads.get(types_)
        self.seen[kinds] = overload.entry_point if overload is not None else self.kernel
        return out


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive advisory lock on ``path`` (created if missing), held for the ``with`` block. Where
    ``fcntl`` does not exist (Windows) there is no lock, and numba's race stays possible."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        fh = open(path, "a")
    except OSError:  # a read-only cache: no process can write numba's files there, so there is no race to guard
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

