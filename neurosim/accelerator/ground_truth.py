"""The ground truth on the accelerator (DESIGN.md, "exact ground truth where the engine
settled"): the free fixed point polished from the engine's own state by Newton steps, and RBP's
implicit gradient there, both with conjugate gradients on Jacobian-vector products (autograd:
the energy's Jacobian is symmetric, so ``J v`` is one backward pass through the force), never a
dense Jacobian, in float64 on the engine's device.

With the clip (hard sigmoid), the units pinned at a bound with their force pushing outward are
held and the Newton step solves for the others (an active set: repeated until it stops
changing); RBP is then solved on the units inside (0, 1) (docs/maths.md 10). The energy's
Jacobian is symmetric, so ``-J`` is positive definite at a stable minimum and CG applies; a
direction of non-positive curvature (a saddle), a step that does not converge, or a network
this path does not cover (vector-field dynamics) is handed to the reference implementation
(:func:`neurosim.fixed_point.free_fixed_point`, :func:`neurosim.rbp.gradient`), which verifies
or raises: never a silent fallback to an unverified point.
"""
from __future__ import annotations

import time

import torch

from ..energy import unflatten
from ..fixed_point import FixedPoint
from .dynamics import TensorDynamics
from .network import TensorNetwork

NEWTON_ITERATIONS = 20   # active-set Newton steps at most
CG_ITERATIONS = 2000     # conjugate-gradient iterations per solve at most


class NotCovered(Exception):
    """This path cannot verify the point (a saddle, no convergence): use the reference."""


def _flat(net, d):
    return torch.cat([d[p] for p in net.state_pops], dim=1)


def _unflat(net, v):
    return unflatten(net, v)      # slices: views of the tensor


def cg(apply, b, tol, maxiter=CG_ITERATIONS):
    """Conjugate gradients for ``A x = b`` (``A`` symmetric positive definite, given by
    ``apply``) to the relative residual ``tol``; raises :class:`NotCovered` on a direction of
    non-positive curvature or without convergence."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = float((r * r).sum())
    target = (tol * float(b.norm())) ** 2
    if rr <= target:
        return x
    for _ in range(maxiter):
        ap = apply(p)
        curv = float((p * ap).sum())
        if not curv > 0:
            raise NotCovered("non-positive curvature")
        alpha = rr / curv
        x += alpha * p
        r -= alpha * ap
        new = float((r * r).sum())
        if new <= target:
            return x
        p = r + (new / rr) * p
        rr = new
    raise NotCovered("CG did not converge")


class Problem:
    """The free dynamics of a float64 copy of the network on one batch, with the mask of the
    units that move (clip: inside the active set)."""

    def __init__(self, net, device, x, y, clip, eps):
        net64 = net if net.dtype.name == "float64" else net.copy(dtype="float64")
        self.net, self.eps, self.clip = net64, float(eps), clip
        self.tnet = TensorNetwork(net64, device)
        inputs = self.tnet.tensors(net64.inputs_dict(x))
        batch = next(iter(inputs.values())).shape[0]
        self.targets = self.tnet.tensors(net64.targets_dict(y, batch))
        self.dyn = TensorDynamics(self.tnet, inputs, self.targets, clip=clip)

    def force(self, s):
        return _flat(self.net, self.dyn.force(_unflat(self.net, s)))

    def jacobian(self, s):
        """``v -> J v`` at ``s`` (the unprojected force's Jacobian): ``J`` is symmetric for
        energy dynamics, so ``J v = J^T v``, one backward pass through the force recorded once
        at ``s``."""
        at = s.detach().requires_grad_(True)
        with torch.enable_grad():
            f = self.force(at)

        def product(v):
            with torch.enable_grad():
                return torch.autograd.grad(f, at, v, retain_graph=True)[0]
        return product

    def free(self, s, f):
        """The units that move: all, or (clip) those not held at a bound by an outward push."""
        if not self.clip:
            return torch.ones_like(s, dtype=torch.bool)
        return ~(((s <= 0) & (f <= 0)) | ((s >= 1) & (f >= 0)))

    def step_residual(self, s):
        """``max |P(s + eps F(s)) - s| / eps`` (the reference's verified residual)."""
        t = s + self.eps * self.force(s)
        if self.clip:
            t = t.clamp(0.0, 1.0)
        return float((t - s).abs().max()) / self.eps


def fixed_point(problem, s, tol):
    """Newton steps with CG from ``s`` to a projected fixed point verified to ``tol``.
    Returns ``(state, residual, iterations)``; raises :class:`NotCovered`."""
    for k in range(NEWTON_ITERATIONS + 1):
        res = problem.step_residual(s)
        if res <= tol:
            return s, res, k
        if k == NEWTON_ITERATIONS:
            break
        f = problem.force(s)
        m = problem.free(s, f).to(s.dtype)
        J = problem.jacobian(s)
        # -J on the free units (the held ones are the identity): SPD at a stable minimum
        delta = cg(lambda v: -J(v * m) * m + v * (1 - m), f * m, 1e-13)
        s = s + delta * m
        if problem.clip:
            s = s.clamp(0.0, 1.0)
    raise NotCovered("Newton steps did not reach tol")


def ground_truth(engine, x, y, tol, state):
    """``(RBP gradient as numpy arrays, FixedPoint)`` at the fixed point polished from the
    engine's state (module docstring); raises :class:`NotCovered` where it cannot."""
    net, s = engine.net, engine.settings
    if net.dynamics != "energy":
        raise NotCovered("vector-field dynamics")
    t0 = time.perf_counter()
    problem = Problem(net, engine.device, x, y, s.clip, s.eps)
    pnet, tnet = problem.net, problem.tnet
    start = problem.dyn.initial_state(state)
    with torch.no_grad():
        sv, residual, newton = fixed_point(problem, _flat(pnet, start), tol)
        f = problem.force(sv)
        m = (problem.free(sv, f) & ((sv > 0) & (sv < 1)) if problem.clip
             else problem.free(sv, f)).to(sv.dtype)
        star = _unflat(pnet, sv)
    params = tnet.params(requires_grad=True)
    with torch.enable_grad():      # dC/ds and the readout's dC/dtheta at the fixed point
        st = {p: v.detach().clone().requires_grad_(True) for p, v in star.items()}
        cost = tnet.readout_cost(params, st, problem.targets)
        grads = torch.autograd.grad(cost, [st[p] for p in pnet.state_pops] + list(params.values()),
                                    allow_unused=True)
    dc_ds = _flat(pnet, {p: g if g is not None else torch.zeros_like(star[p])
                         for p, g in zip(pnet.state_pops, grads[:len(pnet.state_pops)])})
    direct = {k: g for k, g in zip(params, grads[len(pnet.state_pops):]) if g is not None}
    with torch.no_grad():          # J^T w = dC/ds on the moving units (J symmetric)
        J = problem.jacobian(sv)
        w = -cg(lambda v: -J(v * m) * m + v * (1 - m), dc_ds * m, 1e-12) * m
    batch = sv.shape[0]
    params = tnet.params(requires_grad=True)
    with torch.enable_grad():      # (dF/dtheta)^T w
        total = tnet.force_params(params, problem.dyn.inputs, star, _unflat(pnet, w))
        vjp = torch.autograd.grad(total, list(params.values()), allow_unused=True)
    out = {}
    lateral = {t.key for t in pnet.terms if t.lateral}
    for (k, p), g in zip(params.items(), vjp):
        v = -(g if g is not None else torch.zeros_like(p))
        if k in direct:
            v = v + direct[k]
        if k in lateral:           # a tied symmetric matrix: the symmetric part
            v = 0.5 * (v + v.T)
        if k in tnet.diagonal_free:
            v.fill_diagonal_(0.0)
        out[k] = (v / batch).detach().cpu().numpy().astype(net.dtype)
    st_np = {p: v.cpu().numpy().astype(net.dtype) for p, v in star.items()}
    pinned = ({p: float(((v <= 0.0) | (v >= 1.0)).mean()) for p, v in st_np.items()}
              if s.clip else {})
    fp = FixedPoint(state=st_np, residual=residual, steps=0, newton_iterations=newton,
                    pinned=pinned, seconds=time.perf_counter() - t0, state_residual=residual)
    return out, fp


__all__ = ["ground_truth", "cg", "NotCovered"]
