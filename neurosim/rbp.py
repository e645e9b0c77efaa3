"""Recurrent backpropagation: the ground-truth gradient of the loss at the free fixed point
(docs/maths.md section 3).

* ``implicit``: ``dL/dtheta = -(dF/dtheta)^T J^{-T} dC/ds``, solved densely per example, by
  conjugate gradient (energy mode, ``-J`` is symmetric positive definite), GMRES (vector-field
  mode) or a truncated Neumann series, all through scipy LinearOperators.
* ``almeida_pineda``: the discrete-time side network ``Sbar_{k+1} = (dG/ds)^T Sbar_k`` for the
  Euler map ``G = s + eps F``, accumulating ``Thetabar``.
* ``continuous``: the continuous-time side network ``dSbar/dt = J^T Sbar`` (matrix exponential
  for small networks, adaptive integration otherwise).
* ``bptt``: backpropagation through the unrolled Euler free phase.

Every solver reports its statistics (:class:`SolverStats`), including the spectral radius of
``dG/ds = I + eps J``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla

from . import energy as en
from .errors import ArgumentError, NeurosimError
from .fixed_point import free_fixed_point
from .blas import SMALL_GEMM, blas_threads
from .dynamics import Dynamics, RelaxationError, check_eps
from .relax import free_state, relax

METHODS = ("implicit", "almeida_pineda", "continuous", "bptt")
SOLVERS = ("auto", "dense", "cg", "gmres", "neumann")
DENSE_LIMIT = 1500  # state units per example up to which dense linear algebra is used


class RBPConvergenceError(NeurosimError, RuntimeError):
    """RBP was asked to converge where it cannot (spectral radius >= 1, unstable J, ...)."""


@dataclass
class SolverStats:
    """What a gradient computation did: method, solver, iterations, final relative residual,
    whether it converged, and the spectral radius of ``dG/ds = I + eps J`` (max over the
    batch; None where not computed)."""

    method: str
    solver: str | None = None
    iterations: int = 0
    residual: float = 0.0
    converged: bool = True
    spectral_radius: float | None = None
    residual_trace: list = field(default_factory=list, repr=False)


@dataclass
class SideNetwork:
    """Almeida–Pineda side-network time series: ``S[pop]`` is ``(steps, batch, n_pop)`` (per
    example), ``Theta[k]`` a parameter dict (batch mean), ``times`` the time of each entry."""

    S: dict
    Theta: list
    times: np.ndarray
    s0: dict
    stats: SolverStats


@dataclass
class BPTTResult:
    """BPTT through ``steps`` Euler steps: ``gradient`` and ``Theta[j]``, the gradient carried
    back through the last ``j`` steps (``Theta[0]`` is zero)."""

    gradient: dict
    Theta: list
    states: dict


# -- helpers ------------------------------------------------------------------------------
def _setup(net, x, y, eps, tol, state, clip=False):
    """``(s0, linearisation at s0, dC/ds, dC/dtheta)``; ``s0`` relaxed here when ``state`` is
    None (with clip the verified fixed point of :func:`fixed_point.free_fixed_point`).
    ``dC/dtheta`` is the cost's direct dependence on the parameters (a softmax readout's;
    zeros otherwise): every gradient below starts from it (``Thetabar_0``)."""
    inputs = net.inputs_dict(x)
    batch = next(iter(inputs.values())).shape[0]
    net.targets_dict(y, batch)
    if state is not None:
        s0 = net.check_state(state, batch)
    elif clip:
        s0 = free_fixed_point(net, inputs, clip=True, eps=eps, tol=tol,
                              max_steps=1_000_000).state
    else:
        s0 = free_state(net, inputs, eps=eps, tol=tol)
    lin = en.Linearization(net, s0, inputs, clip=clip)
    return s0, lin, en.dC_ds(net, s0, y), en.dC_dtheta(net, s0, y)


def _norm(d):
    return float(np.sqrt(sum(np.sum(v * v) for v in d.values())))


def _scale(d, a):
    return {k: a * v for k, v in d.items()}


def _axpy(a, x, y):
    """y += a x for dicts, in place."""
    for k in y:
        y[k] += a * x[k]


def _operator(net, lin, fn):
    """A scipy LinearOperator over the whole batch (block diagonal, one block per example)."""
    batch, n = lin.batch, net.n_state

    def mv(v):
        v = np.asarray(v).reshape(batch, n)
        return en.flatten(net, fn(en.unflatten(net, v))).ravel()

    return spla.LinearOperator((batch * n, batch * n), matvec=mv, dtype=np.float64)


def spectral_radius(net, x, eps, state=None, lin=None, tol=1e-12):
    """Spectral radius of ``dG/ds = I + eps J`` at the free fixed point (max over the batch)."""
    if lin is None:
        s0 = free_state(net, x, eps=eps, tol=tol) if state is None else state
        lin = en.Linearization(net, s0, x)
    n = net.n_state
    if n <= DENSE_LIMIT:
        return max(float(np.max(np.abs(np.linalg.eigvals(np.eye(n) + eps * lin.dense(i)))))
                   for i in range(lin.batch))
    op = _operator(net, lin, lambda v: {p: v[p] + eps * w for p, w in lin.jvp(v).items()})
    val = spla.eigs(op, k=1, which="LM", return_eigenvectors=False, maxiter=5000, tol=1e-8)
    return float(np.abs(val[0]))


def _max_real_eig(net, lin):
    if net.n_state > DENSE_LIMIT:
        return None
    return max(float(np.max(np.linalg.eigvals(lin.dense(i)).real)) for i in range(lin.batch))


# -- implicit -----------------------------------------------------------------------------
def solve_adjoint(net, lin, c, solver="auto", tol=1e-12, maxiter=None, eps=0.1, steps=None):
    """Solve ``J^T w = c`` for every example; returns ``(w, SolverStats)``."""
    if solver not in SOLVERS:
        raise ArgumentError("solver must be one of %s, got %r" % (SOLVERS, solver))
    if solver == "auto":
        solver = "dense" if net.n_state <= DENSE_LIMIT else (
            "cg" if net.dynamics == "energy" else "gmres")
    if solver == "cg" and net.dynamics != "energy":
        raise ArgumentError("solver='cg' needs a symmetric Jacobian (energy dynamics); use 'gmres' "
                         "for vector-field networks")
    stats = SolverStats(method="implicit", solver=solver)
    if solver == "dense":
        # one LU solve per example, kept in float64 (a float32 copy of w alone would leave a
        # residual of 1e-7); the statistics are measured: the relative residual
        # |J^T w - c| / |c| (max over the batch) and the number of solves
        # (one BLAS thread up to ~640 units: measured on 784-500-10, batch 50, on a busy
        # 2-core machine, 0.2 s instead of 2-7 s with two threads)
        cf = en.flatten(net, c)
        w = np.empty(cf.shape, dtype=np.float64)
        worst = 0.0
        with blas_threads(1 if net.n_state ** 3 <= 64 * SMALL_GEMM else None):
            for i in range(lin.batch):
                Jt = lin.dense(i).T
                w[i] = scipy.linalg.solve(Jt, cf[i])
                scale = np.linalg.norm(cf[i])
                worst = max(worst, float(np.linalg.norm(Jt @ w[i] - cf[i]) / (scale or 1.0)))
        stats.iterations = lin.batch
        stats.residual = worst
        stats.converged = bool(worst <= tol)
        return en.unflatten(net, w), stats
    if solver == "neumann":
        # J^{-T} = -eps sum_k (I + eps J^T)^k : the discrete side network summed
        K = steps if steps is not None else (maxiter or 100_000)
        term, acc, c0 = dict(c), {p: np.zeros_like(v) for p, v in c.items()}, _norm(c) or 1.0
        for k in range(K):
            _axpy(-eps, term, acc)
            jt = lin.vjp(term)
            term = {p: term[p] + eps * jt[p] for p in term}
            stats.iterations = k + 1
            stats.residual = _norm(term) / c0
            if steps is None and stats.residual < tol:
                break
        stats.converged = steps is not None or stats.residual < tol
        if not stats.converged:
            raise RBPConvergenceError("Neumann series did not converge in %d terms (residual %.3g)"
                                      % (K, stats.residual))
        return acc, stats
    b = en.flatten(net, c).ravel()
    if solver == "cg":   # -J^T = H is symmetric positive definite
        op = _operator(net, lin, lambda v: _scale(lin.vjp(v), -1.0))
        rhs = -b
    else:
        op = _operator(net, lin, lin.vjp)
        rhs = b
    trace = []

    def cb(arg):
        trace.append(float(np.linalg.norm(arg)) if solver == "gmres" else
                     float(np.linalg.norm(op.matvec(arg) - rhs) / (np.linalg.norm(rhs) or 1.0)))

    maxiter = maxiter or 10 * b.size
    if solver == "cg":
        w, info = spla.cg(op, rhs, rtol=tol, atol=0.0, maxiter=maxiter, callback=cb)
    else:
        w, info = spla.gmres(op, rhs, rtol=tol, atol=0.0, maxiter=maxiter, restart=min(200, b.size),
                             callback=cb, callback_type="pr_norm")
    stats.iterations = len(trace)
    stats.residual_trace = trace
    stats.residual = float(np.linalg.norm(op.matvec(w) - rhs) / (np.linalg.norm(rhs) or 1.0))
    stats.converged = info == 0
    if info != 0:
        raise RBPConvergenceError("%s did not converge (info=%d, relative residual %.3g); the "
                                  "Jacobian may be singular or, for CG, not negative definite"
                                  % (solver, info, stats.residual))
    return en.unflatten(net, w.reshape(lin.batch, -1)), stats


# -- side networks ------------------------------------------------------------------------
def _discrete(lin, c, direct, eps, steps, tol=None, max_steps=1_000_000):
    """Iterate the discrete side network from ``Thetabar_0 = direct``; returns (S list, Theta
    list, final Theta, iterations, residual)."""
    S, Theta = [], []
    theta = {k: np.array(v, dtype=np.float64) for k, v in direct.items()}
    sbar, c0 = dict(c), max(float(np.max(np.abs(v))) for v in c.values()) or 1.0
    limit = steps if steps is not None else max_steps
    k = 0
    while k < limit:
        if steps is not None:
            S.append(sbar)
            Theta.append({kk: v.copy() for kk, v in theta.items()})
        _axpy(eps, lin.param_vjp(sbar), theta)
        jt = lin.vjp(sbar)
        sbar = {p: sbar[p] + eps * jt[p] for p in sbar}
        k += 1
        res = max(float(np.max(np.abs(v))) for v in sbar.values()) / c0
        if not np.isfinite(res):
            raise RBPConvergenceError("the Almeida-Pineda side network diverged at step %d" % k)
        if steps is None and res < tol:
            break
    return S, Theta, theta, k, res


def side_network(net, x, y, eps, steps, state=None, continuous=False, tol=1e-12):
    """The side-network time series ``Sbar_k``, ``Thetabar_k`` for ``k`` from 0 to ``steps - 1``.

    Discrete time uses the Euler map with step ``eps``; ``continuous=True`` samples the
    continuous-time side network at ``t = eps k`` (matrix exponential).
    ``state``: the converged free state ``s0`` (relaxed here when omitted).
    """
    check_eps(eps)
    steps = int(steps)
    if steps < 1:
        raise ArgumentError("steps must be a positive integer, got %r" % (steps,))
    s0, lin, c, direct = _setup(net, x, y, eps, tol, state)
    stats = SolverStats(method="continuous" if continuous else "almeida_pineda", iterations=steps)
    if net.n_state <= DENSE_LIMIT:
        stats.spectral_radius = spectral_radius(net, x, eps, lin=lin)
    if not continuous:
        S, Theta, _, _, _ = _discrete(lin, c, direct, eps, steps)
    else:
        S, Theta = _continuous_series(net, lin, c, eps, steps)
        Theta = [{k: v + direct[k] for k, v in th.items()} for th in Theta]
    S = {p: np.stack([s[p] for s in S]) for p in net.state_pops}
    return SideNetwork(S=S, Theta=Theta, times=eps * np.arange(steps), s0=s0, stats=stats)


def _continuous_series(net, lin, c, dt, steps):
    """``Sbar(t_k)`` and ``Thetabar(t_k)`` at ``t_k = k dt`` by the exact one-step propagator
    ``expm(A dt)`` of ``d/dt (Sbar, Q) = (J^T Sbar, Sbar)`` (Q the integral of Sbar)."""
    n, B = net.n_state, lin.batch
    cf = en.flatten(net, c)
    z = np.zeros((B, 2 * n))
    z[:, :n] = cf
    props = []
    for i in range(B):
        A = np.zeros((2 * n, 2 * n))
        A[:n, :n] = lin.dense(i).T
        A[n:, :n] = np.eye(n)
        props.append(scipy.linalg.expm(A * dt))
    S, Theta = [], []
    for _ in range(steps):
        S.append(en.unflatten(net, z[:, :n].copy()))
        Theta.append(lin.param_vjp(en.unflatten(net, z[:, n:].copy())))
        z = np.stack([props[i] @ z[i] for i in range(B)])
    return S, Theta


def _continuous_gradient(net, lin, c, T=None, tol=1e-12):
    """``Thetabar(T)`` (T=None: until ``|Sbar| < tol |Sbar_0|``) by adaptive integration."""
    from scipy.integrate import solve_ivp   # here: importing scipy.integrate costs ~0.5 s
    n, B = net.n_state, lin.batch
    shape = (B, n)

    def rhs(t, z):
        sb = en.unflatten(net, z[:B * n].reshape(shape))
        return np.concatenate([en.flatten(net, lin.vjp(sb)).ravel(), z[:B * n]])

    z = np.concatenate([en.flatten(net, c).ravel(), np.zeros(B * n)])
    s0 = np.max(np.abs(z[:B * n])) or 1.0
    t, chunk, evals = 0.0, 10.0, 0
    while True:
        t1 = T if T is not None else t + chunk
        sol = solve_ivp(rhs, (t, t1), z, method="DOP853", rtol=1e-11, atol=1e-14 * s0)
        if not sol.success:
            raise RBPConvergenceError("continuous side network integration failed: %s" % sol.message)
        z, t, evals = sol.y[:, -1], t1, evals + sol.nfev
        res = np.max(np.abs(z[:B * n])) / s0
        if T is not None or res < tol:
            break
        if t > 1e5 or not np.isfinite(res):
            raise RBPConvergenceError("continuous side network did not decay by t=%g (|Sbar|/|Sbar_0|"
                                      " = %.3g): J is not stable at s0" % (t, res))
        chunk *= 2
    q = en.unflatten(net, z[B * n:].reshape(shape))
    return lin.param_vjp(q), SolverStats(method="continuous", solver="DOP853", iterations=evals,
                                         residual=float(res))


# -- BPTT ---------------------------------------------------------------------------------
def bptt(net, x, y, eps, steps, state=None, clip=False):
    """Backpropagation through ``steps`` Euler steps of the free phase from ``state`` (zeros
    by default), for the cost at the last state. ``Theta[j]`` is the gradient carried back
    through the last ``j`` steps only (truncated BPTT)."""
    inputs = net.inputs_dict(x)
    dyn = Dynamics(net, inputs, clip=clip)
    s = dyn.initial_state(state)
    traj = dyn.run(s, eps, beta=0.0, steps=int(steps), record=True).trajectory
    last = {p: traj[p][-1] for p in net.state_pops}
    a = en.dC_ds(net, last, y)
    g = {k: np.array(v, dtype=np.float64) for k, v in en.dC_dtheta(net, last, y).items()}
    Theta = [{k: v.copy() for k, v in g.items()}]
    for k in range(int(steps) - 1, -1, -1):
        lin = en.Linearization(net, {p: traj[p][k] for p in net.state_pops}, inputs, clip=clip)
        _axpy(eps, lin.param_vjp(a), g)
        jt = lin.vjp(a)
        a = {p: a[p] + eps * jt[p] for p in a}
        Theta.append({kk: v.copy() for kk, v in g.items()})
    return BPTTResult(gradient=g, Theta=Theta, states=traj)


# -- the one entry point ------------------------------------------------------------------
def gradient(net, x, y, method="implicit", eps=0.1, steps=None, solver="auto", tol=1e-12,
             state=None, return_stats=False, clip=False):
    """The RBP gradient of the batch-mean loss, a dict with the keys of ``net.params``.

    Parameters
    ----------
    method : "implicit" | "almeida_pineda" | "continuous" | "bptt"
    eps : float
        Euler step of the free phase (and of the discrete side network).
    steps : int or None
        Side-network steps (``almeida_pineda``), time ``eps*steps`` (``continuous``), Neumann
        terms (``solver="neumann"``) or unrolled steps (``bptt``); None: until converged.
    solver : "auto" | "dense" | "cg" | "gmres" | "neumann"  (implicit method)
    state : dict, optional
        The converged free state ``s0`` (relaxed here when omitted).
    return_stats : bool
        Also return :class:`SolverStats` (with the spectral radius of ``dG/ds``).
    clip : bool
        The dynamics project states to [0, 1] (the 2017 recipe): relax and linearise them so
        (hard sigmoid: units pinned at 0 or 1 do not respond).
    """
    if method not in METHODS:
        raise ArgumentError("method must be one of %s, got %r" % (METHODS, method))
    if solver not in SOLVERS:
        raise ArgumentError("solver must be one of %s, got %r" % (SOLVERS, solver))
    check_eps(eps)
    if steps is not None and (int(steps) != steps or steps < 0):
        raise ArgumentError("steps must be a non-negative integer or None, got %r" % (steps,))
    if method == "bptt":
        inputs = net.inputs_dict(x)
        if steps is None:
            steps = relax(net, inputs, eps=eps, tol=tol, max_steps=1_000_000, clip=clip).steps
        res = bptt(net, inputs, y, eps, steps, state=state, clip=clip)
        stats = SolverStats(method="bptt", iterations=int(steps))
        grad = res.gradient
    else:
        s0, lin, c, direct = _setup(net, x, y, eps, tol, state, clip=clip)
        if method == "implicit":
            w, stats = solve_adjoint(net, lin, c, solver=solver, tol=tol, eps=eps, steps=steps)
            grad = {k: direct[k] - v for k, v in lin.param_vjp(w).items()}
        elif method == "almeida_pineda":
            rad = None
            if steps is None:
                rad = spectral_radius(net, x, eps, lin=lin)
                if rad >= 1.0:
                    raise RBPConvergenceError(
                        "Almeida-Pineda cannot converge: the spectral radius of dG/ds = I + eps J "
                        "is %.6g >= 1 at eps=%g; use a smaller eps or method='implicit'" % (rad, eps))
            _, _, grad, k, res = _discrete(lin, c, direct, eps,
                                           None if steps is None else int(steps), tol=tol)
            stats = SolverStats(method=method, iterations=k, residual=res, spectral_radius=rad,
                                converged=steps is not None or res < tol)
        else:
            top = _max_real_eig(net, lin)
            if steps is None and top is not None and top >= 0:
                raise RBPConvergenceError(
                    "continuous-time RBP cannot converge: J = dF/ds has an eigenvalue with real "
                    "part %.6g >= 0 at the free state" % top)
            grad, stats = _continuous_gradient(net, lin, c, None if steps is None else eps * steps,
                                               tol=tol)
            grad = {k: v + direct[k] for k, v in grad.items()}
    if return_stats:
        if stats.spectral_radius is None:
            stats.spectral_radius = spectral_radius(net, x, eps, state=state, tol=tol) \
                if method == "bptt" else spectral_radius(net, x, eps, lin=lin)
        return grad, stats
    return grad


def implicit_vjp(net, x, v, state=None, eps=0.1, tol=1e-12, solver="auto"):
    """``(ds0/dtheta)^T v = -(dF/dtheta)^T J^{-T} v``: how a state-space vector at the fixed
    point maps to parameter space (used for the side-network invariant)."""
    inputs = net.inputs_dict(x)
    s0 = free_state(net, inputs, eps=eps, tol=tol) if state is None else state
    lin = en.Linearization(net, s0, inputs)
    w, _ = solve_adjoint(net, lin, v, solver=solver, tol=tol)
    return _scale(lin.param_vjp(w), -1.0)


__all__ = ["gradient", "side_network", "bptt", "spectral_radius", "solve_adjoint", "implicit_vjp",
           "SolverStats", "SideNetwork", "BPTTResult", "RBPConvergenceError", "RelaxationError"]
