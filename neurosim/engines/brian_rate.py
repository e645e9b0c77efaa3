"""The engine ``brian2-rate``: a compiled Brian2 rate circuit whose synapses hold the weights
and learn locally (:class:`~neurosim.brian.training.TrainingCircuit`).

Everything this engine reports comes from the circuit:

* :meth:`BrianRateEngine.train_epoch` runs a whole epoch -- the training examples, then the
  evaluation examples at the final weights -- in one ``cpp_standalone`` run; the synapses copy
  aside the update of the batches the trainer asks to check (and the weights that batch ran
  with), and a monitor reads every example's output rates at the end of its free phase;
* :meth:`BrianRateEngine.estimate` runs one batch through the same circuit with learning rate
  0 and reads the update the synapses accumulated;
* :meth:`BrianRateEngine.infer` runs the examples' free phases in it (sign of beta 0).

The circuit executes the engine's phase plan (:attr:`Engine.plan`: ``learning.nudges``, or
``variant`` and ``beta``), the random sign of a batch taken from the stream the trainer passes.
It is compiled once per shape (examples per run, batch size, record slots) on a standalone
device of its own, so several engines live side by side in one process; later runs reuse the
build with new data and weights (``run_args``).
"""
from __future__ import annotations

import numpy as np

from ..plan import sign_of
from ..brian.device import CircuitError
from ..brian.training import TrainingCircuit, check_supported
from ..errors import ConfigurationError
from .protocol import (Engine, Estimate, StepResult, register, split_outputs,
                       with_evaluation)
from .reference import batch_cost


@register("brian2-rate")
class BrianRateEngine(Engine):
    """EP training, estimates and inference in a compiled Brian2 rate circuit (module doc)."""

    fuses_epoch = True

    settings_used = ("build_dir", "threads")

    def __init__(self, net, settings, batch_size=None):
        super().__init__(net, settings)
        try:
            check_supported(net)
        except CircuitError as e:
            raise ConfigurationError("engine.name: %s" % e) from None
        self.batch_size = batch_size
        self.circuit, self._shape = None, None

    def _circuit(self, n, batch_size, slots):
        """The circuit for runs of ``n`` examples (built, or the one held if it fits)."""
        shape = (int(n), int(batch_size), int(slots))
        if self.circuit is not None and self._shape == shape:
            return self.circuit
        self.close()
        s = self.settings
        self.circuit = TrainingCircuit(self.net, n, eps=s.eps, free_steps=s.free_steps,
                                       nudge_steps=s.nudge_steps, beta=s.beta,
                                       variant=s.variant, nudges=s.nudges or None,
                                       clip=s.clip,
                                       lrs={k: 0.0 for k in self.net.params},
                                       batch_size=batch_size, build_dir=s.build_dir or None,
                                       record_slots=slots, threads=s.threads)
        self._shape = shape
        return self.circuit

    def _run(self, x, y, signs, lrs, batch_size, n_train, record, slots=None):
        """One run of the held circuit (or a new one sized for ``x``); shorter inputs are
        padded with examples of sign 0 that only infer."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        m = x.shape[0]
        slots = len(record) if slots is None else slots
        if self.circuit is not None and self._shape[0] >= m and self._shape[1] == batch_size \
                and self._shape[2] >= len(record):
            circ = self.circuit
        else:
            circ = self._circuit(m, batch_size, slots)
        pad = circ.n - m
        xp = np.concatenate([x, np.zeros((pad, x.shape[1]))])
        yp = np.concatenate([y, np.zeros((pad, y.shape[1]))])
        sp = np.concatenate([signs, np.zeros(pad)])
        circ.train_epoch(xp, yp, sp, lrs, batch_size, n_train=n_train, record=record)
        out = {p: v[:m] for p, v in circ.outputs.items()}
        return circ, out

    def estimate(self, x, y, state=None, rng=None):
        """The update the synapses accumulate on this batch (learning rate 0: the weights do
        not move), read from the circuit."""
        if state is not None:
            raise ConfigurationError("engine.persistent: the brian2-rate circuit starts every "
                                     "example from rest")
        self.net.targets_dict(y, next(iter(self.net.inputs_dict(x).values())).shape[0])
        m = np.shape(x)[0]
        sign = sign_of(rng) if self.plan.random_sign else 1.0
        zero = {k: 0.0 for k in self.net.params}
        bs = max(m, int(self.batch_size or 0))
        circ, out = self._run(x, y, np.full(m, sign), zero, bs, m, [0], slots=1)
        g = circ.recorded[0][0]
        targets = self.net.targets_dict(y, m)
        return Estimate(g, dict(out), batch_cost(self.net, out, targets, m))

    def infer(self, x, state=None):
        """Output rates at the end of each example's free phase in the circuit."""
        self.net.inputs_dict(x)                # x's shape checked, naming x
        m = np.shape(x)[0]
        n_out = self.net.sizes[self.net.outputs[0]]
        zero = {k: 0.0 for k in self.net.params}
        bs = self._shape[1] if self.circuit is not None else max(m, int(self.batch_size or 0))
        _, out = self._run(x, np.zeros((m, n_out)), np.zeros(m), zero, bs, 0, [])
        return out

    def step(self, x, y, optimizer, state=None, rng=None, want_estimate=False):
        """One batch: the circuit's estimate, the optimizer's update applied to ``net.params``
        (the run's weights are written into the synapses at the next run)."""
        est = self.estimate(x, y, state, rng)
        optimizer.apply(self.net.params, est)
        return StepResult(est.state, est.cost, est if want_estimate else None)

    def train_epoch(self, x, y, signs, lrs, batch_size, record=(), x_eval=None):
        """The epoch's training examples, then ``x_eval`` at the final weights, in one run."""
        xa, ya, sa, n = with_evaluation(x, y, signs, x_eval)
        circ = self._circuit(xa.shape[0], batch_size, len(record))
        circ.train_epoch(xa, ya, sa, lrs, batch_size, n_train=n, record=list(record))
        out = circ.outputs
        return split_outputs(out, n, circ.recorded)

    def phase_trajectory(self, x, y, beta, steps, state=None):
        """One phase in the Brian2 rate circuit (runtime device: the same equations), its
        state monitors recorded."""
        from ..brian.rate import RateCircuit
        s = self.settings
        circ = RateCircuit(self.net, device="runtime", eps=s.eps, clip=s.clip)
        return circ.trajectory(x, y if beta else None, beta=beta, steps=steps,
                               state=state), None

    def close(self):
        if self.circuit is not None:
            self.circuit.close()
        self.circuit, self._shape = None, None


__all__ = ["BrianRateEngine"]
