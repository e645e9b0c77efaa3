"""Spiking-circuit speed: simulated seconds per wall second and synaptic events per wall
second of one EP step (plasticity on) of a 784-500-10 hard-sigmoid network compiled into a
Brian2 spiking circuit on ``device="cpp_standalone"`` (Poisson neurons, states clipped to
[0, 1], the circuit's default phases: 1000 free + 1000 (+beta) + 1000 (-beta) steps of
dt = 1 ms, symmetric EP, beta 0.3, batch 1: one Fashion-MNIST test image, or random inputs
in [0, 1] if the data are absent), measured in one run.

    python benchmarks/bench_brian_spiking.py [--free 1000] [--nudge 1000] [--no-record-run]
                                             [--profile]

The C++ compilation is separated from the run: "binary" is the whole binary process (the
simulation loop, plasticity included, and reading the initial arrays and writing the results;
the loop alone is no longer timed since the circuit stopped reading Brian2's private
``device._last_run_time``), and "total" the Python call (code generation, C++ build, binary,
reading the results back). The ratio to real time is simulated seconds / binary seconds. The
same step is then repeated with ``record=True`` (state and spike monitors). ``--profile`` prints Brian2's per-code-object
profile of the first run. Asserts nothing; saves the figures to
``benchmarks/results/brian_spiking.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import neurosim as ns

import results

TABLES = [{"id": "runs", "rows": "runs", "columns": [
    ["record", "record"], ["simulated s", "simulated_seconds", "{:.3f}"],
    ["binary s (x real time)", ["binary_seconds", "x_real_time_binary"],
     "{:.3f} (**{:.1f}x**)"],
    ["C++ build s", "compile_seconds", "{:.1f}"], ["whole call s", "total_seconds", "{:.1f}"],
    ["synaptic events / s of the binary", "synaptic_events_per_second_of_binary", "{:.3g}"],
    ["spikes (x / h1 / y)", ["spikes.x", "spikes.h1", "spikes.y"], "{:,} / {:,} / {:,}"]]}]


def measure(net, x, y, record, profile, free, nudge):
    c = ns.brian.compile(net, model="spiking", device="cpp_standalone", clip=True, seed=0,
                         record=record, neuron="poisson")     # the study's units, not DEFAULTS'
    c.profile = profile
    t0 = time.perf_counter()
    c.ep_update(x, y, beta=0.3, free_steps=free, nudge_steps=nudge, variant="symmetric")
    total = time.perf_counter() - t0
    st = dict(c.stats)
    sim, binary = st["simulated_seconds"], st["binary_seconds"]
    out = {"record": record, "simulated_seconds": sim, "binary_seconds": binary,
           "compile_seconds": st["compile_seconds"], "total_seconds": total,
           "x_real_time_binary": sim / binary, "synaptic_events": st["synaptic_events"],
           "synaptic_events_per_second_of_binary": st["synaptic_events"] / binary,
           "spikes": st["spikes"], "spikes_total": int(sum(st["spikes"].values()))}
    return out, st.get("profile")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--free", type=int, default=1000, help="free-phase steps (dt = 1 ms)")
    ap.add_argument("--nudge", type=int, default=1000, help="steps of each nudged phase")
    ap.add_argument("--no-record-run", action="store_true", help="skip the record=True run")
    ap.add_argument("--profile", action="store_true", help="Brian2 profile of the first run")
    results.add_out_argument(ap, "brian_spiking")
    args = ap.parse_args()
    rec = results.start("brian_spiking")
    try:
        d = ns.datasets.load("fashion-mnist", limit_test=1)
        x, y, source = d.x_test[:1], d.y_test[:1], "Fashion-MNIST test image 0"
    except ns.datasets.DatasetError:
        rng = np.random.default_rng(0)
        x, y, source = rng.uniform(0, 1, (1, 784)), np.eye(10)[[3]], "random inputs"
    net = ns.layered([784, 500, 10], activation="hard_sigmoid", seed=0)
    n_w = sum(v.size for k, v in net.params.items() if k.startswith("W:"))
    n_back = sum(v.size for k, v in net.params.items()       # backward copies (not from x)
                 if k.startswith("W:") and not k.startswith("W:x->"))
    print("784-500-10 hard sigmoid spiking circuit (Poisson, clip, cpp_standalone, 1 thread), "
          "symmetric EP with plasticity, %d free + 2 x %d nudged steps of 1 ms, batch 1 (%s), "
          "%d tied weights, %d synapses" % (args.free, args.nudge, source, n_w, n_w + n_back))
    runs, profile = [], None
    for record in ([False] if args.no_record_run else [False, True]):
        r, prof = measure(net, x, y, record, args.profile and not runs, args.free,
                          args.nudge)
        runs.append(r)
        print("record=%-5s simulated %.3f s | binary %.3f s (%.1fx real time) | compile %.1f s "
              "| total %.1f s | %.3g synaptic events (%.3g /s of the binary) | spikes %s"
              % (record, r["simulated_seconds"], r["binary_seconds"], r["x_real_time_binary"],
                 r["compile_seconds"], r["total_seconds"], r["synaptic_events"],
                 r["synaptic_events_per_second_of_binary"], r["spikes"]))
        if prof:
            tot = sum(t for _, t in prof)
            profile = [[name, t] for name, t in prof]
            print("profile (record=False), top code objects:")
            for name, t in prof[:12]:
                print("  %-45s %7.3f s %5.1f %%" % (name, t, 100 * t / tot))
    rec.save({"runs": runs, "source": source, "tied_weights": n_w, "synapses": n_w + n_back,
              "profile": profile}, TABLES,
             settings={"free": args.free, "nudge": args.nudge}, path=args.out)


if __name__ == "__main__":
    main()
