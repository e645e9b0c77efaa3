"""The training engine ``brian2-spiking``: every mini-batch's EP update comes from a spiking
Brian2 circuit (synapses learning from spike-based rate traces), built with the network's
current weights; evaluation and the RBP ground truth use the reference engine's rate
dynamics with the same step (the spiking circuit's fixed point in expectation)."""
from __future__ import annotations

import numpy as np

from ..engine import ReferenceEngine, ReferenceEvaluation, StepResult
from .. import energy as en
from .device import CircuitError
from .spiking import SpikingCircuit


class SpikingEngine(ReferenceEvaluation):
    """EP steps in a spiking circuit (runtime device); see the module docstring."""

    name = "brian2-spiking"

    def __init__(self, net, eps=0.1, free_steps=300, nudge_steps=300, clip=True,
                 neuron="poisson", max_rate=1000.0, seed=0):
        if net.dynamics != "energy":
            raise CircuitError("the brian2-spiking engine needs energy dynamics")
        self.reference = ReferenceEngine(net, eps=eps, free_steps=free_steps,
                                         nudge_steps=nudge_steps, clip=clip, solver="euler")
        self.net, self.eps, self.clip = net, eps, clip
        self.free_steps, self.nudge_steps = free_steps, nudge_steps
        tau_slow = max(2.0 * 10.0, min(200.0, nudge_steps * eps * 10.0 / 5.0))
        self.options = dict(neuron=neuron, max_rate=max_rate, eps=eps,
                            tau_slow=tau_slow, tau_fast=min(20.0, tau_slow / 2.0))
        self.seed = seed
        self.calls = 0

    def step(self, x, y, beta, variant, lrs, rng=None, state=None, grad_out=None):
        """One EP step: the update the spiking circuit's synapses accumulate, applied as
        ``theta -= lr g`` (or returned in ``grad_out``). Each call has its own spike seed."""
        self.calls += 1
        circuit = SpikingCircuit(self.net, clip=self.clip, record=False,
                                 seed=self.seed * 1_000_003 + self.calls, **self.options)
        g = circuit.ep_update(x, y, beta=beta, free_steps=self.free_steps,
                              nudge_steps=self.nudge_steps, variant=variant, rng=rng)
        if grad_out is not None:
            grad_out.clear()
            grad_out.update(g)
        else:
            for k, v in g.items():
                if lrs[k]:
                    self.net.params[k] -= lrs[k] * v
        s = self.reference.free(x)
        cost = float(np.mean(en.cost(self.net, s, y)))
        return StepResult(s, cost)
