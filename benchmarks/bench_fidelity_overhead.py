"""What fidelity logging costs: ``neurosim run fashion_mnist_784-500-10`` (or ``--circuit``)
as shipped (fidelity batches on) against the same run with ``train.fidelity_batches = 0``,
measured in one run of this script, alternating the two so machine load hits both alike.

    python benchmarks/bench_fidelity_overhead.py [--epochs 1] [--repeats 3]
    python benchmarks/bench_fidelity_overhead.py --circuit conv_fashion --repeats 1 \
        --set engine.name=torch

Prints seconds per epoch of each (median over repeats), their ratio (the issue's target is
<= 1.10), the ground truth's worst residual and the test accuracy of each (the same seed gives
the same weights with and without the check)."""
import argparse
import json
import subprocess
import sys
import tempfile

import numpy as np


def run(circuit, overrides, epochs, fidelity, out):
    cmd = [sys.executable, "-m", "neurosim.cli", "run", circuit, "--json", "--no-progress",
           "--set", "train.epochs=%d" % epochs, "--set", "output.dir=%r" % out]
    for o in overrides:
        cmd += ["--set", o]
    if not fidelity:
        cmd += ["--set", "train.fidelity_batches=0"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--circuit", default="fashion_mnist_784-500-10")
    ap.add_argument("--set", action="append", default=[], help="a circuit override, repeatable")
    a = ap.parse_args()
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


if __name__ == "__main__":
    main()
