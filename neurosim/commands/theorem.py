"""The seed result shown: during EP's nudged phase each neuron's temporal derivative equals
the error derivative of RBP's side network (Scellier & Bengio 2019; docs/maths.md section 5).

:func:`run_theorem` relaxes an embedded default network on a batch of digits, runs the
discrete Almeida–Pineda side network and EP's second phase for several beta with the same
Euler step, and measures how ``u_k`` matches ``-Sbar_k`` and ``P_k`` matches ``Thetabar_k``,
how EP's bias scales with beta, and how every gradient method agrees.
"""
from __future__ import annotations

import os
import time

import networkx as nx
import numpy as np

from .. import ep, fidelity, jsontext, plots, rbp, traces, validity
from ..network import Network
from ..errors import ConfigurationError
from ..relax import free_state


def default_network(seed=0, n_in=64):
    """Logistic x(64) -> h1(32) -> h2(24) -> y(10) with a skip projection x -> h2."""
    g = nx.DiGraph()
    for name, size, role in [("x", n_in, "input"), ("h1", 32, "hidden"), ("h2", 24, "hidden"),
                             ("y", 10, "output")]:
        g.add_node(name, size=size, role=role)
    g.add_edges_from([("x", "h1"), ("h1", "h2"), ("h2", "y"), ("x", "h2")])
    return Network.from_graph(g, activation="logistic", dynamics="energy", seed=seed)


def default_batch(batch=16, seed=0):
    """A batch of scikit-learn's 8x8 digits in [0, 1] with one-hot targets, or synthetic data
    of the same shape when scikit-learn is absent. Returns ``(x, y, source)``."""
    rng = np.random.default_rng(seed)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        x = rng.uniform(0.0, 1.0, (batch, 64))
        return x, np.eye(10)[rng.integers(0, 10, batch)], "synthetic"
    d = load_digits()
    idx = rng.choice(len(d.target), size=batch, replace=False)
    return d.data[idx] / 16.0, np.eye(10)[d.target[idx]], "sklearn digits"


def from_circuit(path, overrides=(), batch=16, seed=0):
    """The network, a batch ``(x, y)`` of its dataset's test split and ``engine.eps`` of a
    circuit file (for ``neurosim theorem CIRCUIT``)."""
    from .. import config
    circuit, _ = config.load(path, overrides)
    if circuit.network.dynamics != "energy":
        raise ConfigurationError("network.dynamics: the theorem needs 'energy' dynamics "
                                 "(vector-field EP does not equal RBP), got %r"
                                 % circuit.network.dynamics)
    net = config.build_network(circuit.network)
    data = config.build_dataset(circuit.dataset, "float64")
    config.check_fit(net, data)
    net = net.copy(dtype="float64")
    idx = np.random.default_rng(seed).choice(data.n_test, size=min(batch, data.n_test),
                                             replace=False)
    return net, (data.x_test[idx], data.y_test[idx]), circuit.engine.eps


def _slope(betas, errors):
    return float(np.polyfit(np.log(betas), np.log(errors), 1)[0])


def run_theorem(seed=0, batch=16, eps=0.1, steps=200, betas=(1e-2, 1e-3, 1e-4),
                fit_betas=(0.01, 0.005, 0.0025, 0.00125, 0.000625), ep_beta=1e-3, net=None, data=None):
    """Run the theorem experiment; returns a dict of results (arrays included)."""
    t0 = time.perf_counter()
    net = default_network(seed) if net is None else net
    x, y, source = default_batch(batch, seed) if data is None else (*data, "circuit dataset")
    s0 = free_state(net, x, eps=eps, tol=1e-12)
    side = rbp.side_network(net, x, y, eps, steps, state=s0)
    minus_s = fidelity.negate(side.S)
    per_beta = []
    for beta in betas:
        sp = ep.second_phase(net, x, y, beta, eps, steps, state=s0)
        tu = fidelity.time_resolved(sp.u, minus_s)
        tp = fidelity.time_resolved(sp.P[1:], side.Theta[1:])   # P_0 = Theta_0 = 0
        per_beta.append({"beta": beta, "u": tu, "P": tp, "traces": sp})
    implicit, stats = rbp.gradient(net, x, y, method="implicit", solver="dense", eps=eps, state=s0,
                                   return_stats=True)
    grads = {
        "rbp implicit (dense)": implicit,
        "rbp implicit (CG)": rbp.gradient(net, x, y, solver="cg", eps=eps, state=s0),
        "rbp implicit (Neumann)": rbp.gradient(net, x, y, solver="neumann", eps=eps, state=s0),
        "rbp Almeida-Pineda (discrete)": rbp.gradient(net, x, y, method="almeida_pineda", eps=eps,
                                                      state=s0),
        "rbp Almeida-Pineda (continuous)": rbp.gradient(net, x, y, method="continuous", eps=eps,
                                                        state=s0),
        "bptt (Euler free phase)": rbp.gradient(net, x, y, method="bptt", eps=eps),
        "ep one-sided (beta=%g)" % ep_beta: ep.gradient(net, x, y, ep_beta, eps=eps, state=s0),
        "ep symmetric (beta=%g)" % ep_beta: ep.gradient(net, x, y, ep_beta, variant="symmetric",
                                                        eps=eps, state=s0),
    }
    agreement = {k: fidelity.compare(g, implicit) for k, g in grads.items()}
    fit = {"betas": list(fit_betas), "one_sided": [], "symmetric": []}
    for b in fit_betas:
        for variant in ("one_sided", "symmetric"):
            g = ep.gradient(net, x, y, b, variant=variant, eps=eps, state=s0)
            fit[variant].append(fidelity.compare(g, implicit)["rel_error"])
    fit["slope_one_sided"] = _slope(fit_betas, fit["one_sided"])
    fit["slope_symmetric"] = _slope(fit_betas, fit["symmetric"])
    return {"net": net, "x": x, "y": y, "source": source, "eps": eps, "steps": steps, "s0": s0,
            "side": side, "per_beta": per_beta, "gradients": grads, "agreement": agreement,
            "fit": fit, "spectral_radius": stats.spectral_radius, "ep_beta": ep_beta,
            "seconds": time.perf_counter() - t0}


def _worst(tr):
    v = tr["valid"]
    return float(np.min(tr["cosine"][v])), float(np.max(tr["rel_error"][v]))


def summary(res):
    """The one-line JSON summary (plain floats)."""
    small = min(res["per_beta"], key=lambda r: r["beta"])
    cu, eu = _worst(small["u"])
    cp, ep_ = _worst(small["P"])
    key = "ep one-sided (beta=%g)" % res["ep_beta"]
    out = {"beta_min": small["beta"], "worst_cosine_u": cu, "worst_rel_error_u": eu,
           "worst_cosine_P": cp, "worst_rel_error_P": ep_,
           "u0_error": float(small["u"]["rel_error"][0]),
           "ep_vs_rbp_cosine": res["agreement"][key]["cosine"],
           "ep_vs_rbp_rel_error": res["agreement"][key]["rel_error"],
           "slope_one_sided": res["fit"]["slope_one_sided"],
           "slope_symmetric": res["fit"]["slope_symmetric"],
           "spectral_radius": res["spectral_radius"],
           "methods_rel_error": {k: a["rel_error"] for k, a in res["agreement"].items()},
           "data": res["source"], "seconds": round(res["seconds"], 3)}
    for k in ("png", "h5"):
        if k in res:
            out[k] = res[k]
    return out


def report(res):
    """The printed report: tables over k, bias slopes and gradient agreement."""
    lines = []
    net = res["net"]
    lines.append("neurosim theorem: EP's nudged-phase temporal derivatives vs RBP's side network")
    lines.append("network %s; data: %s, batch %d; eps=%g; %d steps; spectral radius of dG/ds %.4f"
                 % (net, res["source"], res["x"].shape[0], res["eps"], res["steps"],
                    res["spectral_radius"]))
    small = min(res["per_beta"], key=lambda r: r["beta"])
    lines.append("")
    lines.append("Over k, beta=%g:  u_k vs -Sbar_k (neurons)  |  P_k vs Thetabar_k (parameters)"
                 % small["beta"])
    lines.append("%6s %14s %12s %11s | %14s %12s" % ("k", "cosine", "rel error", "|Sbar_k|",
                                                       "cosine", "rel error"))
    ks = sorted({k for k in [0, 1, 2, 3, 5, 10, 20, 50, 100, 150, 200, 300, 500, 1000]
                 if k < res["steps"]} | {res["steps"] - 1})
    for k in ks:
        u = small["u"]
        row = "%6d %14.10f %12.3e %11.3e |" % (k, u["cosine"][k], u["rel_error"][k], u["norm"][k])
        if k >= 1:
            p = small["P"]
            row += " %14.10f %12.3e" % (p["cosine"][k - 1], p["rel_error"][k - 1])
        else:
            row += " %14s %12s" % ("(P_0 = 0)", "")
        if not u["valid"][k]:
            row += "   (|Sbar_k| < 1e-4 |Sbar_0|: rounding dominates)"
        lines.append(row)
    lines.append("")
    lines.append("Worst over the steps where |Sbar_k| > 1e-4 |Sbar_0|, per beta:")
    lines.append("%10s %14s %12s %12s | %14s %12s" % ("beta", "cos(u,-S)", "rel err", "err/beta",
                                                       "cos(P,Theta)", "rel err"))
    for r in res["per_beta"]:
        cu, eu = _worst(r["u"])
        cp, epp = _worst(r["P"])
        lines.append("%10g %14.10f %12.3e %12.2f | %14.10f %12.3e" % (r["beta"], cu, eu,
                                                                      eu / r["beta"], cp, epp))
    fit = res["fit"]
    lines.append("")
    lines.append("EP bias vs beta (relative error to the implicit RBP gradient):")
    lines.append("%10s %14s %14s" % ("beta", "one-sided", "symmetric"))
    for b, e1, e2 in zip(fit["betas"], fit["one_sided"], fit["symmetric"]):
        lines.append("%10g %14.3e %14.3e" % (b, e1, e2))
    lines.append("log-log slope: one-sided %.3f (expected 1), symmetric %.3f (expected 2)"
                 % (fit["slope_one_sided"], fit["slope_symmetric"]))
    lines.append("")
    lines.append("Gradient agreement with the implicit RBP gradient (dense solve):")
    lines.append("%-34s %14s %12s" % ("method", "cosine", "rel error"))
    for k, a in res["agreement"].items():
        lines.append("%-34s %14.10f %12.3e" % (k, a["cosine"], a["rel_error"]))
    lines.append("")
    lines.append("finished in %.1f s" % res["seconds"])
    return "\n".join(lines)


#: the two sides of the theorem, in words (legends and labels of :func:`plot`)
SBAR = ("$-\\bar S_k$: RBP side network's error derivative\n"
        "($\\partial C/\\partial s$ carried back k steps)")
U = ("$u_k = (s_{k+1} - s_k)\\,/\\,(\\beta\\,\\epsilon)$: EP's temporal derivative\n"
     "in the nudged phase")


def plot(res, path, circuit=None):
    """PNG: a few neurons' u_k over -Sbar_k; error vs k per beta; EP bias vs beta. Axes and
    legends say in words what u_k and Sbar_k are; the title names the network (``circuit``,
    else the embedded default) and the spectral radius, flagged in red where it is 1 or more
    (:func:`neurosim.validity.spectral_flag`)."""
    from matplotlib.lines import Line2D
    plt, fig, axes = plots.figure(3, width=16 / 3, height=5.0)
    side, eps = res["side"], res["eps"]
    k = np.arange(res["steps"])
    largest = max(res["per_beta"], key=lambda r: r["beta"])
    net = res["net"]
    # the population the cost acts on (a softmax readout's is the hidden layer it reads)
    out = net.outputs[0] if net.readout == "state" else net.readout_terms[0].source
    hid = [p for p in net.state_pops if p != out][0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    top = np.argsort(-np.abs(side.S[hid][:, 0, :]).max(axis=0))
    units = []
    for i, (pop, unit) in enumerate([(out, 0), (out, 1), (hid, int(top[0])), (hid, int(top[1]))]):
        c = colors[i % len(colors)]
        axes[0].plot(k, -side.S[pop][:, 0, unit], color=c, lw=2.5, alpha=0.45)
        axes[0].plot(k, largest["traces"].u[pop][:, 0, unit], "--", color=c, lw=1.2)
        units.append(Line2D([], [], color=c, lw=2, label="unit %s[%d]" % (pop, unit)))
    style = [Line2D([], [], color="0.3", lw=2.5, alpha=0.45, label=SBAR),
             Line2D([], [], color="0.3", lw=1.2, ls="--",
                    label=U.replace("nudged phase", "nudged phase, beta=%g" % largest["beta"]))]
    axes[0].add_artist(axes[0].legend(handles=units, fontsize=7, loc="upper right"))
    axes[0].legend(handles=style, fontsize=8.5, loc="upper left", bbox_to_anchor=(-0.05, -0.14),
                   frameon=False)
    axes[0].set(xlabel="step k of the nudged phase (eps=%g)" % eps,
                ylabel="value (first example of the batch)",
                title="per unit: EP's $u_k$ (dashed) on RBP's $-\\bar S_k$ (wide)")
    for r in res["per_beta"]:
        e = np.where(r["u"]["valid"], r["u"]["rel_error"], np.nan)
        axes[1].semilogy(k, e, label="beta=%g" % r["beta"])
    axes[1].set(xlabel="step k of the nudged phase",
                ylabel=r"$|u_k + \bar S_k|\,/\,|\bar S_k|$  (log scale)",
                title="theorem error over k: EP's $u_k$ vs RBP's $-\\bar S_k$\n"
                      "(all units; shrinks like beta)")
    axes[1].legend(fontsize=8)
    fit = res["fit"]
    axes[2].loglog(fit["betas"], fit["one_sided"], "o-",
                   label="one-sided EP (slope %.2f)" % fit["slope_one_sided"])
    axes[2].loglog(fit["betas"], fit["symmetric"], "s-",
                   label="symmetric EP (slope %.2f)" % fit["slope_symmetric"])
    axes[2].set(xlabel="beta (nudge strength)",
                ylabel="|EP gradient - RBP gradient| / |RBP gradient|",
                title="EP's bias vs beta\n(expected slopes: 1 one-sided, 2 symmetric)")
    axes[2].legend(fontsize=8)
    name = circuit or "the embedded default network"
    fig.suptitle("Theorem (Scellier & Bengio 2019): in EP's nudged phase, $u_k = -\\bar S_k$ "
                 "as beta \u2192 0 \u2014 %s, computed by neurosim.ep and neurosim.rbp (numpy)\n"
                 "%s; %s; spectral radius of dG/ds %.4f"
                 % (name, net, res["source"], res["spectral_radius"] or float("nan")),
                 fontsize=10)
    flag = validity.spectral_flag(res["spectral_radius"])
    plots.flag_figure(fig, [flag] if flag else [])
    return plots.save(plt, fig, path)


TRACE_METRICS = ("cosine", "rel_error", "rel_rmse", "sign_agreement", "valid")


def save_h5(res, path):
    """``theorem.h5``, a neurosim trace file (:func:`neurosim.traces.write`; read back with
    :func:`neurosim.traces.load`, shown by ``neurosim traces inspect``):

    * ``/weights/<param>``: the network; ``/gradients/<method>/<param>``: every gradient;
    * ``/fidelity``: spectral radius, bias slopes and ``agreement/<method>`` (each method
      against the implicit RBP gradient);
    * ``/data/{x, y}``, ``/free_state/<pop>``;
    * ``/side_network/S/<pop>`` ``(steps, batch, n)`` and ``/side_network/Theta/<param>``
      ``(steps, ...)``;
    * ``/second_phase/<i>/`` per beta (attribute and dataset ``beta``): ``u/<pop>``,
      ``states/<pop>``, ``P/<param>`` and ``fidelity/{u, P}/<metric>`` over k;
    * ``/bias_fit/{betas, one_sided, symmetric}``;
    * root attributes ``command``, ``eps``, ``steps``, ``data``, ``network``, ``ep_beta``.
    """
    net, side = res["net"], res["side"]

    def stacked(series):
        return {k: np.stack([t[k] for t in series]) for k in net.params}

    second, node = {}, {}
    for i, r in enumerate(res["per_beta"]):
        tr = r["traces"]
        second[str(i)] = {"beta": r["beta"], "u": dict(tr.u), "states": dict(tr.states),
                          "P": stacked(tr.P),
                          "fidelity": {name: {m: r[name][m] for m in TRACE_METRICS}
                                       for name in ("u", "P")}}
        node[("second_phase", str(i))] = {"beta": r["beta"]}
    fit = res["fit"]
    groups = {"data": {"x": res["x"], "y": res["y"]},
              "free_state": dict(res["s0"]),
              "side_network": {"S": dict(side.S), "Theta": stacked(side.Theta)},
              "second_phase": second,
              "bias_fit": {k: np.array(fit[k]) for k in ("betas", "one_sided", "symmetric")}}
    fid = {"spectral_radius": float(res["spectral_radius"]),
           "slope_one_sided": fit["slope_one_sided"], "slope_symmetric": fit["slope_symmetric"],
           "agreement": {k: {m: a[m] for m in fidelity.METRICS} | {"per_param": a["per_param"]}
                         for k, a in res["agreement"].items()}}
    attrs = {"command": "theorem", "eps": res["eps"], "steps": res["steps"],
             "data": res["source"], "network": repr(net), "ep_beta": res["ep_beta"]}
    return traces.write(path, weights=dict(net.params), gradients=res["gradients"],
                        fidelity=fid, groups=groups, node_attrs=node, attrs=attrs,
                        dt=res["eps"], time_units="tau")


def main(args):
    """``neurosim theorem``: run, print the report, save PNG and HDF5, optionally JSON."""
    betas = tuple(args.betas)
    net, data, eps, name = None, None, args.eps, None
    if args.circuit is not None or args.overrides:
        from .. import config
        net, data, circuit_eps = from_circuit(args.circuit, args.overrides, args.batch, args.seed)
        eps = eps or circuit_eps
        name = "circuit %s" % config.load(args.circuit, args.overrides)[0].name
    res = run_theorem(seed=args.seed, batch=args.batch, eps=eps or 0.1, steps=args.steps,
                      betas=betas, net=net, data=data)
    out = args.out or os.path.join("runs", "theorem-%s" % time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    if not args.no_plot:
        res["png"] = plot(res, os.path.join(out, "theorem.png"), circuit=name)
    res["h5"] = save_h5(res, os.path.join(out, "theorem.h5"))
    print(report(res))
    print("wrote %s" % ", ".join(res[k] for k in ("png", "h5") if k in res))
    if args.json:
        print(jsontext.dumps(summary(res)))
    return 0
