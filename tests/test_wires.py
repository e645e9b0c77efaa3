"""Wire resistance in crossbar reads (neurosim.hardware.wires): the sparse nodal solve is the
dense nodal solve of the same circuit, ideal wires are the ideal read exactly, more wire
resistance loses more current, one factorisation serves every read of a weight state, and the
reference engine on devices reads through the wires in both directions and still trains."""

import shutil

import numpy as np
import pytest

import neurosim as ns
from neurosim import config, engines
from neurosim.commands.run import build_engine
from neurosim.config import build_network
from neurosim.errors import ConfigurationError
from neurosim.hardware import PRESETS, Crossbar, Device, device_from_section
from neurosim.hardware.wires import TiledArray, WireArray, WireReader
from neurosim.engines.devices import HardwareEngine
from neurosim.training.trainer import Trainer


def _dense_nodal(g, r_wire, v=None, u=None):
    """The circuit of the module docstring solved densely: every node (crosspoints and the
    terminals) in one conductance matrix, the terminals' voltages fixed, the currents into
    the sensing terminals read off the injected currents. ``v``: row drives (forward, columns
    sensed); ``u``: column drives (backward, rows sensed)."""
    rows, cols = g.shape
    gw = 1e6 / r_wire                                     # µS
    n = 2 * rows * cols + rows + cols

    def rn(i, j):
        return i * cols + j

    def cn(i, j):
        return rows * cols + i * cols + j

    def rt(i):
        return 2 * rows * cols + i

    def ct(j):
        return 2 * rows * cols + rows + j

    Y = np.zeros((n, n))

    def join(a, b, c):
        Y[a, a] += c
        Y[b, b] += c
        Y[a, b] -= c
        Y[b, a] -= c

    for i in range(rows):
        join(rt(i), rn(i, 0), gw)
        for j in range(cols):
            join(rn(i, j), cn(i, j), g[i, j])
            if j + 1 < cols:
                join(rn(i, j), rn(i, j + 1), gw)
    for j in range(cols):
        join(cn(rows - 1, j), ct(j), gw)
        for i in range(rows - 1):
            join(cn(i, j), cn(i + 1, j), gw)
    known = np.array([rt(i) for i in range(rows)] + [ct(j) for j in range(cols)])
    free = np.setdiff1d(np.arange(n), known)
    drive = np.hstack([v, np.zeros((v.shape[0], cols))]) if v is not None else \
        np.hstack([np.zeros((u.shape[0], rows)), u])
    out = []
    for xk in drive:
        x = np.zeros(n)
        x[known] = xk
        x[free] = np.linalg.solve(Y[np.ix_(free, free)], -Y[np.ix_(free, known)] @ xk)
        injected = Y[known] @ x                          # current each terminal injects
        out.append(-(injected[rows:] if v is not None else injected[:rows]))
    return np.array(out)


@pytest.mark.parametrize("r_wire", [0.5, 50.0, 5e3])
def test_the_sparse_read_is_the_dense_nodal_solve(r_wire):
    rng = np.random.default_rng(0)
    g = rng.uniform(1.0, 40.0, (4, 3))
    v, u = rng.uniform(0, 1, (5, 4)), rng.uniform(0, 1, (5, 3))
    a = WireArray(g.shape, r_wire)
    a.set_conductances(g)
    fwd, bwd = _dense_nodal(g, r_wire, v=v), _dense_nodal(g, r_wire, u=u)
    assert np.max(np.abs(a.forward(v) - fwd)) <= 1e-10 * np.max(np.abs(fwd))
    assert np.max(np.abs(a.backward(u) - bwd)) <= 1e-10 * np.max(np.abs(bwd))
    T = a.transfer()                       # reciprocity: one matrix for both directions
    assert np.max(np.abs(v @ T - fwd)) <= 1e-10 * np.max(np.abs(fwd))
    assert np.max(np.abs(u @ T.T - bwd)) <= 1e-10 * np.max(np.abs(bwd))
    tall = WireArray((3, 4), r_wire)       # more columns than rows: transfer by forward reads
    tall.set_conductances(g.T)
    fwd_t = _dense_nodal(g.T, r_wire, v=u)
    assert np.max(np.abs(u @ tall.transfer() - fwd_t)) <= 1e-10 * np.max(np.abs(fwd_t))


def test_ideal_wires_are_the_ideal_read_exactly():
    rng = np.random.default_rng(1)
    g = rng.uniform(1.0, 40.0, (6, 5))
    v, u = rng.uniform(0, 1, (3, 6)), rng.uniform(0, 1, (3, 5))
    for arr in (WireArray(g.shape, 0.0), TiledArray(g.shape, 0.0, tile_size=2)):
        arr.set_conductances(g)
        assert np.array_equal(arr.transfer(), g)
        if isinstance(arr, WireArray):                   # the ideal products themselves
            assert np.array_equal(arr.forward(v), v @ g)
            assert np.array_equal(arr.backward(u), u @ g.T)
        else:                                           # summed over tiles
            assert np.allclose(arr.forward(v), v @ g, rtol=1e-14)
            assert np.allclose(arr.backward(u), u @ g.T, rtol=1e-14)
        assert arr.factorizations == 0
    dev = PRESETS["rram"].replace(read_noise=0.0)
    w = {"W:a->b": rng.normal(0, 0.3, (6, 5)), "b:b": rng.normal(0, 0.1, 5)}
    cb = Crossbar(w, dev.replace(r_wire=0.0), seed=0)
    assert cb.wires is None
    read = cb.read(rng)
    assert all(np.array_equal(read[k], v) for k, v in cb.weights().items())
    # a vanishing wire resistance tends to the ideal read
    tiny = Crossbar(w, dev.replace(r_wire=1e-9), seed=0).read(rng)
    assert all(np.allclose(tiny[k], read[k], rtol=1e-7, atol=1e-12) for k in read)


def test_more_wire_resistance_loses_more_current():
    rng = np.random.default_rng(2)
    g = rng.uniform(1.0, 40.0, (16, 12))
    v = np.ones((1, 16))
    cols, total = [], []
    for r in (0.0, 0.1, 1.0, 10.0, 100.0, 1e3):
        a = WireArray(g.shape, r)
        a.set_conductances(g)
        i = a.forward(v)[0]
        cols.append(i)
        total.append(i.sum())
    cols = np.array(cols)
    assert np.all(np.diff(total) < 0) and np.all(np.diff(cols, axis=0) < 0)
    assert total[-1] < 0.5 * total[0]
    # equal devices: the cell far from both terminals (top right) loses the most
    a = WireArray(g.shape, 10.0)
    a.set_conductances(np.full(g.shape, 20.0))
    ratio = a.transfer() / 20.0
    assert ratio[0, -1] == ratio.min() and ratio[-1, 0] == ratio.max() and np.all(ratio < 1)
    # smaller tiles have shorter wires: less loss
    losses = []
    for t in (0, 8, 4, 2):
        tiled = TiledArray(g.shape, 10.0, tile_size=t)
        tiled.set_conductances(g)
        losses.append(1 - tiled.forward(v).sum() / (v @ g).sum())
    assert all(a > b > 0 for a, b in zip(losses, losses[1:]))


def test_tiles_are_separate_arrays_summed_per_column_block():
    rng = np.random.default_rng(3)
    g = rng.uniform(1.0, 40.0, (7, 5))
    tiled = TiledArray(g.shape, 20.0, tile_size=3)
    tiled.set_conductances(g)
    assert len(tiled.tiles) == 3 * 2 and tiled.factorizations == 6
    want = np.empty_like(g)
    for r0 in range(0, 7, 3):
        for c0 in range(0, 5, 3):
            a = WireArray(g[r0:r0 + 3, c0:c0 + 3].shape, 20.0)
            a.set_conductances(g[r0:r0 + 3, c0:c0 + 3])
            want[r0:r0 + 3, c0:c0 + 3] = a.transfer()
    assert np.allclose(tiled.transfer(), want, rtol=1e-13)
    v, u = rng.uniform(0, 1, (4, 7)), rng.uniform(0, 1, (4, 5))
    assert np.allclose(tiled.forward(v), v @ want, rtol=1e-12)
    assert np.allclose(tiled.backward(u), u @ want.T, rtol=1e-12)
    g2 = g.copy()
    g2[0, 0] += 1.0                            # one tile changed: one refactorisation
    tiled.set_conductances(g2)
    assert tiled.factorizations == 7


def test_one_factorisation_per_weight_state():
    rng = np.random.default_rng(4)
    g = rng.uniform(1.0, 40.0, (8, 6))
    a = WireArray(g.shape, 5.0)
    assert a.set_conductances(g) and a.factorizations == 1
    for _ in range(5):
        a.forward(rng.uniform(0, 1, (3, 8)))
        a.backward(rng.uniform(0, 1, (3, 6)))
        a.transfer()
        assert not a.set_conductances(g.copy())
    assert a.factorizations == 1
    assert a.set_conductances(g * 1.01) and a.factorizations == 2
    # a crossbar: reads of one weight state share the factorisations; programming and read
    # noise change the conductances
    w = {"W:a->b": rng.normal(0, 0.3, (8, 6)), "b:b": rng.normal(0, 0.1, 6)}
    cb = Crossbar(w, Device(levels=64, r_wire=2.0, g_min=1.0, g_max=40.0), seed=0)
    r1 = cb.read(rng)
    n = cb.wires.factorizations
    assert n == 4                                  # G+ and G- of each parameter
    r2 = cb.read(rng)
    assert cb.wires.factorizations == n and all(np.array_equal(r1[k], r2[k]) for k in r1)
    cb.program({"W:a->b": np.full((8, 6), 0.05)}, rng)
    cb.read(rng)
    assert cb.wires.factorizations == n + 2        # only the programmed parameter's pair
    noisy = Crossbar(w, Device(levels=64, r_wire=2.0, read_noise=0.01), seed=0)
    for i in range(3):
        noisy.read(rng)
        assert noisy.wires.factorizations == 4 * (i + 1)


def test_the_crossbar_reads_the_pair_difference_through_the_wires():
    rng = np.random.default_rng(5)
    w = {"W:a->b": rng.normal(0, 0.3, (5, 4)), "b:b": rng.normal(0, 0.1, 4),
         "W:b->b": np.zeros((4, 4))}
    lat = rng.normal(0, 0.2, (4, 4))
    w["W:b->b"] = np.triu(lat, 1) + np.triu(lat, 1).T
    for scheme in ("both", "one_per_sign"):
        dev = Device(levels=32, g_min=1.0, g_max=40.0, r_wire=20.0, scheme=scheme)
        cb = Crossbar(w, dev, seed=0, w_max=1.0, mirror=["W:b->b"], zero_diagonal=["W:b->b"])
        read = cb.read(rng)
        g = cb.conductances("W:a->b")
        tp, tm = (WireArray((5, 4), 20.0) for _ in range(2))
        tp.set_conductances(g[0])
        tm.set_conductances(g[1])
        want = (1.0 / 39.0) * (tp.transfer() - tm.transfer())
        assert np.allclose(read["W:a->b"], want, rtol=1e-12, atol=1e-15)
        assert not np.allclose(read["W:a->b"], cb.weights()["W:a->b"], rtol=1e-3)
        gb = cb.conductances("b:b")                     # a bias: one row driven at 1 V
        bp, bm = (WireArray((1, 4), 20.0) for _ in range(2))
        bp.set_conductances(gb[0][None])
        bm.set_conductances(gb[1][None])
        assert np.allclose(read["b:b"], (bp.forward([[1.0]]) - bm.forward([[1.0]]))[0] / 39.0,
                           rtol=1e-12, atol=1e-15)
        lw = read["W:b->b"]                             # upper triangle read both ways
        assert np.array_equal(lw, lw.T) and not np.any(np.diag(lw))
        assert np.allclose(lw, cb.weights()["W:b->b"], atol=0.05)


def test_engine_reads_through_the_wires_in_both_directions():
    """The circuit's free phase is the reference engine's at the wire-read weights: the
    forward products and the feedback (transposed) ones both use the read's matrix."""
    net = ns.layered([8, 6, 4], activation="hard_sigmoid", seed=0)
    x = np.random.default_rng(6).uniform(0, 1, (5, 8))
    dev = PRESETS["rram"].replace(read_noise=0.0, stuck_fraction=0.0, r_wire=50.0)
    eng = HardwareEngine(engines.build("reference", net, eps=0.5, free_steps=30), dev, seed=0)
    read = eng.crossbar.read(np.random.default_rng(0))
    at_read = net.copy()
    for k, v in read.items():
        at_read.params[k][...] = v
    got = eng.infer(x)
    want = engines.build("reference", at_read, eps=0.5, free_steps=30).infer(x)
    assert all(np.array_equal(got[p], want[p]) for p in got)
    stored = engines.build("reference", net.copy(), eps=0.5, free_steps=30).infer(x)
    assert not all(np.allclose(got[p], stored[p], atol=1e-4) for p in got)
    for k, v in eng.crossbar.weights().items():       # the stored weights are left
        assert np.array_equal(net.params[k], v)


def test_the_wire_fields_from_a_circuit_file():
    c, _ = config.load(None, ['hardware.preset="rram"', "hardware.r_wire=2.5",
                              "hardware.tile_size=32"])
    d = device_from_section(c.hardware)
    assert (d.r_wire, d.tile_size) == (2.5, 32) and not d.is_ideal
    eng = build_engine(c, build_network(c.network))
    assert isinstance(eng.crossbar.wires, WireReader) and eng.crossbar.wires.tile_size == 32
    bounded, _ = config.load(None, ["hardware.r_wire=1.0", "hardware.levels=1000"])
    assert isinstance(build_engine(bounded, build_network(bounded.network)),
                      HardwareEngine)                      # wires alone make a circuit
    with pytest.raises(ConfigurationError, match="hardware.r_wire: .*exactly"):
        config.load(None, ["hardware.r_wire=1.0"])         # unbounded weights: no wires
    for bad, field in (("hardware.r_wire=-1.0", "hardware.r_wire"),
                       ("hardware.tile_size=-2", "hardware.tile_size"),
                       ('hardware.r_wire="thin"', "hardware.r_wire")):
        with pytest.raises(ConfigurationError, match=field.replace(".", r"\.")):
            config.load(None, [bad])
    for bad, field in ((dict(r_wire=float("inf")), "hardware.r_wire"),
                       (dict(tile_size=2.5), "hardware.tile_size")):
        with pytest.raises(ConfigurationError, match=field.replace(".", r"\.")):
            Device(**bad)


def test_the_reference_engine_trains_through_resistive_wires_and_resumes():
    data = ns.datasets.load("digits", limit_train=500, limit_test=200)
    dev = PRESETS["rram"].replace(r_wire=2.0, tile_size=32)

    def trainer(epochs=4):
        net = ns.layered([64, 16, 10], activation="hard_sigmoid", seed=0)
        eng = HardwareEngine(engines.build("reference", net, eps=0.5, free_steps=10,
                                           nudge_steps=4, beta=0.5, variant="symmetric"),
                             dev, seed=0)
        return Trainer(eng, data, lr=[0.5, 0.25], epochs=epochs, batch_size=20,
                       fidelity_batches=0, progress=False)

    tr = trainer()
    tr.fit()
    acc = tr.history["test_accuracy"]
    assert acc[-1] > 0.45 and acc[-1] > acc[0] + 0.1, acc        # 10 classes: chance 0.1
    assert tr.engine.crossbar.wires.factorizations > 0
    # the wires' factorisations are derived from the conductances: a resumed engine reads
    # the same weights
    again = trainer()
    again.engine.load_state_dict(tr.engine.state_dict())
    for k, v in tr.engine.net.params.items():
        again.engine.net.params[k][...] = v
    x = data.x_test[:10]
    a, b = tr.engine.infer(x), again.engine.infer(x)
    assert all(np.array_equal(a[p], b[p]) for p in a)


@pytest.mark.skipif(shutil.which("ngspice") is None,
                    reason="ngspice is not installed (apt-get install ngspice)")
def test_ngspice_reads_an_array_with_wire_resistance_as_the_nodal_solve_does():
    """A 16 x 12 array exported with its wires: ngspice's column currents equal
    WireArray.forward's to 1e-10 relative, from nearly ideal to strongly attenuating wires."""
    from neurosim.hardware.wires_spice import array_netlist, check_array
    rng = np.random.default_rng(0)
    g = rng.uniform(1, 40, (16, 12))
    g[3, 4] = 0.0                                    # an absent device: no resistor
    v = rng.uniform(-0.2, 0.2, 16)
    for r_wire in (0.5, 20.0, 2000.0):
        c = check_array(g, r_wire, v, rel_tol=1e-10)
        assert c.agree, (r_wire, c.max_rel)
    text = array_netlist(g, 1.0, v)
    assert text.count("\nR") == 16 * 12 + 16 * 12 + (16 * 12 - 1)   # segments + devices
    with pytest.raises(ns.errors.ArgumentError, match="r_wire"):
        array_netlist(g, 0.0, v)
