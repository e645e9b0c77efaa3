"""Training throughput: a compiled Brian2 rate circuit (weights in the synapses, one
cpp_standalone run per epoch) beside the numpy reference engine, on 784-500-10 hard sigmoid
with 100 free + 20 nudged Euler steps (eps 0.5, states clipped to [0, 1], one-sided EP,
beta 0.5, batch 20), measured in one run.

    python benchmarks/bench_brian_rate.py [--examples 2000] [--free 100] [--nudge 20]

The circuit's epoch time excludes the one-off C++ build (printed separately); after the run
both engines' weights are compared (they agree to rounding). Asserts nothing; saves the
figures to ``benchmarks/results/brian_rate.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import neurosim as ns
from neurosim.brian.training import TrainingCircuit
from neurosim.engines.reference import ep_step
from neurosim.relax import blas_threads
from neurosim.training.trainer import resolve_learning_rates

import results

TABLES = [{"id": "engines", "rows": "engines", "columns": [
    ["engine", "engine"], ["examples/s", "examples_per_second", "{:,.0f}"]]},
    {"id": "details", "columns": [
        ["examples", "examples"], ["data", "source"],
        ["circuit build s (once)", "build_seconds", "{:.1f}"],
        ["first epoch s (build included)", "first_epoch_seconds", "{:.1f}"],
        ["reference / circuit", "reference_over_circuit", "{:.1f}x"],
        ["max weight difference after the epochs", "max_weight_difference", "{:.1e}"]]}]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--free", type=int, default=100)
    ap.add_argument("--nudge", type=int, default=20)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=2, help="circuit epochs timed (after the build)")
    ap.add_argument("--threads", type=int, default=1,
                    help="OpenMP threads of the compiled circuit (engine.threads; default 1)")
    results.add_out_argument(ap, "brian_rate")
    args = ap.parse_args()
    rec = results.start("brian_rate")
    rng = np.random.default_rng(0)
    n = args.examples
    try:
        d = ns.datasets.load("fashion-mnist", limit_train=n, limit_test=1)
        x, y, source = d.x_train, d.y_train, "Fashion-MNIST"
    except ns.datasets.DatasetError:
        x, y, source = rng.uniform(0, 1, (n, 784)), np.eye(10)[rng.integers(0, 10, n)], "random"
    net = ns.layered([784, 500, 10], activation="hard_sigmoid", seed=0)
    ref = net.copy()
    lrs = resolve_learning_rates(net, [0.1, 0.05])
    kw = dict(eps=0.5, free_steps=args.free, nudge_steps=args.nudge, beta=0.5,
              variant="one_sided", clip=True)
    tc = TrainingCircuit(net, n, lrs=lrs, batch_size=args.batch, threads=args.threads, **kw)
    try:
        t0 = time.perf_counter()
        tc.train_epoch(x, y)
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.epochs):
            t0 = time.perf_counter()
            tc.train_epoch(x, y)
            times.append(time.perf_counter() - t0)
    finally:
        tc.close()
    circuit_eps = n / min(times)
    kw.pop("beta")
    with blas_threads(1):
        t0 = time.perf_counter()
        for _ in range(1 + args.epochs):
            for b in range(0, n, args.batch):
                ep_step(ref, x[b:b + args.batch], y[b:b + args.batch], 0.5, lrs, **kw)
        ref_time = (time.perf_counter() - t0) / (1 + args.epochs)
    ref_eps = n / ref_time
    diff = max(float(np.abs(net.params[k] - ref.params[k]).max()) for k in net.params)
    print("784-500-10 hard sigmoid, %d+%d Euler steps per example, batch %d, %d %s examples"
          % (args.free, args.nudge, args.batch, n, source))
    print("%-40s %12s" % ("engine", "examples/s"))
    print("%-40s %12.0f" % ("brian2 cpp_standalone circuit (%d thread%s)"
                             % (args.threads, "s" if args.threads > 1 else ""), circuit_eps))
    print("%-40s %12.0f" % ("numpy reference engine (1 BLAS thread)", ref_eps))
    print("circuit build (one-off): %.1f s, first epoch incl. build %.1f s; reference/circuit "
          "speed ratio %.1f; max |weight difference| after %d epochs: %.2e"
          % (tc.seconds_build, first, ref_eps / circuit_eps, 1 + args.epochs, diff))
    rec.save({"engines": [
        {"engine": "Brian2 cpp_standalone circuit (%d thread%s)"
                   % (args.threads, "s" if args.threads > 1 else ""),
         "examples_per_second": circuit_eps},
        {"engine": "numpy reference engine (1 BLAS thread)", "examples_per_second": ref_eps}],
        "examples": n, "source": source, "build_seconds": tc.seconds_build,
        "first_epoch_seconds": first, "reference_over_circuit": ref_eps / circuit_eps,
        "max_weight_difference": diff, "circuit_examples_per_second": circuit_eps,
        "reference_examples_per_second": ref_eps},
        TABLES, settings={k: getattr(args, k) for k in ("examples", "free", "nudge", "batch",
                                                         "epochs", "threads")}, path=args.out)


if __name__ == "__main__":
    main()
