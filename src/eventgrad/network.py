"""Networks as descriptions: inputs, populations and connections, with weights stored [pre, post].

Nothing here simulates; the simulator reads this description once.  Names share one namespace because
they key the parameter dictionary ("h.tau_mem", "xh.weight", "xh.tau").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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

    def connect(self, pre: Group, post: Group, synapse: UserSynapse, weight, name: str | None = None) -> Connection:
        """Connect every unit of ``pre`` to every neuron of ``post`` through ``synapse``."""
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
        w = np.array(weight, dtype=np.float64)
        if w.shape != (pre.size, post.size):
            raise NetworkError(
                f"connection '{name}': weight has shape {w.shape}, expected (pre, post) = ({pre.size}, {post.size})"
            )
        if not np.all(np.isfinite(w)):
            raise NetworkError(f"connection '{name}': weight contains NaN or infinite values")
        conn = Connection(name, pre, post, synapse, w, len(self.connections))
        self.connections.append(conn)
        return conn

    def group(self, name: str) -> Group:
        for g in self.groups:
            if g.name == name:
                return g
        raise NetworkError(f"no population or input named '{name}' (have {[g.name for g in self.groups]})")

    def incoming(self, group: Group) -> list[Connection]:
        return [c for c in self.connections if c.post is group]


def _check_lengths(owner: str, model, n: int) -> None:
    values = dict(model.params)
    values.update({v.name: v.initial for v in model.variables})
    for key, value in values.items():
        if isinstance(value, np.ndarray) and value.shape != (n,):
            raise NetworkError(f"{owner}: '{key}' has {value.shape[0]} values for {n} neurons")
