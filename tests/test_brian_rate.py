"""Brian2 rate circuits against the reference engine: the same trajectories (to rounding)
with the same eps, on layered and non-layered graphs, energy and vector-field, both devices;
the synapses' accumulated update equals ns.ep.gradient; against RBP it reaches cosine > 0.9999
at beta = 1e-3; clear errors."""
import os

import numpy as np
import pytest

import neurosim as ns
from neurosim import traces
from conftest import circuit_graph_net

nb = pytest.importorskip("neurosim.brian", reason="brian2 is not installed")


def _graph_net(dynamics="energy", activation="logistic", seed=2):
    return circuit_graph_net(activation, dynamics, seed)


def _layered(activation="logistic"):
    net = ns.layered([5, 4, 3], activation=activation, seed=0)
    rng = np.random.default_rng(0)
    return net, rng.uniform(0, 1, (2, 5)), np.eye(3)[[0, 2]]


CASES = [("energy", "logistic", False), ("vector_field", "logistic", False),
         ("energy", "hard_sigmoid", True)]


@pytest.mark.parametrize("dynamics, activation, clip", CASES)
def test_runtime_trajectories_equal_the_reference(dynamics, activation, clip):
    net, x, y = _graph_net(dynamics, activation)
    c = nb.compile(net, model="rate", device="runtime", eps=0.2, clip=clip)
    for beta in (0.0, 0.05):
        got = c.trajectory(x, y, beta=beta, steps=120)
        ref = ns.relax(net, x, y, beta=beta, eps=0.2, tol=None, max_steps=120, record=True,
                       clip=clip).trajectory
        for p in net.state_pops:
            assert got[p].shape == ref[p].shape == (121, 3, net.sizes[p])
            np.testing.assert_allclose(got[p], ref[p], rtol=0, atol=1e-9)
    # the neuron's named time derivative is the force
    f = ns.energy.forces(net, {p: ref[p][0] for p in net.state_pops}, x, y, beta=0.05)
    for p in net.state_pops:
        np.testing.assert_allclose(c.traces[p]["dudt"][0], f[p], atol=1e-9)


@pytest.mark.parametrize("dynamics, activation, clip", CASES)
@pytest.mark.parametrize("variant", ["one_sided", "symmetric", "random_sign"])
def test_accumulated_update_equals_ep_gradient(dynamics, activation, clip, variant):
    net, x, y = _graph_net(dynamics, activation)
    c = nb.compile(net, eps=0.2, clip=clip)
    got = c.ep_update(x, y, beta=0.01, free_steps=60, nudge_steps=20, variant=variant, rng=3)
    ref = ns.ep.gradient(net, x, y, 0.01, variant=variant, eps=0.2, free_steps=60,
                         nudge_steps=20, clip=clip, rng=3)
    assert set(got) == set(net.params)
    for k in ref:
        assert got[k].shape == net.params[k].shape
    assert ns.fidelity.compare(got, ref)["rel_error"] < 1e-8


def test_update_matches_rbp_at_small_beta():
    net, x, y = _layered()
    c = nb.compile(net, eps=0.2)
    got = c.ep_update(x, y, beta=1e-3, free_steps=400, nudge_steps=300)
    rbp = ns.rbp.gradient(net, x, y, eps=0.2)
    assert ns.fidelity.compare(got, rbp)["cosine"] > 0.9999


@pytest.mark.parametrize("graph", ["layered", pytest.param("non-layered", marks=pytest.mark.slow)])
def test_cpp_standalone_matches_the_reference(tmp_path, graph):
    if graph == "layered":
        net = ns.layered([5, 4, 3], activation="logistic", seed=0, skip=[(0, 2)])
        rng = np.random.default_rng(0)
        x, y = rng.uniform(0, 1, (3, 5)), np.eye(3)[[0, 2, 1]]
    else:
        net, x, y = _graph_net()
    c = nb.compile(net, device="cpp_standalone", eps=0.2, build_dir=str(tmp_path / "build"))
    got = c.ep_update(x, y, beta=0.01, free_steps=100, nudge_steps=20, variant="symmetric")
    ref = ns.ep.gradient(net, x, y, 0.01, variant="symmetric", eps=0.2, free_steps=100,
                         nudge_steps=20)
    assert ns.fidelity.compare(got, ref)["rel_error"] < 1e-8
    # the free phase's first 100 steps, as monitored in the same run
    traj = ns.relax(net, x, eps=0.2, tol=None, max_steps=100, record=True).trajectory
    for p in net.state_pops:
        np.testing.assert_allclose(c.traces[p]["u"][:101], traj[p], atol=1e-9)


def test_errors_say_what_to_do(tmp_path, monkeypatch):
    net, x, y = _layered()
    with pytest.raises(nb.CircuitError, match="model 'hodgkin_huxley' is not supported"):
        nb.compile(net, model="hodgkin_huxley")
    with pytest.raises(nb.CircuitError, match="device must be one of"):
        nb.compile(net, device="cuda")
    with pytest.raises(nb.CircuitError, match="Network"):
        nb.compile("not a network")
    c = nb.compile(net)
    with pytest.raises(nb.CircuitError, match="variant"):
        c.ep_update(x, y, 0.1, 5, 5, variant="two_sided")
    with pytest.raises(nb.CircuitError, match="beta"):
        c.ep_update(x, y, 0.0, 5, 5)
    with pytest.raises(nb.CircuitError, match="nudge_steps"):
        c.ep_update(x, y, 0.1, 5, 0)
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    with pytest.raises(nb.CircuitError, match="needs a C\\+\\+ compiler.*no-such-compiler"):
        nb.compile(net, device="cpp_standalone")
    monkeypatch.setenv("CXX", "/bin/false")        # found, but every compilation fails
    c = nb.compile(net, device="cpp_standalone", build_dir=str(tmp_path / "b"))
    with pytest.raises(nb.CircuitError) as e:
        c.ep_update(x, y, 0.1, 5, 5)
    msg = str(e.value)
    assert "standalone build or run failed" in msg and "device='runtime'" in msg
    assert "Traceback" not in msg
    assert os.path.isdir(tmp_path / "b")


def test_training_in_the_circuit_gives_the_reference_weights(tmp_path):
    """One epoch through the compiled circuit (weights in the synapses, one standalone run)
    ends with the weights of the reference trainer, for every variant; a second epoch re-runs
    the build with new weights and learning rates. The random-sign circuit runs on two OpenMP
    threads (``engine.threads``)."""
    from neurosim.brian.training import TrainingCircuit
    from neurosim.engines.reference import ep_step
    from neurosim.training.trainer import resolve_learning_rates
    d = ns.datasets.load("digits", limit_train=60)
    x, y = d.x_train, d.y_train
    signs = np.repeat([1.0, -1.0, -1.0, 1.0, 1.0, -1.0], 10)
    for variant in ("symmetric", "random_sign"):
        net = ns.layered([64, 16, 10], activation="hard_sigmoid", seed=1)
        ref = net.copy()
        lrs = resolve_learning_rates(net, [0.1, 0.05])
        tc = TrainingCircuit(net, len(x), eps=0.5, free_steps=20, nudge_steps=4, beta=0.5,
                             variant=variant, clip=True, lrs=lrs, batch_size=10,
                             build_dir=str(tmp_path / variant),
                             threads=1 if variant == "symmetric" else 2)
        try:
            for epoch, scale in enumerate((1.0, 0.5)):
                lr = {k: v * scale for k, v in lrs.items()}
                tc.train_epoch(x, y, signs, lr, 10)
                for b in range(0, len(x), 10):
                    ep_step(ref, x[b:b + 10], y[b:b + 10], 0.5 * signs[b], lr, eps=0.5,
                            free_steps=20, nudge_steps=4,
                            variant="one_sided" if variant == "random_sign" else variant)
                for k in net.params:
                    np.testing.assert_allclose(net.params[k], ref.params[k], atol=1e-12,
                                               err_msg="%s epoch %d %s" % (variant, epoch, k))
        finally:
            tc.close()


def test_training_circuit_rejects_what_it_does_not_support():
    from neurosim.brian.training import TrainingCircuit
    net, x, y = _graph_net()
    with pytest.raises(nb.CircuitError, match="one input and one output"):
        TrainingCircuit(net, 10)
    vf = ns.layered([4, 3, 2], dynamics="vector_field")
    with pytest.raises(nb.CircuitError, match="energy dynamics only"):
        TrainingCircuit(vf, 10)


@pytest.mark.slow   # long (a Brian2 build or a whole run): python -m pytest -m slow
def test_circuit_train_and_traces_export(tmp_path):
    d = ns.datasets.load("digits", limit_train=40, limit_test=20)
    net = ns.layered([64, 16, 10], activation="hard_sigmoid", seed=1)
    before = {k: v.copy() for k, v in net.params.items()}
    c = nb.compile(net, eps=0.5, clip=True)
    # training is the Trainer's, with the brian2-rate engine (weights in the synapses of a
    # compiled circuit, one run per epoch)
    from neurosim.training import Trainer
    eng = ns.engines.build("brian2-rate", net, batch_size=10, eps=0.5, clip=True,
                           variant="random_sign", build_dir=str(tmp_path / "build"))
    try:
        hist = Trainer(eng, d, lr=[0.1, 0.05], epochs=2, batch_size=10, seed=0,
                       fidelity_batches=0, progress=False, meter=False).fit()
    finally:
        eng.close()
    assert hist["epoch"] == [1, 2]
    assert any(np.abs(net.params[k] - before[k]).max() > 1e-6 for k in net.params)
    with pytest.raises(nb.CircuitError, match="no traces yet"):
        c.save_traces(str(tmp_path / "none.h5"))
    c.ep_update(d.x_train[:2], d.y_train[:2], beta=0.1, free_steps=10, nudge_steps=5)
    path = c.save_traces(str(tmp_path / "t.h5"))
    t = traces.load(path)
    assert t.reports["h1"]["data"].shape == (15, 2, 16)
    np.testing.assert_allclose(t.reports["y"]["data"], c.traces["y"]["u"])


@pytest.mark.parametrize("lr", [0.05, 0.5])
def test_continual_ep_in_the_circuit_equals_the_reference(lr):
    net = ns.layered([5, 4, 3], activation="logistic", seed=0, skip=[(0, 2)])
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (1, 5)), np.eye(3)[[1]]
    c = nb.compile(net, eps=0.2)
    before = {k: v.copy() for k, v in net.params.items()}
    got = c.continual_update(x, y, beta=0.1, lr=lr, free_steps=60, nudge_steps=30)
    ref = ns.ep.continual(net, x, y, 0.1, lr, eps=0.2, nudge_steps=30, free_steps=60)
    assert ns.fidelity.compare(got, ref.update)["rel_error"] < 1e-8
    for k in net.params:
        np.testing.assert_array_equal(net.params[k], before[k])
    with pytest.raises(nb.CircuitError, match="one example at a time"):
        c.continual_update(np.vstack([x, x]), np.vstack([y, y]), 0.1, lr, 5, 5)
