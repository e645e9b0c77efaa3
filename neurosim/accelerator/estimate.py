"""The EP estimate of a plan's observed states on PyTorch tensors, by automatic
differentiation of the energy's parameter terms (docs/maths.md 4):
``sum_i c_i d(E + beta_i C)/dtheta(s_i)`` (energy dynamics; the cost's own term is a softmax
readout's) or ``-(dF/dtheta)^T sum_i c_i (s_i - s0)`` at the free state (vector field), batch
means, the weights ``c`` the plan's (:attr:`neurosim.plan.Plan.weights`: the one place the EP
scale is computed). Complex observations (holomorphic EP) give the real part."""
from __future__ import annotations

import torch


def plan_contrast(tnet, inputs, targets, states, plan, s0=None):
    """The estimate as a dict of tensors keyed like ``net.params`` (see the module docstring);
    ``states``: one state dict per nudge of ``plan``; ``s0``: the free state (vector field)."""
    net = tnet.net
    params = tnet.params(requires_grad=True)
    batch = next(iter(inputs.values())).shape[0]
    weights = [complex(c) if isinstance(c, complex) or getattr(c, "imag", 0) else float(c)
               for c in plan.weights]
    with torch.enable_grad():
        if net.dynamics == "energy":
            total = 0.0
            for c, b, s in zip(weights, plan.nudges, states):
                phi = tnet.energy_params(params, inputs, s)
                if net.readout == "softmax" and b != 0:
                    phi = phi + b * tnet.readout_cost(params, s, targets)
                total = total + c * phi
        else:
            w = {p: sum(c * s[p] for c, s in zip(weights, states)) for p in net.state_pops}
            total = -tnet.force_params(params, inputs, s0, w)
        if torch.is_tensor(total) and total.is_complex():
            total = total.real
        keys = list(params)
        grads = torch.autograd.grad(total, [params[k] for k in keys], allow_unused=True)
    out = {}
    diagonal = tnet.self_coupled()
    for k, g in zip(keys, grads):
        g = torch.zeros_like(params[k]) if g is None else g / batch
        if k in diagonal:
            g.fill_diagonal_(0.0)
        out[k] = g.detach()
    return out


__all__ = ["plan_contrast"]
