"""User-defined neuron and synapse models, converted once into typed, validated objects.

The constructors take the mlGeNN-style call (``vars={"v": (ode, reset)}``, strings for expressions) and
turn it into frozen ``StateVar`` records of sympy expressions; everything after this layer works on those.
"""

from dataclasses import dataclass

import numpy as np
import sympy

from .errors import ModelError
from .expressions import free_names
from .identifiers import check_variable_name
from .references import Scope, check_names, external_names, parse_field
from .values import read_initials, read_params, read_trainable

_ISYN = frozenset({"Isyn"})
_WEIGHT = frozenset({"weight"})


@dataclass(frozen=True, eq=False)
class StateVar:
    """One state variable: its ODE between events, its value right after an event, its initial value.

    For a neuron the event is a spike of that neuron; for a synapse, the arrival of a presynaptic
    spike. ``ode`` None means dx/dt = 0 between events; ``reset`` None means the event leaves x alone.
    """

    name: str
    ode: sympy.Expr | None
    reset: sympy.Expr | None
    initial: float | np.ndarray
    ode_text: str | None
    reset_text: str | None

    def _key(self) -> tuple:
        return (self.name, self.ode, self.reset, self.ode_text, self.reset_text)

    def __eq__(self, other) -> bool:
        # Written out because the dataclass one would compare arrays elementwise.
        if not isinstance(other, StateVar):
            return NotImplemented
        return self._key() == other._key() and _same_value(self.initial, other.initial)

    def __hash__(self) -> int:
        return hash(self._key())


def _same_value(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


def _read_vars(vars, owner: str) -> tuple[str, ...]:
    """Check the shape of ``vars`` and its names; return the names in order."""
    if not isinstance(vars, dict):
        raise ModelError(
            f"vars of this {owner} must be a dict mapping each variable name to (ODE, reset), "
            f"not {type(vars).__name__}"
        )
    for name, entry in vars.items():
        check_variable_name(name, owner)
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise ModelError(
                f"vars['{name}'] of this {owner} must be a pair (ODE, reset), "
                f"e.g. ('-{name} / tau', None), not {entry!r}"
            )
    return tuple(vars)


def _build_variables(vars: dict, scope: Scope, initials: dict, *, ode_allowed, reset_allowed):
    """Parse and check the ODE and reset of every variable, in the order of ``vars``."""
    variables = []
    for name, (ode_value, reset_value) in vars.items():
        ode = reset = None
        if ode_value is not None:
            ode = parse_field(ode_value, scope, role="ode", variable=name)
            check_names(ode, scope, allowed=ode_allowed)
        if reset_value is not None:
            reset = parse_field(reset_value, scope, role="reset", variable=name)
            check_names(reset, scope, allowed=reset_allowed)
        variables.append(
            StateVar(
                name=name,
                ode=ode.expr if ode else None,
                reset=reset.expr if reset else None,
                initial=initials[name],
                ode_text=ode.text if ode else None,
                reset_text=reset.text if reset else None,
            )
        )
    return tuple(variables)


class _Model:
    """What neurons and synapses share: variables, parameters, the trainable list."""

    _kind = "model"

    def _read_common(self, vars, param_vals, var_vals, trainable, ode_allowed, reset_allowed) -> Scope:
        names = _read_vars(vars, self._kind)
        self._params = read_params(param_vals, self._kind, names)
        scope = Scope(self._kind, names, tuple(self._params))
        initials = read_initials(var_vals, self._kind, names)
        self._variables = _build_variables(
            vars, scope, initials, ode_allowed=ode_allowed, reset_allowed=reset_allowed
        )
        self._trainable = read_trainable(trainable, self._kind, self._params)
        return scope

    @property
    def variables(self) -> tuple[StateVar, ...]:
        return self._variables

    @property
    def params(self) -> dict[str, float | np.ndarray]:
        """A copy, in the order given; arrays are read-only."""
        return dict(self._params)

    @property
    def trainable(self) -> tuple[str, ...]:
        return self._trainable

    def variable(self, name: str) -> StateVar:
        """The state variable called ``name``."""
        for var in self._variables:
            if var.name == name:
                return var
        known = ", ".join(v.name for v in self._variables) or "none"
        raise ModelError(f"this {self._kind} has no variable '{name}' (its variables: {known})")

    def _repr_params(self) -> str:
        shown = (
            f"{name}=<{value.size} values>" if isinstance(value, np.ndarray) else f"{name}={value!r}"
            for name, value in self._params.items()
        )
        return ", ".join(shown)


class UserNeuron(_Model):
    """A neuron model written as equations: ODEs, resets after its own spikes, and a threshold.

    ``threshold`` g(x, p) fires a spike when it crosses 0 from below ("v >= v_th" becomes v - v_th);
    None makes a non-spiking neuron (a leaky integrator readout, for instance). ``Isyn`` is the sum of
    the currents injected by the synapses that target the neuron.
    """

    _kind = "neuron"

    def __init__(
        self,
        vars: dict[str, tuple[str | None, str | float | None]],
        threshold: str | None,
        output_var_name: str,
        param_vals: dict | None = None,
        var_vals: dict | None = None,
        *,
        trainable: tuple[str, ...] | list[str] = (),
    ):
        scope = self._read_common(vars, param_vals, var_vals, trainable, _ISYN, _ISYN)
        self._threshold = self._threshold_text = None
        if threshold is not None:
            field = parse_field(threshold, scope, role="threshold")
            check_names(field, scope, allowed=_ISYN)
            if not free_names(field.expr) & set(scope.variables):
                raise ModelError(
                    f"{field.description} depends on none of the variables of this neuron "
                    f"({', '.join(scope.variables)}), so it can never be crossed"
                )
            self._threshold, self._threshold_text = field.expr, field.text
        else:
            resetting = [v.name for v in self._variables if v.reset is not None]
            if resetting:
                raise ModelError(
                    f"this neuron has no threshold, so the resets of {', '.join(resetting)} would never "
                    "happen; give a threshold or set the resets to None"
                )
        if output_var_name not in scope.variables:
            raise ModelError(
                f"output_var_name '{output_var_name}' is not a variable of this neuron "
                f"(its variables: {', '.join(scope.variables) or 'none'})"
            )
        self._output_var = output_var_name

    @property
    def threshold(self) -> sympy.Expr | None:
        return self._threshold

    @property
    def threshold_text(self) -> str | None:
        return self._threshold_text

    @property
    def output_var(self) -> str:
        return self._output_var

    def __repr__(self) -> str:
        names = ", ".join(v.name for v in self._variables)
        return (
            f"UserNeuron(vars=[{names}], threshold={self._threshold_text!r}, "
            f"output_var={self._output_var!r}, params=({self._repr_params()}), trainable={self._trainable})"
        )


class UserSynapse(_Model):
    """A synapse model written as equations: ODEs, jumps when a presynaptic spike arrives, a current.

    A synapse with variables must add ``weight`` in a reset ("i + weight") and inject an expression of
    its variables. A synapse without variables is an impulse: each spike injects a Dirac delta of area
    ``inject_current`` (which must contain ``weight``) into Isyn. Names in ``inject_current`` that are not
    the synapse's own are variables of the postsynaptic neuron (a conductance synapse "g * (E_rev - v)").
    """

    _kind = "synapse"

    def __init__(
        self,
        vars: dict[str, tuple[str | None, str | float | None]],
        inject_current: str,
        param_vals: dict | None = None,
        var_vals: dict | None = None,
        *,
        trainable: tuple[str, ...] | list[str] = (),
    ):
        scope = self._read_common(vars, param_vals, var_vals, trainable, frozenset(), _WEIGHT)
        self._is_impulse = not scope.variables
        field = parse_field(inject_current, scope, role="inject")
        allowed = _WEIGHT if self._is_impulse else frozenset()
        self._external_names = external_names(field, scope, allowed=allowed)
        if self._is_impulse and "weight" not in free_names(field.expr):
            raise ModelError(
                f"the weight never reaches the postsynaptic neuron: this synapse has no variables, so "
                f"{field.description} must contain 'weight' (as in 'weight')"
            )
        if not self._is_impulse:
            _check_weight_reaches(self._variables, field)
        self._inject_current, self._inject_current_text = field.expr, field.text

    @property
    def inject_current(self) -> sympy.Expr:
        return self._inject_current

    @property
    def inject_current_text(self) -> str:
        return self._inject_current_text

    @property
    def is_impulse(self) -> bool:
        return self._is_impulse

    @property
    def external_names(self) -> frozenset[str]:
        return self._external_names

    def __repr__(self) -> str:
        names = ", ".join(v.name for v in self._variables)
        return (
            f"UserSynapse(vars=[{names}], inject_current={self._inject_current_text!r}, "
            f"params=({self._repr_params()}), trainable={self._trainable})"
        )


def _check_weight_reaches(variables: tuple[StateVar, ...], inject) -> None:
    """The weight must flow from a reset, through ODEs and resets, into the injected current."""
    changed = {v.name for v in variables if v.reset is not None and "weight" in free_names(v.reset)}
    if not changed:
        raise ModelError(
            "the weight never reaches the postsynaptic neuron: no reset of this synapse uses 'weight'; "
            "add it to a variable when a spike arrives, as in vars={'i': ('-i / tau', 'i + weight')}"
        )
    grown = True
    while grown:
        grown = False
        for var in variables:
            uses = set()
            for expr in (var.ode, var.reset):
                uses |= free_names(expr) if expr is not None else set()
            if var.name not in changed and uses & changed:
                changed.add(var.name)
                grown = True
    if not free_names(inject.expr) & changed:
        raise ModelError(
            f"the weight never reaches the postsynaptic neuron: {inject.description} depends on none of "
            f"the variables that 'weight' changes ({', '.join(sorted(changed))})"
        )
