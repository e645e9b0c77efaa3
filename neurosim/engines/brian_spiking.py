"""The training engine ``brian2-spiking``: every mini-batch's EP update comes from a spiking
Brian2 circuit (synapses learning from spike-based rate traces), built with the network's
current weights; evaluation and the RBP ground truth use the reference engine's rate
dynamics with the same step (the spiking circuit's fixed point in expectation).

Spike counters (for the cost model, :mod:`neurosim.cost`): :attr:`SpikingEngine.synaptic_events`
and :attr:`SpikingEngine.spikes` add up, over every step, the synaptic events (each spike
times the fan-out of its population's outgoing pathways) and the spikes, split into the free
phase (steps ``0 .. free_steps - 1``) and the nudged phase(s) (the rest of the run). The split
is read from the circuit's spike monitors, which count spikes even with ``record=False``: one
network operation at the start of step ``free_steps`` copies the counts so far. It draws no
random numbers and changes no state, so the step's results are those without it, bit for bit."""
from __future__ import annotations

import numpy as np

from .reference import ReferenceEngine, ReferenceEvaluation, StepResult
from .. import energy as en
from ..brian.device import CircuitError
from ..brian.spiking import SpikingCircuit, trace_constants


class _PhaseCountingCircuit(SpikingCircuit):
    """A :class:`SpikingCircuit` that also copies its spike counts at the start of step
    ``free_steps`` (the end of the free phase) into :attr:`free_counts` (runtime device:
    the copy is a Python network operation, which ``cpp_standalone`` cannot run)."""

    def __init__(self, net, free_steps, **kw):
        super().__init__(net, **kw)
        self.free_steps, self.free_counts = int(free_steps), None

    def _build(self, b2, inputs, y, state, schedule, zq, seed):
        netw, ctx, projections, mons, spk = super()._build(b2, inputs, y, state, schedule, zq,
                                                           seed)
        self.free_counts = {q: 0 for q in spk}
        if self.free_steps > 0:
            dt = b2.defaultclock.dt

            def copy_counts(t):
                if int(round(float(t / dt))) == self.free_steps:
                    self.free_counts = {q: int(np.sum(m.count[:])) for q, m in spk.items()}

            # a clock of one tick per free phase: ticks at steps 0, F, 2F, ... ('start' slot,
            # before the step's thresholds), so the copy at step F holds steps 0 .. F-1
            netw.add(b2.NetworkOperation(copy_counts, dt=self.free_steps * dt, when="start",
                                         name="phase_counts"))
        return netw, ctx, projections, mons, spk


def _events(net, counts):
    """Synaptic events of spike counts per population: spikes times the fan-out of each
    pathway out of the population (the rule of ``SpikingCircuit.stats``)."""
    return sum(counts[t.source] * (net.sizes[t.target] - (1 if t.source == t.target else 0))
               for t in net.terms)


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
        tau_fast, tau_slow = trace_constants(nudge_steps, eps)
        self.options = dict(neuron=neuron, max_rate=max_rate, eps=eps,
                            tau_slow=tau_slow, tau_fast=tau_fast)
        self.seed = seed
        self.calls = 0
        self.synaptic_events = {"free": 0, "nudged": 0}    # cumulative, see the module doc
        self.spikes = {"free": 0, "nudged": 0}

    def step(self, x, y, beta, variant, lrs, rng=None, state=None, grad_out=None):
        """One EP step: the update the spiking circuit's synapses accumulate, applied as
        ``theta -= lr g`` (or returned in ``grad_out``). Each call has its own spike seed."""
        self.calls += 1
        circuit = _PhaseCountingCircuit(self.net, self.free_steps, clip=self.clip,
                                        record=False, seed=self.seed * 1_000_003 + self.calls,
                                        **self.options)
        g = circuit.ep_update(x, y, beta=beta, free_steps=self.free_steps,
                              nudge_steps=self.nudge_steps, variant=variant, rng=rng)
        total, free = circuit.stats["spikes"], circuit.free_counts
        ev_free, ev_all = _events(self.net, free), circuit.stats["synaptic_events"]
        self.synaptic_events["free"] += ev_free
        self.synaptic_events["nudged"] += ev_all - ev_free
        self.spikes["free"] += sum(free.values())
        self.spikes["nudged"] += sum(total.values()) - sum(free.values())
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
