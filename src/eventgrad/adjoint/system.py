"""The symbolic system of one population: its neuron and every synapse that targets it, as one ODE.

A population's state per neuron is the neuron's variables followed by the variables of each incoming
connection's synapse (one copy per connection, renamed ``_s<k>_<var>``), so that ``Isyn`` becomes the sum
of the synapses' injected currents and the whole thing is a plain ODE ``dx/dt = F(x, p)`` with a threshold
``g(x, p)``, a reset map ``x+ = f(x-)`` and, for each incoming connection, the jump map ``x+ = R(x-, w)``
applied when a presynaptic spike arrives.  Pure sympy: nothing here knows about code or storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy

from eventgrad.model import ModelError, UserNeuron, UserSynapse, symbol

WEIGHT = symbol("weight")
ISYN = symbol("Isyn")


@dataclass(frozen=True)
class Parameter:
    """One parameter of a population system: ``key`` is the user's name ("tau_mem" or "xh.tau")."""

    key: str
    symbol: sympy.Symbol
    value: float | np.ndarray
    trainable: bool


@dataclass(frozen=True)
class IncomingConnection:
    """The jump ``x+ = R(x-, weight)`` that a presynaptic spike of connection ``name`` causes."""

    name: str
    jump: sympy.Matrix
    synapse_slice: slice


@dataclass(frozen=True)
class PopulationSystem:
    """Everything the adjoint derivation needs to know about one population."""

    name: str
    state_names: tuple[str, ...]
    state: tuple[sympy.Symbol, ...]
    initial: tuple[float | np.ndarray, ...]
    rhs: sympy.Matrix
    threshold: sympy.Expr | None
    reset: sympy.Matrix
    params: tuple[Parameter, ...]
    incoming: tuple[IncomingConnection, ...]
    output_index: int

    @property
    def dim(self) -> int:
        return len(self.state)

    @property
    def spiking(self) -> bool:
        return self.threshold is not None

    @property
    def param_symbols(self) -> tuple[sympy.Symbol, ...]:
        return tuple(p.symbol for p in self.params)

    @property
    def trainable_params(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.params if p.trainable)

    def linear_form(self) -> tuple[sympy.Matrix, sympy.Matrix] | None:
        """(A, b) with F = A x + b when the dynamics are affine in the state, else None."""
        return self._linear_form

    @cached_property
    def _linear_form(self):
        """Computed once: building a network and every run ask for it, and sympy's simplify is slow."""
        x = sympy.Matrix(self.state)
        A = self.rhs.jacobian(x)
        if any(s in self.state for s in A.free_symbols):
            return None
        b = sympy.simplify(self.rhs - A * x)
        if any(s in self.state for s in b.free_symbols):
            return None
        return A, b


def _synapse_renaming(k: int, synapse: UserSynapse) -> dict[sympy.Symbol, sympy.Symbol]:
    names = [v.name for v in synapse.variables] + list(synapse.params)
    return {symbol(n): symbol(f"_s{k}_{n}") for n in names}


def build_population_system(
    name: str, neuron: UserNeuron, incoming: list[tuple[str, UserSynapse]]
) -> PopulationSystem:
    """Combine ``neuron`` with the synapses of its ``incoming`` (connection name, synapse) pairs."""
    neuron_syms = [symbol(v.name) for v in neuron.variables]
    state_names = [v.name for v in neuron.variables]
    state = list(neuron_syms)
    initial: list = [v.initial for v in neuron.variables]
    params = [Parameter(k, symbol(k), v, k in neuron.trainable) for k, v in neuron.params.items()]
    synapse_rhs: list[sympy.Expr] = []
    continuous_current = sympy.Integer(0)
    slices = []
    owner: list[int] = []  # index of the connection whose synaptic state connection k uses
    for k, (conn, syn) in enumerate(incoming):
        same = [k2 for k2 in range(k) if owner[k2] == k2 and _mergeable(incoming[k2][1], syn)]
        if same:  # identical linear-superposable synapse: share the state (and its parameters)
            owner.append(same[0])
            slices.append(slices[same[0]])
            continue
        owner.append(k)
        missing = [n for n in syn.external_names if n not in state_names[: len(neuron_syms)]]
        if missing:
            raise ModelError(
                f"the synapse of connection '{conn}' injects '{syn.inject_current_text}', which refers to "
                f"'{missing[0]}': neither a variable of the synapse nor of the target neuron of '{name}'"
            )
        ren = _synapse_renaming(k, syn)
        start = len(state)
        for v in syn.variables:
            state.append(ren[symbol(v.name)])
            state_names.append(f"{conn}.{v.name}")
            initial.append(v.initial)
            synapse_rhs.append(sympy.Integer(0) if v.ode is None else v.ode.xreplace(ren))
        slices.append(slice(start, len(state)))
        params += [Parameter(f"{conn}.{p}", ren[symbol(p)], v, p in syn.trainable) for p, v in syn.params.items()]
        if not syn.is_impulse:
            continuous_current += syn.inject_current.xreplace(ren)

    neuron_rhs = [sympy.Integer(0) if v.ode is None else v.ode for v in neuron.variables]
    rhs = sympy.Matrix([e.xreplace({ISYN: continuous_current}) for e in neuron_rhs] + synapse_rhs)
    threshold = None if neuron.threshold is None else neuron.threshold.xreplace({ISYN: continuous_current})
    reset_neuron = [s if v.reset is None else v.reset.xreplace({ISYN: continuous_current})
                    for s, v in zip(neuron_syms, neuron.variables)]
    reset = sympy.Matrix(reset_neuron + state[len(neuron_syms):])

    connections = []
    for k, (conn, syn) in enumerate(incoming):
        jump = _jump_map(name, conn, owner[k], syn, state, neuron_syms, neuron_rhs, continuous_current, slices[k])
        connections.append(IncomingConnection(conn, jump, slices[k]))
    return PopulationSystem(
        name=name, state_names=tuple(state_names), state=tuple(state), initial=tuple(initial), rhs=rhs,
        threshold=threshold, reset=reset, params=tuple(params), incoming=tuple(connections),
        output_index=state_names.index(neuron.output_var),
    )


def _signature(syn: UserSynapse):
    params = tuple((k, tuple(np.atleast_1d(v))) for k, v in syn.params.items())
    variables = tuple((v.name, str(v.ode), str(v.reset), tuple(np.atleast_1d(v.initial))) for v in syn.variables)
    return variables, str(syn.inject_current), params


def _mergeable(a: UserSynapse, b: UserSynapse) -> bool:
    """Two synapses whose states may be added: same equations and values, stateful, nothing trainable.

    Their jumps must be additive for the sum to be exact; resets of the form 'x + weight' are.
    """
    if a.is_impulse or b.is_impulse or a.trainable or b.trainable or _signature(a) != _signature(b):
        return False
    for v in a.variables:
        x = symbol(v.name)
        if v.reset is not None and sympy.simplify(v.reset - x).free_symbols & {x}:
            return False
    exprs = [v.ode for v in a.variables if v.ode is not None] + [a.inject_current]
    syms = [symbol(v.name) for v in a.variables]
    return all(sympy.diff(e, x, y) == 0 for e in exprs for x in syms for y in syms)


def _jump_map(pop, conn, k, syn, state, neuron_syms, neuron_rhs, current, sl) -> sympy.Matrix:
    """R(x, weight): the whole state right after a spike of connection ``conn`` arrives."""
    ren = _synapse_renaming(k, syn)
    jump = list(state)
    if syn.is_impulse:
        # A Dirac delta of area a in Isyn moves the state by a * dF/dIsyn, defined only where F is affine in Isyn.
        area = syn.inject_current.xreplace(ren)
        for i, e in enumerate(neuron_rhs):
            slope = sympy.diff(e, ISYN)
            if sympy.diff(slope, ISYN) != 0:
                raise ModelError(
                    f"connection '{conn}' uses an impulse (delta) synapse, but the neuron of '{pop}' is not "
                    f"affine in Isyn (its ODE '{e}'); a delta current has no defined effect there"
                )
            jump[i] = neuron_syms[i] + area * slope.xreplace({ISYN: current})
        return sympy.Matrix(jump)
    for offset, v in enumerate(syn.variables):
        if v.reset is not None:
            jump[sl.start + offset] = v.reset.xreplace(ren)
    return sympy.Matrix(jump)
