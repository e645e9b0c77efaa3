"""The accelerator engine against the reference engine: ``neurosim run`` of the same circuit
on each, as shipped (fidelity logging, evaluation and traces included), one after the other
with the same seed, wall time of the whole command (start-up, imports, data, and any
compilation included).

    python benchmarks/bench_engines.py [--quick] [--device auto] [--out FILE.json]

Cases: ``conv_fashion`` for one epoch, ``fashion_mnist_784-500-10`` over its 10 epochs
(``--quick``: one epoch of each). Prints per case and engine the seconds, the test error and
the fidelity cosine, then the ratio reference / torch (above 1: torch is faster); saves the
same to ``benchmarks/results/engines.json`` (``--out``)."""
import argparse
import tempfile

import results

CASES = [("conv_fashion", ["train.epochs=1"]), ("fashion_mnist_784-500-10", [])]
TABLES = [{"id": "cases", "rows": "cases", "columns": [
    ["circuit", "circuit", "`{}`"], ["overrides", "overrides", "`{}`"], ["note", "note"],
    ["reference s", "reference.wall_seconds", "{:.1f}"],
    ["torch s", "torch.wall_seconds", "{:.1f}"], ["reference / torch", "ratio", "**{:.2f}**"],
    ["test error reference / torch", ["reference.test_accuracy", "torch.test_accuracy"],
     "{:.2f} %", "error_percent"],
    ["fidelity cosine mean reference / torch",
     ["reference.fidelity_cosine_mean", "torch.fidelity_cosine_mean"], "{:.5f}"]]}]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one epoch of every case")
    ap.add_argument("--device", default="auto", help="engine.device of the torch runs")
    ap.add_argument("--cases", nargs="*", default=[c for c, _ in CASES])
    ap.add_argument("--note", default=None, help="a remark saved with every case")
    results.add_out_argument(ap, "engines")
    a = ap.parse_args()
    rec = results.start("engines", packages=("torch",))
    import torch
    figures = {"cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               "cases": []}
    with tempfile.TemporaryDirectory() as out:
        for circuit, extra in CASES:
            if circuit not in a.cases:
                continue
            if a.quick and "train.epochs=1" not in extra:
                extra = list(extra) + ["train.epochs=1"]
            row = {"circuit": circuit, "overrides": extra, "note": a.note}
            for engine in ("reference", "torch"):
                more = ["engine.name=%s" % engine]
                if engine == "torch":
                    more.append("engine.device=%s" % a.device)
                r = results.neurosim_run(circuit, extra + more, out)
                row[engine] = {k: r.get(k) for k in (
                    "wall_seconds", "seconds", "test_accuracy", "epochs", "fidelity_cosine_mean",
                    "fidelity_cosine_worst", "free_distance_worst")}
                print("%-26s %-9s %8.1f s (training %.1f s) test error %.2f %% cosine mean %s"
                      % (circuit, engine, r["wall_seconds"], r.get("seconds", float("nan")),
                         100 * (1 - r["test_accuracy"]), r.get("fidelity_cosine_mean")),
                      flush=True)
            row["ratio"] = row["reference"]["wall_seconds"] / row["torch"]["wall_seconds"]
            print("%-26s reference / torch: %.2f" % (circuit, row["ratio"]), flush=True)
            figures["cases"].append(row)
    rec.save(figures, TABLES, {"ratio": "{:.2f}"},
             settings={"quick": a.quick, "device": a.device}, path=a.out)


if __name__ == "__main__":
    main()
