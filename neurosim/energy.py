"""Activations, energy, cost, forces, parameter derivatives and Jacobian products (docs/maths.md 1-3).

Every function is batched: a state is a dict population -> ``(batch, n)`` array. Per-example
quantities (energy, cost, forces, state derivatives) keep the batch axis; parameter-shaped
quantities (``dE/dtheta``, ``(dF/dtheta)^T w``) are batch means, so they are derivatives of
the batch-mean loss.
"""
from __future__ import annotations

import numpy as np
from .errors import ArgumentError


# -- activations ------------------------------------------------------------------------
def rho(activation, s, out=None):
    """The rate ``rho(s)``: ``clip(s, 0, 1)`` or ``1 / (1 + exp(-4 (s - 1/2)))`` (complex
    analytic on complex states: no overflow guard there)."""
    if activation == "hard_sigmoid":
        return np.clip(s, 0.0, 1.0, out=out)
    out = np.multiply(s, -4.0, out=out)
    out += 2.0
    if out.dtype.kind != "c":   # exp overflows past ~709; the rate is 0 there anyway
        np.minimum(out, 700.0, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def rho_prime(activation, s, r=None):
    """``rho'(s)``; for hard sigmoid 1 on the closed interval [0, 1] (as in the 2017 code)."""
    if activation == "hard_sigmoid":
        return ((s >= 0.0) & (s <= 1.0)).astype(s.dtype)
    r = rho(activation, s) if r is None else r
    return 4.0 * r * (1.0 - r)


def rho_second(activation, s, r=None):
    """``rho''(s)`` (zero almost everywhere for hard sigmoid)."""
    if activation == "hard_sigmoid":
        return np.zeros_like(s)
    r = rho(activation, s) if r is None else r
    return 16.0 * r * (1.0 - r) * (1.0 - 2.0 * r)


# -- building blocks ----------------------------------------------------------------------
def state_rates(net, state):
    """``rho(s_p)`` of every state population (no inputs: what a softmax readout reads)."""
    return {p: rho(net.activation, state[p]) for p in net.state_pops}


def rates(net, state, inputs):
    """Rates of every population: inputs are their own rate, the rest ``rho(s)``."""
    r = state_rates(net, state)
    r.update(inputs)
    return r


def _matrix(net, term):
    w = net.params[term.key]
    return w.T if term.transpose else w


def switches(net, term, at, cache=None):
    """The switches of a max-pooled ``term`` (:meth:`neurosim.conv.Conv.switches`) at the
    operating point ``at`` (a rates dict), None for any other term; ``cache``: an optional
    dict per operating point, keyed by the projection."""
    if not term.max_pooled:
        return None
    return _max_pool(net, term, at, cache)[1]


def _max_pool(net, term, at, cache):
    """``(P(W * r), switches)`` of a max-pooled term at the rates ``at``, from ``cache`` when
    it holds them (one convolution per projection and operating point)."""
    if cache is not None and term.key in cache:
        return cache[term.key]
    if at is None:
        raise ArgumentError("%s is max-pooled: its feedback and gradients need the rates they "
                            "are taken at (at=...)" % term.key)
    out = term.conv.max_pool(net.params[term.key], at[term.conv_source])
    if cache is not None:
        cache[term.key] = out
    return out


def term_product(net, term, r, at=None, cache=None):
    """What ``term`` adds to its target's drive from the source rates ``r`` ``(B, n_src)``:
    ``r M`` (dense) or the convolution ``P(W * r)`` (its adjoint for the feedback term). A
    max-pooled term is linearised at the rates ``at`` (its switches there; ``cache`` as in
    :func:`switches`; a cached max is returned as it is, not copied): the max itself where
    ``r`` is ``at``'s own (or ``at`` is None), the selection at ``at``'s switches for another
    ``r`` (a Jacobian-vector product)."""
    w = net.params[term.key]
    if term.conv is None:
        return r @ (w.T if term.transpose else w)
    if term.transpose:
        return term.conv.adjoint(w, r, switches(net, term, at, cache))
    if not term.max_pooled or at is None:
        return term.conv.forward(w, r)
    if at[term.source] is r:   # the max itself (its switches kept in the cache for the feedback)
        return _max_pool(net, term, at, cache)[0]
    return term.conv.forward(w, r, switches(net, term, at, cache))


def term_adjoint(net, term, v, at=None, cache=None):
    """The adjoint of :func:`term_product` (at the rates ``at`` for a max-pooled term): a
    target-space batch ``v`` -> source space."""
    w = net.params[term.key]
    if term.conv is None:
        return v @ (w if term.transpose else w.T)
    m = switches(net, term, at, cache)
    return term.conv.forward(w, v, m) if term.transpose else term.conv.adjoint(w, v, m)


def term_outer(net, term, r, v, at=None, cache=None):
    """``d <v, term_product(r)> / d params[key]`` summed over the batch: ``r^T v`` for a
    dense term (``v^T r`` for the feedback of a tied matrix), the kernel correlation for a
    convolution (a max-pooled one at the switches of the rates ``at``)."""
    if term.conv is None:
        return v.T @ r if term.transpose else r.T @ v
    m = switches(net, term, at, cache)
    return term.conv.kernel_gradient(v, r, m) if term.transpose else \
        term.conv.kernel_gradient(r, v, m)


def term_matrix(net, term, at=None):
    """The dense matrix ``M`` ``(n_src, n_tgt)`` of :func:`term_product` (``r M``): the weight
    matrix, or a convolution's, built once from its forward product and transposed for the
    feedback term, so the two stay exact transposes (for dense Jacobians of small networks).
    A max-pooled term's matrix is that of one example: ``at`` holds its rates (batch 1)."""
    if term.conv is None:
        return _matrix(net, term)
    n_in = int(np.prod(term.conv.in_shape))
    m = switches(net, term, at)
    if m is not None:
        if m.shape[0] != 1:
            raise ArgumentError("%s is max-pooled: its dense matrix is one example's (at "
                                "with batch 1, got %d)" % (term.key, m.shape[0]))
        m = np.broadcast_to(m, (n_in,) + m.shape[1:])
    m = term.conv.forward(net.params[term.key], np.eye(n_in, dtype=net.dtype), m)
    return m.T if term.transpose else m


def _any_complex(arrays):
    return any(np.iscomplexobj(v) for v in arrays)


def _fresh(bias, shape, cplx):
    """A new array of ``shape`` filled with ``bias``: complex128 where the rates are complex,
    else of the bias's dtype."""
    return np.broadcast_to(bias, shape).astype(np.complex128 if cplx else bias.dtype)


def drives(net, r):
    """``h_p = sum_terms rho(s_q) M + b_p`` for every state population, from rates ``r``."""
    h, batch, cplx = {}, r[next(iter(r))].shape[:1], _any_complex(r.values())
    for p in net.state_pops:
        h[p] = _fresh(net.params["b:%s" % p], batch + (net.sizes[p],), cplx)
    cache = {}
    for t in net.terms:
        h[t.target] += term_product(net, t, r[t.source], r, cache)
    return h


def energy(net, state, x):
    """Per-example energy ``E(s)`` (energy dynamics only), shape ``(batch,)``."""
    if net.dynamics != "energy":
        raise ArgumentError("energy() is defined for energy dynamics only (this network is %r)"
                         % net.dynamics)
    inputs = net.inputs_dict(x)
    r = rates(net, state, inputs)
    e = sum(0.5 * np.sum(state[p] ** 2, axis=1) - r[p] @ net.params["b:%s" % p]
            for p in net.state_pops)
    for t in net.terms:
        if t.transpose:
            continue
        scale = 0.5 if t.lateral else 1.0
        e = e - scale * np.sum(term_product(net, t, r[t.source]) * r[t.target], axis=1)
    return e


def logits(net, r):
    """The softmax readout's input ``z_o = sum_q rho(s_q) W:q->o + b:o`` per output population,
    from the rates ``r`` of the hidden populations."""
    batch = r[next(iter(r))].shape[0]
    cplx = _any_complex(r[t.source] for t in net.readout_terms)
    z = {o: _fresh(net.params["b:%s" % o], (batch, net.sizes[o]), cplx) for o in net.outputs}
    for t in net.readout_terms:
        z[t.target] += r[t.source] @ net.params[t.key]
    return z


def log_softmax(z):
    """``z - log sum exp(z)`` along the last axis (shifted by the max of the real part: no
    overflow, and analytic on complex ``z``)."""
    shifted = z - np.max(np.real(z), axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def softmax(z):
    """``exp(z) / sum exp(z)`` along the last axis."""
    return np.exp(log_softmax(z))


def predictions(net, state):
    """What the network predicts at ``state`` per output population: its rates ``rho(s_out)``
    (state readout) or the softmax of its logits (softmax readout)."""
    if net.readout == "softmax":
        r = state_rates(net, state)
        return {o: softmax(z) for o, z in logits(net, r).items()}
    return {p: rho(net.activation, state[p]) for p in net.outputs}


def logit_error(net, r, y):
    """``dC/dz`` of the cross-entropy per output population: ``yhat sum(y) - y`` (``yhat - y``
    for a one-hot ``y``), from the hidden rates ``r`` and the targets dict ``y``."""
    return {o: softmax(z) * np.sum(y[o], axis=1, keepdims=True) - y[o]
            for o, z in logits(net, r).items()}


def readout_feedback(net, r, y):
    """The cross-entropy's pull on each hidden population that feeds the readout,
    ``sum_o (dC/dz_o) W:q->o^T`` (``dC/ds_q`` before the factor ``rho'(s_q)``)."""
    e = logit_error(net, r, y)
    out = {}
    for t in net.readout_terms:
        v = e[t.target] @ net.params[t.key].T
        out[t.source] = out[t.source] + v if t.source in out else v
    return out


def cost(net, state, y):
    """Per-example cost: ``C = 1/2 |s_out - y|^2`` (state readout) or the cross-entropy
    ``C = -sum y log softmax(z)`` (softmax readout), summed over output populations."""
    batch = state[net.state_pops[0]].shape[0]
    y = net.targets_dict(y, batch)
    if net.readout == "softmax":
        r = state_rates(net, state)
        total = 0.0
        for o, z in logits(net, r).items():
            total = total - np.sum(y[o] * log_softmax(z), axis=1)
        return total
    return sum(0.5 * np.sum((state[p] - y[p]) ** 2, axis=1) for p in net.outputs)


def dC_ds(net, state, y):
    """``dC/ds`` per example: ``s_out - y`` on outputs (state readout), or
    ``rho'(s_q) (dC/dz) W^T`` on the hidden populations read by a softmax; zero elsewhere."""
    batch = state[net.state_pops[0]].shape[0]
    y = net.targets_dict(y, batch)
    if net.readout == "softmax":
        r = state_rates(net, state)
        fb = readout_feedback(net, r, y)
        return {p: rho_prime(net.activation, state[p], r[p]) * fb[p] if p in fb
                else np.zeros_like(state[p]) for p in net.state_pops}
    return {p: (state[p] - y[p]) if p in y else np.zeros_like(state[p]) for p in net.state_pops}


def readout_gradient(net, r, y):
    """Batch-mean ``dC/dtheta`` of a softmax readout's own parameters from the hidden rates
    ``r`` and the targets dict ``y``: ``W:q->o``: ``rho_q^T dC/dz / B``, ``b:o``: mean
    ``dC/dz`` (the only parameters the cross-entropy depends on directly)."""
    e = logit_error(net, r, y)
    batch = e[net.outputs[0]].shape[0]
    g = {t.key: r[t.source].T @ e[t.target] / batch for t in net.readout_terms}
    g.update({"b:%s" % o: e[o].mean(axis=0) for o in net.outputs})
    return g


def dC_dtheta(net, state, y):
    """Batch-mean ``dC/dtheta``, the cost's own dependence on the parameters: a softmax
    readout's (:func:`readout_gradient`), zero for every other parameter (and for every
    parameter under a state readout)."""
    g = {k: np.zeros_like(v) for k, v in net.params.items()}
    if net.readout == "softmax":
        batch = state[net.state_pops[0]].shape[0]
        r = state_rates(net, state)
        g.update(readout_gradient(net, r, net.targets_dict(y, batch)))
    return g


def forces(net, state, x, y=None, beta=0.0):
    """``F = -dE/ds - beta dC/ds`` per example (the vector field in vector-field mode)."""
    inputs = net.inputs_dict(x)
    r = rates(net, state, inputs)
    h = drives(net, r)
    f = {p: rho_prime(net.activation, state[p], r[p]) * h[p] - state[p] for p in net.state_pops}
    if beta:
        for p, g in dC_ds(net, state, y).items():
            f[p] -= beta * g
    return f


def dE_dtheta(net, state, x):
    """Batch-mean ``dE/dtheta`` (energy mode): ``-rho_a^T rho_b / batch`` and ``-mean rho_p``.

    A lateral matrix counts once in the energy (``-1/2 rho^T W rho``), so its derivative is
    ``-1/2 rho^T rho`` with zero diagonal. A softmax readout's parameters are not in ``E``
    (their derivative is 0; they enter through the cost, :func:`dC_dtheta`).
    """
    return rates_dE_dtheta(net, rates(net, state, net.inputs_dict(x)))


def rates_dE_dtheta(net, r):
    """:func:`dE_dtheta` from the rates ``r`` of every population, inputs included (complex
    rates give a complex derivative)."""
    batch = r[net.state_pops[0]].shape[0]
    g = {k: np.zeros_like(v) for k, v in net.params.items()}   # readout parameters: 0
    for t in net.terms:
        if t.transpose:
            continue
        d = -term_outer(net, t, r[t.source], r[t.target], r) / batch
        if t.lateral:
            d *= 0.5
            np.fill_diagonal(d, 0.0)
        elif t.source == t.target:
            np.fill_diagonal(d, 0.0)
        g[t.key] = d
    for p in net.state_pops:
        g["b:%s" % p] = -r[p].mean(axis=0)
    return {k: g[k] for k in net.params}


def flatten(net, state):
    """State dict -> ``(batch, n_state)`` array, populations in ``net.state_pops`` order."""
    return np.concatenate([state[p] for p in net.state_pops], axis=1)


def unflatten(net, v):
    """``(batch, n_state)`` array -> state dict (views)."""
    out, i = {}, 0
    for p in net.state_pops:
        out[p] = v[:, i:i + net.sizes[p]]
        i += net.sizes[p]
    return out


class Linearization:
    """The dynamics linearised at a state ``s``: products with ``J = dF/ds``, ``J^T`` and
    ``(dF/dtheta)^T``, plus dense per-example Jacobians for small networks. ``clip=True``
    linearises the dynamics projected to [0, 1] (hard sigmoid): pinned units are fixed.

    ``F_p = -s_p + rho'(s_p) h_p``  gives
    ``(J v)_p = (-1 + rho''_p h_p) v_p + rho'_p sum_terms (rho'_q v_q) M``.
    """

    def __init__(self, net, state, x, clip=False):
        self.net = net
        self.inputs = net.inputs_dict(x)
        self.state = state
        act = net.activation
        self.r = rates(net, state, self.inputs)
        self.h = drives(net, self.r)
        if clip and act == "hard_sigmoid":
            # dynamics projected to [0, 1]: the fixed point is s = clip(h); units pinned at a
            # bound do not move, so only units strictly inside (0, 1) respond to perturbations
            self.d1 = {p: ((state[p] > 0.0) & (state[p] < 1.0)).astype(state[p].dtype)
                       for p in net.state_pops}
            self.diag = {p: np.full_like(state[p], -1.0) for p in net.state_pops}
        else:
            self.d1 = {p: rho_prime(act, state[p], self.r[p]) for p in net.state_pops}
            self.diag = {p: rho_second(act, state[p], self.r[p]) * self.h[p] - 1.0
                         for p in net.state_pops}
        self.batch = state[net.state_pops[0]].shape[0]
        self._matrices = None   # the terms' dense matrices, built by the first dense()
        self.pooled = {}        # max-pooled terms: (max, switches) at this state, when first used

    def jvp(self, v):
        """``J v`` per example."""
        net = self.net
        z = {p: self.d1[p] * v[p] for p in net.state_pops}
        out = {p: np.zeros_like(v[p]) for p in net.state_pops}
        for t in net.terms:
            if t.source in z:
                out[t.target] += term_product(net, t, z[t.source], self.r, self.pooled)
        return {p: self.diag[p] * v[p] + self.d1[p] * out[p] for p in net.state_pops}

    def vjp(self, w):
        """``J^T w`` per example."""
        net = self.net
        z = {p: self.d1[p] * w[p] for p in net.state_pops}
        out = {p: np.zeros_like(w[p]) for p in net.state_pops}
        for t in net.terms:
            if t.source in out:
                out[t.source] += term_adjoint(net, t, z[t.target], self.r, self.pooled)
        return {p: self.diag[p] * w[p] + self.d1[p] * out[p] for p in net.state_pops}

    def param_vjp(self, w):
        """Batch-mean ``(dF/dtheta)^T w``: the parameter gradient carried by a state vector."""
        net, r = self.net, self.r
        z = {p: self.d1[p] * w[p] for p in net.state_pops}
        g = {k: np.zeros_like(v) for k, v in net.params.items()}
        for t in net.terms:
            if t.lateral:
                m = r[t.source].T @ z[t.target]
                g[t.key] += 0.5 * (m + m.T)
            else:
                g[t.key] += term_outer(net, t, r[t.source], z[t.target], r, self.pooled)
            if t.source == t.target:
                np.fill_diagonal(g[t.key], 0.0)
        for p in net.state_pops:
            g["b:%s" % p] += z[p].sum(axis=0)
        for k in g:
            g[k] /= self.batch
        return g

    def dense(self, i):
        """The dense Jacobian ``J`` of example ``i``, ``(n_state, n_state)``."""
        net = self.net
        n = net.n_state
        J = np.zeros((n, n))
        offs, o = {}, 0
        for p in net.state_pops:
            offs[p] = o
            o += net.sizes[p]
        for p in net.state_pops:
            a = offs[p]
            J[a:a + net.sizes[p], a:a + net.sizes[p]] += np.diag(self.diag[p][i])
        if self._matrices is None:
            self._matrices = {t: term_matrix(net, t) for t in net.terms
                              if t.source in offs and not t.max_pooled}
        one = {p: v[i:i + 1] for p, v in self.r.items()}   # a max-pooled term's own matrix
        for t in net.terms:
            if t.source not in offs:
                continue
            # (n_src, n_tgt): d h_tgt / d rho_src = m.T
            m = term_matrix(net, t, one) if t.max_pooled else self._matrices[t]
            block = (self.d1[t.target][i][:, None] * m.T) * self.d1[t.source][i][None, :]
            a, b = offs[t.target], offs[t.source]
            J[a:a + net.sizes[t.target], b:b + net.sizes[t.source]] += block
        return J
