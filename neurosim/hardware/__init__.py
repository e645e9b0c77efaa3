"""Hardware co-design: devices and presets, crossbars of conductance pairs, and the energy
and latency cost model."""
from . import cost
from .crossbar import CONTINUOUS_STEPS, W_MAX_HEADROOM, Crossbar, default_w_max
from .devices import FIELDS, MIN_FACTOR, PRESETS, Device, device_from_section, quantize

__all__ = ["Device", "PRESETS", "FIELDS", "device_from_section", "Crossbar", "quantize",
           "default_w_max", "CONTINUOUS_STEPS", "W_MAX_HEADROOM", "MIN_FACTOR", "cost"]
