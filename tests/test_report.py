"""The fidelity figure and the self-contained HTML run report (neurosim.plots, neurosim.report)."""
from __future__ import annotations

import base64
import html
import json
import math
import os
import re

import numpy as np
import pytest

from neurosim import plots
from neurosim.report import REPORT_NAME, write_report, write_report_from_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KEYS = ("W:x->h1", "b:h1", "W:h1->y")


def synthetic_fidelity(epochs=3, per_epoch=4, optional=True, seed=0):
    rng = np.random.default_rng(seed)
    x = [e + b / per_epoch for e in range(epochs) for b in range(per_epoch)]
    n = len(x)
    cos = np.clip(0.6 + 0.3 * np.arange(n) / n + rng.normal(0, 0.08, n), -1, 1)
    rel = np.clip(np.exp(rng.normal(0, 0.6, n)), 0.2, 3)
    cos[1], rel[2] = np.nan, np.nan
    f = {"epoch_fraction": x, "cosine/all": cos.tolist(), "rel_error/all": rel.tolist(),
         "sign_agreement/all": (0.5 + 0.4 * np.nan_to_num(cos)).tolist()}
    for k in KEYS:
        f["cosine/" + k] = np.clip(cos + rng.normal(0, 0.05, n), -1, 1).tolist()
        f["rel_error/" + k] = rel.tolist()
        f["sign_agreement/" + k] = [0.8] * n
    if optional:
        f["applied_cosine/all"] = (cos - 0.1).tolist()
        f["applied_rel_error/all"] = (rel * 1.5).tolist()
        f["applied_sign_agreement/all"] = [0.7] * n
        f["pinned/h1"] = [0.3] * (n - 1) + [float("nan")]
        f["pinned/y"] = np.linspace(0.0, 0.2, n).tolist()
        f["rbp_residual"] = (10.0 ** rng.normal(-7, 0.5, n)).tolist()
    return f


def synthetic_history(epochs=3, reference=True):
    h = {"epoch": list(range(1, epochs + 1)),
         "train_loss": np.linspace(0.5, 0.2, epochs).tolist(),
         "train_accuracy": np.linspace(0.5, 0.9, epochs).tolist(),
         "test_loss": np.linspace(0.5, 0.25, epochs).tolist(),
         "test_accuracy": np.linspace(0.5, 0.88, epochs).tolist(),
         "seconds": [1.5] * epochs, "examples_per_second": [1000.0] * epochs}
    h["test_loss"][0] = float("nan")
    if reference:
        h["reference_test_accuracy"] = np.linspace(0.48, 0.87, epochs).tolist()
    return h


def synthetic_summary(run_dir, name="default"):
    return {"name": name, "engine": "brian2-rate", "evaluated_by": "numpy rate readout",
            "rule": "ep", "dataset": "digits", "epochs": 3, "test_accuracy": 0.88,
            "best_test_accuracy": 0.88, "seconds_per_epoch": 1.5,
            "examples_per_second": 1000.0, "fidelity_cosine_mean": 0.7,
            "run_dir": str(run_dir),
            "cost": {"per_example": {"free": {"macs": 10.0, "energy_uj": 0.01,
                                              "latency_us": 0.1,
                                              "energy_by_op_pj": {"mac": 0.1}},
                                     "total": {"macs": 20.0, "energy_uj": 0.02,
                                               "latency_us": 0.2,
                                               "energy_by_op_pj": {"mac": 0.2}}},
                     "model": {"engine": "rate", "devices": 42}}}


def _read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _is_png(path):
    with open(path, "rb") as fh:
        return fh.read(8) == PNG_MAGIC


@pytest.mark.parametrize("optional", [True, False])
def test_fidelity_curves_writes_a_png(tmp_path, optional):
    path = str(tmp_path / "fidelity.png")
    assert plots.fidelity_curves(synthetic_fidelity(optional=optional), path) == path
    assert _is_png(path) and os.path.getsize(path) > 10_000
    assert sorted(os.listdir(tmp_path)) == ["fidelity.png"]


def test_fidelity_curves_survives_all_nan_series(tmp_path):
    f = synthetic_fidelity(optional=True)
    n = len(f["epoch_fraction"])
    for k in ("cosine/all", "rel_error/all", "pinned/h1", "pinned/y", "rbp_residual"):
        f[k] = [float("nan")] * n
    path = str(tmp_path / "fidelity.png")
    plots.fidelity_curves(f, path)
    assert _is_png(path)


def test_exact_fixed_points_are_said_to_be_exact(tmp_path, monkeypatch):
    f = synthetic_fidelity(optional=True)
    f["rbp_residual"] = [0.0] * len(f["epoch_fraction"])
    notes = []
    monkeypatch.setattr(plots, "_note", lambda ax, text: notes.append(text))
    plots.fidelity_curves(f, str(tmp_path / "fidelity.png"))
    assert notes == ["every residual is exactly 0:\nthe fixed points were solved exactly"]


def test_running_mean_is_trailing_and_ignores_nans():
    m = plots.running_mean([1.0, float("nan"), 3.0, 5.0], window=2)
    assert m[0] == 1.0 and m[1] == 1.0 and m[2] == 3.0 and m[3] == 4.0
    assert math.isnan(plots.running_mean([float("nan")])[0])


def test_learning_curves_with_reference_accuracy(tmp_path):
    for ref in (True, False):
        path = str(tmp_path / ("lc%d.png" % ref))
        plots.learning_curves(synthetic_history(reference=ref), path)
        assert _is_png(path)


def test_write_report_is_self_contained(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    fidelity, history = synthetic_fidelity(), synthetic_history()
    lc = plots.learning_curves(history, str(run / "learning_curves.png"))
    fp = plots.fidelity_curves(fidelity, str(run / "fidelity.png"))
    images = [lc, fp, str(run / "missing.png")]
    path = write_report(str(run), synthetic_summary(run, name="evil <script>alert(1)</script>"),
                        history, fidelity, images=images)
    assert path == str(run / REPORT_NAME)
    text = _read(path)
    # each existing image embedded, byte for byte; the missing one skipped
    uris = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(uris) == 2
    assert text.count('<img src="data:image/png;base64,') == 2
    for img, uri in zip((lc, fp), uris):
        with open(img, "rb") as fh:
            assert base64.b64decode(uri) == fh.read()
    assert "missing.png" not in text
    # no external assets, no scripts: the only <script> is the escaped name
    assert "<script" not in text
    assert "evil &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert not re.search(r'(src|href)="(?!data:)', text)
    # engine, evaluator, one row per epoch, the labelled fidelity statistics
    assert "brian2-rate" in text and "numpy rate readout" in text
    assert text.count('<tr class="epoch">') == len(history["epoch"])
    assert "mean over fidelity batches" in text and "worst" in text
    for k in KEYS:
        assert html_escaped(k) in text
    assert "applied update" in text and "pinned" in text and "h1" in text
    assert "Energy by operation" in text and "energy by op pj" not in text
    # written atomically: nothing but the report and the figures left in the folder
    assert sorted(os.listdir(run)) == ["fidelity.png", "learning_curves.png", REPORT_NAME]


def html_escaped(s):
    return html.escape(s, quote=True)


def test_write_report_without_fidelity_or_images(tmp_path):
    h = synthetic_history(epochs=2, reference=False)
    s = {"name": "plain", "engine": "reference"}
    path = write_report(str(tmp_path), s, h)
    text = _read(path)
    assert "reference" in text and "<img" not in text
    assert text.count('<tr class="epoch">') == 2
    assert os.listdir(tmp_path) == [REPORT_NAME]


def test_a_failed_report_leaves_the_old_one(tmp_path):
    h = synthetic_history(epochs=1)
    write_report(str(tmp_path), {"name": "a", "engine": "reference"}, h)
    with pytest.raises(Exception):
        write_report(str(tmp_path), {"name": "b", "engine": "reference"}, {"epoch": [1],
                     "train_loss": object()})
    text = _read(tmp_path / REPORT_NAME)
    assert "neurosim run: a" in text
    assert os.listdir(tmp_path) == [REPORT_NAME]


def test_report_from_metrics_json(tmp_path):
    fidelity, history = synthetic_fidelity(optional=False), synthetic_history()
    metrics = dict(synthetic_summary(tmp_path), history=history, fidelity=fidelity)
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))      # NaN as JSON NaN
    plots.fidelity_curves(fidelity, str(tmp_path / "fidelity.png"))
    text = _read(write_report_from_run(str(tmp_path)))
    assert text.count('<img src="data:image/png;base64,') == 1
    assert text.count('<tr class="epoch">') == 3


def test_unsettled_phases_are_flagged_in_the_report():
    """A run whose phases stopped at their caps unsettled says so in report.html; a run whose
    phases all settled says that instead."""
    from neurosim import report
    s = {"name": "x", "free_steps_mean": 52.2, "nudge_steps_mean": 21.4, "free_step_worst": 1e-5,
         "tol": 1e-8, "unsettled_free_batches": 7, "unsettled_nudged_batches": 97,
         "batches": 2160}
    html = report.render(s, {"epoch": [1]}, {})
    phases = section_of(html, "<h3>Phases</h3>")
    assert phases.startswith('<section class="flagged">') and '<div class="flag">' in phases
    assert "the free phase in 7 (0.3 %) and a nudged phase in 97 (4.5 %) of 2160" in phases
    settled = report.render(dict(s, unsettled_free_batches=0, unsettled_nudged_batches=0),
                            {"epoch": [1]}, {})
    assert 'class="flag' not in settled and "Every phase settled" in settled


# -- the report explains itself: flags, numbers, cost (issue 26) ---------------------------
def section_of(text, marker, tag="section"):
    """The ``<tag ...>...</tag>`` element of ``text`` that holds ``marker``."""
    at = text.index(marker)
    start = text.rindex("<%s" % tag, 0, at)
    return text[start:text.index("</%s>" % tag, at) + len(tag) + 3]


def clean_fidelity(n=8):
    return {"epoch_fraction": [i / 4 for i in range(n)], "cosine/all": [0.9] * n,
            "rel_error/all": [0.2] * n, "rbp_zero": [0.0] * n, "rbp_residual": [1e-12] * n,
            "free_distance": [1e-8] * n}


def test_an_invalid_figure_carries_the_red_flag_and_its_reason(tmp_path):
    fidelity = clean_fidelity()
    fidelity["rbp_zero"][2] = 1.0
    fidelity["cosine/all"][2] = fidelity["rel_error/all"][2] = float("nan")
    fidelity["free_distance"][5] = 0.05                # the free phase did not settle there
    history = synthetic_history()                      # its test loss of epoch 1 is NaN
    images = [plots.learning_curves(history, str(tmp_path / "learning_curves.png")),
              plots.fidelity_curves(fidelity, str(tmp_path / "fidelity.png"))]
    text = _read(write_report(str(tmp_path), {"name": "x", "engine": "reference"}, history,
                              fidelity, images=images))
    fig = section_of(text, 'alt="fidelity.png"', "figure")
    assert fig.startswith('<figure class="flagged">')
    assert fig.index('<div class="flag">') < fig.index("<img")      # above the image
    assert "not valid" in fig and "the free phase did not settle in 1 of 8 fidelity batches" in fig
    assert "incomplete" in fig and "1 of 8 fidelity batches not drawn" in fig
    table = section_of(text, "<h2>Fidelity to RBP per parameter</h2>")
    assert table.startswith('<section class="flagged">') and "did not settle" in table
    curves = section_of(text, 'alt="learning_curves.png"', "figure")
    assert curves.startswith('<figure class="flagged">')
    assert "the test loss is not a number in epoch 1" in curves
    assert section_of(text, "<h2>Per epoch</h2>").startswith('<section class="flagged">')
    # and at the top, before the summary
    assert text.index('<div class="flag">') < text.index("<h2>Summary</h2>")


def test_a_clean_run_has_no_flag(tmp_path):
    history = synthetic_history()
    history["test_loss"][0] = 0.6
    text = render_text(tmp_path, history, clean_fidelity())
    assert 'class="flagged"' not in text and '<div class="flag">' not in text
    assert "nothing flagged" in text


def render_text(tmp_path, history, fidelity, summary=None):
    from neurosim import report
    images = [plots.learning_curves(history, str(tmp_path / "learning_curves.png")),
              plots.fidelity_curves(fidelity, str(tmp_path / "fidelity.png"))]
    return report.render(summary or {"name": "x", "engine": "reference"}, history, fidelity,
                         images=images, run_dir=str(tmp_path))


def big_cost(model):
    phase = {"steps": 52.0, "settling_tau": 26.0, "macs": 1113219072.0, "synaptic_events": 0.0,
             "neuron_steps": 13922.0, "dac": 64.0, "adc": 266.0, "pulses": 0.0,
             "refreshes": 0.0, "energy_pj": 68693298.0, "energy_uj": 68.693298,
             "latency_ns": 749238.0, "latency_us": 749.238,
             "energy_by_op_pj": {"mac": 11132190.72, "synaptic_event": 0.0, "pulse": 0.0,
                                 "dac": 6.4, "adc": 266.0, "neuron_step": 13922.0}}
    report = {p: dict(phase) for p in ("free", "nudged", "update", "total")}
    return {"per_example": report, "per_epoch": report, "model": model,
            "table": {"mac_pj": 0.01, "tau_ns": 10.0}}


@pytest.mark.parametrize("model", [{"kind": "rate", "engine": "reference"},
                                   {"engine": "rate"}])     # written before model.kind
def test_the_cost_section_is_a_table_with_units_and_the_engine_name(model):
    from neurosim import report
    s = {"name": "x", "engine": "reference", "cost": big_cost(model)}
    text = report.render(s, {"epoch": [1]}, {})
    cost = text[text.index("<h2>Cost"):]
    assert "1,113,219,072" in cost and "1113219072" not in cost       # thousands separated
    assert "energy per epoch (\u00b5J)" in cost and "68.69" in cost    # a unit that reads
    assert "time per epoch (\u00b5s)" in cost and "749.2" in cost
    assert "energy by op pj" not in cost and "MACs (" in cost
    assert "<tr><th>engine</th><td>reference</td></tr>" in cost
    assert "<td>rate</td>" not in cost and "analog rate crossbar" in cost
    assert "the reference engine" in cost
    assert "0 in every phase: synaptic events" in cost               # all-zero columns named
    assert '<td class="num">0.01</td><td>pJ</td>' in cost              # the prices' units


def test_numbers_share_one_style():
    from neurosim import report
    s = dict(synthetic_summary("."), free_steps_mean=52.0, nudge_steps_mean=21.0,
             free_step_worst=3e-5, tol=1e-8)
    text = report.render(s, synthetic_history(), synthetic_fidelity())
    assert "monospace" not in text and "tabular-nums" in text
    assert '<td class="num">88.00 %</td>' in text              # percentages are numbers too
    assert '<td class="num">1,000</td>' in text                # separators in the summary
    assert '<td class="num">3\u202f\u00d7\u202f10\u207b\u2075</td>' in text   # 3 x 10^-5
    assert "e-05" not in text
