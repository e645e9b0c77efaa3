"""The Euler dynamics of a network bound to one batch (docs/maths.md section 2), in place.

``s_{k+1} = s_k + eps * (F(s_k) - beta dC/ds(s_k))``, optionally projected to [0, 1] after
each step (the 2017 recipe). :class:`Dynamics` compiles a network and a batch of inputs once:
the constant input drive (``x @ W + b``) is computed a single time per batch, and every step
works in preallocated buffers, so long relaxations cost little beyond the matrix products.
:meth:`Dynamics.run_fixed` is the fast path for a fixed number of steps without residual
tracking (the training phases): with clipped hard sigmoid each population takes one fused
update per step, its products accumulated in place by BLAS gemm. :meth:`Dynamics.run_block`
takes layer-wise block updates, :meth:`Dynamics.settle` runs a phase until it settles, and
:meth:`Dynamics.run` is the tracked relaxation behind :func:`neurosim.relax.relax`. A phase
at a complex ``beta`` (holomorphic EP) runs on complex states, in the complex128 buffers of
:meth:`Dynamics.complex_twin`; real phases never touch them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import copy

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from . import checks
from . import energy as en
from .blas import SMALL_GEMM, blas_threads, gemm_operand
from .errors import ArgumentError, NeurosimError

try:  # the clip ufunc itself: np.clip adds a few microseconds of Python dispatch per call
    _clip = np._core.umath.clip
except AttributeError:  # pragma: no cover - other numpy layouts
    _clip = np.clip


class RelaxationError(NeurosimError, RuntimeError):
    """A relaxation diverged or did not converge within its step limit."""


@dataclass
class RelaxResult:
    """The outcome of a relaxation and its statistics.

    ``state``: population -> (batch, n); ``steps``: Euler steps taken; ``residual``: the
    trace of ``max |F|`` over steps, projected in clip mode (:meth:`Dynamics.residual`: the
    push of a unit at a bound outward counts zero; ``residual[k]`` at ``s_k``; empty when
    ``tol`` is None and ``record_residual`` is off); ``converged``: it fell below ``tol``
    (None when no tolerance was asked); ``trajectory``: population -> (steps + 1, batch, n)
    when recorded.
    """

    state: dict
    steps: int
    residual: np.ndarray
    converged: bool | None
    beta: float
    eps: float
    trajectory: dict | None = field(default=None, repr=False)

    @property
    def final_residual(self):
        return float(self.residual[-1]) if len(self.residual) else float("nan")


SETTLE_EVERY = 5    # steps between two measurements of a settling phase's projected step


class Settled(NamedTuple):
    """A phase of :meth:`Dynamics.settle`: the state (the array given, relaxed in place), the
    steps taken and the last projected step (NaN when no step ran)."""

    state: dict
    steps: int
    step: float


def settle_steps(advance, measured, max_steps, tol, every=SETTLE_EVERY, record=None):
    """The settling rule of every engine's phases, written once: ``advance(n)`` takes ``n``
    steps (or sweeps) in place, ``measured()`` takes one more and returns its projected step;
    the step is measured every ``every`` steps and after the last, and the phase stops once it
    is at most ``tol`` (``tol = 0``: all ``max_steps`` steps, measured once at the end), at
    most ``max_steps`` steps. ``record()``, where given, is called after every step: the steps
    are then taken one at a time (the same steps, the same stopping step), so a recorded
    trajectory is the phase itself (the engines' ``phase_trajectory``). Returns ``(steps
    taken, last projected step)`` (NaN when no step ran)."""
    if record is not None:
        advance, measured = _recording(advance, measured, record)
    k, step = 0, float("nan")
    while k < max_steps:
        n = max_steps - k if not tol else min(int(every), max_steps - k)
        if n > 1:
            advance(n - 1)
        step = measured()
        k += n
        if tol and step <= tol:
            break
    return k, step


def _recording(advance, measured, record):
    """``advance`` and ``measured`` of :func:`settle_steps` that call ``record()`` after each
    step (taken one at a time)."""
    def advance_recorded(n):
        for _ in range(n):
            advance(1)
            record()

    def measured_recorded():
        step = measured()
        record()
        return step
    return advance_recorded, measured_recorded


class FastPlan(NamedTuple):
    """The static part of :meth:`Dynamics.run_fixed`'s fused update (:meth:`Dynamics.fast_plan`):
    the BLAS ``gemm`` of the network's dtype; per population the ``(source, A, trans)`` gemm
    operands of its drive terms (``gemm(alpha, A, s_source.T, 1.0, c.T, trans)`` accumulates
    ``alpha s_source @ M`` into ``c``); the population accumulated in place (``star``, or
    None); and whether the steps run on one BLAS thread (the products are at most
    :data:`~neurosim.blas.SMALL_GEMM` multiply-adds)."""

    gemm: object
    terms: dict
    star: str | None
    single_thread: bool


class Dynamics:
    """A network bound to one batch of inputs (and targets), ready to take Euler steps."""

    def __init__(self, net, x, y=None, clip=False):
        self.net = net
        self.inputs = net.inputs_dict(x)
        self.batch = next(iter(self.inputs.values())).shape[0]
        self.targets = None if y is None else net.targets_dict(y, self.batch)
        self.clip = bool(clip)
        act = net.activation
        # with hard sigmoid and states kept in [0, 1], rho(s) = s and rho'(s) = 1
        self.identity_rates = clip and act == "hard_sigmoid"
        dt = net.dtype
        shape = {p: (self.batch, net.sizes[p]) for p in net.state_pops}
        self.buf = {p: np.empty(shape[p], dt) for p in net.state_pops}
        self.tmp = {p: np.empty(shape[p], dt) for p in net.state_pops}
        self.rate = {p: np.empty(shape[p], dt) for p in net.state_pops}
        self.d1 = {p: np.empty(shape[p], dt) for p in net.state_pops}
        self.ec = {p: np.empty(shape[p], dt) for p in net.state_pops}  # eps (const + beta y)
        self.terms = {p: [] for p in net.state_pops}
        self.conv_terms = {p: [] for p in net.state_pops}   # convolutions: en.term_product
        self._input_terms, self._input_convs = [], []
        for t in net.terms:
            if t.conv is not None:
                (self._input_convs if t.source in self.inputs else self.conv_terms[t.target]
                 ).append(t)
                continue
            m = net.params[t.key]
            m = m.T if t.transpose else m
            if t.source in self.inputs:
                self._input_terms.append((t.source, t.target, m))
            else:
                self.terms[t.target].append((t.source, m))
        self._const = None
        self._plan = None
        self._twin = None

    def complex_twin(self):
        """The same network and batch on complex states (complex128 buffers and matrices, the
        same constant drive), built once: :meth:`settle` and :meth:`run` take a phase at a
        complex ``beta``, or from a complex state, there (holomorphic EP; analytic dynamics:
        logistic rates, no clip)."""
        if self._twin is None:
            twin = copy.copy(self)
            c = np.complex128
            for name in ("buf", "tmp", "rate", "d1", "ec"):
                setattr(twin, name, {p: np.empty(v.shape, c) for p, v in getattr(self, name).items()})
            twin.terms = {p: [(q, m.astype(c)) for q, m in t] for p, t in self.terms.items()}
            twin._const, twin._plan, twin._twin = self.const, None, twin
            self._twin = twin
        return self._twin

    def at(self, s, beta):
        """The dynamics that run ``beta`` on ``s``: this one, or where ``beta`` or a state is
        complex (or this is the twin) :meth:`complex_twin`, ``s``'s entries made complex in
        place (the dict's arrays replaced)."""
        if self._twin is not self and not (isinstance(beta, complex) or
                                           any(v.dtype.kind == "c" for v in s.values())):
            return self
        for p, v in s.items():
            if v.dtype.kind != "c":
                s[p] = v.astype(np.complex128)
        return self.complex_twin()

    @property
    def const(self):
        """The constant drive ``b_p + sum_inputs x W`` per population, ``(batch, n_p)``:
        computed once per batch (at the first step), its products accumulated by the same
        BLAS gemm as the fused steps (one BLAS library, one thread pool in a fast EP step)."""
        if self._const is None:
            gemm = get_blas_funcs("gemm", dtype=self.net.dtype)
            const = {}
            for p in self.net.state_pops:
                const[p] = np.empty_like(self.tmp[p])
                const[p][...] = self.net.params["b:%s" % p]
            for src, tgt, m in self._input_terms:
                A, ta = gemm_operand(m)
                gemm(1.0, A, self.inputs[src].T, 1.0, const[tgt].T, ta, 0, 1)
            for t in self._input_convs:
                const[t.target] += en.term_product(self.net, t, self.inputs[t.source])
            self._const = const
        return self._const

    def initial_state(self, state=None):
        """A fresh state: zeros, or a validated copy of ``state`` (warm start)."""
        s = self.net.zero_state(self.batch) if state is None else \
            self.net.check_state(state, self.batch)
        if self.clip:
            for v in s.values():
                np.clip(v, 0.0, 1.0, out=v)
        return s

    def force(self, s, beta=0.0):
        """Compute ``F(s) - beta dC/ds`` into ``self.buf`` and return it (no copy)."""
        net, act, const = self.net, self.net.activation, self.const
        if self.identity_rates:
            r = s
        else:
            r = self.rate
            for p in net.state_pops:
                en.rho(act, s[p], out=r[p])
        pooled = {}   # max pooling: one convolution per projection at these rates
        for p in net.state_pops:
            h, terms = self.buf[p], self.terms[p]
            if terms:
                np.matmul(r[terms[0][0]], terms[0][1], out=h)
                for q, m in terms[1:]:
                    np.matmul(r[q], m, out=self.tmp[p])
                    h += self.tmp[p]
                h += const[p]
            else:
                np.copyto(h, const[p])
            for t in self.conv_terms[p]:
                h += en.term_product(net, t, r[t.source], r, pooled)
            if not self.identity_rates:
                if act == "hard_sigmoid":
                    d = self.d1[p]
                    np.greater_equal(s[p], 0.0, out=d)
                    h *= d
                    np.less_equal(s[p], 1.0, out=d)
                    h *= d
                else:
                    d = self.d1[p]
                    np.subtract(1.0, r[p], out=d)
                    d *= r[p]
                    d *= 4.0
                    h *= d
            h -= s[p]
        if beta:
            if self.targets is None:
                raise ArgumentError("a nudged relaxation (beta != 0) needs targets y")
            if net.readout == "softmax":
                for p, fb in self.readout_feedback(r).items():
                    if not self.identity_rates:
                        fb *= en.rho_prime(act, s[p], r[p])
                    fb *= beta
                    self.buf[p] -= fb
                return self.buf
            for p, yp in self.targets.items():
                t = self.tmp[p]
                np.subtract(s[p], yp, out=t)
                t *= beta
                self.buf[p] -= t
        return self.buf

    def readout_feedback(self, r):
        """The softmax readout's pull ``(dC/dz) W^T`` on the hidden populations it reads, from
        their rates ``r`` (new arrays; :func:`neurosim.energy.readout_feedback`)."""
        return en.readout_feedback(self.net, r, self.targets)

    def step(self, s, eps, beta=0.0, residual=False):
        """One synchronous Euler step, in place; returns ``max |F(s_k)|`` if asked."""
        f = self.force(s, beta)
        res = max(float(np.max(np.abs(v))) for v in f.values()) if residual else None
        self._apply(s, f, eps)
        return res

    def _apply(self, s, f, eps):
        """``s += eps f`` (``f`` is overwritten), then the projection to [0, 1] in clip mode."""
        for p in self.net.state_pops:
            f[p] *= eps
            s[p] += f[p]
            if self.clip:
                _clip(s[p], 0.0, 1.0, out=s[p])

    def _projected_max(self, s, f):
        """``max |f|`` over entries, ignoring components that push a clipped state outward."""
        if not self.clip:
            return max(float(np.max(np.abs(v))) for v in f.values())
        out = 0.0
        for p in self.net.state_pops:
            g = f[p].copy()
            g[(s[p] <= 0.0) & (g < 0)] = 0.0
            g[(s[p] >= 1.0) & (g > 0)] = 0.0
            out = max(out, float(np.max(np.abs(g))))
        return out

    def residual(self, s, beta=0.0):
        """``max |F(s) - beta dC/ds|`` with states at the [0, 1] bounds projected (clip mode):
        components that push a unit at a bound outward count zero. It is the ``eps -> 0``
        limit of :meth:`step_residual`, and never below it, so a tolerance on it is the
        stricter test; both vanish exactly at a projected fixed point."""
        return self._projected_max(s, self.force(s, beta))

    def step_residual(self, s, eps, beta=0.0):
        """The projected step ``max |P(s + eps F(s)) - s| / eps`` (``P`` the projection to
        [0, 1] in clip mode, else the identity, so then ``max |F|``): zero exactly at a fixed
        point of the clipped Euler map, whatever the force at pinned units."""
        f = self.force(s, beta)
        out = 0.0
        for p in self.net.state_pops:
            step = s[p] + eps * f[p]
            if self.clip:
                _clip(step, 0.0, 1.0, out=step)
            step -= s[p]
            out = max(out, float(np.max(np.abs(step))) / eps)
        return out

    # -- fast fixed-step path ----------------------------------------------------------
    def fast_plan(self):
        """The static part of the fused update (a :class:`FastPlan`, built once per Dynamics):
        per population the gemm operands of its drive terms, and the population updated in
        place. Benchmarks time the same gemm calls with it."""
        if self._plan is not None:
            return self._plan
        net = self.net
        gemm = get_blas_funcs("gemm", dtype=net.dtype)
        gterms = {p: [(q,) + gemm_operand(m) for q, m in self.terms[p]] for p in net.state_pops}
        # the largest population without a self-term is accumulated in place (gemm beta = a):
        # every other population reads its old state before it is written
        cands = [p for p in net.state_pops if gterms[p] and all(q != p for q, _, _ in gterms[p])]
        star = max(cands, key=lambda p: net.sizes[p]) if cands else None
        # products this small gain nothing from a second BLAS thread, and lose much when the
        # helper thread waits for a busy core: run the steps on one thread
        work = max([self.batch * net.sizes[p] * net.sizes[q] for p in net.state_pops
                    for q, _, _ in gterms[p]], default=0)
        self._plan = FastPlan(gemm, gterms, star, work <= SMALL_GEMM)
        return self._plan

    def run_fixed(self, s, eps, beta=0.0, steps=0):
        """Exactly ``steps`` Euler steps on ``s`` in place, without residual tracking.

        The dynamics of :meth:`run` (same ``eps``, ``beta``, clipping). With clipped hard
        sigmoid (rates = states) each step is one fused update per population,
        ``s <- clip(a s + eps (sum_q s_q M_q) + eps (const + beta y))`` with
        ``a = 1 - eps (1 + beta [output])``: BLAS gemm accumulates the products in place and
        the constant part is scaled once per call. Numbers equal :meth:`run`'s to rounding.
        Other settings take :meth:`run`'s exact path. Returns ``s``.
        """
        check_eps(eps)
        steps = int(steps)
        if steps < 0:
            raise ArgumentError("steps must be a non-negative integer, got %r" % (steps,))
        if beta and self.targets is None:
            raise ArgumentError("a nudged relaxation (beta != 0) needs targets y")
        net = self.net
        fast = self.identity_rates and not isinstance(beta, complex) and \
            not any(self.conv_terms.values()) and all(
            s[p].flags.c_contiguous and s[p].dtype == net.dtype
            and s[p].shape == (self.batch, net.sizes[p]) for p in net.state_pops)
        if not fast:
            self.run(s, eps, beta=beta, steps=steps)
            return s
        if steps == 0:
            return s
        gemm, gterms, star, small = self.fast_plan()
        const = self.const
        eps, beta = float(eps), float(beta)
        # a softmax readout's nudge is not linear in the state: its pull is recomputed from the
        # old states at every step and subtracted before the projection
        pulled = bool(beta) and net.readout == "softmax"
        a, ec = {}, self.ec
        for p in net.state_pops:
            np.multiply(const[p], eps, out=ec[p])
            if beta and p in self.targets:
                a[p] = 1.0 - eps - eps * beta
                np.multiply(self.targets[p], eps * beta, out=self.tmp[p])
                ec[p] += self.tmp[p]
            else:
                a[p] = 1.0 - eps
        st = {p: s[p].T for p in net.state_pops}          # F-ordered views for BLAS
        buffered = [p for p in net.state_pops if gterms[p] and p != star]
        alone = [p for p in net.state_pops if not gterms[p]]
        bt = {p: self.tmp[p].T for p in buffered}
        jobs = [(self.tmp[p], s[p], a[p], ec[p],
                 [(A, st[q], ta) for q, A, ta in gterms[p]], bt[p]) for p in buffered]
        if star is not None:
            s_star, st_star, ec_star = s[star], st[star], ec[star]
            # gemm's beta scales the old state by a; later terms add to it
            sj = [(A, st[q], ta, a[star] if i == 0 else 1.0)
                  for i, (q, A, ta) in enumerate(gterms[star])]
            # the accumulation must happen in place (no copy): check once on these arrays
            probe = gemm(0.0, sj[0][0], sj[0][1], 1.0, st_star, sj[0][2], 0, 1)
            if not np.may_share_memory(probe, st_star):  # pragma: no cover
                raise RuntimeError("BLAS gemm did not update the state in place")
        with blas_threads(1 if small else None):
            for _ in range(steps):
                pull = {}
                if pulled:   # eps beta (dC/dz) W^T from the old states
                    pull = self.readout_feedback(s)
                    for v in pull.values():
                        v *= eps * beta
                # buffered populations: a s + eps const + eps sum_q s_q M, from the old states
                for t, sp, ap, ecp, gl, tt in jobs:
                    np.multiply(sp, ap, out=t)
                    t += ecp
                    for A, sq, ta in gl:
                        gemm(eps, A, sq, 1.0, tt, ta, 0, 1)
                if star is not None:
                    for A, sq, ta, b in sj:
                        gemm(eps, A, sq, b, st_star, ta, 0, 1)
                    s_star += ec_star
                    if star in pull:
                        s_star -= pull[star]
                    _clip(s_star, 0.0, 1.0, out=s_star)
                for p in alone:
                    s[p] *= a[p]
                    s[p] += ec[p]
                    if p in pull:
                        s[p] -= pull[p]
                    _clip(s[p], 0.0, 1.0, out=s[p])
                for p, (t, sp, _, _, _, _) in zip(buffered, jobs):
                    if p in pull:
                        t -= pull[p]
                    _clip(t, 0.0, 1.0, out=sp)
        if not all(np.isfinite(v.sum()) for v in s.values()):
            raise RelaxationError("relaxation diverged (NaN/inf in the state after %d steps): "
                                  "reduce eps (now %g) or the weight scale" % (steps, eps))
        return s

    def run_block(self, s, beta=0.0, sweeps=10):
        """Layer-wise block updates on ``s`` in place (hard sigmoid, states in [0, 1]).

        Each population in turn is set to the exact minimiser of ``E + beta C`` over
        [0, 1] with the others held: ``s_p = clip(h_p)``, and on outputs
        ``clip((h + beta y) / (1 + beta))``. With a state readout every update lowers
        ``E + beta C``; the fixed points are those of the clipped Euler dynamics, reached in a
        few sweeps where Euler needs tens of steps, and reached whatever the coupling's
        strength (no step size to exceed). One sweep costs about one Euler step. With a
        softmax readout the free phase is the same exact minimisation; in a nudged phase a
        population the readout reads is set to ``clip(h_p - beta (dC/dz) W^T)`` with the pull
        taken at the current states (the fixed-point iteration of Laborieux et al. 2021: the
        same fixed points, reached for the small beta EP uses). A population that a
        max-pooled convolution reads gets its feedback at its current switches: the block
        update is then a fixed-point iteration too (the energy is not convex in it). Returns
        ``s``.
        """
        net = self.net
        if not self.identity_rates:
            raise ArgumentError("block updates need hard_sigmoid with clip=True (rho(s) = s)")
        if any(q == p for p in net.state_pops for q, _ in self.terms[p]):
            raise ArgumentError("block updates need a network without lateral projections")
        if beta and self.targets is None:
            raise ArgumentError("a nudged relaxation (beta != 0) needs targets y")
        const, beta = self.const, float(beta)
        pulled = {t.source for t in net.readout_terms} if net.readout == "softmax" else set()
        # max pooling: (max, switches) per projection, kept while its source is unchanged (the
        # drive of b computes what the next feedback to a needs)
        pooled = {}
        for _ in range(int(sweeps)):
            for p in net.state_pops:
                h = self.buf[p]
                np.copyto(h, const[p])
                for q, m in self.terms[p]:
                    h += np.matmul(s[q], m, out=self.tmp[p])
                for t in self.conv_terms[p]:   # max pooling: at the current switches
                    h += en.term_product(net, t, s[t.source], s, pooled)
                for t in self.conv_terms[p]:   # s[p] changes below
                    if t.transpose:
                        pooled.pop(t.key, None)
                if beta and p in pulled:   # from the current states (one readout source
                    h -= beta * self.readout_feedback(s)[p]   # in a layered network)
                elif beta and p in self.targets:
                    h += beta * self.targets[p]
                    if 1.0 + beta > 0:
                        h /= 1.0 + beta
                    else:  # concave in s: the minimum over [0, 1] is at a bound
                        h = (h > 0.5 * (1.0 + beta)).astype(h.dtype)
                _clip(h, 0.0, 1.0, out=s[p])
        return s

    def settle(self, s, eps, beta=0.0, max_steps=20, tol=0.0, solver="euler",
               every=SETTLE_EVERY, record=None):
        """A phase that settles: Euler steps (:meth:`run_fixed`) or block sweeps
        (:meth:`run_block`, ``solver="block"``) on ``s`` in place until the projected step is
        at most ``tol``, at most ``max_steps`` of them; the step is measured every ``every``
        steps and after the last one. The projected step is ``max |s_{k+1} - s_k| / eps`` of
        one Euler step (``max |s_{k+1} - s_k|`` of one sweep): zero exactly at a fixed point.
        Returns a :class:`Settled` ``(state, steps, step)``; ``tol = 0`` runs all the steps.
        ``record(s)``, where given, is called after every step (the phase's trajectory: the
        same steps, one at a time, and the same stopping step; :func:`settle_steps`).
        A complex ``beta`` runs on :meth:`complex_twin` (``s``'s entries made complex)."""
        dyn = self.at(s, beta)
        if dyn is not self:
            return dyn.settle(s, eps, beta, max_steps, tol, solver, every, record)
        max_steps = int(max_steps)
        if solver == "block":
            def advance(n):
                self.run_block(s, beta, n)
            scale = 1.0
        else:
            def advance(n):
                self.run_fixed(s, eps, beta, n)
            scale = 1.0 / check_eps(eps)

        def measured():
            before = {p: v.copy() for p, v in s.items()}
            advance(1)
            return scale * max(float(np.max(np.abs(s[p] - before[p]), initial=0.0))
                               for p in s)
        k, step = settle_steps(advance, measured, max_steps, tol, every,
                               None if record is None else lambda: record(s))
        return Settled(s, k, step)

    def run(self, s, eps, beta=0.0, steps=None, tol=None, record=False, record_residual=False,
            raise_on_fail=True):
        """Take Euler steps on ``s`` in place; see :func:`neurosim.relax.relax` for the
        arguments. A complex ``beta`` runs on :meth:`complex_twin` (``s``'s entries made
        complex)."""
        dyn = self.at(s, beta)
        if dyn is not self:
            return dyn.run(s, eps, beta, steps, tol, record, record_residual, raise_on_fail)
        check_eps(eps)
        limit = int(steps)
        trace, traj = [], None
        if record:
            traj = {p: [s[p].copy()] for p in self.net.state_pops}
        k = 0
        converged = None
        track = tol is not None or record_residual
        while k < limit:
            if track:
                f = self.force(s, beta)
                r = self._projected_max(s, f)
                self._apply(s, f, eps)
                trace.append(r)
                if not np.isfinite(r) or r > 1e12:
                    raise RelaxationError(
                        "relaxation diverged at step %d (max |force| = %.3g, beta=%s): reduce the "
                        "step eps (now %g) or the weight scale" % (k, r, _text(beta), eps))
            else:
                self.step(s, eps, beta)
            k += 1
            if record:
                for p in self.net.state_pops:
                    traj[p].append(s[p].copy())
            if tol is not None and trace[-1] < tol:
                converged = True
                break
        if tol is not None and converged is None:
            r = self.residual(s, beta)
            trace.append(r)
            converged = bool(r < tol)
            if not converged:
                if not np.isfinite(r):
                    raise RelaxationError("relaxation diverged (max |force| = %s after %d steps): "
                                          "reduce eps (now %g) or the weight scale" % (r, k, eps))
                if raise_on_fail:
                    rounding = ("; a float32 state holds a fixed point only to about 1e-7, so "
                                "use a float64 network (net.copy(dtype='float64')) or tol "
                                ">= 1e-6" if self.net.dtype == np.float32 and tol < 1e-6 else "")
                    raise RelaxationError(
                        "relaxation did not converge in max_steps=%d: max |force| = %.3g > tol=%g "
                        "(beta=%s, eps=%g); raise max_steps, raise tol, or pass "
                        "raise_on_fail=False to get the state with converged=False%s"
                        % (limit, r, tol, _text(beta), eps, rounding))
        if not track and not all(np.all(np.isfinite(v)) for v in s.values()):
            raise RelaxationError("relaxation diverged (NaN/inf in the state after %d steps): "
                                  "reduce eps (now %g) or the weight scale" % (k, eps))
        if record:
            traj = {p: np.stack(v) for p, v in traj.items()}
        return RelaxResult(state=s, steps=k, residual=np.array(trace), converged=converged,
                           beta=beta, eps=eps, trajectory=traj)


def _text(beta):
    """``beta`` for a message (``%g``, or both parts of a complex nudge)."""
    return "%g%+gj" % (beta.real, beta.imag) if isinstance(beta, complex) else "%g" % beta


def check_eps(eps):
    """``eps`` (the Euler step) as a positive number."""
    return checks.positive("eps", eps, what=" (the Euler step)")
