"""One self-contained HTML report per run: ``<run_dir>/report.html``.

The file needs nothing beside it: the PNG figures are embedded as base64 data URIs, there
are no external stylesheets, fonts or scripts. It holds a summary table, a paragraph saying
what each figure is and which engine produced it, the per-epoch history, the fidelity of
the engine's update to the RBP gradient per parameter, and the cost tables (with units).
Every figure and table whose measurement does not hold (:mod:`neurosim.validity`, computed
from the run's numbers) carries a red flag with its reason: CSS class ``flagged`` on the
figure or section and a ``flag`` box with the label and the reason; the flags are listed at
the top as well. Numbers are right-aligned in tabular figures of the text's font, with
thousands separators. All text is HTML-escaped. ``python -m neurosim.report RUN_DIR``
rebuilds it from ``metrics.json``."""
from __future__ import annotations

import base64
import html
import json
import math
import os
import sys

from . import validity
from .atomic import write_text
from .hardware import cost as cost_model
from .plots import BOUNDS

REPORT_NAME = "report.html"

#: figures the report knows how to describe (by file name); ``{bound}`` is what holds a
#: pinned unit in the run (:data:`neurosim.plots.BOUNDS`)
CAPTIONS = {
    "learning_curves.png":
        "Learning curves: loss (left) and classification error (right) per epoch, on the "
        "training set (running mean over the epoch while it trained) and on the test set.",
    "fidelity.png":
        "Fidelity: how closely the engine's parameter update follows the gradient of "
        "recurrent backpropagation (RBP, the ground truth), over training. The x axis counts "
        "the fidelity batches in training order (the epochs trained on the axis on top). "
        "Faint points are single fidelity batches; the solid lines are running means over "
        "the last few batches. Red ticks along the bottom of the cosine panel mark batches "
        "not drawn (their count is in the legend and the title). Top left: cosine between "
        "the update and the RBP gradient (1 = same direction). Top right: relative error "
        "|update - RBP| / |RBP|. Where shown: the share of units pinned at {bound} at the "
        "free fixed point, where RBP says a unit cannot move while a finite nudge moves it; "
        "and the residual of the RBP fixed point (a check of the ground truth itself).",
}

#: the flags (:class:`neurosim.validity.Flag` targets) each figure carries
FIGURE_FLAGS = {"learning_curves.png": "learning_curves", "fidelity.png": "fidelity"}

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".gif": "image/gif", ".svg": "image/svg+xml"}

_CSS = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #ccc; } h3 { font-size: 1.05em; } h4 { font-size: 0.95em; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
th { background: #f2f2f2; text-align: left; }
th.num { text-align: right; }
.num { text-align: right; font-variant-numeric: tabular-nums lining-nums; }
td.num { white-space: nowrap; }
figure { margin: 1em 0; padding: 0.4em; border: 2px solid transparent; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
p.note { font-size: 0.9em; color: #555; }
.flagged { border: 2px solid #c00000; }
section.flagged { padding: 0 0.8em 0.4em 0.8em; margin-top: 1em; }
div.flag { color: #a00000; background: #fff0f0; border-left: 5px solid #c00000;
           padding: 0.3em 0.6em; margin: 0.4em 0; }
div.flag .flag-label { font-weight: bold; text-transform: uppercase; margin-right: 0.5em; }
p.ok { font-size: 0.9em; color: #2a6a2a; }
div.wide { overflow-x: auto; max-width: 100%; }
"""


# -- formatting ---------------------------------------------------------------------------
def _e(x):
    return html.escape(str(x), quote=True)


def _float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


class _Num(str):
    """The text of a number, already formatted: shown like the other numbers."""


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075"
                             "\u2076\u2077\u2078\u2079")


def _grouped(text):
    """``text`` (a plain decimal, optionally signed) with thousands separators."""
    sign, body = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, frac = body.partition(".")
    if not whole.isdigit():
        return text
    return sign + "{:,}".format(int(whole)) + dot + frac


def _fmt(v, digits=4):
    """A cell's text: numbers with ``digits`` significant digits, thousands separated,
    powers of ten written ``1.2 x 10`` with a superscript exponent; None as a dash."""
    if v is None:
        return "\u2014"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, _Num):
        return str(v)
    if isinstance(v, int):
        return "{:,}".format(v)
    if isinstance(v, float) or hasattr(v, "dtype"):
        f = _float(v)
        if math.isnan(f) or math.isinf(f):
            return str(f)
        if 1 <= abs(f) < 1e15 and (f == int(f) or abs(f) >= 10 ** digits):
            return "{:,.0f}".format(f)      # whole numbers and large ones: no exponent
        text = "%.*g" % (digits, f)
        if "e" in text:
            mant, exp = text.split("e")
            return "%s\u202f\u00d7\u202f10%s" % (mant, str(int(exp)).translate(_SUPERSCRIPT))
        return _grouped(text)
    return str(v)


def _pct(v):
    f = _float(v)
    return "\u2014" if v is None else _Num("nan" if math.isnan(f) else "%.2f %%" % (100 * f))


def _is_num(v):
    return isinstance(v, _Num) or hasattr(v, "dtype") or (
        isinstance(v, (int, float)) and not isinstance(v, bool))


def _cell(v, header=False):
    tag = "th" if header else "td"
    num = not header and _is_num(v)
    return "<%s%s>%s</%s>" % (tag, ' class="num"' if num else "", _e(_fmt(v)), tag)


def _table(header, rows, row_class=None, numeric=False):
    """A table; ``numeric``: the header cells after the first are right-aligned over their
    columns of numbers."""
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join("<th%s>%s</th>" % (' class="num"' if numeric and i else "",
                                                       _e(h)) for i, h in enumerate(header))
                   + "</tr>")
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


# -- flags -------------------------------------------------------------------------------------
def _flags_html(flags):
    """One red box per flag: its label, then its reason."""
    return "\n".join('<div class="flag"><span class="flag-label">\u26a0 %s</span>%s</div>'
                     % (_e(f.label), _e(f.reason)) for f in flags)


def _section(body, flags, heading, level=2):
    """``body`` under ``heading`` in a ``<section>``; with flags it is marked ``flagged``
    and their boxes stand under the heading."""
    if not body:
        return ""
    head = "<h%d>%s</h%d>" % (level, _e(heading), level)
    if not flags:
        return "<section>\n%s\n%s\n</section>" % (head, body)
    return '<section class="flagged">\n%s\n%s\n%s\n</section>' % (head, _flags_html(flags),
                                                                 body)


def _checks_section(flags):
    """The report's flags at its top, or a line saying that nothing is flagged."""
    if not flags:
        return ('<p class="ok">Checks: nothing flagged (every fidelity batch drawn, free phases '
                "settled, ground truth finite, losses finite, phases settled where the engine "
                "reports them).</p>")
    return ('<p class="note">%d check%s failed; each is flagged in red again at the figure or '
            "table it concerns:</p>\n%s" % (len(flags), "s" if len(flags) > 1 else "",
                                            _flags_html(flags)))


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
    return "<h2>Summary</h2>\n" + _kv_table(rows)


def _phases_section(s, flags):
    """The phases as they ran (engines that report them): steps per phase and, flagged, the
    batches whose phases stopped at their step cap unsettled."""
    if "free_steps_mean" not in s:
        return ""
    rows = [("steps of the free phase (mean)", s["free_steps_mean"]),
            ("steps per nudged phase (mean)", s["nudge_steps_mean"]),
            ("last projected step of a free phase (largest)", s.get("free_step_worst")),
            ("engine.tol", s.get("tol"))]
    out = _kv_table(rows)
    if not flags and s.get("tol"):
        out += '\n<p class="note">Every phase settled to engine.tol within its step cap.</p>'
    return _section(out, flags, "Phases", level=3)


def _figures_section(images, summary, run_dir, flags):
    engine = summary.get("engine")
    evaluated = summary.get("evaluated_by")
    who = "Produced by the %s engine" % engine if engine else "Produced by this run"
    if summary.get("name"):
        who += " on circuit %s" % summary["name"]
    if evaluated and evaluated != engine:
        who += "; test accuracy evaluated by %s" % evaluated
    who += "."
    bound = BOUNDS.get(summary.get("pinned_bound") or "clip", summary.get("pinned_bound"))
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
        caption = CAPTIONS.get(name, "Figure %s." % name).replace("{bound}", bound)
        mine = validity.of_target(flags, FIGURE_FLAGS.get(name, ""))
        out.append('<figure%s>\n%s<img src="data:%s;base64,%s" alt="%s">\n'
                   "<figcaption><b>%s</b>: %s %s</figcaption>\n</figure>"
                   % (' class="flagged"' if mine else "",
                      _flags_html(mine) + "\n" if mine else "", mime, data, _e(name),
                      _e(name), _e(caption), _e(who)))
    if not out:
        return ""
    return "<h2>Figures</h2>\n" + "\n".join(out)


_HISTORY_COLUMNS = [("epoch", "epoch"), ("train_loss", "train loss"),
                    ("train_accuracy", "train accuracy"), ("test_loss", "test loss"),
                    ("test_accuracy", "test accuracy"),
                    ("reference_test_accuracy", "test accuracy, numpy rate readout"),
                    ("seconds", "seconds"), ("examples_per_second", "examples/s"),
                    ("free_steps_mean", "free-phase steps (mean)"),
                    ("nudge_steps_mean", "steps per nudged phase (mean)"),
                    ("free_step_max", "last projected free step (largest)"),
                    ("unsettled_free", "batches, free phase unsettled"),
                    ("unsettled_nudged", "batches, a nudged phase unsettled"),
                    ("phase_batches", "batches")]


def _history_section(history, flags):
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
    body = ('<p class="note">Train loss and accuracy are running means over the epoch while '
            "the weights changed; test values are measured after the epoch.</p>\n"
            + '<div class="wide">\n%s\n</div>' % _table([label for _, label in cols], rows,
                                                        row_class="epoch", numeric=True))
    return _section(body, flags, "Per epoch")


def _fidelity_section(fidelity, summary, flags):
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
    out = ['<p class="note">Over %d fidelity batches. "Mean" is the mean over fidelity '
           'batches (NaNs left out), "worst" the lowest cosine or the largest relative '
           "error of any batch.</p>" % n,
           _table(["parameter", "cosine, mean over fidelity batches", "cosine, worst",
                   "relative error, mean", "relative error, worst", "sign agreement, mean",
                   "NaN batches"], rows, numeric=True)]
    pinned = sorted(k for k in fidelity if k.startswith("pinned/"))
    if pinned:
        bound = BOUNDS.get(summary.get("pinned_bound") or "clip", summary.get("pinned_bound"))
        out.append("<h3>Units pinned at %s at the free fixed point</h3>" % _e(bound))
        out.append('<p class="note">RBP says a pinned unit cannot move; a finite nudge moves '
                   "it, so the EP estimate and RBP differ there.</p>")
        out.append(_table(["population", "share pinned, mean over fidelity batches",
                           "share pinned, largest"],
                          [[k.split("/", 1)[1], _pct(_mean(fidelity[k])),
                            _pct(_worst(fidelity[k], False))] for k in pinned], numeric=True))
    if "rbp_residual" in fidelity:
        out.append(_kv_table([("residual of the RBP fixed point, mean over fidelity batches",
                               _mean(fidelity["rbp_residual"])),
                              ("residual of the RBP fixed point, worst",
                               _worst(fidelity["rbp_residual"], False))]))
    dist = [v for v in fidelity.get("free_distance", []) if v == v]   # NaN: not reported
    if dist:
        out.append('<p class="note">How far the engine\'s own free state is from that fixed '
                   "point (max |s0 - s*| over units): above %g, the free phase did not settle "
                   "and EP does not estimate RBP's gradient (flagged).</p>"
                   % validity.FREE_DISTANCE_LIMIT)
        out.append(_kv_table([("free-state distance, mean over fidelity batches",
                               _mean(dist)), ("free-state distance, worst", max(dist))]))
    return _section("\n".join(out), flags, "Fidelity to RBP per parameter")


# -- cost -------------------------------------------------------------------------------------
_PHASES = (("free", "free phase"), ("nudged", "nudged phases"), ("update", "weight update"),
           ("total", "total"))
#: count -> (column header, unit or None)
_COUNTS = (("steps", "steps"), ("settling_tau", "settling time (\u03c4)"), ("macs", "MACs"),
           ("synaptic_events", "synaptic events"), ("neuron_steps", "neuron updates"),
           ("dac", "DAC conversions"), ("adc", "ADC conversions"),
           ("pulses", "weight-programming pulses"), ("refreshes", "refreshed device pairs"))
_OPS = {"mac": "MACs", "synaptic_event": "synaptic events", "pulse": "programming pulses",
        "dac": "DAC conversions", "adc": "ADC conversions", "neuron_step": "neuron updates"}
_ENERGY_UNITS = (("pJ", 1.0), ("nJ", 1e3), ("\u00b5J", 1e6), ("mJ", 1e9), ("J", 1e12))
_TIME_UNITS = (("ns", 1.0), ("\u00b5s", 1e3), ("ms", 1e6), ("s", 1e9))
#: the cost table's entries in words (name, unit from the suffix)
_PRICES = {"mac_pj": "one multiply-accumulate (MAC)",
           "synaptic_event_pj": "one synaptic event (a spike at one synapse)",
           "pulse_pj": "one weight-programming pulse", "dac_pj": "one DAC conversion (input)",
           "adc_pj": "one ADC conversion (read-out)", "neuron_step_pj": "one neuron update",
           "tau_ns": "neuron time constant \u03c4", "pulse_ns": "one programming pulse",
           "adc_ns": "one ADC conversion"}
_MODEL = (("engine", "engine"), ("kind", "hardware priced"), ("variant", "EP variant"),
          ("eps", "Euler step (\u03c4)"), ("free_steps", "free-phase steps per example"),
          ("nudge_steps", "steps per nudged phase"), ("nudged_phases", "nudged phases per example"),
          ("batch_size", "batch size (examples per update)"),
          ("macs_per_step", "MACs per step"), ("neurons", "state neurons"),
          ("inputs", "input units"), ("outputs", "output units"),
          ("devices", "devices (weights and biases)"),
          ("program_rows", "rows programmed one after another per update"),
          ("epochs", "epochs"), ("examples_per_epoch", "examples per epoch"),
          ("batches_per_epoch", "batches per epoch"),
          ("measured_pulses", "pulses counted by the devices (else one per parameter per batch)"),
          ("measured_synaptic_events", "synaptic events counted by the engine"),
          ("metered", "counts from the batches that ran (else an estimate)"))
_KINDS = {"rate": "analog rate crossbar (MACs)", "spiking": "spiking hardware (synaptic events)"}


def _unit(values, units):
    """The unit of ``units`` ((name, scale) from the smallest) in which the largest of
    ``values`` reads between 1 and 1000."""
    top = max([abs(v) for v in values if v == v] or [0.0])
    name, scale = units[0]
    for n, sc in units:
        if top >= sc:
            name, scale = n, sc
    return name, scale


def _scaled_column(values, units):
    name, scale = _unit(values, units)
    return name, [v / scale for v in values]


def _phase_rows(cost, keys):
    return [[label] + [float(cost[p].get(k, 0.0)) for k in keys]
            for p, label in _PHASES if p in cost]


def _energy_time_table(per_example, per_epoch):
    """Energy and time per example and per epoch, by phase, each column in its own unit."""
    header, cols = ["phase"], []
    for report, where in ((per_example, "per example"), (per_epoch, "per epoch")):
        if not report:
            continue
        e = [float(report[p].get("energy_pj", 0.0)) for p, _ in _PHASES if p in report]
        t = [float(report[p].get("latency_ns", 0.0)) for p, _ in _PHASES if p in report]
        ue, e = _scaled_column(e, _ENERGY_UNITS)
        ut, t = _scaled_column(t, _TIME_UNITS)
        header += ["energy %s (%s)" % (where, ue), "time %s (%s)" % (where, ut)]
        cols += [e, t]
    labels = [label for p, label in _PHASES if p in (per_example or per_epoch)]
    rows = [[label] + [c[i] for c in cols] for i, label in enumerate(labels)]
    return _table(header, rows, numeric=True)


def _counts_table(report):
    """The counts of one report (per example or per epoch) by phase; counts that are 0 in
    every phase are named under the table instead."""
    keys = [(k, label) for k, label in _COUNTS if any(k in report[p] for p in report)]
    shown = [(k, label) for k, label in keys
             if any(float(report[p].get(k, 0.0)) for p in report)]
    zero = [label for k, label in keys if (k, label) not in shown]
    out = _table(["phase"] + [label for _, label in shown],
                 _phase_rows(report, [k for k, _ in shown]), numeric=True)
    if zero:
        out += '\n<p class="note">0 in every phase: %s.</p>' % _e(", ".join(zero))
    return out


def _by_op_table(report):
    """Energy per phase split by operation (one unit for the table); operations that cost
    nothing are named under it."""
    ops = []
    for p in report:
        for op in report[p].get("energy_by_op_pj", {}):
            if op not in ops:
                ops.append(op)
    shown = [op for op in ops if any(report[p].get("energy_by_op_pj", {}).get(op, 0.0)
                                     for p in report)]
    values = [report[p]["energy_by_op_pj"].get(op, 0.0) for p in report for op in shown
              if "energy_by_op_pj" in report[p]]
    unit, scale = _unit(values, _ENERGY_UNITS)
    rows = [[label] + [float(report[p].get("energy_by_op_pj", {}).get(op, 0.0)) / scale
                       for op in shown] for p, label in _PHASES if p in report]
    out = _table(["phase"] + ["%s (%s)" % (_OPS.get(op, op.replace("_", " ")), unit)
                              for op in shown], rows, numeric=True)
    zero = [_OPS.get(op, op) for op in ops if op not in shown]
    if zero:
        out += '\n<p class="note">No energy: %s.</p>' % _e(", ".join(zero))
    return out


def _prices_table(table):
    rows = []
    for k, v in table.items():
        unit = {"_pj": "pJ", "_ns": "ns"}.get(k[-3:], "")
        rows.append([_PRICES.get(k, k.replace("_", " ")), v, unit, k])
    return _table(["what", "value", "unit", "circuit file: [cost]"], rows)


def _model_table(model, engine):
    rows = []
    for k, label in _MODEL:
        if k == "engine":
            v = engine
        elif k == "kind":
            v = _KINDS.get(cost_model.kind_of(model), cost_model.kind_of(model))
        else:
            v = model.get(k)
        if v is not None:
            rows.append((label, v))
    known = {k for k, _ in _MODEL}
    rows += [(k.replace("_", " "), v) for k, v in model.items()
             if k not in known and not isinstance(v, (dict, list, tuple))]
    return _kv_table(rows)


def _cost_section(cost, summary):
    """The cost model's report as tables with units: energy and time per phase, the counts
    behind them, energy by operation, the prices and the model's settings."""
    if not isinstance(cost, dict) or not cost:
        return ""
    model = cost.get("model") or {}
    kind = cost_model.kind_of(model)
    # the registered engine: the run's; a report of the cost model's own names it too (in
    # reports written before model["kind"], model["engine"] was the kind)
    engine = summary.get("engine") or (model.get("engine") if model.get("kind") else None)
    ex, ep = cost.get("per_example"), cost.get("per_epoch")
    out = ['<p class="note">An order-of-magnitude model (neurosim.hardware.cost), not a '
           "calibrated model of any chip: what EP training%s would cost on %s, counted from "
           "the batches that ran and priced with the table of energies and times below "
           "(override any of them in the circuit file's [cost] section).</p>"
           % (" with the %s engine" % _e(engine) if engine else "",
              _e(_KINDS.get(kind, "%s hardware" % kind) if kind else "the hardware modelled"))]
    if ex or ep:
        n = model.get("examples_per_epoch")
        out.append("<h3>Energy and time, by phase</h3>")
        if n:
            out.append('<p class="note">Per training example, and per epoch (the mean over %s '
                       "epochs of %s examples).</p>" % (_e(_fmt(model.get("epochs"))),
                                                        _e(_fmt(n))))
        out.append(_energy_time_table(ex, ep))
    for report, what in ((ex, "per training example"), (ep, "per epoch")):
        if report:
            out.append("<h3>What was counted, %s</h3>" % what)
            out.append(_counts_table(report))
    if ex:
        out.append("<h3>Energy by operation, per training example</h3>")
        out.append(_by_op_table(ex))
    if isinstance(summary.get("circuit_energy"), dict):
        c = summary["circuit_energy"]
        out.append("<h3>Energy of the solved circuit currents</h3>")
        out.append(_kv_table([("per training example (nJ)", c.get("per_training_example_nj")),
                              ("free phases, in all (J)", c.get("free_j")),
                              ("nudged phases, in all (J)", c.get("nudged_j"))]))
    if isinstance(cost.get("table"), dict):
        out.append("<h3>Prices (energy per operation, times)</h3>")
        out.append(_prices_table(cost["table"]))
    if model:
        out.append("<h3>What the model assumed</h3>")
        out.append(_model_table(model, engine))
    return "<h2>Cost (order-of-magnitude model)</h2>\n" + "\n".join(out)


def _other_fields(summary):
    shown = {"cost"}
    pairs = [(k, v) for k, v in summary.items() if k not in shown
             and not isinstance(v, (dict, list, tuple))]
    if not pairs:
        return ""
    return ("<details><summary>All summary fields</summary>\n%s\n</details>"
            % _kv_table(pairs))


# -- the report ------------------------------------------------------------------------------
def flags_of(summary, history, fidelity=None):
    """The flags of a run (:mod:`neurosim.validity`): its fidelity log, its per-epoch
    history, its phases."""
    return (validity.fidelity_flags(fidelity) + validity.history_flags(history)
            + validity.phase_flags(summary))


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
    flags = flags_of(summary, history, fidelity)
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>%s</title>" % _e(title), "<style>%s</style>" % _CSS, "</head>", "<body>",
             "<h1>%s</h1>" % _e(title), "<p>%s</p>" % _e(intro),
             _checks_section(flags),
             _summary_section(summary, history, fidelity),
             _phases_section(summary, validity.of_target(flags, "phases")),
             _figures_section(images, summary, run_dir, flags),
             _history_section(history, validity.of_target(flags, "learning_curves")),
             _fidelity_section(fidelity, summary, validity.of_target(flags, "fidelity")),
             _cost_section(summary.get("cost"), summary),
             _other_fields(summary),
             "</body>", "</html>"]
    return "\n".join(p for p in parts if p) + "\n"


def write_report(run_dir, summary, history, fidelity=None, images=(), title=None):
    """Write ``<run_dir>/report.html`` atomically and return its path: one self-contained
    HTML file with the PNGs of ``images`` embedded (paths, absolute or relative to
    ``run_dir``; missing ones are skipped), the summary, per-epoch history, per-parameter
    fidelity and cost tables, and the red flags of :func:`flags_of`."""
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


__all__ = ["write_report", "write_report_from_run", "render", "flags_of", "REPORT_NAME",
           "CAPTIONS", "FIGURE_FLAGS"]
