"""The training engine ``resistive``: an analog resistive network (:mod:`neurosim.resistive`)
whose every phase is a DC operating point solved exactly, nudged by the current
``beta (y - V_out)`` at the outputs: it executes the engine's :class:`~neurosim.plan.Plan`
(the free solve, one nudged solve per non-zero nudge; :func:`neurosim.resistive.learning.
ep_gradient`); each conductance learns from the change of its own voltage drop and stays
non-negative (the update is projected to ``G >= 0``). Its RBP ground
truth is the circuit's own (implicit differentiation of Kirchhoff's law), its trajectories
the RC settling transient of the nodes' capacitances, its energy the power of the solved
currents times the settling time (:meth:`ResistiveEngine.counters`)."""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, ConfigurationError
from ..resistive import learning, solver
from ..blas import blas_threads
from .protocol import Engine, Estimate, StepResult, register

#: The KCL tolerance (volts) of the ground truth's operating point (solved in float64).
TOL = 1e-10
#: BLAS threads of a step: its products have a mini-batch of rows, where a second thread
#: costs more than it gains (benchmarks/bench_resistive.py: 2 threads 0.3-0.5x of one).
THREADS = 1
#: The settling criterion of the energy per phase: the slowest mode decayed to 0.1 %.
SETTLING = 1e-3


@register("resistive")
class ResistiveEngine(Engine):
    """EP in a resistive network (module docstring)."""

    reference_readout = False
    state_variable, state_units = "V", "V"

    optimizers = True

    def __init__(self, net, settings, batch_size=None):
        super().__init__(net, settings)
        from ..resistive import ResistiveNetwork
        if not isinstance(net, ResistiveNetwork):
            raise ConfigurationError("engine.name: the resistive engine needs network.kind = "
                                     "\"resistive\"")
        try:
            plan = self.plan
        except ArgumentError as e:
            raise ConfigurationError(str(e)) from None
        if plan.complex:
            raise ConfigurationError("%s: the resistive engine runs real nudges (holomorphic EP "
                                     "runs complex ones), got %r"
                                     % (settings.plan_field, list(plan.nudges)))
        self.energy = {"free": 0.0, "nudged": 0.0}   # joules, cumulative
        self._settle = None

    def _count_energy(self, x, points, drive):
        """Dissipated energy of the phases just solved: power times the settling time (of
        the conductances at the start of the run: the slowest mode's time constant)."""
        if self._settle is None:
            self._settle = solver.settling_time(self.net, SETTLING)
        for b, p in points.items():
            e = float(np.sum(solver.power(self.net, x, p.state, drive))) * self._settle
            self.energy["nudged" if b else "free"] += e

    def estimate(self, x, y, state=None, rng=None):
        """The EP estimate of the plan's operating points (parameters unchanged); ``rng``
        draws a random-sign batch's sign."""
        with blas_threads(THREADS):
            drive = solver.input_drive(self.net, x)
            g, points = learning.ep_gradient(self.net, x, y, plan=self.plan.for_batch(rng),
                                             drive=drive)
        self._count_energy(x, points, drive)
        free = points[0.0].state
        return Estimate(g, free, float(np.mean(learning.cost(self.net, free, y))))

    def infer(self, x, state=None):
        """The output voltages at the free operating point."""
        with blas_threads(THREADS):
            return solver.operating_point(self.net, x).state

    def free_state(self, x, state=None):
        return self.infer(x, state)

    def step(self, x, y, optimizer, state=None, rng=None, want_estimate=False):
        """The estimate, the optimizer's update, then every conductance projected to
        ``G >= 0``; with ``want_estimate`` the change the conductances took is reported
        (as a gradient) where the projection cut it."""
        est = self.estimate(x, y, state, rng)
        before = {k: v.copy() for k, v in self.net.params.items()} if want_estimate else None
        optimizer.apply(self.net.params, est)
        for v in self.net.params.values():
            np.maximum(v, 0.0, out=v)
        applied = None
        if want_estimate:
            applied = {k: -(self.net.params[k] - before[k]) / optimizer.lrs[k]
                       for k in self.net.params if optimizer.lrs.get(k)}
        return StepResult(est.state, est.cost, est if want_estimate else None, applied)

    def ground_truth(self, x, y, tol, label, state=None):
        """RBP's implicit gradient at the exactly solved free operating point (in float64
        whatever the engine's dtype), and that point (its residual and the share of hidden
        nodes held at a diode bound)."""
        net = self.net.in_float64()
        try:
            fp = solver.operating_point(net, x, tol=min(tol, TOL))
        except solver.OperatingPointError as e:
            raise solver.OperatingPointError("%s: %s" % (label, e)) from None
        return learning.rbp_gradient(net, x, y, fp), fp

    def phase_trajectory(self, x, y, beta, steps, state=None):
        """The RC settling transient of one phase: every node's capacitance ``c_node``
        charged by its current imbalance, ``c_node dV/dt = -(dE/dV + beta dC/dV)``, Euler
        steps of ``eps`` times the fastest node's time constant (ideal diodes clip)."""
        net = self.net
        B = np.shape(x)[0]
        V = {p: (np.zeros((B, net.sizes[p]), net.dtype) if state is None
                 else np.array(state[p], net.dtype))
             for p in net.state_pops}
        yv = net.targets_dict(y, B)["y"] if beta else None
        drive = solver.input_drive(net, x)
        H, _ = solver.hessian(net)
        h = self.settings.eps / float(np.max(np.diag(H)) + abs(beta))
        out = {p: [V[p].copy()] for p in net.state_pops}
        for _ in range(int(steps)):
            V = solver.relaxation_step(net, V, drive, beta, yv, h)
            for p in net.state_pops:
                out[p].append(V[p].copy())
        return {p: np.stack(v) for p, v in out.items()}, None

    def counters(self):
        return {"circuit_energy_j": dict(self.energy)}

    def state_dict(self):
        return {"energy/%s" % k: np.array(v) for k, v in self.energy.items()}

    def load_state_dict(self, d):
        for k in self.energy:
            self.energy[k] = float(d.get("energy/%s" % k, 0.0))


__all__ = ["ResistiveEngine", "TOL"]
