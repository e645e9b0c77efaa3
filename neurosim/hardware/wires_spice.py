"""SPICE for crossbar arrays with wire resistance: one array of :class:`~neurosim.hardware.
wires.WireArray` (devices ``G`` in µS, ``r_wire`` ohms per wire segment) driven by row
voltages as an ngspice netlist, and the check of its column currents against neurosim's
nodal solve (:func:`check_array`).

The netlist is the circuit of the wires' module docstring: a driver source at the left end
of each row wire, a segment resistor between neighbouring crosspoints of a wire and between
a wire's end crosspoint and its terminal, a resistor ``1 / G`` per device from its row node
to its column node, and at the bottom of each column a 0 V source standing for the sense
amplifier's virtual ground, whose branch current is the column's output."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ArgumentError
from ..resistive.spice import run_ngspice
from .wires import MICRO, WireArray


def array_netlist(g, r_wire, v, title="neurosim crossbar array with wire resistance"):
    """The ngspice netlist (text) of devices ``g`` (µS, ``(rows, cols)``), segments of
    ``r_wire`` ohms (> 0) and row-driver voltages ``v`` ``(rows,)``."""
    g = np.asarray(g, np.float64)
    v = np.asarray(v, np.float64).ravel()
    if g.ndim != 2 or v.size != g.shape[0]:
        raise ArgumentError("array_netlist: g must be (rows, cols) and v (rows,), got %s and %s"
                            % (g.shape, v.shape))
    if not r_wire > 0:
        raise ArgumentError("array_netlist: r_wire must be > 0 ohms, got %r" % (r_wire,))
    rows, cols = g.shape
    lines = ["* %s, %d x %d devices, %g ohm per segment" % (title, rows, cols, r_wire),
             ".options TEMP=27 TNOM=27 RELTOL=1e-12 VNTOL=1e-15 ABSTOL=1e-18"]
    k = 0

    def r(a, b, ohms):
        nonlocal k
        lines.append("R%d %s %s %.17g" % (k, a, b, ohms))
        k += 1

    for i in range(rows):
        lines.append("Vdrv%d drv%d 0 DC %.17g" % (i, i, v[i]))
        r("drv%d" % i, "r%d_0" % i, r_wire)
        for j in range(cols - 1):
            r("r%d_%d" % (i, j), "r%d_%d" % (i, j + 1), r_wire)
    for j in range(cols):
        for i in range(rows - 1):
            r("c%d_%d" % (i, j), "c%d_%d" % (i + 1, j), r_wire)
        r("c%d_%d" % (rows - 1, j), "sense%d" % j, r_wire)
        lines.append("Vsense%d sense%d 0 DC 0" % (j, j))
    for i in range(rows):
        for j in range(cols):
            if g[i, j] > 0:
                r("r%d_%d" % (i, j), "c%d_%d" % (i, j), MICRO / g[i, j])
    lines += [".control", "set numdgt=15", "op", "print all", ".endc", ".end", ""]
    return "\n".join(lines)


@dataclass
class ArrayCheck:
    """ngspice against :class:`WireArray` on one read: the column currents (µA) of both and
    the largest difference relative to the largest current."""

    spice_ua: np.ndarray
    neurosim_ua: np.ndarray
    max_rel: float
    agree: bool


def check_array(g, r_wire, v, rel_tol=1e-6):
    """Solve one forward read of the array in ngspice and with :class:`WireArray`; they agree
    when every column current matches to ``rel_tol`` of the largest."""
    g = np.asarray(g, np.float64)
    out = run_ngspice(array_netlist(g, r_wire, v))
    spice = np.array([1e6 * out["vsense%d#branch" % j] for j in range(g.shape[1])])
    arr = WireArray(g.shape, r_wire)
    arr.set_conductances(g)
    ours = arr.forward(np.asarray(v, np.float64)[None, :])[0]
    rel = float(np.max(np.abs(spice - ours)) / max(np.max(np.abs(ours)), 1e-300))
    return ArrayCheck(spice, ours, rel, rel <= rel_tol)


__all__ = ["array_netlist", "check_array", "ArrayCheck"]
