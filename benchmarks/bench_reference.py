"""Throughput of one EP training step on the numpy reference engine (neurosim.train.ep_step).

Network 784-500-10, hard sigmoid, states clipped to [0, 1] after every Euler step (the 2017
recipe), eps = 0.5, beta = 0.5 with a random sign, learning rates 0.1 / 0.05 per layer,
persistent particles (each step starts its free phase from the previous free state), batch
100, seeded random inputs in [0, 1] and one-hot targets. Settings: 100 free + 20 nudged Euler
steps (the target), and 20 + 4 (the 2017 784-500-10 counts) for reference.

Printed for each dtype: examples/s (best and median over rounds of repeated steps), the
matrix-multiply work of one step (every product the step does), the achieved GFLOP/s, the
GFLOP/s of a large square matmul measured in the same run, and their ratio; the speed-up over
the plain path (neurosim.ep.gradient + theta -= lr g); and where the time of one step goes.

    python benchmarks/bench_reference.py [--seconds 3] [--batch 100] [--blas-threads N]

Timings are printed, never asserted (machines are noisy: run it on an idle machine).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import neurosim as ns
from neurosim import train
from neurosim.relax import Dynamics

SIZES = [784, 500, 10]
EPS, BETA = 0.5, 0.5
LR = {"W:x->h1": 0.1, "b:h1": 0.1, "W:h1->y": 0.05, "b:y": 0.05}
SETTINGS = [(100, 20), (20, 4)]
TARGETS = {"float64": 6000, "float32": 10000}   # examples/s, 100 + 20 steps, this 2-core box


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
    """examples/s of ``fn`` (one step per call): (best round, median round)."""
    fn()
    fn()
    per_round = seconds / rounds
    rates = []
    for _ in range(rounds):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= per_round:
                break
        rates.append(n * batch / el)
    return max(rates), float(np.median(rates))


def fast_step_fn(dtype, batch, free_steps, nudge_steps):
    net, x, y = problem(dtype, batch)
    rng = np.random.default_rng(1)
    box = {"state": None}

    def fn():
        box["state"], _ = train.ep_step(net, x, y, BETA, LR, eps=EPS, free_steps=free_steps,
                                        nudge_steps=nudge_steps, variant="random_sign",
                                        clip=True, state=box["state"], rng=rng)
    return fn


def plain_step_fn(dtype, batch, free_steps, nudge_steps):
    """The same training step with the general-purpose API: ep.estimate + theta -= lr g."""
    net, x, y = problem(dtype, batch)
    rng = np.random.default_rng(1)
    box = {"state": None}

    def fn():
        est = ns.ep.estimate(net, x, y, BETA, variant="random_sign", eps=EPS,
                             free_steps=free_steps, nudge_steps=nudge_steps, clip=True,
                             state=box["state"], rng=rng)
        for k, g in est.gradient.items():
            net.params[k] -= LR[k] * g
        box["state"] = est.s0
    return fn


def breakdown(dtype, batch, free_steps, nudge_steps, reps=30):
    """Milliseconds per step in each part of ep_step (median over reps), and the share of the
    Euler steps spent inside BLAS gemm (the same gemm calls timed alone)."""
    net, x, y = problem(dtype, batch)
    parts = {k: [] for k in ("bind batch + input drive (x W)", "free phase", "nudged phase",
                             "update (x^T dr, ...)", "  of which: gemm in Euler steps")}
    state = None
    for _ in range(reps):
        t0 = time.perf_counter()
        dyn = Dynamics(net, x, y, clip=True)
        s0 = dyn.initial_state(state)
        t1 = time.perf_counter()
        dyn.run_fixed(s0, EPS, 0.0, free_steps)
        t2 = time.perf_counter()
        sb = dyn.run_fixed({p: v.copy() for p, v in s0.items()}, EPS, BETA, nudge_steps)
        t3 = time.perf_counter()
        train._energy_update(net, dyn, sb, s0, 1.0 / BETA, LR)
        t4 = time.perf_counter()
        # the gemm calls of the Euler steps alone, same operands, same count
        gemm, gterms, star = dyn._fast_plan()
        calls = [(A, s0[q].T, ta, (s0[p] if p == star else dyn.tmp[p]).T)
                 for p in net.state_pops for q, A, ta in gterms[p]]
        scratch = {p: v.copy() for p, v in s0.items()}
        calls = [(A, scratch[q].T if False else B, ta, C) for A, B, ta, C in calls]
        t5 = time.perf_counter()
        for _k in range(free_steps + nudge_steps):
            for A, B, ta, C in calls:
                gemm(EPS, A, B, 0.5, C, ta, 0, 1)
        t6 = time.perf_counter()
        np.clip(s0[star], 0.0, 1.0, out=s0[star])
        state = s0
        for k, v in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t6 - t5)):
            parts[k].append(v * 1e3)
    return {k: float(np.median(v)) for k, v in parts.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit BLAS threads (needs threadpoolctl); default: BLAS default")
    args = ap.parse_args()
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.blas_threads)
    B = args.batch
    print("neurosim reference engine: EP training step, 784-500-10 hard sigmoid, clip, "
          "eps=%g, beta=%g (random sign), batch %d, persistent particles" % (EPS, BETA, B))
    print("machine: %d CPUs (nproc), %s; numpy %s; BLAS: %s"
          % (os.cpu_count(), cpu_model(), np.__version__, blas_info()))
    load0 = os.getloadavg()[0]
    peak = {dt: matmul_gflops(dt) for dt in ("float64", "float32")}
    print("1000x1000 matmul: %.1f GFLOP/s float64, %.1f GFLOP/s float32"
          % (peak["float64"], peak["float32"]))
    print()
    head = ("steps free+nudged", "dtype", "ex/s best", "ex/s median", "ms/batch",
            "MFLOP/batch", "GFLOP/s", "matmul frac", "vs ep.gradient")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    results = {}
    for fs, nsteps in SETTINGS:
        for dt in ("float64", "float32"):
            net, _, _ = problem(dt, B)
            flops, _ = step_flops(net, B, fs, nsteps, "one_sided")
            best, med = throughput(fast_step_fn(dt, B, fs, nsteps), B, args.seconds)
            pbest, _ = throughput(plain_step_fn(dt, B, fs, nsteps), B, args.seconds / 3)
            gf = flops * best / B / 1e9
            results[(fs, nsteps, dt)] = best
            print("| %d+%d | %s | %.0f | %.0f | %.2f | %.1f | %.1f | %.2f | %.2fx |"
                  % (fs, nsteps, dt, best, med, 1e3 * B / best, flops / 1e6, gf, gf / peak[dt],
                     best / pbest))
    print()
    print("targets (100+20, this 2-core machine): " + ", ".join(
        "%s >= %d ex/s: %s (%.0f)" % (dt, t, "met" if results[(100, 20, dt)] >= t else "NOT met",
                                      results[(100, 20, dt)]) for dt, t in TARGETS.items()))
    print()
    print("where the time goes, 100+20, ms per batch of %d (median of 30):" % B)
    rows = {dt: breakdown(dt, B, 100, 20) for dt in ("float64", "float32")}
    print("| part | float64 | float32 |")
    print("|---|---|---|")
    for k in rows["float64"]:
        print("| %s | %.2f | %.2f |" % (k, rows["float64"][k], rows["float32"][k]))
    tot = {dt: sum(v for k, v in r.items() if not k.startswith("  ")) for dt, r in rows.items()}
    print("| total | %.2f | %.2f |" % (tot["float64"], tot["float32"]))
    for dt, r in rows.items():
        steps_ms = r["free phase"] + r["nudged phase"]
        print("%s: Euler steps %.1f us each, %.0f%% of that inside gemm; BLAS (all gemm) "
              "~%.0f%% of the step" % (dt, 1e3 * steps_ms / 120, 100 * r["  of which: gemm in "
                                                                        "Euler steps"] / steps_ms,
                                      100 * (r["  of which: gemm in Euler steps"]
                                             + r["bind batch + input drive (x W)"]
                                             + r["update (x^T dr, ...)"]) / tot[dt]))
    print("load average: %.2f at start, %.2f at end (other processes skew the numbers)"
          % (load0, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
