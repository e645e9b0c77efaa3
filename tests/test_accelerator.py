"""The accelerator engine (``engine.name = "torch"``) beyond the conformance suite: float32
against the float64 reference, its ground truth on the device against the reference
implementation's, training and checkpoints that resume on either engine, and its settings."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import neurosim as ns  # noqa: E402
from neurosim import engines  # noqa: E402
from neurosim.engines.protocol import Engine  # noqa: E402
from neurosim.errors import ConfigurationError  # noqa: E402
from neurosim.training import Trainer  # noqa: E402
from neurosim.training.optimizer import Adam, Optimizer  # noqa: E402

from conftest import (TORCH_DEVICE, conv_max_softmax_network, make_net,  # noqa: E402
                      one_hot_batch, skip_network)

RATE = dict(eps=0.5, free_steps=30, nudge_steps=6, clip=True, beta=0.2, variant="symmetric")


def _relative(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in b) / \
        max(float(np.max(np.abs(b[k]))) for k in b)


@pytest.mark.parametrize("network,settings", [
    (skip_network, RATE),
    (conv_max_softmax_network, dict(RATE, eps=0.2, beta=0.1)),
], ids=["skip", "conv-max-softmax"])
def test_float32_follows_the_float64_reference_to_1e_4_relative(network, settings):
    net = network()
    x, y = one_hot_batch(net, n=8)
    ref = engines.build("reference", net, **settings).estimate(x, y)
    got = engines.build("torch", net.copy(dtype="float32"), device=TORCH_DEVICE, **settings).estimate(
        x.astype(np.float32), y.astype(np.float32))
    assert all(v.dtype == np.float32 for v in got.values())
    assert _relative(got, ref) < 1e-4


@pytest.mark.parametrize("kind,clip", [("skip", True), ("deep", False), ("lateral", False)])
def test_the_ground_truth_on_the_device_is_the_reference_implementations(kind, clip):
    """Newton and CG on Jacobian-vector products from the engine's free state give the
    fixed point and RBP gradient the reference implementation gives from the same state."""
    net = skip_network() if kind == "skip" else make_net(kind, 1)
    x, y = one_hot_batch(net, n=8)
    eng = engines.build("torch", net, device=TORCH_DEVICE, eps=0.5 if clip else 0.2, free_steps=200,
                        clip=clip, tol=1e-6)
    state = eng.free_state(x)
    g, fp = eng.ground_truth(x, y, 1e-10, "test", state=state)
    want, fp_ref = Engine.ground_truth(eng, x, y, 1e-10, "test", state=state)
    assert fp.residual <= 1e-10 and fp.newton_iterations >= 1      # the device's own path
    assert max(float(np.max(np.abs(fp.state[p] - fp_ref.state[p]))) for p in fp.state) < 1e-9
    assert max(float(np.max(np.abs(g[k] - want[k]))) for k in want) < 1e-9


def test_a_saddle_is_handed_to_the_reference_implementation():
    """On this cycle network one example's settled state has a Jacobian with a positive
    eigenvalue: CG meets non-positive curvature and the reference implementation (which
    verifies or raises) gives the ground truth."""
    net = make_net("cycle", 1)
    x, y = one_hot_batch(net, n=8)
    eng = engines.build("torch", net, device=TORCH_DEVICE, eps=0.2, free_steps=200, clip=False,
                        tol=1e-6)
    state = eng.free_state(x)
    g, fp = eng.ground_truth(x, y, 1e-9, "test", state=state)
    want, _ = Engine.ground_truth(eng, x, y, 1e-9, "test", state=state)
    assert all(np.array_equal(g[k], want[k]) for k in want)


def _digits_trainer(name, **kw):
    net = ns.layered([64, 32, 10], activation="hard_sigmoid", seed=0)
    extra = {"device": TORCH_DEVICE} if name == "torch" else {}
    eng = engines.build(name, net, eps=0.5, free_steps=20, nudge_steps=4, beta=0.5,
                        variant="symmetric", **extra)
    data = ns.datasets.load("digits", limit_train=600, limit_test=300)
    return Trainer(eng, data, epochs=3, batch_size=20, fidelity_batches=1, progress=False,
                   lr=0.01, optimizer="adam", weight_decay=0.01, **kw)


def test_torch_trains_and_a_checkpoint_resumes_on_either_engine(tmp_path):
    """Adam with decoupled weight decay on the torch engine learns the digits; its checkpoint
    after epoch 2 resumes on the torch engine to the uninterrupted weights exactly, and on
    the reference engine to the same weights to rounding."""
    whole = _digits_trainer("torch")
    whole.fit()
    assert whole.history["test_accuracy"][-1] > 0.7, whole.history["test_accuracy"]
    assert whole.fidelity["epoch_fraction"]     # fidelity logged through the torch engine
    part = _digits_trainer("torch", checkpoint=str(tmp_path / "p.npz"))
    part.epochs = 2
    part.fit()
    part.save()
    for name in ("torch", "reference"):
        resumed = _digits_trainer(name)
        resumed.load(str(tmp_path / "p.npz"))
        resumed.fit()
        for k, v in whole.net.params.items():
            if name == "torch":
                np.testing.assert_array_equal(v, resumed.net.params[k])
            else:
                np.testing.assert_allclose(v, resumed.net.params[k], rtol=0, atol=1e-6)


def test_its_settings_are_checked_by_their_field():
    net = skip_network()
    with pytest.raises(ConfigurationError, match=r"engine\.device: expected"):
        engines.build("torch", net, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigurationError, match=r"engine\.device: 'cuda' asked"):
            engines.build("torch", net, device="cuda")
    assert engines.build("torch", net, device="auto").device.type in ("cpu", "cuda")
    with pytest.raises(ConfigurationError, match=r"engine\.solver: 'block' needs"):
        engines.build("torch", ns.layered([5, 4, 3], seed=0), solver="block")
    with pytest.raises(ConfigurationError, match=r"engine\.device: the reference engine "
                                                 r"does not use"):
        engines.build("reference", net, device="cpu")


def test_a_circuit_file_runs_on_torch(tmp_path):
    """``engine.name = "torch"`` in a circuit file: the run trains, evaluates and reports
    through the torch engine."""
    from neurosim.commands.run import run
    summary = run(None, ["engine.name=torch", "engine.device=%s" % TORCH_DEVICE, "train.epochs=1",
                         "output.dir=%s" % tmp_path, "record.traces=false"], progress=False,
                  echo=lambda *a, **k: None)
    assert summary["engine"] == summary["evaluated_by"] == "torch"
    assert summary["test_accuracy"] > 0.5, summary["test_accuracy"]     # one epoch


@pytest.mark.parametrize("make", [
    lambda lrs: Optimizer(lrs, momentum=0.9, weight_decay=0.1),
    lambda lrs: Adam(lrs, weight_decay=0.1),
    lambda lrs: Optimizer(lrs)], ids=["sgd-momentum-decay", "adamw", "sgd"])
def test_the_update_on_the_device_is_the_optimizers_rule(make):
    """Three steps of the optimizer's update on tensors (Adam by torch's fused AdamW) give the
    parameters and the optimizer state (velocity, moments, counts) of its numpy ``apply``."""
    from neurosim.accelerator.optimizer import apply
    rng = np.random.default_rng(0)
    p = {"W:x->h": rng.normal(size=(30, 20)), "b:h": rng.normal(size=20)}
    lrs = {"W:x->h": 0.05, "b:h": 0.02}
    on_host, on_device = make(lrs), make(lrs)
    a, b = {k: v.copy() for k, v in p.items()}, {k: v.copy() for k, v in p.items()}
    for _ in range(3):
        g = {k: rng.normal(size=v.shape) for k, v in p.items()}
        on_host.apply(a, g)
        apply(on_device, {k: torch.from_numpy(v) for k, v in b.items()},
              {k: torch.from_numpy(v) for k, v in g.items()})
    for k in p:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-14)
    sa, sb = on_host.state_dict(), on_device.state_dict()
    assert set(sa) == set(sb)
    for k in sa:
        np.testing.assert_allclose(sb[k], sa[k], rtol=1e-12, atol=1e-14)
