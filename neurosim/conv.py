"""Convolutional projections with average pooling (docs/maths.md 12), on flat batched states.

A projection ``a -> b`` between populations of shapes ``(C, H, W)`` and ``(O, H', W')``
convolves ``rho(s_a)`` with a kernel ``W`` of shape ``(O, C, k, k)`` (stride, zero padding)
and average-pools the result over ``pool x pool`` blocks: ``P(W * rho(s_a))``. Average
pooling is linear, so the projection keeps a true energy term ``-<rho(s_b), P(W * rho(s_a))>``;
the feedback to ``a`` is the adjoint ``W^T * P^T``, and ``dE/dW`` the correlation of ``rho(s_a)``
with ``P^T rho(s_b)``. Every product is k*k BLAS matrix products over channels, one per kernel
offset, on channel-last views of the batch; no Python loops over pixels or examples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    def _padded(self, r):
        """A flat batch ``(B, C*H*W)`` as a zero-padded channel-last ``(B, H+2p, W+2p, C)``."""
        C, H, W = self.in_shape
        p = self.padding
        x = r.reshape(-1, C, H, W).transpose(0, 2, 3, 1)
        if p:
            return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        return x

    def _window(self, x, i, j):
        """The input pixels that kernel offset ``(i, j)`` reads for every output position:
        a ``(B, Ho, Wo, C)`` view of the padded channel-last input."""
        ho, wo = self.conv_hw
        s = self.stride
        return x[:, i:i + (ho - 1) * s + 1:s, j:j + (wo - 1) * s + 1:s]

    def _offsets(self):
        return [(i, j) for i in range(self.kernel) for j in range(self.kernel)]

    def _pooled(self, y):
        """Average pooling of a channel-last ``(B, Ho, Wo, O)`` -> flat ``(B, O*H'*W')``."""
        B, ho, wo, O = y.shape
        q = self.pool
        if q > 1:
            y = y.reshape(B, ho // q, q, wo // q, q, O).mean(axis=(2, 4))
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2)).reshape(B, -1)

    def _unpooled(self, v):
        """``P^T``: a flat pooled batch ``(B, O*H'*W')`` -> channel-last ``(B*Ho*Wo, O)``."""
        O, hp, wp = self.out_shape
        q = self.pool
        u = v.reshape(-1, O, hp, wp).transpose(0, 2, 3, 1)              # B H' W' O
        if q > 1:
            u = np.repeat(np.repeat(u, q, axis=1), q, axis=2) * (1.0 / (q * q))
        return np.ascontiguousarray(u).reshape(-1, O)

    # -- the three products of an energy term ---------------------------------------------
    # Each is a sum over the k*k kernel offsets of one BLAS product between the channels of
    # the pixels that offset reads and the kernel's (O, C) slice at that offset (measured
    # here faster than one im2col product, whose column matrix is k*k times the input).
    def forward(self, kernel, r):
        """``P(W * r)`` for a flat batch ``r`` ``(B, C*H*W)`` -> ``(B, O*H'*W')``."""
        ho, wo = self.conv_hw
        x, B, C = self._padded(r), r.shape[0], self.in_shape[0]
        y = np.zeros((B * ho * wo, self.channels), dtype=np.result_type(r, kernel))
        for i, j in self._offsets():
            y += np.ascontiguousarray(self._window(x, i, j)).reshape(-1, C) @ kernel[:, :, i, j].T
        return self._pooled(y.reshape(B, ho, wo, self.channels))

    def adjoint(self, kernel, v):
        """``W^T * P^T v``, the adjoint of :meth:`forward`: ``(B, O*H'*W')`` -> ``(B, C*H*W)``
        (each offset's product scattered back onto the pixels it read: col2im)."""
        C, H, W = self.in_shape
        p = self.padding
        ho, wo = self.conv_hw
        u = self._unpooled(v)                                           # (B Ho Wo), O
        B = u.shape[0] // (ho * wo)
        x = np.zeros((B, H + 2 * p, W + 2 * p, C), dtype=np.result_type(v, kernel))
        for i, j in self._offsets():
            self._window(x, i, j)[...] += (u @ kernel[:, :, i, j]).reshape(B, ho, wo, C)
        x = x[:, p:p + H, p:p + W]
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(B, -1)

    def kernel_gradient(self, r, v):
        """``d <v, P(W * r)> / dW`` summed over the batch: the correlation of ``r``
        ``(B, C*H*W)`` with ``P^T v`` ``(B, O*H'*W')``, shape ``(O, C, k, k)``."""
        x, C = self._padded(r), self.in_shape[0]
        ut = self._unpooled(v).T                                        # O, (B Ho Wo)
        g = np.empty(self.kernel_shape, dtype=np.result_type(r, v))
        for i, j in self._offsets():
            g[:, :, i, j] = ut @ np.ascontiguousarray(self._window(x, i, j)).reshape(-1, C)
        return g

    def macs(self):
        """Multiply-adds of one forward product per example (before pooling)."""
        ho, wo = self.conv_hw
        return ho * wo * int(np.prod(self.kernel_shape))


__all__ = ["Conv"]
