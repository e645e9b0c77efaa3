"""Rate circuits: a Network compiled into Brian2 NeuronGroups and Synapses whose synapses
learn from the rates and rate changes they observe (docs/maths.md sections 2 and 4).

One Brian2 time step is one Euler step of the reference engine: ``tau = 1 ms`` and
``dt = eps ms``, so ``u_{k+1} = u_k + eps * dudt`` with ``dudt`` a named variable of every
neuron. A batch runs as replicated groups (one copy of the network per example, weights
copied), so the circuit's numbers are the reference engine's batch numbers. The phases of an
EP step are a phase plan's (:class:`neurosim.plan.Plan`): the free phase, then one nudged
phase per non-zero nudge, each restarted from the free state; they come from TimedArrays
indexed by the integer time step, inside a single ``run`` call. During nudged phase ``q`` the
synapses accumulate their observation weighted by the plan's weight ``c_q`` (a number in a
TimedArray), so the update read back is ``-acc``: the circuit never divides by a nudge.

The build functions follow the Nengo pattern: one per population kind and one per
projection kind, registered for the ``"rate"`` model with
:meth:`neurosim.brian.builder.Builder.register`; a build makes one
:class:`~neurosim.brian.builder.BuiltCircuit`.
"""
from __future__ import annotations

import contextlib
import shutil

import numpy as np

from . import plasticity
from .builder import Builder, BuiltProjection
from .phases import circuit_plan
from .device import (CircuitError, build_folder, check_compiler, check_device,
                     check_compilable, import_brian2, new_standalone_device,
                     standalone_device, standalone_failure)
from .equations import rate_equations


# -- population builders ----------------------------------------------------------------
@Builder.register("rate", "input")
def build_input(b2, ctx, pop):
    """Input population: a relay group whose rate is the data (constant during a step)."""
    n = ctx.net.sizes[pop] * ctx.batch
    g = b2.NeuronGroup(n, "rho : 1", name="pop_%s" % ctx.ids[pop])
    g.rho = ctx.inputs[pop].ravel()
    return g


@Builder.register("rate", "state")
def build_state(b2, ctx, pop):
    """State population: ``du/dt = dudt`` with the force of docs/maths.md section 2, the rate and
    its derivative as named variables, a nudge toward ``y`` on outputs, and the per-neuron
    memories the local rules read (previous rate, free-phase snapshot, bias accumulator)."""
    net = ctx.net
    nudge = " - beta_ta(t) * (u - y)" if pop in net.outputs else ""
    eqs = rate_equations(net.activation, ctx.term_vars[pop], nudge) + [
           "b : 1", "u0 : 1", "rho_prev : 1", "u_prev : 1", "rho0 : 1", "drho0 : 1",
           "acc_b : 1"]
    eqs += ["%s : 1" % v for v in ctx.term_vars[pop]]
    if pop in net.outputs:
        eqs.append("y : 1")
    n = net.sizes[pop]
    g = b2.NeuronGroup(n * ctx.batch, "\n".join(eqs), method="euler", name="pop_%s" % ctx.ids[pop],
                       namespace=ctx.namespace)
    g.b = np.tile(net.params["b:%s" % pop], ctx.batch)
    g.u = ctx.state0[pop].ravel()
    if pop in net.outputs:
        g.y = ctx.targets[pop].ravel()
    # phase control at the start of each step: snapshot the free state, reset to it
    g.run_regularly("\n".join([
        "u0 = snap_ta(t) * u + (1 - snap_ta(t)) * u0",
        "rho0 = snap_ta(t) * rho + (1 - snap_ta(t)) * rho0",
        "drho0 = snap_ta(t) * drho + (1 - snap_ta(t)) * drho0",
        "u = reset_ta(t) * u0 + (1 - reset_ta(t)) * u",
        "rho_prev = rho", "u_prev = u"]), when="start", order=0, name="control_%s" % ctx.ids[pop])
    if ctx.clip:
        g.run_regularly("u = clip(u, 0, 1)", when="after_groups", name="clip_%s" % ctx.ids[pop])
    g.run_regularly(plasticity.bias_rule(net.dynamics, ctx.continual_lr("b:%s" % pop)),
                    when="end", order=0,
                    name="bias_rule_%s" % ctx.ids[pop])
    return g


# -- projection builders ----------------------------------------------------------------
def _connect(syn, ctx, src, tgt, exclude_self=False):
    na, nb, B = ctx.net.sizes[src], ctx.net.sizes[tgt], ctx.batch
    ia, jb = np.meshgrid(np.arange(na), np.arange(nb), indexing="ij")
    keep = ia != jb if exclude_self else np.ones_like(ia, dtype=bool)
    ia, jb = ia[keep], jb[keep]
    i = np.concatenate([r * na + ia for r in range(B)])
    j = np.concatenate([r * nb + jb for r in range(B)])
    syn.connect(i=i, j=j)
    return ia, jb


@Builder.register("rate", "tied")
def build_tied(b2, ctx, key):
    """Energy mode ``a -> b``: one Synapses object drives both ends with the same weight."""
    src, tgt = ctx.ends[key]
    term_in, term_back = ctx.term_of[(key, False)], ctx.term_of.get((key, True))
    model = ["w : 1", "acc : 1", "%s_post = w * rho_pre : 1 (summed)" % term_in]
    if term_back is not None:
        model.append("%s_pre = w * rho_post : 1 (summed)" % term_back)
    syn = b2.Synapses(ctx.groups[src], ctx.groups[tgt], "\n".join(model),
                      name="proj_%s" % ctx.ids[key], namespace=ctx.namespace)
    ia, jb = _connect(syn, ctx, src, tgt)
    syn.w = np.tile(ctx.net.params[key][ia, jb], ctx.batch)
    syn.run_regularly(plasticity.energy_rule(src in ctx.net.inputs,
                                             continual_lr=ctx.continual_lr(key)),
                      when="end", order=1,
                      name="rule_%s" % ctx.ids[key])
    return BuiltProjection(syn, ia, jb)


@Builder.register("rate", "lateral")
def build_lateral(b2, ctx, key):
    """Energy mode ``a -> a``: symmetric, no self-synapse, counted once in the energy."""
    src = ctx.ends[key][0]
    term_in = ctx.term_of[(key, False)]
    model = ["w : 1", "acc : 1", "%s_post = w * rho_pre : 1 (summed)" % term_in]
    syn = b2.Synapses(ctx.groups[src], ctx.groups[src], "\n".join(model),
                      name="proj_%s" % ctx.ids[key], namespace=ctx.namespace)
    ia, jb = _connect(syn, ctx, src, src, exclude_self=True)
    syn.w = np.tile(ctx.net.params[key][ia, jb], ctx.batch)
    syn.run_regularly(plasticity.energy_rule(False, scale=0.5,
                                             continual_lr=ctx.continual_lr(key)),
                      when="end", order=1,
                      name="rule_%s" % ctx.ids[key])
    return BuiltProjection(syn, ia, jb)


@Builder.register("rate", "directed")
def build_directed(b2, ctx, key):
    """Vector-field mode ``q -> p``: one direction, its own weight."""
    src, tgt = ctx.ends[key]
    term_in = ctx.term_of[(key, False)]
    model = ["w : 1", "acc : 1", "%s_post = w * rho_pre : 1 (summed)" % term_in]
    syn = b2.Synapses(ctx.groups[src], ctx.groups[tgt], "\n".join(model),
                      name="proj_%s" % ctx.ids[key], namespace=ctx.namespace)
    ia, jb = _connect(syn, ctx, src, tgt, exclude_self=src == tgt)
    syn.w = np.tile(ctx.net.params[key][ia, jb], ctx.batch)
    syn.run_regularly(plasticity.vector_field_rule(src in ctx.net.inputs), when="end", order=1,
                      name="rule_%s" % ctx.ids[key])
    return BuiltProjection(syn, ia, jb)


# -- the circuit --------------------------------------------------------------------------
class RateContext:
    """What the builders read: the network, the batch, names and the phase schedule."""

    def __init__(self, net, inputs, targets, state0, clip, namespace):
        check_compilable(net)
        self.net, self.inputs, self.targets, self.state0 = net, inputs, targets, state0
        self.batch = next(iter(inputs.values())).shape[0]
        self.clip, self.namespace = clip, namespace
        self.ids = {p: "p%d" % i for i, p in enumerate(net.graph.nodes)}
        self.ids.update({k: "w%d" % i for i, k in enumerate(net.params) if k.startswith("W:")})
        self.ends = {}
        for t in net.terms:
            a, b = (t.target, t.source) if t.transpose else (t.source, t.target)
            self.ends[t.key] = (a, b)
        self.term_vars = {p: [] for p in net.state_pops}
        self.term_of = {}
        for i, t in enumerate(net.terms):
            v = "I_%d" % i
            self.term_vars[t.target].append(v)
            self.term_of[(t.key, t.transpose)] = v
        self.groups = {}
        self.continual = None      # {param key: lr c} for continual EP (c: the nudge's weight)

    def continual_lr(self, key):
        return None if self.continual is None else self.continual[key]


def plan_schedule(plan):
    """Per-step values of a plan's phases (``T + 1`` steps): the nudge, the plasticity gate,
    the weight of the phase's observation (``sign``: the plan's ``c_q``), the free-state
    snapshot and the restarts from it. Returns ``(T, schedule)``."""
    F, K = int(plan.free_steps), int(plan.nudge_steps)
    c = np.real(plan.weights)
    phases = [(b, c[i]) for i, b in enumerate(plan.nudges) if b != 0]
    T = F + K * len(phases)
    s = {k: np.zeros(T + 1) for k in ("beta", "gate", "sign", "snap", "reset")}
    s["snap"][F] = 1.0
    for q, (b, w) in enumerate(phases):
        a = F + q * K
        s["reset"][a] = 1.0 if q else 0.0
        s["beta"][a:a + K] = b
        s["gate"][a:a + K] = 1.0
        s["sign"][a:a + K] = w
    return T, s


class RateCircuit:
    """A Network compiled into a Brian2 rate circuit (see the module docstring).

    Build with :func:`neurosim.brian.compile`. :meth:`ep_update` runs one EP step on a batch
    and returns the update the synapses accumulated; :attr:`traces` holds the monitored
    states and their time derivatives of the last run.
    """

    def __init__(self, net, device="runtime", eps=0.1, clip=False, build_dir=None,
                 keep_build=False):
        check_device(device)
        if not np.isfinite(eps) or eps <= 0:
            raise CircuitError("eps must be a positive number, got %r" % (eps,))
        if device == "cpp_standalone":
            check_compiler()
        self.net, self.device, self.eps, self.clip = net, device, float(eps), bool(clip)
        self.build_dir, self.keep_build = build_dir, keep_build
        self.traces = {}
        self._continual = None

    # -- building and running -----------------------------------------------------------
    def build(self, b2, x, y, state, schedule):
        """The :class:`~neurosim.brian.builder.BuiltCircuit` of this circuit for a batch
        (``schedule``: the per-step TimedArray values, see :func:`plan_schedule`)."""
        net = self.net
        inputs = net.inputs_dict(x)
        batch = next(iter(inputs.values())).shape[0]
        targets = net.targets_dict(y, batch)
        state0 = net.zero_state(batch) if state is None else net.check_state(state, batch)
        if self.clip:
            state0 = {p: np.clip(v, 0, 1) for p, v in state0.items()}
        dt = self.eps * b2.ms
        ns = {"tau": 1 * b2.ms}
        for name, values in schedule.items():
            ns["%s_ta" % name] = b2.TimedArray(values, dt=dt)
        ctx = RateContext(net, inputs, targets, state0, self.clip, ns)
        ctx.continual = self._continual
        built = Builder.build("rate", b2, ctx)
        # every input current is summed from the rates of this step before any group
        # updates (synchronous Euler), and the monitors read u_k and dudt(u_k) in between
        for syn in built.synapses.values():
            for updater in syn.summed_updaters.values():
                updater.when = "before_groups"
        built.monitors.update({p: b2.StateMonitor(ctx.groups[p], ["u", "dudt"], record=True,
                                                  when="groups", order=-5,
                                                  name="mon_%s" % ctx.ids[p])
                               for p in net.state_pops})
        return built

    def run(self, x, y, schedule, steps, state=None):
        """Build the circuit for this batch and run ``steps`` Euler steps of ``schedule``;
        returns the accumulators ``{param key: (batch, ...)}`` and the traces, read back
        into numpy."""
        b2 = import_brian2()
        folder, failed = None, False
        if self.device == "cpp_standalone":     # a device of its own for this run
            folder = build_folder(self.build_dir)
            active = standalone_device(self.eps, new_standalone_device(), build_on_run=True,
                                       directory=folder, with_output=False)
        else:
            b2.prefs.codegen.target = "numpy"
            active = contextlib.nullcontext()
        try:
            with active:
                b2.defaultclock.dt = self.eps * b2.ms
                built = self.build(b2, x, y, state, schedule)
                try:
                    built.network(b2).run(steps * self.eps * b2.ms, namespace={})
                except Exception as e:
                    if self.device == "cpp_standalone":
                        failed = True             # keep the folder for the user to look at
                        raise standalone_failure(folder, e) from None
                    raise
                result = self.read(built)
        finally:
            if folder and not (self.keep_build or failed) and self.build_dir is None:
                shutil.rmtree(folder, ignore_errors=True)
        return result

    def read(self, built):
        """The accumulators and the monitored traces of a run of ``built``."""
        net, B = self.net, built.context.batch
        acc = built.accumulators()
        traces = {}
        for p, m in built.monitors.items():
            n = net.sizes[p]
            traces[p] = {"u": np.asarray(m.u[:]).T.reshape(-1, B, n),
                         "dudt": np.asarray(m.dudt[:] * 1e-3).T.reshape(-1, B, n),
                         "t": np.asarray(m.t[:]) * 1e3 / self.eps}
        return acc, traces

    # -- the EP step ----------------------------------------------------------------------
    def ep_update(self, x, y, beta=None, free_steps=None, nudge_steps=None,
                  variant="one_sided", state=None, rng=None, nudges=None):
        """One EP step on a batch; returns the update the synapses accumulated, as a gradient
        estimate with the keys of ``net.params`` (the sign convention of
        :func:`neurosim.ep.gradient`, for the batch-mean loss). The weights are not changed.
        ``nudges``: the phase plan's nudge strengths (replacing ``beta`` and ``variant``,
        :class:`neurosim.plan.Plan`); ``rng``: the source of a random sign."""
        plan = circuit_plan(beta, variant, nudges, free_steps, nudge_steps).for_batch(rng)
        return self.run_plan(x, y, plan, state=state)

    def run_plan(self, x, y, plan, state=None):
        """The update of one batch under the phase plan ``plan`` (a
        :class:`neurosim.plan.Plan` as run: random sign already drawn): the synapses
        accumulate ``sum_q c_q [observation_q - free state's]``, read back as ``-acc``."""
        steps, schedule = plan_schedule(plan)
        acc, self.traces = self.run(x, y, schedule, steps, state=state)
        return {k: -acc[k].mean(axis=0) for k in self.net.params}

    def continual_update(self, x, y, beta, lr, free_steps, nudge_steps, state=None):
        """Continual EP (Ernoult et al. 2020) in the circuit: during the nudged phase every
        synapse moves its own weight by ``lr c [rho_pre rho_post]_k^{k+1}`` at each step
        (``c = 1/beta``: the nudged observation's weight in the plan ``[0, beta]``), and the
        dynamics use the moved weights. Runs one example (replicas would each
        move their own copy). Returns the total parameter change, keyed like ``net.params``
        (compare :func:`neurosim.ep.continual`'s ``update``); ``net.params`` is unchanged."""
        net = self.net
        if net.dynamics != "energy":
            raise CircuitError("continual EP in the circuit needs energy dynamics")
        inputs = net.inputs_dict(x)
        if next(iter(inputs.values())).shape[0] != 1:
            raise CircuitError("continual EP in the circuit runs one example at a time (each "
                               "replica of a batch would move its own weights); pass a batch "
                               "of 1")
        plan = circuit_plan(beta, "one_sided", None, free_steps, nudge_steps)
        c = float(plan.weights[-1])          # the nudged observation's weight
        lrs = lr if isinstance(lr, dict) else {k: float(lr) for k in net.params}
        steps, schedule = plan_schedule(plan)
        schedule["sign"] = schedule["gate"]  # the weights move by lr c times the raw change
        self._continual = {k: lrs[k] * c for k in net.params}
        try:
            acc, self.traces = self.run(inputs, y, schedule, steps, state=state)
        finally:
            self._continual = None
        return {k: (lrs[k] * c) * acc[k][0] for k in net.params}

    def trajectory(self, x, y=None, beta=0.0, steps=100, state=None):
        """States ``(steps + 1, batch, n)`` per population of a relaxation with constant
        ``beta`` from ``state`` (zeros by default), as :func:`neurosim.relax` records them."""
        net = self.net
        inputs = net.inputs_dict(x)
        batch = next(iter(inputs.values())).shape[0]
        if y is None:
            y = {p: np.zeros((batch, net.sizes[p])) for p in net.outputs}
        T = int(steps)
        schedule = dict(beta=np.full(T + 1, float(beta)), gate=np.zeros(T + 1),
                        sign=np.zeros(T + 1), snap=np.zeros(T + 1), reset=np.zeros(T + 1))
        _, self.traces = self.run(inputs, y, schedule, T + 1, state=state)
        return {p: tr["u"] for p, tr in self.traces.items()}

    # -- traces ---------------------------------------------------------------------------------
    def save_traces(self, path, circuit_text=None):
        """Write the monitored states of the last run to an HDF5 trace file (SONATA reports
        of ``u`` per population, ``(time, batch, n)``; time in units of tau)."""
        from .. import traces
        if not self.traces:
            raise CircuitError("no traces yet: run ep_update() or trajectory() first")
        reports = {p: {"data": tr["u"], "dt": self.eps, "variable": "u",
                       "units": "dimensionless"} for p, tr in self.traces.items()}
        reports.update({"%s.dudt" % p: {"data": tr["dudt"], "dt": self.eps, "variable": "dudt",
                                         "units": "1/tau"} for p, tr in self.traces.items()})
        return traces.write(path, reports=reports, circuit=circuit_text, dt=self.eps,
                            time_units="tau", attrs={"engine": "brian2-rate",
                                                     "device": self.device})
