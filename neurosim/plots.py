"""Plots of a training run: learning curves and the fidelity of the EP update over training.
Files are written under a temporary name and renamed."""
from __future__ import annotations


import numpy as np

from . import validity
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


#: what a unit pinned at the free fixed point is held by, per ``bound`` of the run
BOUNDS = {"clip": "a clip bound (0 or 1)",
          "ideal diode": "an ideal-diode bound (v_low or v_high)"}


def run_title(what, circuit=None, engine=None):
    """``what`` and the circuit and engine it shows (those given): ``"Learning curves --
    circuit default, reference engine"``."""
    parts = (["circuit %s" % circuit] if circuit else []) + \
        (["%s engine" % engine] if engine else [])
    return "%s \u2014 %s" % (what, ", ".join(parts)) if parts else what


def flag_figure(fig, flags):
    """Write the flags (:mod:`neurosim.validity`) in red under the figure."""
    import textwrap
    if not flags:
        return
    width = int(fig.get_figwidth() * 14)
    text = "\n".join(textwrap.fill("\u26a0 " + f.text(), width) for f in flags)
    fig.supxlabel(text, color="#b00000", fontsize=9, ha="center")


def learning_curves(history, path, circuit=None, engine=None):
    """Train loss, test loss and test error per epoch; with ``reference_test_accuracy`` in
    ``history`` (the numpy rate readout of the same weights, for engines that are not the
    reference) its test error as its own line. The title names ``circuit`` and ``engine``;
    series that are not finite are flagged in red (:func:`neurosim.validity.history_flags`)."""
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
    fig.suptitle(run_title("Learning curves", circuit, engine), fontsize=11)
    flag_figure(fig, validity.history_flags(history))
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


def log_axis(ax):
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


#: a positive series spanning less than this ratio is drawn on a linear axis
LOG_SPAN = 10.0


def error_axis(ax, label):
    """The y axis of a positive error drawn on ``ax``: log scale with plain labels where the
    data span :data:`LOG_SPAN` or more, else linear; ``label`` says which. Returns whether
    it is logarithmic."""
    ys = np.concatenate([np.asarray(line.get_ydata(), float) for line in ax.get_lines()]
                        or [np.zeros(0)])
    ys = ys[np.isfinite(ys) & (ys > 0)]
    log = ys.size > 0 and ys.max() / ys.min() >= LOG_SPAN
    if log:
        log_axis(ax)
    ax.set_ylabel("%s  (%s scale)" % (label, "log" if log else "linear"))
    return bool(log)


def _nothing(ax, what):
    _note(ax, "no finite %s to plot" % what)


def _note(ax, text):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def _line(v, xp, fp):
    """Piecewise-linear through ``(xp, fp)`` (increasing ``xp``), extended past both ends
    along the end segments."""
    v = np.asarray(v, float)
    low = fp[0] + (v - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
    high = fp[-1] + (v - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return np.where(v < xp[0], low, np.where(v > xp[-1], high, np.interp(v, xp, fp)))


def _epoch_axis(ax, batch, epoch):
    """The epoch (training progress) of each fidelity batch on a secondary x axis on top,
    where the epochs grow batch by batch."""
    from matplotlib.ticker import FixedLocator, MaxNLocator
    if batch.size < 2 or not np.all(np.diff(epoch) > 0):
        return None
    top = ax.secondary_xaxis("top", functions=(lambda b: _line(b, batch, epoch),
                                               lambda e: _line(e, epoch, batch)))
    ticks = MaxNLocator(integer=True).tick_values(epoch[0], epoch[-1])
    top.xaxis.set_major_locator(FixedLocator(        # only epochs the batches span
        [t for t in ticks if np.floor(epoch[0]) <= t <= np.ceil(epoch[-1])]))
    top.set_xlabel("epochs trained", fontsize=8)
    top.tick_params(labelsize=8)
    return top


def _mark_not_drawn(ax, batch, rows, label):
    """Red ticks along the bottom of ``ax`` at the fidelity batches ``rows`` (a legend
    entry ``label``)."""
    if rows.any():
        ax.plot(batch[rows], np.full(int(rows.sum()), 0.02), "|", ms=9, mew=1.5, color="C3",
                transform=ax.get_xaxis_transform(), label=label)


def fidelity_curves(fidelity, path, circuit=None, engine=None, bound="clip"):
    """How well the engine's parameter update follows the RBP gradient over training.

    ``fidelity``: dict of lists, one entry per fidelity batch: ``epoch_fraction``,
    ``cosine/all``, ``rel_error/all`` (the engine's estimate), optionally
    ``applied_cosine/all``, ``applied_rel_error/all`` (the update the devices took),
    ``pinned/<population>`` (share of units at a bound at the free fixed point; ``bound``, a
    key of :data:`BOUNDS`, says which), ``rbp_zero`` (1 where RBP's gradient was exactly 0)
    and ``rbp_residual`` (of the ground-truth fixed point). Panels: cosine; relative error;
    pinned share (when given); RBP residual (when given). The x axis counts fidelity batches
    in training order (the epoch on a secondary axis on top), so batches close in time are
    not drawn on top of each other. Each series is drawn as faint per-batch points plus a
    trailing running mean over the last :data:`RUNNING_WINDOW` fidelity batches; NaNs are
    left out, the batches not drawn are marked in red along the cosine panel's bottom and
    counted in its legend. The title names ``circuit`` and ``engine``; the flags of
    :func:`neurosim.validity.fidelity_flags` are written in red under the figure."""
    epoch = _floats(fidelity["epoch_fraction"])
    n = epoch.size
    x = np.arange(1, n + 1, dtype=float)
    pinned = sorted(k for k in fidelity if k.startswith("pinned/"))
    residual = "rbp_residual" in fidelity
    panels = 2 + bool(pinned) + residual
    plt, fig, axes = figure(2, width=6.0, height=4.6, nrows=1 if panels == 2 else 2)
    for ax in axes[panels:]:
        ax.set_visible(False)
    series = [("cosine/all", "rel_error/all", "engine estimate", "C0"),
              ("applied_cosine/all", "applied_rel_error/all", "applied update (after momentum and the limits:\ndevices, G >= 0)", "C3")]
    xlabel = "fidelity batch (1 to %d, in training order)" % n

    a = axes[0]
    drawn = False
    for cos_key, _, name, color in series:
        if cos_key in fidelity:
            drawn |= _points_and_mean(a, x, fidelity[cos_key], color, name)
    a.axhline(1.0, color="0.5", lw=0.8, ls=":")
    a.axhline(0.0, color="0.5", lw=0.8, ls=":")
    zero = _floats(fidelity.get("rbp_zero", [0.0] * n)) == 1.0
    if zero.size != n:
        zero = np.zeros(n, bool)
    nan = ~np.isfinite(_floats(fidelity.get("cosine/all", [0.0] * n))) & ~zero
    _mark_not_drawn(a, x, zero, "%d of %d batches not drawn: RBP gradient exactly 0\n"
                    "(every unit it could move pinned at a bound)" % (zero.sum(), n))
    _mark_not_drawn(a, x, nan, "%d of %d batches not drawn: cosine not a number"
                    % (nan.sum(), n))
    if drawn:
        lo = np.nanmin([np.nanmin(_floats(fidelity[k]))
                        for k, *_ in series if k in fidelity
                        and np.isfinite(_floats(fidelity[k])).any()])
        a.set_ylim(max(-1.05, min(-0.05, lo - 0.05)), 1.05)
    else:
        _nothing(a, "cosine")
    if a.get_legend_handles_labels()[0]:
        a.legend(fontsize=7, loc="best")
    a.set(xlabel=xlabel, ylabel="cosine(engine update, RBP gradient)",
          title="direction (1 = same direction as RBP, 0 = orthogonal)")

    b = axes[1]
    drawn = False
    for _, rel_key, name, color in series:
        if rel_key in fidelity:
            drawn |= _points_and_mean(b, x, fidelity[rel_key], color, name, positive=True)
    label = "|engine update - RBP| / |RBP|"
    if drawn:
        error_axis(b, label)
        b.axhline(1.0, color="0.5", lw=0.8, ls=":")
        b.legend(fontsize=6, loc="best", framealpha=0.6)
    else:
        _nothing(b, "relative error")
        b.set_ylabel(label)
    b.set(xlabel=xlabel, title="size of the error (1 = as large as the RBP gradient)")

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
        c.set(xlabel=xlabel, ylabel="units pinned at a bound (%)",
              title="units at %s at the free fixed point:\n"
                    "RBP says they cannot move, a finite nudge moves them"
                    % BOUNDS.get(bound, bound))
    if residual:
        d = axes[col]
        if _points_and_mean(d, x, fidelity["rbp_residual"], "C2", "residual", positive=True):
            d.set_yscale("log")     # residuals span decades: keep the 10^k labels
            d.legend(fontsize=7, loc="best")
        elif np.all(_floats(fidelity["rbp_residual"]) == 0):
            _note(d, "every residual is exactly 0:\nthe fixed points were solved exactly")
        else:
            _nothing(d, "residual")
        d.set(xlabel=xlabel, ylabel="residual of the RBP fixed point (log scale)",
              title="ground-truth check: residual of the RBP fixed point")
    for ax in axes[:panels]:
        _epoch_axis(ax, x, epoch)
    who = "the %s engine's update" % engine if engine else "the engine's update"
    fig.suptitle(run_title("Fidelity of %s to the RBP gradient" % who, circuit) +
                 "\n%d fidelity batches%s" % (n, ", %d not drawn (RBP gradient exactly 0)"
                                              % zero.sum() if zero.any() else ""),
                 fontsize=11)
    flag_figure(fig, [f for f in validity.fidelity_flags(fidelity)
                      if f.label == validity.NOT_VALID])
    return save(plt, fig, path)


def raster(spikes, path, phases=None, time_units="ms", title=None):
    """Spike raster per population (``spikes``: population -> (timestamps, node_ids)),
    populations stacked, with phase boundaries as vertical lines; ``title`` (default
    "spikes") names the circuit and engine (:func:`run_title`)."""
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
    ax.set(xlabel="time (%s)" % time_units, title=title or "spikes")
    return save(plt, fig, path)
