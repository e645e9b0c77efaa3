"""Learning in a resistive network (docs/maths.md section 11): EP by current injection, each
conductance learning from the change of the voltage drop across itself, and the RBP ground
truth by implicit differentiation of Kirchhoff's law on the interior nodes.

The parameter derivative of the co-content is ``dE/dG = 1/2 dV^2``. A batch runs the phases of
a :class:`~neurosim.plan.Plan`: the free operating point, then one nudged operating point per
non-zero nudge, each solved from the free one. Each phase is observed as the batch-mean change
of ``1/2 dV^2`` of every conductance from the free operating point (:func:`drop_contrast`;
the free phase's own observation is 0), and the estimate is ``plan.combine`` of those
observations: the plan's weights sum to 0, so measuring from the free point leaves the
estimate unchanged and keeps the input sources' own squares out of it (float32). RBP solves
``H lam = dC/dV`` with ``H`` the co-content's Hessian on the nodes that are free to move (not
at an ideal diode's bound) and gives ``dL/dG_ij = dV_ij (lam_j - a lam_i)`` for
``dV_ij = a V_i - V_j`` (``a`` the amplifier gain of the edge, ``lam`` = 0 at sources and
pinned nodes).
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from ..plan import VARIANTS, Plan
from .solver import at_bound, diode_currents, hessian, input_drive, operating_point


def _edge_ends(net, t, x, V):
    """``(u, v, a)`` of a projection: the voltages at its two ends (the source side as the
    amplifier outputs it, for the input layer the source voltages) and its gain."""
    a = 1.0 if t.source == "x" else net.elements.gain
    u = net.source_voltages(x) if t.source == "x" else V[t.source]
    return u, V[t.target], a


def drop_contrast(net, x, Va, Vb, scale=1.0):
    """``scale [dE/dtheta]_b^a``: per parameter, the change of ``1/2 dV^2`` of each
    conductance from the operating point ``Vb`` to ``Va``, summed over the batch (expanded:
    the input sources' own squares cancel, leaving one product per projection; the input
    projection's two copies share one product of ``n_x`` rows, ``-x`` being ``-(+x)``)."""
    out, el = {}, net.elements
    for t in net.terms:
        if t.transpose:
            continue
        va, vb = Va[t.target], Vb[t.target]
        d = (0.5 * scale) * ((va ** 2).sum(0) - (vb ** 2).sum(0))[None, :]
        if t.source == "x":
            n = net.sizes["x"]
            P = net.input_voltages(x).T @ (scale * (va - vb))
            rows = np.empty((2 * n, va.shape[1]), va.dtype)
            np.subtract(d, P, out=rows[:n])
            np.add(d, P, out=rows[n:])
            d = rows
        else:
            ua, _, a = _edge_ends(net, t, x, Va)
            ub = Vb[t.source]
            d = d + scale * (0.5 * a ** 2 * ((ua ** 2).sum(0) - (ub ** 2).sum(0))[:, None]
                             - a * (ua.T @ va - ub.T @ vb))
        out[t.key] = d
    for p in net.state_pops:
        A, Bv = Va[p], Vb[p]
        out["b:%s" % p] = (0.5 * scale) * np.stack(
            [((A - el.v_bias) ** 2 - (Bv - el.v_bias) ** 2).sum(0),
             ((A + el.v_bias) ** 2 - (Bv + el.v_bias) ** 2).sum(0)])
    return {k: out[k] for k in net.params}


def observations(net, x, y, plan, tol=None, free=None, drive=None):
    """The plan's phases and what each conductance observes: ``(obs, points)``, ``obs`` one
    dict per nudge of ``plan`` (in order) of the batch-mean change of ``1/2 dV^2`` from the
    free operating point, ``points`` the operating points ``{nudge: OperatingPoint}`` (``0``:
    the free one). ``free``: a free operating point already solved; ``drive``: the input drive
    of ``x`` (:func:`~neurosim.resistive.solver.input_drive`)."""
    if any(isinstance(b, complex) for b in plan.nudges):
        raise ArgumentError("learning.nudges: a resistive network runs real nudges, got %r"
                            % (list(plan.nudges),))
    drive = input_drive(net, x) if drive is None else drive
    free = free or operating_point(net, x, tol=tol, drive=drive)
    points = {0.0: free}
    for b in plan.nudged:
        points[b] = operating_point(net, x, y, b, state=free.state,
                                    tol=_nudged_tol(net, tol, b), drive=drive)
    return _observe(net, x, free.state, [points[b].state for b in plan.nudges]), points


def _observe(net, x, V0, states):
    """Per state, the batch-mean change of ``1/2 dV^2`` from ``V0`` (0 for ``V0`` itself)."""
    B = np.shape(x)[0]
    zero = {k: np.zeros_like(v) for k, v in net.params.items()}
    return [zero if V is V0 else drop_contrast(net, x, V, V0, 1.0 / B) for V in states]


def contrast(net, x, V0, states, plan):
    """The plan's estimate from node voltages observed at its nudges (``states``, one per
    nudge; the free ``V0`` at 0), e.g. a truncated settling transient: ``plan.combine`` of
    each state's change of ``1/2 dV^2`` from ``V0``, batch mean."""
    return plan.combine(_observe(net, x, V0, states))


def _nudged_tol(net, tol, b):
    """A nudged phase's KCL tolerance: in float32 a small nudge moves the nodes by about
    ``|b|`` times what a unit one does, so the default tolerance tightens with it, down to
    0.03 of it (near what float32 voltages resolve)."""
    if tol is None and net.dtype != np.float64:
        return net.tolerance * min(1.0, max(abs(b), 0.03))
    return tol


def ep_gradient(net, x, y, beta=None, variant="symmetric", tol=None, free=None, drive=None,
                nudges=None, plan=None, rng=None):
    """The EP estimate of ``dL/dG`` (batch mean), ``plan.combine`` of :func:`observations`,
    and the operating points it used (``{nudge: OperatingPoint}``, ``0`` the free one).
    The plan is ``plan``, or :meth:`Plan.of(beta, variant, nudges) <neurosim.plan.Plan.of>`
    (a random sign drawn from ``rng``)."""
    if plan is None:
        if variant not in VARIANTS:
            raise ArgumentError("variant must be one of %s, got %r" % (", ".join(VARIANTS),
                                                                       variant))
        if nudges is None and not beta:
            raise ArgumentError("beta must be non-zero")
        plan = Plan.of(beta, variant, nudges)
    plan = plan.for_batch(rng)
    obs, points = observations(net, x, y, plan, tol=tol, free=free, drive=drive)
    g = plan.combine(obs)
    return {k: np.asarray(v, net.dtype) for k, v in g.items()}, points


def rbp_gradient(net, x, y, free):
    """RBP's implicit gradient of ``C = 1/2 |V_out - y|^2`` (batch mean) at the free
    operating point ``free`` (exact: see :func:`~neurosim.resistive.solver.operating_point`),
    computed in float64 whatever the network's dtype."""
    net = net.in_float64()
    el = net.elements
    y = net.targets_dict(y, np.shape(x)[0])["y"]
    V = {p: np.asarray(v, np.float64) for p, v in free.state.items()}
    B = np.shape(x)[0]
    H0, offsets = hessian(net)
    n = H0.shape[0]
    free_mask = np.ones((B, n), dtype=bool)
    extra = np.zeros((B, n))
    for p in net.hidden:
        sl = slice(offsets[p], offsets[p] + net.sizes[p])
        if el.diode == "ideal":
            free_mask[:, sl] = ~at_bound(net, p, V[p])
        else:
            extra[:, sl] = diode_currents(el, V[p], *net.bounds(p))[2]
    dC = np.zeros((B, n))
    dC[:, offsets["y"]:] = V["y"] - y
    lam = np.zeros((B, n))
    for b in range(B):
        idx = np.flatnonzero(free_mask[b])
        Hb = H0[np.ix_(idx, idx)] + np.diag(extra[b, idx])
        lam[b, idx] = np.linalg.solve(Hb, dC[b, idx])
    L = {p: lam[:, offsets[p]:offsets[p] + net.sizes[p]] for p in net.state_pops}
    grad = {}
    for t in net.terms:
        if t.transpose:
            continue
        u, v, a = _edge_ends(net, t, x, V)
        lu = np.zeros_like(u) if t.source == "x" else L[t.source]
        lv = L[t.target]
        # sum_b (a u_i - v_j)(lam_j - a lam_i)
        g = (a * u.T @ lv - a ** 2 * (u * lu).sum(0)[:, None]
             - (v * lv).sum(0)[None, :] + a * lu.T @ v)
        grad[t.key] = g / B
    for p in net.state_pops:
        grad["b:%s" % p] = -np.stack([((V[p] - el.v_bias) * L[p]).sum(0),
                                      ((V[p] + el.v_bias) * L[p]).sum(0)]) / B
    return {k: grad[k] for k in net.params}


def cost(net, V, y):
    """Per-example cost ``1/2 |V_out - y|^2``."""
    return 0.5 * np.sum((V["y"] - np.asarray(y, np.float64)) ** 2, axis=1)


__all__ = ["ep_gradient", "observations", "contrast", "rbp_gradient", "drop_contrast", "cost"]
