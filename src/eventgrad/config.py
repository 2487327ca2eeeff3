"""Run configurations: one nested table that describes data, model, simulation and training.

A configuration file (TOML, JSON, or YAML with PyYAML installed) overrides the defaults below, which are
the built-in Yin-Yang task. Every key is checked against the defaults before anything runs: an unknown
key is refused with the list of known ones, so a typo never silently falls back to a default. The
resolved configuration is saved beside the results, and ``eventgrad train that/config.json`` repeats
the run.
"""

from __future__ import annotations

import copy
import json
import os


class ConfigError(ValueError):
    """A configuration that cannot describe a run (unknown key, wrong type, unreadable file)."""


DEFAULTS: dict = {
    "seed": 0,
    "data": {
        "name": "yinyang",  # yinyang | shd | ssc | fsdd | mnist
        "path": "",  # shd, ssc: the HDF5 file of the training set; fsdd: fsdd.npz or its folder ("": $EVENTGRAD_FSDD)
        "test_path": "",  # shd, ssc: the HDF5 file of the test set
        "validation_path": "",  # shd, ssc: an HDF5 file of validation samples (SSC ships one); "": a split
        "train_size": 5000,  # yinyang: the reference sizes and seeds (train 42, validation 41, test 40)
        "validation_size": 1000,
        "test_size": 1000,
        "validation_split": 0.1,  # shd, mnist: the part of the training set held out for validation
        "max_samples": 0,  # shd, mnist: use only the first N samples of each file (0: all)
        "validation_speakers": 0,  # shd, ssc, fsdd: hold out this many whole speakers for validation instead
        "split": "takes",  # fsdd: takes (takes 0-4 are the test set) | speakers (test_speakers are)
        "test_speakers": [],  # fsdd, split = "speakers": the speakers of the test set
        "takes": [],  # fsdd: use only these takes (0-49; []: all)
        "audio": {  # fsdd: the front end (eventgrad.data.audio.audio_to_spikes)
            "n_channels": 64,
            "f_min": 100.0,
            "f_max": 0.0,  # 0: 90 % of the Nyquist frequency
            "scale": "erb",  # erb | mel | linear
            "compression": 0.3,
            "threshold": 2.0,
        },
        "augment": {  # training set, redrawn every epoch (eventgrad.data.augment.Augment)
            "shift": 0,  # channels, uniform integer in [-shift, shift]
            "shift_sd": 0.0,  # channels, Gaussian
            "blend": 0.0,  # fraction of same-class blends added
            "stretch": 1.0,  # max time-stretch factor (1: none)
            "jitter": 0.0,  # ms, Gaussian
        },
        "delay_lines": {"copies": 1, "spacing": 0.0},  # every set: copies of the input, spacing ms apart
    },
    "encoding": {
        "kind": "latency",  # yinyang: latency; mnist: latency | threshold_latency
        "t_min": 0.0,
        "t_max": 15.0,
        "bias_time": 0.0,  # a bias unit spiking at this time; a negative value means none
    },
    "model": {
        "hidden": [100],  # sizes of the hidden layers, in order
        "recurrent": False,  # recurrent connections within each hidden layer
        "recurrent_delay": 0.0,  # ms, of the recurrent connections (0: none; >= dt: the step-parallel kernels)
        "learn_recurrent_delay": False,  # learn the recurrent delays (one per synapse, from recurrent_delay)
        "input_delay": 0.0,  # ms: each input synapse gets a delay uniform in [0, input_delay] (0: none)
        "learn_input_delay": False,  # learn the input delays
        "neuron": "LIF",  # a built-in name from eventgrad.neurons, or a table of UserNeuron arguments
        "neuron_params": {"tau_mem": 20.0},
        "output_neuron": "LI",
        "output_params": {"tau_mem": 20.0},
        "synapse": "Exponential",  # a built-in name from eventgrad.synapses, or a table of UserSynapse arguments
        "synapse_params": {"tau": 5.0},
        "trainable": [],  # hidden neuron parameters to learn, e.g. ["tau_mem"]
        "output_trainable": [],  # output neuron parameters to learn
        "input_weight": [2.0, 1.5],  # mean and standard deviation of the first layer's weights
        "hidden_weight": [0.0, 1.0],  # of later layers, the std divided by sqrt(fan-in)
        "recurrent_weight": [0.0, 1.0],  # of recurrent connections, the std divided by sqrt(layer size)
        "output_weight": [0.0, 3.0],  # of the output layer, the std divided by sqrt(fan-in)
    },
    "simulation": {
        "dt": 1.0,
        "duration": 30.0,
        "dtype": "float32",
        "method": "eventprop",  # eventprop | bptt
        "surrogate": "fast_sigmoid",  # bptt only
        "readout": "mean",  # mean | sum | exp_mean | max | first_spike | spike_count
        "tau0": 5.0,  # first_spike: logits are -t / tau0
        "threads": 0,  # 0: all cores
        "kernels": "auto",  # eventprop: auto | step | generic (see eventgrad.Simulator)
        "excursions": "exact",  # eventprop, fast kernels: exact | step_end
        "max_events": 2**24,  # eventprop: the most inputs and spikes one sample's log may hold
        "max_spikes_per_step": 0,  # eventprop: the most spikes in one step of dt (0: 64 per spiking neuron)
    },
    "training": {
        "epochs": 25,
        "batch_size": 32,
        "optimizer": "adam",  # adam | sgd
        "lr": 2e-2,
        "momentum": 0.0,  # sgd
        "schedule": {"kind": "cosine", "floor": 0.02},  # a cosine without "epochs" spans the whole run
        "lr_scale": {},  # {glob pattern: factor}, e.g. {"*.tau_*" = 0.1}
        "bounds": {},  # {glob pattern: [low, high]}; use a very large number for no upper limit
        "clip_norm": 0.0,  # 0: no clipping
        "restore_best": True,
        "early_stopping": 0,  # patience in epochs (0: off), on the validation accuracy
        "workers": 1,  # > 1: each batch's gradient on this many Ray workers (pip install 'eventgrad[ray]')
        "ray_address": "",  # the Ray cluster for workers > 1 ("": a local one, or the one this process started)
    },
    "regularizer": {
        "nu_upper": 1e9,
        "lambda_upper": 0.0,
        "nu_lower": 0.0,
        "lambda_lower": 0.0,
        "silent_push": 0.1,
    },
    "output": {
        "dir": "",  # where the log, the checkpoints and the resolved configuration go ("" : nowhere)
        "progress": True,
    },
}

FREE_TABLES = {("model", "neuron_params"), ("model", "output_params"), ("model", "synapse_params"),
               ("training", "schedule"), ("training", "lr_scale"), ("training", "bounds")}
FREE_OR_NAME = {("model", "neuron"), ("model", "output_neuron"), ("model", "synapse")}


def _merge(base: dict, override: dict, path: tuple = ()) -> dict:
    out = copy.deepcopy(base)
    if not isinstance(override, dict):
        raise ConfigError(f"'{'.'.join(path) or 'the configuration'}' must be a table, got {override!r}")
    for key, value in override.items():
        here = path + (key,)
        name = ".".join(here)
        if key not in base:
            raise ConfigError(f"unknown configuration key '{name}'; known keys here: {sorted(base)}")
        default = base[key]
        if here in FREE_TABLES or (here in FREE_OR_NAME and isinstance(value, dict)):
            if not isinstance(value, dict):
                raise ConfigError(f"'{name}' must be a table, got {value!r}")
            out[key] = copy.deepcopy(value)
        elif isinstance(default, dict):
            out[key] = _merge(default, value, here)
        else:
            out[key] = _check_type(name, default, value)
    return out


def _check_type(name: str, default, value):
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, list):
        ok = isinstance(value, list)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"'{name}' must be {type(default).__name__} like the default {default!r}, got {value!r}")
    return value


def resolve(override: dict | None = None) -> dict:
    """The defaults with ``override`` merged in, every key and type checked."""
    check_shape(override or {}, "the configuration")
    return _merge(DEFAULTS, override or {})


MAX_CONFIG_BYTES = 1 << 20  # a configuration file larger than this is refused unread
MAX_CONFIG_DEPTH = 32  # tables and lists nested deeper than this are refused
MAX_CONFIG_ITEMS = 100_000  # values in all, counting a value reached twice (a YAML alias) twice


def check_shape(config, where: str) -> None:
    """Refuse a configuration nested deeper than MAX_CONFIG_DEPTH or with more than MAX_CONFIG_ITEMS values.
    Iterative (no recursion), and it stops at the limit: a structure whose parts are shared many times over (a
    "billion laughs") is refused after MAX_CONFIG_ITEMS steps, never expanded."""
    stack = [(config, 1)]
    items = 0
    while stack:
        node, depth = stack.pop()
        items += 1
        if items > MAX_CONFIG_ITEMS:
            raise ConfigError(f"{where} holds more than {MAX_CONFIG_ITEMS} values; a configuration is a few dozen")
        if isinstance(node, (dict, list)):
            if depth > MAX_CONFIG_DEPTH:
                raise ConfigError(f"{where} is nested more than {MAX_CONFIG_DEPTH} levels deep")
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))


def read_config(path) -> dict:
    """Read a TOML, JSON or YAML file into a dict (not yet resolved)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"configuration file '{path}' does not exist")
    ext = os.path.splitext(path)[1].lower()
    size = os.path.getsize(path)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"configuration file '{path}' has {size} bytes, more than {MAX_CONFIG_BYTES}; a "
                          "configuration is a few kilobytes")
    config = _parse(path, ext)
    check_shape(config, f"configuration file '{path}'")
    return config


def _parse(path: str, ext: str):
    """The file's contents as Python objects; any reading or syntax error is a ConfigError naming the file."""
    try:
        if ext == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            with open(path, "rb") as f:
                return tomllib.load(f)
        if ext == ".json":
            with open(path) as f:
                return json.load(f)
        if ext in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as err:
                raise ConfigError("YAML configurations need PyYAML: pip install pyyaml (or use TOML)") from err
            with open(path) as f:
                return yaml.load(f, Loader=_loader_without_aliases(yaml)) or {}
    except RecursionError as err:
        raise ConfigError(f"cannot read '{path}': it is nested too deeply") from err
    except ConfigError as err:
        raise ConfigError(f"'{path}': {err}") from err
    except Exception as err:  # ValueError, OSError, yaml.YAMLError, UnicodeDecodeError: one line naming the file
        raise ConfigError(f"cannot read '{path}': {type(err).__name__}: {' '.join(str(err).split())}") from err
    raise ConfigError(f"'{path}': unknown configuration format '{ext}'; use .toml, .json, .yaml or .yml")


RECIPES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes")


def recipes() -> dict[str, str]:
    """{name: one-line description} of the recipes shipped with the package (``eventgrad recipes``)."""
    out = {}
    for file in sorted(os.listdir(RECIPES_DIR)):
        if file.endswith(".toml"):
            with open(os.path.join(RECIPES_DIR, file)) as f:
                first = f.readline().strip()
            out[file[:-len(".toml")]] = first.lstrip("# ")
    return out


def recipe_path(name: str) -> str:
    """The file of the shipped recipe ``name`` (see :func:`recipes`)."""
    known = recipes()
    if name not in known:
        raise ConfigError(f"no recipe '{name}'; shipped recipes: {', '.join(known)} (eventgrad recipes lists them)")
    return os.path.join(RECIPES_DIR, f"{name}.toml")


def set_value(config: dict, assignment: str) -> dict:
    """Apply one ``section.key=value`` override from the command line (value parsed as JSON if it can be)."""
    if "=" not in assignment:
        raise ConfigError(f"--set takes section.key=value, got '{assignment}'")
    dotted, text = assignment.split("=", 1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    keys = dotted.strip().split(".")
    patch: dict = {}
    node = patch
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return _deep_update(config, patch)


def _deep_update(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = value
    return out


def _loader_without_aliases(yaml):
    """PyYAML's safe loader, refusing aliases (``*name``): a configuration never needs them, and nested ones
    expand exponentially (a 600-byte file became 3 GB)."""

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                mark = self.peek_event().start_mark
                raise ConfigError(f"YAML aliases ('*{self.peek_event().anchor}', line {mark.line + 1}) are not "
                                  "allowed in a configuration; write the value out")
            return super().compose_node(parent, index)

    return Loader
