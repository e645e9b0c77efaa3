"""NIR export of spiking circuits (neurosim.brian.nir_export): every weight and bias, the sizes
and roles read back exactly, the documented node types and parameters, the metadata, the file
readable by nir.read itself, and clear errors."""
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
from neurosim.brian.spiking import DEFAULTS  # noqa: E402


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


def _check_nodes(net, graph, p):
    """The documented node types and parameters (seconds, w_in = 1/max_rate, bias = v_leak)."""
    for q in net.graph.nodes:
        node = graph.nodes[q]
        n = net.sizes[q]
        if q in net.inputs:
            assert isinstance(node, nir.Input)
            np.testing.assert_array_equal(node.input_type["input"], [n])
            continue
        assert isinstance(node, nir.CubaLIF), q
        np.testing.assert_allclose(node.tau_syn, np.full(n, p["tau_syn"] * 1e-3))
        np.testing.assert_allclose(node.tau_mem, np.full(n, p["tau_m"] * 1e-3))
        np.testing.assert_allclose(node.w_in, np.full(n, 1.0 / p["max_rate"]))
        np.testing.assert_array_equal(node.r, np.ones(n))
        np.testing.assert_array_equal(node.v_threshold, np.ones(n))
        np.testing.assert_array_equal(node.v_reset, np.zeros(n))
        np.testing.assert_array_equal(node.v_leak, net.params["b:%s" % q])
        assert node.metadata["role"] == net.graph.nodes[q]["role"]
        assert node.metadata["neuron"] == p["neuron"]
    for t in net.terms:                    # one Linear (out, in) per directed pathway
        node = graph.nodes[t.key + (":T" if t.transpose else "")]
        assert isinstance(node, nir.Linear)
        W = net.params[t.key]
        np.testing.assert_array_equal(node.weight, W if t.transpose else W.T)
        assert node.weight.shape == (net.sizes[t.target], net.sizes[t.source])
        name = t.key + (":T" if t.transpose else "")
        assert (str(t.source), name) in graph.edges and (name, str(t.target)) in graph.edges
    outs = {k for k, v in graph.nodes.items() if isinstance(v, nir.Output)}
    assert outs == {"output:%s" % q for q in net.outputs}
    assert len(graph.nodes) == len(net.graph.nodes) + len(net.terms) + len(net.outputs)


def test_layered_round_trip(tmp_path):
    net = _layered()
    path = tmp_path / "layered.nir"
    graph = to_nir(net, path)
    p = dict(DEFAULTS)
    _check_nodes(net, graph, p)
    # tied weights: a feedforward node per projection and the transposed feedback h1 <- y
    assert {k for k, v in graph.nodes.items() if isinstance(v, nir.Linear)} == \
        {"W:x->h1", "W:h1->y", "W:h1->y:T"}
    assert graph.metadata["neuron"] == "poisson"
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
        if isinstance(node, nir.Linear):
            np.testing.assert_array_equal(read.nodes[k].weight, node.weight)
    assert read.metadata["format"] == "neurosim.nir"
    assert read.metadata["neuron"] == "poisson"
    assert float(read.metadata["max_rate"]) == DEFAULTS["max_rate"]


def test_skip_and_lateral_round_trip(tmp_path):
    net = _graph()
    graph = to_nir(net, tmp_path / "g.nir", neuron="lif", max_rate=500.0, tau_syn=5.0)
    p = dict(DEFAULTS, neuron="lif", max_rate=500.0, tau_syn=5.0)
    _check_nodes(net, graph, p)
    linear = {k for k, v in graph.nodes.items() if isinstance(v, nir.Linear)}
    # inputs get no feedback; the lateral projection is one pathway, not two
    assert linear == {"W:x->h1", "W:h1->h2", "W:h1->h2:T", "W:h2->y", "W:h2->y:T", "W:x->y",
                      "W:h2->h2"}
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
    assert "poisson" in m["approximation"]


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
