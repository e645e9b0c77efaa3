"""Throughput of one EP training step on the numpy reference engine (neurosim.engines.reference.ep_step).

Network 784-500-10, hard sigmoid, states clipped to [0, 1] after every Euler step (the 2017
recipe), eps = 0.5, beta = 0.5 with a random sign, learning rates 0.1 / 0.05 per layer,
persistent particles (each step starts its free phase from the previous free state), batch
100, seeded random inputs in [0, 1] and one-hot targets. Settings: 100 free + 20 nudged Euler
steps (the target), and 20 + 4 (the 2017 784-500-10 counts) for reference.

Printed for each dtype: examples/s (best and median over rounds of repeated steps), the
matrix-multiply work of one step (every product the step does: the input drive x W once, the
state-to-state products at every Euler step, the update products), the achieved GFLOP/s, the
GFLOP/s of a 1000x1000 matmul measured in the same run, and their ratio; the speed-up over
the plain path (neurosim.ep.estimate + theta -= lr g, same BLAS threads); one row with BLAS's
own threading (ep_step's blas_threads=None); and where the time of one step goes.

    python benchmarks/bench_reference.py [--seconds 3] [--batch 100] [--blas-threads N|none]

Timings are printed, never asserted (machines are noisy: run it on an idle machine), and saved
to ``benchmarks/results/reference.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import neurosim as ns
from neurosim.engines import reference as engine
from neurosim.relax import Dynamics, blas_threads

import results

SIZES = [784, 500, 10]
EPS, BETA = 0.5, 0.5
LR = {"W:x->h1": 0.1, "b:h1": 0.1, "W:h1->y": 0.05, "b:y": 0.05}
SETTINGS = [(100, 20), (20, 4)]
TABLES = [
    {"id": "steps", "rows": "steps", "columns": [
        ["free+nudged steps", "label"], ["dtype", "dtype"],
        ["ex/s best", "examples_per_second_best", "**{:,.0f}**"],
        ["ex/s median", "examples_per_second_median", "{:,.0f}"],
        ["ms/batch", "ms_per_batch", "{:.2f}"], ["MFLOP/batch", "mflop_per_batch", "{:.1f}"],
        ["GFLOP/s", "gflops", "{:.1f}"],
        ["fraction of machine matmul", "fraction_of_machine_matmul", "{:.2f}"],
        ["fraction of 1-thread matmul", "fraction_of_one_thread_matmul", "{:.2f}"],
        ["vs ep.gradient", "vs_ep_gradient", "{:.2f}x"],
        ["other load (cores)", "other_load", "{:.2f}"]]},
    {"id": "matmul", "title": "1000x1000 matmul, GFLOP/s (best reading of the run)",
     "rows": "matmul", "columns": [["dtype", "dtype"], ["all BLAS threads", "all_threads",
                                                         "{:.1f}"],
                                   ["one thread", "one_thread", "{:.1f}"]]},
    {"id": "breakdown", "title": "where the time of one 100+20 step goes (ms per batch)",
     "rows": "breakdown", "columns": [["part", "part"], ["float64", "float64", "{:.2f}"],
                                      ["float32", "float32", "{:.2f}"]]}]
TARGETS = {"float64": 6000, "float32": 10000}   # examples/s, 100 + 20 steps, this 2-core box


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join("%s %s (%s, %d threads)" % (i.get("internal_api"), i.get("version"),
                                                 i.get("architecture"), i.get("num_threads"))
                     for i in threadpool_info() if i.get("user_api") == "blas")


def matmul_gflops(dtype, n=1000, seconds=1.0):
    """GFLOP/s of an n x n x n matmul (best of repeated runs)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n)).astype(dtype)
    b = rng.random((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    np.matmul(a, b, out=c)
    best, t_end = np.inf, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best / 1e9


def step_flops(net, batch, free_steps, nudge_steps, variant):
    """Multiply-add FLOPs (2 per multiply-add) of the matrix products of one ep_step:
    the constant input drive once, the state-to-state products at every Euler step, and the
    products of the update (one per input projection, two per state-to-state projection)."""
    n_phase_steps = free_steps + nudge_steps * (2 if variant == "symmetric" else 1)
    const = per_step = update = 0
    for t in net.terms:
        f = 2 * batch * net.sizes[t.source] * net.sizes[t.target]
        if t.source in net.inputs:
            const += f
            update += f
        else:
            per_step += f
            if not t.transpose:
                update += 2 * f
    return const + n_phase_steps * per_step + update, per_step


def problem(dtype, batch, seed=0):
    net = ns.layered(SIZES, activation="hard_sigmoid", dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (batch, SIZES[0]))
    y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], batch)]
    return net, x, y


def throughput(fn, batch, seconds, rounds=6):
    """examples/s of ``fn`` (one step per call): (best round, median round, cores used by
    other processes meanwhile)."""
    fn()
    fn()
    per_round = seconds / rounds
    rates = []
    c0 = results.cpu_clock()
    for _ in range(rounds):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= per_round:
                break
        rates.append(n * batch / el)
    return max(rates), float(np.median(rates)), results.other_load(c0, results.cpu_clock())


def fast_step_fn(dtype, batch, free_steps, nudge_steps, threads=1, shards=1):
    net, x, y = problem(dtype, batch)
    rng = np.random.default_rng(1)
    box = {"state": None}

    def fn():
        box["state"], _ = engine.ep_step(net, x, y, BETA, LR, eps=EPS, free_steps=free_steps,
                                        nudge_steps=nudge_steps, variant="random_sign",
                                        clip=True, state=box["state"], rng=rng,
                                        blas_threads=threads, threads=shards)
    return fn


def plain_step_fn(dtype, batch, free_steps, nudge_steps, threads=1):
    """The same training step with the general-purpose API: ep.estimate + theta -= lr g."""
    net, x, y = problem(dtype, batch)
    rng = np.random.default_rng(1)
    box = {"state": None}

    def fn():
        with blas_threads(threads):      # the same BLAS setting as the fast step
            est = ns.ep.estimate(net, x, y, BETA, variant="random_sign", eps=EPS,
                                 free_steps=free_steps, nudge_steps=nudge_steps, clip=True,
                                 state=box["state"], rng=rng)
            for k, g in est.gradient.items():
                net.params[k] -= LR[k] * g
        box["state"] = est.s0
    return fn


def breakdown(dtype, batch, free_steps, nudge_steps, threads, reps=30):
    """Milliseconds per step in each part of ep_step (median over reps), and the time the
    gemm calls of the Euler steps take alone (same operands, same count)."""
    net, x, y = problem(dtype, batch)
    names = ("bind batch + input drive (x W)", "free phase", "nudged phase",
             "update (x^T dr, ...)", "  of which: gemm in Euler steps")
    parts = {k: [] for k in names}
    state = None
    with blas_threads(threads):
        for _ in range(reps):
            t0 = time.perf_counter()
            dyn = Dynamics(net, x, y, clip=True)
            s0 = dyn.initial_state(state)
            gemm, gterms, star, _ = dyn.fast_plan()     # the gemm operands run_fixed uses
            dyn.const                  # the input drive, computed once per batch
            t1 = time.perf_counter()
            dyn.run_fixed(s0, EPS, 0.0, free_steps)
            t2 = time.perf_counter()
            sb = dyn.run_fixed({p: v.copy() for p, v in s0.items()}, EPS, BETA, nudge_steps)
            t3 = time.perf_counter()
            ns.ep.add_energy_contrast(net, dyn.inputs, sb, s0,
                                      {k: -LR[k] / BETA for k in net.params}, net.params)
            t4 = time.perf_counter()
            src = {p: v.copy() for p, v in s0.items()}
            out = {p: np.zeros_like(v) for p, v in s0.items()}
            calls = [(A, src[q].T, ta, out[p].T) for p in net.state_pops
                     for q, A, ta in gterms[p]]
            t5 = time.perf_counter()
            with blas_threads(1):      # as run_fixed does for small products
                for _k in range(free_steps + nudge_steps):
                    for A, Bt, ta, C in calls:
                        gemm(EPS, A, Bt, 1.0, C, ta, 0, 1)
            t6 = time.perf_counter()
            state = s0
            for k, v in zip(names, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t6 - t5)):
                parts[k].append(v * 1e3)
    return {k: float(np.median(v)) for k, v in parts.items()}


def _threads(v):
    return None if v.lower() in ("none", "default") else int(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="timing per measurement of the fast step (default 3)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--blas-threads", type=_threads, default=1,
                    help="ep_step's blas_threads (default 1; 'none': BLAS's own setting)")
    ap.add_argument("--threads", type=int, default=2,
                    help="also time ep_step's threads over the batch (engine.threads; default 2)")
    results.add_out_argument(ap, "reference")
    args = ap.parse_args()
    rec = results.start("reference")
    B, thr = args.batch, args.blas_threads
    print("neurosim reference engine: one EP training step (neurosim.engines.reference.ep_step), "
          "784-500-10 hard sigmoid, clip, eps=%g, beta=%g (random sign), lr 0.1/0.05, "
          "batch %d, persistent particles, blas_threads=%s" % (EPS, BETA, B, thr))
    print("machine: %d CPUs (nproc), %s; numpy %s; BLAS: %s"
          % (os.cpu_count(), results.cpu_model(), np.__version__, blas_info()))
    load0 = os.getloadavg()[0]

    peak_all = {dt: 0.0 for dt in ("float64", "float32")}
    peak1 = dict(peak_all)

    def peaks(seconds):
        """Read the matmul rates again and keep the best reading: another process on a core
        lowers a reading, never raises it."""
        for dt in peak_all:
            with blas_threads(1):
                peak1[dt] = max(peak1[dt], matmul_gflops(dt, seconds=seconds))
            peak_all[dt] = max(peak_all[dt], matmul_gflops(dt, seconds=seconds))

    peaks(1.0)
    rates, lines = {}, []
    rows = [(fs, n, dt, thr, 1) for fs, n in SETTINGS for dt in ("float64", "float32")]
    if thr is not None:
        rows += [(100, 20, dt, None, 1) for dt in ("float64", "float32")]
    if args.threads > 1:
        rows += [(100, 20, dt, thr, args.threads) for dt in ("float64", "float32")]
    for fs, nsteps, dt, th, shards in rows:
        net, _, _ = problem(dt, B)
        flops, _ = step_flops(net, B, fs, nsteps, "one_sided")
        best, med, other = throughput(fast_step_fn(dt, B, fs, nsteps, th, shards), B,
                                      args.seconds)
        label = "%d+%d" % (fs, nsteps) + ("" if th == thr else " (BLAS threads: default)") + \
            ("" if shards == 1 else " (threads over the batch: %d)" % shards)
        ratio = None
        if th == thr and shards == 1:
            rates[(fs, nsteps, dt)] = best
            pbest = throughput(plain_step_fn(dt, B, fs, nsteps, th), B, args.seconds / 3)[0]
            ratio = best / pbest
        lines.append((label, dt, best, med, flops, ratio, other))
        peaks(0.3)
    print("1000x1000 matmul (np.matmul, best reading of the run): all BLAS threads %.1f GFLOP/s "
          "float64, %.1f float32; one thread %.1f float64, %.1f float32"
          % (peak_all["float64"], peak_all["float32"], peak1["float64"], peak1["float32"]))
    # the machine's rate: the better of the two (another process on a core lowers the
    # all-thread reading below the one-thread one)
    peak = {dt: max(peak_all[dt], peak1[dt]) for dt in peak_all}
    print()
    head = ("free+nudged steps", "dtype", "ex/s best", "ex/s median", "ms/batch",
            "MFLOP/batch", "GFLOP/s", "frac of machine matmul", "frac of 1-thread matmul",
            "vs ep.gradient", "other load (cores)")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    steps = []
    for label, dt, best, med, flops, ratio, other in lines:
        gf = flops * best / B / 1e9
        steps.append({"label": label, "dtype": dt, "examples_per_second_best": best,
                      "examples_per_second_median": med, "ms_per_batch": 1e3 * B / best,
                      "mflop_per_batch": flops / 1e6, "gflops": gf,
                      "fraction_of_machine_matmul": gf / peak[dt],
                      "fraction_of_one_thread_matmul": gf / peak1[dt], "vs_ep_gradient": ratio,
                      "other_load": other})
        print("| %s | %s | %.0f | %.0f | %.2f | %.1f | %.1f | %.3f | %.3f | %s | %s |"
              % (label, dt, best, med, 1e3 * B / best, flops / 1e6, gf, gf / peak[dt],
                 gf / peak1[dt], "-" if ratio is None else "%.2fx" % ratio,
                 "-" if other is None else "%.2f" % other))
    print("(other load: CPU time of other processes during the measurement, in cores; "
          "with more than ~0.1 the numbers are skewed)")
    print()
    print("targets (100+20, this 2-core machine): " + ", ".join(
        "%s >= %d ex/s: %s (%.0f)" % (dt, t, "met" if rates[(100, 20, dt)] >= t else "NOT met",
                                      rates[(100, 20, dt)]) for dt, t in TARGETS.items()))
    print()
    print("where the time goes, 100+20, ms per batch of %d (median of 30 steps):" % B)
    parts = {dt: breakdown(dt, B, 100, 20, thr) for dt in ("float64", "float32")}
    print("| part | float64 | float32 |")
    print("|---|---|---|")
    for k in parts["float64"]:
        print("| %s | %.2f | %.2f |" % (k, parts["float64"][k], parts["float32"][k]))
    tot = {dt: sum(v for k, v in r.items() if not k.startswith("  ")) for dt, r in parts.items()}
    print("| total | %.2f | %.2f |" % (tot["float64"], tot["float32"]))
    for dt, r in parts.items():
        steps_ms = r["free phase"] + r["nudged phase"]
        g = r["  of which: gemm in Euler steps"]
        print("%s: %.1f us per Euler step, %.0f%% of it in the two small gemm calls, the rest "
              "elementwise (scale, add, clip) and Python; gemm overall ~%.0f%% of the step"
              % (dt, 1e3 * steps_ms / 120, 100 * g / steps_ms,
                 100 * (g + r["bind batch + input drive (x W)"] + r["update (x^T dr, ...)"])
                 / tot[dt]))
    print("load average: %.2f at start, %.2f at end" % (load0, os.getloadavg()[0]))
    rec.save({"steps": steps, "breakdown": [
        {"part": k, "float64": parts["float64"][k], "float32": parts["float32"][k]}
        for k in parts["float64"]] + [{"part": "total", **tot}],
        "matmul": [{"dtype": dt, "all_threads": peak_all[dt], "one_thread": peak1[dt]}
                   for dt in peak_all],
        "targets": {dt: {"examples_per_second": t, "measured": rates[(100, 20, dt)],
                         "met": rates[(100, 20, dt)] >= t} for dt, t in TARGETS.items()},
        "blas": blas_info()}, TABLES,
        settings={"batch": B, "seconds": args.seconds, "blas_threads": thr,
                  "threads": args.threads}, path=args.out)


if __name__ == "__main__":
    main()
