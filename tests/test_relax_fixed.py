"""Dynamics.run_fixed (the fused fixed-step path) follows Dynamics.run to rounding."""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim.relax import Dynamics, RelaxationError

from conftest import graph

KINDS = ("layered", "deep", "skip", "two_inputs", "lateral", "cycle")


def setup(kind, activation="hard_sigmoid", dynamics="energy", dtype="float64", batch=5):
    net = ns.Network.from_graph(graph(kind), activation=activation, dynamics=dynamics, seed=3,
                                dtype=dtype, gain=1.5,
                                asymmetry=0.5 if dynamics == "vector_field" else 0.0)
    rng = np.random.default_rng(7)
    xs = {p: rng.uniform(0, 1, (batch, net.sizes[p])) for p in net.inputs}
    x = xs if len(xs) > 1 else xs[net.inputs[0]]
    y = rng.uniform(0, 1, (batch, net.sizes[net.outputs[0]]))
    s = {p: rng.uniform(-0.2, 1.2, (batch, net.sizes[p])) for p in net.state_pops}
    return net, x, y, s


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dynamics", ["energy", "vector_field"])
@pytest.mark.parametrize("beta", [0.0, 0.7, -0.4])
def test_run_fixed_matches_run_clipped(kind, dynamics, beta):
    net, x, y, s = setup(kind, dynamics=dynamics)
    dyn = Dynamics(net, x, y, clip=True)
    a, b = dyn.initial_state(s), dyn.initial_state(s)
    dyn.run(a, 0.35, beta=beta, steps=40)
    out = dyn.run_fixed(b, 0.35, beta=beta, steps=40)
    assert out is b
    for p in net.state_pops:
        np.testing.assert_allclose(b[p], a[p], rtol=0, atol=1e-14)
        assert b[p].min() >= 0.0 and b[p].max() <= 1.0


@pytest.mark.parametrize("activation, clip", [("logistic", True), ("logistic", False),
                                              ("hard_sigmoid", False)])
def test_run_fixed_other_settings_are_exact(activation, clip):
    net, x, y, s = setup("skip", activation=activation)
    dyn = Dynamics(net, x, y, clip=clip)
    a, b = dyn.initial_state(s), dyn.initial_state(s)
    dyn.run(a, 0.2, beta=0.5, steps=25)
    dyn.run_fixed(b, 0.2, beta=0.5, steps=25)
    for p in net.state_pops:
        np.testing.assert_array_equal(b[p], a[p])


def test_run_fixed_float32_stays_float32():
    net, x, y, s = setup("lateral", dtype="float32")
    net64 = net.copy(dtype="float64")
    dyn, dyn64 = Dynamics(net, x, y, clip=True), Dynamics(net64, x, y, clip=True)
    a, b = dyn.initial_state(s), dyn64.initial_state(s)
    dyn.run_fixed(a, 0.3, beta=0.5, steps=30)
    dyn64.run(b, 0.3, beta=0.5, steps=30)
    for p in net.state_pops:
        assert a[p].dtype == np.float32
        np.testing.assert_allclose(a[p], b[p], rtol=0, atol=1e-5)


def test_run_fixed_zero_steps_and_errors():
    net, x, y, s = setup("layered")
    dyn = Dynamics(net, x, y, clip=True)
    a = dyn.initial_state(s)
    keep = {p: v.copy() for p, v in a.items()}
    dyn.run_fixed(a, 0.3, steps=0)
    for p in a:
        np.testing.assert_array_equal(a[p], keep[p])
    with pytest.raises(ValueError, match="eps"):
        dyn.run_fixed(a, -0.1, steps=3)
    with pytest.raises(ValueError, match="steps"):
        dyn.run_fixed(a, 0.1, steps=-3)
    with pytest.raises(ValueError, match="targets"):
        Dynamics(net, x, clip=True).run_fixed(a, 0.1, beta=0.5, steps=3)


def test_run_fixed_reports_divergence():
    net, x, y, s = setup("layered")
    net.params["b:h1"][0] = np.nan
    with pytest.raises(RelaxationError, match="NaN"):
        net2 = net
        dyn = Dynamics(net2, x, y, clip=True)
        dyn.run_fixed(dyn.initial_state(s), 0.3, steps=5)


def test_run_with_tolerance_unchanged_by_single_force_evaluation():
    """run() with a tolerance evaluates the force once per step: same states and residual
    trace as stepping by hand with step() and residual()."""
    net, x, y, s = setup("cycle")
    dyn = Dynamics(net, x, y, clip=True)
    a, b = dyn.initial_state(s), dyn.initial_state(s)
    res = dyn.run(a, 0.2, beta=0.3, steps=30, record_residual=True)
    trace = []
    for _ in range(30):
        trace.append(dyn.residual(b, 0.3))
        dyn.step(b, 0.2, 0.3)
    np.testing.assert_array_equal(res.residual, np.array(trace))
    for p in net.state_pops:
        np.testing.assert_array_equal(a[p], b[p])
