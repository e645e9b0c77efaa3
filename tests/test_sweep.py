"""`neurosim sweep` on a real local Dask cluster (2 worker processes): a 2x2 grid with its
index, run folders and plots, a rerun that skips everything, a run that fails at run time
(recorded with its error, retried), bad --param arguments, and a sweep killed midway
(SIGKILL to its process group) that resumes without redoing the finished runs."""
import json
import os
import signal
import subprocess
import sys
import time

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest

from neurosim import cli, traces
from neurosim.sweep import read_index, run_sweep, split_values

SMALL = ["train.epochs=1", "dataset.limit_train=100", "dataset.limit_test=50",
         "train.fidelity_batches=1"]
NET = "network.sizes=[64,16,10]"


def _sets(items):
    return [a for item in items for a in ("--set", item)]


def _cmd(*args):
    return [sys.executable, "-m", "neurosim.cli", *args]


def _files(folder):
    """Every file under ``folder`` with its mtime (ns)."""
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, names in os.walk(folder) for f in names}


def test_grid_on_two_workers_then_rerun_skips_everything(tmp_path):
    out = str(tmp_path / "sweep")
    lines = []
    env_before = os.environ.get("OPENBLAS_NUM_THREADS")
    s = run_sweep(None, ["learning.beta=0.2,0.5", "learning.lr=0.05,0.1"], SMALL + [NET],
                  workers=2, out=out, echo=lines.append)
    assert (s["runs"], s["done"], s["failed"], s["skipped"]) == (4, 4, 0, 0)
    assert s["index"] == os.path.join(out, "index.csv") and s["seconds"] > 0
    rows = read_index(s["index"])
    assert [r["status"] for r in rows] == ["done"] * 4
    assert {(r["learning.beta"], r["learning.lr"]) for r in rows} == {
        ("0.2", "0.05"), ("0.2", "0.1"), ("0.5", "0.05"), ("0.5", "0.1")}
    for r in rows:
        assert r["attempts"] == "1" and r["error"] == ""
        assert 0 <= float(r["test_accuracy"]) <= 1
        assert -1 <= float(r["fidelity_cosine_mean"]) <= 1
        assert float(r["fidelity_cosine_last"]) == pytest.approx(float(r["fidelity_cosine_mean"]))
        run_dir = os.path.join(out, r["run_dir"])
        t = traces.load(os.path.join(run_dir, "traces.h5"))
        assert len(t.training["test_accuracy"]) == 1
        with open(os.path.join(run_dir, "circuit.toml"), "rb") as f:
            c = tomllib.load(f)
        assert c["learning"]["beta"] == float(r["learning.beta"])
        assert c["learning"]["lr"] == float(r["learning.lr"])
        assert c["network"]["sizes"] == [64, 16, 10]
    for key in ("learning.beta", "learning.lr"):
        assert os.path.getsize(os.path.join(out, "sweep_%s.png" % key)) > 10_000
    assert s["best"]["run_id"] in {r["run_id"] for r in rows}
    pids = set()
    for r in rows:                                   # BLAS pinned in the worker processes
        with open(os.path.join(out, "runs", r["run_id"], "result.json")) as f:
            worker = json.load(f)["worker"]
        pids.add(worker["pid"])
        assert all(v == "1" for k, v in worker["env"].items() if k.endswith("_NUM_THREADS"))
        assert worker["blas_threads"] in (1, None)
    assert os.getpid() not in pids and len(pids) <= 2
    assert os.environ.get("OPENBLAS_NUM_THREADS") == env_before   # the caller's env restored
    assert any(line.startswith("[4/4] done") for line in lines)
    assert not [f for f in _files(out) if ".tmp" in f]

    before = _files(os.path.join(out, "runs"))
    # the same grid with the keys in the other order: the same runs, all skipped
    s2 = run_sweep(None, ["learning.lr=0.1,0.05", "learning.beta=0.5,0.2"], SMALL + [NET],
                   workers=2, out=out, echo=lines.append)
    assert (s2["runs"], s2["done"], s2["skipped"]) == (4, 4, 4)
    assert _files(os.path.join(out, "runs")) == before


def test_failed_run_is_recorded_retried_and_sets_the_exit_status(tmp_path, capsys):
    out = str(tmp_path / "sweep")
    # [63, 16, 10] is a valid circuit but fails at run time: digits have 64 features
    rc = cli.main(["sweep", "--param", "network.sizes=[64,16,10],[63,16,10]", *_sets(SMALL),
                   "--workers", "2", "--retries", "1", "--out", out, "--json"])
    captured = capsys.readouterr()
    assert rc == 1
    s = json.loads(captured.out.strip().splitlines()[-1])
    assert (s["runs"], s["done"], s["failed"]) == (2, 1, 1)
    assert "1 run failed" in captured.err and s["failed_runs"][0] in captured.err
    rows = {r["network.sizes"]: r for r in read_index(s["index"])}
    bad, good = rows["[63, 16, 10]"], rows["[64, 16, 10]"]
    assert bad["status"] == "failed" and bad["attempts"] == "2"
    assert "ConfigurationError" in bad["error"] and "63 units" in bad["error"]
    assert bad["test_accuracy"] == "" and bad["run_dir"] == ""
    tb = open(os.path.join(out, "runs", bad["run_id"], "traceback.txt")).read()
    assert tb.count("attempt") == 2 and "Traceback" in tb and "check_fit" in tb
    assert "retrying" in captured.out
    assert good["status"] == "done" and good["attempts"] == "1"
    assert os.path.isfile(os.path.join(out, good["run_dir"], "traces.h5"))


@pytest.mark.parametrize("param, expected", [
    ("learning.beta", "expected KEY=V1,V2"),
    ("learning.beta=", "empty list"),
    ("learning.beta=0.1,,0.5", "value 2 is empty"),
    ("learning.betta=0.1,0.5", "learning.betta: unknown key"),
    ("learning.beta=0.1,abc", "valid number"),
    ("learning.beta=0.5,0", "the value 0 is not valid"),
    ("network.sizes=[64,16,10],[64,32", "unclosed bracket"),
    ("learning.beta=0.1,0.1", "repeated"),
])
def test_bad_param_names_the_argument(tmp_path, capsys, param, expected):
    out = tmp_path / "sweep"
    assert cli.main(["sweep", "--param", param, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--param %s" % param.split("=")[0] in err and expected in err, err
    assert not out.exists()                          # nothing started


def test_split_values_keeps_lists_and_strings_whole():
    assert split_values("[64,32,10],[64, 64, 10]") == ["[64,32,10]", "[64, 64, 10]"]
    assert split_values('0.1,"a,b",{x = 1, y = 2}') == ["0.1", '"a,b"', "{x = 1, y = 2}"]


@pytest.mark.slow   # long (a Brian2 build or a whole run): python -m pytest -m slow
def test_killed_sweep_resumes_without_redoing_finished_runs(tmp_path):
    out = str(tmp_path / "sweep")
    cmd = _cmd("sweep", "--param", "learning.beta=0.2,0.5,1.0", "--param", "learning.lr=0.05,0.1",
               *_sets(["train.epochs=2", "dataset.limit_train=300", "dataset.limit_test=50",
                       "train.fidelity_batches=1", NET]),
               "--workers", "2", "--out", out, "--json")
    index = os.path.join(out, "index.csv")
    with open(tmp_path / "first.log", "w") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and p.poll() is None:
                if os.path.exists(index) and any(r["status"] == "done" for r in read_index(index)):
                    break
                time.sleep(0.05)
            assert p.poll() is None, open(tmp_path / "first.log").read()[-3000:]
        finally:
            os.killpg(p.pid, signal.SIGKILL)       # the sweep, its nannies and workers
            p.wait()
    rows = read_index(index)
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) >= 1 and len(done) < len(rows) == 6
    kept = {r["run_id"]: _files(os.path.join(out, "runs", r["run_id"])) for r in done}

    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["runs"] == 6 and s["done"] == 6 and s["failed"] == 0
    assert len(done) <= s["skipped"] < 6
    for run_id, files in kept.items():                # finished runs untouched
        assert _files(os.path.join(out, "runs", run_id)) == files
    rows = read_index(index)
    assert [x["status"] for x in rows] == ["done"] * 6
    for x in rows:                                    # half-written run folders were replaced
        root = os.path.join(out, "runs", x["run_id"])
        assert [d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))] == [
            os.path.basename(x["run_dir"])]
        assert os.path.isfile(os.path.join(out, x["run_dir"], "traces.h5"))


@pytest.mark.slow
def test_sixteen_runs_on_two_workers(tmp_path):
    """4 beta x 2 learning rates x 2 networks (a list-valued key) = 16 runs of 5 epochs on
    the whole digits training set (about 20 s on an idle 2-core machine)."""
    out = str(tmp_path / "sweep")
    t0 = time.perf_counter()
    r = subprocess.run(_cmd("sweep", "--param", "learning.beta=0.1,0.2,0.5,1.0",
                            "--param", "learning.lr=0.05,0.1",
                            "--param", "network.sizes=[64,32,10],[64,64,10]",
                            "--set", "train.epochs=5", "--workers", "2", "--out", out, "--json"),
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert (s["runs"], s["done"], s["failed"]) == (16, 16, 0)
    rows = read_index(s["index"])
    assert len(rows) == 16 and all(x["status"] == "done" for x in rows)
    assert len({x["run_id"] for x in rows}) == 16
    assert max(float(x["test_accuracy"]) for x in rows) > 0.85
    assert len(s["plots"]) == 3 and all(os.path.getsize(p) > 10_000 for p in s["plots"])
    print("16-run sweep: %.1f s wall" % (time.perf_counter() - t0))


def test_one_at_a_time_from_the_circuit_sweep_section(tmp_path):
    """A study file carries its grid: one key at a time around the circuit's values (the
    base run once), with the design-curve figure and the Markdown table; devices report the
    cosine of the update they took next to the EP estimate's."""
    study = tmp_path / "study.toml"
    study.write_text("""
name = "study"
[network]
sizes = [64, 16, 10]
[engine]
eps = 0.5
free_steps = 20
nudge_steps = 4
[train]
epochs = 1
fidelity_batches = 2
[dataset]
limit_train = 100
limit_test = 50
[hardware]
levels = 0
read_noise = 0.0
[sweep]
mode = "one_at_a_time"
[sweep.params]
"hardware.levels" = [8, 0]
"hardware.read_noise" = [0.05]
""")
    out = str(tmp_path / "sweep")
    s = run_sweep(str(study), [], [], workers=2, out=out, echo=lambda *a: None)
    assert (s["mode"], s["runs"], s["done"]) == ("one_at_a_time", 3, 3)   # base run once
    rows = {(r["hardware.levels"], r["hardware.read_noise"]): r for r in read_index(s["index"])}
    assert set(rows) == {("0", "0.0"), ("8", "0.0"), ("0", "0.05")}
    base, coarse = rows[("0", "0.0")], rows[("8", "0.0")]
    # exact weights: the update applied is the estimate; 8 levels: devices take far less of it
    assert base["fidelity_applied_cosine_mean"] == base["fidelity_cosine_mean"]
    assert float(coarse["fidelity_applied_cosine_mean"]) < float(coarse["fidelity_cosine_mean"])
    table = open(s["table"]).read()
    assert "| hardware.levels | 8 |" in table and "| hardware.read_noise | 0.05 |" in table
    assert os.path.join(out, "design_curves.png") in s["plots"]
    with pytest.raises(Exception, match="grid of their own"):
        run_sweep(str(study), ["hardware.preset=ideal,rram", "hardware.levels=8"], [],
                  mode="one_at_a_time", out=str(tmp_path / "x"), echo=lambda *a: None)


@pytest.mark.slow   # a sweep of two Brian2 runs (~45 s); run with -m slow
def test_brian2_engines_run_on_dask_worker_threads(tmp_path):
    """Brian2 installs a SIGINT handler when imported, which Python refuses off the main
    thread; a sweep's runs execute on worker threads, so the import must still work there."""
    s = run_sweep("digits_spiking", ["engine.max_rate=500.0,1000.0"],
                  ["network.sizes=[64,8,10]", "engine.free_steps=50", "engine.nudge_steps=50",
                   "engine.whole_epoch=false", "engine.input_drive=\"spikes\"",
                   "train.epochs=1", "dataset.limit_train=40", "dataset.limit_test=20",
                   "train.fidelity_batches=0", "record.examples=0"],
                  workers=2, out=str(tmp_path / "sweep"), retries=0, echo=lambda *a: None)
    rows = read_index(s["index"])
    assert [r["error"] for r in rows] == ["", ""] and s["done"] == 2
