"""SPICE for resistive networks: write a network and one input as an ngspice netlist, run
Debian's ``ngspice`` in batch mode, read its DC operating point back, and compare it with
neurosim's solver (:func:`check`).

The netlist: a voltage source per input copy (``+x``, ``-x``, scaled), the bias sources at
``+-v_bias``, the diode bounds ``v_low`` / ``v_high`` as sources, a resistor ``1 / (G g_unit)``
per non-zero conductance, the Shockley diodes of each hidden node (two to the bound sources,
or for ``diodes = "split"`` one to ground; ``D`` elements with
``IS = i_s``, ``N = n_vt / V_T`` at 27 C, the simulation's ``TEMP`` and ``TNOM``), and for an
amplifier gain ``A`` out of a hidden layer a voltage-controlled voltage source of gain ``A``
feeding the outgoing resistors through a 0 V sense source and a current-controlled current
source drawing ``A`` times that current from the node (the bidirectional amplifier of
docs/maths.md section 11). Ideal diodes have no SPICE element: an ideal network is exported
with Shockley diodes, so its voltages agree with neurosim's ideal solution only within the
diodes' forward drop.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

from ..errors import NeurosimError
from .solver import operating_point

#: Boltzmann's constant over the elementary charge as ngspice uses them, and 27 C in kelvin:
#: the thermal voltage that turns ``n_vt`` into the diode model's emission coefficient ``N``.
K_BOLTZMANN, Q_ELECTRON, T_KELVIN = 1.38064852e-23, 1.6021766208e-19, 300.15
V_T = K_BOLTZMANN * T_KELVIN / Q_ELECTRON


class SpiceError(NeurosimError, RuntimeError):
    """ngspice is missing, failed, or printed something unreadable (the message says which)."""


def node_name(layer, j):
    return "n%s_%d" % (layer, j)


def netlist(net, x, title="neurosim resistive network"):
    """The ngspice netlist (text) of ``net`` with one input ``x`` (shape ``(n_x,)``); its
    control block prints every node voltage to 14 digits."""
    el = net.elements
    x = np.asarray(x, np.float64).reshape(1, -1)
    src = net.source_voltages(x)[0]
    lines = ["* %s %s, %d components" % (title, "-".join(map(str, net.layer_sizes)),
                                         net.n_components),
             ".options TEMP=27 TNOM=27 RELTOL=1e-12 VNTOL=1e-14 ABSTOL=1e-18 GMIN=1e-20 ITL1=1000"]
    for i, v in enumerate(src):
        lines.append("Vx%d nx_%d 0 DC %.17g" % (i, i, v))
    lines += ["Vbp nbias_p 0 DC %.17g" % el.v_bias, "Vbn nbias_n 0 DC %.17g" % -el.v_bias]
    if el.diodes == "bounded":
        lines += ["Vlow nlow 0 DC %.17g" % el.v_low, "Vhigh nhigh 0 DC %.17g" % el.v_high]
    count = 0

    def resistor(a, b, g):
        nonlocal count
        if g > 0:
            lines.append("R%d %s %s %.17g" % (count, a, b, 1.0 / (g * el.g_unit)))
            count += 1

    for t in net.terms:
        if t.transpose:
            continue
        G = net.params[t.key]
        for i in range(G.shape[0]):
            if t.source == "x":
                a = "nx_%d" % i
            elif el.gain != 1.0:
                a = "namp_%s_%d" % (t.source, i)
            else:
                a = node_name(t.source, i)
            for j in range(G.shape[1]):
                resistor(a, node_name(t.target, j), G[i, j])
    for p in net.state_pops:
        Gb = net.params["b:%s" % p]
        for j in range(net.sizes[p]):
            resistor("nbias_p", node_name(p, j), Gb[0, j])
            resistor("nbias_n", node_name(p, j), Gb[1, j])
    low_node, high_node = ("nlow", "nhigh") if el.diodes == "bounded" else ("0", "0")
    for p in net.hidden:
        low, high = net.bounds(p)
        for j in range(net.sizes[p]):
            n = node_name(p, j)
            if np.isfinite(low[j]):
                lines.append("Dlow_%s_%d %s %s DMOD" % (p, j, low_node, n))
            if np.isfinite(high[j]):
                lines.append("Dhigh_%s_%d %s %s DMOD" % (p, j, n, high_node))
            if el.gain != 1.0:
                lines += ["Eamp_%s_%d nampx_%s_%d 0 %s 0 %.17g" % (p, j, p, j, n, el.gain),
                          "Vsense_%s_%d nampx_%s_%d namp_%s_%d DC 0" % (p, j, p, j, p, j),
                          "Famp_%s_%d %s 0 Vsense_%s_%d %.17g" % (p, j, n, p, j, el.gain)]
    lines.append(".model DMOD D(IS=%.17g N=%.17g)" % (el.i_s, el.n_vt / V_T))
    lines += [".control", "set numdgt=15", "op", "print all", ".endc", ".end", ""]
    return "\n".join(lines)


def read_conductances(text, net):
    """The conductance parameters written in a netlist of :func:`netlist` for ``net``'s
    shape (the round trip of the export): each resistor's ``1 / (R g_unit)`` at the place
    its two nodes name; conductances without a resistor are 0."""
    el = net.elements
    params = {k: np.zeros_like(v) for k, v in net.params.items()}
    nx = net.sizes["x"]
    for line in text.splitlines():
        if not line.startswith("R"):
            continue
        _, a, b, r = line.split()
        g = 1.0 / (float(r) * el.g_unit)
        layer_b, j = b[1:].rsplit("_", 1)
        j = int(j)
        if a.startswith("nbias_"):
            params["b:%s" % layer_b][0 if a == "nbias_p" else 1, j] = g
            continue
        if a.startswith("nx_"):
            src, i = "x", int(a[3:])
            if i >= 2 * nx:
                raise SpiceError("resistor from unknown source %s" % a)
        else:
            src, i = a[5:].rsplit("_", 1) if a.startswith("namp_") else a[1:].rsplit("_", 1)
            i = int(i)
        params["W:%s->%s" % (src, layer_b)][i, j] = g
    return params


def find_ngspice():
    """The ngspice executable, or a :class:`SpiceError` saying how to install it."""
    exe = shutil.which("ngspice")
    if exe is None:
        raise SpiceError("ngspice was not found on PATH: install it (Debian/Ubuntu: apt-get "
                         "install ngspice) to run the SPICE check")
    return exe


def run_ngspice(text, timeout=600):
    """Run ``text`` in ``ngspice -b``; returns ``{name: value}`` of every node voltage (volts)
    and every voltage source's branch current (``"<source>#branch"``, amperes, positive into
    its + terminal)."""
    exe = find_ngspice()
    with tempfile.TemporaryDirectory(prefix="neurosim-spice-") as d:
        path = os.path.join(d, "circuit.cir")
        with open(path, "w") as f:
            f.write(text)
        try:
            r = subprocess.run([exe, "-b", path], capture_output=True, text=True,
                               timeout=timeout, cwd=d)
        except subprocess.TimeoutExpired:
            raise SpiceError("ngspice did not finish within %d s" % timeout) from None
    out = {}
    for line in r.stdout.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            try:
                out[name.strip()] = float(value)
            except ValueError:
                continue
    # in batch mode ngspice exits 1 after a control block ("no simulations run" for the
    # netlist itself): what decides is whether the operating point was printed
    if not out or "error" in r.stdout.lower():
        raise SpiceError("ngspice failed (exit %d) or printed no node voltages: %s"
                         % (r.returncode, (r.stdout + r.stderr)[-800:]))
    return out


@dataclass
class SpiceCheck:
    """ngspice against neurosim on one input: the largest absolute and relative voltage
    differences over the state nodes, the tolerance applied, and whether they agree."""

    max_abs: float
    max_rel: float
    tolerance: float
    criterion: str
    agree: bool
    components: int
    nodes: int

    def as_dict(self):
        return dict(self.__dict__)


def check(net, x, rel_tol=1e-6):
    """Solve ``net`` on the input ``x`` in ngspice and in neurosim and compare the node
    voltages. Shockley diodes: they agree when every voltage matches to ``rel_tol`` relative
    (of the largest voltage in the circuit). Ideal diodes (exported as Shockley diodes):
    when every voltage is within the diodes' forward drop at the largest current, ``n_vt
    ln(1 + i_max / i_s)``."""
    x = np.asarray(x, np.float64).reshape(1, -1)
    net = net.in_float64()                  # both sides see the same exact sources
    spice = run_ngspice(netlist(net, x[0]))
    scale = max(1.0, float(np.max(np.abs(net.source_voltages(x)))))
    # the solver's own tolerance, far below the comparison's: 1e-13 of the largest source
    fp = operating_point(net, x, tol=1e-13 * scale)
    ours = np.concatenate([fp.state[p][0] for p in net.state_pops])
    names = [node_name(p, j) for p in net.state_pops for j in range(net.sizes[p])]
    missing = [n for n in names if n not in spice]
    if missing:
        raise SpiceError("ngspice printed no voltage for %d nodes (e.g. %s)"
                         % (len(missing), missing[:3]))
    theirs = np.array([spice[n] for n in names])
    diff = np.abs(theirs - ours)
    el = net.elements
    if el.diode == "shockley":
        tol, criterion = rel_tol * scale, "relative %g of %g V" % (rel_tol, scale)
    else:
        total_g = max(float(np.sum(v)) for v in net.params.values())
        i_max = total_g * el.g_unit * 2 * scale
        tol = el.n_vt * np.log1p(i_max / el.i_s)
        criterion = "within the diodes' forward drop %.3g V" % tol
    return SpiceCheck(float(diff.max()), float(diff.max() / scale), float(tol), criterion,
                      bool(diff.max() <= tol), net.n_components, len(names))


__all__ = ["netlist", "read_conductances", "run_ngspice", "check", "find_ngspice", "SpiceCheck", "SpiceError",
           "V_T", "node_name"]
