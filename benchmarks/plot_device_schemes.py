"""The figure and tables of the programming-scheme and wire-resistance study (issue 12,
``circuits/device_schemes_digits.toml``) from its two sweeps' ``index.csv``:

    python benchmarks/plot_device_schemes.py ASYMMETRY_SWEEP WIRES_SWEEP [--exact RUN]
        [--out benchmarks/device_schemes_study.png] [--json]

``ASYMMETRY_SWEEP``: the folder of the circuit's own ``[sweep]`` (grid of
``hardware.scheme`` x ``hardware.asymmetry`` x ``hardware.asymmetry_spread`` x
``hardware.seed``); ``WIRES_SWEEP``: the folder of the grid ``hardware.scheme`` x
``hardware.r_wire``; ``--exact``: a run folder (or a folder holding run folders: the newest)
of the same circuit on the exact store (``hardware.levels = 0``, nothing else non-ideal),
drawn as a grey reference line.

Panels, against the asymmetry spread (one colour per scheme; solid: mean asymmetry 0,
dashed: 0.2; circles: mean over the seeds, triangles on a thin dotted line: the worst seed):
test accuracy; cosine of the update the devices took to RBP's gradient; what the devices
lost of the estimate's cosine (cosine of the EP estimate minus that of the applied update,
run by run: the estimate's own cosine moves with the training trajectory); pair refreshes
per training example. Against ``r_wire``: test accuracy (the circuit, reading through its
wires, and its stored weights evaluated on ideal wires) and the applied update's cosine.
Prints the Markdown tables of the README (mean over the seeds, worst in brackets) and, with
``--json``, a JSON line of the aggregated numbers. Only finished runs are used; each run's
``metrics.json`` gives pulses, refreshes and the stored weights' accuracy.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from neurosim.plots import figure, save  # noqa: E402
from neurosim.sweep import read_index  # noqa: E402

SCHEMES = ("both", "one_per_sign")
COLOURS = {"both": "tab:blue", "one_per_sign": "tab:orange"}
STYLES = {0.0: "-", 0.2: "--"}
ASYM_KEYS = ("hardware.scheme", "hardware.asymmetry", "hardware.asymmetry_spread")
WIRE_KEYS = ("hardware.scheme", "hardware.r_wire")
HIGHER_IS_WORSE = ("pulses", "refreshes", "loss")


def _float(v):
    return float(v) if v not in ("", None) else float("nan")


def _extras(out, metrics):
    """Pulses and refreshes per training example, the stored weights' accuracy (ideal
    wires and reads; the test accuracy itself where the run has no device state to set
    apart, the exact store) and the device's loss of fidelity."""
    update = metrics.get("cost", {}).get("per_example", {}).get("update", {})
    out["pulses"] = float(update.get("pulses", float("nan")))
    out["refreshes"] = float(update.get("refreshes", float("nan")))
    ref = metrics.get("reference_test_accuracy")
    out["stored_accuracy"] = out["test_accuracy"] if ref is None else float(ref)
    out["loss"] = out["fidelity_cosine_mean"] - out["fidelity_applied_cosine_mean"]
    return out


def load(folder):
    """The finished runs of a sweep folder: one dict per run with the swept keys (floats
    where numeric), the index metrics (floats) and :func:`_extras`."""
    rows = []
    for r in read_index(os.path.join(folder, "index.csv")):
        if r["status"] != "done":
            continue
        out = {}
        for k, v in r.items():
            if k.startswith("hardware."):
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
            elif k in ("test_accuracy", "fidelity_cosine_mean", "fidelity_applied_cosine_mean",
                       "seconds"):
                out[k] = _float(v)
        with open(os.path.join(folder, r["run_dir"], "metrics.json")) as f:
            rows.append(_extras(out, json.load(f)))
    return rows


def load_run(path):
    """One run folder (or the newest run folder inside ``path``) as a row like :func:`load`'s."""
    if not os.path.isfile(os.path.join(path, "metrics.json")):
        runs = sorted(glob.glob(os.path.join(path, "*", "metrics.json")), key=os.path.getmtime)
        if not runs:
            raise SystemExit("--exact %s: no metrics.json there or in a folder below" % path)
        path = os.path.dirname(runs[-1])
    with open(os.path.join(path, "metrics.json")) as f:
        m = json.load(f)
    out = {k: _float(m.get(k)) for k in ("test_accuracy", "fidelity_cosine_mean",
                                          "fidelity_applied_cosine_mean", "seconds")}
    out["run_dir"] = path
    return _extras(out, m)


def aggregate(rows, keys, metric):
    """``{values of keys: (mean, worst, runs)}`` of ``metric`` over the runs that share the
    values of ``keys`` (the seeds); worst is the minimum, or the maximum for pulses,
    refreshes and the loss of fidelity."""
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r[metric])
    worst = np.nanmax if metric in HIGHER_IS_WORSE else np.nanmin
    return {g: (float(np.nanmean(v)), float(worst(v)), len(v)) for g, v in sorted(groups.items())}


def _curve(agg, fixed, values):
    got = [agg.get(fixed + (x,), (np.nan,) * 3) for x in values]
    return np.array([g[0] for g in got]), np.array([g[1] for g in got])


def _style(ax, title, xlabel, ylabel):
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.set_title(title, fontsize=9)
    ax.xaxis.label.set_fontsize(8)
    ax.yaxis.label.set_fontsize(8)


def plot(asym, wires, path, exact=None):
    plt, fig, axes = figure(3, width=5.0, height=3.7, nrows=2)
    from matplotlib.lines import Line2D
    spreads = sorted({r["hardware.asymmetry_spread"] for r in asym})
    means = sorted({r["hardware.asymmetry"] for r in asym})
    seeds = len({r.get("hardware.seed") for r in asym})
    xlab = "hardware.asymmetry_spread (std of the devices' asymmetries)"
    panels = ((axes[0], "test_accuracy", "test accuracy", None),
              (axes[1], "fidelity_applied_cosine_mean", "cosine of the applied update to RBP",
               None),
              (axes[2], "loss", "cosine of the estimate - cosine of the applied",
               "fidelity the devices lose"),
              (axes[3], "refreshes", "pair refreshes per training example", "pair refreshes"))
    for ax, metric, name, short in panels:
        agg = aggregate(asym, ASYM_KEYS, metric)
        for s in SCHEMES:
            for a in means:
                mean, worst = _curve(agg, (s, a), spreads)
                if np.all(np.isnan(mean)):
                    continue
                ax.plot(spreads, mean, STYLES.get(a, ":"), marker="o", color=COLOURS[s], lw=2)
                if seeds > 1:
                    ax.plot(spreads, worst, ":", marker="v", ms=4, color=COLOURS[s], lw=1,
                            alpha=0.8)
        if exact is not None and metric in exact and metric != "refreshes":
            ax.axhline(exact[metric], color="0.5", lw=1, ls="-.")
        _style(ax, "%s vs asymmetry spread" % (short or name), xlab, name)
    proxies = [Line2D([], [], color=COLOURS[s], lw=2, label=s) for s in SCHEMES]
    proxies += [Line2D([], [], color="k", ls=STYLES.get(a, ":"), lw=1.5,
                       label="mean asymmetry %g" % a) for a in means]
    proxies += [Line2D([], [], color="k", marker="o", lw=0, label="mean of %d seeds" % seeds)]
    if seeds > 1:
        proxies += [Line2D([], [], color="k", marker="v", ls=":", lw=1, ms=4,
                           label="worst seed (largest loss, most refreshes)")]
    if exact is not None:
        proxies += [Line2D([], [], color="0.5", ls="-.", lw=1, label="exact store (unbounded)")]
    axes[0].legend(handles=proxies, fontsize=7, loc="lower left")
    axes[3].text(0.02, 0.97, "\"both\" never refreshes", transform=axes[3].transAxes,
                 fontsize=7, va="top")

    rs = sorted({r["hardware.r_wire"] for r in wires})
    acc = aggregate(wires, WIRE_KEYS, "test_accuracy")
    stored = aggregate(wires, WIRE_KEYS, "stored_accuracy")
    cos = aggregate(wires, WIRE_KEYS, "fidelity_applied_cosine_mean")
    for s in SCHEMES:
        m, _ = _curve(acc, (s,), rs)
        axes[4].plot(rs, m, "-o", color=COLOURS[s], lw=2,
                     label="%s: the circuit (reads through its wires)" % s)
        m, _ = _curve(stored, (s,), rs)
        axes[4].plot(rs, m, "--s", color=COLOURS[s], lw=1, ms=4,
                     label="%s: its stored weights on ideal wires" % s)
        m, _ = _curve(cos, (s,), rs)
        axes[5].plot(rs, m, "-o", color=COLOURS[s], lw=2, label=s)
    wseeds = len({r.get("hardware.seed") for r in wires})
    for ax, name in ((axes[4], "test accuracy"), (axes[5], "cosine of the applied update to RBP")):
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xticks(rs)
        ax.set_xticklabels(["%g" % r for r in rs])
        _style(ax, "%s vs wire resistance (%d seed%s)" % (name, wseeds, "s" * (wseeds > 1)),
               "hardware.r_wire (ohm per wire segment; tiles of 64; 1-40 uS)", name)
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("circuits/device_schemes_digits.toml: 64-32-10 digits, symmetric EP, 6 epochs, "
                 "10,001-level bounded devices; asymmetry of a device a_d = asymmetry + spread xi",
                 fontsize=9)
    return save(plt, fig, path)


def _fmt(mean, worst, runs, digits=4):
    if runs > 1:
        return "%.*f (%.*f)" % (digits, mean, digits, worst)
    return "%.*f" % (digits, mean)


def tables(asym, wires, exact=None):
    """The README's two Markdown tables."""
    agg = {m: aggregate(asym, ASYM_KEYS, m) for m in (
        "test_accuracy", "fidelity_cosine_mean", "fidelity_applied_cosine_mean", "loss",
        "refreshes", "pulses")}
    lines = ["| scheme | asymmetry | spread | test accuracy | cosine of the EP estimate | "
             "cosine of the applied update | estimate - applied | refreshes / example | "
             "pulses / example |", "|---|---|---|---|---|---|---|---|---|"]
    if exact is not None:
        lines.append("| exact store | - | - | %.4f | %.4f | %.4f | %.4f | - | - |" % (
            exact["test_accuracy"], exact["fidelity_cosine_mean"],
            exact["fidelity_applied_cosine_mean"], exact["loss"]))
    for g in agg["test_accuracy"]:
        lines.append("| %s | %g | %g | %s | %s | %s | %s | %.3f | %.0f |" % (
            g[0], g[1], g[2], _fmt(*agg["test_accuracy"][g]),
            _fmt(*agg["fidelity_cosine_mean"][g]), _fmt(*agg["fidelity_applied_cosine_mean"][g]),
            _fmt(*agg["loss"][g]), agg["refreshes"][g][0], agg["pulses"][g][0]))
    wagg = {m: aggregate(wires, WIRE_KEYS, m) for m in (
        "test_accuracy", "stored_accuracy", "fidelity_cosine_mean",
        "fidelity_applied_cosine_mean", "refreshes", "seconds")}
    lines += ["", "| scheme | r_wire (ohm) | test accuracy (the circuit) | stored weights on "
              "ideal wires | cosine of the EP estimate | cosine of the applied update | "
              "refreshes / example | seconds |", "|---|---|---|---|---|---|---|---|"]
    for g in wagg["test_accuracy"]:
        lines.append("| %s | %g | %s | %s | %s | %s | %.3f | %.0f |" % (
            g[0], g[1], _fmt(*wagg["test_accuracy"][g]), _fmt(*wagg["stored_accuracy"][g]),
            _fmt(*wagg["fidelity_cosine_mean"][g]),
            _fmt(*wagg["fidelity_applied_cosine_mean"][g]), wagg["refreshes"][g][0],
            wagg["seconds"][g][0]))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("asymmetry", help="sweep folder of the asymmetry grid (the circuit's [sweep])")
    p.add_argument("wires", help="sweep folder of the scheme x r_wire grid")
    p.add_argument("--exact", help="run folder (or its parent) of the circuit on the exact store")
    p.add_argument("--out", default=os.path.join(HERE, "device_schemes_study.png"))
    p.add_argument("--json", action="store_true", help="print the aggregated numbers as JSON")
    args = p.parse_args(argv)
    asym, wires = load(args.asymmetry), load(args.wires)
    if not asym or not wires:
        p.error("no finished runs in %s" % (args.asymmetry if not asym else args.wires))
    exact = load_run(args.exact) if args.exact else None
    path = plot(asym, wires, args.out, exact)
    print(tables(asym, wires, exact))
    print("\nfigure: %s (%d + %d runs%s)" % (path, len(asym), len(wires),
                                            " + the exact store" if exact else ""))
    if args.json:
        out = {"asymmetry": {m: {"/".join("%s" % x for x in g): v for g, v in
                                 aggregate(asym, ASYM_KEYS, m).items()}
                             for m in ("test_accuracy", "fidelity_cosine_mean",
                                       "fidelity_applied_cosine_mean", "loss", "refreshes",
                                       "pulses")},
               "wires": {m: {"/".join("%s" % x for x in g): v for g, v in
                             aggregate(wires, WIRE_KEYS, m).items()}
                         for m in ("test_accuracy", "stored_accuracy",
                                   "fidelity_applied_cosine_mean")},
               "exact": exact}
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
