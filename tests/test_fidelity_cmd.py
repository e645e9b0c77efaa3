"""The `neurosim fidelity` command, one pipeline through the engine protocol: the reference
engine and the Brian2 rate circuit give the same metrics on the same batch; at a small beta
the EP estimate matches RBP (cosine > 0.999); the curve over the nudged phase ends at the
estimate; the resistive engine, devices around an engine and a three-nudge plan are measured
by the same command; fidelity.h5, the PNG and --json; clear errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from neurosim import engines
from neurosim.commands import fidelity as fr
from neurosim.traces import load

# the default circuit, made small and smooth: x64 -> h16 -> y10 logistic, Euler, no clip
SMALL = ["default", "--set", "network.sizes=[64,16,10]", "--set", "network.activation=logistic",
         "--set", "engine.solver=euler", "--set", "engine.clip=false"]
F, N, B = 60, 80, 4
STEPS = ["--beta", "1e-3", "--free-steps", str(F), "--nudge-steps", str(N), "--batch", str(B)]


def _neurosim(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "neurosim.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for engine in ("reference", "brian2-rate"):
        d = tmp_path_factory.mktemp(engine)
        r = _neurosim("fidelity", *SMALL, *STEPS, "--engine", engine, "--out", str(d), "--json")
        assert r.returncode == 0, r.stderr[-3000:]
        out[engine] = (r, d, json.loads(r.stdout.strip().splitlines()[-1]))
    return out


def test_engines_agree_on_the_same_batch(runs):
    a, b = runs["reference"][2], runs["brian2-rate"][2]
    assert a["engine"] == "reference" and b["engine"] == "brian2-rate"
    assert b["device"] is None and a["device"] is None
    assert "reference_rel_diff" not in a
    assert b["reference_rel_diff"] < 1e-10      # the circuit's synapses vs the reference engine
    assert b["free_state_from"] == "trajectory" and a["free_state_from"] == "estimate"
    assert b["free_distance"] == pytest.approx(a["free_distance"], abs=1e-10)
    for m in ("cosine", "rel_error", "rel_rmse", "sign_agreement"):
        assert b[m] == pytest.approx(a[m], abs=1e-8), m
    for k in a["per_param_cosine"]:
        assert b["per_param_cosine"][k] == pytest.approx(a["per_param_cosine"][k], abs=1e-8)
    np.testing.assert_allclose(b["curve_cosine"], a["curve_cosine"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(b["curve_rel_error"], a["curve_rel_error"], rtol=0, atol=1e-8)


def test_small_beta_matches_rbp(runs):
    s = runs["reference"][2]
    assert s["variant"] == "symmetric" and s["beta"] == pytest.approx(1e-3)
    assert s["cosine"] > 0.999
    assert all(c > 0.99 for c in s["per_param_cosine"].values())
    assert s["sign_agreement"] > 0.99


def test_curve_has_one_entry_per_nudged_step_and_ends_at_the_update(runs):
    for engine, (r, _, s) in runs.items():
        assert len(s["curve_cosine"]) == len(s["curve_rel_error"]) == N == s["nudge_steps"]
        assert s["curve_cosine"][-1] == pytest.approx(s["cosine"], abs=1e-12), engine
        assert s["curve_rel_error"][-1] == pytest.approx(s["rel_error"], rel=1e-9), engine
        assert s["curve_rel_diff"] < 1e-10, engine
        # the fidelity grows over the nudged phase (the side network integrates)
        assert s["curve_cosine"][-1] > s["curve_cosine"][0]
        assert "Over the nudged phase" in r.stdout and "W:x->h1" in r.stdout


def test_hdf5_and_png(runs):
    for engine, (_, d, s) in runs.items():
        assert s["out"] == str(d)
        assert os.path.getsize(os.path.join(d, "fidelity_curve.png")) > 1000
        assert os.path.exists(os.path.join(d, "circuit.toml"))
        t = load(os.path.join(d, "fidelity.h5"))
        assert set(t.reports) == {"h1", "y"}
        assert t.reports["h1"]["data"].shape == (2 * N + 1, B, 16)
        assert t.reports["y"]["data"].shape == (2 * N + 1, B, 10)
        assert t.reports["y"]["start"] == pytest.approx(F * 0.5)
        assert [p["name"] for p in t.phases] == ["free", "nudged+", "nudged-"]
        assert t.phases[1]["beta"] == pytest.approx(1e-3)
        assert t.phases[2]["beta"] == pytest.approx(-1e-3)
        assert set(t.gradients) == {engine, "rbp"}
        assert set(t.gradients["rbp"]) == {"W:x->h1", "W:h1->y", "b:h1", "b:y"}
        assert t.gradients["rbp"]["W:x->h1"].shape == (64, 16)
        assert t.fidelity["overall"]["cosine"] == pytest.approx(s["cosine"])
        assert t.fidelity["curve"]["cosine"].shape == (N,)
        np.testing.assert_array_equal(t.fidelity["curve"]["k"], np.arange(1, N + 1))
        assert t.fidelity["curve"]["per_param"]["W:h1->y"]["cosine"][-1] == \
            pytest.approx(s["per_param_cosine"]["W:h1->y"], abs=1e-12)
        assert t.attrs["engine"] == engine and t.attrs["dataset"] == "digits"
        resolved = tomllib.loads(t.circuit)        # the circuit with the overrides applied
        assert resolved["network"]["sizes"] == [64, 16, 10]
        assert resolved["network"]["activation"] == "logistic"
    ra = load(os.path.join(runs["reference"][1], "fidelity.h5"))
    rb = load(os.path.join(runs["brian2-rate"][1], "fidelity.h5"))
    for p in ("h1", "y"):   # the circuit's states are the reference engine's
        np.testing.assert_allclose(rb.reports[p]["data"], ra.reports[p]["data"], rtol=0,
                                   atol=1e-10)


def test_fidelity_h5_opens_with_traces_inspect(runs):
    """fidelity.h5 is a neurosim trace file: ``neurosim traces inspect`` summarises it and
    the directory holds no temporary file."""
    for engine, (_, d, s) in runs.items():
        assert not [n for n in os.listdir(d) if ".tmp" in n], engine
        r = _neurosim("traces", "inspect", os.path.join(d, "fidelity.h5"))
        assert r.returncode == 0, r.stderr[-2000:]
        assert "neurosim trace file" in r.stdout
        assert "reports: 2 population(s)" in r.stdout
        assert "phases: free [0, %d) beta=0, nudged+" % (F * 0.5) in r.stdout
        assert "gradients: %s (4 params), rbp (4 params)" % engine in r.stdout
        assert "fidelity: free_distance" in r.stdout and "overall/" in r.stdout
        t = load(os.path.join(d, "fidelity.h5"))
        assert t.attrs["command"] == "fidelity" and t.groups == {} and t.cost == {}


@pytest.mark.parametrize("variant", ["one_sided", "random_sign", "symmetric"])
def test_circuit_states_with_clip_equal_the_reference(variant):
    """Hard sigmoid with states clipped to [0, 1]: the circuit's monitored nudged phases are
    the reference engine's, every variant agrees, and a random sign is drawn alike."""
    over = ["network.sizes=[64,12,10]", ("engine.solver", "euler"), ("engine.free_steps", 15),
            ("engine.nudge_steps", 5), ("learning.variant", variant), ("learning.beta", 0.5)]
    out = {}
    for name in ("reference", "brian2-rate"):
        prep = fr.prepare("default", over + [("engine.name", name)], batch=3, seed=1)
        eng = fr.build_engine(prep["circuit"], prep["net"])
        out[name] = fr.run_fidelity(eng, prep["x"], prep["y"], seed=3)
        eng.close()
    a, b = out["reference"], out["brian2-rate"]
    assert a["plan"].nudges == b["plan"].nudges         # the same random sign
    assert fr.beta_of(a) == fr.beta_of(b)
    assert b["reference_rel_diff"] < 1e-10
    assert a["curve_rel_diff"] < 1e-12 and b["curve_rel_diff"] < 1e-10
    assert set(a["nudged"]) == set(a["plan"].nudged) == set(b["nudged"])
    assert len(a["nudged"]) == (2 if variant == "symmetric" else 1)
    for nb in a["nudged"]:
        sa, sb = a["nudged"][nb], b["nudged"][nb]
        for p in sa:
            assert sa[p].shape == sb[p].shape == (6, 3, prep["net"].sizes[p])
            np.testing.assert_allclose(sb[p], sa[p], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b["curve"]["cosine"], a["curve"]["cosine"], atol=1e-9)
    assert b["metrics"]["cosine"] == pytest.approx(a["metrics"]["cosine"], abs=1e-9)
    text = fr.report(b, {"dataset": "digits", "seed": 1})
    assert "the brian2-rate engine" in text and "reference engine's" in text


def test_weights_from_a_checkpoint(tmp_path):
    prep = fr.prepare("default", ["network.sizes=[64,12,10]"], batch=2)
    net = prep["net"]
    np.savez(tmp_path / "checkpoint.npz", meta=np.array("{}"),
             **{"param/" + k: 2 * v for k, v in net.params.items()})
    again = fr.prepare("default", ["network.sizes=[64,12,10]"], batch=2, weights=str(tmp_path))
    for k, v in net.params.items():
        np.testing.assert_array_equal(again["net"].params[k], 2 * v)
    assert again["weights"] == str(tmp_path / "checkpoint.npz")
    with pytest.raises(fr.FidelityError, match="does not match the network"):
        fr.prepare("default", ["network.sizes=[64,13,10]"], batch=2, weights=str(tmp_path))
    with pytest.raises(fr.FidelityError, match="no checkpoint"):
        fr.prepare("default", [], batch=2, weights=str(tmp_path / "nothing"))


def test_bad_engine_names_the_registered_ones(neurosim_cli):
    r = neurosim_cli("fidelity", "--engine", "nest")
    assert r.returncode == 2
    assert "engine.name" in r.stderr and "'nest'" in r.stderr and "brian2-rate" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--batch", "0"], "--batch"),
    (["--batch", "100000"], "--batch 100000: the test split"),
    (["--set", "network.sizes=[10,16,10]"], "has 64 features"),
    (["--beta", "0"], "beta must be a non-zero"),
    (["--variant", "both"], "--variant"),
    (["--weights", "/nonexistent/run"], "--weights"),
])
def test_bad_input_gives_a_clear_error(tmp_path, args, message, neurosim_cli):
    r = neurosim_cli("fidelity", *args, "--out", tmp_path / "out")   # raises on a traceback
    assert r.returncode == 2, r.stdout[-2000:]
    assert message in r.stderr


RESISTIVE = ["resistive_fashion_784-500-10", "--set", "network.sizes=[64,16,10]",
             "--set", 'dataset.name="digits"', "--batch", "3"]


def test_the_resistive_engine_is_measured_by_the_same_command(tmp_path):
    """The resistive engine's own estimate (exact DC solves) against its own RBP: at a small
    nudge they agree, its free state is the ground truth's operating point, and the reports
    are node voltages."""
    r = _neurosim("fidelity", *RESISTIVE, "--beta", "1e-3", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["engine"] == "resistive" and s["nudges"] == [1e-3, -1e-3]
    assert s["cosine"] > 0.999999 and s["rel_error"] < 1e-5
    assert s["free_distance"] < 1e-9 and s["rbp_residual"] < 1e-10
    assert "reference_rel_diff" not in s
    t = load(os.path.join(tmp_path, "fidelity.h5"))
    assert t.reports["h1"]["units"] == "V"
    assert set(t.gradients) == {"resistive", "rbp"}


def test_a_three_nudge_plan_is_the_engines_own_estimate():
    """learning.nudges = [-0.2, 0.1, 0.3]: the command measures exactly what the engine
    estimates with that plan (no schedule or scale of its own), one nudged phase per nudge."""
    nudges = [-0.2, 0.1, 0.3]
    over = [RESISTIVE[2], RESISTIVE[4], ("learning.nudges", nudges)]
    prep = fr.prepare(RESISTIVE[0], over, batch=3, seed=2)
    eng = fr.build_engine(prep["circuit"], prep["net"])
    res = fr.run_fidelity(eng, prep["x"], prep["y"], seed=2)
    assert res["plan"].nudges == tuple(nudges) and sorted(res["nudged"]) == sorted(nudges)
    net2 = prep["net"].copy()
    own = engines.build("resistive", net2, nudges=nudges).estimate(prep["x"], prep["y"])
    for k in own:
        np.testing.assert_allclose(res["update"][k], own[k], rtol=0, atol=1e-14)
    one = engines.build("resistive", net2, beta=0.3, variant="one_sided").estimate(
        prep["x"], prep["y"])
    rel = fr.fidelity.compare(one, res["rbp"])["rel_error"]
    assert res["metrics"]["rel_error"] < rel / 10      # the stencil cancels the beta term
    s = fr.summary(res)
    assert s["nudges"] == nudges and len(s["curve_cosine"]) == eng.settings.nudge_steps
    assert [n for n, _ in res["plan"].phase_names()] == ["nudged_1", "nudged_2", "nudged_3"]


def test_devices_around_an_engine_are_measured_through_it():
    """A [hardware] preset wraps the circuit's engine: the estimate is the devices' (it
    differs from the reference engine's at the stored weights), ideal devices change
    nothing."""
    over = ["network.sizes=[64,12,10]", ("engine.solver", "euler"), ("engine.free_steps", 30)]
    got = {}
    for preset in ("ideal", "rram"):
        prep = fr.prepare("default", over + [("hardware.preset", preset)], batch=3, seed=1)
        eng = fr.build_engine(prep["circuit"], prep["net"])
        got[preset] = fr.run_fidelity(eng, prep["x"], prep["y"], seed=1)
        assert fr._device_name(prep["circuit"]) == (None if preset == "ideal" else preset)
    assert got["ideal"]["evaluated_by"] == "reference" and "reference_rel_diff" not in got["ideal"]
    assert got["rram"]["evaluated_by"] == "reference on devices"
    assert got["rram"]["reference_rel_diff"] > 1e-3
    assert np.isfinite(got["rram"]["free_distance"])


def test_a_setting_the_engine_refuses_names_the_field_and_the_fix(tmp_path, neurosim_cli):
    r = neurosim_cli("fidelity", "default", "--engine", "brian2-rate", "--out", tmp_path)
    assert r.returncode == 2
    assert "engine.solver" in r.stderr and "--set engine.solver=" in r.stderr


@pytest.mark.parametrize("engine", ["reference", "torch"])
def test_recorded_nudged_phases_are_the_estimates_phases(engine):
    """The default circuit's settings (block sweeps, engine.tol = 1e-8, symmetric beta 0.5) on
    a small network: each recorded nudged trajectory runs exactly the sweeps its phase ran in
    the estimate (one stopping rule: the trajectory records the phase's own settle loop, whose
    projected step is measured every SETTLE_EVERY sweeps), the curve holds a phase that stopped
    at its last state, and its last point is the engine's estimate."""
    if engine == "torch":
        pytest.importorskip("torch")
    over = ["network.sizes=[64,32,10]", ("engine.name", engine)]
    if engine == "torch":
        from conftest import TORCH_DEVICE
        over.append(("engine.device", TORCH_DEVICE))
    prep = fr.prepare("default", over, batch=2, seed=0)
    eng = fr.build_engine(prep["circuit"], prep["net"])
    s = eng.settings
    assert s.solver == "block" and s.tol == 1e-8 and s.variant == "symmetric"
    res = fr.run_fidelity(eng, prep["x"], prep["y"], seed=0)
    eng.close()
    free, *nudged = res["phases"]
    ran = {r.beta: r.steps for r in nudged}
    assert sorted(ran) == sorted(res["nudged"]) == [-0.5, 0.5]
    assert len(set(ran.values())) == 2 and min(ran.values()) < s.nudge_steps  # they settle apart
    for b, traj in res["nudged"].items():
        for p, v in traj.items():
            assert v.shape == (ran[b] + 1, 2, prep["net"].sizes[p]), (b, p)
    assert list(res["curve"]["k"]) == list(range(1, max(ran.values()) + 1))
    assert res["curve_rel_diff"] < 1e-10
    text = fr.report(res, {"dataset": "digits", "seed": 0})
    assert "this batch: %d free, %s nudged" % (free.steps, " and ".join(
        str(r.steps) for r in nudged)) in text
    assert "at k=%d vs the estimate" % max(ran.values()) in text
