"""PNG plots of a training run and of one simulated sample: learning curves, spike rasters, voltage traces.

A log or a raster is easier to look at than to read. Each function checks its input first (so a wrong
shape is reported in terms of the arguments, not as a matplotlib traceback), draws one figure and writes
one PNG, returning its path.

matplotlib is optional (``pip install "eventgrad[plot]"``) and imported only when a plot is drawn.
Figures are built as ``matplotlib.figure.Figure`` on an Agg canvas rather than through pyplot: that
renders without a display and never switches the backend or touches the global figure list of the
session (a notebook) that calls us.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_learning_curves", "plot_raster", "plot_traces"]

DPI = 100
MAX_TRACES = 10  # one colour each in matplotlib's default tab10 cycle; more lines cannot be told apart
TRAIN_COLOR, VAL_COLOR, SILENT_COLOR = "tab:blue", "tab:orange", "tab:gray"
# (panel title, [(column, legend label, colour)], height in inches): drawn when one of its columns has data
_CURVE_PANELS = (
    ("loss", [("loss", "train", TRAIN_COLOR), ("val_loss", "validation", VAL_COLOR)], 2.6),
    ("accuracy", [("accuracy", "train", TRAIN_COLOR), ("val_accuracy", "validation", VAL_COLOR)], 2.6),
    ("silent\nneurons", [("silent", "silent", SILENT_COLOR)], 1.3),
)
_CURVE_COLUMNS = ("epoch",) + tuple(col for _, cols, _ in _CURVE_PANELS for col, _, _ in cols)
_LOG_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def _new_figure(width: float, height: float):
    """A Figure on an Agg canvas, or the ImportError that says how to install matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError('plots need matplotlib: pip install "eventgrad[plot]"') from err
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png_path(path: str | os.PathLike) -> Path:
    """The output path, checked to end in .png (we write PNG bytes; another suffix would mislabel them)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots are written as PNG, so the path must end in '.png', not {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _save(fig, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=DPI)
    return path


# ---------------------------------------------------------------------------------------------- learning curves


def _read_log(log) -> tuple[list[Mapping], str]:
    """The epoch rows of ``log`` (a list of dicts, or a CSV / JSON-lines file) and a name for errors."""
    if isinstance(log, (str, os.PathLike)):
        path = Path(log)
        kind = _LOG_SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise ValueError(f"cannot read the log {str(path)!r}: expected a .csv or a JSON-lines "
                             f"(.jsonl, .ndjson, .json) file with one row per epoch")
        with open(path, newline="") as f:
            if kind == "csv":
                return list(csv.DictReader(f)), f"the log {str(path)!r}"
            rows = []
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"line {lineno} of the log {str(path)!r} is not JSON: {err}") from err
            return rows, f"the log {str(path)!r}"
    if isinstance(log, Mapping) or not isinstance(log, Sequence):
        raise TypeError(f"log must be a list with one dict per epoch, or the path of a CSV or JSON-lines file, "
                        f"not a {type(log).__name__}")
    return list(log), "the log"


def _log_columns(rows: list, where: str) -> dict[str, np.ndarray]:
    """Column name -> float array with one entry per row; NaN where a row lacks the value (or it is blank)."""
    if not rows:
        raise ValueError(f"{where} has no epoch rows: nothing to plot")
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"row {i} of {where} is a {type(row).__name__}, not a dict of column -> value")
        names.update(dict.fromkeys(k for k in row if k is not None))
    columns = {}
    for name in names:
        values = np.full(len(rows), np.nan)
        for i, row in enumerate(rows):
            value = row.get(name)
            if value is None or value == "":
                continue
            try:
                values[i] = float(value)
            except (TypeError, ValueError):
                if name in _CURVE_COLUMNS:  # a column we do not plot (a timestamp, a note) may hold text
                    raise ValueError(f"column {name!r} of {where} holds {value!r} in row {i}, "
                                     f"which is not a number") from None
        columns[name] = values
    return columns


def plot_learning_curves(log, path: str | os.PathLike) -> Path:
    """Plot loss and accuracy per epoch (train and validation), and the silent-neuron count, to a PNG.

    ``log`` is a list of dicts (one per epoch) or the path of a CSV or JSON-lines file with one row per
    epoch. Columns used: ``epoch`` (x axis; the row number when absent), ``loss``/``val_loss`` (top panel),
    ``accuracy``/``val_accuracy`` (middle panel) and ``silent`` (hidden neurons that never spiked, a small
    bottom panel: a count that rises warns of dead neurons before the loss does). A missing or empty
    column is skipped, as is its panel; other columns (``lr``, ``time``) are ignored. Returns ``path``.
    """
    path = _png_path(path)
    rows, where = _read_log(log)
    columns = _log_columns(rows, where)
    epoch = columns.get("epoch")
    if epoch is None:
        epoch = np.arange(1, len(rows) + 1, dtype=float)
    elif np.isnan(epoch).any():
        raise ValueError(f"{where} gives 'epoch' in some rows but not in row {int(np.argmax(np.isnan(epoch)))}")
    present = {name for name, values in columns.items() if np.isfinite(values).any()}
    panels = [p for p in _CURVE_PANELS if any(col in present for col, _, _ in p[1])]
    if not panels:
        wanted = ", ".join(repr(col) for col in _CURVE_COLUMNS[1:])
        raise ValueError(f"{where} has none of the columns {wanted}; it has {sorted(columns)}")
    fig = _new_figure(7.0, 0.4 + sum(height for *_, height in panels))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False,
                        height_ratios=[height for *_, height in panels])[:, 0]
    for ax, (name, cols, _) in zip(axes, panels):
        for col, label, color in cols:
            if col in present:
                ok = np.isfinite(columns[col])  # a validation run every k epochs leaves gaps: join the points
                ax.plot(epoch[ok], columns[col][ok], marker="o", markersize=3, color=color, label=label)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if len(cols) > 1:  # train/validation panels: say which line is which even when only one is drawn
            ax.legend()
    from matplotlib.ticker import MaxNLocator

    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # epochs are whole numbers
    axes[-1].set_xlim(np.nanmin(epoch) - 0.5, np.nanmax(epoch) + 0.5)  # room for an integer tick, even for one
    axes[-1].set_xlabel("epoch")
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------------ rasters


def _spike_arrays(name, pair) -> tuple[np.ndarray, np.ndarray]:
    """The (times, units) of population ``name`` as 1-D arrays, checked to pair up one to one."""
    if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise ValueError(f"spikes[{name!r}] must be a pair (times, units), e.g. Result.spike_times({name!r}, b)")
    times, units = np.asarray(pair[0]), np.asarray(pair[1])
    if times.ndim != 1 or units.ndim != 1:
        raise ValueError(f"spikes[{name!r}]: times and units must be 1-D, got shapes {times.shape} and {units.shape}")
    if len(times) != len(units):
        raise ValueError(f"spikes[{name!r}]: times and units must have the same length (one unit per spike), "
                         f"got {len(times)} times and {len(units)} units")
    if times.dtype.kind not in "iuf" or not np.isfinite(times).all():
        raise ValueError(f"spikes[{name!r}]: times must be finite numbers (ms)")
    if units.dtype.kind not in "iuf" or not np.array_equal(units, np.round(units)) or (units < 0).any():
        raise ValueError(f"spikes[{name!r}]: units must be neuron indices (integers >= 0)")
    return times.astype(float), units.astype(int)


def plot_raster(spikes: Mapping, path: str | os.PathLike, title: str | None = None,
                duration: float | None = None) -> Path:
    """Plot the spikes of one sample as a raster to a PNG: one panel per population, stacked, shared time axis.

    ``spikes`` maps a population name to ``(times, units)`` arrays (times in ms), in the order the panels
    are drawn; ``{g: result.spike_times(g, b) for g in groups}`` gives it for sample ``b``. A population
    that did not spike gets an empty panel that says so. ``duration`` (ms): the time axis spans the whole
    trial, [0, duration], not only the spikes. Returns ``path``.
    """
    path = _png_path(path)
    if not isinstance(spikes, Mapping) or not spikes:
        raise ValueError("spikes must be a non-empty dict: population name -> (times, units)")
    _check_duration(duration)
    arrays = {name: _spike_arrays(name, pair) for name, pair in spikes.items()}
    fig = _new_figure(8.0, 0.6 + 1.8 * len(arrays) + (0.3 if title else 0.0))
    axes = fig.subplots(len(arrays), 1, sharex=True, squeeze=False)[:, 0]
    from matplotlib.ticker import MaxNLocator

    for ax, (name, (times, units)) in zip(axes, arrays.items()):
        ax.plot(times, units, linestyle="none", marker="|", markersize=6, color="k")
        if len(times) == 0:
            ax.text(0.5, 0.5, "no spikes", transform=ax.transAxes, ha="center", va="center", color="0.4")
            ax.set_yticks([])
        else:
            ax.set_ylim(-0.5, units.max() + 0.5)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{name}\nunit")
    if duration is not None:  # the whole trial, with a margin that keeps a spike at t = 0 off the frame
        axes[-1].set_xlim(-0.01 * duration, 1.01 * duration)
    axes[-1].set_xlabel("time (ms)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------------- traces


def _check_duration(duration) -> None:
    if duration is not None and not (isinstance(duration, (int, float, np.number)) and math.isfinite(duration)
                                     and duration > 0):
        raise ValueError(f"duration must be a positive number of ms, got {duration!r}")


def _spike_points(spikes, times, n: int):
    """(times, units, before, after) of ``spikes``, checked: the value of each neuron's variable just before
    and just after each of its spikes, drawn into its trace at the spike's exact time."""
    if isinstance(spikes, (str, bytes)) or not isinstance(spikes, Sequence) or len(spikes) != 4:
        raise ValueError("spikes must be (times, units, before, after): each spike's time, neuron, and the "
                         "variable's value just before and just after it (see eventgrad.engine.trajectory)")
    t_s, units = _spike_arrays("traces", spikes[:2])
    before, after = (np.asarray(a, dtype=float).reshape(-1) for a in spikes[2:])
    if len(before) != len(t_s) or len(after) != len(t_s):
        raise ValueError(f"spikes: before and after need one value per spike ({len(t_s)}), got {len(before)} "
                         f"and {len(after)}")
    if len(units) and units.max() >= n:
        raise ValueError(f"spikes: unit {units.max()} has no column in values ({n} neurons)")
    return t_s, units, before, after


def _with_spikes(times, column, t_s, before, after):
    """The trace with the points (t, before) and (t, after) inserted at each spike time t: the line then
    climbs to the crossing and drops at the reset where they happen, not between grid points."""
    at = np.repeat(np.searchsorted(times, t_s, side="right"), 2)
    return np.insert(times, at, np.repeat(t_s, 2)), np.insert(column, at, np.column_stack([before, after]).ravel())


def plot_traces(times, values, path: str | os.PathLike, labels: Sequence[str] | None = None,
                threshold: float | None = None, title: str | None = None, spikes=None,
                duration: float | None = None, ylabel: str = "voltage") -> Path:
    """Plot voltage traces of neurons over time to a PNG, with an optional dashed threshold line.

    ``times`` has shape (T,) in ms and ``values`` shape (T, n): column j is neuron j. Only the first
    ``MAX_TRACES`` neurons are drawn (more lines cannot be told apart) and the title says so. ``labels``,
    one per neuron (all n), name the lines in a legend. ``spikes``: (times, units, before, after), the
    variable's values just before and after each spike (``eventgrad.engine.trajectory.state_trace`` gives
    them): drawn into the traces at the exact spike times and marked. ``duration``: the time axis spans
    [0, duration]. Returns ``path``.
    """
    path = _png_path(path)
    times, values = np.asarray(times), np.asarray(values)
    if times.ndim != 1:
        raise ValueError(f"times must be 1-D (T,), got shape {times.shape}")
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (T, n): one column per neuron, got shape {values.shape}")
    if values.shape[0] != len(times):
        hint = "; did you mean values.T?" if values.shape[1] == len(times) else ""
        raise ValueError(f"values has {values.shape[0]} rows but times has {len(times)} entries: "
                         f"values must be (T, n) with one row per time{hint}")
    n = values.shape[1]
    if n == 0:
        raise ValueError("values has no columns: no neuron to plot")
    if labels is not None and (isinstance(labels, str) or len(labels) != n):
        got = "a single string" if isinstance(labels, str) else f"{len(labels)} labels"
        raise ValueError(f"labels must give one name per neuron (column of values), {n} in all; got {got}")
    if threshold is not None and not (isinstance(threshold, (int, float, np.number)) and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    _check_duration(duration)
    t_s, units, before, after = _spike_points(spikes, times, n) if spikes is not None else (np.zeros(0),) * 4
    shown = min(n, MAX_TRACES)
    fig = _new_figure(8.0, 4.0)
    ax = fig.subplots()
    marked = False
    for j in range(shown):
        mine = units == j
        x, y = _with_spikes(times, values[:, j], t_s[mine], before[mine], after[mine])
        (line,) = ax.plot(x, y, linewidth=1.2, label=None if labels is None else str(labels[j]))
        if mine.any():
            ax.plot(t_s[mine], before[mine], linestyle="none", marker="o", markersize=4, color=line.get_color(),
                    markeredgecolor="k", markeredgewidth=0.6, label=None if marked else "spike")
            marked = True
    if threshold is not None:
        ax.axhline(threshold, color="k", linestyle="--", linewidth=1.0, label="threshold")
    note = f"first {shown} of {n} neurons" if n > shown else ""
    full_title = f"{title} ({note})" if title and note else (title or note)
    if full_title:
        ax.set_title(full_title)
    if labels is not None or threshold is not None or marked:
        handles, names = ax.get_legend_handles_labels()  # the neurons first, then "spike" and "threshold"
        order = sorted(range(len(names)), key=lambda k: (names[k] in ("spike", "threshold"), k))
        if marked:  # one neutral marker stands for every neuron's spikes
            from matplotlib.lines import Line2D

            handles[names.index("spike")] = Line2D([], [], linestyle="none", marker="o", markersize=4,
                                                   color="w", markeredgecolor="k", markeredgewidth=0.6)
        ax.legend([handles[k] for k in order], [names[k] for k in order], fontsize="small", loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))  # beside, not over, the traces
    if duration is not None:
        ax.set_xlim(0.0, duration)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return _save(fig, path)
