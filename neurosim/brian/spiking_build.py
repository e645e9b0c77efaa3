"""The Brian2 side of a spiking circuit: the equations and the functions that build its groups.

Split from :mod:`neurosim.brian.spiking` so that file holds the circuit's interface
(:class:`~neurosim.brian.spiking.SpikingCircuit`: checked parameters, runs, reading results) and
this one what a run builds (the equations, spike encoders and rate traces come from
:mod:`neurosim.brian.equations`): the population and projection builders (registered per kind, as in :mod:`neurosim.brian.rate`),
the context they read and the per-step phase schedule. The model itself is described in the
docstring of :mod:`neurosim.brian.spiking`; everything public here is re-exported there.
"""
from __future__ import annotations

import numpy as np

from .builder import Builder, BuiltProjection
from .device import check_compilable
from .equations import (current_equation, current_increment, encoder, encoder_state,
                        event_rule, event_rule_bias, graded, rate_equations, trace_equations)

#: Every neuron's custom event at the end of an example's phases: its synapses (on this
#: presynaptic event) and its bias evaluate the local rule from the snapshots.
RULE_EVENT = "rule_ta(t) > 0.5"


# -- population builders ----------------------------------------------------------------
@Builder.register("spiking", "input")
def build_input(b2, ctx, pop):
    """Input population: units firing at ``x * max_rate``; ``rho`` holds the data. With
    ``input_rule="spikes"`` each input unit also keeps the two rate traces of its own spikes
    (and their phase-end snapshots), which its synapses' rule reads instead of the data. A
    LIF unit's membrane restarts, with the state units, from its free-phase value."""
    eqs, threshold, reset = encoder(ctx.neuron, ctx.common.get(pop))
    traced = ctx.input_rule == "spikes"
    trace_eqs, on_spike = trace_equations(ctx.neuron)
    saved = ([v for v in ("r_fast", "r_slow") if traced and not graded(ctx.neuron)]
             + encoder_state(ctx.neuron))
    eqs = eqs + ["%s_saved : 1" % v for v in saved]
    if traced:
        eqs = eqs + trace_eqs + ["%s : 1" % v for v in ctx.snapshots]
        reset = "\n".join(filter(None, [on_spike, reset]))
    g = b2.NeuronGroup(ctx.net.sizes[pop] * ctx.batch, "\n".join(["rho : 1"] + eqs),
                       threshold=threshold, reset=reset or None, method="euler",
                       events={"rule": RULE_EVENT}, name="pop_%s" % ctx.ids[pop],
                       namespace=ctx.namespace)
    g.rho = ctx.inputs[pop].ravel()
    if "v" in encoder_state(ctx.neuron):         # a random initial phase of the membrane
        g.v = ctx.rng.uniform(0, 1, len(g))
    if traced and not graded(ctx.neuron):
        g.r_fast, g.r_slow = g.rho[:], g.rho[:]      # the traces start at the input's rate
    if saved:
        control = _phase_control(ctx, saved)
        g.run_regularly("\n".join(control if traced else control[len(ctx.snapshots):]),
                        when="start", order=0, name="control_%s" % ctx.ids[pop])
    return g


def _phase_control(ctx, saved):
    """Phase control at the start of a step: snapshots of z (``z0`` at the free phase's end,
    ``zq`` at nudged phase q's), then the restart of the saved free-phase variables
    ``saved`` (every nudged phase after the first)."""
    code = ["%s = snap%d_ta(t) * z + (1 - snap%d_ta(t)) * %s" % (v, q, q, v)
            for q, v in enumerate(ctx.snapshots)]
    code += ["%s_saved = snap0_ta(t) * %s + (1 - snap0_ta(t)) * %s_saved" % (v, v, v)
             for v in saved]
    code += ["%s = reset_ta(t) * %s_saved + (1 - reset_ta(t)) * %s" % (v, v, v) for v in saved]
    return code


@Builder.register("spiking", "state")
def build_state(b2, ctx, pop):
    """State population: the rate-neuron state ``u`` driven by synaptic current traces, a
    spike encoder of ``rho(u)``, the two rate traces, the snapshots the local rule reads, and
    the saved free-phase state the symmetric variant restarts from."""
    net = ctx.net
    currents = ctx.term_vars[pop]
    enc_eqs, threshold, reset = encoder(ctx.neuron, ctx.common.get(pop))
    nudge = " - beta_ta(t) * (u - y)" if pop in net.outputs else ""
    eqs = rate_equations(net.activation, currents, nudge) + [
           "b : 1", "acc_b : 1"] + ["%s : 1" % v for v in ctx.snapshots]
    eqs += [current_equation(ctx.neuron, v) for v in currents]
    trace_eqs, on_spike = trace_equations(ctx.neuron)
    eqs += trace_eqs + enc_eqs
    saved = ["u"] + [v for v in ("r_fast", "r_slow") if not graded(ctx.neuron)] + currents \
        + encoder_state(ctx.neuron)
    eqs += ["%s_saved : 1" % v for v in saved]
    if pop in net.outputs:
        eqs.append("y : 1")
    n = net.sizes[pop]
    if ctx.rule == "online" and graded(ctx.neuron):
        # the bias's share of the event rule, before the event moves q: d[z] = n delta
        on_spike = event_rule_bias("gate_ta(t)")
    g = b2.NeuronGroup(n * ctx.batch, "\n".join(eqs), threshold=threshold,
                       reset="\n".join(filter(None, [on_spike, reset])), method="euler",
                       events={"rule": RULE_EVENT}, name="pop_%s" % ctx.ids[pop],
                       namespace=ctx.namespace)
    g.b = np.tile(net.params["b:%s" % pop], ctx.batch)
    g.u = ctx.state0[pop].ravel()
    rate0 = np.clip(ctx.state0[pop].ravel(), 0, 1) if net.activation == "hard_sigmoid" else \
        1 / (1 + np.exp(-4 * (ctx.state0[pop].ravel() - 0.5)))
    if not graded(ctx.neuron):                 # traces start at the initial rate
        g.r_fast, g.r_slow = rate0, rate0
    if "v" in encoder_state(ctx.neuron):       # a random initial phase of the membrane
        g.v = ctx.rng.uniform(0, 1, len(g))
    if pop in net.outputs:
        g.y = ctx.targets[pop].ravel()
    g.run_regularly("\n".join(_phase_control(ctx, saved)), when="start", order=0,
                    name="control_%s" % ctx.ids[pop])
    if ctx.clip:
        g.run_regularly("u = clip(u, 0, 1)", when="after_groups", name="clip_%s" % ctx.ids[pop])
    if ctx.rule != "online":
        g.run_on_event("rule", "acc_b += %s" % contrast(ctx.weights, "%s - z0"))
    elif not graded(ctx.neuron):  # integrate the observed derivative over the nudged phases
        g.run_regularly("acc_b += gate_ta(t) * dz * rule_dt", when="start", order=1,
                        dt=ctx.namespace["rule_dt"], name="online_b_%s" % ctx.ids[pop])
    return g


# -- projection builders ----------------------------------------------------------------
def _pairs(ctx, src, tgt, exclude_self=False):
    na, nb = ctx.net.sizes[src], ctx.net.sizes[tgt]
    ia, jb = np.meshgrid(np.arange(na), np.arange(nb), indexing="ij")
    keep = ia != jb if exclude_self else np.ones_like(ia, dtype=bool)
    ia, jb = ia[keep], jb[keep]
    i = np.concatenate([r * na + ia for r in range(ctx.batch)])
    j = np.concatenate([r * nb + jb for r in range(ctx.batch)])
    return ia, jb, i, j


def _synapses(b2, ctx, pre, post, model, current, name, rule=None, events=None):
    """Spikes of ``pre`` add to the current trace ``current`` of ``post``; with ``rule``,
    the presynaptic ``rule`` event (end of the example's phases) runs the local rule; with
    ``events`` (``(on pre event, on post event)`` code, :func:`_event_rule`), each
    presynaptic and postsynaptic spike runs it."""
    on_pre, on_event = {"pre": current_increment(ctx.neuron, current)}, {"pre": "spike"}
    if rule is not None:
        on_pre["rule"], on_event["rule"] = rule, "rule"
    on_post = None
    if events is not None:
        if events[0]:
            on_pre["learn"], on_event["learn"] = events[0], "spike"
        on_post = events[1]
    return b2.Synapses(ctx.groups[pre], ctx.groups[post], model, on_pre=on_pre,
                       on_post=on_post, on_event=on_event, name=name,
                       namespace=ctx.namespace)


def _event_rule(ctx, input_pre, scale=1.0):
    """The online rule of sigma-delta units on their events, weighted by the plan's ``c_q``
    in nudged phase q (:func:`~neurosim.brian.equations.event_rule`); None for the other
    codes or the snapshot rule."""
    if ctx.rule != "online" or not graded(ctx.neuron):
        return None
    return event_rule("gate_ta(t)", input_pre and ctx.input_rule == "data", scale)


def contrast(weights, template):
    """``sum_q c_q (observation of nudged phase q - the free state's)`` as Brian2 code:
    ``template`` with ``%s`` for phase q's snapshot (``z1``, ``z2``, ...), weighted by the
    namespace constant ``cw_q`` (the plan's weight, a number passed in)."""
    return "(%s)" % " + ".join("cw%d * (%s)" % (q, template.replace("%s", "z%d" % (q + 1)))
                               for q in range(len(weights)))


def _rule(ctx, input_pre, scale=1.0):
    """The snapshot rule: ``acc += sum_q c_q [z_pre z_post]_0^q`` over the nudged phases,
    per example, on the rule event (None with the online rule, which runs on a clock)."""
    if ctx.rule == "online":
        return None
    k = "" if scale == 1.0 else "%r * " % scale
    if input_pre and ctx.input_rule == "data":
        return "acc += %srho_pre * %s" % (k, contrast(ctx.weights, "%s_post - z0_post"))
    return "acc += %s%s" % (k, contrast(ctx.weights, "%s_pre * %s_post - z0_pre * z0_post"))


def _online(ctx, syn, input_pre, scale=1.0):
    """The online rule on a clock of ``rule_every`` steps: during nudged phase q (``gate``
    the plan's weight ``c_q``) ``acc`` integrates ``d/dt [z_pre z_post] = z_pre dz_post +
    dz_pre z_post`` (an input's rate is its data ``x``, constant)."""
    if ctx.rule != "online" or graded(ctx.neuron):
        return
    k = "" if scale == 1.0 else "%r * " % scale
    data = input_pre and ctx.input_rule == "data"
    d = "rho_pre * dz_post" if data else "(z_pre * dz_post + dz_pre * z_post)"
    syn.run_regularly("acc += %sgate_ta(t) * %s * rule_dt" % (k, d), when="start", order=1,
                      dt=ctx.namespace["rule_dt"], name="online_%s" % syn.name)


@Builder.register("spiking", "tied")
def build_tied(b2, ctx, key):
    """Energy mode ``a -> b``: a forward ``Synapses`` (a's spikes into b's current, and the
    learning rule) and, unless ``a`` is an input, a backward one (b's spikes into a's current)
    holding the same weights."""
    src, tgt = ctx.ends[key]
    term_in, term_back = ctx.term_of[(key, False)], ctx.term_of.get((key, True))
    W = ctx.net.params[key]
    syn = _synapses(b2, ctx, src, tgt, "w : 1\nacc : 1", term_in, "proj_%s" % ctx.ids[key],
                    rule=_rule(ctx, src in ctx.net.inputs),
                    events=_event_rule(ctx, src in ctx.net.inputs))
    ia, jb, i, j = _pairs(ctx, src, tgt)
    syn.connect(i=i, j=j)
    syn.w = np.tile(W[ia, jb], ctx.batch)
    _online(ctx, syn, src in ctx.net.inputs)
    extra = []
    if term_back is not None:
        back = _synapses(b2, ctx, tgt, src, "w : 1", term_back, "back_%s" % ctx.ids[key])
        back.connect(i=j, j=i)
        back.w = np.tile(W[ia, jb], ctx.batch)
        extra.append(back)
    return BuiltProjection(syn, ia, jb, extra)


@Builder.register("spiking", "lateral")
def build_lateral(b2, ctx, key):
    """Energy mode ``a -> a``: symmetric, no self-synapse, counted once in the energy."""
    src = ctx.ends[key][0]
    term_in = ctx.term_of[(key, False)]
    syn = _synapses(b2, ctx, src, src, "w : 1\nacc : 1", term_in, "proj_%s" % ctx.ids[key],
                    rule=_rule(ctx, False, scale=0.5), events=_event_rule(ctx, False, 0.5))
    ia, jb, i, j = _pairs(ctx, src, src, exclude_self=True)
    syn.connect(i=i, j=j)
    syn.w = np.tile(ctx.net.params[key][ia, jb], ctx.batch)
    _online(ctx, syn, False, scale=0.5)
    return BuiltProjection(syn, ia, jb)


# -- what the builders read: the context and the phase schedule ---------------------------
class SpikingContext:
    """What the builders read: the network, the batch, names, constants, the schedule."""

    def __init__(self, net, inputs, targets, state0, clip, neuron, namespace, weights, rng):
        check_compilable(net)
        self.net, self.inputs, self.targets, self.state0 = net, inputs, targets, state0
        self.batch = next(iter(inputs.values())).shape[0]
        self.clip, self.neuron, self.namespace = clip, neuron, namespace
        #: the weight of each nudged phase's observation (the plan's), and the z snapshots
        self.weights, self.rng = tuple(weights), rng
        self.snapshots = ["z%d" % q for q in range(len(self.weights) + 1)]
        namespace.update({"cw%d" % q: float(c) for q, c in enumerate(self.weights)})
        self.ids = {p: "p%d" % i for i, p in enumerate(net.graph.nodes)}
        self.ids.update({k: "w%d" % i for i, k in enumerate(net.params) if k.startswith("W:")})
        self.ends, self.term_vars, self.term_of = {}, {p: [] for p in net.state_pops}, {}
        for i, t in enumerate(net.terms):
            self.ends[t.key] = (t.target, t.source) if t.transpose else (t.source, t.target)
            v = "I_%d" % i
            self.term_vars[t.target].append(v)
            self.term_of[(t.key, t.transpose)] = v
        self.groups = {}
        self.common = {}          # population -> expression of its common random number
        self.rule = "snapshot"    # the local rule: "snapshot" (rule event) or "online" (clock)
        self.input_rule = "data"  # what an input synapse's rule reads: the data or its spikes


def phase_steps(free_steps, nudge_steps, phases):
    """Each step's index within its phase (the free phase, then ``phases`` nudged phases),
    ``T + 1`` entries: the step counter of a reseeded random source that replays the same
    stream in every phase."""
    T = free_steps + nudge_steps * phases
    k = np.arange(T + 1, dtype=np.float64)
    for q in range(phases):
        k[free_steps + q * nudge_steps:] -= nudge_steps if q else free_steps
    k[T] = 0.0
    return k


def spiking_schedule(plan):
    """Per-step values of a phase plan (``T + 1`` steps: the snapshots of the last phase are
    taken at the start of step ``T``, when the rule event fires): the nudge, the snapshot of z
    at the end of each phase (``snap0`` free, ``snapq`` nudged phase q), the restarts from the
    free state, the rule event and the online rule's weight ``gate`` (the plan's ``c_q`` in
    phase q). Returns ``(T, schedule, weights)``, ``weights`` one per nudged phase."""
    F, K = int(plan.free_steps), int(plan.nudge_steps)
    c = np.real(plan.weights)
    phases = [(b, float(c[i])) for i, b in enumerate(plan.nudges) if b != 0]
    T = F + K * len(phases)
    names = ["beta", "reset", "rule", "gate"] + ["snap%d" % q for q in range(len(phases) + 1)]
    s = {k: np.zeros(T + 1) for k in names}
    s["rule"][T] = 1.0
    s["phase_step"] = phase_steps(F, K, len(phases))
    s["snap0"][F] = 1.0
    for q, (b, w) in enumerate(phases):
        a = F + q * K
        s["reset"][a] = 1.0 if q else 0.0
        s["beta"][a:a + K] = b
        s["gate"][a:a + K] = w
        s["snap%d" % (q + 1)][a + K] = 1.0
    return T, s, tuple(w for _, w in phases)
