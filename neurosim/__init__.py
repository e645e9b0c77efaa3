"""neurosim: learning by temporal derivatives on fixed-point networks.

The public API (DESIGN.md): build a :class:`Network`, relax it, compute RBP ground truth
(:mod:`neurosim.rbp`), Equilibrium Propagation estimates (:mod:`neurosim.ep`) and their
fidelity (:mod:`neurosim.fidelity`).
"""
from . import brian, datasets, energy, engines, ep, estimators, fidelity, hardware, rbp, sweep
from .network import Network, NetworkError, layered
from .relax import RelaxationError, RelaxResult, loss, relax
from .rbp import RBPConvergenceError
from . import training

__version__ = "0.1.0"

__all__ = ["Network", "NetworkError", "layered", "relax", "RelaxResult", "RelaxationError", "loss",
           "rbp", "ep", "estimators", "engines", "fidelity", "energy", "datasets", "brian", "hardware",
           "sweep", "training",
           "RBPConvergenceError", "__version__"]
