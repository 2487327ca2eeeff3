"""Built-in neuron models, each an ordinary UserNeuron written as equations (time in ms).

No model here has a hand-written adjoint: the adjoint is derived from these equations like any user's.
"""

from eventgrad.model import UserNeuron


def LIF(tau_mem=20.0, v_thresh=1.0, v_reset=0.0, *, trainable=()):
    """Leaky integrate-and-fire.

    dv/dt = (-v + Isyn) / tau_mem;  spike when v crosses v_thresh;  then v -> v_reset.
    """
    return UserNeuron(
        vars={"v": ("(-v + Isyn) / tau_mem", "v_reset")},
        threshold="v - v_thresh",
        output_var_name="v",
        param_vals={"tau_mem": tau_mem, "v_thresh": v_thresh, "v_reset": v_reset},
        trainable=trainable,
    )


def IF(v_thresh=1.0, v_reset=0.0, *, trainable=()):
    """Integrate-and-fire without leak.

    dv/dt = Isyn;  spike when v crosses v_thresh;  then v -> v_reset.
    """
    return UserNeuron(
        vars={"v": ("Isyn", "v_reset")},
        threshold="v - v_thresh",
        output_var_name="v",
        param_vals={"v_thresh": v_thresh, "v_reset": v_reset},
        trainable=trainable,
    )


def LI(tau_mem=20.0, *, trainable=()):
    """Leaky integrator without spikes (a readout).

    dv/dt = (-v + Isyn) / tau_mem.
    """
    return UserNeuron(
        vars={"v": ("(-v + Isyn) / tau_mem", None)},
        threshold=None,
        output_var_name="v",
        param_vals={"tau_mem": tau_mem},
        trainable=trainable,
    )


def AdaptiveLIF(tau_mem=20.0, tau_adapt=100.0, beta=0.2, v_thresh=1.0, v_reset=0.0, *, trainable=()):
    """LIF whose threshold rises by beta with each spike and relaxes back.

    dv/dt = (-v + Isyn) / tau_mem;  da/dt = -a / tau_adapt;
    spike when v crosses v_thresh + beta * a;  then v -> v_reset, a -> a + 1.
    """
    return UserNeuron(
        vars={
            "v": ("(-v + Isyn) / tau_mem", "v_reset"),
            "a": ("-a / tau_adapt", "a + 1.0"),
        },
        threshold="v - (v_thresh + beta * a)",
        output_var_name="v",
        param_vals={
            "tau_mem": tau_mem,
            "tau_adapt": tau_adapt,
            "beta": beta,
            "v_thresh": v_thresh,
            "v_reset": v_reset,
        },
        trainable=trainable,
    )


def ResonateAndFire(omega=0.3, damping=0.05, v_thresh=1.0, *, trainable=()):
    """Resonate-and-fire: a damped oscillator (complex eigenvalues -damping +- i omega) that spikes.

    dx/dt = -damping * x - omega * y + Isyn;  dy/dt = omega * x - damping * y;
    spike when y crosses v_thresh;  then x -> 0, y -> 0.  The output is y.
    """
    return UserNeuron(
        vars={
            "x": ("-damping * x - omega * y + Isyn", "0.0"),
            "y": ("omega * x - damping * y", "0.0"),
        },
        threshold="y - v_thresh",
        output_var_name="y",
        param_vals={"omega": omega, "damping": damping, "v_thresh": v_thresh},
        trainable=trainable,
    )


def QIF(tau_mem=20.0, v_rest=0.0, v_crit=0.5, v_thresh=1.0, v_reset=0.0, *, trainable=()):
    """Quadratic integrate-and-fire.

    dv/dt = ((v - v_rest) * (v - v_crit) + Isyn) / tau_mem;  spike when v crosses v_thresh;
    then v -> v_reset.
    """
    return UserNeuron(
        vars={"v": ("((v - v_rest) * (v - v_crit) + Isyn) / tau_mem", "v_reset")},
        threshold="v - v_thresh",
        output_var_name="v",
        param_vals={
            "tau_mem": tau_mem,
            "v_rest": v_rest,
            "v_crit": v_crit,
            "v_thresh": v_thresh,
            "v_reset": v_reset,
        },
        trainable=trainable,
    )


def Izhikevich(a=0.02, b=0.2, c=-65.0, d=8.0, v_peak=30.0, *, trainable=()):
    """Izhikevich's simple model (v in mV, t in ms), starting at rest: v = -65, u = -13.

    dv/dt = 0.04 v**2 + 5 v + 140 - u + Isyn;  du/dt = a (b v - u);
    spike when v crosses v_peak;  then v -> c, u -> u + d.
    """
    return UserNeuron(
        vars={
            "v": ("0.04 * v**2 + 5 * v + 140 - u + Isyn", "c"),
            "u": ("a * (b * v - u)", "u + d"),
        },
        threshold="v - v_peak",
        output_var_name="v",
        param_vals={"a": a, "b": b, "c": c, "d": d, "v_peak": v_peak},
        var_vals={"v": -65.0, "u": -13.0},
        trainable=trainable,
    )
