"""One training run from a circuit file: build the network, engine and dataset, train, and
write the run folder ``<output.dir>/<name>-<timestamp>/`` with ``traces.h5``,
``metrics.json``, ``circuit.toml`` (the resolved circuit), ``checkpoint.npz`` and plots."""
from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np

from .. import __version__, config, plots, traces
from ..atomic import atomic_path, write_json, write_text
from ..hardware import cost
from .. import engines, report
from ..errors import ConfigurationError
from ..training.trainer import Trainer, read_checkpoint

CHECKPOINT = "checkpoint.npz"
SNAPSHOTS = "snapshots"      # per-epoch weights of a run not yet finished, one .npz each


def build_engine(circuit, net):
    """The engine of the ``[engine]`` section, on the devices of the ``[hardware]`` section
    (:func:`neurosim.engines.from_circuit`)."""
    return engines.from_circuit(circuit, net)


def build_trainer(circuit, engine, data, progress=None, **changes):
    """The :class:`~neurosim.training.trainer.Trainer` of a circuit file's ``[learning]`` and
    ``[train]`` sections (``changes`` override its keyword arguments, e.g.
    ``fidelity_batches=0``): what ``neurosim run`` trains with, for scripts that must train
    the same way."""
    L, T = circuit.learning, circuit.train
    kw = dict(rule=L.rule, lr=L.lr, bias_lr=L.bias_lr, momentum=L.momentum,
              optimizer=L.optimizer, adam_betas=L.adam_betas, weight_decay=L.weight_decay,
              schedule=L.schedule, epochs=T.epochs, batch_size=T.batch_size, seed=T.seed,
              fidelity_batches=T.fidelity_batches, eval_batch_size=T.eval_batch_size,
              checkpoint_every=T.checkpoint_every, persistent=circuit.engine.persistent,
              progress=progress)
    kw.update(changes)
    return Trainer(engine, data, **kw)


def _record_traces(circuit, engine, data):
    """The engine's own trajectories (free, nudged +beta, -beta) of a few test examples: the
    numpy states of the reference engine, the Brian2 monitors (and spikes) of a circuit; and
    their clock ``(dt, time units)``."""
    rec = circuit.record
    n = min(rec.examples, data.x_test.shape[0])
    if not rec.traces or n == 0:
        return {}, [], None, engine.clock()
    net = engine.net
    keep = rec.populations or net.state_pops
    unknown = [p for p in keep if p not in net.state_pops]
    if unknown:
        raise ConfigurationError("record.populations: %s are not state populations (%s)"
                                 % (unknown, net.state_pops))
    tr = engine.trajectories(data.x_test[:n], data.y_test[:n])
    dt, time_units = tr["dt"], tr["time_units"]
    # holomorphic EP's complex phases are written as their real parts (as neurosim fidelity
    # writes them; the phases' names tell them apart)
    reports = {p: {"data": np.real(tr["states"][p]), "dt": dt,
                   "variable": engine.state_variable, "units": engine.state_units,
                   "time_units": time_units} for p in keep}
    phases = [{"name": a, "start": s * dt, "stop": e * dt, "beta": float(np.real(b))}
              for a, s, e, b in tr["phases"]]
    spikes = None
    if tr["spikes"]:    # SONATA node ids: example e's unit i of a population of n is e n + i
        spikes = {p: {"timestamps": d["t"], "node_ids": d["example"] * net.sizes[p] + d["i"]}
                  for p, d in tr["spikes"].items()}
    return reports, phases, spikes, (dt, time_units)


def _summary(circuit, trainer, run_dir, seconds, cost_report):
    h = trainer.history
    out = {"name": circuit.name, "engine": circuit.engine.name,
           "evaluated_by": trainer.engine.evaluated_by, "rule": circuit.learning.rule,
           "dataset": circuit.dataset.name, "epochs": len(h["epoch"]),
           "test_accuracy": h["test_accuracy"][-1] if h["test_accuracy"] else None,
           "test_error": 1 - h["test_accuracy"][-1] if h["test_accuracy"] else None,
           "train_accuracy": h["train_accuracy"][-1] if h["train_accuracy"] else None,
           "test_loss": h["test_loss"][-1] if h["test_loss"] else None,
           "best_test_accuracy": max(h["test_accuracy"]) if h["test_accuracy"] else None,
           "seconds_per_epoch": float(np.mean(h["seconds"])) if h["seconds"] else None,
           "examples_per_second": float(np.mean(h["examples_per_second"]))
           if h["examples_per_second"] else None,
           "seconds": round(seconds, 3), "run_dir": run_dir,
           "pinned_bound": pinned_bound(circuit)}
    if h.get("reference_test_accuracy"):
        out["reference_test_accuracy"] = h["reference_test_accuracy"][-1]
    f = trainer.fidelity
    if f.get("cosine/all"):
        out["fidelity_cosine_last"] = f["cosine/all"][-1]
        out["fidelity_cosine_mean"] = float(np.nanmean(f["cosine/all"]))
        out["fidelity_cosine_worst"] = float(np.nanmin(f["cosine/all"]))
        out["fidelity_rel_error_last"] = f["rel_error/all"][-1]
        out["fidelity_estimate_by"] = trainer.engine.name
    if f.get("rbp_residual"):
        out["rbp_residual_worst"] = float(np.nanmax(f["rbp_residual"]))
    if f.get("free_distance") and not np.all(np.isnan(f["free_distance"])):
        out["free_distance_worst"] = float(np.nanmax(f["free_distance"]))
    out.update(phase_summary(h, trainer.engine.settings.tol))
    if f.get("applied_cosine/all"):
        out["fidelity_applied_cosine_mean"] = float(np.nanmean(f["applied_cosine/all"]))
        out["fidelity_applied_cosine_last"] = f["applied_cosine/all"][-1]
    elif f.get("cosine/all") and trainer.opt.plain and trainer.rule == "ep":
        # exact weights, plain SGD: the update applied is the engine's estimate itself
        out["fidelity_applied_cosine_mean"] = out["fidelity_cosine_mean"]
        out["fidelity_applied_cosine_last"] = out["fidelity_cosine_last"]
    out["cost"] = cost.summary(cost_report)
    energy = trainer.engine.counters().get("circuit_energy_j")
    if energy:      # a resistive engine: the power of the solved currents x settling time
        n = max(1, len(h["epoch"]) * trainer.data.x_train.shape[0])
        out["circuit_energy"] = {"free_j": energy["free"], "nudged_j": energy["nudged"],
                                 "per_training_example_nj": 1e9 * (energy["free"]
                                                                   + energy["nudged"]) / n}
    return out


def pinned_bound(circuit):
    """What holds a unit pinned at the free fixed point (a key of
    :data:`neurosim.plots.BOUNDS`): an ideal diode in a resistive network of ideal diodes,
    else the clip of the state to [0, 1]."""
    if circuit.network.kind == "resistive" and circuit.resistive.diode == "ideal":
        return "ideal diode"
    return "clip"


def phase_summary(history, tol):
    """The phases as they ran over the run (engines that report them): mean steps of the free
    phase and of a nudged phase, the largest last projected step of a free phase, and the
    batches whose free or nudged phases stopped at their step cap above ``engine.tol``."""
    if not history.get("phase_batches"):
        return {}
    n = sum(history["phase_batches"])
    w = np.asarray(history["phase_batches"], float)
    return {"free_steps_mean": float(np.dot(history["free_steps_mean"], w) / n),
            "nudge_steps_mean": float(np.dot(history["nudge_steps_mean"], w) / n),
            "free_step_worst": float(np.max(history["free_step_max"])),
            "tol": tol, "batches": int(n),
            "unsettled_free_batches": int(sum(history["unsettled_free"])),
            "unsettled_nudged_batches": int(sum(history["unsettled_nudged"]))}


def unsettled_warning(summary):
    """One line for the console where phases stopped at their step cap unsettled, else
    None."""
    free, nudged = (summary.get("unsettled_free_batches", 0),
                    summary.get("unsettled_nudged_batches", 0))
    if not (free or nudged):
        return None
    return ("warning: phases stopped at their step cap with the projected step above engine.tol "
            "= %g: the free phase in %d and a nudged phase in %d of %d batches; raise "
            "engine.free_steps / engine.nudge_steps (EP then estimates the gradient at a point "
            "that is not a fixed point)" % (summary["tol"], free, nudged, summary["batches"]))


def table(history):
    """The per-epoch summary table as text."""
    lines = ["%6s %11s %10s %10s %10s %9s %10s" % ("epoch", "train loss", "train acc",
                                                    "test loss", "test acc", "seconds", "ex/s")]
    for i in range(len(history["epoch"])):
        lines.append("%6d %11.5f %10.4f %10.5f %10.4f %9.2f %10.0f" % (
            history["epoch"][i], history["train_loss"][i], history["train_accuracy"][i],
            history["test_loss"][i], history["test_accuracy"][i], history["seconds"][i],
            history["examples_per_second"][i]))
    return "\n".join(lines)


def make_run_dir(parent, name, when=None):
    """Create and return a new run folder ``<parent>/<name>-<YYYYmmdd-HHMMSS>``, or with a
    suffix ``-2``, ``-3``, ... where that exists: each is claimed with :func:`os.mkdir`, so
    runs started in the same second (even concurrently) get folders of their own."""
    os.makedirs(parent, exist_ok=True)
    stem = os.path.join(parent, "%s-%s" % (name, time.strftime("%Y%m%d-%H%M%S", when or
                                                               time.localtime())))
    k = 1
    while True:
        path = stem if k == 1 else "%s-%d" % (stem, k)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            k += 1


def _finished(run_dir, meta, circuit):
    """The summary of a run folder whose checkpoint is past the circuit's epochs and whose
    outputs are written, else None."""
    if meta["epoch"] < circuit.train.epochs or meta["batch"]:
        return None
    try:
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
    except (OSError, ValueError):
        return None         # stopped after its last checkpoint: write its outputs now
    out = {k: v for k, v in metrics.items() if k not in ("history", "fidelity", "cost")}
    out["cost"] = cost.summary(metrics["cost"]) if "cost" in metrics else None
    return out


def _stuck(trainer):
    """Whether every fidelity batch of the epoch just finished had RBP's gradient exactly 0."""
    f = trainer.fidelity
    rows = [z for e, z in zip(f.get("epoch_fraction", []), f.get("rbp_zero", []))
            if trainer.epoch - 1 <= e < trainer.epoch]
    return bool(rows) and all(rows)


def _snapshot_path(run_dir, name):
    return os.path.join(run_dir, SNAPSHOTS, name + ".npz")


def _load_snapshots(run_dir, upto):
    """The per-epoch weight snapshots of a resumed run (epochs up to ``upto``): those of its
    ``snapshots/`` folder, else those in its ``traces.h5`` (a finished run continued)."""
    out = {}
    h5 = os.path.join(run_dir, "traces.h5")
    if os.path.exists(h5):
        out.update({k: v for k, v in (traces.load(h5).weights or {}).items()
                    if k.startswith("epoch_")})
    folder = os.path.join(run_dir, SNAPSHOTS)
    for f in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if f.startswith("epoch_") and f.endswith(".npz"):
            with np.load(os.path.join(folder, f), allow_pickle=False) as z:
                out[f[:-4]] = {k: z[k] for k in z.files}
    return {k: v for k, v in sorted(out.items()) if int(k[6:]) <= upto}


def _save_snapshot(run_dir, name, weights):
    os.makedirs(os.path.join(run_dir, SNAPSHOTS), exist_ok=True)
    with atomic_path(_snapshot_path(run_dir, name)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **weights)


def run(circuit_path=None, overrides=(), resume=None, out_dir=None, progress=None, echo=print):
    """Train the circuit; returns the summary dict (also written to ``metrics.json``).

    ``progress``: tqdm bars (None: on a terminal only). ``resume``: a run folder with a
    checkpoint: continue it to the circuit's epochs (the circuit stored in that folder is
    used; overrides still apply, e.g. more epochs). A run that already finished is left
    untouched (its summary is returned).
    """
    t0 = time.perf_counter()
    if resume is not None:
        ck = os.path.join(resume, CHECKPOINT)
        if not os.path.exists(ck):
            raise ConfigurationError("--resume %s: no %s there (a run folder written by "
                                     "'neurosim run')" % (resume, CHECKPOINT))
        source = os.path.join(resume, "circuit.toml")
        circuit, text = config.load(source, overrides)
        meta, _ = read_checkpoint(ck)
        done = _finished(resume, meta, circuit)
        if done is not None:
            echo("%s already finished (%d epochs); nothing to do, the run folder is left as it "
                 "is (to train further: --resume %s --set train.epochs=%d)"
                 % (resume, meta["epoch"], resume, meta["epoch"] + 10))
            return done
    else:
        source = config.resolve(circuit_path)
        circuit, text = config.load(source, overrides)
    # build and check everything before anything is written
    try:
        net = config.build_network(circuit.network, circuit.resistive.model_dump())
        data = config.build_dataset(circuit.dataset, circuit.network.dtype)
        config.check_fit(net, data)
        engine = build_engine(circuit, net)
        trainer = build_trainer(circuit, engine, data, progress=progress)
    except ConfigurationError as e:     # a value the user never wrote: say where it is from
        raise config.blame_file(e, source, text, overrides) from None
    if resume is not None:
        run_dir = resume
    else:
        run_dir = make_run_dir(out_dir or circuit.output.dir, circuit.name)
        write_text(os.path.join(run_dir, "circuit.toml"), config.to_toml(circuit))
    trainer.checkpoint = os.path.join(run_dir, CHECKPOINT)
    snapshots = {}
    if resume is not None:
        trainer.load(os.path.join(run_dir, CHECKPOINT))
        if circuit.record.weights == "epoch":
            snapshots = _load_snapshots(run_dir, trainer.epoch)
            last = "epoch_%03d" % trainer.epoch
            if trainer.epoch and not trainer.batch and last not in snapshots:
                # stopped between the epoch's checkpoint and its snapshot: the same weights
                snapshots[last] = {k: v.copy() for k, v in net.params.items()
                                   if k.startswith("W:")}
        echo("resuming %s at epoch %d, batch %d" % (run_dir, trainer.epoch + 1, trainer.batch))
    else:
        L = circuit.learning
        echo("neurosim run %s: %s on %s (%d train / %d test), %s engine, %s %s, %d epochs"
             % (circuit.name, net, data.name, data.n_train, data.n_test, engine.name, L.rule,
                L.variant if L.rule == "ep" else "", circuit.train.epochs))
    trainer.started = t0    # this session's set-up counts, earlier sessions from the checkpoint

    def on_epoch(tr):
        if circuit.record.weights == "epoch":
            name = "epoch_%03d" % tr.epoch
            snapshots[name] = {k: v.copy() for k, v in net.params.items() if k.startswith("W:")}
            _save_snapshot(run_dir, name, snapshots[name])     # kept if the run is stopped
        h = tr.history
        echo("epoch %d/%d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.1f s"
             % (h["epoch"][-1], tr.epochs, h["train_loss"][-1], h["train_accuracy"][-1],
                h["test_loss"][-1], h["test_accuracy"][-1], h["seconds"][-1]))
        if not warned and _stuck(tr):
            warned.append(tr.epoch)
            echo("warning: in epoch %d RBP's gradient was exactly 0 on every fidelity batch "
                 "(every unit pinned at a clip bound): the network no longer learns; a smaller "
                 "learning.lr (now %s) may help" % (tr.epoch, circuit.learning.lr))

    warned = []
    try:
        trainer.fit(on_epoch=on_epoch)
    finally:
        engine.close()
    seconds = trainer.elapsed()
    cost_report = cost.run_report(circuit, trainer)
    summary = _summary(circuit, trainer, run_dir, seconds, cost_report)
    _write_outputs(circuit, text, engine, data, trainer, snapshots, run_dir, summary,
                   cost_report)
    shutil.rmtree(os.path.join(run_dir, SNAPSHOTS), ignore_errors=True)   # now in traces.h5
    echo("")
    echo(table(trainer.history))
    echo("test accuracy %.4f after %d epochs (%.1f s); run folder: %s"
         % (summary["test_accuracy"], summary["epochs"], seconds, run_dir))
    if "free_steps_mean" in summary:
        echo("phases: %.1f free steps, %.1f steps per nudged phase (mean); largest last free "
             "step %.2g" % (summary["free_steps_mean"], summary["nudge_steps_mean"],
                            summary["free_step_worst"]))
    warning = unsettled_warning(summary)
    if warning:
        echo(warning)
    echo(cost.describe(summary["cost"]))
    if "circuit_energy" in summary:
        e = summary["circuit_energy"]
        echo("circuit energy (from the solved currents): %.4g nJ per training example "
             "(free %.4g J, nudged %.4g J in all)" % (e["per_training_example_nj"],
                                                      e["free_j"], e["nudged_j"]))
    return summary


def _write_outputs(circuit, text, engine, data, trainer, snapshots, run_dir, summary,
                   cost_report):
    net = engine.net
    reports, phases, spikes, (dt, time_units) = _record_traces(circuit, engine, data)
    weights = {}
    if circuit.record.weights != "none":
        weights = dict(snapshots)
        weights["final"] = {k: v for k, v in net.params.items()}
    gradients = {}
    if trainer.last_gradients:
        gradients = {k: v for k, v in trainer.last_gradients.items() if v}
    fidelity = {"over_training": {k: np.asarray(v) for k, v in trainer.fidelity.items()}} \
        if trainer.fidelity.get("epoch_fraction") else None
    training = {k: np.asarray(v) for k, v in trainer.history.items()}
    traces.write(os.path.join(run_dir, "traces.h5"), reports=reports or None, spikes=spikes,
                 phases=phases or None, weights=weights or None, gradients=gradients or None,
                 fidelity=fidelity, training=training, circuit=text,
                 attrs={"run_dir": run_dir, "name": circuit.name}, dt=dt,
                 time_units=time_units, cost=cost_report)
    metrics = dict(summary)
    metrics["cost"] = cost_report
    metrics["history"] = trainer.history
    metrics["fidelity"] = trainer.fidelity
    metrics["neurosim_version"] = __version__
    write_json(os.path.join(run_dir, "metrics.json"), metrics)
    who = {"circuit": circuit.name, "engine": circuit.engine.name}
    images = [plots.learning_curves(trainer.history, os.path.join(run_dir, "learning_curves.png"),
                                    **who)]
    if trainer.fidelity.get("epoch_fraction"):
        images.append(plots.fidelity_curves(trainer.fidelity,
                                            os.path.join(run_dir, "fidelity.png"),
                                            bound=summary["pinned_bound"], **who))
    report.write_report(run_dir, metrics, trainer.history, trainer.fidelity, images=images)


__all__ = ["run", "build_engine", "build_trainer", "table",
           "make_run_dir", "pinned_bound"]
