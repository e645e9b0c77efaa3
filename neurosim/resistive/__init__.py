"""Analog resistive networks (docs/maths.md section 11): the network and its elements, the
DC operating point, EP by current injection and the RBP ground truth, SPICE export and
check."""
from .network import DIODES, Elements, ResistiveNetwork, resistive
from .solver import OperatingPoint, OperatingPointError, operating_point, power
from .learning import cost, drop_contrast, ep_gradient, rbp_gradient

__all__ = ["ResistiveNetwork", "Elements", "resistive", "DIODES", "operating_point",
           "OperatingPoint", "OperatingPointError", "power", "ep_gradient", "rbp_gradient",
           "drop_contrast", "cost"]
