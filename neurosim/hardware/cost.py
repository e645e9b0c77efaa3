"""The cost model: what an EP training run would cost in energy and time on analog (or
spiking) hardware, counted per example and per epoch, split by phase (free, nudged, update).

The table (:class:`CostTable`)
------------------------------
Energy per operation in pJ, times in ns. The defaults are **order-of-magnitude figures** for
analog in-memory computing, taken from the literature below; they are not a calibrated model
of any chip. Override any of them in the circuit file's ``[cost]`` section (e.g.
``mac_pj = 0.05``), or pass a :class:`CostTable` to :class:`CostModel`.

==================  =========  ==================================================================
entry               default    source / reasoning
==================  =========  ==================================================================
mac_pj              0.01 pJ    one multiply-accumulate in a resistive crossbar. Gokmen & Vlasov
                               (2016, Front. Neurosci. 10:333) estimate an RPU accelerator at
                               ~84,000 GOps/s/W, about 12 fJ per operation; Burr et al. (2017,
                               Adv. Phys. X 2:89) put analog NVM crossbar MACs in the fJ to
                               tens-of-fJ range.
synaptic_event_pj   26 pJ      one spike delivered to one synapse: IBM TrueNorth, 26 pJ per
                               synaptic event (Merolla et al. 2014, Science 345:668).
pulse_pj            1 pJ       one weight-programming pulse on one device: RRAM/ECRAM pulses cost
                               ~0.1-10 pJ, PCM up to ~100 pJ (Burr et al. 2017).
dac_pj              0.1 pJ     one input conversion (a row driver of 4-8 bits): an assumption,
                               a tenth of an ADC conversion of the same resolution.
adc_pj              1 pJ       one 8-bit conversion at 10-1000 MS/s: Murmann, "ADC Performance
                               Survey 1997-present" (Walden figure of merit of a few fJ per
                               conversion step, times 2^8 steps).
neuron_step_pj      1 pJ       one update of one neuron (analog integrator + activation) per
                               step; digital neuromorphic neuron updates cost tens of pJ
                               (Intel Loihi, Davies et al. 2018, IEEE Micro 38:82), analog
                               integrators well under that.
tau_ns              10 ns      the neuron time constant: analog crossbar integrators settle in
                               tens of ns (the RPU forward cycle integrates for 80 ns, Gokmen &
                               Vlasov 2016). Spiking circuits with biological time constants
                               need e.g. ``tau_ns = 1e7`` (10 ms).
pulse_ns            1 ns       one programming pulse (Gokmen & Vlasov 2016: ns update pulses).
adc_ns              10 ns      one conversion (an 8-bit SAR at ~100 MS/s, Murmann's survey).
==================  =========  ==================================================================

Counting per example (the engine's settings ``eps``, ``free_steps``, ``nudge_steps``, or the
steps the phases took on average where they settle early, ``engine.tol``):

* **MACs per step** ``M = sum over the network's terms of n_source * n_target``: every matrix
  product the dynamics take. A tied (energy) weight between state populations is used in
  both directions (forward and feedback products), so it counts ``2 n_pre n_post``; an input
  projection counts ``n_in n_post`` (one direction). The input is constant during an example,
  but an analog crossbar integrates its current at every step, so it is counted at every
  step (the numpy engine's block solver and the Brian2 rate circuit compute it once; the
  hardware would not). A lateral (self) projection counts ``n (n - 1)`` (zero diagonal);
  vector-field networks count each of their untied matrices once. A convolution counts the
  products computed (``Conv.macs``: output positions times kernel size, with an average
  pooling folded into the kernel where that saves work). Spiking engines do no MACs: their
  synaptic work is counted as synaptic events instead. A softmax readout's
  projections (outside the dynamics) count ``n_source n_out`` once in the free phase (the
  prediction) and ``2 n_source n_out`` per nudged step (the logits and the pull
  ``(dC/dz) W^T``).
* **Steps.** Free phase: ``free_steps``; nudged phase: ``nudge_steps`` per nudged phase, times
  2 for symmetric EP (``+beta`` and ``-beta``). The block solver's sweeps count as steps (one
  sweep does the products of one Euler step).
* **Settling time** per phase in units of tau: ``steps * eps``.
* **Neuron updates**: the number of state units per step.
* **DAC conversions**: the input units once per example (free phase) and the target units
  once per example (nudged phase; the ``-beta`` phase reuses them).
* **ADC conversions**: every state unit is read at the end of every phase (the update needs
  the free and nudged states): ``n_state`` in the free phase, ``n_state`` per nudged phase.
* **Synaptic events** (spiking engines): each spike times the fan-out of its population's
  pathways, counted from the circuits of every batch and split at the end of the free phase
  (:mod:`neurosim.engines.brian_spiking`).
* **Weight-update pulses** per batch: the crossbar's own pulse counter where the engine has
  one (``engine.crossbar.pulses``, read by duck typing), else one programming event per
  parameter per batch (an ideal device programmed once per update). Per example they are
  the batch's pulses over its examples. The pulses of refreshes (``one_per_sign`` pairs
  read, RESET and reprogrammed at their bound, :mod:`neurosim.hardware.programming`) are
  among them, so their energy and programming time are priced with the others;
  ``refreshes`` (update phase) counts the refreshed pairs, from the engine's counter.

Energy per phase = the counts times the table. Latency per example = the sum over phases of
``settling_tau * tau_ns + adc_ns`` (every unit has its own ADC, so one read takes one
conversion; DAC time overlaps the settling), plus the programming time of the update
amortised over the batch. Programming assumption: every weight array (one per projection,
the biases of a population in one extra row of the first array into it) is written at the
same time as the others, one row after another, all devices of a row in parallel; a device
that takes ``k`` pulses takes ``k`` pulse slots, with ``k`` the mean pulses per device in the
batch rounded up. A batch's update thus takes ``rows * ceil(pulses / devices) * pulse_ns``,
``rows`` the largest array's row count.

Measured vs estimated: the training loop (:class:`neurosim.training.trainer.Trainer`) feeds a
:class:`CostMeter` every batch (examples, batches, pulse and spike counters), so the
per-epoch counts are those of the batches actually run; the evaluation passes and the RBP
ground truth of the fidelity log are measurement, not training, and are not counted. The
counts model the EP step (free and nudged phases) also for ``learning.rule = "rbp"``.

Reports: :meth:`CostModel.report` returns ``{"per_example": {...}, "per_epoch": {...},
"by_epoch": {...}, "table": {...}, "model": {...}}`` where ``per_example`` and ``per_epoch``
(the mean epoch) map each phase (``free``, ``nudged``, ``update``, ``total``) to its counts,
``energy_pj``/``energy_uj``, ``latency_ns``/``latency_us`` and ``energy_by_op_pj``, and
``by_epoch`` holds the same per phase as lists, one entry per epoch; ``model`` the settings
priced, ``kind`` (``rate`` or ``spiking``: MACs or synaptic events) and, for an engine's model,
``engine`` (its registered name).
``neurosim.traces.write(path, ..., cost=report)`` stores it as the ``/cost`` group of a trace
file (units on the datasets, the table and the model settings as attributes) and
``neurosim.traces.load(path).cost`` reads it back.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..errors import ConfigurationError

PHASES = ("free", "nudged", "update", "total")
COUNTS = ("steps", "settling_tau", "macs", "synaptic_events", "neuron_steps", "dac", "adc",
          "pulses", "refreshes")
#: count -> the table entry that prices it
PRICES = {"macs": "mac_pj", "synaptic_events": "synaptic_event_pj", "pulses": "pulse_pj",
          "dac": "dac_pj", "adc": "adc_pj", "neuron_steps": "neuron_step_pj"}


@dataclass(frozen=True)
class CostTable:
    """Energy per operation (pJ) and times (ns) of the cost model; the defaults and their
    sources are in the module docstring (order-of-magnitude figures: override them)."""

    mac_pj: float = 0.01
    synaptic_event_pj: float = 26.0
    pulse_pj: float = 1.0
    dac_pj: float = 0.1
    adc_pj: float = 1.0
    neuron_step_pj: float = 1.0
    tau_ns: float = 10.0
    pulse_ns: float = 1.0
    adc_ns: float = 10.0

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(v) or v < 0:
                raise ConfigurationError("cost.%s: expected a finite number >= 0, got %r" % (f.name, v))
            object.__setattr__(self, f.name, float(v))
        if self.tau_ns <= 0:
            raise ConfigurationError("cost.tau_ns: must be positive, got %r" % self.tau_ns)

    def as_dict(self):
        return asdict(self)


FIELDS = tuple(f.name for f in fields(CostTable))


def table_from_section(section):
    """The :class:`CostTable` of a circuit file's ``[cost]`` section: the defaults, with
    every key the section sets (not None) overriding its entry."""
    if section is None:
        return CostTable()
    return CostTable(**{k: getattr(section, k) for k in FIELDS
                        if getattr(section, k, None) is not None})


# -- counters the training loop reads --------------------------------------------------------
def _total(v):
    """A pulse counter as one number: a number, an array, or a dict of those (summed)."""
    if v is None:
        return None
    if isinstance(v, dict):
        parts = [_total(x) for x in v.values()]
        parts = [x for x in parts if x is not None]
        return sum(parts) if parts else None
    if callable(v):
        v = v()
    return float(np.sum(v))


def read_counters(engine):
    """The engine's cumulative counters from its protocol operation ``counters()`` (None
    where it has none): ``pulses`` (devices, refreshes included), ``refreshes`` (pairs
    refreshed), ``events_free`` and ``events_nudged`` (the synaptic events of a spiking
    engine's phases)."""
    c = engine.counters()
    ev = c.get("synaptic_events")
    free = nudged = None
    if isinstance(ev, dict):
        free, nudged = float(ev.get("free", 0)), float(ev.get("nudged", 0))
    pulses, refreshes = c.get("pulses"), c.get("refreshes")
    return {"pulses": None if pulses is None else float(pulses),
            "refreshes": None if refreshes is None else float(refreshes),
            "events_free": free, "events_nudged": nudged}


class CostMeter:
    """What the training loop did, per epoch: examples, batches, and the growth of the
    engine's pulse and spike counters (:func:`read_counters`). :class:`neurosim.training.trainer.Trainer`
    calls :meth:`batch` after every batch; the state goes into its checkpoints."""

    def __init__(self, engine=None):
        self.epochs = []
        self._last = read_counters(engine) if engine is not None else {}

    def batch(self, engine, n_examples, epoch=1):
        """Record one batch of ``n_examples`` in ``epoch`` (1-based) and the counters'
        growth since the last call (a counter that went down was reset: its value counts)."""
        if not self.epochs or self.epochs[-1]["epoch"] != epoch:
            self.epochs.append({"epoch": int(epoch), "examples": 0, "batches": 0,
                                "pulses": None, "refreshes": None, "events_free": None,
                                "events_nudged": None})
        rec = self.epochs[-1]
        rec["examples"] += int(n_examples)
        rec["batches"] += 1
        now = read_counters(engine)
        for k, v in now.items():
            if v is None:
                continue
            d = v - (self._last.get(k) or 0.0)
            rec[k] = (rec.get(k) or 0.0) + (v if d < 0 else d)
        self._last = now

    def state_dict(self):
        return {"epochs": [dict(r) for r in self.epochs]}

    def load_state_dict(self, d, engine=None):
        """Restore :meth:`state_dict`; with ``engine`` (restored too), its counters as they
        are now are the baseline of the next batch (not counted again)."""
        self.epochs = [dict(r) for r in (d or {}).get("epochs", [])]
        if engine is not None:
            self._last = read_counters(engine)


# -- the model ---------------------------------------------------------------------------------
def _phase_dict(counts, table, latency_ns):
    out = {k: float(counts.get(k, 0.0)) for k in COUNTS}
    by_op = {k[:-3]: out[c] * getattr(table, k) for c, k in PRICES.items()}
    out["energy_by_op_pj"] = by_op
    out["energy_pj"] = float(sum(by_op.values()))
    out["energy_uj"] = out["energy_pj"] * 1e-6
    out["latency_ns"] = float(latency_ns)
    out["latency_us"] = out["latency_ns"] * 1e-3
    return out


def _with_total(phases, table):
    tot = {k: sum(phases[p][k] for p in ("free", "nudged", "update")) for k in COUNTS}
    phases["total"] = _phase_dict(tot, table, sum(phases[p]["latency_ns"]
                                                  for p in ("free", "nudged", "update")))
    return phases


class CostModel:
    """Counts, energy and latency of EP training on a network with the given phase settings
    (see the module docstring for the formulas and the table).

    Parameters
    ----------
    net : Network
    table : CostTable, optional
    eps, free_steps, nudge_steps : float
        The engine's Euler step (units of tau) and steps (or sweeps) per phase (a run's
        mean steps where its phases settle early).
    variant : str
        ``"symmetric"`` has two nudged phases; the others one (unless ``nudged_phases``).
    nudged_phases : int, optional
        The nudged phases per example (a phase plan's non-zero nudges).
    batch_size : int
        Examples per update (for the estimate of pulses without a meter).
    spiking : bool
        A spiking engine: synaptic events instead of MACs.
    engine : str, optional
        The registered name of the engine it models (``reference``, ``brian2-spiking``, ...),
        reported as ``model["engine"]``; ``model["kind"]`` says ``rate`` or ``spiking``.
    """

    def __init__(self, net, table=None, *, eps, free_steps, nudge_steps, variant="symmetric",
                 batch_size=20, spiking=False, nudged_phases=None, engine=None):
        self.engine = engine
        self.net, self.table = net, table if table is not None else CostTable()
        self.eps, self.free_steps, self.nudge_steps = float(eps), float(free_steps), \
            float(nudge_steps)
        self.variant, self.batch_size, self.spiking = variant, int(batch_size), bool(spiking)
        self.nudged_phases = int(nudged_phases) if nudged_phases is not None else (
            2 if variant == "symmetric" else 1)
        sizes = net.sizes
        self.macs_per_step = 0 if spiking else sum(
            t.conv.macs() if t.conv is not None else
            sizes[t.source] * (sizes[t.target] - (1 if t.source == t.target else 0))
            for t in net.terms)
        self.readout_macs = 0 if spiking else sum(
            sizes[t.source] * sizes[t.target] for t in net.readout_terms)
        self.neurons = int(net.n_state)
        self.n_in = sum(sizes[p] for p in net.inputs)
        self.n_out = sum(sizes[p] for p in net.outputs)
        self.devices = int(sum(np.size(v) for v in net.params.values()))
        rows = {k: net.params[k].shape[0] for k in net.projections}
        for p in net.state_pops:
            into = [t.key for t in net.terms if t.target == p and not t.transpose]
            if into and ("b:%s" % p) in net.params:
                rows[into[0]] += 1
        self.program_rows = max(rows.values()) if rows else 1

    @classmethod
    def for_engine(cls, engine, table=None, variant=None, batch_size=20, steps=None):
        """The model of a training engine (reference, Brian2 rate or spiking, devices): its
        network and phase settings (``engine.settings``); spiking if its counters have
        synaptic events. ``steps``: ``(free, nudged)`` mean steps per phase as they ran
        (default: the settings' counts)."""
        s = engine.settings
        free, nudged = steps or (s.free_steps, s.nudge_steps)
        return cls(engine.net, table, eps=s.eps, free_steps=free,
                   nudge_steps=nudged, variant=variant or s.variant,
                   batch_size=batch_size, nudged_phases=len(engine.plan.nudged),
                   spiking=isinstance(engine.counters().get("synaptic_events"), dict),
                   engine=engine.name)

    # -- per example ---------------------------------------------------------------------
    def phase_counts(self):
        """The counts of one example's free and nudged phases that follow from the settings
        (every count but synaptic events and pulses, which are measured)."""
        F, K, P = self.free_steps, self.nudge_steps, self.nudged_phases
        free = {"steps": F, "settling_tau": F * self.eps,
                "macs": F * self.macs_per_step + self.readout_macs,
                "neuron_steps": F * self.neurons, "dac": self.n_in, "adc": self.neurons}
        nudged = {"steps": P * K, "settling_tau": P * K * self.eps,
                  "macs": P * K * (self.macs_per_step + 2 * self.readout_macs),
                  "neuron_steps": P * K * self.neurons,
                  "dac": self.n_out, "adc": P * self.neurons}
        return free, nudged

    def program_ns(self, pulses, batches):
        """Programming time of ``batches`` updates that applied ``pulses`` in all (module
        docstring: arrays in parallel, rows in sequence, a row's devices in parallel)."""
        if batches <= 0 or pulses <= 0:
            return 0.0
        per_device = math.ceil(pulses / batches / self.devices - 1e-9)
        return batches * self.program_rows * per_device * self.table.pulse_ns

    def _phases(self, examples, batches, pulses, events_free, events_nudged, refreshes=0.0):
        """Phase dicts for ``examples`` examples in ``batches`` batches (totals)."""
        t = self.table
        free, nudged = self.phase_counts()
        free = {k: v * examples for k, v in free.items()}
        nudged = {k: v * examples for k, v in nudged.items()}
        free["synaptic_events"], nudged["synaptic_events"] = events_free, events_nudged
        lat_free = free["settling_tau"] * t.tau_ns + examples * t.adc_ns
        lat_nudged = nudged["settling_tau"] * t.tau_ns + examples * self.nudged_phases * t.adc_ns
        update = {"pulses": pulses, "refreshes": refreshes}
        return _with_total({"free": _phase_dict(free, t, lat_free),
                            "nudged": _phase_dict(nudged, t, lat_nudged),
                            "update": _phase_dict(update, t, self.program_ns(pulses, batches))},
                           t)

    def _epoch_totals(self, rec):
        """Totals of one meter record; the ideal-device pulses where none were counted."""
        pulses = rec["pulses"] if rec.get("pulses") is not None else \
            float(self.devices * rec["batches"])
        return dict(examples=rec["examples"], batches=rec["batches"], pulses=pulses,
                    events_free=rec.get("events_free") or 0.0,
                    events_nudged=rec.get("events_nudged") or 0.0,
                    refreshes=rec.get("refreshes") or 0.0)

    def report(self, meter=None, examples_per_epoch=None):
        """The nested report (module docstring). With a :class:`CostMeter` that saw batches,
        the per-epoch numbers are those measured and the per-example ones their mean over
        all examples; without one, an estimate: ``examples_per_epoch`` (default one batch)
        in batches of ``batch_size``, the ideal-device pulses and no synaptic events."""
        recs = [r for r in (meter.epochs if meter is not None else []) if r["examples"] > 0]
        measured = {"pulses": any(r.get("pulses") is not None for r in recs),
                    "synaptic_events": any(r.get("events_free") is not None for r in recs)}
        if not recs:
            n = int(examples_per_epoch or self.batch_size)
            recs = [{"epoch": 1, "examples": n, "batches": -(-n // self.batch_size),
                     "pulses": None, "refreshes": None, "events_free": None,
                     "events_nudged": None}]
        totals = [self._epoch_totals(r) for r in recs]
        by = [self._phases(**tt) for tt in totals]
        n_ex = sum(tt["examples"] for tt in totals)
        n_b = sum(tt["batches"] for tt in totals)
        all_ = {k: sum(tt[k] for tt in totals) for k in totals[0]}
        per_example = self._scaled(self._phases(**all_), 1.0 / n_ex)
        per_epoch = self._scaled(self._phases(**all_), 1.0 / len(totals))
        by_epoch = {"epoch": [int(r["epoch"]) for r in recs],
                    "examples": [int(tt["examples"]) for tt in totals],
                    "batches": [int(tt["batches"]) for tt in totals]}
        for p in PHASES:
            by_epoch[p] = {k: [b[p][k] for b in by] for k in by[0][p] if k != "energy_by_op_pj"}
            by_epoch[p]["energy_by_op_pj"] = {op: [b[p]["energy_by_op_pj"][op] for b in by]
                                              for op in by[0][p]["energy_by_op_pj"]}
        kind = "spiking" if self.spiking else "rate"
        model = {"kind": kind, "variant": self.variant,
                 "eps": self.eps, "free_steps": self.free_steps, "nudge_steps": self.nudge_steps,
                 "nudged_phases": self.nudged_phases, "batch_size": self.batch_size,
                 "macs_per_step": self.macs_per_step, "neurons": self.neurons,
                 "inputs": self.n_in, "outputs": self.n_out, "devices": self.devices,
                 "program_rows": self.program_rows, "epochs": len(recs),
                 "examples_per_epoch": n_ex / len(recs), "batches_per_epoch": n_b / len(recs),
                 "measured_pulses": measured["pulses"],
                 "measured_synaptic_events": measured["synaptic_events"],
                 "metered": meter is not None and any(r["examples"] > 0 for r in meter.epochs)}
        if self.engine:
            model = {"engine": self.engine, **model}
        return {"per_example": per_example, "per_epoch": per_epoch, "by_epoch": by_epoch,
                "table": self.table.as_dict(), "model": model}

    @staticmethod
    def _scaled(phases, f):
        out = {}
        for p, d in phases.items():
            out[p] = {k: (v * f if not isinstance(v, dict) else {o: x * f for o, x in v.items()})
                      for k, v in d.items()}
        return out


def run_report(circuit, trainer):
    """The report of a training run: the engine's model, the circuit's ``[cost]`` table,
    the trainer's meter."""
    h = trainer.history
    steps = None
    if h.get("phase_batches"):    # the phases as they ran: priced at their mean steps
        w = np.asarray(h["phase_batches"], float)
        steps = (float(np.dot(h["free_steps_mean"], w) / w.sum()),
                 float(np.dot(h["nudge_steps_mean"], w) / w.sum()))
    model = CostModel.for_engine(trainer.engine, table_from_section(circuit.cost),
                                 variant=circuit.learning.variant,
                                 batch_size=circuit.train.batch_size, steps=steps)
    return model.report(trainer.meter,
                        examples_per_epoch=trainer.data.x_train.shape[0])


def summary(report):
    """The report without the per-epoch lists (the run summary's ``cost``)."""
    return {k: v for k, v in report.items() if k != "by_epoch"}


def kind_of(model):
    """``rate`` or ``spiking``: the hardware a report's ``model`` prices (reports written
    before ``model["kind"]`` held it in ``model["engine"]``)."""
    return model.get("kind") or model.get("engine")


def describe(report):
    """One line: energy and latency per example (by phase) and per epoch."""
    e, m = report["per_example"], report["per_epoch"]
    model = report["model"]
    who = "" if model.get("engine") in (None, kind_of(model)) else \
        ", %s engine" % model["engine"]
    return ("cost (order-of-magnitude table of a %s crossbar%s): per example %.4g uJ, %.4g us "
            "(free %.3g, nudged %.3g, update %.3g uJ); per epoch %.4g uJ, %.4g us"
            % (kind_of(model), who, e["total"]["energy_uj"], e["total"]["latency_us"],
               e["free"]["energy_uj"], e["nudged"]["energy_uj"], e["update"]["energy_uj"],
               m["total"]["energy_uj"], m["total"]["latency_us"]))


# -- HDF5 --------------------------------------------------------------------------------------
# The /cost group is part of the trace format (neurosim.traces.layout): neurosim.traces.write
# writes it (``cost=report``) and neurosim.traces.load reads it back (``Traces.cost``).

def write_group(f, report):
    """Write the ``/cost`` group into the open h5py file ``f`` (replacing one already there).

    Kept for ``neurosim.traces.write(..., extra=[lambda f: write_group(f, report)])``;
    prefer ``neurosim.traces.write(path, ..., cost=report)``."""
    from ..traces import write_cost_group
    return write_cost_group(f, report)


def load_h5(path):
    """The ``/cost`` group of a trace file: ``neurosim.traces.load(path).cost`` (nested dicts
    of numbers and arrays, plus ``attrs``, ``table`` and ``model``)."""
    from ..traces import TraceError, load
    got = load(path).cost
    if not got:
        raise TraceError("%r has no /cost group" % (path,))
    return got


__all__ = ["CostTable", "CostModel", "CostMeter", "table_from_section", "read_counters",
           "run_report", "summary", "describe", "kind_of", "write_group", "load_h5"]
