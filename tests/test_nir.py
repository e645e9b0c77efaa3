"""NIR export of spiking circuits (neurosim.brian.nir_export): every weight and bias, the sizes
and roles read back exactly, the documented node types and parameters, the metadata, the file
readable by nir.read itself, version 1 files, clear errors; and, with snntorch installed
(neurosim[snntorch]), the graph imported and run by snntorch 1.0 for every neuron model, its
output rates compared with neurosim's."""
import json
import os
import sys

import networkx as nx
import numpy as np
import pytest

import neurosim as ns

nir = pytest.importorskip("nir", reason="NIR export needs the nir package (neurosim[nir])")
nb = pytest.importorskip("neurosim.brian", reason="brian2 is not installed")
from neurosim.brian import CircuitError, from_nir, to_nir  # noqa: E402
from neurosim.brian.nir_export import DT, TAU_MEM, input_spikes  # noqa: E402
from neurosim.brian.spiking import DEFAULTS, NEURONS  # noqa: E402


def _layered():
    net = ns.layered([6, 8, 3], seed=3)
    rng = np.random.default_rng(1)
    for k in ("b:h1", "b:y"):
        net.params[k][:] = rng.normal(size=net.params[k].shape)
    return net


def _graph():
    """An input, two hidden populations, a skip projection x -> y and a lateral h2 -> h2."""
    g = nx.DiGraph()
    g.add_node("x", size=5, role="input")
    g.add_node("h1", size=4, role="hidden")
    g.add_node("h2", size=6, role="hidden")
    g.add_node("y", size=3, role="output")
    g.add_edges_from([("x", "h1"), ("h1", "h2"), ("h2", "y"), ("x", "y"), ("h2", "h2")])
    net = ns.Network.from_graph(g, activation="hard_sigmoid", seed=4)
    rng = np.random.default_rng(2)
    for q in ("h1", "h2", "y"):
        net.params["b:%s" % q][:] = rng.uniform(-0.5, 0.5, net.sizes[q])
    return net


def _roles(net):
    return {str(q): net.graph.nodes[q]["role"] for q in net.graph.nodes}


def _check_round_trip(net, back):
    assert back["sizes"] == {str(q): n for q, n in net.sizes.items()}
    assert back["roles"] == _roles(net)
    assert set(back["params"]) == set(net.params)
    for k, v in net.params.items():
        np.testing.assert_array_equal(back["params"][k], v, err_msg=k)


def _bias_pathway(net, q):
    """The documented carrier of b:q: the first incoming pathway that is not lateral."""
    t = sorted((t for t in net.terms if t.target == q), key=lambda t: bool(t.lateral))[0]
    return t.key + (":T" if t.transpose else "")


def _check_nodes(net, graph, p, dt=DT):
    """The documented node types and parameters (seconds, leak-free membrane, r = tau_mem/dt,
    threshold 1 - s/4, biases as Affine b * s, the exact b in the metadata)."""
    s = p["max_rate"] * dt
    for q in net.graph.nodes:
        node = graph.nodes[q]
        n = net.sizes[q]
        if q in net.inputs:
            assert isinstance(node, nir.Input)
            np.testing.assert_array_equal(node.input_type["input"], [n])
            continue
        assert isinstance(node, nir.CubaLIF), q
        np.testing.assert_allclose(node.tau_syn, np.full(n, p["tau_syn"] * 1e-3))
        np.testing.assert_array_equal(node.tau_mem, np.full(n, TAU_MEM))
        np.testing.assert_allclose(node.r, node.tau_mem / dt)      # as snntorch requires
        np.testing.assert_array_equal(node.w_in, np.ones(n))
        np.testing.assert_array_equal(node.v_leak, np.zeros(n))    # snntorch refuses others
        np.testing.assert_allclose(node.v_threshold, np.full(n, 1 - s / 4))
        np.testing.assert_array_equal(node.v_reset, np.zeros(n))
        np.testing.assert_array_equal(node.metadata["bias"], net.params["b:%s" % q])
        assert node.metadata["bias_pathway"] == _bias_pathway(net, q)
        assert node.metadata["role"] == net.graph.nodes[q]["role"]
        assert node.metadata["neuron"] == p["neuron"]
        assert node.metadata["dt"] == dt
    for t in net.terms:                    # one Linear/Affine (out, in) per directed pathway
        name = t.key + (":T" if t.transpose else "")
        node = graph.nodes[name]
        W = net.params[t.key]
        np.testing.assert_array_equal(node.weight, W if t.transpose else W.T)
        assert node.weight.shape == (net.sizes[t.target], net.sizes[t.source])
        if name == _bias_pathway(net, t.target):
            assert isinstance(node, nir.Affine), name
            np.testing.assert_allclose(node.bias, net.params["b:%s" % t.target] * s)
        else:
            assert type(node) is nir.Linear, name
        assert (str(t.source), name) in graph.edges and (name, str(t.target)) in graph.edges
    outs = {k for k, v in graph.nodes.items() if isinstance(v, nir.Output)}
    assert outs == {"output:%s" % q for q in net.outputs}
    assert len(graph.nodes) == len(net.graph.nodes) + len(net.terms) + len(net.outputs)
    assert graph.metadata["format_version"] == 2 and graph.metadata["dt"] == dt
    assert graph.metadata["bias_scale"] == s and graph.metadata["bias"] == "affine"


def _pathways(graph):
    return {k: type(v).__name__ for k, v in graph.nodes.items()
            if isinstance(v, (nir.Linear, nir.Affine))}


def test_layered_round_trip(tmp_path):
    net = _layered()
    path = tmp_path / "layered.nir"
    graph = to_nir(net, path)
    p = dict(DEFAULTS)
    _check_nodes(net, graph, p)
    # tied weights: a feedforward node per projection and the transposed feedback h1 <- y;
    # the biases ride on the feedforward ones
    assert _pathways(graph) == {"W:x->h1": "Affine", "W:h1->y": "Affine", "W:h1->y:T": "Linear"}
    assert graph.metadata["neuron"] == DEFAULTS["neuron"]
    _check_round_trip(net, from_nir(graph))
    _check_round_trip(net, from_nir(path))
    _check_round_trip(net, from_nir(str(path)))
    assert sorted(os.listdir(tmp_path)) == ["layered.nir"]     # no temporary left behind


def test_file_is_plain_nir(tmp_path):
    """nir.read loads the file by itself (type checks on), with the same nodes and edges."""
    net = _graph()
    path = tmp_path / "graph.nir"
    graph = to_nir(net, path)
    read = nir.read(path)
    assert isinstance(read, nir.NIRGraph)
    assert set(read.nodes) == set(graph.nodes)
    assert sorted(read.edges) == sorted(graph.edges)
    for k, node in graph.nodes.items():
        assert type(read.nodes[k]) is type(node)
        if isinstance(node, (nir.Linear, nir.Affine)):
            np.testing.assert_array_equal(read.nodes[k].weight, node.weight)
        if isinstance(node, nir.CubaLIF):
            np.testing.assert_array_equal(read.nodes[k].metadata["bias"], node.metadata["bias"])
    assert read.metadata["format"] == "neurosim.nir"
    assert read.metadata["neuron"] == DEFAULTS["neuron"]
    assert float(read.metadata["max_rate"]) == DEFAULTS["max_rate"]


def test_skip_and_lateral_round_trip(tmp_path):
    net = _graph()
    graph = to_nir(net, tmp_path / "g.nir", neuron="lif", max_rate=500.0, tau_syn=5.0)
    p = dict(DEFAULTS, neuron="lif", max_rate=500.0, tau_syn=5.0)
    _check_nodes(net, graph, p)
    # inputs get no feedback; the lateral projection is one pathway, not two
    assert set(_pathways(graph)) == {"W:x->h1", "W:h1->h2", "W:h1->h2:T", "W:h2->y",
                                     "W:h2->y:T", "W:x->y", "W:h2->h2"}
    assert list(_pathways(graph).values()).count("Affine") == 3       # one per state population
    assert _pathways(graph)["W:h2->h2"] == "Linear"                    # never the lateral one
    assert graph.nodes["W:h2->h2"].metadata["lateral"]
    np.testing.assert_array_equal(np.diag(graph.nodes["W:h2->h2"].weight), 0)
    back = from_nir(tmp_path / "g.nir")
    _check_round_trip(net, back)
    assert list(back["sizes"]) == [str(q) for q in net.graph.nodes]     # network order kept
    assert list(back["params"])[:len(net.projections)] == net.projections
    m = back["metadata"]
    assert m["neuron"] == "lif" and m["max_rate"] == 500.0 and m["tau_syn"] == 5.0
    assert m["activation"] == "hard_sigmoid" and m["dynamics"] == "energy"
    assert m["populations"] == [[str(q), net.graph.nodes[q]["role"], net.sizes[q]]
                                for q in net.graph.nodes]
    # rebuild the network from what was read back: identical parameters
    g = nx.DiGraph()
    for q, role, n in m["populations"]:
        g.add_node(q, size=n, role=role)
    g.add_edges_from(tuple(k[2:].split("->")) for k in m["projections"])
    rebuilt = ns.Network(g, back["params"], activation=m["activation"], dynamics=m["dynamics"])
    _check_round_trip(rebuilt, back)


@pytest.mark.parametrize("neuron", ["lif", "poisson"])
def test_spiking_circuit_round_trip(tmp_path, neuron):
    net = _graph()
    circuit = nb.compile(net, model="spiking", neuron=neuron, max_rate=800.0, tau=12.0,
                         tau_m=50.0, clip=True)
    path = tmp_path / ("%s.nir" % neuron)
    graph = to_nir(circuit, path)
    _check_nodes(net, graph, circuit.params)
    back = from_nir(nir.read(path))
    _check_round_trip(net, back)
    m = back["metadata"]
    assert m["neuron"] == neuron and m["max_rate"] == 800.0
    assert m["tau"] == 12.0 and m["tau_m"] == 50.0 and m["eps"] == circuit.params["eps"]
    assert m["clip"] is True and m["activation"] == "hard_sigmoid"
    for k, v in circuit.params.items():
        assert m[k] == v, k
    for q in net.state_pops:
        meta = graph.nodes[q].metadata
        assert meta["neuron"] == neuron and meta["max_rate"] == 800.0
        assert meta["reset"] == ("subtract" if neuron == "lif" else "none (poisson spikes)")
    assert "poisson" in m["approximation"] and m["dt"] == DT


def test_float32_and_parameter_override():
    net = _layered().copy(dtype="float32")
    circuit = nb.compile(net, model="spiking", neuron="lif")
    graph = to_nir(circuit, neuron="poisson", max_rate=200.0)   # overrides, checked
    assert graph.metadata["neuron"] == "poisson" and graph.metadata["max_rate"] == 200.0
    back = from_nir(graph)
    _check_round_trip(net, back)
    assert back["params"]["W:x->h1"].dtype == np.float32
    assert circuit.params["max_rate"] == DEFAULTS["max_rate"]     # the circuit is unchanged


def test_errors(tmp_path, monkeypatch):
    net = _layered()
    with pytest.raises(CircuitError, match="SpikingCircuit or a neurosim Network, got dict"):
        to_nir({"W:x->h1": 1})
    with pytest.raises(CircuitError, match="RateCircuit.*model='spiking'"):
        to_nir(nb.compile(net, model="rate"))
    vf = ns.layered([3, 4, 2], dynamics="vector_field")
    with pytest.raises(CircuitError, match="energy dynamics.*vector_field"):
        to_nir(vf)
    with pytest.raises(CircuitError, match="unknown spiking-circuit parameter.*tau_x"):
        to_nir(net, tau_x=3.0)
    with pytest.raises(CircuitError, match="max_rate"):
        to_nir(net, max_rate=-1.0)
    with pytest.raises(CircuitError, match="'seed' is not a parameter"):
        to_nir(net, seed=3)
    with pytest.raises(CircuitError, match="path must be a file path.*int"):
        to_nir(net, 5)
    with pytest.raises(CircuitError, match="neurosim Network"):
        to_nir(nb.compile(net, model="spiking").net.graph)
    g = nx.DiGraph()
    g.add_node("in/put", size=2, role="input")
    g.add_node("y", size=2, role="output")
    g.add_edge("in/put", "y")
    with pytest.raises(CircuitError, match="'in/put' cannot name a NIR node"):
        to_nir(ns.Network.from_graph(g))

    with pytest.raises(CircuitError, match="nir.NIRGraph or the path.*list"):
        from_nir([1, 2])
    with pytest.raises(CircuitError, match="no NIR file at"):
        from_nir(tmp_path / "missing.nir")
    bad = tmp_path / "bad.nir"
    bad.write_text("not hdf5")
    with pytest.raises(CircuitError, match="not a readable NIR file"):
        from_nir(bad)
    foreign = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 3))))
    with pytest.raises(CircuitError, match="format"):
        from_nir(foreign)
    graph = to_nir(net)
    graph.nodes["W:h1->y:T"].weight = graph.nodes["W:h1->y:T"].weight + 1.0
    with pytest.raises(CircuitError, match="tied weight 'W:h1->y'.*feedback"):
        from_nir(graph)

    # a failed write leaves nothing behind, and an existing file untouched
    target = tmp_path / "keep.nir"
    target.write_bytes(b"old")

    def boom(filename, graph):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(nir, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        to_nir(net, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nir", "keep.nir"]


def test_missing_nir_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)     # import nir -> ImportError
    with pytest.raises(CircuitError, match=r'pip install "neurosim\[nir\]"'):
        to_nir(_layered())
    with pytest.raises(CircuitError, match=r'pip install "neurosim\[nir\]"'):
        from_nir("whatever.nir")


def test_metadata_is_json_decoded():
    graph = to_nir(_graph())
    assert json.loads(graph.metadata["projections"]) == _graph().projections


def test_version_1_still_reads(tmp_path):
    """A format-1 file (CubaLIF nodes with the biases in v_leak, Linear pathways) reads back."""
    net = _graph()
    graph = to_nir(net)
    for name, node in list(graph.nodes.items()):
        if isinstance(node, nir.CubaLIF):
            meta = dict(node.metadata)
            b = meta.pop("bias")
            graph.nodes[name] = nir.CubaLIF(
                tau_syn=node.tau_syn, tau_mem=node.tau_syn, r=np.ones_like(b), v_leak=b,
                v_threshold=np.ones_like(b), v_reset=np.zeros_like(b), w_in=node.w_in,
                metadata=meta)
        elif isinstance(node, nir.Affine):
            graph.nodes[name] = nir.Linear(weight=node.weight, metadata=node.metadata)
    graph.metadata.update(format_version=1, bias="v_leak")
    nir.write(tmp_path / "v1.nir", graph)
    _check_round_trip(net, from_nir(tmp_path / "v1.nir"))


def test_bias_and_dt_errors():
    net = _layered()
    graph = to_nir(net)
    graph.nodes["W:h1->y"].bias = graph.nodes["W:h1->y"].bias + 0.5    # what snntorch runs
    with pytest.raises(CircuitError, match="Affine pathway 'W:h1->y'.*b:y"):
        from_nir(graph)
    graph = to_nir(net)
    del graph.nodes["h1"].metadata["bias"]
    with pytest.raises(CircuitError, match="'h1' has no bias metadata"):
        from_nir(graph)
    graph = to_nir(net)
    graph.metadata["format_version"] = 3
    with pytest.raises(CircuitError, match="format_version 3"):
        from_nir(graph)
    for bad in (0.0, -1e-4, float("nan"), "1e-4", True):
        with pytest.raises(CircuitError, match="dt must be a positive number"):
            to_nir(net, dt=bad)
    with pytest.raises(CircuitError, match="dt = 0.002 s.*at most 0.001 s"):
        to_nir(net, dt=2e-3)                      # 2 spikes per step at 1 kHz
    with pytest.raises(CircuitError, match="longer than tau_syn"):
        to_nir(net, dt=1e-3, tau_syn=0.5, eps=0.05)
    # another step: r and the bias scale follow it (snntorch, whose step is 0.1 ms, refuses it)
    graph = to_nir(net, dt=5e-4)
    _check_nodes(net, graph, dict(DEFAULTS), dt=5e-4)
    _check_round_trip(net, from_nir(graph))


def test_input_spikes():
    x = np.array([[0.0, 0.25, 0.5, 1.0], [0.1, 0.3, 0.7, 0.9]])
    S = input_spikes(x, 2000, 1000.0)             # 0.1 spikes per step at x = 1
    assert S.shape == (2000, 2, 4) and S.dtype == np.float32
    assert set(np.unique(S)) <= {0.0, 1.0}
    np.testing.assert_allclose(S.sum(axis=0), x * 200, atol=1)
    np.testing.assert_array_equal(input_spikes(x[0], 10, 1000.0)[:, 0], S[:10, 0])
    with pytest.raises(CircuitError, match=r"rates in \[0, 1\]"):
        input_spikes(x + 1, 10, 1000.0)
    with pytest.raises(CircuitError, match="max_rate \\* dt"):
        input_spikes(x, 10, 1e5)


# -- snntorch runs the graph ---------------------------------------------------------------
STEPS = 6000      # 0.6 s at snntorch's 0.1 ms step; rates over the last half


def _comparison_net():
    """6-8-3, hard sigmoid, half the default weight scale and biases in [0, 0.4]: the fixed
    point stays inside the hard sigmoid's linear range (no output saturates)."""
    net = ns.layered([6, 8, 3], activation="hard_sigmoid", seed=1, gain=0.5)
    rng = np.random.default_rng(101)
    for q in net.state_pops:
        net.params["b:%s" % q][:] = rng.uniform(0.0, 0.4, net.sizes[q])
    return net


def _snntorch_rates(path, x, steps=STEPS):
    """Output rates (units of max_rate) of the graph at ``path`` imported by snntorch and run
    ``steps`` steps on ``input_spikes(x)``; the rates over the last half."""
    pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    torch = pytest.importorskip("torch")
    from snntorch.import_nir import import_from_nir
    graph = nir.read(path)                       # what another framework would load
    module = import_from_nir(graph)
    max_rate = float(graph.metadata["max_rate"])
    S = input_spikes(x, steps, max_rate, float(graph.metadata["dt"]))
    out, state = [], None
    with torch.no_grad():
        for k in range(steps):
            spk, state = module(torch.from_numpy(S[k]), state)
            out.append(spk.numpy())
    out = np.asarray(out)
    assert set(np.unique(out)) <= {0.0, 1.0}
    return out[steps // 2:].mean(axis=0) / (max_rate * float(graph.metadata["dt"]))


# Measured (rates in units of max_rate; this net, x seeded 1): snntorch vs the fixed point
# 0.013 (at most 0.021 over four nets and inputs), vs the LIF circuit 0.011 (at most 0.013),
# vs the Poisson circuit 0.032 (its own spike noise: 0.03-0.06 from the fixed point over
# 2000 steps). With threshold 1 instead of 1 - s/4 the first gap is 0.053. "if" is not
# measured here yet (its tolerance is the LIF one plus 0.01).
TOL_FIXED_POINT = 0.035
TOL_CIRCUIT = {"lif": 0.03, "if": 0.04, "poisson": 0.1}
CIRCUIT_STEPS = {"poisson": 4000}           # steps of 1 ms; rates over the last half


@pytest.mark.parametrize("neuron", ["poisson", "lif", "if", "sigma_delta"])
def test_snntorch_runs_export(tmp_path, neuron):
    """snntorch 1.0 imports the written file and, run on spike trains at x * max_rate, fires
    at neurosim's rates: the free fixed point rho(u*) and the spiking circuit's output rates."""
    if neuron not in NEURONS:
        pytest.skip("neuron %r is not in this neurosim's NEURONS %s" % (neuron, NEURONS))
    pytest.importorskip("snntorch")
    net = _comparison_net()
    x = np.random.default_rng(1).uniform(0, 1, (4, 6))
    path = tmp_path / ("%s.nir" % neuron)
    graph = to_nir(net, path, neuron=neuron)
    assert graph.metadata["neuron"] == neuron and graph.nodes["y"].metadata["neuron"] == neuron
    _check_round_trip(net, from_nir(path))
    rates = _snntorch_rates(path, x)
    fp = ns.fixed_point.free_fixed_point(net, x, clip=True).state
    expected = np.clip(fp["y"], 0, 1)
    assert 0 < expected.max() < 1 and np.clip(fp["h1"], 0, 1).max() < 1    # linear range
    assert np.abs(rates - expected).max() < TOL_FIXED_POINT, (rates, expected)
    if neuron in TOL_CIRCUIT:                     # sigma_delta's events are not spikes
        circuit = nb.compile(net, model="spiking", neuron=neuron, clip=True, seed=1)
        measured = circuit.free_rates(x, CIRCUIT_STEPS.get(neuron, 1000))["y"]
        assert np.abs(rates - measured).max() < TOL_CIRCUIT[neuron], (rates, measured)


def test_snntorch_does_not_saturate(tmp_path):
    """What does not hold: a unit driven above 1 fires above max_rate in snntorch, where
    neurosim's saturates at rho = 1 (no NIR neuron snntorch runs saturates)."""
    pytest.importorskip("snntorch")
    net = _comparison_net()
    net.params["b:y"][:] = 1.5
    x = np.random.default_rng(1).uniform(0, 1, (2, 6))
    to_nir(net, tmp_path / "sat.nir", neuron="lif")
    rates = _snntorch_rates(tmp_path / "sat.nir", x, steps=2000)
    fp = ns.fixed_point.free_fixed_point(net, x, clip=True).state
    np.testing.assert_array_equal(np.clip(fp["y"], 0, 1), 1.0)
    assert rates.min() > 1.3
