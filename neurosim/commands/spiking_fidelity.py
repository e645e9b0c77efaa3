"""``neurosim fidelity --engine brian2-spiking``: how close the spike-based EP update of a
Brian2 spiking circuit is to the rate circuit's update and to RBP's gradient, and how that
depends on the number of spikes.

For one network and one batch, every *setting* (a spiking-circuit configuration and a
nudged-phase length) runs the spiking circuit's EP step over several spike seeds and compares
each update with

* the Brian2 **rate circuit**'s update with the same beta, variant, Euler step and phase
  lengths (what the spiking circuit estimates in expectation), and
* **RBP**'s implicit gradient at the verified free fixed point (the ground truth of the
  engine protocol, :meth:`neurosim.engines.protocol.Engine.ground_truth`),

giving cosine, relative error and sign agreement (mean, min and max over seeds), with the
number of spikes the state neurons fire in the nudged phase(s). Sweeps are one factor at a
time around the circuit's setting: ``max_rate`` (Hz), ``nudge_steps`` (the nudged-phase
length; ``tau_slow`` follows it as ``nudge_steps * dt / 5``, clamped to [20, 200] ms, as in the
training engine), ``traces`` (``tau_fast/tau_slow`` pairs in ms) and ``neuron``
(``poisson``/``lif``). The plot shows the relative error against the spike count.
"""
from __future__ import annotations

import time

import numpy as np

from .. import engines, fidelity, plots, traces
from ..brian.equations import CODES
from ..brian.spiking import trace_constants
from ..errors import NeurosimError

#: The ground truth's fixed point holds to this projected step.
TOL = 1e-10
SWEEPS = ("max_rate", "nudge_steps", "traces", "neuron")
COLUMNS = ("cos_rate", "rel_rate", "sign_rate", "cos_rbp", "rel_rbp", "sign_rbp", "spikes")


class SpikingFidelityError(NeurosimError, ValueError):
    """Bad input for the spiking fidelity study; the message names the option."""


def parse_sweep(text):
    """``NAME=V1,V2,...`` -> ``(name, [values])`` for ``--sweep``."""
    if "=" not in text:
        raise SpikingFidelityError("--sweep %r must look like NAME=V1,V2 with NAME one of %s"
                                   % (text, list(SWEEPS)))
    name, raw = (s.strip() for s in text.split("=", 1))
    if name not in SWEEPS:
        raise SpikingFidelityError("--sweep %r: unknown name %r; sweepable: %s"
                                   % (text, name, list(SWEEPS)))
    items = [v.strip() for v in raw.split(",") if v.strip()]
    if not items:
        raise SpikingFidelityError("--sweep %r: give at least one value" % text)
    try:
        if name == "max_rate":
            values = [float(v) for v in items]
            bad = [v for v in values if not v > 0]
        elif name == "nudge_steps":
            values = [int(v) for v in items]
            bad = [v for v in values if v < 1]
        elif name == "traces":
            values = [tuple(float(p) for p in v.split("/")) for v in items]
            bad = [v for v in values if len(v) != 2 or not 0 < v[0] < v[1]]
        else:
            values, bad = items, [v for v in items if v not in CODES]
    except ValueError:
        raise SpikingFidelityError("--sweep %r: values of %s must be %s" % (
            text, name, {"max_rate": "positive numbers (Hz)", "nudge_steps": "integers >= 1",
                         "traces": "pairs tau_fast/tau_slow in ms"}[name])) from None
    if bad:
        raise SpikingFidelityError("--sweep %r: invalid value(s) %s (max_rate > 0 Hz, "
                                   "nudge_steps >= 1, traces tau_fast/tau_slow with "
                                   "0 < tau_fast < tau_slow, neuron one of %s)"
                                   % (text, bad, ", ".join(CODES)))
    return name, values


def settings(base, nudge_steps, sweeps=()):
    """The settings to run: ``[(sweep, label, circuit params, nudge_steps), ...]``.

    ``base``: spiking-circuit parameters (``neuron``, ``max_rate``, ``eps``; the trace
    constants default to :func:`trace_constants`); ``sweeps``: ``[(name, values), ...]``.
    Without sweeps the single base setting is run."""
    base = dict(base)
    eps = base["eps"]
    if "tau_fast" not in base:
        base["tau_fast"], base["tau_slow"] = trace_constants(nudge_steps, eps)
    out = [("base", "base: %s %g Hz, %d nudged steps, traces %g/%g ms"
            % (base["neuron"], base["max_rate"], nudge_steps, base["tau_fast"],
               base["tau_slow"]), base, nudge_steps)] if not sweeps else []
    for name, values in sweeps:
        for v in values:
            p, n = dict(base), nudge_steps
            if name == "max_rate":
                p["max_rate"], label = float(v), "%g Hz" % v
            elif name == "nudge_steps":
                n = int(v)
                p["tau_fast"], p["tau_slow"] = trace_constants(n, eps)
                label = "%d steps (traces %g/%g ms)" % (n, p["tau_fast"], p["tau_slow"])
            elif name == "traces":
                p["tau_fast"], p["tau_slow"] = v
                label = "traces %g/%g ms" % v
            else:
                p["neuron"], label = v, v
            out.append((name, label, p, n))
    return out


def nudged_spikes(circuit):
    """Spikes the state populations fired inside the nudged phase(s) of the circuit's last
    ``ep_update`` (all examples of the batch)."""
    tau, total = circuit.params["tau"], 0
    for ph in circuit.phases:
        if ph["name"] == "free":
            continue
        for q in circuit.net.state_pops:
            t = circuit.spikes[q]["t"] * tau
            total += int(np.sum((t >= ph["start"] - 1e-9) & (t < ph["stop"] - 1e-9)))
    return total


def study(net, x, y, items, *, beta, variant="symmetric", free_steps=300, seeds=3, clip=True,
          log=None):
    """Run every setting of :func:`settings` over ``seeds`` spike seeds; returns
    ``{"rows": [...], "rbp": gradient, "last": the last spiking circuit}``. Each row has the
    setting, the per-seed metrics, their mean (``cos_rate``...), ``_min`` and ``_max``, and
    the rate circuit's own fidelity to RBP."""
    from ..brian import CircuitError, compile as compile_circuit
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise SpikingFidelityError("--spike-seeds must be an integer >= 1, got %r" % (seeds,))
    eps_values = {p["eps"] for _, _, p, _ in items}
    if len(eps_values) != 1:
        raise SpikingFidelityError("all settings must share one Euler step eps")
    eps = eps_values.pop()
    truth, _ = engines.build("brian2-spiking", net, eps=eps, clip=clip).ground_truth(
        x, y, TOL, "fidelity batch")
    rate = compile_circuit(net, model="rate", eps=eps, clip=clip)
    rate_updates, rows, last = {}, [], None
    for sweep, label, params, nudge in items:
        if nudge not in rate_updates:
            g = rate.ep_update(x, y, beta, free_steps, nudge, variant=variant, rng=None) \
                if variant != "random_sign" else None
            rate_updates[nudge] = g
        p = dict(params)
        neuron = p.pop("neuron")
        try:
            sc = compile_circuit(net, model="spiking", neuron=neuron, clip=clip, seed=0, **p)
        except CircuitError as e:
            raise SpikingFidelityError("setting %r: %s" % (label, e)) from None
        per, t0 = [], time.perf_counter()
        for s in range(int(seeds)):
            g = sc.ep_update(x, y, beta=beta, free_steps=free_steps, nudge_steps=nudge,
                             variant=variant, seed=1000 + s)
            g_rate = rate_updates[nudge]
            if g_rate is None:        # random sign: the rate circuit with the drawn sign
                b = [ph["beta"] for ph in sc.phases if ph["name"] != "free"][0]
                g_rate = rate.ep_update(x, y, b, free_steps, nudge, variant="one_sided")
            a, r = fidelity.compare(g, truth), fidelity.compare(g, g_rate)
            per.append({"cos_rate": r["cosine"], "rel_rate": r["rel_error"],
                        "sign_rate": r["sign_agreement"], "cos_rbp": a["cosine"],
                        "rel_rbp": a["rel_error"], "sign_rbp": a["sign_agreement"],
                        "spikes": nudged_spikes(sc)})
        rate_vs_rbp = fidelity.compare(g_rate, truth)
        row = {"sweep": sweep, "setting": label, "neuron": neuron, "nudge_steps": nudge,
               "params": dict(sc.params), "seeds": int(seeds), "per_seed": per,
               "rate_vs_rbp_cosine": rate_vs_rbp["cosine"],
               "rate_vs_rbp_rel_error": rate_vs_rbp["rel_error"],
               "seconds_per_run": (time.perf_counter() - t0) / seeds}
        for k in COLUMNS:
            vals = np.array([q[k] for q in per], dtype=float)
            row[k], row[k + "_min"], row[k + "_max"] = (float(vals.mean()), float(vals.min()),
                                                        float(vals.max()))
        rows.append(row)
        last = sc
        if log is not None:
            log(row)
    return {"rows": rows, "rbp": truth, "last": last}


def report(rows, title="spike-based update (mean over seeds; worst seed in parentheses)"):
    """The rows as a Markdown table."""
    lines = ["### %s" % title, "",
             "| sweep | setting | nudged spikes | cos vs rate | rel err vs rate | sign vs rate "
             "| cos vs RBP | rel err vs RBP | sign vs RBP | rate circuit vs RBP: cos / rel err |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %s | %d | %.4f (%.4f) | %.3f | %.3f | %.4f (%.4f) | %.3f | %.3f "
                     "| %.4f / %.3f |" % (
                         r["sweep"], r["setting"], round(r["spikes"]), r["cos_rate"],
                         r["cos_rate_min"], r["rel_rate"], r["sign_rate"], r["cos_rbp"],
                         r["cos_rbp_min"], r["rel_rbp"], r["sign_rbp"],
                         r["rate_vs_rbp_cosine"], r["rate_vs_rbp_rel_error"]))
    return "\n".join(lines)


def first_reaching(rows, vs_rate=0.99, vs_rbp=0.95):
    """The fewest-spike setting whose worst seed reaches both cosines, or None."""
    ok = [r for r in rows if r["cos_rate_min"] >= vs_rate and r["cos_rbp_min"] >= vs_rbp]
    if not ok:
        return None
    r = min(ok, key=lambda r: r["spikes"])
    return {"sweep": r["sweep"], "setting": r["setting"], "spikes": r["spikes"],
            "cos_rate_min": r["cos_rate_min"], "cos_rbp_min": r["cos_rbp_min"]}


MARKERS = {"base": "*", "max_rate": "o", "nudge_steps": "s", "traces": "^", "neuron": "D"}


def plot(groups, path, title="Spike-based update vs rate circuit (blue), vs RBP (red)",
         circuit=None, engine=None):
    """Relative error of every seed's update against the nudged-phase spike count, log-log,
    for ``groups`` ``{name: rows}`` (filled markers for the first group), with the
    ``max_rate`` sweep of the first group as lines and a spikes^-1/2 guide; the figure's
    title names ``circuit`` and ``engine`` where given."""
    plt, fig, (ax,) = plots.figure(1, width=5.6, height=4.0)
    first = next(iter(groups))
    for name, rows in groups.items():
        for sweep, marker in MARKERS.items():
            rs = [r for r in rows if r["sweep"] == sweep]
            if not rs:
                continue
            for key, color in (("rel_rate", "C0"), ("rel_rbp", "C3")):
                ax.scatter([p["spikes"] for r in rs for p in r["per_seed"]],
                           [p[key] for r in rs for p in r["per_seed"]], marker=marker,
                           facecolors=color if name == first else "none", edgecolors=color,
                           s=22, label="%s: %s" % (name, sweep) if key == "rel_rate" else None)
    rs = sorted([r for r in groups[first] if r["sweep"] == "max_rate"], key=lambda r: r["spikes"])
    for key, color in (("rel_rate", "C0"), ("rel_rbp", "C3")):
        if rs:
            ax.plot([r["spikes"] for r in rs], [r[key] for r in rs], color=color, lw=1)
    if len(rs) >= 2 and rs[0]["spikes"] > 0:
        s = np.array([rs[0]["spikes"], rs[-1]["spikes"]], dtype=float)
        ax.plot(s, rs[0]["rel_rate"] * np.sqrt(s[0] / s), "k--", lw=0.8, label="spikes$^{-1/2}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("state-neuron spikes in the nudged phases (batch total)")
    ax.set_ylabel("relative error of the spike-based update")
    ax.set_title(title, fontsize=10)
    if circuit or engine:
        fig.suptitle(plots.run_title("Spiking fidelity", circuit, engine), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5, loc="best")
    return plots.save(plt, fig, path)


def save_h5(res, path, circuit_text=None, attrs=None):
    """``fidelity.h5``: one table per column under ``/fidelity/spiking`` (a row per setting:
    ``setting``, ``sweep``, the means, mins and maxes, ``per_seed/<metric>`` as
    ``(settings, seeds)``), the RBP gradient, and the last circuit's spikes under
    ``/spikes/<population>`` with its states as reports."""
    rows = res["rows"]
    table = {"setting": np.array([r["setting"] for r in rows], dtype="S"),
             "sweep": np.array([r["sweep"] for r in rows], dtype="S"),
             "nudge_steps": np.array([r["nudge_steps"] for r in rows]),
             "max_rate": np.array([r["params"]["max_rate"] for r in rows]),
             "tau_fast": np.array([r["params"]["tau_fast"] for r in rows]),
             "tau_slow": np.array([r["params"]["tau_slow"] for r in rows]),
             "rate_vs_rbp_cosine": np.array([r["rate_vs_rbp_cosine"] for r in rows]),
             "seconds_per_run": np.array([r["seconds_per_run"] for r in rows])}
    for k in COLUMNS:
        for suffix in ("", "_min", "_max"):
            table[k + suffix] = np.array([r[k + suffix] for r in rows], dtype=float)
    table["per_seed"] = {k: np.array([[q[k] for q in r["per_seed"]] for r in rows], dtype=float)
                         for k in COLUMNS}
    last = res["last"]
    tau = last.params["tau"]
    reports = {q: {"data": tr["u"], "variable": "u", "units": "dimensionless"}
               for q, tr in last.traces.items()}
    return traces.write(path, reports=reports or None, spikes=last.spike_table(),
                        phases=getattr(last, "phases", None), gradients={"rbp": res["rbp"]},
                        fidelity={"spiking": table}, circuit=circuit_text,
                        attrs=dict(attrs or {}, command="fidelity", engine="brian2-spiking",
                                   neuron=last.neuron),
                        dt=last.eps * tau, time_units="ms")


def summary(res, out=None, files=None):
    """The one-line JSON summary (plain numbers)."""
    rows = [{k: r[k] for k in ("sweep", "setting", "neuron", "nudge_steps", "spikes",
                               "cos_rate", "cos_rate_min", "rel_rate", "sign_rate", "cos_rbp",
                               "cos_rbp_min", "rel_rbp", "sign_rbp", "rate_vs_rbp_cosine",
                               "seconds_per_run")} for r in res["rows"]]
    s = {"engine": "brian2-spiking", "rows": rows, "threshold_setting": first_reaching(res["rows"])}
    if out is not None:
        s["out"] = out
    s.update(files or {})
    return s


__all__ = ["study", "settings", "parse_sweep", "trace_constants", "report", "plot", "save_h5",
           "summary", "first_reaching", "SpikingFidelityError", "SWEEPS"]
