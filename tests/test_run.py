"""`neurosim run` end to end: the default circuit on digits, the run folder, the JSON summary,
bad input, and checkpoints: SIGINT and SIGKILL mid-run, then --resume, end with the weights of
an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from neurosim import traces


def _cmd(*args):
    return [sys.executable, "-m", "neurosim.cli", *args]


def _run(*args, cwd=None):
    return subprocess.run(_cmd(*args), capture_output=True, text=True, timeout=600, cwd=cwd)


def _summary(r):
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_default_run_reaches_95_percent_on_digits(tmp_path):
    s = _summary(_run("run", "--json", "--no-progress", "--out", str(tmp_path)))
    assert s["test_accuracy"] >= 0.95
    assert s["epochs"] == 30 and s["seconds"] > 0 and s["dataset"] == "digits"
    run_dir = s["run_dir"]
    for name in ("traces.h5", "metrics.json", "circuit.toml", "checkpoint.npz",
                 "learning_curves.png", "fidelity.png"):
        assert os.path.getsize(os.path.join(run_dir, name)) > 0, name
    t = traces.load(os.path.join(run_dir, "traces.h5"))
    assert len(t.training["test_accuracy"]) == 30
    assert t.training["test_accuracy"][-1] == pytest.approx(s["test_accuracy"])
    assert set(t.reports) == {"h1", "y"}
    assert [p["name"] for p in t.phases] == ["free", "nudged+", "nudged-"]
    assert "final" in t.weights and "W:x->h1" in t.weights["final"]
    assert "ep" in t.gradients and "rbp" in t.gradients
    cos = t.fidelity["over_training"]["cosine/all"]
    zero = t.fidelity["over_training"]["rbp_zero"] == 1     # RBP's gradient exactly 0: NaN
    assert len(cos) == 60 and np.all(np.abs(cos[~zero]) <= 1 + 1e-9)
    assert np.all(np.isnan(cos[zero])) and not np.any(np.isnan(cos[~zero]))
    # the phases settle (engine.tol): EP is estimated at the fixed point RBP linearises at
    dist = t.fidelity["over_training"]["free_distance"]
    assert len(dist) == 60 and np.all(dist <= 1e-6), np.max(dist)
    assert s["free_distance_worst"] <= 1e-6
    assert s["free_steps_mean"] > 1 and s["nudge_steps_mean"] > 1
    assert s["free_steps_mean"] < 300 and s["nudge_steps_mean"] <= 100
    assert s["batches"] == 30 * 72
    assert s["evaluated_by"] == "reference" and os.path.getsize(os.path.join(run_dir,
                                                                              "report.html"))
    assert "[network]" in t.circuit
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert metrics["history"]["test_accuracy"][-1] == s["test_accuracy"]


def test_phases_stopped_unsettled_are_counted_and_said_once(tmp_path, neurosim_cli):
    """A step cap too small for engine.tol: every batch is flagged in the summary, and the
    console says so once."""
    r = neurosim_cli("run", "--json", "--no-progress", "--out", tmp_path,
                     "--set", "train.epochs=1", "--set", "engine.free_steps=2",
                     "--set", "engine.tol=1e-8")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["unsettled_free_batches"] == s["batches"] == 72
    assert s["free_steps_mean"] == 2
    assert r.stdout.count("phases stopped at their step cap") == 1
    metrics = json.load(open(os.path.join(s["run_dir"], "metrics.json")))
    assert metrics["history"]["unsettled_free"] == [72]


def test_overrides_and_inspect(tmp_path, neurosim_cli):
    s = _summary(neurosim_cli("run", "--json", "--no-progress", "--out", tmp_path,
                              "--set", "train.epochs=2", "--set", "learning.beta=0.2",
                              "--set", "network.sizes=[64, 32, 10]",
                              "--set", "learning.momentum=0.5"))
    assert s["epochs"] == 2
    text = open(os.path.join(s["run_dir"], "circuit.toml")).read()
    assert "beta = 0.2" in text and "momentum = 0.5" in text
    r = neurosim_cli("traces", "inspect", os.path.join(s["run_dir"], "traces.h5"))
    assert r.returncode == 0 and "training: 2 epochs" in r.stdout and "h1" in r.stdout


@pytest.mark.parametrize("args, culprit", [
    (["--set", "train.epochs=zero"], "train.epochs"),
    (["--set", "train.epoch=2"], "train.epoch: unknown key"),
    (["--set", "learning.lr=[0.1, 0.2, 0.3]"], "learning.lr: expected 2 values"),
    (["--set", "network.sizes=[20, 32, 10]"], "input population has 20 units"),
    (["--set", "network.activation=\"logistic\""], "engine.solver: 'block' needs"),
    (["--set", "dataset.name=cifar"], "cifar"),
    (["nonesuch.toml"], "cannot read circuit file"),
    (["--resume", "/nonexistent/run"], "--resume"),
])
def test_bad_input_names_the_culprit(tmp_path, args, culprit, neurosim_cli):
    r = neurosim_cli("run", "--no-progress", "--out", tmp_path, *args)   # raises on a traceback
    assert r.returncode == 2, r.stderr[-2000:]
    assert culprit in r.stderr, r.stderr[-2000:]


# -- checkpoints ---------------------------------------------------------------------------
SLOW = ["--set", "train.epochs=2", "--set", "train.checkpoint_every=3",
        "--set", "engine.solver=\"euler\"", "--set", "engine.free_steps=400",
        "--set", "network.sizes=[64, 1024, 10]", "--set", "train.fidelity_batches=0",
        "--set", "engine.persistent=true", "--set", "learning.momentum=0.5",
        "--set", "dataset.limit_train=600"]   # 30 batches an epoch: room to stop mid-epoch


def _final_params(run_dir):
    with np.load(os.path.join(run_dir, "checkpoint.npz")) as z:
        return {k: z[k] for k in z.files if k.startswith(("param/", "optimizer/", "particles/"))}


def _meta(run_dir):
    with np.load(os.path.join(run_dir, "checkpoint.npz")) as z:
        return json.loads(str(z["meta"]))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    s = _summary(_run("run", "--json", "--no-progress", "--out", str(out), *SLOW))
    return _final_params(s["run_dir"]), s


def _start_and_stop(out, sig, after_epochs):
    p = subprocess.Popen(_cmd("run", "--no-progress", "--out", str(out), *SLOW),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    run_dir = None
    while time.time() < deadline:
        dirs = [d for d in os.listdir(out)] if os.path.isdir(out) else []
        if dirs:
            run_dir = os.path.join(out, dirs[0])
            ck = os.path.join(run_dir, "checkpoint.npz")
            if os.path.exists(ck):
                try:
                    m = _meta(run_dir)
                except Exception:       # being replaced right now
                    m = None
                if m and (m["epoch"], m["batch"]) >= (after_epochs, 3):
                    break
        if p.poll() is not None:
            pytest.fail("the run ended before it could be interrupted: " + p.stderr.read()[-2000:])
        time.sleep(0.02)
    seen = _meta(run_dir)
    p.send_signal(sig)
    out_, err = p.communicate(timeout=120)
    return p.returncode, err, run_dir, seen


@pytest.mark.slow   # long (a Brian2 build or a whole run): python -m pytest -m slow
def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path, uninterrupted):
    ref, _ = uninterrupted
    code, _, run_dir, seen = _start_and_stop(tmp_path, signal.SIGKILL, 1)
    assert code == -signal.SIGKILL
    m = _meta(run_dir)
    assert m["epoch"] >= seen["epoch"] >= 1           # no finished epoch lost
    assert len(m["history"]["epoch"]) == m["epoch"]
    s = _summary(_run("run", "--json", "--no-progress", "--resume", run_dir))
    assert s["epochs"] == 2
    got = _final_params(run_dir)
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)


def test_sigint_writes_a_checkpoint_and_resume_matches(tmp_path, uninterrupted):
    ref, full = uninterrupted
    code, err, run_dir, seen = _start_and_stop(tmp_path, signal.SIGINT, 0)
    assert code == 130, err[-2000:]
    assert "--resume" in err and "checkpoint" in err
    m = _meta(run_dir)
    assert (m["epoch"], m["batch"]) >= (seen["epoch"], seen["batch"])
    s = _summary(_run("run", "--json", "--no-progress", "--resume", run_dir))
    got = _final_params(run_dir)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    assert s["test_accuracy"] == full["test_accuracy"]


@pytest.mark.slow   # long (a Brian2 build or a whole run): python -m pytest -m slow
def test_brian2_rate_engine_trains_like_the_reference(tmp_path):
    """`engine.name = "brian2-rate"`: an epoch runs in the compiled circuit and ends with the
    reference trainer's weights (same settings, Euler steps)."""
    pytest.importorskip("brian2", reason="brian2 is not installed")
    common = ["--set", "engine.solver=\"euler\"", "--set", "train.epochs=1",
              "--set", "train.fidelity_batches=0", "--set", "network.sizes=[64, 32, 10]"]
    params = {}
    for engine in ("reference", "brian2-rate"):
        s = _summary(_run("run", "--json", "--no-progress", "--out", str(tmp_path / engine),
                          "--set", "engine.name=\"%s\"" % engine, *common))
        assert s["engine"] == engine
        params[engine] = _final_params(s["run_dir"])
    for k, v in params["reference"].items():
        np.testing.assert_allclose(params["brian2-rate"][k], v, atol=1e-12, err_msg=k)
    r = _run("run", "--no-progress", "--out", str(tmp_path / "bad"),
             "--set", "engine.name=\"brian2-rate\"")          # the default's block solver
    assert r.returncode == 2 and "engine.solver" in r.stderr


@pytest.mark.slow   # long (a Brian2 build or a whole run): python -m pytest -m slow
def test_sigterm_stops_a_whole_epoch_circuit_run_at_once(tmp_path):
    """brian2-rate runs an epoch in one compiled run: SIGTERM during it stops the run at once
    (the epoch in flight is not finished), writes the checkpoint of the epoch's start, and
    --resume ends with the weights of an uninterrupted run."""
    pytest.importorskip("brian2", reason="brian2 is not installed")
    common = ["--no-progress", "--set", "engine.name=\"brian2-rate\"",
              "--set", "engine.solver=\"euler\"", "--set", "train.epochs=2",
              "--set", "network.sizes=[64, 32, 10]", "--set", "engine.free_steps=60"]
    full = _summary(_run("run", "--json", "--out", str(tmp_path / "full"), *common))
    ref = _final_params(full["run_dir"])
    out = tmp_path / "stopped"
    p = subprocess.Popen(_cmd("run", "--out", str(out), *common),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir, deadline = None, time.time() + 300
    while time.time() < deadline and p.poll() is None:
        dirs = os.listdir(out) if os.path.isdir(out) else []
        if dirs and os.path.exists(os.path.join(out, dirs[0], "checkpoint.npz")):
            run_dir = os.path.join(out, dirs[0])
            try:
                if _meta(run_dir)["epoch"] == 1:
                    break
            except Exception:       # being replaced right now
                pass
        time.sleep(0.02)
    assert run_dir is not None and p.poll() is None, "the run ended before it could be stopped"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert _meta(run_dir)["epoch"] == 1          # epoch 2 was stopped in flight, not finished
    _summary(_run("run", "--json", "--no-progress", "--resume", run_dir))
    got = _final_params(run_dir)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], atol=1e-12, err_msg=k)


# -- faults found as a new user (issue 23, item 9) --------------------------------------------
QUICK = ["--no-progress", "--set", "dataset.limit_train=200", "--set", "dataset.limit_test=100",
         "--set", "train.fidelity_batches=1"]


def _files(run_dir):
    out = {}
    for root, _, names in os.walk(run_dir):
        for n in names:
            p = os.path.join(root, n)
            out[os.path.relpath(p, run_dir)] = (open(p, "rb").read(), os.stat(p).st_mtime_ns)
    return out


def test_resume_of_a_finished_run_leaves_it_untouched(tmp_path, neurosim_cli):
    s = _summary(neurosim_cli("run", "--json", "--out", tmp_path, "--set", "train.epochs=2",
                              *QUICK))
    before = _files(s["run_dir"])
    r = neurosim_cli("run", "--json", "--no-progress", "--resume", s["run_dir"])
    assert r.returncode == 0 and "already finished" in r.stdout, r.stderr[-2000:]
    assert _files(s["run_dir"]) == before           # every file, byte for byte, not rewritten
    again = json.loads(r.stdout.strip().splitlines()[-1])
    assert again["seconds"] == s["seconds"] and again["test_accuracy"] == s["test_accuracy"]
    t = traces.load(os.path.join(s["run_dir"], "traces.h5"))
    assert "rbp" in t.gradients and {"epoch_001", "epoch_002", "final"} <= set(t.weights)


def test_libsonata_reads_a_runs_reports(tmp_path, neurosim_cli):
    """Every report of a run's traces.h5 reads back with libsonata as with h5py."""
    pytest.importorskip("libsonata", reason="libsonata is absent (the test extra has it)")
    from conftest import check_with_libsonata
    s = _summary(neurosim_cli("run", "--json", "--out", tmp_path, "--set", "train.epochs=1",
                              "--set", "record.examples=3", *QUICK))
    assert check_with_libsonata(os.path.join(s["run_dir"], "traces.h5")) == 2


def test_an_interrupted_run_keeps_its_snapshots_and_seconds(tmp_path, neurosim_cli, monkeypatch):
    """Stopped (as by SIGINT) in epoch 2 and resumed: traces.h5 holds the snapshot of epoch 1
    written before the stop, and the summary's seconds count the first session too."""
    from neurosim.training.trainer import Trainer
    finish = Trainer._finish_epoch

    def stop_after_epoch_1(self, epoch, on_epoch, test_outputs=None):
        finish(self, epoch, on_epoch, test_outputs)
        if epoch == 0:
            self._stop = signal.SIGINT          # what the handler sets: stop after a batch
    monkeypatch.setattr(Trainer, "_finish_epoch", stop_after_epoch_1)
    r = neurosim_cli("run", "--out", tmp_path, "--set", "train.epochs=3", *QUICK)
    assert r.returncode == 130, r.stderr[-2000:]
    monkeypatch.setattr(Trainer, "_finish_epoch", finish)
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    first = _meta(run_dir)
    assert (first["epoch"], first["batch"]) == (1, 1) and first["seconds"] > 0
    s = _summary(neurosim_cli("run", "--json", "--no-progress", "--resume", run_dir))
    t = traces.load(os.path.join(run_dir, "traces.h5"))
    assert {"epoch_001", "epoch_002", "epoch_003", "final"} <= set(t.weights)
    assert not np.array_equal(t.weights["epoch_001"]["W:x->h1"], t.weights["final"]["W:x->h1"])
    assert s["seconds"] >= first["seconds"]
    assert s["seconds"] >= sum(json.load(open(os.path.join(run_dir, "metrics.json")))
                               ["history"]["seconds"])
    assert not os.path.exists(os.path.join(run_dir, "snapshots"))     # now in traces.h5


def test_run_folders_started_in_the_same_second_are_distinct(tmp_path):
    from neurosim.commands.run import make_run_dir
    when = time.localtime()
    first = make_run_dir(str(tmp_path), "default", when)
    second = make_run_dir(str(tmp_path), "default", when)
    third = make_run_dir(str(tmp_path), "default", when)
    assert len({first, second, third}) == 3 and all(os.path.isdir(d) for d in (first, second,
                                                                              third))
    assert second == first + "-2" and third == first + "-3"


def test_a_run_whose_folder_exists_already_gets_another(tmp_path, neurosim_cli, monkeypatch):
    """The folder of this second taken (another run started in it): the run takes the
    next one instead of stopping on 'File exists'."""
    frozen = time.localtime()
    monkeypatch.setattr(time, "localtime", lambda *a: frozen)
    os.makedirs(os.path.join(tmp_path, "default-" + time.strftime("%Y%m%d-%H%M%S", frozen)))
    real = os.path.exists
    monkeypatch.setattr(os.path, "exists",           # the other run claims it after the check
                        lambda p: False if str(p).startswith(str(tmp_path)) else real(p))
    s = _summary(neurosim_cli("run", "--json", "--out", tmp_path, "--set", "train.epochs=1",
                              *QUICK))
    assert s["run_dir"].endswith("-2")


def _strict(text):
    def refuse(token):
        raise ValueError("not JSON: %s" % token)
    return json.loads(text, parse_constant=refuse)


def test_metrics_json_is_strict_json(tmp_path, neurosim_cli):
    """lr = 1000 pins every unit: RBP's gradient is 0 and the cosines are undefined; they are
    written as null, not as bare NaN tokens."""
    r = neurosim_cli("run", "--json", "--no-progress", "--out", tmp_path,
                     "--set", "train.epochs=1", "--set", "learning.lr=1000")
    assert r.returncode == 0, r.stderr[-2000:]
    s = _strict(r.stdout.strip().splitlines()[-1])
    metrics = _strict(open(os.path.join(s["run_dir"], "metrics.json")).read())
    assert None in metrics["fidelity"]["cosine/all"]


def test_a_run_pinned_by_a_huge_learning_rate_is_told_so(tmp_path, neurosim_cli):
    """lr = 1000 pins every unit after the first batches: the run says it no longer learns
    and names learning.lr (once)."""
    r = neurosim_cli("run", "--no-progress", "--out", tmp_path, "--set", "train.epochs=3",
                     "--set", "learning.lr=1000")
    assert r.returncode == 0, r.stderr[-2000:]
    stuck = [ln for ln in r.stdout.splitlines()
             if ln.startswith("warning:") and "no longer learns" in ln]
    assert len(stuck) == 1 and "learning.lr" in stuck[0]
