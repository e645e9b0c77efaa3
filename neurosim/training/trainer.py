"""The engine-agnostic training loop (:class:`Trainer`): learning rates per projection,
momentum, persistent particles, mini-batches, evaluation through the engine's own inference,
the fidelity of the engine's own update to RBP on a sample of batches, and checkpoints that let
an interrupted run resume exactly.

The trainer uses only the engine protocol (:mod:`neurosim.engines.protocol`). A fidelity batch
trains exactly as any other batch (the step reports its estimate; nothing else is run on the
engine), and the ground truth -- RBP at the exact free fixed point of the weights the batch ran
with -- draws no random numbers, so measuring does not change what is measured.
"""
from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
import zipfile

import numpy as np
from tqdm.auto import tqdm

from .. import energy as en
from .. import estimators
from .. import fidelity as fid
from ..atomic import atomic_path
from ..errors import ConfigurationError, CorruptFileError, DivergedError, NeurosimError
from ..plan import batch_sign, batch_stream, unsettled
from ..hardware.cost import CostMeter
from .optimizer import Optimizer, make_optimizer, resolve_learning_rates


class Interrupted(NeurosimError, RuntimeError):
    """Training stopped by SIGINT/SIGTERM after writing a checkpoint."""


class _StopRun(BaseException):
    """Raised by the signal handler inside a whole-epoch circuit run to stop it at once (the
    circuit's process is killed; the epoch restarts from its checkpoint)."""


def outputs_score(net, outputs, y):
    """Summed cost and the number of correct argmax predictions of the outputs ``outputs``
    (population -> (n, n_out)): ``1/2 |r_out - y|^2`` of the output rates, or the
    cross-entropy ``-sum y log yhat`` of a softmax readout's predictions."""
    out = net.outputs[0]
    r = outputs[out]
    if net.readout == "softmax":
        tiny = np.finfo(r.dtype).tiny   # log(0) of a prediction that underflowed
        cost = -float(np.sum(y * np.log(np.maximum(r, tiny)), dtype=np.float64))
    else:
        cost = 0.5 * float(np.sum(np.square(r - y, dtype=np.float64)))
    correct = int(np.sum(np.argmax(r, axis=1) == np.argmax(y, axis=1)))
    return cost, correct


def evaluate(engine, x, y, batch_size=1000):
    """Mean cost and accuracy of the engine's own inference (:meth:`Engine.infer`: its output
    rates after its free phase)."""
    cost, correct, n = 0.0, 0, x.shape[0]
    for i in range(0, n, batch_size):
        c, k = outputs_score(engine.net, engine.infer(x[i:i + batch_size]), y[i:i + batch_size])
        cost += c
        correct += k
    return cost / n, correct / n


@contextlib.contextmanager
def parameters(net, params):
    """``net.params`` hold ``params`` inside the block (the values are copied in and the
    previous ones restored)."""
    keep = {k: v.copy() for k, v in net.params.items()}
    for k, v in params.items():
        net.params[k][...] = v
    try:
        yield net
    finally:
        for k, v in keep.items():
            net.params[k][...] = v


def new_phase_counts():
    """Zeroed counts of an epoch's phases (:meth:`Trainer._count_phases`)."""
    return {"batches": 0, "free_steps": 0, "nudge_steps": 0, "nudged_phases": 0,
            "unsettled_free": 0, "unsettled_nudged": 0, "free_step_max": 0.0}


HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds",
                "examples_per_second")


def read_checkpoint(path, training=True):
    """``(meta, arrays)`` of a checkpoint written by :meth:`Trainer.save`, or
    :class:`~neurosim.errors.CorruptFileError` naming the file when it is truncated or not a
    checkpoint (``training``: it must hold the state a resume needs; False: the weights are
    enough, as for ``neurosim fidelity --weights``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta", "{}")))
        if training and not all(k in meta for k in ("epoch", "batch", "acc", "history",
                                                    "fidelity")):
            raise KeyError("meta")
    except (zipfile.BadZipFile, EOFError, KeyError, ValueError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        what = "it has no training state" if isinstance(e, KeyError) else \
            "not a readable .npz archive: %s" % (str(e).splitlines() or [type(e).__name__])[0]
        raise CorruptFileError("checkpoint %s is truncated or damaged (%s)%s"
                               % (path, what, "; it cannot be resumed" if training else ""))\
            from None
    return meta, arrays


def finite(params):
    """Whether every parameter array holds only finite values."""
    return all(np.all(np.isfinite(v)) for v in params.values())


def schedule_factor(schedule, epoch, epochs):
    """The learning rates' factor in epoch ``epoch`` (from 0): 1 (``"constant"``), or cosine
    annealing ``(1 + cos(pi epoch / epochs)) / 2`` from the base rates toward 0."""
    return 1.0 if schedule == "constant" else 0.5 * (1 + np.cos(np.pi * epoch / epochs))


def on_terminal():
    """Whether progress bars have a terminal to go to: stdout and stderr are both terminals
    (not ``neurosim run > log``), or a Jupyter kernel shows them."""
    def tty(stream):
        try:
            return stream is not None and stream.isatty()
        except (AttributeError, ValueError):       # no isatty, or a closed stream
            return False
    return (tty(sys.stdout) and tty(sys.stderr)) or "ipykernel" in sys.modules


class Trainer:
    """Trains ``engine.net`` on a dataset with a learning rule, logs the fidelity of the
    engine's own update to RBP on a sample of batches, and checkpoints so a run can resume
    exactly.

    Determinism: each epoch's order and each batch's random sign come from
    ``(seed, epoch, batch)``, so a resumed run ends with the same weights as an uninterrupted
    one. SIGINT/SIGTERM write a checkpoint after the current batch (a whole-epoch circuit run
    is stopped at once and its epoch restarts) and raise :class:`Interrupted`.

    ``optimizer``: ``"sgd"`` (with ``momentum``) or ``"adam"`` (with ``adam_betas``;
    :mod:`neurosim.training.optimizer`), either with decoupled ``weight_decay``; the
    learning-rate schedule scales both.
    ``rule``: ``"ep"`` (the engine's own step), ``"continual_ep"`` or ``"rbp"`` (the implicit
    gradient at the exact fixed point polished from the engine's free state; reference
    engine): the estimator of :func:`neurosim.estimators.for_engine`, through which every
    batch trains (:meth:`neurosim.estimators.Estimator.step`). ``meter``: what the cost model
    (:mod:`neurosim.hardware.cost`) reads; by default a :class:`~neurosim.hardware.cost.CostMeter`
    of the engine's counters (kept in checkpoints); ``False`` for none.
    ``fidelity_tol``: the ground truth's free fixed point must hold to this projected-step
    residual, else :class:`~neurosim.fixed_point.FixedPointError` names the batch.
    ``progress``: a tqdm bar per epoch; None (the default): only where :func:`on_terminal`.
    """

    def __init__(self, engine, dataset, *, rule="ep", lr=0.1, bias_lr=None, momentum=0.0,
                 optimizer="sgd", adam_betas=(0.9, 0.999), weight_decay=0.0,
                 schedule="constant", epochs=10, batch_size=20, seed=0, fidelity_batches=2,
                 eval_batch_size=1000, checkpoint_every=200, persistent=False, checkpoint=None,
                 progress=None, meter=None, fidelity_tol=1e-8):
        self.engine, self.net, self.data = engine, engine.net, dataset
        self.rule = rule
        self.estimator = estimators.for_engine(rule, engine, fidelity_tol)
        self.base_lrs = resolve_learning_rates(self.net, lr, bias_lr)
        self.lrs = dict(self.base_lrs)
        if schedule not in ("constant", "cosine"):
            raise ConfigurationError("learning.schedule: expected 'constant' or 'cosine', got %r"
                                     % (schedule,))
        self.schedule = schedule
        self.opt = make_optimizer(optimizer, self.lrs, momentum, adam_betas,
                                  weight_decay)
        self.epochs, self.batch_size, self.seed = int(epochs), int(batch_size), int(seed)
        self.fidelity_batches, self.eval_batch_size = int(fidelity_batches), int(eval_batch_size)
        self.checkpoint_every, self.checkpoint = int(checkpoint_every), checkpoint
        self.progress = on_terminal() if progress is None else bool(progress)
        self.fidelity_tol = float(fidelity_tol)
        if engine.fuses_epoch and persistent:
            raise ConfigurationError("engine.persistent: the %s engine starts every example "
                                     "from rest" % engine.name)
        if not self.opt.plain and (engine.fuses_epoch or rule == "continual_ep"):
            what = ("the %s engine trains whole epochs in its circuit" % engine.name
                    if engine.fuses_epoch else "continual EP updates the weights inside its "
                    "phases")
            raise ConfigurationError(
                "learning.optimizer: %s with plain SGD; set optimizer = \"sgd\", momentum = 0 "
                "and weight_decay = 0 (got optimizer %r, momentum %g, weight_decay %g)"
                % (what, self.opt.name, momentum, weight_decay))
        n = dataset.x_train.shape[0]
        self.n_batches = -(-n // self.batch_size)
        self.particles = ({p: np.zeros((n, self.net.sizes[p]), self.net.dtype)
                           for p in self.net.state_pops} if persistent else None)
        self.history = {k: [] for k in HISTORY_KEYS}
        self.fidelity = {"epoch_fraction": []}
        self.last_gradients = {}
        self.epoch, self.batch = 0, 0           # where the next batch starts
        self.phase_counts = new_phase_counts()  # this epoch's phases (see _count_phases)
        self.acc = [0.0, 0, 0, 0.0]             # running cost sum, correct, examples, seconds
        self._stop, self._in_circuit = None, False
        self.meter = CostMeter(engine) if meter is None else (meter or None)
        # wall time: ``seconds_before`` of earlier sessions (from the checkpoint) plus this
        # session's since ``started`` (a caller may move it back to count its own set-up)
        self.seconds_before, self.started = 0.0, time.perf_counter()
        self.saved_at = None            # (epoch, batch) of the last checkpoint written

    def elapsed(self):
        """Seconds of training so far, earlier sessions of a resumed run included."""
        return self.seconds_before + time.perf_counter() - self.started

    # -- bookkeeping ------------------------------------------------------------------
    def _order(self, epoch):
        return np.random.default_rng([self.seed, epoch]).permutation(self.data.x_train.shape[0])

    def _fidelity_at(self):
        k = min(self.fidelity_batches, self.n_batches)
        return sorted(set(np.linspace(0, self.n_batches - 1, k).round().astype(int).tolist())) \
            if k else []

    def _batch_rng(self, epoch, b):
        """The random stream of batch ``b`` of ``epoch`` (its sign of beta)."""
        return batch_stream(self.seed, epoch, b)

    def save(self, path=None):
        """Write a checkpoint atomically."""
        path = path or self.checkpoint
        if not path:
            return None
        if not finite(self.net.params):
            raise DivergedError("the parameters are not finite at epoch %d, batch %d; the "
                                "checkpoint %s is not overwritten with them"
                                % (self.epoch + 1, self.batch, path))
        arrays = {"param/" + k: v for k, v in self.net.params.items()}
        arrays.update({"optimizer/" + k: v for k, v in self.opt.state_dict().items()})
        if self.particles is not None:
            arrays.update({"particles/" + p: v for p, v in self.particles.items()})
        meta = {"epoch": self.epoch, "batch": self.batch, "acc": self.acc,
                "history": self.history, "phase_counts": self.phase_counts,
                "seconds": self.elapsed(),
                "fidelity": {k: [float(x) for x in v] for k, v in self.fidelity.items()}}
        if self.meter is not None:
            meta["meter"] = self.meter.state_dict()
        arrays.update({"engine/" + k: v for k, v in self.engine.state_dict().items()})
        meta["optimizer"] = self.opt.name
        arrays["meta"] = np.array(json.dumps(meta))
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        self.saved_at = (self.epoch, self.batch)
        return path

    def load(self, path):
        """Restore a checkpoint written by :meth:`save` (:class:`CorruptFileError` naming
        it when it is truncated or damaged)."""
        meta, z = read_checkpoint(path)
        written_by = meta.get("optimizer", "sgd")      # before Adam: SGD's velocity only
        if written_by != self.opt.name:
            raise ConfigurationError("checkpoint %s was written with learning.optimizer = %r; "
                                     "resume it with the same optimizer, got %r"
                                     % (path, written_by, self.opt.name))
        for k in self.net.params:
            if "param/" + k not in z:
                raise ConfigurationError("checkpoint %s does not match the network: no %r"
                                         % (path, k))
            if z["param/" + k].shape != self.net.params[k].shape:
                raise ConfigurationError(
                    "checkpoint %s does not match the network: %r has shape %s, expected %s"
                    % (path, k, z["param/" + k].shape, self.net.params[k].shape))
            self.net.params[k][...] = z["param/" + k]
        self.opt.load_state_dict({k.split("/", 1)[1]: v for k, v in z.items()
                                  if k.startswith(("optimizer/", "velocity/"))})
        if self.particles is not None:
            for p in self.particles:
                self.particles[p][...] = z["particles/" + p]
        engine_state = {k[7:]: v for k, v in z.items() if k.startswith("engine/")}
        if engine_state:
            self.engine.load_state_dict(engine_state)
        self.epoch, self.batch, self.acc = meta["epoch"], meta["batch"], meta["acc"]
        self.phase_counts = dict(new_phase_counts(), **meta.get("phase_counts", {}))
        self.history = {k: list(v) for k, v in meta["history"].items()}
        self.fidelity = {k: list(v) for k, v in meta["fidelity"].items()}
        self.seconds_before = float(meta.get("seconds", sum(self.history.get("seconds", []))))
        self.started = time.perf_counter()
        self.saved_at = (self.epoch, self.batch)
        if self.meter is not None and "meter" in meta:   # restored counters: the baseline
            self.meter.load_state_dict(meta["meter"], self.engine)

    def _signal(self, signum, frame):
        self._stop = signum
        if self._in_circuit:
            raise _StopRun()

    # -- the ground truth -------------------------------------------------------------
    def ground_truth(self, x, y, label, state=None):
        """RBP's gradient at the exact free fixed point of the current parameters, and that
        fixed point (the engine's :meth:`~neurosim.engines.protocol.Engine.ground_truth`),
        polished from the engine's own free state ``state`` where it reports one."""
        return self.engine.ground_truth(x, y, self.fidelity_tol, label, state=state)

    # -- the loop ---------------------------------------------------------------------
    def _train_batch(self, idx, epoch, b, fidelity):
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        state = None if self.particles is None else {p: v[idx] for p, v in self.particles.items()}
        label = "epoch %d, batch %d" % (epoch + 1, b)
        ran = {k: v.copy() for k, v in self.net.params.items()} if fidelity else None
        res = self.estimator.step(self.engine, x, y, self.opt, state=state,
                                  rng=self._batch_rng(epoch, b), want_estimate=fidelity,
                                  label=label)
        truth = res.truth               # the rbp rule computed it already
        if fidelity and truth is None:  # at the parameters the batch ran with, from its state
            with parameters(self.net, ran):
                truth = self.ground_truth(x, y, label, self._whole_state(res.state))
        self._count_phases(res.phases)
        if self.particles is not None:
            for p in self.particles:
                self.particles[p][idx] = res.state[p]
        if fidelity:
            self._log_fidelity(res.estimate, truth, epoch, b, res.applied, res.state)
        out = self.net.outputs[0]
        guess = en.predictions(self.net, res.state)[out] if self.net.readout == "softmax" \
            else res.state[out]
        correct = int(np.sum(np.argmax(guess, 1) == np.argmax(y, 1)))
        return res.cost * len(idx), correct

    def _whole_state(self, state):
        """``state`` where it holds every state population (a rate network's free state),
        else None (a spiking engine reports its output rates only)."""
        if state and all(p in state for p in self.net.state_pops):
            return state
        return None

    def _count_phases(self, runs):
        """Add one batch's phases (:class:`~neurosim.plan.PhaseRun` s, the free phase first)
        to the epoch's counts: steps taken per phase, and the batches whose free or nudged
        phases stopped at their step cap above ``engine.tol`` (:func:`neurosim.plan.unsettled`)."""
        if not runs:
            return
        c = self.phase_counts
        free, nudged = unsettled(runs, self.engine.settings.tol)
        c["batches"] += 1
        c["free_steps"] += runs[0].steps
        c["nudge_steps"] += sum(r.steps for r in runs[1:])
        c["nudged_phases"] += len(runs) - 1
        c["unsettled_free"] += int(free)
        c["unsettled_nudged"] += int(nudged)
        c["free_step_max"] = max(c["free_step_max"], runs[0].step)

    def _log_fidelity(self, grad, truth, epoch, b, applied=None, free_state=None):
        """One fidelity row: the engine's own estimate (and the update the devices took) vs
        RBP, the share of units pinned at the clip bounds, the ground truth's residual, and
        ``free_distance``: how far the engine's own free state ``free_state`` is from the
        exact fixed point, ``max |s0 - s*|`` (NaN where the engine does not report it). A
        large distance says the free phase did not settle: EP then does not estimate RBP's
        gradient, whatever the cosine."""
        ref, fp = truth
        m = fid.compare(grad, ref)
        # where RBP's gradient is exactly zero (every unit it could move is pinned at a clip
        # bound) the angle and the relative error are undefined: logged as NaN, and counted
        zero = {k: not np.any(v) for k, v in ref.items()}
        zero["all"] = all(zero.values())
        self.fidelity["epoch_fraction"].append(epoch + b / self.n_batches)
        for key in ["all"] + list(self.net.params):
            row = m if key == "all" else m["per_param"][key]
            for metric in ("cosine", "rel_error", "sign_agreement"):
                v = float("nan") if zero[key] else row[metric]
                self.fidelity.setdefault("%s/%s" % (metric, key), []).append(v)
        self.fidelity.setdefault("rbp_zero", []).append(1.0 if zero["all"] else 0.0)
        if applied is not None:     # the update the devices took, vs RBP (same batch)
            a = fid.compare(applied, {k: ref[k] for k in applied})
            for metric in ("cosine", "rel_error", "sign_agreement"):
                v = float("nan") if zero["all"] else a[metric]
                self.fidelity.setdefault("applied_%s/all" % metric, []).append(v)
        for p, share in fp.pinned.items():
            self.fidelity.setdefault("pinned/%s" % p, []).append(share)
        self.fidelity.setdefault("rbp_residual", []).append(fp.residual)
        dist = float("nan") if free_state is None or not all(
            p in free_state for p in self.net.state_pops) else max(
            float(np.max(np.abs(np.asarray(free_state[p], np.float64) - fp.state[p])))
            for p in self.net.state_pops)
        self.fidelity.setdefault("free_distance", []).append(dist)
        self.last_gradients = {"ep": dict(grad), "rbp": ref}

    def fit(self, on_epoch=None):
        """Train from the current position to ``epochs``; returns the history."""
        # handlers can only be installed on the main thread (a Dask worker runs tasks on
        # others; there a killed run is redone by the sweep instead of checkpointed here)
        main = threading.current_thread() is threading.main_thread()
        old = {s: signal.signal(s, self._signal) for s in (signal.SIGINT, signal.SIGTERM)} \
            if main else {}
        try:
            while self.epoch < self.epochs:
                self._run_epoch(on_epoch)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        return self.history

    def _set_learning_rates(self, epoch):
        """Constant, or cosine annealing from the base rates toward 0 over the epochs."""
        f = schedule_factor(self.schedule, epoch, self.epochs)
        self.lrs = {k: v * f for k, v in self.base_lrs.items()}
        self.opt.lrs = self.lrs

    def _batch_signs(self, epoch, order):
        """Per-example sign of beta: +1, or for random-sign EP the draw of each batch's
        stream (:func:`neurosim.plan.batch_sign`)."""
        signs = np.ones(len(order))
        if self.engine.plan.random_sign:
            for b in range(self.n_batches):
                signs[b * self.batch_size:(b + 1) * self.batch_size] = \
                    batch_sign(self.seed, epoch, b)
        return signs

    def _diverged(self, epoch, b, cost):
        """The :class:`DivergedError` of batch ``b`` of ``epoch``: where, what, and which
        checkpoint keeps the last finite state."""
        what = "the loss is %s" % cost if not np.isfinite(cost) else \
            "the parameters are not finite"
        e, k = self.saved_at or (None, None)
        if e is None or not self.checkpoint:
            kept = "no checkpoint was written before it"
        elif k:
            kept = "%s keeps the last finite state (epoch %d, batch %d)" % (self.checkpoint,
                                                                           e + 1, k)
        else:
            kept = "%s keeps the state after epoch %d" % (self.checkpoint, e)
        rates = sorted(set(self.base_lrs.values()))
        return DivergedError("training diverged at epoch %d, batch %d: %s; %s; try a smaller "
                             "learning.lr (now %s)" % (epoch + 1, b, what, kept,
                                                       ", ".join("%g" % r for r in rates)))

    def _interrupted(self, epoch):
        path = self.save()
        return Interrupted("interrupted by signal %d at epoch %d, batch %d/%d; checkpoint: %s"
                           % (self._stop, epoch + 1, self.batch, self.n_batches, path))

    def _run_epoch_in_circuit(self, epoch, order):
        """A whole epoch in one circuit run (engines with ``fuses_epoch``): the test set runs
        in the same run at the final weights; the fidelity batches' updates and the weights
        they ran with are read from inside the run and compared with RBP afterwards."""
        record = self._fidelity_at()
        xo, yo = self.data.x_train[order], self.data.y_train[order]
        t0 = time.perf_counter()
        self._in_circuit = True
        try:
            if self._stop is not None:
                raise _StopRun()
            res = self.engine.train_epoch(xo, yo, self._batch_signs(epoch, order), self.lrs,
                                          self.batch_size, record=record,
                                          x_eval=self.data.x_test)
        except _StopRun:
            self._in_circuit = False
            raise self._interrupted(epoch) from None
        finally:
            self._in_circuit = False
        self.acc[3] = time.perf_counter() - t0
        if self.meter is not None:
            for s in range(0, len(order), self.batch_size):
                self.meter.batch(self.engine, min(self.batch_size, len(order) - s), epoch + 1)
        for b in record:
            g, params = res.recorded[b]
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            with parameters(self.net, params):
                truth = self.ground_truth(self.data.x_train[idx], self.data.y_train[idx],
                                          "epoch %d, batch %d" % (epoch + 1, b))
            self._log_fidelity(g, truth, epoch, b)
        cost, correct = outputs_score(self.net, res.train_outputs, yo)
        self.acc[:3] = [cost, correct, len(order)]
        self.batch = self.n_batches
        return res.eval_outputs

    def _run_epoch(self, on_epoch):
        epoch, order = self.epoch, self._order(self.epoch)
        self._set_learning_rates(epoch)
        if self.engine.fuses_epoch:
            test_outputs = self._run_epoch_in_circuit(epoch, order)
            self._finish_epoch(epoch, on_epoch, test_outputs)
            return
        fid_at = set(self._fidelity_at())
        bar = tqdm(total=self.n_batches, initial=self.batch, disable=not self.progress,
                   desc="epoch %d/%d" % (epoch + 1, self.epochs), unit="batch", leave=False)
        t0 = time.perf_counter()
        try:
            while self.batch < self.n_batches:
                b = self.batch
                idx = order[b * self.batch_size:(b + 1) * self.batch_size]
                cost, correct = self._train_batch(idx, epoch, b, b in fid_at)
                if not (np.isfinite(cost) and finite(self.net.params)):
                    raise self._diverged(epoch, b, cost)
                self.acc[0] += cost
                self.acc[1] += correct
                self.acc[2] += len(idx)
                if self.meter is not None:
                    self.meter.batch(self.engine, len(idx), epoch + 1)
                self.batch += 1
                if self.progress:
                    bar.update(1)
                    bar.set_postfix(loss="%.4f" % (self.acc[0] / self.acc[2]),
                                    acc="%.3f" % (self.acc[1] / self.acc[2]))
                if self._stop is not None:
                    self.acc[3] += time.perf_counter() - t0
                    raise self._interrupted(epoch)
                if self.batch % self.checkpoint_every == 0 and self.batch < self.n_batches:
                    self.acc[3] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    self.save()
        finally:
            bar.close()
        self.acc[3] += time.perf_counter() - t0
        self._finish_epoch(epoch, on_epoch)

    def _finish_epoch(self, epoch, on_epoch, test_outputs=None):
        if test_outputs is None:
            test_loss, test_acc = evaluate(self.engine, self.data.x_test, self.data.y_test,
                                           self.eval_batch_size)
        else:
            c, k = outputs_score(self.net, test_outputs, self.data.y_test)
            n = self.data.x_test.shape[0]
            test_loss, test_acc = c / n, k / n
        if not (np.isfinite(self.acc[0]) and finite(self.net.params)):
            raise self._diverged(epoch, self.n_batches - 1, self.acc[0] / max(self.acc[2], 1))
        h = self.history
        h["epoch"].append(epoch + 1)
        h["train_loss"].append(self.acc[0] / self.acc[2])
        h["train_accuracy"].append(self.acc[1] / self.acc[2])
        h["test_loss"].append(test_loss)
        h["test_accuracy"].append(test_acc)
        h["seconds"].append(self.acc[3])
        h["examples_per_second"].append(self.acc[2] / max(self.acc[3], 1e-9))
        c = self.phase_counts
        if c["batches"]:    # the phases as they ran (engines that report them)
            h.setdefault("free_steps_mean", []).append(c["free_steps"] / c["batches"])
            h.setdefault("nudge_steps_mean", []).append(
                c["nudge_steps"] / max(c["nudged_phases"], 1))
            h.setdefault("free_step_max", []).append(c["free_step_max"])
            h.setdefault("unsettled_free", []).append(c["unsettled_free"])
            h.setdefault("unsettled_nudged", []).append(c["unsettled_nudged"])
            h.setdefault("phase_batches", []).append(c["batches"])
        self.phase_counts = new_phase_counts()
        if self.engine.evaluated_by != "reference" and self.engine.reference_readout:
            # the numpy readout of the same weights
            h.setdefault("reference_test_accuracy", []).append(self.reference_accuracy())
        self.epoch, self.batch, self.acc = epoch + 1, 0, [0.0, 0, 0, 0.0]
        self.save()
        if on_epoch is not None:
            on_epoch(self)

    def reference_accuracy(self):
        """Test accuracy of the numpy reference engine's rate readout of the current weights
        (reported beside a circuit engine's own accuracy, under its own name)."""
        from ..engines import build
        s = self.engine.settings
        ref = build("reference", self.net, eps=s.eps, free_steps=s.free_steps,
                    nudge_steps=s.nudge_steps, clip=s.clip, solver=s.solver, beta=s.beta,
                    variant=s.variant, points=s.points)
        return evaluate(ref, self.data.x_test, self.data.y_test, self.eval_batch_size)[1]


__all__ = ["Trainer", "Interrupted", "on_terminal", "evaluate", "outputs_score", "parameters",
           "HISTORY_KEYS", "Optimizer", "resolve_learning_rates", "schedule_factor"]
