"""A crossbar of differential conductance pairs (:class:`Crossbar`) that stores a network's
parameters in devices of a :class:`~neurosim.hardware.devices.Device`: read with noise and
drift, programmed with pulses.

The model (what :class:`Crossbar` does)
---------------------------------------
Each weight ``w`` lives in a differential pair of devices, ``w = w_max (G+ - G-) / (g_max -
g_min)``. Biases live in devices too (a crossbar row driven by a constant input of 1, as in
a fully analog circuit), each with the ``w_max`` of the first projection into its population.
A weight starts as the pair its programming scheme (``hardware.scheme``,
:mod:`neurosim.hardware.programming`) writes it as: ``G+- = g_mid +- (g_max - g_min) w / (2
w_max)`` around the middle of the range (``"both"``), or ``g_min + (g_max - g_min) |w| /
w_max`` on the device of its sign and ``g_min`` on the other (``"one_per_sign"``), by
program-and-verify to the nearest level; ``|w| <= w_max`` is the saturation limit (of a
refresh, for ``one_per_sign``). A tied lateral matrix (symmetric, zero diagonal) stores its
upper triangle and reads it mirrored; diagonals of self-projections hold no devices.

Programming a weight change (:meth:`Crossbar.program`) is the scheme's: an integer number of
pulses per device, ``step = (g_max - g_min) / (levels - 1)`` apart, or for a continuous device
(``levels = 0``) the fixed small step ``(g_max - g_min) / CONTINUOUS_STEPS``, acting on the
device as it is (asymmetry, soft bounds, cycle-to-cycle noise, levels, stuck devices: the
pulse model of :mod:`neurosim.hardware.programming`). Built once, from the crossbar's seed:

* each device's step and range are scaled by ``1 + d2d_variability xi`` (two independent
  factors, clipped at 0.1);
* stuck devices (``stuck_fraction``, half at ``g_min`` and half at ``g_max``) take their
  pulses and never move;
* with ``asymmetry_spread`` each device has its own asymmetry ``asymmetry + spread xi``,
  clipped to ``|a| <= MAX_ASYMMETRY``.

The programmed conductance drifts, ``G(t) = G_prog (max(t, t0) / t0)^-drift_nu`` with ``t``
the time since the device was last programmed; the clock advances ``seconds_per_batch`` per
programmed batch (:meth:`Crossbar.advance`).

A read (:meth:`Crossbar.read`) adds ``read_noise (g_max - g_min) xi`` to every device, fresh
each read (an engine reads once per phase), and with ``r_wire > 0`` takes the weights through
the wires' IR drop (:mod:`neurosim.hardware.wires`, :meth:`Crossbar.wire_weights`);
:meth:`Crossbar.weights` is the stored weight: no read noise, no wires.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import ArgumentError
from .devices import MAX_ASYMMETRY, MIN_FACTOR
from .programming import Pairs, scheme_for
from .wires import WireReader

CONTINUOUS_STEPS = 10_000   # programming steps over the range of a continuous device
W_MAX_HEADROOM = 2.0        # w_max = this x the largest initial |w| of a projection


def default_w_max(net, params=None):
    """``w_max`` per parameter key when the device leaves it to the network: each projection
    ``W_MAX_HEADROOM`` times its largest initial ``|w|``; a bias (or an all-zero matrix) takes
    the value of the first projection into its population, else the largest of all; 1.0 when
    every parameter is zero."""
    params = net.params if params is None else params
    out = {k: W_MAX_HEADROOM * float(np.max(np.abs(v))) for k, v in params.items()
           if k.startswith("W:") and v.size and np.max(np.abs(v)) > 0}
    fallback = max(out.values(), default=1.0)
    for k in params:
        if k in out:
            continue
        if k.startswith("b:"):
            p = k[2:]
            into = [t.key for t in net.terms + net.readout_terms
                    if str(t.target) == p and not t.transpose
                    and t.key in out]
            out[k] = out[into[0]] if into else fallback
        else:
            out[k] = fallback
    return {k: out[k] for k in params}


class Crossbar:
    """The network's parameters stored as differential conductance pairs (module docstring).

    Parameters
    ----------
    params : dict
        Parameter key -> array (``net.params``): the initial weights.
    device : Device
    seed : int
        Seed of the build-time draws (d2d factors, stuck devices, initial level rounding).
    w_max : float or dict, optional
        Per key (default: ``device.w_max``, else 2 x the largest initial ``|w|``, see
        :func:`default_w_max`; without a network, per key from ``params``).
    mirror : iterable of keys
        Tied lateral matrices (symmetric, zero diagonal): upper triangle stored, read mirrored.
    zero_diagonal : iterable of keys
        Self-projections whose diagonal holds no devices (every key in ``mirror`` too).

    Attributes
    ----------
    pulses : dict
        Programming pulses applied so far, per parameter key (both devices of every pair,
        stuck devices and refreshes included; the initial program-and-verify is not counted).
    refreshes, refresh_pulses : dict
        Pairs refreshed so far and the pulses of those refreshes, per key (``one_per_sign``).
    time : float
        The drift clock (s).
    exact : bool
        The device has no weight-level non-ideality: weights are stored exactly.

    :meth:`state_dict` and :meth:`load_state_dict` carry everything that determines its future
    (a checkpoint).
    """

    def __init__(self, params, device, seed=0, w_max=None, mirror=(), zero_diagonal=()):
        self.device, self.time = device, 0.0
        self.keys = list(params)
        self.range = float(device.g_max - device.g_min)
        self.step = self.range / (device.levels - 1 if device.levels else CONTINUOUS_STEPS)
        self.exact = device.weight_ideal
        if w_max is None:
            w_max = device.w_max
        if w_max is None:
            w_max = {k: W_MAX_HEADROOM * float(np.max(np.abs(v))) if np.size(v) and
                     np.max(np.abs(v)) > 0 else 1.0 for k, v in params.items()}
        if not isinstance(w_max, Mapping):
            w_max = {k: float(w_max) for k in params}
        self.w_max = {k: float(w_max[k]) for k in params}
        self.pulses = {k: 0 for k in params}
        self.refreshes = {k: 0 for k in params}
        self.refresh_pulses = {k: 0 for k in params}
        self.scheme = scheme_for(device, self.step)
        mirror, zero_diagonal = set(mirror), set(zero_diagonal) | set(mirror)
        self._structure = {}                  # key -> (devices in use or None, mirrored)
        for k in self.keys:
            mask = None
            if k in zero_diagonal:
                mask = ~np.eye(np.shape(params[k])[0], dtype=bool)
                if k in mirror:
                    mask = np.triu(mask, 1)
            self._structure[k] = (mask, k in mirror)
        self.wires = None if device.wires_ideal else WireReader(device.r_wire, device.tile_size)
        if self.exact:
            self._w = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
            return
        rng = np.random.default_rng([int(seed), 0])
        d = device
        self._tiles = {}
        for k in self.keys:
            w0 = np.array(params[k], dtype=np.float64)
            shape = (2,) + w0.shape
            mask = self._structure[k][0]
            if mask is not None:
                w0 = np.where(mask, w0, 0.0)
            span = np.full(shape, self.range)
            fstep = np.ones(shape)
            if d.d2d_variability:
                span *= np.maximum(1.0 + d.d2d_variability * rng.standard_normal(shape),
                                   MIN_FACTOR)
                fstep = np.maximum(1.0 + d.d2d_variability * rng.standard_normal(shape),
                                   MIN_FACTOR)
            g = np.clip(self.scheme.initial(w0, self.w_max[k]), d.g_min, d.g_min + span)
            if d.levels:                          # program-and-verify to the nearest level
                q = span / (d.levels - 1)
                g = d.g_min + np.clip(np.rint((g - d.g_min) / q), 0, d.levels - 1) * q
            stuck = None
            if d.stuck_fraction:
                stuck = rng.random(shape) < d.stuck_fraction
                high = rng.random(shape) < 0.5
                g = np.where(stuck, np.where(high, d.g_min + span, d.g_min), g)
            asym = None
            if d.asymmetry_spread:
                asym = np.clip(d.asymmetry + d.asymmetry_spread * rng.standard_normal(shape),
                               -MAX_ASYMMETRY, MAX_ASYMMETRY)
            if mask is not None:
                g = np.where(mask, g, self.scheme.zero)
            self._tiles[k] = Pairs(self.w_max[k], g, span, fstep, stuck, np.zeros(shape), mask,
                                   k in mirror, asym)

    @classmethod
    def from_network(cls, net, device, seed=0):
        """The crossbar of ``net.params``: lateral matrices mirrored, self-projection diagonals
        empty, ``w_max`` from the device or :func:`default_w_max`."""
        w_max = device.w_max if device.w_max is not None else default_w_max(net)
        selfs = [t.key for t in net.terms if t.source == t.target]
        return cls(net.params, device, seed=seed, w_max=w_max,
                   mirror=[t.key for t in net.terms if t.lateral], zero_diagonal=selfs)

    # -- reading ------------------------------------------------------------------------
    @property
    def pulses_total(self):
        """All programming pulses so far."""
        return int(sum(self.pulses.values()))

    @property
    def refreshes_total(self):
        """All pairs refreshed so far."""
        return int(sum(self.refreshes.values()))

    @property
    def refresh_pulses_total(self):
        """All pulses of refreshes so far (part of :attr:`pulses_total`)."""
        return int(sum(self.refresh_pulses.values()))

    def _drift(self, t):
        """Drift factor of devices last programmed at times ``t``."""
        d = self.device
        if not d.drift_nu:
            return 1.0
        age = np.maximum(self.time - t, d.drift_t0)
        return (age / d.drift_t0) ** (-d.drift_nu)

    def conductances(self, key, drifted=False):
        """``(2, *shape)`` array: G+ and G- of parameter ``key`` as programmed (µS), or as they
        have drifted by now."""
        if self.exact:
            return self.scheme.initial(self._w[key], self.w_max[key])
        t = self._tiles[key]
        if not drifted or not self.device.drift_nu:
            return t.g.copy()
        f = self._drift(t.tprog)
        if t.stuck is not None:
            f = np.where(t.stuck, 1.0, f)
        return t.g * f

    def asymmetries(self, key):
        """``(2, *shape)``: each device's up/down asymmetry (G+, G-) of ``key``."""
        shape = (2,) + np.shape(self._w[key] if self.exact else self._tiles[key].g[0])
        t = None if self.exact else self._tiles[key].asym
        return np.full(shape, float(self.device.asymmetry)) if t is None else t.copy()

    def stuck_mask(self, key):
        """``(2, *shape)`` bool: which devices (G+, G-) of ``key`` are stuck."""
        shape = (2,) + np.shape(self._w[key] if self.exact else self._tiles[key].g[0])
        t = None if self.exact else self._tiles[key].stuck
        return np.zeros(shape, bool) if t is None else t.copy()

    def _weights(self, k, g):
        t = self._tiles[k]
        w = (t.w_max / self.range) * (g[0] - g[1])
        if t.mask is not None:
            w = np.where(t.mask, w, 0.0)
            if t.mirror:
                w = w + w.T
        return w

    def weights(self):
        """The weights the devices hold now (drift included, no read noise): key -> array."""
        if self.exact:
            return {k: v.copy() for k, v in self._w.items()}
        return {k: self._weights(k, self.conductances(k, drifted=True)) for k in self.keys}

    def read(self, rng):
        """One read of every weight: :meth:`weights` plus fresh read noise on every device,
        and with ``r_wire`` the IR drop of the wires (:meth:`wire_weights`)."""
        noisy = not self.exact and self.device.read_noise
        if not noisy and self.wires is None:
            return self.weights()
        sd = self.device.read_noise * self.range
        out = {}
        for k in self.keys:
            g = self.conductances(k, drifted=True)
            if noisy:
                g += sd * rng.standard_normal(g.shape)
            out[k] = self._weights(k, g) if self.wires is None else self.wire_weights(k, g)
        return out

    def wire_weights(self, key, g):
        """The weight ``key`` reads through the wires (:mod:`neurosim.hardware.wires`) when
        its devices have conductances ``g`` ``(2, *shape)``: ``w_max / (g_max - g_min)`` times
        the difference of the pair's transfer matrices (a bias: one row driven at 1 V;
        positions without devices conduct nothing and read 0; a tied lateral matrix reads
        its upper triangle in both directions, ``T + T^T``). Needs ``r_wire > 0``."""
        if self.wires is None:
            raise ArgumentError("wire_weights(%r): the device has ideal wires "
                                "(hardware.r_wire = 0)" % (key,))
        mask, mirror = self._structure[key]
        g = np.asarray(g, dtype=np.float64)
        shape = g.shape[1:]
        if mask is not None:
            g = np.where(mask, g, 0.0)
        tp, tm = self.wires.transfer(key, g.reshape((2, -1, shape[-1])))
        w = ((self.w_max[key] / self.range) * (tp - tm)).reshape(shape)
        if mask is not None:
            w = np.where(mask, w, 0.0)
            if mirror:
                w = w + w.T
        return w

    # -- writing ------------------------------------------------------------------------
    def advance(self, seconds):
        """Advance the drift clock by ``seconds``."""
        self.time += float(seconds)

    def assign(self, params):
        """Take ``params`` as the stored weights (exact devices only: the ideal device)."""
        if not self.exact:
            raise ArgumentError("assign() is for exact (ideal) devices; program() the change")
        for k in self.keys:
            self._w[k] = np.array(params[k], dtype=np.float64)

    def program(self, delta, rng):
        """Apply the desired weight changes ``delta`` (key -> array, any subset of the keys) as
        pulses (module docstring); returns the pulses this call applied."""
        before = self.pulses_total
        for k, dw in delta.items():
            dw = np.asarray(dw, dtype=np.float64)
            if self.exact:
                self._w[k] += dw
                self.pulses[k] += int(np.sum(np.rint(np.abs(dw) * (self.range / self.w_max[k])
                                                     / self.step)))
                continue
            self._program(k, dw, rng)
        return self.pulses_total - before

    def _program(self, k, dw, rng):
        done = self.scheme.program(self._tiles[k], dw, rng, self._drift, self.time)
        self.pulses[k] += done.pulses
        self.refreshes[k] += done.refreshes
        self.refresh_pulses[k] += done.refresh_pulses

    # -- checkpoints ----------------------------------------------------------------------
    _TILE_ARRAYS = ("g", "span", "fstep", "tprog")

    def state_dict(self):
        """Everything that determines the crossbar's future, as flat name -> array (numbers
        only, for ``np.savez``): the drift clock ``time``; per key ``w_max/<key>``, the counters
        ``pulses/<key>``, ``refreshes/<key>`` and ``refresh_pulses/<key>``, and either the
        stored weight ``w/<key>`` (exact devices) or the programmed conductances ``g/<key>``,
        the build draws (each device's range ``span``, step factor ``fstep``, ``stuck`` mask
        where devices stick, asymmetry ``asym`` where they spread) and the programming times
        ``tprog`` (drift)."""
        out = {"time": np.array(self.time, dtype=np.float64)}
        for k in self.keys:
            out["w_max/" + k] = np.array(self.w_max[k], dtype=np.float64)
            out["pulses/" + k] = np.array(self.pulses[k], dtype=np.int64)
            out["refreshes/" + k] = np.array(self.refreshes[k], dtype=np.int64)
            out["refresh_pulses/" + k] = np.array(self.refresh_pulses[k], dtype=np.int64)
            if self.exact:
                out["w/" + k] = self._w[k].copy()
                continue
            t = self._tiles[k]
            for name in self._TILE_ARRAYS:
                out["%s/%s" % (name, k)] = getattr(t, name).copy()
            if t.stuck is not None:
                out["stuck/" + k] = t.stuck.copy()
            if t.asym is not None:
                out["asym/" + k] = t.asym.copy()
        return out

    def load_state_dict(self, d):
        """Restore a :meth:`state_dict` into a crossbar of the same parameters and device
        (built by the same constructor: the masks of tied lateral and self-projections are
        structure, not state). A missing name or a wrong shape raises ValueError; a state
        without refresh counters (written before they existed) restores them as 0."""
        arrays = ("w",) if self.exact else self._TILE_ARRAYS
        need = ["time"] + ["%s/%s" % (a, k) for k in self.keys
                           for a in ("w_max", "pulses") + arrays]
        missing = [n for n in need if n not in d]
        if missing:
            raise ArgumentError("crossbar state: no %s (%d missing): it was written for other "
                             "parameters or another device" % (missing[0], len(missing)))
        for k in self.keys:
            shape = np.shape(self._w[k]) if self.exact else self._tiles[k].g.shape
            for a in arrays + ("stuck", "asym"):
                name = "%s/%s" % (a, k)
                if name in d and np.shape(d[name]) != shape:
                    raise ArgumentError("crossbar state: %s has shape %s, expected %s"
                                     % (name, np.shape(d[name]), shape))
        self.time = float(d["time"])
        for k in self.keys:
            self.w_max[k] = float(d["w_max/" + k])
            self.pulses[k] = int(d["pulses/" + k])
            self.refreshes[k] = int(d.get("refreshes/" + k, 0))
            self.refresh_pulses[k] = int(d.get("refresh_pulses/" + k, 0))
            if self.exact:
                self._w[k] = np.array(d["w/" + k], dtype=np.float64)
                continue
            t = self._tiles[k]
            t.w_max = self.w_max[k]
            for name in self._TILE_ARRAYS:
                setattr(t, name, np.array(d["%s/%s" % (name, k)], dtype=np.float64))
            t.stuck = np.array(d["stuck/" + k], dtype=bool) if "stuck/" + k in d else None
            t.asym = np.array(d["asym/" + k], dtype=np.float64) if "asym/" + k in d else None


__all__ = ["Crossbar", "default_w_max", "CONTINUOUS_STEPS", "W_MAX_HEADROOM"]
