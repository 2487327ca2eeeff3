"""Built-in synapse models, each an ordinary UserSynapse written as equations (time in ms)."""

from eventgrad.model import UserSynapse


def Exponential(tau=5.0, *, trainable=()):
    """Exponentially decaying current.

    di/dt = -i / tau;  on a presynaptic spike i -> i + weight;  injects i.
    """
    return UserSynapse(
        vars={"i": ("-i / tau", "i + weight")},
        inject_current="i",
        param_vals={"tau": tau},
        trainable=trainable,
    )


def Alpha(tau=5.0, *, trainable=()):
    """Alpha-shaped current (an exponential filtered by a second one with the same tau).

    dx/dt = -x / tau;  di/dt = (x - i) / tau;  on a presynaptic spike x -> x + weight;  injects i.
    """
    return UserSynapse(
        vars={"x": ("-x / tau", "x + weight"), "i": ("(x - i) / tau", None)},
        inject_current="i",
        param_vals={"tau": tau},
        trainable=trainable,
    )


def Delta(*, trainable=()):
    """Instantaneous synapse: each presynaptic spike injects a Dirac delta of area weight into Isyn."""
    return UserSynapse(vars={}, inject_current="weight", trainable=trainable)
