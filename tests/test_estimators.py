"""One estimator interface (neurosim.estimators): each estimator's gradient is the function
that holds its formula, and the time-resolved forms match the theorem."""
import numpy as np
import pytest

import neurosim as ns
from neurosim import estimators
from neurosim.errors import ArgumentError


def _setup(seed=0):
    net = ns.layered([5, 6, 3], activation="logistic", seed=seed, dtype="float64")
    rng = np.random.default_rng(seed)
    return net, rng.uniform(0, 1, (3, 5)), np.eye(3)[[0, 2, 1]]


def _err(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in b)


def test_each_estimator_is_its_function():
    net, x, y = _setup()
    assert _err(estimators.make("ep", beta=1e-3, variant="symmetric").gradient(net, x, y),
                ns.ep.gradient(net, x, y, 1e-3, variant="symmetric")) == 0.0
    for method in ("implicit", "almeida_pineda", "continuous"):
        got = estimators.RBP(method=method).gradient(net, x, y)
        assert _err(got, ns.rbp.gradient(net, x, y, method=method)) < 1e-12
    implicit = ns.rbp.gradient(net, x, y)
    assert _err(estimators.BPTT().gradient(net, x, y), implicit) < 1e-6
    cont = estimators.ContinualEP(beta=1e-3, lr=1e-6, nudge_steps=400).gradient(net, x, y)
    assert ns.fidelity.compare(cont, implicit)["cosine"] > 0.999


def test_time_resolved_forms_match_the_theorem():
    net, x, y = _setup(1)
    steps = 30
    theta = estimators.RBP(method="almeida_pineda").detailed(net, x, y, steps)
    P = estimators.EP(beta=1e-5).detailed(net, x, y, steps)
    B = estimators.BPTT().detailed(net, x, y, steps)
    assert len(theta) == len(P) == len(B) == steps
    for k in range(1, steps):
        scale = max(float(np.max(np.abs(v))) for v in theta[k].values())
        assert _err(P[k], theta[k]) < 1e-3 * scale          # P_k -> Thetabar_k (O(beta))
        assert _err(B[k], theta[k]) < 1e-10 * max(scale, 1.0)   # BPTT = discrete RBP


def test_bad_settings_name_the_argument():
    with pytest.raises(ArgumentError, match="beta"):
        estimators.EP(beta=0.0)
    with pytest.raises(ArgumentError, match="variant"):
        estimators.EP(beta=0.1, variant="sideways")
    with pytest.raises(ArgumentError, match="name"):
        estimators.make("magic")
