"""The plots draw what they are given, where they are told, and refuse input they would draw wrongly.

Each plot is checked twice: the PNG on disk (the right signature, the size that its panel count implies,
not one uniform colour) and the figure that was saved (captured on its way to disk: which panels, which
lines, which data). A failure means a plot is blank or truncated, a column or population lands in the
wrong panel or is dropped, a log read from a file differs from the same log passed as dicts, or bad
input is drawn instead of refused with an error that names it.
"""

import csv
import json
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib.colors  # noqa: E402
import matplotlib.image  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from eventgrad import plots  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ORANGE = np.array(matplotlib.colors.to_rgb(plots.VAL_COLOR))

LOG = [
    {"epoch": 1, "loss": 1.2, "accuracy": 0.40, "val_loss": 1.3, "val_accuracy": 0.35, "lr": 1e-3, "silent": 7,
     "time": 2.5},
    {"epoch": 2, "loss": 0.9, "accuracy": 0.55, "val_loss": 1.0, "val_accuracy": 0.50, "lr": 1e-3, "silent": 4,
     "time": 2.4},
    {"epoch": 3, "loss": 0.7, "accuracy": 0.70, "val_loss": 0.8, "val_accuracy": 0.62, "lr": 5e-4, "silent": 2,
     "time": 2.6},
]


@pytest.fixture(autouse=True)
def strict_numerics():
    with np.errstate(all="raise"):
        yield


@pytest.fixture
def saved(monkeypatch):
    """The figures saved during the test, in order (Figure.savefig wrapped to record its figure)."""
    figures = []
    original = Figure.savefig

    def record(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def read_png(path, shape_inches):
    """The image at ``path``, checked to be a PNG of ``shape_inches`` (width, height) at plots.DPI, not blank."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    img = matplotlib.image.imread(path)
    width, height = shape_inches
    assert img.shape[:2] == (round(height * plots.DPI), round(width * plots.DPI)), "wrong image size"
    assert img[..., :3].reshape(-1, 3).std(axis=0).max() > 0.05, "the image is one uniform colour"
    return img


def has_colour(img, rgb, tol=0.02):
    return bool((np.abs(img[..., :3] - rgb).max(axis=-1) < tol).any())


def lines_of(ax):
    """{label: (x, y)} of the lines in an axes."""
    return {line.get_label(): (np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
            for line in ax.get_lines()}


# ---------------------------------------------------------------------------------------------- learning curves


def test_learning_curves_draw_every_column_in_its_panel(tmp_path, saved):
    out = plots.plot_learning_curves(LOG, tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    img = read_png(out, (7.0, 0.4 + 2.6 + 2.6 + 1.3))
    assert has_colour(img, ORANGE), "validation lines are not drawn"
    (fig,) = saved
    loss_ax, acc_ax, silent_ax = fig.axes
    epochs = [1, 2, 3]
    for ax, train, val in ((loss_ax, "loss", "val_loss"), (acc_ax, "accuracy", "val_accuracy")):
        lines = lines_of(ax)
        assert set(lines) == {"train", "validation"}, ax.get_ylabel()
        np.testing.assert_array_equal(lines["train"][0], epochs)
        np.testing.assert_array_equal(lines["train"][1], [row[train] for row in LOG])
        np.testing.assert_array_equal(lines["validation"][1], [row[val] for row in LOG])
    np.testing.assert_array_equal(lines_of(silent_ax)["silent"][1], [7, 4, 2])


def test_epoch_ticks_are_whole_numbers(tmp_path, saved):
    plots.plot_learning_curves(LOG, tmp_path / "curves.png")
    plots.plot_learning_curves(LOG[:1], tmp_path / "one_epoch.png")
    for fig, epochs in zip(saved, ([1, 2, 3], [1])):
        ax = fig.axes[-1]
        low, high = ax.get_xlim()
        ticks = ax.get_xticks()
        visible = ticks[(ticks >= low) & (ticks <= high)]
        assert set(epochs) <= set(visible) and np.array_equal(visible, np.round(visible)), ticks


def test_learning_curves_skip_missing_columns_and_join_gappy_validation(tmp_path, saved):
    rows = [{"loss": 1.0 - 0.1 * i, "val_loss": 1.1 - 0.1 * i if i % 2 == 0 else None} for i in range(5)]
    out = plots.plot_learning_curves(rows, tmp_path / "loss_only.png")
    img = read_png(out, (7.0, 0.4 + 2.6))  # one panel: no accuracy, no silent
    assert has_colour(img, ORANGE)
    (fig,) = saved
    (ax,) = fig.axes
    lines = lines_of(ax)
    np.testing.assert_array_equal(lines["train"][0], [1, 2, 3, 4, 5], err_msg="no epoch column: x is the row")
    np.testing.assert_array_equal(lines["validation"][0], [1, 3, 5], err_msg="epochs without a value drawn")
    np.testing.assert_allclose(lines["validation"][1], [1.1, 0.9, 0.7])


def test_learning_curves_without_validation_draw_no_validation_line(tmp_path):
    rows = [{k: v for k, v in row.items() if not k.startswith("val_")} for row in LOG]
    img = read_png(plots.plot_learning_curves(rows, tmp_path / "c.png"), (7.0, 0.4 + 2.6 + 2.6 + 1.3))
    assert not has_colour(img, ORANGE), "a validation line appeared though the log has no validation columns"


def test_learning_curves_read_csv_and_json_lines_like_dicts(tmp_path):
    # epoch 2 has no validation: a blank CSV cell and an absent JSON key must both mean "missing"
    log = [{k: v for k, v in row.items() if not (row["epoch"] == 2 and k.startswith("val_"))} for row in LOG]
    with open(tmp_path / "log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(LOG[0]))
        writer.writeheader()
        writer.writerows(log)
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(row) for row in log) + "\n\n")
    size = (7.0, 0.4 + 2.6 + 2.6 + 1.3)
    reference = read_png(plots.plot_learning_curves(log, tmp_path / "dicts.png"), size)
    for source in ("log.csv", "log.jsonl"):
        img = read_png(plots.plot_learning_curves(tmp_path / source, tmp_path / f"{source}.png"), size)
        np.testing.assert_array_equal(img, reference, err_msg=f"{source} is drawn unlike the same log as dicts")
    assert plots.plot_learning_curves(str(tmp_path / "log.csv"), str(tmp_path / "s.png")).exists()


def test_bad_logs_are_refused_with_the_reason(tmp_path):
    (tmp_path / "empty.csv").write_text("epoch,loss,accuracy\n")
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "broken.jsonl").write_text('{"loss": 1}\n{"loss": \n')
    (tmp_path / "log.txt").write_text("loss 1\n")
    out = tmp_path / "never.png"
    with pytest.raises(ValueError, match="has no epoch rows"):
        plots.plot_learning_curves([], out)
    with pytest.raises(ValueError, match=r"'.*empty\.csv' has no epoch rows"):
        plots.plot_learning_curves(tmp_path / "empty.csv", out)
    with pytest.raises(ValueError, match=r"'.*empty\.jsonl' has no epoch rows"):
        plots.plot_learning_curves(tmp_path / "empty.jsonl", out)
    with pytest.raises(ValueError, match=r"line 2 of the log '.*broken\.jsonl' is not JSON"):
        plots.plot_learning_curves(tmp_path / "broken.jsonl", out)
    with pytest.raises(ValueError, match=r"expected a \.csv or a JSON-lines"):
        plots.plot_learning_curves(tmp_path / "log.txt", out)
    with pytest.raises(ValueError, match=r"column 'loss' of the log holds 'n/a' in row 1, which is not a number"):
        plots.plot_learning_curves([{"loss": 1.0}, {"loss": "n/a"}], out)
    with pytest.raises(ValueError, match=r"gives 'epoch' in some rows but not in row 1"):
        plots.plot_learning_curves([{"epoch": 1, "loss": 1.0}, {"loss": 0.9}], out)
    with pytest.raises(ValueError, match=r"has none of the columns 'loss', .*'silent'; it has \['epoch', 'lr'\]"):
        plots.plot_learning_curves([{"epoch": 1, "lr": 0.1}], out)
    with pytest.raises(TypeError, match="one dict per epoch"):
        plots.plot_learning_curves({"loss": [1.0, 0.9]}, out)
    with pytest.raises(TypeError, match="row 1 of the log is a list"):
        plots.plot_learning_curves([{"loss": 1.0}, [0.9]], out)
    with pytest.raises(ValueError, match=r"must end in '\.png'"):
        plots.plot_learning_curves(LOG, tmp_path / "curves.pdf")
    assert not out.exists(), "a plot was written for bad input"


# ------------------------------------------------------------------------------------------------------ rasters


def test_raster_has_one_panel_per_population_in_order(tmp_path, saved):
    spikes = {
        "input": (np.array([1.0, 2.5, 3.0]), np.array([0, 3, 1])),
        "hidden": (np.array([4.0, 6.0]), np.array([2, 2])),
        "output": (np.array([]), np.array([], dtype=int)),
    }
    out = plots.plot_raster(spikes, tmp_path / "sub" / "raster.png", title="sample 0")
    read_png(out, (8.0, 0.6 + 3 * 1.8 + 0.3))
    (fig,) = saved
    assert [ax.get_ylabel().split("\n")[0] for ax in fig.axes] == ["input", "hidden", "output"]
    for ax, (times, units) in zip(fig.axes, spikes.values()):
        ((x, y),) = lines_of(ax).values()
        np.testing.assert_array_equal(x, times)
        np.testing.assert_array_equal(y, units)
    assert [t.get_text() for t in fig.axes[2].texts] == ["no spikes"]
    assert fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[2]), "time axes are not shared"
    one = plots.plot_raster({"hidden": spikes["hidden"]}, tmp_path / "one.png", duration=30.0)
    read_png(one, (8.0, 0.6 + 1.8))
    low, high = saved[1].axes[0].get_xlim()
    assert low <= 0.0 and 30.0 <= high <= 31.0, "the time axis spans the whole trial, not only the spikes"
    with pytest.raises(ValueError, match="duration must be a positive number of ms, got -1"):
        plots.plot_raster(spikes, tmp_path / "r.png", duration=-1)


@pytest.mark.parametrize("spikes, message", [
    ({}, "non-empty dict"),
    ({"h": ([1.0, 2.0], [0])}, r"spikes\['h'\]: times and units must have the same length .* 2 times and 1 units"),
    ({"h": (np.zeros((2, 2)), np.zeros((2, 2)))}, r"spikes\['h'\]: times and units must be 1-D"),
    ({"h": ([1.0], [0], [0])}, r"spikes\['h'\] must be a pair \(times, units\)"),
    ({"h": np.array([1.0, 2.0])}, r"spikes\['h'\] must be a pair"),
    ({"h": ([1.0], [-1])}, r"spikes\['h'\]: units must be neuron indices"),
    ({"h": ([1.0], [0.5])}, r"spikes\['h'\]: units must be neuron indices"),
    ({"h": ([np.nan], [0])}, r"spikes\['h'\]: times must be finite"),
])
def test_bad_spikes_are_refused_naming_the_population(tmp_path, spikes, message):
    with pytest.raises(ValueError, match=message):
        plots.plot_raster(spikes, tmp_path / "r.png")
    assert not (tmp_path / "r.png").exists()


# ------------------------------------------------------------------------------------------------------- traces


def test_traces_draw_each_neuron_and_the_threshold(tmp_path, saved):
    times = np.linspace(0.0, 20.0, 201)
    values = np.stack([np.sin(times / (k + 2)) for k in range(3)], axis=1)
    out = plots.plot_traces(times, values, tmp_path / "v.png", labels=["a", "b", "c"], threshold=0.8, title="v")
    read_png(out, (8.0, 4.0))
    (fig,) = saved
    (ax,) = fig.axes
    lines = lines_of(ax)
    assert list(lines) == ["a", "b", "c", "threshold"]
    for j, name in enumerate("abc"):
        np.testing.assert_array_equal(lines[name][0], times)
        np.testing.assert_array_equal(lines[name][1], values[:, j])
    np.testing.assert_array_equal(lines["threshold"][1], [0.8, 0.8])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c", "threshold"]
    assert ax.get_title() == "v"


def test_traces_drop_at_the_exact_spike_times_and_mark_them(tmp_path, saved):
    """Each spike's values just before and after it are drawn at its time, between the grid points, and
    marked; the legend names the neurons, then the spike marker and the threshold."""
    times = np.arange(0.0, 10.0, 0.5)
    values = np.stack([np.minimum(times / 4.0, 0.95), np.full_like(times, 0.2)], axis=1)
    spikes = ([2.2, 7.3, 4.1], [0, 0, 1], [1.0, 1.0, 1.0], [0.0, 0.1, 0.0])
    plots.plot_traces(times, values, tmp_path / "v.png", labels=["class 0", "class 1"], threshold=1.0,
                      spikes=spikes, duration=10.0)
    (ax,) = saved[0].axes
    lines = ax.get_lines()
    x, y = (np.asarray(a, float) for a in (lines[0].get_xdata(), lines[0].get_ydata()))
    assert len(x) == len(times) + 4 and np.all(np.diff(x) >= 0)
    at = np.flatnonzero(x == 2.2)
    np.testing.assert_array_equal(y[at], [1.0, 0.0])
    np.testing.assert_array_equal(y[np.flatnonzero(x == 7.3)], [1.0, 0.1])
    np.testing.assert_array_equal(x[at[0] - 1:at[1] + 2], [2.0, 2.2, 2.2, 2.5])
    markers = [line for line in lines if line.get_marker() == "o"]
    np.testing.assert_array_equal(markers[0].get_xdata(), [2.2, 7.3])
    np.testing.assert_array_equal(markers[1].get_xdata(), [4.1])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1", "spike", "threshold"]
    assert ax.get_xlim() == (0.0, 10.0)
    with pytest.raises(ValueError, match=r"spikes must be \(times, units, before, after\)"):
        plots.plot_traces(times, values, tmp_path / "t.png", spikes=spikes[:2])
    with pytest.raises(ValueError, match="unit 2 has no column in values"):
        plots.plot_traces(times, values, tmp_path / "t.png", spikes=([1.0], [2], [1.0], [0.0]))
    with pytest.raises(ValueError, match=r"one value per spike \(3\), got 2 and 3"):
        plots.plot_traces(times, values, tmp_path / "t.png", spikes=(*spikes[:2], [1.0, 1.0], spikes[3]))


def test_traces_of_many_neurons_show_the_first_ten_and_say_so(tmp_path, saved):
    times = np.arange(50.0)
    values = np.arange(50.0)[:, None] * np.arange(1, 13)[None, :]
    plots.plot_traces(times, values, tmp_path / "many.png", title="hidden")
    plots.plot_traces(times, values, tmp_path / "many_untitled.png")
    (ax,), (ax_untitled,) = saved[0].axes, saved[1].axes
    drawn = [line.get_ydata() for line in ax.get_lines()]
    assert len(drawn) == plots.MAX_TRACES == 10
    np.testing.assert_array_equal(drawn[-1], values[:, 9])
    assert ax.get_title() == "hidden (first 10 of 12 neurons)"
    assert ax_untitled.get_title() == "first 10 of 12 neurons"


@pytest.mark.parametrize("times, values, kwargs, message", [
    (np.arange(5.0), np.zeros(5), {}, r"values must be 2-D \(T, n\).*got shape \(5,\)"),
    (np.arange(5.0), np.zeros((5, 2, 1)), {}, r"values must be 2-D"),
    (np.zeros((5, 1)), np.zeros((5, 2)), {}, r"times must be 1-D \(T,\), got shape \(5, 1\)"),
    (np.arange(5.0), np.zeros((4, 2)), {}, r"values has 4 rows but times has 5 entries.*one row per time$"),
    (np.arange(5.0), np.zeros((2, 5)), {}, r"values has 2 rows but times has 5 entries.*did you mean values\.T\?"),
    (np.arange(5.0), np.zeros((5, 0)), {}, "values has no columns"),
    (np.arange(5.0), np.zeros((5, 2)), {"labels": ["a"]}, r"one name per neuron .* 2 in all; got 1 labels"),
    (np.arange(5.0), np.zeros((5, 2)), {"labels": "ab"}, "got a single string"),
    (np.arange(5.0), np.zeros((5, 2)), {"threshold": float("nan")}, "threshold must be a finite number, got nan"),
    (np.arange(5.0), np.zeros((5, 2)), {"threshold": "1.0"}, "threshold must be a finite number, got '1.0'"),
])
def test_bad_traces_are_refused_with_the_shapes(tmp_path, times, values, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plots.plot_traces(times, values, tmp_path / "t.png", **kwargs)
    assert not (tmp_path / "t.png").exists()


def test_without_matplotlib_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # what `import` sees when it is not installed
    with pytest.raises(ImportError, match=r'plots need matplotlib: pip install "eventgrad\[plot\]"'):
        plots.plot_traces(np.arange(3.0), np.zeros((3, 1)), tmp_path / "t.png")
