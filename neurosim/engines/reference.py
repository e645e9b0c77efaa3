"""The reference engine: one fast Equilibrium Propagation step in numpy (docs/maths.md 4, 8), and
the engine object the training loop drives (EP steps, free phases, RBP ground truth).

:func:`ep_step` runs the free phase (warm-started from persistent particles), the nudged
phase(s) of the plan, each at most ``free_steps`` / ``nudge_steps`` Euler steps (or block
sweeps) and stopping once its projected step is at most ``tol``, and applies the EP update
``theta <- theta - lr g`` to ``net.params`` in place. It computes the same estimate as
:func:`neurosim.ep.gradient` with the same arguments (to rounding), faster:

* the phases use :meth:`neurosim.dynamics.Dynamics.run_fixed` (fused, in-place Euler steps) or
  :meth:`neurosim.dynamics.Dynamics.run_block` (layer-wise block updates);
* in energy mode the update uses ``dE/dW_ab(s) = -rho_a^T rho_b / B``, so
  ``dE/dW_ab(s_beta) - dE/dW_ab(s0) = -(r_a^b^T r_b^b - r_a^0^T r_b^0) / B``; for an input
  projection (``x`` is the same in both phases) that is the single product
  ``-x^T (r_b^b - r_b^0) / B``, and every product is accumulated straight into the weight
  matrix by BLAS gemm (no gradient arrays are formed unless ``grad_out`` asks for them);
* vector-field networks use ``g = -(1/beta) (dF/dtheta)^T (s_beta - s0)`` at ``s0``
  (:meth:`neurosim.energy.Linearization.param_vjp`, as :mod:`neurosim.ep` computes it).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from .. import checks
from .. import energy as en
from .. import ep as _ep
from ..errors import ArgumentError, ConfigurationError
from ..plan import VARIANTS, PhaseRun, Plan
from ..dynamics import Dynamics
from .protocol import Engine, Estimate, StepResult, register
from ..blas import blas_threads as _blas_limit


class StepOutcome(NamedTuple):
    """What :func:`ep_step` returns: the free state ``s0`` (population -> (batch, n), fresh
    arrays to keep as persistent particles) and the batch-mean cost ``C`` at ``s0``."""

    state: dict
    cost: float


def learning_rates(net, lr):
    if isinstance(lr, dict):
        missing = set(net.params) - set(lr)
        if missing:
            raise ArgumentError("lr dict is missing parameter key(s) %s" % sorted(missing))
        extra = set(lr) - set(net.params)
        if extra:
            raise ArgumentError("lr dict has keys that are not parameters: %s (parameters: %s)"
                             % (sorted(extra), list(net.params)))
        out = {}
        for k in net.params:
            try:
                out[k] = float(lr[k])
            except (TypeError, ValueError):
                raise ArgumentError("lr[%r] must be a number, got %r" % (k, lr[k])) from None
    else:
        try:
            v = float(lr)
        except (TypeError, ValueError):
            raise ArgumentError("lr must be a number or a dict per parameter key, got %r"
                             % (lr,)) from None
        out = {k: v for k in net.params}
    for k, v in out.items():
        if not np.isfinite(v):
            raise ArgumentError("learning rate for %r must be finite, got %r" % (k, v))
    return out


def _steps(name, v):
    return checks.integer(name, v, 0, what=" (a fixed number of Euler steps)")


def batch_cost(net, s, targets, batch):
    """Batch-mean cost at ``s``: ``1/2 |s_out - y|^2`` (float64 sums), or the cross-entropy of
    a softmax readout."""
    if net.readout == "softmax":
        return float(np.mean(en.cost(net, s, targets), dtype=np.float64))
    return 0.5 * sum(float(np.sum(np.square(s[p] - targets[p], dtype=np.float64)))
                     for p in net.outputs) / batch


def rates(net, dyn, s):
    """Rates of the state populations (the states themselves with clipped hard sigmoid)."""
    if dyn.identity_rates:
        return s
    return {p: en.rho(net.activation, s[p]) for p in net.state_pops}


def _energy_update(net, dyn, rates_, the_plan, lrs):
    """``theta -= lr * sum_i c_i dE/dtheta(s_i)`` in place
    (:func:`neurosim.ep.add_plan_contrast` straight into the weights); a softmax readout's
    parameters descend their share of the estimate (:func:`neurosim.ep.readout_contrast`)."""
    if net.readout == "softmax":   # from the states before any weight moves
        for k, v in _ep.readout_contrast(net, dyn.targets, rates_, the_plan).items():
            if lrs[k]:
                net.params[k] -= lrs[k] * v
    _ep.add_plan_contrast(net, dyn.inputs, rates_, the_plan, {k: -v for k, v in lrs.items()},
                          net.params, dyn.tmp)


MIN_SHARD = 8   # examples: a thread's share of a batch is at least this many


def _pool(threads):
    """The process's thread pool for batch shards (one, grown to the largest request)."""
    if _POOL.get("size", 0) < threads:
        if "pool" in _POOL:
            _POOL["pool"].shutdown(wait=False)
        _POOL.update(size=threads, pool=ThreadPoolExecutor(max_workers=threads,
                                                           thread_name_prefix="neurosim"))
    return _POOL["pool"]


_POOL = {}


def _sharded_phases(net, x, y, the_plan, eps, clip, state, solver, threads):
    """:func:`_phases` with the batch split into ``threads`` contiguous shards, each relaxed
    in its own thread (every example's phases are independent of the others'); the states
    are joined in batch order, so the update is the one of the whole batch."""
    dyn = Dynamics(net, x, y, clip=clip)
    if dyn.targets is None:
        raise ArgumentError("ep_step needs targets y of shape (batch, n_out)")
    start = dyn.initial_state(state)
    cuts = np.linspace(0, dyn.batch, threads + 1).astype(int)

    def shard(i):
        part = slice(cuts[i], cuts[i + 1])
        xs = {p: v[part] for p, v in dyn.inputs.items()}
        ys = {p: v[part] for p, v in dyn.targets.items()}
        st = {p: v[part] for p, v in start.items()}
        return _phases(net, xs, ys, the_plan, eps, clip, st, solver)[1:]

    with _blas_limit(1):   # set here: a limit set inside a worker thread would not hold
        parts = list(_pool(threads).map(shard, range(threads)))

    def join(states):
        return {p: np.concatenate([st[p] for st in states]) for p in net.state_pops}
    s0 = join([r[0] for r in parts])
    observed = [join([r[1][i] for r in parts]) for i in range(len(the_plan.nudges))]
    runs = [PhaseRun(same[0].beta, max(r.steps for r in same), max(r.step for r in same))
            for same in zip(*[r[2] for r in parts])]     # one phase across the shards
    return dyn, s0, observed, runs


def _phases(net, x, y, the_plan, eps, clip, state, solver="euler", threads=1):
    """The free phase and the plan's nudged phases (the reference engine's run of
    :meth:`neurosim.plan.Plan.run`), on ``threads`` shards of the batch.
    Each phase settles (:meth:`neurosim.dynamics.Dynamics.settle`) to the plan's ``tol``.
    Returns ``(dyn, s0, observed states (one per nudge), runs)``, ``runs`` a
    :class:`~neurosim.plan.PhaseRun` per phase that ran, the free phase first."""
    if threads > 1:   # at most one shard per MIN_SHARD examples
        threads = min(threads, next(iter(net.inputs_dict(x).values())).shape[0] // MIN_SHARD)
    if threads > 1:
        return _sharded_phases(net, x, y, the_plan, eps, clip, state, solver, threads)
    dyn = Dynamics(net, x, y, clip=clip)
    if dyn.targets is None:
        raise ArgumentError("ep_step needs targets y of shape (batch, n_out)")
    runs = []

    def phase(st, b, n):
        out = dyn.settle(st, eps, b, n, the_plan.tol, solver)
        runs.append(PhaseRun(b, out.steps, out.step))
        return out.state
    s0 = phase(dyn.initial_state(state), 0.0, the_plan.free_steps)
    observed = the_plan.run(lambda st, b: phase(st, b, the_plan.nudge_steps), s0)
    return dyn, s0, observed, runs


def ep_step(net, x, y, beta, lr, eps=0.5, free_steps=20, nudge_steps=4, variant="one_sided",
            clip=True, state=None, rng=None, grad_out=None, blas_threads=1, solver="euler",
            threads=1, nudges=None, tol=0.0, phases_out=None, points=4):
    """One EP training step on a batch; updates ``net.params`` in place.

    Parameters
    ----------
    net : Network
        Energy or vector-field dynamics, any topology (lateral projections, several input
        populations, skip connections).
    x, y : array or dict
        Inputs ``(batch, n_in)`` (a dict for several input populations) and targets.
    beta : float
        Nudging strength (non-zero); ``random_sign`` flips its sign with probability 1/2.
    lr : float or dict
        Learning rate, or one per parameter key: ``theta <- theta - lr * g``.
    eps : float
        Euler step of both phases (0.5 in the 2017 recipe).
    free_steps, nudge_steps : int
        The most Euler steps (or sweeps) of each phase (the 2017 recipe: 20 and 4 for
        784-500-10); all of them when ``tol`` is 0.
    variant : "one_sided" | "symmetric" | "random_sign" | "holomorphic"
        ``g = (1/beta) [dE/dtheta(s_beta) - dE/dtheta(s0)]``, or
        ``(1/(2 beta)) [dE/dtheta(s_+beta) - dE/dtheta(s_-beta)]``, or one-sided with a
        random sign of beta, or ``Re sum_k e^(-2 pi i k / N) / (N beta) dE/dtheta(s_k)``
        over ``N = points`` complex nudges ``beta e^(2 pi i k / N)`` (complex states;
        logistic rates without ``clip``).
    points : int
        The number of holomorphic nudges (at least 2).
    nudges : list of numbers, optional
        The plan's nudge strengths, replacing ``beta`` and ``variant``
        (:class:`neurosim.plan.Plan`).
    clip : bool
        Project states to [0, 1] after each Euler step (the 2017 recipe).
    state : dict, optional
        Warm start of the free phase (persistent particles); copied, never modified.
    rng : numpy Generator or int, optional
        Source of the random sign (the same draw as :func:`neurosim.ep.estimate`).
    grad_out : dict, optional
        If given, filled with the gradient estimate ``g`` (keys of ``net.params``) before the
        update; without it no gradient arrays are formed.
    tol : float
        Each phase stops once its projected step is at most ``tol`` (0: the full counts).
    phases_out : list, optional
        If given, filled with a :class:`~neurosim.plan.PhaseRun` per phase (the free phase
        first): its nudge, the steps taken and its last projected step.
    solver : "euler" | "block"
        Euler steps, or layer-wise block updates (:meth:`Dynamics.run_block`; hard sigmoid
        with ``clip``), where the step counts are sweeps.
    threads : int
        Threads over the batch (default 1): the phases of contiguous shards of at least
        ``MIN_SHARD`` examples run concurrently, each on single-threaded BLAS (with
        ``blas_threads=1``), and the update is computed from the joined states: the same
        numbers as one thread, to rounding (with ``tol > 0`` each shard stops on its
        own, so to about ``tol``). It pays where the step's work is in large numpy
        products (convolutions); see benchmarks/README.md.
    blas_threads : int or None
        BLAS threads during the step (default 1; None leaves BLAS as configured). The
        products of a step are small or few, and multi-threaded BLAS loses badly whenever
        another process (a test run, a sweep worker) holds a core; see benchmarks/README.md.

    Returns
    -------
    StepOutcome
        ``(state, cost)``: the free state ``s0`` (new arrays) and the batch-mean cost at it.
    """
    if nudges is None:
        try:
            beta = float(beta)
        except (TypeError, ValueError):
            raise ArgumentError("beta must be a non-zero finite number, got %r"
                                % (beta,)) from None
        if not np.isfinite(beta) or beta == 0:
            raise ArgumentError("beta must be a non-zero finite number, got %r" % (beta,))
        if variant not in VARIANTS:
            raise ArgumentError("variant must be one of %s, got %r" % (VARIANTS, variant))
    free_steps = _steps("free_steps", free_steps)
    nudge_steps = _steps("nudge_steps", nudge_steps)
    the_plan = Plan.of(beta, variant, nudges, points=points, free_steps=free_steps,
                       nudge_steps=nudge_steps, tol=checks.nonnegative("tol", tol)).for_batch(rng)
    the_plan.check_dynamics(net, clip, "nudges" if nudges else "variant")
    if grad_out is not None and not isinstance(grad_out, dict):
        raise ArgumentError("grad_out must be a dict (filled with the gradient) or None")
    lrs = learning_rates(net, lr)
    if blas_threads is not None and (isinstance(blas_threads, bool) or not isinstance(
            blas_threads, (int, np.integer)) or blas_threads < 1):
        raise ArgumentError("blas_threads must be a positive integer or None, got %r"
                         % (blas_threads,))
    if solver not in ("euler", "block"):
        raise ArgumentError("solver must be 'euler' or 'block', got %r" % (solver,))
    threads = checks.integer("threads", threads, 1, what=" (threads over the batch)")
    with _blas_limit(blas_threads):
        return _step(net, x, y, the_plan, lrs, eps, clip, state, grad_out, solver, threads,
                     phases_out)


def _step(net, x, y, the_plan, lrs, eps, clip, state, grad_out, solver="euler", threads=1,
          phases_out=None):
    dyn, s0, observed, runs = _phases(net, x, y, the_plan, eps, clip, state, solver, threads)
    if phases_out is not None:
        phases_out[:] = runs
    yo = dyn.targets
    cost = batch_cost(net, s0, yo, dyn.batch)
    if net.dynamics == "energy":
        rates_ = [rates(net, dyn, st) for st in observed]
        if grad_out is None:
            _energy_update(net, dyn, rates_, the_plan, lrs)
            return StepOutcome(s0, cost)
        g = _ep.energy_contrast(net, dyn.inputs, rates_, the_plan, yo)
    else:
        # -(dF/dtheta)^T sum_i c_i (s_i - s0) at s0: the estimator of neurosim.ep itself, so
        # the two stay the same by construction
        g = _ep.contrast(net, dyn.inputs, s0, observed, the_plan)
    if grad_out is not None:
        grad_out.clear()
        grad_out.update(g)
    for k, v in g.items():
        if lrs[k]:
            net.params[k] -= lrs[k] * v
    return StepOutcome(s0, cost)


def check_solver(net, settings):
    """A ConfigurationError naming ``engine.solver`` where the network cannot take it: block
    sweeps need the clipped hard sigmoid and energy dynamics without lateral projections (each
    is then the exact minimiser of the energy in one population). Every engine that offers
    block sweeps checks with this."""
    if settings.solver not in ("euler", "block"):
        raise ConfigurationError("engine.solver: expected 'euler' or 'block', got %r"
                                 % (settings.solver,))
    if settings.solver == "block":
        if net.activation != "hard_sigmoid" or not settings.clip:
            raise ConfigurationError("engine.solver: 'block' needs activation 'hard_sigmoid' "
                                     "with engine.clip = true (its block update is the exact "
                                     "minimiser of the energy in one population); use 'euler'")
        if net.dynamics != "energy" or any(t.source == t.target for t in net.terms):
            raise ConfigurationError("engine.solver: 'block' needs energy dynamics without "
                                     "lateral projections; use 'euler'")


@register("reference")
class ReferenceEngine(Engine):
    """The numpy reference engine: Euler phases (or block sweeps) of any network that settle
    to ``engine.tol`` within their step counts;
    the specification every other engine is checked against (module docstring).

    ``step`` with plain SGD (no momentum, no weight decay: ``optimizer.plain``) fuses
    estimate and update (BLAS gemm straight into the weights); asked for the estimate, it
    reads it back from the change it applied,
    ``-(change) / lr`` (equal to the estimate to rounding), so a step that reports its
    estimate applies exactly the update of one that does not."""

    settings_used = ("solver", "persistent", "threads")
    numpy_phases = True
    complex_nudges = True
    rules = ("ep", "continual_ep", "rbp")
    optimizers = True

    def __init__(self, net, settings, batch_size=None):
        super().__init__(net, settings)
        if settings.threads != 1 and settings.rule != "ep":
            raise ConfigurationError("engine.threads: threads over the batch run EP's phases "
                                     "(learning.rule = \"ep\"); the %s rule runs on one thread"
                                     % settings.rule)
        check_solver(net, settings)

    def _args(self):
        s = self.settings
        return dict(eps=s.eps, free_steps=s.free_steps, nudge_steps=s.nudge_steps,
                    variant=s.variant, clip=s.clip, solver=s.solver, threads=s.threads,
                    nudges=s.nudges or None, tol=s.tol, points=s.points)

    def estimate(self, x, y, state=None, rng=None):
        g = {}
        runs = []
        res = ep_step(self.net, x, y, self.settings.beta, 0.0, state=state, rng=rng, grad_out=g,
                      phases_out=runs, **self._args())
        return Estimate(g, res.state, res.cost, runs)

    def infer(self, x, state=None):
        st = self.free_state(x, state)
        out = {p: en.rho(self.net.activation, st[p]) for p in self.net.state_pops}
        out.update(en.predictions(self.net, st))
        return out

    def step(self, x, y, optimizer, state=None, rng=None, want_estimate=False):
        net, lrs = self.net, optimizer.lrs
        fused = optimizer.plain and (net.dynamics == "energy") and all(lrs.values())
        if not fused:
            est = self.estimate(x, y, state, rng)
            optimizer.apply(net.params, est)
            return StepResult(est.state, est.cost, est if want_estimate else None,
                              phases=est.phases)
        before = {k: v.copy() for k, v in net.params.items()} if want_estimate else None
        runs = []
        res = ep_step(net, x, y, self.settings.beta, lrs, state=state, rng=rng,
                      phases_out=runs, **self._args())
        est = None
        if want_estimate:
            est = {k: (before[k] - net.params[k]) / lrs[k] for k in net.params}
        return StepResult(res.state, res.cost, est, phases=runs)

    def phase_trajectory(self, x, y, beta, steps, state=None):
        """The Euler steps (or block sweeps) of one phase, every state recorded: the phase
        of the estimate itself (:meth:`~neurosim.dynamics.Dynamics.settle` recording each
        step), so it stops where the estimate's phase stops (``engine.tol``), at most
        ``steps``."""
        s = self.settings
        dyn = Dynamics(self.net, x, y if beta else None, clip=s.clip)
        st = dyn.initial_state(state)
        out = [{p: v.copy() for p, v in st.items()}]
        dyn.settle(st, s.eps, beta, steps, s.tol, s.solver,
                   record=lambda now: out.append({p: v.copy() for p, v in now.items()}))
        return {p: np.stack([o[p] for o in out]) for p in self.net.state_pops}, None

    def free_state(self, x, state=None):
        """The free state (not the rates) after the engine's free phase, for the persistent
        particles of the ``rbp`` and ``continual_ep`` rules."""
        s = self.settings
        dyn = Dynamics(self.net, x, clip=s.clip)
        return dyn.settle(dyn.initial_state(state), s.eps, 0.0, s.free_steps, s.tol,
                          s.solver).state


__all__ = ["ReferenceEngine", "check_solver", "ep_step", "batch_cost", "rates", "learning_rates", "VARIANTS"]
