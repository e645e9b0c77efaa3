"""The theorem on the embedded network: ``neurosim theorem --json`` as a subprocess, its
figures saved, and its figure copied to ``docs/theorem.png`` (the README's figure).

    python benchmarks/bench_theorem.py [--figure docs/theorem.png]

Saves ``benchmarks/results/theorem.json``: the worst cosine and relative error of EP's
temporal derivatives ``u_k`` against RBP's ``-Sbar_k`` over the nudged phase at the smallest
beta, of the synapses' ``P_k`` against ``Thetabar_k``, the error at ``k = 0``, EP's bias slopes
(one-sided and symmetric), EP against RBP at beta = 1e-3 and every gradient method against
the dense implicit solve."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = [
    {"id": "theorem", "title": "The theorem over the nudged phase (200 steps, the smallest beta)",
     "columns": [
         ["u_0 vs -Sbar_0, relative error", "u0_error", "{:.1e}"],
         ["worst cosine(u_k, -Sbar_k)", "worst_cosine_u", "{:.7f}"],
         ["worst cosine(P_k, Thetabar_k)", "worst_cosine_P", "{:.8f}"],
         ["EP bias slopes one-sided / symmetric", ["slope_one_sided", "slope_symmetric"],
          "{:.2f}"],
         ["spectral radius of dG/ds", "spectral_radius", "{:.4f}"],
         ["seconds", "seconds", "{:.1f}"]]},
    {"id": "methods", "title": "Every gradient method against the dense implicit solve",
     "rows": "methods", "columns": [["method", "method"],
                                    ["relative error", "rel_error", "{:.1e}"]]},
]
FORMATS = {"worst_cosine_u": "{:.7f}", "slope_one_sided": "{:.2f}",
           "slope_symmetric": "{:.2f}", "u0_error": "{:.0e}"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--figure", default=os.path.join(ROOT, "docs", "theorem.png"),
                    help="where to copy theorem.png (default docs/theorem.png)")
    results.add_out_argument(ap, "theorem")
    a = ap.parse_args()
    rec = results.start("theorem")
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "neurosim.cli", "theorem", "--json",
                            "--out", out], capture_output=True, text=True)
        wall = time.perf_counter() - t
        if r.returncode:
            sys.exit("neurosim theorem failed:\n%s" % r.stderr[-2000:])
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        shutil.copyfile(os.path.join(out, "theorem.png"), a.figure)
    fig = {k: v for k, v in summary.items() if k not in ("png", "h5", "methods_rel_error")}
    fig["methods"] = [{"method": m, "rel_error": e}
                      for m, e in summary["methods_rel_error"].items()]
    fig["wall_seconds"] = wall
    print("u_k vs -Sbar_k: worst cosine %.7f at beta %g; EP bias slopes %.2f / %.2f; "
          "figure copied to %s" % (fig["worst_cosine_u"], fig["beta_min"],
                                   fig["slope_one_sided"], fig["slope_symmetric"], a.figure))
    rec.save(fig, TABLES, FORMATS, path=a.out)


if __name__ == "__main__":
    main()
