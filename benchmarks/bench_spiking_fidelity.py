"""Fidelity of the spike-based EP update (issue 5): sweeps over the maximum rate, the
nudged-phase duration and the trace time constants of a Brian2 spiking circuit, giving the
cosine, relative error and sign agreement of its update vs the RBP gradient and vs the rate
circuit's update (same beta, phase lengths and Euler step), with the plot of how the error
falls with the number of spikes.

    python benchmarks/bench_spiking_fidelity.py [--quick] [--seeds 3] [--digits]
                                                [--out benchmarks/spiking_fidelity.png]

Network: 4-5-3 hard sigmoid (``ns.layered([4, 5, 3], activation="hard_sigmoid", seed=1)``),
states clipped to [0, 1], a seeded batch of 4 (x uniform in [0, 1], one-hot y), runtime
device, symmetric EP with beta 0.3 and 1000 free steps. Every setting not swept keeps the
spiking circuit's defaults (``neurosim.brian.spiking.DEFAULTS``: tau 10 ms, eps 0.1, so dt =
1 ms; max_rate 1000 Hz; tau_syn 10 ms; tau_fast / tau_slow 20 / 200 ms; 1000 nudged steps).
The rate circuit runs with the same eps (its Euler step in units of tau). Each spiking setting
runs over ``--seeds`` spike seeds; the tables give mean (and min) over seeds. "spikes" is the
number of spikes the state neurons (hidden and output, all examples of the batch) fire in the
nudged phases (both, symmetric EP), mean over seeds. ``--digits`` adds 64-16-10 digits (batch
8) with Poisson and LIF neurons at the defaults. Asserts nothing; the last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import neurosim as ns
from neurosim.brian.spiking import DEFAULTS


def sweeps(quick):
    """``{sweep name: [(label, circuit params, nudge_steps), ...]}``."""
    nudge = DEFAULTS["nudge_steps"]
    rates = (250, 1000) if quick else (125, 250, 500, 1000)
    durations = (250, 1000) if quick else (250, 500, 1000, 2000)
    pairs = ((10, 100), (20, 200)) if quick else ((5, 50), (10, 100), (20, 200), (20, 400),
                                                  (50, 200))
    dt = DEFAULTS["eps"] * DEFAULTS["tau"]
    return {
        "max_rate": [("%g Hz" % r, dict(max_rate=float(r)), nudge) for r in rates],
        # tau_slow scaled with the phase: tau_slow = (nudged phase) / 5, as the default 200/1000
        "nudge_steps": [("%d steps, tau_slow %g ms" % (n, n * dt / 5),
                         dict(tau_slow=n * dt / 5), n) for n in durations],
        "traces": [("tau_fast %g / tau_slow %g ms" % p, dict(tau_fast=float(p[0]),
                                                             tau_slow=float(p[1])), nudge)
                   for p in pairs],
        "neuron": [("lif (defaults)", dict(neuron="lif"), nudge)],
    }


def nudged_spikes(circuit, pops):
    """Spikes of ``pops`` inside the nudged phase(s) of the last ep_update."""
    tau = circuit.params["tau"]
    total = 0
    for ph in circuit.phases:
        if ph["name"] == "free":
            continue
        for q in pops:
            t = circuit.spikes[q]["t"] * tau          # ms
            total += int(np.sum((t >= ph["start"] - 1e-9) & (t < ph["stop"] - 1e-9)))
    return total


def study(net, x, y, settings, seeds, free_steps, beta, log):
    """Rows of metrics per setting (mean / min over spike seeds)."""
    eps = DEFAULTS["eps"]
    rbp = ns.rbp.gradient(net, x, y, eps=eps, clip=True)
    rate = ns.brian.compile(net, model="rate", eps=eps, clip=True)
    rate_cache = {}
    rows = []
    for sweep, items in settings.items():
        for label, params, nudge in items:
            if nudge not in rate_cache:
                g = rate.ep_update(x, y, beta, free_steps, nudge, "symmetric")
                rate_cache[nudge] = (g, ns.fidelity.compare(g, rbp))
            g_rate, rate_vs_rbp = rate_cache[nudge]
            params = dict(params)
            neuron = params.pop("neuron", "poisson")
            sc = ns.brian.compile(net, model="spiking", neuron=neuron, clip=True, seed=0,
                                  **params)
            per = []
            t0 = time.perf_counter()
            for s in range(seeds):
                g = sc.ep_update(x, y, beta=beta, free_steps=free_steps, nudge_steps=nudge,
                                 variant="symmetric", seed=1000 + s)
                a, b = ns.fidelity.compare(g, rbp), ns.fidelity.compare(g, g_rate)
                per.append(dict(cos_rbp=a["cosine"], rel_rbp=a["rel_error"],
                                sign_rbp=a["sign_agreement"], cos_rate=b["cosine"],
                                rel_rate=b["rel_error"], sign_rate=b["sign_agreement"],
                                spikes=nudged_spikes(sc, net.state_pops),
                                spikes_all=int(sum(sc.stats["spikes"].values()))))
            row = {"sweep": sweep, "setting": label, "neuron": neuron, "nudge_steps": nudge,
                   "params": dict(sc.params), "seeds": seeds,
                   "rate_vs_rbp_cosine": rate_vs_rbp["cosine"],
                   "rate_vs_rbp_rel_error": rate_vs_rbp["rel_error"],
                   "seconds_per_run": (time.perf_counter() - t0) / seeds, "per_seed": per}
            for k in per[0]:
                vals = np.array([p[k] for p in per], dtype=float)
                row[k] = float(vals.mean())
                row[k + "_min"] = float(vals.min())
                row[k + "_max"] = float(vals.max())
            rows.append(row)
            log(row)
    return rows


def table(title, rows):
    print("\n### %s\n" % title)
    print("| sweep | setting | nudged spikes | cos vs rate | rel err vs rate | sign vs rate "
          "| cos vs RBP | rel err vs RBP | sign vs RBP | rate circuit vs RBP: cos / rel err |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %d | %.4f (%.4f) | %.3f | %.3f | %.4f (%.4f) | %.3f | %.3f | %.4f / %.3f |"
              % (r["sweep"], r["setting"], round(r["spikes"]), r["cos_rate"], r["cos_rate_min"],
                 r["rel_rate"], r["sign_rate"], r["cos_rbp"], r["cos_rbp_min"], r["rel_rbp"],
                 r["sign_rbp"], r["rate_vs_rbp_cosine"],
                 r["rate_vs_rbp_rel_error"]))


def first_reaching(rows):
    """The cheapest setting (fewest nudged spikes) whose worst seed reaches cosine >= 0.99 vs
    the rate circuit and >= 0.95 vs RBP; None if none does."""
    ok = [r for r in rows if r["cos_rate_min"] >= 0.99 and r["cos_rbp_min"] >= 0.95]
    if not ok:
        return None
    r = min(ok, key=lambda r: r["spikes"])
    return {"sweep": r["sweep"], "setting": r["setting"], "spikes": r["spikes"],
            "cos_rate_min": r["cos_rate_min"], "cos_rbp_min": r["cos_rbp_min"]}


def plot(groups, path):
    from neurosim.plots import figure, save
    plt, fig, (ax,) = figure(1, width=5.6, height=4.0)
    markers = {"max_rate": "o", "nudge_steps": "s", "traces": "^", "neuron": "D"}
    for name, rows in groups.items():
        for sweep in markers:
            rs = [r for r in rows if r["sweep"] == sweep]
            if not rs:
                continue
            for key, color, ref in (("rel_rate", "C0", "rate circuit"), ("rel_rbp", "C3", "RBP")):
                xs = [p["spikes"] for r in rs for p in r["per_seed"]]
                ys = [p[key] for r in rs for p in r["per_seed"]]
                ax.scatter(xs, ys, marker=markers[sweep], facecolors=color if name == "4-5-3"
                           else "none", edgecolors=color, s=22,
                           label="%s: %s sweep" % (name, sweep) if key == "rel_rate" else None)
    # the max_rate sweep of the main network as a line (the error against spike count)
    rs = sorted([r for r in groups["4-5-3"] if r["sweep"] == "max_rate"],
                key=lambda r: r["spikes"])
    for key, color in (("rel_rate", "C0"), ("rel_rbp", "C3")):
        ax.plot([r["spikes"] for r in rs], [r[key] for r in rs], color=color, lw=1)
    if len(rs) >= 2:
        s0, e0 = rs[0]["spikes"], rs[0]["rel_rate"]
        s = np.array([s0, rs[-1]["spikes"]])
        ax.plot(s, e0 * np.sqrt(s0 / s), "k--", lw=0.8, label="spikes$^{-1/2}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("state-neuron spikes in the nudged phases (batch total)")
    ax.set_ylabel("relative error of the spike-based update")
    ax.set_title("Spike-based update vs rate circuit (blue), vs RBP (red)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5, loc="best")
    return save(plt, fig, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="two settings per sweep, 2 seeds")
    ap.add_argument("--seeds", type=int, default=None, help="spike seeds per setting (3)")
    ap.add_argument("--digits", action="store_true",
                    help="add 64-16-10 digits (batch 8), Poisson and LIF at the defaults")
    ap.add_argument("--out", default="benchmarks/spiking_fidelity.png")
    args = ap.parse_args()
    seeds = args.seeds or (2 if args.quick else 3)
    free_steps, beta = DEFAULTS["free_steps"], DEFAULTS["beta"]
    t_start = time.perf_counter()

    def log(r):
        print("  %-12s %-30s spikes %7d  cos rate %.4f  cos RBP %.4f  (%.1f s/run)"
              % (r["sweep"], r["setting"], round(r["spikes"]), r["cos_rate"], r["cos_rbp"],
                 r["seconds_per_run"]), flush=True)

    rng = np.random.default_rng(0)
    net = ns.layered([4, 5, 3], activation="hard_sigmoid", seed=1)
    x = rng.uniform(0, 1, (4, 4))
    y = np.eye(3)[rng.integers(0, 3, 4)]
    print("4-5-3 hard sigmoid, batch 4, clip, symmetric EP beta %g, %d free steps, eps %g "
          "(dt %g ms), %d spike seeds" % (beta, free_steps, DEFAULTS["eps"],
                                          DEFAULTS["eps"] * DEFAULTS["tau"], seeds))
    groups = {"4-5-3": study(net, x, y, sweeps(args.quick), seeds, free_steps, beta, log)}
    table("4-5-3 hard sigmoid (mean over seeds; worst seed in parentheses)", groups["4-5-3"])

    if args.digits:
        d = ns.datasets.load("digits")
        xd = np.clip(d.x_train[:8], 0, 1)
        yd = d.y_train[:8]
        dnet = ns.layered([64, 16, 10], activation="hard_sigmoid", seed=1)
        print("\n64-16-10 digits, batch 8")
        settings = {"neuron": [("poisson (defaults)", {}, DEFAULTS["nudge_steps"]),
                               ("lif (defaults)", dict(neuron="lif"), DEFAULTS["nudge_steps"])]}
        groups["64-16-10"] = study(dnet, xd, yd, settings, seeds, free_steps, beta, log)
        table("64-16-10 digits (mean over seeds; worst seed in parentheses)", groups["64-16-10"])

    best = {k: first_reaching([r for r in v if r["neuron"] == "poisson"])
            for k, v in groups.items()}
    print("\nfewest-spike Poisson setting with worst-seed cosine >= 0.99 vs rate and >= 0.95 "
          "vs RBP: %s" % best)
    png = plot(groups, args.out)
    elapsed = time.perf_counter() - t_start
    print("plot: %s; total %.1f s" % (png, elapsed))
    summary = {"benchmark": "spiking_fidelity", "seconds": round(elapsed, 1), "plot": png,
               "threshold_setting": best,
               "rows": {k: [{c: r[c] for c in ("sweep", "setting", "neuron", "spikes",
                                              "cos_rate", "cos_rate_min", "rel_rate",
                                              "sign_rate", "cos_rbp", "cos_rbp_min",
                                              "rel_rbp", "sign_rbp", "rate_vs_rbp_cosine",
                                              "rate_vs_rbp_rel_error",
                                              "seconds_per_run")}
                            for r in v] for k, v in groups.items()}}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
