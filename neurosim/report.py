"""One self-contained HTML report per run: ``<run_dir>/report.html``.

The file needs nothing beside it: the PNG figures are embedded as base64 data URIs, there
are no external stylesheets, fonts or scripts. It holds a summary table, a paragraph saying
what each figure is and which engine produced it, the per-epoch history, the fidelity of
the engine's update to the RBP gradient per parameter, and the cost summary. All text is
HTML-escaped. ``python -m neurosim.report RUN_DIR`` rebuilds it from ``metrics.json``."""
from __future__ import annotations

import base64
import html
import json
import math
import os
import sys

from .atomic import write_text

REPORT_NAME = "report.html"

#: figures the report knows how to describe (by file name)
CAPTIONS = {
    "learning_curves.png":
        "Learning curves: loss (left) and classification error (right) per epoch, on the "
        "training set (running mean over the epoch while it trained) and on the test set.",
    "fidelity.png":
        "Fidelity: how closely the engine's parameter update follows the gradient of "
        "recurrent backpropagation (RBP, the ground truth), over training. Faint points are "
        "single fidelity batches; the solid lines are running means over the last few "
        "batches. Top left: cosine between the update and the RBP gradient (1 = same "
        "direction). Top right: relative error |update - RBP| / |RBP| on a log scale. "
        "Where shown: the share of units pinned at a clip bound (0 or 1) at the free fixed "
        "point, where RBP says a unit cannot move while a finite nudge moves it; and the "
        "residual of the RBP fixed point (a check of the ground truth itself).",
}

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".gif": "image/gif", ".svg": "image/svg+xml"}

_CSS = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #ccc; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-family: monospace; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
p.note { font-size: 0.9em; color: #555; }
p.warn { font-weight: bold; color: #a00; }
"""


# -- formatting ---------------------------------------------------------------------------
def _e(x):
    return html.escape(str(x), quote=True)


def _float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _fmt(v, digits=4):
    """A cell's text: numbers with ``digits`` significant digits, None as a dash."""
    if v is None:
        return "\u2014"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) or hasattr(v, "dtype"):
        f = _float(v)
        if math.isnan(f) or math.isinf(f):
            return str(f)
        if 1 <= abs(f) < 1e15 and (f == int(f) or abs(f) >= 10 ** digits):
            return "%.0f" % f           # whole numbers and large ones: no exponent
        return "%.*g" % (digits, f)
    return str(v)


def _pct(v):
    f = _float(v)
    return "\u2014" if v is None else ("nan" if math.isnan(f) else "%.2f %%" % (100 * f))


def _cell(v, header=False):
    tag = "th" if header else "td"
    num = not header and (isinstance(v, (int, float)) and not isinstance(v, bool)
                          or hasattr(v, "dtype"))
    return "<%s%s>%s</%s>" % (tag, ' class="num"' if num else "", _e(_fmt(v)), tag)


def _table(header, rows, row_class=None):
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(_cell(h, True) for h in header) + "</tr>")
    cls = ' class="%s"' % _e(row_class) if row_class else ""
    for r in rows:
        out.append("<tr%s>" % cls + "".join(_cell(v) for v in r) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _kv_table(pairs):
    """Two columns: label, value (values already text or numbers)."""
    out = ["<table>"]
    for k, v in pairs:
        out.append("<tr><th>%s</th>%s</tr>" % (_e(k), _cell(v)))
    out.append("</table>")
    return "\n".join(out)


# -- statistics over fidelity batches -------------------------------------------------------
def _finite(values):
    return [f for f in (_float(v) for v in (values or [])) if not math.isnan(f)]


def _mean(values):
    v = _finite(values)
    return sum(v) / len(v) if v else None


def _worst(values, low_is_bad=True):
    v = _finite(values)
    return (min(v) if low_is_bad else max(v)) if v else None


def _n_nan(values):
    return sum(1 for v in (values or []) if math.isnan(_float(v)))


# -- sections ---------------------------------------------------------------------------------
def _summary_section(summary, history, fidelity):
    s = summary
    rows = [("run", s.get("name")), ("engine (trained with)", s.get("engine")),
            ("test accuracy evaluated by", s.get("evaluated_by") or s.get("engine")),
            ("learning rule", s.get("rule")), ("dataset", s.get("dataset")),
            ("epochs", s.get("epochs", len(history.get("epoch", []))))]
    rows.append(("test accuracy (last epoch)", _pct(s.get("test_accuracy"))))
    if s.get("best_test_accuracy") is not None:
        rows.append(("test accuracy (best epoch)", _pct(s.get("best_test_accuracy"))))
    ref = history.get("reference_test_accuracy")
    if ref:
        rows.append(("test accuracy, numpy rate readout of the same weights (last epoch)",
                     _pct(ref[-1])))
    if s.get("train_accuracy") is not None:
        rows.append(("train accuracy (last epoch, running)", _pct(s.get("train_accuracy"))))
    rows += [("seconds per epoch (mean)", s.get("seconds_per_epoch")),
             ("examples per second (mean)", s.get("examples_per_second"))]
    if s.get("seconds") is not None:
        rows.append(("wall time of the run (s)", s.get("seconds")))
    f = fidelity or {}
    for prefix, what in (("", "engine estimate"), ("applied_", "applied update")):
        cos, rel = f.get(prefix + "cosine/all"), f.get(prefix + "rel_error/all")
        mean_cos = _mean(cos) if cos else s.get("fidelity_%scosine_mean" % prefix)
        if mean_cos is None and not cos:
            continue
        rows.append(("cosine to RBP, %s (mean over fidelity batches)" % what, mean_cos))
        if cos:
            rows.append(("cosine to RBP, %s (worst)" % what, _worst(cos)))
        if rel:
            rows.append(("relative error to RBP, %s (mean over fidelity batches)" % what,
                         _mean(rel)))
            rows.append(("relative error to RBP, %s (worst)" % what, _worst(rel, False)))
    if s.get("run_dir"):
        rows.append(("run folder", s.get("run_dir")))
    return "<h2>Summary</h2>\n" + _kv_table(rows) + _phases_note(s)


def _phases_note(s):
    """The phases as they ran (engines that report them): steps per phase and, flagged, the
    batches whose phases stopped at their step cap unsettled."""
    if "free_steps_mean" not in s:
        return ""
    rows = [("steps of the free phase (mean)", s["free_steps_mean"]),
            ("steps per nudged phase (mean)", s["nudge_steps_mean"]),
            ("last projected step of a free phase (largest)", s.get("free_step_worst")),
            ("engine.tol", s.get("tol"))]
    free, nudged = s.get("unsettled_free_batches", 0), s.get("unsettled_nudged_batches", 0)
    out = "<h3>Phases</h3>\n" + _kv_table(rows)
    if free or nudged:
        out += ('<p class="warn">Phases stopped at their step cap with the projected step above '
                "engine.tol: the free phase in %d and a nudged phase in %d of %d batches. EP "
                "then estimates the gradient at a point that is not a fixed point; raise "
                "engine.free_steps / engine.nudge_steps.</p>"
                % (free, nudged, s.get("batches", 0)))
    elif s.get("tol"):
        out += '<p class="note">Every phase settled to engine.tol within its step cap.</p>'
    return out


def _figures_section(images, summary, run_dir):
    engine = summary.get("engine")
    evaluated = summary.get("evaluated_by")
    who = "Produced by the %s engine" % engine if engine else "Produced by this run"
    if evaluated and evaluated != engine:
        who += "; test accuracy evaluated by %s" % evaluated
    who += "."
    out = []
    for p in images or ():
        p = os.fspath(p)
        if not os.path.isabs(p) and not os.path.exists(p):
            p = os.path.join(run_dir, p)
        if not os.path.isfile(p):
            continue
        with open(p, "rb") as fh:
            data = base64.b64encode(fh.read()).decode("ascii")
        name = os.path.basename(p)
        mime = _MIME.get(os.path.splitext(name)[1].lower(), "image/png")
        caption = CAPTIONS.get(name, "Figure %s." % name)
        out.append('<figure>\n<img src="data:%s;base64,%s" alt="%s">\n'
                   "<figcaption><b>%s</b>: %s %s</figcaption>\n</figure>"
                   % (mime, data, _e(name), _e(name), _e(caption), _e(who)))
    if not out:
        return ""
    return "<h2>Figures</h2>\n" + "\n".join(out)


_HISTORY_COLUMNS = [("epoch", "epoch"), ("train_loss", "train loss"),
                    ("train_accuracy", "train accuracy"), ("test_loss", "test loss"),
                    ("test_accuracy", "test accuracy"),
                    ("reference_test_accuracy", "test accuracy, numpy rate readout"),
                    ("seconds", "seconds"), ("examples_per_second", "examples/s")]


def _history_section(history):
    n = len(history.get("epoch", []))
    if not n:
        return "<h2>Per epoch</h2>\n<p>No epoch finished.</p>"
    known = dict(_HISTORY_COLUMNS)
    cols = [(k, label) for k, label in _HISTORY_COLUMNS if k in history]
    cols += [(k, k.replace("_", " ")) for k in history
             if k not in known and isinstance(history[k], (list, tuple))
             and len(history[k]) == n]
    rows = []
    for i in range(n):
        row = []
        for k, _ in cols:
            vals = history[k]
            row.append(vals[i] if i < len(vals) else None)
        rows.append(row)
    return ("<h2>Per epoch</h2>\n<p class=\"note\">Train loss and accuracy are running "
            "means over the epoch while the weights changed; test values are measured after "
            "the epoch.</p>\n" + _table([label for _, label in cols], rows, row_class="epoch"))


def _fidelity_section(fidelity):
    if not fidelity or not fidelity.get("epoch_fraction"):
        return ""
    keys = ["all"] + [k.split("/", 1)[1] for k in fidelity      # the network's order
                      if k.startswith("cosine/") and k != "cosine/all"]
    rows = []
    for key in keys:
        cos = fidelity.get("cosine/" + key)
        if cos is None:
            continue
        rel = fidelity.get("rel_error/" + key)
        sign = fidelity.get("sign_agreement/" + key)
        rows.append([key, _mean(cos), _worst(cos), _mean(rel), _worst(rel, False),
                     _mean(sign), _n_nan(cos)])
    if fidelity.get("applied_cosine/all") is not None:
        rows.append(["all, applied update (devices)", _mean(fidelity["applied_cosine/all"]),
                     _worst(fidelity["applied_cosine/all"]),
                     _mean(fidelity.get("applied_rel_error/all")),
                     _worst(fidelity.get("applied_rel_error/all"), False),
                     _mean(fidelity.get("applied_sign_agreement/all")),
                     _n_nan(fidelity["applied_cosine/all"])])
    n = len(fidelity["epoch_fraction"])
    out = ["<h2>Fidelity to RBP per parameter</h2>",
           '<p class="note">Over %d fidelity batches. "Mean" is the mean over fidelity '
           'batches (NaNs left out), "worst" the lowest cosine or the largest relative '
           "error of any batch.</p>" % n,
           _table(["parameter", "cosine, mean over fidelity batches", "cosine, worst",
                   "relative error, mean", "relative error, worst", "sign agreement, mean",
                   "NaN batches"], rows)]
    pinned = sorted(k for k in fidelity if k.startswith("pinned/"))
    if pinned:
        out.append("<h3>Units pinned at a clip bound (0 or 1) at the free fixed point</h3>")
        out.append('<p class="note">RBP says a pinned unit cannot move; a finite nudge moves '
                   "it, so the EP estimate and RBP differ there.</p>")
        out.append(_table(["population", "share pinned, mean over fidelity batches",
                           "share pinned, largest"],
                          [[k.split("/", 1)[1], _pct(_mean(fidelity[k])),
                            _pct(_worst(fidelity[k], False))] for k in pinned]))
    if "rbp_residual" in fidelity:
        out.append(_kv_table([("residual of the RBP fixed point, mean over fidelity batches",
                               _mean(fidelity["rbp_residual"])),
                              ("residual of the RBP fixed point, worst",
                               _worst(fidelity["rbp_residual"], False))]))
    dist = [v for v in fidelity.get("free_distance", []) if v == v]   # NaN: not reported
    if dist:
        out.append('<p class="note">How far the engine\'s own free state is from that fixed '
                   "point (max |s0 - s*| over units): far from 0, the free phase did not settle "
                   "and EP does not estimate RBP's gradient.</p>")
        out.append(_kv_table([("free-state distance, mean over fidelity batches",
                               _mean(dist)), ("free-state distance, worst", max(dist))]))
    return "\n".join(out)


def _scalars(d):
    return [(k, v) for k, v in d.items() if not isinstance(v, (dict, list, tuple))]


def _matrix(d):
    """A dict of dicts (rows) as a table of the rows' scalar entries; then one table per
    nested dict entry (e.g. ``energy_by_op_pj``)."""
    cols, nested = [], []
    for r in d.values():
        for k, v in r.items():
            bucket = nested if isinstance(v, dict) else cols
            if k not in bucket and not isinstance(v, (list, tuple)):
                bucket.append(k)
    out = [_table([""] + cols, [[name] + [r.get(c) for c in cols] for name, r in d.items()])]
    for k in nested:
        sub = {name: r[k] for name, r in d.items() if isinstance(r.get(k), dict)}
        out.append("<h4>%s</h4>" % _e(k.replace("_", " ")))
        out.append(_matrix(sub))
    return "\n".join(out)


def _cost_section(cost):
    if not isinstance(cost, dict) or not cost:
        return ""
    out = ["<h2>Cost (order-of-magnitude model)</h2>"]
    try:
        from .hardware import cost as _cost
        out.append("<p>%s</p>" % _e(_cost.describe(cost)))
    except Exception:       # a cost dict of another shape: the tables below still show it
        pass
    for k, v in cost.items():
        if k == "by_epoch":
            continue
        title = "<h3>%s</h3>" % _e(k.replace("_", " "))
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            out += [title, _matrix(v)]
        elif isinstance(v, dict):
            out += [title, _kv_table(_scalars(v))]
        elif not isinstance(v, (list, tuple)):
            out.append(_kv_table([(k, v)]))
    return "\n".join(out)


def _other_fields(summary):
    shown = {"cost"}
    pairs = [(k, v) for k, v in summary.items() if k not in shown
             and not isinstance(v, (dict, list, tuple))]
    if not pairs:
        return ""
    return ("<details><summary>All summary fields</summary>\n%s\n</details>"
            % _kv_table(pairs))


# -- the report ------------------------------------------------------------------------------
def render(summary, history, fidelity=None, images=(), title=None, run_dir="."):
    """The report's HTML text (see :func:`write_report`)."""
    summary = dict(summary or {})
    history = dict(history or {})
    title = title or "neurosim run: %s" % (summary.get("name") or os.path.basename(
        os.path.abspath(run_dir)))
    engine = summary.get("engine") or "unknown"
    evaluated = summary.get("evaluated_by")
    intro = ("Trained with the %s engine, learning rule %s, on %s. " % (
        engine, summary.get("rule") or "unknown", summary.get("dataset") or "unknown data"))
    if evaluated and evaluated != engine:
        intro += "Test accuracy evaluated by %s. " % evaluated
    intro += ("The figures below are the run's own: the learning curves show how loss and "
              "error went per epoch; the fidelity figure shows, for a few batches per epoch, "
              "how close the %s engine's parameter update is to the RBP gradient "
              "(cosine and relative error), with running means so that single noisy batches "
              "do not hide the trend." % engine)
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>%s</title>" % _e(title), "<style>%s</style>" % _CSS, "</head>", "<body>",
             "<h1>%s</h1>" % _e(title), "<p>%s</p>" % _e(intro),
             _summary_section(summary, history, fidelity),
             _figures_section(images, summary, run_dir),
             _history_section(history),
             _fidelity_section(fidelity),
             _cost_section(summary.get("cost")),
             _other_fields(summary),
             "</body>", "</html>"]
    return "\n".join(p for p in parts if p) + "\n"


def write_report(run_dir, summary, history, fidelity=None, images=(), title=None):
    """Write ``<run_dir>/report.html`` atomically and return its path: one self-contained
    HTML file with the PNGs of ``images`` embedded (paths, absolute or relative to
    ``run_dir``; missing ones are skipped), the summary, per-epoch history, per-parameter
    fidelity and cost tables."""
    run_dir = os.fspath(run_dir)
    text = render(summary, history, fidelity, images, title, run_dir)
    return write_text(os.path.join(run_dir, REPORT_NAME), text)


def write_report_from_run(run_dir):
    """Rebuild the report of a finished run from its ``metrics.json`` and PNGs."""
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as fh:
        metrics = json.load(fh)
    history = metrics.pop("history", {}) or {}
    fidelity = metrics.pop("fidelity", None)
    images = [os.path.join(run_dir, n) for n in ("learning_curves.png", "fidelity.png")]
    return write_report(run_dir, metrics, history, fidelity, images)


if __name__ == "__main__":      # pragma: no cover
    for d in sys.argv[1:]:
        print(write_report_from_run(d))


__all__ = ["write_report", "write_report_from_run", "render", "REPORT_NAME", "CAPTIONS"]
