"""The optimizers that apply an estimate (neurosim.training.optimizer): SGD with momentum and
Adam follow their update rules exactly, keep their state across a checkpoint, and refuse
contradictory settings naming the field."""
import json

import numpy as np
import pytest

import neurosim as ns
from neurosim import engines
from neurosim.errors import ConfigurationError
from neurosim.training.optimizer import Adam, Optimizer, make_optimizer
from neurosim.training.trainer import Trainer


def _adam_by_hand(grads, lr, b1, b2, eps):
    """Adam's parameter after each gradient of ``grads``, written out from Kingma & Ba's
    Algorithm 1."""
    theta, m, v, out = 0.0, 0.0, 0.0, []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        out.append(theta)
    return np.array(out)


def test_adam_follows_its_update_rule_with_bias_correction():
    grads = [0.3, -1.2, 0.05, 2.0, 0.7]
    opt = Adam({"w": 0.01}, betas=(0.8, 0.95))
    w, got = {"w": np.zeros(1)}, []
    for g in grads:
        opt.apply(w, {"w": np.array([g])})
        got.append(w["w"][0])
    np.testing.assert_allclose(got, _adam_by_hand(grads, 0.01, 0.8, 0.95, 1e-8), rtol=1e-12)
    # the first step has size lr whatever the gradient's scale (bias correction)
    first = Adam({"w": 0.01})
    np.testing.assert_allclose(first.delta({"w": np.array([1e-4, -50.0])})["w"], [-0.01, 0.01],
                               rtol=1e-3)


def test_delta_and_apply_agree_and_a_zero_rate_is_left_alone():
    g = {"a": np.array([1.0, -2.0]), "b": np.array([3.0])}
    p = {"a": np.zeros(2), "b": np.zeros(1)}
    one, two = Adam({"a": 0.1, "b": 0.0}), Adam({"a": 0.1, "b": 0.0})
    d = one.delta(g)
    two.apply(p, g)
    assert set(d) == {"a"} and p["b"][0] == 0.0
    np.testing.assert_allclose(d["a"], p["a"], rtol=1e-14)


@pytest.mark.parametrize("make", [lambda lrs: Optimizer(lrs, momentum=0.7),
                                  lambda lrs: Adam(lrs, betas=(0.85, 0.99))])
def test_state_round_trip_continues_the_same_updates(make):
    rng = np.random.default_rng(0)
    grads = [{"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)} for _ in range(6)]
    lrs = {"W": 0.05, "b": 0.02}
    straight, p1 = make(lrs), {"W": np.zeros((3, 2)), "b": np.zeros(2)}
    for g in grads:
        straight.apply(p1, g)
    first, p2 = make(lrs), {"W": np.zeros((3, 2)), "b": np.zeros(2)}
    for g in grads[:3]:
        first.apply(p2, g)
    resumed = make(lrs)
    resumed.load_state_dict({k: np.array(v) for k, v in first.state_dict().items()})
    for g in grads[3:]:
        resumed.apply(p2, g)
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])


def test_only_plain_sgd_may_be_fused_into_an_engine_step():
    assert Optimizer({"w": 0.1}).plain
    assert not Optimizer({"w": 0.1}, momentum=0.5).plain
    assert not Adam({"w": 0.1}).plain


def test_make_optimizer_refuses_contradictions_naming_the_field():
    assert isinstance(make_optimizer("adam", {"w": 0.1}), Adam)
    with pytest.raises(ConfigurationError, match=r"learning\.momentum"):
        make_optimizer("adam", {"w": 0.1}, momentum=0.9)
    with pytest.raises(ConfigurationError, match=r"learning\.optimizer"):
        make_optimizer("lion", {"w": 0.1})
    with pytest.raises(ConfigurationError, match=r"learning\.adam_betas"):
        Adam({"w": 0.1}, betas=(0.9, 1.0))


def _digits_trainer(**kw):
    net = ns.layered([64, 32, 10], activation="hard_sigmoid", seed=0)
    eng = engines.build("reference", net, eps=0.5, free_steps=20, nudge_steps=4, beta=0.5,
                        variant="symmetric")
    data = ns.datasets.load("digits", limit_train=600, limit_test=300)
    return Trainer(eng, data, epochs=3, batch_size=20, fidelity_batches=0, progress=False, **kw)


def test_adam_trains_a_network_through_the_reference_engine_and_resumes_exactly(tmp_path):
    tr = _digits_trainer(lr=0.01, optimizer="adam", checkpoint=str(tmp_path / "ck.npz"))
    tr.fit()
    assert tr.history["test_accuracy"][-1] > 0.7, tr.history["test_accuracy"]
    # stop after epoch 2, resume from the checkpoint: the same final weights
    part = _digits_trainer(lr=0.01, optimizer="adam", checkpoint=str(tmp_path / "p.npz"))
    part.epochs = 2
    part.fit()
    part.save()
    resumed = _digits_trainer(lr=0.01, optimizer="adam")
    resumed.load(str(tmp_path / "p.npz"))
    resumed.fit()
    for k, v in tr.net.params.items():
        np.testing.assert_array_equal(v, resumed.net.params[k])


@pytest.mark.parametrize("make", [lambda lrs: Optimizer(lrs, momentum=0.5, weight_decay=0.1),
                                  lambda lrs: Adam(lrs, weight_decay=0.1)])
def test_weight_decay_is_decoupled_and_leaves_the_biases(make):
    """With decay ``wd`` each update also takes ``lr wd theta`` off every weight matrix (not the
    biases), and ``delta(grad, params)`` is the change ``apply`` makes."""
    rng = np.random.default_rng(1)
    p = {"W:x->h": rng.normal(size=(3, 2)), "b:h": rng.normal(size=2)}
    g = {"W:x->h": rng.normal(size=(3, 2)), "b:h": rng.normal(size=2)}
    lrs = {"W:x->h": 0.05, "b:h": 0.05}
    decayed, plain = make(lrs), make(lrs)
    plain.weight_decay = 0.0
    decayed.delta(g, p)         # a first step: with momentum, coupled L2 would now differ
    plain.delta(g)
    d = decayed.delta(g, p)
    d0 = plain.delta(g)
    np.testing.assert_allclose(d["W:x->h"], d0["W:x->h"] - 0.05 * 0.1 * p["W:x->h"], rtol=1e-12)
    np.testing.assert_array_equal(d["b:h"], d0["b:h"])
    q, first = {k: v.copy() for k, v in p.items()}, make(lrs)
    first.apply({k: v.copy() for k, v in p.items()}, g)       # the same first step's state
    first.apply(q, g)
    for k in p:
        np.testing.assert_allclose(q[k], p[k] + d[k], rtol=1e-12, atol=1e-15)
    assert not decayed.plain
    with pytest.raises(ValueError, match="needs the parameters"):
        make(lrs).delta(g)



def test_a_decay_that_would_flip_the_weights_is_refused():
    with pytest.raises(ConfigurationError, match=r"learning\.weight_decay: lr x weight_decay"):
        Optimizer({"W:x->h": 0.1, "b:h": 0.1}, weight_decay=10.0)
    Optimizer({"W:x->h": 0.1, "b:h": 50.0}, weight_decay=9.0)    # biases do not decay


def test_the_reference_engine_does_not_fuse_a_decaying_update():
    """With weight decay the step is the estimate then the optimizer's update, exactly."""
    net = ns.layered([6, 5, 3], activation="hard_sigmoid", seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (4, 6)), np.eye(3)[rng.integers(0, 3, 4)]
    eng = engines.build("reference", net, eps=0.5, free_steps=10, nudge_steps=4, beta=0.5)
    lrs = {k: 0.1 for k in net.params}
    by_hand = {k: v.copy() for k, v in net.params.items()}
    Optimizer(lrs, weight_decay=0.5).apply(by_hand, eng.estimate(x, y))
    eng.step(x, y, Optimizer(lrs, weight_decay=0.5))
    for k, v in net.params.items():
        np.testing.assert_allclose(v, by_hand[k], rtol=1e-12, atol=1e-15)


def test_rules_and_engines_that_update_in_place_refuse_another_optimizer():
    with pytest.raises(ConfigurationError, match=r"learning\.optimizer: continual EP"):
        _digits_trainer(rule="continual_ep", lr=0.01, optimizer="adam")
    with pytest.raises(ConfigurationError, match=r"learning\.optimizer: continual EP"):
        _digits_trainer(rule="continual_ep", lr=0.01, weight_decay=0.1)


def test_a_checkpoint_resumes_only_with_the_optimizer_that_wrote_it(tmp_path):
    sgd = _digits_trainer(lr=0.05, momentum=0.5, checkpoint=str(tmp_path / "sgd.npz"))
    sgd.epochs = 1
    sgd.fit()
    sgd.save()
    with pytest.raises(ConfigurationError, match=r"learning\.optimizer = 'sgd'"):
        _digits_trainer(lr=0.01, optimizer="adam").load(str(tmp_path / "sgd.npz"))
    # a checkpoint from before Adam (momentum under velocity/, no optimizer named) loads as SGD
    with np.load(str(tmp_path / "sgd.npz")) as z:
        arrays = {k.replace("optimizer/", "velocity/"): z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["optimizer"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(str(tmp_path / "old.npz"), **arrays)
    old = _digits_trainer(lr=0.05, momentum=0.5)
    old.load(str(tmp_path / "old.npz"))
    assert old.opt.velocity and all(np.array_equal(v, sgd.opt.velocity[k])
                                    for k, v in old.opt.velocity.items())
