"""The circuit-file schema: one pydantic model per section (``network``, ``engine``,
``learning``, ``train``, ``dataset``, ``record``, ``output``, ``hardware``, ``cost``, ``sweep``,
``resistive``) and :class:`Circuit`, their whole. Unknown keys and wrong types are rejected with
the field's dotted path (:mod:`neurosim.config.files` formats the errors)."""
from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from typing import Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from ..errors import ConfigurationError
from ..plan import VARIANTS, nudge_weights


# A circuit file or an override is invalid; the message names the field (one class for every
# configuration error: ConfigError is its name here).
ConfigError = ConfigurationError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Population(_Section):
    """One population of an explicit graph; ``shape = [channels, height, width]`` for the
    ends of a convolution (its product is ``size``)."""
    name: str = Field(min_length=1)
    size: int = Field(gt=0)
    role: Literal["input", "hidden", "output"]
    shape: Optional[List[int]] = None


class Projection(_Section):
    """One projection ``source -> target`` of an explicit graph: dense, or convolutional
    with a square ``kernel`` (``stride``, zero ``padding``, ``pool`` blocks of ``pooling``
    "average" or "max");
    ``gain`` scales its initial weights (times the network's ``gain``)."""
    source: str
    target: str
    kernel: Optional[int] = Field(None, gt=0)
    stride: int = Field(1, gt=0)
    padding: int = Field(0, ge=0)
    pool: int = Field(1, gt=0)
    pooling: Literal["average", "max"] = "average"
    gain: float = Field(1.0, gt=0, allow_inf_nan=False)


class NetworkSection(_Section):
    """The network: ``sizes`` for a layered network (with optional ``skip`` pairs), or
    explicit ``populations`` and ``projections``; ``kind = "resistive"``: a layered analog
    resistive network (its elements in the ``[resistive]`` section; ``sizes`` only)."""
    kind: Literal["rate", "resistive"] = "rate"
    sizes: Optional[List[int]] = None
    skip: List[List[int]] = []
    populations: Optional[List[Population]] = None
    projections: Optional[List[Projection]] = None
    activation: Literal["hard_sigmoid", "logistic"] = "hard_sigmoid"
    dynamics: Literal["energy", "vector_field"] = "energy"
    readout: Literal["state", "softmax"] = "state"
    dtype: Literal["float64", "float32"] = "float64"
    seed: int = 0
    gain: float = Field(1.0, gt=0)
    asymmetry: float = Field(0.0, ge=0)

    @field_validator("skip")
    @classmethod
    def _skip(cls, v):
        for i, pair in enumerate(v):
            if len(pair) != 2:
                raise ValueError("entry %d must be a pair [i, j] of layer indices, got %r" % (i, pair))
        return v

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v):
        if v is not None:
            if len(v) < 2:
                raise ValueError("needs at least two layer sizes (input and output)")
            for i, n in enumerate(v):
                if n <= 0:
                    raise ValueError("entry %d must be a positive integer, got %r" % (i, n))
        return v

    @model_validator(mode="after")
    def _one_topology(self):
        explicit = self.populations is not None or self.projections is not None
        if self.sizes is None and not explicit:
            raise ValueError("give either 'sizes' (layered) or 'populations' and 'projections'")
        if self.sizes is not None and explicit:
            raise ValueError("give either 'sizes' or 'populations'/'projections', not both")
        if explicit and (self.populations is None or self.projections is None):
            raise ValueError("an explicit graph needs both 'populations' and 'projections'")
        return self


def _registered(cls, v):
    from ..engines import available      # the engines that registered themselves
    if v not in available():
        close = difflib.get_close_matches(str(v), available(), n=1)
        raise ValueError("expected a registered engine (%s)%s" % (
            ", ".join(available()), "; did you mean %s?" % close[0] if close else ""))
    return v


def _settings_fields(section, declared=()):
    """The fields of every setting of :class:`neurosim.engines.protocol.Settings` whose
    section is ``section`` (its type, default, bounds and choices), but those ``declared``
    by hand in the section's model."""
    from ..engines.protocol import Settings
    hints = typing.get_type_hints(Settings)
    out = {}
    for f in dataclasses.fields(Settings):
        if Settings.section(f.name) != section or f.name in declared:
            continue
        m = f.metadata
        kind = Literal[m["choices"]] if "choices" in m else hints[f.name]
        out[f.name] = (kind, Field(f.default, **{k: m[k] for k in ("gt", "ge") if k in m}))
    return out


def _engine_fields():
    """The ``[engine]`` fields: ``name`` and every engine setting of
    :class:`neurosim.engines.protocol.Settings` whose section is ``engine``."""
    return {"name": (str, "reference"), **_settings_fields("engine")}


EngineSection = create_model(
    "EngineSection", __base__=_Section, __doc__="""How the dynamics run: the engine (``reference`` numpy; ``resistive``: an analog
    resistive network, ``network.kind = "resistive"``, every phase its DC operating point;
    ``brian2-rate``: a compiled
    Brian2 circuit whose synapses hold the weights, one standalone run per epoch, its build in
    ``build_dir`` or a temporary folder; ``brian2-spiking``: each batch's update from a
    spiking circuit of ``neuron`` units (``poisson``, ``lif``, ``if`` firing up to ``max_rate``
    Hz; ``sigma_delta`` sending events of ``delta`` steps of their rate), ``eps`` = dt / tau with
    tau = 10 ms, ``noise`` = ``independent`` random streams per phase or ``common`` random
    numbers replayed in every phase of an example; ``plasticity`` = ``snapshot`` contrast of
    phase-end traces or ``online`` integral of the observed derivative every ``rule_every``
    steps; ``whole_epoch``: train a whole epoch in one compiled run (either rule and noise
    scheme) or, false, each mini-batch in a runtime circuit; ``input_drive`` = ``spikes`` (input units fire at x * max_rate) or ``analog``
    (an input current sum w x per example); ``input_rule`` = ``data`` or ``spikes``: what
    an input synapse's rule reads as the presynaptic rate), Euler steps ``eps`` for ``free_steps`` / ``nudge_steps``, or the block
    solver (reference engine only), each phase stopping once its projected step is at most
    ``tol`` (0: always the full counts; a phase that ends above a non-zero ``tol`` is counted
    as unsettled); ``threads``: threads over each batch's examples
    (reference engine) or OpenMP threads of the compiled circuit (``brian2-rate``).""",
    __validators__={"registered": field_validator("name")(_registered)}, **_engine_fields())


class _Learning(_Section):
    """The ``[learning]`` fields written here; :data:`LearningSection` adds the other
    ``learning`` settings of :class:`neurosim.engines.protocol.Settings`."""
    rule: Literal["ep", "continual_ep", "rbp"] = "ep"
    variant: Literal[VARIANTS] = "symmetric"
    beta: float = 0.5
    nudges: Optional[List[float]] = None
    lr: Union[float, List[float], Dict[str, float]] = 0.1
    bias_lr: Optional[Union[float, List[float], Dict[str, float]]] = None
    momentum: float = Field(0.0, ge=0, lt=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    adam_betas: List[float] = [0.9, 0.999]
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["constant", "cosine"] = "constant"

    @field_validator("beta")
    @classmethod
    def _beta(cls, v):
        if v == 0 or v != v:
            raise ValueError("must be a non-zero number")
        return v

    @field_validator("nudges")
    @classmethod
    def _nudges(cls, v):
        if v is not None:
            nudge_weights(v)        # the plan's own checks (one place), naming learning.nudges
        return v

    @field_validator("lr", "bias_lr")
    @classmethod
    def _rates(cls, v):
        if v is None:
            return v
        entries = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) \
            else [(None, v)]
        for k, x in entries:
            if not (x > 0 and math.isfinite(x)):
                if k is None:
                    raise ValueError("a learning rate must be a positive finite number")
                raise ValueError("entry %r: a learning rate must be a positive finite number, "
                                 "got %r" % (k, x))
        return v

    @field_validator("adam_betas")
    @classmethod
    def _adam_betas(cls, v):
        if len(v) != 2 or not all(0 <= b < 1 for b in v):
            raise ValueError("expected two numbers in [0, 1) (beta1, beta2), got %r" % (v,))
        return v


LearningSection = create_model(
    "LearningSection", __base__=_Learning, __doc__="""The learning rule: EP (variant, beta;
    or ``nudges``, the plan's nudge strengths, e.g. ``[-0.2, 0.1, 0.3]``, which replace them:
    :class:`neurosim.plan.Plan`; ``holomorphic``: ``points`` complex nudges on the circle of
    radius ``beta``) or a gradient baseline (``rbp``: the implicit gradient, i.e. backprop at
    the fixed point), with per-projection learning rates and the optimizer that applies the
    estimate (``sgd`` with ``momentum``, or ``adam`` with ``adam_betas``).""",
    **_settings_fields("learning", _Learning.model_fields))


class TrainSection(_Section):
    """The training run."""
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(20, gt=0)
    seed: int = 0
    fidelity_batches: int = Field(2, ge=0)
    eval_batch_size: int = Field(1000, gt=0)
    checkpoint_every: int = Field(200, gt=0)


class DatasetSection(_Section):
    """Which data to train on (see neurosim.datasets)."""
    name: str = "digits"
    limit_train: int = Field(0, ge=0)
    limit_test: int = Field(0, ge=0)
    path: str = ""
    seed: int = 0


class RecordSection(_Section):
    """What to record into traces.h5."""
    traces: bool = True
    examples: int = Field(1, ge=0)
    populations: List[str] = []
    weights: Literal["none", "final", "epoch"] = "epoch"


class OutputSection(_Section):
    """Where runs go: ``<dir>/<name>-<timestamp>/``."""
    dir: str = "runs"


def _checked_device(self):
    from ..hardware.devices import device_from_section
    device_from_section(self)        # the Device's own checks, naming hardware.<field>
    return self


def _hardware_fields():
    """The ``[hardware]`` fields: ``preset`` (a name of ``PRESETS``), ``seed``, and every field
    of :class:`neurosim.hardware.devices.Device`, optional (None: the preset's value)."""
    from ..hardware.devices import PRESETS, Device
    hints = typing.get_type_hints(Device)
    out = {"preset": (Literal[tuple(PRESETS)], "ideal"), "seed": (int, 0)}
    for f in dataclasses.fields(Device):
        out[f.name] = (Optional[hints[f.name]], None)
    return out


HardwareSection = create_model(
    "HardwareSection", __base__=_Section, __doc__="""The devices the weights live in and the circuit's analog non-idealities
    (:mod:`neurosim.hardware`). ``preset`` names a device (``ideal``, ``rram``, ``pcm``,
    ``ecram``); every other key, when given, overrides that preset's value. ``scheme`` is how
    a pair is programmed (``both`` or ``one_per_sign``, the pcm preset's), ``r_wire`` and
    ``tile_size`` the wire resistance of the reads (:mod:`neurosim.hardware.wires`). The fields, their
    meaning and their checks are :class:`neurosim.hardware.devices.Device`'s, declared once
    there.""",
    __validators__={"device": model_validator(mode="after")(_checked_device)},
    **_hardware_fields())


class CostSection(_Section):
    """Per-operation energy (pJ) and time (ns) of the cost model (:mod:`neurosim.hardware.cost`);
    a key left out keeps the documented default of the table."""
    mac_pj: Optional[float] = Field(None, ge=0)
    synaptic_event_pj: Optional[float] = Field(None, ge=0)
    pulse_pj: Optional[float] = Field(None, ge=0)
    dac_pj: Optional[float] = Field(None, ge=0)
    adc_pj: Optional[float] = Field(None, ge=0)
    neuron_step_pj: Optional[float] = Field(None, ge=0)
    tau_ns: Optional[float] = Field(None, gt=0)
    pulse_ns: Optional[float] = Field(None, ge=0)
    adc_ns: Optional[float] = Field(None, ge=0)


class SweepSection(_Section):
    """The grid a study sweeps (:mod:`neurosim.sweep`): ``params`` maps dotted circuit keys
    to lists of values; ``mode`` is ``grid`` (the cartesian product) or ``one_at_a_time``
    (each key over its values, the others at the circuit's values). ``neurosim sweep``
    without ``--param`` runs it."""
    mode: Literal["grid", "one_at_a_time"] = "grid"
    params: Dict[str, List[Union[bool, int, float, str, List[int], List[float]]]] = {}

    @field_validator("params")
    @classmethod
    def _params(cls, v):
        for key, values in v.items():
            if not values:
                raise ValueError("%s: give at least one value" % key)
        return v


class ResistiveSection(_Section):
    """The elements of a resistive network (``network.kind = "resistive"``;
    :class:`neurosim.resistive.Elements`): ``diode`` (``ideal`` or ``shockley``), ``diodes``
    (``bounded``: two per hidden node, to ``v_low`` and ``v_high``; ``split``: one to ground,
    the first half of each hidden layer at ``V >= 0``, the second at ``V <= 0``), the diode
    bounds ``v_low`` / ``v_high`` and bias sources ``v_bias`` (volts), ``input_scale``
    (volts per unit of input), the amplifier ``gain`` out of each hidden layer, the Shockley
    ``i_s`` (A) and ``n_vt`` (V), ``g_unit`` (siemens per unit conductance), ``c_node``
    (farads per node) and ``g_init`` (a node's mean total input conductance at the start,
    in units of ``g_unit``)."""
    diode: Literal["ideal", "shockley"] = "ideal"
    diodes: Literal["bounded", "split"] = "bounded"
    v_low: float = 0.0
    v_high: float = 1.0
    v_bias: float = Field(1.0, gt=0)
    input_scale: float = Field(1.0, gt=0)
    gain: float = Field(1.0, gt=0)
    i_s: float = Field(1e-12, gt=0)
    n_vt: float = Field(0.025, gt=0)
    g_unit: float = Field(1e-6, gt=0)
    c_node: float = Field(1e-13, gt=0)
    g_init: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _bounds(self):
        if not self.v_low < self.v_high:
            raise ValueError("v_low (%g) must be below v_high (%g)" % (self.v_low, self.v_high))
        return self


class Circuit(_Section):
    """A whole circuit file."""
    name: str = "circuit"
    network: NetworkSection
    engine: EngineSection = EngineSection()
    learning: LearningSection = LearningSection()
    train: TrainSection = TrainSection()
    dataset: DatasetSection = DatasetSection()
    record: RecordSection = RecordSection()
    output: OutputSection = OutputSection()
    hardware: HardwareSection = HardwareSection()
    resistive: ResistiveSection = ResistiveSection()
    cost: CostSection = CostSection()
    sweep: SweepSection = SweepSection()


