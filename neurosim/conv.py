"""Convolutional projections with average or max pooling (docs/maths.md 12), on flat batched
states.

A projection ``a -> b`` between populations of shapes ``(C, H, W)`` and ``(O, H', W')``
convolves ``rho(s_a)`` with a kernel ``W`` of shape ``(O, C, k, k)`` (stride, zero padding)
and pools the result over ``pool x pool`` blocks: ``P(W * rho(s_a))``, the energy term
``-<rho(s_b), P(W * rho(s_a))>``. Average pooling is linear: the feedback to ``a`` is the
adjoint ``W^T * P^T``, and ``dE/dW`` the correlation of ``rho(s_a)`` with ``P^T rho(s_b)``.
Max pooling (Laborieux et al. 2021) keeps the energy, piecewise bilinear: where the arg-max of
each block (its *switches*, :meth:`Conv.switches`) is held, ``P`` is the linear selection
``P_m``, so the forces, the kernel gradient and the Jacobian products are those of average
pooling with ``P_m`` in place of ``P``, taken at the switches of the state they are evaluated
at (almost everywhere the derivatives of the energy itself).

How it is computed: when the stride ``s`` is smaller than the kernel ``k``, a convolution
followed by ``q x q`` average pooling is one convolution of stride ``s q`` with the kernel
folded over the pooling block (size ``k + (q - 1) s``, :meth:`Conv.fold`), which does
``q^2 k^2 / (k + (q - 1) s)^2`` times fewer multiply-adds (2.8x for k = 5, q = 2); the
kernel's gradient is the folded gradient's sum over the block (:meth:`Conv.unfold`). With
``s >= k`` folding would add work, and the pooling is applied to the convolution's output
instead, as it always is for max pooling. The forward product and the kernel gradient are one
BLAS product with the im2col column matrix (a strided view copied once); the adjoint is one
BLAS product per offset of the (folded) kernel, scattered back onto the pixels each read
(measured faster here than col2im of one product). No Python loops over pixels or examples.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _positive_int(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError("%s must be an integer >= %d, got %r" % (name, minimum, v))
    return int(v)


POOLINGS = ("average", "max")


@dataclass(frozen=True)
class Conv:
    """The geometry of one convolutional projection: input shape ``(C, H, W)``, ``channels``
    output channels, a square ``kernel``, ``stride``, zero ``padding`` (at most kernel - 1) and
    ``pool`` blocks (1: none) of ``pooling`` "average" or "max". ``out_shape`` is the target
    population's shape."""

    in_shape: tuple
    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    pool: int = 1
    pooling: str = "average"

    def __post_init__(self):
        if len(self.in_shape) != 3:
            raise ValueError("a convolution's source needs a shape (channels, height, width), "
                             "got %r" % (self.in_shape,))
        for name in ("channels", "kernel", "stride", "pool"):
            _positive_int(name, getattr(self, name))
        _positive_int("padding", self.padding, 0)
        if self.pooling not in POOLINGS:
            raise ValueError("pooling must be one of %s, got %r" % (POOLINGS, self.pooling))
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

    # -- pooling folded into the kernel ---------------------------------------------------
    @property
    def folds(self):
        """Whether the pooling is folded into the kernel (average ``pool > 1`` and stride <
        kernel, where folding saves multiply-adds)."""
        return self.pool > 1 and self.stride < self.kernel and self.pooling == "average"

    @property
    def max_pools(self):
        """Whether the pooling is a max over blocks (products then need the switches)."""
        return self.pool > 1 and self.pooling == "max"

    @property
    def pools_output(self):
        """Whether the pooling is applied to :attr:`plain`'s output (``pool > 1``, not folded)."""
        return self.pool > 1 and not self.folds

    @cached_property
    def plain(self):
        """The convolution that is computed, without pooling: with :attr:`folds`, the same
        linear map as this one (stride ``s q``, the kernel folded over the ``q x q`` block);
        otherwise this geometry with ``pool = 1``, whose output is then pooled."""
        if self.pool == 1:
            return self
        if self.folds:
            q, s = self.pool, self.stride
            return Conv(self.in_shape, self.channels, self.kernel + (q - 1) * s, s * q,
                        self.padding, 1)
        return Conv(self.in_shape, self.channels, self.kernel, self.stride, self.padding, 1)

    def fold(self, kernel):
        """The kernel of :attr:`plain`: ``W`` summed over the pooling block's offsets (each
        shifted by ``stride``) and divided by ``q^2``."""
        q, s, k = self.pool, self.stride, self.kernel
        if not self.folds:
            return kernel
        kf = np.zeros(kernel.shape[:2] + (k + (q - 1) * s,) * 2, dtype=kernel.dtype)
        for a in range(q):
            for b in range(q):
                kf[:, :, s * a:s * a + k, s * b:s * b + k] += kernel
        kf *= 1.0 / (q * q)
        return kf

    def unfold(self, folded_gradient):
        """The adjoint of :meth:`fold`: a gradient with respect to the folded kernel as one
        with respect to ``W``."""
        q, s, k = self.pool, self.stride, self.kernel
        if not self.folds:
            return folded_gradient
        g = np.zeros(self.kernel_shape, dtype=folded_gradient.dtype)
        for a in range(q):
            for b in range(q):
                g += folded_gradient[:, :, s * a:s * a + k, s * b:s * b + k]
        g *= 1.0 / (q * q)
        return g

    # -- the pieces of an unpooled convolution --------------------------------------------
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

    def _columns(self, r):
        """im2col: ``(B*Ho*Wo, k*k*C)``, the pixels each output position reads, ordered
        (row offset, column offset, channel)."""
        ho, wo = self.conv_hw
        k, s = self.kernel, self.stride
        win = sliding_window_view(self._padded(r), (k, k), axis=(1, 2))[:, ::s, ::s][:, :ho, :wo]
        return np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(
            -1, k * k * self.in_shape[0])

    def _flat(self, y):
        """A channel-last ``(B*Ho*Wo, O)`` result as a flat ``(B, O*Ho*Wo)`` batch."""
        ho, wo = self.conv_hw
        y = y.reshape(-1, ho, wo, self.channels).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(y).reshape(y.shape[0], -1)

    def _channel_last(self, v):
        """A flat ``(B, O*Ho*Wo)`` batch as channel-last ``(B*Ho*Wo, O)``."""
        ho, wo = self.conv_hw
        u = v.reshape(-1, self.channels, ho, wo).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(u).reshape(-1, self.channels)

    def _forward(self, kernel, r):
        k, C, O = self.kernel, self.in_shape[0], self.channels
        return self._flat(self._columns(r) @ kernel.transpose(2, 3, 1, 0).reshape(k * k * C, O))

    def _adjoint(self, kernel, v):
        C, H, W = self.in_shape
        p = self.padding
        ho, wo = self.conv_hw
        u = self._channel_last(v)                                        # (B Ho Wo), O
        B = u.shape[0] // (ho * wo)
        x = np.zeros((B, H + 2 * p, W + 2 * p, C), dtype=np.result_type(v, kernel))
        for i in range(self.kernel):
            for j in range(self.kernel):
                self._window(x, i, j)[...] += (u @ kernel[:, :, i, j]).reshape(B, ho, wo, C)
        x = x[:, p:p + H, p:p + W]
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(B, -1)

    def _kernel_gradient(self, r, v):
        k, C, O = self.kernel, self.in_shape[0], self.channels
        g = self._channel_last(v).T @ self._columns(r)                   # O, (k k C)
        return np.ascontiguousarray(g.reshape(O, k, k, C).transpose(0, 3, 1, 2))

    # -- explicit pooling (when it is not folded) ------------------------------------------
    def _blocks(self, y):
        """A flat ``(B, O*Ho*Wo)`` convolution output as ``(B, O, H', W', q*q)`` blocks."""
        q, (_, hp, wp) = self.pool, self.out_shape
        y = y.reshape(-1, self.channels, hp, q, wp, q).transpose(0, 1, 2, 4, 3, 5)
        return y.reshape(y.shape[:4] + (q * q,))

    def _unblock(self, u):
        """The inverse of :meth:`_blocks`: ``(B, O, H', W', q*q)`` -> flat ``(B, O*Ho*Wo)``."""
        q = self.pool
        u = u.reshape(u.shape[:4] + (q, q)).transpose(0, 1, 2, 4, 3, 5)
        return np.ascontiguousarray(u).reshape(u.shape[0], -1)

    def _pool(self, y, switches=None):
        """``P``: the mean over ``q x q`` blocks of a flat ``(B, O*Ho*Wo)`` batch, or its max
        (the entries at ``switches`` when given: the linear ``P_m``)."""
        if not self.pools_output:
            return y
        if self.pooling == "average":
            q, (ho, wo) = self.pool, self.conv_hw
            y = y.reshape(-1, self.channels, ho // q, q, wo // q, q).mean(axis=(3, 5))
            return y.reshape(y.shape[0], -1)
        b = self._blocks(y)
        if switches is None:
            return b.max(axis=4).reshape(b.shape[0], -1)
        return np.take_along_axis(b, switches[..., None], axis=4).reshape(b.shape[0], -1)

    def _unpool(self, v, switches=None):
        """``P^T``: each pooled value spread evenly over its block, or (max pooling) put at
        its block's switch."""
        if not self.pools_output:
            return v
        q, (_, hp, wp) = self.pool, self.out_shape
        if self.pooling == "average":
            u = v.reshape(-1, self.channels, hp, wp) * (1.0 / (q * q))
            u = np.repeat(np.repeat(u, q, axis=2), q, axis=3)
            return u.reshape(u.shape[0], -1)
        self._need(switches)
        u = np.zeros(switches.shape + (q * q,), dtype=v.dtype)
        np.put_along_axis(u, switches[..., None], v.reshape(switches.shape + (1,)), axis=4)
        return self._unblock(u)

    def _need(self, switches):
        if self.max_pools and switches is None:
            raise ValueError("a max-pooled projection's feedback and kernel gradient need the "
                             "switches of the state they are taken at (Conv.switches)")

    # -- the three products of an energy term ---------------------------------------------
    def max_pool(self, kernel, r):
        """Max pooling: ``(P(W * r), switches)`` from one convolution, the switches the
        arg-max of every ``q x q`` block, ``(B, O, H', W')`` (the first of tied entries)."""
        b = self._blocks(self.plain._forward(kernel, r))
        m = b.argmax(axis=4)
        return np.take_along_axis(b, m[..., None], axis=4).reshape(b.shape[0], -1), m

    def switches(self, kernel, r):
        """The switches of :meth:`max_pool` at the source rates ``r``; None for average
        pooling (or no pooling)."""
        return self.max_pool(kernel, r)[1] if self.max_pools else None

    def forward(self, kernel, r, switches=None):
        """``P(W * r)`` for a flat batch ``r`` ``(B, C*H*W)`` -> ``(B, O*H'*W')``; with max
        pooling and ``switches``, the linear ``P_m(W * r)`` (the forward product at those
        switches: the Jacobian-vector product of the max)."""
        return self._pool(self.plain._forward(self.fold(kernel), r), switches)

    def adjoint(self, kernel, v, switches=None):
        """``W^T * P^T v``, the adjoint of :meth:`forward`: ``(B, O*H'*W')`` -> ``(B, C*H*W)``
        (max pooling: at ``switches``, required)."""
        return self.plain._adjoint(self.fold(kernel), self._unpool(v, switches))

    def kernel_gradient(self, r, v, switches=None):
        """``d <v, P(W * r)> / dW`` summed over the batch: the correlation of ``r``
        ``(B, C*H*W)`` with ``P^T v`` ``(B, O*H'*W')``, shape ``(O, C, k, k)`` (max pooling:
        ``P_m`` at ``switches``, required)."""
        return self.unfold(self.plain._kernel_gradient(r, self._unpool(v, switches)))

    def macs(self):
        """Multiply-adds of one forward product per example, as computed (:attr:`plain`: an
        average pooling folded into the kernel where that saves work; the pooling's adds and
        comparisons not counted)."""
        g = self.plain
        ho, wo = g.conv_hw
        return ho * wo * int(np.prod(g.kernel_shape))


__all__ = ["Conv", "POOLINGS"]
