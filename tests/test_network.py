"""Networks: builders, topologies, parameters, dtypes, determinism (MATH.md section 1)."""
import networkx as nx
import numpy as np
import pytest

import neurosim as ns
from neurosim.energy import energy


def graph(nodes, edges):
    """A DiGraph from ``{name: (size, role)}`` and a list of edges."""
    g = nx.DiGraph()
    for name, (size, role) in nodes.items():
        g.add_node(name, size=size, role=role)
    g.add_edges_from(edges)
    return g


def batch(net, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return {p: rng.random((n, net.sizes[p])) for p in net.inputs}


# -- layered --------------------------------------------------------------------------------
def test_layered_names_roles_shapes():
    net = ns.layered([6, 5, 4, 3], seed=0)
    assert isinstance(net, ns.Network)
    assert list(net.graph.nodes) == ["x", "h1", "h2", "y"]
    roles = {n: net.graph.nodes[n]["role"] for n in net.graph.nodes}
    assert roles == {"x": "input", "h1": "hidden", "h2": "hidden", "y": "output"}
    assert {n: net.graph.nodes[n]["size"] for n in net.graph.nodes} == \
        {"x": 6, "h1": 5, "h2": 4, "y": 3}
    assert net.inputs == ["x"] and net.outputs == ["y"]
    assert net.state_pops == ["h1", "h2", "y"]
    assert net.n_state == 12
    assert set(net.params) == {"W:x->h1", "W:h1->h2", "W:h2->y", "b:h1", "b:h2", "b:y"}
    assert net.params["W:x->h1"].shape == (6, 5)
    assert net.params["W:h1->h2"].shape == (5, 4)
    assert net.params["W:h2->y"].shape == (4, 3)
    assert net.params["b:h1"].shape == (5,) and net.params["b:y"].shape == (3,)
    assert all(v.dtype == np.float64 for v in net.params.values())
    assert all(not np.any(net.params["b:%s" % p]) for p in net.state_pops)   # zero biases
    assert net.activation == "logistic" and net.dynamics == "energy"
    assert net.projections == ["W:x->h1", "W:h1->h2", "W:h2->y"]


def test_layered_two_layers_has_no_hidden():
    net = ns.layered([3, 2])
    assert list(net.graph.nodes) == ["x", "y"]
    assert set(net.params) == {"W:x->y", "b:y"}


def test_layered_custom_names():
    net = ns.layered([4, 3, 2], names=["pix", "hid", "cls"])
    assert net.inputs == ["pix"] and net.outputs == ["cls"]
    assert set(net.params) == {"W:pix->hid", "W:hid->cls", "b:hid", "b:cls"}


def test_layered_skip_connection():
    net = ns.layered([6, 5, 4, 3], skip=[(0, 2), (1, 3)], seed=1)
    assert net.graph.has_edge("x", "h2") and net.graph.has_edge("h1", "y")
    assert net.params["W:x->h2"].shape == (6, 4)
    assert net.params["W:h1->y"].shape == (5, 3)
    x = batch(net)
    res = ns.relax(net, x)
    assert res.converged and res.state["y"].shape == (3, 3)


# -- from_graph on arbitrary topologies -----------------------------------------------------
def test_from_graph_skip_connection_is_used_by_the_dynamics():
    g = graph({"x": (4, "input"), "h": (5, "hidden"), "y": (2, "output")},
              [("x", "h"), ("h", "y"), ("x", "y")])
    net = ns.Network.from_graph(g, seed=3)
    assert net.params["W:x->y"].shape == (4, 2)
    x = batch(net)
    s = ns.relax(net, x).state
    params = dict(net.params)
    params["W:x->y"] = np.zeros_like(params["W:x->y"])
    s_cut = ns.relax(net.copy(params=params), x).state
    assert not np.allclose(s["y"], s_cut["y"])


def test_from_graph_two_input_populations():
    g = graph({"a": (3, "input"), "b": (2, "input"), "h": (4, "hidden"), "y": (2, "output")},
              [("a", "h"), ("b", "h"), ("h", "y")])
    net = ns.Network.from_graph(g, seed=0)
    assert net.inputs == ["a", "b"] and net.state_pops == ["h", "y"]
    assert net.params["W:a->h"].shape == (3, 4) and net.params["W:b->h"].shape == (2, 4)
    assert "b:a" not in net.params and "b:b" not in net.params
    x = batch(net)
    res = ns.relax(net, x)
    assert res.converged
    # both inputs drive the network
    x2 = dict(x, b=1.0 - x["b"])
    assert not np.allclose(ns.relax(net, x2).state["y"], res.state["y"])


def test_lateral_self_projection_energy_mode_symmetric_zero_diagonal():
    g = graph({"x": (4, "input"), "h": (6, "hidden"), "y": (2, "output")},
              [("x", "h"), ("h", "h"), ("h", "y")])
    net = ns.Network.from_graph(g, seed=0, dynamics="energy")
    w = net.params["W:h->h"]
    assert w.shape == (6, 6)
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(np.diag(w), 0.0)
    assert np.any(w != 0)
    lateral = [t for t in net.terms if t.key == "W:h->h"]
    assert len(lateral) == 1 and lateral[0].lateral
    res = ns.relax(net, batch(net), record=True)
    assert res.converged


def test_lateral_self_projection_vector_field_mode():
    g = graph({"x": (4, "input"), "h": (6, "hidden"), "y": (2, "output")},
              [("x", "h"), ("h", "h"), ("h", "y")])
    tied = ns.Network.from_graph(g, seed=0, dynamics="vector_field")
    w = tied.params["W:h->h"]
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(np.diag(w), 0.0)
    loose = ns.Network.from_graph(g, seed=0, dynamics="vector_field", asymmetry=0.5)
    w = loose.params["W:h->h"]
    assert not np.allclose(w, w.T)
    np.testing.assert_array_equal(np.diag(w), 0.0)


def test_cycle_among_hidden_populations():
    g = graph({"x": (4, "input"), "h1": (5, "hidden"), "h2": (4, "hidden"), "h3": (3, "hidden"),
               "y": (2, "output")},
              [("x", "h1"), ("h1", "h2"), ("h2", "h3"), ("h3", "h1"), ("h3", "y")])
    net = ns.Network.from_graph(g, seed=2)
    assert {"W:h1->h2", "W:h2->h3", "W:h3->h1"} <= set(net.params)
    assert net.params["W:h3->h1"].shape == (3, 5)
    x = batch(net)
    res = ns.relax(net, x, record=True)
    assert res.converged
    e = energy(net, {p: res.trajectory[p][0] for p in net.state_pops}, x)
    e_end = energy(net, res.state, x)
    assert np.all(e_end < e)
    vf = ns.Network.from_graph(g, seed=2, dynamics="vector_field")
    assert {"W:h2->h1", "W:h3->h2", "W:h1->h3"} <= set(vf.params)
    assert ns.relax(vf, x).converged


def test_integer_population_names():
    g = graph({0: (3, "input"), 1: (4, "hidden"), 2: (2, "output")}, [(0, 1), (1, 2)])
    net = ns.Network.from_graph(g)
    assert set(net.params) == {"W:0->1", "W:1->2", "b:1", "b:2"}
    assert ns.relax(net, np.full((2, 3), 0.5)).converged


# -- vector-field dynamics ------------------------------------------------------------------
def test_vector_field_creates_both_directions_tied_at_zero_asymmetry():
    net = ns.layered([5, 4, 3], dynamics="vector_field", asymmetry=0.0, seed=0)
    assert set(net.params) == {"W:x->h1", "W:h1->y", "W:y->h1", "b:h1", "b:y"}
    assert "W:h1->x" not in net.params   # inputs get only forward matrices
    assert net.params["W:h1->y"].shape == (4, 3)
    assert net.params["W:y->h1"].shape == (3, 4)
    np.testing.assert_array_equal(net.params["W:y->h1"], net.params["W:h1->y"].T)


def test_vector_field_tied_equals_energy_mode():
    e = ns.layered([5, 4, 3], dynamics="energy", seed=7)
    v = ns.layered([5, 4, 3], dynamics="vector_field", seed=7)
    np.testing.assert_array_equal(e.params["W:h1->y"], v.params["W:h1->y"])
    x = batch(e)
    np.testing.assert_allclose(ns.relax(e, x).state["y"], ns.relax(v, x).state["y"], atol=1e-9)


def test_vector_field_asymmetry_unties_feedback():
    net = ns.layered([5, 4, 3, 2], dynamics="vector_field", asymmetry=0.3, seed=0)
    for a, b in (("h1", "h2"), ("h2", "y")):
        fwd, bwd = net.params["W:%s->%s" % (a, b)], net.params["W:%s->%s" % (b, a)]
        assert bwd.shape == fwd.T.shape
        assert not np.allclose(bwd, fwd.T)
    assert not any(k.endswith("->x") for k in net.params)
    # the forward matrices do not depend on the asymmetry
    tied = ns.layered([5, 4, 3, 2], dynamics="vector_field", asymmetry=0.0, seed=0)
    np.testing.assert_array_equal(net.params["W:x->h1"], tied.params["W:x->h1"])


def test_vector_field_explicit_reverse_edge_is_not_duplicated():
    g = graph({"x": (3, "input"), "h": (4, "hidden"), "y": (2, "output")},
              [("x", "h"), ("h", "y"), ("y", "h")])
    net = ns.Network.from_graph(g, dynamics="vector_field", seed=0)
    assert set(net.params) == {"W:x->h", "W:h->y", "W:y->h", "b:h", "b:y"}
    assert sum(t.target == "h" and t.source == "y" for t in net.terms) == 1
    assert sum(t.target == "y" and t.source == "h" for t in net.terms) == 1


# -- initialisation -------------------------------------------------------------------------
def test_seeded_init_is_deterministic():
    a = ns.layered([6, 5, 4], seed=11)
    b = ns.layered([6, 5, 4], seed=11)
    c = ns.layered([6, 5, 4], seed=12)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert any(not np.array_equal(a.params[k], c.params[k]) for k in a.projections)
    va = ns.layered([6, 5, 4], dynamics="vector_field", asymmetry=0.2, seed=11)
    vb = ns.layered([6, 5, 4], dynamics="vector_field", asymmetry=0.2, seed=11)
    for k in va.params:
        np.testing.assert_array_equal(va.params[k], vb.params[k])


def test_glorot_uniform_scale():
    n_in, n_out = 300, 200
    net = ns.layered([n_in, n_out], seed=0)
    w = net.params["W:x->y"]
    limit = np.sqrt(6.0 / (n_in + n_out))
    assert np.max(np.abs(w)) <= limit
    assert np.max(np.abs(w)) > 0.99 * limit
    assert abs(np.std(w) - limit / np.sqrt(3.0)) < 0.02 * limit   # uniform(-a, a): std a/sqrt(3)
    assert abs(np.mean(w)) < 0.01 * limit
    w2 = ns.layered([n_in, n_out], seed=0, gain=2.0).params["W:x->y"]
    np.testing.assert_allclose(w2, 2.0 * w)


def test_float32_keeps_params_float32():
    net = ns.layered([5, 4, 3], dtype="float32", seed=0)
    assert net.dtype == np.float32
    assert all(v.dtype == np.float32 for v in net.params.values())
    x = np.random.default_rng(0).random((2, 5))
    res = ns.relax(net, x, tol=1e-5)
    assert all(v.dtype == np.float32 for v in res.state.values())
    assert all(v.dtype == np.float32 for v in net.params.values())
    net64 = ns.layered([5, 4, 3], dtype="float64", seed=0)
    np.testing.assert_allclose(net.params["W:x->h1"], net64.params["W:x->h1"], rtol=1e-6)
    assert ns.layered([5, 3], dtype=np.float32).dtype == np.float32


def test_copy_is_independent():
    net = ns.layered([5, 4, 3], seed=0)
    c = net.copy()
    assert c is not net and c.graph is not net.graph
    assert set(c.params) == set(net.params)
    for k in net.params:
        np.testing.assert_array_equal(c.params[k], net.params[k])
        assert c.params[k] is not net.params[k]
    c.params["W:x->h1"][0, 0] += 1.0
    assert c.params["W:x->h1"][0, 0] != net.params["W:x->h1"][0, 0]
    c.graph.nodes["h1"]["size"] = 99
    assert net.graph.nodes["h1"]["size"] == 4
    assert (c.activation, c.dynamics, c.dtype) == (net.activation, net.dynamics, net.dtype)


def test_copy_with_params_and_dtype():
    net = ns.layered([5, 4, 3], seed=0)
    zero = net.zero_params()
    c = net.copy(params=zero)
    assert all(not np.any(v) for v in c.params.values())
    assert any(np.any(v) for v in net.params.values())
    c32 = net.copy(dtype="float32")
    assert all(v.dtype == np.float32 for v in c32.params.values())
    assert all(v.dtype == np.float64 for v in net.params.values())


def test_constructor_round_trip():
    net = ns.layered([5, 4, 3], activation="hard_sigmoid", seed=0)
    again = ns.Network(net.graph, net.params, activation="hard_sigmoid")
    for k in net.params:
        np.testing.assert_array_equal(again.params[k], net.params[k])
        assert again.params[k] is not net.params[k]
    assert "hard_sigmoid" in repr(again) and "h1:4(hidden)" in repr(again)


# -- inputs ---------------------------------------------------------------------------------
def test_inputs_accept_lists_dicts_and_bools():
    net = ns.layered([3, 2, 2])
    a = ns.relax(net, [[0.0, 1.0, 1.0]]).state["y"]
    b = ns.relax(net, {"x": np.array([[False, True, True]])}).state["y"]
    np.testing.assert_array_equal(a, b)


# -- energy decreases along a free relaxation -----------------------------------------------
@pytest.mark.parametrize("topology", ["layered", "skip_lateral"])
def test_energy_decreases_along_free_relaxation(topology):
    if topology == "layered":
        net = ns.layered([6, 5, 4, 3], activation="logistic", seed=4, gain=1.5)
    else:
        g = graph({"x": (5, "input"), "h": (6, "hidden"), "y": (3, "output")},
                  [("x", "h"), ("h", "h"), ("h", "y"), ("x", "y")])
        net = ns.Network.from_graph(g, activation="logistic", seed=4, gain=1.5)
    x = batch(net, n=4)
    res = ns.relax(net, x, eps=0.1, record=True)
    assert res.converged
    traj = res.trajectory
    assert traj["y"].shape == (res.steps + 1, 4, 3)
    e = np.array([energy(net, {p: traj[p][k] for p in net.state_pops}, x)
                  for k in range(res.steps + 1)])
    assert np.all(np.diff(e, axis=0) <= 1e-12)
    assert np.all(e[-1] < e[0] - 1e-3)
