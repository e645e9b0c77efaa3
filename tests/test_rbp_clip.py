"""RBP for the dynamics projected to [0, 1] (hard sigmoid, the 2017 recipe): units pinned at
a bound do not respond, and the implicit gradient matches finite differences of the loss at
the clipped fixed point; symmetric EP with clipping agrees with it."""
import numpy as np
import pytest

import neurosim as ns


@pytest.mark.parametrize("seed", [0, 1])
def test_clipped_rbp_matches_finite_differences(seed):
    net = ns.layered([12, 9, 4], activation="hard_sigmoid", seed=seed, gain=0.6)
    for k in net.params:
        if k.startswith("b:"):
            net.params[k][:] = 0.3
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 1, (3, 12)), np.eye(4)[[0, 2, 3]]

    def loss(params):
        n = net.copy(params=params)
        s = ns.relax(n, x, eps=0.5, tol=1e-13, clip=True).state
        return float(np.mean(ns.energy.cost(n, s, y)))

    g = ns.rbp.gradient(net, x, y, eps=0.5, clip=True)
    s0 = ns.relax(net, x, eps=0.5, tol=1e-13, clip=True).state
    assert any(np.any((v == 0) | (v == 1)) for v in s0.values())     # some units are pinned
    for key in net.params:
        idx = np.unravel_index(np.argmax(np.abs(g[key])), g[key].shape)
        p = {k: v.copy() for k, v in net.params.items()}
        p[key][idx] += 1e-6
        up = loss(p)
        p[key][idx] -= 2e-6
        fd = (up - loss(p)) / 2e-6
        assert abs(fd - g[key][idx]) < 1e-7, key
    ep = ns.ep.gradient(net, x, y, 1e-3, variant="symmetric", eps=0.5, clip=True)
    assert ns.fidelity.compare(ep, g)["cosine"] > 1 - 1e-6
