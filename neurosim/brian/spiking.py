"""Spiking circuits: a Network compiled into Brian2 neurons that talk only through spikes and
whose synapses learn from spike-based estimates of temporal derivatives (docs/maths.md 2, 4, 5, 9).

The model, per state unit (one Brian2 neuron per unit and per example of the batch):

* **State.** ``u`` follows the rate circuit's dynamics, ``tau du/dt = -u + rho'(u) (sum_k I_k
  + b) - beta(t) (u - y)`` (outputs nudged toward ``y``), Euler with ``dt = eps * tau``, clipped
  to [0, 1] after each step when ``clip``.
* **Spikes.** The neuron fires at rate ``rho(u) * max_rate``: ``neuron="poisson"`` draws one
  Bernoulli trial per step (``rand() < rho * max_rate * dt``, so ``max_rate * dt <= 1``);
  ``neuron="lif"`` integrates ``tau_m dv/dt = mu(rho) - v`` and fires at ``v > 1`` (reset by
  subtraction), with the drive ``mu`` chosen so that the Euler-integrated neuron fires at
  ``rho * max_rate`` (deterministic spike times, no Poisson noise); ``neuron="if"``
  integrates ``v += rho * max_rate * dt`` without leak and fires at ``v >= 1`` (reset by
  subtraction: a first-order sigma-delta modulator, its count over k steps within one spike
  of ``k rho max_rate dt``); ``neuron="sigma_delta"`` sends an event when ``rho`` has moved by
  ``delta`` since its last one, carrying the signed count ``n = round((rho - q) / delta)``, and
  ``q += n delta`` is the value its synapses have received (graded events; the rule reads
  ``z = q``, and ``stats["delta_steps"]`` sums ``|n|``). Input units fire at ``x * max_rate``
  (``x`` must lie in [0, 1]) or, sigma-delta, send ``x`` once. docs/spiking.md compares the
  codes.
* **Currents.** Every input current is an exponential synaptic trace, ``dI/dt = -I/tau_syn``,
  incremented by ``w / (max_rate * tau_syn)`` per presynaptic spike, so ``E[I] = sum w rho_pre``:
  the reference fixed point in expectation (sigma-delta: the held sum ``sum w q_pre``, each
  event adding ``w n delta``). A tied (energy) weight is two ``Synapses`` objects,
  one per direction, holding the same value (the backward current needs the post's spikes).
* **Rate traces and the derivative.** Each neuron filters its own spikes at two time constants,
  ``r_fast`` and ``r_slow`` (``dr/dt = -r/tau``, ``r += 1/(max_rate tau)`` per spike, so
  ``E[r] = rho``). Their scaled difference ``dz = (r_fast - r_slow) / (tau_slow - tau_fast)``
  is the time derivative of the doubly filtered rate ``z = (tau_slow r_slow - tau_fast
  r_fast) / (tau_slow - tau_fast)`` -- exactly, also in discrete time (the spike increments
  cancel in ``z``): ``z_{k+1} - z_k = dt * dz_k``. A rate ramping with slope ``a`` gives
  ``dz -> a`` after a delay ``tau_fast + tau_slow`` (``r_fast - r_slow`` is *positive* on a
  rising rate).
* **The local rule** (``rule="snapshot"``, the default; ``rule="online"`` below). A synapse
  ``a -> b`` accumulates ``d/dt [z_a z_b] = z_a dz_b + dz_a z_b``
  (presynaptic rate trace x postsynaptic derivative estimate, plus the mirrored term) over the
  nudged phase. Its integral telescopes to ``[z_a z_b]`` at the end of the nudged phase minus at
  its start, so each synapse evaluates the rule *per example* from snapshots its two neurons
  took of their own ``z`` (free end ``z0``, the end of nudged phase q ``zq``), once per
  example: every neuron emits a custom ``rule`` event at the end of the phases and its
  synapses run the rule on that presynaptic event (never a dense clock-driven update). That
  is the integral of the derivative rule without the O(dt^2) error of summing it step by
  step. An input's rate is the data ``x`` (known, constant), read as the presynaptic rate
  (``input_rule="data"``), or the rate trace of the input unit's own spikes
  (``input_rule="spikes"``: the input synapses learn from spikes only). Biases
  accumulate ``[z_b]``. The phases are a phase plan's (:class:`neurosim.plan.Plan`): the free
  phase, then one nudged phase per non-zero nudge, each after the first restarting from the
  saved free-phase state of every neuron (``u``, currents and traces); each phase's contrast
  is weighted by the plan's weight ``c_q`` (a number passed in), so the estimate is
  ``g = -acc`` averaged over the batch: the convention of :func:`neurosim.ep.gradient`.

Online rule: with ``rule="online"`` every synapse integrates, on a clock of ``rule_every``
steps during the nudged phases, ``z_pre dz_post + dz_pre z_post`` (an input's data times
``dz_post``) times the clock's period, weighted by the plan's ``c_q`` in nudged phase q;
biases integrate ``dz``. It reads the derivative estimate ``dz`` the neurons compute
and costs one synaptic operation per synapse and tick (``stats["rule_ops"]``) instead of one
per example; in expectation it equals the snapshot rule (Riemann sum of the same integral).
Sigma-delta units keep no ``dz``: their events are the changes, so the online rule runs on
the events of either unit of a synapse (``c_q d[z_pre z_post]``, the presynaptic value
counting an event of the same step) and telescopes to the snapshot rule exactly; its cost is
one operation per synapse of each event, at both ends.

Noise: with ``noise="common"`` a Poisson unit's spike at step k of a phase is decided by the
counter-based uniform ``U(seed, example, unit, k)`` of :mod:`neurosim.brian.counter_rng` (a
hash of the counters, the same in numpy and C++; ``seed`` drawn from the run's seed), the same
in the free, +beta and -beta phases, so
two phases' spike trains differ only where ``U`` falls between their firing probabilities
(docs/maths.md section 9); ``"independent"`` (default) draws fresh uniforms every step. LIF
units draw no random numbers. ``python benchmarks/bench_spiking_crn.py`` measures the effect.

Time: ``tau`` (ms) is the network time constant; ``eps`` the step in units of ``tau``; phase
lengths are step counts as in the rate circuit; ``tau_syn``, ``tau_fast``, ``tau_slow`` are in
ms and ``max_rate`` in Hz (``max_rate * tau / 1000`` spikes per tau at rho = 1).

Accuracy: the traces see a rate change only through their kernel, so the update reaches its
full size when each nudged phase lasts several ``tau_fast + tau_slow`` (shorter phases shrink
it). Its noise falls with the spikes per tau (``max_rate * tau``: the state ``u`` integrates
spike currents) and the spikes a trace averages (``max_rate * (tau_fast + tau_slow)``).
Poisson noise drowns the contrast of a small beta, and a large beta is biased where units sit
on the clip bounds; the defaults (:data:`DEFAULTS`: sigma-delta units, ``delta = 1e-4``,
symmetric beta 0.01, phases of 100 tau) come from the study in docs/spiking.md
(``benchmarks/bench_spiking_codes.py``): cosine 0.9993 mean / 0.9982 worst to RBP on random
20-30-5 hard-sigmoid networks, 0.9998 to the rate circuit, 3,700 events per example.

Only energy dynamics compile (vector-field EP reads the rate change ``u - u0`` itself, which
the spikes do not carry). The equations and the builders, registered per population and
projection kind as in :mod:`neurosim.brian.rate`, live in :mod:`neurosim.brian.spiking_build`.
"""
from __future__ import annotations

import contextlib
import shutil
import time

import numpy as np

from .. import checks
from . import counter_rng
from .device import (CircuitError, build_folder, check_compiler, check_device, import_brian2,
                     new_standalone_device, standalone_device, standalone_failure)
from .builder import Builder
from .phases import circuit_plan
from .equations import CODES, TRACE_EQS, TRACE_ON_SPIKE, encoder, graded
from .spiking_build import (RULE_EVENT, SpikingContext, spiking_schedule, build_input,
                            build_lateral, build_state, build_tied)

#: The spike codes (``neuron``): see the module docstring, "Spikes".
NEURONS = CODES

#: The defaults of :func:`neurosim.brian.compile` with ``model="spiking"`` and of
#: :meth:`SpikingCircuit.ep_update` (see the module docstring for units).
DEFAULTS = dict(neuron="sigma_delta", tau=10.0, max_rate=1000.0, tau_syn=10.0, tau_fast=20.0,
                tau_slow=200.0, tau_m=100.0, eps=0.1, beta=0.01, variant="symmetric",
                free_steps=1000, nudge_steps=1000, noise="independent", rule="snapshot",
                rule_every=1, input_rule="data", delta=1e-4)
#: Random streams of Poisson units: fresh in every phase, or common random numbers replayed
#: in every phase of an example (see the module docstring, "Noise").
NOISE = ("independent", "common")
#: The local rule: the contrast of phase-end snapshots, or the online integral of the
#: observed derivative on a clock of ``rule_every`` steps (module docstring, "The local rule").
RULES = ("snapshot", "online")
#: What the rule of a synapse from an input reads as the presynaptic rate: the data ``x``, or
#: the rate trace of the input unit's own spikes.
INPUT_RULES = ("data", "spikes")

# The equations and builders are defined in spiking_build and re-exported here.
__all__ = ["SpikingCircuit", "trace_constants", "synaptic_events", "event_rule_ops",
           "DEFAULTS", "NEURONS", "NOISE", "RULES", "INPUT_RULES", "TRACE_EQS", "TRACE_ON_SPIKE", "RULE_EVENT",
           "encoder", "build_input", "build_state", "build_tied", "build_lateral"]


# -- argument checks ----------------------------------------------------------------------
def _positive(name, v):
    return checks.positive(name, v, error=CircuitError)


def _steps(name, v, minimum):
    return checks.integer(name, v, minimum, error=CircuitError)


def synaptic_events(net, counts):
    """Synaptic events of spike (or event) counts per population: each event reaches every
    synapse of its population's outgoing pathways (no self-synapse on a lateral one); a
    softmax readout's pathways carry the hidden units' events forward and the output units'
    error events back."""
    n = net.sizes
    events = sum(counts[t.source] * (n[t.target] - (1 if t.source == t.target else 0))
                 for t in net.terms)
    return int(events + sum(counts[t.source] * n[t.target] + counts[t.target] * n[t.source]
                            for t in net.readout_terms))


def event_rule_ops(net, counts):
    """Synaptic operations of the sigma-delta event rule: each event of either unit of a
    plastic synapse updates it once."""
    n = net.sizes
    return int(sum(counts.get(t.source, 0) * n[t.target] + counts.get(t.target, 0) * n[t.source]
                   for t in list(net.terms) + list(net.readout_terms) if not t.transpose))


def trace_constants(nudge_steps, eps, tau=10.0):
    """``(tau_fast, tau_slow)`` in ms for a nudged phase of ``nudge_steps`` Euler steps:
    tau_slow a fifth of the phase, clamped to [20, 200] ms; tau_fast = min(20, tau_slow / 2)."""
    tau_slow = max(20.0, min(200.0, nudge_steps * eps * tau / 5.0))
    return min(20.0, tau_slow / 2.0), tau_slow


class SpikingCircuit:
    """A Network compiled into a Brian2 spiking circuit (see the module docstring).

    Build with :func:`neurosim.brian.compile` (``model="spiking"``). :meth:`ep_update` runs one
    EP step on a batch and returns the update the synapses accumulated from their spike-based
    rate traces. After a run, :attr:`traces` holds per state population ``u``, ``z`` and
    ``dz`` (``(time, batch, n)``, ``dz`` per tau, ``t`` in units of tau) and :attr:`spikes` per
    population ``t`` (units of tau), ``i`` (unit) and ``example``.

    All parameters are keywords; their defaults are in :data:`DEFAULTS`.

    Parameters
    ----------
    neuron : "sigma_delta" | "if" | "lif" | "poisson"
    tau : float
        Network time constant (ms).
    max_rate : float
        Firing rate at rho = 1 (Hz); ``max_rate * eps * tau`` must be at most 1 (one spike per
        step at most).
    tau_syn, tau_fast, tau_slow : float
        Synaptic current and the two rate-trace time constants (ms), each at least one step,
        ``tau_fast < tau_slow``.
    tau_m : float
        LIF membrane time constant (ms), ``neuron="lif"`` only.
    delta : float
        The step of a sigma-delta unit's events (units of rho), ``neuron="sigma_delta"``.
    eps : float
        Step in units of tau (``dt = eps * tau``).
    clip : bool
        Project states to [0, 1] after each step.
    beta, variant, free_steps, nudge_steps
        Defaults of :meth:`ep_update`.
    seed : int or None
        Seeds the k-th run of this circuit with ``[seed, k]`` (reproducible sequences of
        calls); None: fresh randomness unless a call passes its own ``seed``.
    record : bool
        Monitor states and spikes (:attr:`traces`, :attr:`spikes`).
    """

    def __init__(self, net, neuron=None, device="runtime", clip=False, seed=None, record=True,
                 build_dir=None, keep_build=False, **params):
        check_device(device)
        unknown = set(params) - set(DEFAULTS)
        if unknown:
            raise CircuitError("unknown spiking-circuit parameter(s) %s; known: %s"
                               % (sorted(unknown), sorted(DEFAULTS)))
        p = dict(DEFAULTS, **params)
        p["neuron"] = DEFAULTS["neuron"] if neuron is None else neuron
        if p["neuron"] not in NEURONS:
            raise CircuitError("neuron must be one of %s, got %r" % (NEURONS, p["neuron"]))
        if net.dynamics != "energy":
            raise CircuitError("spiking circuits compile energy dynamics only, got dynamics=%r: "
                               "vector-field EP reads the state change u - u0, which spikes do "
                               "not carry; use model='rate'" % net.dynamics)
        checks.choice("noise", p["noise"], NOISE, error=CircuitError)
        checks.choice("rule", p["rule"], RULES, error=CircuitError)
        checks.choice("input_rule", p["input_rule"], INPUT_RULES, error=CircuitError)
        p["rule_every"] = checks.integer("rule_every", p["rule_every"], 1, error=CircuitError)
        for k in ("tau", "max_rate", "tau_syn", "tau_fast", "tau_slow", "tau_m", "eps", "delta"):
            p[k] = _positive(k, p[k])
        dt = p["eps"] * p["tau"]
        if p["max_rate"] * dt * 1e-3 > 1 and not graded(p["neuron"]):
            raise CircuitError("max_rate * dt = %g spikes per step: a neuron fires at most once "
                               "per step, so max_rate must be at most %g Hz at eps=%g, tau=%g ms "
                               "(lower max_rate or eps)" % (p["max_rate"] * dt * 1e-3,
                                                            1e3 / dt, p["eps"], p["tau"]))
        for k in ("tau_syn", "tau_fast", "tau_m"):
            if p[k] < dt:
                raise CircuitError("%s = %g ms is shorter than one step (dt = eps * tau = %g ms)"
                                   % (k, p[k], dt))
        if not p["tau_fast"] < p["tau_slow"]:
            raise CircuitError("tau_fast (%g ms) must be shorter than tau_slow (%g ms)"
                               % (p["tau_fast"], p["tau_slow"]))
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise CircuitError("seed must be a non-negative integer or None, got %r" % (seed,))
        circuit_plan(p["beta"], p["variant"], None, p["free_steps"], p["nudge_steps"])
        if device == "cpp_standalone":
            check_compiler()
        self.net, self.device, self.clip, self.record = net, device, bool(clip), bool(record)
        self.params, self.seed = p, seed
        self.neuron, self.eps = p["neuron"], p["eps"]
        self.build_dir, self.keep_build = build_dir, keep_build
        self.traces, self.spikes, self.stats = {}, {}, {}
        self._runs = 0
        self.record_spikes = ()  # populations whose spike times are kept even without record
        self.profile = False     # True: Brian2 profiling per code object in stats["profile"]

    def __repr__(self):
        return "SpikingCircuit(%r, neuron=%r, max_rate=%g Hz, tau=%g ms, device=%r)" % (
            self.net, self.neuron, self.params["max_rate"], self.params["tau"], self.device)

    # -- building and running -----------------------------------------------------------
    def _inputs(self, x):
        inputs = self.net.inputs_dict(x)
        for p, v in inputs.items():
            if v.min() < 0 or v.max() > 1:
                raise CircuitError("x%s must lie in [0, 1] in a spiking circuit (inputs fire at "
                                   "x * max_rate), got values in [%g, %g]: rescale the data"
                                   % ("" if len(inputs) == 1 else "[%r]" % p, v.min(), v.max()))
        return inputs

    def build(self, b2, inputs, y, state, schedule, weights, seed):
        """The :class:`~neurosim.brian.builder.BuiltCircuit` of this circuit for a batch
        (``schedule``: the per-step TimedArray values, see :func:`spiking_schedule`); its
        monitors are the state monitors by population (when recording) and the spike
        monitors by ``("spikes", population)``; a subclass may add objects to its
        ``extra``."""
        net, p = self.net, self.params
        batch = next(iter(inputs.values())).shape[0]
        targets = net.targets_dict(y, batch)
        state0 = net.zero_state(batch) if state is None else net.check_state(state, batch)
        if self.clip:
            state0 = {q: np.clip(v, 0, 1) for q, v in state0.items()}
        ms, dt = b2.ms, p["eps"] * p["tau"] * b2.ms
        ns = {"tau": p["tau"] * ms, "tau_syn": p["tau_syn"] * ms, "tau_m": p["tau_m"] * ms,
              "tau_fast": p["tau_fast"] * ms, "tau_slow": p["tau_slow"] * ms,
              "max_rate": p["max_rate"] * b2.Hz,
              "spikes_per_step": p["max_rate"] * p["eps"] * p["tau"] * 1e-3,
              "syn_gain": 1e3 / (p["max_rate"] * p["tau_syn"]),
              "lif_a": p["eps"] * p["tau"] / p["tau_m"], "delta": p["delta"]}
        schedule = dict(schedule)
        T = len(schedule["beta"])
        schedule.setdefault("phase_step", np.arange(T, dtype=np.float64))
        for name, values in schedule.items():
            ns["%s_ta" % name] = b2.TimedArray(values, dt=dt)
        ctx = SpikingContext(net, inputs, targets, state0, self.clip, self.neuron, ns, weights,
                             np.random.default_rng(seed))
        ctx.rule, ctx.input_rule = p["rule"], p["input_rule"]
        ns["rule_dt"] = p["rule_every"] * dt
        schedule.setdefault("gate", np.zeros(T))
        ns.setdefault("gate_ta", b2.TimedArray(schedule["gate"], dt=dt))
        if p["noise"] == "common" and self.neuron == "poisson":
            # the counter-based uniform of (run seed, example, unit, step within the phase),
            # replayed in every phase of the example
            ns[counter_rng.NAME] = counter_rng.brian2_function(b2)
            ns["crn_seed"] = int(np.random.default_rng(seed).integers(2 ** 52))
            offsets = counter_rng.unit_offsets(net)
            for q in net.graph.nodes:
                n = net.sizes[q]
                ctx.common[q] = counter_rng.expression(n, offsets[q], "i // %d" % n,
                                                       "phase_step_ta(t)")
        built = Builder.build("spiking", b2, ctx)
        if self.record:
            watched = ["u", "z"] if graded(self.neuron) else ["u", "z", "dz"]
            built.monitors.update({q: b2.StateMonitor(ctx.groups[q], watched,
                                                      record=True, when="start", order=-1,
                                                      name="mon_%s" % ctx.ids[q])
                                   for q in net.state_pops})
        # spike monitors, keyed ("spikes", population): counts always, times when recording
        built.monitors.update({("spikes", q): b2.SpikeMonitor(
            ctx.groups[q], variables=["n_ev"] if graded(self.neuron) else None,
            record=self.record or q in self.record_spikes,
            name="spk_%s" % ctx.ids[q]) for q in net.graph.nodes})
        return built

    def _seed(self, seed):
        """The seed of this run: the call's, else ``[circuit seed, run count]``, else None."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise CircuitError("seed must be a non-negative integer or None, got %r" % (seed,))
        if seed is None and self.seed is not None:
            seed = [self.seed, self._runs]
        self._runs += 1
        if seed is None:
            return None
        return int(np.random.SeedSequence(seed).generate_state(1)[0] & 0x7FFFFFFF)

    def run(self, x, y, schedule, steps, weights=(0.0,), state=None, seed=None):
        """Build the circuit for this batch and run ``steps`` steps of ``schedule`` (the local
        rule fires where ``schedule["rule"]`` is 1, weighting nudged phase q's snapshot
        contrast by ``weights[q]``; ``schedule`` has ``snap0`` .. ``snapN``); returns the
        accumulators ``{param key: (batch, ...)}`` and fills :attr:`traces`, :attr:`spikes` and
        :attr:`stats` (wall seconds, simulated seconds, spikes per population, synaptic
        events; on ``cpp_standalone`` also ``compile_seconds`` (C++ build) and
        ``binary_seconds`` (the binary's process); with :attr:`profile` set, ``profile``:
        Brian2's seconds per code object)."""
        b2 = import_brian2()
        inputs = self._inputs(x)
        folder, failed, device = None, False, None
        dt_ms = self.eps * self.params["tau"]
        if self.device == "cpp_standalone":      # a device of its own for this run
            folder = build_folder(self.build_dir, prefix="neurosim-spiking-")
            device = new_standalone_device()
            active = standalone_device(dt_ms, device, build_on_run=True, directory=folder,
                                       with_output=False)
        else:
            b2.prefs.codegen.target = "numpy"
            active = contextlib.nullcontext()
        t0 = time.perf_counter()
        try:
            with active:
                b2.defaultclock.dt = dt_ms * b2.ms
                b2.seed(seed)
                built = self.build(b2, inputs, y, state, schedule, weights, seed)
                netw = built.network(b2)
                try:
                    netw.run(steps * b2.defaultclock.dt, namespace=built.context.namespace,
                              profile=self.profile)
                except Exception as e:
                    if self.device == "cpp_standalone":
                        failed = True
                        raise standalone_failure(folder, e) from None
                    raise
                acc = self.read(built)
                extra = {}
                if device is not None:
                    timers = device.timers                  # C++ compile, binary run
                    compile_t = [v for v in (timers.get("compile") or {}).values()
                                 if v is not None]
                    extra["compile_seconds"] = float(sum(compile_t))
                    if timers.get("run_binary") is not None:
                        extra["binary_seconds"] = float(timers["run_binary"])
                if self.profile:
                    extra["profile"] = [(name, float(t)) for name, t in netw.profiling_info]
        finally:
            if folder and not (self.keep_build or failed) and self.build_dir is None:
                shutil.rmtree(folder, ignore_errors=True)
        self.stats["seconds"] = time.perf_counter() - t0
        self.stats["simulated_seconds"] = steps * self.eps * self.params["tau"] * 1e-3
        self.stats.update(steps=int(steps), seed=seed, **extra)
        return acc

    def read(self, built):
        """The accumulators of a run of ``built``; fills :attr:`traces`, :attr:`spikes` and
        :attr:`stats`."""
        net, B = self.net, built.context.batch
        acc = built.accumulators()
        mons = {q: m for q, m in built.monitors.items() if not isinstance(q, tuple)}
        spk = {q[1]: m for q, m in built.monitors.items() if isinstance(q, tuple)}
        tau_s = self.params["tau"] * 1e-3
        self.traces = {}
        for q, m in mons.items():
            n = net.sizes[q]
            self.traces[q] = {"u": np.asarray(m.u[:]).T.reshape(-1, B, n),
                              "z": np.asarray(m.z[:]).T.reshape(-1, B, n),
                              "t": np.asarray(m.t[:]) / tau_s}
            if not graded(self.neuron):
                self.traces[q]["dz"] = (np.asarray(m.dz[:]) * tau_s).T.reshape(-1, B, n)
        self.spikes = {}
        counts = {q: int(np.sum(m.count[:])) for q, m in spk.items()}
        for q, m in spk.items():
            if self.record or q in self.record_spikes:
                idx = np.asarray(m.i[:])
                self.spikes[q] = {"t": np.asarray(m.t[:]) / tau_s, "i": idx % net.sizes[q],
                                  "example": idx // net.sizes[q]}
                if graded(self.neuron):      # each event's signed count of delta steps
                    self.spikes[q]["n"] = np.asarray(m.n_ev[:]).astype(np.int64)
        # synaptic events: every spike reaches each synapse of its neuron's outgoing pathways
        self.stats = {"spikes": counts, "synaptic_events": synaptic_events(net, counts),
                      "plastic_synapses": int(sum(len(syn) for syn in built.synapses.values()))}
        if graded(self.neuron):      # the delta steps the events carried (sum of |n|)
            self.stats["delta_steps"] = {q: int(round(float(np.sum(g.sent[:]))))
                                         for q, g in built.groups.items()}
        return acc

    # -- the EP step ----------------------------------------------------------------------
    def ep_update(self, x, y, beta=None, free_steps=None, nudge_steps=None, variant=None,
                  state=None, rng=None, seed=None, nudges=None):
        """One EP step on a batch; returns the update the synapses accumulated from their rate
        traces, as a gradient estimate with the keys of ``net.params`` (the sign convention of
        :func:`neurosim.ep.gradient`, batch mean). The weights are not changed. Arguments left
        None take the circuit's defaults; ``nudges``: the phase plan's nudge strengths
        (replacing ``beta`` and ``variant``, :class:`neurosim.plan.Plan`); ``seed`` seeds this
        run (spikes and, for ``random_sign``, the sign unless ``rng`` is given)."""
        p = self.params
        plan = circuit_plan(
            p["beta"] if beta is None else beta, p["variant"] if variant is None else variant,
            nudges, p["free_steps"] if free_steps is None else free_steps,
            p["nudge_steps"] if nudge_steps is None else nudge_steps)
        seed = self._seed(seed)
        return self.run_plan(x, y, plan.for_batch(rng if rng is not None else seed),
                             state=state, seed=seed)

    def run_plan(self, x, y, plan, state=None, seed=None):
        """The update of one batch under the phase plan ``plan`` (as run: random sign already
        drawn), the run seeded with ``seed`` (see :meth:`ep_update`)."""
        p = self.params
        free_steps, nudge_steps = int(plan.free_steps), int(plan.nudge_steps)
        m = p["rule_every"]
        if p["rule"] == "online" and (free_steps % m or nudge_steps % m):
            raise CircuitError("rule_every = %d: free_steps (%d) and nudge_steps (%d) must be "
                               "multiples of it for the online rule's clock"
                               % (m, free_steps, nudge_steps))
        T, schedule, weights = spiking_schedule(plan)
        acc = self.run(x, y, schedule, T + 1, weights=weights, state=state, seed=seed)
        step_ms = self.eps * p["tau"]
        self.phases = [{"name": "free", "start": 0.0, "stop": free_steps * step_ms, "beta": 0.0}]
        signs = [b > 0 for b in plan.nudged]      # named by sign where the signs differ
        for q, b in enumerate(plan.nudged):
            a = (free_steps + q * nudge_steps) * step_ms
            name = ("nudged+" if b > 0 else "nudged-") if len(set(signs)) == len(signs) \
                else "nudged%d" % (q + 1)
            self.phases.append({"name": name, "start": a,
                                "stop": a + nudge_steps * step_ms, "beta": float(b)})
        # synaptic operations of the rule: one evaluation per synapse and example (snapshot),
        # one per synapse and tick of the online clock in the nudged phases, or (sigma-delta,
        # online) one per synapse of each unit's events, both ends of a plastic synapse
        ticks = 1 if p["rule"] == "snapshot" else \
            nudge_steps * len(plan.nudged) // p["rule_every"]
        self.stats["rule_ops"] = self.stats["plastic_synapses"] * ticks
        if p["rule"] == "online" and graded(self.neuron):
            self.stats["rule_ops"] = event_rule_ops(self.net, self.stats["spikes"])
        return {k: -acc[k].mean(axis=0) for k in self.net.params}

    def spike_table(self):
        """Spikes per population as (timestamps in ms, node ids); example ``e``'s neuron
        ``i`` of a population of ``n`` is node ``e * n + i``."""
        if not self.spikes:
            raise CircuitError("no spikes recorded yet: run ep_update() or trajectory() with "
                               "record=True first")
        tau = self.params["tau"]
        return {q: (sp["t"] * tau, sp["example"] * self.net.sizes[q] + sp["i"])
                for q, sp in self.spikes.items()}

    def save_traces(self, path, circuit_text=None):
        """Write the last run to an HDF5 trace file: SONATA spikes per population (ms; node
        ``example * n + neuron``), reports of ``u`` per population ``(time, batch, n)`` and the
        phases of the last :meth:`ep_update`."""
        from .. import traces
        spikes = self.spike_table()
        tau = self.params["tau"]
        reports = {q: {"data": tr["u"], "dt": self.eps * tau, "variable": "u",
                       "units": "dimensionless"} for q, tr in self.traces.items()}
        return traces.write(path, reports=reports or None, spikes=spikes,
                            phases=getattr(self, "phases", None), circuit=circuit_text,
                            dt=self.eps * tau, time_units="ms",
                            attrs={"engine": "brian2-spiking", "neuron": self.neuron})

    def raster(self, path, title=None):
        """A PNG raster of the last run's spikes (all examples of the batch); ``title``
        (default "spikes") says whose."""
        from .. import plots
        return plots.raster(self.spike_table(), path, phases=getattr(self, "phases", None),
                            title=title)

    def free_rates(self, x, steps, window=None, seed=None):
        """Rates of the output populations estimated from their spikes after a free phase of
        ``steps`` steps: each unit's spike count over the last ``window`` steps (default half
        the phase) divided by the count a unit at rho = 1 would fire there. Returns
        ``{population: (batch, n)}``; :attr:`stats` counts the run's spikes."""
        net = self.net
        inputs = self._inputs(x)
        batch = next(iter(inputs.values())).shape[0]
        T = _steps("steps", steps, 1)
        window = max(1, T // 2) if window is None else _steps("window", window, 1)
        if window > T:
            raise CircuitError("window (%d steps) is longer than the free phase (%d)" % (window, T))
        schedule = {k: np.zeros(T + 1) for k in ("beta", "snap0", "snap1", "reset", "rule")}
        y = {q: np.zeros((batch, net.sizes[q])) for q in net.outputs}
        keep = self.record_spikes
        self.record_spikes = tuple(net.outputs)
        try:
            self.run(inputs, y, schedule, T, seed=self._seed(seed))
        finally:
            self.record_spikes = keep
        return self.output_rates(T - window, T, batch)

    def output_rates(self, start, stop, batch):
        """Rates of the output populations from the last run's spikes in steps
        ``[start, stop)``: spike counts over the count of a unit at rho = 1; sigma-delta
        units: the value their events have sent by step ``stop`` (needs the output
        populations in :attr:`record_spikes` or ``record``)."""
        per_step = self.params["max_rate"] * self.eps * self.params["tau"] * 1e-3
        out = {}
        for q in self.net.outputs:
            sp = self.spikes[q]
            k = np.floor(sp["t"] / self.eps + 1e-6).astype(np.int64)
            counts = np.zeros((batch, self.net.sizes[q]))
            if graded(self.neuron):      # the value received by step ``stop``: sum n delta
                keep = k < stop
                np.add.at(counts, (sp["example"][keep], sp["i"][keep]), sp["n"][keep])
                out[q] = counts * self.params["delta"]
                continue
            keep = (k >= start) & (k < stop)
            np.add.at(counts, (sp["example"][keep], sp["i"][keep]), 1.0)
            out[q] = counts / ((stop - start) * per_step)
        return out

    def trajectory(self, x, y=None, beta=0.0, steps=1000, state=None, seed=None):
        """States ``(steps + 1, batch, n)`` per population of a run with constant ``beta``
        from ``state`` (zeros by default); the rate traces are in :attr:`traces`."""
        net = self.net
        inputs = self._inputs(x)
        batch = next(iter(inputs.values())).shape[0]
        if y is None:
            y = {q: np.zeros((batch, net.sizes[q])) for q in net.outputs}
        T = _steps("steps", steps, 1)
        schedule = {k: np.zeros(T + 1) for k in ("snap0", "snap1", "reset", "rule")}
        schedule["beta"] = np.full(T + 1, float(beta))
        record = self.record
        self.record = True
        try:
            self.run(inputs, y, schedule, T + 1, state=state, seed=self._seed(seed))
        finally:
            self.record = record
        return {q: tr["u"] for q, tr in self.traces.items()}
