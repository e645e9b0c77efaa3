"""The exact free fixed point ``s0`` (docs/maths.md sections 1-3, 10): the state RBP linearises at.

With hard sigmoid and states projected to [0, 1] (the 2017 recipe) the rates equal the
states, so ``F(s) = c + K s - s`` is linear (``K`` the symmetric coupling of the state units,
``c = b + x W`` the input drive). A projected fixed point ``s = P(s + eps F(s))`` is then the
solution of a box-constrained quadratic problem: on the interior units ``F = 0``, a linear
system; a unit at 0 has ``F <= 0``, at 1 ``F >= 0``. :func:`free_fixed_point` finds it by an
active-set (projected Newton) method started from ``WARM_STEPS`` Euler steps: hold the units
pinned at a bound, solve for the interior exactly, project, repeat until the pinned set
stops changing; the last solve is on the right set, so the residual is at rounding level.
Populations that do not couple to each other (in a layered network every other layer) are
eliminated exactly (given the rest, each of their units is ``clip(h)``), so the dense solves
are over the remaining units only: the 10 outputs of a 784-500-10 network.

The energy need not be convex (at initial weights of 784-500-10 the interior Hessian has
negative eigenvalues until enough units are pinned), so the Newton steps are safeguarded: an
energy line search along the projection arc, the eigenvalues' magnitudes where the reduced
Hessian is indefinite, and a final check that the interior Hessian is positive definite (a
stable minimum, where the dynamics settle). Where the energy has several minima, the steps
only descend from the warmed-up state, so the warm-up picks the basin, as it does for the
Euler dynamics; the longer it is, the more often the minimum is Euler's own. Measured on
784-500-10 (Fashion-MNIST and random inputs, 4 batches of 50): after 20 warm-up steps 2 of
200 examples ended in another minimum than an Euler run to 1e-12 (1,200-6,200 steps) at the
initial weights, none after 100 steps, none with weights trained for 2 epochs.

Everything else (logistic rates, no clipping, vector-field dynamics) relaxes by Euler steps
and, for smooth networks small enough, is refined by Newton steps (:func:`relax.polish`).

The result is verified: a residual above ``tol`` raises :class:`FixedPointError`, never a
silently unconverged state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import checks
from . import energy as en
from .errors import NeurosimError
from .blas import SMALL_GEMM, blas_threads
from .dynamics import Dynamics
from .relax import polish

WARM_STEPS = 100            # Euler steps before the first active-set solve (see solve())
ACTIVE_SET_ITERATIONS = 50  # projected Newton steps per attempt
DENSE_UNITS = 3000          # state units per example up to which the coupling is held dense
POLISH_UNITS = 1500         # relax.polish's dense-Jacobian limit
EIGEN_UNITS = 64            # kept units up to which every Newton step uses eigenvalues
SCHUR_CHUNK = 1 << 23       # entries of the batched (examples, R, E) product built at once


class FixedPointError(NeurosimError, RuntimeError):
    """The free fixed point was not reached to the asked tolerance."""


@dataclass
class FixedPoint:
    """A verified free fixed point and how it was found.

    ``state``: population -> (batch, n) in ``net.dtype``; ``residual``: max over the batch of
    the projected step residual ``max |P(s + eps F(s)) - s| / eps`` of the solution, computed
    in float64 (``P`` the projection to [0, 1] with clip, else the identity, so then
    ``max |F|``); ``steps``: Euler steps taken; ``newton_iterations``: Newton (projected
    Newton, active-set) iterations over the batch; ``pinned``: population -> fraction of
    units at 0 or 1 (clip only, else empty); ``seconds``: wall time. ``state_residual`` is
    the residual of ``state`` itself: equal to
    ``residual`` for float64 networks; for float32 ones the float64 solution rounded to
    float32, so about 1e-8 to 1e-7 (no float32 state is a fixed point to 1e-10).
    """

    state: dict
    residual: float
    steps: int
    newton_iterations: int
    pinned: dict
    seconds: float
    state_residual: float


def free_fixed_point(net, x, *, clip, eps=0.5, tol=1e-10, state=None, max_steps=100_000,
                     batch=None, warm_steps=None):
    """The free fixed point of ``net`` on inputs ``x``, verified to ``tol``.

    ``clip``: the dynamics project states to [0, 1] after each Euler step; ``eps``: their
    Euler step (for the warm start and the residual); ``state``: warm start (default zeros);
    ``warm_steps``: Euler steps before the first active-set solve (default ``WARM_STEPS``;
    0 polishes ``state`` itself, e.g. an engine's own free state, so the fixed point is the
    one of the basin that state is in);
    ``max_steps``: Euler steps at most; ``batch``: a label for error messages (e.g.
    ``"epoch 1, batch 17"``). The work is done in float64 whatever ``net.dtype``, and
    ``tol`` applies to the float64 solution (see :class:`FixedPoint`). Returns a
    :class:`FixedPoint`; raises :class:`FixedPointError` when ``residual > tol`` or when the
    clipped hard-sigmoid solution is a saddle of the energy.
    """
    t0 = time.perf_counter()
    _check_arguments(eps, tol, max_steps)
    net64 = net if net.dtype == np.float64 else net.copy(dtype="float64")
    dyn = Dynamics(net64, x, clip=clip)
    s = dyn.initial_state(state)
    with blas_threads(1 if _small_products(net, dyn.batch) else None):
        problem = BoxQuadratic.of(dyn) if clip else None
        if problem is not None:
            s, steps, newton, saddle = problem.solve(
                s, eps, tol, int(max_steps), WARM_STEPS if warm_steps is None else warm_steps)
        else:
            s, steps, newton = _relax_and_polish(dyn, s, eps, tol, int(max_steps))
            saddle = False
        residual = dyn.step_residual(s, eps)
    out = {p: v.astype(net.dtype) for p, v in s.items()}
    state_residual = residual if net.dtype == np.float64 else \
        dyn.step_residual({p: v.astype(np.float64) for p, v in out.items()}, eps)
    pinned = {p: float(np.mean((v <= 0.0) | (v >= 1.0))) for p, v in out.items()} if clip else {}
    if not residual <= tol or saddle:
        raise FixedPointError(_failure_message(net, batch, residual, tol, steps, newton, eps,
                                               max_steps, saddle, problem is not None))
    return FixedPoint(state=out, residual=residual, steps=steps, newton_iterations=newton,
                      pinned=pinned, seconds=time.perf_counter() - t0,
                      state_residual=state_residual)


def _check_arguments(eps, tol, max_steps):
    checks.positive("eps", eps)
    checks.positive("tol", tol)
    checks.integer("max_steps", max_steps, 0)


def _failure_message(net, batch, residual, tol, steps, newton, eps, max_steps, saddle, exact):
    label = "the batch" if batch is None else str(batch)
    if saddle:
        return ("free fixed point of %s: the projected fixed point found (residual %.3g) is a "
                "saddle of the energy (the Hessian on its interior units is not positive "
                "definite), which the dynamics do not settle at; %d Euler steps (max_steps=%d) "
                "did not reach a stable one: raise max_steps or reduce the weight scale"
                % (label, residual, steps, max_steps))
    how = ("%d Euler steps (max_steps=%d) and %d projected Newton iterations"
           % (steps, max_steps, newton) if exact else
           "%d Euler steps (max_steps=%d) and %d Newton steps" % (steps, max_steps, newton))
    advice = ("raise max_steps (now %d), lower eps (now %g) if the Euler steps oscillate, or "
              "raise tol" % (max_steps, eps))
    return ("free fixed point of %s not reached: projected residual max |P(s + eps F) - s| / eps"
            " = %.3g > tol=%g after %s; %s" % (label, residual, tol, how, advice))


def _small_products(net, batch):
    """Is one BLAS thread enough? The repeated products (Euler steps, the reduced Hessian)
    up to ``blas.SMALL_GEMM`` multiply-adds, the one input-drive product up to 64 times
    that (784-500-10, batch 50: 0.25 M and 20 M). Products this small gain nothing from a
    second thread, and on a busy machine each multi-threaded call waits for a core: measured
    under load, free_fixed_point on 784-500-10 took 0.13 s with two threads, 0.017 s with
    one."""
    state = set(net.state_pops)
    sizes = [(batch * net.sizes[t.source] * net.sizes[t.target], t.source in state)
             for t in net.terms]
    kept = net.n_state - sum(net.sizes[p] for p in _uncoupled_populations(net))
    repeated = max([m for m, inner in sizes if inner]
                   + [batch * kept * max(kept, net.n_state - kept)])
    drive = max([m for m, inner in sizes if not inner], default=0)
    return repeated <= SMALL_GEMM and drive <= 64 * SMALL_GEMM


def _relax_and_polish(dyn, s, eps, tol, max_steps):
    """The general path: Euler steps to ``tol`` (projected), then Newton refinement where
    :func:`relax.polish` applies (logistic, up to 1500 units, nothing pinned by the clip).
    Returns ``(state, euler_steps, newton_steps)``."""
    net = dyn.net
    smooth = net.activation == "logistic" and net.n_state <= POLISH_UNITS
    # Newton converges quadratically from a moderately converged state: stop Euler earlier
    first = max(tol, 1e-8) if smooth else tol
    res = dyn.run(s, eps, steps=max_steps, tol=first, raise_on_fail=False)
    steps, newton = res.steps, 0
    if smooth:
        s, newton = _polish(dyn, s, eps)
    if dyn.step_residual(s, eps) > tol and steps < max_steps:
        res = dyn.run(s, eps, steps=max_steps - steps, tol=tol, raise_on_fail=False)
        steps += res.steps
    return s, steps, newton


def _polish(dyn, s, eps, iters=4):
    """Accepted Newton steps of :func:`relax.polish` on ``s`` (skipped with units at a bound
    of the clip, where the unprojected Newton step does not apply)."""
    inside = lambda st: all(np.all((v > 0.0) & (v < 1.0)) for v in st.values())  # noqa: E731
    if dyn.clip and not inside(s):
        return s, 0
    done = 0
    r = dyn.step_residual(s, eps)
    for _ in range(iters):
        cand = polish(dyn.net, dyn.inputs, s, iters=1)
        if cand is s or (dyn.clip and not inside(cand)):
            break
        rc = dyn.step_residual(cand, eps)
        if not rc < r:
            break
        s, r, done = cand, rc, done + 1
    return s, done


class BoxQuadratic:
    """The clipped hard-sigmoid free phase as ``min E(s) = 1/2 s^T (I - K) s - c^T s`` over
    [0, 1]^n (rates equal states, so ``F = c + K s - s = -dE/ds``).

    Units are flattened in ``net.state_pops`` order; ``E`` indexes the eliminated units,
    ``R`` the kept ones, ``K_RE`` the coupling block between them. Eliminated populations have
    no coupling among themselves (no lateral projection, pairwise unconnected): given the other
    (``kept``) units their exact minimiser is ``s_E = clip(c_E + K_ER s_R)``, so the problem
    reduces to the kept units, with the Schur complement ``I - K_RR - K_RE D_E K_ER`` (``D_E``
    the interior eliminated units) as its Hessian.
    """

    def __init__(self, dyn, K, eliminated):
        self.dyn = dyn
        net = dyn.net
        offsets, o = {}, 0
        for p in net.state_pops:
            offsets[p] = np.arange(o, o + net.sizes[p])
            o += net.sizes[p]
        none = np.zeros(0, dtype=np.intp)
        self.E = np.concatenate([offsets[p] for p in eliminated] or [none])
        self.R = np.concatenate([offsets[p] for p in net.state_pops if p not in eliminated]
                                or [none])
        self.K_RE = np.ascontiguousarray(K[np.ix_(self.R, self.E)])
        self.K_RR = np.ascontiguousarray(K[np.ix_(self.R, self.R)])
        self.H_RR = np.eye(len(self.R)) - self.K_RR
        self.c = en.flatten(net, dyn.const)

    @classmethod
    def of(cls, dyn):
        """The problem of ``dyn`` (clipped hard sigmoid, energy dynamics, tied weights), or
        None where these dynamics are not a box-constrained quadratic problem (also where a
        max-pooled convolution couples two state populations: the coupling then depends on
        its switches)."""
        net = dyn.net
        if not (dyn.identity_rates and net.dynamics == "energy" and net.n_state <= DENSE_UNITS):
            return None
        if any(t.max_pooled and t.conv_source in net.state_pops for t in net.terms):
            return None
        K = _coupling(net)
        if not np.array_equal(K, K.T):
            return None
        return cls(dyn, K, _uncoupled_populations(net))

    def solve(self, state, eps, tol, max_steps, warm_steps=WARM_STEPS):
        """Active-set solution from ``state`` after ``warm_steps`` Euler steps; where it does
        not settle (or settles at a saddle), more Euler steps and again, within
        ``max_steps``. Returns ``(state, euler_steps, newton_iterations, saddle)``."""
        net, dyn = self.dyn.net, self.dyn
        warm = {p: v.copy() for p, v in state.items()}
        steps = min(int(warm_steps), max_steps)
        dyn.run_fixed(warm, eps, steps=steps)
        iterations = 0
        while True:
            s, n, ok, saddle = self._projected_newton(en.flatten(net, warm)[:, self.R], eps, tol)
            iterations += n
            if (ok and not saddle) or steps >= max_steps:
                return en.unflatten(net, s), steps, iterations, saddle and ok
            more = min(max(4 * steps, 100), max_steps - steps)
            dyn.run_fixed(warm, eps, steps=more)
            steps += more

    def complete(self, sR, rows):
        """The full state ``(len(rows), n)`` of examples ``rows``: kept units ``sR``,
        eliminated ones at their exact minimiser given them."""
        s = np.empty((sR.shape[0], len(self.E) + len(self.R)))
        s[:, self.R] = sR
        s[:, self.E] = np.clip(self.c[rows][:, self.E] + sR @ self.K_RE, 0.0, 1.0)
        return s

    def forces(self, s, rows):
        """``F(s) = c + K s - s`` of full states ``(len(rows), n)`` of examples ``rows``."""
        sR, sE = s[:, self.R], s[:, self.E]
        F = self.c[rows] - s
        F[:, self.E] += sR @ self.K_RE
        F[:, self.R] += sE @ self.K_RE.T + sR @ self.K_RR
        return F

    def _evaluate(self, sR, rows):
        """Full state, force and per-example energy at kept units ``sR`` of ``rows``."""
        s = self.complete(sR, rows)
        F = self.forces(s, rows)
        energy = -0.5 * np.sum(s * (F + self.c[rows]), axis=1)  # 1/2 s.(I - K)s - c.s
        return s, F, energy

    def _projected_newton(self, sR, eps, tol):
        """Projected Newton steps on the kept units, safeguarded by an energy line search,
        until every example's residual is below ``tol`` with its pinned set settled (so the
        last step solved the right linear system). Returns ``(full state, iterations,
        converged, saddle)``."""
        B, n = sR.shape[0], len(self.E) + len(self.R)
        sR = sR.copy()
        out = np.empty((B, n))
        last_free, seen, newton = np.zeros((B, n), bool), np.zeros(B, bool), np.zeros(B, bool)
        todo = np.arange(B)
        for it in range(ACTIVE_SET_ITERATIONS + 1):
            s, F, energy = self._evaluate(sR[todo], todo)
            # kept units that the Euler step would put on a bound go there exactly (a Newton
            # step lands on a bound only to rounding)
            x, step = s[:, self.R], np.clip(s[:, self.R] + eps * F[:, self.R], 0.0, 1.0)
            snap = ((step == 0.0) | (step == 1.0)) & (x != step)
            if snap.any():
                sR[todo] = np.where(snap, step, x)
                s, F, energy = self._evaluate(sR[todo], todo)
            free = _free_units(s, F)
            res = np.max(np.abs(np.clip(s + eps * F, 0.0, 1.0) - s), axis=1) / eps
            # settled: the last step was Newton's on this very pinned set (exact), or the
            # residual is far below tol anyway
            same = seen[todo] & newton[todo] & np.all(free == last_free[todo], axis=1)
            settled = (res <= tol) & (same | (res <= 1e-3 * tol))
            out[todo[settled]] = s[settled]
            if settled.all():
                return out, it, True, not self._positive_definite(
                    _free_units(out, self.forces(out, slice(None)))).all()
            if it == ACTIVE_SET_ITERATIONS:
                out[todo] = s
                return out, it, False, False
            keep = ~settled
            todo, s, F, energy, free = todo[keep], s[keep], F[keep], energy[keep], free[keep]
            last_free[todo], seen[todo] = free, True
            sR[todo], newton[todo] = self._line_search(todo, s[:, self.R], F, energy, free, eps)
        raise AssertionError("unreachable")  # pragma: no cover

    def _line_search(self, rows, x0, F, energy, free, eps, sigma=1e-4, halvings=30):
        """The next kept units of ``rows`` from ``x0``: the projected Newton step, halved until
        the energy falls (Armijo along the projection arc, to its rounding); where no halving
        of it descends, the projected gradient (Euler) step, halved likewise; where neither,
        ``x0``. Also returns which rows took the full Newton step."""
        FR = F[:, self.R]
        new, accepted = x0.copy(), np.zeros(len(rows), bool)
        # energy changes below its rounding cannot be judged: accept those steps
        slack = 1e-14 * (1.0 + np.abs(energy))
        full = None
        for direction in (self._newton_step(F, free), eps * FR):
            alpha = 1.0
            for _ in range(halvings):
                cand = np.clip(x0 + alpha * direction, 0.0, 1.0)
                gain = np.sum(FR * (cand - x0), axis=1)   # first-order energy decrease
                _, _, e_new = self._evaluate(cand, rows)
                ok = ~accepted & (gain > 0) & (e_new <= energy - sigma * gain + slack)
                new[ok], accepted = cand[ok], accepted | ok
                full = accepted.copy() if full is None else full
                if accepted.all():
                    return new, full
                alpha *= 0.5
        return new, full

    def _newton_step(self, F, free):
        """The Newton step on the kept units: ``S dR = F_R`` on the free ones (zero at pinned
        ones), ``S`` the Schur complement with the interior eliminated units. Where ``S`` is
        not positive definite (the energy is not convex there: large weights) the step uses
        ``|S|`` (eigenvalues by magnitude), a descent direction that leaves the saddle
        region; at a strict minimum it is Newton's step."""
        m = free.astype(np.float64)
        mR = m[:, self.R]
        if len(self.R) == 0:
            return np.zeros((F.shape[0], 0))
        S = self._schur(m[:, self.E], mR)
        rhs = mR * F[:, self.R]
        if len(self.R) <= EIGEN_UNITS:
            return _saddle_free_solve(S, rhs)
        d = np.empty_like(rhs)
        convex = self._positive_definite_schur(S)
        if convex.any():
            d[convex] = np.linalg.solve(S[convex], rhs[convex][:, :, None])[:, :, 0]
        if not convex.all():
            d[~convex] = _saddle_free_solve(S[~convex], rhs[~convex])
        return d

    def _schur(self, mE, mR):
        """Per example ``I - K_RR - K_RE diag(mE) K_ER``, with identity rows and columns at the
        pinned kept units (``mR = 0``) so that they do not move."""
        B, r, e = mE.shape[0], len(self.R), len(self.E)
        S = np.empty((B, r, r))
        chunk = max(1, SCHUR_CHUNK // max(1, r * e))
        for a in range(0, B, chunk):
            b = min(B, a + chunk)
            S[a:b] = self.H_RR - (self.K_RE[None] * mE[a:b, None, :]) @ self.K_RE.T
        S *= mR[:, :, None] * mR[:, None, :]
        S[:, np.arange(r), np.arange(r)] += 1.0 - mR
        return S

    def _positive_definite(self, free):
        """Per example: is the Hessian on the free units positive definite (a strict minimum
        of the energy on its face, where the dynamics settle)? Its eliminated block is the
        identity, so this is the Schur complement's Cholesky factorisation."""
        B = free.shape[0]
        if len(self.R) == 0:
            return np.ones(B, bool)
        m = free.astype(np.float64)
        return self._positive_definite_schur(self._schur(m[:, self.E], m[:, self.R]))

    @staticmethod
    def _positive_definite_schur(S):
        """Per example: does ``S`` have a Cholesky factorisation?"""
        out = np.ones(S.shape[0], bool)
        try:
            np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            for i in range(S.shape[0]):
                try:
                    np.linalg.cholesky(S[i])
                except np.linalg.LinAlgError:
                    out[i] = False
        return out


def _saddle_free_solve(S, rhs, floor=1e-10):
    """``|S|^{-1} rhs`` per example, ``|S|`` the symmetric ``S`` with its eigenvalues
    replaced by their magnitudes (at least ``floor``)."""
    lam, V = np.linalg.eigh(S)
    lam = np.maximum(np.abs(lam), floor)
    return np.einsum("bij,bj->bi", V, np.einsum("bji,bj->bi", V, rhs) / lam)


def _free_units(s, F):
    """The units not pinned by the projection: pinned are those at 0 pushed down (``F <= 0``)
    and at 1 pushed up (``F >= 0``)."""
    return ~(((s <= 0.0) & (F <= 0.0)) | ((s >= 1.0) & (F >= 0.0)))


def _coupling(net):
    """The dense coupling ``K`` of the state units, ``h = c + K s`` for rates equal to states
    (``K[p, q] = dh_p / drho_q``, populations in ``net.state_pops`` order)."""
    n = net.n_state
    offsets, o = {}, 0
    for p in net.state_pops:
        offsets[p] = o
        o += net.sizes[p]
    K = np.zeros((n, n))
    for t in net.terms:
        if t.source not in offsets:
            continue
        m = en.term_matrix(net, t)                  # h_target += rho_source @ m
        a, b = offsets[t.target], offsets[t.source]
        K[a:a + net.sizes[t.target], b:b + net.sizes[t.source]] += m.T
    return K


def _uncoupled_populations(net):
    """A set of state populations with no coupling among them (none lateral, no projection
    between two of them), largest first: their units are eliminated exactly."""
    touches = {p: set() for p in net.state_pops}
    for t in net.terms:
        if t.source in touches:
            touches[t.target].add(t.source)
            touches[t.source].add(t.target)
    chosen = []
    for p in sorted(net.state_pops, key=lambda q: -net.sizes[q]):
        if p not in touches[p] and not any(q in touches[p] for q in chosen):
            chosen.append(p)
    return chosen


__all__ = ["free_fixed_point", "FixedPoint", "FixedPointError"]
