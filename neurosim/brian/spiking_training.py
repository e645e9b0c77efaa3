"""Training through a Brian2 spiking circuit: one compiled ``cpp_standalone`` run trains a
whole epoch, every example's phases and every weight update happening inside the circuit.

Layout. A mini-batch of ``B`` examples runs as ``B`` replicas of the network side by side
(``B * n`` neurons per population, one set of synapses per replica); the epoch is a sequence
of *slots* of ``S = free + nudge (x2 symmetric)`` steps, slot ``s`` holding batch ``s``.
The model of a unit, its spike encoder, its rate traces and the snapshot rule are those of
:mod:`neurosim.brian.spiking` (its docstring has the maths).

Shared weights. Every projection has a *bank*: a group of one unit per weight holding the
master copy ``W`` (and one per bias). The replicas' synapses are the targets of a second
``Synapses`` object from the bank (Brian2 synapses on synapses): at the end of a slot each
replica synapse evaluates the snapshot rule for its example, ``acc = s [z_pre z_post]``
(``s`` the example's sign of beta, 0 for padding; or holds the online rule's integral, below),
the bank sums the replicas' ``acc``,
applies ``W += lr c / m * sum`` (``theta -= lr g`` with ``g`` the batch-mean
estimate of :func:`neurosim.ep.gradient`, ``m`` the batch's examples) and copies ``W`` back
into every replica. Inputs, targets and signs for the next slot are loaded then.

Per step the circuit does only neuron updates and spike propagation: phase changes (the
snapshots, the symmetric restart, beta) run on a clock of one tick per phase boundary and
everything per example on the slot clock.

Inputs. ``input_drive="spikes"`` (default): input units fire at ``x * max_rate`` and their
spikes drive the currents; ``"analog"``: an input's current is ``sum w x`` set once per
example (no input spikes: the dense input projection costs nothing per step).
``input_rule`` as in :class:`~neurosim.brian.spiking.SpikingCircuit`.

Spike counters (:attr:`stats` ``spikes``, per population, free and nudged phases) count the
training examples' spikes only.

Inference through spikes: each example's output rate is its output units' spike count over
the second half of its free phase, divided by the count of a unit at rho = 1; examples after
``n_train`` run at the final weights with sign 0 (no learning).

Online rule (``rule="online"``, ``rule_every`` m steps, m dividing both phase lengths): on a
clock of m steps every replica synapse integrates ``gate (z_pre dz_post + dz_pre z_post) m dt``
(an input with ``input_rule="data"``: ``rho_pre dz_post``), biases ``gate dz m dt``, where
``gate`` is ``+s`` in the first nudged phase, ``-s`` in the symmetric second one (restarted
from the free state) and 0 in the free phase: the Riemann sum of the snapshot rule's
telescoped integral. At the slot's end the accumulator goes to the bank as the snapshot
rule's does and restarts at 0. :attr:`stats` ``rule_ops`` counts the rule's synaptic
operations: one per synapse and training example (snapshot) or per synapse, example and tick
of the nudged phases (online).

Random numbers: ``noise="independent"`` (default): ``rand()`` of Brian2's generator, seeded at
the build (``seed``); every run (epoch) of the binary replays the same stream with new data
and weights, so a resumed epoch draws exactly the spikes of the uninterrupted one.
``noise="common"``: a Poisson unit fires at step k of a phase when the counter uniform
``U(seed_r, e, unit, k)`` of :mod:`neurosim.brian.counter_rng` is below ``rho *
spikes_per_step`` (``e`` the example's position in the epoch's slots, ``unit`` its index in
the network, ``seed_r = run_seed(seed, r)`` for run r, passed per run): the free, +beta and
-beta phases of an example share their noise, every run (epoch) draws new noise, and a run
with the same ``(seed, r)`` the same.

The build is compiled once per shape; later epochs re-run it with new data and weights
(``device.run(run_args=...)``).
"""
from __future__ import annotations

import math
import shutil
import time

import numpy as np

from .. import checks
from ..errors import ArgumentError
from ..plan import Plan
from .builder import Builder, BuiltProjection
from .device import (EXACT_DT_MS, CircuitError, build_folder, check_compiler,
                     compile_standalone, import_brian2, standalone_device, time_scale)
from . import counter_rng
from .equations import (DRHO, RHO, current_equation, current_increment, encoder, encoder_state,
                        event_rule, event_rule_bias, graded, trace_equations)
from .spiking import DEFAULTS, INPUT_RULES, NEURONS, NOISE, RULES, event_rule_ops
from .training import check_supported

#: How inputs reach the first state population: their spikes, or an analog current.
INPUT_DRIVES = ("spikes", "analog")
#: The circuit parameters this circuit takes (the rest of :data:`spiking.DEFAULTS` is fixed).
PARAMETERS = ("neuron", "tau", "max_rate", "tau_syn", "tau_fast", "tau_slow", "tau_m", "eps",
              "beta", "variant", "free_steps", "nudge_steps", "input_rule", "noise", "rule",
              "rule_every", "delta")


def two_phase(plan):
    """``(first nudge, its weight)`` of a plan this circuit runs -- one nudged phase from the
    free state (``[0, b]``) or the pair ``[-b, b]`` (the second phase at minus the first) --
    else None. With the weights summing to 0 the estimate is ``c (obs_first - obs_last)``,
    ``c`` the first nudged observation's weight (a number of :attr:`Plan.weights`)."""
    nudged = plan.nudged
    if len(plan.nudges) != 2 or not (len(nudged) == 1 or plan.symmetric):
        return None
    i = plan.nudges.index(nudged[0])
    return float(nudged[0]), float(np.real(plan.weights[i]))


class SpikingTrainingCircuit:
    """A compiled standalone spiking circuit that trains one epoch per run (module doc).

    ``n_examples``: examples per run (training then evaluation); ``batch_size``: replicas;
    ``lrs``: learning rate per parameter key; ``record_slots``: batches whose update the run
    can copy aside (:attr:`recorded`); ``seed``: Brian2's random seed for the build;
    ``nudges``: the phase plan's nudge strengths, ``[0, b]`` or ``[-b, b]`` (replacing
    ``beta`` and ``variant``; :func:`two_phase`); ``noise``, ``rule``, ``rule_every``: the
    noise scheme and local rule (module docstring)."""

    def __init__(self, net, n_examples, batch_size=20, lrs=None, clip=True, seed=0,
                 input_drive="spikes", record_slots=0, build_dir=None, keep_build=False,
                 nudges=None, **params):
        check_supported(net, readouts=("state", "softmax"))
        check_compiler()
        unknown = set(params) - set(PARAMETERS)
        if unknown:
            raise CircuitError("unknown spiking training-circuit parameter(s) %s; known: %s"
                               % (sorted(unknown), list(PARAMETERS)))
        p = {k: DEFAULTS[k] for k in PARAMETERS}
        p.update(params)
        checks.choice("neuron", p["neuron"], NEURONS, error=CircuitError)
        checks.choice("input_rule", p["input_rule"], INPUT_RULES, error=CircuitError)
        checks.choice("input_drive", input_drive, INPUT_DRIVES, error=CircuitError)
        checks.choice("noise", p["noise"], NOISE, error=CircuitError)
        checks.choice("rule", p["rule"], RULES, error=CircuitError)
        p["rule_every"] = checks.integer("rule_every", p["rule_every"], 1, error=CircuitError)
        checks.choice("variant", p["variant"], ("symmetric", "one_sided", "random_sign"),
                      error=CircuitError)
        if input_drive == "analog" and p["input_rule"] == "spikes":
            raise CircuitError("input_rule='spikes' needs input_drive='spikes' (analog inputs "
                               "do not spike)")
        if net.readout == "softmax" and (p["neuron"] != "sigma_delta" or p["rule"] != "snapshot"):
            raise CircuitError("network.readout: a softmax readout compiles with sigma-delta "
                               "units and the snapshot rule (its logits are the held sums of "
                               "the hidden units' events), got neuron=%r, rule=%r"
                               % (p["neuron"], p["rule"]))
        for k in ("tau", "max_rate", "tau_syn", "tau_fast", "tau_slow", "tau_m", "eps", "beta",
                  "delta"):
            p[k] = checks.positive(k, p[k], error=CircuitError)
        self.F = checks.integer("free_steps", p["free_steps"], 2, error=CircuitError)
        self.K = checks.integer("nudge_steps", p["nudge_steps"], 1, error=CircuitError)
        m = p["rule_every"]
        if p["rule"] == "online" and (self.F % m or self.K % m):
            raise CircuitError("rule_every = %d: free_steps (%d) and nudge_steps (%d) must be "
                               "multiples of it for the online rule's clock" % (m, self.F, self.K))
        if p["max_rate"] * p["eps"] * p["tau"] * 1e-3 > 1 and not graded(p["neuron"]):
            raise CircuitError("max_rate * dt = %g spikes per step: at most 1 (lower max_rate "
                               "or eps)" % (p["max_rate"] * p["eps"] * p["tau"] * 1e-3))
        if not p["tau_fast"] < p["tau_slow"]:
            raise CircuitError("tau_fast (%g ms) must be shorter than tau_slow (%g ms)"
                               % (p["tau_fast"], p["tau_slow"]))
        self.net, self.n, self.params = net, int(n_examples), p
        self.B = checks.integer("batch_size", batch_size, 1, error=CircuitError)
        try:
            self.plan = Plan.of(p["beta"], "one_sided" if p["variant"] == "random_sign"
                                else p["variant"], nudges, free_steps=self.F,
                                nudge_steps=self.K)
        except ArgumentError as e:
            raise CircuitError(str(e)) from None
        if self.plan.complex:
            raise CircuitError("%s: a Brian2 circuit runs real nudges (holomorphic EP runs "
                               "complex ones), got %r" % ("nudges" if nudges else "variant",
                                                          list(self.plan.nudges)))
        phase = two_phase(self.plan)
        if phase is None:
            raise CircuitError("nudges: the whole-epoch spiking circuit runs [0, b] or [-b, b], "
                               "got %r" % (list(self.plan.nudges),))
        #: the first nudged phase's nudge and the weight of its observation
        self.first_nudge, self.weight = phase
        self.symmetric = len(self.plan.nudged) == 2
        self.S = self.F + self.K * len(self.plan.nudged)
        self.window = self.F // 2           # output spikes counted over the free phase's end
        self.clip, self.seed, self.input_drive = bool(clip), int(seed), input_drive
        self.lrs = dict(lrs) if lrs is not None else {k: 0.1 for k in net.params}
        self.record_slots = int(record_slots)
        self.build_dir, self.keep_build = build_dir, keep_build
        self._folder, self._device = None, None
        self.built = None                       # the BuiltCircuit of the compiled build
        self.seconds_build = 0.0
        self.recorded, self.outputs, self.stats = {}, None, {}
        #: runs so far: run r draws the common random numbers of ``run_seed(seed, r)``
        self.runs = 0

    # -- the slot layout ----------------------------------------------------------------------
    def slots(self, n_train):
        """``(training slots, all slots)`` for a run whose first ``n_train`` examples train."""
        train = -(-int(n_train) // self.B)
        return train, train + -(-(self.n - int(n_train)) // self.B)

    def positions(self, n_train):
        """The flat replica position ``slot * B + replica`` of each of the run's examples: training
        examples fill the training slots, evaluation examples start in the next slot."""
        train, _ = self.slots(n_train)
        k = np.arange(self.n)
        pos = np.where(k < n_train, k, train * self.B + (k - n_train))
        return pos

    def _n_slots(self):
        """Slots the build is sized for: the most any split of ``n`` examples can need."""
        return -(-self.n // self.B) + 1

    # -- per-slot tables ----------------------------------------------------------------------
    def _tables(self, x, y, signs, n_train, record, run=0):
        """Inputs, targets, signs (one row per slot, a column per replica unit), the update
        scale, the record flags at each slot tick and the counter seed of run ``run``."""
        n_slots, B = self._n_slots(), self.B
        pos = self.positions(n_train)
        nx, ny = x.shape[1], y.shape[1]
        xs = np.zeros((n_slots + 1, B, nx))
        ys = np.zeros((n_slots + 1, B, ny))
        ss = np.zeros((n_slots + 1, B))
        xs.reshape(-1, nx)[pos] = x
        ys.reshape(-1, ny)[pos] = y
        ss.reshape(-1)[pos] = signs
        train, _ = self.slots(n_train)
        upd = np.zeros(n_slots + 1)
        for s in range(train):              # batch s is applied at the tick that ends slot s
            upd[s + 1] = 1.0 / min(B, n_train - s * B)
        rec = {}
        for k in range(self.record_slots):
            g, w = np.zeros(n_slots + 1), np.zeros(n_slots + 1)
            if k < len(record):
                b = record[k]
                if not 0 <= b < train:
                    raise CircuitError("record: batch %d is not in the epoch" % b)
                g[b + 1], w[b] = 1.0, 1.0
            rec["recg%d" % k], rec["recw%d" % k] = g, w
        if self.params["noise"] == "common" and self.params["neuron"] == "poisson":
            rec["crn"] = np.full(n_slots + 1, float(counter_rng.run_seed(self.seed, run)))
        return {"x": xs.reshape(n_slots + 1, -1), "y": ys.reshape(n_slots + 1, -1),
                "sgn": ss, "upd": upd, **rec}

    # -- build ----------------------------------------------------------------------------------
    def build(self, b2, tables):
        """The :class:`~neurosim.brian.builder.BuiltCircuit` of the run (the
        ``"spiking-epoch"`` build functions of this module): its context holds the
        TimedArrays (``timed``) and the weight and bias banks, the monitor ``"out"`` the
        output spike counts of every slot."""
        S = self.S
        dt = EXACT_DT_MS * b2.ms          # the circuit's time, scaled: see time_scale
        slot_t = S * dt
        ta = {name: b2.TimedArray(v, dt=slot_t) for name, v in tables.items()}
        ctx = SpikingEpochContext(self, b2, ta, dt, slot_t)
        built = Builder.build("spiking-epoch", b2, ctx)
        for q in self.net.state_pops + (list(self.net.outputs) if ctx.readout else []):
            built.extra += build_bias_bank(b2, ctx, q)
        built.extra += ctx.extra
        built.monitors["out"] = b2.StateMonitor(ctx.groups[ctx.out], "cnt", record=True,
                                                dt=slot_t, when="start", order=-1,
                                                name="mon_out")
        self.built = built
        return built

    # -- running ------------------------------------------------------------------------------
    def train_epoch(self, x, y, signs=None, lrs=None, n_train=None, record=(), run=None):
        """Train on the first ``n_train`` (default all) examples of ``x`` (n, n_in), ``y`` in
        that order, mini-batch ``b`` being examples ``b*B .. b*B+B-1``, starting from
        ``net.params``; the remaining examples then run their free phase at the final weights.
        Afterwards ``net.params`` holds the weights read back from the banks, :attr:`outputs`
        every example's output rates from its spikes, :attr:`recorded` per recorded batch
        ``(estimate, params)`` and :attr:`stats` the run's spikes, the local rule's synaptic
        operations (``rule_ops``) and timings. ``run``: the run's index for the common random
        numbers (default :attr:`runs`, the runs so far; an engine passes its epoch count)."""
        if lrs is not None:
            self.lrs = dict(lrs)
        n_train = self.n if n_train is None else int(n_train)
        record = [int(b) for b in record]
        if len(record) > self.record_slots:
            raise CircuitError("the circuit was built to record %d batch updates, asked for %d"
                               % (self.record_slots, len(record)))
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape[0] != self.n or y.shape[0] != self.n:
            raise CircuitError("the circuit was built for %d examples per run, got %d"
                               % (self.n, x.shape[0]))
        if not 0 <= n_train <= self.n:
            raise CircuitError("n_train must lie in [0, %d], got %d" % (self.n, n_train))
        if x.min() < 0 or x.max() > 1:
            raise CircuitError("x must lie in [0, 1] in a spiking circuit (inputs fire at "
                               "x * max_rate), got values in [%g, %g]: rescale the data"
                               % (x.min(), x.max()))
        signs = np.ones(self.n) if signs is None else np.asarray(signs, np.float64)
        signs = np.where(np.arange(self.n) < n_train, signs, 0.0)
        run = self.runs if run is None else checks.integer("run", run, 0, error=CircuitError)
        self.runs += 1
        tables = self._tables(x, y, signs, n_train, record, run)
        b2 = import_brian2()
        t0 = time.perf_counter()
        if self._folder is None:
            self._folder = build_folder(self.build_dir, prefix="neurosim-spiking-train-")
            dt = EXACT_DT_MS

            def make_network():
                b2.seed(self.seed)
                return self.build(b2, tables).network(b2)

            self._device = compile_standalone(
                self._folder, dt, make_network, self._n_slots() * self.S + 1,
                               "train batch by batch (engine.whole_epoch = false)")
            self.seconds_build = time.perf_counter() - t0
        ctx = self.built.context
        banks, bias_banks, ta = ctx.banks, ctx.bias_banks, ctx.timed
        args = {ta[k]: v for k, v in tables.items()}
        c = self.weight          # lr c: the plan's weight times the learning rate
        for key, bank in banks.items():
            args[bank.W] = np.asarray(self.net.params[key], np.float64).ravel()
            args[bank.lr] = np.array([self.lrs[key] * c])
        for q, bank in bias_banks.items():
            args[bank.W] = np.asarray(self.net.params["b:%s" % q], np.float64)
            args[bank.lr] = np.array([self.lrs["b:%s" % q] * c])
        t1 = time.perf_counter()
        with standalone_device(EXACT_DT_MS, self._device) as device:
            device.run(run_args=args, with_output=False)
            self._read(n_train, record)
        self.stats["seconds_run"] = time.perf_counter() - t1
        self.stats["seconds_build"] = self.seconds_build if t1 - t0 > 1e-3 else 0.0

    def _read(self, n_train, record):
        ctx, mon = self.built.context, self.built.monitors["out"]
        groups, banks, bias_banks = self.built.groups, ctx.banks, ctx.bias_banks
        net, B = self.net, self.B
        out = net.outputs[0]
        n_out = net.sizes[out]
        per_step = self.params["max_rate"] * self.params["eps"] * self.params["tau"] * 1e-3
        cnt = np.asarray(mon.cnt[:]).T            # (ticks, B * n_out): tick s reads slot s - 1
        # spike counts over the window, or a sigma-delta unit's value q at the free phase's end
        scale = 1.0 if graded(self.params["neuron"]) else 1.0 / (self.window * per_step)
        rates = cnt[1:].reshape(-1, B, n_out).reshape(-1, n_out) * scale
        self.outputs = {out: rates[self.positions(n_train)].copy()}
        for key, bank in banks.items():
            self.net.params[key][...] = np.asarray(bank.W[:]).reshape(net.params[key].shape)
        for q, bank in bias_banks.items():
            self.net.params["b:%s" % q][:] = np.asarray(bank.W[:])
        self.recorded = {}
        for k, b in enumerate(record):
            m = min(B, n_train - b * B)
            s = -self.weight / m
            g, w = {}, {}
            for key, bank in banks.items():
                shape = net.params[key].shape
                g[key] = s * np.asarray(getattr(bank, "G%d" % k)[:]).reshape(shape)
                w[key] = np.asarray(getattr(bank, "W%d" % k)[:]).reshape(shape).astype(net.dtype)
            for q, bank in bias_banks.items():
                g["b:%s" % q] = s * np.asarray(getattr(bank, "G%d" % k)[:])
                w["b:%s" % q] = np.asarray(getattr(bank, "W%d" % k)[:]).astype(net.dtype)
            self.recorded[b] = ({key: g[key] for key in net.params},
                                {key: w[key] for key in net.params})
        spikes = {q: {"free": int(np.sum(grp.nspk_free[:])),
                      "nudged": int(np.sum(grp.nspk_nudge[:]))}
                  for q, grp in groups.items() if "nspk_free" in grp.variables}
        # the rule's synaptic operations: one per synapse and training example (snapshot), or
        # one per synapse and tick of the online clock in the nudged phases
        ticks = 1 if self.params["rule"] == "snapshot" else \
            self.K * len(self.plan.nudged) // self.params["rule_every"]
        synapses = sum(int(np.size(net.params[key])) for key in banks)
        rule_ops = synapses * int(n_train) * ticks
        if self.params["rule"] == "online" and graded(self.params["neuron"]):
            # the event rule: one operation per synapse of each event, at both of its ends
            rule_ops = event_rule_ops(net, {q: c["free"] + c["nudged"]
                                            for q, c in spikes.items()})
        self.stats.update(spikes=spikes, slots=int(self.slots(n_train)[1]),
                          rule_ops=rule_ops,
                          steps=int(self.slots(n_train)[1] * self.S),
                          simulated_seconds=self.slots(n_train)[1] * self.S
                          * self.params["eps"] * self.params["tau"] * 1e-3)

    def close(self):
        """Drop the compiled build and remove its folder (unless kept)."""
        if self._folder is not None:
            self._device, self.built = None, None   # the build's own device: nothing else holds it
            if not self.keep_build and self.build_dir is None:
                shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


# -- the run's build functions (model "spiking-epoch") ---------------------------------------
class SpikingEpochContext:
    """What the run's build functions read: the circuit (network, parameters, plan, record
    slots), the namespace and TimedArrays, the step, the slot and phase-control clocks,
    names; the build fills ``groups``, ``banks`` (weight key -> its bank of weights) and
    ``bias_banks``."""

    def __init__(self, circuit, b2, timed, dt, slot_t):
        net, p = circuit.net, circuit.params
        F, K, S = circuit.F, circuit.K, circuit.S
        self.circuit, self.net, self.params, self.B = circuit, net, p, circuit.B
        self.sym, self.dt, self.slot_t, self.timed = circuit.symmetric, dt, slot_t, timed
        #: the phase-control clock: every phase boundary is a tick
        self.g = math.gcd(math.gcd(F, K), F - circuit.window)
        self.xin, self.out = net.inputs[0], net.outputs[0]
        scale = time_scale(p["eps"] * p["tau"])     # the clock steps EXACT_DT_MS
        ms = b2.ms * scale
        ns = {"%s_ta" % k: v for k, v in timed.items()}
        ns.update(tau=p["tau"] * ms, tau_syn=p["tau_syn"] * ms, tau_m=p["tau_m"] * ms,
                  tau_fast=p["tau_fast"] * ms, tau_slow=p["tau_slow"] * ms,
                  max_rate=p["max_rate"] * b2.Hz / scale,
                  spikes_per_step=p["max_rate"] * p["eps"] * p["tau"] * 1e-3,
                  syn_gain=1e3 / (p["max_rate"] * p["tau_syn"]),
                  lif_a=p["eps"] * p["tau"] / p["tau_m"], slot_t=slot_t, delta=p["delta"],
                  beta_val=circuit.first_nudge, F=F, K=K, S=S, W0=F - circuit.window,
                  G=self.g, sym=1 if self.sym else 0)
        ns["rule_dt"] = p["rule_every"] * dt
        self.namespace = ns
        self.mid = "t + 0.5 * slot_t"            # per-slot values looked up mid-interval
        self.ids = {q: "p%d" % i for i, q in enumerate(net.graph.nodes)}
        #: the online rule (on a clock of ``rule_every`` steps) instead of the snapshots
        self.online = p["rule"] == "online"
        #: population -> the expression of its common random number (``noise="common"``):
        #: the counter uniform of (the run's seed, the example's position in the epoch, the
        #: unit, the step within the phase), the same in the example's every phase
        self.common = {}
        if p["noise"] == "common" and p["neuron"] == "poisson":
            ns[counter_rng.NAME] = counter_rng.brian2_function(b2)
            n_step = "(t_in_timesteps %% %d)" % S
            step = "%s - %d * int(%s >= %d) - %d * int(%s >= %d)" % (
                n_step, F, n_step, F, K, n_step, F + K)
            offsets = counter_rng.unit_offsets(net)
            for q in net.graph.nodes:
                n = net.sizes[q]
                example = "(t_in_timesteps // %d) * %d + i // %d" % (S, self.B, n)
                self.common[q] = counter_rng.expression(n, offsets[q], example, step,
                                                        seed="crn_ta(t)")
        self.analog = circuit.input_drive == "analog"
        self.traced_input = p["input_rule"] == "spikes"
        self.zq = "zm" if self.sym else "z0"
        self.term_vars, self.term_of = {q: [] for q in net.state_pops}, {}
        self.spiking_terms = set()
        for i, t in enumerate(net.terms):
            v = "I_%d" % i
            self.term_vars[t.target].append(v)
            self.term_of[(t.key, t.transpose)] = v
            if not (self.analog and t.source == self.xin):
                self.spiking_terms.add(v)
        self.ends = {t.key: (t.target, t.source) if t.transpose else (t.source, t.target)
                     for t in net.terms}
        #: a softmax readout: the output population holds its logits' current ``I_r`` (the
        #: hidden units' events times the readout weights) and sends sigma-delta events of
        #: its error ``yhat - y`` back into each hidden population it reads (``I_fb``)
        self.readout = net.readout == "softmax"
        self.read_from = {}       # hidden population -> the readout weight key it feeds
        for t in net.readout_terms:
            self.term_of[(t.key, False)], self.term_of[(t.key, True)] = "I_r", "I_fb"
            self.ends[t.key] = (t.source, t.target)
            self.read_from[t.source] = t.key
            self.spiking_terms |= {"I_r", "I_fb"}
        self.extra = []           # further objects of the build (the softmax's normaliser)
        # phase control on a clock of one tick per boundary: kk = step within the slot (a
        # group's t_in_timesteps counts the steps of its own clock, also in run_regularly)
        kk = "kk = t_in_timesteps % S"
        self.kk = kk
        self.flags = [kk, "at_0 = int(kk == 0)", "at_F = int(kk == F)",
                      "at_FK = sym * int(kk == F + K)"]
        #: the sign of the nudge at step kk: +sgn in the first nudged phase, -sgn in the
        #: second (symmetric), 0 in the free phase
        self.phase_sign = "sgn * (int(kk >= F) * int(kk < F + K) - sym * int(kk >= F + K))"
        self.counters = ["nspk_free : 1", "nspk_nudge : 1", "in_free : 1"]
        # spikes of training examples (sign +-1; evaluation and padding have sign 0)
        self.count = "nspk_free += in_free * abs(sgn)\nnspk_nudge += (1 - in_free) * abs(sgn)"
        slots = range(circuit.record_slots)
        mid = self.mid
        self.bank_code = (["G%d += recg%d_ta(%s) * A" % (k, k, mid) for k in slots]
                          + ["W += lr * upd_ta(%s) * A" % mid, "A = 0"]
                          + ["W%d += recw%d_ta(%s) * W" % (k, k, mid) for k in slots])
        self.bank_eqs = ["W : 1", "A : 1", "lr : 1 (shared)"] + \
            ["G%d : 1\nW%d : 1" % (k, k) for k in slots]
        self.groups, self.banks, self.bias_banks = {}, {}, {}


def snapshots(saved):
    """Phase control: the z snapshots (``zm``, ``zp``, ``z0``), and ``saved`` saved at the
    end of the free phase and restored at the start of the second nudged phase."""
    code = ["zm = sym * at_0 * z + (1 - sym * at_0) * zm",
            "zp = (1 - sym) * at_0 * z + sym * at_FK * z"
            " + (1 - (1 - sym) * at_0 - sym * at_FK) * zp",
            "z0 = at_F * z + (1 - at_F) * z0"]
    code += ["%s_saved = at_F * %s + (1 - at_F) * %s_saved" % (v, v, v) for v in saved]
    code += ["%s = at_FK * %s_saved + (1 - at_FK) * %s" % (v, v, v) for v in saved]
    return code


@Builder.register("spiking-epoch", "input")
def build_epoch_input(b2, ctx, pop):
    """The input population: replica units firing at the slot's data (or an analog drive),
    reloaded at every slot; with ``input_rule="spikes"`` their own rate traces."""
    p, net, B, dt = ctx.params, ctx.net, ctx.B, ctx.dt
    analog, traced_input, ids = ctx.analog, ctx.traced_input, ctx.ids
    eqs, threshold, reset = encoder(p["neuron"], ctx.common.get(pop))
    in_eqs = ["rho : 1", "sgn : 1"] + ctx.counters
    if analog:
        eqs, threshold, reset = [], None, None
        in_eqs = ["rho : 1", "sgn : 1"]
    # what an input unit restarts from at the second nudged phase: its traces, a LIF
    # unit's membrane
    code_graded = graded(p["neuron"])
    in_saved = (["r_fast", "r_slow"] if traced_input and not code_graded else []) + \
        (encoder_state(p["neuron"]) if not analog else [])
    trace_eqs, trace_spike = trace_equations(p["neuron"])
    if traced_input:
        eqs = eqs + trace_eqs + ["z0 : 1", "zp : 1", "zm : 1"]
    eqs = eqs + ["%s_saved : 1" % v for v in in_saved]
    on_spike = "\n".join(filter(None, [trace_spike if traced_input else "", reset or "",
                                       ctx.count]))
    gi = b2.NeuronGroup(net.sizes[pop] * B, "\n".join(in_eqs + eqs), threshold=threshold,
                        reset=on_spike if threshold else None, method="euler",
                        name="pop_%s" % ids[pop], namespace=ctx.namespace)
    nin = net.sizes[pop]
    reload_in = ["rho = x_ta(%s, i)" % ctx.mid, "sgn = sgn_ta(%s, i // %d)" % (ctx.mid, nin)]
    if traced_input and not code_graded:
        reload_in += ["r_fast = rho", "r_slow = rho"]
    if in_saved:        # (the z snapshots, the first three lines, only with traces)
        control = snapshots(in_saved)
        gi.run_regularly("\n".join(ctx.flags + (control if traced_input else control[3:])),
                         when="start", order=0, dt=ctx.g * dt, name="control_%s" % ids[pop])
    if not analog:
        gi.run_regularly("\n".join([ctx.kk, "in_free = int(kk < F)"]), when="start", order=0,
                         dt=ctx.g * dt, name="phase_%s" % ids[pop])
    if "v" in encoder_state(p["neuron"]) and not analog:
        reload_in.append("v = rand()")
    if code_graded and not analog:      # the example's value is sent again from 0
        reload_in.append("q = 0")
    gi.run_regularly("\n".join(reload_in), when="start", order=5, dt=ctx.slot_t,
                     name="load_%s" % ids[pop])
    return gi


@Builder.register("spiking-epoch", "state")
def build_epoch_state(b2, ctx, q):
    """A state population: replica rate neurons with their spike encoder, current traces,
    rate traces, phase control (snapshots, restarts, the nudge), the bias rule per slot and
    the reload of the next slot's example."""
    p, net, B, dt, ids = ctx.params, ctx.net, ctx.B, ctx.dt, ctx.ids
    out, mid = ctx.out, ctx.mid
    if ctx.readout and q in net.outputs:
        return build_epoch_readout(b2, ctx, q)
    n = net.sizes[q]
    enc_eqs, threshold, reset = encoder(p["neuron"], ctx.common.get(q))
    currents = ctx.term_vars[q]
    fed_back = ["I_fb"] if q in ctx.read_from else []    # a softmax readout's error
    nudge = " - beta_now * (u - y)" if q == out else \
        " - beta_now * drho * I_fb" if fed_back else ""
    nudged = q == out or bool(fed_back)
    eqs = ["du/dt = (-u + drho * (%s)%s) / tau : 1" % (" + ".join(currents + ["b"]), nudge),
           "rho = %s : 1" % RHO[net.activation],
           "drho = %s : 1" % DRHO[net.activation],
           "b : 1", "z0 : 1", "zp : 1", "zm : 1", "acc_b : 1", "sgn : 1"] + ctx.counters
    eqs += [current_equation(p["neuron"], v) if v in ctx.spiking_terms else "%s : 1" % v
            for v in currents + fed_back]
    code_graded = graded(p["neuron"])
    trace_eqs, trace_spike = trace_equations(p["neuron"])
    eqs += trace_eqs + enc_eqs
    if q == out:
        eqs += ["y : 1", "cnt : 1", "count_on : 1"]
    if nudged:
        eqs.append("beta_now : 1")
    if ctx.online:
        eqs.append("gate : 1")
    saved = ["u"] + ([] if code_graded else ["r_fast", "r_slow"]) + \
        [v for v in currents + fed_back if v in ctx.spiking_terms] + encoder_state(p["neuron"])
    eqs += ["%s_saved : 1" % v for v in saved]
    on_spike = [trace_spike, reset, ctx.count] + \
        (["cnt += count_on"] if q == out and not code_graded else [])
    if ctx.online and code_graded:    # the bias's event rule, before the event moves q
        on_spike.insert(0, event_rule_bias("gate"))
    grp = b2.NeuronGroup(n * B, "\n".join(eqs), threshold=threshold,
                         reset="\n".join(filter(None, on_spike)), method="euler",
                         name="pop_%s" % ids[q], namespace=ctx.namespace)
    control = ctx.flags + snapshots(saved) + ["in_free = int(kk < F)"]
    if ctx.online:      # the online rule's weight: the phase's sign
        control.append("gate = %s" % ctx.phase_sign)
    if nudged:
        control.append("beta_now = beta_val * %s" % ctx.phase_sign)
    if q == out:
        control.append("count_on = int(kk >= W0) * int(kk < F)")
        if code_graded:      # the output's value: what its events sent by the free phase's end
            control.append("cnt = at_F * q + (1 - at_F) * cnt")
    grp.run_regularly("\n".join(control), when="start", order=0, dt=ctx.g * dt,
                      name="control_%s" % ids[q])
    if ctx.circuit.clip:
        grp.run_regularly("u = clip(u, 0, 1)", when="after_groups", name="clip_%s" % ids[q])
    if not ctx.online:
        grp.run_regularly("acc_b = sgn * (zp - %s)" % ctx.zq, when="start", order=1,
                          dt=ctx.slot_t, name="rule_b_%s" % ids[q])
    elif not code_graded:     # integrate the observed derivative over the nudged phases
        grp.run_regularly("acc_b += gate * dz * rule_dt", when="start", order=1,
                          dt=ctx.namespace["rule_dt"], name="online_b_%s" % ids[q])
    reload = ["u = 0"] + (["q = 0"] if code_graded else ["r_fast = rho", "r_slow = rho"]) + \
        ["sgn = sgn_ta(%s, i // %d)" % (mid, n)] + ["%s = 0" % v for v in currents + fed_back]
    if q == out:
        reload += ["y = y_ta(%s, i)" % mid, "cnt = 0"]
    if "v" in encoder_state(p["neuron"]):
        reload.append("v = rand()")
    if ctx.online:      # the slot's sum went to the bank (order 2)
        reload.append("acc_b = 0")
    grp.run_regularly("\n".join(reload), when="start", order=5, dt=ctx.slot_t,
                      name="load_%s" % ids[q])
    return grp


def build_epoch_readout(b2, ctx, q):
    """A softmax readout population (sigma-delta units): logits ``zlog = I_r + b`` (``I_r``
    the held sum of the hidden units' events times the readout weights), the prediction
    ``p = softmax(zlog)`` over the replica's units (a summed variable of all-to-all synapses
    within the replica), and sigma-delta events of the error ``p - y`` sent back to the
    hidden units it reads; its snapshots of that error at the ends of the nudged phases give
    the readout's rule, and ``cnt`` holds ``p`` at the end of the free phase."""
    net, B, ids, mid, dt = ctx.net, ctx.B, ctx.ids, ctx.mid, ctx.dt
    n = net.sizes[q]
    enc_eqs, threshold, reset = encoder("sigma_delta")
    saved = ["I_r", "q"]
    eqs = ["I_r : 1", "Zs : 1", "zlog = I_r + b : 1",
           "p = exp(zlog) / clip(Zs, exp(zlog), 1e300) : 1", "rho = p - y : 1", "z = q : 1",
           "b : 1", "y : 1", "z0 : 1", "zp : 1", "zm : 1", "acc_b : 1", "sgn : 1", "cnt : 1"] \
        + ctx.counters + enc_eqs + ["%s_saved : 1" % v for v in saved]
    grp = b2.NeuronGroup(n * B, "\n".join(eqs), threshold=threshold,
                         reset="\n".join([reset, ctx.count]), method="euler",
                         name="pop_%s" % ids[q], namespace=ctx.namespace)
    control = ctx.flags + snapshots(saved) + ["in_free = int(kk < F)",
                                              "cnt = at_F * p + (1 - at_F) * cnt"]
    grp.run_regularly("\n".join(control), when="start", order=0, dt=ctx.g * dt,
                      name="control_%s" % ids[q])
    grp.run_regularly("acc_b = -beta_val * abs(sgn) * (zp + sym * zm)", when="start",
                      order=1, dt=ctx.slot_t, name="rule_b_%s" % ids[q])
    reload = ["q = 0", "I_r = 0", "sgn = sgn_ta(%s, i // %d)" % (mid, n),
              "y = y_ta(%s, i)" % mid, "cnt = 0"]
    grp.run_regularly("\n".join(reload), when="start", order=5, dt=ctx.slot_t,
                      name="load_%s" % ids[q])
    norm = b2.Synapses(grp, grp, "Zs_post = exp(zlog_pre) : 1 (summed)",
                       name="softmax_%s" % ids[q], namespace=ctx.namespace)
    a, c = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    norm.connect(i=np.concatenate([r * n + a.ravel() for r in range(B)]),
                 j=np.concatenate([r * n + c.ravel() for r in range(B)]))
    ctx.extra.append(norm)
    # within one step: the hidden units' events reach I_r (synapses), then the normaliser,
    # the error's events and their feedback run after them, so the hidden units' next step
    # feels the error of their current state, as the rate network's Euler step does
    norm.summed_updaters["Zs_post"].when, norm.summed_updaters["Zs_post"].order = \
        "after_synapses", 0
    grp.thresholder["spike"].when, grp.thresholder["spike"].order = "after_synapses", 1
    grp.resetter["spike"].when, grp.resetter["spike"].order = "after_synapses", 3
    return grp


@Builder.register("spiking-epoch", "tied")
def build_epoch_tied(b2, ctx, key):
    """A tied weight: replica synapses (forward, with the rule, and backward), the bank of
    its weights that sums their accumulators and applies the update per mini-batch, and the
    bank's synapses copying the weights back onto the replicas (``ctx.banks[key]``)."""
    net, B, ids, ns, p = ctx.net, ctx.B, ctx.ids, ctx.namespace, ctx.params
    slot_t, zq = ctx.slot_t, ctx.zq
    src, tgt = ctx.ends[key]
    na, nb = net.sizes[src], net.sizes[tgt]
    ia, jb = np.meshgrid(np.arange(na), np.arange(nb), indexing="ij")
    ia, jb = ia.ravel(), jb.ravel()
    i = np.concatenate([r * na + ia for r in range(B)])
    j = np.concatenate([r * nb + jb for r in range(B)])
    fwd_var = ctx.term_of[(key, False)]
    data = src == ctx.xin and not ctx.traced_input
    on_pre = {} if fwd_var not in ctx.spiking_terms else \
        {"pre": current_increment(p["neuron"], fwd_var)}
    on_post, events = None, {k: "spike" for k in on_pre}
    if ctx.online and graded(p["neuron"]):     # sigma-delta: the rule on the units' events
        learn, on_post = event_rule("gate_post", data)
        if learn:
            on_pre["learn"], events["learn"] = learn, "spike"
    syn = b2.Synapses(ctx.groups[src], ctx.groups[tgt], "w : 1\nacc : 1",
                      on_pre=on_pre or None, on_post=on_post, on_event=events or None,
                      name="proj_%s" % ids[src] + ids[tgt], namespace=ns)
    syn.connect(i=i, j=j)
    if ctx.online and graded(p["neuron"]):
        syn.run_regularly("acc = 0", when="start", order=5, dt=slot_t,
                          name="reset_%s" % syn.name)
    elif ctx.online:    # d/dt [z_pre z_post] on the rule clock, weighted by the phase's gate
        d = "rho_pre * dz_post" if data else "(z_pre * dz_post + dz_pre * z_post)"
        syn.run_regularly("acc += gate_post * %s * rule_dt" % d, when="start", order=1,
                          dt=ns["rule_dt"], name="online_%s" % syn.name)
        syn.run_regularly("acc = 0", when="start", order=5, dt=slot_t,
                          name="reset_%s" % syn.name)
    else:
        if key in ctx.read_from.values():
            # the readout's own term beta C: sum_i c_i beta_i dC/dW at the nudged states,
            # in units of the bank's lr c (docs/maths.md 12)
            rule = "acc = -beta_val * abs(sgn_post) * (zp_pre * zp_post + sym * zm_pre * zm_post)"
        elif data:
            rule = "acc = sgn_post * rho_pre * (zp_post - %s_post)" % zq
        else:
            rule = "acc = sgn_post * (zp_pre * zp_post - %s_pre * %s_post)" % (zq, zq)
        syn.run_regularly(rule, when="start", order=1, dt=slot_t, name="rule_%s" % syn.name)
    if fwd_var not in ctx.spiking_terms:      # analog input drive, once per example
        syn.run_regularly("%s_post += w * rho_pre" % fwd_var, when="start", order=6,
                          dt=slot_t, name="drive_%s" % syn.name)
    copies = [syn]
    if (key, True) in ctx.term_of:
        back = b2.Synapses(ctx.groups[tgt], ctx.groups[src], "w : 1",
                           on_pre=current_increment(p["neuron"], ctx.term_of[(key, True)]),
                           name="back_%s" % ids[src] + ids[tgt], namespace=ns)
        back.connect(i=j, j=i)
        if key in ctx.read_from.values():     # the readout's error events (see its builder)
            back.pre.when, back.pre.order = "after_synapses", 2
        copies.append(back)
    bank = b2.NeuronGroup(na * nb, "\n".join(ctx.bank_eqs), name="bank_%s" % syn.name,
                          namespace=ns)
    bank.run_regularly("\n".join(ctx.bank_code), when="start", order=3, dt=slot_t,
                       name="apply_%s" % syn.name)
    links = []
    for c, copy in enumerate(copies):
        link = b2.Synapses(bank, copy, "", name="link%d_%s" % (c, syn.name), namespace=ns)
        link.connect(i=np.tile(np.arange(na * nb), B), j=np.arange(B * na * nb))
        if c == 0:
            link.run_regularly("A_pre += acc_post", when="start", order=2, dt=slot_t,
                               name="sum_%s" % syn.name)
        link.run_regularly("w_post = W_pre", when="start", order=4, dt=slot_t,
                           name="copy%d_%s" % (c, syn.name))
        links.append(link)
    ctx.banks[key] = bank
    return BuiltProjection(syn, ia, jb, extra=copies[1:] + [bank] + links)


def build_bias_bank(b2, ctx, q):
    """The bank of population ``q``'s biases and its synapses onto the replicas (summing
    their ``acc_b``, copying the biases back); returns the objects (``ctx.bias_banks[q]``)."""
    n, B, ids = ctx.net.sizes[q], ctx.B, ctx.ids
    bank = b2.NeuronGroup(n, "\n".join(ctx.bank_eqs), name="bank_b_%s" % ids[q],
                          namespace=ctx.namespace)
    bank.run_regularly("\n".join(ctx.bank_code), when="start", order=3, dt=ctx.slot_t,
                       name="apply_b_%s" % ids[q])
    link = b2.Synapses(bank, ctx.groups[q], "", name="link_b_%s" % ids[q],
                       namespace=ctx.namespace)
    link.connect(i=np.tile(np.arange(n), B), j=np.arange(B * n))
    link.run_regularly("A_pre += acc_b_post", when="start", order=2, dt=ctx.slot_t,
                       name="sum_b_%s" % ids[q])
    link.run_regularly("b_post = W_pre", when="start", order=4, dt=ctx.slot_t,
                       name="copy_b_%s" % ids[q])
    ctx.bias_banks[q] = bank
    return [bank, link]


__all__ = ["SpikingTrainingCircuit", "INPUT_DRIVES", "PARAMETERS", "two_phase"]
