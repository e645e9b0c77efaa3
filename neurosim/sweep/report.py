"""The report of a sweep (:mod:`neurosim.sweep`): ``sweep_<key>.png`` per swept key, the
design-curve figure of a one-key-at-a-time sweep (``design_curves.png``: a column per key, a
row per metric) and the Markdown table of the finished runs (``table.md``). Rows are the
index table's (strings, :func:`neurosim.sweep.read_index`)."""
from __future__ import annotations

import json
import os
import re


def fmt(value):
    """A value as it is written on the command line and in the index (TOML-like; strings
    bare)."""
    return value if isinstance(value, str) else json.dumps(value)


def _curve(done, key, labels, metric, where):
    import numpy as np
    ys = []
    for lab in labels:
        vals = [float(r[metric]) for r in done if r[key] == lab and r.get(metric, "") != ""
                and all(r[k] == v for k, v in where.items())]
        ys.append(np.mean(vals) if vals else np.nan)
    return ys


PLOTTED = (("test_accuracy", "test accuracy"),
           ("fidelity_cosine_mean", "cosine of the EP estimate to RBP"),
           ("fidelity_applied_cosine_mean", "cosine of the update applied to RBP"))


def plot(out, grid, rows, base=None, circuit=None, engine=None):
    """``sweep_<key>.png`` per swept key: test accuracy and fidelity cosines (mean over
    training; the EP estimate, and on devices the update they took) against the key. A grid
    has one line per value of the next swept key, averaged over the others; one key at a
    time (``base``: the other keys' values) the curve holds the others at ``base``, and
    ``design_curves.png`` puts every key's curves in one figure. Every figure's title names
    ``circuit`` and ``engine`` (None where the engine is swept). Returns the paths."""
    import numpy as np
    from ..plots import figure, run_title, save
    done = [r for r in rows if r["status"] == "done"]
    if not done:
        return []
    metrics = [(m, n) for m, n in PLOTTED if any(r.get(m, "") != "" for r in done)]
    paths, keys = [], [k for k, _ in grid]
    curves = []
    for i, (key, values) in enumerate(grid):
        if base is not None:
            values = [base[key]] + [v for v in values if fmt(v) != fmt(base[key])]
            values = sorted(values, key=lambda v: v) if all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) \
                else values
        labels = [fmt(v) for v in values]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        xs = [float(v) for v in values] if numeric else list(range(len(values)))
        if base is not None:
            other, groups = None, [None]
            fixed = {k: fmt(base[k]) for k in keys if k != key}
        else:
            other = keys[i + 1] if i + 1 < len(keys) else (keys[i - 1] if i else None)
            groups = [None] if other is None else [fmt(v) for v in dict(grid)[other]]
            fixed = {}
        plt, fig, axes = figure(len(metrics))
        for ax, (metric, name) in zip(np.atleast_1d(axes), metrics):
            for g in groups:
                where = dict(fixed, **({} if g is None else {other: g}))
                ys = _curve(done, key, labels, metric, where)
                if not np.all(np.isnan(ys)):
                    ax.plot(xs, ys, "o-", label=None if g is None else "%s=%s" % (other, g))
                    if base is not None:
                        curves.append((key, metric, xs, ys, labels, numeric, base[key]))
            ax.set(xlabel=key, ylabel=name, title="%s vs %s" % (name, key))
            ax.title.set_fontsize(9)
            if not numeric:
                ax.set_xticks(xs)
                ax.set_xticklabels(labels, rotation=20 if max(map(len, labels)) > 8 else 0)
            if other is not None and ax.lines:
                ax.legend(fontsize=8)
            if base is None and len(keys) > 2:
                ax.text(0.01, 0.01, "mean over the other keys", transform=ax.transAxes,
                        fontsize=7, color="0.4")
            elif base is not None and len(keys) > 1:
                ax.text(0.01, 0.01, "other keys at the circuit's values", transform=ax.transAxes,
                        fontsize=7, color="0.4")
        fig.suptitle(run_title("Sweep of %s" % key, circuit, engine), fontsize=10)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", key)
        paths.append(save(plt, fig, os.path.join(out, "sweep_%s.png" % name)))
    if base is not None and curves:
        paths.append(_design_curves(out, keys, metrics, curves,
                                    run_title("Design curves", circuit, engine)))
    return paths


def _design_curves(out, keys, metrics, curves, title):
    """One figure: a column per swept key, a row per metric (one key at a time)."""
    from ..plots import save
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(metrics), len(keys), squeeze=False,
                             figsize=(3.0 * len(keys), 2.4 * len(metrics)), sharey="row")
    for key, metric, xs, ys, labels, numeric, at in curves:
        ax = axes[[m for m, _ in metrics].index(metric)][keys.index(key)]
        positive = [x for x in xs if x > 0] if numeric else []
        if positive and len(positive) > 2 and max(positive) / min(positive) > 50:
            # a wide positive range on a log axis; the circuit's value 0 (e.g. continuous
            # levels) as a dashed line
            ax.set_xscale("log")
            for x, y in zip(xs, ys):
                if x == 0 and x == at:
                    ax.axhline(y, color="0.5", ls="--", lw=1, label="%s = 0" % key.split(".")[-1])
                    ax.legend(fontsize=6)
            xs, ys = zip(*[(x, y) for x, y in zip(xs, ys) if x > 0])
        ax.plot(xs, ys, "o-")
        if not numeric:
            ax.set_xticks(xs)
            ax.set_xticklabels(labels, fontsize=7)
        ax.grid(True, alpha=0.3)
    for j, key in enumerate(keys):
        axes[-1][j].set_xlabel(key, fontsize=8)
    for i, (_, name) in enumerate(metrics):
        axes[i][0].set_ylabel(name, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(plt, fig, os.path.join(out, "design_curves.png"))


def table(grid, rows, base=None):
    """The finished runs as a Markdown table (one key at a time: grouped by key)."""
    keys = [k for k, _ in grid]
    cols = [m for m, _ in PLOTTED]
    head = "| %s | %s |" % (" | ".join(keys if base is None else ["swept key", "value"]),
                            " | ".join(cols))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    done = [r for r in rows if r["status"] == "done"]

    def cells(r):
        return " | ".join("%.4f" % float(r[c]) if r.get(c, "") != "" else "-" for c in cols)

    if base is None:
        for r in done:
            lines.append("| %s | %s |" % (" | ".join(r[k] for k in keys), cells(r)))
        return "\n".join(lines)
    for key in keys:
        fixed = {k: fmt(base[k]) for k in keys if k != key}
        sel = [r for r in done if all(r[k] == v for k, v in fixed.items())]
        for r in sorted(sel, key=lambda r: _sort_key(r[key])):
            lines.append("| %s | %s | %s |" % (key, r[key], cells(r)))
    return "\n".join(lines)


def _sort_key(text):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


__all__ = ["plot", "table", "fmt", "PLOTTED"]
