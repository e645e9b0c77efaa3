"""Common random numbers in the spiking circuit: the Poisson units of every phase of an
example replay the same uniforms (``noise="common"``) or draw fresh ones
(``noise="independent"``). Measured on a random 20-30-5 clipped hard-sigmoid network with
random inputs in [0, 1] (batch 4), symmetric EP, 300 + 300 steps of 1 ms at 1000 Hz:

    python benchmarks/bench_spiking_crn.py [--seeds 4] [--betas 0.2,0.05,0.02] [--compiled]

For each beta and noise scheme it prints, over the spike seeds: the relative error of the
spiking update against the Brian2 rate circuit's update at the same settings (mean and
worst), the noise (the seed-to-seed spread: RMS distance of each seed's update from the mean
over seeds, relative to the rate circuit's update) and the spikes per update. The ratios
independent / common are the factor the shared streams buy at the same spike budget.

``--compiled``: the same measurement in the compiled whole-epoch circuit
(``SpikingTrainingCircuit``, snapshot rule, learning rate 0): one run per beta and noise
scheme whose ``--seeds`` slots all hold the same batch, each slot an independent draw of its
update (counter random numbers of the slot's examples, or the build's ``rand()`` stream); one
C++ build per beta and scheme.

Saves the rows to ``benchmarks/results/spiking_crn.json`` (``--compiled``:
``spiking_crn_compiled.json``; ``--out``)."""
import argparse

import numpy as np

import neurosim as ns

import results

TABLES = [{"id": "rows", "rows": "rows", "columns": [
    ["beta", "beta", "{:g}"], ["noise", "noise"], ["error mean", "error_mean", "{:.3f}"],
    ["error worst", "error_worst", "{:.3f}"], ["spread", "spread", "{:.3f}"],
    ["spikes / draw", "spikes", "{:,.0f}"]]},
    {"id": "ratios", "rows": "ratios", "columns": [
        ["beta", "beta", "{:g}"], ["independent / common: error", "error_ratio", "{:.2f}x"],
        ["spread", "spread_ratio", "**{:.2f}x**"]]}]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--betas", default="0.2,0.05,0.02")
    ap.add_argument("--compiled", action="store_true",
                    help="measure in the compiled whole-epoch circuit")
    results.add_out_argument(ap, "spiking_crn")
    a = ap.parse_args()
    rec = results.start("spiking_crn_compiled" if a.compiled else "spiking_crn")
    net = ns.layered([20, 30, 5], activation="hard_sigmoid", seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (4, 20)), rng.uniform(0, 1, (4, 5))
    flat = lambda g: np.concatenate([np.ravel(g[k]) for k in sorted(g)])  # noqa: E731
    print("%6s %12s %10s %10s %10s %10s" % ("beta", "noise", "err mean", "err worst",
                                             "spread", "spikes"))
    ratios, rows = [], []
    for beta in [float(b) for b in a.betas.split(",")]:
        kw = dict(beta=beta, free_steps=300, nudge_steps=300, variant="symmetric")
        rate = ns.brian.compile(net, model="rate", device="runtime", eps=0.1,
                                clip=True).ep_update(x, y, **kw)
        r = flat(rate)
        row = {}
        for noise in ("independent", "common"):
            if a.compiled:
                gs, spikes = compiled_draws(net, x, y, beta, noise, a.seeds, flat)
            else:
                gs, spikes = [], []
                for s in range(a.seeds):
                    c = ns.brian.compile(net, model="spiking", clip=True, seed=s, record=False,
                                         neuron="poisson", max_rate=1000.0, noise=noise,
                                         eps=0.1, tau_fast=20.0, tau_slow=60.0)
                    gs.append(flat(c.ep_update(x, y, **kw)))
                    spikes.append(sum(c.stats["spikes"].values()))
            gs = np.array(gs)
            err = np.linalg.norm(gs - r, axis=1) / np.linalg.norm(r)
            spread = np.sqrt(np.mean(np.sum((gs - gs.mean(0)) ** 2, axis=1))) / np.linalg.norm(r)
            row[noise] = (err.mean(), spread)
            rows.append({"beta": beta, "noise": noise, "error_mean": err.mean(),
                         "error_worst": err.max(), "spread": spread,
                         "spikes": float(np.mean(spikes))})
            print("%6g %12s %10.3f %10.3f %10.3f %10d" % (beta, noise, err.mean(), err.max(),
                                                          spread, np.mean(spikes)))
        ratios.append((beta, row["independent"][0] / row["common"][0],
                       row["independent"][1] / row["common"][1]))
    for beta, e, s in ratios:
        print("beta %g: independent / common: error %.2fx, spread (noise) %.2fx" % (beta, e, s))
    rec.save({"rows": rows, "ratios": [{"beta": b, "error_ratio": e, "spread_ratio": s}
                                       for b, e, s in ratios]}, TABLES,
             settings={"seeds": a.seeds, "compiled": a.compiled, "network": "20-30-5",
                       "batch": 4, "steps": "300 + 300", "max_rate_hz": 1000}, path=a.out)


def compiled_draws(net, x, y, beta, noise, slots, flat):
    """``slots`` draws of the batch update in one compiled run (every slot the same batch),
    and the spikes per draw."""
    from neurosim.brian.spiking_training import SpikingTrainingCircuit
    B = x.shape[0]
    c = SpikingTrainingCircuit(net, B * slots, batch_size=B, seed=0, record_slots=slots,
                               neuron="poisson", max_rate=1000.0, noise=noise, beta=beta,
                               variant="symmetric", eps=0.1, free_steps=300, nudge_steps=300,
                               tau_fast=20.0, tau_slow=60.0)
    try:
        c.train_epoch(np.tile(x, (slots, 1)), np.tile(y, (slots, 1)),
                      lrs={k: 0.0 for k in net.params}, record=range(slots))
        gs = [flat(c.recorded[b][0]) for b in range(slots)]
        total = sum(v["free"] + v["nudged"] for v in c.stats["spikes"].values())
        print("  (%s: build %.0f s, run %.1f s)" % (noise, c.stats["seconds_build"],
                                                    c.stats["seconds_run"]))
    finally:
        c.close()
    return gs, [total / slots] * slots


if __name__ == "__main__":
    main()
