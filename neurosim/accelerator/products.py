"""The products of a network's terms on PyTorch tensors (docs/maths.md 2 and 12): ``r M`` for
a dense term, the convolution ``P(W * r)`` and its adjoint for a convolutional one.

The same maths as :mod:`neurosim.conv` on flat ``(B, C*H*W)`` batches, computed by torch's
``conv2d`` / ``conv_transpose2d``: an average pooling is folded into the kernel where that saves
work (the same rule, :attr:`neurosim.conv.Conv.folds`), a max pooling keeps the arg-max of
every block (its *switches*, the first of tied entries as in numpy) from the forward product
so the feedback at the same rates puts each value back at its block's switch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class ConvProduct:
    """One convolutional projection's geometry (:class:`neurosim.conv.Conv`) as torch calls."""

    def __init__(self, conv):
        self.conv = conv
        self.plain = conv.plain               # the convolution computed (folded or unpooled)
        self.in_shape = tuple(conv.in_shape)
        self.conv_hw = tuple(self.plain.conv_hw)

    def kernel(self, w):
        """The kernel :attr:`plain` convolves with: ``w`` summed over the pooling block's
        offsets and divided by ``q^2`` where the pooling folds (differentiable in ``w``).
        :meth:`forward` and :meth:`adjoint` take this kernel (folded once per batch)."""
        c = self.conv
        if not c.folds:
            return w
        q, s, k = c.pool, c.stride, c.kernel
        kf = w.new_zeros(w.shape[:2] + (k + (q - 1) * s,) * 2)
        for a in range(q):
            for b in range(q):
                kf[:, :, s * a:s * a + k, s * b:s * b + k] += w
        return kf / (q * q)

    def _convolve(self, w, r):
        p = self.plain
        x = r.reshape((-1,) + self.in_shape)
        return F.conv2d(x, w, stride=p.stride, padding=p.padding)

    def forward(self, w, r):
        """``(P(W * r), switches)`` with ``w`` the :meth:`kernel`: the flat ``(B, O*H'*W')`` product and, for max pooling,
        the arg-max indices of its blocks (None otherwise)."""
        y = self._convolve(w, r)
        c = self.conv
        idx = None
        if c.pools_output:
            if c.pooling == "average":
                y = F.avg_pool2d(y, c.pool)
            else:
                y, idx = F.max_pool2d(y, c.pool, return_indices=True)
        return y.reshape(y.shape[0], -1), idx

    def adjoint(self, w, v, switches=None):
        """``W^T * P^T v`` with ``w`` the :meth:`kernel`: a flat target batch ``(B, O*H'*W')`` back to the source
        ``(B, C*H*W)`` (max pooling: each value put at its block's switch)."""
        c, p = self.conv, self.plain
        _, hp, wp = c.out_shape
        u = v.reshape(-1, c.channels, hp, wp)
        if c.pools_output:
            q = c.pool
            if c.pooling == "average":
                u = u.repeat_interleave(q, dim=2).repeat_interleave(q, dim=3) / (q * q)
            else:
                if switches is None:
                    raise ValueError("a max-pooled projection's feedback needs the switches of "
                                     "its forward product")
                u = F.max_unpool2d(u, switches, q, output_size=self.conv_hw)
        kernel = w
        _, H, W = self.in_shape
        k = kernel.shape[-1]
        pad = ((self.conv_hw[0] - 1) * p.stride - 2 * p.padding + k,
               (self.conv_hw[1] - 1) * p.stride - 2 * p.padding + k)
        x = F.conv_transpose2d(u, kernel, stride=p.stride, padding=p.padding,
                               output_padding=(H - pad[0], W - pad[1]))
        return x.reshape(x.shape[0], -1)


def dense(r, w, transpose=False):
    """``r M`` with ``M = w`` (``w^T`` for the feedback of a tied matrix)."""
    return r @ (w.T if transpose else w)


__all__ = ["ConvProduct", "dense"]
