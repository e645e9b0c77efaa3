"""``neurosim fidelity``: how faithful an engine's own EP estimate is to RBP's ground-truth
gradient, for one network and one batch (docs/maths.md sections 4 and 7), measured through the
engine protocol (DESIGN.md, "Measure through the engine that runs").

For the network of a circuit file (at initialisation, or with the weights of a checkpoint) and
a seeded batch of its dataset's test split, :func:`run_fidelity`

1. builds the circuit's engine (:func:`neurosim.engines.from_circuit`: any registered engine,
   on the devices of its ``[hardware]`` section, with its settings and phase plan, its own
   ``engine.solver`` included unless ``--solver`` picks the other) and takes its own estimate
   (:meth:`~neurosim.engines.protocol.Engine.estimate`);
2. takes the engine's ground truth (:meth:`~neurosim.engines.protocol.Engine.ground_truth`:
   RBP at the verified exact free fixed point) and the distance ``max |s_engine - s*|`` of the
   engine's free state from that point;
3. compares them (cosine, relative error, relative RMSE, sign agreement), overall and per
   parameter, and for a rate engine other than the plain reference engine, against the
   reference engine's estimate at the same settings (``reference_rel_diff``);
4. follows the comparison over the nudged phases: each nudged phase of the plan recorded by
   the engine's own monitors (:meth:`~neurosim.engines.protocol.Engine.phase_trajectory`)
   from its free state, and the plan's estimate of the states after ``k`` nudged steps, for
   k = 1..N (``plan.combine`` of the observations: :func:`neurosim.ep.contrast`, or for a
   resistive network :func:`neurosim.resistive.learning.contrast`).

The network and data are promoted to float64. ``--engine brian2-spiking`` runs the spiking
study of :mod:`neurosim.commands.spiking_fidelity` (spike seeds and ``--sweep``).
:func:`main` prints the report (naming the solver measured and the steps its phases took),
writes ``fidelity.h5`` (SONATA reports of the nudged phases, phases, both gradients, every
metric and the per-k arrays, the resolved circuit), ``fidelity_curve.png`` and
``circuit.toml``, and with ``--json`` a one-line JSON summary last.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .. import atomic, config, engines, ep, fidelity, jsontext, plots, traces, validity
from ..errors import ConfigurationError, NeurosimError
from ..training.trainer import read_checkpoint
from ..blas import blas_threads

CHECKPOINT = "checkpoint.npz"
#: The ground truth's fixed point holds to this (projected step, or KCL volts).
TOL = 1e-10


class FidelityError(NeurosimError, ValueError):
    """Bad input for the fidelity command; the message names the option or field."""


# -- inputs -----------------------------------------------------------------------------------
def _checkpoint_path(weights):
    path = os.path.join(weights, CHECKPOINT) if os.path.isdir(weights) else weights
    if not os.path.isfile(path):
        raise FidelityError("--weights %s: no checkpoint there (give a run folder written by "
                            "'neurosim run' or its %s)" % (weights, CHECKPOINT))
    return path


def load_weights(net, weights):
    """Set ``net.params`` from a checkpoint (a run folder or its ``checkpoint.npz``)."""
    path = _checkpoint_path(weights)
    _, z = read_checkpoint(path, training=False)   # a damaged file: one line naming it
    for k, v in net.params.items():
        name = "param/" + k
        if name not in z:
            raise FidelityError("--weights %s does not match the network: no %r (it has %s)"
                                % (path, k, sorted(f[6:] for f in z if f.startswith("param/"))))
        if z[name].shape != v.shape:
            raise FidelityError("--weights %s does not match the network: %r has shape %s, "
                                "expected %s" % (path, k, z[name].shape, v.shape))
        v[...] = z[name]
    return path


def prepare(circuit=None, overrides=(), batch=8, seed=0, weights=None):
    """The circuit, its text, the network (float64) and a seeded test batch.

    Returns a dict with ``circuit``, ``text``, ``source`` (the circuit file or name read),
    ``net``, ``x``, ``y``, ``index`` (rows of the test split), ``dataset`` (name) and
    ``weights`` (the checkpoint used, or None). With
    ``weights`` a run folder and no ``circuit``, the run's ``circuit.toml`` is used.
    """
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise FidelityError("--batch must be a positive integer, got %r" % (batch,))
    if weights is not None and circuit is None and os.path.isdir(weights) \
            and os.path.isfile(os.path.join(weights, "circuit.toml")):
        circuit = os.path.join(weights, "circuit.toml")
    circ, text = config.load(circuit, overrides)
    net = config.build_network(circ.network, circ.resistive.model_dump()).copy(
        dtype="float64")
    data = config.build_dataset(circ.dataset, "float64")
    config.check_fit(net, data)
    if batch > data.n_test:
        raise FidelityError("--batch %d: the test split of dataset %r has only %d examples"
                            % (batch, data.name, data.n_test))
    used = load_weights(net, weights) if weights is not None else None
    idx = np.random.default_rng(seed).choice(data.n_test, size=int(batch), replace=False)
    return {"circuit": circ, "text": text, "source": circuit, "net": net,
            "x": data.x_test[idx], "y": data.y_test[idx], "index": idx, "dataset": data.name,
            "weights": used}


# -- the engines ------------------------------------------------------------------------------
def build_engine(circuit, net, path=None, text=None, overrides=()):
    """The circuit's engine (:func:`neurosim.engines.from_circuit`); a setting it refuses names
    its field and, where the circuit file ``path`` (its ``text``) sets it rather than
    ``overrides``, says so and how to override it (:func:`neurosim.config.blame_file`)."""
    try:
        return engines.from_circuit(circuit, net)
    except ConfigurationError as e:
        if text is None:
            raise
        raise config.blame_file(e, config.resolve(path), text, overrides) from None


def solver_of(engine):
    """``engine.solver`` (``"euler"`` or ``"block"``) where the engine (or the one inside its
    devices) runs its phases by that setting, else None (e.g. DC solves)."""
    inner = getattr(engine, "inner", engine)
    return engine.settings.solver if "solver" in inner.settings_used else None


def _contrast(net, x, y, s0, states, plan):
    """The plan's estimate of the observed ``states`` (one per nudge) from the free ``s0``."""
    from ..resistive import ResistiveNetwork, learning
    if isinstance(net, ResistiveNetwork):
        return learning.contrast(net, x, s0, states, plan)
    inputs = net.inputs_dict(x)
    targets = net.targets_dict(y, np.shape(x)[0])
    return ep.contrast(net, inputs, s0, states, plan, targets)


def _complete(net, state):
    return state is not None and all(p in state for p in net.state_pops)


def _curve(net, x, y, s0, nudged, plan, truth):
    """Metrics against ``truth`` of the plan's estimate after k = 1..N nudged steps of every
    nudged phase (``nudged``: nudge -> trajectory ``pop -> (n_b + 1, batch, n)``, as long as
    that phase ran; N the longest): a phase that stopped (settled to ``engine.tol``) before
    step k is held at its last state, as the estimate holds it, so the last point is the
    estimate."""
    N = max(next(iter(t.values())).shape[0] for t in nudged.values()) - 1
    rows, last = [], None
    for k in range(1, N + 1):
        states = [s0 if b == 0 else {p: v[min(k, v.shape[0] - 1)] for p, v in nudged[b].items()}
                  for b in plan.nudges]
        last = _contrast(net, x, y, s0, states, plan)
        rows.append(fidelity.compare(last, truth))
    out = {"k": np.arange(1, N + 1)}
    for m in fidelity.METRICS:
        out[m] = np.array([r[m] for r in rows])
    out["per_param"] = {key: {m: np.array([r["per_param"][key][m] for r in rows])
                              for m in fidelity.METRICS} for key in truth}
    return out, last


def _rel(a, b):
    num = np.sqrt(sum(np.sum((np.asarray(a[k]) - np.asarray(b[k])) ** 2) for k in b))
    den = np.sqrt(sum(np.sum(np.asarray(b[k]) ** 2) for k in b))
    return float(num / den) if den > 0 else float(num)


def _reference_estimate(engine, x, y, seed):
    """The reference engine's estimate at the engine's settings (its plan, steps, ``eps``,
    ``clip``) on the same weights and random sign."""
    s = engine.settings
    ref = engines.build("reference", engine.net, eps=s.eps, free_steps=s.free_steps,
                        nudge_steps=s.nudge_steps, clip=s.clip, solver=s.solver, tol=s.tol,
                        beta=s.beta, variant=s.variant, nudges=s.nudges, points=s.points,
                        seed=s.seed)
    return ref.estimate(x, y, rng=seed)


def run_fidelity(engine, x, y, *, seed=0, tol=TOL, label="fidelity batch"):
    """The estimate of ``engine`` (built, e.g. by :func:`build_engine`) on ``(x, y)`` against
    its ground truth.

    Returns a dict: ``update`` (the engine's estimate), ``rbp``, ``metrics``
    (:func:`neurosim.fidelity.compare`), ``curve`` (per-k arrays ``k``, the metrics and
    ``per_param``), ``plan`` (as run: a random sign drawn from ``seed``), ``nudged`` (nudge ->
    the engine's recorded nudged trajectory ``pop -> (N + 1, batch, n)``, from its free state),
    ``free_distance`` (``max |s_F - s*|``: the engine's free state against the fixed point RBP
    linearises at; the state of its estimate, or where that is not a full state its monitored
    free phase, as ``free_state_from`` says), ``residual`` (of that fixed point), ``curve_rel_diff`` (the curve's last point against the estimate), timings, and for
    a rate engine other than the plain reference engine ``reference_rel_diff``.
    """
    net, s = engine.net, engine.settings
    plan = engine.plan.for_batch(seed)      # the engines draw the same sign from ``seed``
    t0 = time.perf_counter()
    update = engine.estimate(x, y, rng=seed)
    res = {"engine": engine.name, "evaluated_by": engine.evaluated_by, "plan": plan,
           "engine_seconds": time.perf_counter() - t0}
    own = update.state
    if not _complete(net, own):    # the engine reports no full state: its monitors' free phase
        states, _ = engine.phase_trajectory(x, y, 0.0, s.free_steps)
        own = {p: v[-1] for p, v in states.items()}
        res["free_state_from"] = "trajectory"
    else:
        res["free_state_from"] = "estimate"
    t1 = time.perf_counter()      # as in training: polished from the engine's own free state
    truth, fp = engine.ground_truth(x, y, tol, label, state=own)
    res["rbp_seconds"] = time.perf_counter() - t1
    res["residual"] = float(fp.residual)
    res["free_distance"] = max(float(np.max(np.abs(np.asarray(own[p], np.float64)
                                                    - fp.state[p]))) for p in net.state_pops)
    res["metrics"] = fidelity.compare(update, truth)
    s0 = {p: np.array(own[p], net.dtype) for p in net.state_pops}
    nudged = {b: engine.phase_trajectory(x, y, b, s.nudge_steps, s0)[0] for b in plan.nudged}
    with blas_threads(1):   # vector products: a second BLAS thread only waits on a busy machine
        res["curve"], last = _curve(net, x, y, s0, nudged, plan, truth)
    res["curve_rel_diff"] = _rel(last, update)
    if engine.reference_readout and (engine.name != "reference" or engine is not
                                     getattr(engine, "inner", engine)):
        res["reference_rel_diff"] = _rel(update, _reference_estimate(engine, x, y, seed))
    res.update(update=dict(update), rbp=truth, nudged=nudged, net=net, settings=s,
               phases=list(update.phases), solver=solver_of(engine),
               clock=engine.clock(), batch=int(np.shape(x)[0]),
               state_variable=engine.state_variable, state_units=engine.state_units,
               seconds=time.perf_counter() - t0)
    return res


# -- output -----------------------------------------------------------------------------------
def _ks(n):
    ks = {1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000}
    return sorted(k for k in ks | {n} if k <= n)


def _plan_text(res):
    s, plan = res["settings"], res["plan"]
    if s.nudges:
        return "nudges %s" % ", ".join("%g%+gj" % (b.real, b.imag) if isinstance(b, complex)
                                       else "%g" % b for b in plan.nudges)
    text = "%s EP, beta=%g" % (s.variant, beta_of(res))
    if s.variant == "holomorphic":
        text += " (radius; %d points)" % len(plan.nudges)
    if s.variant == "random_sign":
        text += " (sign drawn: %s)" % ("+" if beta_of(res) > 0 else "-")
    return text


#: What each ``engine.solver`` runs, and the name of one of its steps.
SOLVERS = {"block": ("block sweeps", "sweeps"), "euler": ("Euler steps", "Euler steps")}


def _solver_lines(res, source=None):
    """The solver measured (and where it was set), and the phases' steps: at most, and as
    this batch ran them (a phase that stopped above ``engine.tol`` is called unsettled)."""
    s, solver = res["settings"], res["solver"]
    what, step = SOLVERS[solver]
    other = "block" if solver == "euler" else "euler"
    head = "solver measured: %s (%s), %s; --solver %s measures %s instead" % (
        what, "eps=%g" % s.eps if solver == "euler" else "layer-wise block updates",
        source or "the circuit's engine.solver", other, SOLVERS[other][0])
    if s.tol:
        text = ("at most %d free + %d nudged %s per phase, each phase stopping once its step "
                "is at most tol=%g" % (s.free_steps, s.nudge_steps, step, s.tol))
    else:
        text = "%d free + %d nudged %s per phase (tol 0: every step)" % (
            s.free_steps, s.nudge_steps, step)
    ran = res.get("phases") or []
    if ran:
        text += "; this batch: %d free, %s nudged" % (
            ran[0].steps, " and ".join(str(r.steps) for r in ran[1:]) or "no")
        late = ["%s phase's last step %.1e" % ("free" if i == 0 else "a nudged", r.step)
                for i, r in enumerate(ran) if s.tol and not r.step <= s.tol]
        if late:
            text += " (unsettled: the %s > tol)" % ", ".join(late)
    return [head, text]


def beta_of(res):
    """The run's beta: symmetric, the positive nudge; holomorphic (complex nudges), the
    radius; else the last non-zero one (signed: a random sign as drawn)."""
    plan = res["plan"]
    if plan.complex:
        return float(max(abs(b) for b in plan.nudged))
    return float(max(plan.nudges)) if plan.symmetric else float(np.real(plan.nudged[-1]))


def report(res, info=None):
    """The printed report: settings, the metrics table and the curve over the nudged phase."""
    info = info or {}
    net, m, s = res["net"], res["metrics"], res["settings"]
    lines = ["neurosim fidelity: the %s engine's own EP estimate vs RBP's gradient (implicit, "
             "at the verified free fixed point)" % res["evaluated_by"]]
    where = ""
    if info.get("dataset"):
        where = "; data: %s test split, batch %d (seed %d)" % (info["dataset"], res["batch"],
                                                               info.get("seed", 0))
    lines.append("network %s%s" % (net, where))
    if info.get("weights"):
        lines.append("weights from %s" % info["weights"])
    dt, units = res["clock"]
    if res.get("solver") is None:
        lines.append("%s; %d free + %d nudged steps per phase (%g %s each), eps=%g, clip %s"
                     % (_plan_text(res), s.free_steps, s.nudge_steps, dt, units, s.eps,
                        "on" if s.clip else "off"))
    else:
        lines.append("%s, clip %s" % (_plan_text(res), "on" if s.clip else "off"))
        lines += _solver_lines(res, info.get("solver_from"))
    lines.append("free phase: max |s - s*| = %.3e (s*: the fixed point RBP linearises at, "
                 "residual %.1e; s: the engine's free state%s)"
                 % (res["free_distance"], res["residual"],
                    ", from its monitors" if res["free_state_from"] == "trajectory" else ""))
    if "reference_rel_diff" in res:
        lines.append("estimate vs the reference engine's at the same settings: relative "
                     "difference %.2e" % res["reference_rel_diff"])
    lines.append("")
    lines.append("%-16s %13s %12s %12s %10s %12s" % ("parameter", "cosine", "rel error",
                                                      "rel rmse", "sign agr", "|rbp|"))
    rows = [("all", m, np.sqrt(sum(np.sum(g ** 2) for g in res["rbp"].values())))]
    rows += [(k, m["per_param"][k], np.linalg.norm(res["rbp"][k])) for k in res["rbp"]]
    for name, r, norm in rows:
        lines.append("%-16s %13.9f %12.3e %12.3e %10.4f %12.3e" % (
            name, r["cosine"], r["rel_error"], r["rel_rmse"], r["sign_agreement"], norm))
    c = res["curve"]
    n = len(c["k"])
    lines.append("")
    lines.append("Over the nudged phase (the plan's estimate after k nudged steps, from the "
                 "engine's monitors; at k=%d vs the estimate: relative difference %.2e):"
                 % (n, res["curve_rel_diff"]))
    lines.append("%6s %13s %12s %10s" % ("k", "cosine", "rel error", "sign agr"))
    for k in _ks(n):
        lines.append("%6d %13.9f %12.3e %10.4f" % (k, c["cosine"][k - 1], c["rel_error"][k - 1],
                                                   c["sign_agreement"][k - 1]))
    best = int(np.argmax(c["cosine"]))
    lines.append("best cosine %.9f at k=%d of %d" % (c["cosine"][best], best + 1, n))
    lines.append("")
    lines.append("engine %.2f s, RBP %.2f s, total %.2f s" % (res["engine_seconds"],
                                                             res["rbp_seconds"], res["seconds"]))
    return "\n".join(lines)


def plot(res, path, circuit=None):
    """PNG: cosine and relative error of the truncated estimate vs k, overall and per param;
    the title names ``circuit`` and the engine, the relative error is on a linear axis where
    it spans less than a decade (:func:`neurosim.plots.error_axis`), and a free phase that did
    not settle is flagged in red (:func:`neurosim.validity.free_distance_flag`)."""
    plt, fig, (a, b) = plots.figure(2)
    c = res["curve"]
    k = c["k"]
    style = ".-" if len(k) <= 40 else "-"
    for key, r in c["per_param"].items():
        a.plot(k, r["cosine"], style, lw=1, label=key)
        b.plot(k, r["rel_error"], style, lw=1, label=key)
    a.plot(k, c["cosine"], "k" + style, lw=2, label="all", zorder=5)
    b.plot(k, c["rel_error"], "k" + style, lw=2, label="all", zorder=5)
    dt, units = res["clock"]
    a.set(xlabel="nudged steps k (%g %s)" % (dt, units),
          ylabel="cosine(estimate, RBP gradient)",
          title="direction (1 = same as RBP)")
    plots.error_axis(b, "|g_k - g_rbp| / |g_rbp|")
    b.set(xlabel="nudged steps k (%g %s)" % (dt, units),
          title="relative error (1 = as large as the RBP gradient)")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    who = res["engine"] if res["evaluated_by"] in (None, res["engine"]) else \
        "%s (evaluated by %s)" % (res["engine"], res["evaluated_by"])
    fig.suptitle(plots.run_title("EP estimate after k nudged steps vs RBP", circuit, who)
                 + "\n%s, batch of %d" % (_plan_text(res), res["batch"]), fontsize=11)
    flag = validity.free_distance_flag([res["free_distance"]], "fidelity_curve")
    plots.flag_figure(fig, [flag] if flag else [])
    return plots.save(plt, fig, path)


def _metrics_tree(m):
    out = {x: m[x] for x in fidelity.METRICS}
    out["per_param"] = {k: dict(v) for k, v in m["per_param"].items()}
    return out


def save_h5(res, path, circuit_text=None, info=None):
    """``fidelity.h5`` (:func:`neurosim.traces.write`): the nudged phases' states as reports
    (one after the other, starting after the free phase, in the engine's clock), the phases,
    the gradients ``{engine: estimate, "rbp": rbp}``, the metrics and the per-k arrays."""
    net, s = res["net"], res["settings"]
    dt, units = res["clock"]
    F, N = s.free_steps, s.nudge_steps
    named = res["plan"].phase_names()
    parts = [res["nudged"][b] if i == 0 else {p: v[1:] for p, v in res["nudged"][b].items()}
             for i, (_, b) in enumerate(named)]
    # the phases as they ran: the estimate's free phase, each nudged phase as recorded (a
    # phase that settled to engine.tol holds fewer than N steps)
    ran = res.get("phases") or []
    start = ran[0].steps if ran else F
    reports = {p: {"data": np.real(np.concatenate([part[p] for part in parts])),
                   "start": start * dt, "variable": res["state_variable"],
                   "units": res["state_units"]} for p in net.state_pops}
    phases = [{"name": "free", "start": 0.0, "stop": start * dt, "beta": 0.0}]
    for name, b in named:
        n = next(iter(res["nudged"][b].values())).shape[0] - 1
        phases.append({"name": name, "start": start * dt, "stop": (start + n) * dt,
                       "beta": float(np.real(b))})
        start += n
    c = res["curve"]
    fid = {"overall": _metrics_tree(res["metrics"]),
           "curve": {"k": c["k"], **{m: c[m] for m in fidelity.METRICS},
                     "per_param": c["per_param"]},
           "free_distance": res["free_distance"], "curve_rel_diff": res["curve_rel_diff"],
           "rbp_residual": res["residual"]}
    if "reference_rel_diff" in res:
        fid["reference_rel_diff"] = res["reference_rel_diff"]
    attrs = {"command": "fidelity", "engine": res["engine"],
             "evaluated_by": res["evaluated_by"], "variant": s.variant, "beta": beta_of(res),
             "nudges": np.real(np.asarray(res["plan"].nudges, complex)), "eps": s.eps,
             "free_steps": F, "nudge_steps": N, "clip": int(s.clip), "seconds": res["seconds"]}
    if res.get("solver"):
        attrs["solver"] = res["solver"]
    for k in ("dataset", "seed", "weights"):
        if info and info.get(k) is not None:
            attrs[k] = info[k]
    if info and info.get("index") is not None:
        attrs["test_index"] = np.asarray(info["index"], dtype=np.int64)
    return traces.write(path, reports=reports, phases=phases,
                        gradients={res["engine"]: res["update"], "rbp": res["rbp"]},
                        fidelity=fid, circuit=circuit_text, attrs=attrs, dt=dt,
                        time_units=units)


def summary(res, out=None, files=None, device=None):
    """The one-line JSON summary (plain floats)."""
    m, c, s = res["metrics"], res["curve"], res["settings"]
    out_ = {"engine": res["engine"], "device": device, "evaluated_by": res["evaluated_by"],
            "variant": s.variant, "beta": beta_of(res),
            "nudges": [float(np.real(b)) for b in res["plan"].nudges],
            "eps": s.eps, "free_steps": s.free_steps, "nudge_steps": s.nudge_steps,
            "solver": res.get("solver"),
            "phase_steps": [int(r.steps) for r in res.get("phases") or []],
            "clip": s.clip, "batch": res["batch"],
            "cosine": m["cosine"], "rel_error": m["rel_error"], "rel_rmse": m["rel_rmse"],
            "sign_agreement": m["sign_agreement"],
            "per_param_cosine": {k: v["cosine"] for k, v in m["per_param"].items()},
            "per_param_rel_error": {k: v["rel_error"] for k, v in m["per_param"].items()},
            "curve_cosine": [float(v) for v in c["cosine"]],
            "curve_rel_error": [float(v) for v in c["rel_error"]],
            "best_k": int(np.argmax(c["cosine"])) + 1,
            "free_distance": res["free_distance"], "free_state_from": res["free_state_from"],
            "rbp_residual": res["residual"], "curve_rel_diff": res["curve_rel_diff"],
            "engine_seconds": round(res["engine_seconds"], 3),
            "rbp_seconds": round(res["rbp_seconds"], 3), "seconds": round(res["seconds"], 3)}
    if "reference_rel_diff" in res:
        out_["reference_rel_diff"] = res["reference_rel_diff"]
    if out is not None:
        out_["out"] = out
    out_.update(files or {})
    return _finite(out_)


def _finite(v):
    """JSON-safe: NaN and infinities as None, recursively."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _out_dir(out):
    if out:
        os.makedirs(out, exist_ok=True)
        return out
    stem = os.path.join("runs", "fidelity-%s" % time.strftime("%Y%m%d-%H%M%S"))
    path, k = stem, 1
    while os.path.exists(path):
        k += 1
        path = "%s-%d" % (stem, k)
    os.makedirs(path)
    return path


def overrides_of(args):
    """The circuit-file overrides of the command's options: ``--engine`` is
    ``engine.name``, ``--beta`` / ``--variant`` are ``learning.beta`` / ``learning.variant``
    (and drop ``learning.nudges``), ``--solver``, ``--free-steps`` / ``--nudge-steps`` the
    engine's."""
    out = list(args.overrides)
    if args.engine is not None:
        out.append(("engine.name", args.engine))
    if args.beta is not None:
        out.append(("learning.beta", float(args.beta)))
    if args.variant is not None:
        out.append(("learning.variant", args.variant))
    if args.beta is not None or args.variant is not None:
        out.append(("learning.nudges", None))
    if args.solver is not None:
        out.append(("engine.solver", args.solver))
    if args.free_steps is not None:
        out.append(("engine.free_steps", int(args.free_steps)))
    if args.nudge_steps is not None:
        out.append(("engine.nudge_steps", int(args.nudge_steps)))
    return out


def _solver_source(args):
    """Where the measured ``engine.solver`` was set: ``--solver``, ``--set`` or the circuit."""
    if args.solver is not None:
        return "set by --solver"
    keys = [config.parse_override(o)[0] if isinstance(o, str) else o[0] for o in args.overrides]
    return "set by --set engine.solver" if "engine.solver" in keys \
        else "the circuit's engine.solver"


def _device_name(circ):
    hw = getattr(circ, "hardware", None)
    return None if hw is None or hw.preset == "ideal" and not any(
        v is not None for k, v in hw.model_dump().items() if k not in ("preset", "seed")) \
        else hw.preset


def main(args):
    """``neurosim fidelity``: run, print the report, write HDF5/PNG/circuit, optionally JSON."""
    t0 = time.perf_counter()
    prep = prepare(args.circuit, overrides_of(args), batch=args.batch, seed=args.seed,
                   weights=args.weights)
    circ = prep["circuit"]
    name = circ.engine.name
    if name not in engines.available():
        raise FidelityError("--engine must be one of %s (the registered engines), got %r"
                            % (list(engines.available()), name))
    if name != "brian2-spiking" and (args.sweep or args.spike_seeds is not None):
        raise FidelityError("--sweep and --spike-seeds apply to --engine brian2-spiking only")
    if name == "brian2-spiking":
        return _main_spiking(args, prep, t0)
    engine = build_engine(circ, prep["net"], prep["source"], prep["text"], overrides_of(args))
    try:
        res = run_fidelity(engine, prep["x"], prep["y"], seed=args.seed)
    finally:
        engine.close()
    res["seconds"] = time.perf_counter() - t0
    info = {"dataset": prep["dataset"], "seed": args.seed, "weights": prep["weights"],
            "index": prep["index"], "solver_from": _solver_source(args)}
    out = _out_dir(args.out)
    resolved = config.to_toml(circ)
    atomic.write_text(os.path.join(out, "circuit.toml"), resolved)
    files = {"h5": save_h5(res, os.path.join(out, "fidelity.h5"), resolved, info)}
    if not args.no_plot:
        files["png"] = plot(res, os.path.join(out, "fidelity_curve.png"), circuit=circ.name)
    print(report(res, info))
    print("wrote %s" % ", ".join(files.values()))
    if args.json:
        print(jsontext.dumps(summary(res, out, files, _device_name(circ))))
    return 0


def _main_spiking(args, prep, t0):
    """``--engine brian2-spiking``: the spike-based update over settings and spike seeds
    against the rate circuit and RBP (:mod:`neurosim.commands.spiking_fidelity`)."""
    from . import spiking_fidelity as sf
    circ = prep["circuit"]
    e, L = circ.engine, circ.learning
    nudge, free, beta, variant = e.nudge_steps, e.free_steps, L.beta, L.variant
    try:
        sweeps = [sf.parse_sweep(t) for t in args.sweep]
        items = sf.settings({"neuron": e.neuron, "max_rate": e.max_rate, "eps": e.eps},
                            nudge, sweeps)
    except sf.SpikingFidelityError as err:
        raise FidelityError(str(err)) from None
    print("neurosim fidelity --engine brian2-spiking: %s, batch %d of %s, %s beta %g, eps %g "
          "(dt %g ms), %d free steps, %d settings x %d spike seeds"
          % (prep["net"], prep["x"].shape[0], prep["dataset"], variant, beta, e.eps,
             e.eps * 10.0, free, len(items), args.spike_seeds or 3), flush=True)

    def log(r):
        print("  %-12s %-40s spikes %8d  cos rate %.4f  cos RBP %.4f  (%.1f s/run)"
              % (r["sweep"], r["setting"], round(r["spikes"]), r["cos_rate"], r["cos_rbp"],
                 r["seconds_per_run"]), flush=True)

    try:
        res = sf.study(prep["net"], prep["x"], prep["y"], items, beta=beta, variant=variant,
                       free_steps=free, seeds=args.spike_seeds or 3, clip=e.clip, log=log)
    except sf.SpikingFidelityError as err:
        raise FidelityError("--engine brian2-spiking: %s" % err) from None
    out = _out_dir(args.out)
    resolved = config.to_toml(circ)
    atomic.write_text(os.path.join(out, "circuit.toml"), resolved)
    attrs = {"dataset": prep["dataset"], "seed": args.seed, "variant": variant, "beta": beta,
             "eps": e.eps, "free_steps": free, "test_index": np.asarray(prep["index"])}
    if prep["weights"]:
        attrs["weights"] = prep["weights"]
    files = {"h5": sf.save_h5(res, os.path.join(out, "fidelity.h5"), resolved, attrs)}
    if not args.no_plot:
        files["png"] = sf.plot({prep["dataset"]: res["rows"]},
                               os.path.join(out, "spiking_fidelity.png"),
                               circuit=circ.name, engine=circ.engine.name)
        files["raster"] = res["last"].raster(
            os.path.join(out, "raster.png"),
            title=plots.run_title("Spikes of the last setting run", circ.name,
                                  circ.engine.name))
    print()
    print(sf.report(res["rows"]))
    print("\nfewest-spike setting with worst-seed cosine >= 0.99 vs rate and >= 0.95 vs RBP: %s"
          % (sf.first_reaching(res["rows"]),))
    print("wrote %s (%.1f s)" % (", ".join(files.values()), time.perf_counter() - t0))
    if args.json:
        print(jsontext.dumps(sf.summary(res, out, files)))
    return 0


__all__ = ["run_fidelity", "build_engine", "prepare", "solver_of", "SOLVERS", "load_weights",
           "report", "plot", "save_h5", "summary", "overrides_of", "beta_of", "main",
           "FidelityError", "TOL"]
