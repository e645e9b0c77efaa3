"""Parameter sweeps on Dask: the cartesian product of value lists for dotted circuit keys,
one training run (:func:`neurosim.commands.run.run`) per grid point, on a local cluster of
worker processes by default or on a running Dask scheduler. The grid is :mod:`.grid`'s, the
index :mod:`.index`'s and the plots and table :mod:`.report`'s.

The sweep folder::

    <out>/sweep.json              the circuit, the grid, the --set overrides, the run ids
    <out>/index.csv               one row per run (INDEX_COLUMNS), rewritten atomically
                                  (temporary file + rename) every time a run finishes
    <out>/sweep_<key>.png         test accuracy and fidelity cosines against each swept key
    <out>/design_curves.png       one key at a time: every key's curves in one figure
    <out>/table.md                the finished runs as a Markdown table
    <out>/runs/<run id>/          run.log (the run's report), traceback.txt (failed attempts),
                                  result.json (written last: the run is finished), and the
                                  run folder <name>-<timestamp>/ (traces.h5, metrics.json, ...)

Resuming (the same arguments and ``--out``) skips the runs whose ``result.json`` is there
and reruns every other run from scratch (a half-written run folder is deleted first).
A run that raises is recorded with its error (and traceback in ``traceback.txt``) and
resubmitted up to ``retries`` times; the other runs go on. Each run gets one BLAS thread:
the local cluster's worker processes start with ``OMP/OPENBLAS/MKL_NUM_THREADS=1`` and
every run is wrapped in :func:`neurosim.relax.blas_threads`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
import traceback
import uuid

from .. import atomic, jsontext
from . import report as sweep_report
from .grid import SweepError, base_value, describe, plan
from .index import INDEX, RESULT, finished_result, index_row, write_index


BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg"}


# -- one run, on a worker -------------------------------------------------------------------
def run_one(spec):
    """One attempt of one run (the Dask task): returns ``{"status": "done", "summary", ...}``
    or ``{"status": "failed", "error", ...}``; never raises for an error of the run."""
    from ..commands import run as experiment
    from ..relax import blas_threads
    worker = {"pid": os.getpid(), "env": {k: os.environ.get(k) for k in BLAS_ENV}}
    os.environ.update(BLAS_ENV)
    root, attempt = spec["root"], spec["attempt"]
    if attempt == 1 and os.path.isdir(root):
        shutil.rmtree(root)                        # a run left half-written by a killed sweep
    os.makedirs(root, exist_ok=True)
    for name in os.listdir(root):                  # the run folders of earlier attempts
        if os.path.isdir(os.path.join(root, name)):
            shutil.rmtree(os.path.join(root, name))
    t0 = time.perf_counter()
    with open(os.path.join(root, "run.log"), "a") as log:
        log.write("== %s attempt %d\n" % (spec["id"], attempt))
        log.flush()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), \
                    blas_threads(1):
                worker["blas_threads"] = _blas_threads()
                summary = experiment.run(spec["circuit"], spec["overrides"], out_dir=root,
                                         progress=False,
                                         echo=lambda s: print(s, file=log, flush=True))
        except Exception as e:
            text = traceback.format_exc()
            log.write(text)
            with open(os.path.join(root, "traceback.txt"), "a") as f:
                f.write("== %s attempt %d\n%s\n" % (spec["id"], attempt, text))
            return {"status": "failed", "error": "%s: %s" % (type(e).__name__, e),
                    "seconds": time.perf_counter() - t0}
    result = {"id": spec["id"], "status": "done", "attempt": attempt,
              "point": [[k, v] for k, v in spec["point"]],
              "run_folder": os.path.basename(summary["run_dir"]),
              "seconds": time.perf_counter() - t0, "worker": worker, "summary": summary}
    atomic.write_json(os.path.join(root, RESULT), result)
    return result


def _blas_threads():
    """The most threads any loaded BLAS library may use now (None: unknown)."""
    try:
        from threadpoolctl import threadpool_info
        return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
                   default=None)
    except Exception:  # pragma: no cover - threadpoolctl missing
        return None


# -- the sweep ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _client(workers, scheduler):
    import dask
    from distributed import Client, LocalCluster
    if scheduler:
        with Client(scheduler) as client:
            yield client, scheduler
        return
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    env.update(BLAS_ENV)
    # the nannies live in this process and set these before spawning: put them back after
    saved = {k: os.environ.get(k) for k in list(env) + ["PYTHONHASHSEED"]}
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.CRITICAL)
        try:
            with Client(cluster) as client:
                yield client, "local (%d processes, 1 thread each)" % workers
        finally:
            cluster.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_sweep(circuit=None, params=(), overrides=(), workers=2, scheduler=None, out=None,
              retries=1, echo=print, mode=None):
    """Run the grid of ``params`` (``["learning.beta=0.1,0.5", ...]``, or ``{key: [values]}``)
    on Dask and return the summary dict (``out``, ``index``, ``runs``, ``done``, ``failed``,
    ``skipped``, ``seconds``, ``plots``, ``best``, ``failed_runs``).

    ``workers``: processes of the local cluster (1 thread each; ignored with ``scheduler``,
    the address of a running Dask scheduler whose workers see ``out``). ``retries``: extra
    attempts of a run that raised. ``out`` (default ``<output.dir>/sweep-<name>-<time>``):
    the sweep folder; run again with the same arguments and ``out`` to resume. ``mode``:
    ``grid`` or ``one_at_a_time`` (default: the circuit's ``[sweep]`` section, else grid);
    without ``params`` the section's grid is run.
    """
    t0 = time.perf_counter()
    if not (isinstance(retries, int) and retries >= 0):
        raise SweepError("--retries: expected a non-negative integer, got %r" % (retries,))
    if not (isinstance(workers, int) and workers > 0):
        raise SweepError("--workers: expected a positive integer, got %r" % (workers,))
    base, path, grid, runs, mode = plan(circuit, params, overrides, mode)
    keys = [k for k, _ in grid]
    ref = {k: base_value(base, k) for k in keys} if mode == "one_at_a_time" else None
    out = os.path.abspath(out or os.path.join(base.output.dir, "sweep-%s-%s" % (
        base.name, time.strftime("%Y%m%d-%H%M%S"))))
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    index = os.path.join(out, INDEX)
    atomic.write_json(os.path.join(out, "sweep.json"), {
        "circuit": path, "params": {k: v for k, v in grid}, "mode": mode,
        "overrides": list(overrides),
        "retries": retries, "runs": [r["id"] for r in runs]})
    rows, todo = {}, []
    for r in runs:
        res = finished_result(os.path.join(out, "runs", r["id"]), r["id"])
        if res is not None:
            rows[r["id"]] = index_row(r, "done", res.get("attempt", 1), result=res)
        else:
            rows[r["id"]] = index_row(r)
            todo.append(r)
    skipped = len(runs) - len(todo)

    def save_index():
        write_index(index, keys, [rows[r["id"]] for r in runs])

    save_index()
    echo("neurosim sweep %s: %d runs (%s)%s; folder %s" % (
        base.name, len(runs), describe(grid, mode),
        ", %d finished before" % skipped if skipped else "", out))
    if todo:
        _schedule(todo, out, path, retries, workers, scheduler, rows, save_index, echo,
                  len(runs), skipped)
    plots = sweep_report.plot(out, grid, list(rows.values()), ref, circuit=base.name,
                              engine=None if "engine.name" in keys else base.engine.name)
    md = sweep_report.table(grid, [rows[r["id"]] for r in runs], ref)
    atomic.write_text(os.path.join(out, "table.md"), md + "\n", newline="")
    echo("\n" + md + "\n")
    failed = [i for i, r in rows.items() if r["status"] != "done"]
    done = [r for r in rows.values() if r["status"] == "done" and r["test_accuracy"] != ""]
    best = max(done, key=lambda r: float(r["test_accuracy"]), default=None)
    summary = {"out": out, "index": index, "runs": len(runs), "done": len(runs) - len(failed),
               "failed": len(failed), "skipped": skipped,
               "seconds": round(time.perf_counter() - t0, 3), "plots": plots,
               "failed_runs": failed, "mode": mode,
               "table": os.path.join(out, "table.md"),
               "best": None if best is None else {
                   "run_id": best["run_id"], "test_accuracy": float(best["test_accuracy"]),
                   "run_dir": os.path.join(out, best["run_dir"]),
                   **{k: best[k] for k in keys}}}
    echo("sweep finished: %d done, %d failed (%d finished before) in %.1f s; index %s"
         % (summary["done"], summary["failed"], skipped, summary["seconds"], index))
    if best is not None:
        echo("best test accuracy %.4f: %s" % (summary["best"]["test_accuracy"], " ".join(
            "%s=%s" % (k, best[k]) for k in keys)))
    return summary


def _schedule(todo, out, path, retries, workers, scheduler, rows, save_index, echo, total,
              finished):
    from distributed import as_completed
    token = uuid.uuid4().hex[:8]
    with _client(min(workers, len(todo)), scheduler) as (client, where):
        echo("running %d runs on %s" % (len(todo), where))
        futures = {}

        def submit(run, attempt):
            spec = {"id": run["id"], "root": os.path.join(out, "runs", run["id"]),
                    "circuit": path, "overrides": run["overrides"], "point": run["point"],
                    "attempt": attempt}
            fut = client.submit(run_one, spec, pure=False,
                                key="neurosim-sweep-%s-%s-a%d" % (run["id"], token, attempt))
            futures[fut] = (run, attempt)
            return fut

        pending = as_completed([submit(r, 1) for r in todo])
        for fut in pending:
            run, attempt = futures.pop(fut)
            try:
                res = fut.result()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:            # the worker died, the task was cancelled
                res = {"status": "failed", "error": "%s: %s" % (type(e).__name__, e)}
                root = os.path.join(out, "runs", run["id"])
                os.makedirs(root, exist_ok=True)
                with open(os.path.join(root, "traceback.txt"), "a") as f:
                    f.write("== %s attempt %d\n%s\n" % (run["id"], attempt, "".join(
                        traceback.format_exception(type(e), e, e.__traceback__))))
            if res["status"] == "done":
                finished += 1
                rows[run["id"]] = index_row(run, "done", attempt, result=res)
                s = res["summary"]
                echo("[%d/%d] done   %s: test accuracy %s, fidelity cosine %s (%.1f s)" % (
                    finished, total, run["label"], _num(s.get("test_accuracy")),
                    _num(s.get("fidelity_cosine_mean")), res["seconds"]))
            else:
                error = " ".join(res["error"].split())[:500]
                again = attempt <= retries
                rows[run["id"]] = index_row(run, "pending" if again else "failed", attempt, error)
                if again:
                    echo("[%d/%d] failed %s (attempt %d of %d): %s; retrying" % (
                        finished, total, run["label"], attempt, retries + 1, error))
                    pending.add(submit(run, attempt + 1))
                else:
                    finished += 1
                    echo("[%d/%d] FAILED %s after %d attempt%s: %s (traceback: %s)" % (
                        finished, total, run["label"], attempt, "s" if attempt > 1 else "",
                        error, os.path.join(out, "runs", run["id"], "traceback.txt")))
            save_index()




def _num(v):
    return "-" if v is None else "%.4f" % v


def main(args):
    """``neurosim sweep`` (see :func:`neurosim.cli.build_parser`); exit status 1 when a run
    failed after its retries."""
    try:
        summary = run_sweep(args.circuit, args.params, args.overrides,
                            workers=args.workers or 2, scheduler=args.scheduler, out=args.out,
                            retries=args.retries, mode=args.mode)
    except KeyboardInterrupt:
        print("neurosim sweep: interrupted; the finished runs are in the index; run the same "
              "command with the same --out to resume", file=sys.stderr)
        return 130
    if summary["failed"]:
        print("neurosim sweep: %d run%s failed: %s; see the error column of %s and rerun with "
              "--out %s to retry them" % (summary["failed"], "s" if summary["failed"] > 1 else "",
                                          ", ".join(summary["failed_runs"]), summary["index"],
                                          summary["out"]), file=sys.stderr)
    if args.json:
        print(jsontext.dumps(summary))
    return 1 if summary["failed"] else 0


__all__ = ["run_sweep", "run_one", "main"]
