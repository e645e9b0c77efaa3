"""The Brian2 circuits execute the engine's phase plan: a three-nudge plan and the shorthands
give ns.ep.gradient's estimate (to 1e-8) on a logistic network with a skip connection, and
several compiled circuits live side by side in one process."""
import networkx as nx
import numpy as np
import pytest

import neurosim as ns
from neurosim import engines
from neurosim.errors import ConfigurationError

nb = pytest.importorskip("neurosim.brian", reason="brian2 is not installed")

NUDGES = [-0.2, 0.1, 0.3]
PHASES = dict(eps=0.5, free_steps=30, nudge_steps=6, clip=False)


def _skip_net():
    g = nx.DiGraph()
    for n, size, role in [("x", 5, "input"), ("h1", 4, "hidden"), ("h2", 3, "hidden"),
                          ("y", 3, "output")]:
        g.add_node(n, size=size, role=role)
    g.add_edges_from([("x", "h1"), ("h1", "h2"), ("h2", "y"), ("x", "h2")])
    net = ns.Network.from_graph(g, activation="logistic", dynamics="energy", seed=1)
    rng = np.random.default_rng(4)
    return net, rng.uniform(0, 1, (3, 5)), np.eye(3)[[0, 2, 1]]


def _rel(got, ref):
    """Largest absolute difference over the largest reference entry."""
    assert set(got) == set(ref)
    scale = max(float(np.max(np.abs(v))) for v in ref.values())
    return max(float(np.max(np.abs(got[k] - ref[k]))) for k in ref) / scale


def test_runtime_circuit_runs_any_plan():
    """RateCircuit.ep_update(nudges=...) is the polynomial-derivative estimate of
    independently relaxed phases; a three-nudge plan differs from the symmetric one."""
    net, x, y = _skip_net()
    c = nb.compile(net, eps=PHASES["eps"])
    steps = dict(free_steps=PHASES["free_steps"], nudge_steps=PHASES["nudge_steps"])
    got = c.ep_update(x, y, nudges=NUDGES, **steps)
    ref = ns.ep.gradient(net, x, y, nudges=NUDGES, **PHASES)
    assert _rel(got, ref) < 1e-8
    assert c.traces["y"]["u"].shape[0] == PHASES["free_steps"] + 3 * PHASES["nudge_steps"]
    sym = ns.ep.gradient(net, x, y, 0.2, variant="symmetric", **PHASES)
    assert _rel(got, sym) > 1e-4           # the plan is not silently replaced
    for variant in ("one_sided", "symmetric"):
        got = c.ep_update(x, y, beta=0.2, variant=variant, **steps)
        assert _rel(got, ns.ep.gradient(net, x, y, 0.2, variant=variant, **PHASES)) < 1e-8
    with pytest.raises(nb.CircuitError, match="distinct"):
        c.ep_update(x, y, nudges=[0.1, 0.1], **steps)


def _held_estimates(tmp_path, net, x, y, plans, rngs=()):
    """Every engine of ``plans`` built and held at once, then each used in turn (the first
    again at the end); returns the estimates by name and the first one's second estimate."""
    held = {name: engines.build("brian2-rate", net, build_dir=str(tmp_path / name), **plan,
                                **PHASES) for name, plan in plans.items()}
    try:
        got = {name: held[name].estimate(x, y, rng=dict(rngs).get(name)) for name in plans}
        again = held[next(iter(plans))].estimate(x, y)   # after the others were built and run
    finally:
        for eng in held.values():
            eng.close()
    return got, again


def test_several_compiled_engines_live_in_one_process(tmp_path):
    """Two brian2-rate engines held at once (a three-nudge plan, symmetric), each used after
    the other was built: each estimate is ns.ep.gradient's, to 1e-8."""
    net, x, y = _skip_net()
    plans = {"nudges": dict(nudges=NUDGES), "symmetric": dict(beta=0.2, variant="symmetric")}
    got, again = _held_estimates(tmp_path, net, x, y, plans)
    for name, plan in plans.items():
        assert _rel(got[name], ns.ep.gradient(net, x, y, **plan, **PHASES)) < 1e-8, name
    assert _rel(again, got["nudges"]) == 0.0


@pytest.mark.slow   # long (a Brian2 build or a whole run): python -m pytest -m slow
def test_compiled_one_sided_and_random_sign_engines(tmp_path):
    """The one-sided shorthand, and random sign with the sign of the trainer's stream
    (ns.plan.batch_stream) for a batch of each sign, are ns.ep.gradient's estimates."""
    net, x, y = _skip_net()
    signs = [ns.plan.batch_sign(3, 0, b) for b in range(8)]
    up, down = signs.index(1.0), signs.index(-1.0)
    plans = {"one_sided": dict(beta=0.2, variant="one_sided"),
             "up": dict(beta=0.2, variant="random_sign"),
             "down": dict(beta=0.2, variant="random_sign")}
    rngs = {"up": ns.plan.batch_stream(3, 0, up), "down": ns.plan.batch_stream(3, 0, down)}
    got, _ = _held_estimates(tmp_path, net, x, y, plans, rngs)
    for name, beta in (("one_sided", 0.2), ("up", 0.2), ("down", -0.2)):
        ref = ns.ep.gradient(net, x, y, beta, variant="one_sided", **PHASES)
        assert _rel(got[name], ref) < 1e-8, name


def test_spiking_circuits_run_the_plan_or_refuse_it():
    """The runtime spiking circuit runs a three-nudge plan (LIF units: no Poisson noise) and
    follows the rate estimate; the whole-epoch circuit refuses it, naming learning.nudges."""
    net = ns.layered([4, 5, 3], activation="hard_sigmoid", seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (2, 4)), np.eye(3)[[0, 2]]
    c = nb.compile(net, model="spiking", neuron="lif", clip=True, seed=3, record=False,
                   free_steps=300, nudge_steps=300)
    got = c.ep_update(x, y, nudges=NUDGES)
    assert [p["name"] for p in c.phases] == ["free", "nudged1", "nudged2", "nudged3"]
    ref = ns.ep.gradient(net, x, y, nudges=NUDGES, eps=0.1, free_steps=300, nudge_steps=300,
                         clip=True)
    assert ns.fidelity.compare(got, ref)["cosine"] > 0.99
    eng = engines.build("brian2-spiking", net, nudges=NUDGES, free_steps=20, nudge_steps=10,
                        clip=True)
    with pytest.raises(ConfigurationError, match="learning.nudges.*whole_epoch = false"):
        eng.train_epoch(x, y, np.ones(2), {k: 0.1 for k in net.params}, 2)


def test_spiking_nudged_phases_restart_from_the_free_state():
    """Every nudged phase after the first restarts every neuron (inputs included) from its
    free-phase state, so with deterministic LIF units the order of the phases does not
    change the estimate."""
    net = ns.layered([4, 5, 3], activation="hard_sigmoid", seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (4, 4)), np.eye(3)[rng.integers(0, 3, 4)]
    c = nb.compile(net, model="spiking", neuron="lif", clip=True, record=False, max_rate=500.0,
                   tau_fast=5.0, tau_slow=30.0, free_steps=200, nudge_steps=200)
    a = c.ep_update(x, y, nudges=[0.3, -0.3], seed=1)
    b = c.ep_update(x, y, nudges=[-0.3, 0.3], seed=1)
    assert ns.fidelity.compare(a, b)["rel_error"] < 1e-10
