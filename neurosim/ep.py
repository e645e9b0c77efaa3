"""Equilibrium Propagation: gradient estimators and the second-phase traces of the theorem
(MATH.md sections 4 and 5).

Energy mode: ``g = (1/beta) [dE/dtheta(s_beta) - dE/dtheta(s0)]`` (one-sided), its symmetric
(+beta / -beta) and random-sign versions, and continual EP (parameters move at every nudged
step). Vector-field mode: ``g = -(1/beta) (dF/dtheta)^T (s_beta - s0)``. Descend with
``theta <- theta - lr g``. All gradients are batch means with the keys of ``net.params``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import energy as en
from .relax import Dynamics, polish

VARIANTS = ("one_sided", "symmetric", "random_sign")


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
    if not np.isfinite(beta) or beta == 0:
        raise ValueError("beta must be a non-zero finite number, got %r" % (beta,))


def _check_steps(name, v, minimum=0):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError("%s must be an integer >= %d or None, got %r" % (name, minimum, v))
    return int(v)


def _phases(net, x, y, eps, free_steps, tol, state, clip):
    """Bind the batch and run the free phase; returns (Dynamics, s0, steps taken)."""
    free_steps = _check_steps("free_steps", free_steps)
    dyn = Dynamics(net, x, y, clip=clip)
    if dyn.targets is None:
        raise ValueError("EP needs targets y of shape (batch, n_out)")
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


def _estimate(net, dyn, s0, sa, sb, scale):
    """``scale * [dE/dtheta(sa) - dE/dtheta(sb)]`` (energy) or the vector-field form."""
    if net.dynamics == "energy":
        ga, gb = en.dE_dtheta(net, sa, dyn.inputs), en.dE_dtheta(net, sb, dyn.inputs)
        return {k: scale * (ga[k] - gb[k]) for k in ga}
    lin = en.Linearization(net, s0, dyn.inputs)
    g = lin.param_vjp({p: sa[p] - sb[p] for p in net.state_pops})
    return {k: -scale * v for k, v in g.items()}


def estimate(net, x, y, beta, variant="one_sided", eps=0.1, nudge_steps=None, free_steps=None,
             tol=1e-12, state=None, clip=False, rng=None):
    """Run the EP phases and return an :class:`EPResult` (see :func:`gradient`)."""
    _check_beta(beta)
    if variant not in VARIANTS:
        raise ValueError("variant must be one of %s, got %r" % (VARIANTS, variant))
    dyn, s0, nf = _phases(net, x, y, eps, free_steps, tol, state, clip)
    if variant == "random_sign":
        rng = np.random.default_rng(rng)
        beta = float(beta) * (1.0 if rng.random() < 0.5 else -1.0)
    sp, nn = _nudge(dyn, s0, eps, beta, nudge_steps, tol)
    if variant == "symmetric":
        sm, _ = _nudge(dyn, s0, eps, -beta, nudge_steps, tol)
        g = _estimate(net, dyn, s0, sp, sm, 1.0 / (2.0 * beta))
    else:
        sm = None
        g = _estimate(net, dyn, s0, sp, s0, 1.0 / beta)
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
        raise ValueError("steps must be a positive integer, got %r" % (steps,))
    dyn = Dynamics(net, x, y)
    if dyn.targets is None:
        raise ValueError("second_phase needs targets y of shape (batch, n_out)")
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
            ek = en.dE_dtheta(net, sk, dyn.inputs)
            P.append({kk: (ek[kk] - e0[kk]) / beta for kk in ek})
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
        raise ValueError("continual EP is defined here for energy dynamics only")
    lrs = lr if isinstance(lr, dict) else {k: float(lr) for k in net.params}
    missing = set(net.params) - set(lrs)
    if missing:
        raise ValueError("lr dict is missing keys %s" % sorted(missing))
    dyn, s0, _ = _phases(net, x, y, eps, free_steps, tol, state, clip)
    work = net.copy()
    s = {p: v.copy() for p, v in s0.items()}
    prev = en.dE_dtheta(work, s, dyn.inputs)
    for _ in range(int(nudge_steps)):
        d = Dynamics(work, dyn.inputs, dyn.targets, clip=clip)
        d.step(s, eps, beta)
        cur = en.dE_dtheta(work, s, dyn.inputs)
        for k in work.params:
            work.params[k] -= (lrs[k] / beta) * (cur[k] - prev[k])
        prev = cur
    update = {k: work.params[k] - net.params[k] for k in net.params}
    grad = {k: -update[k] / lrs[k] if lrs[k] else np.zeros_like(update[k]) for k in update}
    return ContinualResult(params=work.params, update=update, gradient=grad, s0=s0)
