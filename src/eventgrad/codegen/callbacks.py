"""A network's model functions as C callbacks, the argument through which the shared engines run its models.

The engines (``engine_source``) are compiled once per machine and take a network's ``mf_*`` functions as a
tuple of numba C callbacks (first-class functions: a call through a pointer). The fast and step-parallel
engines take the five they run at a spike (``mf_thr``, ``mf_thrdot``, ``mf_reset``, ``mf_spikeadj``,
``mf_fixedadj``: once per spike, never per neuron or per step); the generic engine takes all thirteen
(``MODEL_ROLES``), with float64 arrays whatever the run's precision. Their argument types are fixed per
engine family and precision, so one compiled engine serves every network; each network compiles only its
small callbacks (seconds), cached on disk like the kernels.
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
from eventgrad.codegen.generate import MODEL_ROLES, SPIKE_ROLES


def _signatures(family: str, dtype: np.dtype) -> dict:
    """Each model function's argument types as the engines of ``family`` call it (x: state, p: parameters,
    lam: adjoint, pg: parameter gradients, w: weight; arrays of any layout)."""
    D = types.Array(numba.from_dtype(np.dtype(dtype)), 1, "A")
    F = types.Array(types.float64, 1, "A")
    i, f = types.int64, types.float64
    I = types.Array(types.int64, 1, "A")  # noqa: E741
    if family == "generic":  # every array float64 (the generic engine's state, adjoint and parameters)
        return {
            "rhs": types.void(i, F, F, F), "lin": types.void(i, F, types.Array(types.float64, 2, "A")),
            "adjrhs": types.void(i, F, F, F, F), "pint": types.void(i, F, F, F, F),
            "thr": f(i, F, F), "thrdot": f(i, F, F), "reset": types.void(i, F, F, F),
            "spikeadj": types.void(i, F, F, F, f, f, f, F, F), "fixedadj": types.void(i, F, F, F, F, F),
            "scanrow": i(i, F, F, i, I), "jump": types.void(i, F, f, F, F),
            "jumprow": i(i, F, F, F, i, i, types.boolean, F, I),
            "adjrow": types.void(i, F, F, F, F, f, i, i, F, F, F, F),
        }
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


def model_callbacks(module, lock_path: Path, family: str, dtype: np.dtype) -> tuple:
    """The tuple of ``module``'s model functions for the engines of ``family`` in precision ``dtype``: MG, all
    of them, for "generic" (one set for every precision), MF, the spike functions, for "fast" and "step".
    numba C callbacks (compiled once, then loaded from the disk cache), or the plain Python functions when
    the module is not compiled."""
    roles = MODEL_ROLES if family == "generic" else SPIKE_ROLES
    funcs = tuple(getattr(module, f"mf_{role}") for role in roles)
    if not hasattr(module.thr, "py_func"):  # the plain-Python kernels
        return funcs
    key = (family, "f8" if family == "generic" else np.dtype(dtype).str)
    held = module.__dict__.setdefault("_model_callbacks", {})
    if key in held:
        return held[key]
    sigs = _signatures(family, dtype)
    with _mutex, file_lock(lock_path):
        if key in held:
            return held[key]
        t0 = time.perf_counter()
        # numpy's error model, as the engines' (a division by zero gives inf or nan, never an exception), and
        # no reference counting: they never allocate, so slicing an array inside costs nothing (``_nrt``, numba's
        # undocumented option that jit.py's FLAT kernels use too)
        made = tuple(numba.cfunc(sigs[role], cache=True, nopython=True, error_model="numpy", _nrt=False)(f)
                     for role, f in zip(roles, funcs))
        if not all(cb.cache_hits for cb in made):
            what = "model" if family == "generic" else "spike"
            say(f"compiled this network's {what} functions for the {family} engine in "
                f"{time.perf_counter() - t0:.1f} s (they are cached in {lock_path.parent} for next time)")
        held[key] = made
    return made
