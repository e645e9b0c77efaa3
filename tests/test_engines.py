"""The engine protocol (neurosim.engines): one registry, the engine's own estimate and
inference, settings an engine cannot honour refused by field, and measuring through the
engine that runs (fidelity from the circuit's own update, accuracy from spikes)."""
import numpy as np
import pytest

import neurosim as ns
from neurosim import engines
from neurosim.errors import ConfigurationError
from neurosim.training import Trainer
from neurosim.training.optimizer import Optimizer

from conftest import one_hot_batch, skip_network


_skip_net, _batch = skip_network, one_hot_batch


SETTINGS = dict(eps=0.5, free_steps=30, nudge_steps=6, clip=True, beta=0.2, variant="symmetric")


def test_unknown_engine_and_unknown_setting_are_named():
    net = _skip_net()
    with pytest.raises(ConfigurationError, match="engine.name: unknown engine 'warp'"):
        engines.build("warp", net)
    with pytest.raises(ConfigurationError, match="temperature"):
        engines.build("reference", net, temperature=3)


@pytest.mark.parametrize("name, field, value", [
    ("reference", "engine.neuron", "lif"), ("reference", "engine.max_rate", 50.0),
    ("brian2-rate", "engine.solver", "block"), ("brian2-rate", "engine.persistent", True),
    ("brian2-rate", "learning.rule", "rbp"), ("brian2-spiking", "learning.momentum", 0.5),
    ("brian2-spiking", "engine.solver", "block"), ("brian2-rate", "learning.optimizer", "adam"),
    ("brian2-spiking", "learning.weight_decay", 0.01)])
def test_settings_an_engine_cannot_honour_name_the_field(name, field, value):
    with pytest.raises(ConfigurationError, match=field.replace(".", r"\.")):
        engines.build(name, _skip_net(), **{field.split(".")[1]: value})


def test_reference_estimate_is_ep_gradient_and_leaves_params():
    net = _skip_net()
    x, y = _batch(net)
    eng = engines.build("reference", net, **SETTINGS)
    before = {k: v.copy() for k, v in net.params.items()}
    g = eng.estimate(x, y)
    ref = ns.ep.gradient(net, x, y, 0.2, variant="symmetric", eps=0.5, free_steps=30,
                         nudge_steps=6, clip=True)
    assert all(np.array_equal(before[k], net.params[k]) for k in before)
    assert max(float(np.max(np.abs(g[k] - ref[k]))) for k in ref) < 1e-13
    out = eng.infer(x)
    assert out["y"].shape == (4, 3)


@pytest.mark.slow   # long (a Brian2 build or a whole run): python -m pytest -m slow
def test_brian2_rate_estimate_equals_ep_gradient_on_a_skip_network(tmp_path):
    """The update read back from the compiled circuit's synapses is EP's, to 1e-8."""
    net = _skip_net()
    x, y = _batch(net)
    eng = engines.build("brian2-rate", net, build_dir=str(tmp_path / "b"), **SETTINGS)
    try:
        g = eng.estimate(x, y)
        out = eng.infer(x)
    finally:
        eng.close()
    ref = ns.ep.gradient(net, x, y, 0.2, variant="symmetric", eps=0.5, free_steps=30,
                         nudge_steps=6, clip=True)
    assert max(float(np.max(np.abs(g[k] - ref[k]))) for k in ref) < 1e-8
    free = engines.build("reference", net, **SETTINGS).infer(x)
    assert np.max(np.abs(out["y"] - free["y"])) < 1e-10


def test_fidelity_batches_do_not_change_training():
    """A fidelity batch applies exactly the update it would apply without the check, and the
    check draws nothing from the training's random streams."""
    data = ns.datasets.load("digits", limit_train=200, limit_test=50)
    finals = []
    for k in (0, 4):
        net = ns.layered([64, 32, 10], activation="hard_sigmoid", seed=0)
        eng = engines.build("reference", net, eps=0.5, free_steps=20, nudge_steps=4,
                            beta=0.5, variant="random_sign")
        tr = Trainer(eng, data, lr=[0.1, 0.05], epochs=2, batch_size=20, fidelity_batches=k,
                     progress=False)
        tr.fit()
        finals.append({kk: v.copy() for kk, v in net.params.items()})
        if k:
            assert len(tr.fidelity["cosine/all"]) == 2 * 4
            assert max(tr.fidelity["rbp_residual"]) < 1e-8
            assert all(0 <= v <= 1 for v in tr.fidelity["pinned/h1"])
            # the engine's 20-step free state against the exact fixed point (states in [0, 1])
            dist = tr.fidelity["free_distance"]
            assert len(dist) == 8 and all(0 <= v <= 1 for v in dist), dist
            assert len(tr.fidelity["rbp_zero"]) == 8
    assert all(np.array_equal(finals[0][k], finals[1][k]) for k in finals[0])


def test_reported_estimate_of_a_fused_step_is_the_estimate():
    net = _skip_net()
    x, y = _batch(net)
    eng = engines.build("reference", net, **SETTINGS)
    g = eng.estimate(x, y)
    opt = Optimizer({k: 0.05 for k in net.params})
    res = eng.step(x, y, opt, want_estimate=True)
    assert res.applied is None
    assert max(float(np.max(np.abs(res.estimate[k] - g[k]))) for k in g) < 1e-12


def _digits_brian_run(tmp_path, monkeypatch=None, activation=None):
    """One epoch of brian2-rate training on a digits subset; the logged fidelity."""
    if activation is not None:
        from neurosim.brian import equations
        monkeypatch.setitem(equations.RHO, "hard_sigmoid", activation)
    data = ns.datasets.load("digits", limit_train=60, limit_test=20)
    net = ns.layered([64, 12, 10], activation="hard_sigmoid", seed=0, dtype="float64")
    eng = engines.build("brian2-rate", net, eps=0.5, free_steps=20, nudge_steps=4, beta=0.5,
                        variant="symmetric", build_dir=str(tmp_path / "b"))
    tr = Trainer(eng, data, lr=[0.1, 0.05], epochs=1, batch_size=20, fidelity_batches=2,
                 progress=False)
    try:
        tr.fit()
    finally:
        eng.close()
    return tr, net, data


def test_brian2_rate_fidelity_is_the_synapses_update(tmp_path, monkeypatch):
    """The logged fidelity comes from the update the circuit's synapses made: a circuit whose
    units compute something else logs another figure; the accuracy is the circuit's own."""
    tr, net, data = _digits_brian_run(tmp_path / "a")
    cos = tr.fidelity["cosine/all"]
    assert len(cos) == 2 and all(np.isfinite(cos))
    ref = engines.build("reference", net, eps=0.5, free_steps=20, nudge_steps=4)
    acc = ns.training.evaluate(ref, data.x_test, data.y_test)[1]
    assert tr.history["test_accuracy"][-1] == pytest.approx(acc, abs=1e-12)
    assert tr.history["reference_test_accuracy"][-1] == pytest.approx(acc, abs=1e-12)
    altered, _, _ = _digits_brian_run(tmp_path / "b", monkeypatch, "clip(1.5 * u, 0, 1)")
    assert abs(altered.fidelity["cosine/all"][0] - cos[0]) > 1e-3


def test_spiking_inference_counts_output_spikes():
    net = ns.layered([6, 8, 3], activation="hard_sigmoid", seed=0, dtype="float64")
    x, _ = _batch(net, n=3)
    eng = engines.build("brian2-spiking", net, eps=0.1, free_steps=100, nudge_steps=50,
                        beta=0.5, seed=2)
    out = eng.infer(x)["y"]
    per_step = 1000.0 * 0.1 * 10.0 * 1e-3          # spikes per step of a unit at rho = 1
    counts = out * 50 * per_step                    # the second half of the free phase
    assert out.shape == (3, 3) and np.allclose(counts, np.round(counts))
    assert eng.counters()["spikes"]["free"] > 0


def test_spiking_engine_state_carries_its_spike_seeds():
    """A spiking engine restored from its state draws the spikes of the engine it was saved
    from (the circuits' seeds come from a run counter kept in the checkpoint)."""
    net = ns.layered([6, 8, 3], activation="hard_sigmoid", seed=0, dtype="float64")
    x, y = _batch(net, n=2)
    kw = dict(eps=0.1, free_steps=40, nudge_steps=40, beta=0.5, seed=3)
    a = engines.build("brian2-spiking", net, **kw)
    a.estimate(x, y)
    state = a.state_dict()
    b = engines.build("brian2-spiking", net, **kw)
    b.load_state_dict(state)
    ga, gb = a.estimate(x, y), b.estimate(x, y)
    assert all(np.array_equal(ga[k], gb[k]) for k in ga)
    assert a.counters() == b.counters()


@pytest.mark.parametrize("solver, dt, units", [("euler", 0.5, "tau"), ("block", 1.0, "sweep")])
def test_trajectories_say_whether_a_step_is_time_or_a_sweep(solver, dt, units):
    """Block sweeps are not time steps: the traces of a block-solver engine count sweeps."""
    net = _skip_net()
    x, y = _batch(net)
    eng = engines.build("reference", net, **{**SETTINGS, "solver": solver})
    tr = eng.trajectories(x, y)
    assert (tr["dt"], tr["time_units"]) == (dt, units)
    assert tr["phases"][-1][2] == SETTINGS["free_steps"] + 2 * SETTINGS["nudge_steps"]


@pytest.mark.parametrize("name, solver", [("reference", "euler"), ("reference", "block"),
                                          ("torch", "euler")])
def test_phase_trajectory_records_the_estimates_phases(name, solver):
    """With engine.tol the recorded phases are the estimate's own: as many steps as each
    phase of the estimate took (one settle loop, measured every SETTLE_EVERY steps), ending
    in the estimate's free state and nudged states."""
    if name == "torch":
        pytest.importorskip("torch")
    net = _skip_net().copy(dtype="float64")
    x, y = _batch(net)
    extra = {"device": "cpu"} if name == "torch" else {}
    eng = engines.build(name, net, **dict(SETTINGS, free_steps=200, nudge_steps=200,
                                          tol=1e-6, solver=solver), **extra)
    est = eng.estimate(x, y, rng=0)
    free, *nudged = est.phases
    traj, _ = eng.phase_trajectory(x, y, 0.0, 200)
    assert next(iter(traj.values())).shape[0] == free.steps + 1 and free.steps % 5 == 0
    for p in net.state_pops:
        np.testing.assert_allclose(traj[p][-1], est.state[p], rtol=0, atol=1e-12)
    s0 = {p: v[-1] for p, v in traj.items()}
    for r in nudged:
        t, _ = eng.phase_trajectory(x, y, r.beta, 200, s0)
        assert next(iter(t.values())).shape[0] == r.steps + 1, r
