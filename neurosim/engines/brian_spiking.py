"""The training engine ``brian2-spiking``: EP updates from spiking Brian2 circuits whose
synapses learn from spike-based rate traces; predictions come from the output spikes of a
free phase (the second half of ``free_steps``), so test accuracy is measured through spikes.
The RBP ground truth is the rate network's (the spiking circuit's fixed point in expectation).

Training runs a whole epoch in one compiled run (:meth:`SpikingEngine.train_epoch`,
:class:`~neurosim.brian.spiking_training.SpikingTrainingCircuit`: mini-batches as replicas,
weights in the synapses, the test set inferred through spikes at the end of the same run)
with either rule (``snapshot``, ``online``) and either noise scheme (``independent``,
``common``: the counter random numbers of epoch ``e`` are those of ``(train.seed, e)``), the
``fuses_epoch`` path whenever ``whole_epoch``; it runs the plans ``[0, b]`` and ``[-b, b]``
(``one_sided``, ``symmetric``, ``random_sign``) and refuses others, naming
``learning.nudges``. With ``whole_epoch = false`` each mini-batch trains in a runtime circuit
built with the current weights, which executes any phase plan; so do
:meth:`~SpikingEngine.estimate` and :meth:`~SpikingEngine.infer`.

Spike counters (for the cost model, :mod:`neurosim.hardware.cost`): :attr:`SpikingEngine.synaptic_events`
and :attr:`SpikingEngine.spikes` add up, over every step, the synaptic events (each spike
times the fan-out of its population's outgoing pathways) and the spikes, split into the free
phase (steps ``0 .. free_steps - 1``) and the nudged phase(s) (the rest of the run). The split
is read from the circuit's spike monitors, which count spikes even with ``record=False``: one
network operation at the start of step ``free_steps`` copies the counts so far. It draws no
random numbers and changes no state, so the step's results are those without it, bit for bit.
:attr:`SpikingEngine.rule_ops` adds up the local rule's synaptic operations (one per synapse
and example with the snapshot rule, one per synapse and tick of the online rule's clock)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigurationError
from .protocol import (Engine, Estimate, StepResult, register, split_outputs,
                       with_evaluation)
from .reference import batch_cost
from ..brian.spiking import SpikingCircuit, synaptic_events, trace_constants


class _PhaseCountingCircuit(SpikingCircuit):
    """A :class:`SpikingCircuit` that also copies its spike counts at the start of step
    ``free_steps`` (the end of the free phase) into :attr:`free_counts` (runtime device:
    the copy is a Python network operation, which ``cpp_standalone`` cannot run)."""

    def __init__(self, net, free_steps, **kw):
        super().__init__(net, **kw)
        self.free_steps, self.free_counts = int(free_steps), None

    def build(self, b2, inputs, y, state, schedule, weights, seed):
        built = super().build(b2, inputs, y, state, schedule, weights, seed)
        spk = {q: built.monitors[("spikes", q)] for q in self.net.graph.nodes}
        self.free_counts = {q: 0 for q in spk}
        if self.free_steps > 0:
            dt = b2.defaultclock.dt

            def copy_counts(t):
                if int(round(float(t / dt))) == self.free_steps:
                    self.free_counts = {q: int(np.sum(m.count[:])) for q, m in spk.items()}

            # a clock of one tick per free phase: ticks at steps 0, F, 2F, ... ('start' slot,
            # before the step's thresholds), so the copy at step F holds steps 0 .. F-1
            built.extra.append(b2.NetworkOperation(copy_counts, dt=self.free_steps * dt,
                                                   when="start", name="phase_counts"))
        return built


@register("brian2-spiking")
class SpikingEngine(Engine):
    """EP in a spiking circuit (runtime device): each batch's update from the synapses, each
    prediction from the output spikes (see the module docstring)."""


    settings_used = ("neuron", "delta", "noise", "plasticity", "rule_every", "whole_epoch",
                     "input_drive", "input_rule", "max_rate", "build_dir")

    def __init__(self, net, settings, batch_size=None):
        super().__init__(net, settings)
        if net.dynamics != "energy":
            raise ConfigurationError("network.dynamics: the brian2-spiking engine needs energy "
                                     "dynamics")
        s = settings
        tau_fast, tau_slow = trace_constants(s.nudge_steps, s.eps)
        self.options = dict(neuron=s.neuron, max_rate=s.max_rate, eps=s.eps,
                            tau_slow=tau_slow, tau_fast=tau_fast, noise=s.noise,
                            rule=s.plasticity, rule_every=s.rule_every,
                            input_rule=s.input_rule, delta=s.delta)
        #: a whole epoch in one compiled run (``whole_epoch``; either rule and noise
        #: scheme), else batch by batch in runtime circuits
        self.fuses_epoch = bool(s.whole_epoch)
        if s.input_drive == "analog" and not self.fuses_epoch:
            raise ConfigurationError("engine.input_drive: analog input drive runs in the "
                                     "compiled epoch only (engine.whole_epoch = true)")
        if s.plasticity == "online" and (s.free_steps % s.rule_every
                                         or s.nudge_steps % s.rule_every):
            raise ConfigurationError("engine.rule_every: free_steps (%d) and nudge_steps (%d) "
                                     "must be multiples of it (%d) for the online rule's clock"
                                     % (s.free_steps, s.nudge_steps, s.rule_every))
        if s.input_drive == "analog" and s.input_rule == "spikes":
            raise ConfigurationError("engine.input_rule: \"spikes\" needs input_drive = "
                                     "\"spikes\" (analog inputs do not spike)")
        self.batch_size = batch_size
        self.circuit, self._shape = None, None
        self.calls = 0
        self.synaptic_events = {"free": 0, "nudged": 0}    # cumulative, see the module doc
        self.spikes = {"free": 0, "nudged": 0}
        self.rule_ops = 0               # the local rule's synaptic operations, cumulative
        self.epochs = 0                 # compiled epochs run: each draws its own common noise

    def _next_seed(self):
        """Each run of the engine has its own spike seed, from ``train.seed`` and a count."""
        self.calls += 1
        return self.settings.seed * 1_000_003 + self.calls

    def estimate(self, x, y, state=None, rng=None):
        """The update the spiking circuit's synapses accumulate on this batch."""
        s = self.settings
        circuit = _PhaseCountingCircuit(self.net, s.free_steps, clip=s.clip, record=False,
                                        seed=self._next_seed(), **self.options)
        circuit.record_spikes = tuple(self.net.outputs)
        g = circuit.ep_update(x, y, beta=s.beta, free_steps=s.free_steps,
                              nudge_steps=s.nudge_steps, variant=s.variant, rng=rng,
                              nudges=s.nudges or None)
        total, free = circuit.stats["spikes"], circuit.free_counts
        ev_free, ev_all = synaptic_events(self.net, free), circuit.stats["synaptic_events"]
        self.synaptic_events["free"] += ev_free
        self.synaptic_events["nudged"] += ev_all - ev_free
        self.spikes["free"] += sum(free.values())
        self.spikes["nudged"] += sum(total.values()) - sum(free.values())
        self.rule_ops += int(circuit.stats["rule_ops"])
        m = np.shape(y)[0]
        out = circuit.output_rates(s.free_steps - s.free_steps // 2, s.free_steps, m)
        return Estimate(g, out, batch_cost(self.net, out, self.net.targets_dict(y, m), m))

    def infer(self, x, state=None):
        """Output rates estimated from the output spikes over the second half of a free
        phase of ``free_steps`` steps."""
        s = self.settings
        circuit = SpikingCircuit(self.net, clip=s.clip, record=False, seed=self._next_seed(),
                                 **self.options)
        out = circuit.free_rates(x, s.free_steps)
        n = int(sum(circuit.stats["spikes"].values()))
        self.spikes["free"] += n
        self.synaptic_events["free"] += circuit.stats["synaptic_events"]
        return out

    def step(self, x, y, optimizer, state=None, rng=None, want_estimate=False):
        """One batch: the spiking update, applied by ``optimizer``; the state and cost
        reported are the output rates from the spikes of the run's free phase."""
        est = self.estimate(x, y, state, rng)
        optimizer.apply(self.net.params, est)
        return StepResult(est.state, est.cost, est if want_estimate else None)

    def phase_trajectory(self, x, y, beta, steps, state=None):
        """One phase in the spiking circuit: its state monitors and its spikes."""
        s = self.settings
        circuit = SpikingCircuit(self.net, clip=s.clip, record=True, seed=self._next_seed(),
                                 **self.options)
        states = circuit.trajectory(x, y if beta else None, beta=beta, steps=steps, state=state)
        return states, circuit.spikes

    def _training_circuit(self, n, batch_size, slots):
        """The compiled circuit for runs of ``n`` examples (built, or the one held)."""
        from ..brian.spiking_training import SpikingTrainingCircuit, two_phase
        if two_phase(self.plan) is None:
            raise ConfigurationError(
                "learning.nudges: the whole-epoch spiking circuit runs [0, b] or [-b, b], got "
                "%s; set engine.whole_epoch = false to train batch by batch"
                % (list(self.plan.nudges),))
        shape = (int(n), int(batch_size), int(slots))
        if self.circuit is not None and self._shape == shape:
            return self.circuit
        self.close()
        s, o = self.settings, self.options
        self.circuit = SpikingTrainingCircuit(
            self.net, n, batch_size=batch_size, lrs={k: 0.0 for k in self.net.params},
            clip=s.clip, seed=s.seed, input_drive=s.input_drive, record_slots=slots,
            build_dir=s.build_dir or None, neuron=s.neuron, max_rate=s.max_rate, eps=s.eps,
            tau_fast=o["tau_fast"], tau_slow=o["tau_slow"], beta=s.beta, variant=s.variant,
            nudges=s.nudges or None, delta=s.delta,
            free_steps=s.free_steps, nudge_steps=s.nudge_steps, input_rule=s.input_rule,
            noise=s.noise, rule=s.plasticity, rule_every=s.rule_every)
        self._shape = shape
        return self.circuit

    def train_epoch(self, x, y, signs, lrs, batch_size, record=(), x_eval=None):
        """The epoch's training examples (mini-batches as replicas), then ``x_eval`` at the
        final weights, in one compiled run; outputs are read from the output spikes."""
        xa, ya, sa, n = with_evaluation(x, y, signs, x_eval)
        circ = self._training_circuit(xa.shape[0], batch_size, len(record))
        circ.train_epoch(xa, ya, sa, lrs, n_train=n, record=list(record), run=self.epochs)
        self.epochs += 1
        self.rule_ops += int(circ.stats["rule_ops"])
        spikes = circ.stats["spikes"]       # analog inputs do not spike (no counts)
        for phase in ("free", "nudged"):
            counts = {q: spikes[q][phase] if q in spikes else 0 for q in self.net.graph.nodes}
            self.spikes[phase] += sum(counts.values())
            self.synaptic_events[phase] += synaptic_events(self.net, counts)
        out = circ.outputs
        return split_outputs(out, n, circ.recorded)

    def close(self):
        if self.circuit is not None:
            self.circuit.close()
        self.circuit, self._shape = None, None

    def counters(self):
        return {"synaptic_events": dict(self.synaptic_events), "spikes": dict(self.spikes),
                "rule_ops": int(self.rule_ops)}

    def state_dict(self):
        """The run counters that seed each circuit run (batch runs, compiled epochs), and the
        spike and rule counters: a resumed run draws the spikes an uninterrupted one would."""
        out = {"calls": np.array(self.calls, dtype=np.int64),
               "epochs": np.array(self.epochs, dtype=np.int64),
               "rule_ops": np.array(self.rule_ops, dtype=np.int64)}
        for name, d in (("synaptic_events", self.synaptic_events), ("spikes", self.spikes)):
            out.update({"%s/%s" % (name, k): np.array(v, dtype=np.int64) for k, v in d.items()})
        return out

    def load_state_dict(self, d):
        self.calls = int(d["calls"])
        self.epochs = int(d.get("epochs", 0))
        self.rule_ops = int(d.get("rule_ops", 0))
        for name, target in (("synaptic_events", self.synaptic_events), ("spikes", self.spikes)):
            for k in target:
                target[k] = int(d.get("%s/%s" % (name, k), 0))


__all__ = ["SpikingEngine"]
