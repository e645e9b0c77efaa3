"""The index of a sweep (:mod:`neurosim.sweep`) and a run's result: ``<out>/index.csv``, one
row per run (:data:`INDEX_COLUMNS`), rewritten atomically (temporary file + rename) every
time a run finishes, and ``<out>/runs/<run id>/result.json``, written last (the run is
finished).

An index row's status is ``done``, ``failed`` (after all its attempts; a resumed sweep tries
it again) or ``pending`` (not finished yet).
"""
from __future__ import annotations

import csv
import io
import json
import os

from .. import atomic
from .report import fmt


INDEX = "index.csv"
RESULT = "result.json"
METRICS = ("test_accuracy", "test_loss", "train_accuracy", "fidelity_cosine_mean",
           "fidelity_cosine_last", "fidelity_applied_cosine_mean")
INDEX_COLUMNS = ("run_id", "<swept keys>", "status", "attempts", "error") + METRICS + (
    "seconds", "run_dir")


def finished_result(root, run_id):
    """The result of a run finished by an earlier sweep, or None."""
    try:
        with open(os.path.join(root, RESULT)) as f:
            r = json.load(f)
    except (OSError, ValueError):
        return None
    ok = (r.get("id") == run_id and r.get("status") == "done"
          and os.path.isfile(os.path.join(root, r.get("run_folder", ""), "metrics.json")))
    return r if ok else None


def index_row(run, status="pending", attempts=0, error="", result=None):
    """A run's index row (strings): its point, status, attempts and error, and the metrics,
    seconds and run folder of its ``result`` (empty without one)."""
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


__all__ = ["INDEX", "RESULT", "METRICS", "INDEX_COLUMNS", "finished_result", "index_row",
           "write_index", "read_index"]
