"""A batch's phases as data (docs/maths.md section 4; DESIGN.md "A phase plan").

A :class:`Plan` says what one batch asks of an engine: a free phase of at most
``free_steps`` steps, then one nudged phase per non-zero nudge strength in ``nudges``, each
from the free state and at most ``nudge_steps`` steps, every phase stopping early once its
projected step is below ``tol``. An observation at nudge ``0`` is the free state itself.

The estimate is the derivative at ``beta = 0`` of the polynomial through the observations
``(beta_i, dE/dtheta(s_beta_i))``: ``sum_i c_i dE/dtheta(s_beta_i)`` with the weights of
:func:`nudge_weights`, ``sum_i c_i beta_i^k = [k == 1]`` for ``k = 0 .. n - 1``. This module
is the one place the EP scale (``1/beta``, ``1/(2 beta)``, any stencil's) is computed: every
engine, estimator and command multiplies its raw phase observations by :attr:`Plan.weights`.

The variants are shorthands: ``one_sided`` is ``[0, beta]``, ``symmetric`` ``[beta, -beta]``,
``random_sign`` ``[0, +-beta]`` with the sign drawn by :func:`batch_sign` from the one stream
keyed by ``(train.seed, epoch, batch)``, so one seed flips the same batches on every engine;
``holomorphic`` (Laborieux & Zenke 2022) the ``N = learning.points`` complex nudges
``beta e^(2 pi i k / N)`` (:func:`circle`), whose weights are ``e^(-2 pi i k / N) / (N beta)``:
the estimate is the real part of the weighted sum (:meth:`Plan.real`), and the phases run on
complex states, which needs analytic dynamics (:meth:`Plan.check_dynamics`).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .errors import ArgumentError

VARIANTS = ("one_sided", "symmetric", "random_sign", "holomorphic")


def nudge_weights(nudges):
    """The weights ``c`` of the observations at ``nudges`` (distinct numbers, at least two):
    ``sum_i c_i nudges_i^k = [k == 1]`` for ``k`` from 0 to ``n - 1``, so ``sum_i c_i g(nudges_i)``
    is the derivative at 0 of the polynomial through the points. One-sided ``[0, b]`` gives
    ``(-1/b, 1/b)``, symmetric ``[b, -b]`` ``(1/(2b), -1/(2b))``, both exactly. Complex nudges give complex
    weights. Returns an array of the nudges' dtype (float64 or complex128)."""
    b = np.asarray(nudges)
    if b.ndim != 1 or b.size < 2:
        raise ArgumentError("learning.nudges: expected at least two nudge strengths, got %r"
                            % (np.atleast_1d(b).tolist(),))
    if not np.all(np.isfinite(b)):
        raise ArgumentError("learning.nudges: expected finite numbers, got %r" % (b.tolist(),))
    b = b.astype(np.complex128 if np.iscomplexobj(b) else np.float64)
    if len(set(b.tolist())) != b.size:
        raise ArgumentError("learning.nudges: the nudge strengths must be distinct, got %r"
                            % (b.tolist(),))
    if not np.any(b != 0):
        raise ArgumentError("learning.nudges: at least one nudge must be non-zero")
    # the slope at 0 of each Lagrange basis polynomial: exact for two nudges (1/b, 1/(2b))
    c = np.zeros(b.size, b.dtype)
    for i in range(b.size):
        others = np.delete(b, i)
        for m in range(others.size):
            rest = np.delete(others, m)
            c[i] += np.prod(-rest / (b[i] - rest)) / (b[i] - others[m])
    return c


def circle(radius, points):
    """The holomorphic nudges ``radius e^(2 pi i k / points)``, for ``k`` from 0 to ``points - 1``
    (complex; the quarter turns exact, so ``points = 2`` gives ``[r, -r]``)."""
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise ArgumentError("learning.points: expected an integer >= 2 (the holomorphic "
                            "nudges on a circle), got %r" % (points,))
    quarter = (1, 1j, -1, -1j)
    return tuple(complex(radius * (quarter[4 * k // points] if (4 * k) % points == 0
                                   else np.exp(2j * np.pi * k / points)))
                 for k in range(int(points)))


def batch_stream(seed, epoch, batch):
    """The random stream of batch ``batch`` of ``epoch`` in a run seeded ``seed``: the one
    source of a batch's random sign (:func:`batch_sign`; the trainer hands it to engines)."""
    return np.random.default_rng([int(seed), int(epoch), int(batch), 1])


def batch_sign(seed, epoch, batch):
    """The sign of the nudges of batch ``batch`` of ``epoch`` in a run seeded ``seed``
    (random-sign EP): +1 or -1 with probability 1/2, the first draw of :func:`batch_stream`.
    Every engine and the trainer take the sign from here."""
    return sign_of(batch_stream(seed, epoch, batch))


def sign_of(rng=None):
    """+1 or -1 with probability 1/2 each: one uniform draw from ``rng`` (a Generator, a seed
    for one, or None for fresh entropy)."""
    return 1.0 if np.random.default_rng(rng).random() < 0.5 else -1.0


@dataclass(frozen=True)
class Plan:
    """The phases of one batch (module docstring).

    ``nudges``: the nudge strength of each observation, in the order the phases run (``0``:
    the free state); ``free_steps`` / ``nudge_steps``: the most steps (Euler steps or block
    sweeps) of the free phase and of each nudged phase; ``tol``: a phase stops once its
    projected step is at most this (``0``: always the full count); ``random_sign``: the
    non-zero nudges' sign is drawn per batch (:meth:`signed`)."""

    nudges: tuple
    free_steps: int = 20
    nudge_steps: int = 4
    tol: float = 0.0
    random_sign: bool = False

    def __post_init__(self):
        nudge_weights(self.nudges)          # refuses bad nudges at once, naming the field

    @classmethod
    def of(cls, beta=0.5, variant="symmetric", nudges=None, points=4, **phases):
        """The plan of the circuit file's ``learning.variant`` and ``learning.beta`` (and
        ``learning.points`` for ``holomorphic``), or of its explicit ``learning.nudges``
        (which, when given, replace them); ``phases``: ``free_steps``, ``nudge_steps``,
        ``tol``."""
        if nudges is not None and len(nudges):
            if variant == "random_sign":
                raise ArgumentError("learning.nudges: a random sign applies to beta; with "
                                    "explicit nudges write the signs out")
            return cls(tuple(_number(b) for b in nudges), **phases)
        if variant not in VARIANTS:
            raise ArgumentError("learning.variant: expected one of %s, got %r"
                                % (", ".join(VARIANTS), variant))
        b = _number(beta)
        if b == 0:
            raise ArgumentError("learning.beta: must be a non-zero number, got %r" % (beta,))
        if isinstance(b, complex):
            raise ArgumentError("learning.beta: expected a real number (holomorphic EP's "
                                "radius), got %r" % (beta,))
        if variant == "holomorphic":
            return cls(circle(b, points), **phases)
        nudges = (b, -b) if variant == "symmetric" else (0.0, b)   # +beta runs first
        return cls(nudges, random_sign=variant == "random_sign", **phases)

    @functools.cached_property
    def weights(self):
        """The observation weights ``c`` (:func:`nudge_weights`), computed once."""
        return nudge_weights(self.nudges)

    @functools.cached_property
    def complex(self):
        """True when a nudge is complex (holomorphic EP): the phases run on complex states and
        the estimate is the real part of the weighted sum."""
        return bool(np.iscomplexobj(self.weights))

    def real(self, value, dtype=None):
        """The estimate of a weighted sum ``value`` (an array, or a dict of them): for a
        complex plan its real part (Cauchy's formula for the first Taylor coefficient) as
        ``dtype`` (default: the real dtype of ``value``), else ``value`` itself."""
        if not self.complex:
            return value
        if isinstance(value, dict):
            return {k: self.real(v, dtype) for k, v in value.items()}
        v = np.real(value)
        return np.array(v, dtype=v.dtype if dtype is None else dtype)

    def check_dynamics(self, net, clip, field="learning.variant"):
        """An ArgumentError naming ``field`` where the plan's complex nudges cannot run on
        ``net``: holomorphic EP needs analytic dynamics (``network.activation = "logistic"``,
        ``engine.clip = false``, no max pooling); a real plan runs on anything."""
        if not self.complex:
            return
        act = getattr(net, "activation", None)
        if act != "logistic" or clip:
            raise ArgumentError("%s: holomorphic EP needs analytic dynamics (network.activation "
                                "= \"logistic\" and engine.clip = false), got activation \"%s\" "
                                "with clip = %s" % (field, act, "true" if clip else "false"))
        pooled = [t.key for t in getattr(net, "terms", ()) if t.max_pooled]
        if pooled:
            raise ArgumentError("%s: holomorphic EP needs analytic dynamics; max pooling (%s) is "
                                "not analytic: use average pooling" % (field, pooled[0]))

    @property
    def nudged(self):
        """The non-zero nudges: one nudged phase each, in order."""
        return tuple(b for b in self.nudges if b != 0)

    @property
    def phases(self):
        """How many phases run: the free phase and one per non-zero nudge."""
        return 1 + len(self.nudged)

    @property
    def symmetric(self):
        """True for a real pair ``[b, -b]`` (the readout of the mean of the two states)."""
        return len(self.nudges) == 2 and self.nudges[0] == -self.nudges[1] and not self.complex

    def phase_names(self):
        """``(name, nudge)`` of each nudged phase, in the order they run: one phase
        ``nudged``; a symmetric pair ``nudged+`` then ``nudged-``; else (complex nudges
        included) ``nudged_1``, ... (the names traces and the fidelity command give the
        phases)."""
        bs = list(self.nudged)
        if len(bs) == 1:
            return [("nudged", bs[0])]
        if self.symmetric:
            return [("nudged+" if b > 0 else "nudged-", b) for b in bs]
        return [("nudged_%d" % (i + 1), b) for i, b in enumerate(bs)]

    def signed(self, sign):
        """The plan with every nudge multiplied by ``sign`` (random-sign EP's draw); the
        result no longer draws."""
        return dataclasses.replace(self, nudges=tuple(sign * b for b in self.nudges),
                                   random_sign=False)

    def for_batch(self, rng=None):
        """The plan as run on one batch: with ``random_sign``, the sign drawn from ``rng``
        (:func:`sign_of`: the trainer passes the stream of :func:`batch_sign`)."""
        return self.signed(sign_of(rng)) if self.random_sign else self

    def combine(self, observations, dtype=None):
        """``sum_i c_i observations[i]`` for arrays, or per key for dicts of arrays: for a
        complex plan its real part as ``dtype`` (:meth:`real`)."""
        c = self.weights
        if isinstance(observations[0], dict):
            out = {k: sum(ci * o[k] for ci, o in zip(c, observations)) for k in observations[0]}
        else:
            out = sum(ci * o for ci, o in zip(c, observations))
        return self.real(out, dtype)

    def run(self, phase, s0):
        """The observed states of the plan from the free state ``s0``: ``phase(s, beta)``
        relaxes a copy of ``s0`` with nudging ``beta`` and returns the state the update reads;
        an observation at 0 is ``s0`` itself. Returns one state per nudge, in order."""
        out = []
        for b in self.nudges:
            out.append(s0 if b == 0 else phase({p: copy_of(v) for p, v in s0.items()}, b))
        return out


class PhaseRun(NamedTuple):
    """One phase as it ran: its nudge (0 for the free phase), the steps taken and the last
    projected step (:meth:`neurosim.dynamics.Dynamics.settle`)."""

    beta: float
    steps: int
    step: float


def unsettled(runs, tol):
    """``(free, nudged)``: whether the free phase, and any nudged phase, of ``runs`` (a list
    of :class:`PhaseRun`, the free phase first) stopped with its projected step above ``tol``
    (never, when ``tol`` is 0: fixed step counts are not judged)."""
    if not tol or not runs:
        return False, False
    late = [not r.step <= tol for r in runs]
    return late[0], any(late[1:])


def copy_of(v):
    """A copy of a state array: a numpy array's ``copy()``, a torch tensor's ``clone()``."""
    return v.clone() if hasattr(v, "clone") else v.copy()


def _number(v):
    try:
        return complex(v) if isinstance(v, complex) else float(v)
    except (TypeError, ValueError):
        raise ArgumentError("learning.nudges: expected numbers, got %r" % (v,)) from None


__all__ = ["Plan", "PhaseRun", "unsettled", "VARIANTS", "nudge_weights", "circle", "batch_stream",
           "batch_sign", "sign_of"]
