"""Numeric values of a model: parameters, initial values of variables, and the trainable list."""

import numbers

import numpy as np

from .errors import ModelError
from .identifiers import check_parameter_name


def to_value(value, what: str) -> float | np.ndarray:
    """A finite Python float, or a read-only 1-D float64 copy of an array (one value per neuron).

    ``what`` names the value in errors ("the parameter 'tau' of this neuron").
    """
    if isinstance(value, (bool, np.bool_)):
        raise ModelError(f"{what} is a boolean ({value}); it must be a finite number or a 1-D array")
    if isinstance(value, numbers.Real):
        number = float(value)
        if not np.isfinite(number):
            raise ModelError(f"{what} is {number}; it must be finite")
        return number
    if isinstance(value, (list, tuple, np.ndarray)):
        return _to_array(value, what)
    raise ModelError(f"{what} must be a finite number or a 1-D array of them, not {type(value).__name__}")


def _to_array(value, what: str) -> float | np.ndarray:
    """The array branch of to_value."""
    raw = np.asarray(value)
    if raw.dtype.kind not in "iuf":
        raise ModelError(f"{what} must hold real numbers, not values of dtype {raw.dtype}")
    array = np.array(raw, dtype=np.float64)
    if array.ndim == 0:
        return to_value(float(array), what)
    if array.ndim != 1 or array.size == 0:
        raise ModelError(f"{what} must be a number or a non-empty 1-D array, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ModelError(f"{what} holds {array[bad[0]]} at index {bad[0]}; every value must be finite")
    array.flags.writeable = False
    return array


def read_params(param_vals, owner: str, variable_names: tuple[str, ...]) -> dict[str, float | np.ndarray]:
    """Check parameter names and values; keep their order."""
    if param_vals is None:
        return {}
    if not isinstance(param_vals, dict):
        raise ModelError(f"param_vals of this {owner} must be a dict, not {type(param_vals).__name__}")
    params = {}
    for name, value in param_vals.items():
        check_parameter_name(name, owner)
        if name in variable_names:
            raise ModelError(f"'{name}' is both a variable and a parameter of this {owner}")
        params[name] = to_value(value, f"the parameter '{name}' of this {owner}")
    return params


def read_initials(var_vals, owner: str, variable_names: tuple[str, ...]) -> dict[str, float | np.ndarray]:
    """Initial value of every variable: from ``var_vals``, else 0.0."""
    var_vals = {} if var_vals is None else var_vals
    if not isinstance(var_vals, dict):
        raise ModelError(f"var_vals of this {owner} must be a dict, not {type(var_vals).__name__}")
    for name in var_vals:
        if name not in variable_names:
            known = ", ".join(variable_names) or "none"
            raise ModelError(
                f"var_vals gives a value for '{name}', which is not a variable of this {owner} "
                f"(its variables: {known})"
            )
    return {
        name: to_value(var_vals.get(name, 0.0), f"the initial value of '{name}' of this {owner}")
        for name in variable_names
    }


def read_trainable(trainable, owner: str, params: dict) -> tuple[str, ...]:
    """The trainable parameter names, each a parameter of this model and listed once."""
    if isinstance(trainable, str) or not isinstance(trainable, (tuple, list)):
        raise ModelError(
            f"trainable of this {owner} must be a tuple or list of parameter names, not {trainable!r}"
        )
    for index, name in enumerate(trainable):
        if name not in params:
            known = ", ".join(params) or "none"
            raise ModelError(
                f"trainable names '{name}', which is not a parameter of this {owner} "
                f"(its parameters: {known})"
            )
        if name in trainable[:index]:
            raise ModelError(f"trainable lists '{name}' twice")
    return tuple(trainable)
