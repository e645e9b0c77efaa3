"""Training throughput of a CIFAR-shaped circuit (default circuits/cifar10_laborieux.toml) on
random data of the same shape: the circuit's network and engine (``neurosim.config.load``,
``build_network``, ``neurosim.engines.build`` with the circuit's settings), its optimizer, a
few training steps (``engine.step``) on inputs uniform in [0, 1) with one-hot labels.

    python benchmarks/bench_cifar.py [--circuit FILE] [--device auto|cpu|cuda] [--batches 2]
                                     [--batch N] [--free N] [--nudge N] [--reference N]
                                     [--threads N] [--json]

``--batch``, ``--free``, ``--nudge`` measure a smaller batch or fewer sweeps than the circuit's
(a slow CPU); the projection to the circuit's own batch and phase lengths is then linear in
examples x sweeps (each sweep costs the same, whatever the batch size: a lower bound on a GPU,
where a small batch does not fill the device). ``--reference N``: the reference (numpy) engine
too, at batch N, the same sweeps. Prints seconds per batch (each batch; the first includes
warm-up, the figure is the median of the others when there are several) and the projected
seconds per batch of the circuit and per epoch of 50,000 examples; asserts nothing; saves them
to ``benchmarks/results/cifar.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from neurosim import config, engines
from neurosim.training.optimizer import make_optimizer, resolve_learning_rates

import results

TABLES = [{"id": "runs", "rows": "runs", "columns": [
    ["engine", "engine"], ["device", "device"], ["batch", "batch"],
    ["sweeps free + nudged", ["free", "nudged_phases", "nudge"], "{} + {} x {}"],
    ["s per batch (median after the first)", "seconds_per_batch", "{:.3f}"],
    ["projected s per batch of the circuit", "projected_seconds_per_circuit_batch", "{:,.1f}"],
    ["projected s per epoch of 50,000", "projected_seconds_per_epoch", "{:,.0f}"],
    ["extrapolated", "extrapolated"]]}]

CIRCUIT = os.path.join(os.path.dirname(__file__), "..", "circuits", "cifar10_laborieux.toml")
EPOCH = 50_000          # CIFAR-10 / CIFAR-100 training examples


def measure(circuit, name, device, batch, free, nudge, batches, threads, seed=0):
    """Seconds of each of ``batches`` training steps of engine ``name`` at ``batch`` examples
    with ``free`` / ``nudge`` sweeps, and the number of nudged phases per batch."""
    net = config.build_network(circuit.network)
    settings = dict(engines.settings_of(circuit), free_steps=free, nudge_steps=nudge)
    if name == "torch":
        settings.update(device=device, threads=threads)
    else:
        settings.pop("device", None)
        settings.update(threads=1, solver=circuit.engine.solver)
    eng = engines.build(name, net, batch_size=batch, **settings)
    L = circuit.learning
    opt = make_optimizer(L.optimizer, resolve_learning_rates(net, L.lr, L.bias_lr),
                         L.momentum, L.adam_betas, L.weight_decay)
    rng = np.random.default_rng(seed)
    n_in = net.sizes[net.inputs[0]]
    n_out = net.sizes[net.outputs[0]]
    times = []
    for b in range(batches):
        x = rng.random((batch, n_in), dtype=np.float32).astype(net.dtype)
        y = np.eye(n_out, dtype=net.dtype)[rng.integers(0, n_out, batch)]
        t = time.perf_counter()
        eng.step(x, y, opt, rng=np.random.default_rng([seed, b]))
        times.append(time.perf_counter() - t)
    nudged = sum(1 for v in eng.plan.nudges if v != 0)
    where = str(getattr(eng, "device", "cpu"))
    return times, nudged, where


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuit", default=CIRCUIT)
    ap.add_argument("--device", default="auto", help="engine.device of the torch engine")
    ap.add_argument("--batches", type=int, default=2, help="training steps timed")
    ap.add_argument("--batch", type=int, help="examples per batch (default: the circuit's)")
    ap.add_argument("--free", type=int, help="free sweeps (default: the circuit's)")
    ap.add_argument("--nudge", type=int, help="sweeps per nudged phase (default: the circuit's)")
    ap.add_argument("--reference", type=int, default=0, metavar="N",
                    help="also the reference engine at batch N (0: not)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON line")
    results.add_out_argument(ap, "cifar")
    a = ap.parse_args()
    rec = results.start("cifar", packages=("torch",))
    circuit, _ = config.load(a.circuit)
    E, T = circuit.engine, circuit.train
    batch, free, nudge = a.batch or T.batch_size, a.free or E.free_steps, a.nudge or E.nudge_steps
    import torch
    out = {"circuit": circuit.name,
           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "circuit_batch": T.batch_size, "circuit_free": E.free_steps,
           "circuit_nudge": E.nudge_steps, "runs": []}
    cases = [("torch", batch)] + ([("reference", a.reference)] if a.reference else [])
    for name, n in cases:
        times, nudged, where = measure(circuit, name, a.device, n, free, nudge, a.batches,
                                       a.threads)
        per = float(np.median(times[1:])) if len(times) > 1 else times[0]
        sweeps, full = free + nudged * nudge, E.free_steps + nudged * E.nudge_steps
        circuit_batch = per * (full / sweeps) * (T.batch_size / n)
        row = {"engine": name, "device": where, "batch": n, "free": free, "nudge": nudge,
               "nudged_phases": nudged, "seconds": [round(t, 4) for t in times],
               "seconds_per_batch": round(per, 4),
               "projected_seconds_per_circuit_batch": round(circuit_batch, 2),
               "projected_seconds_per_epoch": round(circuit_batch * -(-EPOCH // T.batch_size), 1),
               "extrapolated": (n, sweeps) != (T.batch_size, full)}
        out["runs"].append(row)
        if not a.json:
            print("%-9s %-6s batch %3d, %d free + %d x %d nudged sweeps: %s s per batch "
                  "(each: %s)" % (name, where, n, free, nudged, nudge, "%.3f" % per,
                                  ", ".join("%.3f" % t for t in times)))
            print("          -> batch %d, %d + %d x %d sweeps: %.1f s per batch, %.0f s per "
                  "epoch of %d%s" % (T.batch_size, E.free_steps, nudged, E.nudge_steps,
                                     circuit_batch, row["projected_seconds_per_epoch"], EPOCH,
                                     " (linear extrapolation)" if row["extrapolated"] else ""))
    if a.json:
        print(json.dumps(out))
    rec.save(out, TABLES, settings={"circuit": os.path.relpath(a.circuit, results.ROOT),
                                     "device": a.device, "threads": a.threads}, path=a.out)


if __name__ == "__main__":
    main()
