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


def Constant(*, trainable=()):
    """A current that holds its value: di/dt = 0;  on a presynaptic event i -> i + weight;  injects i.

    Direct current input: one graded event per input unit at the start of the trial, carrying the
    feature's value (``eventgrad.data.encoders.current_encode``), drives each target with the constant
    current sum_c weight[c] * value[c] for the rest of the trial.
    """
    return UserSynapse(
        vars={"i": ("0", "i + weight")},
        inject_current="i",
        trainable=trainable,
    )


def Delta(*, trainable=()):
    """Instantaneous synapse: each presynaptic spike injects a Dirac delta of area weight into Isyn."""
    return UserSynapse(vars={}, inject_current="weight", trainable=trainable)
