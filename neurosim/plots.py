"""Plots of a training run: learning curves and the fidelity of the EP update over training.
Files are written under a temporary name and renamed."""
from __future__ import annotations

import os

import numpy as np


def figure(ncols, width=5.2, height=4.0):
    """A row of ``ncols`` axes on the Agg backend: ``(pyplot, figure, axes)``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return plt, fig, axes[0]


def save(plt, fig, path):
    """Save as PNG under a temporary name, rename, close."""
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def learning_curves(history, path):
    """Train loss, test loss and test error per epoch."""
    plt, fig, (a, b) = figure(2)
    ep = np.asarray(history["epoch"])
    a.plot(ep, history["train_loss"], "o-", label="train (running)")
    a.plot(ep, history["test_loss"], "s-", label="test")
    a.set(xlabel="epoch", ylabel="loss (mean cost C)", title="loss")
    a.legend()
    b.plot(ep, 100 * (1 - np.asarray(history["train_accuracy"])), "o-", label="train")
    b.plot(ep, 100 * (1 - np.asarray(history["test_accuracy"])), "s-", label="test")
    b.set(xlabel="epoch", ylabel="error (%)", title="classification error")
    b.legend()
    return save(plt, fig, path)


def fidelity_curves(fidelity, path):
    """Cosine, relative error and sign agreement of the EP update vs RBP, per layer, over
    training (``fidelity``: dict with ``step`` and ``<metric>/<key>`` arrays)."""
    plt, fig, axes = figure(3)
    step = np.asarray(fidelity["epoch_fraction"])
    keys = sorted({k.split("/", 1)[1] for k in fidelity if "/" in k
                   and not k.startswith("applied_")})
    for ax, metric, label in zip(axes, ("cosine", "rel_error", "sign_agreement"),
                                 ("cosine", "relative error", "sign agreement")):
        for key in keys:
            name = "%s/%s" % (metric, key)
            if name in fidelity:
                ax.plot(step, fidelity[name], ".-", label=key)
        if "applied_%s/all" % metric in fidelity:     # on devices: the update they took
            ax.plot(step, fidelity["applied_%s/all" % metric], "k--", label="all, applied")
        ax.set(xlabel="epoch", ylabel=label, title="EP update vs RBP: %s" % label)
        if metric == "rel_error":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
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
