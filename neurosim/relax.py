"""Relaxation as functions (docs/maths.md section 2): :func:`relax` (free and nudged phases to
a tolerance or for a fixed number of Euler steps), :func:`polish` (Newton steps to rounding
level), :func:`free_state` (the free fixed point) and :func:`loss` (the cost there).

The steps themselves are :class:`neurosim.dynamics.Dynamics` (a network bound to one batch);
its names that callers import from here (``Dynamics``, ``RelaxResult``, ``RelaxationError``,
``check_eps``, ``Settled``, ``SETTLE_EVERY``) and BLAS's (``blas_threads``, ``SMALL_GEMM``, from
:mod:`neurosim.blas`) stay importable from this module.
"""
from __future__ import annotations

import numpy as np

from . import energy as en
from .blas import SMALL_GEMM, blas_threads
from .dynamics import SETTLE_EVERY, Dynamics, RelaxationError, RelaxResult, Settled, check_eps
from .errors import ArgumentError

__all__ = ["relax", "polish", "free_state", "loss", "Dynamics", "RelaxResult", "RelaxationError",
           "Settled", "SETTLE_EVERY", "check_eps", "blas_threads", "SMALL_GEMM"]


def relax(net, x, y=None, beta=0.0, eps=0.1, tol=1e-10, max_steps=100_000, state=None, clip=False,
          record=False, raise_on_fail=True):
    """Relax ``net`` on inputs ``x`` (free phase, or nudged toward ``y`` with ``beta``).

    Parameters
    ----------
    tol : float or None
        Stop when ``max |F| < tol`` (with ``clip``, projected: :meth:`Dynamics.residual`);
        None runs exactly ``max_steps`` steps (fixed-step phase). A float32 state holds a
        fixed point only to about 1e-7: smaller tolerances need a float64 network.
    state : dict, optional
        Warm start (persistent particles); default zeros. It is copied, never modified.
    clip : bool
        Project states to [0, 1] after each step (the 2017 recipe).
    record : bool
        Keep the whole trajectory in ``result.trajectory``.
    raise_on_fail : bool
        Non-convergence raises :class:`RelaxationError`; with False it returns
        ``converged=False``. Divergence always raises.
    """
    if max_steps is None or int(max_steps) < 0:
        raise ArgumentError("max_steps must be a non-negative integer, got %r" % (max_steps,))
    if tol is not None and not tol > 0:
        raise ArgumentError("tol must be positive or None, got %r" % (tol,))
    dyn = Dynamics(net, x, y, clip=clip)
    if beta and dyn.targets is None:
        raise ArgumentError("relax with beta=%g needs targets y (shape (batch, n_out))" % beta)
    s = dyn.initial_state(state)
    return dyn.run(s, eps, beta=beta, steps=max_steps, tol=tol, record=record,
                   raise_on_fail=raise_on_fail)


def polish(net, x, state, iters=3, dense_limit=1500):
    """Refine a converged free state by Newton steps ``s <- s - J^{-1} F(s)`` so the residual
    falls to rounding level (the theorem's ``u_0 = -Sbar_0`` then holds to rounding).

    Only for smooth activations and networks small enough for dense Jacobians; a step that
    does not lower the residual is discarded. Returns a new state dict.
    """
    if net.activation != "logistic" or net.n_state > dense_limit:
        return state
    inputs = net.inputs_dict(x)
    s = {p: np.array(v, dtype=np.float64) for p, v in state.items()}

    def res(st):
        return max(float(np.max(np.abs(v))) for v in en.forces(net, st, inputs).values())

    r = res(s)
    for _ in range(iters):
        lin = en.Linearization(net, s, inputs)
        f = en.flatten(net, en.forces(net, s, inputs))
        flat = en.flatten(net, s)
        new = np.stack([flat[i] - np.linalg.solve(lin.dense(i), f[i]) for i in range(lin.batch)])
        cand = en.unflatten(net, new)
        rc = res(cand)
        if not rc < r:
            break
        s, r = {p: v.copy() for p, v in cand.items()}, rc
    return {p: v.astype(net.dtype) for p, v in s.items()}


def free_state(net, x, eps=0.1, tol=1e-12, max_steps=1_000_000, state=None, refine=True,
               clip=False):
    """The free fixed point ``s0`` to tolerance ``tol`` (used by RBP and EP), refined to
    rounding level by :func:`polish` when ``refine`` (smooth, small networks)."""
    s = relax(net, x, beta=0.0, eps=eps, tol=tol, max_steps=max_steps, state=state,
              clip=clip).state
    return polish(net, x, s) if refine else s


def loss(net, x, y, eps=0.1, tol=1e-10, max_steps=100_000, state=None):
    """Batch-mean cost ``C`` at the free fixed point."""
    s0 = relax(net, x, eps=eps, tol=tol, max_steps=max_steps, state=state).state
    return float(np.mean(en.cost(net, s0, y)))
