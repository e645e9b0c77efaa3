"""Holomorphic EP (Laborieux & Zenke 2022; docs/maths.md section 4): complex nudges
``r e^(2 pi i k / N)`` on a circle, complex states, the estimate the real part of the
weighted sum. The reference engine against an independent complex relaxation, its error to
RBP falling as ``r^N``, the refusals of dynamics that are not analytic, and the circuit file.
"""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import config
from neurosim.errors import ConfigurationError, NeurosimError
from neurosim.engines.registry import settings_of
from neurosim.plan import Plan, nudge_weights

from conftest import one_hot_batch, rel_err

EPS = 0.1


def skip_net(**kw):
    """The logistic 6-7-3 network with a skip projection x -> y (seed 4)."""
    return ns.layered([6, 7, 3], activation="logistic", seed=4, skip=[(0, 2)], **kw)


@pytest.fixture(scope="module")
def problem():
    net = skip_net()
    x, y = one_hot_batch(net, 3, seed=4)
    return net, x, y, ns.rbp.gradient(net, x, y, method="implicit", eps=EPS)


# -- the plan ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 4, 6, 7])
def test_the_circle_and_its_weights(n):
    """Nudges r e^(2 pi i k/N); weights e^(-2 pi i k/N) / (N r) (Cauchy's formula)."""
    r = 0.05
    plan = Plan.of(r, "holomorphic", points=n)
    k = np.arange(n)
    assert np.allclose(plan.nudges, r * np.exp(2j * np.pi * k / n), rtol=0, atol=1e-16)
    assert np.allclose(nudge_weights(plan.nudges), np.exp(-2j * np.pi * k / n) / (n * r),
                       rtol=1e-12, atol=0)
    assert plan.complex and not plan.symmetric and plan.phases == n + 1
    assert [name for name, _ in plan.phase_names()] == ["nudged_%d" % (i + 1) for i in k]


def test_the_estimate_is_the_real_part_in_the_network_dtype():
    plan = Plan.of(0.1, "holomorphic", points=4)
    obs = [np.full(3, b ** 2 + 2 * b + 1) for b in plan.nudges]   # slope 2 at 0
    for dtype in (None, np.float32):
        got = plan.combine(obs, dtype)
        assert got.dtype == (np.float64 if dtype is None else dtype)
        assert np.allclose(got, 2.0)
    assert plan.combine([{"a": o} for o in obs])["a"].dtype == np.float64
    real = Plan.of(0.1, "symmetric")
    assert not real.complex and real.combine([np.ones(2), np.ones(2)]).dtype == np.float64


def test_the_rate_is_complex_analytic():
    s = np.array([0.3 + 0.2j, -1.0 - 0.5j, 2.0 + 0.0j])
    assert np.allclose(ns.energy.rho("logistic", s), 1.0 / (1.0 + np.exp(-4.0 * (s - 0.5))))
    with np.errstate(over="raise"):        # real states keep their overflow guard
        assert 0.0 <= ns.energy.rho("logistic", np.array([-1000.0]))[0] < 1e-300


# -- (a) the engine against an independent complex relaxation ---------------------------------
def _relax(net, x, y, s, beta, tol=1e-13, limit=100_000):
    """Plain Euler on complex states: ds = eps (-dE/ds - beta (s_y - y)), by hand."""
    W, U, V = net.params["W:x->h1"], net.params["W:h1->y"], net.params["W:x->y"]
    b1, by = net.params["b:h1"], net.params["b:y"]

    def rho(v):
        return 1.0 / (1.0 + np.exp(-4.0 * (v - 0.5)))
    h, o = s["h1"].astype(complex), s["y"].astype(complex)
    for _ in range(limit):
        rh, ro = rho(h), rho(o)
        fh = -h + 4 * rh * (1 - rh) * (x @ W + ro @ U.T + b1)
        fo = -o + 4 * ro * (1 - ro) * (rh @ U + x @ V + by) - beta * (o - y)
        h, o = h + EPS * fh, o + EPS * fo
        if max(np.max(np.abs(fh)), np.max(np.abs(fo))) < tol:
            return {"h1": h, "y": o}
    raise AssertionError("the independent relaxation did not settle")


def _dE_dtheta(net, x, s):
    rh, ro = (1.0 / (1.0 + np.exp(-4.0 * (s[p] - 0.5))) for p in ("h1", "y"))
    B = x.shape[0]
    return {"W:x->h1": -x.T @ rh / B, "W:h1->y": -rh.T @ ro / B, "W:x->y": -x.T @ ro / B,
            "b:h1": -rh.mean(0), "b:y": -ro.mean(0)}


@pytest.mark.parametrize("engine", ["reference", "torch"])
def test_the_engine_equals_an_independent_complex_relaxation(problem, engine):
    """Both engines' estimates (the torch engine on complex tensors) equal an independent
    complex relaxation to 1e-6 (N = 4, radius 0.05)."""
    if engine == "torch":
        pytest.importorskip("torch")
    net, x, y, _ = problem
    r, n = 0.05, 4
    eng = ns.engines.build(engine, net, beta=r, variant="holomorphic", points=n,
                           clip=False, eps=EPS, tol=1e-13, free_steps=20_000,
                           nudge_steps=20_000)
    est = eng.estimate(x, y)
    assert len(est.phases) == n + 1 and all(p.step <= 1e-13 for p in est.phases)
    s0 = {p: v.real for p, v in _relax(net, x, y, net.zero_state(3), 0.0).items()}
    want = {k: 0.0 for k in net.params}
    for k in range(n):
        b = r * np.exp(2j * np.pi * k / n)
        g = _dE_dtheta(net, x, _relax(net, x, y, s0, b))
        for key in want:
            want[key] = want[key] + np.exp(-2j * np.pi * k / n) / (n * r) * g[key]
    want = {k: v.real for k, v in want.items()}
    assert all(est[k].dtype == np.float64 and est[k].shape == v.shape for k, v in want.items())
    assert rel_err(est, want) < 1e-6
    # ns.ep.gradient runs the same plan
    g = ns.ep.gradient(net, x, y, beta=r, variant="holomorphic", points=n, eps=EPS, tol=1e-13)
    assert rel_err(g, want) < 1e-6


# -- (b) the error to RBP falls as r^N --------------------------------------------------------
#: relative error to RBP measured on this network (docs/maths.md section 4)
MEASURED = {("symmetric", 2, 0.05): 0.0877, ("holomorphic", 4, 0.05): 0.0194,
            ("holomorphic", 4, 0.01): 2.63e-5, ("holomorphic", 6, 0.01): 3.73e-7}


def _error(problem, variant, n, r):
    net, x, y, truth = problem
    g = ns.ep.gradient(net, x, y, beta=r, variant=variant, points=n, eps=EPS, tol=1e-13)
    return rel_err(g, truth)


def test_the_errors_to_rbp(problem):
    for (variant, n, r), want in MEASURED.items():
        assert _error(problem, variant, n, r) == pytest.approx(want, rel=0.05), (variant, n, r)
    # two points on the circle are the symmetric pair
    assert _error(problem, "holomorphic", 2, 0.05) == pytest.approx(
        _error(problem, "symmetric", 2, 0.05), rel=1e-6)


@pytest.mark.parametrize("n, r", [(2, 0.01), (4, 0.01), (6, 0.02)])
def test_the_error_falls_as_r_to_the_n(problem, n, r):
    """Halving the radius divides the error by 2^N (radii where rounding does not count)."""
    ratio = _error(problem, "holomorphic", n, r) / _error(problem, "holomorphic", n, r / 2)
    assert ratio == pytest.approx(2.0 ** n, rel=0.15)


@pytest.mark.parametrize("kind", ["softmax", "vector_field"])
def test_softmax_readouts_and_vector_fields_are_analytic_too(kind):
    """A softmax readout (its parameters' share included) and vector-field dynamics run the
    same plan: the error to the beta -> 0 limit falls as r^4."""
    if kind == "softmax":
        net = ns.layered([6, 7, 3], activation="logistic", seed=4, readout="softmax")
    else:
        net = skip_net(dynamics="vector_field", asymmetry=0.3)
    x, y = one_hot_batch(net, 3, seed=4)
    limit = ns.rbp.gradient(net, x, y, method="implicit", eps=EPS) if kind == "softmax" else \
        ns.ep.gradient(net, x, y, beta=1e-4, variant="symmetric", eps=EPS, tol=1e-13)
    errs = [rel_err(ns.ep.gradient(net, x, y, beta=r, variant="holomorphic", points=4,
                                   eps=EPS, tol=1e-13), limit) for r in (0.04, 0.02)]
    assert errs[0] / errs[1] == pytest.approx(16.0, rel=0.2)
    eng = ns.engines.build("reference", net, beta=0.02, variant="holomorphic", points=4,
                           clip=False, eps=EPS, tol=1e-13, free_steps=50_000,
                           nudge_steps=50_000)
    assert rel_err(eng.estimate(x, y), limit) == pytest.approx(errs[1], rel=1e-3)


def test_the_plan_contrast_after_each_nudged_step():
    """The time-resolved estimate (the fidelity command's curve): Re sum_i c_i
    dE/dtheta(s_k^(beta_i)) after k steps of every phase; at the last k, the estimate."""
    from neurosim.commands.fidelity import run_fidelity
    net = skip_net()
    x, y = one_hot_batch(net, 3, seed=4)
    eng = ns.engines.build("reference", net, beta=0.05, variant="holomorphic", points=4,
                           clip=False, eps=EPS, free_steps=400, nudge_steps=60)
    res = run_fidelity(eng, x, y)
    assert [np.iscomplexobj(t["y"]) for t in res["nudged"].values()] == [True] * 4
    assert res["curve"]["rel_error"].shape == (60,)
    assert np.all(np.isfinite(res["curve"]["cosine"])) and res["curve_rel_diff"] < 1e-12
    assert res["curve"]["rel_error"][-1] < res["curve"]["rel_error"][0]


# -- (c) refusals -----------------------------------------------------------------------------
@pytest.mark.parametrize("activation, clip", [("hard_sigmoid", True), ("hard_sigmoid", False),
                                              ("logistic", True)])
def test_dynamics_that_are_not_analytic_are_refused(activation, clip):
    net = ns.layered([5, 4, 3], activation=activation, seed=0)
    with pytest.raises(ConfigurationError,
                       match=r"^learning\.variant: holomorphic EP needs analytic dynamics.*"
                             r"got activation \"%s\" with clip = %s$"
                             % (activation, "true" if clip else "false")):
        ns.engines.build("reference", net, beta=0.05, variant="holomorphic", clip=clip)
    x, y = one_hot_batch(net, 2)
    with pytest.raises(NeurosimError, match="variant: holomorphic"):
        ns.ep.gradient(net, x, y, beta=0.05, variant="holomorphic", clip=clip)


def test_max_pooling_is_refused():
    import networkx as nx
    g = nx.DiGraph()
    g.add_node("x", size=16, role="input", shape=(1, 4, 4))
    g.add_node("h", size=4, role="hidden", shape=(1, 2, 2))
    g.add_node("y", size=2, role="output")
    g.add_edge("x", "h", kernel=3, padding=1, pool=2, pooling="max")
    g.add_edge("h", "y")
    net = ns.Network.from_graph(g, activation="logistic", seed=0)
    with pytest.raises(ConfigurationError, match="learning.variant: holomorphic.*max pooling"):
        ns.engines.build("reference", net, beta=0.05, variant="holomorphic", clip=False)


@pytest.mark.parametrize("engine", ["brian2-rate", "brian2-spiking", "resistive"])
def test_engines_that_run_real_nudges_refuse(engine):
    with pytest.raises(ConfigurationError, match="^learning.variant: holomorphic EP runs "
                                                 "complex nudges.*the %s engine" % engine):
        ns.engines.build(engine, skip_net(), beta=0.05, variant="holomorphic", clip=False)


def test_points_and_the_adc_are_checked():
    net = skip_net()
    with pytest.raises(ConfigurationError, match="^learning.points"):
        ns.engines.build("reference", net, beta=0.05, variant="holomorphic", points=1,
                         clip=False)
    with pytest.raises(ConfigurationError, match="^learning.points: expected an integer"):
        ns.engines.build("reference", net, beta=0.05, variant="holomorphic", points=2.5,
                         clip=False)
    with pytest.raises(ConfigurationError, match="^hardware.adc_bits.*holomorphic"):
        ns.engines.build("reference", net, beta=0.05, variant="holomorphic", clip=False,
                         hardware={"preset": "ideal", "adc_bits": 8})


# -- (d) the circuit file ---------------------------------------------------------------------
CIRCUIT = """
name = "holo"
[network]
sizes = [6, 7, 3]
skip = [[0, 2]]
activation = "logistic"
seed = 4
[engine]
clip = false
eps = 0.1
free_steps = 300
nudge_steps = 100
[learning]
variant = "holomorphic"
beta = 0.05
points = %s
"""


def test_a_circuit_file_round_trip(tmp_path):
    path = tmp_path / "holo.toml"
    path.write_text(CIRCUIT % 6)
    circuit, _ = config.load(str(path))
    assert circuit.learning.variant == "holomorphic" and circuit.learning.points == 6
    assert "points = 6" in config.to_toml(circuit)
    eng = ns.engines.from_circuit(circuit, config.build_network(circuit.network))
    assert eng.settings.points == 6 and len(eng.plan.nudged) == 6
    assert settings_of(circuit)["points"] == 6
    path.write_text(CIRCUIT % 1)
    with pytest.raises(ConfigurationError, match="learning.points"):
        config.load(str(path))
