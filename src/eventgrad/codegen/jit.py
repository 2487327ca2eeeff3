"""The decorators generated kernels use: numba's njit (cached on disk) or nothing (plain Python).

Plain Python runs the same source and gives readable errors; a test compares the two.
"""

from __future__ import annotations

import numba


def PLAIN(func):
    """Leave the function as plain Python."""
    return func


JIT = numba.njit(cache=True, nogil=True, error_model="numpy")
PARALLEL = numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)
