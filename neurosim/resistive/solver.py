"""The DC operating point of a resistive network: the node voltages where Kirchhoff's current
law holds, i.e. the minimum of the total co-content ``E`` (plus ``beta C`` when the outputs
are nudged by the current ``beta (y - V_out)``); docs/maths.md section 11.

Layered networks decouple: given its two neighbouring layers, every node of a layer is a
one-node problem. A node's co-content is then quadratic (``1/2 c V^2 - r V``, ``c`` its total
conductance, ``r`` the conductance-weighted sum of its neighbours' voltages), so its exact
minimiser is ``r / c`` -- clipped to its bounds for ideal diodes, the root of the monotone
``c V - r - i_low(V) + i_high(V)`` for Shockley diodes (bracketed Newton). Alternating the odd
and the even layers is an exact block coordinate descent of a convex problem; it stops when
the largest current imbalance at a free node, divided by the node's conductance (volts), is
below ``tol``, and that residual is reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NeurosimError


class OperatingPointError(NeurosimError, RuntimeError):
    """The solver did not reach the tolerance (the message says where and how far)."""


@dataclass
class OperatingPoint:
    """Node voltages per layer ``(batch, n)``, the KCL residual (volts), the sweeps taken
    and, per hidden layer, the share of nodes held at a diode bound (ideal diodes)."""

    state: dict
    residual: float
    sweeps: int
    pinned: dict


@dataclass
class Drive:
    """What stays fixed while a batch's operating points are solved: per layer the nodes'
    total conductance ``c`` and the bias sources' current ``r_bias``, the input sources'
    conductance-weighted voltages into the first state layer ``r_in`` (batch, n), per
    projection the row and column sums of its conductances ``sums`` and per example the
    input sources' ``sum_i u_i^2 sum_j G_ij`` (``u_sq``, for the power)."""

    c: dict
    r_bias: dict
    r_in: np.ndarray
    sums: dict
    u_sq: np.ndarray


def input_drive(net, x):
    """The :class:`Drive` of inputs ``x`` (the same in every phase of an example)."""
    el, layers = net.elements, net.layers
    sums = {t.key: (net.params[t.key].sum(axis=1), net.params[t.key].sum(axis=0))
            for t in net.terms if not t.transpose}
    c, r_bias = {}, {}
    for i, layer in enumerate(layers[1:], start=1):
        total = sums["W:%s->%s" % (layers[i - 1], layer)][1]
        if i + 1 < len(layers):
            total = total + el.gain ** 2 * sums["W:%s->%s" % (layer, layers[i + 1])][0]
        Gb = net.params["b:%s" % layer]
        c[layer] = total + Gb.sum(axis=0)
        r_bias[layer] = el.v_bias * (Gb[0] - Gb[1])
    u = net.input_voltages(x)
    key = "W:x->%s" % net.state_pops[0]
    G, rows, n = net.params[key], sums[key][0], net.sizes["x"]
    # ``-x`` is ``-(+x)``: one product of the n_x rows gives the currents of both copies
    return Drive(c, r_bias, u @ (G[:n] - G[n:]), sums, (u ** 2) @ (rows[:n] + rows[n:]))


def _couplings(net, layer, V, drive, beta, y):
    """``(c, r)`` of every node of ``layer``: total conductance and the weighted sum of its
    neighbours' voltages (amplified edges: gain ``A`` on the voltage sent out of a hidden
    layer and on the current it takes back), the output nudge included; ``drive``: the
    batch's :class:`Drive`."""
    el, layers = net.elements, net.layers
    i = layers.index(layer)
    prev, nxt = layers[i - 1], (layers[i + 1] if i + 1 < len(layers) else None)
    r = drive.r_in if prev == "x" else \
        (el.gain * V[prev]) @ net.params["W:%s->%s" % (prev, layer)]
    if nxt is not None:
        r = r + el.gain * V[nxt] @ net.params["W:%s->%s" % (layer, nxt)].T
    r = r + drive.r_bias[layer]
    c = drive.c[layer]
    if layer == "y" and beta:
        c = c + beta
        r = r + beta * y
    return np.broadcast_to(c, r.shape), r


def diode_currents(el, V, low, high):
    """``(i_low, i_high, di/dV)``: the Shockley diodes' currents into the node from its low
    bound and out of it toward its high bound (``low``, ``high``: per node, infinite where
    the node has no diode on that side: no current), and the derivative of the net outward
    current ``i_high - i_low``, in units of ``g_unit`` times volts (the conductances' unit;
    exponents capped to stay finite)."""
    has_low, has_high = np.isfinite(low), np.isfinite(high)
    cap = np.log(np.finfo(np.result_type(V, np.float32)).max) - 1.0
    # a side without a diode gets exponent 0 (masked below): no overflow from it
    e_low = np.exp(np.minimum((np.where(has_low, low, V) - V) / el.n_vt, cap))
    e_high = np.exp(np.minimum((V - np.where(has_high, high, V)) / el.n_vt, cap))
    i_s = el.i_s / el.g_unit
    i_low = np.where(has_low, i_s * (e_low - 1), 0.0)
    i_high = np.where(has_high, i_s * (e_high - 1), 0.0)
    d = i_s * (np.where(has_low, e_low, 0.0) + np.where(has_high, e_high, 0.0)) / el.n_vt
    return i_low, i_high, d


def _shockley_node(el, c, r, V0, low, high):
    """The root of ``c V - r - i_low(V) + i_high(V)`` per node: Newton kept inside a bracket
    that holds the root (spanning the linear solution ``r / c`` and the node's finite
    bounds, widened by the diodes' saturation current ``i_s / c``)."""
    lin = r / c
    i_s = el.i_s / el.g_unit
    slack = i_s / c
    low_f = np.where(np.isfinite(low), low, np.where(np.isfinite(high), high, lin))
    high_f = np.where(np.isfinite(high), high, low_f)
    lo = np.minimum(lin, np.minimum(low_f, high_f)) - slack
    hi = np.maximum(lin, np.maximum(low_f, high_f)) + slack
    # Past a bound by more than the forward drop at the largest current the node can carry,
    # a diode conducts more than any imbalance: tighten the bracket there (kept only where
    # f confirms it), so Newton never crawls through the capped exponential far from the root.
    i_max = 2 * c * (np.abs(lin) + np.abs(low_f) + np.abs(high_f) + 1.0) + i_s
    drop = el.n_vt * np.log1p(i_max / i_s)

    def f_of(V):
        i_low, i_high, _ = diode_currents(el, V, low, high)
        return c * V - r - i_low + i_high

    lo_t = np.where(np.isfinite(low), np.maximum(lo, low - drop), lo)
    hi_t = np.where(np.isfinite(high), np.minimum(hi, high + drop), hi)
    lo = np.where((lo_t < hi) & (f_of(lo_t) <= 0), lo_t, lo)
    hi = np.where((hi_t > lo) & (f_of(hi_t) >= 0), hi_t, hi)
    V = np.clip(V0, lo, hi)
    for _ in range(200):
        i_low, i_high, d = diode_currents(el, V, low, high)
        f = c * V - r - i_low + i_high
        lo = np.where(f < 0, V, lo)
        hi = np.where(f > 0, V, hi)
        step = V - f / (c + d)
        bad = (step <= lo) | (step >= hi)
        V_new = np.where(bad, 0.5 * (lo + hi), step)
        resolution = 4 * np.finfo(V.dtype).eps * max(1.0, float(np.max(np.abs(V))))
        if np.max(np.abs(V_new - V)) < resolution:
            return V_new
        V = V_new
    return V


def _update(net, layer, V, drive, beta, y):
    c, r = _couplings(net, layer, V, drive, beta, y)
    if layer == "y":
        return r / c
    el = net.elements
    low, high = net.bounds(layer)
    if el.diode == "ideal":
        V = r / c
        np.maximum(V, low, out=V)
        return np.minimum(V, high, out=V)
    return _shockley_node(el, c, r, V[layer], low, high)


def relaxation_step(net, V, drive, beta, y, h):
    """One explicit Euler step of the RC transient ``c_node dV/dt = -(KCL imbalance)``,
    all nodes at once, ``h`` = dt g_unit / c_node (ideal diodes clip at their bounds)."""
    el, out = net.elements, {}
    for layer in net.state_pops:
        c, r = _couplings(net, layer, V, drive, beta, y)
        f = c * V[layer] - r
        if layer != "y":
            low, high = net.bounds(layer)
        if layer != "y" and el.diode == "shockley":
            i_low, i_high, _ = diode_currents(el, V[layer], low, high)
            f = f - i_low + i_high
        out[layer] = V[layer] - h * f
        if layer != "y" and el.diode == "ideal":
            out[layer] = np.clip(out[layer], low, high)
    return out


def kcl_residual(net, V, drive, beta=0.0, y=None):
    """The largest current imbalance at a free node over its incremental conductance (volts:
    the voltage change that would cancel it); at an ideal diode's bound only an imbalance
    pulling the node back inside counts; a Shockley diode's ``di/dV`` adds to the node's
    conductance (a conducting diode turns a tiny voltage error into a large current)."""
    el, worst = net.elements, 0.0
    for layer in net.state_pops:
        c, r = _couplings(net, layer, V, drive, beta, y)
        f = c * V[layer] - r
        if layer != "y":
            low, high = net.bounds(layer)
            if el.diode == "ideal":
                at_lo, at_hi = V[layer] <= low, V[layer] >= high
                f = np.where(at_lo & (f > 0), 0.0, f)
                f = np.where(at_hi & (f < 0), 0.0, f)
            else:
                i_low, i_high, d = diode_currents(el, V[layer], low, high)
                f = f - i_low + i_high
                c = c + d
        worst = max(worst, float(np.max(np.abs(f) / c)))
    return worst


def operating_point(net, x, y=None, beta=0.0, state=None, tol=None, max_sweeps=10000,
                    drive=None):
    """The operating point for inputs ``x`` (``beta`` != 0: outputs nudged toward ``y``),
    from ``state`` (default: all nodes at 0 V); ``drive``: the :func:`input_drive` of ``x``
    if already computed; ``tol``: the KCL tolerance in volts (default: the network's
    :attr:`~neurosim.resistive.ResistiveNetwork.tolerance`). Raises
    :class:`OperatingPointError` when the residual is still above ``tol`` after
    ``max_sweeps``."""
    tol = net.tolerance if tol is None else tol
    drive = input_drive(net, x) if drive is None else drive
    B = drive.r_in.shape[0]
    if beta < 0 and np.any(drive.c["y"] + beta <= 0):
        raise OperatingPointError("layer y: a node's total conductance plus the nudge is not "
                                  "positive (beta = %g is too negative for its conductances)"
                                  % beta)
    if beta:
        y = net.targets_dict(y, B)["y"]
    V = {p: (np.zeros((B, net.sizes[p]), net.dtype) if state is None
             else np.array(state[p], net.dtype)) for p in net.state_pops}
    odd, even = net.state_pops[0::2], net.state_pops[1::2]
    res = np.inf
    for sweep in range(1, max_sweeps + 1):
        previous = {p: V[p] for p in net.state_pops}
        for group in (odd, even):
            for layer in group:
                V[layer] = _update(net, layer, V, drive, beta, y)
        change = max(float(np.max(np.abs(V[p] - previous[p]))) for p in net.state_pops)
        if change < tol or sweep == max_sweeps:
            res = kcl_residual(net, V, drive, beta, y)
            if res < tol:
                break
    if res >= tol:
        raise OperatingPointError("the operating point did not converge: KCL residual %.3g V "
                                  "after %d sweeps (tol %.3g)" % (res, max_sweeps, tol))
    el = net.elements
    pinned = {p: float(np.mean(at_bound(net, p, V[p]))) for p in net.hidden} \
        if el.diode == "ideal" else {p: 0.0 for p in net.hidden}
    return OperatingPoint(V, res, sweep, pinned)


def at_bound(net, layer, V):
    """Which of a hidden layer's node voltages ``V`` sit at an ideal diode's bound."""
    low, high = net.bounds(layer)
    return (V <= low) | (V >= high)


def power(net, x, V, drive=None):
    """Power dissipated at an operating point, per example (watts): ``g_unit sum G dV^2``
    over every conductance (amplified edges counted at their output's voltage) plus the
    diodes' ``v i``; ``drive``: the :func:`input_drive` of ``x`` if already computed."""
    el = net.elements
    drive = input_drive(net, x) if drive is None else drive
    P = np.zeros(drive.r_in.shape[0])
    for t in net.terms:
        if t.transpose:
            continue
        a, b = t.source, t.target
        rows, cols = drive.sums[t.key]
        v = V[b]
        # sum_ij G_ij (u_i - v_j)^2, expanded (no (batch, n_a, n_b) array; the input
        # layer's u G and sum u^2 G are in the drive)
        if a == "x":
            uG, u_sq = drive.r_in, drive.u_sq
        else:
            up = el.gain * V[a]
            uG, u_sq = up @ net.params[t.key], (up ** 2) @ rows
        P += u_sq + (v ** 2) @ cols - 2 * np.sum(uG * v, axis=1)
    for p in net.state_pops:
        Gb = net.params["b:%s" % p]
        P += ((V[p] - el.v_bias) ** 2) @ Gb[0] + ((V[p] + el.v_bias) ** 2) @ Gb[1]
        if p != "y" and el.diode == "shockley":
            low, high = net.bounds(p)
            i_low, i_high, _ = diode_currents(el, V[p], low, high)
            # the diodes' v i (0 where a node has no diode on that side)
            P += np.sum(i_low * np.where(np.isfinite(low), low - V[p], 0.0)
                        + i_high * np.where(np.isfinite(high), V[p] - high, 0.0), axis=1)
    return el.g_unit * P


def hessian(net):
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


def settling_time(net, tolerance=1e-3):
    """Seconds for the slowest mode of the linearised RC network (node capacitance
    ``c_node``, every node free) to decay to ``tolerance``: ``c_node / (g_unit lam_min)
    ln(1 / tolerance)``, ``lam_min`` the smallest eigenvalue of the co-content's Hessian."""
    H, _ = hessian(net)
    lam = float(np.linalg.eigvalsh(H)[0])
    el = net.elements
    return el.c_node / (el.g_unit * lam) * np.log(1.0 / tolerance)


__all__ = ["operating_point", "input_drive", "Drive", "relaxation_step", "OperatingPoint", "OperatingPointError", "kcl_residual",
           "power", "settling_time", "hessian", "diode_currents", "at_bound"]
