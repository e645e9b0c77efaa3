"""Bad input gets a clear error that names the culprit (DESIGN.md, "Rules for the whole code
base"). One test per case; each checks the exception type and that the message names the
field, argument or population at fault."""
import re
import warnings

import networkx as nx
import numpy as np
import pytest

import neurosim as ns
from neurosim import NetworkError, RBPConvergenceError, RelaxationError


def graph(nodes, edges):
    g = nx.DiGraph()
    for name, attrs in nodes.items():
        if isinstance(attrs, tuple):
            attrs = {"size": attrs[0], "role": attrs[1]}
        g.add_node(name, **attrs)
    g.add_edges_from(edges)
    return g


def good_nodes():
    return {"x": (3, "input"), "h": (4, "hidden"), "y": (2, "output")}


@pytest.fixture(scope="module")
def net():
    return ns.layered([4, 5, 3], seed=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((3, 4)), rng.random((3, 3))


@pytest.fixture(scope="module")
def two_inputs():
    g = graph({"a": (3, "input"), "b": (2, "input"), "h": (4, "hidden"), "y": (2, "output")},
              [("a", "h"), ("b", "h"), ("h", "y")])
    return ns.Network.from_graph(g, seed=0)


# -- graphs ---------------------------------------------------------------------------------
def test_cycle_through_input():
    g = graph(good_nodes(), [("x", "h"), ("h", "y"), ("y", "x")])
    with pytest.raises(NetworkError, match=r"cycle through input population 'x': x -> h -> y -> x"):
        ns.Network.from_graph(g)


def test_self_loop_on_input():
    g = graph(good_nodes(), [("x", "x"), ("x", "h"), ("h", "y")])
    with pytest.raises(NetworkError, match=r"cycle through input population 'x': x -> x"):
        ns.Network.from_graph(g)


def test_input_with_incoming_edges():
    nodes = dict(good_nodes(), x2=(2, "input"))
    g = graph(nodes, [("x", "h"), ("h", "y"), ("h", "x2")])
    with pytest.raises(NetworkError, match=r"input population 'x2' has incoming projections "
                                           r"from \['h'\]"):
        ns.Network.from_graph(g)


def test_no_output_population():
    g = graph({"x": (3, "input"), "h": (4, "hidden")}, [("x", "h")])
    with pytest.raises(NetworkError, match="no output population"):
        ns.Network.from_graph(g)


def test_no_input_population():
    g = graph({"h": (3, "hidden"), "y": (2, "output")}, [("h", "y")])
    with pytest.raises(NetworkError, match="no input population"):
        ns.Network.from_graph(g)


def test_empty_graph():
    with pytest.raises(NetworkError, match="no populations"):
        ns.Network.from_graph(nx.DiGraph())


def test_graph_not_a_digraph():
    with pytest.raises(NetworkError, match="graph must be a networkx.DiGraph, got Graph"):
        ns.Network.from_graph(nx.Graph())


@pytest.mark.parametrize("size", [0, -3, 2.5, "4", True, None])
def test_bad_size(size):
    nodes = dict(good_nodes(), h=(size, "hidden"))
    g = graph(nodes, [("x", "h"), ("h", "y")])
    with pytest.raises(NetworkError, match=r"population 'h': size must be a positive integer, "
                                           r"got %s" % re.escape(repr(size))):
        ns.Network.from_graph(g)


def test_missing_size():
    nodes = dict(good_nodes(), h={"role": "hidden"})
    g = graph(nodes, [("x", "h"), ("h", "y")])
    with pytest.raises(NetworkError, match="population 'h' has no 'size' attribute"):
        ns.Network.from_graph(g)


@pytest.mark.parametrize("sizes,culprit", [([4, 0, 2], "h1"), ([4, 5, -3], "y"),
                                           ([2.5, 3], "x")])
def test_layered_bad_size_names_the_layer(sizes, culprit):
    with pytest.raises(NetworkError, match="population '%s': size must be a positive integer"
                                           % culprit):
        ns.layered(sizes)


def test_unknown_role():
    nodes = dict(good_nodes(), h=(4, "visible"))
    g = graph(nodes, [("x", "h"), ("h", "y")])
    with pytest.raises(NetworkError, match=r"population 'h': role must be one of .*got 'visible'"):
        ns.Network.from_graph(g)


def test_missing_role():
    nodes = dict(good_nodes(), h={"size": 4})
    g = graph(nodes, [("x", "h"), ("h", "y")])
    with pytest.raises(NetworkError, match="population 'h' has no 'role' attribute"):
        ns.Network.from_graph(g)


def test_population_name_with_arrow():
    nodes = {"x": (3, "input"), "a->b": (4, "hidden"), "y": (2, "output")}
    g = graph(nodes, [("x", "a->b"), ("a->b", "y")])
    with pytest.raises(NetworkError, match=r"population name 'a->b' may not contain"):
        ns.Network.from_graph(g)


def test_population_names_clash_as_strings():
    g = graph({"x": (3, "input"), 1: (4, "hidden"), "1": (4, "hidden"), "y": (2, "output")},
              [("x", 1), ("x", "1"), (1, "y"), ("1", "y")])
    with pytest.raises(NetworkError, match="same name as a string"):
        ns.Network.from_graph(g)


def test_isolated_population():
    nodes = dict(good_nodes(), lone=(2, "hidden"))
    g = graph(nodes, [("x", "h"), ("h", "y")])
    with pytest.raises(NetworkError, match="population 'lone' is not connected"):
        ns.Network.from_graph(g)


def test_component_unreachable_from_inputs():
    nodes = dict(good_nodes(), h2=(3, "hidden"), y2=(2, "output"))
    g = graph(nodes, [("x", "h"), ("h", "y"), ("h2", "y2")])
    with pytest.raises(NetworkError, match=r"populations \['h2', 'y2'\] are not connected to any "
                                           r"input"):
        ns.Network.from_graph(g)


def test_energy_mode_rejects_both_directions():
    g = graph(good_nodes(), [("x", "h"), ("h", "y"), ("y", "h")])
    with pytest.raises(NetworkError, match=r"'h->y' and 'y->h' both exist"):
        ns.Network.from_graph(g, dynamics="energy")


# -- model choices --------------------------------------------------------------------------
def test_unknown_activation_layered():
    with pytest.raises(NetworkError, match=r"activation must be one of .*got 'relu'"):
        ns.layered([3, 2], activation="relu")


def test_unknown_activation_from_graph():
    g = graph(good_nodes(), [("x", "h"), ("h", "y")])
    with pytest.raises(NetworkError, match=r"activation must be one of .*got 'tanh'"):
        ns.Network.from_graph(g, activation="tanh")


def test_unknown_dynamics():
    with pytest.raises(NetworkError, match=r"dynamics must be one of .*got 'hopfield'"):
        ns.layered([3, 2], dynamics="hopfield")


def test_unknown_dynamics_constructor(net):
    with pytest.raises(NetworkError, match=r"dynamics must be one of .*got 'Energy'"):
        ns.Network(net.graph, net.params, dynamics="Energy")


@pytest.mark.parametrize("dtype", ["float16", np.int32])
def test_bad_dtype(dtype):
    with pytest.raises(NetworkError, match="dtype must be"):
        ns.layered([3, 2], dtype=dtype)


@pytest.mark.parametrize("arg", ["gain", "asymmetry"])
def test_non_finite_gain_or_asymmetry(arg):
    with pytest.raises(NetworkError, match="%s must be a finite number, got nan" % arg):
        ns.layered([3, 2], **{arg: float("nan")})


@pytest.mark.parametrize("sizes", [[4], [], 5, "45"])
def test_layered_bad_sizes(sizes):
    with pytest.raises(NetworkError, match="sizes must list at least two layer sizes"):
        ns.layered(sizes)


@pytest.mark.parametrize("skip", [[(2, 0)], [(0, 3)], [(1, 1)], [2], [(0, 1, 2)], [(0.0, 2)]])
def test_layered_bad_skip(skip):
    with pytest.raises(NetworkError, match=r"skip entry .* must be a pair \(i, j\) of layer "
                                           r"indices with 0 <= i < j < 3"):
        ns.layered([4, 3, 2], skip=skip)


def test_layered_duplicate_names():
    with pytest.raises(NetworkError, match=r"names must be distinct, got \['a'\]"):
        ns.layered([4, 3, 2], names=["a", "a", "y"])


def test_layered_wrong_number_of_names():
    with pytest.raises(NetworkError, match=r"names must have one entry per layer \(3\), got 2"):
        ns.layered([4, 3, 2], names=["x", "y"])


# -- x and y --------------------------------------------------------------------------------
def test_x_wrong_width(net):
    with pytest.raises(NetworkError, match=r"x must have shape \(batch, 4\), got \(3, 5\)"):
        ns.relax(net, np.zeros((3, 5)))


def test_x_one_dimensional(net):
    with pytest.raises(NetworkError, match=r"x must have shape \(batch, 4\); got a 1-d array .*"
                                           r"x\[None, :\]"):
        ns.relax(net, np.zeros(4))


def test_x_one_dimensional_wrong_length(net):
    with pytest.raises(NetworkError, match=r"x must have shape \(batch, 4\), got \(7,\)"):
        ns.relax(net, np.zeros(7))


def test_x_three_dimensional(net):
    with pytest.raises(NetworkError, match=r"x must have shape \(batch, 4\), got \(2, 2, 4\)"):
        ns.relax(net, np.zeros((2, 2, 4)))


def test_x_empty_batch(net):
    with pytest.raises(NetworkError, match=r"x is empty"):
        ns.relax(net, np.zeros((0, 4)))


def test_x_ragged(net):
    with pytest.raises(NetworkError, match=r"x must be a numeric array of shape \(batch, 4\)"):
        ns.relax(net, [[0.1, 0.2, 0.3, 0.4], [0.1]])


def test_x_not_numeric(net):
    with pytest.raises(NetworkError, match=r"x must be a real numeric array, got dtype <U1"):
        ns.relax(net, np.array([list("abcd")]))


def test_x_none(net):
    with pytest.raises(NetworkError, match=r"x is required"):
        ns.relax(net, None)


def test_y_batch_differs_from_x(net, data):
    x, y = data
    with pytest.raises(NetworkError, match=r"y must have shape \(3, 3\), got \(2, 3\) \(the batch"):
        ns.relax(net, x, y[:2], beta=0.1)


def test_y_wrong_width(net, data):
    x, y = data
    with pytest.raises(NetworkError, match=r"y must have shape \(3, 3\), got \(3, 2\)"):
        ns.loss(net, x, y[:, :2])


def test_y_one_dimensional(net, data):
    x, y = data
    with pytest.raises(NetworkError, match=r"y must have shape \(3, 3\), got \(3,\)"):
        ns.rbp.gradient(net, x, y[0])


def test_y_missing(net, data):
    x, _ = data
    with pytest.raises(NetworkError, match=r"y is required: an array of shape \(3, 3\)"):
        ns.loss(net, x, None)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x(net, data, bad):
    x, _ = data
    x = x.copy()
    x[1, 2] = bad
    with pytest.raises(NetworkError, match=r"x contains NaN or inf \(1 entries; the first at "
                                           r"\[1, 2\]"):
        ns.relax(net, x)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_y(net, data, bad):
    x, y = data
    y = y.copy()
    y[0, 1] = bad
    with pytest.raises(NetworkError, match=r"y contains NaN or inf .*\[0, 1\]"):
        ns.ep.gradient(net, x, y, 0.1)


def test_x_dict_missing_an_input(two_inputs):
    with pytest.raises(NetworkError, match=r"x is missing input population\(s\) \['b'\]"):
        ns.relax(two_inputs, {"a": np.zeros((2, 3))})


def test_x_array_for_two_inputs(two_inputs):
    with pytest.raises(NetworkError, match=r"x must be a dict over the input populations "
                                           r"\['a', 'b'\]"):
        ns.relax(two_inputs, np.zeros((2, 5)))


def test_x_dict_extra_population(two_inputs):
    with pytest.raises(NetworkError, match=r"x has populations that are not inputs: \['h'\]"):
        ns.relax(two_inputs, {"a": np.zeros((2, 3)), "b": np.zeros((2, 2)), "h": np.zeros((2, 4))})


def test_x_dict_entries_disagree_on_batch(two_inputs):
    with pytest.raises(NetworkError, match=r"x\['b'\] must have shape \(2, 2\), got \(3, 2\)"):
        ns.relax(two_inputs, {"a": np.zeros((2, 3)), "b": np.zeros((3, 2))})


def test_x_dict_entry_nan(two_inputs):
    b = np.zeros((2, 2))
    b[1, 1] = np.nan
    with pytest.raises(NetworkError, match=r"x\['b'\] contains NaN"):
        ns.relax(two_inputs, {"a": np.zeros((2, 3)), "b": b})


def test_state_missing_population(net, data):
    x, _ = data
    with pytest.raises(NetworkError, match=r"state is missing population 'y'"):
        ns.relax(net, x, state={"h1": np.zeros((3, 5))})


def test_state_wrong_shape(net, data):
    x, _ = data
    with pytest.raises(NetworkError, match=r"state\['h1'\] must have shape \(3, 5\), got \(3, 4\)"):
        ns.relax(net, x, state={"h1": np.zeros((3, 4)), "y": np.zeros((3, 3))})


# -- params (constructor) -------------------------------------------------------------------
def test_params_wrong_shape(net):
    params = dict(net.params, **{"W:h1->y": np.zeros((3, 5))})
    with pytest.raises(NetworkError, match=r"params\['W:h1->y'\] must have shape \(5, 3\), "
                                           r"got \(3, 5\)"):
        ns.Network(net.graph, params)


def test_params_missing_key(net):
    params = {k: v for k, v in net.params.items() if k != "b:h1"}
    with pytest.raises(NetworkError, match=r"params is missing 'b:h1' \(shape \(5,\)\)"):
        ns.Network(net.graph, params)


def test_params_nan(net):
    params = dict(net.params)
    params["W:x->h1"] = params["W:x->h1"].copy()
    params["W:x->h1"][2, 3] = np.nan
    with pytest.raises(NetworkError, match=r"params\['W:x->h1'\] contains NaN or inf"):
        ns.Network(net.graph, params)


def test_params_extra_key(net):
    params = dict(net.params, **{"W:y->h1": np.zeros((3, 5))})
    with pytest.raises(NetworkError, match=r"match no projection or population: \['W:y->h1'\]"):
        ns.Network(net.graph, params)


def test_params_not_numeric(net):
    params = dict(net.params, **{"b:y": ["a", "b", "c"]})
    with pytest.raises(NetworkError, match=r"params\['b:y'\] must be a numeric array of shape"):
        ns.Network(net.graph, params)


def test_params_not_a_dict(net):
    with pytest.raises(NetworkError, match="params must be a dict"):
        ns.Network(net.graph, list(net.params.values()))


def test_copy_with_bad_params(net):
    with pytest.raises(NetworkError, match=r"params is missing 'W:x->h1'"):
        net.copy(params={})


def _lateral_net():
    g = graph({"x": (3, "input"), "h": (4, "hidden"), "y": (2, "output")},
              [("x", "h"), ("h", "h"), ("h", "y")])
    return ns.Network.from_graph(g, seed=0)


def test_lateral_params_not_symmetric():
    lat = _lateral_net()
    w = lat.params["W:h->h"].copy()
    w[0, 1] += 0.5
    with pytest.raises(NetworkError, match=r"params\['W:h->h'\] is a lateral .* must be symmetric"):
        ns.Network(lat.graph, dict(lat.params, **{"W:h->h": w}))


def test_lateral_params_nonzero_diagonal():
    lat = _lateral_net()
    w = lat.params["W:h->h"] + np.eye(4)
    with pytest.raises(NetworkError, match=r"params\['W:h->h'\] .* zero diagonal"):
        ns.Network(lat.graph, dict(lat.params, **{"W:h->h": w}))


# -- relaxation -----------------------------------------------------------------------------
def test_relaxation_diverges(net, data):
    # the Euler map s <- (1 - eps) s + eps rho'(s) h multiplies s by |1 - eps| = 2 per step
    x, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # exp overflow in the logistic
        with pytest.raises(RelaxationError, match=r"diverged at step \d+ .*eps \(now 3\)"):
            ns.relax(net, x, eps=3.0)


def test_relaxation_diverges_fixed_steps(net, data):
    x, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # overflow on the way to inf
        with pytest.raises(RelaxationError, match=r"diverged \(NaN/inf in the state"):
            ns.relax(net, x, eps=3.0, tol=None, max_steps=3000)


def test_relaxation_not_converged_in_max_steps(net, data):
    x, _ = data
    with pytest.raises(RelaxationError, match=r"did not converge in max_steps=5"):
        ns.relax(net, x, max_steps=5)


def test_relaxation_not_converged_flag(net, data):
    x, _ = data
    res = ns.relax(net, x, max_steps=5, raise_on_fail=False)
    assert res.converged is False
    assert res.steps == 5
    assert res.final_residual > 1e-10


def test_relax_beta_without_targets(net, data):
    x, _ = data
    with pytest.raises(ValueError, match=r"beta=0.1 needs targets y"):
        ns.relax(net, x, beta=0.1)


@pytest.mark.parametrize("eps", [0, -1.0, float("nan")])
def test_relax_eps_not_positive(net, data, eps):
    x, _ = data
    with pytest.raises(ValueError, match=r"eps \(the Euler step\) must be a positive number"):
        ns.relax(net, x, eps=eps)


def test_relax_bad_max_steps_and_tol(net, data):
    x, _ = data
    with pytest.raises(ValueError, match=r"max_steps must be a non-negative integer, got -1"):
        ns.relax(net, x, max_steps=-1)
    with pytest.raises(ValueError, match=r"tol must be positive or None, got 0"):
        ns.relax(net, x, tol=0)


# -- RBP ------------------------------------------------------------------------------------
def test_almeida_pineda_spectral_radius_at_least_one(net, data):
    x, y = data
    s0 = ns.relax(net, x, eps=0.1, tol=1e-12).state      # the free phase converges at eps=0.1
    eps = 1.0
    rad = ns.rbp.spectral_radius(net, x, eps, state=s0)
    assert rad >= 1.0                                     # ... but I + eps J is not contracting
    with pytest.raises(RBPConvergenceError, match=r"spectral radius of dG/ds = I \+ eps J is "
                                                  r"%s >= 1 at eps=1" % re.escape("%.6g" % rad)):
        ns.rbp.gradient(net, x, y, method="almeida_pineda", eps=eps, state=s0)


def test_rbp_eps_not_positive(net, data):
    x, y = data
    with pytest.raises(ValueError, match=r"eps \(the Euler step\) must be a positive number, "
                                         r"got -0.1"):
        ns.rbp.gradient(net, x, y, eps=-0.1)


def test_rbp_unknown_method(net, data):
    x, y = data
    with pytest.raises(ValueError, match=r"method must be one of .*got 'adjoint'"):
        ns.rbp.gradient(net, x, y, method="adjoint")


def test_rbp_unknown_solver(net, data):
    x, y = data
    with pytest.raises(ValueError, match=r"solver must be one of .*got 'lu'"):
        ns.rbp.gradient(net, x, y, solver="lu")


def test_rbp_cg_on_vector_field(data):
    x, y = data
    vf = ns.layered([4, 5, 3], dynamics="vector_field", asymmetry=0.2, seed=0)
    with pytest.raises(ValueError, match=r"solver='cg' needs a symmetric Jacobian .*'gmres'"):
        ns.rbp.gradient(vf, x, y, solver="cg")


@pytest.mark.parametrize("steps", [-1, 2.5])
def test_rbp_bad_steps(net, data, steps):
    x, y = data
    with pytest.raises(ValueError, match=r"steps must be a non-negative integer or None, got %s"
                                         % re.escape(repr(steps))):
        ns.rbp.gradient(net, x, y, method="almeida_pineda", steps=steps)


def test_side_network_zero_steps(net, data):
    x, y = data
    with pytest.raises(ValueError, match=r"steps must be a positive integer, got 0"):
        ns.rbp.side_network(net, x, y, 0.1, 0)


# -- EP -------------------------------------------------------------------------------------
def test_ep_beta_zero(net, data):
    x, y = data
    with pytest.raises(ValueError, match=r"beta must be a non-zero finite number, got 0"):
        ns.ep.gradient(net, x, y, 0.0)


def test_ep_second_phase_beta_zero(net, data):
    x, y = data
    with pytest.raises(ValueError, match=r"beta must be a non-zero finite number, got 0"):
        ns.ep.second_phase(net, x, y, 0, 0.1, 5)


def test_ep_eps_zero(net, data):
    x, y = data
    with pytest.raises(ValueError, match=r"eps \(the Euler step\) must be a positive number, got 0"):
        ns.ep.gradient(net, x, y, 0.1, eps=0)


def test_ep_unknown_variant(net, data):
    x, y = data
    with pytest.raises(ValueError, match=r"variant must be one of .*got 'two_sided'"):
        ns.ep.gradient(net, x, y, 0.1, variant="two_sided")


def test_ep_without_targets(net, data):
    x, _ = data
    with pytest.raises(ValueError, match=r"EP needs targets y"):
        ns.ep.gradient(net, x, None, 0.1)


def test_energy_on_vector_field_network(data):
    x, _ = data
    vf = ns.layered([4, 5, 3], dynamics="vector_field", seed=0)
    s = vf.zero_state(3)
    with pytest.raises(ValueError, match=r"energy dynamics only .*'vector_field'"):
        ns.energy.energy(vf, s, x)


# -- argument checks in rbp, relax and ep ----------------------------------------------------
def test_rbp_eps_zero_with_state(net, data):
    x, y = data
    s0 = ns.relax(net, x).state
    with pytest.raises(ValueError, match=r"eps .* must be a positive number"):
        ns.rbp.gradient(net, x, y, method="almeida_pineda", eps=0, state=s0)


def test_rbp_unknown_solver_any_method(net, data):
    x, y = data
    with pytest.raises(ValueError, match=r"solver must be one of .*got 'lu'"):
        ns.rbp.gradient(net, x, y, method="almeida_pineda", solver="lu")


def test_relax_eps_not_a_number(net, data):
    x, _ = data
    with pytest.raises(ValueError, match=r"eps .* must be a positive number, got 'a'"):
        ns.relax(net, x, eps="a")


def test_ep_negative_nudge_steps(net, data):
    x, y = data
    with pytest.raises(ValueError, match=r"nudge_steps"):
        ns.ep.gradient(net, x, y, 0.1, nudge_steps=-1)


# -- faults found as a new user (issue 23, item 9): one line naming the file or the field ------
QUICK = ("--no-progress", "--set", "train.epochs=1", "--set", "dataset.limit_train=200",
         "--set", "dataset.limit_test=100")


def _one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = [ln for ln in r.stderr.strip().splitlines() if "Warning" not in ln
             and not ln.startswith("  ")]
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture
def finished_run(tmp_path, neurosim_cli):
    r = neurosim_cli("run", "--json", "--out", tmp_path, *QUICK)
    assert r.returncode == 0, r.stderr[-2000:]
    import json
    return json.loads(r.stdout.strip().splitlines()[-1])["run_dir"]


def test_resume_of_a_truncated_checkpoint_names_it(finished_run, neurosim_cli):
    import os
    ck = os.path.join(finished_run, "checkpoint.npz")
    with open(ck, "r+b") as f:
        f.truncate(os.path.getsize(ck) // 2)
    r = neurosim_cli("run", "--no-progress", "--resume", finished_run)
    _one_line_error(r, ck, "truncated or damaged")


def test_fidelity_weights_from_a_truncated_checkpoint_names_it(finished_run, neurosim_cli):
    import os
    ck = os.path.join(finished_run, "checkpoint.npz")
    with open(ck, "r+b") as f:
        f.truncate(os.path.getsize(ck) // 2)
    _one_line_error(neurosim_cli("fidelity", "--weights", finished_run), ck,
                    "truncated or damaged")


def test_traces_inspect_of_a_truncated_h5_names_it(finished_run, neurosim_cli):
    import os
    h5 = os.path.join(finished_run, "traces.h5")
    with open(h5, "r+b") as f:
        f.truncate(os.path.getsize(h5) // 2)
    _one_line_error(neurosim_cli("traces", "inspect", h5), h5, "truncated or damaged")


def test_to_nwb_without_pynwb_says_how_to_install_it(finished_run, neurosim_cli, monkeypatch,
                                                     tmp_path):
    import os
    import sys
    monkeypatch.setitem(sys.modules, "pynwb", None)     # import pynwb raises ImportError
    h5 = os.path.join(finished_run, "traces.h5")
    _one_line_error(neurosim_cli("traces", "to-nwb", h5, tmp_path / "out.nwb"), h5,
                    "pynwb is not installed", "pip install pynwb", 'pip install ".[nwb]"')
    assert not os.path.exists(tmp_path / "out.nwb")


@pytest.mark.parametrize("value, field", [
    ("-0.1", "learning.lr"), ("0", "learning.lr"), ("[0.1, -0.05]", "learning.lr"),
    ("{\"x->h1\" = 0.1, \"h1->y\" = -1}", "learning.lr"), ("nan", "learning.lr")])
def test_a_non_positive_learning_rate_is_refused(tmp_path, neurosim_cli, value, field):
    r = neurosim_cli("run", "--out", tmp_path, *QUICK, "--set", "learning.lr=%s" % value)
    assert r.returncode == 2 and field + ":" in r.stderr and "positive" in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())        # refused before anything was written


def test_a_non_positive_bias_rate_is_refused(tmp_path, neurosim_cli):
    r = neurosim_cli("run", "--out", tmp_path, *QUICK, "--set", "learning.bias_lr=0")
    assert r.returncode == 2 and "learning.bias_lr:" in r.stderr and "positive" in r.stderr


def test_a_non_positive_rate_is_refused_by_the_api():
    from neurosim.training.optimizer import resolve_learning_rates
    net = ns.layered([4, 5, 3], seed=0)
    with pytest.raises(ns.errors.ConfigurationError, match=r"learning.lr: .*positive.*W:h1->y"):
        resolve_learning_rates(net, [0.1, -0.1])
    with pytest.raises(ns.errors.ConfigurationError, match=r"learning.bias_lr: .*positive"):
        resolve_learning_rates(net, 0.1, bias_lr=0.0)


def test_a_diverging_run_stops_and_keeps_its_last_finite_checkpoint(tmp_path, neurosim_cli):
    """Adam steps of 1e308 overflow within two batches: the run stops naming the epoch and
    batch and learning.lr, and the checkpoint written before holds finite parameters."""
    import os
    r = neurosim_cli("run", "--out", tmp_path, *QUICK, "--set", "learning.lr=1e308",
                     "--set", "learning.optimizer=\"adam\"", "--set", "train.checkpoint_every=1")
    line = _one_line_error(r, "diverged at epoch 1, batch", "learning.lr", "checkpoint.npz")
    assert "keeps the last finite state" in line
    (run_dir,) = list(tmp_path.iterdir())
    with np.load(os.path.join(run_dir, "checkpoint.npz")) as z:
        params = [k for k in z.files if k.startswith("param/")]
        assert params and all(np.all(np.isfinite(z[k])) for k in params)
    assert not os.path.exists(os.path.join(run_dir, "metrics.json"))


def test_a_value_from_the_circuit_file_says_where_it_is_set(tmp_path, neurosim_cli):
    r = neurosim_cli("run", "--out", tmp_path, *QUICK, "--set", "engine.name=\"brian2-rate\"")
    _one_line_error(r, "engine.solver", "built-in circuit 'default'", "--set engine.solver=euler")


def test_an_unknown_key_suggests_the_close_one(tmp_path, neurosim_cli):
    r = neurosim_cli("run", "--out", tmp_path, *QUICK, "--set", "train.epoch=3")
    assert r.returncode == 2
    assert "train.epoch: unknown key; did you mean train.epochs?" in r.stderr, r.stderr


def test_sweep_of_an_unknown_key_names_the_key(tmp_path, neurosim_cli):
    r = neurosim_cli("sweep", "--out", tmp_path / "sw", "--param", "learning.bta=0.1,0.2")
    line = _one_line_error(r, "learning.bta: unknown key", "did you mean learning.beta?")
    assert "value" not in line
