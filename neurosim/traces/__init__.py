"""HDF5 traces in the SONATA layout: one writer (:func:`write`) for everything neurosim
writes, one reader (:func:`load`, :func:`inspect`), and NWB export (:mod:`.nwb`)."""
from .reader import inspect, load
from .writer import FORMAT, FORMAT_VERSION, TraceError, Traces, write

__all__ = ["write", "load", "inspect", "Traces", "TraceError", "FORMAT", "FORMAT_VERSION"]
