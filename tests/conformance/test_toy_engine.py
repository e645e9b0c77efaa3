"""An engine from outside the package, in this one file: registered with
``neurosim.engines.register``, it is built by name and passes the conformance suite with no
other module edited (docs/adding-an-engine.md walks through it).

The toy engine runs the plan's phases with plain Euler steps of :mod:`neurosim.relax` and
forms its estimate with :func:`neurosim.ep.contrast`: the reference engine's maths without
its fused BLAS paths, so it must match it to rounding."""
from __future__ import annotations

import numpy as np

import neurosim as ns
from neurosim.engines import Engine, Estimate, StepResult, register
from neurosim.dynamics import Dynamics

from conformance_checks import RATE, Case, Conformance, parametrize


@register("toy")
class ToyEngine(Engine):
    """Euler phases of the plan; the estimate from the observed states."""

    def _bind(self, x, y=None):          # checks x and y, naming them (a NetworkError)
        return Dynamics(self.net, x, y, clip=self.settings.clip)

    def _phase(self, dyn, s, beta, steps):
        return dyn.settle(s, self.settings.eps, beta, steps, self.settings.tol).state

    def estimate(self, x, y, state=None, rng=None):
        plan = self.plan.for_batch(rng)
        dyn = self._bind(x, y)
        s0 = self._phase(dyn, dyn.initial_state(state), 0.0, plan.free_steps)
        states = plan.run(lambda s, b: self._phase(dyn, s, b, plan.nudge_steps), s0)
        g = ns.ep.contrast(self.net, dyn.inputs, s0, states, plan, dyn.targets)
        cost = float(np.mean(ns.energy.cost(self.net, s0, y)))
        return Estimate(g, {p: v.copy() for p, v in s0.items()}, cost)

    def infer(self, x, state=None):
        dyn = self._bind(x)
        s = self._phase(dyn, dyn.initial_state(state), 0.0, self.settings.free_steps)
        return {p: ns.energy.rho(self.net.activation, v) for p, v in s.items()}

    def step(self, x, y, optimizer, state=None, rng=None, want_estimate=False):
        est = self.estimate(x, y, state, rng)
        optimizer.apply(self.net.params, est)
        return StepResult(est.state, est.cost, est if want_estimate else None)


def test_the_toy_engine_is_registered_and_built_by_name():
    assert "toy" in ns.engines.available()
    net = ns.layered([5, 4, 3], seed=0)
    assert isinstance(ns.engines.build("toy", net), ToyEngine)


@parametrize([Case("toy", "toy", RATE)])
class TestToyEngineConforms(Conformance):
    pass
