"""Programming schemes: how a weight change becomes pulses on the two devices of a
differential pair (:class:`BothDevices`, :class:`OnePerSign`), and what ``n`` pulses do to a
device (:meth:`Scheme.apply_pulses`). :class:`~neurosim.hardware.crossbar.Crossbar` stores the
pairs and calls the scheme its device names (``hardware.scheme``).

Both schemes round the requested conductance change of a device to an integer number of
pulses, ``n = round_stochastic(|dg| / step)`` (unbiased stochastic rounding, as the stochastic
pulse trains of Gokmen & Vlasov 2016: small updates are applied with their probability
instead of being lost), ``dg = dw (g_max - g_min) / w_max``.

``"both"`` (every device moves up and down)
    G+ takes ``+dg/2`` and G- ``-dg/2``, each with its own up/down step, so a uniform up/down
    asymmetry does not bias the weight (it moves the pair's common mode toward a bound, or
    with soft bounds toward the symmetry point). A weight starts as ``g_mid +- dg0/2`` around
    the middle of the range, so both devices have room both ways.

``"one_per_sign"`` (SET-only, as PCM arrays are programmed; aihwkit's ``OneSidedUnitCell``)
    A positive change potentiates only G+, a negative one only G-: programming never lowers a
    device (the cycle-to-cycle noise of a pulse train is clipped at no change). A weight
    starts on one device, ``G = g_min + dg0`` on the device of its sign, the other at
    ``g_min``. When a device would pass its bound (judged with the nominal, hard-bound steps
    ``n (1 + a) step``) and the other device of the pair holds at least one step above
    ``g_min``, the pair is **refreshed**: its weight is read once (drift and read noise
    included), both devices are RESET to ``g_min`` (one pulse each), and the read weight plus
    the pending change is written onto the device of its sign by program-and-verify to the
    nearest level, as the weights were first written (counted as ``round(|dg| / step)`` SET
    pulses). The refresh's pulses are counted with the others (``pulses``) and on their own
    (``refresh_pulses``), its pairs in ``refreshes``. Where the other device is at ``g_min``
    there is nothing to free and the device saturates at its bound. With one device per sign a
    uniform asymmetry scales every step by ``1 + a`` in both directions; per-device
    asymmetries (``asymmetry_spread``) make a pair's up and down changes differ by
    ``(1 + a+) / (1 + a-)``.

The pulse model (:meth:`Scheme.apply_pulses`): potentiation steps are ``(1 + a) step``,
depression steps ``(1 - a) step`` (aihwkit's ``up_down``), with ``a`` the device's own
asymmetry; each device's step is scaled by its build-time factor (``d2d_variability``); with
``soft_bounds`` a step is ``2 (g_max - G) / span`` times the step up and ``2 (G - g_min) /
span`` down (n pulses in closed form); ``c2c_noise`` is the relative std of one pulse's step
(n pulses: ``sqrt(n)`` times one); the result saturates at the device's bounds and, with
``levels``, lands on one of its levels (stochastic rounding); pulses act on the drifted
conductance; stuck devices take their pulses and never move.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigurationError


def stochastic_round(v, rng):
    """Unbiased rounding of non-negative ``v``: ``floor(v) + 1`` with probability ``frac(v)``;
    values within 1e-9 of an integer are taken as that integer."""
    r = np.rint(v)
    near = np.abs(v - r) < 1e-9
    f = np.floor(v)
    up = rng.random(np.shape(v)) < (v - f)
    return np.where(near, r, f + up)


@dataclass
class Pairs:
    """The devices of one parameter: ``g[0]`` = G+, ``g[1]`` = G- (programmed values, µS),
    shape ``(2, *shape)``, and what was drawn for them at build."""

    w_max: float
    g: np.ndarray
    span: np.ndarray           # each device's own range g_max_d - g_min
    fstep: np.ndarray          # each device's step factor
    stuck: np.ndarray | None   # bool, devices that never move
    tprog: np.ndarray          # time each device was last programmed (s)
    mask: np.ndarray | None    # devices in use (None: all); others hold the scheme's zero
    mirror: bool               # a tied lateral matrix: read upper triangle mirrored
    asym: np.ndarray | None = None   # each device's asymmetry (None: the device's asymmetry)


@dataclass
class Programmed:
    """What one programming call did to one parameter."""

    pulses: int = 0            # every pulse, the refreshes' included
    refreshes: int = 0         # pairs refreshed
    refresh_pulses: int = 0    # the refreshes' RESET and SET pulses


class Scheme:
    """How weight changes are programmed into pairs of ``device`` devices of nominal step
    ``step`` (µS); subclasses give the initial pair, the zero pair and :meth:`program`."""

    name = ""

    def __init__(self, device, step):
        self.device, self.step = device, float(step)
        self.range = float(device.g_max - device.g_min)

    def initial(self, w, w_max):
        """``(2, *shape)``: the conductances that hold weights ``w`` (before the device's
        bounds and levels)."""
        raise NotImplementedError

    @property
    def zero(self):
        """The conductance both devices of a pair hold for the weight 0 (unused devices)."""
        raise NotImplementedError

    def program(self, pairs, dw, rng, drift, now):
        """Program the weight change ``dw`` into ``pairs`` (in place) at time ``now``;
        ``drift(t)`` is the drift factor of devices last programmed at ``t``. Returns a
        :class:`Programmed`."""
        raise NotImplementedError

    def drifted(self, pairs, drift):
        """All devices' conductances as they have drifted (stuck devices do not drift)."""
        if not self.device.drift_nu:
            return pairs.g
        f = drift(pairs.tprog)
        if pairs.stuck is not None:
            f = np.where(pairs.stuck, 1.0, f)
        return pairs.g * f

    def apply_pulses(self, pairs, move, n, up, rng, drift, now, monotone=False):
        """``n`` pulses (potentiating where ``up``) on the devices ``move`` (bool,
        ``(2, *shape)``; ``n`` and ``up`` are given for those devices only), in place (the
        pulse model of the module docstring). ``monotone``: the result is never below the
        starting conductance (SET-only programming)."""
        d, t = self.device, pairs
        g0 = t.g[move]
        if d.drift_nu:                        # pulses act on the drifted conductance
            g0 = g0 * drift(t.tprog[move])
        span = t.span[move]
        lo, hi = d.g_min, d.g_min + span
        a = d.asymmetry if t.asym is None else t.asym[move]
        s = self.step * t.fstep[move] * np.where(up, 1.0 + a, 1.0 - a)
        if d.soft_bounds:                     # each pulse: 2 s (room left) / span, n in closed form
            r = np.maximum(1.0 - 2.0 * s / span, 0.0) ** n
            g1 = np.where(up, hi - (hi - g0) * r, lo + (g0 - lo) * r)
        else:
            g1 = g0 + np.where(up, n, -n) * s
        if d.c2c_noise:
            g1 = g1 + d.c2c_noise * np.abs(g1 - g0) / np.sqrt(n) * rng.standard_normal(n.shape)
        if monotone:
            g1 = np.maximum(g1, g0)
        g1 = np.clip(g1, lo, hi)
        if d.levels:
            q = span / (d.levels - 1)
            g1 = lo + np.clip(stochastic_round((g1 - lo) / q, rng), 0, d.levels - 1) * q
        t.g[move] = g1
        t.tprog[move] = now


class BothDevices(Scheme):
    """``"both"``: G+ by ``+dg/2``, G- by ``-dg/2`` (module docstring)."""

    name = "both"

    def initial(self, w, w_max):
        half = 0.5 * self.range * np.asarray(w, dtype=np.float64) / w_max
        return np.stack([self.zero + half, self.zero - half])

    @property
    def zero(self):
        return self.device.g_min + 0.5 * self.range

    def program(self, pairs, dw, rng, drift, now):
        t = pairs
        half = dw * (0.5 * self.range / t.w_max)
        want = np.stack([half, -half])
        if t.mask is not None:
            want = np.where(t.mask, want, 0.0)
        n = stochastic_round(np.abs(want) / self.step, rng)
        pulses = int(n.sum())
        move = n > 0
        if t.stuck is not None:
            move &= ~t.stuck
        if move.any():
            self.apply_pulses(t, move, n[move], want[move] > 0, rng, drift, now)
        return Programmed(pulses)


class OnePerSign(Scheme):
    """``"one_per_sign"``: only G+ potentiates for a positive change, only G- for a negative
    one; pairs are refreshed at the bound (module docstring)."""

    name = "one_per_sign"

    def initial(self, w, w_max):
        dg = self.range * np.asarray(w, dtype=np.float64) / w_max
        return self.zero + np.stack([np.maximum(dg, 0.0), np.maximum(-dg, 0.0)])

    @property
    def zero(self):
        return self.device.g_min

    def program(self, pairs, dw, rng, drift, now):
        d, t = self.device, pairs
        dg = dw * (self.range / t.w_max)
        if t.mask is not None:
            dg = np.where(t.mask, dg, 0.0)
        want = np.stack([np.maximum(dg, 0.0), np.maximum(-dg, 0.0)])   # potentiation only
        n = stochastic_round(want / self.step, rng)
        move = n > 0
        if t.stuck is not None:
            move &= ~t.stuck
        g0 = self.drifted(t, drift)
        a = d.asymmetry if t.asym is None else t.asym
        over = move & (g0 + n * (self.step * t.fstep * (1.0 + a)) > d.g_min + t.span)
        room = g0[::-1] - d.g_min >= self.step          # the other device can free room
        if t.stuck is not None:
            room &= ~t.stuck[::-1]
        refresh = (over & room).any(axis=0)
        if refresh.any():
            n = np.where(refresh, 0.0, n)
            move &= ~refresh
        pulses = int(n.sum())
        if move.any():
            self.apply_pulses(t, move, n[move], np.ones(int(move.sum()), bool), rng, drift,
                              now, monotone=True)
        if not refresh.any():
            return Programmed(pulses)
        rp = self._refresh(t, refresh, dw, rng, drift, now)
        return Programmed(pulses + rp, int(refresh.sum()), rp)

    def _refresh(self, t, r, dw, rng, drift, now):
        """Refresh the pairs ``r`` (bool, the parameter's shape) with the pending change
        ``dw``: read, RESET both, program-and-verify the weight onto one device. Returns the
        refresh's pulses."""
        d = self.device
        g = self.drifted(t, drift)[:, r]
        if d.read_noise:
            g = g + d.read_noise * self.range * rng.standard_normal(g.shape)
        w = (t.w_max / self.range) * (g[0] - g[1]) + np.asarray(dw, dtype=np.float64)[r]
        reset = np.ones(g.shape, bool) if t.stuck is None else ~t.stuck[:, r]
        dg = np.abs(w) * (self.range / t.w_max)
        target = np.stack([w >= 0, w < 0]) & reset         # the device of the weight's sign
        span = t.span[:, r]
        gt = d.g_min + np.minimum(dg, span)                 # broadcast over both devices
        if d.levels:
            q = span / (d.levels - 1)
            gt = d.g_min + np.clip(np.rint((gt - d.g_min) / q), 0, d.levels - 1) * q
        new = np.where(reset, d.g_min, t.g[:, r])
        new = np.where(target, gt, new)
        t.g[:, r] = new
        t.tprog[:, r] = np.where(reset, now, t.tprog[:, r])
        set_pulses = np.where(target.any(axis=0), np.rint(dg / self.step), 0.0)
        return int(2 * np.count_nonzero(r) + set_pulses.sum())


SCHEMES = {s.name: s for s in (BothDevices, OnePerSign)}


def scheme_for(device, step):
    """The :class:`Scheme` of ``device.scheme`` with nominal step ``step``."""
    try:
        cls = SCHEMES[device.scheme]
    except KeyError:
        raise ConfigurationError("hardware.scheme: expected one of %s, got %r"
                                 % (", ".join(sorted(SCHEMES)), device.scheme)) from None
    return cls(device, step)


__all__ = ["Scheme", "BothDevices", "OnePerSign", "SCHEMES", "Pairs", "Programmed",
           "scheme_for", "stochastic_round"]
