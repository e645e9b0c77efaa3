"""One builder for every Brian2 circuit (Nengo's ``Builder.register`` / ``BuiltEnsemble``
pattern): a build function per model and population kind (``input``, ``state``) or
projection kind (``tied``, ``lateral``, ``directed``), registered with
:meth:`Builder.register`, and one build result, :class:`BuiltCircuit`, from which a circuit
makes its ``brian2.Network`` and reads its results.

A population builder is called ``fn(b2, ctx, pop)`` and returns the population's group; a
projection builder ``fn(b2, ctx, key)`` returns a :class:`BuiltProjection`. ``ctx`` is the
model's context (the network, the batch, names, the namespace of constants and TimedArrays);
its ``groups`` are filled as the populations are built, before any projection.

The models register themselves when their module is imported (``"rate"`` in
:mod:`neurosim.brian.rate`, ``"spiking"`` in :mod:`neurosim.brian.spiking_build`); this
module imports none of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .device import CircuitError

#: The population kinds and the projection kinds a model may register.
POPULATION_KINDS = ("input", "state")
PROJECTION_KINDS = ("tied", "lateral", "directed")


@dataclass
class BuiltProjection:
    """One projection as built: the ``Synapses`` holding its weights ``w`` and the local
    rule's accumulator ``acc``, the (pre, post) indices of its synapses within one replica of
    the network, and further objects it needs (e.g. the backward ``Synapses`` of a tied
    weight in a spiking circuit)."""
    synapses: object
    pre: np.ndarray
    post: np.ndarray
    extra: list = field(default_factory=list)


@dataclass
class BuiltCircuit:
    """What a build made: the context the builders read, the group of every population, the
    built projection of every weight key, the monitors by name and any further objects (relay
    groups, network operations)."""
    context: object
    groups: dict = field(default_factory=dict)
    projections: dict = field(default_factory=dict)
    monitors: dict = field(default_factory=dict)
    extra: list = field(default_factory=list)

    @property
    def synapses(self):
        """``{weight key: Synapses}``."""
        return {k: p.synapses for k, p in self.projections.items()}

    def objects(self):
        """Every Brian2 object of the build, groups first."""
        objs = list(self.groups.values())
        for p in self.projections.values():
            objs += [p.synapses] + list(p.extra)
        return objs + list(self.monitors.values()) + list(self.extra)

    def network(self, b2):
        """A ``brian2.Network`` of :meth:`objects`."""
        return b2.Network(*self.objects())

    def accumulators(self):
        """The accumulated ``acc`` of every synapse and ``acc_b`` of every neuron, per
        example: ``{param key: (batch,) + shape}``."""
        net, batch = self.context.net, self.context.batch
        acc = {}
        for key, p in self.projections.items():
            a = np.zeros((batch,) + net.params[key].shape)
            vals = np.asarray(p.synapses.acc[:]).reshape(batch, -1)
            for r in range(batch):
                a[r, p.pre, p.post] = vals[r]
            acc[key] = a
        for q in net.state_pops:
            acc["b:%s" % q] = np.asarray(self.groups[q].acc_b[:]).reshape(batch, net.sizes[q])
        return acc


def population_kind(net, pop):
    """``"input"`` or ``"state"``."""
    return "input" if pop in net.inputs else "state"


def projection_kind(net, key, ends):
    """``"directed"`` (vector-field dynamics), ``"lateral"`` (``a -> a``) or ``"tied"``."""
    src, tgt = ends[key]
    if net.dynamics == "vector_field":
        return "directed"
    return "lateral" if src == tgt else "tied"


class Builder:
    """The registry of build functions, per model and kind, and the build itself."""

    builders = {}

    @classmethod
    def register(cls, model, kind):
        """Decorator: ``fn`` builds populations or projections of ``kind`` for ``model``."""
        if kind not in POPULATION_KINDS + PROJECTION_KINDS:
            raise ValueError("kind must be one of %s, got %r"
                             % (POPULATION_KINDS + PROJECTION_KINDS, kind))

        def register_builder(fn):
            cls.builders[(model, kind)] = fn
            return fn
        return register_builder

    @classmethod
    def function(cls, model, kind):
        """The build function registered for ``model`` and ``kind``."""
        try:
            return cls.builders[(model, kind)]
        except KeyError:
            raise CircuitError("the %s model has no %s builder (it builds %s)" % (
                model, kind, sorted(k for m, k in cls.builders if m == model))) from None

    @classmethod
    def build(cls, model, b2, ctx):
        """Build every population, then every projection, of ``ctx.net`` for ``model``;
        returns the :class:`BuiltCircuit` (no monitors yet)."""
        net = ctx.net
        built = BuiltCircuit(ctx, groups=ctx.groups)
        for pop in net.graph.nodes:
            ctx.groups[pop] = cls.function(model, population_kind(net, pop))(b2, ctx, pop)
        for key in net.projections:
            kind = projection_kind(net, key, ctx.ends)
            built.projections[key] = cls.function(model, kind)(b2, ctx, key)
        return built


__all__ = ["Builder", "BuiltCircuit", "BuiltProjection", "POPULATION_KINDS",
           "PROJECTION_KINDS", "population_kind", "projection_kind"]
