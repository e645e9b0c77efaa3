"""Programming schemes (neurosim.hardware.programming): one_per_sign never lowers a device
except through a refresh, refreshes and their pulses are counted and checkpointed, uniform
asymmetry cancels in "both" and shows in "one_per_sign", per-device asymmetries spread as
asked, and every phase of an EP step sees its own read noise."""
import numpy as np
import pytest

import neurosim as ns
from neurosim import config, engines
from neurosim.errors import ConfigurationError
from neurosim.hardware import PRESETS, Crossbar, Device, cost, device_from_section
from neurosim.hardware.devices import MAX_ASYMMETRY
from neurosim.engines.devices import HardwareEngine, hardware_ep_step
from neurosim.training.optimizer import Optimizer
from neurosim.training.trainer import Trainer

KEY = "W:a->b"


def _crossbar(device, w=None, shape=(6, 7), seed=0, w_max=1.0):
    w = np.zeros(shape) if w is None else w
    return Crossbar({KEY: w}, device, seed=seed, w_max=w_max)


def _net(sizes=(4, 5, 3), seed=0):
    return ns.layered(list(sizes), activation="hard_sigmoid", seed=seed)


def _reference(net):
    return engines.build("reference", net, eps=0.5, free_steps=10, nudge_steps=4, beta=0.5,
                         variant="symmetric")


# -- the scheme as a field ---------------------------------------------------------------------
def test_scheme_is_a_field_with_per_preset_defaults():
    assert PRESETS["pcm"].scheme == "one_per_sign"
    assert all(PRESETS[p].scheme == "both" for p in ("ideal", "rram", "ecram"))
    c, _ = config.load(None, ['hardware.preset="rram"', 'hardware.scheme="one_per_sign"',
                              "hardware.asymmetry_spread=0.1"])
    d = device_from_section(c.hardware)
    assert d.scheme == "one_per_sign" and d.asymmetry_spread == 0.1 and d.levels == 64
    for bad, field in (('hardware.scheme="reset"', "hardware.scheme"),
                       ("hardware.asymmetry_spread=-1", "hardware.asymmetry_spread")):
        with pytest.raises(ConfigurationError, match=field.replace(".", r"\.")):
            config.load(None, [bad])
    with pytest.raises(ConfigurationError, match=r"hardware\.scheme"):
        Device(scheme="both_ways")
    with pytest.raises(ConfigurationError, match=r"hardware\.asymmetry_spread"):
        Device(asymmetry_spread=float("nan"))


def test_one_per_sign_starts_each_weight_on_the_device_of_its_sign():
    w = np.array([[0.5, -0.25, 0.0]])
    cb = _crossbar(Device(scheme="one_per_sign", levels=0, c2c_noise=1e-12), w)
    g = cb.conductances(KEY)
    assert np.allclose(g[0], [0.5, 0.0, 0.0]) and np.allclose(g[1], [0.0, 0.25, 0.0])
    assert np.allclose(cb.weights()[KEY], w)


# -- one_per_sign: SET only, refresh at the bound --------------------------------------------
def test_one_per_sign_never_lowers_a_device_except_through_a_refresh():
    dev = Device(scheme="one_per_sign", levels=16, d2d_variability=0.2, c2c_noise=0.5,
                 asymmetry=0.2, asymmetry_spread=0.1, soft_bounds=True, g_min=0.1, g_max=5.0)
    rng = np.random.default_rng(0)
    cb = _crossbar(dev, rng.uniform(-0.4, 0.4, (8, 9)), shape=(8, 9))
    g = cb.conductances(KEY)
    refreshed_pairs = 0
    for i in range(300):
        before = cb.refreshes[KEY]
        cb.program({KEY: rng.normal(0.0, 0.15, (8, 9))}, rng)
        g1 = cb.conductances(KEY)
        down = (g1 < g - 1e-12).any(axis=0)          # pairs where a device went down
        assert cb.refreshes[KEY] - before == down.sum(), i
        # a refreshed pair: both RESET, the weight on one device, the other at g_min
        assert np.all(g1[:, down].min(axis=0) == dev.g_min), i
        refreshed_pairs += int(down.sum())
        g = g1
    assert refreshed_pairs > 50 and cb.refreshes[KEY] == refreshed_pairs
    assert 0 < cb.refresh_pulses[KEY] < cb.pulses[KEY]


def test_a_refresh_rewrites_the_weight_and_counts_its_pulses():
    dev = Device(scheme="one_per_sign", levels=11)       # step = range / 10, w_max = 1
    cb = _crossbar(dev, shape=(2, 3))
    rng = np.random.default_rng(0)
    assert cb.program({KEY: np.full((2, 3), 0.5)}, rng) == 5 * 6     # G+ up 5 steps
    assert cb.program({KEY: np.full((2, 3), -0.3)}, rng) == 3 * 6    # G- up 3 steps
    g = cb.conductances(KEY)
    assert np.allclose(g[0], 0.5) and np.allclose(g[1], 0.3) and cb.refreshes_total == 0
    # G+ would pass g_max (0.5 + 0.6): read 0.2, RESET both, write 0.8 onto G+
    assert cb.program({KEY: np.full((2, 3), 0.6)}, rng) == (2 + 8) * 6
    g = cb.conductances(KEY)
    assert np.allclose(g[0], 0.8) and np.all(g[1] == 0.0)
    assert np.allclose(cb.weights()[KEY], 0.8)
    assert cb.refreshes == {KEY: 6} and cb.refresh_pulses == {KEY: 60}
    assert cb.pulses == {KEY: 30 + 18 + 60}
    # at the bound with nothing to free (G- at g_min): no refresh, G+ saturates
    cb.program({KEY: np.full((2, 3), 0.5)}, rng)
    assert cb.refreshes_total == 6 and np.allclose(cb.conductances(KEY)[0], 1.0)


def test_refresh_counters_and_draws_survive_a_checkpoint():
    dev = Device(scheme="one_per_sign", levels=16, c2c_noise=0.3, asymmetry_spread=0.2,
                 read_noise=0.02)
    w = np.random.default_rng(0).normal(0, 0.3, (6, 7))
    a, b = _crossbar(dev, w, seed=1), _crossbar(dev, w, seed=2)
    rng = np.random.default_rng(5)
    for _ in range(40):
        a.program({KEY: rng.normal(0, 0.2, (6, 7))}, rng)
    assert a.refreshes_total > 0
    state = a.state_dict()
    assert "asym/" + KEY in state and "refreshes/" + KEY in state
    b.load_state_dict(state)
    assert np.array_equal(a.asymmetries(KEY), b.asymmetries(KEY))
    for x in (a, b):
        r = np.random.default_rng(9)
        for _ in range(20):
            x.program({KEY: r.normal(0, 0.2, (6, 7))}, r)
    assert np.array_equal(a.conductances(KEY), b.conductances(KEY))
    assert (a.pulses, a.refreshes, a.refresh_pulses) == (b.pulses, b.refreshes, b.refresh_pulses)
    old = {k: v for k, v in state.items() if not k.startswith("refresh")}   # older state
    c = _crossbar(dev, w, seed=1)
    c.load_state_dict(old)
    assert c.refreshes_total == 0 and c.pulses == {KEY: int(state["pulses/" + KEY])}


def test_refreshes_reach_the_engine_counters_and_the_cost_model():
    net = _net((64, 16, 10))
    dev = Device(scheme="one_per_sign", levels=8, w_max=0.5)
    eng = HardwareEngine(_reference(net), dev, seed=0)
    data = ns.datasets.load("digits", limit_train=100, limit_test=20)
    tr = Trainer(eng, data, lr=[0.5, 0.25], epochs=2, batch_size=20, fidelity_batches=0,
                 progress=False)
    tr.fit()
    c = eng.counters()
    assert c["refreshes"] == eng.crossbar.refreshes_total > 0
    assert c["pulses"] == eng.crossbar.pulses_total > c["refresh_pulses"] > 0
    r = cost.CostModel.for_engine(eng, batch_size=20).report(tr.meter)
    upd = r["by_epoch"]["update"]
    assert sum(upd["refreshes"]) == c["refreshes"] and sum(upd["pulses"]) == c["pulses"]
    assert r["per_epoch"]["update"]["latency_ns"] > 0


# -- asymmetry -----------------------------------------------------------------------------
def _up_down(scheme, **kw):
    """The weight change of +0.1 and of -0.1 from weight 0 (separate fresh crossbars)."""
    dev = Device(scheme=scheme, c2c_noise=1e-12, **kw)
    out = []
    for dw in (0.1, -0.1):
        cb = _crossbar(dev, shape=(20, 20))
        w0 = cb.weights()[KEY]
        cb.program({KEY: np.full((20, 20), dw)}, np.random.default_rng(0))
        out.append(cb.weights()[KEY] - w0)
    return out[0], out[1], cb


def test_uniform_asymmetry_cancels_in_both_and_shows_in_one_per_sign():
    a = 0.5
    up, down, _ = _up_down("both", asymmetry=a)
    assert np.allclose(up, 0.1) and np.allclose(down, -0.1)          # the pair cancels it
    up, down, _ = _up_down("one_per_sign", asymmetry=a)
    assert np.allclose(up, (1 + a) * 0.1) and np.allclose(down, -(1 + a) * 0.1)
    # per-device asymmetries: one device per sign, so up and down differ pair by pair
    up, down, cb = _up_down("one_per_sign", asymmetry=0.2, asymmetry_spread=0.2)
    ap, am = cb.asymmetries(KEY)
    assert np.allclose(up / -down, (1 + ap) / (1 + am))
    assert np.std(up / -down) > 0.1


def test_asymmetry_spread_draws_per_device_asymmetries_with_the_requested_std():
    dev = Device(asymmetry=0.2, asymmetry_spread=0.1, levels=32)
    cb = _crossbar(dev, shape=(60, 60))
    a = cb.asymmetries(KEY)
    assert a.shape == (2, 60, 60)
    assert np.mean(a) == pytest.approx(0.2, abs=0.005)
    assert np.std(a) == pytest.approx(0.1, rel=0.03)
    assert np.array_equal(a, _crossbar(dev, shape=(60, 60)).asymmetries(KEY))   # the seed's
    assert not np.array_equal(a, _crossbar(dev, shape=(60, 60), seed=1).asymmetries(KEY))
    wide = _crossbar(Device(asymmetry=0.5, asymmetry_spread=2.0), shape=(30, 30))
    aw = wide.asymmetries(KEY)
    assert np.max(np.abs(aw)) == MAX_ASYMMETRY and np.mean(np.abs(aw) == MAX_ASYMMETRY) > 0.3
    assert np.all(_crossbar(Device(asymmetry=0.3, levels=8)).asymmetries(KEY) == 0.3)


# -- read noise: one read per phase ----------------------------------------------------------
def test_every_phase_reads_the_weights_with_its_own_noise():
    """The engine's estimate is the EP step with one fresh read before each phase (replayed
    here from a crossbar and random stream in the same state), and the three reads differ."""
    net = _net()
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (6, 4)), rng.uniform(0, 1, (6, 3))
    dev = Device(read_noise=0.05, levels=64)
    replay_net = net.copy()                             # as built: the same crossbar
    replay = Crossbar.from_network(replay_net, dev, seed=4)
    eng = HardwareEngine(_reference(net), dev, seed=4)
    replay_rng = np.random.default_rng([4, 1])          # the engine's stream, as built
    reads = []

    def read():
        w = replay.read(replay_rng)
        reads.append(w)
        for k, v in w.items():
            replay_net.params[k][...] = v

    g = eng.estimate(x, y)
    want = hardware_ep_step(replay_net, x, y, 0.5, "symmetric", eps=0.5, free_steps=10,
                            nudge_steps=4, read=read)
    assert eng.counts["reads"] == len(reads) == 3
    for k in g:
        assert np.array_equal(g[k], want[k]), k
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert not np.array_equal(reads[i]["W:x->h1"], reads[j]["W:x->h1"])
    for k, v in eng.crossbar.weights().items():                     # stored weights again
        assert np.array_equal(net.params[k], v)
    # one read for every phase is another estimate
    one = hardware_ep_step(replay_net, x, y, 0.5, "symmetric", eps=0.5, free_steps=10,
                           nudge_steps=4)
    assert not np.array_equal(one["W:x->h1"], g["W:x->h1"])


def test_without_read_noise_phase_reads_change_nothing():
    """No read noise: the per-phase reads are the stored weights, and the step equals the
    reference engine's at those weights bit for bit (block sweeps too)."""
    net = _net()
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (5, 4)), rng.uniform(0, 1, (5, 3))
    for solver in ("euler", "block"):
        dev = Device(levels=32)
        inner = engines.build("reference", net.copy(), eps=0.5, free_steps=10, nudge_steps=4,
                              beta=0.5, variant="random_sign", solver=solver)
        eng = HardwareEngine(inner, dev, seed=0)
        ref = engines.build("reference", eng.net.copy(), eps=0.5, free_steps=10,
                            nudge_steps=4, beta=0.5, variant="random_sign", solver=solver)
        g, g_ref = eng.estimate(x, y, rng=3), ref.estimate(x, y, rng=3)
        assert eng.counts["reads"] == 2                      # free and one nudged phase
        for k in g_ref:
            assert np.array_equal(g[k], g_ref[k]), (solver, k)
        opt = Optimizer({k: 0.1 for k in net.params}, momentum=0.0)
        eng.step(x, y, opt, rng=3)
        assert eng.crossbar.pulses_total > 0


def test_a_device_state_written_before_the_new_fields_still_loads():
    """Checkpoints written before ``scheme``, ``asymmetry_spread``, ``r_wire`` and
    ``tile_size`` existed had "both", 0, 0, 0: they resume on such a device, and the pcm of
    then (asymmetry 0.5 on both devices) is refused by today's pcm, naming the fields."""
    import json
    from neurosim.engines.devices import LEGACY_DEVICE_FIELDS
    net = _net()
    eng = HardwareEngine(_reference(net), PRESETS["rram"], seed=0)
    state = eng.state_dict()
    dev = json.loads(str(state["device"]))
    old = {k: v for k, v in dev.items() if k not in LEGACY_DEVICE_FIELDS}
    state["device"] = np.array(json.dumps(old, sort_keys=True))
    HardwareEngine(_reference(net.copy()), PRESETS["rram"], seed=0).load_state_dict(state)
    old_pcm = {f: getattr(PRESETS["pcm"], f) for f in dev if f not in LEGACY_DEVICE_FIELDS}
    old_pcm["asymmetry"] = 0.5
    state["device"] = np.array(json.dumps(old_pcm, sort_keys=True))
    with pytest.raises(ValueError, match=r"hardware\.asymmetry, hardware\.scheme"):
        HardwareEngine(_reference(net.copy()), PRESETS["pcm"], seed=0).load_state_dict(state)
