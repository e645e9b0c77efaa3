"""Compiling a Network into Brian2 circuits whose synapses learn locally from the temporal
derivatives they observe (rate circuits; spiking circuits come later)."""
from __future__ import annotations

from .device import DEVICES, CircuitError
from .rate import RateCircuit

MODELS = ("rate",)


def compile(net, model="rate", device="runtime", eps=0.1, clip=False, build_dir=None,
            keep_build=False):
    """Compile ``net`` into a Brian2 circuit.

    Parameters
    ----------
    model : "rate"
        Rate neurons (spiking circuits are not built yet).
    device : "runtime" | "cpp_standalone"
        Brian2's runtime device (numpy code, for small networks and debugging) or C++
        standalone (compiled; needs a C++ compiler).
    eps : float
        The Euler step: one Brian2 time step is one reference-engine step.
    clip : bool
        Project states to [0, 1] after each step (the 2017 recipe).
    build_dir : str, optional
        Where standalone builds go (default: a temporary folder, deleted after the run).
    """
    from ..network import Network
    if not isinstance(net, Network):
        raise CircuitError("compile() needs a neurosim Network, got %s" % type(net).__name__)
    if model not in MODELS:
        raise CircuitError("model %r is not supported: this version compiles %s circuits "
                           "(spiking circuits are not built yet)" % (model, MODELS))
    return RateCircuit(net, device=device, eps=eps, clip=clip, build_dir=build_dir,
                       keep_build=keep_build)


__all__ = ["compile", "RateCircuit", "CircuitError", "DEVICES", "MODELS"]
