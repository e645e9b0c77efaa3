"""The registry of engines: engine classes register themselves
(:func:`~neurosim.engines.protocol.register`),
:func:`available` lists them, :func:`build` makes one from its name and settings and
:func:`from_circuit` from a circuit file's sections; a setting an engine does not declare is
refused, naming the circuit-file field."""
from __future__ import annotations

import dataclasses

from ..errors import ArgumentError, ConfigurationError
from ..plan import Plan
from ..hardware.devices import Device, device_from_section
from .protocol import ENGINE_CLASSES, Settings

DEFAULTS = Settings()
#: the settings every engine takes (the phases and the learning rule; ``tol`` stops the phases
#: of engines that can stop early, the circuits run their full counts); anything else an
#: engine reads it declares itself (:attr:`Engine.settings_used`)
SHARED = ("eps", "free_steps", "nudge_steps", "tol", "clip", "beta", "variant", "nudges",
          "points", "rule", "momentum", "optimizer", "weight_decay", "seed")


def available():
    """The names of the registered engines, in registration order."""
    _load_builtin()
    return tuple(ENGINE_CLASSES)


def engine_class(name):
    """The class registered under ``name`` (a ConfigurationError naming ``engine.name`` for an
    unknown one)."""
    if name not in available():
        raise ConfigurationError("engine.name: unknown engine %r; known: %s"
                                 % (name, ", ".join(available())))
    return ENGINE_CLASSES[name]


def _load_builtin():
    """Import the engines shipped with neurosim (each registers itself on import)."""
    from . import accelerator, brian_rate, brian_spiking, reference, resistive  # noqa: F401


def check(name, settings):
    """A ConfigurationError naming the field of the first setting the engine ``name`` does not
    use (not at its default), or a learning rule / optimizer it cannot apply."""
    cls = ENGINE_CLASSES[name]
    try:                              # the phase plan (learning.nudges, beta, variant, points)
        plan = Plan.of(settings.beta, settings.variant, settings.nudges or None,
                       points=settings.points)
    except ArgumentError as e:
        raise ConfigurationError(str(e)) from None
    if plan.complex and not cls.complex_nudges:
        raise ConfigurationError("%s: holomorphic EP runs complex nudges on complex states; the "
                                 "%s engine runs real ones (use engine.name = \"reference\")"
                                 % (settings.plan_field, name))
    used = set(SHARED) | set(cls.settings_used)
    for field in (f.name for f in dataclasses.fields(Settings)):
        if field not in used and getattr(settings, field) != getattr(DEFAULTS, field):
            raise ConfigurationError("%s: the %s engine does not use this setting (got %r); "
                                     "remove it or choose another engine.name"
                                     % (Settings.field_name(field), name,
                                        getattr(settings, field)))
    if settings.rule not in cls.rules:
        raise ConfigurationError("learning.rule: the %s engine trains with %s, got %r"
                                 % (name, " or ".join(cls.rules), settings.rule))
    if cls.optimizers:
        return
    for field, plain in (("momentum", 0.0), ("weight_decay", 0.0), ("optimizer", "sgd")):
        if getattr(settings, field) != plain:
            raise ConfigurationError("learning.%s: the %s engine applies plain EP updates "
                                     "(optimizer = \"sgd\", momentum = 0, weight_decay = 0), "
                                     "got %r" % (field, name, getattr(settings, field)))


def check_network(settings, net):
    """A ConfigurationError naming the field where the plan of ``settings`` cannot run on
    ``net`` (holomorphic EP on dynamics that are not analytic:
    :meth:`~neurosim.plan.Plan.check_dynamics`)."""
    plan = Plan.of(settings.beta, settings.variant, settings.nudges or None,
                   points=settings.points)
    try:
        plan.check_dynamics(net, settings.clip, settings.plan_field)
    except ArgumentError as e:
        raise ConfigurationError(str(e)) from None


def build(name, net, *, hardware=None, hardware_seed=0, batch_size=None, **settings):
    """The engine ``name`` (any of :func:`available`: ``"reference"``, ``"brian2-rate"``,
    ``"brian2-spiking"``, ``"resistive"``, or one registered from outside) bound to
    ``net``; ``settings`` are named as the fields of the circuit file's ``[engine]`` and
    ``[learning]`` sections (``eps``, ``free_steps``, ``nudge_steps``, ``clip``, ``solver``,
    ``beta``, ``variant``, ...; see :class:`~neurosim.engines.protocol.Settings`).

    ``hardware``: a :class:`~neurosim.hardware.Device`, a preset name or a ``[hardware]``
    mapping: the engine's weights then live in a crossbar of it (``hardware_seed`` seeds its
    draws). ``batch_size``: the mini-batch the circuit engines build for."""
    cls = engine_class(name)
    s = Settings.from_kwargs(settings)
    from ..resistive import ResistiveNetwork
    if isinstance(net, ResistiveNetwork) and name != "resistive":
        raise ConfigurationError("engine.name: a resistive network (network.kind = "
                                 "\"resistive\") trains with engine.name = \"resistive\", "
                                 "got %r" % name)
    check(name, s)
    check_network(s, net)
    engine = cls(net, s, batch_size=batch_size)
    if hardware is None:
        return engine
    device = hardware
    if isinstance(device, str):
        device = device_from_section({"preset": device})
    elif not isinstance(device, Device):
        device = device_from_section(device)
    if device.is_ideal:
        return engine
    from .devices import HardwareEngine
    return HardwareEngine(engine, device, seed=hardware_seed)


def settings_of(circuit):
    """The engine settings of a circuit file: every :class:`Settings` field, read from its
    circuit section (:meth:`Settings.section`: ``[engine]``, ``[learning]`` or ``[train]``)."""
    out = {}
    for f in dataclasses.fields(Settings):
        v = getattr(getattr(circuit, Settings.section(f.name)), f.name)
        out[f.name] = tuple(v or ()) if f.name == "nudges" else v
    return out


def from_circuit(circuit, net):
    """The engine of a circuit file, on the devices of its ``[hardware]`` section."""
    return build(circuit.engine.name, net, hardware=getattr(circuit, "hardware", None),
                 hardware_seed=getattr(getattr(circuit, "hardware", None), "seed", 0),
                 batch_size=circuit.train.batch_size, **settings_of(circuit))


__all__ = ["build", "available", "engine_class", "from_circuit", "settings_of", "check",
           "check_network", "SHARED"]
