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


# -- the trainer trains through an estimator and an engine (no per-rule code) ----------------
def _hard_sigmoid_batch(seed=0):
    net = ns.layered([5, 6, 3], activation="hard_sigmoid", seed=seed, dtype="float64")
    rng = np.random.default_rng(seed)
    return net, rng.uniform(0, 1, (4, 5)), np.eye(3)[[0, 2, 1, 0]]


@pytest.mark.parametrize("rule, cls", [("ep", estimators.EP), ("continual_ep",
                                                                 estimators.ContinualEP),
                                       ("rbp", estimators.RBP)])
def test_the_trainer_holds_the_estimator_of_its_rule(rule, cls):
    from neurosim.training import Trainer
    net, _, _ = _hard_sigmoid_batch()
    eng = ns.engines.build("reference", net, rule=rule, eps=0.5, free_steps=40, nudge_steps=8)
    data = ns.datasets.load("teacher", n_in=5, n_classes=3, n_train=40, n_test=20)
    tr = Trainer(eng, data, rule=rule, lr=0.05, epochs=1, fidelity_batches=0, progress=False)
    assert isinstance(tr.estimator, cls)
    tr.fit()
    assert np.isfinite(tr.history["train_loss"][-1])


def test_rbp_steps_along_the_implicit_gradient_at_the_engines_own_fixed_point():
    """rule = rbp: the update is -lr times RBP's implicit gradient at the exact fixed point
    polished from the engine's own free state."""
    from neurosim.fixed_point import free_fixed_point
    from neurosim.training.optimizer import Optimizer
    net, x, y = _hard_sigmoid_batch(1)
    eng = ns.engines.build("reference", net, rule="rbp", eps=0.5, free_steps=60,
                           solver="block", nudge_steps=8)
    s = eng.free_state(x)
    fp = free_fixed_point(net, x, clip=True, eps=0.5, tol=1e-10, state=s, warm_steps=0)
    want = ns.rbp.gradient(net, x, y, method="implicit", eps=0.5, state=fp.state, clip=True)
    before = {k: v.copy() for k, v in net.params.items()}
    lrs = {k: 0.1 for k in net.params}
    res = estimators.for_engine("rbp", eng).step(eng, x, y, Optimizer(lrs), label="test")
    for k in net.params:
        np.testing.assert_allclose(before[k] - net.params[k], 0.1 * want[k], atol=1e-12)
    assert all(np.array_equal(res.state[p], s[p]) for p in s)     # the engine's free state


def test_continual_ep_steps_from_the_engines_free_state():
    """rule = continual_ep: the weights move as ep.continual from the engine's free state."""
    from neurosim.training.optimizer import Optimizer
    net, x, y = _hard_sigmoid_batch(2)
    eng = ns.engines.build("reference", net, rule="continual_ep", eps=0.5, free_steps=30,
                           nudge_steps=6, beta=0.2)
    s = eng.free_state(x)
    lrs = {k: 0.05 for k in net.params}
    want = ns.ep.continual(net, x, y, 0.2, lrs, eps=0.5, nudge_steps=6, free_steps=0, state=s,
                           clip=True)
    estimators.for_engine("continual_ep", eng).step(eng, x, y, Optimizer(lrs))
    for k in net.params:
        np.testing.assert_allclose(net.params[k], want.params[k], atol=1e-13)
