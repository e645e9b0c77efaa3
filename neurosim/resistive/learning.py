"""Learning in a resistive network (docs/maths.md section 11): EP by current injection, each
conductance learning from the change of the voltage drop across itself, and the RBP ground
truth by implicit differentiation of Kirchhoff's law on the interior nodes.

The parameter derivative of the co-content is ``dE/dG = 1/2 dV^2`` (:func:`half_drops`); the
EP estimate is ``(1 / beta) [1/2 dV^2]_0^beta`` (symmetric: ``(1 / 2 beta) [..]_-beta^beta``),
batch mean, the convention of :func:`neurosim.ep.gradient`. RBP solves ``H lam = dC/dV`` with
``H`` the co-content's Hessian on the nodes that are free to move (not at an ideal diode's
bound) and gives ``dL/dG_ij = dV_ij (lam_j - a lam_i)`` for ``dV_ij = a V_i - V_j`` (``a``
the amplifier gain of the edge, ``lam`` = 0 at sources and pinned nodes).
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from .solver import diode_currents, operating_point


def _edge_ends(net, t, x, V):
    """``(u, v, a)`` of a projection: the voltages at its two ends (the source side as the
    amplifier outputs it, for the input layer the source voltages) and its gain."""
    a = 1.0 if t.source == "x" else net.elements.gain
    u = net.source_voltages(x) if t.source == "x" else V[t.source]
    return u, V[t.target], a


def half_drops(net, x, V):
    """``dE/dtheta``: per parameter, ``1/2 dV^2`` of each conductance summed over the batch."""
    out, el = {}, net.elements
    for t in net.terms:
        if t.transpose:
            continue
        u, v, a = _edge_ends(net, t, x, V)
        au = a * u
        out[t.key] = 0.5 * ((au ** 2).sum(0)[:, None] + (v ** 2).sum(0)[None, :]
                            - 2 * au.T @ v)
    for p in net.state_pops:
        out["b:%s" % p] = 0.5 * np.stack([((V[p] - el.v_bias) ** 2).sum(0),
                                          ((V[p] + el.v_bias) ** 2).sum(0)])
    return {k: out[k] for k in net.params}


def ep_gradient(net, x, y, beta, variant="symmetric", tol=1e-10, free=None):
    """The EP estimate of ``dL/dG`` (batch mean) and the operating points it used
    (``{"free", "plus", "minus"}``); ``free``: a free operating point already solved."""
    if variant not in ("one_sided", "symmetric"):
        raise ArgumentError("variant must be 'one_sided' or 'symmetric', got %r" % (variant,))
    if not beta:
        raise ArgumentError("beta must be non-zero")
    B = np.shape(x)[0]
    free = free or operating_point(net, x, tol=tol)
    plus = operating_point(net, x, y, beta, state=free.state, tol=tol)
    points = {"free": free, "plus": plus}
    hp = half_drops(net, x, plus.state)
    if variant == "symmetric":
        minus = operating_point(net, x, y, -beta, state=free.state, tol=tol)
        points["minus"] = minus
        hm, scale = half_drops(net, x, minus.state), 1.0 / (2 * beta * B)
    else:
        hm, scale = half_drops(net, x, free.state), 1.0 / (beta * B)
    return {k: scale * (hp[k] - hm[k]) for k in net.params}, points


def _hessian(net):
    """The co-content's Hessian in the state nodes' voltages from the conductances (no diode
    terms), with the offset of each layer's nodes in the stacked voltage vector."""
    el = net.elements
    offsets, n = {}, 0
    for p in net.state_pops:
        offsets[p], n = n, n + net.sizes[p]
    H = np.zeros((n, n))
    for t in net.terms:
        if t.transpose:
            continue
        G = net.params[t.key]
        j0 = offsets[t.target]
        jj = np.arange(net.sizes[t.target]) + j0
        H[jj, jj] += G.sum(axis=0)
        if t.source != "x":
            a, i0 = el.gain, offsets[t.source]
            ii = np.arange(net.sizes[t.source]) + i0
            H[ii, ii] += a ** 2 * G.sum(axis=1)
            H[np.ix_(ii, jj)] -= a * G
            H[np.ix_(jj, ii)] -= a * G.T
    for p in net.state_pops:
        jj = np.arange(net.sizes[p]) + offsets[p]
        H[jj, jj] += net.params["b:%s" % p].sum(axis=0)
    return H, offsets


def rbp_gradient(net, x, y, free):
    """RBP's implicit gradient of ``C = 1/2 |V_out - y|^2`` (batch mean) at the free
    operating point ``free`` (exact: see :func:`~neurosim.resistive.solver.operating_point`)."""
    el = net.elements
    y = net.targets_dict(y, np.shape(x)[0])["y"]
    V = free.state
    B = np.shape(x)[0]
    H0, offsets = _hessian(net)
    n = H0.shape[0]
    free_mask = np.ones((B, n), dtype=bool)
    extra = np.zeros((B, n))
    for p in net.hidden:
        sl = slice(offsets[p], offsets[p] + net.sizes[p])
        if el.diode == "ideal":
            free_mask[:, sl] = (V[p] > el.v_low) & (V[p] < el.v_high)
        else:
            extra[:, sl] = diode_currents(el, V[p])[2]
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


__all__ = ["ep_gradient", "rbp_gradient", "half_drops", "cost"]
