"""neurosim.engines.reference.ep_step: the fast EP training step gives the numbers of neurosim.ep.gradient.

The fast path (fused Euler steps, products accumulated in place) must agree with the
reference estimator to rounding in float64, for every variant, with and without clipping,
on topologies with skip connections, lateral projections, several inputs and hidden cycles,
and for vector-field networks; float32 runs agree to float32 rounding.
"""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import energy as en
from neurosim.engines.reference import StepOutcome, ep_step

from conftest import graph

KINDS = ("layered", "skip", "two_inputs", "lateral", "cycle")
BATCH = 4
KW = dict(eps=0.3, free_steps=12, nudge_steps=5)


def build(kind, activation="hard_sigmoid", dynamics="energy", dtype="float64", seed=0):
    net = ns.Network.from_graph(graph(kind), activation=activation, dynamics=dynamics, seed=seed,
                                dtype=dtype, gain=0.6,
                                asymmetry=0.4 if dynamics == "vector_field" else 0.0)
    rng = np.random.default_rng(100 + seed)
    params = {k: (rng.normal(0.0, 0.2, v.shape) if k.startswith("b:") else v)
              for k, v in net.params.items()}
    return net.copy(params=params)


def data(net, seed=0, batch=BATCH):
    """Inputs in [0, 1], one-hot targets, and a warm start inside (0, 1) (unsaturated)."""
    rng = np.random.default_rng(seed)
    xs = {p: rng.uniform(0.0, 1.0, (batch, net.sizes[p])) for p in net.inputs}
    x = xs if len(xs) > 1 else xs[net.inputs[0]]
    n_out = net.sizes[net.outputs[0]]
    y = np.eye(n_out)[rng.integers(0, n_out, batch)]
    state = {p: rng.uniform(0.2, 0.8, (batch, net.sizes[p])) for p in net.state_pops}
    return x, y, state


def max_rel(a, b):
    """``max |a - b| / max |b|`` over all entries of two parameter dicts."""
    assert set(a) == set(b)
    per_key = {k: float(np.max(np.abs(b[k]))) for k in b}
    assert min(per_key.values()) > 1e-5, "degenerate test: a reference gradient is zero"
    scale = max(per_key.values())
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - b[k]))) for k in b) / scale


def lr_dict(net):
    return {k: 0.05 * (i + 1) for i, k in enumerate(net.params)}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("variant", ["one_sided", "symmetric"])
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("activation", ["hard_sigmoid", "logistic"])
def test_gradient_matches_ep_gradient(kind, variant, clip, activation):
    net = build(kind, activation)
    x, y, state = data(net)
    ref = ns.ep.gradient(net, x, y, 0.4, variant=variant, clip=clip, state=state, **KW)
    before = {k: v.copy() for k, v in net.params.items()}
    g = {}
    res = ep_step(net, x, y, 0.4, lr=0.0, variant=variant, clip=clip, state=state, grad_out=g,
                  **KW)
    assert isinstance(res, StepOutcome)
    assert max_rel(g, ref) < 1e-12
    for k in before:                                   # lr = 0: nothing moves
        np.testing.assert_array_equal(net.params[k], before[k])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("variant", ["one_sided", "symmetric"])
@pytest.mark.parametrize("clip", [True, False])
def test_in_place_update_is_minus_lr_times_gradient(kind, variant, clip):
    """The fused update (products accumulated into the weights) equals theta - lr * g."""
    net = build(kind)
    x, y, state = data(net, seed=1)
    ref = ns.ep.gradient(net, x, y, 0.5, variant=variant, clip=clip, state=state, **KW)
    lrs = lr_dict(net)
    work = net.copy()
    ep_step(work, x, y, 0.5, lr=lrs, variant=variant, clip=clip, state=state, **KW)
    step = {k: (net.params[k] - work.params[k]) / lrs[k] for k in net.params}
    assert max_rel(step, ref) < 1e-12
    for k, v in work.params.items():
        assert v.dtype == np.float64 and v.flags.c_contiguous


@pytest.mark.parametrize("kind", ["layered", "skip", "two_inputs", "cycle"])
@pytest.mark.parametrize("variant", ["one_sided", "symmetric"])
@pytest.mark.parametrize("clip", [True, False])
def test_vector_field(kind, variant, clip):
    net = build(kind, dynamics="vector_field")
    x, y, state = data(net, seed=1)
    ref = ns.ep.gradient(net, x, y, 0.3, variant=variant, clip=clip, state=state, **KW)
    g, work = {}, net.copy()
    ep_step(work, x, y, 0.3, lr=0.1, variant=variant, clip=clip, state=state, grad_out=g, **KW)
    assert max_rel(g, ref) < 1e-12
    step = {k: (net.params[k] - work.params[k]) / 0.1 for k in net.params}
    assert max_rel(step, ref) < 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_sign_draws_like_ep(seed):
    net = build("skip")
    x, y, state = data(net, seed=seed)
    ref = ns.ep.gradient(net, x, y, 0.5, variant="random_sign", clip=True, state=state,
                         rng=seed, **KW)
    g = {}
    ep_step(net.copy(), x, y, 0.5, lr=0.1, variant="random_sign", state=state, rng=seed,
            grad_out=g, **KW)
    assert max_rel(g, ref) < 1e-12


def test_random_sign_uses_both_signs():
    net = build("layered")
    x, y, state = data(net)
    plus = ns.ep.gradient(net, x, y, 0.5, clip=True, state=state, **KW)
    minus = ns.ep.gradient(net, x, y, -0.5, clip=True, state=state, **KW)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(12):
        g = {}
        ep_step(net.copy(), x, y, 0.5, lr=0.0, variant="random_sign", state=state, rng=rng,
                grad_out=g, **KW)
        if max_rel(g, plus) < 1e-12:
            seen.add("+")
        elif max_rel(g, minus) < 1e-12:
            seen.add("-")
        else:
            pytest.fail("random-sign gradient matches neither +beta nor -beta")
    assert seen == {"+", "-"}


@pytest.mark.parametrize("kind", KINDS)
def test_free_state_and_cost(kind):
    """The returned state is ep's s0 (persistent particles), the cost is mean C at s0, and
    the warm start passed in is not modified."""
    net = build(kind)
    x, y, state = data(net)
    keep = {p: v.copy() for p, v in state.items()}
    est = ns.ep.estimate(net, x, y, 0.5, clip=True, state=state, **KW)
    s0, cost = ep_step(net.copy(), x, y, 0.5, lr=0.1, state=state, **KW)
    for p in net.state_pops:
        np.testing.assert_allclose(s0[p], est.s0[p], rtol=0, atol=1e-13)
        np.testing.assert_array_equal(state[p], keep[p])
        assert s0[p].min() >= 0.0 and s0[p].max() <= 1.0
    assert cost == pytest.approx(float(np.mean(en.cost(net, est.s0, y))), rel=1e-12)


def test_persistent_particles_chain_like_ep():
    """Three training steps with persistent particles: the same trajectory of parameters and
    states as ep.estimate + theta -= lr g."""
    net = build("deep")
    x, y, state = data(net)
    lrs = lr_dict(net)
    ref, s_ref = net.copy(), state
    fast, s_fast = net.copy(), state
    for _ in range(3):
        est = ns.ep.estimate(ref, x, y, 0.5, variant="symmetric", clip=True, state=s_ref, **KW)
        for k in ref.params:
            ref.params[k] -= lrs[k] * est.gradient[k]
        s_ref = est.s0
        s_fast, _ = ep_step(fast, x, y, 0.5, lr=lrs, variant="symmetric", state=s_fast, **KW)
    for k in net.params:
        np.testing.assert_allclose(fast.params[k], ref.params[k], rtol=0, atol=1e-13)
    for p in net.state_pops:
        np.testing.assert_allclose(s_fast[p], s_ref[p], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("variant", ["one_sided", "symmetric"])
def test_float32(kind, variant):
    """float32 end to end: params stay float32 and the estimate agrees with ep.gradient in
    float32 (and with the float64 estimate) to float32 rounding."""
    net32 = build(kind, dtype="float32")
    net64 = net32.copy(dtype="float64")
    x, y, state = data(net32)
    ref32 = ns.ep.gradient(net32, x, y, 0.5, variant=variant, clip=True, state=state, **KW)
    ref64 = ns.ep.gradient(net64, x, y, 0.5, variant=variant, clip=True, state=state, **KW)
    g, work = {}, net32.copy()
    s0, cost = ep_step(work, x, y, 0.5, lr=0.1, variant=variant, state=state, grad_out=g, **KW)
    assert all(v.dtype == np.float32 for v in g.values())
    assert all(v.dtype == np.float32 for v in work.params.values())
    assert all(v.dtype == np.float32 for v in s0.values())
    assert isinstance(cost, float)
    assert max_rel(g, ref32) < 1e-4
    assert max_rel(g, ref64) < 1e-4
    # the in-place float32 update too
    work = net32.copy()
    ep_step(work, x, y, 0.5, lr=0.1, variant=variant, state=state, **KW)
    step = {k: (net32.params[k].astype(np.float64) - work.params[k]) / 0.1 for k in net32.params}
    assert all(v.dtype == np.float32 for v in work.params.values())
    assert max_rel(step, ref64) < 1e-3


def test_reference_recipe_shape():
    """784-500-10 hard sigmoid with the 2017 settings runs and moves both layers."""
    net = ns.layered([784, 500, 10], activation="hard_sigmoid", seed=0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (20, 784))
    y = np.eye(10)[rng.integers(0, 10, 20)]
    lrs = {"W:x->h1": 0.1, "b:h1": 0.1, "W:h1->y": 0.05, "b:y": 0.05}
    before = {k: v.copy() for k, v in net.params.items()}
    g = {}
    ref = ns.ep.gradient(net, x, y, 0.5, variant="random_sign", eps=0.5, free_steps=20,
                         nudge_steps=4, clip=True, rng=5)
    s0, cost = ep_step(net, x, y, 0.5, lrs, eps=0.5, free_steps=20, nudge_steps=4,
                       variant="random_sign", rng=5, grad_out=g)
    assert max_rel(g, ref) < 1e-12
    for k in before:
        np.testing.assert_allclose(before[k] - net.params[k], lrs[k] * ref[k], rtol=0,
                                   atol=1e-14)
    assert s0["h1"].shape == (20, 500) and np.isfinite(cost)


@pytest.mark.parametrize("kwargs, match", [
    (dict(beta=0.0), "beta"),
    (dict(beta=float("nan")), "beta"),
    (dict(variant="two_sided"), "variant"),
    (dict(free_steps=None), "free_steps"),
    (dict(nudge_steps=-1), "nudge_steps"),
    (dict(lr={"W:x->h1": 0.1}), "missing"),
    (dict(lr={"W:x->h1": 0.1, "b:h1": 0.1, "W:h1->y": 0.1, "b:y": 0.1, "W:q": 1.0}), "not parameters"),
    (dict(lr="fast"), "lr"),
    (dict(eps=0.0), "eps"),
    (dict(grad_out=[]), "grad_out"),
])
def test_bad_arguments(kwargs, match):
    net = build("layered")
    x, y, state = data(net)
    args = dict(beta=0.5, lr=0.1)
    args.update(kwargs)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match=match):
        ep_step(net, x, y, **args)
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])


def test_needs_targets():
    net = build("layered")
    x, _, _ = data(net)
    with pytest.raises((ValueError, ns.NetworkError)):
        ep_step(net, x, None, 0.5, 0.1)


def test_batch_of_one():
    net = build("skip")
    x, y, state = data(net, batch=1)
    ref = ns.ep.gradient(net, x, y, 0.5, variant="symmetric", clip=True, state=state, **KW)
    g = {}
    ep_step(net.copy(), x, y, 0.5, 0.1, variant="symmetric", state=state, grad_out=g, **KW)
    assert max_rel(g, ref) < 1e-12


@pytest.mark.parametrize("threads", [None, 1, 2])
def test_blas_threads_setting_gives_the_same_numbers(threads):
    net = build("lateral")
    x, y, state = data(net)
    ref = ns.ep.gradient(net, x, y, 0.5, clip=True, state=state, **KW)
    g = {}
    ep_step(net.copy(), x, y, 0.5, 0.1, state=state, grad_out=g, blas_threads=threads, **KW)
    assert max_rel(g, ref) < 1e-12
    with pytest.raises(ValueError, match="blas_threads"):
        ep_step(net.copy(), x, y, 0.5, 0.1, blas_threads=0)


@pytest.mark.parametrize("variant", ["one_sided", "symmetric", "random_sign"])
@pytest.mark.parametrize("readout", ["state", "softmax"])
def test_threads_over_the_batch_give_the_one_thread_step(variant, readout):
    net = ns.layered([12, 9, 4], activation="hard_sigmoid", readout=readout, seed=3)
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 1.0, (37, 12))
    y = np.eye(4)[rng.integers(0, 4, 37)]
    state = {p: rng.uniform(0.0, 1.0, (37, net.sizes[p])) for p in net.state_pops}
    kw = dict(eps=0.5, free_steps=7, nudge_steps=3, variant=variant, state=state, rng=11)
    one, two = net.copy(), net.copy()
    a = ep_step(one, x, y, 0.4, 0.2, threads=1, **kw)
    b = ep_step(two, x, y, 0.4, 0.2, threads=3, **kw)
    assert a.cost == pytest.approx(b.cost, rel=1e-12)
    for p in net.state_pops:
        assert np.allclose(a.state[p], b.state[p], atol=1e-14)
    for k in net.params:
        assert np.allclose(one.params[k], two.params[k], atol=1e-13), k
    with pytest.raises(ns.errors.ArgumentError, match="threads must be an integer >= 1"):
        ep_step(net.copy(), x, y, 0.4, 0.2, threads=0, **kw)
