"""`neurosim fidelity --engine brian2-spiking`: the sweep table, the HDF5 file (table, spikes,
RBP gradient), the plots, --json; the cosine to the rate circuit rises with the maximum rate;
clear errors. And the Trainer with the brian2-spiking engine: the spike-based updates lower
the cost."""
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("brian2")

import neurosim as ns  # noqa: E402
from neurosim.commands import spiking_fidelity as sf  # noqa: E402
from neurosim.traces import load  # noqa: E402

SMALL = ["digits_spiking", "--set", "network.sizes=[64,8,10]", "--set", "engine.neuron=poisson",
         "--set", "engine.free_steps=200",
         "--set", "engine.nudge_steps=200", "--batch", "3", "--spike-seeds", "2"]


def _neurosim(*args):
    return subprocess.run([sys.executable, "-m", "neurosim.cli", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("spiking_fidelity")
    r = _neurosim("fidelity", *SMALL, "--engine", "brian2-spiking", "--sweep",
                  "max_rate=100,1000", "--sweep", "traces=10/100", "--out", str(d), "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    return r, d, json.loads(r.stdout.strip().splitlines()[-1])


def test_table_rows_and_the_rate_sweep(study):
    r, d, s = study
    rows = s["rows"]
    assert [(q["sweep"], q["setting"]) for q in rows] == [
        ("max_rate", "100 Hz"), ("max_rate", "1000 Hz"), ("traces", "traces 10/100 ms")]
    # ten times the rate, about ten times the spikes, and a closer estimate of the rate update
    assert 5 < rows[1]["spikes"] / rows[0]["spikes"] < 15
    assert rows[1]["cos_rate"] > rows[0]["cos_rate"]
    assert rows[1]["rel_rate"] < rows[0]["rel_rate"]
    for q in rows:
        assert -1 <= q["cos_rbp"] <= 1 and 0 <= q["sign_rate"] <= 1
        assert q["rate_vs_rbp_cosine"] == rows[0]["rate_vs_rbp_cosine"]
    assert "| max_rate | 1000 Hz |" in r.stdout


def test_hdf5_holds_the_table_spikes_and_rbp(study):
    _, d, s = study
    t = load(s["h5"])
    table = t.fidelity["spiking"]
    assert np.allclose(table["cos_rate"], [q["cos_rate"] for q in s["rows"]])
    assert table["per_seed"]["cos_rbp"].shape == (3, 2)
    assert set(t.spikes) == {"x", "h1", "y"}     # inputs spike too
    assert all(len(v["timestamps"]) > 0 for v in t.spikes.values())
    assert set(t.gradients["rbp"]) == {"W:x->h1", "W:h1->y", "b:h1", "b:y"}
    for f in ("png", "raster"):
        assert (d / s[f].split("/")[-1]).stat().st_size > 1000


def test_bad_options_name_themselves(tmp_path, neurosim_cli):
    r = neurosim_cli("fidelity", *SMALL, "--engine", "brian2-spiking", "--sweep", "rate=5",
                     "--out", tmp_path)
    assert r.returncode != 0 and "unknown name 'rate'" in r.stderr
    r = neurosim_cli("fidelity", *SMALL, "--engine", "brian2-spiking", "--sweep",
                     "traces=100/10", "--out", tmp_path)
    assert r.returncode != 0 and "tau_fast/tau_slow" in r.stderr
    r = neurosim_cli("fidelity", "default", "--sweep", "max_rate=5", "--out", tmp_path)
    assert r.returncode != 0 and "brian2-spiking only" in r.stderr
    with pytest.raises(sf.SpikingFidelityError, match="nudge_steps >= 1"):
        sf.parse_sweep("nudge_steps=0")


def test_settings_follow_the_phase_with_tau_slow():
    items = sf.settings({"neuron": "poisson", "max_rate": 1000.0, "eps": 0.1}, 300,
                        [("nudge_steps", [100, 1000, 5000])])
    assert [p["tau_slow"] for _, _, p, _ in items] == [20.0, 200.0, 200.0]
    assert [n for *_, n in items] == [100, 1000, 5000]


def test_trainer_lowers_the_cost_with_spike_based_updates():
    """Training batch by batch from spike-based updates is the Trainer's, with the
    brian2-spiking engine (runtime circuits, one per mini-batch): no loop beside it."""
    from neurosim.datasets import Dataset
    from neurosim.training import Trainer
    d = ns.datasets.load("digits")
    x, y = d.x_train[:40], d.y_train[:40]
    labels = np.argmax(y, axis=1)
    net = ns.layered([64, 16, 10], activation="hard_sigmoid", seed=0)
    before = float(np.mean(ns.energy.cost(net, ns.relax(net, x, eps=0.1, clip=True).state, y)))
    eng = ns.engines.build("brian2-spiking", net, batch_size=20, eps=0.1, clip=True, beta=0.5,
                           free_steps=150, nudge_steps=150, whole_epoch=False)
    data = Dataset("arrays", x, y, labels, x[:10], y[:10], labels[:10], 10, "arrays")
    hist = Trainer(eng, data, lr=[0.1, 0.05], epochs=2, batch_size=20, seed=0,
                   fidelity_batches=0, progress=False, meter=False).fit()
    assert hist["epoch"] == [1, 2]
    after = float(np.mean(ns.energy.cost(net, ns.relax(net, x, eps=0.1, clip=True).state, y)))
    assert after < before and eng.spikes["nudged"] > 0
