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
    c = [ci / batch for ci in _weights(plan)]       # batch means: the 1/B folded in once
    if net.dynamics != "energy":
        learned = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        with torch.enable_grad():
            w = {p: sum(ci * s[p] for ci, s in zip(c, states)) for p in net.state_pops}
            total = -tnet.force_params(learned, inputs, s0, w)
            g = _grad(total, learned)
    else:
        g = _energy_contrast(tnet, inputs, targets, states, plan, c, params)
    out = {}
    for k in net.params:
        v = g.get(k)
        v = torch.zeros_like(params[k]) if v is None else v.detach()
        if k in tnet.diagonal_free:
            v.fill_diagonal_(0.0)
        out[k] = v
    return out


def _grad(total, params):
    """``d Re(total) / d params`` for the parameters ``total`` depends on."""
    if total.is_complex():
        total = total.real
    keys = [k for k, v in params.items() if v.requires_grad]
    grads = torch.autograd.grad(total, [params[k] for k in keys], allow_unused=True)
    return {k: g for k, g in zip(keys, grads) if g is not None}


def _energy_contrast(tnet, inputs, targets, states, plan, c, params):
    """``sum_i c_i d(E + beta_i C)/dtheta(s_i)`` (module docstring; ``c`` already divided by
    the batch size)."""
    net = tnet.net
    rates = [{p: tnet.rho(s[p]) for p in net.state_pops} for s in states]
    mixed = {p: sum(ci * r[p] for ci, r in zip(c, rates)) for p in net.state_pops}
    complex_plan = any(isinstance(ci, complex) for ci in c)
    real = (lambda v: v.real) if complex_plan else (lambda v: v)
    g = {"b:%s" % p: -real(mixed[p].sum(dim=0)) for p in net.state_pops}
    conv_keys = [t.key for t in net.terms if t.conv is not None and not t.transpose]
    learned = dict(params)
    learned.update({k: params[k].detach().requires_grad_(True) for k in conv_keys})
    total = None
    with torch.enable_grad():
        kernels = tnet.kernels(learned) if conv_keys else learned
        for t in net.terms:
            if t.transpose:
                continue
            scale = 0.5 if t.lateral else 1.0
            if t.source in inputs:
                x, v = inputs[t.source], mixed[t.target]
                if t.conv is None:
                    g[t.key] = -real((x.to(v.dtype) if complex_plan else x).T @ v)
                else:
                    e = -(tnet.product(t, kernels[t.key], x, {}) * v).sum()
                    total = e if total is None else total + e
                continue
            if t.conv is None:
                g[t.key] = -scale * real(sum(ci * (r[t.source].T @ r[t.target])
                                             for ci, r in zip(c, rates)))
                continue
            for ci, r in zip(c, rates):
                e = -ci * (tnet.product(t, kernels[t.key], r[t.source], {}) * r[t.target]).sum()
                total = e if total is None else total + e
        if total is not None:
            g.update(_grad(total, learned))
    if net.readout == "softmax":     # sum_i c_i beta_i dC/dtheta(s_i): r^T dC/dz and dC/dz
        for ci, b, r in zip(c, plan.nudges, rates):
            if b == 0:
                continue
            for o, e in tnet.logit_error(params, r, targets).items():
                w = ci * b
                key = "b:%s" % o
                g[key] = g.get(key, 0.0) + real(w * e.sum(dim=0))
                for t in net.readout_terms:
                    if t.target == o:
                        d = real(w * (r[t.source].T @ e))
                        g[t.key] = g[t.key] + d if t.key in g else d
    return g


__all__ = ["plan_contrast"]
