"""What settling phases cost: ``neurosim run`` (the default circuit, reference engine) as
shipped (``engine.tol = 1e-8``, at most 300 free and 100 nudged sweeps) against the fixed
counts it ran before (20 free and 8 nudged sweeps, ``tol = 0``), alternating the two so
machine load hits both alike.

    python benchmarks/bench_settle.py [--repeats 2] [--circuit default]

Prints per setting: test accuracy, the worst distance of a fidelity batch's free state to the
exact fixed point (``free_distance_worst``), the fidelity cosine (mean and worst), the mean
sweeps per phase, the unsettled batches, seconds per epoch (median over repeats) and the
ratio of the two; saves them to ``benchmarks/results/settle.json`` (``--out``)."""
import argparse
import tempfile

import numpy as np

import results

FIXED = ["engine.tol=0", "engine.free_steps=20", "engine.nudge_steps=8"]
TABLES = [{"id": "runs", "rows": "runs", "columns": [
    ["setting", "setting"], ["test acc", "test_accuracy", "{:.2f} %", "percent"],
    ["free distance worst", "free_distance_worst", "{:.1e}"],
    ["cosine to RBP mean / worst", ["fidelity_cosine_mean", "fidelity_cosine_worst"], "{:.3f}"],
    ["sweeps per phase free / nudged", ["free_steps_mean", "nudge_steps_mean"], "{:.1f}"],
    ["phases unsettled at the cap free / nudged (of batches)",
     ["unsettled_free_batches", "unsettled_nudged_batches", "batches"], "{} / {} (of {:,})"],
    ["s per epoch (median of repeats)", "seconds_per_epoch_median", "{:.3f}"],
    ["s per epoch, each run", "seconds_per_epoch", "{:.3f}"]]},
    {"id": "ratio", "columns": [["settling / fixed, s per epoch", "ratio", "**{:.2f}**"],
                                ["repeats", "repeats"], ["circuit", "circuit", "`{}`"],
                                ["engine", "engine"]]}]
KEEP = ("test_accuracy", "free_distance_worst", "fidelity_cosine_mean", "fidelity_cosine_worst",
        "free_steps_mean", "nudge_steps_mean", "unsettled_free_batches",
        "unsettled_nudged_batches", "batches")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--circuit", default="default")
    results.add_out_argument(ap, "settle")
    a = ap.parse_args()
    rec = results.start("settle")
    rows = {"settling (as shipped)": [], "fixed 20 + 8 sweeps": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(a.repeats):
            rows["settling (as shipped)"].append(results.neurosim_run(a.circuit, [], out))
            rows["fixed 20 + 8 sweeps"].append(results.neurosim_run(a.circuit, FIXED, out))
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
    ratio = med["settling (as shipped)"] / med["fixed 20 + 8 sweeps"]
    print("ratio settling / fixed: %.2f" % ratio)
    settings = [dict({k: rs[-1].get(k) for k in KEEP}, setting=name,
                     seconds_per_epoch=[x["seconds_per_epoch"] for x in rs],
                     seconds_per_epoch_median=med[name]) for name, rs in rows.items()]
    rec.save({"runs": settings, "ratio": ratio, "repeats": a.repeats,
              "circuit": a.circuit, "engine": rows["fixed 20 + 8 sweeps"][0]["engine"]},
             TABLES, {"ratio": "{:.2f}"}, {"fixed": FIXED}, path=a.out)


if __name__ == "__main__":
    main()
