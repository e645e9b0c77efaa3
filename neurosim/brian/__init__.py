"""Compiling a Network into Brian2 circuits whose synapses learn locally from the temporal
derivatives they observe: rate circuits and spiking circuits."""
from __future__ import annotations

from .device import DEVICES, CircuitError, check_compilable
from .nir_export import from_nir, to_nir
from .rate import RateCircuit
from .spiking import NEURONS, SpikingCircuit

MODELS = ("rate", "spiking")


def compile(net, model="rate", device="runtime", eps=None, clip=False, build_dir=None,
            keep_build=False, neuron=None, seed=None, record=True, **params):
    """Compile ``net`` into a Brian2 circuit.

    Parameters
    ----------
    model : "rate" | "spiking"
        Rate neurons (:class:`RateCircuit`) or spiking neurons whose synapses learn from
        spike-based rate traces (:class:`SpikingCircuit`, energy dynamics only).
    device : "runtime" | "cpp_standalone"
        Brian2's runtime device (numpy code, for small networks and debugging) or C++
        standalone (compiled; needs a C++ compiler).
    eps : float, optional
        The Euler step in units of tau (default 0.1): in a rate circuit one Brian2 time step
        is one reference-engine step.
    clip : bool
        Project states to [0, 1] after each step (the 2017 recipe).
    build_dir : str, optional
        Where standalone builds go (default: a temporary folder, deleted after the run).
    neuron : "sigma_delta" | "if" | "lif" | "poisson", optional
        Spiking circuits: the spike code (default "sigma_delta"; docs/spiking.md).
    seed : int, optional
        Spiking circuits: seeds the sequence of runs (see :class:`SpikingCircuit`).
    record : bool
        Spiking circuits: monitor states and spikes.
    **params
        Spiking circuits: ``tau``, ``max_rate``, ``tau_syn``, ``tau_fast``, ``tau_slow``,
        ``tau_m``, ``delta`` (sigma-delta), ``noise``, ``rule`` and the defaults of ``ep_update`` (``beta``, ``variant``, ``free_steps``,
        ``nudge_steps``); see :data:`neurosim.brian.spiking.DEFAULTS`.
    """
    from ..network import Network
    if not isinstance(net, Network):
        raise CircuitError("compile() needs a neurosim Network, got %s" % type(net).__name__)
    check_compilable(net)
    if model not in MODELS:
        raise CircuitError("model %r is not supported: this version compiles %s circuits"
                           % (model, MODELS))
    if model == "spiking":
        if eps is not None:
            params["eps"] = eps
        return SpikingCircuit(net, neuron=neuron, device=device, clip=clip, seed=seed,
                              record=record, build_dir=build_dir, keep_build=keep_build,
                              **params)
    extra = sorted(params) + [k for k, v in (("neuron", neuron), ("seed", seed)) if v is not None]
    if extra:
        raise CircuitError("%s only apply to model='spiking'" % ", ".join(map(repr, extra)))
    return RateCircuit(net, device=device, eps=0.1 if eps is None else eps, clip=clip,
                       build_dir=build_dir, keep_build=keep_build)


__all__ = ["compile", "RateCircuit", "SpikingCircuit", "CircuitError", "DEVICES", "MODELS",
           "NEURONS", "to_nir", "from_nir"]
