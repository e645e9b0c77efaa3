"""Export a spiking circuit to the Neuromorphic Intermediate Representation (NIR, PyPI ``nir``),
so other spiking frameworks can load its neurons and weights, and read such a file back.

Needs the optional dependency ``nir`` (``pip install "neurosim[nir]"``).

The mapping (:func:`to_nir`), for a :class:`~neurosim.brian.spiking.SpikingCircuit` or a
:class:`~neurosim.network.Network` compiled with the spiking defaults:

* **Input populations** -> one ``nir.Input`` node each, named after the population, of shape
  ``(n,)``. In neurosim an input unit fires at ``x * max_rate``; the node receives those spike
  trains.
* **State populations** (hidden and output) -> one ``nir.CubaLIF`` node each, named after the
  population, every parameter an array of shape ``(n,)``, times in **seconds** as NIR expects:

  ``tau_syn``  the synaptic current time constant (``tau_syn`` ms / 1000);
  ``tau_mem``  the LIF membrane time constant (``tau_m`` ms / 1000);
  ``w_in``     ``1 / max_rate`` (s): in NIR's continuous-time reading a spike (a Dirac delta)
               adds ``w_in * w / tau_syn`` to the current, which is neurosim's increment
               ``w / (max_rate * tau_syn)``, so the current's mean is ``sum w rho_pre`` as in
               neurosim and the weights themselves stay exactly neurosim's;
  ``r``        1;
  ``v_leak``   **the bias** ``b:p``: with ``r = 1`` a constant leak potential is a constant
               input current added to the synaptic currents, ``tau_mem dv/dt = -v + (I + b)``,
               as neurosim adds ``b`` to ``sum_k I_k`` unfiltered (so the biases are stored
               exactly, not folded into one pathway's ``Affine`` bias);
  ``v_threshold`` 1 and ``v_reset`` 0 (neurosim's LIF resets by subtraction, ``v -= 1``; NIR
               resets to ``v_reset``: node metadata ``reset = "subtract"``).

  Neither neurosim's rate state ``u`` (``tau du/dt = -u + rho'(u) (sum_k I_k + b)``) nor the
  LIF drive ``mu(rho(u))`` that makes a unit fire at ``rho(u) * max_rate`` is a NIR primitive,
  so a generic NIR simulator runs an *approximation*: a CubaLIF network with neurosim's weights,
  synaptic currents and biases. ``neuron="poisson"`` units (Bernoulli spikes at
  ``rho(u) * max_rate``, no membrane) are exported as the same CubaLIF node as ``"lif"`` -- the
  deterministic counterpart neurosim itself offers (``tau_mem`` the circuit's ``tau_m``) --
  with ``neuron = "poisson"`` in the node and graph metadata. Everything neurosim needs to
  rebuild the exact circuit is in the metadata (below).
* **Pathways** -> one ``nir.Linear`` node per directed pathway of ``net.terms`` (NIR's weight is
  ``(out, in)``): a projection ``W:a->b`` (shape ``(n_a, n_b)``) drives ``b`` through a node
  named ``W:a->b`` holding ``W.T``; a tied (energy) weight between two state populations also
  drives ``a`` through the transposed feedback, a node named ``W:a->b:T`` holding ``W``; a
  lateral (self) projection ``W:a->a`` is one node holding ``W.T`` (= ``W``: symmetric, zero
  diagonal). Edges run population -> pathway -> population; NIR sums a node's inputs.
* **Output populations** -> a ``nir.Output`` node each, ``output:<population>``, fed by the
  population's CubaLIF node.

Population names may contain neither ``->`` nor ``:`` (see :mod:`neurosim.network`), so these
node names never collide.

Metadata. The graph's ``metadata`` holds ``format = "neurosim.nir"``, ``format_version``,
``neurosim_version``, ``model = "spiking"``, the circuit's parameters under neurosim's names and
units (every entry of :data:`neurosim.brian.spiking.DEFAULTS`: ``neuron``, ``max_rate`` in
Hz; ``tau``, ``tau_syn``, ``tau_fast``, ``tau_slow``, ``tau_m`` in ms; ``eps`` in units of
``tau``; ``beta``, ``variant``, ``free_steps``, ``nudge_steps``, ...), ``clip``,
``activation``, ``dynamics``, ``dtype``, ``bias = "v_leak"``, a sentence on the approximation,
and ``populations`` / ``projections``: JSON lists of ``[name, role, size]`` and of the weight
keys in the network's order (HDF5 does not keep the order of nodes). Each population node's
metadata has ``population``, ``role``, ``size`` (and for state populations ``neuron``,
``max_rate``, ``reset``, ``bias``); each pathway node's has ``key``, ``source``, ``target``,
``transpose``, ``lateral``.

:func:`from_nir` reads a graph (or file) written by :func:`to_nir` back into
``{"params", "sizes", "roles", "metadata"}``: weights from the forward pathway nodes (checking
that each tied feedback node holds the same matrix), biases from ``v_leak``.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .device import CircuitError, check_compilable

#: The ``format`` tag in the graph metadata, and the version of this mapping.
FORMAT = "neurosim.nir"
FORMAT_VERSION = 1

APPROXIMATION = (
    "NIR has no primitive for neurosim's rate state u (tau du/dt = -u + rho'(u) (sum I + b)) "
    "nor for the drive that makes a unit fire at rho(u) * max_rate: the CubaLIF nodes carry "
    "neurosim's weights, synaptic currents (tau_syn, w_in = 1/max_rate) and biases (v_leak, "
    "r = 1) with the LIF membrane tau_m and threshold 1; poisson units are exported as their "
    "deterministic LIF counterpart. This metadata holds what neurosim needs to rebuild the "
    "exact circuit.")


def _nir():
    """The ``nir`` module, or a :class:`CircuitError` that says how to install it."""
    try:
        import nir
    except ImportError as e:
        raise CircuitError('NIR export needs the nir package: pip install "neurosim[nir]" '
                           "(or pip install nir) (%s)" % e) from None
    return nir


def _resolve(circuit_or_net, params):
    """``(net, checked spiking parameters, clip)`` of a SpikingCircuit or a Network."""
    from ..network import Network
    from .spiking import DEFAULTS, SpikingCircuit
    params = dict(params)
    if isinstance(circuit_or_net, SpikingCircuit):
        net = circuit_or_net.net
        base = dict(circuit_or_net.params)
        clip = params.pop("clip", circuit_or_net.clip)
    elif isinstance(circuit_or_net, Network):
        net, base, clip = circuit_or_net, {}, params.pop("clip", False)
    else:
        from .rate import RateCircuit
        hint = ""
        if isinstance(circuit_or_net, RateCircuit):
            hint = (": a RateCircuit has no spiking neurons; compile with model='spiking' or "
                    "pass its Network (circuit.net)")
        raise CircuitError("to_nir needs a SpikingCircuit or a neurosim Network, got %s%s"
                           % (type(circuit_or_net).__name__, hint))
    check_compilable(net)
    if net.dynamics != "energy":
        raise CircuitError("to_nir exports spiking circuits, which need energy dynamics (tied "
                           "weights); this network has dynamics=%r: vector-field EP reads the "
                           "state change u - u0, which spikes do not carry" % net.dynamics)
    for bad in ("seed", "device", "record", "build_dir", "keep_build"):
        if bad in params:
            raise CircuitError("to_nir: %r is not a parameter the NIR file records; pass only "
                               "the spiking parameters (%s) and clip"
                               % (bad, ", ".join(sorted(DEFAULTS))))
    merged = dict(base, **params)
    neuron = merged.pop("neuron", None)
    # SpikingCircuit checks every parameter (units, ranges, max_rate * dt <= 1) without
    # building anything in Brian2.
    checked = SpikingCircuit(net, neuron=neuron, clip=bool(clip), record=False, **merged)
    return net, dict(checked.params), bool(checked.clip)


def _node_name(pop):
    name = str(pop)
    if "/" in name or name in (".", ""):
        raise CircuitError("population %r cannot name a NIR node: NIR files are HDF5, whose "
                           "group names may not contain '/' or be '.'; rename it" % (pop,))
    return name


def _scalar(v):
    """A metadata value as plain Python (numpy scalars and 0-d arrays -> int/float/bool/str)."""
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _scalar(x) for k, x in v.items()}
    return v


def to_nir(circuit_or_net, path=None, **params):
    """The NIR graph (``nir.NIRGraph``) of a spiking circuit; with ``path``, also written there
    with ``nir.write`` (atomically: complete or not at all).

    ``circuit_or_net`` is a :class:`~neurosim.brian.spiking.SpikingCircuit` (its ``net``,
    ``params`` and ``clip``) or a :class:`~neurosim.network.Network` (the spiking defaults of
    :data:`neurosim.brian.spiking.DEFAULTS`). ``params`` override or set the spiking parameters
    (``neuron``, ``max_rate``, ``tau``, ``tau_syn``, ``tau_m``, ``eps``, ..., and ``clip``),
    checked as :func:`neurosim.brian.compile` checks them. The mapping and the metadata are
    described in :mod:`neurosim.brian.nir_export`.

    Raises :class:`~neurosim.brian.CircuitError` if ``nir`` is not installed, for other inputs
    than a SpikingCircuit or a Network, for vector-field networks, for invalid parameters and
    for population names HDF5 cannot store.
    """
    nir = _nir()
    net, p, clip = _resolve(circuit_or_net, params)
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise CircuitError("to_nir: path must be a file path (str or os.PathLike), got %s"
                           % type(path).__name__)
    from .. import __version__
    names = {q: _node_name(q) for q in net.graph.nodes}
    role = {q: net.graph.nodes[q]["role"] for q in net.graph.nodes}
    nodes, edges = {}, []
    for q in net.graph.nodes:
        n = net.sizes[q]
        meta = {"population": names[q], "role": role[q], "size": n}
        if q in net.inputs:
            meta.update(encoding="rate", max_rate=float(p["max_rate"]))
            nodes[names[q]] = nir.Input(input_type=np.array([n]), metadata=meta)
            continue
        meta.update(neuron=p["neuron"], max_rate=float(p["max_rate"]),
                    reset="subtract" if p["neuron"] == "lif" else "none (poisson spikes)",
                    bias="v_leak")
        ones = np.ones(n)
        nodes[names[q]] = nir.CubaLIF(
            tau_syn=ones * (p["tau_syn"] * 1e-3), tau_mem=ones * (p["tau_m"] * 1e-3),
            r=ones.copy(), v_leak=np.array(net.params["b:%s" % q], copy=True),
            v_threshold=ones.copy(), v_reset=np.zeros(n), w_in=ones / p["max_rate"],
            metadata=meta)
    for t in net.terms:
        W = net.params[t.key]
        name = t.key + (":T" if t.transpose else "")
        weight = np.array(W if t.transpose else W.T, copy=True, order="C")   # (out, in)
        nodes[name] = nir.Linear(weight=weight, metadata={
            "key": t.key, "source": names[t.source], "target": names[t.target],
            "transpose": bool(t.transpose), "lateral": bool(t.lateral)})
        edges += [(names[t.source], name), (name, names[t.target])]
    for q in net.outputs:
        out = "output:%s" % names[q]
        nodes[out] = nir.Output(output_type=np.array([net.sizes[q]]),
                                metadata={"population": names[q]})
        edges.append((names[q], out))
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "neurosim_version": __version__,
            "model": "spiking", "clip": clip, "activation": net.activation,
            "dynamics": net.dynamics, "dtype": str(net.dtype), "bias": "v_leak",
            "time_units": "metadata times in ms (neurosim's units); NIR node times in s",
            "approximation": APPROXIMATION,
            "populations": json.dumps([[names[q], role[q], net.sizes[q]]
                                       for q in net.graph.nodes]),
            "projections": json.dumps(list(net.projections))}
    for k, v in p.items():
        meta[k] = v if isinstance(v, str) else (int(v) if isinstance(v, (int, np.integer))
                                                 and not isinstance(v, bool) else float(v))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)
    if path is not None:
        from ..atomic import atomic_path
        with atomic_path(path) as tmp:
            nir.write(tmp, graph)
    return graph


def _weight_of(node, key):
    w = getattr(node, "weight", None)
    if w is None or np.ndim(w) != 2:
        raise CircuitError("from_nir: pathway node %r has no 2-d weight" % key)
    return np.asarray(w)


def from_nir(graph_or_path):
    """Read a NIR graph written by :func:`to_nir` (a ``nir.NIRGraph`` or a file path) back
    into ``{"params": {key: array}, "sizes": {population: n}, "roles": {population: role},
    "metadata": {...}}``: ``params`` has the keys of ``net.params`` (``"W:a->b"`` of shape
    ``(n_a, n_b)``, ``"b:p"``), population names are strings, ``metadata`` is the graph's
    metadata as plain Python values (``populations`` and ``projections`` decoded from JSON).
    Raises :class:`~neurosim.brian.CircuitError` for other inputs, unreadable files and
    graphs this mapping did not write (or whose tied feedback differs from its weight)."""
    nir = _nir()
    if isinstance(graph_or_path, (str, os.PathLike)):
        path = os.fspath(graph_or_path)
        if not os.path.isfile(path):
            raise CircuitError("from_nir: no NIR file at %r" % path)
        try:
            graph = nir.read(path)
        except Exception as e:   # h5py, KeyError, AssertionError from a foreign file
            raise CircuitError("from_nir: %r is not a readable NIR file (%s: %s)"
                               % (path, type(e).__name__, e)) from None
    elif isinstance(graph_or_path, nir.NIRGraph):
        graph = graph_or_path
    else:
        raise CircuitError("from_nir needs a nir.NIRGraph or the path of a NIR file, got %s"
                           % type(graph_or_path).__name__)
    meta = _scalar(dict(graph.metadata or {}))
    if meta.get("format") != FORMAT:
        raise CircuitError("from_nir reads graphs written by neurosim's to_nir (metadata "
                           "format=%r); this one has format=%r" % (FORMAT, meta.get("format")))
    for k in ("populations", "projections"):
        if isinstance(meta.get(k), str):
            meta[k] = json.loads(meta[k])
    sizes, roles, biases = {}, {}, {}
    outputs = {_scalar(n.metadata.get("population", name[len("output:"):]))
               for name, n in graph.nodes.items() if isinstance(n, nir.Output)}
    pathways = []
    for name, node in graph.nodes.items():
        nm = _scalar(dict(node.metadata or {}))
        if isinstance(node, nir.Input):
            pop = nm.get("population", name)
            sizes[pop] = int(np.prod(node.input_type["input"]))
            roles[pop] = nm.get("role", "input")
        elif isinstance(node, (nir.Linear, nir.Affine)):
            pathways.append((name, node, nm))
        elif isinstance(node, nir.Output):
            continue
        elif hasattr(node, "v_leak"):
            pop = nm.get("population", name)
            b = np.asarray(node.v_leak)
            sizes[pop] = int(b.shape[0])
            roles[pop] = nm.get("role", "output" if pop in outputs else "hidden")
            biases[pop] = b
        else:
            raise CircuitError("from_nir: node %r is a %s, which to_nir does not write"
                               % (name, type(node).__name__))
    params, feedback = {}, {}
    for name, node, nm in pathways:
        key = nm.get("key", name[:-2] if name.endswith(":T") else name)
        transpose = bool(nm.get("transpose", name.endswith(":T")))
        w = _weight_of(node, name)
        if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
            tgt = nm.get("target")
            biases[tgt] = biases[tgt] + np.asarray(node.bias)
        if transpose:
            feedback[key] = (name, w)          # holds W itself, (n_a, n_b)
        else:
            params[key] = np.array(w.T, copy=True)
    for key, (name, w) in feedback.items():
        if key not in params:
            raise CircuitError("from_nir: feedback pathway %r has no forward pathway %r"
                               % (name, key))
        if w.shape != params[key].shape or not np.array_equal(w, params[key]):
            raise CircuitError("from_nir: tied weight %r: the feedback pathway %r does not hold "
                               "the transpose of the forward one" % (key, name))
    for pop, b in biases.items():
        params["b:%s" % pop] = np.array(b, copy=True)
    for key in params:
        if key.startswith("W:"):
            a, b = key[2:].split("->")
            if params[key].shape != (sizes.get(a), sizes.get(b)):
                raise CircuitError("from_nir: %r has shape %s, but the populations have sizes "
                                   "%s and %s" % (key, params[key].shape, sizes.get(a),
                                                  sizes.get(b)))
    order = [row[0] for row in meta.get("populations", [])]
    order += [q for q in sizes if q not in order]
    keys = list(meta.get("projections", []))
    keys = [k for k in keys if k in params] + sorted(k for k in params if k.startswith("W:")
                                                    and k not in keys)
    keys += ["b:%s" % q for q in order if "b:%s" % q in params]
    return {"params": {k: params[k] for k in keys},
            "sizes": {q: sizes[q] for q in order if q in sizes},
            "roles": {q: roles[q] for q in order if q in roles},
            "metadata": meta}


__all__ = ["to_nir", "from_nir", "FORMAT", "FORMAT_VERSION"]
