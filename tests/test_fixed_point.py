"""free_fixed_point: the exact free fixed point RBP linearises at (MATH.md sections 1-3).

With clipped hard sigmoid it is a projected fixed point to rounding level, the end state of a
long Euler run, and the RBP gradient there matches finite differences of the loss; elsewhere
Euler plus Newton. A point that is not a fixed point to ``tol`` raises FixedPointError.
"""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import energy as en
from neurosim.fixed_point import FixedPointError, free_fixed_point
from neurosim.relax import Dynamics

from conftest import graph

EPS = 0.5


def layered(seed, gain=1.0, sizes=(20, 30, 5), dtype="float64"):
    net = ns.layered(list(sizes), activation="hard_sigmoid", seed=seed, gain=gain, dtype=dtype)
    rng = np.random.default_rng(100 + seed)
    x = rng.uniform(0.0, 1.0, (6, sizes[0]))
    y = rng.uniform(0.0, 1.0, (6, sizes[-1]))
    return net, x, y


def from_graph(kind, gain=1.5):
    net = ns.Network.from_graph(graph(kind), activation="hard_sigmoid", seed=3, gain=gain)
    rng = np.random.default_rng(7)
    xs = {p: rng.uniform(0.0, 1.0, (5, net.sizes[p])) for p in net.inputs}
    y = rng.uniform(0.0, 1.0, (5, net.sizes[net.outputs[0]]))
    return net, (xs if len(xs) > 1 else xs[net.inputs[0]]), y


def projected_residual(net, s, x, eps=EPS):
    """``max |clip(s + eps F) - s| / eps`` from energy.forces (independent of the solver)."""
    f = en.forces(net, s, x)
    return max(float(np.max(np.abs(np.clip(s[p] + eps * f[p], 0.0, 1.0) - s[p]))) / eps
               for p in net.state_pops)


def long_euler(net, x):
    return ns.relax(net, x, eps=EPS, tol=1e-13, max_steps=1_000_000, clip=True).state


def assert_exact_fixed_point(net, x, fp):
    assert fp.residual <= 1e-10
    assert projected_residual(net, fp.state, x) <= 1e-10
    euler = long_euler(net, x)
    for p in net.state_pops:
        assert fp.state[p].dtype == net.dtype
        assert fp.state[p].min() >= 0.0 and fp.state[p].max() <= 1.0
        np.testing.assert_allclose(fp.state[p], euler[p], rtol=0, atol=1e-9)
    pinned = {p: float(np.mean((v == 0) | (v == 1))) for p, v in fp.state.items()}
    assert fp.pinned == pytest.approx(pinned)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_layered_networks(seed):
    net, x, _ = layered(seed)
    fp = free_fixed_point(net, x, clip=True, eps=EPS)
    assert_exact_fixed_point(net, x, fp)
    assert 0.0 < fp.pinned["h1"] < 1.0                # some units pinned, some inside


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_active_set_steps_alone_from_zeros(seed):
    """No Euler step at all (max_steps=0): the safeguarded active-set steps alone reach a
    stable fixed point. With the weights scaled so that the energy is convex (largest
    singular value of the coupling below 1) it is the one fixed point, Euler's; with larger
    weights there can be several (seed 2 at gain 1 has two for one example), which is why
    free_fixed_point warms up with Euler steps."""
    net, x, _ = layered(seed, gain=0.5)
    assert np.linalg.norm(net.params["W:h1->y"], 2) < 1.0
    cold = free_fixed_point(net, x, clip=True, eps=EPS, max_steps=0)
    assert cold.steps == 0 and cold.newton_iterations >= 1
    assert_exact_fixed_point(net, x, cold)
    net, x, _ = layered(seed)
    assert projected_residual(net, free_fixed_point(net, x, clip=True, max_steps=0).state,
                              x) <= 1e-10


@pytest.mark.parametrize("kind", ["skip", "lateral", "cycle", "two_inputs"])
def test_other_topologies(kind):
    """Skip connections, a lateral projection, a hidden cycle, two input populations."""
    net, x, _ = from_graph(kind)
    assert_exact_fixed_point(net, x, free_fixed_point(net, x, clip=True, eps=EPS, max_steps=5))


def test_large_weights_pin_most_units():
    net, x, _ = layered(1, gain=4.0)
    fp = free_fixed_point(net, x, clip=True, eps=EPS, max_steps=5)
    assert fp.pinned["h1"] > 0.8 and fp.pinned["y"] < 1.0
    assert_exact_fixed_point(net, x, fp)


def test_warm_start_at_the_fixed_point_stays_there():
    net, x, _ = layered(0)
    fp = free_fixed_point(net, x, clip=True, eps=EPS)
    again = free_fixed_point(net, x, clip=True, eps=EPS, state=fp.state)
    for p in net.state_pops:
        np.testing.assert_allclose(again.state[p], fp.state[p], rtol=0, atol=1e-13)


@pytest.mark.parametrize("case", ["layered-0", "layered-2", "skip"])
def test_rbp_gradient_matches_finite_differences(case):
    net, x, y = from_graph("skip") if case == "skip" else layered(int(case[-1]))
    s0 = free_fixed_point(net, x, clip=True, eps=EPS).state
    g = ns.rbp.gradient(net, x, y, eps=EPS, clip=True, state=s0)
    own = ns.rbp.gradient(net, x, y, eps=EPS, clip=True)      # relaxes its own s0
    for k in g:
        np.testing.assert_allclose(own[k], g[k], rtol=0, atol=1e-12)

    def loss(params):
        n = net.copy(params=params)
        s = free_fixed_point(n, x, clip=True, eps=EPS, state=s0).state
        return float(np.mean(en.cost(n, s, y)))

    rng, h = np.random.default_rng(5), 1e-6
    for key in net.params:
        picks = [np.unravel_index(np.argmax(np.abs(g[key])), g[key].shape)]
        picks += [tuple(rng.integers(0, d) for d in g[key].shape) for _ in range(2)]
        for idx in picks:
            p = {k: v.copy() for k, v in net.params.items()}
            p[key][idx] += h
            up = loss(p)
            p[key][idx] -= 2 * h
            fd = (up - loss(p)) / (2 * h)
            assert abs(fd - g[key][idx]) < 1e-7, (key, idx, fd, g[key][idx])


def test_not_a_fixed_point_raises_with_batch_and_residual():
    """No Euler step from zeros without clipping: the zero state is far from a fixed point,
    and hard sigmoid has no Newton refinement; the error names the batch and the residual."""
    net, x, _ = layered(0)
    expected = max(float(np.max(np.abs(v)))
                   for v in en.forces(net, net.zero_state(len(x)), x).values())
    with pytest.raises(FixedPointError) as err:
        free_fixed_point(net, x, clip=False, eps=EPS, max_steps=0, batch="epoch 1, batch 17")
    msg = str(err.value)
    assert "epoch 1, batch 17" in msg and ("%.3g" % expected) in msg and "tol=1e-10" in msg
    assert isinstance(err.value, ns.errors.NeurosimError) and isinstance(err.value, RuntimeError)
    with pytest.raises(FixedPointError, match="the batch"):
        free_fixed_point(net, x, clip=False, eps=EPS, max_steps=0)


def test_tolerance_below_rounding_raises():
    """The clipped solution is exact only to rounding: asking for less than that fails (after
    the allowed Euler steps) instead of returning a state that does not meet it."""
    net, x, _ = layered(1)
    with pytest.raises(FixedPointError, match=r"batch 3 not reached: .* > tol=1e-300"):
        free_fixed_point(net, x, clip=True, eps=EPS, tol=1e-300, max_steps=150, batch="batch 3")


def test_float32_network():
    """Solved in float64, returned in float32: ``state_residual`` shows the rounding."""
    net32, x, _ = layered(2, dtype="float32")
    fp = free_fixed_point(net32, x, clip=True, eps=EPS)
    fp64 = free_fixed_point(net32.copy(dtype="float64"), x, clip=True, eps=EPS)
    assert fp.residual <= 1e-10 and 0.0 < fp.state_residual < 1e-5
    for p in net32.state_pops:
        assert fp.state[p].dtype == np.float32
        np.testing.assert_array_equal(fp.state[p], fp64.state[p].astype(np.float32))


def test_dense_solver_reports_its_residual():
    net, x, y = layered(0)
    s0 = free_fixed_point(net, x, clip=True, eps=EPS).state
    lin = en.Linearization(net, s0, x, clip=True)
    c = en.dC_ds(net, s0, y)
    w, stats = ns.rbp.solve_adjoint(net, lin, c, solver="dense")
    wf, cf = en.flatten(net, w), en.flatten(net, c)
    measured = max(np.linalg.norm(lin.dense(i).T @ wf[i] - cf[i]) / np.linalg.norm(cf[i])
                   for i in range(len(cf)))
    assert stats.residual == pytest.approx(measured, rel=1e-6, abs=1e-18)
    assert 0.0 < stats.residual < 1e-10 and stats.converged
    assert stats.iterations == len(cf)


def test_general_path_logistic_and_vector_field():
    net = ns.layered([6, 5, 3], activation="logistic", seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (4, 6))
    fp = free_fixed_point(net, x, clip=False, eps=0.2)
    assert fp.residual <= 1e-10 and fp.steps > 0 and fp.pinned == {}
    assert max(float(np.max(np.abs(v))) for v in en.forces(net, fp.state, x).values()) <= 1e-10
    vf = ns.layered([6, 5, 3], activation="hard_sigmoid", dynamics="vector_field", seed=0,
                    asymmetry=0.3)
    fv = free_fixed_point(vf, x, clip=True, eps=EPS)
    assert fv.residual <= 1e-10 and fv.newton_iterations == 0
    euler = long_euler(vf, x)
    for p in vf.state_pops:
        np.testing.assert_allclose(fv.state[p], euler[p], rtol=0, atol=1e-9)


def test_step_residual_is_the_projected_step():
    """Dynamics.step_residual is ``max |P(s + eps F) - s| / eps``: below the projected force
    (Dynamics.residual), zero at a fixed point, ``max |F|`` without clipping."""
    net, x, _ = layered(3)
    rng = np.random.default_rng(0)
    s = {p: rng.uniform(-0.2, 1.2, (len(x), net.sizes[p])) for p in net.state_pops}
    dyn = Dynamics(net, x, clip=True)
    s = dyn.initial_state(s)
    assert 0.0 < dyn.step_residual(s, EPS) <= dyn.residual(s)
    assert dyn.step_residual(free_fixed_point(net, x, clip=True, eps=EPS).state, EPS) <= 1e-10
    free = Dynamics(net, x, clip=False)
    assert free.step_residual(s, EPS) == pytest.approx(
        max(float(np.max(np.abs(v))) for v in en.forces(net, s, x).values()))
