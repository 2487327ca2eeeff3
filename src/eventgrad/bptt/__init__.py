"""Surrogate-gradient backpropagation through time ("discretize, then optimize") on eventgrad's models.

The baseline that EventProp is compared with: same networks, parameter keys, readouts and losses; the
step map, its Jacobians and their numpy code are generated from the model equations with sympy.
"""

from eventgrad.bptt.simulator import BPTTResult, BPTTSimulator
from eventgrad.bptt.surrogates import SURROGATES, ArcTan, FastSigmoid, Heaviside, Surrogate, Triangle, get_surrogate

__all__ = ["SURROGATES", "ArcTan", "BPTTResult", "BPTTSimulator", "FastSigmoid", "Heaviside", "Surrogate", "Triangle",
           "get_surrogate"]
