"""What the figures say (issue 26): every plot names its circuit and engine, the fidelity
figure is drawn by fidelity batch with the epoch on a secondary axis and counts the batches
it leaves out, titles fit the run, errors that span less than a decade read on a linear
axis, and theorem.png says in words what u_k and Sbar_k are."""
from __future__ import annotations

import numpy as np
import pytest

from neurosim import plots


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures the plot functions save, in order (saved as usual)."""
    got = []
    save = plots.save

    def keep(plt, fig, path):
        fig.canvas.draw()           # lay out before pyplot forgets the figure
        got.append(fig)
        return save(plt, fig, path)
    monkeypatch.setattr(plots, "save", keep)
    return got


def texts(fig):
    """Every title, axis label, legend entry and figure label of ``fig``."""
    out = [t.get_text() for t in (fig._suptitle, fig._supxlabel) if t is not None]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        for leg in [ax.get_legend()] + [a for a in ax.artists if hasattr(a, "get_texts")]:
            if leg is not None:
                out += [t.get_text() for t in leg.get_texts()]
    return out


def fidelity(n=12, per_epoch=4, zero=(3, 7, 11)):
    x = [e + b / 72 for e in range(n // per_epoch) for b in (0, 24, 47, 71)][:n]
    f = {"epoch_fraction": x, "cosine/all": [0.8] * n, "rel_error/all": [0.5] * n,
         "rbp_zero": [1.0 if i in zero else 0.0 for i in range(n)],
         "pinned/h1": [0.3] * n, "rbp_residual": [1e-12] * n}
    for i in zero:
        f["cosine/all"][i] = f["rel_error/all"][i] = float("nan")
    return f


def test_fidelity_curves_are_drawn_by_fidelity_batch_with_the_epoch_on_top(tmp_path, figures):
    f = fidelity()
    plots.fidelity_curves(f, str(tmp_path / "f.png"), circuit="default", engine="reference")
    fig = figures[0]
    cos = fig.axes[0]
    drawn = [line for line in cos.get_lines() if "batch" in line.get_label()]
    assert len(drawn) == 3          # the points, their running mean, the batches not drawn
    for line in drawn:
        x = np.asarray(line.get_xdata(), float)
        if x.size > 1 and line.get_linestyle() == "-":      # the running mean: no pair of
            assert np.all(np.diff(x) == 1.0)                # batches 0.014 epoch apart
        assert np.all(x == np.round(x)) and x.min() >= 1 and x.max() <= 12
    top = [a for a in cos.child_axes if a.get_xlabel() == "epochs trained"]
    assert len(top) == 1
    forward = top[0]._functions[0]
    assert forward(np.array([1.0, 5.0]))[0] == 0.0 and forward(np.array([5.0]))[0] == 1.0
    assert any("3 of 12 batches not drawn" in t for t in texts(fig))    # in the legend
    assert "3 not drawn" in fig._suptitle.get_text()


def test_plot_titles_name_the_circuit_and_the_engine(tmp_path, figures):
    from test_report import synthetic_history
    plots.learning_curves(synthetic_history(), str(tmp_path / "lc.png"), circuit="digits_two",
                          engine="brian2-rate")
    plots.fidelity_curves(fidelity(), str(tmp_path / "f.png"), circuit="digits_two",
                          engine="brian2-rate")
    plots.raster({"h1": ([1.0, 2.0], [0, 1])}, str(tmp_path / "r.png"),
                 title=plots.run_title("Spikes", "digits_two", "brian2-spiking"))
    for fig in figures:
        title = " ".join(texts(fig))
        assert "circuit digits_two" in title and "engine" in title


def test_sweep_plots_name_the_circuit_and_the_engine(tmp_path, figures):
    from neurosim.sweep import report
    grid = [("learning.beta", [0.1, 0.5])]
    rows = [{"status": "done", "learning.beta": b, "test_accuracy": a}
            for b, a in (("0.1", "0.9"), ("0.5", "0.8"))]
    report.plot(str(tmp_path), grid, rows, circuit="default", engine="reference")
    assert "circuit default, reference engine" in figures[0]._suptitle.get_text()


def test_the_pinned_title_fits_the_run(tmp_path, figures):
    plots.fidelity_curves(fidelity(), str(tmp_path / "a.png"))
    assert not any("diode" in t for t in texts(figures[0]))
    assert any("clip bound" in t for t in texts(figures[0]))
    plots.fidelity_curves(fidelity(), str(tmp_path / "b.png"), bound="ideal diode")
    assert any("ideal-diode bound" in t for t in texts(figures[1]))


def test_pinned_bound_of_a_circuit():
    from neurosim import config
    from neurosim.commands.run import pinned_bound
    assert pinned_bound(config.load(None)[0]) == "clip"
    resistive, _ = config.load("circuits/resistive_fashion_784-500-10.toml")
    assert pinned_bound(resistive) == "ideal diode"


@pytest.mark.parametrize("lo, hi, log", [(0.7, 1.0, False), (0.01, 10.0, True)])
def test_error_axis_is_linear_below_a_decade(lo, hi, log):
    plt, fig, (ax,) = plots.figure(1)
    ax.plot([1, 2, 3], [hi, (lo + hi) / 2, lo])
    assert plots.error_axis(ax, "relative error") == log
    assert ax.get_yscale() == ("log" if log else "linear")
    assert ax.get_ylabel().endswith("(%s scale)" % ("log" if log else "linear"))
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)]
    assert not any("times" in t or "^" in t for t in labels)     # plain numbers, no 9x10^-1
    plt.close(fig)


def test_theorem_png_says_what_u_and_sbar_are(tmp_path, figures):
    from neurosim.commands import theorem
    res = theorem.run_theorem(batch=4, steps=30, betas=(1e-2, 1e-3),
                              fit_betas=(0.01, 0.005, 0.0025))
    theorem.plot(res, str(tmp_path / "t.png"), circuit="circuit theorem")
    words = " ".join(texts(figures[0]))
    assert "RBP side network's error derivative" in words
    assert "EP's temporal derivative" in words and "circuit theorem" in words
    assert figures[0]._supxlabel is None                        # radius < 1: no flag
    res["spectral_radius"] = 1.02
    theorem.plot(res, str(tmp_path / "t.png"))
    flag = figures[1]._supxlabel
    assert ">= 1" in flag.get_text() and flag.get_color() == "#b00000"
