"""Training on Ray workers gives the numbers of one process; a lost worker applies nothing; sweeps run every
point once, in parallel, and a second invocation skips the finished ones. One local cluster (2 CPUs) for
the module: starting Ray takes seconds."""

from __future__ import annotations

import builtins
import csv
import json
import os
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import eventgrad as eg  # noqa: E402
from eventgrad.data import SpikeDataset  # noqa: E402
from eventgrad.optim import Adam  # noqa: E402
from eventgrad.train import SpikeCountRegularizer, Trainer  # noqa: E402
from eventgrad.train.distributed import WorkerError, shares  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _network(seed=0):
    rng = np.random.default_rng(seed)
    net = eg.Network()
    x = net.add_input("x", 5)
    h = net.add_population("h", 8, eg.neurons.LIF(tau_mem=10.0, trainable=("tau_mem",)))
    o = net.add_population("o", 3, eg.neurons.LI(tau_mem=15.0))
    net.connect(x, h, eg.synapses.Exponential(tau=4.0), weight=rng.uniform(0.3, 1.2, (5, 8)), name="xh")
    net.connect(h, o, eg.synapses.Exponential(tau=4.0), weight=rng.normal(0, 1.0, (8, 3)), name="ho")
    return net


def _data(n=11, seed=1):
    rng = np.random.default_rng(seed)
    times = [np.sort(rng.uniform(0, 25, 15)) for _ in range(n)]
    units = [rng.integers(0, 5, 15) for _ in range(n)]
    return SpikeDataset(times, units, rng.integers(0, 3, n), n_units=5, duration=30.0, n_classes=3)


def _trainer(workers, callbacks=(), **kw):
    sim = eg.Simulator(_network(), dt=1.0, duration=30.0, dtype="float64", readout=eg.readouts.MeanVar("o"),
                       loss=eg.losses.SoftmaxCrossEntropy(), threads=1)
    # the regulariser's terms couple the samples of a batch (a penalty per sample, silent neurons of the whole
    # batch): the workers must reduce them exactly too
    reg = SpikeCountRegularizer(("h",), nu_upper=2.0, lambda_upper=0.05, silent_push=0.1)
    return Trainer(sim, Adam(sim.params, lr=0.05, keys=sim.trainable), regularizer=reg, callbacks=callbacks,
                   workers=workers, **kw)


def test_shares_cover_the_batch_in_order():
    assert shares(5, 2) == [range(0, 2), range(2, 5)]
    assert shares(1, 3) == [range(0, 1)]  # a worker without samples is left out
    assert [len(r) for r in shares(32, 3)] == [10, 11, 11]


def test_two_workers_train_as_one_process(cluster):
    """Two epochs, batches of 4 (the last one 3, split 1 + 2): parameters, losses and spike statistics equal."""
    data = _data()
    local = _trainer(1)
    history = local.fit(data, epochs=2, batch_size=4, seed=3)
    with _trainer(2) as parallel:
        parallel_history = parallel.fit(data, epochs=2, batch_size=4, seed=3)
        assert parallel._pool.threads == 1  # two CPUs shared out between two workers
        np.testing.assert_allclose(parallel.predict(data), local.predict(data), rtol=1e-12, atol=1e-12)
    assert parallel._pool is None  # closed by the with block
    for key, value in local.sim.params.items():
        np.testing.assert_allclose(parallel.sim.params[key], value, rtol=1e-10, atol=1e-12, err_msg=key)
    assert not np.allclose(local.sim.params["xh.weight"], _network().connections[0].weight)  # it trained
    for a, b in zip(history, parallel_history):
        assert a["silent"] == b["silent"]
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-12)
        assert a["accuracy"] == b["accuracy"]


def test_a_worker_lost_mid_epoch_applies_no_partial_gradient(cluster):
    """Worker 1 exits in the forward pass of the second batch: the step raises, naming it, and the
    parameters are those after the first batch."""
    seen = {}

    class KillAfterFirstBatch:
        def on_batch_end(self, trainer, i, logs):
            if i == 0:
                seen["params"] = {k: v.copy() for k, v in trainer.sim.params.items()}
                trainer._pool.kill_on_next_forward(1)

    trainer = _trainer(2, callbacks=[KillAfterFirstBatch()])
    try:
        with pytest.raises(WorkerError, match=r"Ray worker 1 of 2 died during the forward pass.*no gradient"):
            trainer.fit(_data(), epochs=1, batch_size=4, seed=3)
        for key, value in seen["params"].items():
            np.testing.assert_array_equal(trainer.sim.params[key], value, err_msg=key)
        with pytest.raises(WorkerError, match="unusable since worker 1 died"):
            trainer.predict(_data())
        trainer.start_workers()  # a fresh set: the run can go on (after resume, or from here)
        assert not trainer._pool.broken and trainer.predict(_data()).shape == (11, 3)
    finally:
        trainer.close()


def test_workers_without_ray_say_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ImportError, match=r"pip install 'eventgrad\[ray\]'"):
        _trainer(2)
    _trainer(1)  # one process needs no Ray


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_counts_are_refused(workers):
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        _trainer(workers)


def test_the_command_line_refuses_bad_worker_counts_before_anything_runs(capsys):
    from eventgrad.cli import main

    assert main(["train", "--workers", "0", "--no-progress"]) == 2
    assert "training.workers must be a positive integer (1: one process), got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not an integer
        main(["train", "--workers", "2.5"])


def test_more_workers_than_cpus_is_refused(cluster):
    with pytest.raises(ValueError, match="has 2 CPUs; 3 workers need one each"):
        _trainer(3).start_workers()


SOURCE = """import numba
import time

TOKEN = {token!r}


@numba.njit(cache=True)
def forward(x):
    return x + 1.0
"""


@ray.remote(num_cpus=1)
def _load_at_once(cache_dir: str, source: str, barrier: str, me: int):
    """Both tasks wait at a file barrier, then load (and compile) the same new kernel module."""
    os.environ["EVENTGRAD_CACHE_DIR"] = cache_dir
    from eventgrad.codegen.cache import load_kernels

    open(f"{barrier}.{me}", "w").close()
    deadline = time.time() + 60
    while not all(os.path.exists(f"{barrier}.{k}") for k in (0, 1)) and time.time() < deadline:
        time.sleep(0.01)
    module = load_kernels(source)
    return float(module.forward(np.float64(1.0)))


def test_two_ray_workers_compiling_one_new_kernel_share_the_cache(cluster, tmp_path):
    """eventgrad's file lock (not numba's cache) makes concurrent first compiles in two processes safe: both
    get the kernel, and the cache holds one source file and one set of numba files for it."""
    source = SOURCE.format(token=str(tmp_path))  # a kernel no cache has seen
    out = ray.get([_load_at_once.remote(str(tmp_path), source, str(tmp_path / "barrier"), k) for k in (0, 1)])
    assert out == [2.0, 2.0]
    assert len(list(tmp_path.glob("k_*.py"))) == 1
    assert len(list((tmp_path / "__pycache__").glob("k_*.nbi"))) == 1


# ------------------------------------------------------------------------------------------------ sweeps
CONFIG = {"data": {"train_size": 12, "validation_size": 6, "test_size": 6},
          "model": {"hidden": [6]}, "simulation": {"duration": 20.0, "dtype": "float64", "threads": 1},
          "training": {"epochs": 1, "batch_size": 6}, "output": {"progress": False}}


def test_a_2x2_sweep_runs_every_point_and_a_second_run_skips_them(cluster, tmp_path, capsys):
    from eventgrad.cli import main

    config = tmp_path / "base.json"
    config.write_text(json.dumps(CONFIG))
    out = tmp_path / "sweep"
    args = ["sweep", str(config), "--grid", "training.lr=0.01,0.05", "--seeds", "2", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["training.lr"], r["seed"]) for r in rows) == [("0.01", "0"), ("0.01", "1"), ("0.05", "0"),
                                                                   ("0.05", "1")]
    assert all(r["status"] == "done" and 0.0 <= float(r["test_accuracy"]) <= 1.0 for r in rows)
    for r in rows:
        assert (out / r["run"] / "result.json").is_file() and r["run"] in printed
    # the same command again: nothing is trained, the table is read back from the run folders
    stamps = {r["run"]: os.path.getmtime(out / r["run"] / "result.json") for r in rows}
    assert main(args) == 0
    with open(out / "sweep.csv") as f:
        again = list(csv.DictReader(f))
    assert [r["status"] for r in again] == ["finished before"] * 4
    assert [r["test_accuracy"] for r in again] == [r["test_accuracy"] for r in rows]
    assert stamps == {r["run"]: os.path.getmtime(out / r["run"] / "result.json") for r in rows}


def test_a_sweep_continues_an_interrupted_point_with_the_numbers_of_an_uninterrupted_one(cluster, tmp_path):
    """A point whose folder holds the checkpoint of epoch 1 of 2 (what Ctrl-C after epoch 1 leaves) is resumed,
    and ends where the same point run without a break ends."""
    import shutil

    from eventgrad.cli import main
    from eventgrad.experiment import run
    from eventgrad.sweep import plan

    base = {**CONFIG, "training": {"epochs": 2, "batch_size": 6, "schedule": {"kind": "constant"}}}
    config = tmp_path / "base.json"
    config.write_text(json.dumps(base))
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["sweep", str(config), "--grid", "training.lr=0.02", "--out", str(whole)]) == 0
    (point,) = plan(base, {"training.lr": [0.02]}, 1, str(cut))
    first = json.loads(json.dumps(point["config"]))
    first["training"]["epochs"], first["output"]["dir"] = 1, str(tmp_path / "epoch1")
    run(first, out=lambda *a: None)  # epoch 1 alone: its last.npz is what the interrupted run kept
    os.makedirs(point["folder"])
    shutil.copy(tmp_path / "epoch1" / "last.npz", point["folder"])
    with open(os.path.join(point["folder"], "config.json"), "w") as f:
        json.dump(point["config"], f)
    assert main(["sweep", str(config), "--grid", "training.lr=0.02", "--out", str(cut)]) == 0
    rows = {}
    for name in ("whole", "cut"):
        with open(tmp_path / name / "sweep.csv") as f:
            (rows[name],) = list(csv.DictReader(f))
    assert rows["cut"]["status"] == "resumed" and rows["cut"]["epochs"] == "2"
    for key in ("loss", "test_loss", "test_accuracy", "val_accuracy"):
        np.testing.assert_allclose(float(rows["cut"][key]), float(rows["whole"][key]), rtol=1e-9, err_msg=key)


def test_sweep_input_errors_are_clear(tmp_path, capsys):
    from eventgrad.cli import main

    config = tmp_path / "base.json"
    config.write_text(json.dumps(CONFIG))
    for grid, message in (("training.lr", "--grid takes key=v1,v2"),
                          ("training.lrr=0.1,0.2", "unknown configuration key 'training.lrr'"),
                          ("training.lr=", "--grid training.lr= gives no values"),
                          ("training.lr=0.1,0.1", "repeats the value 0.1"),
                          ("training.epochs=1,x", "'training.epochs' must be int")):
        assert main(["sweep", str(config), "--grid", grid, "--out", str(tmp_path / "o")]) == 2
        assert message in capsys.readouterr().err, grid
    assert main(["sweep", str(config), "--grid", "seed=1,2", "--out", str(tmp_path / "o")]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["sweep", str(config), "--grid", "training.lr=0.1", "--grid", "training.lr=0.2",
                 "--out", str(tmp_path / "o")]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["sweep", str(config), "--grid", "training.lr=0.1", "--seeds", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--seeds must be" in capsys.readouterr().err
