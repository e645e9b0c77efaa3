"""Reading HDF5 trace files: :func:`load` (the whole file as numpy) and :func:`inspect` (a
summary for ``neurosim traces inspect``), for every file :func:`neurosim.traces.write` makes
(run traces, ``theorem.h5``, ``fidelity.h5``, the cost group).

The layout is :mod:`neurosim.traces.layout`; both functions are re-exported by
:mod:`neurosim.traces`. Both open a file through :func:`_open`, which refuses anything that
is not a neurosim trace file of a version this package reads.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import h5py
import numpy as np

from .layout import (FORMAT, FORMAT_VERSION, FULL_PRECISION, GROUPS, SONATA_VERSION, TREES,
                     TraceError, Traces, key_of, to_str)

__all__ = ["load", "inspect"]


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
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise _damaged(path, e) from None
    try:
        fmt = to_str(f.attrs.get("format", ""))
        if fmt != FORMAT:
            raise TraceError("%r is not a neurosim trace file: the root attribute 'format' is "
                             "%r, expected %r" % (path, fmt or None, FORMAT))
        version = int(f.attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise TraceError("%r has trace format version %d; this neurosim reads up to %d: "
                             "upgrade neurosim" % (path, version, FORMAT_VERSION))
        yield f
    except (OSError, KeyError, RuntimeError) as e:  # a damaged object inside the file
        raise _damaged(path, e) from None
    finally:
        f.close()


def _damaged(path, err):
    """The one-line :class:`TraceError` of an HDF5 file that cannot be read."""
    detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return TraceError("%r cannot be read: the HDF5 file is truncated or damaged (%s)"
                      % (path, detail))


def _plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "OS":
            return np.array([to_str(x) for x in v.ravel()], dtype=object).reshape(v.shape)
        return v
    if isinstance(v, np.generic):
        return v.item()
    return v


def _node_attrs(obj, into):
    a = {k: _plain(v) for k, v in obj.attrs.items() if k != "key"}
    if a:
        into[obj.name.lstrip("/")] = a


def _read_tree(group, attrs=None):
    """The nested dict below ``group``; with ``attrs`` (a dict) the attributes of the group
    and of everything below it are collected there by HDF5 path."""
    out = {}
    if attrs is not None:
        _node_attrs(group, attrs)
    for obj in group.values():
        if isinstance(obj, h5py.Group):
            out[key_of(obj)] = _read_tree(obj, attrs)
        else:
            out[key_of(obj)] = _plain(obj[()])
            if attrs is not None:
                _node_attrs(obj, attrs)
    return out


def _read_cost(g, attrs):
    out = _read_tree(g, attrs)
    top = {k: _plain(v) for k, v in g.attrs.items() if k != "key"}
    out["attrs"] = top
    out["table"] = {k: v for k, v in top.items()
                    if not k.startswith("model_") and k != "description"}
    out["model"] = {k[len("model_"):]: v for k, v in top.items() if k.startswith("model_")}
    return out


def _read_report(g):
    m = g["mapping"]
    data = g[FULL_PRECISION if FULL_PRECISION in g else "data"][()]
    node_ids = m["node_ids"][()]
    start, stop, step = (float(x) for x in m["time"][()])
    T, n = data.shape[0], len(node_ids)
    if to_str(g.attrs.get("layout", "time,neuron")) == "time,example,neuron":
        batch = int(g.attrs["n_examples"])
        data = np.ascontiguousarray(data.reshape(T, n, batch).transpose(0, 2, 1))
    return {"data": data, "time": start + step * np.arange(T), "node_ids": node_ids,
            "element_ids": m["element_ids"][()], "index_pointers": m["index_pointers"][()],
            "start": start, "stop": stop, "dt": step, "units": to_str(g["data"].attrs["units"]),
            "time_units": to_str(m["time"].attrs["units"]),
            **({"variable": to_str(g.attrs["variable"])} if "variable" in g.attrs else {})}


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
            t.reports[key_of(g)] = _read_report(g)
        for g in f.get("spikes", {}).values():
            t.spikes[key_of(g)] = {"timestamps": g["timestamps"][()], "node_ids": g["node_ids"][()],
                                 "units": to_str(g["timestamps"].attrs["units"]),
                                 "sorting": _sorting(g)}
        if "phases" in f:
            g = f["phases"]
            names = [to_str(x) for x in g["name"][()]]
            t.phases = [{"name": nm, "start": float(a), "stop": float(b), "beta": float(c)}
                        for nm, a, b, c in zip(names, g["start"][()], g["stop"][()],
                                               g["beta"][()])]
        for name in TREES:
            if name in f:
                read = _read_cost if name == "cost" else _read_tree
                setattr(t, name, read(f[name], t.node_attrs))
        for g in f.values():
            if isinstance(g, h5py.Group) and g.name[1:] not in GROUPS:
                t.groups[key_of(g)] = _read_tree(g, t.node_attrs)
            elif isinstance(g, h5py.Dataset) and g.name[1:] not in GROUPS:
                t.groups[key_of(g)] = _plain(g[()])
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
                        to_str(a.get("created", "?"))))
        lines.append("written by neurosim %s with numpy %s, h5py %s (HDF5 %s), scipy %s, "
                     "python %s" % tuple(to_str(a.get(k, "?")) for k in (
                         "neurosim_version", "numpy_version", "h5py_version", "hdf5_version",
                         "scipy_version", "python_version")))
        if "circuit" in a:
            lines.append("circuit: %d lines of TOML" % len(to_str(a["circuit"]).splitlines()))
        if "report" in f:
            rep = f["report"]
            lines.append("reports: %d population(s)" % len(rep))
            for g in rep.values():
                t0, t1, step = g["mapping/time"][()]
                n = g["mapping/node_ids"].shape[0]
                batch = int(g.attrs.get("n_examples", 1))
                shape = "%d neurons" % n + (" x %d examples" % batch
                                           if to_str(g.attrs.get("layout", "")) ==
                                           "time,example,neuron" else "")
                lines.append("  %-10s %d time steps x %s, t in [%s, %s) step %s %s, units %s"
                             % (key_of(g), g["data"].shape[0], shape, _fmt(float(t0)),
                                _fmt(float(t1)), _fmt(float(step)),
                                to_str(g["mapping/time"].attrs["units"]),
                                to_str(g["data"].attrs["units"])))
        if "spikes" in f:
            lines.append("spikes: " + ", ".join(
                "%s %d spikes" % (key_of(g), g["timestamps"].shape[0]) for g in f["spikes"].values()))
        if "phases" in f:
            g = f["phases"]
            lines.append("phases: " + ", ".join(
                "%s [%s, %s) beta=%s" % (to_str(nm), _fmt(float(s)), _fmt(float(e)), _fmt(float(b)))
                for nm, s, e, b in zip(g["name"][()], g["start"][()], g["stop"][()],
                                       g["beta"][()])))
        if "weights" in f:
            lines.append("weights: %s" % ", ".join(key_of(o) for o in f["weights"].values()))
        if "gradients" in f:
            lines.append("gradients: %s" % ", ".join(
                "%s (%d params)" % (key_of(o), len(o)) for o in f["gradients"].values()))
        if "training" in f and len(f["training"]):
            tr = f["training"]
            n_ep = next(iter(tr.values())).shape[0]
            final = ["%s %s" % (key_of(d), _fmt(_plain(d[n_ep - 1])))
                     for d in tr.values() if d.ndim == 1 and n_ep]
            lines.append("training: %d epochs; final: %s" % (n_ep, ", ".join(final) or "-"))
        if "fidelity" in f:
            top = ["%s %s" % (key_of(d), _fmt(_plain(d[()]))) for d in f["fidelity"].values()
                   if isinstance(d, h5py.Dataset) and d.ndim == 0]
            lines.append("fidelity: %s" % (", ".join(top) or ", ".join(
                key_of(o) for o in f["fidelity"].values())))
        if "cost" in f:
            lines.append("cost: " + _cost_line(f["cost"]))
        other = [o for o in f.values() if o.name[1:] not in GROUPS]
        if other:
            lines.append("groups: " + ", ".join(
                "%s (%d)" % (key_of(o), len(o)) if isinstance(o, h5py.Group) else key_of(o)
                for o in other))
        lines.append("")
        lines.append("tree:")

        _tree_lines(f, 1, lines)
    return "\n".join(lines)


def _cost_line(g):
    parts = []
    for label, where in (("per example", "per_example/total"), ("per epoch", "per_epoch/total")):
        if where + "/energy_uj" in g and where + "/latency_us" in g:
            e, lat = g[where + "/energy_uj"][()], g[where + "/latency_us"][()]
            e, lat = (float(np.mean(v)) for v in (e, lat))
            parts.append("%s %s uJ, %s us" % (label, _fmt(e), _fmt(lat)))
    kind = g.attrs.get("model_kind", g.attrs.get("model_engine"))   # older files: engine
    if kind is not None:
        parts.append("table of a %s crossbar" % to_str(kind))
    if "model_kind" in g.attrs and "model_engine" in g.attrs:
        parts.append("%s engine" % to_str(g.attrs["model_engine"]))
    if "model_epochs" in g.attrs:
        parts.append("%d epoch(s)" % int(g.attrs["model_epochs"]))
    return ", ".join(parts) or ", ".join(key_of(o) for o in g.values())


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
            extra.append("units=%s" % to_str(obj.attrs["units"]))
        dtype = "str" if h5py.check_string_dtype(obj.dtype) else str(obj.dtype)
        lines.append("  " * depth + "%s  %s %s%s" % (
            label, dtype, obj.shape, ("  " + " ".join(extra)) if extra else ""))
