"""eventgrad as a PyTorch layer: a spiking network whose exact EventProp gradients flow through ``loss.backward()``.

    layer = eventgrad.torch.SpikingLayer(sim)        # sim: an eg.Simulator with a readout
    y = layer(batch)                                 # a SpikeBatch -> readout (batch, outputs)
    y = layer(values)                                # graded input: a (batch, input units) tensor
    loss = torch.nn.functional.cross_entropy(y, labels)
    loss.backward()                                  # fills .grad of the layer's parameters (and of values)

The layer's parameters are ``sim.params``' trainable entries (``sim.trainable``: every weight, learnable delays
and neuron parameters) as ``nn.Parameter``s that share memory with those arrays: a torch optimiser that
updates them updates the simulator, and an eventgrad optimiser, a checkpoint load or any in-place change of
``sim.params`` shows in torch. A new array assigned to ``sim.params[key]`` is taken over at the next forward
pass. They have the simulator's dtype (float32 or float64; build the simulator with the dtype you want,
``layer.double()`` cannot change what the engine computes in). ``layer.parameter("xh.weight")`` finds one by
its eventgrad name (module parameter names cannot hold dots: it is ``xh__weight`` in ``named_parameters``).

The backward pass is ``Simulator.backward``: the exact vector-Jacobian product for any cotangent
dL/dreadout, so any torch loss (or module after the layer) works, not only eventgrad's losses.

Graded input (a torch front end): a (batch, units) tensor gives each input unit one event at ``input_times``
(one time, or one per unit; default 0) carrying that value, which multiplies the unit's weights, as
``SpikeBatch(values=...)`` does (with a ``Constant`` synapse this injects a current: direct input of analog
features). Its gradient is returned too, so a ``torch.nn.Linear`` in front learns (see
``eventgrad.engine.graded`` for how it is computed: one run per sample).
"""

from __future__ import annotations

import numpy as np
import torch

from eventgrad.data.spikes import SpikeBatch, SpikeDataError
from eventgrad.engine import graded


def _name(key: str) -> str:
    return key.replace(".", "__")


class SpikingLayer(torch.nn.Module):
    """A ``torch.nn.Module`` running ``sim`` (an ``eg.Simulator`` with a readout); see the module notes."""

    def __init__(self, sim, input_times=0.0):
        super().__init__()
        if not hasattr(sim, "backward") or getattr(sim, "readout", None) is None:
            raise TypeError("SpikingLayer needs an EventProp eg.Simulator with a readout (readout=eg.readouts."
                            "MeanVar('out'), ...)")
        sim._check_differentiable()
        self.sim = sim
        self.keys = list(sim.trainable)
        self.weights = torch.nn.ParameterDict({_name(k): torch.nn.Parameter(self._shared(k)) for k in self.keys})
        n_inputs = sum(g.is_input for g in sim.network.groups)
        self.input_times = graded.event_times(sim, input_times) if n_inputs == 1 else None  # graded values
        self.last_result = None

    def parameter(self, key: str) -> torch.nn.Parameter:
        """The parameter of ``sim.params[key]``."""
        if key not in self.keys:
            raise KeyError(f"'{key}' is not a trainable parameter of the simulator; trainable: {self.keys}")
        return self.weights[_name(key)]

    def _shared(self, key: str) -> torch.Tensor:
        """``sim.params[key]`` as a tensor on the same memory (a writable, contiguous copy first if need be)."""
        array = self.sim.params[key]
        if not (isinstance(array, np.ndarray) and array.flags.c_contiguous and array.flags.writeable
                and array.dtype == self.sim.dtype):
            array = self.sim.params[key] = np.array(array, dtype=self.sim.dtype, order="C")
        return torch.from_numpy(array)

    def _sync(self) -> None:
        """Keep ``sim.params`` and the parameters on the same memory (see the module notes)."""
        for key in self.keys:
            param = self.weights[_name(key)]
            if param.dtype != _torch_dtype(self.sim.dtype) or param.device.type != "cpu":
                raise TypeError(f"parameter '{key}' is {param.dtype} on {param.device}; the simulator computes in "
                                f"{self.sim.dtype} on the CPU: build the simulator with the dtype you want instead "
                                "of converting the layer")
            array = self.sim.params[key]
            if isinstance(array, np.ndarray) and array.ctypes.data == param.data_ptr() and array.shape == param.shape:
                continue
            value = np.asarray(array, dtype=self.sim.dtype)
            if value.shape != tuple(param.shape):
                raise ValueError(f"sim.params['{key}'] has shape {value.shape}; the layer's parameter has "
                                 f"{tuple(param.shape)}")
            with torch.no_grad():
                param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
            self.sim.params[key] = param.detach().numpy()

    def forward(self, inputs) -> torch.Tensor:
        """The readout (batch, outputs), in the simulator's dtype, of a SpikeBatch (or a dict input name ->
        SpikeBatch), or of graded input values (a (batch, input units) tensor)."""
        self._sync()
        params = [self.weights[_name(k)] for k in self.keys]
        if isinstance(inputs, torch.Tensor):
            if self.input_times is None:
                raise SpikeDataError("graded input values feed one input population; this network has several: "
                                     "pass a dict of SpikeBatch")
            if inputs.ndim != 2 or not inputs.is_floating_point():
                raise SpikeDataError(f"graded input values must be a floating-point (batch, "
                                     f"{len(self.input_times)}) tensor, got {tuple(inputs.shape)} {inputs.dtype}")
            return _EventProp.apply(self, None, inputs, *params)
        if not isinstance(inputs, (SpikeBatch, dict)):
            raise TypeError(f"SpikingLayer takes a SpikeBatch, a dict of them, or a tensor of graded input values, "
                            f"got {type(inputs).__name__}")
        return _EventProp.apply(self, inputs, None, *params)


class _EventProp(torch.autograd.Function):
    """Forward: the simulator's run. Backward: ``Simulator.backward`` with the readout's cotangent."""

    @staticmethod
    def forward(ctx, layer, batch, values, *params):
        sim = layer.sim
        if values is None:
            res = sim.run(batch)
            readout = res.readout
        else:
            res = graded.forward(sim, layer.input_times, values.detach().cpu().numpy())
            readout = res.readout
        layer.last_result = res
        ctx.layer, ctx.res, ctx.values_dtype = layer, res, None if values is None else values.dtype
        return torch.from_numpy(np.asarray(readout, dtype=sim.dtype))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_readout):
        layer, sim = ctx.layer, ctx.layer.sim
        cotangent = grad_readout.detach().cpu().numpy().astype(np.float64)
        dvalues = None
        if ctx.values_dtype is None:
            grads = sim.backward(ctx.res, cotangent)
        else:
            grads, dv = graded.backward(sim, ctx.res, cotangent)
            dvalues = torch.from_numpy(dv).to(ctx.values_dtype)
        out = [torch.from_numpy(np.asarray(grads[k], dtype=sim.dtype).reshape(np.shape(sim.params[k])))
               for k in layer.keys]
        return (None, None, dvalues, *out)


def _torch_dtype(dtype) -> torch.dtype:
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]
