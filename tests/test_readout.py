"""The softmax readout with a cross-entropy cost (docs/maths.md 11): the readout sits outside
the dynamics, RBP gets its direct term, EP its nudge-only contrast, and the theorem's numbers
(MATH.md section 6) hold as they do for a state readout (float64, logistic)."""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import energy as en
from neurosim import ep, rbp
from neurosim.engines.reference import ep_step
from neurosim.relax import Dynamics, free_state

from conftest import check_ep_slopes, rel_err

EPS = 0.2


def _net(activation="logistic", sizes=(5, 6, 4, 3), seed=2, **kw):
    return ns.network.layered(list(sizes), activation=activation, readout="softmax", seed=seed,
                              **kw)


def _data(net, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (batch, net.sizes[net.inputs[0]]))
    n_out = net.sizes[net.outputs[0]]
    return x, np.eye(n_out)[rng.integers(0, n_out, batch)]


def _loss(net, x, y):
    s = free_state(net, x, eps=EPS, tol=1e-9)
    return float(np.mean(en.cost(net, s, y)))


def test_the_readout_is_outside_the_dynamics():
    net = _net()
    assert net.state_pops == ["h1", "h2"]
    assert [t.key for t in net.readout_terms] == ["W:h2->y"]
    assert "W:h2->y" in net.params and "b:y" in net.params
    assert all(t.target != "y" and t.source != "y" for t in net.terms)
    x, y = _data(net)
    s = free_state(net, x, eps=EPS, tol=1e-12)
    p = en.predictions(net, s)["y"]
    assert np.allclose(p.sum(axis=1), 1.0) and np.all(p > 0)
    assert np.allclose(en.cost(net, s, y), -np.log(np.sum(p * y, axis=1)))
    # the cost and the free phase do not depend on the readout: E is the same without it
    e = en.energy(net, s, x)
    bumped = {k: v + (1.0 if k.endswith("->y") or k == "b:y" else 0.0) for k, v in net.params.items()}
    assert np.allclose(en.energy(net.copy(params=bumped), s, x), e)


def test_rbp_matches_finite_differences_of_the_cross_entropy():
    net = _net()
    x, y = _data(net)
    g = rbp.gradient(net, x, y, eps=EPS, tol=1e-13)
    h, worst = 1e-5, 0.0
    for k, v in net.params.items():
        for i in np.ndindex(v.shape):
            p = dict(net.params)
            up, down = v.copy(), v.copy()
            up[i] += h
            down[i] -= h
            p[k] = up
            lp = _loss(net.copy(params=p), x, y)
            p[k] = down
            lm = _loss(net.copy(params=p), x, y)
            worst = max(worst, abs((lp - lm) / (2 * h) - g[k][i]))
    assert worst < 1e-7
    assert np.abs(g["W:h2->y"]).max() > 1e-3 and np.abs(g["W:x->h1"]).max() > 1e-4


@pytest.mark.parametrize("method", ["almeida_pineda", "continuous", "bptt"])
def test_every_rbp_method_gives_the_implicit_gradient(method):
    net = _net()
    x, y = _data(net)
    g = rbp.gradient(net, x, y, eps=EPS, tol=1e-13)
    assert rel_err(rbp.gradient(net, x, y, method=method, eps=EPS, tol=1e-13), g) < 1e-6


def test_ep_converges_to_rbp_with_the_expected_slopes():
    net = _net()
    x, y = _data(net)
    check_ep_slopes(net, x, y, EPS)


def test_the_theorem_holds_step_by_step():
    net = _net()
    x, y = _data(net)
    side = rbp.side_network(net, x, y, EPS, 40)
    diffs = []
    for beta in (1e-3, 5e-4):
        sp = ep.second_phase(net, x, y, beta, EPS, 40)
        # u_0 = -Sbar_0 for any beta; the readout's own Thetabar_0 is dC/dtheta = P_0
        assert max(np.abs(sp.u[p][0] + side.S[p][0]).max() for p in net.state_pops) < 1e-8
        assert rel_err(sp.P[0], side.Theta[0]) < 1e-10
        diffs.append(max(max(np.abs(sp.u[p][k] + side.S[p][k]).max() for p in net.state_pops)
                         / max(np.abs(side.S[p][k]).max() for p in net.state_pops)
                         for k in range(40)))
        assert diffs[-1] < 10 * beta
    assert diffs[1] == pytest.approx(diffs[0] / 2, rel=0.1)


@pytest.mark.parametrize("variant", ["one_sided", "symmetric", "random_sign"])
def test_the_fast_step_gives_the_estimator_and_applies_it(variant):
    net = _net("hard_sigmoid", sizes=(6, 7, 5, 4), gain=0.8)
    x, y = _data(net, batch=5)
    kw = dict(eps=0.5, free_steps=9, nudge_steps=4, clip=True)
    want = ep.gradient(net, x, y, 0.4, variant=variant, rng=3, **kw)
    got = {}
    work = net.copy()
    out = ep_step(work, x, y, 0.4, 0.0, variant=variant, rng=3, grad_out=got, **kw)
    assert rel_err(got, want) < 1e-12
    assert out.cost == pytest.approx(float(np.mean(en.cost(net, out.state, y))))
    lr = {k: 0.1 for k in net.params}
    fused = net.copy()
    ep_step(fused, x, y, 0.4, lr, variant=variant, rng=3, **kw)
    for k in net.params:
        assert np.allclose(fused.params[k], net.params[k] - 0.1 * want[k], atol=1e-13), k


def test_fused_euler_steps_equal_the_plain_ones_in_the_nudged_phase():
    net = _net("hard_sigmoid", sizes=(6, 7, 5, 4), gain=0.8)
    x, y = _data(net, batch=5)
    a, b = Dynamics(net, x, y, clip=True), Dynamics(net, x, y, clip=True)
    sa, sb = a.initial_state(), b.initial_state()
    a.run(sa, 0.5, beta=0.7, steps=6)
    b.run_fixed(sb, 0.5, beta=0.7, steps=6)
    assert max(np.abs(sa[p] - sb[p]).max() for p in sa) < 1e-14


def test_training_with_the_readout_learns_digits():
    from neurosim.datasets import load
    data = load("digits", seed=0)
    net = ns.network.layered([64, 40, 10], activation="hard_sigmoid", readout="softmax", seed=0,
                             gain=0.5)
    rng = np.random.default_rng(0)
    lr = {k: 0.2 for k in net.params}
    for _ in range(3):
        for idx in np.array_split(rng.permutation(len(data.x_train)), len(data.x_train) // 20):
            ep_step(net, data.x_train[idx], data.y_train[idx], 0.5, lr, eps=0.5, free_steps=8,
                    nudge_steps=4, variant="symmetric")
    dyn = Dynamics(net, data.x_test, clip=True)
    s = dyn.run_fixed(dyn.initial_state(), 0.5, 0.0, 8)
    guess = np.argmax(en.predictions(net, s)["y"], axis=1)
    assert np.mean(guess == np.argmax(data.y_test, axis=1)) > 0.9


def test_bad_readouts_name_what_is_wrong():
    with pytest.raises(ns.NetworkError, match="readout must be one of"):
        ns.network.layered([4, 3, 2], readout="sigmoid")
    with pytest.raises(ns.NetworkError, match="needs energy dynamics"):
        ns.network.layered([4, 3, 2], readout="softmax", dynamics="vector_field")
    with pytest.raises(ns.NetworkError, match="reads hidden populations only"):
        ns.network.layered([4, 2], readout="softmax")
    with pytest.raises(ns.NetworkError, match="reads hidden populations only"):
        ns.network.layered([4, 3, 2], readout="softmax", skip=[(0, 2)])


def test_circuits_that_cannot_read_out_by_softmax_say_so():
    from neurosim.brian import CircuitError, compile as compile_circuit
    net = _net("hard_sigmoid")
    with pytest.raises(CircuitError, match="network.readout"):
        compile_circuit(net, model="rate", device="runtime")


def test_block_sweeps_reach_the_euler_fixed_points_of_both_phases():
    """Free phase: the exact per-population minimiser; nudged: the readout's pull taken at the
    current states. Both end where clipped Euler steps do, and EP from block phases is EP."""
    net = _net("hard_sigmoid", seed=4).copy(dtype="float64")
    x, y = _data(net, batch=4)
    dyn = Dynamics(net, x, y, clip=True)
    for beta in (0.0, 0.3, -0.3):
        euler = dyn.run(dyn.initial_state(None), 0.2, beta, steps=20000, tol=1e-12).state
        block = dyn.run_block(dyn.initial_state(None), beta, 200)
        assert max(np.abs(block[p] - euler[p]).max() for p in net.state_pops) < 1e-9
        assert dyn.residual(block, beta) < 1e-9
    lr = {k: 0.0 for k in net.params}   # the step's estimate, the weights untouched
    g_block, g_euler = {}, {}
    ep_step(net, x, y, 0.3, lr, variant="symmetric", solver="block", free_steps=200,
            nudge_steps=200, grad_out=g_block)
    ep_step(net, x, y, 0.3, lr, eps=0.2, variant="symmetric", free_steps=3000, nudge_steps=3000,
            grad_out=g_euler)
    assert rel_err(g_block, g_euler) < 1e-6
