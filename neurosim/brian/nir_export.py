"""Export a spiking circuit to the Neuromorphic Intermediate Representation (NIR, PyPI ``nir``)
so that another spiking framework runs it, and read such a file back.

Needs the optional dependency ``nir`` (``pip install "neurosim[nir]"``); running the graph in
snntorch needs ``pip install "neurosim[snntorch]"`` (snntorch, nir and nirtorch).

**What the graph computes.** neurosim's state unit has a rate state ``u`` (``tau du/dt = -u +
rho'(u) (sum_k I_k + b)``) and fires at ``rho(u) * max_rate``; neither ``u`` nor a unit that
fires at a chosen rate is a NIR primitive. So :func:`to_nir` (format version 2) writes the
*rate code* of the circuit as neurons NIR consumers run: each unit is a leak-free
integrate-and-fire neuron behind neurosim's synaptic current, driven by ``sum w S_pre + b``,
which fires at ``sum w rho_pre + b`` times ``max_rate`` -- the hard sigmoid's free fixed point
``rho(u*) = clip(sum w rho + b, 0, 1)`` -- for every neuron model:

* ``"lif"``: neurosim drives a leaky membrane with ``mu(rho)``, the input that makes it fire at
  ``rho * max_rate``; ``mu`` is not a NIR primitive, and leak plus ``mu`` give the same rate as
  the leak-free neuron written here (``tau_m`` is kept in the metadata);
* ``"poisson"``: Bernoulli spikes at ``rho * max_rate``; NIR has no stochastic neuron, so the
  same deterministic neuron with the same mean rate;
* ``"if"``: neurosim's own integrate-and-fire code (``v += rho * max_rate * dt``, spike at
  ``v >= 1``, ``v -= 1``): the same neuron, driven by the synaptic current instead of
  ``rho(u)``;
* ``"sigma_delta"``: graded events ``n * delta`` whose postsynaptic current is ``sum w q_pre``
  (``q`` the rate to within ``delta``); snntorch has no graded spikes, so the closest runnable
  network is this rate code, whose mean current is the same ``sum w rho_pre`` (``delta`` and
  every other parameter are in the metadata).

**The discrete reading.** snntorch 1.0's importer Euler-integrates NIR's equations with a fixed
step of 0.1 ms, a spike being a 1 in the input of its step; the graph is written for that
reading with step ``dt`` (seconds, default :data:`DT` = 1e-4 s, recorded as metadata ``dt``;
another ``dt`` gives a graph snntorch refuses, as ``r`` below depends on it). Input unit ``i``
fires at ``x_i * max_rate`` (:func:`input_spikes` encodes ``x`` so); ``s = max_rate * dt`` is
the number of spikes per step at rho = 1 (at most 1).

* **Input populations** -> one ``nir.Input`` node each, named after the population, shape
  ``(n,)``.
* **State populations** (hidden and output) -> one ``nir.CubaLIF`` node each, named after the
  population, every parameter an array of shape ``(n,)``, times in seconds:
  ``tau_syn`` neurosim's synaptic time constant; ``w_in = 1``; ``tau_mem`` = :data:`TAU_MEM`
  (1e4 s: a leak of 1e-8 per step, below float32 resolution, so the membrane integrates) and
  ``r = tau_mem / dt`` (as snntorch requires), so ``v += I`` per step; ``v_leak = 0``;
  ``v_reset = 0``; ``v_threshold = 1 - s / 4``. NIR resets to ``v_reset`` where neurosim's
  neurons subtract 1, which loses on average half a step's drive per spike (an overshoot
  spread evenly over one step's drive): this threshold makes the mean rate exact at rho = 1/2
  and off by at most ``s / 4`` relative (2.5 % at 1 kHz and 0.1 ms) across [0, 1].
* **Pathways** -> one node per directed pathway of ``net.terms`` (NIR's weight is ``(out,
  in)``): ``W:a->b`` (shape ``(n_a, n_b)``) drives ``b`` through a node named ``W:a->b``
  holding ``W.T``; a tied (energy) weight also drives ``a`` through ``W:a->b:T`` holding ``W``;
  a lateral ``W:a->a`` is one node holding ``W``. Each state population's bias ``b`` rides on
  one of its incoming pathways (the first that is not lateral), written as ``nir.Affine``
  with bias ``b * s`` (a constant input of ``b * s`` per step is the current of a unit firing
  at rate ``b``; snntorch refuses a non-zero ``v_leak``); the other pathways are
  ``nir.Linear``. The exact ``b`` is in the population node's metadata ``bias``.
* **Output populations** -> a ``nir.Output`` node each, ``output:<population>``.

Population names may contain neither ``->`` nor ``:`` (see :mod:`neurosim.network`), so these
node names never collide.

**Measured** (``tests/test_nir.py``: a 6-8-3 hard-sigmoid network whose fixed point stays in
the linear range, four inputs, the file read back with ``nir.read`` and imported by snntorch
1.0 with nirtorch 2.6, run 6000 steps of 0.1 ms on :func:`input_spikes`, rates over the last
3000 steps in units of ``max_rate``): the largest gap to neurosim's free fixed point
``rho(u*)`` is 0.013 (at most 0.021 over four networks and inputs; 0.053 with threshold 1,
i.e. without the correction above), to the ``"lif"`` circuit's output rates (1000 steps)
0.011, to the ``"poisson"`` circuit's (4000 steps) 0.032, which is that circuit's own spike
noise. The snntorch graph is the same for every neuron model (only the metadata differs).

**What does not hold.** A unit driven above 1 fires above ``max_rate`` (up to one spike per
step) where neurosim's saturates at rho = 1: no NIR neuron snntorch runs saturates (with output
biases of 1.5 the outputs fire at 1.7 to 2.0 times ``max_rate``; tested). A ``logistic`` network is
exported with this linear rate, not its activation. The rate state's low-pass ``tau`` is not
represented (transients differ, the fixed point does not). snntorch runs graphs with one input
and one output population; nirtorch 2.6 delays each cycle (the tied feedback) by one step and
fails with a shape error on networks with two or more hidden layers (nested feedback cycles),
so snntorch runs the export of one-hidden-layer networks only; :func:`from_nir` reads them all.

Metadata. The graph's ``metadata`` holds ``format = "neurosim.nir"``, ``format_version``,
``neurosim_version``, ``model = "spiking"``, every entry of
:data:`neurosim.brian.spiking.DEFAULTS` under neurosim's names and units (``max_rate`` in Hz,
times in ms), ``clip``, ``activation``, ``dynamics``, ``dtype``, ``dt`` (s), ``bias_scale``
(``s``), ``bias = "affine"``, the sentence :data:`APPROXIMATION`, and ``populations`` /
``projections``: JSON lists of ``[name, role, size]`` and of the weight keys in the network's
order. Each population node's metadata has ``population``, ``role``, ``size`` (state
populations also ``neuron``, ``max_rate``, ``dt``, ``reset``, ``bias``, ``bias_pathway``);
each pathway node's has ``key``, ``source``, ``target``, ``transpose``, ``lateral``.

:func:`from_nir` reads a graph (or file) written by :func:`to_nir` back into
``{"params", "sizes", "roles", "metadata"}``: the weights from the forward pathway nodes
(checking each tied feedback node and each bias against what a simulator runs), the biases
exactly from the metadata; version 1 files (biases in ``v_leak``) are read too.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .device import CircuitError, check_compilable

#: The ``format`` tag in the graph metadata, and the version of this mapping (1: CubaLIF nodes
#: with the biases in ``v_leak``, ``r = 1``; 2: the leak-free rate code of the module docstring).
FORMAT = "neurosim.nir"
FORMAT_VERSION = 2
#: The step (s) of the discrete reading the graph is written for: snntorch 1.0's import step.
DT = 1e-4
#: The membrane time constant (s) of the exported neurons: long enough to make them leak-free.
TAU_MEM = 1e4

APPROXIMATION = (
    "NIR has no primitive for neurosim's rate state u (tau du/dt = -u + rho'(u) (sum I + b)) "
    "nor for a neuron that fires at rho(u) * max_rate: every unit (lif, poisson, if and "
    "sigma_delta alike) is a leak-free integrate-and-fire neuron (CubaLIF, tau_mem = 1e4 s, "
    "r = tau_mem / dt, threshold 1 - max_rate * dt / 4, reset to 0) behind neurosim's "
    "synaptic current, driven by neurosim's weights and its bias (an Affine bias of b * "
    "max_rate * dt per step), so it fires at (sum w rho + b) * max_rate: neurosim's rates in "
    "the hard sigmoid's linear range, with no saturation at max_rate. Written for an Euler "
    "step of dt seconds with spikes of 1 per step (snntorch's reading). This metadata holds "
    "what neurosim needs to rebuild the exact circuit.")

_RESET = {"lif": "subtract", "if": "subtract", "poisson": "none (poisson spikes)",
          "sigma_delta": "none (sigma-delta events)"}


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
                               "the spiking parameters (%s), clip and dt"
                               % (bad, ", ".join(sorted(DEFAULTS))))
    merged = dict(base, **params)
    neuron = merged.pop("neuron", None)
    # SpikingCircuit checks every parameter (units, ranges, max_rate * dt <= 1) without
    # building anything in Brian2.
    checked = SpikingCircuit(net, neuron=neuron, clip=bool(clip), record=False, **merged)
    return net, dict(checked.params), bool(checked.clip)


def _check_dt(dt, p):
    """The export step ``dt`` (s) as a float: positive, at most one spike per step, and no
    longer than the synaptic time constant."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating)) \
            or not np.isfinite(dt) or dt <= 0:
        raise CircuitError("to_nir: dt must be a positive number of seconds, got %r" % (dt,))
    dt = float(dt)
    if p["max_rate"] * dt > 1:
        raise CircuitError("to_nir: dt = %g s gives max_rate * dt = %g spikes per step; a "
                           "neuron fires at most once per step, so dt must be at most %g s"
                           % (dt, p["max_rate"] * dt, 1.0 / p["max_rate"]))
    if dt > p["tau_syn"] * 1e-3:
        raise CircuitError("to_nir: dt = %g s is longer than tau_syn = %g ms"
                           % (dt, p["tau_syn"]))
    return dt


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


def _bias_pathways(net):
    """``{state population: the term that carries its bias}``: the first incoming pathway
    that is not lateral (else the lateral one)."""
    carrier = {}
    for t in sorted(net.terms, key=lambda t: bool(t.lateral)):
        carrier.setdefault(t.target, t)
    for q in net.state_pops:
        if q not in carrier:
            raise CircuitError("to_nir: population %r has no incoming pathway to carry its "
                               "bias b:%s (a NIR Affine bias)" % (q, q))
    return carrier


def input_spikes(x, steps, max_rate, dt=DT):
    """Spike trains ``(steps, batch, n)`` (float32, 0 or 1) that fire at ``x * max_rate`` in
    steps of ``dt`` seconds: each unit integrates ``x * max_rate * dt`` per step and fires at
    1 (reset by subtraction), the input of a graph from :func:`to_nir` in the discrete reading
    (``x``: ``(batch, n)`` or ``(n,)`` in [0, 1])."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.size == 0 or not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise CircuitError("input_spikes: x must be a (batch, n) array of rates in [0, 1]")
    steps = int(steps)
    if steps < 1:
        raise CircuitError("input_spikes: steps must be at least 1, got %d" % steps)
    s = float(max_rate) * float(dt)
    if not 0 < s <= 1:
        raise CircuitError("input_spikes: max_rate * dt must lie in (0, 1], got %g" % s)
    out = np.zeros((steps,) + x.shape, dtype=np.float32)
    v = np.zeros_like(x)
    for k in range(steps):
        v += x * s
        fired = v >= 1.0 - 1e-12
        v[fired] -= 1.0
        out[k] = fired
    return out


def to_nir(circuit_or_net, path=None, *, dt=DT, **params):
    """The NIR graph (``nir.NIRGraph``) of a spiking circuit; with ``path``, also written there
    with ``nir.write`` (atomically: complete or not at all).

    ``circuit_or_net`` is a :class:`~neurosim.brian.spiking.SpikingCircuit` (its ``net``,
    ``params`` and ``clip``) or a :class:`~neurosim.network.Network` (the spiking defaults of
    :data:`neurosim.brian.spiking.DEFAULTS`). ``params`` override or set the spiking parameters
    (``neuron``, ``max_rate``, ``tau_syn``, ..., and ``clip``), checked as
    :func:`neurosim.brian.compile` checks them; ``dt`` is the step (s) of the discrete reading
    (default :data:`DT`, snntorch's). The mapping is described in
    :mod:`neurosim.brian.nir_export`.

    Raises :class:`~neurosim.brian.CircuitError` if ``nir`` is not installed, for other inputs
    than a SpikingCircuit or a Network, for vector-field networks, for invalid parameters and
    ``dt``, and for population names HDF5 cannot store.
    """
    nir = _nir()
    net, p, clip = _resolve(circuit_or_net, params)
    dt = _check_dt(dt, p)
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise CircuitError("to_nir: path must be a file path (str or os.PathLike), got %s"
                           % type(path).__name__)
    from .. import __version__
    s = float(p["max_rate"]) * dt                   # spikes per step at rho = 1
    names = {q: _node_name(q) for q in net.graph.nodes}
    role = {q: net.graph.nodes[q]["role"] for q in net.graph.nodes}
    carrier = _bias_pathways(net)
    pathway = {q: t.key + (":T" if t.transpose else "") for q, t in carrier.items()}
    nodes, edges = {}, []
    for q in net.graph.nodes:
        n = net.sizes[q]
        meta = {"population": names[q], "role": role[q], "size": n}
        if q in net.inputs:
            meta.update(encoding="rate", max_rate=float(p["max_rate"]), dt=dt)
            nodes[names[q]] = nir.Input(input_type=np.array([n]), metadata=meta)
            continue
        meta.update(neuron=p["neuron"], max_rate=float(p["max_rate"]), dt=dt,
                    reset=_RESET.get(p["neuron"], p["neuron"]),
                    bias=np.array(net.params["b:%s" % q], copy=True), bias_pathway=pathway[q])
        if "delta" in p:
            meta["delta"] = float(p["delta"])
        ones = np.ones(n)
        nodes[names[q]] = nir.CubaLIF(
            tau_syn=ones * (p["tau_syn"] * 1e-3), tau_mem=ones * TAU_MEM,
            r=ones * (TAU_MEM / dt), v_leak=np.zeros(n), v_threshold=ones * (1.0 - s / 4.0),
            v_reset=np.zeros(n), w_in=ones.copy(), metadata=meta)
    for t in net.terms:
        W = net.params[t.key]
        name = t.key + (":T" if t.transpose else "")
        weight = np.array(W if t.transpose else W.T, copy=True, order="C")   # (out, in)
        meta = {"key": t.key, "source": names[t.source], "target": names[t.target],
                "transpose": bool(t.transpose), "lateral": bool(t.lateral)}
        if pathway[t.target] == name:
            nodes[name] = nir.Affine(weight=weight, bias=net.params["b:%s" % t.target] * s,
                                     metadata=meta)
        else:
            nodes[name] = nir.Linear(weight=weight, metadata=meta)
        edges += [(names[t.source], name), (name, names[t.target])]
    for q in net.outputs:
        out = "output:%s" % names[q]
        nodes[out] = nir.Output(output_type=np.array([net.sizes[q]]),
                                metadata={"population": names[q]})
        edges.append((names[q], out))
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "neurosim_version": __version__,
            "model": "spiking", "clip": clip, "activation": net.activation,
            "dynamics": net.dynamics, "dtype": str(net.dtype), "bias": "affine",
            "dt": dt, "bias_scale": s,
            "time_units": "metadata times in ms (neurosim's units) except dt (s); NIR node "
                          "times in s",
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


def _read_graph(nir, graph_or_path):
    if isinstance(graph_or_path, (str, os.PathLike)):
        path = os.fspath(graph_or_path)
        if not os.path.isfile(path):
            raise CircuitError("from_nir: no NIR file at %r" % path)
        try:
            return nir.read(path)
        except Exception as e:   # h5py, KeyError, AssertionError from a foreign file
            raise CircuitError("from_nir: %r is not a readable NIR file (%s: %s)"
                               % (path, type(e).__name__, e)) from None
    if isinstance(graph_or_path, nir.NIRGraph):
        return graph_or_path
    raise CircuitError("from_nir needs a nir.NIRGraph or the path of a NIR file, got %s"
                       % type(graph_or_path).__name__)


def from_nir(graph_or_path):
    """Read a NIR graph written by :func:`to_nir` (a ``nir.NIRGraph`` or a file path) back
    into ``{"params": {key: array}, "sizes": {population: n}, "roles": {population: role},
    "metadata": {...}}``: ``params`` has the keys of ``net.params`` (``"W:a->b"`` of shape
    ``(n_a, n_b)``, ``"b:p"``), population names are strings, ``metadata`` is the graph's
    metadata as plain Python values (``populations`` and ``projections`` decoded from JSON).
    Reads format versions 1 and 2. Raises :class:`~neurosim.brian.CircuitError` for other
    inputs, unreadable files and graphs this mapping did not write (or whose tied feedback or
    Affine bias differs from the weight or bias it stands for)."""
    nir = _nir()
    graph = _read_graph(nir, graph_or_path)
    meta = _scalar(dict(graph.metadata or {}))
    if meta.get("format") != FORMAT:
        raise CircuitError("from_nir reads graphs written by neurosim's to_nir (metadata "
                           "format=%r); this one has format=%r" % (FORMAT, meta.get("format")))
    version = meta.get("format_version", 1)
    if version not in (1, 2):
        raise CircuitError("from_nir: format_version %r is newer than this neurosim reads "
                           "(1 and 2); upgrade neurosim" % (version,))
    for k in ("populations", "projections"):
        if isinstance(meta.get(k), str):
            meta[k] = json.loads(meta[k])
    sizes, roles, biases = {}, {}, {}
    outputs = {_scalar(n.metadata.get("population", name[len("output:"):]))
               for name, n in graph.nodes.items() if isinstance(n, nir.Output)}
    pathways = []
    for name, node in graph.nodes.items():
        nm = dict(node.metadata or {})
        bias = nm.pop("bias", None)
        nm = _scalar(nm)
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
            if version == 1:
                b = np.asarray(node.v_leak)
            elif bias is None or np.ndim(bias) != 1:
                raise CircuitError("from_nir: population node %r has no bias metadata (a 1-d "
                                   "array)" % name)
            else:
                b = np.asarray(bias)
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
        if isinstance(node, nir.Affine):
            _check_affine(name, node, nm, biases, meta, version)
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


def _check_affine(name, node, nm, biases, meta, version):
    """An Affine pathway's bias: version 2 holds ``b * bias_scale`` of its target (what a
    simulator runs; checked against the exact ``b`` of the metadata); version 1 adds it."""
    tgt = nm.get("target")
    if tgt not in biases:
        raise CircuitError("from_nir: Affine pathway %r has no target population (metadata "
                           "target=%r)" % (name, tgt))
    ab = np.asarray(node.bias)
    if version == 1:
        if np.any(ab != 0):
            biases[tgt] = biases[tgt] + ab
        return
    b = biases[tgt]
    if ab.shape != b.shape or not np.array_equal(ab, b * float(meta.get("bias_scale", np.nan))):
        raise CircuitError("from_nir: Affine pathway %r: its bias is not the bias b:%s of the "
                           "metadata times bias_scale (%r)" % (name, tgt,
                                                              meta.get("bias_scale")))


__all__ = ["to_nir", "from_nir", "input_spikes", "FORMAT", "FORMAT_VERSION", "DT", "TAU_MEM",
           "APPROXIMATION"]
