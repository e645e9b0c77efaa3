"""The trace-file format: its constants, its error, :class:`Traces` (what :func:`load` returns)
and the small helpers the writer, the reader and the NWB export share.

One file holds one run, one ``neurosim theorem`` or one ``neurosim fidelity``::

    /                                   root attributes: format, format_version, SONATA magic
                                        and version, created, circuit (TOML text), package versions
    /report/<population>/data           (time, columns) SONATA frame-oriented report, float32,
                                        attr units; data_float64 beside it (same layout) where
                                        float32 rounds the values written
    /report/<population>/mapping/       node_ids, index_pointers, element_ids, time = [start, stop, dt]
    /spikes/<population>/               attr sorting = by_time; timestamps (attr units), node_ids
    /phases/                            name, start, stop, beta: one entry per phase
    /weights/<projection>               weight snapshots ("W:x->h1", ...)
    /gradients/<method>/<param key>     e.g. ep, rbp, bptt
    /fidelity/...                       nested metrics: groups, 0-d datasets, arrays
    /training/<metric>                  per-epoch arrays, all of one length
    /cost/per_example/<phase>/<count>   the cost model's report (COST_UNITS on the datasets;
    /cost/per_epoch/...                 the table and the model settings as /cost attributes)
    /<name>/...                         any other group: nested numbers, strings and arrays
                                        (``theorem.h5``: data, free_state, side_network, ...)

Batched reports: a ``(time, batch, n)`` array is stored as SONATA ``data`` of shape
``(time, n * batch)``, node-major: the columns of neuron ``i`` are
``data[:, index_pointers[i]:index_pointers[i + 1]]`` and its ``element_ids`` are the example
indices ``0 .. batch-1``. A ``(time, n)`` array has one column per neuron and element id 0.
The group attribute ``layout`` ("time,neuron" or "time,example,neuron") lets :func:`load`
give back the array in the shape it was written.

Keys become HDF5 names with ``%`` and ``/`` percent-encoded (``%25``, ``%2F``); where that
changes the name the original key is kept in the attribute ``key``. The SONATA datasets
(``report/*/data``, ``report/*/mapping/*``, ``spikes/*/*``) are contiguous and unfiltered, as
the reference SONATA reader (libsonata, whose wheels have no deflate filter) needs; every other
dataset of one or more dimensions is chunked and gzip-compressed. Files are written through
:func:`neurosim.atomic.atomic_path`: under a temporary name in the target directory, renamed
at the end, so an interrupted write never leaves a half-written file under the final name
(and never touches a file already there).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import unquote

import h5py

from ..errors import NeurosimError

FORMAT = "neurosim-traces"
FORMAT_VERSION = 1
SONATA_MAGIC = 0x0A7A
SONATA_VERSION = (0, 1)
#: the full-precision copy of a report's float32 ``data``, where rounding changed it
FULL_PRECISION = "data_float64"
SORTING = h5py.enum_dtype({"none": 0, "by_id": 1, "by_time": 2}, basetype="u1")
VERSION_PACKAGES = ("neurosim", "numpy", "h5py", "scipy")
RESERVED_ATTRS = ("format", "format_version", "magic", "version", "created", "circuit",
                  "python_version", "hdf5_version") + tuple("%s_version" % p
                                                          for p in VERSION_PACKAGES)
#: root groups of nested data, read back by :func:`load` into the field of the same name
TREES = ("weights", "gradients", "fidelity", "training", "cost")
#: root groups with a layout of their own; every other root group is a generic group
GROUPS = ("report", "spikes", "phases") + TREES
#: units of the cost group's datasets, by name
COST_UNITS = {"settling_tau": "tau", "energy_pj": "pJ", "energy_uj": "uJ", "latency_ns": "ns",
              "latency_us": "us"}
#: cost datasets stored as integers (the others are float64)
COST_INTEGERS = ("epoch", "examples", "batches")
COST_DESCRIPTION = ("per_example: counts, energy and latency of one example by phase; "
                    "per_epoch: the same per epoch (arrays); the table (pJ, ns) in the "
                    "attributes; see neurosim.hardware.cost")

__all__ = ["FORMAT", "FORMAT_VERSION", "SONATA_MAGIC", "SONATA_VERSION", "SORTING",
           "FULL_PRECISION", "VERSION_PACKAGES", "RESERVED_ATTRS", "TREES", "GROUPS", "COST_UNITS",
           "COST_INTEGERS", "COST_DESCRIPTION", "TraceError", "Traces", "escape", "key_of",
           "to_str", "target_path"]


class TraceError(NeurosimError, ValueError):
    """Bad input for a trace file, or a file that is not a neurosim trace file."""


@dataclass
class Traces:
    """The contents of a trace file as plain numpy data (see :func:`neurosim.traces.load`).

    ``reports[pop]``: dict with ``data`` ((time, n) or (time, batch, n), as written),
    ``time`` (the time of each frame), ``node_ids``, ``element_ids``, ``index_pointers``,
    ``start``, ``stop``, ``dt``, ``units``, ``time_units``.
    ``spikes[pop]``: dict with ``timestamps``, ``node_ids``, ``units``, ``sorting``.
    ``phases``: list of dicts ``name``, ``start``, ``stop``, ``beta``.
    ``weights``/``gradients``/``fidelity``/``training``: nested dicts as written (0-d values
    come back as Python scalars, sequences as numpy arrays).
    ``cost``: the cost group, ``{"per_example": ..., "per_epoch": ..., "attrs": ...,
    "table": ..., "model": ...}`` (``{}`` without one; ``per_epoch`` holds the report's
    ``by_epoch`` lists as arrays).
    ``groups``: every other root group, ``{name: nested dict}`` (``theorem.h5``'s
    ``side_network``, ``second_phase``, ...).
    ``node_attrs``: attributes of the groups and datasets inside the nested groups above,
    ``{"second_phase/2": {"beta": 0.0001}, ...}`` (HDF5 paths without the leading ``/``).
    ``attrs``: every root attribute (``circuit``, the package versions, user attributes).
    """

    reports: dict = field(default_factory=dict)
    spikes: dict = field(default_factory=dict)
    phases: list = field(default_factory=list)
    weights: dict = field(default_factory=dict)
    gradients: dict = field(default_factory=dict)
    fidelity: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)
    groups: dict = field(default_factory=dict)
    node_attrs: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    @property
    def circuit(self):
        """The circuit file (TOML text) the run came from, or None."""
        return self.attrs.get("circuit")

    @property
    def versions(self):
        """Package versions recorded at write time: ``{"neurosim": "0.1.0", ...}``."""
        return {k[:-len("_version")]: v for k, v in self.attrs.items()
                if k.endswith("_version") and k != "format_version"}

    def __repr__(self):
        return "Traces(reports=%s, spikes=%s, phases=%s, weights=%d, gradients=%s, " \
               "fidelity=%s, training=%s, cost=%s, groups=%s)" % (
                   list(self.reports), list(self.spikes), [p["name"] for p in self.phases],
                   len(self.weights), list(self.gradients), list(self.fidelity),
                   list(self.training), bool(self.cost), list(self.groups))


# -- names ------------------------------------------------------------------------------------
def escape(key, where):
    """The HDF5 name of ``key`` (``%`` and ``/`` percent-encoded); a TraceError naming
    ``where`` for anything but a non-empty string."""
    if not isinstance(key, str) or not key:
        raise TraceError("%s: keys must be non-empty strings, got %r" % (where, key))
    name = key.replace("%", "%25").replace("/", "%2F")
    return name.replace(".", "%2E") if name in (".", "..") else name


def to_str(v):
    """An HDF5 string value (bytes or str) as str."""
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def key_of(obj):
    """The key an HDF5 group or dataset was written under (its attribute ``key``, else its
    name decoded)."""
    name = obj.name.rsplit("/", 1)[-1]
    return to_str(obj.attrs["key"]) if "key" in obj.attrs else unquote(name)


def target_path(path, what="path"):
    """``path`` as a str, checked as the target of a write: its directory exists and it is
    not a directory (TraceError naming ``what`` otherwise)."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TraceError("%s: expected a file path, got %r" % (what, path)) from None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise TraceError("%s: directory %r does not exist (for %r)" % (what, folder, path))
    if os.path.isdir(path):
        raise TraceError("%s: %r is a directory" % (what, path))
    return path
