"""Convolutional projections (docs/maths.md 11): the products against a direct convolution,
their adjoints, and on a small conv network (float64, logistic) the numbers of MATH.md
section 6 -- RBP = finite differences, every RBP method agrees, EP -> RBP with slopes 1 and 2,
the theorem's u_0 = -Sbar_0 -- plus the fast EP step, the circuit file, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate

import neurosim as ns
from neurosim import energy as en
from neurosim import ep, rbp
from neurosim.conv import Conv
from neurosim.engines.reference import ep_step
from neurosim.relax import free_state, relax

from conftest import check_ep_slopes, conv_graph, rel_err

EPS = 0.2
GEOMETRIES = [((2, 7, 7), 3, 3, 1, 0, 1), ((2, 8, 8), 3, 3, 1, 1, 2), ((1, 9, 9), 2, 3, 2, 1, 1),
              ((3, 10, 10), 4, 5, 2, 2, 1), ((2, 6, 6), 2, 2, 1, 0, 5),
              ((2, 11, 11), 3, 3, 2, 1, 2), ((1, 10, 10), 2, 3, 2, 0, 2),
              ((2, 12, 12), 3, 5, 1, 2, 2),   # stride and pooling folded together
              ((2, 11, 11), 3, 2, 3, 0, 2)]   # stride > kernel: pooled, not folded


def _direct(c, kernel, r):
    """The convolution by scipy's correlate, channel by channel, then average pooling."""
    C, H, W = c.in_shape
    s, p, q = c.stride, c.padding, c.pool
    out = []
    for x in r.reshape(-1, C, H, W):
        x = np.pad(x, ((0, 0), (p, p), (p, p)))
        y = np.stack([sum(correlate(x[ci], kernel[o, ci], mode="valid") for ci in range(C))
                      for o in range(c.channels)])[:, ::s, ::s]
        O, ho, wo = y.shape
        out.append(y.reshape(O, ho // q, q, wo // q, q).mean(axis=(2, 4)).ravel())
    return np.array(out)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_products_are_the_convolution_its_adjoint_and_its_kernel_gradient(geometry):
    c = Conv(*geometry)
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=c.kernel_shape)
    r = rng.normal(size=(3, int(np.prod(c.in_shape))))
    v = rng.normal(size=(3, int(np.prod(c.out_shape))))
    f = c.forward(kernel, r)
    assert np.allclose(f, _direct(c, kernel, r), atol=1e-12)
    assert np.sum(v * f) == pytest.approx(np.sum(c.adjoint(kernel, v) * r), rel=1e-12)
    dk = rng.normal(size=kernel.shape)
    assert np.sum(v * c.forward(dk, r)) == pytest.approx(np.sum(c.kernel_gradient(r, v) * dk),
                                                         rel=1e-12)


def test_folding_the_pooling_saves_multiply_adds_only_where_it_should():
    c = Conv((16, 12, 12), 32, 5, pool=2)                   # conv_fashion's h1 -> h2
    assert c.folds and c.plain.kernel == 6 and c.plain.stride == 2
    assert c.plain.conv_hw == c.out_shape[1:] == (4, 4)
    assert c.macs() == 4 * 4 * 32 * 16 * 6 * 6 < 8 * 8 * 32 * 16 * 5 * 5
    wide = Conv((2, 11, 11), 3, 2, 3, 0, 2)                 # stride 3 > kernel 2
    assert not wide.folds and wide.macs() == 4 * 4 * 3 * 2 * 2 * 2
    top = Conv((16, 12, 12), 32, 5, pool=2, pooling="max")  # the max is not linear: no fold
    assert not top.folds and top.pools_output and top.macs() == 8 * 8 * 32 * 16 * 5 * 5


@pytest.mark.parametrize("geometry", [g for g in GEOMETRIES if g[5] > 1])
def test_max_pooling_is_the_max_and_its_switches_give_the_derivatives(geometry):
    """``P(W * r)`` is the block max of the convolution; at the switches of ``r`` the products
    are the linear selection ``P_m``: exact adjoints of each other, and the derivatives of
    ``<v, max(W * r)>`` in ``r`` and in ``W`` (central differences)."""
    c = Conv(*geometry, pooling="max")
    assert c.max_pools and not c.folds
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=c.kernel_shape)
    r = rng.normal(size=(3, int(np.prod(c.in_shape))))
    v = rng.normal(size=(3, int(np.prod(c.out_shape))))
    q, (O, hp, wp) = c.pool, c.out_shape
    full = Conv(*geometry[:5], 1).forward(kernel, r).reshape(3, O, hp, q, wp, q)
    f = c.forward(kernel, r)
    assert np.array_equal(f, full.max(axis=(3, 5)).reshape(3, -1))
    m = c.switches(kernel, r)
    assert m.shape == (3, O, hp, wp)
    assert np.array_equal(c.forward(kernel, r, m), f)
    dr = rng.normal(size=r.shape)
    assert np.sum(v * c.forward(kernel, dr, m)) == pytest.approx(
        np.sum(c.adjoint(kernel, v, m) * dr), rel=1e-12)
    h = 1e-6
    fd = (np.sum(v * c.forward(kernel, r + h * dr)) - np.sum(v * c.forward(kernel, r - h * dr)))
    assert fd / (2 * h) == pytest.approx(np.sum(c.adjoint(kernel, v, m) * dr), rel=1e-7)
    dk = rng.normal(size=kernel.shape)
    fd = np.sum(v * c.forward(kernel + h * dk, r)) - np.sum(v * c.forward(kernel - h * dk, r))
    assert fd / (2 * h) == pytest.approx(np.sum(c.kernel_gradient(r, v, m) * dk), rel=1e-7)
    with pytest.raises(ValueError, match="switches"):
        c.adjoint(kernel, v)
    with pytest.raises(ValueError, match="pooling must be one of"):
        Conv(*geometry, pooling="min")


def _net(readout="state", activation="logistic", pooling="average", **kw):
    return ns.Network.from_graph(conv_graph(pooling), activation=activation, readout=readout,
                                 seed=1, **{"gain": 1.5, **kw})


def _data(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (batch, 64)), np.eye(3)[rng.integers(0, 3, batch)]


def test_a_conv_network_shares_its_kernels():
    net = _net()
    assert net.params["W:x->h1"].shape == (3, 1, 3, 3)
    assert net.params["W:h1->h2"].shape == (4, 3, 3, 3)
    assert net.params["W:h2->y"].shape == (16, 3)
    assert sorted(net.convs) == ["W:h1->h2", "W:x->h1"]


@pytest.mark.parametrize("readout,pooling", [("state", "average"), ("softmax", "average"),
                                             ("state", "max"), ("softmax", "max")])
def test_rbp_matches_finite_differences_on_a_conv_network(readout, pooling):
    net = _net(readout, pooling=pooling)
    x, y = _data()
    g = rbp.gradient(net, x, y, eps=EPS, tol=1e-13)

    def loss(n):
        return float(np.mean(en.cost(n, free_state(n, x, eps=EPS, tol=1e-9), y)))

    h, worst = 1e-5, 0.0
    for k in ("W:x->h1", "W:h1->h2", "b:h1", "b:h2"):
        v = net.params[k]
        for i in list(np.ndindex(v.shape))[::14]:
            p = dict(net.params)
            up, down = v.copy(), v.copy()
            up[i] += h
            down[i] -= h
            p[k] = up
            lp = loss(net.copy(params=p))
            p[k] = down
            lm = loss(net.copy(params=p))
            worst = max(worst, abs((lp - lm) / (2 * h) - g[k][i]))
    assert worst < 1e-7
    assert np.abs(g["W:x->h1"]).max() > 1e-4
    for method in ("almeida_pineda", "bptt"):
        assert rel_err(rbp.gradient(net, x, y, method=method, eps=EPS, tol=1e-13), g) < 1e-6
    assert rel_err(rbp.gradient(net, x, y, eps=EPS, tol=1e-13, solver="cg"), g) < 1e-6


@pytest.mark.parametrize("pooling", ["average", "max"])
def test_ep_on_a_conv_network_converges_with_the_expected_slopes(pooling):
    net = _net(pooling=pooling)
    x, y = _data()
    check_ep_slopes(net, x, y, EPS)


@pytest.mark.parametrize("pooling", ["average", "max"])
def test_the_theorem_on_a_conv_network(pooling):
    net = _net(pooling=pooling)
    x, y = _data()
    side = rbp.side_network(net, x, y, EPS, 30)
    sp = ep.second_phase(net, x, y, 1e-4, EPS, 30)
    assert max(np.abs(sp.u[p][0] + side.S[p][0]).max() for p in net.state_pops) < 1e-8
    worst = max(max(np.abs(sp.u[p][k] + side.S[p][k]).max() for p in net.state_pops)
                / max(np.abs(side.S[p][k]).max() for p in net.state_pops) for k in range(30))
    assert worst < 10 * 1e-4


@pytest.mark.parametrize("readout,pooling", [("state", "average"), ("softmax", "average"),
                                             ("softmax", "max")])
def test_the_fast_step_on_a_conv_network_gives_the_estimator(readout, pooling):
    net = _net(readout, activation="hard_sigmoid", gain=1.0, pooling=pooling)
    x, y = _data(batch=4)
    kw = dict(eps=0.5, free_steps=8, nudge_steps=3, clip=True)
    want = ep.gradient(net, x, y, 0.3, variant="symmetric", **kw)
    got = {}
    ep_step(net.copy(), x, y, 0.3, 0.0, variant="symmetric", grad_out=got, **kw)
    assert rel_err(got, want) < 1e-12
    fused = net.copy()
    ep_step(fused, x, y, 0.3, {k: 0.1 for k in net.params}, variant="symmetric", **kw)
    for k in net.params:
        assert np.allclose(fused.params[k], net.params[k] - 0.1 * want[k], atol=1e-13), k


@pytest.mark.parametrize("pooling", ["average", "max"])
def test_block_sweeps_on_a_conv_network_with_a_softmax_readout_train_like_euler(pooling):
    """The reference engine takes block sweeps with a softmax readout (conv_fashion's path);
    converged, its EP estimate is that of converged Euler phases."""
    from neurosim.engines import build
    from neurosim.training.optimizer import Optimizer
    net = _net("softmax", activation="hard_sigmoid", gain=1.0, pooling=pooling)
    x, y = _data(batch=4)
    engine = build("reference", net.copy(), solver="block", clip=True, free_steps=1000,
                   nudge_steps=1000, beta=0.3, variant="symmetric")
    res = engine.step(x, y, Optimizer({k: 0.0 for k in net.params}), want_estimate=True)
    # max pooling makes the energy non-convex in a pooled population: the sweeps may settle
    # in another minimum than Euler steps from zero (here one example of four), so Euler
    # starts from the sweeps' free state, a fixed point of both
    start = res.state if pooling == "max" else None
    want = ep.gradient(net, x, y, 0.3, variant="symmetric", eps=0.2, free_steps=3000,
                       nudge_steps=3000, clip=True, state=start)
    assert rel_err(res.estimate, want) < 1e-6


def test_block_sweeps_keep_the_switches_only_while_their_source_is_unchanged():
    """run_block reuses the max and switches a population's drive computed for the next
    feedback to its source: the states equal sweeps that recompute every product."""
    from neurosim.relax import Dynamics
    net = _net("softmax", activation="hard_sigmoid", gain=1.0, pooling="max")
    x, y = _data(batch=4)
    dyn = Dynamics(net, x, y, clip=True)
    fast = dyn.run_block(dyn.initial_state(), 0.0, 7)
    slow = dyn.initial_state()
    for _ in range(7):
        for p in net.state_pops:
            h = dyn.const[p].copy()
            for q, m in dyn.terms[p]:
                h += slow[q] @ m
            for t in dyn.conv_terms[p]:
                h += en.term_product(net, t, slow[t.source], slow)
            slow[p] = np.clip(h, 0.0, 1.0)
    assert all(np.array_equal(fast[p], slow[p]) for p in net.state_pops)
    assert any(np.any((v > 0) & (v < 1)) for v in fast.values())


def test_the_free_fixed_point_of_a_max_pooled_network_is_verified():
    """With max pooling between two state populations the clipped free phase is not one box
    quadratic problem (its coupling follows the switches): the fixed point comes from Euler
    steps, verified to the tolerance, and RBP at it matches the matrix-free solvers."""
    from neurosim.fixed_point import free_fixed_point
    net = _net("softmax", activation="hard_sigmoid", gain=1.0, pooling="max")
    x, y = _data(batch=3)
    fp = free_fixed_point(net, x, clip=True, eps=0.5, tol=1e-11)
    assert fp.residual <= 1e-11 and fp.steps > 0 and fp.newton_iterations == 0
    euler = relax(net, x, eps=0.5, tol=1e-12, clip=True).state
    assert max(np.abs(fp.state[p] - euler[p]).max() for p in net.state_pops) < 1e-9
    dense = rbp.gradient(net, x, y, state=fp.state, clip=True)
    assert rel_err(rbp.gradient(net, x, y, state=fp.state, clip=True, solver="gmres"),
                   dense) < 1e-8
    assert np.abs(dense["W:h1->h2"]).max() > 1e-4


def test_a_projection_gain_scales_only_its_own_initial_weights():
    base = ns.Network.from_graph(conv_graph(), seed=3, gain=2.0)
    g = conv_graph()
    g.edges["h1", "h2"]["gain"] = 0.25     # a kernel
    g.edges["h2", "y"]["gain"] = 0.5       # a dense matrix
    net = ns.Network.from_graph(g, seed=3, gain=2.0)
    np.testing.assert_array_equal(net.params["W:x->h1"], base.params["W:x->h1"])
    np.testing.assert_allclose(net.params["W:h1->h2"], 0.25 * base.params["W:h1->h2"])
    np.testing.assert_allclose(net.params["W:h2->y"], 0.5 * base.params["W:h2->y"])
    for bad in (0, -1.0, float("nan"), "big", True):
        g.edges["h2", "y"]["gain"] = bad
        with pytest.raises(ns.NetworkError, match="projection h2->y: gain must be a positive number"):
            ns.Network.from_graph(g)


def test_bad_conv_geometry_names_the_projection():
    g = conv_graph()
    g.edges["x", "h1"]["pool"] = 1
    with pytest.raises(ns.NetworkError, match=r"x->h1.*map \(1, 8, 8\) to \(3, 8, 8\)"):
        ns.Network.from_graph(g)
    g = conv_graph()
    del g.nodes["h1"]["shape"]
    with pytest.raises(ns.NetworkError, match="x->h1.*need a shape.*'h1'"):
        ns.Network.from_graph(g)
    g = conv_graph()
    g.nodes["h2"]["shape"] = (4, 3, 3)
    with pytest.raises(ns.NetworkError, match="shape .* has 36 units but size is 16"):
        ns.Network.from_graph(g)
    g = conv_graph()
    g.edges["x", "h1"]["padding"] = 3
    with pytest.raises(ns.NetworkError, match="x->h1: padding must be at most kernel - 1"):
        ns.Network.from_graph(g)
    g = conv_graph()
    del g.edges["h1", "h2"]["kernel"]
    g.edges["h1", "h2"]["stride"] = 2
    with pytest.raises(ns.NetworkError, match="h1->h2 has .*stride.* but no 'kernel'"):
        ns.Network.from_graph(g)
    with pytest.raises(ns.NetworkError, match="needs energy dynamics"):
        ns.Network.from_graph(conv_graph(), dynamics="vector_field")
    g = conv_graph()
    g.edges["h1", "h2"]["pooling"] = "min"
    with pytest.raises(ns.NetworkError, match="h1->h2: pooling must be one of .*'min'"):
        ns.Network.from_graph(g)
    g = conv_graph()
    g.edges["h2", "y"]["pooling"] = "max"
    with pytest.raises(ns.NetworkError, match="h2->y has .*pooling.* but no 'kernel'"):
        ns.Network.from_graph(g)


def test_engines_that_cannot_hold_a_kernel_say_which_projection():
    from neurosim.brian import CircuitError, compile as compile_circuit
    from neurosim.engines import build
    from neurosim.errors import ConfigurationError
    net = _net(activation="hard_sigmoid")
    with pytest.raises(CircuitError, match="x->h1, h1->h2 are convolutional"):
        compile_circuit(net, model="rate")
    with pytest.raises(ConfigurationError, match="hardware: .*x->h1, h1->h2 are convolutional"):
        build("reference", net, hardware="rram")


CIRCUIT = """
name = "conv_bars"
[network]
activation = "hard_sigmoid"
readout = "softmax"
gain = 1.0
populations = [{name = "x", size = 64, role = "input", shape = [1, 8, 8]},
               {name = "h", size = 64, role = "hidden", shape = [4, 4, 4]},
               {name = "y", size = 4, role = "output"}]
projections = [{source = "x", target = "h", kernel = 3, padding = 1, pool = 2},
               {source = "h", target = "y"}]
[engine]
eps = 0.5
free_steps = 10
nudge_steps = 4
clip = true
[learning]
variant = "symmetric"
beta = 0.5
lr = [1.0, 0.5]
[train]
epochs = 15
batch_size = 20
fidelity_batches = 1
[dataset]
name = "bars"
limit_train = 600
[record]
traces = false
"""


def test_a_conv_circuit_file_trains_on_bars(tmp_path, neurosim_cli):
    import json
    path = tmp_path / "conv.toml"
    path.write_text(CIRCUIT)
    r = neurosim_cli("run", path, "--json", "--no-progress", "--out", tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["test_accuracy"] > 0.9
    bad = CIRCUIT.replace("padding = 1, pool = 2", "padding = 1, pool = 3")
    path.write_text(bad)
    r = neurosim_cli("run", path, "--out", tmp_path)
    assert r.returncode != 0 and "x->h" in r.stderr and "pool 3 must divide" in r.stderr
