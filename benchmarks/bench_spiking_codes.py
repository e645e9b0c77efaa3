"""Which spike code gives a faithful update, and at how many spikes: the study behind the
defaults of ``ns.brian.compile(net, model="spiking")`` (issue 25, item 3).

On random 20-30-5 networks (clipped hard sigmoid, states in [0, 1]; and logistic), random
inputs in [0, 1], batch 4, symmetric EP with 1000 + 1000 + 1000 steps of 1 ms (tau 10 ms),
each spike code's update from the Brian2 spiking circuit (runtime device) is compared with the
clip-aware RBP gradient at the exact free fixed point and with the Brian2 rate circuit's update
at the same settings:

* the frontier at beta = ``--frontier-beta``: cosine against spikes (events) per example, the
  budget set by ``max_rate`` (Poisson, Poisson with common random numbers, integrate-and-fire,
  LIF) or by ``delta`` (sigma-delta);
* beta: each code at its default budget over ``--betas``.

    python benchmarks/bench_spiking_codes.py            # about 10 min on 2 cores

Saves ``benchmarks/results/spiking_codes.json`` (every row, the summary, the defaults' figures)
and draws ``docs/spiking_frontier.png``; prints the tables (mean and worst over the networks)."""
import argparse

import numpy as np

import neurosim as ns
from neurosim.brian.spiking import trace_constants
from neurosim.fixed_point import free_fixed_point

import results
import tables

#: code -> (circuit arguments, budget name, budgets); the first budget is the code's default
CODES = {
    "poisson": ({"neuron": "poisson"}, "max_rate", [1000.0, 500.0, 250.0, 125.0]),
    "poisson-common": ({"neuron": "poisson", "noise": "common"}, "max_rate",
                       [1000.0, 500.0, 250.0, 125.0]),
    "lif": ({"neuron": "lif"}, "max_rate", [1000.0, 500.0, 250.0, 125.0]),
    "if": ({"neuron": "if"}, "max_rate", [1000.0, 500.0, 250.0, 125.0]),
    "sigma_delta": ({"neuron": "sigma_delta"}, "delta", [1e-4, 1e-2, 3e-3, 1e-3, 3e-4]),
}
ACTIVATIONS = ("hard_sigmoid", "logistic")
FORMATS = {"cos_rbp_mean": "{:.4f}", "cos_rbp_worst": "{:.4f}", "cos_rate_mean": "{:.4f}",
           "cos_rate_worst": "{:.4f}", "events_mean": "{:,.0f}"}


def problem(activation, seed):
    """A random 20-30-5 network, a batch of 4, and its RBP gradient at the exact fixed point."""
    net = ns.layered([20, 30, 5], activation=activation, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 1, (4, 20)), rng.uniform(0, 1, (4, 5))
    clip = activation == "hard_sigmoid"
    s0 = free_fixed_point(net, x, clip=clip, eps=0.1, tol=1e-12).state
    rbp = ns.rbp.gradient(net, x, y, method="implicit", eps=0.1, state=s0, clip=clip)
    return net, x, y, clip, rbp


def measure(net, x, y, clip, rbp, rate, beta, steps, seed, **circuit):
    """One spiking update: cosines to RBP and to the rate circuit, events per example."""
    tf, ts = trace_constants(steps, 0.1)
    c = ns.brian.compile(net, model="spiking", clip=clip, seed=seed, record=False, eps=0.1,
                         tau_fast=tf, tau_slow=ts, **circuit)
    g = c.ep_update(x, y, beta=beta, free_steps=steps, nudge_steps=steps, variant="symmetric")
    n = x.shape[0]
    return {"cos_rbp": ns.fidelity.compare(g, rbp)["cosine"],
            "cos_rate": ns.fidelity.compare(g, rate)["cosine"],
            "events": sum(c.stats["spikes"].values()) / n,
            "delta_steps": (sum(c.stats["delta_steps"].values()) / n
                            if "delta_steps" in c.stats else None)}


def summarise(rows, keys):
    """Mean and worst of each row group over the networks."""
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for k, rs in groups.items():
        s = dict(zip(keys, k))
        for m in ("cos_rbp", "cos_rate", "rate_rbp"):
            v = [r[m] for r in rs]
            s[m + "_mean"], s[m + "_worst"] = float(np.mean(v)), float(np.min(v))
        s["events_mean"] = float(np.mean([r["events"] for r in rs]))
        d = [r["delta_steps"] for r in rs if r["delta_steps"] is not None]
        s["delta_steps_mean"] = float(np.mean(d)) if d else None
        s["networks"] = len(rs)
        out.append(s)
    return out


def tables_spec(frontier_beta):
    """How ``benchmarks/tables.py`` renders the study: four tables, per activation."""
    cols = [["code", "code"], ["budget", ["budget_name", "budget"], "{} {:g}"],
            ["beta", "beta", "{:g}"],
            ["cos RBP mean / worst", ["cos_rbp_mean", "cos_rbp_worst"], "{:.4f}"],
            ["cos rate circuit mean / worst", ["cos_rate_mean", "cos_rate_worst"], "{:.4f}"],
            ["rate circuit vs RBP", "rate_rbp_mean", "{:.4f}"],
            ["events / example", "events_mean", "{:,.0f}"]]
    return [{"id": "%s_%s" % (table, act), "rows": "summary", "columns": cols,
             "where": {"activation": act, "table": table}, "title": "%s, %s" % (
                 act.replace("_", " "), "each code at its default budget, over beta"
                 if table == "beta" else "beta %g, over the budget" % frontier_beta)}
            for act in ACTIVATIONS for table in ("beta", "frontier")]


def ordered(summary):
    """The summary rows in table order, each with its budget's name."""
    for s in summary:
        s["budget_name"] = CODES[s["code"]][1]
    return sorted(summary, key=lambda s: (ACTIVATIONS.index(s["activation"]), s["table"],
                                          list(CODES).index(s["code"]), -s["beta"],
                                          -s["events_mean"]))


def defaults(summary, beta):
    """The default code (sigma-delta at its default budget) at ``beta``, per activation."""
    return {s["activation"]: {k: s[k] for k in ("cos_rbp_mean", "cos_rbp_worst",
                                                "cos_rate_mean", "cos_rate_worst",
                                                "events_mean", "budget", "beta")}
            for s in summary if s["table"] == "frontier" and s["code"] == "sigma_delta"
            and s["budget"] == CODES["sigma_delta"][2][0] and s["beta"] == beta}


def plot(summary, beta, path):
    from neurosim.plots import figure, save
    plt, fig, axes = figure(2, width=5.2, height=4.0)
    for ax, act in zip(axes, ACTIVATIONS):
        rate = [s for s in summary if s["activation"] == act and s["table"] == "frontier"]
        for code, style in zip(CODES, ("o-", "s-", "^-", "v-", "D-")):
            pts = sorted((s["events_mean"], s["cos_rbp_mean"]) for s in rate if s["code"] == code)
            if pts:
                ax.plot(*zip(*pts), style, label=code)
        if rate:
            ax.axhline(rate[0]["rate_rbp_mean"], color="k", lw=0.8, ls=":",
                       label="rate circuit (no spikes)")
        ax.axhline(0.95, color="r", lw=0.8, ls="--", label="0.95")
        ax.set(xscale="log", xlabel="spikes (events) per example, three phases",
               ylabel="cosine to RBP (mean over %d networks)" % rate[0]["networks"],
               title="%s 20-30-5, symmetric EP, beta %g" % (act.replace("_", " "), beta),
               ylim=(-1.0, 1.03))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right", ncol=2)
    save(plt, fig, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="0,1,2", help="network seeds (study: 0,1,2)")
    ap.add_argument("--betas", default="0.3,0.1,0.03,0.01")
    ap.add_argument("--frontier-beta", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=1000, help="steps per phase")
    results.add_out_argument(ap, "spiking_codes")
    ap.add_argument("--figure", default="docs/spiking_frontier.png")
    ap.add_argument("--from-results", action="store_true",
                    help="no runs: redraw the figure and print the Markdown tables of --out")
    a = ap.parse_args()
    if a.from_results:
        result = results.load(a.out or "spiking_codes")
        plot(result["figures"]["summary"], a.frontier_beta, a.figure)
        print(tables.render_result(result, result["name"]))
        return
    rec = results.start("spiking_codes")
    seeds = [int(s) for s in a.nets.split(",")]
    betas = [float(b) for b in a.betas.split(",")]
    rows = []
    for act in ACTIVATIONS:
        for seed in seeds:
            net, x, y, clip, rbp = problem(act, seed)
            rates = {}
            for beta in sorted(set(betas) | {a.frontier_beta}):
                rates[beta] = ns.brian.compile(net, model="rate", eps=0.1, clip=clip).ep_update(
                    x, y, beta=beta, free_steps=a.steps, nudge_steps=a.steps,
                    variant="symmetric")
            runs = [("frontier", code, budget, a.frontier_beta)
                    for code, (_, _, budgets) in CODES.items() for budget in budgets]
            runs += [("beta", code, CODES[code][2][0], beta) for code in CODES
                     for beta in betas if beta != a.frontier_beta]
            for table, code, budget, beta in runs:
                kw, name, _ = CODES[code]
                r = measure(net, x, y, clip, rbp, rates[beta], beta, a.steps, seed,
                            **dict(kw, **{name: budget}))
                r.update(activation=act, net=seed, table=table, code=code, budget=budget,
                         budget_name=name, beta=beta,
                         rate_rbp=ns.fidelity.compare(rates[beta], rbp)["cosine"])
                rows.append(r)
                print("%-12s net %d %-8s %-14s %s=%-7g beta %-5g | RBP %.4f rate %.4f | "
                      "events/ex %8.0f" % (act, seed, table, code, name, budget, beta,
                                           r["cos_rbp"], r["cos_rate"], r["events"]),
                      flush=True)
    summary = summarise(rows, ("activation", "table", "code", "budget", "beta"))
    # the default budgets appear in both tables: the beta table lists them at every beta
    for s in summary:
        if s["table"] == "frontier" and s["budget"] == CODES[s["code"]][2][0]:
            summary.append(dict(s, table="beta"))
    print("\nmean / worst over networks %s; %d + %d + %d steps of 1 ms" % (
        seeds, a.steps, a.steps, a.steps))
    print("%-12s %-6s %-14s %9s %6s | %-13s | %-13s | %-13s | %9s" % (
        "activation", "table", "code", "budget", "beta", "cos RBP", "cos rate",
        "rate vs RBP", "events/ex"))
    for s in sorted(summary, key=lambda s: (s["activation"], s["table"], s["code"],
                                            s["beta"], -s["events_mean"])):
        print("%-12s %-6s %-14s %9g %6g | %.4f %.4f | %.4f %.4f | %.4f %.4f | %9.0f" % (
            s["activation"], s["table"], s["code"], s["budget"], s["beta"],
            s["cos_rbp_mean"], s["cos_rbp_worst"], s["cos_rate_mean"], s["cos_rate_worst"],
            s["rate_rbp_mean"], s["rate_rbp_worst"], s["events_mean"]))
    summary = ordered(summary)
    settings = {"network": "20-30-5", "batch": 4, "steps_per_phase": a.steps, "dt_ms": 1.0,
                "tau_ms": 10.0, "variant": "symmetric", "network_seeds": seeds,
                "frontier_beta": a.frontier_beta}
    path = rec.save({"defaults": defaults(summary, a.frontier_beta), "summary": summary,
                     "rows": rows}, tables_spec(a.frontier_beta), FORMATS, settings, path=a.out)
    plot(summary, a.frontier_beta, a.figure)
    result = results.load(path)
    print(tables.render_result(result, result["name"]))
    print("figure:", a.figure)


if __name__ == "__main__":
    main()
