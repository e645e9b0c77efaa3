"""The registry of engines: :func:`build` makes an engine from its name and settings, and
:func:`from_circuit` from a circuit file's sections; each engine refuses, naming the
circuit-file field, the settings it cannot honour."""
from __future__ import annotations

from ..errors import ConfigurationError
from ..hardware.devices import Device, device_from_section
from .protocol import Settings

DEFAULTS = Settings()
#: settings each engine cannot honour unless left at their defaults
NOT_HONOURED = {
    "reference": ("neuron", "noise", "plasticity", "rule_every", "whole_epoch", "input_drive",
                  "input_rule", "max_rate", "build_dir"),
    "brian2-rate": ("solver", "persistent", "tol", "neuron", "noise", "plasticity", "rule_every",
                    "whole_epoch", "input_drive", "input_rule", "max_rate"),
    "brian2-spiking": ("solver", "persistent", "tol", "threads"),
    "resistive": ("solver", "persistent", "tol", "neuron", "noise", "plasticity", "rule_every",
                  "whole_epoch", "input_drive", "input_rule", "max_rate", "build_dir",
                  "threads"),
}
#: learning rules each engine trains with
RULES = {"reference": ("ep", "continual_ep", "rbp"), "brian2-rate": ("ep",),
         "brian2-spiking": ("ep",), "resistive": ("ep",)}


def _reference(net, settings, batch_size):
    from .reference import ReferenceEngine
    return ReferenceEngine(net, settings)


def _brian_rate(net, settings, batch_size):
    from .brian_rate import BrianRateEngine
    return BrianRateEngine(net, settings, batch_size=batch_size)


def _brian_spiking(net, settings, batch_size):
    from .brian_spiking import SpikingEngine
    return SpikingEngine(net, settings, batch_size=batch_size)


def _resistive(net, settings, batch_size):
    from .resistive import ResistiveEngine
    return ResistiveEngine(net, settings)


ENGINES = {"reference": _reference, "brian2-rate": _brian_rate, "brian2-spiking": _brian_spiking,
           "resistive": _resistive}


def check(name, settings):
    """A ConfigurationError naming the field of the first setting ``name`` cannot honour."""
    for field in NOT_HONOURED[name]:
        if getattr(settings, field) != getattr(DEFAULTS, field):
            raise ConfigurationError("%s: the %s engine does not use this setting (got %r); "
                                     "remove it or choose another engine.name"
                                     % (Settings.field_name(field), name,
                                        getattr(settings, field)))
    if settings.rule not in RULES[name]:
        raise ConfigurationError("learning.rule: the %s engine trains with %s, got %r"
                                 % (name, " or ".join(RULES[name]), settings.rule))
    if name == "reference" and settings.threads != 1 and settings.rule != "ep":
        raise ConfigurationError("engine.threads: threads over the batch run EP's phases "
                                 "(learning.rule = \"ep\"); the %s rule runs on one thread"
                                 % settings.rule)
    if name not in ("reference", "resistive") and settings.momentum:
        raise ConfigurationError("learning.momentum: the %s engine applies plain EP updates "
                                 "(momentum = 0)" % name)
    if name not in ("reference", "resistive") and settings.weight_decay:
        raise ConfigurationError("learning.weight_decay: the %s engine applies plain EP updates "
                                 "(weight_decay = 0)" % name)
    if name not in ("reference", "resistive") and settings.optimizer != "sgd":
        raise ConfigurationError("learning.optimizer: the %s engine applies plain EP updates "
                                 "(optimizer = \"sgd\"), got %r" % (name, settings.optimizer))


def build(name, net, *, device=None, hardware_seed=0, batch_size=None, **settings):
    """The engine ``name`` (``"reference"``, ``"brian2-rate"``, ``"brian2-spiking"``) bound to
    ``net``; ``settings`` are named as the fields of the circuit file's ``[engine]`` and
    ``[learning]`` sections (``eps``, ``free_steps``, ``nudge_steps``, ``clip``, ``solver``,
    ``beta``, ``variant``, ...; see :class:`~neurosim.engines.protocol.Settings`).

    ``device``: a :class:`~neurosim.hardware.Device`, a preset name or a ``[hardware]``
    mapping: the engine's weights then live in a crossbar of it (``hardware_seed`` seeds its
    draws). ``batch_size``: the mini-batch the circuit engines build for."""
    if name not in ENGINES:
        raise ConfigurationError("engine.name: unknown engine %r; known: %s"
                                 % (name, ", ".join(ENGINES)))
    s = Settings.from_kwargs(settings)
    from ..resistive import ResistiveNetwork
    if isinstance(net, ResistiveNetwork) and name != "resistive":
        raise ConfigurationError("engine.name: a resistive network (network.kind = "
                                 "\"resistive\") trains with engine.name = \"resistive\", "
                                 "got %r" % name)
    check(name, s)
    engine = ENGINES[name](net, s, batch_size)
    if device is None:
        return engine
    if isinstance(device, str):
        device = device_from_section({"preset": device})
    elif not isinstance(device, Device):
        device = device_from_section(device)
    if device.is_ideal:
        return engine
    from .devices import HardwareEngine
    return HardwareEngine(engine, device, seed=hardware_seed)


def settings_of(circuit):
    """The engine settings of a circuit file (its ``[engine]`` and ``[learning]`` fields)."""
    e, L = circuit.engine, circuit.learning
    return dict(eps=e.eps, free_steps=e.free_steps, nudge_steps=e.nudge_steps, tol=e.tol,
                clip=e.clip,
                solver=e.solver, persistent=e.persistent, neuron=e.neuron, noise=e.noise,
                plasticity=e.plasticity, rule_every=e.rule_every, whole_epoch=e.whole_epoch,
                input_drive=e.input_drive,
                input_rule=e.input_rule,
                max_rate=e.max_rate, build_dir=e.build_dir, threads=e.threads, beta=L.beta,
                variant=L.variant, nudges=tuple(L.nudges or ()),
                rule=L.rule, momentum=L.momentum, optimizer=L.optimizer,
                weight_decay=L.weight_decay, seed=circuit.train.seed)


def from_circuit(circuit, net):
    """The engine of a circuit file, on the devices of its ``[hardware]`` section."""
    return build(circuit.engine.name, net, device=getattr(circuit, "hardware", None),
                 hardware_seed=getattr(getattr(circuit, "hardware", None), "seed", 0),
                 batch_size=circuit.train.batch_size, **settings_of(circuit))


__all__ = ["build", "from_circuit", "settings_of", "ENGINES", "check"]
