"""A crossbar of differential conductance pairs (:class:`Crossbar`) that stores a network's
parameters in devices of a :class:`~neurosim.hardware.devices.Device`: read with noise and
drift, programmed with pulses.

The model (what :class:`Crossbar` does)
---------------------------------------
Each weight ``w`` lives in a differential pair of devices, ``w = w_max (G+ - G-) / (g_max -
g_min)``. Biases live in devices too (a crossbar row driven by a constant input of 1, as in
a fully analog circuit), each with the ``w_max`` of the first projection into its population.
A weight starts as the pair ``G+- = g_mid +- (g_max - g_min) w / (2 w_max)`` around the middle
``g_mid`` of the range (program-and-verify to the nearest level), so both devices have room
both ways and ``|w| <= w_max`` is the saturation limit. A tied lateral matrix (symmetric,
zero diagonal) stores its upper triangle and reads it mirrored; diagonals of self-projections
hold no devices.

Programming a weight change ``dw`` moves the two devices by ``+dg/2`` and ``-dg/2``
(``dg = dw (g_max - g_min) / w_max``) with an integer number of pulses each,
``n = round_stochastic(|dg/2| / step)`` (unbiased stochastic rounding, as in the stochastic
pulse trains of Gokmen & Vlasov 2016: small updates are applied with their probability
instead of being lost). ``step = (g_max - g_min) / (levels - 1)``, or for a continuous device
(``levels = 0``) the fixed small step ``(g_max - g_min) / CONTINUOUS_STEPS``. The n pulses
then act on the device as it is:

* potentiation steps are ``(1 + asymmetry) step``, depression steps ``(1 - asymmetry) step``
  (aihwkit's ``up_down``); with both devices of a pair moved, asymmetry does not bias the
  weight but moves the pair's common mode toward a bound (or, with soft bounds, toward the
  symmetry point), which shrinks later steps;
* each device's step and range are scaled once, at build, by ``1 + d2d_variability xi``
  (two independent factors, clipped at 0.1);
* with ``soft_bounds`` a step is proportional to the room left, ``(g_max - G)`` up and
  ``(G - g_min)`` down, normalized so that a device in the middle of its range takes the
  nominal step (aihwkit's soft-bounds convention): ``2 (g_max - G) / (g_max - g_min)`` times
  the step up, ``2 (G - g_min) / (g_max - g_min)`` down (n pulses in closed form);
* ``c2c_noise`` is the relative std of one pulse's step (n pulses: ``sqrt(n)`` times one);
* the result saturates at the device's bounds and, with ``levels``, lands on one of the
  device's ``levels`` conductances (stochastic rounding between the two nearest), so a device
  never holds more than ``levels`` distinct conductances;
* stuck devices (``stuck_fraction``, half at ``g_min`` and half at ``g_max``, chosen at build)
  take their pulses and never move;
* the programmed conductance drifts, ``G(t) = G_prog (max(t, t0) / t0)^-drift_nu`` with ``t``
  the time since the device was last programmed; the clock advances ``seconds_per_batch`` per
  programmed batch (:meth:`Crossbar.advance`).

A read (:meth:`Crossbar.read`) adds ``read_noise (g_max - g_min) xi`` to every device, fresh
each read; :meth:`Crossbar.weights` is the same without the read noise.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ArgumentError
from .devices import MIN_FACTOR

CONTINUOUS_STEPS = 10_000   # programming steps over the range of a continuous device
W_MAX_HEADROOM = 2.0        # w_max = this x the largest initial |w| of a projection


def _stochastic_round(v, rng):
    """Unbiased rounding of non-negative ``v``: ``floor(v) + 1`` with probability ``frac(v)``;
    values within 1e-9 of an integer are taken as that integer."""
    r = np.rint(v)
    near = np.abs(v - r) < 1e-9
    f = np.floor(v)
    up = rng.random(np.shape(v)) < (v - f)
    return np.where(near, r, f + up)


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
            into = [t.key for t in net.terms if str(t.target) == p and not t.transpose
                    and t.key in out]
            out[k] = out[into[0]] if into else fallback
        else:
            out[k] = fallback
    return {k: out[k] for k in params}


@dataclass
class _Tile:
    """The devices of one parameter: ``g[0]`` = G+, ``g[1]`` = G- (programmed values, µS)."""

    w_max: float
    g: np.ndarray
    span: np.ndarray           # each device's own range g_max_d - g_min
    fstep: np.ndarray          # each device's step factor
    stuck: np.ndarray | None   # bool, devices that never move
    tprog: np.ndarray          # time each device was last programmed (s)
    mask: np.ndarray | None    # devices in use (None: all); False devices stay at g_mid
    mirror: bool               # a tied lateral matrix: read upper triangle mirrored


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
        stuck devices included; the initial program-and-verify is not counted).
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
        mirror, zero_diagonal = set(mirror), set(zero_diagonal) | set(mirror)
        if self.exact:
            self._w = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
            return
        rng = np.random.default_rng([int(seed), 0])
        d = device
        self._tiles = {}
        for k in self.keys:
            w0 = np.array(params[k], dtype=np.float64)
            shape = (2,) + w0.shape
            mask = None
            if k in zero_diagonal:
                mask = ~np.eye(w0.shape[0], dtype=bool)
                if k in mirror:
                    mask = np.triu(mask, 1)
                w0 = np.where(mask, w0, 0.0)
            span = np.full(shape, self.range)
            fstep = np.ones(shape)
            if d.d2d_variability:
                span *= np.maximum(1.0 + d.d2d_variability * rng.standard_normal(shape),
                                   MIN_FACTOR)
                fstep = np.maximum(1.0 + d.d2d_variability * rng.standard_normal(shape),
                                   MIN_FACTOR)
            half = 0.5 * self.range * w0 / self.w_max[k]
            mid = d.g_min + 0.5 * self.range
            g = np.clip(np.stack([mid + half, mid - half]), d.g_min, d.g_min + span)
            if d.levels:                          # program-and-verify to the nearest level
                q = span / (d.levels - 1)
                g = d.g_min + np.clip(np.rint((g - d.g_min) / q), 0, d.levels - 1) * q
            stuck = None
            if d.stuck_fraction:
                stuck = rng.random(shape) < d.stuck_fraction
                high = rng.random(shape) < 0.5
                g = np.where(stuck, np.where(high, d.g_min + span, d.g_min), g)
            if mask is not None:
                g = np.where(mask, g, mid)
            self._tiles[k] = _Tile(self.w_max[k], g, span, fstep, stuck,
                                   np.zeros(shape), mask, k in mirror)

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
            half = 0.5 * self.range * self._w[key] / self.w_max[key]
            mid = self.device.g_min + 0.5 * self.range
            return np.stack([mid + half, mid - half])
        t = self._tiles[key]
        if not drifted or not self.device.drift_nu:
            return t.g.copy()
        f = self._drift(t.tprog)
        if t.stuck is not None:
            f = np.where(t.stuck, 1.0, f)
        return t.g * f

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
        """One read of every weight: :meth:`weights` plus fresh read noise on every device."""
        if self.exact or not self.device.read_noise:
            return self.weights()
        sd = self.device.read_noise * self.range
        out = {}
        for k in self.keys:
            g = self.conductances(k, drifted=True)
            g += sd * rng.standard_normal(g.shape)
            out[k] = self._weights(k, g)
        return out

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
        d, t = self.device, self._tiles[k]
        half = dw * (0.5 * self.range / t.w_max)
        want = np.stack([half, -half])
        if t.mask is not None:
            want = np.where(t.mask, want, 0.0)
        n = _stochastic_round(np.abs(want) / self.step, rng)
        self.pulses[k] += int(n.sum())
        move = n > 0
        if t.stuck is not None:
            move &= ~t.stuck
        if not move.any():
            return
        g0 = t.g[move]
        if d.drift_nu:                        # pulses act on the drifted conductance
            g0 = g0 * self._drift(t.tprog[move])
        n, up, span = n[move], want[move] > 0, t.span[move]
        lo, hi = d.g_min, d.g_min + span
        s = self.step * t.fstep[move] * np.where(up, 1.0 + d.asymmetry, 1.0 - d.asymmetry)
        if d.soft_bounds:                     # each pulse: 2 s (room left) / span, n in closed form
            r = np.maximum(1.0 - 2.0 * s / span, 0.0) ** n
            g1 = np.where(up, hi - (hi - g0) * r, lo + (g0 - lo) * r)
        else:
            g1 = g0 + np.where(up, n, -n) * s
        if d.c2c_noise:
            g1 = g1 + d.c2c_noise * np.abs(g1 - g0) / np.sqrt(n) * rng.standard_normal(n.shape)
        g1 = np.clip(g1, lo, hi)
        if d.levels:
            q = span / (d.levels - 1)
            g1 = lo + np.clip(_stochastic_round((g1 - lo) / q, rng), 0, d.levels - 1) * q
        t.g[move] = g1
        t.tprog[move] = self.time

    # -- checkpoints ----------------------------------------------------------------------
    _TILE_ARRAYS = ("g", "span", "fstep", "tprog")

    def state_dict(self):
        """Everything that determines the crossbar's future, as flat name -> array (numbers
        only, for ``np.savez``): the drift clock ``time``; per key ``w_max/<key>``,
        ``pulses/<key>`` and either the stored weight ``w/<key>`` (exact devices) or the
        programmed conductances ``g/<key>``, the build draws (each device's range ``span``, step
        factor ``fstep``, ``stuck`` mask where devices stick) and the programming times
        ``tprog`` (drift)."""
        out = {"time": np.array(self.time, dtype=np.float64)}
        for k in self.keys:
            out["w_max/" + k] = np.array(self.w_max[k], dtype=np.float64)
            out["pulses/" + k] = np.array(self.pulses[k], dtype=np.int64)
            if self.exact:
                out["w/" + k] = self._w[k].copy()
                continue
            t = self._tiles[k]
            for name in self._TILE_ARRAYS:
                out["%s/%s" % (name, k)] = getattr(t, name).copy()
            if t.stuck is not None:
                out["stuck/" + k] = t.stuck.copy()
        return out

    def load_state_dict(self, d):
        """Restore a :meth:`state_dict` into a crossbar of the same parameters and device
        (built by the same constructor: the masks of tied lateral and self-projections are
        structure, not state). A missing name or a wrong shape raises ValueError."""
        arrays = ("w",) if self.exact else self._TILE_ARRAYS
        need = ["time"] + ["%s/%s" % (a, k) for k in self.keys
                           for a in ("w_max", "pulses") + arrays]
        missing = [n for n in need if n not in d]
        if missing:
            raise ArgumentError("crossbar state: no %s (%d missing): it was written for other "
                             "parameters or another device" % (missing[0], len(missing)))
        for k in self.keys:
            shape = np.shape(self._w[k]) if self.exact else self._tiles[k].g.shape
            for a in arrays + ("stuck",):
                name = "%s/%s" % (a, k)
                if name in d and np.shape(d[name]) != shape:
                    raise ArgumentError("crossbar state: %s has shape %s, expected %s"
                                     % (name, np.shape(d[name]), shape))
        self.time = float(d["time"])
        for k in self.keys:
            self.w_max[k] = float(d["w_max/" + k])
            self.pulses[k] = int(d["pulses/" + k])
            if self.exact:
                self._w[k] = np.array(d["w/" + k], dtype=np.float64)
                continue
            t = self._tiles[k]
            t.w_max = self.w_max[k]
            for name in self._TILE_ARRAYS:
                setattr(t, name, np.array(d["%s/%s" % (name, k)], dtype=np.float64))
            t.stuck = np.array(d["stuck/" + k], dtype=bool) if "stuck/" + k in d else None


__all__ = ["Crossbar", "default_w_max", "CONTINUOUS_STEPS", "W_MAX_HEADROOM"]
