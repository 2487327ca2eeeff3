"""Networks as descriptions: inputs, populations and connections, with weights stored [pre, post].

Nothing here simulates; the simulator reads this description once.  Names share one namespace because
they key the parameter dictionary ("h.tau_mem", "xh.weight", "xh.tau").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy

from eventgrad.adjoint.system import build_population_system
from eventgrad.model import UserNeuron, UserSynapse


class NetworkError(ValueError):
    """A network description that cannot be simulated."""


@dataclass(eq=False)
class Group:
    """An input (``neuron`` is None: spikes given by the user) or a population of identical neurons."""

    name: str
    size: int
    neuron: UserNeuron | None
    index: int

    @property
    def is_input(self) -> bool:
        return self.neuron is None


@dataclass(eq=False)
class Connection:
    """All-to-all synapses from ``pre`` to ``post``; ``weight[i, j]`` connects pre i to post j."""

    name: str
    pre: Group
    post: Group
    synapse: UserSynapse
    weight: np.ndarray
    index: int
    delay: np.ndarray | None = None  # ms; shape () (one for the connection) or (pre, post); None: no delay
    learn_delay: bool = False

    @property
    def delayed(self) -> bool:
        return self.delay is not None


@dataclass
class Network:
    groups: list[Group] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise NetworkError(f"name {name!r} must be a Python identifier not starting with '_'")
        taken = {g.name for g in self.groups} | {c.name for c in self.connections}
        if name in taken:
            raise NetworkError(f"name '{name}' is already used by a population, input or connection")

    def _check_size(self, name: str, n) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise NetworkError(f"size of '{name}' must be a positive integer, got {n!r}")
        return int(n)

    def add_input(self, name: str, n: int) -> Group:
        """A group of n input units whose spike times are given per sample."""
        self._check_name(name)
        group = Group(name, self._check_size(name, n), None, len(self.groups))
        self.groups.append(group)
        return group

    def add_population(self, name: str, n: int, neuron: UserNeuron) -> Group:
        """n neurons of one model; per-neuron parameter arrays must have length n."""
        self._check_name(name)
        if not isinstance(neuron, UserNeuron):
            raise NetworkError(f"population '{name}' needs a UserNeuron, got {type(neuron).__name__}")
        n = self._check_size(name, n)
        _check_lengths(f"population '{name}'", neuron, n)
        group = Group(name, n, neuron, len(self.groups))
        self.groups.append(group)
        return group

    def connect(self, pre: Group, post: Group, synapse: UserSynapse, weight, name: str | None = None, delay=None,
                learn_delay: bool = False) -> Connection:
        """Connect every unit of ``pre`` to every neuron of ``post`` through ``synapse``.

        ``delay`` (ms): a spike of pre i at t reaches post j at exactly t + delay (a scalar: one delay for the
        whole connection) or t + delay[i, j] (an array of shape (pre, post)); real values >= 0, never
        rounded to the grid. It lives in ``sim.params["<name>.delay"]`` (shape () or (pre, post)).
        ``learn_delay=True`` makes it trainable: ``loss_and_grad`` returns its exact gradient.
        """
        name = name if name is not None else f"{pre.name}_{post.name}"
        self._check_name(name)
        for g, role in ((pre, "source"), (post, "target")):
            if not isinstance(g, Group) or g not in self.groups:
                raise NetworkError(f"connection '{name}': the {role} is not a group of this network")
        if post.is_input:
            raise NetworkError(f"connection '{name}': the target '{post.name}' is an input, which has no state")
        if not isinstance(synapse, UserSynapse):
            raise NetworkError(f"connection '{name}' needs a UserSynapse, got {type(synapse).__name__}")
        _check_lengths(f"the synapse of connection '{name}'", synapse, post.size)
        if np.iscomplexobj(np.asarray(weight)):
            raise NetworkError(f"connection '{name}': weight is complex; weights must be real numbers")
        w = np.array(weight, dtype=np.float64)
        if w.shape != (pre.size, post.size):
            raise NetworkError(
                f"connection '{name}': weight has shape {w.shape}, expected (pre, post) = ({pre.size}, {post.size})"
            )
        if not np.all(np.isfinite(w)):
            raise NetworkError(f"connection '{name}': weight contains NaN or infinite values")
        d = _check_delay(name, delay, learn_delay, (pre.size, post.size), synapse, post)
        conn = Connection(name, pre, post, synapse, w, len(self.connections), d, bool(learn_delay))
        self.connections.append(conn)
        return conn

    def group(self, name: str) -> Group:
        for g in self.groups:
            if g.name == name:
                return g
        raise NetworkError(f"no population or input named '{name}' (have {[g.name for g in self.groups]})")

    def incoming(self, group: Group) -> list[Connection]:
        return [c for c in self.connections if c.post is group]


def _check_delay(name: str, delay, learn_delay, shape: tuple[int, int], synapse, post: Group):
    """The delay as a float64 array of shape () or (pre, post), or None; an error naming what is wrong."""
    if not isinstance(learn_delay, (bool, np.bool_)):
        raise NetworkError(f"connection '{name}': learn_delay must be True or False, got {learn_delay!r}")
    if delay is None:
        if learn_delay:
            raise NetworkError(f"connection '{name}': learn_delay=True needs a delay to learn; pass delay= "
                               "(a scalar or a (pre, post) array in ms, e.g. delay=0.0)")
        return None
    if isinstance(delay, (str, bytes)):
        raise NetworkError(f"connection '{name}': delay must be a number or an array of numbers (ms), got {delay!r}")
    try:
        d = np.array(delay, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise NetworkError(f"connection '{name}': delay must be a number or an array of numbers (ms): {err}") from err
    if np.iscomplexobj(np.asarray(delay)):
        raise NetworkError(f"connection '{name}': delay has complex values")
    if d.shape == (1,):
        d = d.reshape(())
    if d.shape not in ((), shape):
        raise NetworkError(f"connection '{name}': delay has shape {d.shape}, expected a scalar or "
                           f"(pre, post) = {shape}")
    if not np.all(np.isfinite(d)):
        raise NetworkError(f"connection '{name}': delay contains NaN or infinite values")
    if np.any(d < 0):
        raise NetworkError(f"connection '{name}': delay contains negative values (min {d.min():g} ms); a spike "
                           "cannot arrive before it is sent")
    if learn_delay and post.neuron.threshold is not None and _jump_moves_threshold(synapse, post.neuron):
        raise NetworkError(
            f"connection '{name}': learn_delay=True, but its synapse jumps a variable of the threshold "
            f"'{post.neuron.threshold_text}' at once, so an arrival can fire the target at that very instant; "
            "such a spike's time follows the arrival with no threshold crossing to differentiate, and the delay "
            "gradient does not exist there. Use a synapse that injects a current (e.g. Exponential, Alpha)")
    return d


def _jump_moves_threshold(synapse: UserSynapse, neuron: UserNeuron) -> bool:
    """Whether the synapse's jump changes a state variable that the neuron's threshold reads."""
    system = build_population_system("_check", neuron, [("_c", synapse)])
    jump = system.incoming[0].jump
    x = sympy.Matrix(system.state)
    moved = [v for v, e in zip(system.state, jump - x) if sympy.simplify(e) != 0]
    return any(v in system.threshold.free_symbols for v in moved)


def _check_lengths(owner: str, model, n: int) -> None:
    values = dict(model.params)
    values.update({v.name: v.initial for v in model.variables})
    for key, value in values.items():
        if isinstance(value, np.ndarray) and value.shape != (n,):
            raise NetworkError(f"{owner}: '{key}' has {value.shape[0]} values for {n} neurons")
