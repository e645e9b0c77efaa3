"""Training through a Brian2 rate circuit: the weights live in the synapses, and one
compiled ``cpp_standalone`` run trains a whole epoch.

Examples run one after another, ``S = free + nudge x (nudged phases)`` Euler steps each: the
free phase, then one nudged phase per non-zero nudge of the engine's phase plan
(:class:`neurosim.plan.Plan`), each restarted from the free state.
Inputs and targets come from TimedArrays with one entry per example; the phase of every step
comes from the integer ``t_in_timesteps % S`` (a float ``t % T`` drifts). The input
projections' summed currents, the synapses' learning rules and the weight updates run on a
clock of one tick per example, so the dense input matrix is touched once per example, not
once per step. Each neuron keeps, per example, its rate at the end of the free phase
(``rho0``) and of each nudged phase ``q`` (``rho_nq``); each synapse accumulates the raw
observations ``[rho_pre rho_post]`` of every nudged phase against the free state, weighted by
the plan's weights ``c_q`` (numbers passed in, :attr:`Plan.weights`) and the example's sign
(random-sign EP); every ``batch_size`` examples it applies ``w += lr / batch * acc``: the
update ``theta -= lr g`` of the reference trainer, with ``g`` the batch-mean EP estimate.

The build is compiled once per network shape; each epoch re-runs it with new inputs, targets
and weights through ``device.run(run_args=...)``.
"""
from __future__ import annotations

import shutil
import time

import numpy as np

from ..plan import Plan
from .builder import Builder, BuiltProjection
from .device import (EXACT_DT_MS, CircuitError, build_folder, check_compiler,
                     check_compilable, compile_standalone, import_brian2, standalone_device,
                     time_scale)
from .equations import rate_equations


def check_supported(net, readouts=("state",)):
    if net.dynamics != "energy":
        raise CircuitError("training through a Brian2 circuit supports energy dynamics only "
                           "(this network is %r); use the reference engine" % net.dynamics)
    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise CircuitError("training through a Brian2 circuit needs one input and one output "
                           "population (this network has %s and %s)" % (net.inputs, net.outputs))
    check_compilable(net, readouts)
    lateral = [t.key for t in net.terms if t.source == t.target]
    if lateral:
        raise CircuitError("training through a Brian2 circuit does not support lateral "
                           "projections (%s); use the reference engine" % lateral)


class TrainingCircuit:
    """A compiled standalone circuit that trains one epoch per run (see the module doc).

    The phases are those of ``Plan.of(beta, variant, nudges)`` (random sign: the plan of
    ``[0, beta]``, each example's sign given to :meth:`train_epoch`)."""

    def __init__(self, net, n_examples, eps=0.5, free_steps=20, nudge_steps=4, beta=0.5,
                 variant="symmetric", clip=True, lrs=None, batch_size=20, build_dir=None,
                 keep_build=False, record_slots=0, threads=1, nudges=None):
        check_supported(net)
        check_compiler()
        self.net, self.n = net, int(n_examples)
        self.eps, self.F, self.K = float(eps), int(free_steps), int(nudge_steps)
        self.plan = Plan.of(beta, "one_sided" if variant == "random_sign" else variant,
                            nudges, free_steps=self.F, nudge_steps=self.K)
        if self.plan.complex:
            raise CircuitError("%s: a Brian2 circuit runs real nudges (holomorphic EP runs "
                               "complex ones), got %r"
                               % ("nudges" if nudges else "variant", list(self.plan.nudges)))
        self.clip = bool(clip)
        c = self.plan.weights
        #: per nudged phase (in run order): its nudge strength and its observation's weight
        self.phase_nudges = self.plan.nudged
        self.phase_weights = tuple(float(c[i]) for i, b in enumerate(self.plan.nudges) if b != 0)
        self.S = self.F + self.K * len(self.phase_nudges)
        self.batch_size = int(batch_size)
        self.lrs = dict(lrs) if lrs is not None else {k: 0.1 for k in net.params}
        self.build_dir, self.keep_build = build_dir, keep_build
        self._folder, self._device = None, None
        self.built = None                       # the BuiltCircuit of the compiled build
        self.seconds_build = 0.0
        self.record_slots = int(record_slots)   # batches whose update the run can report
        self.threads = int(threads)             # OpenMP threads of the compiled run
        self.recorded, self.outputs = {}, None

    # -- schedule arrays -----------------------------------------------------------------
    def _per_example(self, values):
        """One row per example plus one for the closing tick (the last update)."""
        v = np.asarray(values, dtype=np.float64)
        return np.concatenate([v, v[-1:]], axis=0)

    def _update_scale(self, n_train=None):
        """At the tick that starts example m: 1 / (examples in the batch just finished); the
        examples after the first ``n_train`` (default all) only infer."""
        n_train = self.n if n_train is None else int(n_train)
        scale = np.zeros(self.n + 1)
        for end in range(1, n_train + 1):
            if end % self.batch_size == 0 or end == n_train:
                start = ((end - 1) // self.batch_size) * self.batch_size
                scale[end] = 1.0 / (end - start)
        return scale

    def _record_ticks(self, batches, n_train):
        """Per record slot: 1 at the tick that applies batch b's update (``recg``) and at the
        tick where batch b starts, after the previous update (``recw``)."""
        rec = {}
        for k in range(self.record_slots):
            g, w = np.zeros(self.n + 1), np.zeros(self.n + 1)
            if k < len(batches):
                start = batches[k] * self.batch_size
                end = min(start + self.batch_size, n_train)
                if not 0 <= start < n_train:
                    raise CircuitError("record: batch %d is not in the epoch" % batches[k])
                g[end], w[start] = 1.0, 1.0
            rec["recg%d_ta" % k], rec["recw%d_ta" % k] = g, w
        return rec

    # -- build ------------------------------------------------------------------------------
    def build(self, b2, x, y, signs):
        """The :class:`~neurosim.brian.builder.BuiltCircuit` of the epoch (the ``"rate-epoch"``
        build functions of this module): the context holds the TimedArrays (``timed``), the
        monitor ``"out"`` every example's output rates at the end of its free phase."""
        net, S, F, K = self.net, self.S, self.F, self.K
        dt = EXACT_DT_MS * b2.ms          # the circuit's time, scaled: see device.time_scale
        tick = S * dt
        ta = {"x_ta": b2.TimedArray(self._per_example(x), dt=tick),
              "y_ta": b2.TimedArray(self._per_example(y), dt=tick),
              "sgn_ta": b2.TimedArray(np.append(signs, 0.0), dt=tick),
              "sgnprev_ta": b2.TimedArray(np.concatenate([[0.0], signs]), dt=tick),
              "upd_ta": b2.TimedArray(self._update_scale(), dt=tick)}
        for name, v in self._record_ticks([], self.n).items():
            ta[name] = b2.TimedArray(v, dt=tick)
        ns = dict(ta, tau=time_scale(self.eps) * b2.ms, S=S, F=F, K=K, tick_t=tick)
        ns.update({"nb%d" % q: b for q, b in enumerate(self.phase_nudges)})
        ns.update({"cw%d" % q: c for q, c in enumerate(self.phase_weights)})
        ctx = EpochContext(self, ns, ta, dt, tick)
        built = Builder.build("rate-epoch", b2, ctx)
        built.extra += list(ctx.drives.values())
        # each example's output rates at the end of its free phase, read at the next tick
        built.monitors["out"] = b2.StateMonitor(ctx.groups[net.outputs[0]], "rho0", record=True,
                                                dt=tick, when="start", order=-1, name="mon_out")
        self.built = built
        return built

    def contrast(self, template):
        """``sum_q c_q (observation of nudged phase q - the free state's)``: ``template``
        with ``%s`` for the phase's snapshot variable (``rho_nq``), weighted by ``cw_q``."""
        return " + ".join("cw%d * (%s)" % (q, template.replace("%s", "rho_n%d" % q))
                          for q in range(len(self.phase_weights)))

    # -- running ------------------------------------------------------------------------------
    def train_epoch(self, x, y, signs=None, lrs=None, batch_size=None, n_train=None,
                    record=()):
        """Train one epoch on ``x`` (n, n_in), ``y`` (n, n_out) in that order, starting from
        ``net.params``; afterwards ``net.params`` holds the weights read back from the
        synapses. ``signs``: per-example sign of beta (random-sign EP), default +1;
        ``lrs`` and ``batch_size`` may change between epochs without recompiling.

        ``n_train``: only the first ``n_train`` examples train (default all); the others run
        their free phase at the final weights (give them sign 0). ``record``: up to
        ``record_slots`` batch indices whose update the synapses copy aside during the run;
        afterwards :attr:`recorded` maps each to ``(estimate, params)`` (the batch-mean EP
        estimate ``g`` the synapses accumulated, in the convention of
        :func:`neurosim.ep.gradient`, and the parameters the batch ran with), and
        :attr:`outputs` holds every example's output rates at the end of its free phase."""
        if lrs is not None:
            self.lrs = dict(lrs)
        if batch_size is not None:
            self.batch_size = int(batch_size)
        record = [int(b) for b in record]
        if len(record) > self.record_slots:
            raise CircuitError("the circuit was built to record %d batch updates, asked for %d"
                               % (self.record_slots, len(record)))
        n_train = self.n if n_train is None else int(n_train)
        b2 = import_brian2()
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape[0] != self.n or y.shape[0] != self.n:
            raise CircuitError("the circuit was built for %d examples per epoch, got %d"
                               % (self.n, x.shape[0]))
        signs = np.ones(self.n) if signs is None else np.asarray(signs, np.float64)
        if self._folder is None:
            t0 = time.perf_counter()
            self._folder = build_folder(self.build_dir, prefix="neurosim-train-")
            self._device = compile_standalone(
                self._folder, EXACT_DT_MS, lambda: self.build(b2, x, y, signs).network(b2),
                self.n * self.S + 1, "train with the reference engine", threads=self.threads)
            self.seconds_build = time.perf_counter() - t0
        groups, syns = self.built.groups, self.built.synapses
        ta, mon = self.built.context.timed, self.built.monitors["out"]
        args = {ta["x_ta"]: self._per_example(x), ta["y_ta"]: self._per_example(y),
                ta["sgn_ta"]: np.append(signs, 0.0),
                ta["sgnprev_ta"]: np.concatenate([[0.0], signs])}
        for name, v in self._record_ticks(record, n_train).items():
            args[ta[name]] = v
        for key, syn in syns.items():
            i, j = self._pairs(key)
            args[syn.w] = np.asarray(self.net.params[key][i, j], np.float64)
            args[syn.lr_w] = np.array([self.lrs[key]])
        for p in self.net.state_pops:
            args[groups[p].b] = np.asarray(self.net.params["b:%s" % p], np.float64)
            args[groups[p].lr_b] = np.array([self.lrs["b:%s" % p]])
        args[ta["upd_ta"]] = self._update_scale(n_train)
        with standalone_device(EXACT_DT_MS, self._device) as device:
            device.run(run_args=args, with_output=False)
            self._read_recorded(record, n_train)
            self.outputs = {self.net.outputs[0]: np.asarray(mon.rho0[:]).T[1:self.n + 1].copy()}
            for key, syn in syns.items():
                i, j = self._pairs(key)
                w = np.array(syn.w[:])
                self.net.params[key][i, j] = w
            for p in self.net.state_pops:
                self.net.params["b:%s" % p][:] = np.array(groups[p].b[:])

    def _pairs(self, key):
        """(pre, post) index of every synapse of weight ``key``."""
        p = self.built.projections[key]
        return p.pre, p.post

    def _read_recorded(self, record, n_train):
        """:attr:`recorded` from the record slots' synapse and neuron variables."""
        groups, syns = self.built.groups, self.built.synapses
        net, self.recorded = self.net, {}
        for k, b in enumerate(record):
            m = min((b + 1) * self.batch_size, n_train) - b * self.batch_size
            scale = -1.0 / m
            g, w = {}, {}
            for key, syn in syns.items():
                i, j = self._pairs(key)
                g[key] = np.zeros(net.params[key].shape)
                w[key] = np.zeros(net.params[key].shape, net.dtype)
                g[key][i, j] = scale * np.asarray(getattr(syn, "g%d" % k)[:])
                w[key][i, j] = np.asarray(getattr(syn, "w%d" % k)[:])
            for p in net.state_pops:
                g["b:%s" % p] = scale * np.asarray(getattr(groups[p], "gb%d" % k)[:])
                w["b:%s" % p] = np.asarray(getattr(groups[p], "bb%d" % k)[:]).astype(net.dtype)
            self.recorded[b] = ({key: g[key] for key in net.params},
                                {key: w[key] for key in net.params})

    def close(self):
        """Drop the compiled build and remove its folder (unless kept)."""
        if self._folder is not None:
            self._device, self.built = None, None   # the build's own device: nothing else holds it
            if not self.keep_build and self.build_dir is None:
                shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


# -- the epoch's build functions (model "rate-epoch") ----------------------------------------
class EpochContext:
    """What the epoch's build functions read: the circuit (its network, plan, learning rates,
    record slots), the namespace and TimedArrays, the step and the example tick, names."""

    def __init__(self, circuit, namespace, timed, dt, tick):
        net = circuit.net
        self.circuit, self.net, self.namespace, self.timed = circuit, net, namespace, timed
        self.dt, self.tick = dt, tick
        self.xin, self.out = net.inputs[0], net.outputs[0]
        self.slots = range(circuit.record_slots)
        self.snaps = ["rho0"] + ["rho_n%d" % q for q in range(len(circuit.phase_nudges))]
        self.ids = {p: "p%d" % i for i, p in enumerate(net.graph.nodes)}
        self.term_vars = {p: [] for p in net.state_pops}
        self.term_of, self.input_vars = {}, set()
        for i, t in enumerate(net.terms):
            self.term_vars[t.target].append("I_%d" % i)
            self.term_of[(t.key, t.transpose)] = "I_%d" % i
            if t.source == self.xin:
                self.input_vars.add("I_%d" % i)
        self.ends = {t.key: (t.target, t.source) if t.transpose else (t.source, t.target)
                     for t in net.terms}
        self.number = {key: i for i, key in enumerate(net.projections)}
        self.groups, self.drives = {}, {}


@Builder.register("rate-epoch", "input")
def build_epoch_input(b2, ctx, pop):
    """The input population: its rates are the example's data (one TimedArray row per
    example), on the example clock; ``rho_last`` keeps the example's rates for the rule."""
    # per-example values are looked up in the middle of their interval: a lookup at an
    # interval's edge may land on the neighbouring entry
    g = b2.NeuronGroup(ctx.net.sizes[pop], "rho = x_ta(t + 0.5 * tick_t, i) : 1\nrho_last : 1",
                       name="pop_in", namespace=ctx.namespace, dt=ctx.tick)
    g.run_regularly("rho_last = rho", when="end", dt=ctx.tick, name="in_last")
    return g


@Builder.register("rate-epoch", "state")
def build_epoch_state(b2, ctx, p):
    """A state population: the rate neuron nudged during the plan's nudged phases (the phase
    from the integer time step), its per-example snapshots and restarts, the bias rule and
    update on the example clock; its input drive, if any, summed in a relay group on the
    example clock (``ctx.drives``)."""
    net, circ, slots, snaps = ctx.net, ctx.circuit, ctx.slots, ctx.snaps
    N = len(circ.phase_nudges)
    # the nudge of each step: nudged phase q runs steps F + q K .. F + (q + 1) K - 1
    phase = "(%s)" % " + ".join(
        "nb%d * int((t_in_timesteps %% S) >= F + %d * K and (t_in_timesteps %% S) < F + %d * K)"
        % (q, q, q + 1) for q in range(N))
    mid = "(t_in_timesteps // S + 0.5) * tick_t"
    nudge = (" - sgn_ta(%s) * %s * (u - y_ta(%s, i))" % (mid, phase, mid)
             if p == ctx.out else "")
    eqs = rate_equations(net.activation, ctx.term_vars[p], nudge) + [
           "b : 1", "u0 : 1", "acc_b : 1", "lr_b : 1 (shared)"]
    eqs += ["%s : 1" % v for v in snaps]
    eqs += ["gb%d : 1\nbb%d : 1" % (k, k) for k in slots]
    eqs += ["%s : 1 %s" % (v, "(linked)" if v in ctx.input_vars else "")
            for v in ctx.term_vars[p]]
    g = b2.NeuronGroup(net.sizes[p], "\n".join(eqs), method="euler",
                       name="pop_%s" % ctx.ids[p], namespace=ctx.namespace)
    g.b = net.params["b:%s" % p]
    # the last nudged phase ends at the next example's first step (rest); the others
    # end by a snapshot and a restart from the free state
    control = ["k_step = t_in_timesteps % S",
               "is_start = int(k_step == 0)",
               "%s = is_start * rho + (1 - is_start) * %s" % (snaps[-1], snaps[-1]),
               "u = (1 - is_start) * u",
               "is_snap = int(k_step == F)",
               "u0 = is_snap * u + (1 - is_snap) * u0",
               "rho0 = is_snap * rho + (1 - is_snap) * rho0"]
    for q in range(N - 1):
        control += ["at_n%d = int(k_step == F + %d * K)" % (q, q + 1),
                    "rho_n%d = at_n%d * rho + (1 - at_n%d) * rho_n%d" % (q, q, q, q),
                    "u = at_n%d * u0 + (1 - at_n%d) * u" % (q, q)]
    g.run_regularly("\n".join(control), when="start", order=0, name="control_%s" % ctx.ids[p])
    if circ.clip:
        g.run_regularly("u = clip(u, 0, 1)", when="after_groups", name="clip_%s" % ctx.ids[p])
    g.lr_b = circ.lrs["b:%s" % p]
    g.run_regularly("\n".join(
        ["acc_b += sgnprev_ta(t + 0.5 * tick_t) * (%s)" % circ.contrast("%s - rho0")]
        + ["gb%d += recg%d_ta(t + 0.5 * tick_t) * acc_b" % (k, k) for k in slots]
        + ["b += lr_b * upd_ta(t + 0.5 * tick_t) * acc_b",
           "acc_b = acc_b * int(upd_ta(t + 0.5 * tick_t) == 0)"]
        + ["bb%d += recw%d_ta(t + 0.5 * tick_t) * b" % (k, k) for k in slots]),
        when="start", order=1, dt=ctx.tick, name="bias_rule_%s" % ctx.ids[p])
    # the input drive of a population is summed once per example in a relay group on the
    # example clock (a summed variable is updated on its target's clock), and the state
    # group reads it through linked variables
    mine = [v for v in ctx.term_vars[p] if v in ctx.input_vars]
    if mine:
        d = b2.NeuronGroup(net.sizes[p], "\n".join(
            ["%s : 1" % v for v in mine] + ["%s_l : 1 (linked)" % v for v in snaps]),
            name="drive_%s" % ctx.ids[p], dt=ctx.tick, namespace=ctx.namespace)
        for v in mine:
            setattr(g, v, b2.linked_var(d, v))
        for v in snaps:
            setattr(d, v + "_l", b2.linked_var(g, v))
        ctx.drives[p] = d
    return g


@Builder.register("rate-epoch", "tied")
def build_epoch_tied(b2, ctx, key):
    """A tied weight ``a -> b``: one Synapses driving both ends (from an input: into the
    target's relay group on the example clock), its rule and update once per example."""
    net, circ, slots = ctx.net, ctx.circuit, ctx.slots
    src, tgt = ctx.ends[key]
    model = ["w : 1", "acc : 1", "lr_w : 1 (shared)"] + \
        ["g%d : 1\nw%d : 1" % (k, k) for k in slots] + [
            "%s_post = w * rho_pre : 1 (summed)" % ctx.term_of[(key, False)]]
    if (key, True) in ctx.term_of:
        model.append("%s_pre = w * rho_post : 1 (summed)" % ctx.term_of[(key, True)])
    from_input = src == ctx.xin
    number = ctx.number[key]
    syn = b2.Synapses(ctx.groups[src], ctx.drives[tgt] if from_input else ctx.groups[tgt],
                      "\n".join(model), namespace=ctx.namespace, name="proj_%d" % number,
                      dt=ctx.tick if from_input else ctx.dt)
    ii, jj = np.meshgrid(np.arange(net.sizes[src]), np.arange(net.sizes[tgt]), indexing="ij")
    syn.connect(i=ii.ravel(), j=jj.ravel())
    syn.w = net.params[key][ii.ravel(), jj.ravel()]
    if from_input:
        change = "rho_last_pre * (%s)" % circ.contrast("%s_l_post - rho0_l_post")
    else:
        change = "(%s)" % circ.contrast("%s_pre * %s_post - rho0_pre * rho0_post")
    syn.lr_w = circ.lrs[key]
    syn.run_regularly("\n".join(
        ["acc += sgnprev_ta(t + 0.5 * tick_t) * %s" % change]
        + ["g%d += recg%d_ta(t + 0.5 * tick_t) * acc" % (k, k) for k in slots]
        + ["w += lr_w * upd_ta(t + 0.5 * tick_t) * acc",
           "acc = acc * int(upd_ta(t + 0.5 * tick_t) == 0)"]
        + ["w%d += recw%d_ta(t + 0.5 * tick_t) * w" % (k, k) for k in slots]),
        when="start", order=1, dt=ctx.tick, name="rule_%d" % number)
    for updater in syn.summed_updaters.values():
        updater.when = "before_groups"
    return BuiltProjection(syn, ii.ravel(), jj.ravel())


__all__ = ["TrainingCircuit", "check_supported"]
