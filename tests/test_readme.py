"""The README's code blocks run as written, each on its own (a reader copies one block, not the page), and
say what the README claims: exact gradients, a training example that learns, delays that train."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_each_on_its_own():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    spaces = [{"__name__": "readme"} for _ in blocks]  # a fresh namespace per block: none borrows names
    for block, namespace in zip(blocks, spaces):
        exec(compile(block, str(README), "exec"), namespace)  # the README is ours, not user input

    def block_defining(name):
        (namespace,) = [ns for ns in spaces if name in ns]
        return namespace

    tour, training, delays = block_defining("report"), block_defining("trainer"), block_defining("delay_history")
    assert tour["report"].worst < 1e-5, str(tour["report"])
    assert {"h.tau_mem", "h.v_thresh", "xh.weight"} <= set(tour["grads"])
    history = training["history"]
    assert [h["epoch"] for h in history] == list(range(1, 9)) and history[-1]["loss"] < history[0]["loss"]
    assert max(h["val_accuracy"] for h in history) > 0.6, "the training example does not beat chance (1/3) clearly"
    sim = delays["sim"]  # the delay example: trained, on the step kernels, in bounds
    assert sim.kernels_used == "step" and len(delays["delay_history"]) == 2
    trained = sim.params["xh.delay"]
    assert trained.min() >= 0.0 and trained.max() <= 10.0 and np.ptp(trained - delays["xh_initial"]) > 0
    losses = block_defining("losses")["losses"]  # the torch front end and the spiking layer learn together
    assert losses[-1] < 0.75 * np.log(3) < losses[0], losses
