"""``neurosim fidelity``: how faithful an engine's locally accumulated EP update is to RBP's
ground-truth gradient, for one network and one batch (docs/maths.md sections 4 and 7).

For the network of a circuit file (at initialisation, or with the weights of a checkpoint) and
a seeded batch of its dataset's test split, :func:`run_fidelity`

1. runs the engine's EP step: ``reference`` (:func:`neurosim.ep.gradient`, numpy) or
   ``brian2-rate`` (the Brian2 rate circuit, whose synapses accumulate the update locally;
   the two agree to rounding, and the report says by how much);
2. computes RBP's implicit gradient at the converged free state (same ``eps`` and ``clip``);
3. compares them (cosine, relative error, relative RMSE, sign agreement), overall and per
   parameter;
4. follows the comparison over the nudged phase: the update truncated after ``k`` nudged
   steps, ``P_k = (1/beta) [dE/dtheta(s_k) - dE/dtheta(s_0)]`` (one-sided) or
   ``(1/(2 beta)) [dE/dtheta(s_k^+) - dE/dtheta(s_k^-)]`` (symmetric), for k = 1..N, rebuilt
   from the engine's own recorded nudged trajectory (``P_N`` is the update itself).

The dynamics are Euler steps of ``engine.eps`` in float64: a circuit's ``block`` solver has no
Euler time axis, so ``free_steps`` count Euler steps here, and a float32 network is promoted.
:func:`main` prints the report, writes ``fidelity.h5`` (SONATA reports of the nudged phase,
phases, both gradients, every metric and the per-k arrays, the resolved circuit),
``fidelity_curve.png`` and ``circuit.toml``, and with ``--json`` a one-line JSON summary last.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .. import atomic, checks, config, ep, fidelity, jsontext, plots, rbp, traces
from . import run as experiment
from ..relax import Dynamics, blas_threads, free_state
from ..errors import NeurosimError
from ..plan import sign_of

ENGINES = ("reference", "brian2-rate", "brian2-spiking")
CHECKPOINT = "checkpoint.npz"


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
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FidelityError("--weights %s: not a neurosim checkpoint (%s)" % (path, e)) from None
    with z:
        for k, v in net.params.items():
            name = "param/" + k
            if name not in z.files:
                raise FidelityError("--weights %s does not match the network: no %r (it has %s)"
                                    % (path, k, sorted(f[6:] for f in z.files
                                                       if f.startswith("param/"))))
            if z[name].shape != v.shape:
                raise FidelityError("--weights %s does not match the network: %r has shape %s, "
                                    "expected %s" % (path, k, z[name].shape, v.shape))
            v[...] = z[name]
    return path


def prepare(circuit=None, overrides=(), batch=8, seed=0, weights=None):
    """The circuit, its text, the network (float64) and a seeded test batch.

    Returns a dict with ``circuit``, ``text``, ``net``, ``x``, ``y``, ``index`` (rows of the
    test split), ``dataset`` (name) and ``weights`` (the checkpoint used, or None). With
    ``weights`` a run folder and no ``circuit``, the run's ``circuit.toml`` is used.
    """
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise FidelityError("--batch must be a positive integer, got %r" % (batch,))
    if weights is not None and circuit is None and os.path.isdir(weights) \
            and os.path.isfile(os.path.join(weights, "circuit.toml")):
        circuit = os.path.join(weights, "circuit.toml")
    circ, text = config.load(circuit, overrides)
    net = experiment.build_network(circ.network).copy(dtype="float64")
    data = experiment.build_dataset(circ.dataset, "float64")
    experiment.check_fit(net, data)
    if batch > data.n_test:
        raise FidelityError("--batch %d: the test split of dataset %r has only %d examples"
                            % (batch, data.name, data.n_test))
    used = load_weights(net, weights) if weights is not None else None
    idx = np.random.default_rng(seed).choice(data.n_test, size=int(batch), replace=False)
    return {"circuit": circ, "text": text, "net": net, "x": data.x_test[idx],
            "y": data.y_test[idx], "index": idx, "dataset": data.name, "weights": used}


# -- the engines ------------------------------------------------------------------------------
def _reference_states(net, x, y, beta, eps, free_steps, nudge_steps, clip, symmetric):
    """The nudged trajectories ``pop -> (N + 1, batch, n)`` (``[0]`` the free state after
    ``free_steps``), made by the same Euler steps as :func:`neurosim.ep.gradient`."""
    dyn = Dynamics(net, x, y, clip=clip)
    s0 = dyn.run(dyn.initial_state(), eps, steps=int(free_steps)).state
    out = []
    for b in ((beta, -beta) if symmetric else (beta,)):
        s = {p: v.copy() for p, v in s0.items()}
        out.append(dyn.run(s, eps, beta=b, steps=int(nudge_steps), record=True).trajectory)
    return out[0], (out[1] if symmetric else None)


def _circuit_states(circuit, eps, free_steps, nudge_steps, clip, symmetric):
    """The same trajectories from a rate circuit's monitors: ``u`` is read at the start of
    each step (``u[F + k] = s_k``), so the last state of a phase is one Euler step of the
    recorded ``dudt`` past its last frame (clipped like the circuit does)."""
    F, N = int(free_steps), int(nudge_steps)
    phases = []
    for a in ((F, F + N) if symmetric else (F,)):
        traj = {}
        for p, tr in circuit.traces.items():
            u, d = tr["u"], tr["dudt"]
            last = u[a + N - 1] + eps * d[a + N - 1]
            if clip:
                last = np.clip(last, 0.0, 1.0)
            traj[p] = np.concatenate([u[a:a + N], last[None]])
        phases.append(traj)
    return phases[0], (phases[1] if symmetric else None)


def _estimator(net, x, y, s0):
    """``est(sa, sb, scale)``: the EP estimate of :func:`neurosim.ep.contrast` at ``s0``
    (``sb`` at ``-beta`` when ``sb`` is not ``s0``)."""
    inputs = net.inputs_dict(x)
    targets = net.targets_dict(y, next(iter(inputs.values())).shape[0])

    def est(sa, sb, scale):
        return ep.contrast(net, inputs, s0, sa, sb, scale, targets, sb is not s0)
    return est


def _at(traj, k):
    return {p: v[k] for p, v in traj.items()}


def _curve(net, x, y, plus, minus, beta, truth):
    """Metrics of the update truncated after k = 1..N nudged steps against ``truth``."""
    s0 = _at(plus, 0)
    est = _estimator(net, x, y, s0)
    N = next(iter(plus.values())).shape[0] - 1
    keys = list(truth)
    rows, last = [], None
    for k in range(1, N + 1):
        if minus is None:
            g = est(_at(plus, k), s0, 1.0 / beta)
        else:
            g = est(_at(plus, k), _at(minus, k), 1.0 / (2.0 * beta))
        rows.append(fidelity.compare(g, truth))
        last = g
    out = {"k": np.arange(1, N + 1)}
    for m in fidelity.METRICS:
        out[m] = np.array([r[m] for r in rows])
    out["per_param"] = {key: {m: np.array([r["per_param"][key][m] for r in rows])
                              for m in fidelity.METRICS} for key in keys}
    return out, last


def _rel(a, b):
    num = np.sqrt(sum(np.sum((np.asarray(a[k]) - np.asarray(b[k])) ** 2) for k in b))
    den = np.sqrt(sum(np.sum(np.asarray(b[k]) ** 2) for k in b))
    return float(num / den) if den > 0 else float(num)


def run_fidelity(net, x, y, *, engine="reference", device="runtime", beta=0.5,
                 variant="symmetric", eps=0.5, free_steps=20, nudge_steps=4, clip=True, seed=0,
                 build_dir=None):
    """One EP step of ``engine`` on ``(x, y)`` against RBP's implicit gradient.

    Returns a dict: ``update`` (the engine's gradient estimate), ``rbp``, ``metrics``
    (:func:`neurosim.fidelity.compare`), ``curve`` (per-k arrays ``k``, the metrics and
    ``per_param``), ``plus`` / ``minus`` (nudged trajectories ``pop -> (N + 1, batch, n)``),
    ``beta`` (signed, for random_sign), ``free_distance`` (``max |s_F - s*|``, how far the
    free phase is from the fixed point RBP linearises at), timings, and for ``brian2-rate``
    ``reference_rel_diff`` (its update against :func:`neurosim.ep.gradient`).
    """
    if engine not in ENGINES:
        raise FidelityError("--engine must be one of %s, got %r" % (list(ENGINES), engine))
    if variant not in ep.VARIANTS:
        raise FidelityError("--variant must be one of %s, got %r" % (list(ep.VARIANTS), variant))
    checks.nonzero("--beta", beta, error=FidelityError)
    checks.integer("--free-steps", free_steps, 0, error=FidelityError)
    checks.integer("--nudge-steps", nudge_steps, 1, error=FidelityError)
    sign = 1.0
    if variant == "random_sign":         # drawn here, so both engines see the same sign
        sign = sign_of(seed)
    b = float(beta) * sign
    symmetric = variant == "symmetric"
    v = "symmetric" if symmetric else "one_sided"
    kw = dict(eps=eps, free_steps=int(free_steps), nudge_steps=int(nudge_steps), clip=clip)
    res = {"engine": engine, "device": device if engine == "brian2-rate" else None,
           "variant": variant, "beta": b, "beta_sign": sign, **kw}
    t0 = time.perf_counter()
    if engine == "reference":
        update = ep.gradient(net, x, y, b, variant=v, **kw)
        res["engine_seconds"] = time.perf_counter() - t0
        plus, minus = _reference_states(net, x, y, b, symmetric=symmetric, **kw)
    else:
        from ..brian import CircuitError, compile as compile_circuit
        try:
            circuit = compile_circuit(net, model="rate", device=device, eps=eps, clip=clip,
                                      build_dir=build_dir)
            update = circuit.ep_update(x, y, b, int(free_steps), int(nudge_steps), variant=v)
        except CircuitError as e:
            raise FidelityError("--engine brian2-rate --device %s: %s" % (device, e)) from None
        res["engine_seconds"] = time.perf_counter() - t0
        plus, minus = _circuit_states(circuit, eps, free_steps, nudge_steps, clip, symmetric)
        res["reference_rel_diff"] = _rel(update, ep.gradient(net, x, y, b, variant=v, **kw))
    t1 = time.perf_counter()
    s_star = free_state(net, x, eps=eps, tol=1e-12, clip=clip)
    truth = rbp.gradient(net, x, y, method="implicit", eps=eps, state=s_star, clip=clip)
    res["rbp_seconds"] = time.perf_counter() - t1
    res["free_distance"] = max(float(np.max(np.abs(plus[p][0] - s_star[p])))
                               for p in net.state_pops)
    res["metrics"] = fidelity.compare(update, truth)
    with blas_threads(1):   # vector products: a second BLAS thread only waits on a busy machine
        res["curve"], last = _curve(net, x, y, plus, minus, b, truth)
    # the curve is rebuilt from the recorded states: its last point must be the update itself
    res["curve_rel_diff"] = _rel(last, update)
    res.update(update=update, rbp=truth, plus=plus, minus=minus, net=net,
               seconds=time.perf_counter() - t0)
    return res


# -- output -----------------------------------------------------------------------------------
def _ks(n):
    ks = {1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000}
    return sorted(k for k in ks | {n} if k <= n)


def report(res, info=None):
    """The printed report: settings, the metrics table and the curve over the nudged phase."""
    info = info or {}
    net, m = res["net"], res["metrics"]
    eng = res["engine"] + (" (%s)" % res["device"] if res["device"] else "")
    lines = ["neurosim fidelity: the %s engine's EP update vs RBP's gradient (implicit, at the "
             "converged free state)" % eng]
    where = ""
    if info.get("dataset"):
        where = "; data: %s test split, batch %d (seed %d)" % (
            info["dataset"], res["plus"][net.state_pops[0]].shape[1], info.get("seed", 0))
    lines.append("network %s%s" % (net, where))
    if info.get("weights"):
        lines.append("weights from %s" % info["weights"])
    beta = "%g" % res["beta"]
    if res["variant"] == "random_sign":
        beta += " (sign drawn: %s)" % ("+" if res["beta_sign"] > 0 else "-")
    lines.append("%s EP, beta=%s; Euler eps=%g, %d free + %d nudged steps%s, clip %s"
                 % (res["variant"], beta, res["eps"], res["free_steps"], res["nudge_steps"],
                    " per sign" if res["variant"] == "symmetric" else "",
                    "on" if res["clip"] else "off"))
    if info.get("solver") == "block":
        lines.append("(the circuit's engine.solver is 'block', which has no Euler time axis: "
                     "these are Euler steps of engine.eps)")
    lines.append("free phase: max |s - s*| after %d steps = %.3e (s*: the fixed point RBP "
                 "linearises at)" % (res["free_steps"], res["free_distance"]))
    if "reference_rel_diff" in res:
        lines.append("circuit update vs the reference engine (ep.gradient): relative "
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
    lines.append("Over the nudged phase (the update truncated after k nudged steps):")
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


def plot(res, path):
    """PNG: cosine and relative error of the truncated update vs k, overall and per param."""
    plt, fig, (a, b) = plots.figure(2)
    c = res["curve"]
    k = c["k"]
    style = ".-" if len(k) <= 40 else "-"
    for key, r in c["per_param"].items():
        a.plot(k, r["cosine"], style, lw=1, label=key)
        b.semilogy(k, r["rel_error"], style, lw=1, label=key)
    a.plot(k, c["cosine"], "k" + style, lw=2, label="all", zorder=5)
    b.semilogy(k, c["rel_error"], "k" + style, lw=2, label="all", zorder=5)
    title = "%s, %s beta=%g" % (res["engine"], res["variant"], res["beta"])
    a.set(xlabel="nudged steps k (eps=%g)" % res["eps"], ylabel="cosine to RBP",
          title="cosine vs k (%s)" % title)
    b.set(xlabel="nudged steps k (eps=%g)" % res["eps"], ylabel="|g_k - g_rbp| / |g_rbp|",
          title="relative error vs k")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    return plots.save(plt, fig, path)


def _metrics_tree(m):
    out = {x: m[x] for x in fidelity.METRICS}
    out["per_param"] = {k: dict(v) for k, v in m["per_param"].items()}
    return out


def save_h5(res, path, circuit_text=None, info=None):
    """``fidelity.h5`` (:func:`neurosim.traces.write`): the nudged-phase states as reports
    (time in tau, starting after the free phase), the phases, the gradients
    ``{engine: update, "rbp": rbp}``, the metrics and the per-k arrays."""
    net, eps, F, N = res["net"], res["eps"], res["free_steps"], res["nudge_steps"]
    parts = [res["plus"]] + ([{p: v[1:] for p, v in res["minus"].items()}]
                             if res["minus"] is not None else [])
    reports = {p: {"data": np.concatenate([part[p] for part in parts]), "start": F * eps,
                   "variable": "s", "units": "dimensionless"} for p in net.state_pops}
    phases = [{"name": "free", "start": 0.0, "stop": F * eps, "beta": 0.0},
              {"name": "nudged+" if res["minus"] is not None else "nudged",
               "start": F * eps, "stop": (F + N) * eps, "beta": res["beta"]}]
    if res["minus"] is not None:
        phases.append({"name": "nudged-", "start": (F + N) * eps, "stop": (F + 2 * N) * eps,
                       "beta": -res["beta"]})
    c = res["curve"]
    fid = {"overall": _metrics_tree(res["metrics"]),
           "curve": {"k": c["k"], **{m: c[m] for m in fidelity.METRICS},
                     "per_param": c["per_param"]},
           "free_distance": res["free_distance"], "curve_rel_diff": res["curve_rel_diff"]}
    if "reference_rel_diff" in res:
        fid["reference_rel_diff"] = res["reference_rel_diff"]
    attrs = {"command": "fidelity", "engine": res["engine"], "variant": res["variant"],
             "beta": res["beta"], "eps": eps, "free_steps": F, "nudge_steps": N,
             "clip": int(res["clip"]), "seconds": res["seconds"]}
    if res["device"]:
        attrs["device"] = res["device"]
    for k in ("dataset", "seed", "weights"):
        if info and info.get(k) is not None:
            attrs[k] = info[k]
    if info and info.get("index") is not None:
        attrs["test_index"] = np.asarray(info["index"], dtype=np.int64)
    return traces.write(path, reports=reports, phases=phases,
                        gradients={res["engine"]: res["update"], "rbp": res["rbp"]},
                        fidelity=fid, circuit=circuit_text, attrs=attrs, dt=eps,
                        time_units="tau")


def summary(res, out=None, files=None):
    """The one-line JSON summary (plain floats)."""
    m, c = res["metrics"], res["curve"]
    s = {"engine": res["engine"], "device": res["device"], "variant": res["variant"],
         "beta": res["beta"], "eps": res["eps"], "free_steps": res["free_steps"],
         "nudge_steps": res["nudge_steps"], "clip": res["clip"],
         "batch": int(res["plus"][res["net"].state_pops[0]].shape[1]),
         "cosine": m["cosine"], "rel_error": m["rel_error"], "rel_rmse": m["rel_rmse"],
         "sign_agreement": m["sign_agreement"],
         "per_param_cosine": {k: v["cosine"] for k, v in m["per_param"].items()},
         "per_param_rel_error": {k: v["rel_error"] for k, v in m["per_param"].items()},
         "curve_cosine": [float(v) for v in c["cosine"]],
         "curve_rel_error": [float(v) for v in c["rel_error"]],
         "best_k": int(np.argmax(c["cosine"])) + 1,
         "free_distance": res["free_distance"], "curve_rel_diff": res["curve_rel_diff"],
         "engine_seconds": round(res["engine_seconds"], 3),
         "rbp_seconds": round(res["rbp_seconds"], 3), "seconds": round(res["seconds"], 3)}
    if "reference_rel_diff" in res:
        s["reference_rel_diff"] = res["reference_rel_diff"]
    if out is not None:
        s["out"] = out
    s.update(files or {})
    return s


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


def main(args):
    """``neurosim fidelity``: run, print the report, write HDF5/PNG/circuit, optionally JSON."""
    if args.engine not in ENGINES:
        raise FidelityError("--engine must be one of %s, got %r" % (list(ENGINES), args.engine))
    if args.engine != "brian2-spiking" and (args.sweep or args.spike_seeds is not None):
        raise FidelityError("--sweep and --spike-seeds apply to --engine brian2-spiking only")
    t0 = time.perf_counter()
    prep = prepare(args.circuit, args.overrides, batch=args.batch, seed=args.seed,
                   weights=args.weights)
    if args.engine == "brian2-spiking":
        return _main_spiking(args, prep, t0)
    circ = prep["circuit"]
    e, L = circ.engine, circ.learning
    res = run_fidelity(prep["net"], prep["x"], prep["y"], engine=args.engine,
                       device=args.device,
                       beta=L.beta if args.beta is None else args.beta,
                       variant=args.variant or L.variant, eps=e.eps,
                       free_steps=e.free_steps if args.free_steps is None else args.free_steps,
                       nudge_steps=e.nudge_steps if args.nudge_steps is None else args.nudge_steps,
                       clip=e.clip, seed=args.seed)
    res["seconds"] = time.perf_counter() - t0
    info = {"dataset": prep["dataset"], "seed": args.seed, "weights": prep["weights"],
            "index": prep["index"], "solver": e.solver}
    out = _out_dir(args.out)
    resolved = config.to_toml(circ)
    atomic.write_text(os.path.join(out, "circuit.toml"), resolved)
    files = {"h5": save_h5(res, os.path.join(out, "fidelity.h5"), resolved, info)}
    if not args.no_plot:
        files["png"] = plot(res, os.path.join(out, "fidelity_curve.png"))
    print(report(res, info))
    print("wrote %s" % ", ".join(files.values()))
    if args.json:
        print(jsontext.dumps(summary(res, out, files)))
    return 0


def _main_spiking(args, prep, t0):
    """``--engine brian2-spiking``: the spike-based update over settings and spike seeds
    against the rate circuit and RBP (:mod:`neurosim.spiking_fidelity`)."""
    from . import spiking_fidelity as sf
    circ = prep["circuit"]
    e, L = circ.engine, circ.learning
    nudge = e.nudge_steps if args.nudge_steps is None else args.nudge_steps
    free = e.free_steps if args.free_steps is None else args.free_steps
    beta = L.beta if args.beta is None else args.beta
    variant = args.variant or L.variant
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
                               os.path.join(out, "spiking_fidelity.png"))
        files["raster"] = res["last"].raster(os.path.join(out, "raster.png"))
    print()
    print(sf.report(res["rows"]))
    print("\nfewest-spike setting with worst-seed cosine >= 0.99 vs rate and >= 0.95 vs RBP: %s"
          % (sf.first_reaching(res["rows"]),))
    print("wrote %s (%.1f s)" % (", ".join(files.values()), time.perf_counter() - t0))
    if args.json:
        print(jsontext.dumps(sf.summary(res, out, files)))
    return 0


__all__ = ["run_fidelity", "prepare", "load_weights", "report", "plot", "save_h5", "summary",
           "main", "ENGINES", "FidelityError"]
