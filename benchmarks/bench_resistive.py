"""Training throughput of the resistive engine on the shipped Fashion-MNIST circuit.

The network of ``circuits/resistive_fashion_784-500-10.toml`` (784-500-10, split ideal diodes,
input scale 300), its learning settings (symmetric EP, beta, momentum, batch size), trained
through :class:`neurosim.engines.resistive.ResistiveEngine` steps on Fashion-MNIST training
batches: each step solves the free, +beta and -beta operating points, forms the EP estimate,
applies the momentum update and projects to ``G >= 0``, and counts the circuit's energy.

Printed for float64 and float32 and for 1 and 2 BLAS threads (the engine's ``THREADS``; it
runs with 1): training examples per second
(median over rounds), the seconds a 60,000-example epoch would take at that rate, and the
ratios to float64 on one thread measured in the same run.

    python benchmarks/bench_resistive.py [--seconds 4] [--batch 32]

Timings are printed, never asserted (machines are noisy: run it on an idle machine), and saved
to ``benchmarks/results/resistive.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import neurosim as ns
from neurosim import config, engines
from neurosim.config import build_network
from neurosim.engines import resistive as resistive_engine
from neurosim.training.optimizer import make_optimizer, resolve_learning_rates

import results

TABLES = [{"id": "throughput", "rows": "rows", "columns": [
    ["dtype", "dtype"], ["BLAS threads", "threads"],
    ["ex/s", "examples_per_second", "**{:,.0f}**"],
    ["s per 60k epoch", "seconds_per_60k_epoch", "{:.1f}"],
    ["ratio to float64, 1 thread", "ratio", "{:.2f}"]]}]


def throughput(circuit, dtype, threads, x, y, batch, seconds):
    """Median examples/s over rounds of ``seconds / 4`` of engine steps."""
    section = circuit.network.model_copy(update={"dtype": dtype})
    net = build_network(section, circuit.resistive.model_dump())
    lrn = circuit.learning
    eng = engines.build("resistive", net, beta=lrn.beta, variant=lrn.variant)
    opt = make_optimizer(lrn.optimizer, resolve_learning_rates(net, lrn.lr, lrn.bias_lr),
                         lrn.momentum, lrn.adam_betas, lrn.weight_decay)
    rates, i = [], 0
    resistive_engine.THREADS = threads       # the engine's BLAS threads (1 by default)
    for _ in range(4):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 4:
            sl = slice(i, i + batch)
            eng.step(x[sl], y[sl], opt)
            i = (i + batch) % (len(x) - batch)
            n += batch
        rates.append(n / (time.perf_counter() - t0))
    return float(np.median(rates))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="per configuration")
    ap.add_argument("--batch", type=int, default=None, help="default: the circuit's")
    results.add_out_argument(ap, "resistive")
    args = ap.parse_args()
    rec = results.start("resistive")
    circuit, _ = config.load("resistive_fashion_784-500-10")
    batch = args.batch or circuit.train.batch_size
    data = ns.datasets.load("fashion-mnist", limit_train=6400, limit_test=10, seed=0)
    print("resistive engine, %s, batch %d, %g s per configuration"
          % ("-".join(map(str, circuit.network.sizes)), batch, args.seconds))
    print("%-8s %8s %12s %16s %8s" % ("dtype", "threads", "ex/s", "s per 60k epoch", "ratio"))
    base, rows = None, []
    for dtype in ("float64", "float32"):
        for threads in (1, 2):
            r = throughput(circuit, dtype, threads, data.x_train, data.y_train, batch,
                           args.seconds)
            base = base or r
            rows.append({"dtype": dtype, "threads": threads, "examples_per_second": r,
                         "seconds_per_60k_epoch": 60000 / r, "ratio": r / base})
            print("%-8s %8d %12.0f %16.1f %8.2f" % (dtype, threads, r, 60000 / r, r / base))
    rec.save({"rows": rows, "batch": batch}, TABLES, settings={"seconds": args.seconds},
             path=args.out)


if __name__ == "__main__":
    main()
