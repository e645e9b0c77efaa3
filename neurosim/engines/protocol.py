"""The engine protocol (DESIGN.md, "Engines"): the few operations every engine offers, so that
the trainer, the cost model, sweeps and the CLI never ask an engine what it is.

An engine is bound to one :class:`~neurosim.network.Network` and to its settings
(:class:`Settings`, named as the circuit file's ``[engine]`` and ``[learning]`` fields).

* :meth:`Engine.estimate` -- the engine's own update for a batch, as a gradient estimate keyed
  like ``net.params`` (for a circuit: read back from its synapses); parameters unchanged.
* :meth:`Engine.infer` -- the output population's rates after the engine's own free phase
  (a spiking engine estimates them from the output spikes).
* :meth:`Engine.step` -- one training step: the estimate and the optimizer's update, which an
  engine may fuse for speed; it reports the estimate (and, where the parameters cannot take an
  update exactly, the change they took) only when asked.
* :meth:`Engine.train_epoch` -- engines with ``fuses_epoch`` run a whole epoch in one circuit
  run and report the updates of the batches asked for, as they happened inside the run.
* :meth:`Engine.counters`, :meth:`Engine.state_dict` / :meth:`Engine.load_state_dict`,
  :meth:`Engine.close`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..errors import ConfigurationError
from ..plan import Plan, batch_stream


@dataclass(frozen=True)
class Settings:
    """What an engine runs: the ``[engine]`` fields and the ``[learning]`` fields the phases
    need, declared once here: names, types, defaults, bounds (``gt``, ``ge``) and choices in
    each field's metadata, from which the circuit file's ``[engine]`` schema is made
    (:class:`neurosim.config.EngineSection`). Each field's section is ``[engine]`` unless its
    metadata names another (:meth:`section`)."""

    eps: float = field(default=0.5, metadata={"gt": 0})
    free_steps: int = field(default=20, metadata={"gt": 0})
    nudge_steps: int = field(default=4, metadata={"gt": 0})
    tol: float = field(default=0.0, metadata={"ge": 0})
    clip: bool = True
    solver: str = field(default="euler", metadata={"choices": ("euler", "block")})
    persistent: bool = False
    # the spike codes of neurosim.brian.equations.CODES (tests/test_brian_spiking.py checks)
    neuron: str = field(default="poisson",
                        metadata={"choices": ("poisson", "lif", "if", "sigma_delta")})
    delta: float = field(default=1e-3, metadata={"gt": 0})
    noise: str = field(default="independent", metadata={"choices": ("independent", "common")})
    plasticity: str = field(default="snapshot", metadata={"choices": ("snapshot", "online")})
    rule_every: int = field(default=1, metadata={"gt": 0})
    whole_epoch: bool = True
    input_drive: str = field(default="spikes", metadata={"choices": ("spikes", "analog")})
    input_rule: str = field(default="data", metadata={"choices": ("data", "spikes")})
    max_rate: float = field(default=1000.0, metadata={"gt": 0})
    build_dir: str = ""
    threads: int = field(default=1, metadata={"gt": 0})
    device: str = "auto"
    beta: float = field(default=0.5, metadata={"section": "learning"})
    variant: str = field(default="symmetric", metadata={"section": "learning"})
    nudges: tuple = field(default=(), metadata={"section": "learning"})
    points: int = field(default=4, metadata={"section": "learning", "ge": 2})
    rule: str = field(default="ep", metadata={"section": "learning"})
    momentum: float = field(default=0.0, metadata={"section": "learning"})
    optimizer: str = field(default="sgd", metadata={"section": "learning"})
    weight_decay: float = field(default=0.0, metadata={"section": "learning"})
    seed: int = field(default=0, metadata={"section": "train"})

    def __post_init__(self):
        """Each field's bounds and choices (its metadata), refused naming the circuit-file
        field: the same checks the circuit file's schema makes, for settings given in Python."""
        for f in dataclasses.fields(self):
            v, m = getattr(self, f.name), f.metadata
            bad = ("choices" in m and v not in m["choices"]) or \
                ("gt" in m and not v > m["gt"]) or ("ge" in m and not v >= m["ge"])
            if bad:
                what = ("one of %s" % ", ".join(map(repr, m["choices"])) if "choices" in m
                        else "a number %s %s" % ((">", m["gt"]) if "gt" in m else (">=", m["ge"])))
                raise ConfigurationError("%s: expected %s, got %r"
                                         % (self.field_name(f.name), what, v))

    @classmethod
    def section(cls, name):
        """The circuit-file section of a setting: ``"engine"`` unless its field says
        otherwise."""
        f = {f.name: f for f in dataclasses.fields(cls)}.get(name)
        return "engine" if f is None else f.metadata.get("section", "engine")

    @classmethod
    def field_name(cls, name):
        """The dotted circuit-file field of a setting (``"engine.eps"``)."""
        return "%s.%s" % (cls.section(name), name)

    @property
    def plan_field(self):
        """The circuit-file field the plan's nudges come from: ``learning.nudges`` when given,
        else ``learning.variant``."""
        return "learning.nudges" if self.nudges else "learning.variant"

    @classmethod
    def from_kwargs(cls, settings):
        """Settings from keyword arguments; an unknown name is a ConfigurationError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigurationError("unknown engine setting(s) %s; known: %s"
                                     % (unknown, sorted(known)))
        if "nudges" in settings and settings["nudges"] is not None:
            settings = dict(settings, nudges=tuple(settings["nudges"]))
        elif "nudges" in settings:
            settings = dict(settings, nudges=())
        return cls(**settings)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


class Estimate(dict):
    """A gradient estimate keyed like ``net.params`` (a dict), with the free state the engine
    reached on the way (``state``: population -> (batch, n)), the batch-mean cost there and
    the phases as they ran (``phases``: :class:`~neurosim.plan.PhaseRun` s, the free phase
    first; empty where the engine does not report them)."""

    def __init__(self, gradient, state=None, cost=float("nan"), phases=()):
        super().__init__(gradient)
        self.state, self.cost, self.phases = state, float(cost), list(phases)


class StepResult(NamedTuple):
    """What :meth:`Engine.step` returns: the free state (fresh arrays, the persistent
    particles), the batch-mean cost at it, and, when asked, the engine's estimate and the
    change of the parameters as a gradient (``-(change) / lr``; None where the parameters took
    the optimizer's update exactly); ``phases``: the phases as they ran (see
    :class:`Estimate`); ``truth``: ``(RBP gradient, fixed point)`` where the step computed the
    ground truth itself at the batch's parameters (the ``rbp`` rule), else None."""

    state: dict
    cost: float
    estimate: dict | None = None
    applied: dict | None = None
    phases: tuple = ()
    truth: tuple | None = None


@dataclass
class EpochResult:
    """What :meth:`Engine.train_epoch` returns: the output rates each training example had at
    the end of its free phase (as trained, in the given order), the output rates of the
    evaluation examples after the epoch, and per recorded batch index ``b`` the pair
    ``(estimate, params)``: the engine's update of that batch and the parameters it was
    computed at, both read from inside the run."""

    train_outputs: dict
    eval_outputs: dict | None = None
    recorded: dict = field(default_factory=dict)


def with_evaluation(x, y, signs, x_eval):
    """The examples of a whole-epoch circuit run: the training examples, then ``x_eval``
    (targets 0, sign 0: they only run their free phase, at the final weights). Returns
    ``(x, y, signs, n_train)``."""
    n = np.shape(x)[0]
    xs, ys, ss = [x], [y], [signs]
    if x_eval is not None and len(x_eval):
        xs.append(x_eval)
        ys.append(np.zeros((len(x_eval), np.shape(y)[1])))
        ss.append(np.zeros(len(x_eval)))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ss), n


def split_outputs(outputs, n_train, recorded):
    """The :class:`EpochResult` of a run of :func:`with_evaluation`'s examples."""
    has_eval = any(v.shape[0] > n_train for v in outputs.values())
    return EpochResult(train_outputs={p: v[:n_train] for p, v in outputs.items()},
                       eval_outputs=({p: v[n_train:] for p, v in outputs.items()}
                                     if has_eval else None),
                       recorded=dict(recorded))


#: the engine classes by name, filled by :func:`register` (``engines.available()`` lists them)
ENGINE_CLASSES = {}


def register(name):
    """Class decorator: the engine class is built by ``neurosim.engines.build`` under ``name``
    (its :attr:`Engine.name`). An engine declares on its class the settings it reads beyond
    the shared ones (``settings_used``), the learning rules it trains with (``rules``) and
    whether it applies an optimizer's update (``optimizers``); a setting it does not declare
    is refused when not at its default."""
    def add(cls):
        cls.name = name
        ENGINE_CLASSES[name] = cls
        return cls
    return add


class Engine:
    """Base class of every engine (module docstring). Subclasses set :attr:`name` and
    implement :meth:`estimate`, :meth:`infer` and :meth:`step`."""

    name = "engine"
    #: the settings the engine reads beyond the shared ones (``registry.SHARED``); any other
    #: setting not at its default is refused, naming its circuit-file field
    settings_used = ()
    #: the learning rules it trains with (``learning.rule``)
    rules = ("ep",)
    #: True where its phases are the numpy dynamics (:mod:`neurosim.relax`), which the device
    #: wrapper re-runs with a fresh read of the crossbar before each phase
    numpy_phases = False
    #: True where its phases run complex nudges on complex states (holomorphic EP); other
    #: engines are refused a complex plan, naming ``learning.variant``
    complex_nudges = False
    #: whether it applies any optimizer's update (momentum, Adam, weight decay); False: plain
    #: EP updates only
    optimizers = False
    #: True when :meth:`train_epoch` runs a whole epoch in one circuit run (the trainer then
    #: calls it instead of :meth:`step`).
    fuses_epoch = False
    #: True when the numpy rate network's readout of the same weights means something (the
    #: run reports it beside the engine's own accuracy); False for other kinds of network.
    reference_readout = True
    #: What the trajectories' states are, and their units (the traces' reports say it).
    state_variable, state_units = "s", "dimensionless"

    def __init__(self, net, settings, batch_size=None):
        self.net, self.settings = net, settings

    @property
    def plan(self):
        """The phase plan of every batch (:class:`neurosim.plan.Plan`), from the settings;
        ``plan.for_batch(rng)`` draws a random-sign batch's sign."""
        s = self.settings
        return Plan.of(s.beta, s.variant, s.nudges or None, points=s.points,
                       free_steps=s.free_steps, nudge_steps=s.nudge_steps, tol=s.tol)

    # -- what every engine does -----------------------------------------------------------
    def estimate(self, x, y, state=None, rng=None):
        """The engine's own update for the batch as an :class:`Estimate`; ``rng`` seeds the
        random sign (random-sign EP). ``net.params`` are unchanged."""
        raise NotImplementedError

    def infer(self, x, state=None):
        """Rates ``{population: (batch, n)}`` after the engine's own free phase (at least the
        output populations)."""
        raise NotImplementedError

    def step(self, x, y, optimizer, state=None, rng=None, want_estimate=False):
        """One training step: the estimate and ``optimizer``'s update of ``net.params``;
        returns a :class:`StepResult` (with the estimate when ``want_estimate``)."""
        raise NotImplementedError

    def train_epoch(self, x, y, signs, lrs, batch_size, record=(), x_eval=None):
        """A whole epoch in one run (only where :attr:`fuses_epoch`); see
        :class:`EpochResult`."""
        raise ConfigurationError("engine.name: the %s engine trains batch by batch" % self.name)

    def ground_truth(self, x, y, tol, label, state=None):
        """RBP's implicit gradient of the system the engine simulates, at its exactly solved
        free fixed point, and that point (with ``residual`` and ``pinned`` per population):
        for rate networks :func:`neurosim.fixed_point.free_fixed_point` and
        :func:`neurosim.rbp.gradient`. ``state``: the engine's own free state: the fixed
        point is then polished from it (the one of the basin the engine settled in), else
        relaxed from rest. ``label`` names the batch in errors."""
        from .. import rbp
        from ..fixed_point import free_fixed_point
        s = self.settings
        fp = free_fixed_point(self.net, x, clip=s.clip, eps=s.eps, tol=tol, batch=label,
                              state=state, warm_steps=None if state is None else 0)
        g = rbp.gradient(self.net, x, y, method="implicit", eps=s.eps, state=fp.state,
                         clip=s.clip)
        return g, fp

    def free_state(self, x, state=None):
        """The free state after the engine's free phase (the ``rbp`` and ``continual_ep``
        rules train from it); engines that train with EP only refuse."""
        raise ConfigurationError("learning.rule: the %s engine trains with EP (rule = \"ep\")"
                                 % self.name)

    def trajectories(self, x, y):
        """What the engine's own monitors see over one EP step of the batch: ``{"states":
        {population: (steps, batch, n)}, "phases": [(name, start step, stop step, beta)],
        "spikes": {population: {"t", "i", "example"}} or None, "dt": the step, "time_units"}``
        (the free phase, then the nudged phases from its end), for ``traces.h5``; the step
        and its units are :meth:`clock`'s."""
        s = self.settings
        plan = self.plan.for_batch(batch_stream(s.seed, 0, 0))   # epoch 1's first batch
        phases = [("free", 0.0, s.free_steps)] + [(name, b, s.nudge_steps)
                                                  for name, b in plan.phase_names()]
        parts, rows, start, spikes = [], [], 0, None
        s0 = None
        for name, beta, steps in phases:
            states, spk = self.phase_trajectory(x, y, beta, steps, s0)
            steps = next(iter(states.values())).shape[0] - 1    # as ran (a phase may settle)
            if name == "free":
                s0 = {p: v[-1] for p, v in states.items()}
            else:
                states = {p: v[1:] for p, v in states.items()}
            if spk is not None:
                spikes = spikes or {}
                for p, d in spk.items():
                    cur = spikes.setdefault(p, {"t": [], "i": [], "example": []})
                    cur["t"].append(np.asarray(d["t"]) + start * s.eps)
                    cur["i"].append(np.asarray(d["i"]))
                    cur["example"].append(np.asarray(d["example"]))
            parts.append(states)
            rows.append((name, start, start + steps, beta))
            start += steps
        out = {p: np.concatenate([q[p] for q in parts]) for p in parts[0]}
        if spikes:
            spikes = {p: {k: np.concatenate(v) for k, v in d.items()} for p, d in spikes.items()}
        dt, units = self.clock()
        return {"states": out, "phases": rows, "spikes": spikes, "dt": dt, "time_units": units}

    def clock(self):
        """``(dt, time units)`` of the engine's steps: Euler steps of ``eps`` tau, or block
        sweeps (``(1, "sweep")``: a sweep is not a time step)."""
        s = self.settings
        return (1.0, "sweep") if s.solver == "block" else (s.eps, "tau")

    def phase_trajectory(self, x, y, beta, steps, state=None):
        """States ``(steps + 1, batch, n)`` per population of one phase with nudging ``beta``
        from ``state`` (rest by default), from the engine's own monitors, and the phase's
        spikes (spiking engines) or None."""
        raise NotImplementedError

    # -- what the cost model, checkpoints and the run read ----------------------------------
    def counters(self):
        """Counts for the cost model (:mod:`neurosim.hardware.cost`): any of
        ``synaptic_events`` and ``spikes`` (dicts ``{"free": n, "nudged": n}``), ``pulses``
        (int, refreshes included), ``refreshes`` and ``refresh_pulses`` (int), ``reads``,
        ``dac``, ``adc``, ``rule_ops`` (int: a spiking engine's local-rule synaptic
        operations). Cumulative since the engine was built."""
        return {}

    def state_dict(self):
        """Everything besides ``net.params`` that determines the engine's future, as flat
        name -> numpy array (for ``np.savez``)."""
        return {}

    def load_state_dict(self, d):
        """Restore a :meth:`state_dict`."""

    def close(self):
        """Release what the engine holds (compiled circuits, build folders)."""

    @property
    def evaluated_by(self):
        """The engine whose outputs the run's accuracy comes from (its own name)."""
        return self.name

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, self.name)


__all__ = ["Engine", "register", "ENGINE_CLASSES", "Settings", "Estimate", "StepResult", "EpochResult", "with_evaluation",
           "split_outputs"]
