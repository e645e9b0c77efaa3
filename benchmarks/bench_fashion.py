"""Fashion-MNIST, 784-500-10 hard sigmoid: EP (the circuit file
circuits/fashion_mnist_784-500-10.toml, reference engine) beside the same network trained
with backpropagation, for the same epochs, measured in one run.

The backprop baseline is the layered network evaluated feed-forward
(``h = act(x W1 + b1)``, then ``y = act(h W2 + b2)``, or ``softmax(h W2 + b2)`` for the
circuit's softmax readout: the free phase without feedback), trained with the circuit's optimizer
(plain SGD, momentum or Adam) on the same cost (squared error, or cross-entropy with the softmax readout), the same batch size,
learning rates and schedule, in numpy float32 on one BLAS thread (as the EP engine), three
ways: hard sigmoid with its exact derivative (units outside (0, 1) get no gradient, so a unit
pinned at 0 never learns to rise), hard sigmoid with a straight-through derivative, and
logistic units.

    python benchmarks/bench_fashion.py [--epochs 10] [--set KEY=VALUE ...]

Prints per-epoch test error for both and seconds per 60,000-example epoch; asserts nothing;
saves them to ``benchmarks/results/fashion.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from neurosim import config
from neurosim.commands import run as experiment
from neurosim.relax import blas_threads
from neurosim.training.optimizer import make_optimizer
from neurosim.training.trainer import schedule_factor

import results

TABLES = [{"id": "epochs", "rows": "epochs", "columns": [
    ["epoch", "epoch"], ["EP", "ep_test_error", "{:.2f} %", "percent"],
    ["BP hard sigmoid", "bp_hard_sigmoid_test_error", "{:.2f} %", "percent"],
    ["BP straight-through", "bp_straight_through_test_error", "{:.2f} %", "percent"],
    ["BP logistic", "bp_logistic_test_error", "{:.2f} %", "percent"],
    ["EP s", "ep_seconds", "{:.1f}"], ["BP hard sigmoid s", "bp_seconds", "{:.1f}"]]},
    {"id": "summary", "columns": [
        ["EP test error", "ep_test_error", "**{:.2f} %**", "percent"],
        ["best BP", "best_bp"], ["EP - best BP (points)", "gap_to_best_bp_points", "{:+.2f}"],
        ["EP / BP s per 60k epoch", ["ep_seconds_per_60k_epoch", "bp_seconds_per_60k_epoch"],
         "{:.1f}"], ["training examples", "n_train", "{:,}"]]}]

CIRCUIT = os.path.join(os.path.dirname(__file__), "..", "circuits",
                       "fashion_mnist_784-500-10.toml")


ACTIVATIONS = ("hard_sigmoid", "straight_through", "logistic")


def _act(z, kind):
    if kind == "logistic":
        return 1.0 / (1.0 + np.exp(-4.0 * (z - 0.5)))
    return np.clip(z, 0, 1)


def _slope(z, a, kind):
    """d act / dz: the hard sigmoid's (0 outside (0, 1)), 1 everywhere (straight-through
    estimator), or the logistic's ``4 a (1 - a)``."""
    if kind == "straight_through":
        return 1.0
    if kind == "logistic":
        return 4.0 * a * (1.0 - a)
    return ((z > 0) & (z < 1)).astype(z.dtype)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def backprop(data, sizes, lrs, epochs, batch_size, seed, schedule, dtype, kind="hard_sigmoid",
             readout="state", optimizer="sgd", momentum=0.0, adam_betas=(0.9, 0.999),
             weight_decay=0.0):
    """Backprop on the feed-forward MLP (activation ``kind``; the last layer a softmax
    with a cross-entropy cost when ``readout`` is ``"softmax"``), its update applied by the
    Trainer's optimizer (SGD with ``momentum``, or Adam); returns per-epoch rows."""
    def last(z):
        return _softmax(z) if readout == "softmax" else _act(z, kind)

    rng = np.random.default_rng(seed)
    Ws = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        lim = np.sqrt(6.0 / (a + b))
        Ws.append(rng.uniform(-lim, lim, (a, b)).astype(dtype))
    bs = [np.zeros(b, dtype) for b in sizes[1:]]
    rows, n = [], data.x_train.shape[0]
    base = {}
    for layer, lr in enumerate(lrs):
        base["W:%d" % layer] = base["b:%d" % layer] = lr   # keys as a Network's: W decays
    opt = make_optimizer(optimizer, base, momentum, adam_betas, weight_decay)
    for epoch in range(epochs):
        f = schedule_factor(schedule, epoch, epochs)
        opt.lrs = {k: v * f for k, v in base.items()}
        order = np.random.default_rng([seed, epoch]).permutation(n)
        t0 = time.perf_counter()
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            acts, pre = [data.x_train[idx]], []
            for i_layer, (W, b) in enumerate(zip(Ws, bs)):
                z = acts[-1] @ W + b
                pre.append(z)
                acts.append(last(z) if i_layer == len(Ws) - 1 else _act(z, kind))
            delta = acts[-1] - data.y_train[idx]
            if readout != "softmax":
                delta = delta * _slope(pre[-1], acts[-1], kind)
            for layer in range(len(Ws) - 1, -1, -1):
                gW = acts[layer].T @ delta / len(idx)
                gb = delta.mean(axis=0)
                if layer:
                    delta = (delta @ Ws[layer].T) * _slope(pre[layer - 1], acts[layer], kind)
                opt.apply({"W:%d" % layer: Ws[layer], "b:%d" % layer: bs[layer]},
                          {"W:%d" % layer: gW, "b:%d" % layer: gb})
        seconds = time.perf_counter() - t0
        a = data.x_test
        for i_layer, (W, b) in enumerate(zip(Ws, bs)):
            z = a @ W + b
            a = last(z) if i_layer == len(Ws) - 1 else _act(z, kind)
        err = float(np.mean(np.argmax(a, 1) != data.labels_test))
        rows.append({"epoch": epoch + 1, "test_error": err, "seconds": seconds})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    results.add_out_argument(ap, "fashion")
    args = ap.parse_args()
    rec = results.start("fashion")
    overrides = list(args.overrides) + (["train.epochs=%d" % args.epochs] if args.epochs else [])
    circuit, _ = config.load(CIRCUIT, overrides)
    net = config.build_network(circuit.network)
    data = config.build_dataset(circuit.dataset, circuit.network.dtype)
    engine = experiment.build_engine(circuit, net)
    L, T = circuit.learning, circuit.train
    ep_rows = []
    trainer = experiment.build_trainer(circuit, engine, data, progress=False, fidelity_batches=0)
    trainer.fit(on_epoch=lambda tr: ep_rows.append(
        {"epoch": tr.epoch, "test_error": 1 - tr.history["test_accuracy"][-1],
         "seconds": tr.history["seconds"][-1]}))
    lrs = L.lr if isinstance(L.lr, list) else [L.lr] * (len(circuit.network.sizes) - 1)
    bp = {}
    with blas_threads(1):
        for kind in ACTIVATIONS:
            bp[kind] = backprop(data, circuit.network.sizes, lrs, T.epochs, T.batch_size, T.seed,
                                L.schedule, np.dtype(circuit.network.dtype), kind,
                                circuit.network.readout, L.optimizer, L.momentum, L.adam_betas,
                                L.weight_decay)
    print("Fashion-MNIST %s, %s, batch %d, %d epochs (%d train / %d test)"
          % ("-".join(map(str, circuit.network.sizes)), circuit.network.dtype, T.batch_size,
             T.epochs, data.n_train, data.n_test))
    opt = ("Adam %s" % list(L.adam_betas) if L.optimizer == "adam"
           else "SGD momentum %g" % L.momentum)
    print("EP: %s beta=%g, %d free + %d nudged Euler steps (eps=%g), lr %s, %s, schedule %s"
          % (L.variant, L.beta, circuit.engine.free_steps, circuit.engine.nudge_steps,
             circuit.engine.eps, L.lr, opt, L.schedule))
    print("readout: %s (%s)" % (circuit.network.readout, "cross-entropy" if
                                 circuit.network.readout == "softmax" else "squared error"))
    print("BP: the feed-forward network, same cost, batch, learning rates, optimizer and schedule; "
          "activations: hard sigmoid (exact derivative), hard sigmoid with a straight-through "
          "derivative, logistic")
    print("test error (%) per epoch and seconds per epoch:")
    print("%6s %8s %10s %10s %10s | %8s %8s" % ("epoch", "EP", "BP hard", "BP s-t", "BP logist",
                                                "EP s", "BP s"))
    for i, e in enumerate(ep_rows):
        print("%6d %8.2f %10.2f %10.2f %10.2f | %8.2f %8.2f" % (
            e["epoch"], 100 * e["test_error"], *(100 * bp[k][i]["test_error"] for k in ACTIVATIONS),
            e["seconds"], bp["hard_sigmoid"][i]["seconds"]))
    ep_s = float(np.mean([r["seconds"] for r in ep_rows]))
    bp_s = float(np.mean([r["seconds"] for r in bp["hard_sigmoid"]]))
    best = min(ACTIVATIONS, key=lambda k: bp[k][-1]["test_error"])
    scale = 60000.0 / data.n_train
    summary = {"ep_test_error": ep_rows[-1]["test_error"],
               "bp_test_error": {k: bp[k][-1]["test_error"] for k in ACTIVATIONS},
               "gap_to_best_bp_points": 100 * (ep_rows[-1]["test_error"] - bp[best][-1]["test_error"]),
               "best_bp": best,
               "ep_seconds_per_60k_epoch": ep_s * scale, "bp_seconds_per_60k_epoch": bp_s * scale,
               "ep_over_bp_time": ep_s / bp_s}
    print("final: EP %.2f %% vs best BP (%s) %.2f %% test error (EP - BP = %+.2f points); "
          "%.2f vs %.2f s per 60k-example epoch (EP/BP = %.2f)"
          % (100 * summary["ep_test_error"], best, 100 * bp[best][-1]["test_error"],
             summary["gap_to_best_bp_points"], summary["ep_seconds_per_60k_epoch"],
             summary["bp_seconds_per_60k_epoch"], summary["ep_over_bp_time"]))
    epochs = [dict({"bp_%s_test_error" % k: bp[k][i]["test_error"] for k in ACTIVATIONS},
                   epoch=e["epoch"], ep_test_error=e["test_error"], ep_seconds=e["seconds"],
                   bp_seconds=bp["hard_sigmoid"][i]["seconds"]) for i, e in enumerate(ep_rows)]
    rec.save(dict(summary, epochs=epochs, n_train=data.n_train), TABLES,
             settings={"overrides": overrides}, path=args.out)


if __name__ == "__main__":
    main()
