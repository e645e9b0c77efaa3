"""Learning rates per parameter and the optimizer that turns a gradient estimate into an
update: plain SGD, SGD with momentum, or Adam (Kingma & Ba 2015)."""
from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from ..blas import blas_threads
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


def host_array(v):
    """A copy of an optimizer state array as numpy (a device tensor's, where an accelerator
    engine keeps the state on its GPU: :mod:`neurosim.accelerator.optimizer`)."""
    if hasattr(v, "detach"):
        return np.array(v.detach().cpu().numpy())
    return np.array(v)


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
    for k, v in lrs.items():
        if not (v > 0 and np.isfinite(v)):
            name = "learning.bias_lr" if k.startswith("b:") and bias_lr is not None else field
            raise ConfigurationError("%s: a learning rate must be a positive finite number, got "
                                     "%r for %s" % (name, v, k))
    return {k: lrs[k] for k in net.params}


class Optimizer:
    """Plain SGD with optional momentum, per-key learning rates: ``v <- m v + g``,
    ``theta <- theta - lr v``. ``weight_decay`` (decoupled, as AdamW: Loshchilov & Hutter
    2019) also shrinks every weight matrix (``W:`` keys, not the biases) by ``lr wd theta``
    per update."""

    name = "sgd"

    def __init__(self, lrs, momentum=0.0, weight_decay=0.0):
        self.lrs = dict(lrs)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        if self.weight_decay < 0:
            raise ConfigurationError("learning.weight_decay: expected a number >= 0, got %r"
                                     % weight_decay)
        worst = max([v for k, v in self.lrs.items() if k.startswith("W:")], default=0.0)
        if worst * self.weight_decay >= 1:
            raise ConfigurationError("learning.weight_decay: lr x weight_decay must be below 1 "
                                     "(each update multiplies a weight by 1 - lr wd), got %g x %g"
                                     % (worst, self.weight_decay))
        self.velocity = {}

    @property
    def plain(self):
        """True when the update is ``-lr g`` itself (an engine may then fuse it into its step)."""
        return not self.momentum and not self.weight_decay

    def decays(self, k):
        """Whether key ``k`` takes the weight decay (a weight matrix, when there is one)."""
        return self.weight_decay and k.startswith("W:")

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

    def _step(self, k, g):
        """``(d, c)``: the update of key ``k`` is ``-lr c d`` (plus the weight decay)."""
        return self._advance(k, g), 1.0

    def delta(self, grad, params=None):
        """The change this gradient asks for (keys with a non-zero learning rate), advancing
        the optimizer's state; the parameters are not touched (with weight decay they are
        read: pass ``params``)."""
        out = {}
        for k, g in grad.items():
            if self.lrs[k]:
                d, c = self._step(k, g)
                out[k] = (-self.lrs[k] * c) * d
                if self.decays(k):
                    if params is None:
                        raise ValueError("weight decay needs the parameters: delta(grad, params)")
                    out[k] -= self.lrs[k] * self.weight_decay * params[k]
        return out

    def apply(self, params, grad):
        """``params += delta(grad, params)`` in place (without building the deltas), on one
        BLAS thread: the update is a few passes over memory, and a second thread only waits
        when another process holds the other core (measured on the 2-core machine, Adam on
        784-500-10's parameters: 0.6-23 ms per update with two threads under load)."""
        with blas_threads(1):
            for k, g in grad.items():
                if self.lrs[k]:
                    if self.decays(k):
                        params[k] *= 1.0 - self.lrs[k] * self.weight_decay
                    d, c = self._step(k, g)
                    add_scaled(params[k], -self.lrs[k] * c, d)

    def state_dict(self):
        """The optimizer's state as named arrays (for a checkpoint)."""
        return {k: host_array(v) for k, v in self.velocity.items()}

    def load_state_dict(self, d):
        """Restore :meth:`state_dict`'s arrays."""
        self.velocity = {k: np.array(v) for k, v in d.items()}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), per-key learning rates: ``m <- b1 m + (1 - b1) g``,
    ``v <- b2 v + (1 - b2) g^2``, ``theta <- theta - lr m^ / (sqrt(v^) + eps)`` with the
    bias-corrected moments ``m^ = m / (1 - b1^t)``, ``v^ = v / (1 - b2^t)``; ``t`` counts the
    updates of each key. The step's size is set by ``lr`` (about the change of each weight per
    update), not by the gradient's scale."""

    name = "adam"

    def __init__(self, lrs, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lrs, 0.0, weight_decay)
        b1, b2 = (float(b) for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ConfigurationError("learning.adam_betas: expected two numbers in [0, 1), got %r"
                                     % (betas,))
        self.betas, self.eps = (b1, b2), float(eps)
        self.moments, self.counts, self._scratch = {}, {}, {}

    @property
    def plain(self):
        """Never: Adam's step is not ``-lr g``."""
        return False

    def _moments(self, k, g):
        """Advance key ``k``'s moments by ``g`` (in place, BLAS scal + axpy where the dtype
        allows); returns ``(m, v, scratch, t)``."""
        b1, b2 = self.betas
        if k not in self.moments:
            self.moments[k] = (np.zeros_like(g), np.zeros_like(g))
            self.counts[k] = 0
        m, v = self.moments[k]
        out = self._scratch.get(k)
        if out is None or out.shape != g.shape or out.dtype != g.dtype:
            out = self._scratch[k] = np.empty_like(g)
        self.counts[k] += 1
        m *= b1
        add_scaled(m, 1 - b1, g)
        np.multiply(g, g, out=out)
        v *= b2
        add_scaled(v, 1 - b2, out)
        return m, v, out, self.counts[k]

    def _step(self, k, g):
        """``(d, c)`` with ``c d`` the bias-corrected step ``m^ / (sqrt(v^) + eps)`` of key
        ``k`` (``d`` in the key's scratch array): ``sqrt(v^) + eps = (sqrt(v) + eps
        sqrt(1 - b2^t)) / sqrt(1 - b2^t)``, so ``c = sqrt(1 - b2^t) / (1 - b1^t)``."""
        m, v, out, t = self._moments(k, g)
        c2 = np.sqrt(1 - self.betas[1] ** t)
        np.sqrt(v, out=out)
        out += self.eps * c2
        np.divide(m, out, out=out)
        return out, float(c2 / (1 - self.betas[0] ** t))

    def state_dict(self):
        """Both moments and the update count of every key (``m:``, ``v:``, ``t:`` + key)."""
        out = {}
        for k, (m, v) in self.moments.items():
            out["m:" + k], out["v:" + k] = host_array(m), host_array(v)
            out["t:" + k] = np.array(self.counts[k])
        return out

    def load_state_dict(self, d):
        """Restore :meth:`state_dict`'s arrays."""
        keys = {k[2:] for k in d if k.startswith("m:")}
        self.moments = {k: (np.array(d["m:" + k]), np.array(d["v:" + k])) for k in keys}
        self.counts = {k: int(d["t:" + k]) for k in keys}


def make_optimizer(name, lrs, momentum=0.0, adam_betas=(0.9, 0.999), weight_decay=0.0):
    """The optimizer ``name`` (``"sgd"``, with ``momentum``; ``"adam"``, with ``adam_betas``),
    with decoupled ``weight_decay`` of the weight matrices."""
    if name == "sgd":
        return Optimizer(lrs, momentum, weight_decay)
    if name == "adam":
        if momentum:
            raise ConfigurationError("learning.momentum: Adam keeps its own first moment "
                                     "(learning.adam_betas); set momentum = 0, got %r" % momentum)
        return Adam(lrs, adam_betas, weight_decay=weight_decay)
    raise ConfigurationError("learning.optimizer: expected 'sgd' or 'adam', got %r" % (name,))


__all__ = ["Adam", "Optimizer", "make_optimizer", "resolve_learning_rates"]
