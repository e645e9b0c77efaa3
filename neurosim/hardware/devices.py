"""Device non-idealities: the devices the weights live in (:class:`Device`, named presets) and
the DAC/ADC quantizer. :mod:`neurosim.engines.devices` puts an engine on it.

Presets (``PRESETS``)
---------------------
Representative values taken from the papers below (and from the device presets that IBM's
aihwkit documents, as a comparison); they are **not fits** to any measured device, and a
real array of any of these technologies can be better or worse by a factor of a few. The
presets describe the devices only: the periphery, wire and neuron fields (``dac_bits``,
``adc_bits``, ``r_wire``, ``tile_size``, ``derivative_tau``, ``tau_mismatch``) are ideal in
every preset and are set per study in the circuit file.

=================  ========  ==========  ============  ==========
field              ideal     rram        pcm           ecram
=================  ========  ==========  ============  ==========
g_min, g_max (µS)  0, 1      1, 40       0.1, 25       1, 10
levels             0 (cont)  64          200           1000
scheme             both      both        one_per_sign  both
d2d_variability    0         0.3         0.2           0.1
c2c_noise          0         0.3         0.6           0.3
asymmetry          0         0.25        0             0
asymmetry_spread   0         0           0             0
soft_bounds        false     true        true          false
read_noise         0         0.01        0.02          0.005
drift_nu           0         0           0.05          0
drift_t0 (s)       1         1           20            1
seconds_per_batch  1         1           1             1
stuck_fraction     0         0.01        0             0
r_wire, tile_size  0, 0      0, 0        0, 0          0, 0
=================  ========  ==========  ============  ==========

* **rram** -- Wan et al. 2022 (Nature 608:504, NeuRRAM: differential RRAM pairs programmed
  within a few to ~40 µS); Gokmen & Vlasov 2016 (Front. Neurosci. 10:333: the resistive
  processing unit specification, 30 % device-to-device and 30 % cycle-to-cycle step
  variation, which aihwkit's ``GokmenVlasovPresetDevice`` and its RRAM presets also use);
  aihwkit's ``ReRamSBPresetDevice`` (soft bounds, d2d 0.3, after Gong et al. 2018) and
  ``ReRamESPresetDevice`` (up/down asymmetry ~0.26). 64 levels: the multi-level RRAM of
  Burr et al. 2017 (Adv. Phys. X 2:89) spans tens to ~100 levels. 1 % stuck devices: an
  assumption (aihwkit's Gong & Rasch 2022 array fits report ~10 % corrupt devices, off by
  default there).
* **pcm** -- Burr et al. 2017 (gradual SET over ~100 partial pulses, abrupt RESET, strong
  non-linearity); Joshi et al. 2020 (Nat. Commun. 11:2473: conductance drift
  ``G(t) = G(t0) (t/t0)^-nu`` with nu ~ 0.05, read noise of a few % of the range, g_max ~ 25 µS
  as in aihwkit's PCM noise model with ``t0 = 20 s``); aihwkit's ``PCMPresetDevice`` (after
  Nandakumar et al. 2020: ~200 steps over the range, d2d 0.2, c2c 0.6). A PCM device only
  potentiates gradually (SET) and is depressed by an abrupt RESET to ``g_min``, so the pair is
  programmed ``one_per_sign`` (a positive change potentiates G+, a negative one G-) and
  refreshed when a device reaches its bound, as aihwkit's ``OneSidedUnitCell`` does with two
  PCM devices (:mod:`neurosim.hardware.crossbar`). Depression pulses are never used, so an
  up/down asymmetry has nothing to act on: ``asymmetry`` is 0 (a uniform one would only scale
  every SET step).
* **ecram** -- Tang et al. 2018 (IEDM: Li-ion ECRAM, >1000 symmetric, linear states) and
  Fuller et al. 2019 (Science 364:570: polymer ECRAM, hundreds of symmetric, linear states);
  aihwkit's ``EcRamPresetDevice`` (after Tang 2018: ~1000 steps, d2d 0.1, c2c 0.3, no
  up/down asymmetry). The µS range is an order of magnitude, not a value from those papers.
* **ideal** -- every non-ideality off: the crossbar stores the weights exactly (unbounded)
  and the engine's numbers are those of the wrapped engine, bit for bit.

The crossbar that stores weights in these devices is :mod:`neurosim.hardware.crossbar`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigurationError

MIN_FACTOR = 0.1            # d2d factors and 1 + tau mismatch are clipped at this
MAX_ASYMMETRY = 0.99        # per-device asymmetries (asymmetry_spread) are clipped to +- this
SCHEMES = ("both", "one_per_sign")


@dataclass(frozen=True)
class Device:
    """One kind of synaptic device and the circuit's analog non-idealities (one field per key
    of the circuit file's ``[hardware]`` section). Every default is the ideal value."""

    g_min: float = 0.0
    """Lowest conductance of a device (µS)."""
    g_max: float = 1.0
    """Highest conductance of a device (µS)."""
    levels: int = 0
    """Programmable conductance levels per device (0: continuous)."""
    w_max: float | None = None
    """The weight a full differential swing ``G+ - G- = g_max - g_min`` represents; None:
    per projection, ``W_MAX_HEADROOM`` (2) times its largest initial ``|w|`` (a bias takes the
    value of the first projection into its population)."""
    scheme: str = "both"
    """How a weight change is programmed into its pair (:mod:`neurosim.hardware.crossbar`):
    ``"both"`` moves G+ by ``+dg/2`` and G- by ``-dg/2`` (each device up and down);
    ``"one_per_sign"`` potentiates only G+ for a positive change and only G- for a negative
    one (SET-only, as PCM arrays are programmed), resetting both and reprogramming the weight
    onto one device (a refresh) when a device would pass its bound."""
    d2d_variability: float = 0.0
    """Device-to-device: relative std of each device's step size and of its range (two
    independent factors ``1 + d2d xi``, drawn once at build)."""
    c2c_noise: float = 0.0
    """Cycle-to-cycle: relative std of the conductance step of each programming pulse."""
    asymmetry: float = 0.0
    """Up/down asymmetry a in [0, 1): potentiation steps ``(1 + a) step``, depression
    ``(1 - a) step``."""
    asymmetry_spread: float = 0.0
    """Device-to-device spread of the asymmetry: each device has its own
    ``a_d = asymmetry + asymmetry_spread xi``, drawn once at build and clipped to
    ``|a_d| <= MAX_ASYMMETRY`` (0.99), so the two devices of a pair no longer cancel."""
    soft_bounds: bool = False
    """Steps proportional to the room left: ``2 (g_max - G) / (g_max - g_min)`` times the step
    up, ``2 (G - g_min) / (g_max - g_min)`` down (the nominal step in the middle)."""
    read_noise: float = 0.0
    """Relative std, of the range ``g_max - g_min``, of the conductance each read sees."""
    drift_nu: float = 0.0
    """Power-law drift exponent: ``G(t) = G_prog (t / t0)^-nu`` (PCM-like)."""
    drift_t0: float = 1.0
    """Drift reference time t0 (s): no drift before it."""
    seconds_per_batch: float = 1.0
    """Time (s) the drift clock advances per programmed batch."""
    stuck_fraction: float = 0.0
    """Fraction of devices stuck at g_min or g_max (half each), fixed at build."""
    r_wire: float = 0.0
    """Resistance (ohm) of one wire segment between neighbouring crosspoints of a row or
    column wire (and from the last crosspoint to its driver or sense amplifier): every read
    is then a nodal solve with IR drop (:mod:`neurosim.hardware.wires`); 0: ideal wires."""
    tile_size: int = 0
    """Largest rows and columns of one physical array: a larger weight matrix is split into
    tiles of at most ``tile_size x tile_size``, each with its own wires (0: one array per
    parameter). Acts with ``r_wire`` only."""
    dac_bits: int = 0
    """Input DAC resolution: inputs in [0, 1] are quantized to ``2^bits`` levels (0: ideal)."""
    adc_bits: int = 0
    """ADC resolution of the neuron states read out (predictions, and the states the synapses
    use for the update), full scale [0, 1], ``2^bits`` levels (0: ideal)."""
    derivative_tau: float = 0.0
    """Time constant (units of the neuron tau) of the low-pass filter on the observed temporal
    derivative: the update sees the low-passed nudged trajectory, started at the free
    state (0: ideal)."""
    tau_mismatch: float = 0.0
    """Relative std of each neuron's time constant: per-neuron Euler step
    ``eps_i = eps / (1 + delta_i)``, ``1 + delta_i`` clipped at 0.1, drawn once (0: ideal).
    The fixed points do not change; keep ``eps_i < 2`` (Euler stability), i.e. a small eps
    with a large mismatch."""

    def __post_init__(self):
        def num(name, low=None, high=None, low_open=False, high_open=True, integer=False):
            v = getattr(self, name)
            ok = not isinstance(v, bool) and isinstance(
                v, (int, np.integer) if integer else (int, float, np.integer, np.floating))
            ok = ok and np.isfinite(v)
            if ok and low is not None:
                ok = v > low if low_open else v >= low
            if ok and high is not None:
                ok = v < high if high_open else v <= high
            if not ok:
                rng = "%s%s, %s%s" % ("(" if low_open else "[", low, high, ")" if high_open else "]")
                raise ConfigurationError("hardware.%s: expected %s in %s, got %r"
                                         % (name, "an integer" if integer else "a number",
                                            rng.replace("None", "inf"), v))
        num("g_min", 0.0, np.inf)
        num("g_max", 0.0, np.inf, low_open=True)
        if not self.g_max > self.g_min:
            raise ConfigurationError("hardware.g_max: must be greater than hardware.g_min "
                                     "(got g_min = %r, g_max = %r µS)" % (self.g_min, self.g_max))
        num("levels", 0, 2 ** 31, integer=True)
        if self.levels == 1:
            raise ConfigurationError("hardware.levels: one level cannot hold a weight change; "
                                     "use 0 (continuous) or at least 2")
        if self.w_max is not None:
            num("w_max", 0.0, np.inf, low_open=True)
        for name in ("d2d_variability", "c2c_noise", "read_noise", "drift_nu", "derivative_tau",
                     "tau_mismatch", "seconds_per_batch"):
            num(name, 0.0, np.inf)
        num("asymmetry", 0.0, 1.0)
        num("asymmetry_spread", 0.0, np.inf)
        num("r_wire", 0.0, np.inf)
        num("tile_size", 0, 2 ** 31, integer=True)
        if self.r_wire and self.weight_ideal:
            # an exact store holds unbounded weights: mapped to conductances they leave the
            # devices' range (even negative), which a nodal solve of the wires cannot mean
            raise ConfigurationError("hardware.r_wire: wire resistance acts on the devices' "
                                     "conductances, but these devices store the weights "
                                     "exactly (unbounded); give them a bounded range, e.g. "
                                     "hardware.levels > 0 or a preset such as \"rram\"")
        if self.scheme not in SCHEMES:
            raise ConfigurationError("hardware.scheme: expected one of %s, got %r"
                                     % (", ".join('"%s"' % x for x in SCHEMES), self.scheme))
        num("drift_t0", 0.0, np.inf, low_open=True)
        num("stuck_fraction", 0.0, 1.0, high_open=False)
        for name in ("dac_bits", "adc_bits"):
            num(name, 0, 32, high_open=False, integer=True)
        if not isinstance(self.soft_bounds, (bool, np.bool_)):
            raise ConfigurationError("hardware.soft_bounds: expected true or false, got %r"
                                     % (self.soft_bounds,))

    @property
    def weight_ideal(self):
        """No weight-level non-ideality: the devices store weights exactly (unbounded)."""
        return (self.levels == 0 and not self.d2d_variability and not self.c2c_noise
                and not self.asymmetry and not self.asymmetry_spread and not self.soft_bounds
                and not self.read_noise and not self.drift_nu and not self.stuck_fraction)

    @property
    def wires_ideal(self):
        """No wire resistance: a read is the ideal product ``G V``."""
        return not self.r_wire

    @property
    def dynamics_ideal(self):
        """No non-ideality of the neurons' dynamics or read-out (ADC, derivative, tau)."""
        return not self.adc_bits and not self.derivative_tau and not self.tau_mismatch

    @property
    def is_ideal(self):
        """Every non-ideality off (the ``ideal`` preset)."""
        return (self.weight_ideal and self.dynamics_ideal and self.wires_ideal
                and not self.dac_bits)

    def replace(self, **changes):
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


FIELDS = tuple(f.name for f in dataclasses.fields(Device))

PRESETS = {
    "ideal": Device(),
    "rram": Device(g_min=1.0, g_max=40.0, levels=64, d2d_variability=0.3, c2c_noise=0.3,
                   asymmetry=0.25, soft_bounds=True, read_noise=0.01, stuck_fraction=0.01),
    "pcm": Device(g_min=0.1, g_max=25.0, levels=200, scheme="one_per_sign", d2d_variability=0.2,
                  c2c_noise=0.6, soft_bounds=True, read_noise=0.02, drift_nu=0.05,
                  drift_t0=20.0),
    "ecram": Device(g_min=1.0, g_max=10.0, levels=1000, d2d_variability=0.1, c2c_noise=0.3,
                    read_noise=0.005),
}


def device_from_section(section=None):
    """The :class:`Device` of a ``[hardware]`` section (a :class:`neurosim.config.HardwareSection`
    or a dict): the preset's values, with every key the section sets (not None) overriding
    its value. Inconsistent values raise :class:`ConfigurationError` naming ``hardware.<field>``."""
    if section is None:
        return PRESETS["ideal"]
    get = section.get if isinstance(section, Mapping) else \
        (lambda k, d=None: getattr(section, k, d))
    preset = get("preset", "ideal") or "ideal"
    if preset not in PRESETS:
        raise ConfigurationError("hardware.preset: expected one of %s, got %r"
                                 % (sorted(PRESETS), preset))
    changes = {k: get(k) for k in FIELDS if get(k) is not None}
    return PRESETS[preset].replace(**changes) if changes else PRESETS[preset]


def quantize(v, bits, lo=0.0, hi=1.0):
    """``v`` clipped to [lo, hi] and rounded to ``2^bits`` evenly spaced levels (a DAC or ADC);
    ``bits = 0`` returns ``v`` itself. Dicts are quantized entry by entry."""
    if not bits:
        return v
    if isinstance(v, Mapping):
        return {k: quantize(x, bits, lo, hi) for k, x in v.items()}
    v = np.asarray(v)
    n = float(2 ** int(bits) - 1)
    q = np.rint((np.clip(v, lo, hi) - lo) * (n / (hi - lo)))
    return (q / n * (hi - lo) + lo).astype(v.dtype if v.dtype.kind == "f" else np.float64)


__all__ = ["Device", "PRESETS", "FIELDS", "MIN_FACTOR", "MAX_ASYMMETRY", "SCHEMES",
           "device_from_section", "quantize"]
