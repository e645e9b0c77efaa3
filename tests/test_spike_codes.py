"""The deterministic spike codes of the spiking circuits (``neuron="if"``, ``"sigma_delta"``):
what each encoder sends, the update against the Brian2 rate circuit, and the defaults of
``compile(net, model="spiking")`` on random networks the study behind them
(``benchmarks/bench_spiking_codes.py``, seeds 0-2) did not see."""
import numpy as np
import pytest

import neurosim as ns

nb = pytest.importorskip("neurosim.brian", reason="brian2 is not installed")
from neurosim.brian import spiking as sp  # noqa: E402
from neurosim.brian.device import CircuitError  # noqa: E402
from neurosim.fixed_point import free_fixed_point  # noqa: E402
from conftest import circuit_graph_net  # noqa: E402


def _cos(a, b):
    return ns.fidelity.compare(a, b)["cosine"]


def _run_encoder(neuron, rho, steps, delta=None):
    import brian2 as b2
    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = 1 * b2.ms
    eqs, threshold, reset = sp.encoder(neuron)
    g = b2.NeuronGroup(len(rho), "\n".join(["rho : 1"] + eqs), threshold=threshold,
                       reset=reset, method="euler",
                       namespace={"max_rate": 1000 * b2.Hz, "delta": delta})
    g.rho = rho
    m = b2.SpikeMonitor(g, variables=["n_ev"] if neuron == "sigma_delta" else None)
    b2.Network(g, m).run(steps * b2.ms)
    return g, m


def test_integrate_and_fire_counts_are_exact():
    """Reset by subtraction: the spike count over k steps is k rho (spikes per step 1) to
    within one spike, for every rate: no Poisson noise."""
    rho = np.linspace(0, 1, 21)
    _, m = _run_encoder("if", rho, 500)
    counts = np.asarray(m.count[:])
    assert np.all(np.abs(counts - 500 * rho) <= 1.0)


def test_sigma_delta_sends_the_rate_within_delta():
    """One event at the start carries round(rho / delta) steps; then nothing while rho holds."""
    rho = np.linspace(0, 1, 11)
    g, m = _run_encoder("sigma_delta", rho, 50, delta=0.01)
    np.testing.assert_allclose(np.asarray(g.q[:]), rho, atol=0.005 + 1e-12)
    counts = np.asarray(m.count[:])
    assert counts[0] == 0 and np.all(counts[1:] == 1)
    sent = np.zeros(len(rho))
    np.add.at(sent, np.asarray(m.i[:]), np.asarray(m.n_ev[:]) * 0.01)
    np.testing.assert_allclose(sent, np.asarray(g.q[:]), atol=1e-12)


def _problem(activation, seed):
    net = ns.layered([20, 30, 5], activation=activation, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 1, (4, 20)), rng.uniform(0, 1, (4, 5))
    clip = activation == "hard_sigmoid"
    s0 = free_fixed_point(net, x, clip=clip, eps=0.1, tol=1e-12).state
    rbp = ns.rbp.gradient(net, x, y, method="implicit", eps=0.1, state=s0, clip=clip)
    return net, x, y, clip, rbp


@pytest.mark.parametrize("activation, seed", [("hard_sigmoid", 11), ("hard_sigmoid", 12),
                                              ("logistic", 11)])
def test_the_defaults_are_faithful_on_fresh_networks(activation, seed):
    """The defaults (sigma-delta units, beta 0.01, symmetric, 1000 steps per phase) on
    networks the study did not tune on: cosine >= 0.95 to the clip-aware RBP gradient, and
    >= 0.98 to the rate circuit at the same settings or closer to RBP than it is. The code is
    deterministic, so one run is the whole distribution."""
    net, x, y, clip, rbp = _problem(activation, seed)
    c = nb.compile(net, model="spiking", clip=clip, record=False)
    got = c.ep_update(x, y)
    d = sp.DEFAULTS
    rate = nb.compile(net, clip=clip).ep_update(x, y, d["beta"], d["free_steps"],
                                                d["nudge_steps"], variant=d["variant"])
    assert _cos(got, rbp) >= 0.95
    assert _cos(got, rate) >= 0.98 or _cos(got, rbp) > _cos(rate, rbp)
    assert c.neuron == "sigma_delta" and sum(c.stats["spikes"].values()) > 0
    # the same network again: the same update, bit for bit (nothing random)
    again = nb.compile(net, model="spiking", clip=clip, record=False, seed=99).ep_update(x, y)
    for k in net.params:
        np.testing.assert_array_equal(got[k], again[k])


@pytest.mark.parametrize("neuron", ["if", "sigma_delta"])
def test_deterministic_codes_on_a_graph_with_skip_and_lateral_projections(neuron):
    """Two inputs, a skip and a lateral projection: the update follows the rate circuit's
    (beta 0.1), and sigma-delta sends a fraction of integrate-and-fire's spikes."""
    net, x, y = circuit_graph_net("hard_sigmoid", seed=2, gain=0.6)
    kw = dict(beta=0.1, free_steps=600, nudge_steps=600)
    rate = nb.compile(net, clip=True).ep_update(x, y, variant="symmetric", **kw)
    c = nb.compile(net, model="spiking", neuron=neuron, clip=True, record=False, seed=0,
                   delta=1e-4)
    got = c.ep_update(x, y, variant="symmetric", **kw)
    assert _cos(got, rate) >= 0.99
    assert np.all(np.diag(got["W:h1->h1"]) == 0)
    events = sum(c.stats["spikes"].values())
    assert (events < 10_000) if neuron == "sigma_delta" else (events > 30_000)   # 5.8k, 46k


def test_sigma_delta_output_rates_are_the_values_sent():
    net = ns.layered([6, 8, 3], activation="hard_sigmoid", seed=1)
    x = np.random.default_rng(0).uniform(0, 1, (3, 6))
    fixed = free_fixed_point(net, x, clip=True, eps=0.1, tol=1e-12).state["y"]
    for delta, tol in ((1e-3, 5e-3), (1e-4, 5e-4)):     # each unit's error: its own delta
        c = nb.compile(net, model="spiking", clip=True, record=False, delta=delta)
        out = c.free_rates(x, 1000)["y"]                 # plus its inputs' errors times |w|
        np.testing.assert_allclose(out, np.clip(fixed, 0, 1), atol=tol)


def test_the_engine_knows_every_code_and_refuses_what_cannot_run():
    from neurosim.engines.protocol import Settings
    import dataclasses
    choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(Settings)}
    assert tuple(choices["neuron"]) == tuple(sp.NEURONS)
    net = ns.layered([4, 5, 3], seed=0)
    with pytest.raises(CircuitError, match="delta"):
        nb.compile(net, model="spiking", neuron="sigma_delta", delta=0.0)


@pytest.mark.parametrize("variant", ["symmetric", "one_sided"])
def test_the_event_rule_of_sigma_delta_units_is_the_snapshot_rule(variant):
    """``rule="online"`` with sigma-delta units adds ``c d[z_pre z_post]`` on each event of
    either unit: the sum telescopes to the snapshot rule's contrast exactly (measured 1.6e-14
    on updates of 0.3), on a graph with skip and lateral projections too."""
    net, x, y = circuit_graph_net("hard_sigmoid", seed=2, gain=0.6)
    kw = dict(beta=0.05, free_steps=300, nudge_steps=300, variant=variant)
    snap = nb.compile(net, model="spiking", clip=True, record=False).ep_update(x, y, **kw)
    c = nb.compile(net, model="spiking", clip=True, record=False, rule="online")
    online = c.ep_update(x, y, **kw)
    for k in net.params:
        np.testing.assert_allclose(online[k], snap[k], atol=1e-12)
    assert c.stats["rule_ops"] > sum(c.stats["spikes"].values())


@pytest.mark.slow      # two C++ builds; python -m pytest -m slow
def test_the_event_rule_in_the_compiled_circuit(tmp_path):
    """The same in the compiled whole-epoch circuit, with learning: the recorded updates and
    the weights after an epoch equal the snapshot rule's (measured 1.1e-16)."""
    from neurosim import engines
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (18, 8))
    y = np.eye(3)[np.argmax(x @ rng.normal(0, 1, (8, 3)), axis=1)]
    lrs = {"W:x->h1": 0.5, "W:h1->y": 0.3, "b:h1": 0.5, "b:y": 0.3}
    out = {}
    for rule in ("snapshot", "online"):
        net = ns.layered([8, 12, 3], activation="hard_sigmoid", seed=3, dtype="float64")
        eng = engines.build("brian2-spiking", net, eps=0.5, free_steps=40, nudge_steps=10,
                            beta=0.5, seed=5, batch_size=4, neuron="sigma_delta", delta=1e-4,
                            plasticity=rule, build_dir=str(tmp_path / rule))
        try:
            eng.train_epoch(x[:12], y[:12], np.ones(12), lrs, 4, record=[0, 2], x_eval=x[12:])
            out[rule] = (eng.circuit.recorded, dict(net.params))
        finally:
            eng.close()
    for b in (0, 2):
        for k in lrs:
            np.testing.assert_allclose(out["online"][0][b][0][k], out["snapshot"][0][b][0][k],
                                       atol=1e-12)
    for k in lrs:
        np.testing.assert_allclose(out["online"][1][k], out["snapshot"][1][k], atol=1e-12)
