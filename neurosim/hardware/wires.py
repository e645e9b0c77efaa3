"""Wire resistance in crossbar reads (IR drop): nodal analysis of arrays whose row and column
wires have a resistance ``r_wire`` per segment (:class:`WireArray`), matrices split into
tiles of physical arrays (:class:`TiledArray`), and the reads of a crossbar's conductance
pairs through them (:class:`WireReader`, used by :meth:`neurosim.hardware.Crossbar.read`
when ``hardware.r_wire > 0``).

The circuit of one array (``rows x cols`` devices)
--------------------------------------------------
Device ``G_ij`` (µS) joins node ``(i, j)`` of row wire ``i`` to node ``(i, j)`` of column wire
``j``. Neighbouring crosspoints of a wire are joined by one segment of ``r_wire`` ohms, and so
is the end crosspoint to its terminal: each row's driver sits at its left end (before column
0), each column's sense amplifier at its bottom end (after row ``rows - 1``). Every terminal
is held at a fixed voltage (a driver's output, or a sense amplifier's virtual ground at 0 V),
so the unknowns are the ``2 rows cols`` crosspoint voltages and the nodal equations are one
symmetric positive definite sparse system ``A v = b``, the same matrix for every read of the
same conductances.

Reads in both directions
------------------------
* **forward** (:meth:`WireArray.forward`): voltages ``V`` at the row drivers, the columns'
  sense amplifiers at 0 V; the output is the current into each column's sense amplifier.
  Ideal wires give ``I = V G`` (``V`` a row vector per example).
* **backward** (:meth:`WireArray.backward`, the transposed read): voltages ``U`` at the
  column terminals, the rows' terminals at 0 V; the output is the current out of each row's
  terminal. Ideal wires give ``I = U G^T``.

The network of wires and devices is linear and reciprocal (``A`` is symmetric) and both reads
use the same terminals, so the backward read's transfer matrix is exactly the transpose of
the forward one. A read is linear in the voltages, so one matrix, the **transfer matrix**
``T`` (:meth:`WireArray.transfer`: the currents of the unit inputs, one solve with ``min(rows,
cols)`` right-hand sides), reproduces every read of a batch exactly: ``forward(V) = V T``,
``backward(U) = U T^T``. The engines therefore read a parameter once per phase as the
effective weight ``w_max / (g_max - g_min) (T+ - T-)`` of its pair (G+ and G- in two arrays
of the same geometry) and use it for the forward and the feedback products alike, as they use
``W`` and ``W^T``; a tied lateral matrix stores its upper triangle and reads it in both
directions, ``T + T^T``.

Solving: ``A`` is factorised once per weight state with :func:`scipy.sparse.linalg.splu`
(a symmetric ordering, no pivoting: ``A`` is symmetric positive definite) and the factorisation is reused by every read until a conductance changes (programming, a
read's noise); :attr:`WireArray.factorizations` counts them. The system is solved for the
deviation from the ideal-wire node voltages (rows at their drive, columns at 0), whose
right-hand side is the devices' ideal currents: the currents keep their relative precision
however small ``r_wire`` is (no cancellation against the drive voltages).

Tiles: a matrix larger than ``tile_size`` in either dimension is split into tiles of at most
``tile_size x tile_size`` devices, each a separate array with its own wires, drivers and sense
amplifiers; the currents of the tiles of one block of columns are summed (``tile_size = 0``:
one array per matrix). A bias vector is read as one row of devices driven at 1 V.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from ..errors import ArgumentError

MICRO = 1e6    # µS per siemens: a segment of r ohms conducts 1e6 / r µS
SOLVE_COLUMNS = 4   # right-hand sides per triangular solve: SuperLU's solve slows down for
                    # many at once (measured: 4 at a time ~9x faster than 128 on 128 x 128)


def _conductances(g, shape, where):
    g = np.asarray(g, dtype=np.float64)
    if g.shape != tuple(shape):
        raise ArgumentError("%s: conductances of shape %s, expected %s"
                            % (where, g.shape, tuple(shape)))
    if not np.all(np.isfinite(g)):
        raise ArgumentError("%s: conductances must be finite" % where)
    return g


def _resistance(r_wire):
    if isinstance(r_wire, bool) or not isinstance(r_wire, (int, float, np.integer, np.floating)) \
            or not np.isfinite(r_wire) or r_wire < 0:
        raise ArgumentError("r_wire: expected a finite resistance >= 0 (ohm), got %r"
                            % (r_wire,))
    return float(r_wire)


class WireArray:
    """One physical array of ``shape = (rows, cols)`` devices with wire segments of
    ``r_wire`` ohms (module docstring); ``r_wire = 0`` reads the ideal ``V G`` without a
    solve. Set the devices with :meth:`set_conductances` (µS), then read."""

    def __init__(self, shape, r_wire):
        rows, cols = (int(n) for n in shape)
        if rows < 1 or cols < 1:
            raise ArgumentError("shape: expected (rows, cols) >= 1, got %r" % (shape,))
        self.shape, self.r_wire = (rows, cols), _resistance(r_wire)
        self.factorizations = 0
        self._g, self._lu = None, None
        if not self.r_wire:
            return
        n = rows * cols
        node = 2 * np.arange(n).reshape(rows, cols)      # row node (i, j); its column node + 1
        self._row, self._col = node, node + 1
        gw = MICRO / self.r_wire
        self._gw = gw
        a = [node[:, :-1].ravel(), (node + 1)[:-1, :].ravel()]        # wire segments
        b = [node[:, 1:].ravel(), (node + 1)[1:, :].ravel()]
        a, b = np.concatenate(a), np.concatenate(b)
        seg = np.full(a.size, gw)
        diag = np.zeros(2 * n)
        np.add.at(diag, a, seg)
        np.add.at(diag, b, seg)
        diag[node[:, 0]] += gw                            # row drivers (left ends)
        diag[(node + 1)[-1, :]] += gw                     # column terminals (bottom ends)
        self._wire_diag = diag
        self._off = (np.concatenate([a, b]), np.concatenate([b, a]), -np.concatenate([seg, seg]))

    def set_conductances(self, g):
        """Take the device conductances ``g`` (µS, ``shape``); refactorise only where they
        changed. Returns whether a factorisation was made."""
        g = _conductances(g, self.shape, "WireArray.set_conductances")
        if self._g is not None and np.array_equal(g, self._g):
            return False
        self._g = g.copy()
        if not self.r_wire:
            return False
        rows, cols = self.shape
        r, c = self._row.ravel(), self._col.ravel()
        gv = self._g.ravel()
        diag = self._wire_diag.copy()
        diag[r] += gv
        diag[c] += gv
        i0, j0, v0 = self._off
        ii = np.concatenate([i0, r, c, np.arange(2 * rows * cols)])
        jj = np.concatenate([j0, c, r, np.arange(2 * rows * cols)])
        vv = np.concatenate([v0, -gv, -gv, diag])
        A = sp.csc_matrix((vv, (ii, jj)), shape=(2 * rows * cols,) * 2)
        # symmetric positive definite: a symmetric ordering and no pivoting
        self._lu = splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                        options={"SymmetricMode": True})
        self.factorizations += 1
        return True

    def _need(self):
        if self._g is None:
            raise ArgumentError("WireArray: set_conductances() before reading")

    def _read(self, x, sign, out_nodes):
        """The terminal currents at ``out_nodes`` ``(batch, k)`` for the inputs ``x``
        ``(batch, rows)`` (``sign = 1``, driven rows) or ``(batch, cols)`` (``sign = -1``,
        driven columns): the solve for the deviation of the node voltages from the ideal-wire
        ones, whose right-hand side is minus the devices' ideal currents at the row nodes and
        plus them at the column nodes (``sign`` flips both), in chunks of the batch."""
        rows, cols = self.shape
        n = rows * cols
        per = SOLVE_COLUMNS
        out = np.empty((x.shape[0], out_nodes.size))
        for s in range(0, x.shape[0], per):
            xs = x[s:s + per].T                           # (rows or cols, b)
            ideal = self._g[:, :, None] * (xs[:, None, :] if sign > 0 else xs[None, :, :])
            b = np.empty((2 * n, xs.shape[1]))
            b[self._row.ravel()] = (-sign * ideal).reshape(n, -1)
            b[self._col.ravel()] = (sign * ideal).reshape(n, -1)
            out[s:s + per] = self._gw * self._lu.solve(b)[out_nodes].T
        return out

    def forward(self, v):
        """Currents ``(batch, cols)`` (µA for V and µS) into the column sense amplifiers for
        row-driver voltages ``v`` ``(batch, rows)``."""
        self._need()
        v = np.atleast_2d(np.asarray(v, dtype=np.float64))
        if v.shape[-1] != self.shape[0]:
            raise ArgumentError("forward: voltages of %d rows, the array has %d"
                                % (v.shape[-1], self.shape[0]))
        if not self.r_wire:
            return v @ self._g
        return self._read(v, 1, self._col[-1, :])

    def backward(self, u):
        """Currents ``(batch, rows)`` out of the row terminals for column-terminal voltages
        ``u`` ``(batch, cols)`` (the transposed read)."""
        self._need()
        u = np.atleast_2d(np.asarray(u, dtype=np.float64))
        if u.shape[-1] != self.shape[1]:
            raise ArgumentError("backward: voltages of %d columns, the array has %d"
                                % (u.shape[-1], self.shape[1]))
        if not self.r_wire:
            return u @ self._g.T
        return self._read(u, -1, self._row[:, 0])

    def transfer(self):
        """The transfer matrix ``T`` ``(rows, cols)``: ``forward(V) = V T`` and
        ``backward(U) = U T^T`` (``G`` itself for ideal wires)."""
        self._need()
        rows, cols = self.shape
        if not self.r_wire:
            return self._g.copy()
        if rows <= cols:
            return self.forward(np.eye(rows))
        return self.backward(np.eye(cols)).T


class TiledArray:
    """A ``shape = (rows, cols)`` matrix of devices on tiles of at most ``tile_size x
    tile_size`` (0: one tile), each a :class:`WireArray`; a read sums the tiles' currents."""

    def __init__(self, shape, r_wire, tile_size=0):
        rows, cols = (int(n) for n in shape)
        if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) \
                or tile_size < 0:
            raise ArgumentError("tile_size: expected an integer >= 0, got %r" % (tile_size,))
        t = int(tile_size)
        self.shape, self.r_wire, self.tile_size = (rows, cols), _resistance(r_wire), t
        rb = [(s, min(s + t, rows)) for s in range(0, rows, t)] if t else [(0, rows)]
        cb = [(s, min(s + t, cols)) for s in range(0, cols, t)] if t else [(0, cols)]
        self.tiles = [((r0, r1), (c0, c1), WireArray((r1 - r0, c1 - c0), r_wire))
                      for r0, r1 in rb for c0, c1 in cb]

    @property
    def factorizations(self):
        """Factorisations made so far, all tiles."""
        return sum(a.factorizations for _, _, a in self.tiles)

    def set_conductances(self, g):
        """Take ``g`` (µS, ``shape``); only the tiles whose devices changed refactorise."""
        g = _conductances(g, self.shape, "TiledArray.set_conductances")
        for (r0, r1), (c0, c1), a in self.tiles:
            a.set_conductances(g[r0:r1, c0:c1])

    def forward(self, v):
        """Column currents ``(batch, cols)`` for row voltages ``(batch, rows)``."""
        v = np.atleast_2d(np.asarray(v, dtype=np.float64))
        out = np.zeros((v.shape[0], self.shape[1]))
        for (r0, r1), (c0, c1), a in self.tiles:
            out[:, c0:c1] += a.forward(v[:, r0:r1])
        return out

    def backward(self, u):
        """Row currents ``(batch, rows)`` for column voltages ``(batch, cols)``."""
        u = np.atleast_2d(np.asarray(u, dtype=np.float64))
        out = np.zeros((u.shape[0], self.shape[0]))
        for (r0, r1), (c0, c1), a in self.tiles:
            out[:, r0:r1] += a.backward(u[:, c0:c1])
        return out

    def transfer(self):
        """The transfer matrix ``(rows, cols)``, tile by tile."""
        out = np.empty(self.shape)
        for (r0, r1), (c0, c1), a in self.tiles:
            out[r0:r1, c0:c1] = a.transfer()
        return out


class WireReader:
    """Reads of a crossbar's conductance pairs through wires of ``r_wire`` ohms on tiles of
    ``tile_size``: per parameter key, one :class:`TiledArray` for G+ and one for G-, kept
    (with their factorisations) from read to read."""

    def __init__(self, r_wire, tile_size=0):
        self.r_wire, self.tile_size = _resistance(r_wire), tile_size
        self._arrays = {}

    @property
    def factorizations(self):
        """Factorisations made so far, every array."""
        return sum(a.factorizations for pair in self._arrays.values() for a in pair)

    def transfer(self, key, g):
        """``(T+, T-)``: the transfer matrices of the pair ``g`` ``(2, rows, cols)`` (µS) of
        ``key`` (a bias: ``(2, 1, n)``, one row driven at 1 V)."""
        g = np.asarray(g, dtype=np.float64)
        if g.ndim != 3 or g.shape[0] != 2:
            raise ArgumentError("WireReader.transfer(%r): expected a pair of matrices "
                                "(2, rows, cols), got shape %s" % (key, g.shape))
        pair = self._arrays.get(key)
        if pair is None or pair[0].shape != g.shape[1:]:
            pair = self._arrays[key] = tuple(TiledArray(g.shape[1:], self.r_wire,
                                                        self.tile_size) for _ in range(2))
        out = []
        for a, gi in zip(pair, g):
            a.set_conductances(gi)
            out.append(a.transfer())
        return out[0], out[1]


__all__ = ["WireArray", "TiledArray", "WireReader", "MICRO"]
