"""Learning rates per parameter and the optimizer that turns a gradient estimate into an
update: plain SGD or SGD with momentum."""
from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from ..errors import ConfigurationError


def add_scaled(y, a, x):
    """``y += a x`` in place: one BLAS ``axpy`` pass (no temporary array) when both are
    contiguous arrays of one floating dtype, numpy otherwise."""
    axpy = {np.dtype(np.float64): blas.daxpy, np.dtype(np.float32): blas.saxpy}.get(y.dtype)
    if axpy is not None and y.size and x.dtype == y.dtype and y.flags.c_contiguous \
            and x.flags.c_contiguous and x.shape == y.shape:
        out = axpy(x.ravel(), y.ravel(), a=a)
        if np.shares_memory(out, y):
            return
    y += (a * x).astype(y.dtype, copy=False)


def resolve_learning_rates(net, lr, bias_lr=None, field="learning.lr"):
    """Learning rates per parameter key from a number, a list (one per projection, in
    ``net.projections`` order) or a dict keyed by projection (``"x->h1"`` or ``"W:x->h1"``).
    A bias follows the first projection into its population unless ``bias_lr`` is given."""
    projs = net.projections

    def per_projection(v, name):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {k: float(v) for k in projs}
        if isinstance(v, (list, tuple)):
            if len(v) != len(projs):
                raise ConfigurationError(
                    "%s: expected %d values, one per projection %s, got %d"
                    % (name, len(projs), [k[2:] for k in projs], len(v)))
            return {k: float(x) for k, x in zip(projs, v)}
        if isinstance(v, dict):
            out = {}
            for key, x in v.items():
                k = key if key.startswith("W:") else "W:" + key
                if k not in projs:
                    raise ConfigurationError("%s: %r is not a projection of the network (%s)"
                                             % (name, key, [p[2:] for p in projs]))
                out[k] = float(x)
            missing = [k[2:] for k in projs if k not in out]
            if missing:
                raise ConfigurationError("%s: no learning rate for projection(s) %s"
                                         % (name, missing))
            return out
        raise ConfigurationError("%s: expected a number, a list or a table, got %r" % (name, v))

    lrs = per_projection(lr, field)
    pops = net.biased_pops
    for p in pops:
        key = "b:%s" % p
        incoming = [t.key for t in net.terms + net.readout_terms
                    if t.target == p and not t.transpose]
        lrs[key] = lrs[incoming[0]] if incoming else next(iter(lrs.values()))
    if bias_lr is not None:
        if isinstance(bias_lr, (int, float)) and not isinstance(bias_lr, bool):
            for p in pops:
                lrs["b:%s" % p] = float(bias_lr)
        elif isinstance(bias_lr, (list, tuple)):
            if len(bias_lr) != len(pops):
                raise ConfigurationError("learning.bias_lr: expected %d values, one per population "
                                         "%s, got %d" % (len(pops), pops, len(bias_lr)))
            for p, v in zip(pops, bias_lr):
                lrs["b:%s" % p] = float(v)
        else:
            for p, v in bias_lr.items():
                if p not in pops:
                    raise ConfigurationError("learning.bias_lr: %r is not a population (%s)"
                                             % (p, pops))
                lrs["b:%s" % p] = float(v)
    return {k: lrs[k] for k in net.params}


class Optimizer:
    """Plain SGD with optional momentum, per-key learning rates: ``v <- m v + g``,
    ``theta <- theta - lr v``."""

    def __init__(self, lrs, momentum=0.0):
        self.lrs = dict(lrs)
        self.momentum = float(momentum)
        self.velocity = {}

    def _advance(self, k, g):
        """The step direction of key ``k``: the gradient, or with momentum the velocity
        ``v <- m v + g`` (advanced in place)."""
        if not self.momentum:
            return g
        v = self.velocity.get(k)
        if v is None:
            v = self.velocity[k] = np.zeros_like(g)
        v *= self.momentum
        v += g
        return v

    def delta(self, grad):
        """The change ``-lr v`` this gradient asks for (keys with a non-zero learning rate),
        advancing the momentum; the parameters are not touched."""
        return {k: -self.lrs[k] * self._advance(k, g) for k, g in grad.items() if self.lrs[k]}

    def apply(self, params, grad):
        """``params += delta(grad)`` in place (without building the deltas)."""
        for k, g in grad.items():
            if self.lrs[k]:
                add_scaled(params[k], -self.lrs[k], self._advance(k, g))

    def state_dict(self):
        return {k: v.copy() for k, v in self.velocity.items()}

    def load_state_dict(self, d):
        self.velocity = {k: np.array(v) for k, v in d.items()}


__all__ = ["Optimizer", "resolve_learning_rates"]
