"""The cost model (neurosim.cost): counts by hand, the symmetric variant, the table from the
circuit file, per-epoch = per-example x examples from the training loop's meter, the meter
across a checkpoint and resume, `neurosim run` writing /cost and the summary's cost, and the
spiking engine's synaptic events split by phase (bit-identical updates with the counter)."""
import json
import os

import h5py
import numpy as np
import pytest

import neurosim as ns
from neurosim import config, datasets, engines, traces
from neurosim.hardware import cost
from neurosim.training.trainer import Trainer


def _model(variant="one_sided", table=None, net=None):
    net = net or ns.layered([3, 4, 2], activation="hard_sigmoid", seed=0)
    return cost.CostModel(net, table, eps=0.5, free_steps=7, nudge_steps=3, variant=variant,
                          batch_size=5)


def test_counts_by_hand_for_a_three_layer_net():
    m = _model()
    # tied h1-y weight used both ways (2 * 4 * 2), input projection one way (3 * 4)
    assert m.macs_per_step == 3 * 4 + 2 * 4 * 2 == 28
    assert (m.neurons, m.n_in, m.n_out) == (6, 3, 2)
    assert m.devices == 3 * 4 + 4 * 2 + 4 + 2
    assert m.program_rows == 4 + 1          # h1 -> y: 4 rows plus the bias row of y
    r = m.report(examples_per_epoch=10)     # an estimate: 10 examples in 2 batches of 5
    free, nudged, update = (r["per_example"][p] for p in ("free", "nudged", "update"))
    t = cost.CostTable()
    assert free["steps"] == 7 and free["macs"] == 7 * 28 and free["neuron_steps"] == 7 * 6
    assert free["settling_tau"] == 3.5 and free["dac"] == 3 and free["adc"] == 6
    assert nudged["steps"] == 3 and nudged["macs"] == 3 * 28 and nudged["neuron_steps"] == 18
    assert nudged["settling_tau"] == 1.5 and nudged["dac"] == 2 and nudged["adc"] == 6
    assert free["synaptic_events"] == nudged["synaptic_events"] == 0
    assert update["pulses"] == pytest.approx(m.devices / 5)   # once per parameter per batch
    assert free["energy_pj"] == pytest.approx(
        196 * t.mac_pj + 42 * t.neuron_step_pj + 3 * t.dac_pj + 6 * t.adc_pj)
    assert free["latency_ns"] == pytest.approx(3.5 * t.tau_ns + t.adc_ns)
    assert nudged["latency_ns"] == pytest.approx(1.5 * t.tau_ns + t.adc_ns)
    assert update["latency_ns"] == pytest.approx(5 * t.pulse_ns / 5)   # one batch / 5 examples
    tot = r["per_example"]["total"]
    assert tot["energy_pj"] == pytest.approx(sum(r["per_example"][p]["energy_pj"]
                                                 for p in ("free", "nudged", "update")))
    assert tot["energy_uj"] == pytest.approx(tot["energy_pj"] * 1e-6)
    assert tot["latency_us"] == pytest.approx(tot["latency_ns"] * 1e-3)
    # a skip projection x -> y adds 3 * 2 MACs; a lateral h1 -> h1 adds 4 * 3 (no diagonal)
    skip = ns.layered([3, 4, 2], activation="hard_sigmoid", skip=[(0, 2)])
    assert _model(net=skip).macs_per_step == 28 + 3 * 2
    g = ns.layered([3, 4, 2]).graph.copy()
    g.add_edge("h1", "h1")
    lateral = ns.Network.from_graph(g, activation="hard_sigmoid")
    assert _model(net=lateral).macs_per_step == 28 + 4 * 3


def test_symmetric_doubles_the_nudged_counts():
    one = _model("one_sided").report()["per_example"]
    two = _model("symmetric").report()["per_example"]
    assert two["free"] == one["free"]
    for k in ("steps", "settling_tau", "macs", "neuron_steps", "adc", "latency_ns"):
        assert two["nudged"][k] == 2 * one["nudged"][k], k
    assert two["nudged"]["dac"] == one["nudged"]["dac"]      # the targets are converted once


def test_a_table_entry_from_the_circuit_file_scales_exactly_that_term(tmp_path):
    text = open(config.builtin_path("default")).read()
    path = tmp_path / "c.toml"
    path.write_text(text + "\n[cost]\nmac_pj = 0.04\nadc_ns = 25.0\n")
    circuit, _ = config.load(str(path))
    table = cost.table_from_section(circuit.cost)
    base = cost.CostTable()
    assert table.mac_pj == 0.04 and table.adc_ns == 25.0
    assert table.pulse_pj == base.pulse_pj and table.tau_ns == base.tau_ns
    net = ns.layered([64, 32, 10], activation="hard_sigmoid")
    kw = dict(eps=0.5, free_steps=20, nudge_steps=8, variant="symmetric")
    a = cost.CostModel(net, base, **kw).report()["per_example"]
    b = cost.CostModel(net, table, **kw).report()["per_example"]
    for p in ("free", "nudged"):
        for op, v in a[p]["energy_by_op_pj"].items():
            want = v * (0.04 / base.mac_pj if op == "mac" else 1.0)
            assert b[p]["energy_by_op_pj"][op] == pytest.approx(want, rel=1e-12), (p, op)
        assert b[p]["latency_ns"] - a[p]["latency_ns"] == pytest.approx(
            (25.0 - base.adc_ns) * (1 if p == "free" else 2))
    assert cost.table_from_section(config.load(None)[0].cost) == base
    with pytest.raises(ValueError, match="cost.mac_pj"):
        cost.CostTable(mac_pj=-1.0)
    with pytest.raises(config.ConfigError, match="cost.pulse_pj"):
        config.load(None, ["cost.pulse_pj=-2"])


def _teacher(n_train=10):
    return datasets.load("teacher", n_in=4, n_hidden=5, n_classes=3, n_train=n_train, n_test=4)


def _reference(net, **settings):
    """The reference engine, symmetric EP with beta 0.5 (settings as circuit-file fields)."""
    return engines.build("reference", net, beta=0.5, variant="symmetric", **settings)


def _trainer(engine, data, **kw):
    opts = dict(lr=0.05, epochs=2, batch_size=4, fidelity_batches=0, progress=False)
    opts.update(kw)
    return Trainer(engine, data, **opts)


def test_per_epoch_is_per_example_times_examples_from_the_meter():
    data = _teacher(10)
    net = ns.layered([4, 5, 3], activation="hard_sigmoid", seed=0)
    engine = _reference(net, eps=0.5, free_steps=6, nudge_steps=2)
    tr = _trainer(engine, data)
    tr.fit()
    assert [(r["epoch"], r["examples"], r["batches"]) for r in tr.meter.epochs] == \
        [(1, 10, 3), (2, 10, 3)]
    r = cost.CostModel.for_engine(engine, variant="symmetric", batch_size=4).report(tr.meter)
    assert r["model"]["metered"] and not r["model"]["measured_pulses"]
    ex, ep = r["per_example"], r["per_epoch"]
    for p in cost.PHASES:
        for k in ("macs", "neuron_steps", "pulses", "energy_pj", "latency_ns"):
            assert ep[p][k] == pytest.approx(ex[p][k] * 10, rel=1e-12), (p, k)
    by = r["by_epoch"]
    assert by["epoch"] == [1, 2] and by["examples"] == [10, 10] and by["batches"] == [3, 3]
    assert by["update"]["pulses"] == [3.0 * r["model"]["devices"]] * 2   # ideal: once a batch
    assert by["total"]["energy_pj"][0] == pytest.approx(ep["total"]["energy_pj"])


def test_the_meter_survives_a_checkpoint_and_resume(tmp_path):
    data = _teacher(8)
    ck = str(tmp_path / "ck.npz")
    net = ns.layered([4, 5, 3], activation="hard_sigmoid", seed=0)
    tr = _trainer(_reference(net, eps=0.5, free_steps=4, nudge_steps=2), data, epochs=1,
                  checkpoint=ck)
    tr.fit()
    net2 = ns.layered([4, 5, 3], activation="hard_sigmoid", seed=0)
    tr2 = _trainer(_reference(net2, eps=0.5, free_steps=4, nudge_steps=2), data, epochs=2,
                   checkpoint=ck)
    tr2.load(ck)
    tr2.fit()
    assert [(r["epoch"], r["examples"]) for r in tr2.meter.epochs] == [(1, 8), (2, 8)]
    assert _trainer(_reference(net, eps=0.5), data, meter=False).meter is None


def test_neurosim_run_writes_cost_into_traces_and_summary(tmp_path, neurosim_cli):
    r = neurosim_cli("run", "--json", "--no-progress", "--out", tmp_path,
                     "--set", "train.epochs=1", "--set", "dataset.limit_train=100",
                     "--set", "train.fidelity_batches=0",
                     "--set", "cost.pulse_pj=2.0")
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert any(line.startswith("cost (order-of-magnitude table of a rate crossbar, reference engine)") and "per epoch" in line for line in lines)
    s = json.loads(lines[-1])
    c = s["cost"]
    assert set(c["per_example"]) == set(cost.PHASES) and "by_epoch" not in c
    assert c["table"]["pulse_pj"] == 2.0
    ex = c["per_example"]
    # the default circuit, 64-256-10, block sweeps that settle: priced at the sweeps they
    # took on average (the summary's free_steps_mean, nudge_steps_mean per nudged phase)
    macs = 64 * 256 + 2 * 256 * 10
    F, N = s["free_steps_mean"], s["nudge_steps_mean"]
    assert F > 1 and N > 1 and F < 300 and N < 100
    assert c["model"]["macs_per_step"] == macs
    assert ex["free"]["macs"] == pytest.approx(F * macs)
    assert ex["nudged"]["macs"] == pytest.approx(2 * N * macs)
    assert c["model"]["examples_per_epoch"] == 100 and c["model"]["batches_per_epoch"] == 5
    assert c["per_epoch"]["total"]["energy_uj"] == pytest.approx(ex["total"]["energy_uj"] * 100)
    metrics = json.load(open(os.path.join(s["run_dir"], "metrics.json")))
    assert metrics["cost"]["by_epoch"]["examples"] == [100]
    got = traces.load(os.path.join(s["run_dir"], "traces.h5")).cost
    assert got["attrs"]["pulse_pj"] == 2.0 and got["attrs"]["model_kind"] == "rate"
    assert got["attrs"]["model_engine"] == "reference"      # the registered name
    assert got["per_example"]["free"]["macs"] == pytest.approx(F * macs)
    assert got["per_example"]["total"]["energy_pj"] == pytest.approx(ex["total"]["energy_pj"])
    np.testing.assert_array_equal(got["per_epoch"]["examples"], [100])
    assert got["per_epoch"]["nudged"]["latency_ns"].shape == (1,)
    with h5py.File(os.path.join(s["run_dir"], "traces.h5"), "r") as f:
        assert f["cost/per_example/total/energy_pj"].attrs["units"] == "pJ"
        assert "training" in f and "weights" in f          # the rest of the file is kept


def _metered_report(epochs=2):
    m = _model("symmetric")
    meter = cost.CostMeter()
    meter.epochs = [{"epoch": e, "examples": 10, "batches": 2, "pulses": 40.0 + e,
                     "events_free": None, "events_nudged": None} for e in range(1, epochs + 1)]
    return m.report(meter)


def test_traces_write_stores_the_cost_group_and_load_reads_it_back(tmp_path):
    r = _metered_report()
    path = tmp_path / "traces.h5"
    traces.write(path, training={"loss": [1.0, 0.5]}, cost=r)
    got = traces.load(path).cost
    assert got["table"] == r["table"] and got["model"] == r["model"]
    assert got["attrs"]["pulse_pj"] == r["table"]["pulse_pj"]
    assert got["attrs"]["model_kind"] == "rate" and got["attrs"]["model_metered"] is True
    for p in cost.PHASES:
        for k, v in r["per_example"][p].items():
            if k == "energy_by_op_pj":
                assert got["per_example"][p][k] == pytest.approx(v)
            else:
                assert got["per_example"][p][k] == pytest.approx(v), (p, k)
    np.testing.assert_array_equal(got["per_epoch"]["epoch"], [1, 2])
    assert got["per_epoch"]["examples"].dtype == np.int64
    np.testing.assert_allclose(got["per_epoch"]["update"]["pulses"], [41.0, 42.0])
    np.testing.assert_allclose(got["per_epoch"]["total"]["energy_by_op_pj"]["mac"],
                               r["by_epoch"]["total"]["energy_by_op_pj"]["mac"])
    with h5py.File(path, "r") as f:
        assert f["cost/per_example/total/energy_pj"].attrs["units"] == "pJ"
        assert f["cost/per_epoch/free/latency_us"].attrs["units"] == "us"
        assert f["cost/per_example/free/energy_by_op_pj"].attrs["units"] == "pJ"
    old = cost.load_h5(path)                           # the thin alias of traces.load().cost
    assert old["attrs"] == got["attrs"] and old.keys() == got.keys()
    text = traces.inspect(path)
    assert "cost: per example %.4g uJ" % r["per_example"]["total"]["energy_uj"] in text
    assert "table of a rate crossbar, 2 epoch(s)" in text


def test_the_write_group_shim_writes_the_same_cost_group(tmp_path):
    r = _metered_report(1)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    traces.write(a, cost=r)
    traces.write(b, extra=[lambda f: cost.write_group(f, r)])
    ta, tb = traces.load(a), traces.load(b)
    assert ta.node_attrs == tb.node_attrs and ta.cost["attrs"] == tb.cost["attrs"]
    np.testing.assert_array_equal(ta.cost["per_epoch"]["total"]["energy_pj"],
                                  tb.cost["per_epoch"]["total"]["energy_pj"])
    with pytest.raises(traces.TraceError, match="cost: .*missing by_epoch"):
        traces.write(tmp_path / "bad.h5", cost={"per_example": {}, "table": {}, "model": {}})
    traces.write(tmp_path / "c.h5")
    assert traces.load(tmp_path / "c.h5").cost == {}
    with pytest.raises(traces.TraceError, match="no /cost group"):
        cost.load_h5(tmp_path / "c.h5")
    assert sorted(os.listdir(tmp_path)) == ["a.h5", "b.h5", "c.h5"]


def test_spiking_engine_counts_synaptic_events_by_phase():
    pytest.importorskip("brian2")
    from neurosim.brian.spiking import SpikingCircuit
    from neurosim.engines.brian_spiking import _PhaseCountingCircuit
    net = ns.layered([4, 5, 3], activation="hard_sigmoid", seed=0)
    # the counter leaves the update bit for bit as it was
    x = np.random.default_rng(0).uniform(0, 1, (3, 4))
    y = np.eye(3)
    opts = dict(neuron="poisson", max_rate=1000.0, eps=0.1, tau_slow=20.0, tau_fast=10.0)
    kw = dict(beta=0.5, free_steps=15, nudge_steps=10, variant="symmetric")
    plain = SpikingCircuit(net, clip=True, record=False, seed=3, **opts).ep_update(x, y, **kw)
    c = _PhaseCountingCircuit(net, 15, clip=True, record=False, seed=3, **opts)
    counted = c.ep_update(x, y, **kw)
    assert all(np.array_equal(plain[k], counted[k]) for k in plain)
    assert 0 < sum(c.free_counts.values()) < sum(c.stats["spikes"].values())
    # through the training loop: the meter reads the engine's counters every batch
    data = _teacher(6)
    engine = engines.build("brian2-spiking", net.copy(), eps=0.1, free_steps=10, nudge_steps=10,
                           seed=0, whole_epoch=False, beta=0.5, variant="symmetric")
    tr = _trainer(engine, data, epochs=1, batch_size=3)
    # the engine's counters also count its inference (the epoch's evaluation runs free phases
    # in the spiking circuit); the meter counts the training batches' events only
    infer, evaluation = engine.infer, {"free": 0, "nudged": 0}

    def counted_infer(x, state=None):
        before = dict(engine.counters()["synaptic_events"])
        out = infer(x, state)
        for p, n in engine.counters()["synaptic_events"].items():
            evaluation[p] += n - before[p]
        return out
    engine.infer = counted_infer
    tr.fit()
    rec = tr.meter.epochs[0]
    assert rec["events_nudged"] > 0 and rec["events_free"] > 0
    events = engine.counters()["synaptic_events"]
    assert evaluation["nudged"] == 0 and evaluation["free"] > 0
    assert rec["events_free"] == events["free"] - evaluation["free"]
    assert rec["events_nudged"] == events["nudged"]
    r = cost.CostModel.for_engine(engine, variant="symmetric", batch_size=3).report(tr.meter)
    ex = r["per_example"]
    assert r["model"]["kind"] == "spiking" and r["model"]["measured_synaptic_events"]
    assert r["model"]["engine"] == "brian2-spiking"
    assert ex["nudged"]["synaptic_events"] == pytest.approx(rec["events_nudged"] / 6)
    assert ex["nudged"]["macs"] == 0 and ex["nudged"]["energy_by_op_pj"]["synaptic_event"] > 0


def test_a_softmax_readout_counts_its_products_outside_the_dynamics():
    net = ns.layered([3, 4, 5, 2], activation="hard_sigmoid", readout="softmax", seed=0)
    m = _model(variant="symmetric", net=net)
    # dynamics: x -> h1 one way (3 * 4), h1 - h2 both ways (2 * 4 * 5); readout h2 -> y
    assert m.macs_per_step == 3 * 4 + 2 * 4 * 5 and m.readout_macs == 5 * 2
    free, nudged = m.phase_counts()
    assert free["macs"] == 7 * 52 + 10              # the prediction once
    assert nudged["macs"] == 2 * 3 * (52 + 2 * 10)  # logits and pull at every nudged step


def test_a_plan_of_three_nudges_is_priced_as_three_nudged_phases():
    net = ns.layered([5, 4, 3], seed=0)
    eng = engines.build("reference", net, nudges=[-0.2, 0.1, 0.3], free_steps=7, nudge_steps=3)
    model = cost.CostModel.for_engine(eng)
    assert model.nudged_phases == 3
    assert model.phase_counts()[1]["steps"] == 3 * 3
    assert cost.CostModel.for_engine(engines.build("reference", net, variant="one_sided")
                                     ).nudged_phases == 1
