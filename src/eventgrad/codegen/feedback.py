"""What a user sees while numba compiles a network's kernels: one line when compiling starts (what, and
where the result is cached for next time), a progress line every ``HEARTBEAT_S`` seconds of a long
compile, one line when each kernel is done; nothing at all when numba's disk cache serves them.

numba announces every real compile (never a load from its cache) with the ``numba:compile`` event, once
per function: the kernel's entry point and, nested inside it, each helper it calls that was not compiled
yet. A listener counts those of the kernel's own module, so the lines appear exactly when compiling
happens, whichever process or test compiled before. Lines go to stderr through ``tqdm.write``, which
keeps a progress bar that is on screen intact. ``EVENTGRAD_COMPILE_MESSAGES=0`` silences them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path

from numba.core import event

HEARTBEAT_S = 10.0  # seconds between progress lines of one kernel's compile
# the kernels a simulator calls come in pairs, one pair per family; the forward kernel is compiled at a
# family's first run, the backward one at its first gradient
FAMILIES = {"forward": ("forward", "backward"), "forward_fast": ("forward_fast", "backward_fast"),
            "forward_step": ("forward_step", "backward_step")}
FAMILIES.update({pair[1]: pair for pair in list(FAMILIES.values())})
_announced: set[str] = set()  # kernel modules whose first compile in this process has been announced


def say(text: str) -> None:
    """One line on stderr (unless ``EVENTGRAD_COMPILE_MESSAGES=0``), through tqdm so that a bar stays intact."""
    if os.environ.get("EVENTGRAD_COMPILE_MESSAGES", "1") == "0":
        return
    _say(text)


def _say(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"eventgrad: {text}", file=sys.stderr)


class _KernelCompile(event.Listener):
    """Counts the functions numba compiles for one entry point of one kernel module, and reports."""

    def __init__(self, kernel, cache: Path, what: str):
        self.what = what
        self.module = kernel.py_func.__module__
        self.name = kernel.py_func.__name__
        self.cache = cache
        self.started: float | None = None
        self.functions = 0
        self.done = threading.Event()
        self.lock = threading.Lock()  # no progress line after the closing one

    def _ours(self, ev) -> bool:
        func = getattr(ev.data.get("dispatcher"), "py_func", None)
        return getattr(func, "__module__", None) == self.module

    def _which(self) -> str:
        pair = FAMILIES.get(self.name, (self.name,))
        return f"kernel {pair.index(self.name) + 1}/{len(pair)} ({self.name})"

    def on_start(self, ev):
        if not self._ours(ev) or self.started is not None:
            return
        self.started = time.perf_counter()
        if self.module not in _announced:
            _announced.add(self.module)
            _say(f"compiling {self.what} (once: they are cached in {self.cache} for next time)")
        threading.Thread(target=self._heartbeat, daemon=True).start()

    def on_end(self, ev):
        if not self._ours(ev):
            return
        self.functions += 1
        if ev.data["dispatcher"].py_func.__name__ == self.name:  # the entry point itself: the kernel is done
            with self.lock:
                self.done.set()
                _say(f"compiled {self._which()}: {self.functions} functions in "
                     f"{time.perf_counter() - self.started:.0f} s")

    def _heartbeat(self):
        while not self.done.wait(HEARTBEAT_S):
            with self.lock:
                if not self.done.is_set():
                    _say(f"  compiling {self._which()}: {self.functions} functions so far, "
                         f"{time.perf_counter() - self.started:.0f} s")


@contextlib.contextmanager
def compile_feedback(kernel, cache: Path, what: str = "the kernels of this network's models and structure"):
    """Report, while the block runs, any compiling numba does for ``kernel`` (a numba dispatcher), ``what``
    naming the module it belongs to."""
    if os.environ.get("EVENTGRAD_COMPILE_MESSAGES", "1") == "0" or not hasattr(kernel, "py_func"):
        yield
        return
    listener = _KernelCompile(kernel, cache, what)
    try:
        with event.install_listener("numba:compile", listener):
            yield
    finally:
        listener.done.set()  # stops the progress lines, also when compiling failed
