"""HDF5 traces in the SONATA layout: one writer (:func:`write`) for everything neurosim
writes (run traces, ``theorem.h5``, ``fidelity.h5``, the cost group), one reader
(:func:`load`, :func:`inspect`), and NWB export (:mod:`.nwb`). The format:
:mod:`.layout`."""
from .layout import FORMAT, FORMAT_VERSION, TraceError, Traces
from .reader import inspect, load
from .writer import write, write_cost_group

__all__ = ["write", "write_cost_group", "load", "inspect", "Traces", "TraceError", "FORMAT",
           "FORMAT_VERSION"]
