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
# dependent chain of additions); the rounding differs from the sequential sum only in the last bits.
# Without numba's runtime, like FLAT
REDUCE = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"}, _nrt=False)
# functions that only read and write arrays they are given, never allocate: compiled without numba's
# runtime, so binding, slicing or passing on an array costs no atomic reference counting (a function
# that allocates fails to compile this way; the caller's arrays outlive the call). ``_nrt`` is numba's own
# compile option, undocumented (an underscore name): should a numba release drop it, FLAT and REDUCE go
# back to plain njit, which gives the same numbers, only slower
FLAT = numba.njit(cache=True, nogil=True, error_model="numpy", _nrt=False)
PARALLEL = numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)
