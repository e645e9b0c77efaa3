"""The EP estimate of a plan's observed states on PyTorch tensors (docs/maths.md 4):
``sum_i c_i d(E + beta_i C)/dtheta(s_i)`` (energy dynamics; the cost's own term is a softmax
readout's) or ``-(dF/dtheta)^T sum_i c_i (s_i - s0)`` at the free state (vector field), batch
means, the weights ``c`` the plan's (:attr:`neurosim.plan.Plan.weights`: the one place the EP
scale is computed). Complex observations (holomorphic EP) give the real part.

Energy mode: ``dE/db_p = -rho_p`` and a dense ``dE/dW = -rho_src^T rho_tgt`` are written out
(an input projection's ``x`` is the same in every observation, so its share is the single
product ``-x^T sum_i c_i rho_tgt,i``); a convolution's kernel and the readout's parameters are
differentiated by autograd (a max pooling at each observation's own switches)."""
from __future__ import annotations

import torch


def _weights(plan):
    return [complex(c) if complex(c).imag else float(complex(c).real) for c in plan.weights]


def plan_contrast(tnet, inputs, targets, states, plan, s0=None, params=None):
    """The estimate as a dict of tensors keyed like ``net.params`` (see the module docstring);
    ``states``: one state dict per nudge of ``plan``; ``s0``: the free state (vector field);
    ``params``: the parameters on the device as the phases read them (read again if None)."""
    net = tnet.net
    params = tnet.params() if params is None else params
    batch = next(iter(inputs.values())).shape[0]
    c = _weights(plan)
    if net.dynamics != "energy":
        learned = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        with torch.enable_grad():
            w = {p: sum(ci * s[p] for ci, s in zip(c, states)) for p in net.state_pops}
            total = -tnet.force_params(learned, inputs, s0, w)
            g = _grad(total, learned)
    else:
        g = _energy_contrast(tnet, inputs, targets, states, plan, c, params)
    out = {}
    diagonal = tnet.self_coupled()
    for k in net.params:
        v = g.get(k)
        v = torch.zeros_like(params[k]) if v is None else v / batch
        if k in diagonal:
            v.fill_diagonal_(0.0)
        out[k] = v.detach()
    return out


def _grad(total, params):
    """``d Re(total) / d params`` for the parameters ``total`` depends on."""
    if total.is_complex():
        total = total.real
    keys = [k for k, v in params.items() if v.requires_grad]
    grads = torch.autograd.grad(total, [params[k] for k in keys], allow_unused=True)
    return {k: g for k, g in zip(keys, grads) if g is not None}


def _energy_contrast(tnet, inputs, targets, states, plan, c, params):
    """Batch sums of ``sum_i c_i d(E + beta_i C)/dtheta(s_i)`` (module docstring)."""
    net = tnet.net
    rates = [{p: tnet.rho(s[p]) for p in net.state_pops} for s in states]
    mixed = {p: sum(ci * r[p] for ci, r in zip(c, rates)) for p in net.state_pops}
    real = (lambda v: v.real) if any(isinstance(ci, complex) for ci in c) else (lambda v: v)
    g = {"b:%s" % p: -real(mixed[p].sum(dim=0)) for p in net.state_pops}
    convs = {t.key for t in net.terms if t.conv is not None}
    learned = {k: (v.detach().requires_grad_(True) if k in convs or
                   any(k == t.key for t in net.readout_terms) or k.startswith("b:") and
                   k[2:] in net.outputs else v) for k, v in params.items()}
    total = None
    with torch.enable_grad():
        kernels = tnet.kernels(learned)
        for t in net.terms:
            if t.transpose:
                continue
            scale = 0.5 if t.lateral else 1.0
            if t.source in inputs:
                x = inputs[t.source]
                if t.conv is None:
                    g[t.key] = -real(x.T @ mixed[t.target].to(x.dtype) if not
                                     mixed[t.target].is_complex() else
                                     x.to(mixed[t.target].dtype).T @ mixed[t.target])
                else:
                    e = -(tnet.product(t, kernels[t.key], x, {}) * mixed[t.target]).sum()
                    total = e if total is None else total + e
                continue
            if t.conv is None:
                g[t.key] = -scale * real(sum(ci * (r[t.source].T @ r[t.target])
                                             for ci, r in zip(c, rates)))
                continue
            for ci, r in zip(c, rates):
                e = -ci * (tnet.product(t, kernels[t.key], r[t.source], {}) * r[t.target]).sum()
                total = e if total is None else total + e
        if net.readout == "softmax":
            for ci, b, s in zip(c, plan.nudges, states):
                if b != 0:
                    e = ci * b * tnet.readout_cost(learned, s, targets)
                    total = e if total is None else total + e
        if total is not None:
            g.update(_grad(total, learned))
    return g


__all__ = ["plan_contrast"]
