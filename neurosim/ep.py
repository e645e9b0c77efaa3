"""Equilibrium Propagation: gradient estimators and the second-phase traces of the theorem
(docs/maths.md sections 4 and 5).

Energy mode: ``g = (1/beta) [dE/dtheta(s_beta) - dE/dtheta(s0)]`` (one-sided), its symmetric
(+beta / -beta) and random-sign versions, and continual EP (parameters move at every nudged
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
from .relax import Dynamics, polish

VARIANTS = ("one_sided", "symmetric", "random_sign")
__all__ = ["VARIANTS", "estimate", "gradient", "second_phase", "continual", "random_sign",
           "nudged_phases", "contrast", "add_energy_contrast", "energy_contrast",
           "readout_contrast", "EPResult", "SecondPhase", "ContinualResult"]


@dataclass
class EPResult:
    """An EP estimate with the states it came from (``s_minus`` only for symmetric)."""

    gradient: dict
    beta: float
    s0: dict
    s_plus: dict
    s_minus: dict | None
    free_steps: int
    nudge_steps: int


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


def random_sign(rng=None):
    """The sign of beta for random-sign EP: +1 or -1 with probability 1/2 each, one uniform
    draw from ``rng`` (a Generator, or a seed for one). The one place this draw is made, so
    every engine flips the same batches for the same seeds."""
    return 1.0 if np.random.default_rng(rng).random() < 0.5 else -1.0


def nudged_phases(run, s0, beta, variant, rng=None):
    """The nudged phase(s) of an EP step from the free state ``s0``: ``run(s, beta)`` relaxes a
    copy of ``s0`` with nudging ``beta`` and returns the state the update reads. Returns
    ``(s_a, s_b, scale, beta)`` with the estimate ``scale [dE/dtheta(s_a) - dE/dtheta(s_b)]``:
    ``(s_+beta, s_-beta, 1/(2 beta))`` for symmetric, ``(s_beta, s0, 1/beta)`` otherwise, with
    the sign of ``beta`` drawn by :func:`random_sign` for random-sign EP. Every engine that
    runs EP phases in numpy goes through this function."""
    if variant not in VARIANTS:
        raise ArgumentError("variant must be one of %s, got %r" % (VARIANTS, variant))
    beta = float(beta)
    if variant == "random_sign":
        beta *= random_sign(rng)
    sa = run({p: v.copy() for p, v in s0.items()}, beta)
    if variant == "symmetric":
        return sa, run({p: v.copy() for p, v in s0.items()}, -beta), 1.0 / (2.0 * beta), beta
    return sa, s0, 1.0 / beta, beta


def readout_contrast(net, targets, ra, rb, symmetric):
    """A softmax readout's share of the contrast of ``E + beta C``: its parameters appear only
    in ``beta C``, so EP gives them ``dC/dtheta`` at the nudged state, the mean of the
    ``+beta`` and ``-beta`` states when ``symmetric`` (docs/maths.md 12); ``ra``, ``rb`` are
    the hidden rates of the two states of :func:`nudged_phases`."""
    if targets is None:
        raise ArgumentError("a softmax readout's EP estimate needs the targets")
    ga = en.readout_gradient(net, ra, targets)
    if not symmetric:
        return ga
    gb = en.readout_gradient(net, rb, targets)
    return {k: 0.5 * (ga[k] + gb[k]) for k in ga}


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


def energy_contrast(net, inputs, ra, rb, scale, targets=None, symmetric=False):
    """``scale [dE/dtheta(a) - dE/dtheta(b)]`` (energy mode, batch mean) from the rates of
    the two states (:func:`add_energy_contrast` into fresh arrays); a softmax readout's
    parameters get :func:`readout_contrast` (``targets``: the targets dict, ``symmetric``:
    the states are at ``+beta`` and ``-beta``)."""
    g = {t.key: np.zeros_like(net.params[t.key]) for t in net.terms if not t.transpose}
    g.update({"b:%s" % p: np.zeros_like(net.params["b:%s" % p]) for p in net.state_pops})
    add_energy_contrast(net, inputs, ra, rb, dict.fromkeys(g, scale), g)
    if net.readout == "softmax":
        g.update(readout_contrast(net, targets, ra, rb, symmetric))
    return {k: g[k] for k in net.params}


def contrast(net, inputs, s0, sa, sb, scale, targets=None, symmetric=False):
    """The EP estimate from its states: ``scale [dE/dtheta(sa) - dE/dtheta(sb)]`` (energy) or
    ``-scale (dF/dtheta)^T (sa - sb)`` at ``s0`` (vector field), batch mean; ``inputs`` is
    the dict of input populations; ``targets`` and ``symmetric`` as in
    :func:`energy_contrast` (needed by a softmax readout)."""
    if net.dynamics == "energy":
        return energy_contrast(net, inputs, en.state_rates(net, sa), en.state_rates(net, sb),
                               scale, targets, symmetric)
    lin = en.Linearization(net, s0, inputs)
    g = lin.param_vjp({p: sa[p] - sb[p] for p in net.state_pops})
    return {k: -scale * v for k, v in g.items()}


def estimate(net, x, y, beta, variant="one_sided", eps=0.1, nudge_steps=None, free_steps=None,
             tol=1e-12, state=None, clip=False, rng=None):
    """Run the EP phases and return an :class:`EPResult` (see :func:`gradient`)."""
    _check_beta(beta)
    if variant not in VARIANTS:
        raise ArgumentError("variant must be one of %s, got %r" % (VARIANTS, variant))
    dyn, s0, nf = _phases(net, x, y, eps, free_steps, tol, state, clip)
    steps = []

    def run(s, b):
        s, n = _nudge(dyn, s, eps, b, nudge_steps, tol)
        steps.append(n)
        return s

    sp, sb, scale, beta = nudged_phases(run, s0, beta, variant, rng)
    sm = sb if variant == "symmetric" else None
    nn = steps[0]
    g = contrast(net, dyn.inputs, s0, sp, sb, scale, dyn.targets, variant == "symmetric")
    return EPResult(gradient=g, beta=beta, s0=s0, s_plus=sp, s_minus=sm, free_steps=nf,
                    nudge_steps=nn)


def gradient(net, x, y, beta, variant="one_sided", eps=0.1, nudge_steps=None, free_steps=None,
             tol=1e-12, state=None, clip=False, rng=None):
    """The EP estimate of ``dL/dtheta`` (batch mean), a dict with the keys of ``net.params``.

    Parameters
    ----------
    beta : float
        Nudging strength (non-zero); ``random_sign`` flips its sign with probability 1/2.
    variant : "one_sided" | "symmetric" | "random_sign"
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
                    free_steps=free_steps, tol=tol, state=state, clip=clip, rng=rng).gradient


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
    u = {p: np.diff(traj[p], axis=0) / (eps * beta) for p in net.state_pops}
    e0 = en.dE_dtheta(net, s0, dyn.inputs) if net.dynamics == "energy" else None
    lin = None if net.dynamics == "energy" else en.Linearization(net, s0, dyn.inputs)
    P = []
    for k in range(steps):
        sk = {p: traj[p][k] for p in net.state_pops}
        if net.dynamics == "energy":
            # (1/beta) [d(E + beta C)/dtheta(s_k) - dE/dtheta(s0)]: the cost's own term is a
            # softmax readout's (zero for a state readout)
            ek, ck = en.dE_dtheta(net, sk, dyn.inputs), en.dC_dtheta(net, sk, dyn.targets)
            P.append({kk: (ek[kk] - e0[kk]) / beta + ck[kk] for kk in ek})
        else:
            g = lin.param_vjp({p: sk[p] - s0[p] for p in net.state_pops})
            P.append({kk: -v / beta for kk, v in g.items()})
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
    for _ in range(int(nudge_steps)):
        d = Dynamics(work, dyn.inputs, dyn.targets, clip=clip)
        d.step(s, eps, beta)
        cur = en.dE_dtheta(work, s, dyn.inputs)
        if work.readout == "softmax":   # d(E + beta C)/dtheta: the readout's own term
            for k, v in en.dC_dtheta(work, s, dyn.targets).items():
                cur[k] += beta * v
        for k in work.params:
            work.params[k] -= (lrs[k] / beta) * (cur[k] - prev[k])
        prev = cur
    update = {k: work.params[k] - net.params[k] for k in net.params}
    grad = {k: -update[k] / lrs[k] if lrs[k] else np.zeros_like(update[k]) for k in update}
    return ContinualResult(params=work.params, update=update, gradient=grad, s0=s0)
