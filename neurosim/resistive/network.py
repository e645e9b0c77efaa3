"""A layered resistive network (docs/maths.md section 11): node voltages joined by
conductances ``G >= 0``, input voltage sources applied twice (``+x`` and ``-x``, so a
positive conductance from the inverted copy acts as a negative weight), bias sources at
``+v_bias`` and ``-v_bias`` joined to every non-input node, diodes at each hidden node
(ideal, or the Shockley exponential model) -- two bounding it to ``[v_low, v_high]``
(``diodes = "bounded"``), or one to ground (``"split"``: the first half of each hidden layer
excitatory, ``V >= 0``, the second half inhibitory, ``V <= 0``, the deep resistive networks
of Scellier 2024) -- and optional bidirectional amplifiers of voltage gain ``gain`` on the
edges out of every hidden layer.

Parameters, keyed like a rate :class:`~neurosim.network.Network` so that trainers,
optimizers, checkpoints and fidelity work unchanged:

* ``"W:a->b"``: the conductances from layer ``a`` to layer ``b``, shape ``(n_a, n_b)``; for
  the input layer ``(2 n_x, n_b)`` (rows ``0 .. n_x - 1`` from ``+x``, then from ``-x``);
* ``"b:b"``: the conductances of layer ``b``'s nodes to the bias sources, shape ``(2, n_b)``
  (row 0 to ``+v_bias``, row 1 to ``-v_bias``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import ArgumentError
from ..network import Term

DIODES = ("ideal", "shockley")
LAYOUTS = ("bounded", "split")


@dataclass(frozen=True)
class Elements:
    """The circuit elements' values (volts, amperes, siemens).

    ``diodes``: ``"bounded"`` (two diodes per hidden node, to ``v_low`` and ``v_high``) or
    ``"split"`` (one diode to ground per node: the first half of a hidden layer held at
    ``V >= 0``, the second half at ``V <= 0``; ``v_low`` and ``v_high`` unused);
    ``v_low``, ``v_high``: the diode bounds of a hidden node; ``v_bias``: the bias sources;
    ``input_scale``: volts per unit of input ``x``; ``gain``: the voltage gain of the
    amplifier on every edge out of a hidden layer (1: a passive network); ``diode``:
    ``"ideal"`` (a hard bound) or ``"shockley"`` (``i = i_s (exp(v / n_vt) - 1)`` toward each
    bound, ``n_vt`` the ideality factor times the thermal voltage); ``g_unit``: siemens per
    unit of a conductance parameter (the parameters are dimensionless multiples of it; the
    operating point depends on their ratios only, the currents and the power on ``g_unit``);
    ``c_node``: each node's capacitance to ground (farads), which sets the settling time."""

    diode: str = "ideal"
    diodes: str = "bounded"
    v_low: float = 0.0
    v_high: float = 1.0
    v_bias: float = 1.0
    input_scale: float = 1.0
    gain: float = 1.0
    i_s: float = 1e-12
    n_vt: float = 0.025
    g_unit: float = 1e-6
    c_node: float = 1e-13

    def __post_init__(self):
        if self.diode not in DIODES:
            raise ArgumentError("diode must be one of %s, got %r" % (DIODES, self.diode))
        if self.diodes not in LAYOUTS:
            raise ArgumentError("diodes must be one of %s, got %r" % (LAYOUTS, self.diodes))
        for name in ("v_bias", "input_scale", "gain", "i_s", "n_vt", "g_unit", "c_node"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ArgumentError("%s must be a positive number, got %r" % (name, v))
        if not self.v_low < self.v_high:
            raise ArgumentError("v_low (%r) must be below v_high (%r)" % (self.v_low, self.v_high))

    def bounds(self, n):
        """``(low, high)``: the diode bounds of a hidden layer's ``n`` nodes (volts; ``-inf``
        / ``inf`` where a node has no diode on that side)."""
        if self.diodes == "bounded":
            return np.full(n, float(self.v_low)), np.full(n, float(self.v_high))
        half = n // 2 + n % 2
        low, high = np.full(n, -np.inf), np.full(n, np.inf)
        low[:half], high[half:] = 0.0, 0.0
        return low, high

    def n_diodes(self, n):
        """Diodes of a hidden layer of ``n`` nodes."""
        return 2 * n if self.diodes == "bounded" else n


@dataclass
class ResistiveNetwork:
    """A layered resistive network (module docstring). Build with :func:`resistive`."""

    layer_sizes: list
    params: dict
    elements: Elements = field(default_factory=Elements)
    dtype: type = np.float64

    def __post_init__(self):
        try:
            dtype = np.dtype(self.dtype).type
        except TypeError:
            dtype = None
        if dtype not in (np.float64, np.float32):
            raise ArgumentError("dtype must be float64 or float32, got %r" % (self.dtype,))
        self.dtype = dtype
        self.layer_sizes = [int(n) for n in self.layer_sizes]
        if len(self.layer_sizes) < 2 or min(self.layer_sizes) < 1:
            raise ArgumentError("layer_sizes must list at least two positive sizes, got %r"
                                % (self.layer_sizes,))
        L = len(self.layer_sizes)
        self.layers = ["x"] + ["h%d" % i for i in range(1, L - 1)] + ["y"]
        self.inputs, self.outputs = ["x"], ["y"]
        self.state_pops = self.layers[1:]
        self.hidden = self.layers[1:-1]
        self.sizes = dict(zip(self.layers, self.layer_sizes))
        self.terms = [Term(b, a, "W:%s->%s" % (a, b), False)
                      for a, b in zip(self.layers[:-1], self.layers[1:])]
        self.terms += [Term(a, b, "W:%s->%s" % (a, b), True)
                       for a, b in zip(self.layers[1:-1], self.layers[2:])]
        expected = {t.key: self.key_shape(t.key) for t in self.terms}
        expected.update({"b:%s" % p: (2, self.sizes[p]) for p in self.state_pops})
        missing = sorted(set(expected) - set(self.params))
        extra = sorted(set(self.params) - set(expected))
        if missing or extra:
            raise ArgumentError("params: missing %s, unexpected %s" % (missing, extra))
        for k, shape in expected.items():
            v = np.array(self.params[k], dtype=np.float64)
            if v.shape != shape:
                raise ArgumentError("params[%r] must have shape %s, got %s" % (k, shape, v.shape))
            if not np.all(np.isfinite(v)) or np.any(v < 0):
                raise ArgumentError("params[%r]: conductances must be finite and >= 0" % k)
            self.params[k] = v.astype(self.dtype)
        self.params = {k: self.params[k] for k in expected}
        self.dynamics, self.activation = "energy", "resistive"
        self.readout = "state"   # the outputs are node voltages in the network
        self.readout_terms = []
        self.convs = {}   # every conductance matrix is dense
        self.biased_pops = self.state_pops

    def key_shape(self, key):
        a, b = key[2:].split("->")
        rows = 2 * self.sizes[a] if a == "x" else self.sizes[a]
        return (rows, self.sizes[b])

    @property
    def projections(self):
        return [k for k in self.params if k.startswith("W:")]

    @property
    def n_state(self):
        """Nodes whose voltage the circuit solves for, per example."""
        return sum(self.sizes[p] for p in self.state_pops)

    @property
    def n_components(self):
        """Resistors (non-zero conductances) and diodes of the circuit."""
        resistors = sum(int(np.count_nonzero(v)) for v in self.params.values())
        return resistors + sum(self.elements.n_diodes(self.sizes[p]) for p in self.hidden)

    def copy(self, params=None, dtype=None):
        """A copy (other ``params``, or another ``dtype``: e.g. float64 for a ground truth)."""
        return ResistiveNetwork(list(self.layer_sizes),
                                {k: np.array(v) for k, v in (params or self.params).items()},
                                self.elements, dtype or self.dtype)

    def in_float64(self):
        """This network if it is float64, else a float64 copy (for a ground truth or a
        check that needs float64's digits)."""
        return self if self.dtype == np.float64 else self.copy(dtype=np.float64)

    @property
    def tolerance(self):
        """The default KCL tolerance (volts) of an operating point: 1e-10 in float64; in
        float32, whose voltages hold about 7 digits, 1e-6 of the largest source voltage."""
        if self.dtype == np.float64:
            return 1e-10
        return 1e-6 * max(1.0, self.elements.input_scale, self.elements.v_bias)

    def with_elements(self, **changes):
        """A copy with other element values (``Elements`` fields)."""
        net = self.copy()
        net.elements = replace(self.elements, **changes)
        return net

    def bounds(self, layer):
        """The diode bounds ``(low, high)`` of a hidden layer's nodes (:meth:`Elements.bounds`)."""
        low, high = self.elements.bounds(self.sizes[layer])
        return low.astype(self.dtype), high.astype(self.dtype)

    def zero_params(self):
        return {k: np.zeros_like(v) for k, v in self.params.items()}

    def targets_dict(self, y, batch):
        y = np.asarray(y, self.dtype)
        if y.shape != (batch, self.sizes["y"]):
            raise ArgumentError("y must have shape %s, got %s" % ((batch, self.sizes["y"]), y.shape))
        return {"y": y}

    def input_voltages(self, x):
        """The ``+x`` copy's source voltages ``(batch, n_x)``: ``input_scale x``."""
        x = np.asarray(x, self.dtype)
        if x.ndim != 2 or x.shape[1] != self.sizes["x"]:
            raise ArgumentError("x must have shape (batch, %d), got %s"
                                % (self.sizes["x"], x.shape))
        return self.dtype(self.elements.input_scale) * x

    def source_voltages(self, x):
        """The input layer's source voltages ``(batch, 2 n_x)``: ``+x`` then ``-x``, scaled."""
        u = self.input_voltages(x)
        return np.concatenate([u, -u], axis=1)

    def __repr__(self):
        return "ResistiveNetwork(%s, diode=%r, diodes=%r, gain=%g)" % (
            "-".join(map(str, self.layer_sizes)), self.elements.diode, self.elements.diodes,
            self.elements.gain)


def resistive(sizes, seed=0, g_init=None, dtype=np.float64, **elements):
    """A layered resistive network with random conductances: each node's incoming
    conductances drawn uniformly in ``[0, 2 g]`` with ``g = g_init / fan_in`` (default
    ``g_init`` 1: a node's total input conductance about 1 S), the bias conductances alike;
    ``dtype``: float64, or float32 (half the memory traffic; operating points to
    :attr:`ResistiveNetwork.tolerance`)."""
    rng = np.random.default_rng(seed)
    g_init = 1.0 if g_init is None else float(g_init)
    if not g_init > 0:
        raise ArgumentError("g_init must be positive, got %r" % (g_init,))
    sizes = [int(n) for n in sizes]
    layers = ["x"] + ["h%d" % i for i in range(1, len(sizes) - 1)] + ["y"]
    params = {}
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
        rows = 2 * sizes[0] if i == 0 else sizes[i]
        params["W:%s->%s" % (a, b)] = rng.uniform(0, 2 * g_init / rows, (rows, sizes[i + 1]))
    for i, b in enumerate(layers[1:]):
        fan = 2 * sizes[0] if i == 0 else sizes[i]
        params["b:%s" % b] = rng.uniform(0, 2 * g_init / fan, (2, sizes[i + 1]))
    return ResistiveNetwork(sizes, params, Elements(**elements), dtype)


__all__ = ["ResistiveNetwork", "Elements", "resistive", "DIODES", "LAYOUTS"]
