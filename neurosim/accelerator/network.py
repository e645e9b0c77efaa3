"""A :class:`~neurosim.network.Network` on PyTorch tensors: its parameters on a device, the
rates, drives, softmax readout and cost (docs/maths.md 1-2, 12).

The network itself stays the numpy object every engine shares; :class:`TensorNetwork` reads
its parameters at every call (on the CPU as views of the same memory, ``torch.from_numpy``, so
an update of ``net.params`` is seen at once; on a GPU copied over), so there is one set of
parameters and no second copy to keep in step.
"""
from __future__ import annotations

import numpy as np
import torch

from .products import ConvProduct, dense

DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def log_softmax(z):
    """``z - log sum exp(z)`` along the last axis; complex logits (holomorphic EP) shifted by
    the max of their real part, the analytic continuation of the real function."""
    if not z.is_complex():
        return torch.log_softmax(z, dim=-1)
    shifted = z - z.real.max(dim=-1, keepdim=True).values
    return shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))


def softmax(z):
    """``exp(z) / sum exp(z)`` along the last axis (complex logits too)."""
    return torch.softmax(z, dim=-1) if not z.is_complex() else torch.exp(log_softmax(z))


class TensorNetwork:
    """The maths of ``net`` on ``device`` (a :class:`torch.device`)."""

    def __init__(self, net, device):
        self.net, self.device = net, torch.device(device)
        self.dtype = DTYPES[np.dtype(net.dtype)]
        self.convs = {k: ConvProduct(c) for k, c in net.convs.items()}
        # the projections between state populations, each once (forward and, for energy
        # dynamics, its tied feedback); input projections go into the constant drive
        self.inputs = [t for t in net.terms if t.source in net.inputs]
        self.recurrent = [t for t in net.terms if t.source not in net.inputs]
        self.on_cpu = self.device.type == "cpu"
        #: matrices whose diagonal is not a parameter (lateral and self terms)
        self.diagonal_free = {t.key for t in net.terms if t.source == t.target}

    # -- parameters and data ----------------------------------------------------------------
    def params(self, requires_grad=False):
        """The parameters as tensors on the device (views of ``net.params`` on the CPU)."""
        out = {}
        for k, v in self.net.params.items():
            t = torch.from_numpy(v) if self.on_cpu else torch.as_tensor(v, device=self.device)
            if requires_grad:
                t = t.detach().clone().requires_grad_(True)
            out[k] = t
        return out

    def kernels(self, params):
        """``params`` with every convolution's kernel as its products take it (an average
        pooling folded in: :meth:`ConvProduct.kernel`); differentiable in ``params``."""
        out = dict(params)
        for k, c in self.convs.items():
            out[k] = c.kernel(params[k])
        return out

    def tensor(self, v, dtype=None):
        """A numpy array (or tensor) as a tensor of the network's dtype on the device."""
        if isinstance(v, torch.Tensor):
            return v.to(self.device, dtype or self.dtype)
        return torch.as_tensor(np.asarray(v), dtype=dtype or self.dtype, device=self.device)

    def tensors(self, d, dtype=None):
        return {p: self.tensor(v, dtype) for p, v in d.items()}

    @staticmethod
    def numpy(d):
        """A dict of tensors as numpy arrays (views on the CPU)."""
        return {p: v.detach().cpu().resolve_conj().numpy() for p, v in d.items()}

    # -- activations -----------------------------------------------------------------------
    def rho(self, s):
        """``clip(s, 0, 1)`` or the logistic ``1 / (1 + exp(-4 (s - 1/2)))`` (complex states
        too: holomorphic EP)."""
        if self.net.activation == "hard_sigmoid":
            return s.clamp(0.0, 1.0)
        if s.is_complex():
            return 1.0 / (1.0 + torch.exp(-4.0 * (s - 0.5)))
        return torch.sigmoid(4.0 * s - 2.0)

    def rho_prime(self, s, r):
        """``rho'(s)``: 1 on the closed interval [0, 1] for hard sigmoid, ``4 r (1 - r)``."""
        if self.net.activation == "hard_sigmoid":
            return ((s >= 0.0) & (s <= 1.0)).to(s.dtype)
        return 4.0 * r * (1.0 - r)

    # -- products ------------------------------------------------------------------------
    def product(self, t, w, r, switches):
        """What term ``t`` adds to its target's drive from the source rates ``r`` (``w``: its
        matrix, or its convolution's :meth:`kernels` entry);
        ``switches`` (a dict per projection key) receives a max-pooled forward product's
        switches and gives them to its feedback."""
        if r.is_complex() and not w.is_complex():   # holomorphic EP: complex states
            w = w.to(r.dtype)
        if t.conv is None:
            return dense(r, w, t.transpose)
        conv = self.convs[t.key]
        if t.transpose:
            return conv.adjoint(w, r, switches.get(t.key))
        out, idx = conv.forward(w, r)
        if idx is not None:
            switches[t.key] = idx
        return out

    def constant(self, params, inputs, batch):
        """``b_p + sum_inputs x M`` per state population, ``(batch, n_p)``."""
        net = self.net
        h = {p: params["b:%s" % p].expand(batch, net.sizes[p]).clone() for p in net.state_pops}
        for t in self.inputs:
            h[t.target] += self.product(t, params[t.key], inputs[t.source], {})
        return h

    def ordered(self, terms):
        """``terms`` with every max-pooled forward product before its feedback."""
        return sorted(terms, key=lambda t: t.transpose)

    def drives(self, params, const, r):
        """``h_p = const_p + sum_terms product(r)`` for every state population."""
        h = {p: c.clone() for p, c in const.items()}
        if r[self.net.state_pops[0]].is_complex():
            h = {p: c.to(r[p].dtype) for p, c in h.items()}
        switches = {}
        for t in self.ordered(self.recurrent):
            h[t.target] = h[t.target] + self.product(t, params[t.key], r[t.source], switches)
        return h

    # -- the softmax readout ---------------------------------------------------------------
    def logits(self, params, r):
        net = self.net
        z = {}
        for t in net.readout_terms:
            v = r[t.source] @ params[t.key].to(r[t.source].dtype)
            z[t.target] = z[t.target] + v if t.target in z else v + params["b:%s" % t.target]
        return z

    def logit_error(self, params, r, targets):
        """``dC/dz`` of the cross-entropy per output: ``softmax(z) sum(y) - y``."""
        return {o: softmax(z) * targets[o].sum(dim=1, keepdim=True) - targets[o]
                for o, z in self.logits(params, r).items()}

    def readout_feedback(self, params, r, targets):
        """``sum_o (dC/dz_o) W^T`` on each population the readout reads (before ``rho'``)."""
        out = {}
        for o, e in self.logit_error(params, r, targets).items():
            for t in self.net.readout_terms:
                if t.target == o:
                    v = e @ params[t.key].T.to(e.dtype)
                    out[t.source] = out[t.source] + v if t.source in out else v
        return out

    def predictions(self, params, s):
        """Output rates (state readout) or the softmax of the logits."""
        net = self.net
        r = {p: self.rho(s[p]) for p in net.state_pops}
        if net.readout == "softmax":
            return {o: softmax(z) for o, z in self.logits(params, r).items()}
        return {p: r[p] for p in net.outputs}

    def cost(self, params, s, targets):
        """Per-example cost: ``1/2 |s_out - y|^2`` or the cross-entropy of the softmax."""
        net = self.net
        if net.readout == "softmax":
            r = {p: self.rho(s[p]) for p in net.state_pops}
            return sum(-(targets[o] * log_softmax(z)).sum(dim=1)
                       for o, z in self.logits(params, r).items())
        return sum(0.5 * ((s[p] - targets[p]) ** 2).sum(dim=1) for p in net.outputs)

    # -- what autograd differentiates (the ground truth, vector-field EP) -----------------
    def readout_cost(self, params, s, targets):
        """The cost summed over the batch (a softmax readout's parameters are in it)."""
        return self.cost(params, s, targets).sum()

    def force_params(self, params, const_inputs, s, w):
        """``<w, F(s)>`` summed over the batch, with ``F`` the vector field; its gradient in
        ``params`` is ``(dF/dtheta)^T w`` (vector-field EP)."""
        net = self.net
        r = {p: self.rho(s[p]) for p in net.state_pops}
        k = self.kernels(params)
        h = self.drives(k, self.constant(k, const_inputs, s[net.state_pops[0]].shape[0]), r)
        return sum((w[p] * self.rho_prime(s[p], r[p]) * h[p]).sum() for p in net.state_pops)


__all__ = ["TensorNetwork", "DTYPES"]
