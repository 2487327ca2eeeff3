"""Which names each expression of a model may use, with errors that say why a name is refused."""

import difflib
from dataclasses import dataclass

import sympy

from .errors import ModelError
from .expressions import free_names, parse_expression
from .identifiers import ADJOINT_PREFIX, name_problem


@dataclass(frozen=True)
class Scope:
    """The own names of one model, and its kind ("neuron" or "synapse") for messages."""

    kind: str
    variables: tuple[str, ...]
    params: tuple[str, ...]

    def own(self, name: str) -> bool:
        return name in self.variables or name in self.params


@dataclass(frozen=True)
class Field:
    """One expression of a model: how to describe it, its text and its parsed form."""

    description: str  # "the threshold 'v - v_th'", "the ODE dv/dt = '-v / tau'"
    text: str
    expr: sympy.Expr


def parse_field(value, scope: Scope, *, role: str, variable: str | None = None) -> Field:
    """Parse one expression of a model; ``role`` is "ode", "reset", "threshold" or "inject"."""
    where = {
        "ode": f"the ODE of '{variable}' of this {scope.kind}",
        "reset": f"the reset of '{variable}' of this {scope.kind}",
        "threshold": f"the threshold of this {scope.kind}",
        "inject": f"the injected current of this {scope.kind}",
    }[role]
    expr = parse_expression(value, where=where, allow_comparison=role == "threshold")
    text = value.strip() if isinstance(value, str) else str(value)
    description = {
        "ode": f"the ODE d{variable}/dt = '{text}'",
        "reset": f"the reset of '{variable}' to '{text}'",
        "threshold": f"the threshold '{text}'",
        "inject": f"the injected current '{text}'",
    }[role]
    return Field(description, text, expr)


def check_names(field: Field, scope: Scope, *, allowed: frozenset[str] = frozenset()) -> None:
    """Raise ModelError for the first name of ``field`` that is not own, nor in ``allowed``."""
    for name in sorted(free_names(field.expr)):
        if not (scope.own(name) or name in allowed):
            raise ModelError(refused_message(field, scope, name))


def external_names(field: Field, scope: Scope, *, allowed: frozenset[str]) -> frozenset[str]:
    """Names of ``field`` left for another model to provide (a synapse's postsynaptic variables).

    Reserved names and names no variable could have are refused here, with the reason.
    """
    external = set()
    for name in sorted(free_names(field.expr)):
        if scope.own(name) or name in allowed:
            continue
        if _special_reason(name, scope.kind) is not None or name_problem(name) is not None:
            raise ModelError(refused_message(field, scope, name))
        external.add(name)
    return frozenset(external)


def refused_message(field: Field, scope: Scope, name: str) -> str:
    """'<field> refers to '<name>', <why it may not>'."""
    reason = _special_reason(name, scope.kind)
    if reason is None:
        reason = f"which is neither a variable nor a parameter of this {scope.kind}"
        candidates = [*scope.variables, *scope.params, "Isyn" if scope.kind == "neuron" else "weight"]
        close = difflib.get_close_matches(name, candidates, n=1)
        if close:
            reason += f"; did you mean '{close[0]}'?"
    return f"{field.description} refers to '{name}', {reason}"


def _special_reason(name: str, kind: str) -> str | None:
    """Why a reserved name is refused, or None for an ordinary name."""
    if name in ("t", "dt"):
        return "but time-dependent (explicit t) models are not supported yet"
    if name.startswith(ADJOINT_PREFIX):
        return "a name kept for adjoint variables"
    if name == "Isyn" and kind == "synapse":
        return "which only neurons have: a synapse makes Isyn through its injected current"
    if name == "weight" and kind == "neuron":
        return "which only synapses have"
    if name == "weight":
        return (
            "which a synapse may use only in resets (the jump when a presynaptic spike arrives), "
            "or in the injected current of a synapse without variables"
        )
    return None
