"""Equilibrium Propagation: gradient estimators and the second-phase traces of the theorem
(docs/maths.md sections 4 and 5).

Energy mode: ``g = (1/beta) [dE/dtheta(s_beta) - dE/dtheta(s0)]`` (one-sided), its symmetric
(+beta / -beta), random-sign and holomorphic (complex nudges on a circle, the real part of
the weighted sum; :class:`neurosim.plan.Plan`) versions, and continual EP (parameters move at every nudged
step). Vector-field mode: ``g = -(1/beta) (dF/dtheta)^T (s_beta - s0)``. Descend with
``theta <- theta - lr g``. All gradients are batch means with the keys of ``net.params``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import get_blas_funcs

from . import checks
from . import energy as en
from .errors import ArgumentError
from .plan import VARIANTS, Plan, nudge_weights
from .dynamics import Dynamics
from .relax import polish

__all__ = ["VARIANTS", "estimate", "gradient", "second_phase", "continual", "contrast",
           "add_energy_contrast", "add_plan_contrast", "energy_contrast", "readout_contrast",
           "EPResult", "SecondPhase", "ContinualResult"]


@dataclass
class EPResult:
    """An EP estimate with the states it came from: ``states`` one per nudge of the plan
    (``nudges``); ``s_plus`` / ``s_minus`` those at ``+beta`` / ``-beta`` (``s_minus`` only
    for symmetric)."""

    gradient: dict
    beta: float
    s0: dict
    s_plus: dict
    s_minus: dict | None
    free_steps: int
    nudge_steps: int
    nudges: tuple = ()
    states: list | None = None


@dataclass
class SecondPhase:
    """Nudged-phase traces: ``u[pop]`` ``(steps, batch, n)`` with
    ``u_k = (s_{k+1} - s_k) / (eps beta)`` per example; ``P[k]`` the parameter dicts
    ``(1/beta) [dE/dtheta(s_k) - dE/dtheta(s0)]`` (batch mean); ``states[pop]`` the nudged
    trajectory ``(steps + 1, batch, n)`` starting at ``s0``."""

    u: dict
    P: list
    s0: dict
    states: dict
    beta: float
    eps: float


@dataclass
class ContinualResult:
    """Continual EP: the parameters after the nudged phase, the total change, and the
    equivalent gradient ``-(total change) / lr`` (per key)."""

    params: dict
    update: dict
    gradient: dict
    s0: dict


def _check_beta(beta):
    return checks.nonzero("beta", beta)


def _check_steps(name, v, minimum=0):
    return checks.integer(name, v, minimum, allow_none=True)


def _phases(net, x, y, eps, free_steps, tol, state, clip):
    """Bind the batch and run the free phase; returns (Dynamics, s0, steps taken)."""
    free_steps = _check_steps("free_steps", free_steps)
    dyn = Dynamics(net, x, y, clip=clip)
    if dyn.targets is None:
        raise ArgumentError("EP needs targets y of shape (batch, n_out)")
    s = dyn.initial_state(state)
    if free_steps is None:
        res = dyn.run(s, eps, steps=1_000_000, tol=tol)
    else:
        res = dyn.run(s, eps, steps=int(free_steps))
    return dyn, res.state, res.steps


def _nudge(dyn, s0, eps, beta, nudge_steps, tol):
    nudge_steps = _check_steps("nudge_steps", nudge_steps, 1)
    s = {p: v.copy() for p, v in s0.items()}
    if nudge_steps is None:
        res = dyn.run(s, eps, beta=beta, steps=1_000_000, tol=tol)
    else:
        res = dyn.run(s, eps, beta=beta, steps=int(nudge_steps))
    return res.state, res.steps


def readout_contrast(net, targets, states, plan):
    """A softmax readout's share of the estimate: its parameters appear only in
    ``beta C``, so the plan's weights give them ``sum_i c_i beta_i dC/dtheta(s_i)`` (the
    nudged state's ``dC/dtheta`` one-sided, the mean of the ``+beta`` and ``-beta`` states'
    symmetric, the real part of the mean over the circle holomorphic; docs/maths.md 12);
    ``states`` are the hidden rates of the plan's observations."""
    if targets is None:
        raise ArgumentError("a softmax readout's EP estimate needs the targets")
    out = None
    for c, b, r in zip(plan.weights, plan.nudges, states):
        if b == 0:
            continue
        g = en.readout_gradient(net, r, targets)
        w = c * b if plan.complex else float(np.real(c * b))
        out = {k: w * v for k, v in g.items()} if out is None else \
            {k: out[k] + w * v for k, v in g.items()}
    return plan.real(out, net.dtype)


def add_energy_contrast(net, inputs, ra, rb, coeffs, into, scratch=None):
    """``into[k] += coeffs[k] [dE/dtheta_k(a) - dE/dtheta_k(b)]`` for every weight and bias
    (energy mode, batch mean; a key whose coefficient is 0 is skipped) from the rates of the
    two states: ``dE/dW_ab = -rho_a^T rho_b / B`` (half for a lateral matrix, zero
    diagonal), ``dE/db_p = -rho_p / B``; for an input projection the input is the same in both
    states, so the difference is the single product ``-x^T (r_b^a - r_b^b) / B``. Dense
    products are accumulated by BLAS gemm straight into the C-ordered arrays of ``into``
    (fresh arrays for an estimate, the weights themselves for a fused SGD step);
    ``scratch``: optional arrays per state population for the rate differences."""
    B = next(iter(inputs.values())).shape[0]
    gemm = get_blas_funcs("gemm", dtype=net.dtype)
    d = {p: np.subtract(ra[p], rb[p], out=None if scratch is None else scratch[p])
         for p in net.state_pops}
    for t in net.terms:
        if t.transpose or not coeffs[t.key]:
            continue
        w = into[t.key]
        alpha = -coeffs[t.key] / B   # into += alpha (r_src^T r_tgt at a - the same at b)
        if t.conv is not None:                 # a kernel: the correlations of the two states
            if t.source in inputs:   # max pooling: the input's switches, the same in both
                m = en.term_outer(net, t, inputs[t.source], d[t.target], inputs)
            else:                    # max pooling: each state at its own switches
                m = en.term_outer(net, t, ra[t.source], ra[t.target], ra)
                m -= en.term_outer(net, t, rb[t.source], rb[t.target], rb)
            m *= alpha
            w += m
            continue
        if t.source == t.target:               # lateral: half the product, zero diagonal
            m = np.zeros_like(w)
            mt = m.T
            gemm(1.0, ra[t.target].T, ra[t.source].T, 1.0, mt, 0, 1, 1)
            gemm(-1.0, rb[t.target].T, rb[t.source].T, 1.0, mt, 0, 1, 1)
            np.fill_diagonal(m, 0.0)
            m *= alpha * (0.5 if t.lateral else 1.0)
            w += m
            continue
        if not w.flags.c_contiguous or w.dtype != net.dtype:
            raise ArgumentError("into[%r] must be a C-ordered %s array (BLAS accumulates into "
                                "it in place)" % (t.key, np.dtype(net.dtype).name))
        wt = w.T                               # F-ordered view: W^T += alpha r_b^T r_a
        if t.source in inputs:
            r = gemm(alpha, d[t.target].T, inputs[t.source].T, 1.0, wt, 0, 1, 1)
        else:
            gemm(alpha, ra[t.target].T, ra[t.source].T, 1.0, wt, 0, 1, 1)
            r = gemm(-alpha, rb[t.target].T, rb[t.source].T, 1.0, wt, 0, 1, 1)
        if not np.may_share_memory(r, w):      # pragma: no cover
            raise RuntimeError("BLAS gemm did not update %r in place" % t.key)
    for p in net.state_pops:
        key = "b:%s" % p
        if coeffs[key]:
            into[key] += d[p].sum(axis=0) * (-coeffs[key] / B)


def add_plan_contrast(net, inputs, rates, plan, scale, into, scratch=None):
    """``into[k] += scale[k] sum_i c_i dE/dtheta_k(s_i)`` (energy mode, batch mean) from the
    rates ``rates`` of the plan's observations, ``c`` the plan's weights: as the weights sum
    to 0, the sum of ``c_i [dE/dtheta(s_i) - dE/dtheta(s_0)]`` over ``i >= 1``, one
    :func:`add_energy_contrast` each (one for a two-nudge plan). ``scale``: a number per
    parameter key (1 for the estimate, ``-lr`` for a fused SGD step). A complex plan's
    (holomorphic EP) estimate is the real part of the sum, formed from its complex rates."""
    if plan.complex:
        g = plan.combine([en.rates_dE_dtheta(net, dict(r, **inputs)) for r in rates], net.dtype)
        keys = [t.key for t in net.terms if not t.transpose] + \
            ["b:%s" % p for p in net.state_pops]
        for k in keys:
            if scale[k]:
                into[k] += scale[k] * g[k]
        return
    c = plan.weights
    for ci, r in zip(c[1:], rates[1:]):
        add_energy_contrast(net, inputs, r, rates[0], {k: v * ci for k, v in scale.items()},
                            into, scratch)


def energy_contrast(net, inputs, rates, plan, targets=None):
    """The EP estimate ``sum_i c_i dE/dtheta(s_i)`` (energy mode, batch mean) from the rates
    of the plan's observations (:func:`add_plan_contrast` into fresh arrays); a softmax
    readout's parameters get :func:`readout_contrast` (``targets``: the targets dict)."""
    g = {t.key: np.zeros_like(net.params[t.key]) for t in net.terms if not t.transpose}
    g.update({"b:%s" % p: np.zeros_like(net.params["b:%s" % p]) for p in net.state_pops})
    add_plan_contrast(net, inputs, rates, plan, dict.fromkeys(g, 1.0), g)
    if net.readout == "softmax":
        g.update(readout_contrast(net, targets, rates, plan))
    return {k: g[k] for k in net.params}


def contrast(net, inputs, s0, states, plan, targets=None):
    """The EP estimate of the plan's observed states ``states`` (one per nudge):
    ``sum_i c_i dE/dtheta(s_i)`` (energy) or ``-(dF/dtheta)^T sum_i c_i (s_i - s0)`` at the
    free state ``s0`` (vector field), batch mean (for a complex plan its real part, in the
    network's dtype: :meth:`~neurosim.plan.Plan.real`); ``inputs`` is the dict of input
    populations; ``targets`` the targets dict (needed by a softmax readout)."""
    if net.dynamics == "energy":
        return energy_contrast(net, inputs, [en.state_rates(net, s) for s in states], plan,
                               targets)
    lin = en.Linearization(net, s0, inputs)
    g = lin.param_vjp(plan.combine([{p: s[p] - s0[p] for p in net.state_pops} for s in states],
                                   net.dtype))
    return {k: -v for k, v in g.items()}


def estimate(net, x, y, beta=None, variant="one_sided", eps=0.1, nudge_steps=None,
             free_steps=None, tol=1e-12, state=None, clip=False, rng=None, nudges=None,
             points=4):
    """Run the EP phases and return an :class:`EPResult` (see :func:`gradient`)."""
    if nudges is None:
        _check_beta(beta)
        checks.choice("variant", variant, VARIANTS)
    the_plan = Plan.of(beta, variant, nudges, points=points).for_batch(rng)
    the_plan.check_dynamics(net, clip, "nudges" if nudges else "variant")
    dyn, s0, nf = _phases(net, x, y, eps, free_steps, tol, state, clip)
    steps = []

    def run(s, b):
        s, n = _nudge(dyn, s, eps, b, nudge_steps, tol)
        steps.append(n)
        return s

    states = the_plan.run(run, s0)
    g = contrast(net, dyn.inputs, s0, states, the_plan, dyn.targets)
    by = dict(zip(the_plan.nudges, states))
    b = the_plan.nudged[0]      # +beta (signed for random sign), run first
    return EPResult(gradient=g, beta=b, s0=s0, s_plus=by[b], s_minus=by.get(-b),
                    free_steps=nf, nudge_steps=steps[0] if steps else 0, nudges=the_plan.nudges,
                    states=states)


def gradient(net, x, y, beta=None, variant="one_sided", eps=0.1, nudge_steps=None,
             free_steps=None, tol=1e-12, state=None, clip=False, rng=None, nudges=None,
             points=4):
    """The EP estimate of ``dL/dtheta`` (batch mean), a dict with the keys of ``net.params``.

    Parameters
    ----------
    beta : float
        Nudging strength (non-zero); ``random_sign`` flips its sign with probability 1/2;
        the radius of the circle of nudges for ``holomorphic``.
    variant : "one_sided" | "symmetric" | "random_sign" | "holomorphic"
        ``holomorphic``: ``points`` complex nudges ``beta e^(2 pi i k / points)`` on complex
        states, the estimate the real part (analytic dynamics: logistic, ``clip=False``).
    nudges : list of numbers, optional
        The plan's nudge strengths (``0``: the free state), replacing ``beta`` and
        ``variant`` (:class:`neurosim.plan.Plan`).
    points : int
        The number of holomorphic nudges (at least 2).
    nudge_steps, free_steps : int or None
        Fixed Euler step counts; None relaxes each phase until ``max |F| < tol``.
    state : dict, optional
        Warm start of the free phase (persistent particles).
    clip : bool
        Project states to [0, 1] after each step (the 2017 recipe).
    rng : numpy Generator or int, optional
        Source of the random sign.
    """
    return estimate(net, x, y, beta, variant=variant, eps=eps, nudge_steps=nudge_steps,
                    free_steps=free_steps, tol=tol, state=state, clip=clip, rng=rng,
                    nudges=nudges, points=points).gradient


def second_phase(net, x, y, beta, eps, steps, state=None, tol=1e-13):
    """The nudged phase started exactly at the free fixed point, with the theorem's traces.

    ``u[pop][k]`` approaches ``-Sbar_k`` and ``P[k]`` approaches ``Thetabar_k`` as beta -> 0
    (:func:`neurosim.rbp.side_network` with the same ``eps``).
    """
    _check_beta(beta)
    steps = int(steps)
    if steps < 1:
        raise ArgumentError("steps must be a positive integer, got %r" % (steps,))
    dyn = Dynamics(net, x, y)
    if dyn.targets is None:
        raise ArgumentError("second_phase needs targets y of shape (batch, n_out)")
    if state is None:
        s0 = polish(net, dyn.inputs, dyn.run(dyn.initial_state(), eps, steps=10_000_000,
                                             tol=tol).state)
    else:
        s0 = dyn.initial_state(state)
    s = {p: v.copy() for p, v in s0.items()}
    traj = dyn.run(s, eps, beta=beta, steps=steps, record=True).trajectory
    c = nudge_weights([0.0, beta])[1]       # the one-sided weight of the nudged observation
    u = {p: np.diff(traj[p], axis=0) * (c / eps) for p in net.state_pops}
    e0 = en.dE_dtheta(net, s0, dyn.inputs) if net.dynamics == "energy" else None
    lin = None if net.dynamics == "energy" else en.Linearization(net, s0, dyn.inputs)
    P = []
    for k in range(steps):
        sk = {p: traj[p][k] for p in net.state_pops}
        if net.dynamics == "energy":
            # (1/beta) [d(E + beta C)/dtheta(s_k) - dE/dtheta(s0)]: the cost's own term is a
            # softmax readout's (zero for a state readout)
            ek, ck = en.dE_dtheta(net, sk, dyn.inputs), en.dC_dtheta(net, sk, dyn.targets)
            P.append({kk: (ek[kk] - e0[kk]) * c + ck[kk] for kk in ek})
        else:
            g = lin.param_vjp({p: sk[p] - s0[p] for p in net.state_pops})
            P.append({kk: -v * c for kk, v in g.items()})
    return SecondPhase(u=u, P=P, s0=s0, states=traj, beta=beta, eps=eps)


def continual(net, x, y, beta, lr, eps=0.1, nudge_steps=20, free_steps=None, tol=1e-12,
              state=None, clip=False):
    """Continual EP (Ernoult et al. 2020): during the nudged phase, after every Euler step
    apply ``theta -= (lr/beta) [dE/dtheta(s_{k+1}) - dE/dtheta(s_k)]``, and let the next step
    use the updated parameters. ``lr`` is a number or a dict per parameter key.
    Returns a :class:`ContinualResult`; ``net`` itself is not modified."""
    _check_beta(beta)
    nudge_steps = _check_steps("nudge_steps", nudge_steps, 1)
    if net.dynamics != "energy":
        raise ArgumentError("continual EP is defined here for energy dynamics only")
    lrs = lr if isinstance(lr, dict) else {k: float(lr) for k in net.params}
    missing = set(net.params) - set(lrs)
    if missing:
        raise ArgumentError("lr dict is missing keys %s" % sorted(missing))
    dyn, s0, _ = _phases(net, x, y, eps, free_steps, tol, state, clip)
    work = net.copy()
    s = {p: v.copy() for p, v in s0.items()}
    prev = en.dE_dtheta(work, s, dyn.inputs)
    c = nudge_weights([0.0, beta])[1]       # the one-sided weight of the nudged observation
    for _ in range(int(nudge_steps)):
        d = Dynamics(work, dyn.inputs, dyn.targets, clip=clip)
        d.step(s, eps, beta)
        cur = en.dE_dtheta(work, s, dyn.inputs)
        if work.readout == "softmax":   # d(E + beta C)/dtheta: the readout's own term
            for k, v in en.dC_dtheta(work, s, dyn.targets).items():
                cur[k] += beta * v
        for k in work.params:
            work.params[k] -= (lrs[k] * c) * (cur[k] - prev[k])
        prev = cur
    update = {k: work.params[k] - net.params[k] for k in net.params}
    grad = {k: -update[k] / lrs[k] if lrs[k] else np.zeros_like(update[k]) for k in update}
    return ContinualResult(params=work.params, update=update, gradient=grad, s0=s0)
