"""The optimizer's update on the device: the rule of :mod:`neurosim.training.optimizer` (SGD
with momentum, Adam with decoupled weight decay; per-key learning rates, the decay on the
weight matrices only) applied to tensors, Adam by torch's own AdamW kernel (fused on the CPU
and on CUDA: one pass over each parameter instead of numpy's ten).

The optimizer object stays the one the trainer holds and checkpoints: its state (velocity,
moments, update counts) is read and written here, as views of its numpy arrays on the CPU
(so a checkpoint holds exactly what the device computed) and as device tensors on a GPU
(written back to numpy when the optimizer's state is saved)."""
from __future__ import annotations

import numpy as np
import torch
from torch.optim.adamw import adamw

from ..training.optimizer import Adam


def _on(t, v):
    """The optimizer's state array ``v`` as a tensor on ``t``'s device (a view on the CPU)."""
    if isinstance(v, torch.Tensor):
        return v
    v = np.ascontiguousarray(v)
    return torch.from_numpy(v) if t.device.type == "cpu" else torch.as_tensor(v, device=t.device)


def apply(optimizer, params, grads):
    """``optimizer``'s update of the tensors ``params`` by the gradient tensors ``grads`` (keys
    with a non-zero learning rate), advancing its state as its own ``apply`` would."""
    if isinstance(optimizer, Adam):
        return _adam(optimizer, params, grads)
    for k, g in grads.items():
        lr = optimizer.lrs[k]
        if not lr:
            continue
        d = g
        if optimizer.momentum:
            v = optimizer.velocity.get(k)
            v = torch.zeros_like(g) if v is None else _on(g, v)
            v.mul_(optimizer.momentum).add_(g)
            optimizer.velocity[k] = v if g.device.type != "cpu" else v.numpy()
            d = v
        p = params[k]
        if optimizer.weight_decay and k.startswith("W:"):
            p.mul_(1.0 - lr * optimizer.weight_decay)
        p.add_(d, alpha=-lr)


def _adam(opt, params, grads):
    b1, b2 = opt.betas
    for k, g in grads.items():
        lr = opt.lrs[k]
        if not lr:
            continue
        if k not in opt.moments:
            opt.moments[k] = (torch.zeros_like(g), torch.zeros_like(g))
            opt.counts[k] = 0
        m, v = (_on(g, a) for a in opt.moments[k])
        step = torch.tensor(float(opt.counts[k]), dtype=torch.float32)
        if g.device.type != "cpu":
            step = step.to(g.device)
        adamw([params[k]], [g], [m], [v], [], [step], foreach=False, fused=True,
              amsgrad=False, beta1=b1, beta2=b2, lr=lr,
              weight_decay=opt.weight_decay if opt.decays(k) else 0.0, eps=opt.eps,
              maximize=False, capturable=False, differentiable=False, grad_scale=None,
              found_inf=None, has_complex=False)
        opt.counts[k] += 1
        opt.moments[k] = (m, v) if g.device.type != "cpu" else (m.numpy(), v.numpy())


__all__ = ["apply"]
