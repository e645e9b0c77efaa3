"""One interface for gradient estimators (DESIGN.md, "Estimators"; after the estimator
interface of the MIT-licensed rain-neuromorphics/energy-based-learning, written anew here).

An estimator is bound to its settings and gives, for a network and a batch,

* :meth:`Estimator.gradient` -- the whole gradient of the batch-mean loss, keyed like
  ``net.params``;
* :meth:`Estimator.detailed` -- its time-resolved form over ``steps`` steps, a list of such
  dicts: EP's ``P_k = (1/beta) [dE/dtheta(s_k^beta) - dE/dtheta(s0)]`` along the nudged phase,
  RBP's ``Thetabar_k`` along the side network, BPTT's gradient through the last ``k`` steps
  (the "matching gradients" curves of the theorem, docs/maths.md section 5).

Each is a thin call into the one function that holds its formula (:mod:`neurosim.ep`,
:mod:`neurosim.rbp`); :func:`make` builds one by name.
"""
from __future__ import annotations

from . import checks
from . import ep
from . import rbp
from .fixed_point import free_fixed_point


class Estimator:
    """Base class: ``gradient(net, x, y, state=None)`` and ``detailed(net, x, y, steps)``."""

    name = "estimator"

    def gradient(self, net, x, y, state=None):
        raise NotImplementedError

    def detailed(self, net, x, y, steps, state=None):
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join("%s=%r" % kv for kv in vars(self).items())
        return "%s(%s)" % (type(self).__name__, fields)


class EP(Estimator):
    """Equilibrium Propagation: ``variant`` one_sided, symmetric or random_sign; vector-field EP
    when the network has vector-field dynamics (:func:`neurosim.ep.gradient`). Phases of
    ``free_steps`` / ``nudge_steps`` Euler steps, or relaxed to convergence when None."""

    name = "ep"

    def __init__(self, beta, variant="one_sided", eps=0.1, free_steps=None, nudge_steps=None,
                 clip=False, rng=None):
        self.beta = checks.nonzero("beta", beta)
        self.variant = checks.choice("variant", variant, ep.VARIANTS)
        self.eps, self.clip, self.rng = checks.positive("eps", eps), bool(clip), rng
        self.free_steps = checks.integer("free_steps", free_steps, 0, allow_none=True)
        self.nudge_steps = checks.integer("nudge_steps", nudge_steps, 1, allow_none=True)

    def gradient(self, net, x, y, state=None):
        return ep.gradient(net, x, y, self.beta, variant=self.variant, eps=self.eps,
                           free_steps=self.free_steps, nudge_steps=self.nudge_steps,
                           state=state, clip=self.clip, rng=self.rng)

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
        return ep.continual(net, x, y, self.beta, self.lr, eps=self.eps,
                            nudge_steps=self.nudge_steps, state=state, clip=self.clip).gradient

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


__all__ = ["Estimator", "EP", "ContinualEP", "RBP", "BPTT", "ESTIMATORS", "make"]
