"""Hardware co-design: devices and presets, crossbars of conductance pairs, and the energy
and latency cost model."""
from . import cost
from .devices import (CONTINUOUS_STEPS, FIELDS, PRESETS, W_MAX_HEADROOM, Crossbar, Device,
                      default_w_max, device_from_section, quantize)

__all__ = ["Device", "PRESETS", "FIELDS", "device_from_section", "Crossbar", "quantize",
           "default_w_max", "CONTINUOUS_STEPS", "W_MAX_HEADROOM", "cost"]
