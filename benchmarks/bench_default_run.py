"""The default run: ``neurosim run`` of the embedded default circuit (digits, 64-256-10, as
shipped) in a temporary output folder, as a subprocess, and the figures of its run folder's
``metrics.json``.

    python benchmarks/bench_default_run.py [--circuit default] [--set KEY=VALUE ...]

Saves ``benchmarks/results/default_run.json``: test accuracy, training seconds (the epochs'
batch loops, fidelity batches included), the run's own seconds (set-up, training and
evaluation), the command's wall seconds (imports, data and the run folder's files included),
the fidelity cosine to RBP (mean and worst over the fidelity batches with a non-zero RBP
gradient) and how many fidelity batches were drawn of all training batches."""
import argparse
import json
import os
import tempfile

import results

TABLES = [{"id": "summary", "columns": [
    ["circuit", "circuit", "`{}`"], ["engine", "engine"], ["epochs", "epochs"],
    ["test accuracy", "test_accuracy_percent", "**{:.2f} %**"],
    ["training s", "training_seconds", "{:.1f}"], ["run s", "run_seconds", "{:.1f}"],
    ["wall s", "wall_seconds", "{:.1f}"],
    ["fidelity cosine mean / worst", ["fidelity_cosine_mean", "fidelity_cosine_worst"],
     "{:.3f}"],
    ["fidelity batches: drawn / with a cosine / of all batches",
     ["fidelity_batches_drawn", "fidelity_batches_with_cosine", "training_batches"], "{:,}"],
    ["free distance worst", "free_distance_worst", "{:.1e}"],
    ["sweeps per phase free / nudged", ["free_steps_mean", "nudge_steps_mean"], "{:.1f}"],
    ["unsettled phases free / nudged", ["unsettled_free_batches", "unsettled_nudged_batches"]],
]}]
FORMATS = {"test_accuracy_percent": "{:.2f}", "test_accuracy": "{:.4f}",
           "training_seconds": "{:.1f}", "run_seconds": "{:.1f}", "wall_seconds": "{:.0f}",
           "fidelity_cosine_mean": "{:.3f}", "fidelity_cosine_worst": "{:.3f}"}


def figures_of(metrics, wall):
    """The saved figures of one run's ``metrics.json`` and its command's wall seconds."""
    h, f = metrics["history"], metrics.get("fidelity", {})
    cos = f.get("cosine/all", [])
    keep = ("name", "engine", "dataset", "epochs", "test_accuracy", "best_test_accuracy",
            "seconds_per_epoch", "examples_per_second", "fidelity_cosine_mean",
            "fidelity_cosine_worst", "free_distance_worst", "rbp_residual_worst",
            "free_steps_mean", "nudge_steps_mean", "unsettled_free_batches",
            "unsettled_nudged_batches")
    out = {k: metrics.get(k) for k in keep}
    out.update(circuit=metrics["name"], test_accuracy_percent=100 * metrics["test_accuracy"],
               training_seconds=sum(h["seconds"]), run_seconds=metrics["seconds"],
               wall_seconds=wall, training_batches=metrics.get("batches"),
               fidelity_batches_drawn=len(cos),
               fidelity_batches_with_cosine=sum(c is not None for c in cos),
               fidelity_batches_rbp_zero=int(sum(v or 0 for v in f.get("rbp_zero", []))))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuit", default=None, help="circuit (default: the embedded default)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    results.add_out_argument(ap, "default_run")
    a = ap.parse_args()
    rec = results.start("default_run")
    with tempfile.TemporaryDirectory() as out:
        summary = results.neurosim_run(a.circuit, a.set, out)
        with open(os.path.join(summary["run_dir"], "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
    wall = summary["wall_seconds"]
    fig = figures_of(metrics, wall)
    print("%s on %s (%s engine, %d epochs): test accuracy %.2f %%; training %.1f s, run %.1f s, "
          "wall %.1f s; fidelity cosine mean %.3f / worst %.3f over %d of %d fidelity batches "
          "(%d training batches)" % (
              fig["circuit"], fig["dataset"], fig["engine"], fig["epochs"],
              fig["test_accuracy_percent"], fig["training_seconds"], fig["run_seconds"],
              wall, fig["fidelity_cosine_mean"], fig["fidelity_cosine_worst"],
              fig["fidelity_batches_with_cosine"], fig["fidelity_batches_drawn"],
              fig["training_batches"] or 0))
    rec.save(fig, TABLES, FORMATS, settings={"circuit": a.circuit or "default",
                                             "overrides": a.set}, path=a.out)


if __name__ == "__main__":
    main()
