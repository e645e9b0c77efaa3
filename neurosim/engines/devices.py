"""Training on devices: :class:`HardwareEngine` wraps any training engine (reference,
brian2-rate, brian2-spiking) so that the weights live in a :class:`~neurosim.hardware.Crossbar`
and the circuit's analog non-idealities of a :class:`~neurosim.hardware.Device` apply.

Every step: the inputs go through the DAC; the crossbar is read (drift, stuck devices,
levels, read noise, wire resistance) into ``net.params`` once per phase (free, ``+beta``,
``-beta``: each read with its own read noise); the EP update ``g`` is formed from the phases'
states; ``-lr g`` is programmed into the crossbar as pulses (:mod:`neurosim.hardware.programming`);
and ``net.params`` is left holding the crossbar's weights without read noise. Any change made to
``net.params`` between calls (the Trainer's optimizer with momentum, the ``rbp`` and
``continual_ep`` rules, fidelity batches) is a requested update: the next call programs it.
The clock of the drift advances ``seconds_per_batch`` per programmed batch.

Where each non-ideality applies
-------------------------------
* Weight level (``scheme``, ``levels``, ``d2d_variability``, ``c2c_noise``, ``asymmetry``,
  ``asymmetry_spread``, ``soft_bounds``, ``read_noise``, ``drift_*``, ``stuck_fraction``),
  wires (``r_wire``, ``tile_size``) and ``dac_bits``: every engine. For ``brian2-rate`` each
  batch runs in a compiled circuit of one batch (built once) that starts from the crossbar's
  read weights, so the epoch is no longer one circuit run.
* Reads: the reference engine with energy dynamics reads the crossbar once per phase (its EP
  step is run here, :func:`hardware_ep_step`, with a fresh read before each phase); the
  Brian2 engines and vector-field networks run all the phases of an estimate on one read
  (their phases run inside the wrapped engine). A single phase (``infer``, ``free_state``,
  ``phase_trajectory``) is one read.
* Dynamics level (``adc_bits`` on the states the update uses and on the predictions,
  ``derivative_tau``, ``tau_mismatch``): the reference engine with energy dynamics and the
  Euler solver (:func:`hardware_ep_step`); other combinations are refused with a
  :class:`ConfigurationError` naming the field.
* Wires (``r_wire > 0``): a read is the effective weight of each pair through the wires' IR
  drop (:mod:`neurosim.hardware.wires`). Its forward read (rows driven, columns sensed) and
  backward read (columns driven, rows sensed) share their terminals, so by reciprocity the
  backward read is the transpose of the forward one: the dynamics use the read matrix for the
  forward products and its transpose for the feedback ones, both reads of the same wires.
* The RBP ground truth (fidelity, computed by the trainer) uses the stored weights (no read
  noise, ideal wires), ideal inputs and ideal dynamics: the true gradient of the weights the
  devices hold. Predictions (``free``) are the circuit's: read noise, wires, DAC, tau
  mismatch and ADC.

A device with no weight-level non-ideality stores the weights exactly, and with no other
non-ideality the engine's numbers are the wrapped engine's, bit for bit (:func:`wrap` returns
the engine itself then, unless forced).

Checkpoints
-----------
The device state is checkpointed: :meth:`HardwareEngine.state_dict` holds every conductance,
the build draws (d2d factors, stuck devices), ``w_max`` per key, the drift clock and
programming times, the pulse counters, the weights last written (a change of ``net.params``
since then, e.g. an optimizer's update, is programmed by the next call), the read/DAC/ADC
counts and the state of the engine's random stream; :class:`~neurosim.training.trainer.Trainer` stores it
under ``engine/`` in its checkpoint, so a run resumed on devices ends with the weights and
conductances of an uninterrupted one. A checkpoint without that state (written by an older
version) resumes as before: the crossbar is built from the checkpoint's weights. The state of
the ``brian2-rate`` one-batch circuit is not kept: it is rebuilt on the first batch after a
resume.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json

import numpy as np

from .. import energy as en
from .. import ep
from ..errors import ArgumentError, ConfigurationError
from ..plan import PhaseRun, Plan
from .protocol import Engine, Estimate, StepResult
from .reference import batch_cost, rates
from ..hardware.crossbar import Crossbar
from ..hardware.devices import MIN_FACTOR, device_from_section, quantize
from ..dynamics import Dynamics, RelaxationError

DYNAMICS_FIELDS = ("adc_bits", "derivative_tau", "tau_mismatch")
#: device fields added after checkpoints with device state were first written, with the value
#: every such checkpoint had (a state that lacks them was written with these)
LEGACY_DEVICE_FIELDS = {"scheme": "both", "asymmetry_spread": 0.0, "r_wire": 0.0,
                        "tile_size": 0}


def _per_neuron_run(dyn, s, eps, beta, steps, eps_scale):
    """``steps`` Euler steps with a per-neuron step ``eps * eps_scale[p]`` (time-constant
    mismatch), in place; the plain fused steps when ``eps_scale`` is None."""
    if eps_scale is None:
        return dyn.run_fixed(s, eps, beta, steps)
    dyn = dyn.at(s, beta)     # a complex nudge: the complex twin, s made complex
    for _ in range(int(steps)):
        f = dyn.force(s, beta)
        for p in dyn.net.state_pops:
            f[p] *= eps * eps_scale[p]
            s[p] += f[p]
            if dyn.clip:
                np.clip(s[p], 0.0, 1.0, out=s[p])
    if not all(np.all(np.isfinite(v)) for v in s.values()):
        raise RelaxationError("relaxation diverged with time-constant mismatch: reduce eps "
                              "(now %g) or hardware.tau_mismatch" % eps)
    return s


def hardware_ep_step(net, x, y, beta, variant="symmetric", eps=0.5, free_steps=20,
                     nudge_steps=4, clip=True, state=None, rng=None, derivative_tau=0.0,
                     adc_bits=0, eps_scale=None, read=None, solver="euler", nudges=None,
                     tol=0.0, points=4):
    """The EP estimate of :func:`neurosim.engines.reference.ep_step` (energy dynamics, Euler steps) as a
    circuit with finite-bandwidth derivatives, an ADC and mismatched time constants sees it.
    ``net.params`` is not changed.

    * ``derivative_tau``: the update integrates a low-passed derivative, i.e. it sees
      ``z_K`` with ``z_0 = s0``, ``z_{k+1} = a z_k + (1 - a) s_{k+1}``, ``a = exp(-eps/tau)``,
      in place of the nudged state ``s_K`` (0: ``s_K`` itself);
    * ``adc_bits``: the free and nudged states the update uses (and the returned free state)
      are quantized to ``2^bits`` levels in [0, 1];
    * ``eps_scale``: population -> ``(n,)`` factors of each neuron's Euler step;
    * ``read``: called before each phase (free, then each nudged phase); it sets
      ``net.params`` to that phase's read of the weights (in place). The update is formed
      from the states alone (energy dynamics), so each phase sees its own read;
    * ``solver``: ``"block"`` takes the reference engine's block sweeps (only with the three
      above ideal);
    * ``tol``: with identical time constants (no ``eps_scale``) and no filtered derivative, a
      phase stops once its projected step is at most ``tol``, as the reference engine's do
      (the returned estimate's ``phases`` say how many steps each took);
    * ``points``: holomorphic EP's number of complex nudges (``variant = "holomorphic"``; no
      ADC: it reads real states).

    With all three ideal (and no ``read``) the numbers are ``ep_step``'s with ``grad_out``,
    bit for bit.
    Returns an :class:`~neurosim.engines.protocol.Estimate` (with the free state as read
    out and the cost at it).
    """
    if net.dynamics != "energy":
        raise ConfigurationError("hardware: %s need network.dynamics = \"energy\""
                                 % ", ".join("hardware." + f for f in DYNAMICS_FIELDS))
    if solver not in ("euler", "block"):
        raise ArgumentError("solver must be 'euler' or 'block', got %r" % (solver,))
    if solver == "block" and (derivative_tau or adc_bits or eps_scale is not None):
        raise ConfigurationError("hardware: %s run Euler steps; set engine.solver = \"euler\""
                                 % ", ".join("hardware." + f for f in DYNAMICS_FIELDS))
    the_plan = Plan.of(beta, variant, nudges, points=points).for_batch(rng)
    the_plan.check_dynamics(net, clip, "learning.nudges" if nudges else "learning.variant")
    if the_plan.complex and adc_bits:
        raise ConfigurationError("hardware.adc_bits: an ADC reads real states; holomorphic EP "
                                 "(learning.variant) runs complex ones: set adc_bits = 0")

    def bound():
        """The network bound to the batch at a fresh read of the weights."""
        if read is not None:
            read()
        return Dynamics(net, x, y, clip=clip)

    runs = []

    def run(d, s, b, steps):
        if eps_scale is None:     # the reference engine's phases: they settle to tol
            out = d.settle(s, eps, b, steps, tol, solver)
            runs.append(PhaseRun(b, out.steps, out.step))
            return out.state
        return _per_neuron_run(d, s, eps, b, steps, eps_scale)

    dyn = bound()
    if dyn.targets is None:
        raise ArgumentError("hardware_ep_step needs targets y of shape (batch, n_out)")
    s0 = run(dyn, dyn.initial_state(state), 0.0, free_steps)

    def nudged(s, b):
        d = dyn if read is None else bound()
        if not derivative_tau:
            return run(d, s, b, nudge_steps)
        a = float(np.exp(-eps / derivative_tau))
        z = {p: v.astype(np.result_type(v, b)) for p, v in s.items()}
        for _ in range(int(nudge_steps)):
            _per_neuron_run(d, s, eps, b, 1, eps_scale)
            for p in net.state_pops:
                z[p] *= a
                z[p] += (1.0 - a) * s[p]
        return z

    observed = the_plan.run(nudged, s0)
    q0 = quantize(s0, adc_bits)
    q = [q0 if st is s0 else quantize(st, adc_bits) for st in observed]
    g = ep.energy_contrast(net, dyn.inputs, [rates(net, dyn, v) for v in q], the_plan,
                           dyn.targets)
    q0 = {p: np.array(v) for p, v in q0.items()}
    return Estimate(g, q0, batch_cost(net, q0, dyn.targets, dyn.batch), runs)


def check_support(device, engine):
    """A :class:`ConfigurationError` naming the field for a non-ideality ``engine`` cannot
    apply (see the module docstring)."""
    if device.adc_bits and engine.plan.complex:
        raise ConfigurationError("hardware.adc_bits: an ADC reads real states; holomorphic EP "
                                 "(learning.variant) runs complex ones: set adc_bits = 0")
    used = [f for f in DYNAMICS_FIELDS if getattr(device, f)]
    if not used:
        return
    names = ", ".join("hardware.%s" % f for f in used)
    if not engine.numpy_phases:
        raise ConfigurationError("%s: the %s engine forms its update inside the circuit's "
                                 "synapses; these non-idealities apply with engine.name = "
                                 "\"reference\" (set them to 0 here)" % (names, engine.name))
    if engine.settings.solver != "euler":
        raise ConfigurationError("%s: the hardware-aware EP step runs Euler steps; set "
                                 "engine.solver = \"euler\"" % names)
    if engine.net.dynamics != "energy":
        raise ConfigurationError("%s: the hardware-aware EP step needs network.dynamics = "
                                 "\"energy\"" % names)
    if device.derivative_tau and engine.settings.rule != "ep":
        raise ConfigurationError("hardware.derivative_tau: filters the temporal derivative "
                                 "that EP's update observes; learning.rule = %r has none "
                                 "(use learning.rule = \"ep\" or derivative_tau = 0)"
                                 % engine.settings.rule)


class HardwareEngine(Engine):
    """An engine whose weights live in a crossbar of ``device`` (module docstring).

    Parameters
    ----------
    inner : Engine
        The reference, brian2-rate or brian2-spiking engine bound to the network.
    device : Device
    seed : int
        ``hardware.seed``: the crossbar's build draws and the stream of read noise, pulses and
        time-constant mismatch.

    The crossbar (:attr:`crossbar`) is built from ``net.params`` here (``net.params`` then
    hold the weights it stores), or restored by :meth:`load_state_dict`. Where ``net.params``
    change before the crossbar's first use (a checkpoint without device state was loaded), the
    first use builds it again from them (same draws), instead of programming the change.
    """

    def __init__(self, inner, device, seed=0):
        check_support(device, inner)
        if inner.numpy_phases and inner.settings.threads != 1:
            raise ConfigurationError("engine.threads: the device engine runs its phases on one "
                                     "thread (it reads the crossbar per phase); got %d"
                                     % inner.settings.threads)
        if inner.net.convs:
            raise ConfigurationError("hardware: projection(s) %s are convolutional; a crossbar "
                                     "here stores dense weight matrices only"
                                     % ", ".join(k[2:] for k in inner.net.convs))
        super().__init__(inner.net, inner.settings)
        self.inner, self.device, self.seed = inner, device, int(seed)
        self.name = inner.name
        self.rng = np.random.default_rng([self.seed, 1])
        self.crossbar = None
        self.counts = {"reads": 0, "dac": 0, "adc": 0}
        self.last_change = None     # the change of the stored weights at the last programming
        self._written = None
        self._unused = False        # built here and not used since (see sync)
        self.eps_scale = None
        if device.tau_mismatch:
            r = np.random.default_rng([self.seed, 2])
            self.eps_scale = {p: 1.0 / np.maximum(
                1.0 + device.tau_mismatch * r.standard_normal(self.net.sizes[p]), MIN_FACTOR)
                for p in self.net.state_pops}
        self.sync()
        self._unused = True

    @property
    def evaluated_by(self):
        return "%s on devices" % self.inner.name

    def counters(self):
        out = dict(self.inner.counters())
        out.update(self.counts)
        xb = self.crossbar
        out["pulses"] = xb.pulses_total if xb else 0
        out["refreshes"] = xb.refreshes_total if xb else 0
        out["refresh_pulses"] = xb.refresh_pulses_total if xb else 0
        return out

    # -- the crossbar and net.params ------------------------------------------------------
    def _store(self):
        """``net.params`` <- the crossbar's weights (no read noise), in place."""
        for k, v in self.crossbar.weights().items():
            self.net.params[k][...] = v
        self._written = {k: v.copy() for k, v in self.net.params.items()}

    def sync(self):
        """Build the crossbar where it is not (or again, where ``net.params`` changed before
        its first use); program any change made to ``net.params`` since
        the last call (an optimizer's update) and leave ``net.params`` at its weights.
        :attr:`last_change` is the change of the stored weights the last programming made
        (what the devices took of the requested update)."""
        net = self.net
        unused, self._unused = self._unused, False
        if self.crossbar is None or (unused and any(
                not np.array_equal(net.params[k], self._written[k]) for k in net.params)):
            # first use, or weights set before it (a checkpoint without device state): the
            # crossbar is built from them, as if it had been built only now
            self.crossbar = Crossbar.from_network(net, self.device, seed=self.seed)
            self._store()
            return
        before, self.last_change = self._written, None
        if self.crossbar.exact:
            self.crossbar.assign(net.params)
            self._written = {k: v.copy() for k, v in net.params.items()}
        else:
            delta = {k: net.params[k] - before[k] for k in net.params
                     if not np.array_equal(net.params[k], before[k])}
            if delta:
                self.crossbar.program(delta, self.rng)
                self.crossbar.advance(self.device.seconds_per_batch)
            self._store()
        if any(not np.array_equal(net.params[k], before[k]) for k in net.params):
            self.last_change = {k: net.params[k] - before[k] for k in net.params}

    def _read(self):
        """``net.params`` <- one read of the crossbar (read noise, wires), in place."""
        self.counts["reads"] += 1
        for k, v in self.crossbar.read(self.rng).items():
            self.net.params[k][...] = v

    @contextlib.contextmanager
    def _reading(self):
        """``net.params`` holds one read of the crossbar inside the block, then the stored
        weights again."""
        self._read()
        try:
            yield
        finally:
            self._store()

    def _dac(self, x):
        if not self.device.dac_bits:
            return x
        self.counts["dac"] += sum(np.size(v) for v in (x.values() if isinstance(x, dict)
                                                      else [x]))
        return quantize(x, self.device.dac_bits)

    def _adc(self, s):
        if not self.device.adc_bits:
            return s
        self.counts["adc"] += sum(np.size(v) for v in s.values())
        return quantize(s, self.device.adc_bits)

    # -- the engine protocol -------------------------------------------------------------
    @property
    def reads_per_phase(self):
        """The estimate reads the crossbar once per phase (the reference engine with energy
        dynamics), else once for all its phases (module docstring)."""
        return self.inner.numpy_phases and self.net.dynamics == "energy"

    def _estimate_at_read(self, x, y, state, rng):
        """The EP estimate at the DAC'd inputs with one read of the crossbar per phase (the
        hardware-aware EP step), or the wrapped engine's estimate at one read."""
        x = self._dac(x)
        s = self.settings
        if not self.reads_per_phase:
            with self._reading():
                return self.inner.estimate(x, y, state, rng)
        try:
            est = hardware_ep_step(self.net, x, y, s.beta, s.variant, eps=s.eps,
                                   free_steps=s.free_steps, nudge_steps=s.nudge_steps,
                                   clip=s.clip, state=state, rng=rng,
                                   derivative_tau=self.device.derivative_tau,
                                   adc_bits=self.device.adc_bits, eps_scale=self.eps_scale,
                                   read=self._read, solver=s.solver, nudges=s.nudges or None,
                                   tol=s.tol, points=s.points)
        finally:
            self._store()
        if self.device.adc_bits:    # the free state and one state per nudged phase
            phases = self.plan.phases
            self.counts["adc"] += phases * self.net.n_state * np.shape(y)[0]
        return est

    def estimate(self, x, y, state=None, rng=None):
        """The update the circuit computes at its reads of the devices (one per phase; the
        devices are not programmed)."""
        self.sync()
        return self._estimate_at_read(x, y, state, rng)

    def step(self, x, y, optimizer, state=None, rng=None, want_estimate=False):
        """One step on the devices: the estimate at its reads, the optimizer's update
        programmed as pulses; ``applied`` is what the devices took, ``-(change) / lr``."""
        self.sync()
        net = self.net
        if self.device.is_ideal:             # exact devices, ideal circuit: the engine's own step
            res = self.inner.step(self._dac(x), y, optimizer, state, rng, want_estimate)
            self.crossbar.assign(net.params)
            self._written = {k: v.copy() for k, v in net.params.items()}
            return res
        est = self._estimate_at_read(x, y, state, rng)
        delta = optimizer.delta(est, net.params)
        before = self._written
        self.last_change = None
        if delta:
            self.crossbar.program(delta, self.rng)
            self.crossbar.advance(self.device.seconds_per_batch)
            self._store()
            self.last_change = {k: net.params[k] - before[k] for k in net.params}
        runs = est.phases
        if not want_estimate:
            return StepResult(est.state, est.cost, phases=runs)
        change = self.last_change or {k: np.zeros_like(v) for k, v in net.params.items()}
        applied = {k: -change[k] / optimizer.lrs[k] for k in net.params if optimizer.lrs[k]}
        return StepResult(est.state, est.cost, est, applied, phases=runs)

    def phase_trajectory(self, x, y, beta, steps, state=None):
        """The wrapped engine's phase at one read of the devices (DAC'd inputs)."""
        self.sync()
        with self._reading():
            return self.inner.phase_trajectory(self._dac(x), y, beta, steps, state)

    def free_state(self, x, state=None):
        """The wrapped engine's free state at one read of the devices (DAC'd inputs), for the
        ``rbp`` and ``continual_ep`` rules."""
        self.sync()
        with self._reading():
            return self.inner.free_state(self._dac(x), state)

    def infer(self, x, state=None):
        """The circuit's output rates after its free phase: one read of the crossbar, DAC'd
        inputs, mismatched time constants, ADC'd states."""
        self.sync()
        x = self._dac(x)
        with self._reading():
            if self.eps_scale is not None:
                s = self.settings
                dyn = Dynamics(self.net, x, clip=s.clip)
                st = _per_neuron_run(dyn, dyn.initial_state(state), s.eps, 0.0, s.free_steps,
                                     self.eps_scale)
                out = {p: en.rho(self.net.activation, v) for p, v in st.items()}
            else:
                out = self.inner.infer(x, state)
        net = self.net
        if net.readout != "softmax":
            return self._adc(out)
        # the ADC reads the neurons; a softmax readout is computed from what it read
        rates = self._adc({p: out[p] for p in net.state_pops})
        rates.update({o: en.softmax(z) for o, z in en.logits(net, rates).items()})
        return rates

    # -- checkpoints ------------------------------------------------------------------------
    def _identity(self):
        return {"device": json.dumps(dataclasses.asdict(self.device), sort_keys=True,
                                     default=lambda v: v.item()), "seed": self.seed}

    def state_dict(self):
        """Everything besides ``net.params`` that determines the engine's future, as flat
        name -> array (strings and numbers only, for ``np.savez``): the device and seed it was
        built for, ``rng`` (the random stream's state, JSON text), ``counts/<name>`` and, once
        the crossbar is built, ``written/<key>`` (the weights last written to it) and its
        state under ``crossbar/`` (:meth:`Crossbar.state_dict`)."""
        ident = self._identity()
        out = {"device": np.array(ident["device"]),
               "seed": np.array(ident["seed"], dtype=np.int64),
               "rng": np.array(json.dumps(self.rng.bit_generator.state))}
        out.update({"counts/" + k: np.array(v, dtype=np.int64) for k, v in self.counts.items()})
        if self.crossbar is not None:
            out.update({"written/" + k: v.copy() for k, v in self._written.items()})
            out.update({"crossbar/" + k: v for k, v in self.crossbar.state_dict().items()})
        return out

    def load_state_dict(self, d):
        """Restore a :meth:`state_dict` (building the crossbar first where it has not been).
        A state written for another device or ``hardware.seed``, or for other parameters,
        raises ValueError."""
        saved = {"device": str(d["device"]), "seed": int(d["seed"])}
        ident = self._identity()
        if saved["seed"] != ident["seed"]:
            raise ArgumentError("the checkpoint's device state was written with hardware.seed = %d, "
                             "this run has %d" % (saved["seed"], ident["seed"]))
        a, b = json.loads(saved["device"]), json.loads(ident["device"])
        a = {**LEGACY_DEVICE_FIELDS, **a}       # fields added since: their value before them
        if a != b:
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise ArgumentError("the checkpoint's device state was written for another device: "
                             "%s differ" % ", ".join("hardware." + k for k in diff))
        written = {k[8:]: v for k, v in d.items() if k.startswith("written/")}
        xb = {k[9:]: v for k, v in d.items() if k.startswith("crossbar/")}
        for k, v in self.net.params.items():
            if xb and (k not in written or np.shape(written[k]) != v.shape):
                raise ArgumentError("the checkpoint's device state does not match the network: "
                                 "written/%s" % k)
        self.rng.bit_generator.state = json.loads(str(d["rng"]))
        self.counts = {k: int(d["counts/" + k]) if "counts/" + k in d else 0
                       for k in self.counts}
        self.last_change = None
        self._unused = False
        if not xb:
            self.crossbar, self._written = None, None
            return
        if self.crossbar is None:
            self.crossbar = Crossbar.from_network(self.net, self.device, seed=self.seed)
        self.crossbar.load_state_dict(xb)
        self._written = {k: np.array(written[k], dtype=v.dtype)
                         for k, v in self.net.params.items()}

    def close(self):
        self.inner.close()


def wrap(circuit, engine, force=False):
    """``engine`` on the devices of the circuit's ``[hardware]`` section, or ``engine`` itself
    when that resolves to the ideal device (unless ``force``)."""
    device = device_from_section(getattr(circuit, "hardware", None))
    if device.is_ideal and not force:
        return engine
    return HardwareEngine(engine, device, seed=circuit.hardware.seed)


__all__ = ["HardwareEngine", "hardware_ep_step", "wrap", "check_support", "DYNAMICS_FIELDS",
           "LEGACY_DEVICE_FIELDS"]
