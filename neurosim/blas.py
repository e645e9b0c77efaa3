"""BLAS for the Euler steps: a context that limits its threads (:func:`blas_threads`), the
size below which products run on one thread (:data:`SMALL_GEMM`), and the operands that let
gemm accumulate ``s @ m`` into a C-ordered array in place (:func:`gemm_operand`)."""
from __future__ import annotations

import contextlib

import numpy as np

_BLAS = []   # lazily: [threadpoolctl controller of the loaded BLAS libraries, or None]
SMALL_GEMM = 1 << 22  # multiply-adds: per-step products up to this size run on one BLAS thread


def gemm_operand(m):
    """``(A, trans)`` such that BLAS gemm with ``op(A)`` computes ``m^T`` in column-major
    terms: for C-ordered arrays ``(s @ m)^T = m^T s^T``, so ``gemm(alpha, A, s.T, beta, c.T,
    trans)`` accumulates ``alpha s @ m`` into ``c`` without copies."""
    if m.flags.c_contiguous:
        return m.T, 0
    if m.T.flags.c_contiguous:
        return m, 1
    return np.ascontiguousarray(m).T, 0


def blas_threads(n):
    """A context that limits BLAS to ``n`` threads (via threadpoolctl when it is installed;
    ``None`` or no threadpoolctl: leave BLAS as it is).

    Euler steps of networks like 784-500-10 are made of small products (100x10 @ 10x500):
    a second BLAS thread gains nothing on them, and when another process holds the other
    core every multi-threaded call waits for its helper thread to be scheduled (measured on a
    busy 2-core machine: a 784-500-10 EP step 5-8x slower). Not thread-safe across
    concurrent relaxations in one process (the limit is process-wide).
    """
    if n is None:
        return contextlib.nullcontext()
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
            ctl = ThreadpoolController().select(user_api="blas")
            _BLAS.append(ctl if ctl.lib_controllers else None)
        except Exception:  # pragma: no cover - threadpoolctl missing or unusable
            _BLAS.append(None)
    ctl = _BLAS[0]
    return contextlib.nullcontext() if ctl is None else ctl.limit(limits=int(n))
