"""CIFAR-10 on a CUDA GPU: circuits/cifar10_laborieux.toml for a few epochs on the torch engine
(``engine.device = "cuda"``), its seconds per epoch and test accuracy beside Laborieux & Zenke
2022's logged run.

    python benchmarks/gpu_cifar10.py [--epochs 1] [--limit N] [--budget 420] [--device cuda]
                                     [--set KEY=VALUE ...]

With CIFAR-10's binary files on the search path (``$NEUROSIM_DATA``, ``./datasets/cifar-10/``;
datasets/README.md) it runs ``neurosim run circuits/cifar10_laborieux.toml --set
engine.device=cuda --set train.epochs=N`` and reads the run's metrics; without them it trains
the same circuit through the Python API (``neurosim.commands.run.build_trainer``) on random
inputs of CIFAR shape with random labels, and says so: the seconds are then meaningful, the
accuracy is chance.

Before training it times two batches (benchmarks/bench_cifar.py) and projects the epoch; when
the projected training plus evaluation exceeds ``--budget`` seconds it limits the training
examples to fit (``dataset.limit_train``) and says so: the accuracy is then not comparable to
a full epoch. ``--limit N`` sets that limit itself (0: the whole 50,000).

The comparison (not measured here; holomorphic_eqprop's results/table2/ep_cif10 run 1 log,
Laborieux & Zenke 2022: holomorphic EP, N = 2, soft pooling, T1 = 250, T2 = 60, batch 128, on
their GPU): 596.96 s for epoch 1 (compilation included), then about 230.7 s per epoch; test
accuracy 40.3 % after epoch 1, 56.0 % after epoch 2. Targets (issue 24): at most a third of
their time per epoch (76.9 s), accuracy within 0.5 points at the same epoch (a different EP
variant and pooling: indicative only).

Exit status 2 when no CUDA GPU is found (``--device cpu`` runs it anyway, as a smoke test).
Saves the per-epoch figures to ``benchmarks/results/gpu_cifar10.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import results

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CIRCUIT = os.path.join(ROOT, "circuits", "cifar10_laborieux.toml")
THEIR_EPOCH_S = 230.7                     # epochs 2 onward of their log
THEIR_ACCURACY = {1: 0.403, 2: 0.560}     # test accuracy after epoch 1, 2
N_TRAIN, N_TEST = 50_000, 10_000
TABLES = [{"id": "epochs", "rows": "epochs", "columns": [
    ["epoch", "epoch"], ["training s", "seconds", "{:.1f}"], ["examples", "examples", "{:,}"],
    ["s per 50,000", "seconds_per_50k", "**{:.1f}**"],
    ["ratio to Laborieux & Zenke's 230.7 s (target <= 0.33)", "ratio_to_theirs", "{:.2f}"],
    ["test accuracy", "test_accuracy", "{:.2f} %", "percent"], ["data", "data"]]}]


def say(*a):
    print("gpu_cifar10:", *a, flush=True)


def probe(circuit, device):
    """Seconds of one training batch of the circuit (median of two, after a warm-up one)."""
    sys.path.insert(0, HERE)
    from bench_cifar import measure
    E, T = circuit.engine, circuit.train
    times, _, where = measure(circuit, "torch", device, T.batch_size, E.free_steps,
                              E.nudge_steps, 3, 1)
    return float(np.median(times[1:])), where


def synthetic(n_train, n_test, n_classes, seed=0):
    """Random inputs of CIFAR shape in [0, 1) with random labels (a Dataset)."""
    from neurosim.datasets import Dataset
    rng = np.random.default_rng(seed)
    parts = []
    for n in (n_train, n_test):
        x = rng.random((n, 3072), dtype=np.float32)
        lab = rng.integers(0, n_classes, n)
        parts += [x, np.eye(n_classes, dtype=np.float32)[lab], lab]
    return Dataset("synthetic-cifar", *parts, n_classes, source="random (gpu_cifar10.py)",
                   image_shape=(3, 32, 32))


def run_cli(a, overrides):
    """``neurosim run`` of the circuit with ``overrides``; the run's metrics."""
    out = tempfile.mkdtemp(prefix="gpu_cifar10-")
    cmd = [sys.executable, "-m", "neurosim.cli", "run", a.circuit, "--json", "--no-progress",
           "--set", "output.dir=%r" % out]
    for o in overrides:
        cmd += ["--set", o]
    say("running:", " ".join(cmd))
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit("gpu_cifar10: neurosim run failed (exit %d)" % r.returncode)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    with open(os.path.join(summary["run_dir"], "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    return metrics.get("history", {}), summary


def run_api(a, overrides, limit):
    """The same training through the Python API on synthetic data; the history."""
    from neurosim import config
    from neurosim.commands.run import build_engine, build_trainer
    circuit, _ = config.load(a.circuit, overrides)
    net = config.build_network(circuit.network)
    engine = build_engine(circuit, net)
    data = synthetic(limit or N_TRAIN, circuit.dataset.limit_test or N_TEST,
                     net.sizes[net.outputs[0]])
    trainer = build_trainer(circuit, engine, data, progress=False, fidelity_batches=0)
    return trainer.fit()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuit", default=CIRCUIT)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None,
                    help="training examples (default: all that fit --budget; 0: all)")
    ap.add_argument("--budget", type=float, default=420.0,
                    help="seconds of training and evaluation to fit into")
    ap.add_argument("--device", default="cuda", help="engine.device (cuda, cuda:N, or cpu)")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    metavar="KEY=VALUE", help="more circuit overrides")
    results.add_out_argument(ap, "gpu_cifar10")
    a = ap.parse_args()
    rec = results.start("gpu_cifar10", packages=("torch",))
    try:
        import torch
    except ImportError:
        sys.exit("gpu_cifar10: PyTorch is not installed (pip install \"neurosim[torch]\")")
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        say("no CUDA GPU found by torch %s: nothing run (--device cpu for a smoke test)"
            % torch.__version__)
        sys.exit(2)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    say("torch %s, GPU %s, device %s" % (torch.__version__, gpu, a.device))

    from neurosim import config, datasets
    circuit, _ = config.load(a.circuit, ["engine.device=%s" % a.device] + a.overrides)
    try:
        datasets.find_cifar_files()
        real = True
        say("CIFAR-10 binary files found: training on CIFAR-10")
    except datasets.DatasetNotFoundError:
        real = False
        say("CIFAR-10 binary files NOT found (datasets/README.md): training on SYNTHETIC "
            "random data of CIFAR shape; the seconds count, the accuracy is chance")

    per_batch, where = probe(circuit, a.device)
    T = circuit.train
    n_test = circuit.dataset.limit_test or N_TEST
    per_example = per_batch / T.batch_size
    # evaluation: the free phase only, no nudged phases or estimate (about 250 / 310 of a step)
    E = circuit.engine
    eval_example = per_example * E.free_steps / (E.free_steps + 2 * E.nudge_steps)
    projected = per_example * N_TRAIN
    say("probe on %s: %.3f s per batch of %d -> %.1f s per training epoch of %d, about %.0f s "
        "per evaluation of %d" % (where, per_batch, T.batch_size, projected, N_TRAIN,
                                  eval_example * n_test, n_test))
    limit = a.limit
    if limit is None:
        room = a.budget / a.epochs - eval_example * n_test
        limit = 0 if room >= projected else max(T.batch_size, int(room / per_example))
        if limit:
            limit -= limit % T.batch_size
            say("LIMITED to %d training examples per epoch to fit --budget %.0f s: the "
                "accuracy is not comparable to a full epoch's" % (limit, a.budget))
    overrides = ["engine.device=%s" % a.device, "train.epochs=%d" % a.epochs,
                 "train.fidelity_batches=0"] + a.overrides
    if limit:
        overrides.append("dataset.limit_train=%d" % limit)
    t = time.perf_counter()
    if real:
        history, _ = run_cli(a, overrides)
    else:
        history = run_api(a, overrides, limit)
    wall = time.perf_counter() - t
    rows = []
    for i, (sec, acc, rate) in enumerate(zip(history["seconds"], history["test_accuracy"],
                                             history["examples_per_second"]), 1):
        n = int(round(sec * rate))              # the examples trained on in that epoch
        full = sec * N_TRAIN / n
        rows.append({"epoch": i, "seconds": sec, "examples": n, "seconds_per_50k": full,
                     "ratio_to_theirs": full / THEIR_EPOCH_S, "test_accuracy": acc,
                     "data": "CIFAR-10" if real else "synthetic (accuracy is chance)"})
        line = ("epoch %d: %.1f s training (%d examples; %.1f s per 50,000), test accuracy "
                "%.2f %%%s" % (i, sec, n, full, 100 * acc, "" if real else " (synthetic: chance)"))
        say(line)
        say("  vs Laborieux & Zenke 2022: %.1f s per epoch -> ratio %.2f (target <= 0.33)%s"
            % (THEIR_EPOCH_S, full / THEIR_EPOCH_S,
               "; accuracy %.1f %% -> %+.2f points (target within 0.5)"
               % (100 * THEIR_ACCURACY[i], 100 * (acc - THEIR_ACCURACY[i]))
               if real and n == N_TRAIN and i in THEIR_ACCURACY else ""))
    say("wall time %.1f s (start-up, data and evaluation included)" % wall)
    rec.save({"gpu": gpu, "device": a.device, "real_data": real, "probe_seconds_per_batch":
              per_batch, "limit_train": limit or None, "wall_seconds": wall, "epochs": rows},
             TABLES, settings={"epochs": a.epochs, "budget": a.budget, "overrides": a.overrides},
             path=a.out)


if __name__ == "__main__":
    main()
