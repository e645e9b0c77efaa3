"""Circuit files: every shipped circuit validates, and each kind of mistake is rejected with
the dotted path of the field in the message; --set overrides are validated the same way."""
import os

import pytest

from neurosim import config
from neurosim.config import ConfigError

CIRCUITS = os.path.join(os.path.dirname(__file__), "..", "circuits")
BASE = {"network": {"sizes": [4, 3, 2]}}


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(CIRCUITS) if f.endswith(".toml")))
def test_shipped_circuits_validate(name):
    circuit, text = config.load(os.path.join(CIRCUITS, name))
    assert circuit.name and text


def test_builtin_default_is_the_shipped_file():
    assert os.path.samefile(config.builtin_path("default"), os.path.join(CIRCUITS, "default.toml"))
    circuit, _ = config.load()
    assert circuit.dataset.name == "digits"


def _bad(data, *fragments):
    with pytest.raises(ConfigError) as e:
        config.validate(data)
    for f in fragments:
        assert f in str(e.value), str(e.value)


@pytest.mark.parametrize("data, fragments", [
    ({}, ["network: required key is missing"]),
    ({**BASE, "trian": {}}, ["trian: unknown key"]),
    ({"network": {"sizes": [4, 2], "hidden": 3}}, ["network.hidden: unknown key"]),
    ({**BASE, "train": {"epochs": "2"}}, ["train.epochs", "valid integer"]),
    ({**BASE, "train": {"epochs": 0}}, ["train.epochs", "greater than 0"]),
    ({**BASE, "train": {"batch_size": 2.5}}, ["train.batch_size"]),
    ({**BASE, "engine": {"eps": -1.0}}, ["engine.eps", "greater than 0"]),
    ({**BASE, "engine": {"solver": "newton"}}, ["engine.solver", "'euler'"]),
    ({**BASE, "engine": {"clip": "yes"}}, ["engine.clip", "valid boolean"]),
    ({**BASE, "learning": {"beta": 0.0}}, ["learning.beta", "non-zero"]),
    ({**BASE, "learning": {"variant": "two_sided"}}, ["learning.variant"]),
    ({**BASE, "learning": {"rule": "backprop"}}, ["learning.rule"]),
    ({**BASE, "learning": {"lr": [0.1, "a"]}}, ["learning.lr[1]"]),
    ({**BASE, "learning": {"momentum": 1.5}}, ["learning.momentum"]),
    ({**BASE, "learning": {"optimizer": "rmsprop"}}, ["learning.optimizer", "'adam'"]),
    ({**BASE, "learning": {"adam_betas": [0.9, 1.0]}}, ["learning.adam_betas", "[0, 1)"]),
    ({**BASE, "learning": {"adam_betas": [0.9]}}, ["learning.adam_betas", "two numbers"]),
    ({**BASE, "learning": {"weight_decay": -0.1}}, ["learning.weight_decay"]),
    ({"network": {"sizes": [4]}}, ["network.sizes", "at least two"]),
    ({"network": {"sizes": [4, 0, 2]}}, ["network.sizes", "entry 1"]),
    ({"network": {"sizes": [4, 2], "activation": "relu"}}, ["network.activation"]),
    ({"network": {"sizes": [4, 2], "skip": [[0, 1, 2]]}}, ["network.skip", "pair"]),
    ({"network": {}}, ["network", "either 'sizes'"]),
    ({"network": {"sizes": [4, 2], "populations": []}}, ["not both"]),
    ({"network": {"populations": [{"name": "x", "size": 0, "role": "input"}],
                  "projections": []}}, ["network.populations[0].size"]),
    ({"network": {"populations": [{"name": "x", "size": 3, "role": "sensor"}],
                  "projections": []}}, ["network.populations[0].role"]),
    ({"network": {"populations": [{"name": "x", "size": 3, "role": "input"},
                                  {"name": "y", "size": 2, "role": "output"}],
                  "projections": [{"source": "x", "target": "y", "gain": 0}]}},
     ["network.projections[0].gain", "greater than 0"]),
    ({"network": {"populations": [{"name": "x", "size": 4, "role": "input", "shape": [1, 2, 2]},
                                  {"name": "y", "size": 1, "role": "output", "shape": [1, 1, 1]}],
                  "projections": [{"source": "x", "target": "y", "kernel": 2,
                                   "pooling": "median"}]}},
     ["network.projections[0].pooling", "'average' or 'max'"]),
    ({**BASE, "dataset": {"limit_train": -5}}, ["dataset.limit_train"]),
    ({**BASE, "record": {"weights": "sometimes"}}, ["record.weights"]),
    ({**BASE, "output": {"folder": "x"}}, ["output.folder: unknown key"]),
])
def test_validation_names_the_field(data, fragments):
    _bad(data, *fragments)


def test_several_errors_are_reported_together():
    _bad({**BASE, "train": {"epochs": 0, "batch_size": "x"}}, "train.epochs", "train.batch_size")


@pytest.mark.parametrize("text, key, value", [
    ("train.epochs=2", "train.epochs", 2), ("learning.beta=0.2", "learning.beta", 0.2),
    ("learning.lr=[0.1, 0.05]", "learning.lr", [0.1, 0.05]), ("engine.clip=false", "engine.clip", False),
    ("dataset.name=digits", "dataset.name", "digits"), ('name="a b"', "name", "a b")])
def test_override_parsing(text, key, value):
    assert config.parse_override(text) == (key, value)


def test_overrides_apply_and_validate(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[network]\nsizes = [4, 3, 2]\n')
    c, _ = config.load(str(p), ["train.epochs=3", "learning.beta=0.25"])
    assert c.train.epochs == 3 and c.learning.beta == 0.25
    with pytest.raises(ConfigError, match=r"train\.epochs: .*valid integer"):
        config.load(str(p), ["train.epochs=two"])
    with pytest.raises(ConfigError, match=r"train\.epoch: unknown key"):
        config.load(str(p), ["train.epoch=2"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        config.load(str(p), ["train.epochs"])
    with pytest.raises(ConfigError, match="dotted path"):
        config.load(str(p), ["train..epochs=2"])
    with pytest.raises(ConfigError, match="'epochs' is not a section|not a section"):
        config.load(str(p), ["train.epochs=2", "train.epochs.x=1"])


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read circuit file"):
        config.load(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[network\nsizes = [1, 2]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(str(bad))
    with pytest.raises(ConfigError, match="no built-in circuit 'nonesuch'"):
        config.load("nonesuch")


def test_resolved_circuit_round_trips_as_toml(tmp_path):
    c, _ = config.load(None, ["train.epochs=4"])
    p = tmp_path / "resolved.toml"
    p.write_text(config.to_toml(c))
    again, _ = config.load(str(p))
    assert again == c


def test_a_projection_gain_reaches_the_network():
    from neurosim.config import build_network

    def net(**extra):
        circuit = config.validate({"network": {
            "populations": [{"name": "x", "size": 3, "role": "input"},
                            {"name": "h", "size": 4, "role": "hidden"},
                            {"name": "y", "size": 2, "role": "output"}],
            "projections": [{"source": "x", "target": "h"},
                            {"source": "h", "target": "y", **extra}]}})
        return build_network(circuit.network)
    a, b = net(), net(gain=0.5)
    assert (a.params["W:x->h"] == b.params["W:x->h"]).all()
    assert abs(b.params["W:h->y"] - 0.5 * a.params["W:h->y"]).max() < 1e-15


def test_max_pooling_reaches_the_network_and_needs_a_kernel():
    from neurosim.config import build_network
    from neurosim.errors import ConfigurationError

    def net(**extra):
        circuit = config.validate({"network": {
            "populations": [{"name": "x", "size": 16, "role": "input", "shape": [1, 4, 4]},
                            {"name": "h", "size": 8, "role": "hidden", "shape": [2, 2, 2]},
                            {"name": "y", "size": 2, "role": "output"}],
            "projections": [{"source": "x", "target": "h", "kernel": 3, "padding": 1,
                             "pool": 2, **extra},
                            {"source": "h", "target": "y"}]}})
        return build_network(circuit.network)
    assert net().convs["W:x->h"].pooling == "average"
    assert net(pooling="max").convs["W:x->h"].max_pools
    circuit = config.validate({"network": {
        "populations": [{"name": "x", "size": 3, "role": "input"},
                        {"name": "y", "size": 2, "role": "output"}],
        "projections": [{"source": "x", "target": "y", "pooling": "max"}]}})
    with pytest.raises(ConfigurationError, match="x -> y has stride, padding, pool or pooling "
                                                 "but no kernel"):
        build_network(circuit.network)


def test_a_misspelt_engine_name_gets_the_close_one():
    with pytest.raises(ConfigError, match=r"engine\.name: expected a registered engine .*did you "
                                          r"mean torch\?"):
        config.load("default", ["engine.name=torhc"])
    with pytest.raises(ConfigError) as e:
        config.load("default", ["engine.name=xyz"])
    assert "did you mean" not in str(e.value)
