"""What fidelity logging costs: ``neurosim run fashion_mnist_784-500-10`` (or ``--circuit``)
as shipped (fidelity batches on) against the same run with ``train.fidelity_batches = 0``,
measured in one run of this script, alternating the two so machine load hits both alike.

    python benchmarks/bench_fidelity_overhead.py [--epochs 1] [--repeats 3]
    python benchmarks/bench_fidelity_overhead.py --circuit conv_fashion --repeats 1 \
        --set engine.name=torch

Prints seconds per epoch of each (median over repeats), their ratio (the issue's target is
<= 1.10), the ground truth's worst residual and the test accuracy of each (the same seed gives
the same weights with and without the check); saves them to
``benchmarks/results/fidelity_overhead.json`` (``--out``)."""
import argparse
import tempfile

import numpy as np

import results

TABLES = [{"id": "overhead", "columns": [
    ["circuit", "circuit", "`{}`"], ["engine", "engine"], ["epochs", "epochs"],
    ["repeats", "repeats"],
    ["s per epoch, fidelity on / off (medians)", ["seconds_on", "seconds_off"], "{:.3f}"],
    ["ratio on / off", "ratio", "**{:.3f}**"],
    ["worst ground-truth residual", "rbp_residual_worst", "{:.2g}"],
    ["test accuracy on / off", ["test_accuracy_on", "test_accuracy_off"], "{:.2f} %",
     "percent"]]}]


def run(circuit, overrides, epochs, fidelity, out):
    """One ``neurosim run`` of ``epochs`` epochs, with or without its fidelity batches."""
    more = ["train.epochs=%d" % epochs] + ([] if fidelity else ["train.fidelity_batches=0"])
    return results.neurosim_run(circuit, list(overrides) + more, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--circuit", default="fashion_mnist_784-500-10")
    ap.add_argument("--set", action="append", default=[], help="a circuit override, repeatable")
    results.add_out_argument(ap, "fidelity_overhead")
    a = ap.parse_args()
    rec = results.start("fidelity_overhead")
    with tempfile.TemporaryDirectory() as out:
        on, off = [], []
        for _ in range(a.repeats):
            on.append(run(a.circuit, a.set, a.epochs, True, out))
            off.append(run(a.circuit, a.set, a.epochs, False, out))
    s_on = float(np.median([r["seconds_per_epoch"] for r in on]))
    s_off = float(np.median([r["seconds_per_epoch"] for r in off]))
    print("circuit %s, engine: %s; %d epoch(s), %d repeats (median)"
          % (a.circuit, on[0]["engine"], a.epochs, a.repeats))
    print("seconds per epoch, fidelity on : %.3f" % s_on)
    print("seconds per epoch, fidelity off: %.3f" % s_off)
    print("ratio on / off: %.3f (target <= 1.10)" % (s_on / s_off))
    print("worst RBP ground-truth residual: %.3g" % max(r["rbp_residual_worst"] for r in on))
    print("test accuracy on / off: %.4f / %.4f" % (on[0]["test_accuracy"],
                                                   off[0]["test_accuracy"]))
    rec.save({"circuit": a.circuit, "engine": on[0]["engine"], "epochs": a.epochs,
              "repeats": a.repeats, "seconds_on": s_on, "seconds_off": s_off,
              "ratio": s_on / s_off,
              "seconds_on_each": [r["seconds_per_epoch"] for r in on],
              "seconds_off_each": [r["seconds_per_epoch"] for r in off],
              "rbp_residual_worst": max(r["rbp_residual_worst"] for r in on),
              "test_accuracy_on": on[0]["test_accuracy"],
              "test_accuracy_off": off[0]["test_accuracy"]},
             TABLES, {"ratio": "{:.3f}"}, {"overrides": a.set}, path=a.out)


if __name__ == "__main__":
    main()
