"""Resistive networks: the DC operating point is exact, RBP equals finite differences, EP at
small beta equals RBP, ngspice agrees with the solver, the netlist round-trips, and the
``resistive`` engine trains through the Trainer and the CLI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import neurosim as ns
from neurosim import config
from neurosim import engines
from neurosim.resistive import (OperatingPointError, ep_gradient, operating_point,
                                rbp_gradient, resistive)
from neurosim.resistive.learning import cost
from neurosim.resistive.solver import kcl_residual, input_drive

ELEMENTS = [dict(diode="ideal", gain=1.0), dict(diode="ideal", gain=2.0),
            dict(diode="shockley", gain=1.0, i_s=1e-6, n_vt=0.05),
            dict(diode="shockley", gain=2.0, i_s=1e-6, n_vt=0.05),
            dict(diode="ideal", gain=1.0, diodes="split", input_scale=3.0),
            dict(diode="shockley", gain=2.0, diodes="split", input_scale=3.0, i_s=1e-6,
                 n_vt=0.05)]


def _name(el):
    return "%s-gain%g-%s" % (el["diode"], el["gain"], el.get("diodes", "bounded"))
NGSPICE = shutil.which("ngspice")


def _flat(d):
    return np.concatenate([np.ravel(d[k]) for k in sorted(d)])


def _batch(n_x=5, n_y=3, batch=3):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (batch, n_x)), rng.uniform(0, 1, (batch, n_y))


@pytest.mark.parametrize("el", ELEMENTS, ids=_name)
def test_operating_point_is_exact_and_within_the_diodes(el):
    net = resistive([5, 7, 4, 3], seed=1, **el)
    x, y = _batch()
    fp = operating_point(net, x, tol=1e-12)
    assert fp.residual < 1e-12
    assert kcl_residual(net, fp.state, input_drive(net, x)) == pytest.approx(fp.residual)
    if el["diode"] == "ideal":
        for p in net.hidden:
            low, high = net.bounds(p)
            assert np.all(fp.state[p] >= low) and np.all(fp.state[p] <= high)
        assert 0 < fp.pinned["h1"] < 1
    nudged = operating_point(net, x, y, 0.3, state=fp.state, tol=1e-12)
    # the nudge lowers every example's cost
    assert np.all(cost(net, nudged.state, y) < cost(net, fp.state, y))


@pytest.mark.parametrize("el", ELEMENTS, ids=_name)
def test_rbp_equals_finite_differences_and_ep_at_small_beta(el):
    net = resistive([5, 7, 4, 3], seed=1, **el)
    x, y = _batch()
    fp = operating_point(net, x, tol=1e-13)
    g = rbp_gradient(net, x, y, fp)

    def loss(n):
        return float(np.mean(cost(n, operating_point(n, x, tol=1e-13).state, y)))

    for k in net.params:
        idx = np.unravel_index(np.argmax(np.abs(g[k])), g[k].shape)
        up, down = net.copy(), net.copy()
        up.params[k][idx] += 1e-6
        down.params[k][idx] -= 1e-6
        fd = (loss(up) - loss(down)) / 2e-6
        assert fd == pytest.approx(g[k][idx], rel=1e-6), k
    ep, _ = ep_gradient(net, x, y, 1e-4, tol=1e-13)
    a, b = _flat(ep), _flat(g)
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.99999
    one, _ = ep_gradient(net, x, y, 1e-4, variant="one_sided", tol=1e-13)
    assert np.linalg.norm(_flat(one) - b) / np.linalg.norm(b) < 1e-3


def test_a_too_strong_negative_nudge_is_a_clear_error():
    net = resistive([5, 4, 3], seed=0)
    x, y = _batch()
    with pytest.raises(OperatingPointError, match="beta = -50"):
        operating_point(net, x, y, -50.0)
    with pytest.raises(ns.errors.ArgumentError, match="v_low"):
        resistive([5, 4, 3], v_low=1.0, v_high=0.0)
    with pytest.raises(ns.errors.ArgumentError, match="x must have shape"):
        operating_point(net, np.zeros((2, 4)))
    with pytest.raises(ns.errors.ArgumentError, match="diodes must be one of"):
        resistive([5, 4, 3], diodes="both")


def test_split_diodes_hold_excitatory_nodes_above_and_inhibitory_below_ground():
    net = resistive([5, 7, 3], seed=0, diodes="split", input_scale=3.0)
    low, high = net.bounds("h1")
    assert list(low[:4]) == [0.0] * 4 and np.all(np.isinf(low[4:]))
    assert list(high[4:]) == [0.0] * 3 and np.all(np.isinf(high[:4]))
    assert net.n_components == sum(np.count_nonzero(v) for v in net.params.values()) + 7
    fp = operating_point(net, _batch()[0])
    assert np.all(fp.state["h1"][:, :4] >= 0) and np.all(fp.state["h1"][:, 4:] <= 0)
    # Shockley diodes: past ground by at most a forward drop (a fraction of a volt here)
    sh = net.with_elements(diode="shockley")
    V = operating_point(sh, _batch()[0]).state["h1"]
    assert V[:, :4].min() > -0.7 and V[:, 4:].max() < 0.7
    assert V[:, :4].min() < 0 or V[:, 4:].max() > 0     # not clipped: a real diode


@pytest.mark.skipif(not os.path.exists("/usr/share/datasets/fashion-mnist"),
                    reason="dataset-fashion-mnist is not installed (apt-get install "
                           "dataset-fashion-mnist)")
def test_fashion_network_ep_update_points_along_rbp_at_small_beta():
    """The shipped resistive Fashion-MNIST network (784-500-10, split ideal diodes): solved in
    float64, at beta 0.001 the EP update of a batch has cosine >= 0.99 to the circuit's RBP
    gradient; in the shipped float32 at the shipped beta too."""
    circuit, _ = config.load("resistive_fashion_784-500-10")
    from neurosim.config import build_network
    net = build_network(circuit.network, circuit.resistive.model_dump())
    data = ns.datasets.load("fashion-mnist", limit_train=20, limit_test=10, seed=0)
    x, y = data.x_train, data.y_train
    net64 = net.copy(dtype=np.float64)
    g_rbp = rbp_gradient(net64, x, y, operating_point(net64, x))
    b = _flat(g_rbp)
    for n, beta in ((net64, 1e-3), (net, circuit.learning.beta)):
        a = _flat(ep_gradient(n, x, y, beta)[0])
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) >= 0.99, (n.dtype, beta)


@pytest.mark.skipif(NGSPICE is None, reason="ngspice is not installed (apt-get install ngspice)")
@pytest.mark.parametrize("diode,diodes", [("shockley", "bounded"), ("ideal", "bounded"),
                                          ("shockley", "split")])
def test_ngspice_agrees_with_the_solver_on_a_thousand_components(diode, diodes):
    from neurosim.resistive.spice import check
    net = resistive([20, 30, 10], seed=0, diode=diode, gain=2.0, input_scale=2.0,
                    diodes=diodes)
    assert net.n_components >= 1000
    x = np.random.default_rng(0).uniform(0, 1, 20)
    c = check(net, x)
    assert c.agree, c.as_dict()
    if diode == "shockley":
        assert c.max_rel < 1e-6
    else:   # ideal diodes exported as Shockley diodes: within the forward drop, not closer
        assert 1e-6 < c.max_abs <= c.tolerance


def test_netlist_round_trip():
    from neurosim.resistive.spice import netlist, read_conductances
    net = resistive([6, 5, 3], seed=2, gain=2.0)
    net.params["W:x->h1"][0, 0] = 0.0          # an absent resistor
    got = read_conductances(netlist(net, np.full(6, 0.5)), net)
    for k, v in net.params.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-14, atol=0, err_msg=k)


def test_resistive_engine_trains_and_logs_its_own_ground_truth():
    data = ns.datasets.load("digits", limit_train=600, limit_test=200, seed=0)
    net = resistive([64, 64, 10], seed=0, input_scale=3.0, v_low=-1.0)
    eng = engines.build("resistive", net, beta=0.1, variant="symmetric")
    assert eng.reference_readout is False
    tr = ns.training.Trainer(eng, data, lr=[0.1, 0.01], epochs=3, batch_size=20,
                             fidelity_batches=2, progress=False)
    tr.fit()
    h = tr.history
    # measured 0.52 / 0.65 / 0.77 (chance 0.1)
    assert h["test_accuracy"][-1] > 0.6 and h["test_accuracy"][-1] > h["test_accuracy"][0]
    assert "reference_test_accuracy" not in h
    assert all(v >= 0 for p in net.params.values() for v in p.ravel())
    cos = np.array(tr.fidelity["cosine/all"])
    assert np.nanmean(cos[2:]) > 0.9                  # EP at beta 0.2 vs the circuit's RBP
    assert max(tr.fidelity["rbp_residual"]) < 1e-10
    energy = eng.counters()["circuit_energy_j"]
    assert energy["free"] > 0 and energy["nudged"] > 0
    traj = eng.trajectories(data.x_test[:2], data.y_test[:2])
    assert traj["states"]["y"].shape[1:] == (2, 10)
    final = operating_point(net, data.x_test[:2]).state["y"]
    free_end = traj["states"]["y"][eng.settings.free_steps]
    assert np.abs(free_end - final).max() < 0.05        # the RC transient settles there
    with pytest.raises(ns.errors.ConfigurationError, match="network.kind"):
        engines.build("resistive", ns.layered([4, 3, 2]))
    with pytest.raises(ns.errors.ConfigurationError, match="engine.name: a resistive network"):
        engines.build("reference", resistive([4, 3, 2]))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "neurosim.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_neurosim_run_and_spice_on_a_resistive_circuit(tmp_path):
    small = ["--set", "network.sizes=[64,16,10]", "--set", "dataset.name=\"digits\"",
             "--set", "train.epochs=1", "--set", "dataset.limit_train=100",
             "--set", "dataset.limit_test=50", "--set", "record.examples=1"]
    r = _cli("run", "resistive_fashion_784-500-10", "--json", "--no-progress", "--out",
             str(tmp_path), *small)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["engine"] == "resistive" and s["evaluated_by"] == "resistive"
    assert s["circuit_energy"]["per_training_example_nj"] > 0
    run_dir = s["run_dir"]
    assert os.path.exists(os.path.join(run_dir, "traces.h5"))
    import h5py
    with h5py.File(os.path.join(run_dir, "traces.h5"), "r") as f:     # node voltages, volts
        assert f["report/h1/data"].attrs["units"] == "V"
    if NGSPICE is not None:
        r = _cli("spice", "resistive_fashion_784-500-10", *small[:4], "--check", "--json",
                 "--checkpoint", os.path.join(run_dir, "checkpoint.npz"),
                 "--set", "resistive.diode=\"shockley\"",
                 "--netlist", str(tmp_path / "net.cir"))
        assert r.returncode == 0, r.stdout + r.stderr
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["agree"] and out["max_rel"] < 1e-6
    bad = _cli("spice", "default")
    assert bad.returncode == 2 and "network.kind" in bad.stderr


def test_a_float32_network_solves_to_its_tolerance_and_agrees_with_float64():
    """float32 halves the memory traffic of the big input conductances; its operating points
    hold to ``net.tolerance`` (1e-6 of the largest source voltage), its EP estimate points
    along the float64 one, and the engine's ground truth is solved in float64."""
    net64 = resistive([20, 16, 4], seed=3, diodes="split", input_scale=30.0, g_init=10.0)
    net32 = net64.copy(dtype=np.float32)
    assert net32.params["W:x->h1"].dtype == np.float32 and net32.tolerance == pytest.approx(3e-5)
    x, y = _batch(20, 4, 8)
    fp = operating_point(net32, x)
    assert fp.state["h1"].dtype == np.float32 and fp.residual < net32.tolerance
    g32, _ = ep_gradient(net32, x, y, 1.0)
    g64, _ = ep_gradient(net64, x, y, 1.0)
    assert g32["W:x->h1"].dtype == np.float32
    a, b = _flat(g32), _flat(g64)
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.9999
    eng = engines.build("resistive", net32, beta=1.0, variant="symmetric")
    g_rbp, truth = eng.ground_truth(x, y, 1e-10, "test")
    assert truth.state["h1"].dtype == np.float64 and truth.residual < 1e-10
    # a small nudge: the nudged phases' tolerance tightens with beta
    a, b = _flat(ep_gradient(net32, x, y, 1e-3)[0]), _flat(ep_gradient(net64, x, y, 1e-3)[0])
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.999
    with pytest.raises(ns.errors.ArgumentError, match="dtype"):
        net64.copy(dtype=np.int32)
    with pytest.raises(ns.errors.ArgumentError, match="dtype must be float64 or float32"):
        net64.copy(dtype="f99")


def _co_content(net, x, V):
    """``1/2 dV^2`` of every conductance at the operating point ``V``, batch mean, written
    out edge by edge (the amplifier gain on the source side; the input copies +x, -x)."""
    el, out = net.elements, {}
    for t in net.terms:
        if t.transpose:
            continue
        a = 1.0 if t.source == "x" else el.gain
        u = net.source_voltages(x) if t.source == "x" else V[t.source]
        out[t.key] = np.mean(0.5 * (a * u[:, :, None] - V[t.target][:, None, :]) ** 2, 0)
    for p in net.state_pops:
        out["b:%s" % p] = np.stack([np.mean(0.5 * (V[p] - el.v_bias) ** 2, 0),
                                    np.mean(0.5 * (V[p] + el.v_bias) ** 2, 0)])
    return out


@pytest.mark.parametrize("el", ELEMENTS[:3], ids=_name)
def test_engine_runs_a_three_nudge_plan_as_the_polynomial_derivative(el):
    """nudges [-0.2, 0.1, 0.3]: the engine's estimate is the slope at 0 of the quadratic
    through the co-content observed at the solver's own free and nudged operating points."""
    nudges = [-0.2, 0.1, 0.3]
    net = resistive([5, 7, 4, 3], seed=1, **el)
    x, y = _batch()
    free = operating_point(net, x)
    points = [free] + [operating_point(net, x, y, b, state=free.state) for b in nudges]
    obs = [_co_content(net, x, p.state) for p in points]
    keys = sorted(net.params)
    O = np.stack([_flat(o) for o in obs[1:]])       # the plan's three observations
    coef = np.linalg.solve(np.vander(nudges, increasing=True), O)   # O = sum_k coef_k b^k
    want = coef[1]
    eng = engines.build("resistive", net, nudges=nudges)
    assert eng.plan.nudges == tuple(nudges)
    est = eng.estimate(x, y)
    got = _flat(est)
    assert sorted(est) == keys
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8 * np.abs(want).max())
    assert all(np.array_equal(est.state[p], free.state[p]) for p in net.state_pops)
    # the shorthands: the formulas of before, 1/beta and 1/(2 beta)
    beta = 0.3
    for variant, (lo, hi, scale) in {"one_sided": (0, 3, 1 / beta),
                                     "symmetric": (1, 3, 1 / (2 * beta))}.items():
        plus = operating_point(net, x, y, beta, state=free.state)
        minus = operating_point(net, x, y, -beta, state=free.state) if lo else free
        want = scale * (_flat(_co_content(net, x, plus.state))
                        - _flat(_co_content(net, x, minus.state)))
        got = _flat(engines.build("resistive", net, beta=beta, variant=variant).estimate(x, y))
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8 * np.abs(want).max())
        got2 = _flat(ep_gradient(net, x, y, beta, variant=variant)[0])
        np.testing.assert_allclose(got2, got, rtol=1e-12, atol=1e-14)


def test_the_resistive_plan_refuses_bad_nudges():
    net = resistive([5, 4, 3], seed=0)
    with pytest.raises(ns.errors.ConfigurationError, match="learning.nudges"):
        engines.build("resistive", net, nudges=[0.1, 0.1])
    with pytest.raises(ns.errors.ConfigurationError, match="learning.nudges"):
        engines.build("resistive", net, nudges=[0.1j, -0.1j])
