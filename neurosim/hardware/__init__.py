"""Hardware co-design: devices and presets, crossbars of conductance pairs, their programming
schemes, wire resistance in their reads, and the energy and latency cost model."""
from . import cost, programming, wires
from .crossbar import CONTINUOUS_STEPS, W_MAX_HEADROOM, Crossbar, default_w_max
from .devices import (FIELDS, MAX_ASYMMETRY, MIN_FACTOR, PRESETS, SCHEMES, Device,
                      device_from_section, quantize)

__all__ = ["Device", "PRESETS", "FIELDS", "SCHEMES", "device_from_section", "Crossbar",
           "quantize", "default_w_max", "CONTINUOUS_STEPS", "W_MAX_HEADROOM", "MIN_FACTOR",
           "MAX_ASYMMETRY", "cost", "programming", "wires"]
