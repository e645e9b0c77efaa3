"""Plots of a training run: learning curves and the fidelity of the EP update over training.
Files are written under a temporary name and renamed."""
from __future__ import annotations


import numpy as np

from .atomic import atomic_path


def figure(ncols, width=5.2, height=4.0, nrows=1):
    """A row (``nrows`` rows) of ``ncols`` axes on the Agg backend: ``(pyplot, figure, axes)``
    with the axes as a flat array, row by row."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return plt, fig, axes.ravel()


def save(plt, fig, path):
    """Save as PNG under a temporary name, rename, close."""
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return path


def _floats(values):
    """``values`` as a float array (None -> NaN)."""
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


#: the running mean of the fidelity plot: over the last RUNNING_WINDOW fidelity batches
RUNNING_WINDOW = 5


def running_mean(values, window=RUNNING_WINDOW):
    """Trailing mean over the last ``window`` entries (this one included), ignoring NaNs;
    NaN where the window holds no finite value."""
    v = _floats(values)
    out = np.full(v.shape, np.nan)
    for i in range(v.size):
        w = v[max(0, i - window + 1):i + 1]
        w = w[np.isfinite(w)]
        if w.size:
            out[i] = w.mean()
    return out


def learning_curves(history, path):
    """Train loss, test loss and test error per epoch; with ``reference_test_accuracy`` in
    ``history`` (the numpy rate readout of the same weights, for engines that are not the
    reference) its test error as its own line."""
    plt, fig, (a, b) = figure(2)
    ep = _floats(history["epoch"])
    a.plot(ep, _floats(history["train_loss"]), "o-", label="train (running mean over the epoch)")
    a.plot(ep, _floats(history["test_loss"]), "s-", label="test")
    a.set(xlabel="epoch", ylabel="loss (mean cost C)", title="loss")
    a.legend(fontsize=8)
    b.plot(ep, 100 * (1 - _floats(history["train_accuracy"])), "o-", label="train (engine)")
    b.plot(ep, 100 * (1 - _floats(history["test_accuracy"])), "s-", label="test (engine)")
    ref = history.get("reference_test_accuracy")
    if ref is not None and len(ref) == len(ep):
        b.plot(ep, 100 * (1 - _floats(ref)), "d--", color="k",
               label="test, numpy rate readout of the same weights")
    b.set(xlabel="epoch", ylabel="error (%)", title="classification error")
    b.legend(fontsize=8)
    return save(plt, fig, path)


def _points_and_mean(ax, x, y, color, name, positive=False):
    """Per-batch points and their running mean; returns whether anything finite was drawn."""
    y = _floats(y)
    ok = np.isfinite(y) & ((y > 0) if positive else True)
    if not ok.any():
        return False
    ax.plot(x[ok], y[ok], "o", ms=4, alpha=0.45, color=color, mec="none",
            label="%s, each fidelity batch" % name)
    m = running_mean(np.where(ok, y, np.nan))
    ax.plot(x, m, "-", lw=2, color=color,
            label="%s, running mean of the last %d batches" % (name, RUNNING_WINDOW))
    return True


def _log_axis(ax):
    """Log scale with plain tick labels (0.3, 1, 3 rather than 3x10^-1); minor ticks
    labelled as densely as the span allows (2..9 within a decade, 2 and 5 up to three)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    decades = np.log10(hi / lo) if lo > 0 and hi > lo else 99.0
    fmt = FuncFormatter(lambda v, _: "%g" % v)
    ax.yaxis.set_major_formatter(fmt)
    if decades <= 1.2:
        ax.yaxis.set_minor_locator(LogLocator(subs=np.arange(2.0, 10.0)))
    elif decades <= 3.5:
        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.yaxis.set_minor_formatter(fmt if decades <= 3.5 else NullFormatter())


def _nothing(ax, what):
    _note(ax, "no finite %s to plot" % what)


def _note(ax, text):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def fidelity_curves(fidelity, path):
    """How well the engine's parameter update follows the RBP gradient over training.

    ``fidelity``: dict of lists, one entry per fidelity batch: ``epoch_fraction``,
    ``cosine/all``, ``rel_error/all`` (the engine's estimate), optionally
    ``applied_cosine/all``, ``applied_rel_error/all`` (the update the devices took),
    ``pinned/<population>`` (share of units at a clip bound at the free fixed point) and
    ``rbp_residual`` (of the ground-truth fixed point). Panels: cosine; relative error (log);
    pinned share (when given); RBP residual (when given). Each series is drawn as faint
    per-batch points plus a trailing running mean over the last :data:`RUNNING_WINDOW`
    fidelity batches; NaNs are left out."""
    x = _floats(fidelity["epoch_fraction"])
    pinned = sorted(k for k in fidelity if k.startswith("pinned/"))
    residual = "rbp_residual" in fidelity
    panels = 2 + bool(pinned) + residual
    plt, fig, axes = figure(2, width=6.0, height=4.6, nrows=1 if panels == 2 else 2)
    for ax in axes[panels:]:
        ax.set_visible(False)
    n = x.size
    series = [("cosine/all", "rel_error/all", "engine estimate", "C0"),
              ("applied_cosine/all", "applied_rel_error/all", "applied update (after momentum and the limits:\ndevices, G >= 0)", "C3")]

    a = axes[0]
    drawn = False
    for cos_key, _, name, color in series:
        if cos_key in fidelity:
            drawn |= _points_and_mean(a, x, fidelity[cos_key], color, name)
    a.axhline(1.0, color="0.5", lw=0.8, ls=":")
    a.axhline(0.0, color="0.5", lw=0.8, ls=":")
    if drawn:
        lo = np.nanmin([np.nanmin(_floats(fidelity[k]))
                        for k, *_ in series if k in fidelity
                        and np.isfinite(_floats(fidelity[k])).any()])
        a.set_ylim(max(-1.05, min(-0.05, lo - 0.05)), 1.05)
        a.legend(fontsize=7, loc="best")
    else:
        _nothing(a, "cosine")
    zero = int(np.nansum(_floats(fidelity.get("rbp_zero", []))))
    if zero:        # undefined angle: RBP says no unit can move, so its gradient is 0
        a.text(0.01, 0.01, "%d of %d batches not drawn: RBP gradient exactly 0\n(every unit "
               "it could move is pinned at a clip bound)" % (zero, n), transform=a.transAxes,
               fontsize=7, color="0.3", va="bottom")
    a.set(xlabel="training (epochs)", ylabel="cosine(engine update, RBP gradient)",
          title="direction (1 = same direction as RBP, 0 = orthogonal)")

    b = axes[1]
    drawn = False
    for _, rel_key, name, color in series:
        if rel_key in fidelity:
            drawn |= _points_and_mean(b, x, fidelity[rel_key], color, name, positive=True)
    if drawn:
        _log_axis(b)
        b.axhline(1.0, color="0.5", lw=0.8, ls=":")
        b.legend(fontsize=6, loc="best", framealpha=0.6)
    else:
        _nothing(b, "relative error")
    b.set(xlabel="training (epochs)", ylabel="|engine update - RBP| / |RBP|  (log scale)",
          title="size of the error (1 = as large as the RBP gradient)")

    col = 2
    if pinned:
        c = axes[col]
        col += 1
        drawn = False
        for i, k in enumerate(pinned):
            drawn |= _points_and_mean(c, x, 100 * _floats(fidelity[k]), "C%d" % (i + 4),
                                      k.split("/", 1)[1])
        if drawn:
            c.legend(fontsize=7, loc="best")
        else:
            _nothing(c, "pinned share")
        c.set_ylim(bottom=0)
        c.set(xlabel="training (epochs)", ylabel="units pinned at a bound (%)",
              title="units at a clip (or ideal diode) bound at the free fixed point:\n"
                    "RBP says they cannot move, a finite nudge moves them")
    if residual:
        d = axes[col]
        if _points_and_mean(d, x, fidelity["rbp_residual"], "C2", "residual", positive=True):
            d.set_yscale("log")     # residuals span decades: keep the 10^k labels
            d.legend(fontsize=7, loc="best")
        elif np.all(_floats(fidelity["rbp_residual"]) == 0):
            _note(d, "every residual is exactly 0:\nthe fixed points were solved exactly")
        else:
            _nothing(d, "residual")
        d.set(xlabel="training (epochs)", ylabel="residual of the RBP fixed point (log scale)",
              title="ground-truth check: residual of the RBP fixed point")
    fig.suptitle("Fidelity of the engine's update to the RBP gradient (%d fidelity batches)" % n,
                 fontsize=11)
    return save(plt, fig, path)


def raster(spikes, path, phases=None, time_units="ms"):
    """Spike raster per population (``spikes``: population -> (timestamps, node_ids)),
    populations stacked, with phase boundaries as vertical lines."""
    plt, fig, (ax,) = figure(1, width=10, height=4.5)
    offset = 0
    ticks = []
    for pop, (ts, ids) in spikes.items():
        ids = np.asarray(ids)
        ax.plot(np.asarray(ts), ids + offset, "|", markersize=3, label=str(pop))
        n = int(ids.max()) + 1 if ids.size else 1
        ticks.append((offset + n / 2, str(pop)))
        offset += n + 2
    for ph in phases or []:
        ax.axvline(ph["start"], color="0.6", lw=0.8, ls="--")
        ax.text(ph["start"], offset, " " + ph["name"], fontsize=7, va="bottom")
    ax.set_yticks([t for t, _ in ticks], [n for _, n in ticks])
    ax.set(xlabel="time (%s)" % time_units, title="spikes")
    return save(plt, fig, path)
