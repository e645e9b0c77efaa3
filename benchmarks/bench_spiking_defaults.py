"""Which spiking-circuit settings give an update faithful to the gradient: on random small
clipped hard-sigmoid networks (20-30-5, random inputs in [0, 1], batch 4), the spike-based
symmetric EP update against the clip-aware RBP gradient (at the exact free fixed point) and
against the Brian2 rate circuit's update at the same settings, over beta, the noise scheme
and the phase length (1000 Hz, dt 1 ms, traces 20 ms / phase/5):

    python benchmarks/bench_spiking_defaults.py [--nets 3] [--out benchmarks/spiking_defaults_study.png]

Prints one row per setting (mean and worst cosine over the networks, spikes and simulated
time per example), saves them to ``benchmarks/results/spiking_defaults.json`` (``--results``)
and draws the cosines against beta."""
import argparse
import itertools

import numpy as np

import neurosim as ns
from neurosim.brian.spiking import trace_constants
from neurosim.fixed_point import free_fixed_point

import results

COLUMNS = ("beta", "noise", "steps", "rbp_mean", "rbp_worst", "rate_mean", "rate_worst",
           "spikes_per_example", "simulated_seconds_per_example")
TABLES = [{"id": "rows", "rows": "rows", "columns": [
    ["beta", "beta", "{:g}"], ["noise", "noise"], ["steps per phase", "steps"],
    ["vs RBP mean / worst", ["rbp_mean", "rbp_worst"], "{:.3f}"],
    ["vs rate mean / worst", ["rate_mean", "rate_worst"], "{:.3f}"],
    ["spikes / example", "spikes_per_example", "{:,.0f}"],
    ["simulated s / example", "simulated_seconds_per_example", "{:.1f}"]]}]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", type=int, default=3)
    ap.add_argument("--betas", default="0.3,0.1,0.03")
    ap.add_argument("--phases", default="300,1000")
    ap.add_argument("--out", default="benchmarks/spiking_defaults_study.png", help="the figure")
    ap.add_argument("--results", default=None, metavar="FILE.json",
                    help="where to save the result (default "
                         "benchmarks/results/spiking_defaults.json)")
    a = ap.parse_args()
    rec = results.start("spiking_defaults")
    betas = [float(b) for b in a.betas.split(",")]
    phases = [int(p) for p in a.phases.split(",")]
    rows = []
    print("%6s %12s %6s | %9s %9s | %9s %9s | %10s %8s" % (
        "beta", "noise", "steps", "RBP mean", "RBP worst", "rate mean", "rate worst",
        "spikes/ex", "sim s/ex"))
    for beta, noise, steps in itertools.product(betas, ("independent", "common"), phases):
        c_rbp, c_rate, spikes = [], [], []
        tf, ts = trace_constants(steps, 0.1)
        for seed in range(a.nets):
            net = ns.layered([20, 30, 5], activation="hard_sigmoid", seed=seed, dtype="float64")
            rng = np.random.default_rng(seed)
            x, y = rng.uniform(0, 1, (4, 20)), rng.uniform(0, 1, (4, 5))
            s0 = free_fixed_point(net, x, clip=True, eps=0.1, tol=1e-10).state
            rbp = ns.rbp.gradient(net, x, y, method="implicit", eps=0.1, state=s0, clip=True)
            kw = dict(beta=beta, free_steps=steps, nudge_steps=steps, variant="symmetric")
            rate = ns.brian.compile(net, model="rate", device="runtime", eps=0.1,
                                    clip=True).ep_update(x, y, **kw)
            c = ns.brian.compile(net, model="spiking", clip=True, seed=seed, record=False,
                                 neuron="poisson", max_rate=1000.0, eps=0.1, tau_fast=tf,
                                 tau_slow=ts, noise=noise)
            g = c.ep_update(x, y, **kw)
            c_rbp.append(ns.fidelity.compare(g, rbp)["cosine"])
            c_rate.append(ns.fidelity.compare(g, rate)["cosine"])
            spikes.append(sum(c.stats["spikes"].values()) / 4)
        sim = 3 * steps * 1e-3
        rows.append((beta, noise, steps, np.mean(c_rbp), np.min(c_rbp), np.mean(c_rate),
                     np.min(c_rate), np.mean(spikes), sim))
        print("%6g %12s %6d | %9.3f %9.3f | %9.3f %9.3f | %10.0f %8.1f" % rows[-1])
    from neurosim.plots import figure, save
    plt, fig, axes = figure(2, width=5.0, height=3.8)
    for (noise, steps), style in zip(itertools.product(("independent", "common"), phases),
                                     ("o-", "s-", "o--", "s--")):
        r = [row for row in rows if row[1] == noise and row[2] == steps]
        for ax, col, what in ((axes[0], 3, "RBP gradient"), (axes[1], 5, "rate circuit")):
            ax.plot([row[0] for row in r], [row[col] for row in r], style,
                    label="%s noise, %d + %d steps" % (noise, steps, steps))
            ax.set(xscale="log", xlabel="beta", ylabel="cosine (mean over %d networks)" % a.nets,
                   title="spiking update vs %s" % what)
    for ax in axes:
        ax.set_xticks(betas)
        ax.set_xticklabels(["%g" % b for b in betas])
        ax.minorticks_off()
        ax.legend(fontsize=7)
    save(plt, fig, a.out)
    print("plot:", a.out)
    rec.save({"rows": [dict(zip(COLUMNS, r)) for r in rows]}, TABLES,
             settings={"nets": a.nets, "network": "20-30-5", "batch": 4, "max_rate_hz": 1000,
                       "figure": a.out}, path=a.results)


if __name__ == "__main__":
    main()
