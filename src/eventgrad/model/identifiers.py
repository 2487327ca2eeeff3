"""Identifier rules for model variables and parameters, kept in one place."""

import keyword

from .errors import ModelError
from .expressions import ALLOWED_FUNCTIONS

# the symbols the adjoint derivation brings into a model's jump (adjoint/derive.py) are reserved too: a
# parameter of that name would be the same sympy symbol, and the generated code would not compile
INTERNAL_SYMBOLS = {
    "threshold_rate": "the rate of the threshold function at a spike (in the adjoint jump)",
    "dloss_dspike_time": "the loss's derivative by a spike time (in the adjoint jump)",
    "target_shift_sum": "the sum over a spike's targets in the adjoint jump",
}
RESERVED_NAMES = frozenset({"t", "dt", "Isyn", "weight", *INTERNAL_SYMBOLS})

# Prefix of the adjoint variables (lambda_v is dL/dv), which the adjoint derivation creates.
ADJOINT_PREFIX = "lambda_"

_RESERVED_WHY = {
    "t": "time",
    "dt": "the time step",
    "Isyn": "the summed synaptic input of a neuron",
    "weight": "the synaptic weight",
    **INTERNAL_SYMBOLS,
}


def name_problem(name) -> str | None:
    """Why ``name`` cannot name a variable or parameter, or None when it can."""
    if not isinstance(name, str):
        return f"is not a string ({type(name).__name__})"
    if not (name.isascii() and name.isidentifier()):
        return "is not a valid name (ASCII letters, digits and '_', not starting with a digit)"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name.startswith("_"):
        return "starts with '_', which is kept for internal names"
    if name.startswith(ADJOINT_PREFIX):
        return f"starts with '{ADJOINT_PREFIX}', which is kept for adjoint variables"
    if name in RESERVED_NAMES:
        return f"is reserved for {_RESERVED_WHY[name]}"
    if name in ALLOWED_FUNCTIONS:
        return "is the name of a function"
    return None


def _quote(name) -> str:
    return f"'{name}'" if isinstance(name, str) else repr(name)


def check_variable_name(name, owner: str) -> None:
    """Raise ModelError unless ``name`` may name a state variable of ``owner`` ("neuron", "synapse")."""
    problem = name_problem(name)
    if problem is not None:
        raise ModelError(f"the variable name {_quote(name)} of this {owner} {problem}")


def check_parameter_name(name, owner: str) -> None:
    """Raise ModelError unless ``name`` may name a parameter of ``owner`` ("neuron", "synapse")."""
    problem = name_problem(name)
    if problem is not None:
        raise ModelError(f"the parameter name {_quote(name)} of this {owner} {problem}")
