"""Sweeps: one training run per point of a grid of configuration values and seeds, in parallel on Ray.

``eventgrad sweep CONFIG --grid training.lr=0.01,0.02 --grid model.hidden=[50],[100] --seeds 3 --out DIR``
trains the product of the grids times the seeds (seed = the configuration's seed + 0, 1, ...), each run as one
Ray task in its own folder ``DIR/<point>`` (the log, checkpoints and result that ``eventgrad train --out``
writes), then prints one table of the final metrics and writes it to ``DIR/sweep.csv``.

Resumable: the same command again skips every point whose folder holds a finished run (``result.json``),
continues a point whose folder holds a checkpoint of an unfinished one (``last.npz``, as ``eventgrad train
--resume`` does, with the numbers an uninterrupted run gives) and starts the others. A folder that holds a run
of another configuration is refused before anything starts.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import time

from eventgrad.config import ConfigError, resolve, set_value

# the columns of the table, after the run's folder name, the grid's keys and the seed
METRICS = ("status", "epochs", "loss", "val_accuracy", "best_epoch", "test_accuracy", "test_loss", "seconds")


def parse_grid(items) -> dict[str, list]:
    """``["key=v1,v2", ...]`` as {key: [v1, v2]}; each value JSON if it reads as JSON (lists too:
    ``model.hidden=[50],[100,100]``), else text (``training.optimizer=adam,sgd``)."""
    grid: dict[str, list] = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(f"--grid takes key=v1,v2 (a dotted configuration key, comma-separated values), "
                              f"got '{item}'")
        key, text = (part.strip() for part in item.split("=", 1))
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; list all its values in one --grid {key}=v1,v2")
        if key == "seed" or key.startswith("output."):
            raise ConfigError(f"--grid {key}: the sweep sets it ({'--seeds N' if key == 'seed' else '--out DIR'})")
        values = _values(text)
        if not values:
            raise ConfigError(f"--grid {key}= gives no values; write --grid {key}=v1,v2")
        seen = set()
        for v in values:
            if json.dumps(v, sort_keys=True) in seen:
                raise ConfigError(f"--grid {item} repeats the value {json.dumps(v)}")
            seen.add(json.dumps(v, sort_keys=True))
        grid[key] = values
    return grid


def _values(text: str) -> list:
    if not text:
        return []
    try:
        values = json.loads(f"[{text}]")
        if isinstance(values, list):
            return values
    except json.JSONDecodeError:
        pass
    out = []
    for part in text.split(","):
        try:
            out.append(json.loads(part))
        except json.JSONDecodeError:
            out.append(part.strip())
    return out


def point_name(assignment: dict, seed_index: int) -> str:
    """The run folder's name: each grid key and value, then the seed, with only portable characters."""
    parts = [f"{key}={_short(value)}" for key, value in assignment.items()] + [f"seed={seed_index}"]
    return "_".join(parts)


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    text = text.replace(",", "+").replace(":", "-")
    return re.sub(r"[^A-Za-z0-9.+=-]", "", text) or "empty"


def plan(raw: dict, grid: dict, seeds: int, out_dir: str, threads: int = 1) -> list[dict]:
    """Every run of the sweep: {"name", "assignment", "seed", "config", "folder"}, each configuration resolved
    (checked) here, before anything runs."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds must be a positive number of seeds per point, got {seeds!r}")
    if not out_dir:
        raise ConfigError("a sweep needs an output folder: --out DIR")
    base = resolve(raw)
    if base["training"]["workers"] != 1:
        raise ConfigError("a sweep runs each point as one Ray task; set training.workers = 1 (the points run in "
                          "parallel instead)")
    runs, names = [], set()
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        assignment = dict(zip(keys, combo))
        for s in range(seeds):
            point = raw
            for key, value in assignment.items():
                point = set_value(point, f"{key}={json.dumps(value)}")
            name = point_name(assignment, s)
            folder = os.path.join(out_dir, name)
            point = set_value(point, f"seed={base['seed'] + s}")
            point = set_value(point, f"output.dir={json.dumps(folder)}")
            point = set_value(point, "output.progress=false")
            if base["simulation"]["threads"] == 0:  # all cores: each run gets its share instead
                point = set_value(point, f"simulation.threads={threads}")
            try:
                cfg = resolve(point)
            except ConfigError as err:
                where = ", ".join(f"{k}={json.dumps(v)}" for k, v in assignment.items())
                raise ConfigError(f"--grid point {where}: {err}") from err
            if name in names:
                raise ConfigError(f"two points of the grid get the folder name '{name}'; give values that differ "
                                  "in letters or digits")
            names.add(name)
            runs.append({"name": name, "assignment": assignment, "seed": s, "config": cfg, "folder": folder})
    return runs


def state(run: dict) -> str:
    """"finished", "resume" (a checkpoint of an unfinished run), or "new"; an error for a folder that holds a
    run of another configuration."""
    folder = run["folder"]
    stored = os.path.join(folder, "config.json")
    if not os.path.isfile(stored):
        return "new"
    with open(stored) as f:
        held = json.load(f)
    if held != json.loads(json.dumps(run["config"])):
        differ = _first_difference(held, json.loads(json.dumps(run["config"])))
        raise ConfigError(f"'{folder}' holds a run of another configuration (it differs at '{differ}'); give the "
                          "sweep another --out, or delete that folder")
    if os.path.isfile(os.path.join(folder, "result.json")):
        return "finished"
    last = os.path.join(folder, "last.npz")
    if os.path.isfile(last):
        from eventgrad.train import load_checkpoint

        done = load_checkpoint(last)["meta"].get("trainer", {}).get("epoch", 0)
        if 0 < done < run["config"]["training"]["epochs"]:
            return "resume"
    return "new"


def _first_difference(a, b, path="") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    return path or "(top level)"


def _train_point(cfg: dict, resume: bool) -> None:
    """A Ray task: one run, writing its folder; the metrics are read back from there."""
    from eventgrad.experiment import run

    run(cfg, out=lambda *args: None, resume=resume)


def read_row(run: dict, status: str) -> dict:
    """The table's row of ``run`` from its folder (result.json and the last line of log.jsonl)."""
    row = {"run": run["name"], **{k: _cell(v) for k, v in run["assignment"].items()}, "seed": run["seed"],
           "status": status}
    folder = run["folder"]
    try:
        with open(os.path.join(folder, "result.json")) as f:
            result = json.load(f)
        with open(os.path.join(folder, "log.jsonl")) as f:
            history = [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError):
        return row
    last = history[-1] if history else {}
    row.update({"epochs": last.get("epoch"), "loss": last.get("loss"), "val_accuracy": last.get("val_accuracy"),
                "best_epoch": result.get("best_epoch"), "test_accuracy": result.get("test_accuracy"),
                "test_loss": result.get("test_loss"), "seconds": result.get("seconds")})
    return row


def _cell(value):
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else json.dumps(value)


def run_sweep(raw: dict, grid: dict, seeds: int, out_dir: str, address: str | None = None, cpus_per_run: int = 1,
              out=print) -> list[dict]:
    """Run the sweep (see the module notes); returns the table's rows, in grid order."""
    from eventgrad.train.distributed import import_ray

    if isinstance(cpus_per_run, bool) or not isinstance(cpus_per_run, int) or cpus_per_run < 1:
        raise ConfigError(f"--cpus-per-run must be a positive integer, got {cpus_per_run!r}")
    runs = plan(raw, grid, seeds, out_dir, threads=cpus_per_run)
    states = [state(r) for r in runs]
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False)
    try:
        statuses = _run_pending(ray, runs, states, cpus_per_run, out)
    finally:
        if started:
            ray.shutdown()
    rows = [read_row(r, s) for r, s in zip(runs, statuses)]
    write_csv(os.path.join(out_dir, "sweep.csv"), rows, list(grid))
    out(format_table(rows, list(grid)))
    return rows


def _run_pending(ray, runs, states, cpus_per_run, out) -> list[str]:
    env = {"NUMBA_NUM_THREADS": str(cpus_per_run)}
    if os.environ.get("EVENTGRAD_CACHE_DIR"):
        env["EVENTGRAD_CACHE_DIR"] = os.environ["EVENTGRAD_CACHE_DIR"]
    task = ray.remote(_train_point).options(num_cpus=cpus_per_run, max_retries=0, runtime_env={"env_vars": env})
    statuses = ["finished before" if s == "finished" else "" for s in states]
    pending = {task.remote(r["config"], s == "resume"): i for i, (r, s) in enumerate(zip(runs, states))
               if s != "finished"}
    todo, start = len(pending), time.perf_counter()
    out(f"sweep: {len(runs)} runs, {len(runs) - todo} finished before, {todo} to run "
        f"({sum(s == 'resume' for s in states)} resumed) on {int(ray.cluster_resources().get('CPU', 0))} CPUs")
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready[0])
        try:
            ray.get(ready[0])
            statuses[i] = "resumed" if states[i] == "resume" else "done"
        except ray.exceptions.RayError as err:
            cause = err.cause if isinstance(err, ray.exceptions.RayTaskError) and err.cause else err
            statuses[i] = f"failed: {type(cause).__name__}: {str(cause).splitlines()[-1] if str(cause) else ''}"
        out(f"[{todo - len(pending)}/{todo}] {runs[i]['name']}: {statuses[i]} "
            f"({time.perf_counter() - start:.0f} s)")
    return statuses


def write_csv(path: str, rows: list[dict], keys: list[str]) -> None:
    columns = ["run", *keys, "seed", *METRICS]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def format_table(rows: list[dict], keys: list[str]) -> str:
    columns = ["run", *keys, "seed", *METRICS]
    cells = [[_text(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
