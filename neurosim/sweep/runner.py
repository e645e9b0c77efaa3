"""Parameter sweeps on Dask: the cartesian product of value lists for dotted circuit keys,
one training run (:func:`neurosim.commands.run.run`) per grid point, on a local cluster of
worker processes by default or on a running Dask scheduler.

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

The grid is the cartesian product of the value lists (``mode = "grid"``), or one key at a
time (``"one_at_a_time"``): the circuit as given, then each key over its values with the
other swept keys at the circuit's values (a run that repeats the circuit is run once) --
the design curves of a hardware study. Without ``--param`` the circuit's ``[sweep]``
section (``mode`` and ``params``) gives the grid, so a study file carries its sweep.

A run's id is ``<readable values>-<hash>``, the hash of its resolved circuit (every section
but ``output``), so the same arguments give the same ids whatever the order of the grid.
Resuming (the same arguments and ``--out``) skips the runs whose ``result.json`` is there
and reruns every other run from scratch (a half-written run folder is deleted first).
A run that raises is recorded with its error (and traceback in ``traceback.txt``) and
resubmitted up to ``retries`` times; the other runs go on. An index row's status is
``done``, ``failed`` (after all its attempts; a resumed sweep tries it again) or ``pending``
(not finished yet). Each run gets one BLAS thread: the local cluster's worker processes
start with ``OMP/OPENBLAS/MKL_NUM_THREADS=1`` and every run is wrapped in
:func:`neurosim.relax.blas_threads`.

Value lists (``--param KEY=V1,V2,...``): values are separated by the commas that are not
inside brackets, braces or quotes, and each value is read like a ``--set`` value (TOML; a
bare word is a string): ``learning.beta=0.1,0.5``, ``hardware.preset=ideal,rram``,
``network.sizes=[64,32,10],[64,64,10]``, ``learning.lr=0.1,[0.1,0.05]``.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import logging
import os
import re
import shutil
import sys
import time
import traceback
import uuid

from .. import atomic, jsontext
from . import report as sweep_report
from .report import fmt
from ..errors import NeurosimError


INDEX = "index.csv"
RESULT = "result.json"
METRICS = ("test_accuracy", "test_loss", "train_accuracy", "fidelity_cosine_mean",
           "fidelity_cosine_last", "fidelity_applied_cosine_mean")
INDEX_COLUMNS = ("run_id", "<swept keys>", "status", "attempts", "error") + METRICS + (
    "seconds", "run_dir")
BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg"}


class SweepError(NeurosimError, ValueError):
    """Bad sweep arguments; the message names the argument and what was expected."""


# -- the grid -----------------------------------------------------------------------------
def split_values(text, where="--param"):
    """Split ``text`` on the commas outside brackets, braces and quotes."""
    out, buf, depth, quote, escape = [], [], 0, None, False
    for ch in text:
        if quote:
            if escape:
                escape = False
            elif ch == "\\" and quote == '"':
                escape = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                raise SweepError("%s: unbalanced %r; expected KEY=V1,V2,... with lists like "
                                 "[64,32,10]" % (where, ch))
        elif ch == "," and depth == 0:
            out.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    if quote or depth:
        raise SweepError("%s: unclosed %s; expected KEY=V1,V2,... with lists like [64,32,10] "
                         "and strings like \"a,b\"" % (where, "quote" if quote else "bracket"))
    out.append("".join(buf).strip())
    return out


def parse_param(text):
    """``KEY=V1,V2,...`` -> ``(key, [values])`` (see the module docstring)."""
    where = "--param %s" % text
    if "=" not in text:
        raise SweepError("%s: expected KEY=V1,V2,... (e.g. --param learning.beta=0.1,0.5)"
                         % where)
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key or any(not part for part in key.split(".")):
        raise SweepError("%s: the key must be a dotted circuit path like learning.beta" % where)
    if not raw:
        raise SweepError("%s: empty list of values; expected KEY=V1,V2,..." % where)
    items = split_values(raw, where)
    for i, item in enumerate(items):
        if not item:
            raise SweepError("%s: value %d is empty; values are separated by commas outside "
                             "brackets and quotes" % (where, i + 1))
    from .. import config  # (imported lazily: pydantic)
    values = [config.parse_override("%s=%s" % (key, item))[1] for item in items]
    seen = set()
    for v in values:
        canon = json.dumps(v, sort_keys=True)
        if canon in seen:
            raise SweepError("%s: the value %s is repeated" % (where, fmt(v)))
        seen.add(canon)
    return key, values


def _params(params):
    """``["K=V1,V2", ...]``, ``{key: [values]}`` or ``[(key, [values])]`` -> list of pairs."""
    items = params.items() if isinstance(params, dict) else params
    out = []
    for p in items:
        if isinstance(p, str):
            key, values = parse_param(p)
        else:
            key, values = p[0], list(p[1])
            if not values:
                raise SweepError("--param %s: empty list of values" % key)
        if key in [k for k, _ in out]:
            raise SweepError("--param %s: given twice; give one list of values per key" % key)
        out.append((key, values))
    if not out:
        raise SweepError("--param: nothing to sweep; give at least one --param KEY=V1,V2,... "
                         "(or a [sweep] section with params in the circuit file)")
    return out


def _detail(err):
    """The field lines of a config error (without the file name and override list)."""
    text = str(err)
    return text.split("invalid circuit:", 1)[1].strip() if "invalid circuit:" in text else text


def _slug(point):
    parts = []
    for key, value in sorted(point):              # the id does not depend on --param order
        v = fmt(value).replace(", ", "-").replace(",", "-").strip("[]\"'")
        parts.append("%s=%s" % (key.rsplit(".", 1)[-1], v))
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", "_".join(parts))[:60].strip("_") or "run"


def resolve_circuit(circuit):
    """The absolute path of a circuit file or of a built-in circuit's name."""
    from .. import config
    if circuit is None:
        return config.builtin_path("default")
    if os.path.exists(circuit):
        return os.path.abspath(circuit)
    if os.sep not in circuit and not circuit.endswith(".toml"):
        return config.builtin_path(circuit)
    raise config.ConfigError("cannot read circuit file %r: no such file" % circuit)


MODES = ("grid", "one_at_a_time")


def base_value(circuit, key):
    """The value of a dotted key in a validated circuit; an unset ``hardware`` field is its
    preset's value (None for other unset keys)."""
    node = circuit.model_dump(mode="json")
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if node is None and key.startswith("hardware."):
        from ..hardware.devices import device_from_section
        node = getattr(device_from_section(circuit.hardware), key.split(".", 1)[1], None)
    return node


def _points(grid, mode, base):
    """The grid points: the cartesian product, or one key at a time (the other keys at the
    base circuit's values, which are listed first in each key's curve)."""
    keys = [k for k, _ in grid]
    if mode == "grid":
        return [list(zip(keys, values)) for values in itertools.product(*[v for _, v in grid])]
    ref = {k: base_value(base, k) for k in keys}
    points = [[(k, ref[k]) for k in keys]]
    for key, values in grid:
        points += [[(k, v if k == key else ref[k]) for k in keys] for v in values]
    return points


def plan(circuit, params, overrides=(), mode=None):
    """Validate everything and list the runs: ``(base circuit, circuit path, grid, runs)``
    with ``grid`` a list of ``(key, [values])`` and ``runs`` a list of dicts; each run has
    ``id``, ``point`` (list of ``(key, value)``), ``label`` and ``overrides``. Without
    ``params`` the circuit's ``[sweep]`` section gives them; ``mode`` (default: the
    section's) is ``grid`` or ``one_at_a_time``."""
    from .. import config
    path = resolve_circuit(circuit)
    overrides = list(overrides)
    set_keys = {}
    for item in overrides:
        k, _ = config.parse_override(item) if isinstance(item, str) else item
        set_keys[k] = item
    base, _ = config.load(path, overrides)
    if not params and base.sweep.params:
        params = {k: list(v) for k, v in base.sweep.params.items()}
    mode = mode or base.sweep.mode
    if mode not in MODES:
        raise SweepError("--mode: expected one of %s, got %r" % (list(MODES), mode))
    grid = _params(params)
    swept = [k for k, _ in grid]
    if mode == "one_at_a_time" and "hardware.preset" in swept and any(
            k.startswith("hardware.") and k != "hardware.preset" for k in swept):
        raise SweepError("--param hardware.preset: one key at a time holds the other device "
                         "keys at the base preset's values, so a preset's run would not be "
                         "that preset; sweep the presets in a grid of their own")
    for key, values in grid:
        if key in set_keys and mode == "grid":
            raise SweepError("--param %s: also given as --set %s; sweep it or set it, not both"
                             % (key, fmt(set_keys[key])))
        unknown = config.unknown_key(key)
        if unknown:
            raise SweepError("--param %s" % unknown)
        for v in values:
            try:
                config.load(path, overrides + [(key, v)])
            except config.ConfigError as e:
                raise SweepError("--param %s=%s: the value %s is not valid: %s" % (
                    key, ",".join(fmt(x) for x in values), fmt(v), _detail(e))) from None
    runs, ids = [], {}
    for point in _points(grid, mode, base):
        label = " ".join("%s=%s" % (k, fmt(v)) for k, v in point)
        try:
            circ, _ = config.load(path, overrides + point)
        except config.ConfigError as e:
            raise SweepError("grid point %s is not a valid circuit: %s" % (label, _detail(e))) \
                from None
        data = circ.model_dump(mode="json", exclude_none=True)
        data.pop("output", None)
        data.pop("sweep", None)
        digest = hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
        run_id = "%s-%s" % (_slug(point), digest)
        if run_id in ids:
            if mode == "one_at_a_time":       # a key's base value: the base run, once
                continue
            raise SweepError("grid points %s and %s give the same circuit" % (ids[run_id], label))
        ids[run_id] = label
        runs.append({"id": run_id, "point": point, "label": label,
                     "overrides": overrides + point})
    return base, path, grid, runs, mode


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


def _finished(root, run_id):
    """The result of a run finished by an earlier sweep, or None."""
    try:
        with open(os.path.join(root, RESULT)) as f:
            r = json.load(f)
    except (OSError, ValueError):
        return None
    ok = (r.get("id") == run_id and r.get("status") == "done"
          and os.path.isfile(os.path.join(root, r.get("run_folder", ""), "metrics.json")))
    return r if ok else None


# -- the index and the plots ------------------------------------------------------------------
def _row(run, status="pending", attempts=0, error="", result=None):
    row = {"run_id": run["id"], "status": status, "attempts": attempts, "error": error}
    row.update({k: fmt(v) for k, v in run["point"]})
    s = (result or {}).get("summary", {})
    for m in METRICS:
        row[m] = "" if s.get(m) is None else repr(float(s[m]))
    row["seconds"] = "%.2f" % result["seconds"] if result else ""
    row["run_dir"] = os.path.join("runs", run["id"], result["run_folder"]) if result else ""
    return row


def write_index(path, keys, rows):
    """The index table as CSV, written to a temporary file and renamed."""
    columns = ["run_id"] + keys + ["status", "attempts", "error"] + list(METRICS) + [
        "seconds", "run_dir"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic.write_text(path, buf.getvalue(), newline="")


def read_index(path):
    """The index table as a list of dicts (strings)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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
        res = _finished(os.path.join(out, "runs", r["id"]), r["id"])
        if res is not None:
            rows[r["id"]] = _row(r, "done", res.get("attempt", 1), result=res)
        else:
            rows[r["id"]] = _row(r)
            todo.append(r)
    skipped = len(runs) - len(todo)

    def save_index():
        write_index(index, keys, [rows[r["id"]] for r in runs])

    save_index()
    echo("neurosim sweep %s: %d runs (%s)%s; folder %s" % (
        base.name, len(runs), _describe(grid, mode),
        ", %d finished before" % skipped if skipped else "", out))
    if todo:
        _schedule(todo, out, path, retries, workers, scheduler, rows, save_index, echo,
                  len(runs), skipped)
    plots = sweep_report.plot(out, grid, list(rows.values()), ref)
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
                rows[run["id"]] = _row(run, "done", attempt, result=res)
                s = res["summary"]
                echo("[%d/%d] done   %s: test accuracy %s, fidelity cosine %s (%.1f s)" % (
                    finished, total, run["label"], _num(s.get("test_accuracy")),
                    _num(s.get("fidelity_cosine_mean")), res["seconds"]))
            else:
                error = " ".join(res["error"].split())[:500]
                again = attempt <= retries
                rows[run["id"]] = _row(run, "pending" if again else "failed", attempt, error)
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


def _describe(grid, mode):
    parts = ["%d %s" % (len(v), k) for k, v in grid]
    return " x ".join(parts) if mode == "grid" else "one at a time: " + ", ".join(parts)


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


__all__ = ["run_sweep", "plan", "base_value", "MODES", "parse_param", "split_values", "read_index", "write_index",
           "run_one", "SweepError", "INDEX_COLUMNS"]
