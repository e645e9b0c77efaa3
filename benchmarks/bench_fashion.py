"""Fashion-MNIST, 784-500-10 hard sigmoid: EP (the circuit file
circuits/fashion_mnist_784-500-10.toml, reference engine) beside the same network trained
with backpropagation, for the same epochs, measured in one run.

The backprop baseline is the layered network evaluated feed-forward
(``h = clip(x W1 + b1)``, ``y = clip(h W2 + b2)``: the free phase without feedback), trained
with plain SGD on the same squared-error cost, the same batch size, learning rates and
schedule, in numpy float32 on one BLAS thread (as the EP engine).

    python benchmarks/bench_fashion.py [--epochs 10] [--set KEY=VALUE ...]

Prints per-epoch test error for both and seconds per 60,000-example epoch; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from neurosim import config, experiment
from neurosim.relax import blas_threads
from neurosim.train import Trainer

CIRCUIT = os.path.join(os.path.dirname(__file__), "..", "circuits",
                       "fashion_mnist_784-500-10.toml")


def backprop(data, sizes, lrs, epochs, batch_size, seed, schedule, dtype):
    """SGD backprop on the feed-forward hard-sigmoid MLP; returns per-epoch rows."""
    rng = np.random.default_rng(seed)
    Ws = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        lim = np.sqrt(6.0 / (a + b))
        Ws.append(rng.uniform(-lim, lim, (a, b)).astype(dtype))
    bs = [np.zeros(b, dtype) for b in sizes[1:]]
    rows, n = [], data.x_train.shape[0]
    for epoch in range(epochs):
        f = 1.0 if schedule == "constant" else 0.5 * (1 + np.cos(np.pi * epoch / epochs))
        order = np.random.default_rng([seed, epoch]).permutation(n)
        t0 = time.perf_counter()
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            acts, pre = [data.x_train[idx]], []
            for W, b in zip(Ws, bs):
                z = acts[-1] @ W + b
                pre.append(z)
                acts.append(np.clip(z, 0, 1))
            delta = (acts[-1] - data.y_train[idx]) * ((pre[-1] > 0) & (pre[-1] < 1))
            for layer in range(len(Ws) - 1, -1, -1):
                gW = acts[layer].T @ delta / len(idx)
                gb = delta.mean(axis=0)
                if layer:
                    delta = (delta @ Ws[layer].T) * ((pre[layer - 1] > 0) & (pre[layer - 1] < 1))
                Ws[layer] -= lrs[layer] * f * gW
                bs[layer] -= lrs[layer] * f * gb
        seconds = time.perf_counter() - t0
        a = data.x_test
        for W, b in zip(Ws, bs):
            a = np.clip(a @ W + b, 0, 1)
        err = float(np.mean(np.argmax(a, 1) != data.labels_test))
        rows.append({"epoch": epoch + 1, "test_error": err, "seconds": seconds})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    overrides = list(args.overrides) + (["train.epochs=%d" % args.epochs] if args.epochs else [])
    circuit, _ = config.load(CIRCUIT, overrides)
    net = experiment.build_network(circuit.network)
    data = experiment.build_dataset(circuit.dataset, circuit.network.dtype)
    engine = experiment.build_engine(circuit, net)
    L, T = circuit.learning, circuit.train
    ep_rows = []
    trainer = Trainer(engine, data, rule=L.rule, variant=L.variant, beta=L.beta, lr=L.lr,
                      momentum=L.momentum, schedule=L.schedule, epochs=T.epochs,
                      batch_size=T.batch_size, seed=T.seed, fidelity_batches=0,
                      persistent=circuit.engine.persistent, progress=False)
    trainer.fit(on_epoch=lambda tr: ep_rows.append(
        {"epoch": tr.epoch, "test_error": 1 - tr.history["test_accuracy"][-1],
         "seconds": tr.history["seconds"][-1]}))
    lrs = L.lr if isinstance(L.lr, list) else [L.lr] * (len(circuit.network.sizes) - 1)
    with blas_threads(1):
        bp_rows = backprop(data, circuit.network.sizes, lrs, T.epochs, T.batch_size, T.seed,
                           L.schedule, np.dtype(circuit.network.dtype))
    print("Fashion-MNIST %s, %s, batch %d, %d epochs (%d train / %d test)"
          % ("-".join(map(str, circuit.network.sizes)), circuit.network.dtype, T.batch_size,
             T.epochs, data.n_train, data.n_test))
    print("EP: %s beta=%g, %d free + %d nudged Euler steps (eps=%g), lr %s, schedule %s"
          % (L.variant, L.beta, circuit.engine.free_steps, circuit.engine.nudge_steps,
             circuit.engine.eps, L.lr, L.schedule))
    print("%6s %14s %14s %12s %12s" % ("epoch", "EP test err", "BP test err", "EP s/epoch",
                                       "BP s/epoch"))
    for e, b in zip(ep_rows, bp_rows):
        print("%6d %13.2f%% %13.2f%% %12.2f %12.2f" % (e["epoch"], 100 * e["test_error"],
                                                      100 * b["test_error"], e["seconds"],
                                                      b["seconds"]))
    ep_s = float(np.mean([r["seconds"] for r in ep_rows]))
    bp_s = float(np.mean([r["seconds"] for r in bp_rows]))
    scale = 60000.0 / data.n_train
    summary = {"ep_test_error": ep_rows[-1]["test_error"], "bp_test_error": bp_rows[-1]["test_error"],
               "gap_percentage_points": 100 * (ep_rows[-1]["test_error"] - bp_rows[-1]["test_error"]),
               "ep_seconds_per_60k_epoch": ep_s * scale, "bp_seconds_per_60k_epoch": bp_s * scale,
               "ep_over_bp_time": ep_s / bp_s}
    print("final: EP %.2f %% vs BP %.2f %% test error (gap %.2f points); %.2f vs %.2f s per "
          "60k-example epoch (EP/BP = %.2f)" % (100 * summary["ep_test_error"],
                                                100 * summary["bp_test_error"],
                                                summary["gap_percentage_points"],
                                                summary["ep_seconds_per_60k_epoch"],
                                                summary["bp_seconds_per_60k_epoch"],
                                                summary["ep_over_bp_time"]))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
