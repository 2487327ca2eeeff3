"""Checkpoints: every parameter and the optimiser's state in one .npz file, written atomically.

The file is written to a temporary name in the same folder, flushed to disk, then renamed over the
target (``os.replace`` is atomic on POSIX and Windows): an interrupted run leaves the previous
checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "eventgrad-checkpoint-1"


def _flatten_optimizer(state: dict) -> tuple[dict, dict]:
    scalars, arrays = {}, {}
    for name, value in state.items():
        if isinstance(value, dict):
            for key, arr in value.items():
                arrays[f"opt/{name}/{key}"] = np.asarray(arr)
        else:
            scalars[name] = value
    return scalars, arrays


def save_checkpoint(path, params: dict, optimizer=None, meta: dict | None = None, extra: dict | None = None) -> str:
    """Write ``params`` (and ``optimizer.state_dict()``, JSON-able ``meta`` and named ``extra`` arrays, such
    as a trainer's best parameters) to ``path`` atomically."""
    path = os.fspath(path)
    arrays = {f"param/{k}": np.asarray(v) for k, v in params.items()}
    arrays.update({f"extra/{k}": np.asarray(v) for k, v in (extra or {}).items()})
    header = {"format": FORMAT, "meta": meta or {}, "optimizer": None}
    if optimizer is not None:
        scalars, opt_arrays = _flatten_optimizer(optimizer.state_dict())
        header["optimizer"] = {"class": type(optimizer).__name__, **scalars}
        arrays.update(opt_arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _read(path: str):
    """(header, parameters, optimiser arrays, extra arrays) of a checkpoint file."""
    with np.load(path, allow_pickle=False) as data:
        if "header" not in data.files:
            raise ValueError(f"{path} is not an eventgrad checkpoint (no header)")
        header = json.loads(bytes(data["header"]).decode())
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            found = header.get("format") if isinstance(header, dict) else header
            raise ValueError(f"{path} has checkpoint format {found!r}; expected {FORMAT!r}")
        stored = {k[len("param/"):]: data[k] for k in data.files if k.startswith("param/")}
        opt_arrays = {k: data[k] for k in data.files if k.startswith("opt/")}
        named = {k[len("extra/"):]: data[k] for k in data.files if k.startswith("extra/")}
    return header, stored, opt_arrays, named


def load_checkpoint(path, params: dict | None = None, optimizer=None) -> dict:
    """Read a checkpoint; copy its values into ``params`` and ``optimizer`` if given (shapes must match).

    Returns {"params": {...}, "meta": {...}, "extra": {...}}.
    """
    path = os.fspath(path)
    try:
        header, stored, opt_arrays, named = _read(path)
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as err:  # JSONDecodeError, UnicodeDecodeError too
        if isinstance(err, ValueError) and str(err).startswith(path):  # _read's own, which names the file
            raise
        raise ValueError(f"{path} is not a readable checkpoint (damaged or not an .npz file: "
                         f"{type(err).__name__}: {err})") from err
    opt = header.get("optimizer")
    if optimizer is not None and (opt is None or opt["class"] != type(optimizer).__name__):
        raise ValueError(f"{path} holds no {type(optimizer).__name__} state (found {opt and opt['class']})")
    if params is not None:
        missing = sorted(set(params) - set(stored))
        extra = sorted(set(stored) - set(params))
        if missing or extra:
            raise ValueError(f"{path} does not fit these parameters: missing {missing}, unexpected {extra}")
        for key, value in stored.items():
            if params[key].shape != value.shape:
                raise ValueError(f"{path}: '{key}' has shape {value.shape}, the parameter has {params[key].shape}")
        for key, value in stored.items():
            params[key][...] = value
    if optimizer is not None:  # checked above, before any parameter changed
        state = {k: v for k, v in opt.items() if k != "class"}
        for name, arr in opt_arrays.items():
            _, buffer, key = name.split("/", 2)
            state.setdefault(buffer, {})[key] = arr
        try:
            optimizer.load_state_dict(state)
        except (ValueError, TypeError, KeyError) as err:
            raise ValueError(f"{path}: {err}") from err
    return {"params": stored, "meta": header["meta"], "extra": named}
