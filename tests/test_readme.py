"""The README's tour runs as written (its code blocks, in order), so that the documentation stays true."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2, "the README's tour lost its code"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # the README is ours, not user input
    assert namespace["report"].worst < 1e-5, str(namespace["report"])
    assert {"h.tau_mem", "h.v_thresh", "xh.weight"} <= set(namespace["grads"])
    history = namespace["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3] and history[-1]["loss"] < history[0]["loss"]
    delays = namespace["sim"].params["xh.delay"]  # the delay example: trained, on the step kernels, in bounds
    assert namespace["sim"].kernels_used == "step" and len(namespace["delay_history"]) == 2
    assert delays.min() >= 0.0 and delays.max() <= 10.0 and np.ptp(delays - namespace["xh_initial"]) > 0
