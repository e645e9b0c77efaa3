"""The online rule and common random numbers inside the compiled whole-epoch circuit
(``SpikingTrainingCircuit``), and the counter-based generator they draw from: numpy and C++
give the same uniforms; the online rule equals the snapshot rule in expectation (and on the
same spikes up to its Riemann sum); common numbers cut the update's spread at equal spikes;
seeded runs reproduce and epochs draw new noise, also through the engine.

Every slot of a run holds the same four examples (lr = 0, every batch recorded), so one run
gives ``SLOTS`` independent draws of the same batch update. Three C++ builds serve the
module (online + common through the engine, snapshot + common, snapshot + independent)."""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import engines
from neurosim.brian import counter_rng
from neurosim.brian.device import (CircuitError, build_folder, compile_standalone,
                                   import_brian2, standalone_device)
from neurosim.brian.spiking_training import SpikingTrainingCircuit
from neurosim.errors import ConfigurationError

SIZES = [6, 8, 3]
BATCH, SLOTS = 4, 16
N = BATCH * SLOTS
F = K = 100
BETA = 0.05
# the engine's trace constants at 100 nudge steps of eps 0.1 (trace_constants)
PHASES = dict(free_steps=F, nudge_steps=K, beta=BETA, tau_fast=10.0, tau_slow=20.0, eps=0.1,
              neuron="poisson")


def _net():
    return ns.layered(SIZES, activation="hard_sigmoid", seed=3, dtype="float64")


def _data():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (BATCH, SIZES[0])), np.eye(SIZES[-1])[rng.integers(0, 3, BATCH)]
    return np.tile(x, (SLOTS, 1)), np.tile(y, (SLOTS, 1))


def _flat(d):
    return np.concatenate([np.ravel(d[k]) for k in sorted(d)])


def _draws(circuit, run):
    """The ``SLOTS`` batch updates of one run at lr = 0 (rows), and the run's stats."""
    x, y = _data()
    circuit.train_epoch(x, y, lrs={k: 0.0 for k in circuit.net.params}, record=range(SLOTS),
                        run=run)
    return np.array([_flat(circuit.recorded[b][0]) for b in range(SLOTS)]), dict(circuit.stats)


def _spread(g):
    return float(np.sqrt(np.mean(np.sum((g - g.mean(0)) ** 2, axis=1))))


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """brian2-spiking with the online rule and common noise, built by its first epoch."""
    eng = engines.build("brian2-spiking", _net(), free_steps=F, nudge_steps=K, beta=BETA,
                        eps=0.1, seed=5, batch_size=BATCH, noise="common", plasticity="online",
                        build_dir=str(tmp_path_factory.mktemp("online")))
    assert eng.fuses_epoch
    x, y = _data()
    eng.train_epoch(x, y, np.ones(N), {k: 0.0 for k in eng.net.params}, BATCH,
                    record=range(SLOTS))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """Snapshot-rule circuits at the engine's settings, common and independent noise."""
    out = {}
    for noise in ("common", "independent"):
        out[noise] = SpikingTrainingCircuit(
            _net(), N, batch_size=BATCH, seed=5, record_slots=SLOTS, noise=noise,
            rule="snapshot", build_dir=str(tmp_path_factory.mktemp(noise)), **PHASES)
    yield out
    for c in out.values():
        c.close()


def test_counter_uniforms_are_the_same_in_numpy_and_cpp(tmp_path):
    """The Brian2 function ``crn_uniform`` compiled in a cpp_standalone build gives bit for
    bit the numpy uniforms on a grid of counters (large ones included, and integer
    arguments: the neuron index and the step)."""
    grid = np.array(np.meshgrid([0, 1, 12345, 2 ** 52 - 1], [0, 1, 7, 10 ** 6], [0, 3, 99],
                                [0, 1, 999], indexing="ij")).reshape(4, -1).astype(np.float64)
    b2 = import_brian2()
    held = {}

    def make_network():
        g = b2.NeuronGroup(grid.shape[1], "s : 1\nex : 1\nunit : 1\nk : 1\nu : 1\nv : 1",
                           namespace={"crn_uniform": counter_rng.brian2_function(b2)},
                           name="crn_grid")
        g.s, g.ex, g.unit, g.k = grid
        g.run_regularly("u = crn_uniform(s, ex, unit, k)\n"
                        "v = crn_uniform(s, ex, i, t_in_timesteps + 41)", when="start")
        held["g"] = g
        return b2.Network(g)

    folder = build_folder(str(tmp_path / "build"))
    device = compile_standalone(folder, 0.1, make_network, 1, "report the failure")
    with standalone_device(0.1, device):
        device.run(with_output=False)
        u, v = np.asarray(held["g"].u[:]), np.asarray(held["g"].v[:])
    np.testing.assert_array_equal(u, counter_rng.uniform(*grid))
    idx = np.arange(grid.shape[1])
    np.testing.assert_array_equal(v, counter_rng.uniform(grid[0], grid[1], idx, 41))
    assert len(np.unique(u)) == len(u)


def test_counter_uniforms_are_uniform_and_decorrelated():
    """Sanity of the hash: 10^6 uniforms in [0, 1) over consecutive counters are flat (chi2
    over 50 bins), have mean 1/2 and variance 1/12, and neighbouring steps, units, examples
    and seeds are uncorrelated."""
    e, i, k = np.meshgrid(np.arange(10), np.arange(100), np.arange(1000), indexing="ij")
    u = counter_rng.uniform(7, e, i, k)
    assert u.min() >= 0.0 and u.max() < 1.0
    n = u.size
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 0.002
    counts = np.histogram(u, bins=50, range=(0, 1))[0]
    chi2 = float(np.sum((counts - n / 50) ** 2 / (n / 50)))
    assert chi2 < 49 + 5 * np.sqrt(2 * 49), chi2            # ~ chi2 with 49 dof
    for a, b in ((u[:, :, 1:], u[:, :, :-1]), (u[:, 1:], u[:, :-1]), (u[1:], u[:-1]),
                 (u, counter_rng.uniform(8, e, i, k))):
        r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert abs(r) < 5 / np.sqrt(a.size), r
    assert counter_rng.run_seed(5, 0) != counter_rng.run_seed(5, 1)
    assert counter_rng.run_seed(5, 1) == counter_rng.run_seed(5, 1) < 2 ** 52


def test_the_online_rule_equals_the_snapshot_rule_in_expectation(engine, snapshot):
    """Seeded statistical test in the compiled circuit: over independent draws (other runs'
    common noise for the two rules) the mean online update and the mean snapshot update
    differ by no more than their sampling error; on the same spikes (same run) they differ
    only by the Riemann sum's error; the online rule costs 2K / m rule operations per
    synapse and example instead of one."""
    online, snap = engine.circuit, snapshot["common"]
    assert online.params["rule"] == "online" and online.params["noise"] == "common"
    g_on = np.concatenate([_draws(online, r)[0] for r in (10, 11)])
    g_snap = np.concatenate([_draws(snap, r)[0] for r in (20, 21)])
    diff = g_on.mean(0) - g_snap.mean(0)
    se = np.sqrt((g_on.var(0, ddof=1) + g_snap.var(0, ddof=1)) / len(g_on))
    z2 = float(np.mean((diff / np.maximum(se, 1e-12)) ** 2))
    print("online - snapshot: mean squared z %.2f over %d parameters, |diff| / |mean| %.3f, "
          "mean se / |mean| %.3f" % (z2, diff.size, np.linalg.norm(diff)
                                     / np.linalg.norm(g_snap.mean(0)),
                                     np.linalg.norm(se) / np.linalg.norm(g_snap.mean(0))))
    assert z2 < 3.0, z2
    # the same run: the same spikes (the rule does not act on the dynamics at lr = 0)
    a, s_on = _draws(online, 10)
    b, s_snap = _draws(snap, 10)
    assert s_on["spikes"] == s_snap["spikes"]
    rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)
    print("same spikes: relative difference per batch, max %.4f" % rel.max())
    assert rel.max() < 0.05, rel
    synapses = sum(np.size(v) for k, v in online.net.params.items() if k.startswith("W:"))
    assert s_snap["rule_ops"] == synapses * N
    assert s_on["rule_ops"] == synapses * N * 2 * K


def test_common_random_numbers_cut_the_spread_at_equal_spikes(snapshot):
    """At beta 0.05 the seed-to-seed spread of the batch update (over the run's slots) is
    smaller with common random numbers than with independent streams, at the same spikes."""
    g, spikes = {}, {}
    for noise, c in snapshot.items():
        g[noise], stats = _draws(c, 0)
        spikes[noise] = sum(v["free"] + v["nudged"] for v in stats["spikes"].values())
    spread = {k: _spread(v) for k, v in g.items()}
    ratio = spread["independent"] / spread["common"]
    print("spread independent %.4g, common %.4g: ratio %.2f; spikes %s"
          % (spread["independent"], spread["common"], ratio, spikes))
    assert abs(spikes["common"] / spikes["independent"] - 1) < 0.02
    assert spread["common"] < spread["independent"]


def test_seeded_runs_reproduce_and_epochs_draw_new_noise(snapshot):
    """Two runs with the same seed and run index train to identical weights; the next run
    index (epoch) draws other spikes."""
    c = snapshot["common"]
    net = c.net
    start = {k: v.copy() for k, v in net.params.items()}
    x, y = _data()
    runs = []
    for r in (3, 3, 4):
        net.params.update({k: v.copy() for k, v in start.items()})
        c.train_epoch(x, y, lrs={k: 0.2 for k in net.params}, run=r)
        runs.append(_flat(net.params))
    net.params.update({k: v.copy() for k, v in start.items()})
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    assert not np.array_equal(runs[0], _flat(start))


def test_the_engine_resumes_common_noise_by_its_epoch_count(engine):
    """The engine's epoch counter picks the common noise: restoring its state_dict replays
    the epoch exactly; its counters carry the rule's operations."""
    net = engine.net
    start = {k: v.copy() for k, v in net.params.items()}
    x, y = _data()
    lrs = {k: 0.2 for k in net.params}
    saved = {k: v.copy() for k, v in engine.state_dict().items()}
    ops = engine.counters()["rule_ops"]
    outs = []
    for _ in range(2):
        net.params.update({k: v.copy() for k, v in start.items()})
        engine.train_epoch(x, y, np.ones(N), lrs, BATCH, record=range(SLOTS))
        outs.append(_flat(net.params))
    assert not np.array_equal(outs[0], outs[1])          # epochs draw other noise
    assert engine.counters()["rule_ops"] == ops + 2 * engine.circuit.stats["rule_ops"] > ops
    engine.load_state_dict(saved)
    net.params.update({k: v.copy() for k, v in start.items()})
    engine.train_epoch(x, y, np.ones(N), lrs, BATCH, record=range(SLOTS))
    np.testing.assert_array_equal(_flat(net.params), outs[0])
    net.params.update({k: v.copy() for k, v in start.items()})


def test_bad_rule_settings_are_named():
    net = _net()
    with pytest.raises(CircuitError, match="rule_every"):
        SpikingTrainingCircuit(net, 8, rule="online", rule_every=7, free_steps=100,
                               nudge_steps=100)
    with pytest.raises(CircuitError, match="noise"):
        SpikingTrainingCircuit(net, 8, noise="pink")
    with pytest.raises(CircuitError, match="rule"):
        SpikingTrainingCircuit(net, 8, rule="hebb")
    with pytest.raises(ConfigurationError, match="engine.rule_every"):
        engines.build("brian2-spiking", net, free_steps=100, nudge_steps=100,
                      plasticity="online", rule_every=7)
