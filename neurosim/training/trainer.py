"""The engine-agnostic training loop (:class:`Trainer`): learning rates per projection,
momentum, persistent particles, mini-batches, evaluation, the fidelity of each update to RBP
on a sample of batches, and checkpoints that let an interrupted run resume exactly.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
from tqdm.auto import tqdm

from .. import energy as en
from .. import ep as _ep
from .. import fidelity as fid
from ..hardware.cost import CostMeter
from ..engines.reference import StepResult
from ..errors import ConfigurationError
from ..errors import NeurosimError

def resolve_learning_rates(net, lr, bias_lr=None, field="learning.lr"):
    """Learning rates per parameter key from a number, a list (one per projection, in
    ``net.projections`` order) or a dict keyed by projection (``"x->h1"`` or ``"W:x->h1"``).
    A bias follows the first projection into its population unless ``bias_lr`` is given."""
    projs = net.projections

    def per_projection(v, name):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {k: float(v) for k in projs}
        if isinstance(v, (list, tuple)):
            if len(v) != len(projs):
                raise ConfigurationError(
                    "%s: expected %d values, one per projection %s, got %d"
                    % (name, len(projs), [k[2:] for k in projs], len(v)))
            return {k: float(x) for k, x in zip(projs, v)}
        if isinstance(v, dict):
            out = {}
            for key, x in v.items():
                k = key if key.startswith("W:") else "W:" + key
                if k not in projs:
                    raise ConfigurationError("%s: %r is not a projection of the network (%s)"
                                             % (name, key, [p[2:] for p in projs]))
                out[k] = float(x)
            missing = [k[2:] for k in projs if k not in out]
            if missing:
                raise ConfigurationError("%s: no learning rate for projection(s) %s"
                                         % (name, missing))
            return out
        raise ConfigurationError("%s: expected a number, a list or a table, got %r" % (name, v))

    lrs = per_projection(lr, field)
    for p in net.state_pops:
        key = "b:%s" % p
        incoming = [t.key for t in net.terms if t.target == p and not t.transpose]
        lrs[key] = lrs[incoming[0]] if incoming else next(iter(lrs.values()))
    if bias_lr is not None:
        if isinstance(bias_lr, (int, float)) and not isinstance(bias_lr, bool):
            for p in net.state_pops:
                lrs["b:%s" % p] = float(bias_lr)
        elif isinstance(bias_lr, (list, tuple)):
            if len(bias_lr) != len(net.state_pops):
                raise ConfigurationError("learning.bias_lr: expected %d values, one per population "
                                         "%s, got %d" % (len(net.state_pops), net.state_pops,
                                                         len(bias_lr)))
            for p, v in zip(net.state_pops, bias_lr):
                lrs["b:%s" % p] = float(v)
        else:
            for p, v in bias_lr.items():
                if p not in net.state_pops:
                    raise ConfigurationError("learning.bias_lr: %r is not a population (%s)"
                                             % (p, net.state_pops))
                lrs["b:%s" % p] = float(v)
    return {k: lrs[k] for k in net.params}


class Optimizer:
    """Plain SGD with optional momentum, per-key learning rates: ``v <- m v + g``,
    ``theta <- theta - lr v``."""

    def __init__(self, lrs, momentum=0.0):
        self.lrs = dict(lrs)
        self.momentum = float(momentum)
        self.velocity = {}

    def apply(self, params, grad):
        for k, g in grad.items():
            lr = self.lrs[k]
            if not lr:
                continue
            if self.momentum:
                v = self.velocity.get(k)
                if v is None:
                    v = self.velocity[k] = np.zeros_like(g)
                v *= self.momentum
                v += g
                g = v
            params[k] -= lr * g

    def state_dict(self):
        return {k: v.copy() for k, v in self.velocity.items()}

    def load_state_dict(self, d):
        self.velocity = {k: np.array(v) for k, v in d.items()}


class Interrupted(NeurosimError, RuntimeError):
    """Training stopped by SIGINT/SIGTERM after writing a checkpoint."""


def evaluate(engine, x, y, batch_size=1000):
    """Mean cost and accuracy (argmax of the output state) after the free phase."""
    net = engine.net
    out = net.outputs[0]
    cost, correct, n = 0.0, 0, x.shape[0]
    for i in range(0, n, batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        s = engine.free(xb)
        cost += float(np.sum(en.cost(net, s, yb)))
        correct += int(np.sum(np.argmax(s[out], axis=1) == np.argmax(yb, axis=1)))
    return cost / n, correct / n


HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds",
                "examples_per_second")


class Trainer:
    """Trains ``engine.net`` on a dataset with a learning rule, logs the fidelity of the
    update to RBP on a sample of batches, and checkpoints so a run can resume exactly.

    Determinism: each epoch's order and each batch's random sign come from
    ``(seed, epoch, batch)``, so a resumed run ends with the same weights as an uninterrupted
    one. SIGINT/SIGTERM write a checkpoint after the current batch and raise
    :class:`Interrupted`.

    ``meter``: what the cost model (:mod:`neurosim.cost`) reads; by default a
    :class:`~neurosim.cost.CostMeter` that counts every batch's examples and the engine's
    pulse and spike counters (kept in checkpoints); ``False`` for none.
    """

    def __init__(self, engine, dataset, *, rule="ep", variant="symmetric", beta=0.5, lr=0.1,
                 bias_lr=None, momentum=0.0, schedule="constant", epochs=10, batch_size=20, seed=0,
                 fidelity_batches=2, eval_batch_size=1000, checkpoint_every=200,
                 persistent=False, checkpoint=None, progress=True, meter=None):
        self.engine, self.net, self.data = engine, engine.net, dataset
        self.rule, self.variant, self.beta = rule, variant, float(beta)
        self.base_lrs = resolve_learning_rates(self.net, lr, bias_lr)
        self.lrs = dict(self.base_lrs)
        if schedule not in ("constant", "cosine"):
            raise ConfigurationError("learning.schedule: expected 'constant' or 'cosine', got %r"
                                     % (schedule,))
        self.schedule = schedule
        self.opt = Optimizer(self.lrs, momentum)
        self.epochs, self.batch_size, self.seed = int(epochs), int(batch_size), int(seed)
        self.fidelity_batches, self.eval_batch_size = int(fidelity_batches), int(eval_batch_size)
        self.checkpoint_every, self.checkpoint = int(checkpoint_every), checkpoint
        self.progress = progress
        n = dataset.x_train.shape[0]
        self.n_batches = -(-n // self.batch_size)
        self.particles = ({p: np.zeros((n, self.net.sizes[p]), self.net.dtype)
                           for p in self.net.state_pops} if persistent else None)
        self.history = {k: [] for k in HISTORY_KEYS}
        self.fidelity = {"epoch_fraction": []}
        self.last_gradients = {}
        self.epoch, self.batch = 0, 0           # where the next batch starts
        self.acc = [0.0, 0, 0, 0.0]             # running cost sum, correct, examples, seconds
        self._stop = None
        # cost model counters (neurosim.cost): a CostMeter by default, False for none
        self.meter = CostMeter(engine) if meter is None else (meter or None)

    # -- bookkeeping ------------------------------------------------------------------
    def _order(self, epoch):
        return np.random.default_rng([self.seed, epoch]).permutation(self.data.x_train.shape[0])

    def _fidelity_at(self):
        k = min(self.fidelity_batches, self.n_batches)
        return set(np.linspace(0, self.n_batches - 1, k).round().astype(int).tolist()) if k else set()

    def save(self, path=None):
        """Write a checkpoint (temporary name, then rename)."""
        path = path or self.checkpoint
        if not path:
            return None
        arrays = {"param/" + k: v for k, v in self.net.params.items()}
        arrays.update({"velocity/" + k: v for k, v in self.opt.state_dict().items()})
        if self.particles is not None:
            arrays.update({"particles/" + p: v for p, v in self.particles.items()})
        meta = {"epoch": self.epoch, "batch": self.batch, "acc": self.acc,
                "history": self.history,
                "fidelity": {k: [float(x) for x in v] for k, v in self.fidelity.items()}}
        if self.meter is not None:
            meta["meter"] = self.meter.state_dict()
        if hasattr(self.engine, "state_dict"):      # devices (HardwareEngine): their state
            arrays.update({"engine/" + k: v for k, v in self.engine.state_dict().items()})
        arrays["meta"] = np.array(json.dumps(meta))
        tmp = path + ".tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        return path

    def load(self, path):
        """Restore a checkpoint written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            for k in self.net.params:
                if "param/" + k not in z:
                    raise ValueError("checkpoint %s does not match the network: no %r" % (path, k))
                if z["param/" + k].shape != self.net.params[k].shape:
                    raise ValueError("checkpoint %s does not match the network: %r has shape %s, "
                                     "expected %s" % (path, k, z["param/" + k].shape,
                                                      self.net.params[k].shape))
                self.net.params[k][...] = z["param/" + k]
            self.opt.load_state_dict({k[9:]: z[k] for k in z.files if k.startswith("velocity/")})
            if self.particles is not None:
                for p in self.particles:
                    self.particles[p][...] = z["particles/" + p]
            engine_state = {k[7:]: z[k] for k in z.files if k.startswith("engine/")}
        if engine_state and hasattr(self.engine, "load_state_dict"):
            self.engine.load_state_dict(engine_state)
        self.epoch, self.batch, self.acc = meta["epoch"], meta["batch"], meta["acc"]
        self.history = {k: list(v) for k, v in meta["history"].items()}
        self.fidelity = {k: list(v) for k, v in meta["fidelity"].items()}
        if self.meter is not None and "meter" in meta:   # restored counters: the baseline
            self.meter.load_state_dict(meta["meter"], self.engine)

    def _signal(self, signum, frame):
        self._stop = signum

    # -- the loop ---------------------------------------------------------------------
    def _train_batch(self, idx, epoch, b, fidelity):
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        applied = None
        state = None if self.particles is None else {p: v[idx] for p, v in self.particles.items()}
        rng = np.random.default_rng([self.seed, epoch, b, 1])
        ref = self.engine.rbp_gradient(x, y) if fidelity or self.rule == "rbp" else None
        if self.rule == "rbp":
            s = self.engine.free(x, state)
            grad = ref
            self.opt.apply(self.net.params, grad)
            res = StepResult(s, float(np.mean(en.cost(self.net, s, y))))
        elif self.rule == "continual_ep":
            s = self.engine.free(x, state)
            out = _ep.continual(self.net, x, y, self.beta, self.lrs, eps=self.engine.eps,
                               nudge_steps=self.engine.nudge_steps, free_steps=0, state=s,
                               clip=self.engine.clip)
            self.net.params.update({k: v.astype(self.net.dtype) for k, v in out.params.items()})
            grad = out.gradient
            res = StepResult(s, float(np.mean(en.cost(self.net, s, y))))
        else:
            grad = {} if (fidelity or self.opt.momentum) else None
            res = self.engine.step(x, y, self.beta, self.variant,
                                   self.lrs if grad is None else {k: 0.0 for k in self.lrs},
                                   rng=rng, state=state, grad_out=grad)
            if grad is not None:
                self.opt.apply(self.net.params, grad)
                if fidelity:
                    applied = self._applied_update()
        if self.particles is not None:
            for p in self.particles:
                self.particles[p][idx] = res.state[p]
        if fidelity:
            self._log_fidelity(grad, ref, epoch, b, applied)
        out = self.net.outputs[0]
        correct = int(np.sum(np.argmax(res.state[out], 1) == np.argmax(y, 1)))
        return res.cost * len(idx), correct

    def _applied_update(self):
        """On devices (an engine with a crossbar): program the optimizer's update now and
        return what the devices took of it as a gradient, ``-(change of the weights) / lr``
        (keys with a non-zero learning rate); None on other engines."""
        if getattr(self.engine, "crossbar", None) is None or not hasattr(self.engine, "sync"):
            return None
        self.engine.sync()
        change = self.engine.last_change
        if change is None:          # the devices took none of it (nothing asked, no pulse fired)
            return {k: np.zeros_like(v) for k, v in self.net.params.items() if self.lrs[k]}
        return {k: -change[k] / self.lrs[k] for k in change if self.lrs[k]}

    def _log_fidelity(self, grad, ref, epoch, b, applied=None):
        m = fid.compare(grad, ref)
        self.fidelity["epoch_fraction"].append(epoch + b / self.n_batches)
        for key in ["all"] + list(self.net.params):
            row = m if key == "all" else m["per_param"][key]
            for metric in ("cosine", "rel_error", "sign_agreement"):
                self.fidelity.setdefault("%s/%s" % (metric, key), []).append(row[metric])
        if applied is not None:     # the update the devices took, vs RBP (same batch)
            a = fid.compare(applied, {k: ref[k] for k in applied})
            for metric in ("cosine", "rel_error", "sign_agreement"):
                self.fidelity.setdefault("applied_%s/all" % metric, []).append(a[metric])
        self.last_gradients = {"ep": grad, "rbp": ref}

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
        f = 1.0 if self.schedule == "constant" else 0.5 * (1 + np.cos(np.pi * epoch / self.epochs))
        self.lrs = {k: v * f for k, v in self.base_lrs.items()}
        self.opt.lrs = self.lrs

    def _batch_signs(self, epoch, order):
        """Per-example sign of beta: +1, or for random-sign EP the draw the reference
        engine makes for each batch (the same seeds)."""
        signs = np.ones(len(order))
        if self.variant == "random_sign":
            for b in range(self.n_batches):
                rng = np.random.default_rng([self.seed, epoch, b, 1])
                signs[b * self.batch_size:(b + 1) * self.batch_size] = \
                    1.0 if rng.random() < 0.5 else -1.0
        return signs

    def _run_epoch_in_circuit(self, epoch, order):
        """A whole epoch in one circuit run (engines with ``train_epoch``). The fidelity of
        the update is measured on the epoch's first batches before the run, with the
        reference estimate of the same update (the circuit's equals it to rounding)."""
        for b in sorted(self._fidelity_at()):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x, y = self.data.x_train[idx], self.data.y_train[idx]
            ref = self.engine.rbp_gradient(x, y)
            grad = {}
            self.engine.step(x, y, self.beta, self.variant, {k: 0.0 for k in self.lrs},
                             rng=np.random.default_rng([self.seed, epoch, b, 1]), grad_out=grad)
            self._log_fidelity(grad, ref, epoch, b)
        t0 = time.perf_counter()
        self.engine.train_epoch(self.data.x_train[order], self.data.y_train[order],
                                self._batch_signs(epoch, order), self.lrs, self.batch_size)
        self.acc[3] = time.perf_counter() - t0
        if self.meter is not None:
            for s in range(0, len(order), self.batch_size):
                self.meter.batch(self.engine, min(self.batch_size, len(order) - s), epoch + 1)
        cost, acc = evaluate(self.engine, self.data.x_train, self.data.y_train,
                             self.eval_batch_size)
        self.acc[:3] = [cost * len(order), int(round(acc * len(order))), len(order)]
        self.batch = self.n_batches

    def _run_epoch(self, on_epoch):
        epoch, order = self.epoch, self._order(self.epoch)
        self._set_learning_rates(epoch)
        if hasattr(self.engine, "train_epoch"):
            self._run_epoch_in_circuit(epoch, order)
            self._finish_epoch(epoch, on_epoch)
            return
        fid_at = self._fidelity_at()
        bar = tqdm(total=self.n_batches, initial=self.batch, disable=not self.progress,
                   desc="epoch %d/%d" % (epoch + 1, self.epochs), unit="batch", leave=False)
        t0 = time.perf_counter()
        try:
            while self.batch < self.n_batches:
                b = self.batch
                idx = order[b * self.batch_size:(b + 1) * self.batch_size]
                cost, correct = self._train_batch(idx, epoch, b, b in fid_at)
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
                    path = self.save()
                    raise Interrupted("interrupted by signal %d at epoch %d, batch %d/%d; "
                                      "checkpoint: %s" % (self._stop, epoch + 1, self.batch,
                                                          self.n_batches, path))
                if self.batch % self.checkpoint_every == 0 and self.batch < self.n_batches:
                    self.acc[3] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    self.save()
        finally:
            bar.close()
        self.acc[3] += time.perf_counter() - t0
        self._finish_epoch(epoch, on_epoch)

    def _finish_epoch(self, epoch, on_epoch):
        test_loss, test_acc = evaluate(self.engine, self.data.x_test, self.data.y_test,
                                       self.eval_batch_size)
        h = self.history
        h["epoch"].append(epoch + 1)
        h["train_loss"].append(self.acc[0] / self.acc[2])
        h["train_accuracy"].append(self.acc[1] / self.acc[2])
        h["test_loss"].append(test_loss)
        h["test_accuracy"].append(test_acc)
        h["seconds"].append(self.acc[3])
        h["examples_per_second"].append(self.acc[2] / max(self.acc[3], 1e-9))
        self.epoch, self.batch, self.acc = epoch + 1, 0, [0.0, 0, 0, 0.0]
        self.save()
        if on_epoch is not None:
            on_epoch(self)
