"""Compile generated kernel source once and keep it on disk.

The key is a hash of the source and of every version that changes the compiled code; the source is
written to ``<cache>/k_<hash>.py`` (atomically) and imported from there, so that numba's own on-disk
cache (``cache=True``) works on a real file and a user can read exactly what ran.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numba
import numpy as np

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


def load_kernels(source: str) -> ModuleType:
    """Import the module for ``source``, writing it into the cache first if it is not there."""
    key = source_key(source)
    if key in _LOADED:
        return _LOADED[key]
    path = cache_dir() / f"k_{key}.py"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(source)
        os.replace(tmp, path)
    name = f"eventgrad_kernels_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _LOADED[key] = module
    return module
