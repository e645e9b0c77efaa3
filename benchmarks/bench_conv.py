"""Fashion-MNIST on the convolutional energy network of circuits/conv_fashion.toml: EP on the
circuit's engine beside the same network trained with backpropagation, in one run.

The backprop baseline is the network evaluated feed-forward (the free phase without its
feedback: ``h1 = clip(P(W1 * x) + b1)``, ``h2 = clip(P(W2 * h1) + b2)``,
``yhat = softmax(h2 W3 + b3)``), trained on the same cross-entropy with the circuit's batch,
learning rates, momentum and schedule, from the same initial weights, in numpy (the
convolutions and their transposes are neurosim.conv's), with the hard sigmoid's exact
derivative (1 on (0, 1), else 0).

    python benchmarks/bench_conv.py [--circuit FILE] [--epochs 10] [--limit-train N]
                                    [--set KEY=VALUE ...] [--bp-only]

``--circuit``: another conv circuit file (default circuits/conv_fashion.toml), e.g. one with
``pooling = "max"`` on its projections; the backprop baseline max-pools where it does.
``--bp-only``: train the backprop twin alone (the EP column is left out), e.g. beside a
``neurosim run`` of the circuit that gave its EP numbers with fidelity logging on.

Prints test error per epoch and seconds per epoch for both; asserts nothing; saves them to
``benchmarks/results/conv.json`` (``--out``).
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
    ["epoch", "epoch"], ["EP test error", "ep_test_error", "{:.2f} %", "percent"],
    ["backprop test error", "bp_test_error", "{:.2f} %", "percent"],
    ["EP s", "ep_seconds", "{:.1f}"], ["backprop s", "bp_seconds", "{:.1f}"]]},
    {"id": "summary", "columns": [
        ["circuit", "circuit", "`{}`"], ["training examples", "n_train", "{:,}"],
        ["EP test error", "ep_test_error", "**{:.2f} %**", "percent"],
        ["backprop test error", "bp_test_error", "**{:.2f} %**", "percent"],
        ["EP / backprop s per epoch (mean)", ["ep_seconds_per_epoch", "bp_seconds_per_epoch"],
         "{:.1f}"]]}]

CIRCUIT = os.path.join(os.path.dirname(__file__), "..", "circuits", "conv_fashion.toml")


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _chain(net):
    """The projections in order from the input to the readout: (key, Term or None)."""
    order, p = [], net.inputs[0]
    while True:
        nxt = [b for b in net.graph.successors(p)]
        if not nxt:
            return order
        key = "W:%s->%s" % (p, nxt[0])
        order.append((key, p, nxt[0]))
        p = nxt[0]


def _layer(net, key, r):
    """A projection's feed-forward product and, for a max-pooled convolution, its switches."""
    conv = net.convs.get(key)
    w = net.params[key]
    if conv is None:
        return r @ w, None
    return conv.max_pool(w, r) if conv.max_pools else (conv.forward(w, r), None)


def backprop(net, data, lrs, epochs, batch_size, seed, schedule, momentum=0.0, optimizer="sgd",
             adam_betas=(0.9, 0.999), weight_decay=0.0):
    """Backprop on the feed-forward form of ``net`` (a copy; softmax readout; the hard
    sigmoid's exact derivative), its update applied by the Trainer's optimizer (SGD with
    ``momentum``, or Adam) and schedule; returns per-epoch rows."""
    work = net.copy()
    chain = _chain(work)
    rows, n = [], data.x_train.shape[0]
    opt = make_optimizer(optimizer, lrs, momentum, adam_betas, weight_decay)
    for epoch in range(epochs):
        f = schedule_factor(schedule, epoch, epochs)
        opt.lrs = {k: v * f for k, v in lrs.items()}
        order = np.random.default_rng([seed, epoch]).permutation(n)
        t0 = time.perf_counter()
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            acts, slopes, switches = [data.x_train[idx]], [None], []
            for j, (key, _, tgt) in enumerate(chain):
                z, m = _layer(work, key, acts[-1])
                z += work.params["b:%s" % tgt]
                switches.append(m)
                acts.append(_softmax(z) if j == len(chain) - 1 else np.clip(z, 0.0, 1.0))
                slopes.append(((z > 0) & (z < 1)).astype(z.dtype))
            delta = (acts[-1] - data.y_train[idx]) / len(idx)
            for j in range(len(chain) - 1, -1, -1):
                key, _, tgt = chain[j]
                conv, w = work.convs.get(key), work.params[key]
                m = switches[j]
                gw = conv.kernel_gradient(acts[j], delta, m) if conv is not None else \
                    acts[j].T @ delta
                gb = delta.sum(axis=0)
                if j:
                    delta = conv.adjoint(w, delta, m) if conv is not None else delta @ w.T
                    delta = delta * slopes[j]
                opt.apply(work.params, {key: gw.astype(w.dtype),
                                        "b:%s" % tgt: gb.astype(w.dtype)})
        seconds = time.perf_counter() - t0
        a = data.x_test
        for j, (key, _, tgt) in enumerate(chain):
            z = _layer(work, key, a)[0] + work.params["b:%s" % tgt]
            a = z if j == len(chain) - 1 else np.clip(z, 0.0, 1.0)
        err = float(np.mean(np.argmax(a, 1) != data.labels_test))
        rows.append({"epoch": epoch + 1, "test_error": err, "seconds": seconds})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--circuit", default=CIRCUIT, help="circuit file (default: conv_fashion)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--limit-train", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--bp-only", action="store_true", help="train the backprop twin alone")
    results.add_out_argument(ap, "conv")
    args = ap.parse_args()
    rec = results.start("conv")
    overrides = list(args.overrides) + (["train.epochs=%d" % args.epochs] if args.epochs else [])
    if args.limit_train:
        overrides.append("dataset.limit_train=%d" % args.limit_train)
    circuit, _ = config.load(args.circuit, overrides)
    net = config.build_network(circuit.network)
    start = net.copy()
    data = config.build_dataset(circuit.dataset, circuit.network.dtype)
    engine = experiment.build_engine(circuit, net)
    L, T = circuit.learning, circuit.train
    ep_rows = []
    trainer = experiment.build_trainer(circuit, engine, data, progress=False, fidelity_batches=0)
    if not args.bp_only:
        trainer.fit(on_epoch=lambda tr: ep_rows.append(
            {"epoch": tr.epoch, "test_error": 1 - tr.history["test_accuracy"][-1],
             "seconds": tr.history["seconds"][-1]}))
    with blas_threads(1):
        bp = backprop(start, data, trainer.base_lrs, T.epochs, T.batch_size, T.seed, L.schedule,
                      momentum=L.momentum, optimizer=L.optimizer, adam_betas=L.adam_betas,
                      weight_decay=L.weight_decay)
    print("Fashion-MNIST, %s (%d train / %d test), batch %d, %d epochs"
          % (net, data.n_train, data.n_test, T.batch_size, T.epochs))
    E = circuit.engine
    steps = ("block sweeps" if E.solver == "block" else "Euler steps (eps=%g)" % E.eps)
    opt = ("Adam %s" % list(L.adam_betas) if L.optimizer == "adam"
           else "SGD momentum %g" % L.momentum)
    print("EP: %s beta=%g, %d free + %d nudged %s, lr %s, %s, schedule %s"
          % (L.variant, L.beta, E.free_steps, E.nudge_steps, steps, L.lr, opt, L.schedule))
    print("BP: the feed-forward network (no feedback), same cross-entropy, batch, learning "
          "rates, optimizer, schedule and initial weights; the hard sigmoid's exact derivative")
    print("%6s %8s %8s | %8s %8s" % ("epoch", "EP %", "BP %", "EP s", "BP s"))
    nan = {"test_error": float("nan"), "seconds": float("nan")}
    for i, b in enumerate(bp):
        e = ep_rows[i] if i < len(ep_rows) else nan
        print("%6d %8.2f %8.2f | %8.1f %8.1f" % (b["epoch"], 100 * e["test_error"],
                                                 100 * b["test_error"], e["seconds"],
                                                 b["seconds"]))
    summary = {"ep_test_error": ep_rows[-1]["test_error"] if ep_rows else None,
               "bp_test_error": bp[-1]["test_error"],
               "ep_seconds_per_epoch": (float(np.mean([r["seconds"] for r in ep_rows]))
                                        if ep_rows else None),
               "bp_seconds_per_epoch": float(np.mean([r["seconds"] for r in bp])),
               "n_train": data.n_train, "circuit": circuit.name}
    epochs = [{"epoch": b["epoch"], "bp_test_error": b["test_error"], "bp_seconds": b["seconds"],
               "ep_test_error": ep_rows[i]["test_error"] if i < len(ep_rows) else None,
               "ep_seconds": ep_rows[i]["seconds"] if i < len(ep_rows) else None}
              for i, b in enumerate(bp)]
    rec.save(dict(summary, epochs=epochs), TABLES,
             settings={"circuit": os.path.relpath(args.circuit, results.ROOT),
                       "overrides": overrides, "bp_only": args.bp_only}, path=args.out)


if __name__ == "__main__":
    main()
