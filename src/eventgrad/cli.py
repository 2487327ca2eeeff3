"""The command line: ``eventgrad train [CONFIG]``, ``eventgrad sweep CONFIG --grid ...`` (``eventgrad.sweep``),
``eventgrad config``, ``eventgrad plot RUN_DIR``, ``eventgrad deploy RUN_DIR`` (fixed-point accuracy and NIR
export of a trained run), ``eventgrad recipes``.

``eventgrad train`` with no file trains the built-in Yin-Yang task with the defaults of
``eventgrad.config`` and prints the test accuracy. A file (TOML, JSON or YAML) overrides any of them;
``--set section.key=value`` overrides one more. With an output folder (``--out``), the resolved
configuration, the per-epoch log (CSV and JSON lines), checkpoints and the result are written there,
and ``eventgrad train RUN_DIR/config.json`` repeats the run; ``eventgrad train --resume RUN_DIR``
continues an interrupted one from its last epoch, with the numbers an uninterrupted run gives.
``--recipe NAME`` starts from a recipe shipped with the package (``eventgrad recipes`` lists them); a
file and ``--set`` still override it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from eventgrad.config import DEFAULTS, ConfigError, _deep_update, read_config, recipe_path, recipes, resolve, set_value

EPILOG = """configuration sections and their defaults (print them with `eventgrad config`):
  seed          the seed of weights and shuffling
  data          name (yinyang | shd | ssc | fsdd | mnist), sizes or file paths, validation split (a fraction or
                whole speakers), the audio front end (fsdd), augmentation redrawn every epoch, delay lines
  encoding      how values become spikes (latency, threshold_latency), bias spike time
  model         hidden layer sizes, recurrence, neuron/synapse models (built-in names or equation tables),
                trainable neuron parameters, weight initialisation
  simulation    dt, duration, dtype, method (eventprop | bptt), surrogate, readout, threads, kernels,
                excursions (exact | step_end), max_events, max_spikes_per_step
  training      epochs, batch size, optimiser, learning rate, schedule, per-parameter rates, bounds,
                clipping, early stopping
  regularizer   spike-count targets (nu_lower, nu_upper), their weights, the silent-neuron push
  output        folder for logs/checkpoints, progress bar
"""


def _config_from_args(args) -> dict:
    if args.resume:
        if args.config or args.out or args.set or args.seed is not None or args.recipe:
            raise ConfigError("--resume takes the run folder's own configuration; only --epochs (to train "
                              "longer), --workers, --ray-address and --no-progress may change")
        path = os.path.join(args.resume, "config.json")
        if not os.path.isfile(path):
            raise ConfigError(f"'{args.resume}' holds no config.json; train with --out {args.resume} first")
        args.config, args.out = path, args.resume
    raw = read_config(recipe_path(args.recipe)) if args.recipe else {}
    if args.config:
        raw = _deep_update(raw, read_config(args.config))
    if args.resume and args.epochs is not None:
        raw = _keep_schedule(raw, args.epochs)
    for assignment in args.set or []:
        raw = set_value(raw, assignment)
    for key, value in (("training.epochs", args.epochs), ("seed", args.seed), ("output.dir", args.out),
                       ("training.workers", args.workers), ("training.ray_address", args.ray_address)):
        if value is not None:
            raw = set_value(raw, f"{key}={json.dumps(value)}")
    if args.no_progress:
        raw = set_value(raw, "output.progress=false")
    return resolve(raw)


def _keep_schedule(raw: dict, epochs: int) -> dict:
    """``--resume RUN --epochs N``: the learning-rate schedule stays the original run's, so that the
    epochs already run keep the rates they had. Only a cosine without its own ``epochs`` depends on the
    run's length (it spans training.epochs): pin it to the original length and say so once. A cosine down
    to 0 would train no further epoch: refused."""
    cfg = resolve(raw)
    original, schedule = cfg["training"]["epochs"], cfg["training"]["schedule"]
    if epochs == original or schedule.get("kind") != "cosine" or "epochs" in schedule:
        return raw
    floor, end = schedule.get("floor", 0.0), original + schedule.get("warmup", 0.0)
    if epochs > end and floor == 0:
        raise ConfigError(f"the run's cosine schedule reaches a learning rate of 0 at epoch {end:g}, so epochs past "
                          "it would not train (--resume keeps the original schedule); start a new run with the "
                          "longer --epochs, or give the schedule a floor")
    after = f"the rate stays at its floor ({floor:g} x lr) after epoch {end:g}" if epochs > end else \
        f"the run stops at epoch {epochs}, before the cosine reaches its floor"
    print(f"eventgrad: the learning-rate schedule stays the original run's: cosine over {original} epochs; {after}")
    return set_value(raw, f"training.schedule.epochs={original}")


def _train(args) -> int:
    from eventgrad.experiment import RunInterrupted, run

    cfg = _config_from_args(args)
    try:
        result = run(cfg, resume=bool(args.resume))
    except RunInterrupted as stop:
        print(f"eventgrad: {stop}", file=sys.stderr)
        return 130  # the shell's code for a command stopped by Ctrl-C
    acc = result["test_accuracy"]
    best = f" (parameters of epoch {result['best_epoch']}, best validation)" if result["best_epoch"] else ""
    line = f"test accuracy {acc:.4f}" if acc is not None else f"test loss {result['test_loss']:.4f}"
    print(f"{line}{best}; {result['seconds']:.1f} s")
    return 0


def _sweep_doc() -> str:
    from eventgrad import sweep

    return sweep.__doc__.split("\n\n", 1)[1]


def _sweep(args) -> int:
    from eventgrad.sweep import parse_grid, run_sweep

    grid = parse_grid(args.grid)
    raw = read_config(recipe_path(args.recipe)) if args.recipe else {}
    if args.config:
        raw = _deep_update(raw, read_config(args.config))
    for assignment in args.set or []:
        raw = set_value(raw, assignment)
    if args.epochs is not None:
        raw = set_value(raw, f"training.epochs={args.epochs}")
    try:
        rows = run_sweep(raw, grid, args.seeds, args.out, address=args.ray_address, cpus_per_run=args.cpus_per_run)
    except KeyboardInterrupt:
        print("eventgrad: sweep interrupted; the same command continues it (finished runs are skipped, interrupted "
              "ones resume from their last finished epoch)", file=sys.stderr)
        return 130
    failed = [row["run"] for row in rows if row["status"].startswith("failed")]
    if failed:
        print(f"eventgrad: {len(failed)} of {len(rows)} runs failed ({', '.join(failed)}); run the same command "
              "again to retry them", file=sys.stderr)
        return 1
    return 0


def _plot(args) -> int:
    from eventgrad.experiment import plot_run

    for name in ("log.csv", "config.json", "best.npz"):
        if not os.path.isfile(os.path.join(args.run_dir, name)):
            raise ConfigError(f"'{args.run_dir}' holds no {name}; train with --out {args.run_dir} first")
    for path in plot_run(args.run_dir, sample=args.sample):
        print(f"wrote {path}")
    return 0


def _deploy(args) -> int:
    from eventgrad.experiment import deploy_run

    for name in ("config.json", args.checkpoint):
        if not os.path.isfile(os.path.join(args.run_dir, name)):
            raise ConfigError(f"'{args.run_dir}' holds no {name}; train with --out {args.run_dir} first")
    deploy_run(args.run_dir, bits=args.bits, checkpoint=args.checkpoint, nir_path=None if args.no_nir else args.nir,
               dt=args.dt, time_unit=args.time_unit)
    return 0


def _recipes(args) -> int:
    if args.name:
        with open(recipe_path(args.name)) as f:
            print(f.read(), end="")
        return 0
    for name, description in recipes().items():
        print(f"{name:8s} {description}")
    print("run one with: eventgrad train --recipe NAME [--set section.key=value ...]; "
          "eventgrad recipes NAME prints its file")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventgrad", description="Train spiking networks with exact gradients.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error, not only its message")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train and test a network (default: the built-in Yin-Yang task)",
                           description=__doc__.split("\n\n")[1], epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("config", nargs="?", help="configuration file (.toml, .json, .yaml); default: Yin-Yang")
    train.add_argument("--recipe", metavar="NAME", help="start from a shipped recipe (see `eventgrad recipes`)")
    train.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                       help="override one setting, e.g. --set training.lr=0.005 (repeatable; JSON values)")
    train.add_argument("--epochs", type=int, help="override training.epochs")
    train.add_argument("--seed", type=int, help="override seed")
    train.add_argument("--out", help="folder for the log, checkpoints and resolved configuration")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue the run in RUN_DIR (made with --out) from its last epoch, to training.epochs "
                            "(or --epochs) epochs in all; the learning-rate schedule stays the original run's")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch stays)")
    train.add_argument("--workers", type=int, metavar="N",
                       help="compute each batch's gradient on N Ray workers (override training.workers; needs "
                            "pip install 'eventgrad[ray]'); the result equals one process's up to rounding")
    train.add_argument("--ray-address", metavar="ADDRESS",
                       help="the Ray cluster for --workers (override training.ray_address; default: a local one)")
    train.set_defaults(func=_train)
    sweep = sub.add_parser("sweep", help="train every point of a grid of settings and seeds in parallel on Ray; "
                                         "one table of the results (resumable)",
                           description=_sweep_doc(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("config", nargs="?", help="base configuration file (.toml, .json, .yaml); default: Yin-Yang")
    sweep.add_argument("--recipe", metavar="NAME", help="start from a shipped recipe (see `eventgrad recipes`)")
    sweep.add_argument("--grid", action="append", metavar="SECTION.KEY=V1,V2",
                       help="values of one setting, e.g. --grid training.lr=0.01,0.02 or --grid model.hidden=[50],[100]"
                            " (repeatable: the sweep runs the product)")
    sweep.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override one setting of every run")
    sweep.add_argument("--seeds", type=int, default=1, help="runs per point, seeds seed+0, seed+1, ... (default 1)")
    sweep.add_argument("--epochs", type=int, help="override training.epochs")
    sweep.add_argument("--out", required=True, help="folder of the runs (one subfolder per run) and sweep.csv")
    sweep.add_argument("--cpus-per-run", type=int, default=1, help="CPUs (threads) of each run (default 1)")
    sweep.add_argument("--ray-address", metavar="ADDRESS", help="an existing Ray cluster (default: a local one)")
    sweep.set_defaults(func=_sweep)
    show = sub.add_parser("config", help="print the default configuration (or a file's, resolved) as JSON")
    show.add_argument("config", nargs="?", help="configuration file to resolve against the defaults")
    show.set_defaults(func=lambda a: print(json.dumps(resolve(read_config(a.config)) if a.config else DEFAULTS,
                                                      indent=2)) or 0)
    listing = sub.add_parser("recipes", help="list the recipes shipped with the package (train --recipe NAME)")
    listing.add_argument("name", nargs="?", help="print this recipe's file instead")
    listing.set_defaults(func=_recipes)
    plot = sub.add_parser("plot", help="learning curves, a spike raster and voltage traces (PNG) of a run folder "
                                       "made with --out (the best checkpoint on one test sample)")
    plot.add_argument("run_dir")
    plot.add_argument("--sample", type=int, default=0, help="which test sample to draw (default 0)")
    plot.set_defaults(func=_plot)
    deploy = sub.add_parser("deploy", help="quantise a run folder's network to fixed point (Loihi-2 style), print its "
                                           "test accuracy before and after, and write it as NIR")
    deploy.add_argument("run_dir")
    deploy.add_argument("--bits", type=int, nargs="+", default=[8], help="weight bit widths to test (default 8)")
    deploy.add_argument("--checkpoint", default="best.npz", help="which checkpoint of the run (default best.npz)")
    deploy.add_argument("--dt", type=float, help="time step of the fixed-point model in ms (default: the run's)")
    deploy.add_argument("--nir", default="", help="NIR file to write (default RUN_DIR/network.nir)")
    deploy.add_argument("--no-nir", action="store_true", help="write no NIR file")
    deploy.add_argument("--time-unit", choices=["s", "ms"], default="s", help="time unit of the NIR file (default s)")
    deploy.set_defaults(func=_deploy)
    return parser


def main(argv=None) -> int:
    """Run a command; an error is one line on stderr (its type and message, the traceback only with --debug):
    exit status 2 for a mistake in the input (configuration, model, data, files), 1 for anything else."""
    from eventgrad import ModelError, NetworkError, SimulationError, SpikeDataError
    from eventgrad.kinds import UnsupportedModel
    from eventgrad.train import TrainingError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # outside training (compiling, testing): nothing to save, no traceback
        print("eventgrad: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(f"eventgrad: {type(err).__name__}: {err}", file=sys.stderr)
        known = (ConfigError, ModelError, NetworkError, SimulationError, SpikeDataError, TrainingError,
                 UnsupportedModel, ValueError, OSError)
        return 2 if isinstance(err, known) else 1


if __name__ == "__main__":
    sys.exit(main())
