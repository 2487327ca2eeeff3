"""eventgrad: exact event-based gradients (EventProp) for spiking networks written as equations."""

__version__ = "0.1.0"

from eventgrad import losses, neurons, optim, readouts, synapses
from eventgrad.bptt import BPTTSimulator
from eventgrad.data.spikes import SpikeBatch, SpikeDataError
from eventgrad.engine.results import Result, SimulationError
from eventgrad.engine.simulator import Simulator
from eventgrad.gradcheck import GradCheckReport, check_gradients
from eventgrad.model import ModelError, UserNeuron, UserSynapse
from eventgrad.network import Network, NetworkError

__all__ = [
    "BPTTSimulator", "GradCheckReport", "ModelError", "Network", "NetworkError", "Result", "SimulationError",
    "Simulator", "SpikeBatch", "SpikeDataError", "UserNeuron", "UserSynapse", "check_gradients", "losses", "neurons",
    "optim", "readouts", "synapses",
]
