"""The phases of a network bound to one batch, on PyTorch tensors: the Euler steps and block
sweeps of :class:`neurosim.dynamics.Dynamics` (the specification, docs/maths.md 2), settling to
a tolerance the same way (:meth:`TensorDynamics.settle`)."""
from __future__ import annotations

import torch

from ..dynamics import SETTLE_EVERY, RelaxationError, Settled, check_eps, settle_steps


class TensorDynamics:
    """A :class:`~neurosim.accelerator.network.TensorNetwork` bound to a batch: inputs and
    targets as tensors, the constant drive computed once, the parameters read once."""

    def __init__(self, tnet, inputs, targets=None, clip=False):
        self.tnet, self.net = tnet, tnet.net
        self.inputs, self.targets = inputs, targets
        self.batch = next(iter(inputs.values())).shape[0]
        self.clip = bool(clip)
        self.identity_rates = self.clip and self.net.activation == "hard_sigmoid"
        self.params = tnet.params()
        self.weights = tnet.kernels(self.params)     # convolutions' kernels folded once
        self.const = tnet.constant(self.weights, inputs, self.batch)
        # each population's recurrent terms, a max-pooled forward product before its feedback
        self.by_target = {p: tnet.ordered([t for t in tnet.recurrent if t.target == p])
                          for p in self.net.state_pops}
        self.max_pooled = [t for t in tnet.recurrent if t.max_pooled and not t.transpose]

    def initial_state(self, state=None):
        """Zeros, or a checked copy of ``state`` (:meth:`neurosim.network.Network.check_state`:
        a wrong shape is named), clipped to [0, 1] in clip mode."""
        net, t = self.net, self.tnet
        if state is None:
            return {p: torch.zeros(self.batch, net.sizes[p], dtype=t.dtype, device=t.device)
                    for p in net.state_pops}
        s = {p: t.tensor(v) for p, v in net.check_state(state, self.batch).items()}
        if self.clip:
            for v in s.values():
                v.clamp_(0.0, 1.0)
        return s

    def rates(self, s):
        return s if self.identity_rates else {p: self.tnet.rho(v) for p, v in s.items()}

    def force(self, s, beta=0.0):
        """``F(s) - beta dC/ds`` (new tensors)."""
        net, tnet = self.net, self.tnet
        r = self.rates(s)
        h = tnet.drives(self.weights, self.const, r)
        f = {}
        for p in net.state_pops:
            d = h[p] if self.identity_rates else tnet.rho_prime(s[p], r[p]) * h[p]
            f[p] = d - s[p]
        if beta:
            if net.readout == "softmax":
                for p, fb in tnet.readout_feedback(self.params, r, self.targets).items():
                    if not self.identity_rates:
                        fb = fb * tnet.rho_prime(s[p], r[p])
                    f[p] = f[p] - beta * fb
            else:
                for p, y in self.targets.items():
                    f[p] = f[p] - beta * (s[p] - y)
        return f

    def euler(self, s, eps, beta, steps):
        """``steps`` Euler steps ``s <- P(s + eps (F - beta dC/ds))`` in place."""
        if self.identity_rates:
            return self._euler_clipped(s, eps, beta, steps)
        for _ in range(int(steps)):
            f = self.force(s, beta)
            for p in self.net.state_pops:
                s[p].add_(f[p], alpha=eps)
                if self.clip:
                    s[p].clamp_(0.0, 1.0)
        return s

    def _euler_clipped(self, s, eps, beta, steps):
        """:meth:`euler` with clipped hard sigmoid (rates = states), fused per population:
        ``s_p <- clip(a_p s_p + eps sum_q s_q M + eps (const_p + beta y_p))`` with
        ``a_p = 1 - eps (1 + beta [p an output])`` (a softmax readout's pull subtracted)."""
        net, tnet, w = self.net, self.tnet, self.weights
        nudged = {} if not beta or net.readout == "softmax" else self.targets
        a = {p: 1.0 - eps - (eps * beta if p in nudged else 0.0) for p in net.state_pops}
        ec = {p: self.const[p] * eps + (eps * beta) * nudged[p] if p in nudged
              else self.const[p] * eps for p in net.state_pops}
        pulled = bool(beta) and net.readout == "softmax"
        for _ in range(int(steps)):
            pull = tnet.readout_feedback(w, s, self.targets) if pulled else {}
            switches, new, pooled = {}, {}, {}
            for term in self.max_pooled:     # the max and switches at the old states
                pooled[term.key], switches[term.key] = tnet.convs[term.key].forward(
                    w[term.key], s[term.source])
            for p in net.state_pops:
                t = torch.add(ec[p], s[p], alpha=a[p])
                for term in self.by_target[p]:
                    if term.conv is None:
                        m = w[term.key]
                        t.addmm_(s[term.source], m.T if term.transpose else m, alpha=eps)
                    elif not term.transpose and term.key in pooled:
                        t.add_(pooled[term.key], alpha=eps)
                    else:
                        t.add_(tnet.product(term, w[term.key], s[term.source], switches),
                               alpha=eps)
                if p in pull:
                    t.sub_(pull[p], alpha=eps * beta)
                new[p] = t.clamp_(0.0, 1.0)
            s.update(new)
        return s

    def block(self, s, beta, sweeps):
        """Layer-wise block updates in place (hard sigmoid, states in [0, 1]): each population
        in turn set to the minimiser of ``E + beta C`` with the others held
        (:meth:`neurosim.dynamics.Dynamics.run_block`)."""
        net, tnet, params = self.net, self.tnet, self.weights
        pulled = {t.source for t in net.readout_terms} if net.readout == "softmax" else set()
        by_target = self.by_target
        # a feedback term needs the switches of its projection's forward product at the
        # current states: kept from the forward product while its source is unchanged (the
        # tensor's version counter), else computed
        kept = {}
        for _ in range(int(sweeps)):
            for p in net.state_pops:
                h = self.const[p].clone()
                switches = {}
                for t in by_target[p]:
                    if t.transpose and t.max_pooled:
                        version, idx = kept.get(t.key, (None, None))
                        if version != s[t.target]._version:
                            _, idx = tnet.convs[t.key].forward(params[t.key], s[t.target])
                        switches[t.key] = idx
                    h += tnet.product(t, params[t.key], s[t.source], switches)
                    if t.max_pooled and not t.transpose:
                        kept[t.key] = (s[t.source]._version, switches[t.key])
                if beta and p in pulled:
                    h -= beta * tnet.readout_feedback(params, s, self.targets)[p]
                elif beta and self.targets is not None and p in self.targets:
                    h += beta * self.targets[p]
                    if 1.0 + beta > 0:
                        h /= 1.0 + beta
                    else:   # concave in s: the minimum over [0, 1] is at a bound
                        h = (h > 0.5 * (1.0 + beta)).to(h.dtype)
                s[p].copy_(h.clamp_(0.0, 1.0))
        return s

    def settle(self, s, eps, beta=0.0, max_steps=20, tol=0.0, solver="euler",
               every=SETTLE_EVERY, record=None):
        """Euler steps or block sweeps until the projected step is at most ``tol`` (measured
        every ``every`` steps and after the last), at most ``max_steps``: the rule of
        :meth:`neurosim.dynamics.Dynamics.settle` (:func:`neurosim.dynamics.settle_steps`),
        ``record(s)`` called after every step where given. Returns a :class:`Settled` of
        tensors."""
        if solver == "block":
            def advance(n):
                self.block(s, beta, n)
            scale = 1.0
        else:
            eps = check_eps(eps)

            def advance(n):
                self.euler(s, eps, beta, n)
            scale = 1.0 / eps

        def measured():
            before = {p: v.clone() for p, v in s.items()}
            advance(1)
            return scale * max(float((s[p] - before[p]).abs().max()) for p in s)
        with torch.no_grad():
            k, step = settle_steps(advance, measured, int(max_steps), tol, every,
                                   None if record is None else lambda: record(s))
        if step != step:   # NaN: the state diverged
            raise RelaxationError("relaxation diverged (NaN/inf in the state after %d steps): "
                                  "reduce eps (now %g) or the weight scale" % (k, eps))
        return Settled(s, k, step)


__all__ = ["TensorDynamics"]
