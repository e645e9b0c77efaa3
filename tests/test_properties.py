"""Property tests: on random small layered networks (2..6 units per layer, 1-2 hidden layers,
an optional skip projection, batch 1..3, random seed) the relations of MATH.md section 6 hold
within its tolerances."""
from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import neurosim as ns  # noqa: E402
from neurosim.fidelity import negate, time_resolved  # noqa: E402
from neurosim.relax import free_state  # noqa: E402

from conftest import EPS, fd_entry, rel_err, residual  # noqa: E402


@st.composite
def small_problems(draw):
    n_hidden = draw(st.integers(1, 2))
    sizes = [draw(st.integers(2, 6)) for _ in range(n_hidden + 2)]
    pairs = [(i, j) for i in range(len(sizes)) for j in range(i + 2, len(sizes))]
    skip = draw(st.one_of(st.just(()), st.sampled_from(pairs).map(lambda p: (p,))))
    seed = draw(st.integers(0, 2 ** 16))
    batch = draw(st.integers(1, 3))
    net = ns.layered(sizes, activation="logistic", seed=seed, skip=skip)
    rng = np.random.default_rng(seed)
    net = net.copy(params={k: (rng.normal(0, 0.2, v.shape) if k.startswith("b:") else v)
                           for k, v in net.params.items()})
    x = rng.uniform(0, 1, (batch, sizes[0]))
    y = rng.uniform(0, 1, (batch, sizes[-1]))
    res = ns.relax(net, x, eps=EPS, tol=1e-11, max_steps=50_000, raise_on_fail=False)
    assume(res.converged)     # a network without a stable fixed point has nothing to test
    return net, x, y, free_state(net, x, eps=EPS, state=res.state)


@settings(max_examples=20, deadline=None)
@given(small_problems())
def test_theorem_relations_hold(problem):
    net, x, y, s0 = problem
    assert residual(net, s0, x) < 1e-10
    g = ns.rbp.gradient(net, x, y, state=s0)
    ap, stats = ns.rbp.gradient(net, x, y, method="almeida_pineda", eps=EPS, state=s0,
                                return_stats=True)
    assert stats.spectral_radius < 1.0
    assert rel_err(ap, g) < 1e-6
    # beta = 1e-5, not 1e-4: 1 - cosine is O(beta^2) with a network-dependent constant, and a
    # search of random networks (HYPOTHESIS_PROFILE=explore) finds ~1 in 100 where the valid-k
    # minimum at beta = 1e-4 is below 1 - 1e-6. Measured: 2-5-5, batch 2: 1 - cos = 1.4e-6 at
    # beta = 1e-4; 4-5-2, batch 1: 4.7e-6 at beta = 5e-5; 4-5-6: 4.2e-4 / 4.2e-6 / 4.2e-8 at
    # beta = 1e-3 / 1e-4 / 1e-5 (|u_k + Sbar_k| / |Sbar_k| ~ 32 beta at k = 84). MATH.md's row
    # "> 1 - 1e-6 for beta <= 1e-3" needs beta <~ 1.4e-3 / C with C that constant.
    K, beta = 200, 1e-5
    sn = ns.rbp.side_network(net, x, y, EPS, K, state=s0)
    sp = ns.ep.second_phase(net, x, y, beta, EPS, K, state=s0)
    # k = 0: exact up to rounding of s_1 - s_0
    smax = max(float(np.max(np.abs(v))) for v in s0.values())
    err0 = max(float(np.max(np.abs(sp.u[p][0] + sn.S[p][0]))) for p in net.state_pops)
    assert err0 <= 4 * (EPS * residual(net, s0, x) + 2.3e-16 * (smax + 1)) / (EPS * beta)
    # every valid k: u_k and -Sbar_k point the same way
    tr = time_resolved(sp.u, negate(sn.S))
    valid = tr["valid"]
    assert valid.sum() >= 10
    assert tr["cosine"][valid].min() > 1 - 1e-6
    # P_k -> Thetabar_k
    gn = np.sqrt(sum(np.sum(v ** 2) for v in g.values()))
    worst = max(np.sqrt(sum(np.sum((sp.P[k][q] - sn.Theta[k][q]) ** 2) for q in g))
                for k in range(K))
    assert worst / gn < 50 * beta


@settings(max_examples=15, deadline=None)
@given(small_problems(), st.integers(0, 2 ** 16))
def test_implicit_gradient_matches_finite_differences(problem, pick):
    net, x, y, s0 = problem
    g = ns.rbp.gradient(net, x, y, state=s0)
    rng = np.random.default_rng(pick)
    keys = sorted(net.params)
    for key in rng.choice(keys, size=4, replace=True):
        idx = tuple(int(rng.integers(n)) for n in net.params[key].shape)
        # Richardson-extrapolated central differences (steps 1e-5 and 5e-6): random networks
        # include nearly singular Hessians (e.g. layered [3, 6, 5], smallest eigenvalue of H
        # 0.03, spectral radius 0.997) where the plain step-1e-5 difference is off by 1.1e-5
        # through its O(h^2) truncation term (measured: error 1.1e-3 / 1.1e-5 / 1.1e-7 at
        # h = 1e-4 / 1e-5 / 1e-6), not because the implicit gradient is wrong.
        d1 = fd_entry(net, x, y, key, idx, s0, h=1e-5)
        d2 = fd_entry(net, x, y, key, idx, s0, h=5e-6)
        fd = (4 * d2 - d1) / 3
        assert abs(fd - g[key][idx]) < 1e-7, (key, idx)
