"""Reading HDF5 trace files: :func:`load` (the whole file as numpy) and :func:`inspect` (a
summary for ``neurosim traces inspect``).

Split from :mod:`neurosim.traces`, which defines the layout (its module docstring), the
validation and the writer; both functions are re-exported there, so ``neurosim.traces.load``
and ``neurosim.traces.inspect`` remain the public names. Both open a file through
:func:`_open`, which refuses anything that is not a neurosim trace file of a version this
package reads.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import h5py
import numpy as np

from .writer import FORMAT, FORMAT_VERSION, SONATA_VERSION, TraceError, Traces, _key, _str


# -- reading ----------------------------------------------------------------------------------
@contextmanager
def _open(path):
    try:
        path = os.fspath(path)
    except TypeError:
        raise TraceError("path: expected a file path, got %r" % (path,)) from None
    if not os.path.exists(path):
        raise FileNotFoundError("trace file %r does not exist" % path)
    if not h5py.is_hdf5(path):
        raise TraceError("%r is not a neurosim trace file: it is not an HDF5 file" % path)
    with h5py.File(path, "r") as f:
        fmt = _str(f.attrs.get("format", ""))
        if fmt != FORMAT:
            raise TraceError("%r is not a neurosim trace file: the root attribute 'format' is "
                             "%r, expected %r" % (path, fmt or None, FORMAT))
        version = int(f.attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise TraceError("%r has trace format version %d; this neurosim reads up to %d: "
                             "upgrade neurosim" % (path, version, FORMAT_VERSION))
        yield f


def _plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "OS":
            return np.array([_str(x) for x in v.ravel()], dtype=object).reshape(v.shape)
        return v
    if isinstance(v, np.generic):
        return v.item()
    return v


def _read_tree(group):
    out = {}
    for obj in group.values():
        if isinstance(obj, h5py.Group):
            out[_key(obj)] = _read_tree(obj)
        else:
            out[_key(obj)] = _plain(obj[()])
    return out


def _read_report(g):
    m = g["mapping"]
    data = g["data"][()]
    node_ids = m["node_ids"][()]
    start, stop, step = (float(x) for x in m["time"][()])
    T, n = data.shape[0], len(node_ids)
    if _str(g.attrs.get("layout", "time,neuron")) == "time,example,neuron":
        batch = int(g.attrs["n_examples"])
        data = np.ascontiguousarray(data.reshape(T, n, batch).transpose(0, 2, 1))
    return {"data": data, "time": start + step * np.arange(T), "node_ids": node_ids,
            "element_ids": m["element_ids"][()], "index_pointers": m["index_pointers"][()],
            "start": start, "stop": stop, "dt": step, "units": _str(g["data"].attrs["units"]),
            "time_units": _str(m["time"].attrs["units"]),
            **({"variable": _str(g.attrs["variable"])} if "variable" in g.attrs else {})}


def _sorting(g):
    if "sorting" not in g.attrs:
        return "none"
    names = {v: k for k, v in h5py.check_enum_dtype(g.attrs.get_id("sorting").dtype).items()}
    return names[int(g.attrs["sorting"])]


def load(path):
    """Read a trace file written by :func:`neurosim.traces.write` into a :class:`Traces`
    (plain numpy).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    TraceError
        If the file is not HDF5, not a neurosim trace file, or of a newer format version.
    """
    with _open(path) as f:
        t = Traces(attrs={k: _plain(v) for k, v in f.attrs.items()})
        for g in f.get("report", {}).values():
            t.reports[_key(g)] = _read_report(g)
        for g in f.get("spikes", {}).values():
            t.spikes[_key(g)] = {"timestamps": g["timestamps"][()], "node_ids": g["node_ids"][()],
                                 "units": _str(g["timestamps"].attrs["units"]),
                                 "sorting": _sorting(g)}
        if "phases" in f:
            g = f["phases"]
            names = [_str(x) for x in g["name"][()]]
            t.phases = [{"name": nm, "start": float(a), "stop": float(b), "beta": float(c)}
                        for nm, a, b, c in zip(names, g["start"][()], g["stop"][()],
                                               g["beta"][()])]
        for name in ("weights", "gradients", "fidelity", "training"):
            if name in f:
                setattr(t, name, _read_tree(f[name]))
    return t


# -- inspect ----------------------------------------------------------------------------------
def _fmt(v):
    if isinstance(v, float):
        return "%.4g" % v
    return str(v)


def inspect(path):
    """A readable summary of a trace file, then its tree with shapes and dtypes.

    Reads only shapes, attributes and the last entry of each training metric, so it is fast
    on large files. Backs ``neurosim traces inspect FILE``.
    """
    lines = []
    with _open(path) as f:
        a = f.attrs
        lines.append("%s: neurosim trace file (format %s v%d, SONATA %s), created %s"
                     % (os.fspath(path), FORMAT, int(a["format_version"]),
                        ".".join(str(int(x)) for x in a.get("version", SONATA_VERSION)),
                        _str(a.get("created", "?"))))
        lines.append("written by neurosim %s with numpy %s, h5py %s (HDF5 %s), scipy %s, "
                     "python %s" % tuple(_str(a.get(k, "?")) for k in (
                         "neurosim_version", "numpy_version", "h5py_version", "hdf5_version",
                         "scipy_version", "python_version")))
        if "circuit" in a:
            lines.append("circuit: %d lines of TOML" % len(_str(a["circuit"]).splitlines()))
        if "report" in f:
            rep = f["report"]
            lines.append("reports: %d population(s)" % len(rep))
            for g in rep.values():
                t0, t1, step = g["mapping/time"][()]
                n = g["mapping/node_ids"].shape[0]
                batch = int(g.attrs.get("n_examples", 1))
                shape = "%d neurons" % n + (" x %d examples" % batch
                                           if _str(g.attrs.get("layout", "")) ==
                                           "time,example,neuron" else "")
                lines.append("  %-10s %d time steps x %s, t in [%s, %s) step %s %s, units %s"
                             % (_key(g), g["data"].shape[0], shape, _fmt(float(t0)),
                                _fmt(float(t1)), _fmt(float(step)),
                                _str(g["mapping/time"].attrs["units"]),
                                _str(g["data"].attrs["units"])))
        if "spikes" in f:
            lines.append("spikes: " + ", ".join(
                "%s %d spikes" % (_key(g), g["timestamps"].shape[0]) for g in f["spikes"].values()))
        if "phases" in f:
            g = f["phases"]
            lines.append("phases: " + ", ".join(
                "%s [%s, %s) beta=%s" % (_str(nm), _fmt(float(s)), _fmt(float(e)), _fmt(float(b)))
                for nm, s, e, b in zip(g["name"][()], g["start"][()], g["stop"][()],
                                       g["beta"][()])))
        if "weights" in f:
            lines.append("weights: %s" % ", ".join(_key(o) for o in f["weights"].values()))
        if "gradients" in f:
            lines.append("gradients: %s" % ", ".join(
                "%s (%d params)" % (_key(o), len(o)) for o in f["gradients"].values()))
        if "training" in f and len(f["training"]):
            tr = f["training"]
            n_ep = next(iter(tr.values())).shape[0]
            final = ["%s %s" % (_key(d), _fmt(_plain(d[n_ep - 1])))
                     for d in tr.values() if d.ndim == 1 and n_ep]
            lines.append("training: %d epochs; final: %s" % (n_ep, ", ".join(final) or "-"))
        if "fidelity" in f:
            top = ["%s %s" % (_key(d), _fmt(_plain(d[()]))) for d in f["fidelity"].values()
                   if isinstance(d, h5py.Dataset) and d.ndim == 0]
            lines.append("fidelity: %s" % (", ".join(top) or ", ".join(
                _key(o) for o in f["fidelity"].values())))
        lines.append("")
        lines.append("tree:")

        _tree_lines(f, 1, lines)
    return "\n".join(lines)


def _tree_lines(group, depth, lines):
    """The tree below ``group`` in creation order: groups end in '/', datasets show
    dtype, shape, compression and units."""
    for label, obj in group.items():
        if isinstance(obj, h5py.Group):
            lines.append("  " * depth + label + "/")
            _tree_lines(obj, depth + 1, lines)
            continue
        extra = [obj.compression] if obj.compression else []
        if "units" in obj.attrs:
            extra.append("units=%s" % _str(obj.attrs["units"]))
        dtype = "str" if h5py.check_string_dtype(obj.dtype) else str(obj.dtype)
        lines.append("  " * depth + "%s  %s %s%s" % (
            label, dtype, obj.shape, ("  " + " ".join(extra)) if extra else ""))
