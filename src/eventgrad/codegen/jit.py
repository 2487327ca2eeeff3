"""The decorators generated kernels use: numba's njit (cached on disk) or nothing (plain Python).

Plain Python runs the same source and gives readable errors; a test compares the two.
"""

from __future__ import annotations

import numba


def PLAIN(func):
    """Leave the function as plain Python."""
    return func


JIT = numba.njit(cache=True, nogil=True, error_model="numpy")
# small helpers (model functions, dispatchers, propagators): inlined into their callers at numba's IR
# level. A call binds its array arguments with atomic reference counting, which in a loop costs as
# much as the arithmetic; inlining removes some of it (a small gain, not measured on its own), but the
# loops that matter are written without calls (see fast_template.py)
LEAF = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
# dot products over weight rows: reassociating the sum lets it vectorise (8 float32 lanes instead of one
# dependent chain of additions); the rounding differs from the sequential sum only in the last bits
REDUCE = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
PARALLEL = numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)
