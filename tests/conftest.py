"""Shared networks, data and helpers for the test suite.

Every network here is small (a few dozen state units) so that dense Jacobians, finite
differences over every parameter and long side-network series stay cheap. Data come from
``np.random.default_rng(seed)``; batches have more than one example so that batch means and
per-example traces are both exercised.

Topologies (``TOPOLOGIES``):

* ``layered``     x(5) -> h1(4) -> y(3)
* ``deep``        x(4) -> h1(5) -> h2(4) -> y(3)
* ``skip``        the ``deep`` layers plus skip projections x -> h2 and h1 -> y
* ``two_inputs``  xa(3) -> h(4), xb(2) -> h, h -> y(3), xb -> y  (``x`` given as a dict)
* ``lateral``     x(4) -> h(5) -> y(3) with a lateral projection h -> h
* ``cycle``       x(4) -> h1(3) -> h2(3) -> h3(3) -> h1 (a hidden cycle), h3 -> y(2)
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pytest

import neurosim as ns
from neurosim import energy as en
from neurosim.relax import free_state, polish

SEEDS = (0, 1, 2)
TOPOLOGIES = ("layered", "deep", "skip", "two_inputs", "lateral", "cycle")
NON_LAYERED = ("skip", "two_inputs", "lateral", "cycle")
BATCH = 3
EPS = 0.1


def _graph(nodes, edges):
    g = nx.DiGraph()
    for name, size, role in nodes:
        g.add_node(name, size=size, role=role)
    g.add_edges_from(edges)
    return g


def graph(kind):
    """The networkx graph of topology ``kind`` (see the module docstring)."""
    if kind == "layered":
        return _graph([("x", 5, "input"), ("h1", 4, "hidden"), ("y", 3, "output")],
                      [("x", "h1"), ("h1", "y")])
    if kind in ("deep", "skip"):
        edges = [("x", "h1"), ("h1", "h2"), ("h2", "y")]
        if kind == "skip":
            edges += [("x", "h2"), ("h1", "y")]
        return _graph([("x", 4, "input"), ("h1", 5, "hidden"), ("h2", 4, "hidden"),
                       ("y", 3, "output")], edges)
    if kind == "two_inputs":
        return _graph([("xa", 3, "input"), ("xb", 2, "input"), ("h", 4, "hidden"),
                       ("y", 3, "output")],
                      [("xa", "h"), ("xb", "h"), ("h", "y"), ("xb", "y")])
    if kind == "lateral":
        return _graph([("x", 4, "input"), ("h", 5, "hidden"), ("y", 3, "output")],
                      [("x", "h"), ("h", "h"), ("h", "y")])
    if kind == "cycle":
        return _graph([("x", 4, "input"), ("h1", 3, "hidden"), ("h2", 3, "hidden"),
                       ("h3", 3, "hidden"), ("y", 2, "output")],
                      [("x", "h1"), ("h1", "h2"), ("h2", "h3"), ("h3", "h1"), ("h3", "y")])
    raise ValueError(kind)


def skip_network(seed=0):
    """x(5) -> h1(4) -> h2(3) -> y(3) with a skip projection h1 -> y (hard sigmoid, energy):
    the network the engine tests and the conformance suite compare engines on."""
    g = _graph([("x", 5, "input"), ("h1", 4, "hidden"), ("h2", 3, "hidden"), ("y", 3, "output")],
               [("x", "h1"), ("h1", "h2"), ("h2", "y"), ("h1", "y")])
    return ns.Network.from_graph(g, activation="hard_sigmoid", dynamics="energy", seed=seed,
                                 dtype="float64")


def one_hot_batch(net, n=4, seed=0):
    """``(x, y)``: ``n`` uniform inputs in [0, 1) and one-hot targets, seeded."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (n, net.sizes[net.inputs[0]])),
            np.eye(net.sizes[net.outputs[0]])[rng.integers(0, net.sizes[net.outputs[0]], n)])


def make_net(kind, seed, dynamics="energy", asymmetry=0.0, dtype="float64", bias=0.2):
    """Topology ``kind`` with seeded Glorot weights and seeded random biases (scale ``bias``)."""
    net = ns.Network.from_graph(graph(kind), activation="logistic", dynamics=dynamics,
                                seed=seed, dtype=dtype, asymmetry=asymmetry)
    rng = np.random.default_rng(1000 + seed)
    params = {k: (rng.normal(0.0, bias, v.shape) if k.startswith("b:") else v)
              for k, v in net.params.items()}
    return net.copy(params=params)


def make_data(net, seed, batch=BATCH):
    """Inputs in [0, 1] (a dict when the network has several input populations) and targets."""
    rng = np.random.default_rng(seed)
    xs = {p: rng.uniform(0.0, 1.0, (batch, net.sizes[p])) for p in net.inputs}
    x = xs if len(xs) > 1 else xs[net.inputs[0]]
    y = rng.uniform(0.0, 1.0, (batch, net.sizes[net.outputs[0]]))
    return x, y


@dataclass(frozen=True)
class Problem:
    """A network, a batch, and its free fixed point ``s0`` (relaxed and polished)."""

    name: str
    net: ns.Network
    x: object
    y: np.ndarray
    s0: dict
    eps: float = EPS

    @property
    def id(self):
        return self.name


@functools.lru_cache(maxsize=None)
def problem(kind, seed, dynamics="energy", asymmetry=0.0, batch=BATCH):
    """Cached: the network of ``kind``/``seed``, data and the polished free state."""
    net = make_net(kind, seed, dynamics=dynamics, asymmetry=asymmetry)
    x, y = make_data(net, seed, batch)
    s0 = free_state(net, x, eps=EPS)
    return Problem("%s-seed%d" % (kind, seed), net, x, y, s0)


def problems(kinds=TOPOLOGIES, seeds=SEEDS):
    """pytest params ``(kind, seed)`` with readable ids."""
    return [pytest.param(k, s, id="%s-%d" % (k, s)) for k in kinds for s in seeds]


# -- numerical helpers ------------------------------------------------------------------------
def flat(d, keys=None):
    """A parameter dict (or a state dict) -> one float64 vector, keys in a stable order."""
    keys = sorted(d) if keys is None else keys
    return np.concatenate([np.ravel(np.asarray(d[k], dtype=np.float64)) for k in keys])


def norm(d):
    return float(np.linalg.norm(flat(d)))


def rel_err(a, b):
    """``|a - b| / |b|`` over all entries of two dicts with the same keys."""
    return float(np.linalg.norm(flat(a) - flat(b, sorted(a))) / np.linalg.norm(flat(b, sorted(a))))


def state_at(series, k):
    """Entry ``k`` of a time series dict ``pop -> (steps, batch, n)`` as a state dict."""
    return {p: v[k] for p, v in series.items()}


def residual(net, state, x):
    """``max |dE/ds|`` (``max |F|``) at ``state``."""
    return max(float(np.max(np.abs(v))) for v in en.forces(net, state, x).values())


def free_loss(net, x, y, state):
    """The batch-mean loss at the free fixed point of ``net``, found by Newton steps from the
    nearby fixed point ``state`` (of the unperturbed network), with a full relaxation as the
    fallback when Newton does not reach rounding level."""
    s = polish(net, x, state, iters=6)
    if residual(net, s, x) > 1e-13:
        s = free_state(net, x, eps=EPS, state=state)
    assert residual(net, s, x) < 1e-12
    return float(np.mean(en.cost(net, s, y)))


def fd_entry(net, x, y, key, idx, s0, h=1e-5, pair=None):
    """Central finite difference of the loss in ``params[key][idx]`` (and ``[pair]`` together,
    for the two entries of a symmetric lateral matrix)."""
    vals = []
    for sign in (1.0, -1.0):
        params = {k: v.copy() for k, v in net.params.items()}
        params[key][idx] += sign * h
        if pair is not None:
            params[key][pair] += sign * h
        vals.append(free_loss(net.copy(params=params), x, y, state=s0))
    return (vals[0] - vals[1]) / (2.0 * h)


def all_entries(net, keys=None):
    """Every (key, index) of the parameters. Self-projections have a diagonal fixed at zero
    (not a parameter); of an energy-mode lateral matrix only the upper triangle is listed, each
    entry to be perturbed together with its mirror entry."""
    out = []
    for k in (keys or net.params):
        v = net.params[k]
        if is_lateral(net, k):
            out += [(k, (i, j)) for i in range(v.shape[0]) for j in range(i + 1, v.shape[1])]
        elif is_self_loop(k):
            out += [(k, (i, j)) for i in range(v.shape[0]) for j in range(v.shape[1]) if i != j]
        else:
            out += [(k, idx) for idx in np.ndindex(v.shape)]
    return out


def is_self_loop(key):
    """``W:a->a`` (lateral in energy mode, an untied self-projection in vector-field mode)."""
    if not key.startswith("W:"):
        return False
    a, b = key[2:].split("->")
    return a == b


def is_lateral(net, key):
    """A tied (symmetric, zero-diagonal) lateral matrix of an energy-mode network."""
    return is_self_loop(key) and net.dynamics == "energy"


def loglog_slope(xs, ys):
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def check_ep_slopes(net, x, y, eps, betas=(1e-2, 5e-3, 2.5e-3)):
    """EP's error to RBP's implicit gradient falls as beta (one-sided) and beta^2
    (symmetric): log-log slopes 1 and 2 within 15 % (MATH.md section 6)."""
    truth = ns.rbp.gradient(net, x, y, eps=eps, tol=1e-13)
    for variant, slope in (("one_sided", 1.0), ("symmetric", 2.0)):
        errs = [rel_err(ns.ep.gradient(net, x, y, b, variant=variant, eps=eps, tol=1e-13), truth)
                for b in betas]
        assert abs(loglog_slope(betas, errs) - slope) < 0.15 * slope, (variant, errs)


# -- hypothesis ---------------------------------------------------------------------------------
# Property tests are derandomized by default, so the suite is deterministic (DESIGN.md:
# determinism); run with HYPOTHESIS_PROFILE=explore to search new random networks.
try:
    import os

    from hypothesis import settings

    settings.register_profile("default", derandomize=True, deadline=None)
    settings.register_profile("explore", derandomize=False, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
except ImportError:   # hypothesis is a test extra; test_properties.py skips without it
    pass


def circuit_graph_net(activation="logistic", dynamics="energy", seed=2, gain=1.0):
    """The Brian2 circuit tests' non-layered network: two inputs x(5) and z(3), hidden h1(4)
    with a lateral projection, h2(3), output y(3), skip projections x -> h2 and h1 -> y;
    biases drawn N(0, 0.3). Returns ``(net, x, y)`` with a batch of 3."""
    g = nx.DiGraph()
    for n, size, role in [("x", 5, "input"), ("z", 3, "input"), ("h1", 4, "hidden"),
                          ("h2", 3, "hidden"), ("y", 3, "output")]:
        g.add_node(n, size=size, role=role)
    g.add_edges_from([("x", "h1"), ("h1", "h2"), ("h2", "y"), ("x", "h2"), ("z", "h1"),
                      ("h1", "h1"), ("h1", "y")])
    net = ns.Network.from_graph(g, activation=activation, dynamics=dynamics, seed=seed,
                                gain=gain,
                                asymmetry=0.3 if dynamics == "vector_field" else 0.0)
    rng = np.random.default_rng(seed)
    for k in net.params:
        if k.startswith("b:"):
            net.params[k][:] = rng.normal(0, 0.3, net.params[k].shape)
    x = {"x": rng.uniform(0, 1, (3, 5)), "z": rng.uniform(0, 1, (3, 3))}
    return net, x, np.eye(3)[[0, 2, 1]]


@dataclass
class CliResult:
    """What an in-process ``neurosim`` command returned and printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def neurosim_cli(capsys):
    """Run ``neurosim ARGS`` in this process (``neurosim.cli.main``), for tests whose subject
    is not the console script itself (argument checks, what a run writes): the same code
    without the 3-5 s of a fresh interpreter's imports. An argparse rejection
    (``SystemExit``) comes back as its exit status; an unexpected exception propagates."""
    from neurosim import cli

    def run(*args):
        capsys.readouterr()
        try:
            rc = cli.main([str(a) for a in args])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        out = capsys.readouterr()
        return CliResult(rc, out.out, out.err)
    return run


def check_with_libsonata(path):
    """Read every report and spike population of the trace file ``path`` with libsonata (the
    reference SONATA reader) and assert it gives the values h5py reads; returns the number of
    populations read."""
    import h5py
    import libsonata
    n = 0
    with h5py.File(path, "r") as f:
        reports = f.get("report", {})
        reader = libsonata.ElementReportReader(str(path)) if len(reports) else None
        for name, g in reports.items():
            frame = reader[name].get()
            m = g["mapping"]
            data, ip = g["data"][()], m["index_pointers"][()]
            node_ids, element_ids = m["node_ids"][()], m["element_ids"][()]
            want = {}
            for i, node in enumerate(node_ids):
                for c in range(int(ip[i]), int(ip[i + 1])):
                    want[(int(node), int(element_ids[c]))] = data[:, c]
            ids = [tuple(int(v) for v in pair) for pair in np.asarray(frame.ids)]
            got = np.asarray(frame.data)
            assert sorted(ids) == sorted(want), name
            for col, key in enumerate(ids):
                np.testing.assert_array_equal(got[:, col], want[key], err_msg=str((name, key)))
            start, stop, dt = m["time"][()]
            np.testing.assert_allclose(np.asarray(frame.times),
                                       start + dt * np.arange(data.shape[0]))
            assert reader[name].time_units == m["time"].attrs["units"]
            assert reader[name].data_units == g["data"].attrs["units"]
            n += 1
        spikes = f.get("spikes", {})
        sreader = libsonata.SpikeReader(str(path)) if len(spikes) else None
        for name, g in spikes.items():
            d = sreader[name].get_dict()
            got = sorted(zip(np.asarray(d["timestamps"]).tolist(),
                             np.asarray(d["node_ids"]).tolist()))
            want = sorted(zip(g["timestamps"][()].tolist(), g["node_ids"][()].tolist()))
            assert got == want, name
            assert sreader[name].sorting == "by_time"
            n += 1
    return n


def conv_graph(pooling="average"):
    """x (1x8x8) -> conv 3x3 pad 1, pool 2 -> h1 (3x4x4) -> conv 3x3 -> h2 (4x2x2) -> y (3);
    with ``pooling = "max"`` both convolutions max-pool (h1 -> h2 with padding 1 and pool 2),
    so a state population's feedback goes through its switches."""
    g = nx.DiGraph()
    g.add_node("x", size=64, role="input", shape=(1, 8, 8))
    g.add_node("h1", size=48, role="hidden", shape=(3, 4, 4))
    g.add_node("h2", size=16, role="hidden", shape=(4, 2, 2))
    g.add_node("y", size=3, role="output")
    if pooling == "max":
        g.add_edge("x", "h1", kernel=3, padding=1, pool=2, pooling="max")
        g.add_edge("h1", "h2", kernel=3, padding=1, pool=2, pooling="max")
    else:
        g.add_edge("x", "h1", kernel=3, padding=1, pool=2)
        g.add_edge("h1", "h2", kernel=3)
    g.add_edge("h2", "y")
    return g


def conv_max_softmax_network(seed=1, dtype="float64"):
    """:func:`conv_graph` with max pooling and a softmax readout, hard sigmoid: the conv
    network the conformance suite compares engines on."""
    return ns.Network.from_graph(conv_graph("max"), activation="hard_sigmoid",
                                 readout="softmax", seed=seed, gain=1.5, dtype=dtype)


#: the torch engine's device in the tests: the CPU, or a GPU where the run asks for one
#: (``NEUROSIM_TEST_DEVICE=cuda python -m pytest tests/conformance tests/test_accelerator.py``)
TORCH_DEVICE = os.environ.get("NEUROSIM_TEST_DEVICE", "cpu")
