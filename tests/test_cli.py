"""The command line on a tiny configuration: it trains, writes its records, repeats itself from its
saved configuration, and refuses bad configurations before any training starts."""

import json

import numpy as np
import pytest
from test_encoders_datasets import write_shd

from eventgrad.cli import main
from eventgrad.config import DEFAULTS, ConfigError, resolve

TINY = """
seed = 3
[data]
train_size = 48
validation_size = 24
test_size = 24
[model]
hidden = [8]
[training]
epochs = 2
batch_size = 16
schedule = {kind = "cosine", warmup = 0.5}
[regularizer]
silent_push = 0.1
[output]
progress = false
"""


def test_train_writes_records_and_repeats_from_its_saved_configuration(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "test accuracy" in out
    run = tmp_path / "run"
    for name in ("config.json", "log.csv", "log.jsonl", "last.npz", "best.npz", "result.json"):
        assert (run / name).is_file(), name
    first = json.loads((run / "result.json").read_text())
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["hidden"] == [8] and saved["seed"] == 3
    assert main(["train", str(run / "config.json"), "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "result.json").read_text())
    assert again["test_accuracy"] == first["test_accuracy"] and again["test_loss"] == first["test_loss"]
    first_log = (run / "log.csv").read_text().splitlines()
    again_log = (tmp_path / "again" / "log.csv").read_text().splitlines()
    assert len(first_log) == 3, "a header and one row per epoch"
    assert [r.split(",")[:3] for r in first_log] == [r.split(",")[:3] for r in again_log]  # epoch, loss, accuracy
    assert main(["plot", str(run), "--sample", "2"]) == 0
    for name in ("learning_curves.png", "raster.png", "traces_h.png", "traces_o.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_resume_continues_an_interrupted_run_exactly(tmp_path, capsys):
    """Two epochs in one go, or one epoch and then --resume to two, give the same log and result."""
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    step = ["--set", 'training.schedule={"kind": "step", "every": 1, "gamma": 0.5}']  # not tied to the length
    assert main(["train", str(config), *step, "--out", str(tmp_path / "whole")]) == 0
    assert main(["train", str(config), *step, "--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    assert main(["train", "--resume", str(tmp_path / "part"), "--epochs", "2"]) == 0
    assert "epoch 2/2" in capsys.readouterr().out
    whole, part = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("whole", "part"))
    assert part["test_accuracy"] == whole["test_accuracy"] and part["test_loss"] == whole["test_loss"]
    rows = [(tmp_path / d / "log.csv").read_text().splitlines() for d in ("whole", "part")]
    assert [r.split(",")[:5] for r in rows[0]] == [r.split(",")[:5] for r in rows[1]]
    # log.jsonl keeps the epochs before the resume (it used to be emptied when the logger was created) ...
    jsonl = [[json.loads(line) for line in (tmp_path / d / "log.jsonl").read_text().splitlines()]
             for d in ("whole", "part")]
    assert [(r["epoch"], r["loss"]) for r in jsonl[0]] == [(r["epoch"], r["loss"]) for r in jsonl[1]]
    assert len(jsonl[1]) == 2
    kept = (tmp_path / "part" / "log.jsonl").read_text()
    assert main(["train", "--resume", str(tmp_path / "part")]) == 2
    assert "has done 2 of its 2 epochs" in capsys.readouterr().err
    assert (tmp_path / "part" / "log.jsonl").read_text() == kept  # ... and a failed resume leaves it alone
    assert main(["train", str(config), "--resume", str(tmp_path / "part")]) == 2
    assert "--resume takes the run folder's own configuration" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "holds no config.json" in capsys.readouterr().err


def test_ctrl_c_saves_the_finished_epochs_and_says_how_to_resume_which_keeps_the_schedule(tmp_path, capsys,
                                                                                        monkeypatch):
    """Ctrl-C in epoch 2 of 3: exit code 130, one line on stderr naming what is saved and the command that
    continues; the JSON log keeps epoch 1 on resume; --resume --epochs 4 keeps the original 3-epoch cosine
    (said on stdout), so epoch 4 trains at the cosine's floor and epochs 1-3 had the rates they had; a
    cosine down to 0 cannot be extended (refused)."""
    from eventgrad.experiment import ProgressBar

    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    run = tmp_path / "run"

    def interrupt(self, trainer, i, logs):
        if trainer.epoch == 2 and i == 1:
            raise KeyboardInterrupt

    floor = ["--set", 'training.schedule={"kind": "cosine", "floor": 0.1}']
    with monkeypatch.context() as m:
        m.setattr(ProgressBar, "on_batch_end", interrupt)
        assert main(["train", str(config), *floor, "--epochs", "3", "--out", str(run)]) == 130
    err = capsys.readouterr().err
    assert err == (f"eventgrad: interrupted in epoch 2/3 after 1/3 batches; epoch 1 is saved in {run} (last.npz); "
                   f"continue with: eventgrad train --resume {run}\n"), err
    assert len((run / "log.csv").read_text().splitlines()) == 2 and not (run / "result.json").exists()
    assert main(["train", "--resume", str(run), "--epochs", "4"]) == 0
    out = capsys.readouterr().out
    assert "schedule stays the original run's: cosine over 3 epochs; the rate stays at its floor (0.1 x lr) " \
           "after epoch 3" in out, out
    assert json.loads((run / "config.json").read_text())["training"]["schedule"]["epochs"] == 3
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[3]["lr"] == pytest.approx(0.02 * 0.1) and rows[2]["lr"] > rows[3]["lr"]
    assert main(["train", str(config), "--epochs", "1", "--out", str(tmp_path / "zero")]) == 0  # cosine to 0
    assert main(["train", "--resume", str(tmp_path / "zero"), "--epochs", "2"]) == 2
    assert "reaches a learning rate of 0 at epoch 1.5, so epochs past it would not train" in capsys.readouterr().err
    with monkeypatch.context() as m:
        m.setattr(ProgressBar, "on_batch_end", interrupt)
        assert main(["train", str(config), "--epochs", "3"]) == 130
    assert "nothing saved (no --out)" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("[training]\nepochz = 3\n", "unknown configuration key 'training.epochz'"),
    ("[training]\nlr = 'fast'\n", "'training.lr' must be float"),
    ("[data]\nname = 'cifar'\n", "unknown data.name 'cifar'"),
    ("[model]\nneuron = 'Hodgkin'\n", "model.neuron 'Hodgkin' is not a built-in"),
    ("[model.neuron]\nvars = {v = ['(-v + Isyn) / tau + os.system(1)', '0.0']}\nthreshold = 'v - 1'\n"
     "output_var_name = 'v'\nparam_vals = {tau = 10.0}\n", "os"),
    ("[simulation]\nreadout = 'median'\n", "unknown simulation.readout 'median'"),
    ("[simulation]\nexcursions = 'sometimes'\n", "unknown simulation.excursions 'sometimes'"),
    ("[simulation]\nmax_events = 0\n", "simulation.max_events must be a positive integer"),
])
def test_bad_configurations_are_refused_with_the_reason(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["train", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "epoch" not in capsys.readouterr().out


def test_a_simulation_error_during_training_is_reported_without_a_traceback(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY + "[simulation]\nmax_events = 4\n")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eventgrad: SimulationError:") and "max_events" in err, err


def test_config_command_and_overrides(tmp_path, capsys):
    assert main(["config"]) == 0
    assert json.loads(capsys.readouterr().out) == DEFAULTS
    with pytest.raises(ConfigError, match="unknown configuration key 'model.layers'"):
        resolve({"model": {"layers": [3]}})
    assert main(["train", "--set", "data.train_size=oops", "--no-progress"]) == 2
    assert "'data.train_size' must be int" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_shd_files_train_with_a_validation_split(tmp_path, capsys):
    """data.name = 'shd' reads the two files, holds out validation_split of the training file (the
    smaller part) and sizes the network from the data: 700 inputs, 20 outputs."""
    rng = np.random.default_rng(0)
    for name, n in (("train.h5", 40), ("test.h5", 12)):
        times = [np.sort(rng.uniform(0, 0.09, 60)) for _ in range(n)]
        write_shd(tmp_path / name, times, [rng.integers(0, 700, 60) for _ in range(n)], rng.integers(0, 20, n))
    config = tmp_path / "shd.toml"
    config.write_text(f"""
[data]
name = "shd"
path = "{tmp_path / 'train.h5'}"
test_path = "{tmp_path / 'test.h5'}"
validation_split = 0.25
[model]
hidden = [8]
[simulation]
duration = 100.0
[training]
epochs = 1
[output]
progress = false
""")
    assert main(["train", str(config)]) == 0
    out = capsys.readouterr().out
    assert "30 training / 10 validation / 12 test samples; network 700-8-20" in out, out
