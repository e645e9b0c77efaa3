"""Phases as data (neurosim.plan): the nudge weights, the shorthands, any plan executed by the
reference engine against independently relaxed phases, one random-sign stream, and phases
that settle (engine.tol) with their steps counted and unsettled batches flagged."""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import energy as en
from neurosim.errors import NeurosimError
from neurosim.plan import Plan, batch_sign, nudge_weights, unsettled
from neurosim.relax import Dynamics

from conftest import make_data, make_net


@pytest.mark.parametrize("nudges", [(0.0, 0.3), (-0.2, 0.2), (-0.2, 0.1, 0.3), (0.0, 0.1, 0.2, -0.4)])
def test_the_weights_are_the_derivative_of_the_interpolating_polynomial(nudges):
    """sum_i c_i b_i^k = [k == 1]: exact on polynomials of degree < n, so the weights give
    the derivative at 0 of any such polynomial."""
    c = nudge_weights(nudges)
    b = np.asarray(nudges)
    for k in range(len(b)):
        assert np.sum(c * b ** k) == pytest.approx(1.0 if k == 1 else 0.0, abs=1e-12)
    coeffs = np.random.default_rng(0).normal(size=len(b))      # p(t) = sum_j a_j t^j
    p = np.polynomial.polynomial.polyval(b, coeffs)
    assert np.sum(c * p) == pytest.approx(coeffs[1], rel=1e-10)


def test_the_shorthands():
    assert np.allclose(Plan.of(0.5, "one_sided").weights, [-2.0, 2.0])
    assert np.allclose(Plan.of(0.5, "symmetric").weights, [1.0, -1.0])
    assert Plan.of(0.5, "symmetric").nudges == (0.5, -0.5)     # +beta runs first
    rs = Plan.of(0.5, "random_sign")
    assert rs.random_sign and rs.nudges == (0.0, 0.5)
    assert rs.for_batch(np.random.default_rng(1)).random_sign is False
    assert Plan.of(0.5, "symmetric", nudges=[-0.2, 0.1, 0.3]).nudges == (-0.2, 0.1, 0.3)
    assert Plan.of(0.5, "one_sided").phases == 2 and Plan.of(0.5, "symmetric").phases == 3


@pytest.mark.parametrize("bad, match", [([0.1], "at least two"), ([0.1, 0.1], "distinct"),
                                        ([0.0, 0.0], "distinct"), ([0.1, float("nan")], "finite")])
def test_bad_nudges_are_named(bad, match):
    with pytest.raises(NeurosimError, match="learning.nudges.*" + match):
        Plan.of(nudges=bad)


def test_one_stream_of_random_signs():
    """The sign of batch b of epoch e is a function of (seed, e, b) alone."""
    signs = [batch_sign(7, 2, b) for b in range(64)]
    assert set(signs) == {1.0, -1.0}
    assert signs == [batch_sign(7, 2, b) for b in range(64)]
    assert signs != [batch_sign(8, 2, b) for b in range(64)]


def _phase(net, x, y, s0, beta, eps, steps):
    dyn = Dynamics(net, x, y)
    s = {p: v.copy() for p, v in s0.items()}
    return dyn.run(s, eps, beta=beta, steps=steps).state


@pytest.mark.parametrize("engine", ["reference"])
def test_a_three_nudge_plan_equals_the_polynomial_derivative_of_independent_phases(engine):
    """nudges = [-0.2, 0.1, 0.3] on a logistic network with a skip connection: the engine's
    estimate equals sum_i c_i dE/dtheta(s_i), each s_i relaxed here on its own."""
    net = make_net("skip", 1, "energy")
    x, y = make_data(net, 1)
    nudges, eps, F, N = [-0.2, 0.1, 0.3], 0.1, 60, 30
    eng = ns.engines.build(engine, net, nudges=nudges, eps=eps, free_steps=F, nudge_steps=N,
                           clip=False)
    got = eng.estimate(x, y)
    dyn = Dynamics(net, x, y)
    s0 = dyn.run(dyn.initial_state(), eps, steps=F).state
    c = nudge_weights(nudges)
    want = None
    for ci, b in zip(c, nudges):
        g = en.dE_dtheta(net, _phase(net, x, y, s0, b, eps, N), dyn.inputs)
        want = {k: ci * v for k, v in g.items()} if want is None else \
            {k: want[k] + ci * v for k, v in g.items()}
    for k in net.params:
        assert np.max(np.abs(got[k] - want[k])) < 1e-8, k
    # and it is not the symmetric estimate (the plan is really used)
    sym = ns.engines.build(engine, net, beta=0.2, variant="symmetric", eps=eps, free_steps=F,
                           nudge_steps=N, clip=False).estimate(x, y)
    assert max(np.max(np.abs(got[k] - sym[k])) for k in net.params) > 1e-6


def test_a_four_nudge_plan_cancels_the_beta_cubed_bias():
    """Against RBP, [-b, -b/2, b/2, b] beats symmetric [-b, b] at the same b (bias O(b^4) vs
    O(b^2)); a third point beside +-b changes nothing (the quadratic's slope at 0 is the
    symmetric difference)."""
    net = make_net("layered", 0, "energy")
    x, y = make_data(net, 0)
    truth = ns.rbp.gradient(net, x, y, method="implicit", eps=0.1)

    def err(**kw):
        g = ns.ep.gradient(net, x, y, eps=0.1, **kw)
        return np.sqrt(sum(np.sum((g[k] - truth[k]) ** 2) for k in truth))
    b = 0.2
    sym = err(beta=b, variant="symmetric")
    assert err(nudges=[-b, b / 2, b]) == pytest.approx(sym, rel=1e-8)
    assert err(nudges=[-b, -b / 2, b / 2, b]) < 0.2 * sym


def test_phases_settle_and_report_their_steps():
    """With engine.tol the free phase stops early, at a projected step below tol, and says
    how many steps it took; with tol = 0 it takes every step."""
    net = ns.layered([6, 8, 3], activation="hard_sigmoid", seed=0)
    x, y = make_data(net, 0)
    kw = dict(solver="block", free_steps=500, nudge_steps=200, beta=0.1)
    est = ns.engines.build("reference", net, tol=1e-9, **kw).estimate(x, y)
    free = est.phases[0]
    assert free.beta == 0 and free.steps < 500 and free.step <= 1e-9
    assert len(est.phases) == 3 and all(r.step <= 1e-9 for r in est.phases)
    fixed = ns.engines.build("reference", net, tol=0.0, **kw).estimate(x, y)
    assert fixed.phases[0].steps == 500
    assert unsettled(fixed.phases, 0.0) == (False, False)
    capped = ns.engines.build("reference", net, tol=1e-12, **dict(kw, free_steps=1)).estimate(x, y)
    assert unsettled(capped.phases, 1e-12)[0]


def test_the_ground_truth_is_polished_from_the_engine_state():
    """Engine.ground_truth(state=...) finds the fixed point next to the engine's own free
    state (distance at rounding level once the engine has settled)."""
    net = ns.layered([6, 8, 3], activation="hard_sigmoid", seed=0)
    x, y = make_data(net, 0)
    eng = ns.engines.build("reference", net, solver="block", tol=1e-12, free_steps=2000,
                           nudge_steps=50, beta=0.1)
    est = eng.estimate(x, y)
    _, fp = eng.ground_truth(x, y, 1e-10, "test", state=est.state)
    assert fp.steps == 0 or fp.newton_iterations >= 0
    assert max(np.max(np.abs(est.state[p] - fp.state[p])) for p in net.state_pops) < 1e-9


def test_a_plan_that_cannot_run_is_refused_when_the_engine_is_built():
    """Explicit nudges with a random sign: refused at build, naming learning.nudges, before
    any batch runs (and before a run folder is written)."""
    from neurosim.errors import ConfigurationError
    net = ns.layered([5, 4, 3], seed=0)
    with pytest.raises(ConfigurationError, match="learning.nudges"):
        ns.engines.build("reference", net, nudges=[-0.2, 0.1, 0.3], variant="random_sign")
    with pytest.raises(ConfigurationError, match="learning.nudges.*distinct"):
        ns.engines.build("reference", net, nudges=[0.1, 0.1])
