"""Populations and projections on a networkx graph, with their parameters.

A :class:`Network` is the single model description every engine reads (docs/maths.md section 1).
Nodes are populations with attributes ``size`` and ``role`` ("input", "hidden", "output");
edges ``a -> b`` are projections with a weight matrix ``W:a->b`` of shape ``(n_a, n_b)``.
Every non-input population ``p`` has a bias ``b:p``.

* ``energy`` dynamics: one matrix per edge, used in both directions (tied weights).
  A self-loop ``a -> a`` is a symmetric lateral matrix with zero diagonal.
* ``vector_field`` dynamics: separate matrices per direction; an edge ``a -> b`` between two
  non-input populations gets ``W:a->b`` (a drives b) and ``W:b->a`` (b drives a).

``readout="softmax"`` (energy dynamics; Laborieux et al. 2021, docs/maths.md 12) takes the
output populations out of the dynamics: each is the prediction
``softmax(sum rho(s_q) W:q->out + b:out)`` of the hidden populations that project to it, its
cost the cross-entropy. ``state_pops`` then lists the hidden populations only, and the
projections into an output (``readout_terms``) act in the nudge alone.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np
from . import checks
from .conv import Conv
from .errors import NeurosimError

ACTIVATIONS = ("hard_sigmoid", "logistic")
DYNAMICS = ("energy", "vector_field")
ROLES = ("input", "hidden", "output")
READOUTS = ("state", "softmax")
DTYPES = {"float64": np.float64, "float32": np.float32}


class NetworkError(NeurosimError, ValueError):
    """A network description, or the data given to it, is invalid."""


@dataclass(frozen=True)
class Term:
    """One product that drives population ``target``: ``rho(source) @ M`` where
    ``M = params[key]`` (or its transpose); ``lateral`` marks a tied self-projection. A
    convolutional projection carries its geometry in ``conv`` (:class:`neurosim.conv.Conv`):
    the product is then its convolution (``transpose``: the adjoint, the feedback;
    ``max_pooled``: the products need the switches of the convolution's source)."""

    target: str
    source: str
    key: str
    transpose: bool
    lateral: bool = False
    conv: Conv | None = None

    @property
    def max_pooled(self):
        """A max-pooled convolution (its products depend on the switches)."""
        return self.conv is not None and self.conv.max_pools

    @property
    def conv_source(self):
        """The population whose convolution is pooled: the projection's source (the
        feedback term's target)."""
        return self.target if self.transpose else self.source


def _dtype(dtype):
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise NetworkError("dtype must be one of %s, got %r" % (sorted(DTYPES), dtype))
        return np.dtype(DTYPES[dtype])
    d = np.dtype(dtype)
    if d not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise NetworkError("dtype must be float64 or float32, got %s" % d)
    return d


def _check_graph(g, dynamics):
    if not isinstance(g, nx.DiGraph):
        raise NetworkError("graph must be a networkx.DiGraph, got %s" % type(g).__name__)
    if g.number_of_nodes() == 0:
        raise NetworkError("graph has no populations")
    names = {}
    for n, attrs in g.nodes(data=True):
        if "->" in str(n) or ":" in str(n):
            raise NetworkError("population name %r may not contain '->' or ':'" % (n,))
        if str(n) in names:
            raise NetworkError("populations %r and %r have the same name as a string (%r); "
                               "parameter keys could not tell them apart" % (names[str(n)], n, str(n)))
        names[str(n)] = n
        if "size" not in attrs:
            raise NetworkError("population %r has no 'size' attribute (a positive integer)" % (n,))
        size = attrs["size"]
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise NetworkError("population %r: size must be a positive integer, got %r" % (n, size))
        if "role" not in attrs:
            raise NetworkError("population %r has no 'role' attribute (one of %s)" % (n, ROLES))
        role = attrs["role"]
        if not isinstance(role, str) or role not in ROLES:
            raise NetworkError("population %r: role must be one of %s, got %r" % (n, ROLES, role))
    inputs = [n for n in g.nodes if g.nodes[n]["role"] == "input"]
    outputs = [n for n in g.nodes if g.nodes[n]["role"] == "output"]
    if not inputs:
        raise NetworkError("graph has no input population (a node with role='input')")
    if not outputs:
        raise NetworkError("graph has no output population (a node with role='output')")
    for i in inputs:
        preds = list(g.predecessors(i))
        for p in preds:   # a cycle through i exists iff some predecessor is reachable from i
            if nx.has_path(g, i, p):
                path = " -> ".join(str(c) for c in nx.shortest_path(g, i, p) + [i])
                raise NetworkError("cycle through input population %r: %s; inputs are clamped to "
                                   "data and cannot be part of a cycle" % (i, path))
        if preds:
            raise NetworkError("input population %r has incoming projections from %s; inputs are "
                               "clamped to data and receive nothing" % (i, preds))
    for n in g.nodes:
        if g.nodes[n]["role"] != "input" and g.degree(n) - (2 if g.has_edge(n, n) else 0) == 0:
            raise NetworkError("population %r is not connected to any other population" % (n,))
    for comp in nx.weakly_connected_components(g):
        if not any(g.nodes[n]["role"] == "input" for n in comp):
            raise NetworkError("populations %s are not connected to any input population (not "
                               "even through other populations), so the data cannot reach them"
                               % sorted(comp, key=str))
    if dynamics == "energy":
        for a, b in g.edges:
            if a != b and g.has_edge(b, a) and str(a) < str(b):
                raise NetworkError("projections %r and %r both exist; in energy dynamics a "
                                   "projection already acts in both directions (tied weights): "
                                   "keep one" % ("%s->%s" % (a, b), "%s->%s" % (b, a)))
    return inputs, outputs


CONV_FIELDS = ("kernel", "stride", "padding", "pool", "pooling")


def _shape(g, n):
    """A population's ``(channels, height, width)`` shape, or None (a flat population)."""
    shape = g.nodes[n].get("shape")
    if shape is None:
        return None
    try:
        shape = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise NetworkError("population %r: shape must be (channels, height, width) of positive "
                           "integers, got %r" % (n, g.nodes[n]["shape"]))
    if int(np.prod(shape)) != int(g.nodes[n]["size"]):
        raise NetworkError("population %r: shape %s has %d units but size is %d"
                           % (n, shape, int(np.prod(shape)), g.nodes[n]["size"]))
    return shape


def _edge_gain(g, a, b):
    """The ``gain`` attribute of edge ``a -> b`` (1 when absent), checked."""
    return checks.positive("projection %s->%s: gain" % (a, b), g.edges[a, b].get("gain", 1.0),
                           error=NetworkError)


def conv_geometry(g, a, b, dynamics="energy"):
    """The :class:`Conv` of the projection ``a -> b`` (its edge has a ``kernel``), or None
    for a dense projection; errors name the projection and the field."""
    attrs = g.edges[a, b]
    if "kernel" not in attrs:
        extra = [f for f in CONV_FIELDS if f in attrs]
        if extra:
            raise NetworkError("projection %s->%s has %s but no 'kernel': give the kernel size "
                               "of a convolution" % (a, b, extra))
        return None
    where = "convolutional projection %s->%s" % (a, b)
    if a == b:
        raise NetworkError("%s: a population cannot convolve onto itself (lateral projections "
                           "are dense)" % where)
    if dynamics != "energy":
        raise NetworkError("%s needs energy dynamics (tied kernels)" % where)
    src, tgt = _shape(g, a), _shape(g, b)
    if src is None or tgt is None:
        raise NetworkError("%s: both populations need a shape (channels, height, width); %r "
                           "has none" % (where, a if src is None else b))
    try:
        conv = Conv(src, tgt[0], attrs["kernel"], attrs.get("stride", 1), attrs.get("padding", 0),
                    attrs.get("pool", 1), attrs.get("pooling", "average"))
    except ValueError as e:
        raise NetworkError("%s: %s" % (where, e)) from None
    if conv.out_shape != tgt:
        raise NetworkError("%s: kernel %d, stride %d, padding %d and pool %d map %s to %s, but "
                           "%r has shape %s" % (where, conv.kernel, conv.stride, conv.padding,
                                                conv.pool, src, conv.out_shape, b, tgt))
    return conv


def _check_choices(activation, dynamics, readout="state"):
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise NetworkError("activation must be one of %s, got %r" % (ACTIVATIONS, activation))
    if not isinstance(dynamics, str) or dynamics not in DYNAMICS:
        raise NetworkError("dynamics must be one of %s, got %r" % (DYNAMICS, dynamics))
    if not isinstance(readout, str) or readout not in READOUTS:
        raise NetworkError("readout must be one of %s, got %r" % (READOUTS, readout))
    if readout == "softmax" and dynamics != "energy":
        raise NetworkError("readout 'softmax' needs energy dynamics (the readout sits outside "
                           "the dynamics of an energy; this network is %r)" % dynamics)


def _check_readout(g, outputs):
    """A softmax output only reads hidden populations: no projection leaves it, none comes
    from an input (its prediction is a function of the hidden state alone) or itself."""
    for o in outputs:
        if g.out_degree(o):
            raise NetworkError("readout 'softmax': output population %r has outgoing projections "
                               "to %s; a softmax readout only receives"
                               % (o, sorted(map(str, g.successors(o)))))
        bad = [str(q) for q in g.predecessors(o) if g.nodes[q]["role"] != "hidden"]
        if bad:
            raise NetworkError("readout 'softmax': output population %r receives from %s; a "
                               "softmax readout reads hidden populations only" % (o, bad))


def _check_lateral(key, w, symmetric=True):
    """A lateral matrix has a zero diagonal (no self-excitation; the learning rules keep it
    zero); in energy mode it is also symmetric (docs/maths.md 1)."""
    scale = max(1.0, float(np.max(np.abs(w))))
    asym = float(np.max(np.abs(w - w.T)))
    if symmetric and asym > 1e-6 * scale:
        raise NetworkError("params[%r] is a lateral (self) projection and must be symmetric in "
                           "energy dynamics; max |W - W^T| = %.3g" % (key, asym))
    diag = float(np.max(np.abs(np.diag(w))))
    if diag > 1e-6 * scale:
        raise NetworkError("params[%r] is a lateral (self) projection and must have a zero "
                           "diagonal; max |diag| = %.3g" % (key, diag))


class Network:
    """A fixed-point network: topology (``graph``), parameters (``params``) and model choices.

    Build one with :func:`layered` or :meth:`Network.from_graph`.
    """

    def __init__(self, graph, params, activation="logistic", dynamics="energy", dtype="float64",
                 readout="state"):
        _check_choices(activation, dynamics, readout)
        self.inputs, self.outputs = _check_graph(graph, dynamics)
        if readout == "softmax":
            _check_readout(graph, self.outputs)
        if not isinstance(params, Mapping):
            raise NetworkError("params must be a dict of parameter key -> array, got %s"
                               % type(params).__name__)
        self.graph = graph
        self.activation = activation
        self.dynamics = dynamics
        self.dtype = _dtype(dtype)
        self.readout = readout
        dynamic = ("hidden",) if readout == "softmax" else ("hidden", "output")
        self.state_pops = [n for n in graph.nodes if graph.nodes[n]["role"] in dynamic]
        self.sizes = {n: int(graph.nodes[n]["size"]) for n in graph.nodes}
        self.shapes = {n: _shape(graph, n) for n in graph.nodes}
        self.convs = {"W:%s->%s" % (a, b): c for a, b in graph.edges
                      for c in [conv_geometry(graph, a, b, dynamics)] if c is not None}
        terms = self._terms()
        self.terms = [t for t in terms if t.target in self.state_pops and
                      (t.source in self.state_pops or t.source in self.inputs)]
        self.readout_terms = [t for t in terms if t.target in self.outputs and
                              t.target not in self.state_pops]
        for t in self.readout_terms:
            if t.conv is not None:
                raise NetworkError("readout 'softmax': projection %s is convolutional; a "
                                   "softmax readout is dense" % t.key[2:])
        expected = {t.key: self._key_shape(t.key) for t in terms}
        expected.update({"b:%s" % p: (self.sizes[p],) for p in graph.nodes
                         if graph.nodes[p]["role"] != "input"})
        self.params = {}
        for key, shape in expected.items():
            if key not in params:
                raise NetworkError("params is missing %r (shape %s)" % (key, shape))
            try:
                v = np.array(params[key], dtype=self.dtype)
            except (TypeError, ValueError) as exc:
                raise NetworkError("params[%r] must be a numeric array of shape %s (%s)"
                                   % (key, shape, exc)) from None
            if v.shape != shape:
                raise NetworkError("params[%r] must have shape %s, got %s" % (key, shape, v.shape))
            if not np.all(np.isfinite(v)):
                raise NetworkError("params[%r] contains NaN or inf (%d entries)"
                                   % (key, int(np.sum(~np.isfinite(v)))))
            self.params[key] = v
        extra = set(params) - set(expected)
        if extra:
            raise NetworkError("params has keys that match no projection or population: %s"
                               % sorted(extra, key=str))
        for t in self.terms:
            if t.source == t.target:
                _check_lateral(t.key, self.params[t.key], symmetric=dynamics == "energy")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_graph(cls, g, activation="logistic", dynamics="energy", seed=0, dtype="float64",
                   gain=1.0, asymmetry=0.0, readout="state"):
        """Build a network on any topology with seeded Glorot-uniform weights, zero biases.

        ``gain`` scales every weight, and an edge's own ``gain`` attribute its projection's
        too (a strong coupling between two hidden populations makes the energy non-convex
        and the phases settle slowly); in ``vector_field`` dynamics the backward matrix starts
        as the transpose of the forward one plus ``asymmetry`` times an independent
        Glorot-uniform matrix (0: tied weights, where vector-field EP is exact).
        """
        _check_choices(activation, dynamics, readout)
        _dtype(dtype)
        for name, val in (("gain", gain), ("asymmetry", asymmetry)):
            if isinstance(val, bool) or not isinstance(val, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(val):
                raise NetworkError("%s must be a finite number, got %r" % (name, val))
        _check_graph(g, dynamics)
        rng = np.random.default_rng(seed)
        sizes = {n: int(g.nodes[n]["size"]) for n in g.nodes}

        def glorot(n_in, n_out, scale):
            a = scale * np.sqrt(6.0 / (n_in + n_out))
            return rng.uniform(-a, a, (n_in, n_out))

        params = {}
        for a, b in g.edges:
            conv = conv_geometry(g, a, b, dynamics)
            scale = gain * _edge_gain(g, a, b)
            if conv is not None:   # fans of a kernel: C k k in, O k k out
                O, C, k, _ = conv.kernel_shape
                lim = scale * np.sqrt(6.0 / ((C + O) * k * k))
                params["W:%s->%s" % (a, b)] = rng.uniform(-lim, lim, conv.kernel_shape)
                continue
            w = glorot(sizes[a], sizes[b], scale)
            if a == b:
                w = 0.5 * (w + w.T)
                np.fill_diagonal(w, 0.0)
            if dynamics == "vector_field" and g.has_edge(b, a) and "W:%s->%s" % (a, b) in params:
                continue
            params["W:%s->%s" % (a, b)] = w
            if dynamics == "vector_field" and g.nodes[a]["role"] != "input":
                noise = glorot(sizes[a], sizes[b], scale)
                if a == b:
                    noise = noise - np.diag(np.diag(noise))
                    params["W:%s->%s" % (a, b)] = w + asymmetry * noise
                else:
                    params["W:%s->%s" % (b, a)] = (w + asymmetry * noise).T.copy()
        for p in g.nodes:
            if g.nodes[p]["role"] != "input":
                params["b:%s" % p] = np.zeros(sizes[p])
        return cls(g, params, activation=activation, dynamics=dynamics, dtype=dtype,
                   readout=readout)

    def _key_shape(self, key):
        if key in self.convs:
            return self.convs[key].kernel_shape
        a, b = key[2:].split("->")
        a, b = self._node(a), self._node(b)
        return (self.sizes[a], self.sizes[b])

    def _node(self, name):
        for n in self.graph.nodes:
            if str(n) == name:
                return n
        raise KeyError(name)

    def _terms(self):
        """The matrix products that drive each non-input population (see :class:`Term`)."""
        g, terms = self.graph, []
        for a, b in g.edges:
            key = "W:%s->%s" % (a, b)
            if a == b:
                terms.append(Term(a, a, key, False, lateral=self.dynamics == "energy"))
                continue
            conv = self.convs.get(key)
            terms.append(Term(b, a, key, False, conv=conv))
            if g.nodes[a]["role"] == "input":
                continue
            if self.dynamics == "energy":
                terms.append(Term(a, b, key, True, conv=conv))
            elif not g.has_edge(b, a):
                terms.append(Term(a, b, "W:%s->%s" % (b, a), False))
        return terms

    # -- conveniences -------------------------------------------------------------------
    @property
    def projections(self):
        """Parameter keys of the weight matrices, in a stable order."""
        return [k for k in self.params if k.startswith("W:")]

    @property
    def biased_pops(self):
        """Every population with a bias ``b:p``: the state populations and, with a softmax
        readout, the outputs."""
        return [n for n in self.graph.nodes if self.graph.nodes[n]["role"] != "input"]

    @property
    def n_state(self):
        """Number of state units per example (the populations in ``state_pops``)."""
        return sum(self.sizes[p] for p in self.state_pops)

    def copy(self, params=None, dtype=None):
        """A copy, optionally with other parameters or another dtype."""
        return Network(copy.deepcopy(self.graph), params if params is not None else self.params,
                       activation=self.activation, dynamics=self.dynamics,
                       dtype=dtype if dtype is not None else self.dtype, readout=self.readout)

    def zero_params(self):
        """A dict of zero arrays with the keys and shapes of ``params``."""
        return {k: np.zeros_like(v) for k, v in self.params.items()}

    def inputs_dict(self, x, name="x"):
        """Validate ``x`` ((batch, n_in) array, or a dict for several inputs) -> dict."""
        if not isinstance(x, dict):
            if len(self.inputs) != 1:
                raise NetworkError("%s must be a dict over the input populations %s"
                                   % (name, self.inputs))
            x = {self.inputs[0]: x}
        missing = set(self.inputs) - set(x)
        if missing:
            raise NetworkError("%s is missing input population(s) %s" % (name, sorted(missing)))
        out, batch = {}, None
        for p in self.inputs:
            label = name if len(self.inputs) == 1 else "%s[%r]" % (name, p)
            out[p] = self._array(x[p], label, self.sizes[p], batch)
            batch = out[p].shape[0]
        extra = set(x) - set(self.inputs)
        if extra:
            raise NetworkError("%s has populations that are not inputs: %s" % (name, sorted(extra)))
        return out

    def targets_dict(self, y, batch, name="y"):
        """Validate ``y`` ((batch, n_out) array, or a dict for several outputs) -> dict."""
        if not isinstance(y, dict):
            if len(self.outputs) != 1:
                raise NetworkError("%s must be a dict over the output populations %s"
                                   % (name, self.outputs))
            y = {self.outputs[0]: y}
        missing = set(self.outputs) - set(y)
        if missing:
            raise NetworkError("%s is missing output population(s) %s" % (name, sorted(missing)))
        return {p: self._array(y[p], name if len(self.outputs) == 1 else "%s[%r]" % (name, p),
                               self.sizes[p], batch) for p in self.outputs}

    def _array(self, v, label, n, batch):
        want = "(%s, %d)" % ("batch" if batch is None else batch, n)
        if v is None:
            raise NetworkError("%s is required: an array of shape %s, got None" % (label, want))
        try:
            v = np.asarray(v)
        except (TypeError, ValueError) as exc:
            raise NetworkError("%s must be a numeric array of shape %s (%s)"
                               % (label, want, exc)) from None
        if v.ndim == 1 and v.shape[0] == n and batch in (None, 1):
            raise NetworkError("%s must have shape %s; got a 1-d array of length %d: "
                               "use %s[None, :] for a single example" % (label, want, n, label))
        if v.ndim != 2 or v.shape[1] != n or (batch is not None and v.shape[0] != batch):
            why = ""
            if v.ndim == 2 and v.shape[1] == n and batch is not None:
                why = " (the batch size must match the inputs' %d examples)" % batch
            raise NetworkError("%s must have shape %s, got %s%s" % (label, want, v.shape, why))
        if v.shape[0] == 0:
            raise NetworkError("%s is empty (batch of 0 examples)" % label)
        if v.dtype == np.bool_:
            v = v.astype(self.dtype)
        if not np.issubdtype(v.dtype, np.number) or np.issubdtype(v.dtype, np.complexfloating):
            raise NetworkError("%s must be a real numeric array, got dtype %s" % (label, v.dtype))
        bad = ~np.isfinite(v)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise NetworkError("%s contains NaN or inf (%d entries; the first at [%d, %d] is %r)"
                               % (label, int(bad.sum()), i, j, float(v[i, j])))
        return np.ascontiguousarray(v, dtype=self.dtype)

    def zero_state(self, batch):
        """The default initial state: zeros for every non-input population."""
        return {p: np.zeros((batch, self.sizes[p]), dtype=self.dtype) for p in self.state_pops}

    def check_state(self, state, batch, name="state"):
        """Validate a state dict (warm start) -> a fresh copy in the network's dtype."""
        if not isinstance(state, dict):
            raise NetworkError("%s must be a dict population -> (batch, n) array" % name)
        out = {}
        for p in self.state_pops:
            if p not in state:
                raise NetworkError("%s is missing population %r" % (name, p))
            out[p] = self._array(state[p], "%s[%r]" % (name, p), self.sizes[p], batch).copy()
        return out

    def __repr__(self):
        pops = ", ".join("%s:%d(%s)" % (n, self.sizes[n], self.graph.nodes[n]["role"])
                         for n in self.graph.nodes)
        readout = "" if self.readout == "state" else ", softmax readout"
        return "Network(%s; %s, %s, %s%s)" % (pops, self.activation, self.dynamics, self.dtype,
                                               readout)


def layered(sizes, activation="logistic", dynamics="energy", seed=0, dtype="float64", gain=1.0,
            asymmetry=0.0, skip=(), names=None, readout="state"):
    """A layered network with ``len(sizes)`` populations, the input first and the output last.

    ``readout="softmax"``: the last layer is a softmax readout of the one before it (see the
    module docstring).
    Populations are named ``x``, ``h1``, ``h2``, ..., ``y`` unless ``names`` is given;
    ``skip`` lists extra projections as ``(i, j)`` layer-index pairs (e.g. ``[(0, 2)]``).
    """
    try:
        sizes = None if isinstance(sizes, (str, bytes, dict)) else list(sizes)
    except TypeError:
        sizes = None
    if not sizes or len(sizes) < 2:
        raise NetworkError("sizes must list at least two layer sizes (input and output), got %r"
                           % (sizes,))
    if names is None:
        names = ["x"] + ["h%d" % i for i in range(1, len(sizes) - 1)] + ["y"]
    names = list(names)
    if len(names) != len(sizes):
        raise NetworkError("names must have one entry per layer (%d), got %d"
                           % (len(sizes), len(names)))
    dup = sorted({str(n) for n in names if [str(m) for m in names].count(str(n)) > 1})
    if dup:
        raise NetworkError("names must be distinct, got %s more than once" % dup)
    pairs = []
    for pair in skip:
        try:
            i, j = pair
            ok = all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in (i, j))
        except (TypeError, ValueError):
            ok = False
        if not ok or not (0 <= i < len(sizes) and 0 <= j < len(sizes)) or j <= i:
            raise NetworkError("skip entry %r must be a pair (i, j) of layer indices with "
                               "0 <= i < j < %d" % (pair, len(sizes)))
        pairs.append((int(i), int(j)))
    g = nx.DiGraph()
    for i, (name, n) in enumerate(zip(names, sizes)):
        role = "input" if i == 0 else "output" if i == len(sizes) - 1 else "hidden"
        g.add_node(name, size=n, role=role)
    for i in range(len(sizes) - 1):
        g.add_edge(names[i], names[i + 1])
    for i, j in pairs:
        g.add_edge(names[i], names[j])
    return Network.from_graph(g, activation=activation, dynamics=dynamics, seed=seed, dtype=dtype,
                              gain=gain, asymmetry=asymmetry, readout=readout)
