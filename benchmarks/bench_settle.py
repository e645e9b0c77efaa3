"""What settling phases cost: ``neurosim run`` (the default circuit, reference engine) as
shipped (``engine.tol = 1e-8``, at most 300 free and 100 nudged sweeps) against the fixed
counts it ran before (20 free and 8 nudged sweeps, ``tol = 0``), alternating the two so
machine load hits both alike.

    python benchmarks/bench_settle.py [--repeats 2] [--circuit default]

Prints per setting: test accuracy, the worst distance of a fidelity batch's free state to the
exact fixed point (``free_distance_worst``), the fidelity cosine (mean and worst), the mean
sweeps per phase, the unsettled batches, seconds per epoch (median over repeats) and the
ratio of the two."""
import argparse
import json
import subprocess
import sys
import tempfile

import numpy as np

FIXED = ["engine.tol=0", "engine.free_steps=20", "engine.nudge_steps=8"]


def run(circuit, overrides, out):
    cmd = [sys.executable, "-m", "neurosim.cli", "run", circuit, "--json", "--no-progress",
           "--set", "output.dir=%r" % out]
    for o in overrides:
        cmd += ["--set", o]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--circuit", default="default")
    a = ap.parse_args()
    rows = {"settling (as shipped)": [], "fixed 20 + 8 sweeps": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(a.repeats):
            rows["settling (as shipped)"].append(run(a.circuit, [], out))
            rows["fixed 20 + 8 sweeps"].append(run(a.circuit, FIXED, out))
    print("circuit %s, engine %s, %d repeats (median seconds)"
          % (a.circuit, rows["fixed 20 + 8 sweeps"][0]["engine"], a.repeats))
    med = {}
    for name, rs in rows.items():
        r = rs[-1]
        med[name] = float(np.median([x["seconds_per_epoch"] for x in rs]))
        print("%-22s test acc %.4f | free distance worst %.2g | cosine mean %.3f worst %.3f | "
              "sweeps free %.1f nudged %.1f | unsettled free %s nudged %s | %.3f s/epoch"
              % (name, r["test_accuracy"], r.get("free_distance_worst", float("nan")),
                 r.get("fidelity_cosine_mean", float("nan")),
                 r.get("fidelity_cosine_worst", float("nan")), r.get("free_steps_mean", 0),
                 r.get("nudge_steps_mean", 0), r.get("unsettled_free_batches", "-"),
                 r.get("unsettled_nudged_batches", "-"), med[name]))
    print("ratio settling / fixed: %.2f"
          % (med["settling (as shipped)"] / med["fixed 20 + 8 sweeps"]))


if __name__ == "__main__":
    main()
