"""A network's spike functions as C callbacks, the argument through which the shared engines run its models.

The fast and step-parallel engines (``engine_source``) are compiled once per machine and take the network's
``mf_thr``, ``mf_thrdot``, ``mf_reset``, ``mf_spikeadj`` and ``mf_fixedadj`` as a tuple of numba C callbacks
(first-class functions: a call through a pointer, once per spike, never per neuron or per step). Their
argument types are fixed per engine family and precision, so one compiled engine serves every network;
each network compiles only its five small callbacks (a second or two), cached on disk like the kernels.
"""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import numba
import numpy as np
from numba import types

from eventgrad.codegen.cache import file_lock
from eventgrad.codegen.feedback import say
from eventgrad.codegen.generate import SPIKE_ROLES


def _signatures(family: str, dtype: np.dtype) -> dict:
    """Each spike function's argument types as the engines of ``family`` call it (x: state, p: parameters,
    lam: adjoint, pg: parameter gradients; arrays of any layout)."""
    D = types.Array(numba.from_dtype(np.dtype(dtype)), 1, "A")
    F = types.Array(types.float64, 1, "A")
    i, f = types.int64, types.float64
    lam = D if family == "fast" else F  # the fast engine keeps the adjoint in the network's precision
    return {
        "thr": f(i, F, D),
        "thrdot": f(i, D, D),
        "reset": types.void(i, F, D, F),
        "spikeadj": types.void(i, D, D, lam, f, f, f, lam, F),
        "fixedadj": types.void(i, D, D, lam, lam, F),
    }


_mutex = threading.Lock()
# numba calls first-class functions experimental; the engines depend on them (numba's tests cover C callbacks as
# arguments since 0.49), and the warning would reach users at every new network, so it is silenced by its text
warnings.filterwarnings("ignore", message=".*First-class function type feature is experimental",
                        category=numba.NumbaExperimentalFeatureWarning)


def spike_callbacks(module, lock_path: Path, family: str, dtype: np.dtype) -> tuple:
    """The tuple MF of ``module``'s spike functions for the engines of ``family`` ("fast" or "step") in
    precision ``dtype``: numba C callbacks (compiled once, then loaded from the disk cache), or the plain
    Python functions when the module is not compiled."""
    funcs = tuple(getattr(module, f"mf_{role}") for role in SPIKE_ROLES)
    if not hasattr(module.thr, "py_func"):  # the plain-Python kernels
        return funcs
    key = (family, np.dtype(dtype).str)
    held = module.__dict__.setdefault("_spike_callbacks", {})
    if key in held:
        return held[key]
    sigs = _signatures(family, dtype)
    with _mutex, file_lock(lock_path):
        if key in held:
            return held[key]
        t0 = time.perf_counter()
        # numpy's error model, as the engines': a division by zero gives inf or nan, never an exception
        made = tuple(numba.cfunc(sigs[role], cache=True, nopython=True, error_model="numpy")(f)
                     for role, f in zip(SPIKE_ROLES, funcs))
        if not all(cb.cache_hits for cb in made):
            say(f"compiled this network's spike functions for the {family} engine in "
                f"{time.perf_counter() - t0:.1f} s (they are cached in {lock_path.parent} for next time)")
        held[key] = made
    return made
