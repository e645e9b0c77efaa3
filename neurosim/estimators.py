"""One interface for gradient estimators (DESIGN.md, "Estimators"; after the estimator
interface of the MIT-licensed rain-neuromorphics/energy-based-learning, written anew here).

An estimator is bound to its settings and gives, for a network and a batch,

* :meth:`Estimator.gradient` -- the whole gradient of the batch-mean loss, keyed like
  ``net.params``;
* :meth:`Estimator.detailed` -- its time-resolved form over ``steps`` steps, a list of such
  dicts: EP's ``P_k = (1/beta) [dE/dtheta(s_k^beta) - dE/dtheta(s0)]`` along the nudged phase,
  RBP's ``Thetabar_k`` along the side network, BPTT's gradient through the last ``k`` steps
  (the "matching gradients" curves of the theorem, docs/maths.md section 5);
* :meth:`Estimator.step` -- one training step through an engine (what the trainer calls):
  EP is the engine's own step (its phases, its plan, its update), continual EP moves the
  weights along the nudged phase from the engine's free state, RBP descends the implicit
  gradient at the exact fixed point polished from the engine's free state.

Each is a thin call into the one function that holds its formula (:mod:`neurosim.ep`,
:mod:`neurosim.rbp`); :func:`make` builds one by name.
"""
from __future__ import annotations

import numpy as np

from . import checks
from . import energy as en
from . import ep
from . import rbp
from .engines.protocol import StepResult
from .errors import ArgumentError, ConfigurationError
from .fixed_point import free_fixed_point


class Estimator:
    """Base class: ``gradient(net, x, y, state=None)`` and ``detailed(net, x, y, steps)``."""

    name = "estimator"

    def gradient(self, net, x, y, state=None):
        raise NotImplementedError

    def detailed(self, net, x, y, steps, state=None):
        raise NotImplementedError

    def step(self, engine, x, y, optimizer, state=None, rng=None, want_estimate=False,
             label="batch"):
        """One training step through ``engine``: this estimator's gradient at the engine's
        own free state (``engine.free_state``), applied by ``optimizer``. Returns a
        :class:`~neurosim.engines.protocol.StepResult`; ``label`` names the batch in errors."""
        s = engine.free_state(x, state)
        g = self.gradient(engine.net, x, y, state=s)
        optimizer.apply(engine.net.params, g)
        return StepResult(s, _cost(engine.net, s, y), g)

    def __repr__(self):
        fields = ", ".join("%s=%r" % kv for kv in vars(self).items())
        return "%s(%s)" % (type(self).__name__, fields)


class EP(Estimator):
    """Equilibrium Propagation: ``variant`` one_sided, symmetric, random_sign or holomorphic
    (``points`` complex nudges); vector-field EP when the network has vector-field dynamics
    (:func:`neurosim.ep.gradient`). Phases of ``free_steps`` / ``nudge_steps`` Euler steps, or
    relaxed to convergence when None."""

    name = "ep"

    def __init__(self, beta, variant="one_sided", eps=0.1, free_steps=None, nudge_steps=None,
                 clip=False, rng=None, nudges=None, points=4):
        self.beta = checks.nonzero("beta", beta)
        self.variant = checks.choice("variant", variant, ep.VARIANTS)
        self.nudges = tuple(nudges) if nudges else None
        self.points = points
        self.eps, self.clip, self.rng = checks.positive("eps", eps), bool(clip), rng
        self.free_steps = checks.integer("free_steps", free_steps, 0, allow_none=True)
        self.nudge_steps = checks.integer("nudge_steps", nudge_steps, 1, allow_none=True)

    def gradient(self, net, x, y, state=None):
        return ep.gradient(net, x, y, self.beta, variant=self.variant, eps=self.eps,
                           free_steps=self.free_steps, nudge_steps=self.nudge_steps,
                           state=state, clip=self.clip, rng=self.rng, nudges=self.nudges,
                           points=self.points)

    def step(self, engine, x, y, optimizer, state=None, rng=None, want_estimate=False,
             label="batch"):
        """The engine's own EP step: its phases and plan, its update (fused where it is)."""
        return engine.step(x, y, optimizer, state=state, rng=rng, want_estimate=want_estimate)

    def detailed(self, net, x, y, steps, state=None):
        """``P_k`` over ``steps`` nudged steps from the converged free state (one-sided)."""
        return ep.second_phase(net, x, y, self.beta, self.eps, steps, state=state).P


class ContinualEP(Estimator):
    """Continual EP (the weights move at every nudged step, :func:`neurosim.ep.continual`):
    the gradient equivalent to the total change, ``-(change) / lr``."""

    name = "continual_ep"

    def __init__(self, beta, lr, eps=0.1, nudge_steps=20, clip=False):
        self.beta, self.lr = checks.nonzero("beta", beta), lr
        self.eps, self.clip = checks.positive("eps", eps), bool(clip)
        self.nudge_steps = checks.integer("nudge_steps", nudge_steps, 1)

    def gradient(self, net, x, y, state=None):
        if self.lr is None:
            raise ArgumentError("lr: continual EP's gradient needs the learning rates (the "
                                "weights move inside its phase); train with step()")
        return ep.continual(net, x, y, self.beta, self.lr, eps=self.eps,
                            nudge_steps=self.nudge_steps, state=state, clip=self.clip).gradient

    def step(self, engine, x, y, optimizer, state=None, rng=None, want_estimate=False,
             label="batch"):
        """The nudged phase from the engine's free state, the weights moving at every step
        with the optimizer's learning rates (plain SGD)."""
        net = engine.net
        s = engine.free_state(x, state)
        out = ep.continual(net, x, y, self.beta, optimizer.lrs, eps=self.eps,
                           nudge_steps=self.nudge_steps, free_steps=0, state=s, clip=self.clip)
        net.params.update({k: v.astype(net.dtype) for k, v in out.params.items()})
        return StepResult(s, _cost(net, s, y), out.gradient)

    def detailed(self, net, x, y, steps, state=None):
        """The equivalent gradient after 1, 2, ... ``steps`` nudged steps."""
        return [ContinualEP(self.beta, self.lr, self.eps, k, self.clip).gradient(net, x, y, state)
                for k in range(1, int(steps) + 1)]


class RBP(Estimator):
    """Recurrent backpropagation: ``method`` implicit (``solver`` dense, cg, gmres, neumann or
    auto), almeida_pineda (discrete side network) or continuous (:func:`neurosim.rbp.gradient`)."""

    name = "rbp"

    def __init__(self, method="implicit", solver="auto", eps=0.1, steps=None, clip=False,
                 tol=1e-12):
        self.method = checks.choice("method", method, ("implicit", "almeida_pineda",
                                                       "continuous"))
        self.solver, self.eps, self.steps = solver, checks.positive("eps", eps), steps
        self.clip, self.tol = bool(clip), tol

    def gradient(self, net, x, y, state=None):
        return rbp.gradient(net, x, y, method=self.method, eps=self.eps, steps=self.steps,
                            solver=self.solver, tol=self.tol, state=state, clip=self.clip)

    def step(self, engine, x, y, optimizer, state=None, rng=None, want_estimate=False,
             label="batch"):
        """The implicit gradient at the exact free fixed point polished from the engine's own
        free state (:meth:`~neurosim.engines.protocol.Engine.ground_truth`, verified to
        ``tol``), applied by ``optimizer``."""
        s = engine.free_state(x, state)
        g, fp = engine.ground_truth(x, y, self.tol, label, state=s)
        optimizer.apply(engine.net.params, g)
        return StepResult(s, _cost(engine.net, s, y), g, truth=(g, fp))

    def detailed(self, net, x, y, steps, state=None):
        """``Thetabar_k`` of the side network (continuous time for ``method="continuous"``)."""
        return rbp.side_network(net, x, y, self.eps, steps, state=state,
                                continuous=self.method == "continuous").Theta


class BPTT(Estimator):
    """Backpropagation through ``steps`` Euler steps of the free phase
    (:func:`neurosim.rbp.bptt`; None: as many as the free phase takes to converge)."""

    name = "bptt"

    def __init__(self, eps=0.1, steps=None, clip=False):
        self.eps, self.clip = checks.positive("eps", eps), bool(clip)
        self.steps = checks.integer("steps", steps, 1, allow_none=True)

    def gradient(self, net, x, y, state=None):
        return rbp.gradient(net, x, y, method="bptt", eps=self.eps, steps=self.steps,
                            state=state, clip=self.clip)

    def detailed(self, net, x, y, steps, state=None):
        """The gradient carried back through the last 0, 1, ..., ``steps - 1`` steps of a free
        phase sitting at the free fixed point (``state``; found exactly when None): equal to
        discrete RBP's ``Thetabar_k`` for every k."""
        if state is None:
            state = free_fixed_point(net, x, clip=self.clip, eps=self.eps, tol=1e-12).state
        return rbp.bptt(net, net.inputs_dict(x), y, self.eps, steps, state=state,
                        clip=self.clip).Theta[:int(steps)]


ESTIMATORS = {"ep": EP, "continual_ep": ContinualEP, "rbp": RBP, "bptt": BPTT}


def make(name, **settings):
    """The estimator ``name`` (``ep``, ``continual_ep``, ``rbp``, ``bptt``) with ``settings``."""
    return ESTIMATORS[checks.choice("name", name, tuple(ESTIMATORS))](**settings)


def for_engine(rule, engine, tol=1e-8):
    """The estimator of ``learning.rule`` with the engine's settings, as the trainer uses it
    (``tol``: the residual RBP's fixed point is verified to)."""
    s = engine.settings
    if rule == "ep":
        return EP(s.beta, s.variant, eps=s.eps, free_steps=s.free_steps,
                  nudge_steps=s.nudge_steps, clip=s.clip, nudges=s.nudges or None,
                  points=s.points)
    if rule == "continual_ep":
        return ContinualEP(s.beta, None, eps=s.eps, nudge_steps=s.nudge_steps, clip=s.clip)
    if rule == "rbp":
        return RBP(eps=s.eps, clip=s.clip, tol=tol)
    raise ConfigurationError("learning.rule: expected one of ep, continual_ep, rbp, got %r"
                             % (rule,))


def _cost(net, s, y):
    return float(np.mean(en.cost(net, s, y)))


__all__ = ["Estimator", "EP", "ContinualEP", "RBP", "BPTT", "ESTIMATORS", "make", "for_engine"]
