"""Device non-idealities (neurosim.hardware, neurosim.engines.devices): the ideal device is
the reference engine bit for bit; each non-ideality changes what it should and nothing else;
errors name the circuit-file field; presets run from a circuit file."""
import dataclasses
import json
import signal
import typing

import numpy as np
import pytest

import neurosim as ns
from neurosim import config, engines
from neurosim.engines.reference import ep_step
from neurosim.errors import ConfigurationError
from neurosim.commands.run import build_engine
from neurosim.config import build_network
from neurosim.hardware import (CONTINUOUS_STEPS, FIELDS, PRESETS, Crossbar, Device,
                                       device_from_section, quantize)
from neurosim.engines.devices import HardwareEngine, hardware_ep_step, wrap
from neurosim.training.optimizer import Optimizer
from neurosim.training.trainer import Interrupted, Trainer


def _net(sizes=(4, 5, 3), seed=0):
    return ns.layered(list(sizes), activation="hard_sigmoid", seed=seed)


def _batch(net, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (n, net.sizes[net.inputs[0]])),
            rng.uniform(0, 1, (n, net.sizes[net.outputs[0]])))


def _reference(net, **settings):
    """The reference engine with the tests' phases (settings as circuit-file fields)."""
    kw = dict(eps=0.5, free_steps=10, nudge_steps=4, beta=0.5, variant="symmetric")
    kw.update(settings)
    return engines.build("reference", net, **kw)


def _sgd(net, lr):
    """Plain SGD with one learning rate for every parameter."""
    return Optimizer({k: lr for k in net.params}, momentum=0.0)


def _digits():
    return ns.datasets.load("digits", limit_train=100, limit_test=40)


def _train(device=None, momentum=0.0, fidelity=1, seed=0):
    net = _net((64, 16, 10))
    eng = _reference(net)
    if device is not None:
        eng = HardwareEngine(eng, device, seed=seed)
    tr = Trainer(eng, _digits(), lr=[0.1, 0.05], momentum=momentum, epochs=1,
                 batch_size=20, fidelity_batches=fidelity, progress=False)
    tr.fit()
    return net, tr


def _crossbar(device, w=None, shape=(6, 7), seed=0, w_max=1.0):
    w = np.zeros(shape) if w is None else w
    return Crossbar({"W:a->b": w}, device, seed=seed, w_max=w_max)


# -- the device description ------------------------------------------------------------------
def test_presets_match_the_circuit_file_section():
    section = config.HardwareSection.model_fields
    assert set(FIELDS) == set(section) - {"preset", "seed"}
    assert set(PRESETS) == set(typing.get_args(section["preset"].annotation))
    assert PRESETS["ideal"].is_ideal and PRESETS["ideal"] == Device()
    for name in ("rram", "pcm", "ecram"):
        d = PRESETS[name]
        assert not d.weight_ideal and d.dynamics_ideal and not d.dac_bits, name
    assert PRESETS["pcm"].drift_nu == 0.05 and PRESETS["ecram"].asymmetry == 0
    d = device_from_section(config.HardwareSection(preset="pcm", levels=50, adc_bits=6))
    assert d == dataclasses.replace(PRESETS["pcm"], levels=50, adc_bits=6)
    assert device_from_section(None) == Device()


@pytest.mark.parametrize("changes, field", [
    (dict(g_min=5.0, g_max=2.0), "hardware.g_max: must be greater than hardware.g_min"),
    (dict(levels=1), "hardware.levels"),
    (dict(asymmetry=1.0), "hardware.asymmetry"),
    (dict(stuck_fraction=1.5), "hardware.stuck_fraction"),
    (dict(dac_bits=2.5), "hardware.dac_bits"),
    (dict(read_noise=-0.1), "hardware.read_noise"),
    (dict(w_max=0.0), "hardware.w_max"),
])
def test_bad_values_name_the_field(changes, field):
    with pytest.raises(ConfigurationError, match=field.replace(".", r"\.")):
        Device(**changes)


@pytest.mark.parametrize("overrides, fields", [
    (["hardware.derivative_tau=1.0"], ["hardware.derivative_tau", "engine.solver"]),
    (["hardware.adc_bits=6", "engine.solver=\"euler\"", "network.dynamics=\"vector_field\""],
     ["hardware.adc_bits", "network.dynamics"]),
    (["hardware.tau_mismatch=0.1", "engine.name=\"brian2-spiking\"", "engine.solver=\"euler\""],
     ["hardware.tau_mismatch", "brian2-spiking"]),
    (["hardware.derivative_tau=1.0", "engine.solver=\"euler\"", "learning.rule=\"rbp\""],
     ["hardware.derivative_tau", "learning.rule"]),
])
def test_unsupported_combinations_name_the_field(overrides, fields):
    circuit, _ = config.load(None, overrides)
    with pytest.raises(ConfigurationError) as e:
        build_engine(circuit, build_network(circuit.network))
    for f in fields:
        assert f in str(e.value)


# -- the ideal device ----------------------------------------------------------------------
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_ideal_device_reproduces_the_reference_engine_bit_for_bit(momentum):
    ref, tr_ref = _train(None, momentum)
    hw, tr_hw = _train(PRESETS["ideal"], momentum)
    assert isinstance(tr_hw.engine, HardwareEngine)
    for k in ref.params:
        assert np.array_equal(ref.params[k], hw.params[k]), k
    assert tr_ref.history["test_accuracy"] == tr_hw.history["test_accuracy"]
    assert tr_ref.fidelity["cosine/all"] == tr_hw.fidelity["cosine/all"]


def test_wrap_keeps_the_ideal_path_unless_forced():
    circuit, _ = config.load(None, ["engine.solver=\"euler\""])
    eng = engines.build("reference", build_network(circuit.network), solver="euler")
    assert wrap(circuit, eng) is eng
    assert isinstance(wrap(circuit, eng, force=True), HardwareEngine)
    rram, _ = config.load(None, ["hardware.preset=\"rram\""])
    wrapped = wrap(rram, eng)
    assert isinstance(wrapped, HardwareEngine) and wrapped.device == PRESETS["rram"]


# -- the crossbar: each non-ideality does what it should and nothing else ------------------
@pytest.mark.parametrize("levels", [2, 5])
def test_n_levels_give_at_most_n_conductances_per_device(levels):
    dev = Device(levels=levels, d2d_variability=0.3, c2c_noise=0.5, asymmetry=0.3,
                 soft_bounds=True)
    rng = np.random.default_rng(1)
    cb = _crossbar(dev, rng.uniform(-1, 1, (6, 7)))
    seen = [cb.conductances("W:a->b")]
    for _ in range(40):
        cb.program({"W:a->b": rng.normal(0, 0.3, (6, 7))}, rng)
        seen.append(cb.conductances("W:a->b"))
    seen = np.stack(seen)                                  # (time, 2, 6, 7)
    distinct = [len(np.unique(seen[:, i, j, k])) for i in range(2) for j in range(6)
                for k in range(7)]
    assert max(distinct) <= levels and max(distinct) >= 2


def test_pulses_are_counted_per_key():
    cb = _crossbar(Device(levels=11))                      # step = range / 10, w_max = 1
    rng = np.random.default_rng(0)
    n = cb.program({"W:a->b": np.full((6, 7), 0.4)}, rng)   # 0.2 range = 2 pulses per device
    assert n == cb.pulses["W:a->b"] == cb.pulses_total == 2 * 2 * 42
    assert np.allclose(cb.weights()["W:a->b"], 0.4)


def test_read_noise_changes_reads_not_the_stored_conductances():
    rng = np.random.default_rng(0)
    cb = _crossbar(Device(read_noise=0.05), rng.uniform(-0.5, 0.5, (30, 30)))
    g, w = cb.conductances("W:a->b"), cb.weights()["W:a->b"]
    r1, r2 = cb.read(rng)["W:a->b"], cb.read(rng)["W:a->b"]
    assert not np.array_equal(r1, w) and not np.array_equal(r1, r2)
    assert np.std(r1 - w) == pytest.approx(0.05 * np.sqrt(2), rel=0.15)   # w_max = 1
    assert np.array_equal(cb.conductances("W:a->b"), g)
    assert np.array_equal(cb.weights()["W:a->b"], w)


def test_c2c_noise_changes_programmed_steps_not_reads():
    rng = np.random.default_rng(0)
    dw = {"W:a->b": np.full((20, 20), 0.1)}                 # 500 pulses per device
    quiet, noisy = _crossbar(Device(c2c_noise=1e-12), shape=(20, 20)), \
        _crossbar(Device(c2c_noise=0.5), shape=(20, 20))
    assert np.array_equal(quiet.conductances("W:a->b"), noisy.conductances("W:a->b"))
    quiet.program(dw, np.random.default_rng(1))
    noisy.program(dw, np.random.default_rng(1))
    step_q = quiet.conductances("W:a->b")[0] - 0.5
    step_n = noisy.conductances("W:a->b")[0] - 0.5
    assert np.ptp(step_q) < 1e-9 and np.std(step_n / step_q) == pytest.approx(
        0.5 / np.sqrt(500), rel=0.3)
    assert np.array_equal(noisy.read(rng)["W:a->b"], noisy.weights()["W:a->b"])


def test_stuck_devices_never_move():
    rng = np.random.default_rng(0)
    dev = Device(stuck_fraction=0.3, levels=32)
    cb = _crossbar(dev, rng.uniform(-0.5, 0.5, (10, 10)))
    stuck = cb.stuck_mask("W:a->b")
    g0 = cb.conductances("W:a->b")
    assert 0.2 < stuck.mean() < 0.4
    assert np.all(np.isin(g0[stuck], [dev.g_min, dev.g_max]))
    for _ in range(10):
        cb.program({"W:a->b": rng.normal(0, 0.3, (10, 10))}, rng)
    g1 = cb.conductances("W:a->b")
    assert np.array_equal(g1[stuck], g0[stuck]) and np.any(g1[~stuck] != g0[~stuck])


def test_asymmetry_makes_up_and_down_steps_differ():
    a = 0.5
    cb = _crossbar(Device(asymmetry=a, c2c_noise=1e-12), shape=(3, 3))
    rng = np.random.default_rng(0)
    g0 = cb.conductances("W:a->b")
    cb.program({"W:a->b": np.full((3, 3), 0.1)}, rng)      # G+ up, G- down
    g1 = cb.conductances("W:a->b")
    cb.program({"W:a->b": np.full((3, 3), -0.1)}, rng)     # G+ down, G- up
    g2 = cb.conductances("W:a->b")
    up, down = g1[0] - g0[0], g1[0] - g2[0]
    assert np.allclose(up / down, (1 + a) / (1 - a))
    assert np.allclose(cb.weights()["W:a->b"], 0.0, atol=1e-12)   # the pair cancels it
    assert np.all(g2.sum(axis=0) > g0.sum(axis=0))                # common mode creeps up
    sym = _crossbar(Device(c2c_noise=1e-12), shape=(3, 3))
    sym.program({"W:a->b": np.full((3, 3), 0.1)}, rng)
    assert np.allclose(sym.conductances("W:a->b")[0] - g0[0], 0.1 * 0.5 * 1.0)


def test_soft_bounds_shrink_steps_near_the_bound():
    w0 = np.array([[0.0, 0.9, -0.9]])                       # G+ at mid, near g_max, near g_min
    rng = np.random.default_rng(0)
    hard = _crossbar(Device(c2c_noise=1e-12), w0)
    soft = _crossbar(Device(soft_bounds=True), w0)
    up = {}
    for name, cb in (("hard", hard), ("soft", soft)):
        g0 = cb.conductances("W:a->b")
        cb.program({"W:a->b": np.full((1, 3), 0.01)}, rng)
        up[name] = (cb.conductances("W:a->b") - g0)[0, 0]    # G+ potentiated
    assert np.allclose(up["hard"], 0.005)
    assert up["soft"][1] < 0.2 * up["soft"][0] < 0.2 * up["hard"][0]
    assert up["soft"][2] > up["soft"][0]                    # far from g_max: larger step


def test_drift_lowers_conductance_over_time_and_programming_restarts_it():
    dev = Device(drift_nu=0.1, drift_t0=1.0, g_min=0.1, g_max=10.0)
    rng = np.random.default_rng(0)
    cb = _crossbar(dev, rng.uniform(-0.5, 0.5, (4, 4)))
    g, w = cb.conductances("W:a->b"), cb.weights()["W:a->b"]
    cb.advance(100.0)
    f = 100.0 ** -0.1
    assert np.allclose(cb.conductances("W:a->b", drifted=True), g * f)
    assert np.array_equal(cb.conductances("W:a->b"), g)           # as programmed
    assert np.allclose(cb.weights()["W:a->b"], w * f)
    dw = np.zeros((4, 4))
    dw[0, 0] = 0.05
    cb.program({"W:a->b": dw}, rng)
    gd = cb.conductances("W:a->b", drifted=True)
    assert np.allclose(gd[:, 0, 0], g[:, 0, 0] * f + [0.05 * 0.5 * 9.9, -0.05 * 0.5 * 9.9],
                       atol=2 * 9.9 / CONTINUOUS_STEPS)           # acted on the drifted value
    assert np.allclose(gd[:, 1:, :], g[:, 1:, :] * f)


def test_lateral_matrices_stay_symmetric_with_zero_diagonal():
    import networkx as nx
    gr = nx.DiGraph()
    gr.add_node("x", size=4, role="input")
    gr.add_node("h", size=5, role="hidden")
    gr.add_node("y", size=3, role="output")
    gr.add_edges_from([("x", "h"), ("h", "h"), ("h", "y")])
    net = ns.Network.from_graph(gr, activation="hard_sigmoid", seed=0)
    x, y = _batch(net)
    eng = HardwareEngine(_reference(net), PRESETS["rram"], seed=0)
    opt = _sgd(net, 0.2)
    for _ in range(3):
        eng.step(x, y, opt)
    w = net.params["W:h->h"]
    assert np.array_equal(w, w.T) and not np.any(np.diag(w)) and eng.crossbar.pulses_total > 0


# -- the engine ------------------------------------------------------------------------------
def test_step_reads_programs_and_leaves_the_stored_weights():
    net = _net()
    x, y = _batch(net)
    eng = engines.build("reference", net, hardware=PRESETS["rram"], hardware_seed=3, eps=0.5,
                        free_steps=10, nudge_steps=4, beta=0.5, variant="symmetric")
    assert isinstance(eng, HardwareEngine) and eng.seed == 3
    g = eng.step(x, y, _sgd(net, 0.1), want_estimate=True).estimate
    assert set(g) == set(net.params) and eng.crossbar.pulses_total > 0
    for k, v in eng.crossbar.weights().items():
        assert np.array_equal(net.params[k], v)
    assert eng.counts["reads"] == 3      # one read per phase: free, +beta, -beta


def test_optimizer_updates_between_steps_are_programmed():
    """With momentum the optimizer's update (not -lr g) is what the engine programs."""
    dev = Device(c2c_noise=1e-12, w_max=1.0)   # continuous, bounded far away: nearly ideal
    ref0, _ = _train(None, 0.0, fidelity=0)
    ref9, _ = _train(None, 0.9, fidelity=0)
    hw9, tr = _train(dev, 0.9, fidelity=0)

    def dist(a, b):
        return np.sqrt(sum(np.sum((a.params[k] - b.params[k]) ** 2) for k in a.params))
    assert dist(hw9, ref9) < 0.02 * dist(ref9, ref0)
    assert tr.engine.crossbar.pulses_total > 0


def test_dac_quantizes_inputs():
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.2, 1.2, (50, 4))
    q = quantize(x, 2)
    assert set(np.unique(q)) <= {0.0, 1 / 3, 2 / 3, 1.0} and len(np.unique(q)) == 4
    assert quantize(x, 0) is x
    net = _net()
    xb, y = _batch(net)
    eng = HardwareEngine(_reference(net), Device(dac_bits=2), seed=0)
    ref = _reference(net.copy())
    s, s_ref = eng.infer(xb), ref.infer(quantize(xb, 2))
    assert all(np.array_equal(s[p], s_ref[p]) for p in s)
    assert not all(np.array_equal(s[p], ref.infer(xb)[p]) for p in s)
    g_ref = {}
    g = eng.step(xb, y, _sgd(net, 0.0), want_estimate=True).estimate
    ep_step(net.copy(), quantize(xb, 2), y, 0.5, 0.0, eps=0.5, free_steps=10, nudge_steps=4,
            grad_out=g_ref, variant="symmetric")
    assert all(np.array_equal(g[k], g_ref[k]) for k in g)


def test_adc_quantizes_the_states_read_out():
    net = _net((64, 16, 10))
    d = _digits()
    eng = HardwareEngine(_reference(net), Device(adc_bits=3), seed=0)
    s = eng.infer(d.x_train)
    assert all(len(np.unique(v)) <= 8 for v in s.values())
    res = eng.step(d.x_train[:20], d.y_train[:20], _sgd(net, 0.0))
    assert all(np.all(np.isin(v, np.arange(8) / 7)) for v in res.state.values())
    g8, g_ideal, g1 = (hardware_ep_step(net, d.x_train, d.y_train, 0.5, eps=0.5, free_steps=10,
                                        nudge_steps=4, adc_bits=bits) for bits in (8, 0, 1))
    cos8 = ns.fidelity.compare(g8, g_ideal)["cosine"]
    assert ns.fidelity.compare(g1, g_ideal)["cosine"] < cos8 < 1.0


@pytest.mark.parametrize("variant", ["symmetric", "one_sided"])
def test_derivative_tau_lowers_the_cosine_to_the_ideal_update(variant):
    net = _net((64, 16, 10))
    d = _digits()
    x, y = d.x_train[:20], d.y_train[:20]
    ref = {}
    ep_step(net.copy(), x, y, 0.5, 0.0, eps=0.5, free_steps=20, nudge_steps=8, variant=variant,
            grad_out=ref)
    cos = []
    for tau in (0.0, 0.5, 2.0, 8.0):
        g = hardware_ep_step(net, x, y, 0.5, variant, eps=0.5, free_steps=20, nudge_steps=8,
                             derivative_tau=tau)
        if tau == 0.0:
            assert all(np.array_equal(g[k], ref[k]) for k in ref)   # exactly the ideal update
        cos.append(ns.fidelity.compare(g, ref)["cosine"])
    assert cos[0] == pytest.approx(1.0) and all(a > b for a, b in zip(cos, cos[1:]))
    assert cos[-1] < 0.999


def test_tau_mismatch_keeps_the_free_fixed_point():
    net = _net()
    x, _ = _batch(net)
    dev = Device(tau_mismatch=0.3)
    for steps, same in ((3000, True), (5, False)):
        ideal = engines.build("reference", net, eps=0.2, free_steps=steps).infer(x)
        hw = HardwareEngine(engines.build("reference", net.copy(), eps=0.2, free_steps=steps),
                            dev, seed=0)
        assert np.ptp(np.concatenate(list(hw.eps_scale.values()))) > 0.1
        got = hw.infer(x)
        err = max(float(np.max(np.abs(got[p] - ideal[p]))) for p in got)
        assert (err < 1e-10) if same else (err > 1e-3)


def test_spiking_engine_on_devices():
    net = _net()
    x, y = _batch(net)
    eng = engines.build("brian2-spiking", net, eps=0.1, free_steps=40, nudge_steps=40, seed=1,
                        beta=0.5, variant="symmetric",
                        hardware=Device(levels=64, read_noise=0.01, dac_bits=4), hardware_seed=0)
    assert isinstance(eng, HardwareEngine) and eng.inner.name == "brian2-spiking"
    g = eng.step(x, y, _sgd(net, 0.5), want_estimate=True).estimate
    assert set(g) == set(net.params) and eng.crossbar.pulses_total > 0
    counts = eng.counters()
    assert isinstance(counts["synaptic_events"], dict) and counts["dac"] == x.size
    for k, v in eng.crossbar.weights().items():
        assert np.array_equal(net.params[k], v)


@pytest.mark.slow
def test_brian2_rate_engine_on_devices_runs_one_batch_per_circuit_run(tmp_path):
    """The per-batch circuit's update equals the reference update at the DAC'd inputs,
    for full and padded (shorter) batches and random signs."""
    net = _net()
    x, y = _batch(net)
    inner = engines.build("brian2-rate", net, eps=0.5, free_steps=20, nudge_steps=4, beta=0.5,
                          variant="random_sign", build_dir=str(tmp_path / "build"),
                          batch_size=x.shape[0])
    eng = HardwareEngine(inner, Device(dac_bits=6), seed=0)
    try:
        for m, r in ((6, 3), (4, 4)):
            ref = {}
            g = eng.estimate(x[:m], y[:m], rng=r)
            ep_step(net.copy(), quantize(x[:m], 6), y[:m], 0.5, 0.0, eps=0.5, free_steps=20,
                    nudge_steps=4, variant="random_sign", rng=r, grad_out=ref)
            assert max(float(np.max(np.abs(g[k] - ref[k]))) for k in g) < 1e-12
    finally:
        eng.close()


# -- checkpoints -----------------------------------------------------------------------------
def _hw_trainer(ck, preset="rram", device=None):
    net = _net((64, 16, 10))
    eng = _reference(net)
    if preset is not None:
        eng = HardwareEngine(eng, device or PRESETS[preset], seed=3)
    data = ns.datasets.load("digits", limit_train=200, limit_test=40)
    return Trainer(eng, data, lr=[0.1, 0.05], momentum=0.5, epochs=2, batch_size=20,
                   fidelity_batches=1, checkpoint_every=3, checkpoint=ck, progress=False)


@pytest.mark.parametrize("device", [PRESETS["rram"].replace(stuck_fraction=0.2), PRESETS["pcm"],
                                    Device(dac_bits=4)])
def test_crossbar_state_carries_every_device_draw(device):
    """A crossbar built with other draws (seed) takes the state and then evolves identically."""
    w = np.random.default_rng(0).normal(0, 0.3, (6, 7))
    a, b = _crossbar(device, w, seed=1), _crossbar(device, w, seed=2)
    for i in range(3):
        a.program({"W:a->b": np.full((6, 7), 0.05 * (-1) ** i)}, np.random.default_rng(i))
        a.advance(30.0)
    state = a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    b.load_state_dict(state)
    for x in (a, b):
        x.program({"W:a->b": np.full((6, 7), 0.1)}, np.random.default_rng(9))
        x.advance(30.0)
    for drifted in (False, True):
        assert np.array_equal(a.conductances("W:a->b", drifted),
                              b.conductances("W:a->b", drifted))
    assert np.array_equal(a.stuck_mask("W:a->b"), b.stuck_mask("W:a->b"))
    assert a.pulses == b.pulses and a.time == b.time == 120.0
    with pytest.raises(ValueError, match="shape"):
        _crossbar(device, np.zeros((3, 3))).load_state_dict(state)


def _interrupted(ck, preset, device, stop_at):
    """A run stopped by its SIGINT handler after batch ``stop_at = (epoch, batch)``."""
    tr = _hw_trainer(ck, preset, device)
    train_batch = tr._train_batch

    def batch(idx, epoch, b, fidelity):
        out = train_batch(idx, epoch, b, fidelity)
        if (epoch, b) == stop_at:
            tr._signal(signal.SIGINT, None)
        return out
    tr._train_batch = batch
    with pytest.raises(Interrupted):
        tr.fit()
    return tr


@pytest.mark.parametrize("preset, stop_at", [("rram", (0, 4)), ("pcm", (1, 2))])
def test_resume_on_devices_ends_with_the_uninterrupted_weights_and_conductances(
        tmp_path, preset, stop_at):
    """Stuck devices and d2d draws (rram), drift (pcm, 30 s a batch: past t0 = 20 s),
    momentum (an update pending at the checkpoint) and the fidelity batch's immediate
    programming: a run interrupted mid-epoch and resumed in a fresh Trainer and engine ends
    exactly where an uninterrupted one does."""
    dev = PRESETS["pcm"].replace(seconds_per_batch=30.0) if preset == "pcm" else None
    full = _hw_trainer(str(tmp_path / "full.npz"), preset, dev)
    full.fit()
    ck = str(tmp_path / "ck.npz")
    _interrupted(ck, preset, dev, stop_at)
    res = _hw_trainer(str(tmp_path / "res.npz"), preset, dev)
    res.load(ck)
    assert (res.epoch, res.batch) == (stop_at[0], stop_at[1] + 1)
    assert res.engine.crossbar is not None and res.engine.crossbar.pulses_total > 0
    res.fit()
    for k in full.net.params:
        assert np.array_equal(res.net.params[k], full.net.params[k]), k
        for drifted in (False, True):
            assert np.array_equal(res.engine.crossbar.conductances(k, drifted),
                                  full.engine.crossbar.conductances(k, drifted)), k
    a, b = res.engine.state_dict(), full.engine.state_dict()
    assert set(a) == set(b)
    assert any(k.startswith("crossbar/stuck/") for k in a) == (preset == "rram")
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert res.meter.state_dict() == full.meter.state_dict()      # pulses counted once
    assert res.history["test_loss"] == full.history["test_loss"]
    assert res.fidelity == full.fidelity
    if preset == "pcm":                                         # 2 epochs x 10 batches
        xb = res.engine.crossbar
        assert xb.time == 600.0 and 0 < xb.conductances("W:x->h1", True).sum() < \
            xb.conductances("W:x->h1").sum()
        return
    # without the device state (an older checkpoint) the resume builds a fresh crossbar
    with np.load(ck) as z:
        np.savez(tmp_path / "old.npz", **{k: z[k] for k in z.files if not k.startswith("engine/")})
    old = _hw_trainer(str(tmp_path / "old_out.npz"), preset)
    old.load(str(tmp_path / "old.npz"))
    fresh = Crossbar.from_network(old.net, PRESETS[preset], seed=3)   # the checkpoint's weights
    old.engine.sync()                  # first use: built from them, not programmed toward them
    assert old.engine.crossbar.pulses_total == 0
    for k in full.net.params:
        assert np.array_equal(old.engine.crossbar.conductances(k), fresh.conductances(k)), k
    old.fit()
    assert not all(np.array_equal(old.net.params[k], full.net.params[k]) for k in full.net.params)
    # another device, or a network without a crossbar: refused, or nothing saved
    other = _hw_trainer(str(tmp_path / "x.npz"), device=PRESETS["rram"].replace(levels=32))
    with pytest.raises(ValueError, match=r"hardware\.levels"):
        other.load(ck)
    plain = _hw_trainer(str(tmp_path / "plain.npz"), preset=None)
    plain.save()
    with np.load(tmp_path / "plain.npz") as z:
        assert not any(k.startswith("engine/") for k in z.files)


# -- circuit files ---------------------------------------------------------------------------
def test_presets_load_from_a_circuit_file(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text(open(config.builtin_path("default")).read()
                    + "\n[hardware]\npreset = \"pcm\"\nlevels = 50\nseed = 3\n")
    circuit, _ = config.load(str(path))
    eng = build_engine(circuit, build_network(circuit.network))
    assert isinstance(eng, HardwareEngine) and eng.seed == 3
    assert eng.device == dataclasses.replace(PRESETS["pcm"], levels=50)
    for name in PRESETS:
        c, _ = config.load(None, ["hardware.preset=\"%s\"" % name])
        e = build_engine(c, build_network(c.network))
        assert isinstance(e, HardwareEngine) == (name != "ideal")


def test_neurosim_run_with_a_preset(tmp_path, neurosim_cli):
    r = neurosim_cli("run", "--json", "--no-progress", "--out", tmp_path,
                     "--set", "hardware.preset=\"rram\"", "--set", "train.epochs=1",
                     "--set", "dataset.limit_train=200")
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["epochs"] == 1 and 0 <= s["test_accuracy"] <= 1
    assert "hardware" in open(s["run_dir"] + "/circuit.toml").read()
    bad = neurosim_cli("run", "--no-progress", "--out", tmp_path,
                       "--set", "hardware.g_min=50.0", "--set", "hardware.g_max=10.0")
    assert bad.returncode == 2 and "hardware.g_max" in bad.stderr
