"""Convolutional projections with average pooling (docs/maths.md 11), on flat batched states.

A projection ``a -> b`` between populations of shapes ``(C, H, W)`` and ``(O, H', W')``
convolves ``rho(s_a)`` with a kernel ``W`` of shape ``(O, C, k, k)`` (stride, zero padding)
and average-pools the result over ``pool x pool`` blocks: ``P(W * rho(s_a))``. Average
pooling is linear, so the projection keeps a true energy term ``-<rho(s_b), P(W * rho(s_a))>``;
the feedback to ``a`` is the adjoint ``W^T * P^T``, and ``dE/dW`` the correlation of ``rho(s_a)``
with ``P^T rho(s_b)``. Every product is im2col (numpy's ``sliding_window_view``, one copy)
followed by one BLAS matrix product; no Python loops over pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _positive_int(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError("%s must be an integer >= %d, got %r" % (name, minimum, v))
    return int(v)


@dataclass(frozen=True)
class Conv:
    """The geometry of one convolutional projection: input shape ``(C, H, W)``, ``channels``
    output channels, a square ``kernel``, ``stride``, zero ``padding`` (at most kernel - 1) and
    average ``pool`` blocks (1: none). ``out_shape`` is the target population's shape."""

    in_shape: tuple
    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    pool: int = 1

    def __post_init__(self):
        if len(self.in_shape) != 3:
            raise ValueError("a convolution's source needs a shape (channels, height, width), "
                             "got %r" % (self.in_shape,))
        for name in ("channels", "kernel", "stride", "pool"):
            _positive_int(name, getattr(self, name))
        _positive_int("padding", self.padding, 0)
        if self.padding > self.kernel - 1:
            raise ValueError("padding must be at most kernel - 1 = %d, got %d"
                             % (self.kernel - 1, self.padding))
        C, H, W = self.in_shape
        if min(H, W) + 2 * self.padding < self.kernel:
            raise ValueError("kernel %d is larger than the padded input %dx%d"
                             % (self.kernel, H + 2 * self.padding, W + 2 * self.padding))
        ho, wo = self.conv_hw
        if ho % self.pool or wo % self.pool:
            raise ValueError("pool %d must divide the convolution's output %dx%d"
                             % (self.pool, ho, wo))

    @property
    def conv_hw(self):
        """Height and width of the convolution before pooling."""
        _, H, W = self.in_shape
        k, s, p = self.kernel, self.stride, self.padding
        return (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1

    @property
    def out_shape(self):
        ho, wo = self.conv_hw
        return (self.channels, ho // self.pool, wo // self.pool)

    @property
    def kernel_shape(self):
        return (self.channels, self.in_shape[0], self.kernel, self.kernel)

    # -- the pieces ---------------------------------------------------------------------
    def _columns(self, r):
        """im2col of a flat batch ``(B, C*H*W)``: ``(B*Ho*Wo, C*k*k)``."""
        C, H, W = self.in_shape
        k, s, p = self.kernel, self.stride, self.padding
        x = r.reshape(-1, C, H, W)
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]   # B C Ho Wo k k
        ho, wo = self.conv_hw
        win = win[:, :, :ho, :wo]
        return win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, C * k * k)

    def _unpool(self, v):
        """``P^T``: a flat pooled batch ``(B, O*H'*W')`` -> ``(B, O, Ho, Wo)``."""
        O, hp, wp = self.out_shape
        q = self.pool
        v = v.reshape(-1, O, hp, wp)
        if q == 1:
            return v
        v = np.repeat(np.repeat(v, q, axis=2), q, axis=3)
        return v * (1.0 / (q * q))

    # -- the three products of an energy term ---------------------------------------------
    def forward(self, kernel, r):
        """``P(W * r)`` for a flat batch ``r`` ``(B, C*H*W)`` -> ``(B, O*H'*W')``."""
        B = r.shape[0]
        O = self.channels
        ho, wo = self.conv_hw
        y = self._columns(r) @ kernel.reshape(O, -1).T          # (B*Ho*Wo, O)
        y = y.reshape(B, ho, wo, O).transpose(0, 3, 1, 2)
        q = self.pool
        if q > 1:
            y = y.reshape(B, O, ho // q, q, wo // q, q).mean(axis=(3, 5))
        return np.ascontiguousarray(y.reshape(B, -1))

    def adjoint(self, kernel, v):
        """``W^T * P^T v``, the adjoint of :meth:`forward`: ``(B, O*H'*W')`` -> ``(B, C*H*W)``
        (a convolution of the stride-dilated, padded ``P^T v`` with the flipped kernel)."""
        C, H, W = self.in_shape
        k, s, p = self.kernel, self.stride, self.padding
        ho, wo = self.conv_hw
        u = self._unpool(v)
        B, O = u.shape[0], self.channels
        hd, wd = (ho - 1) * s + 1, (wo - 1) * s + 1
        extra_h, extra_w = H + 2 * p - k - (ho - 1) * s, W + 2 * p - k - (wo - 1) * s
        full = np.zeros((B, O, hd + 2 * (k - 1 - p) + extra_h, wd + 2 * (k - 1 - p) + extra_w),
                        dtype=u.dtype)
        a = k - 1 - p
        full[:, :, a:a + hd:s, a:a + wd:s] = u
        win = sliding_window_view(full, (k, k), axis=(2, 3))            # B O H W k k
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(B * H * W, O * k * k)
        flipped = kernel[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(C, -1)
        x = (cols @ flipped.T).reshape(B, H, W, C).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x.reshape(B, -1))

    def kernel_gradient(self, r, v):
        """``d <v, P(W * r)> / dW`` summed over the batch: the correlation of ``r``
        ``(B, C*H*W)`` with ``P^T v`` ``(B, O*H'*W')``, shape ``(O, C, k, k)``."""
        O = self.channels
        u = self._unpool(v).transpose(0, 2, 3, 1).reshape(-1, O)       # (B*Ho*Wo, O)
        return (u.T @ self._columns(r)).reshape(self.kernel_shape)

    def macs(self):
        """Multiply-adds of one forward product per example (before pooling)."""
        ho, wo = self.conv_hw
        return ho * wo * int(np.prod(self.kernel_shape))


__all__ = ["Conv"]
