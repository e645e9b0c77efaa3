"""The writer of HDF5 trace files: :func:`write`, one function for everything neurosim writes
(run traces, ``theorem.h5``, ``fidelity.h5``, the cost group). The layout is in
:mod:`neurosim.traces.layout`; every input is validated and made plain numpy before the file
is opened, and the file is written through :func:`neurosim.atomic.atomic_path`.
"""
from __future__ import annotations

import datetime as _dt
import math
import numbers
import platform
from importlib import metadata as _metadata

import h5py
import numpy as np

from ..atomic import atomic_path
from .layout import (COST_DESCRIPTION, COST_INTEGERS, COST_UNITS, FORMAT, FORMAT_VERSION,
                     FULL_PRECISION, GROUPS, RESERVED_ATTRS, SONATA_MAGIC, SONATA_VERSION, SORTING,
                     VERSION_PACKAGES, TraceError, Traces, escape, target_path)

_GZIP = dict(compression="gzip", compression_opts=4)

__all__ = ["write", "write_cost_group", "Traces", "TraceError", "FORMAT", "FORMAT_VERSION"]


def _where(field_name, *keys):
    return field_name + "".join("[%r]" % k for k in keys)


# -- validation: every input becomes plain numpy before the file is opened -------------------
def _array(value, where, kinds="biuf"):
    try:
        arr = np.asarray(value)
    except Exception as e:  # ragged lists and the like
        raise TraceError("%s: cannot be read as an array (%s)" % (where, e)) from None
    if arr.dtype.kind not in kinds:
        raise TraceError("%s: expected numbers, got dtype %s" % (where, arr.dtype))
    return arr


def _finite_number(value, where):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TraceError("%s: expected a finite number, got %r" % (where, value))
    return float(value)


def _ids(value, n, where):
    arr = _array(value, where, "iuf")
    if arr.shape != (n,):
        raise TraceError("%s: expected %d ids, got shape %s" % (where, n, arr.shape))
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise TraceError("%s: ids must be integers" % where)
    if n and arr.min() < 0:
        raise TraceError("%s: ids must be non-negative, got %s" % (where, arr.min()))
    return arr.astype(np.uint64)


def _prepare_report(pop, value, dt, time_units):
    where = _where("reports", pop)
    escape(pop, "reports")
    spec = dict(value) if isinstance(value, dict) else {"data": value}
    unknown = set(spec) - {"data", "node_ids", "start", "dt", "units", "time_units", "variable",
                           "time", "stop", "element_ids", "index_pointers"}
    if unknown or "data" not in spec:
        raise TraceError("%s: expected an array or a dict with 'data' (and optionally node_ids, "
                         "start, dt, units, time_units, variable); got keys %s"
                         % (where, sorted(spec)))
    data = _array(spec["data"], where + ".data")
    if data.ndim not in (2, 3):
        raise TraceError("%s: data must be 2-D (time, neurons) or 3-D (time, batch, neurons), "
                         "got shape %s" % (where, data.shape))
    if data.shape[0] == 0 or data.shape[-1] == 0 or data.size == 0:
        raise TraceError("%s: data has no time steps, neurons or examples (shape %s)"
                         % (where, data.shape))
    if data.dtype.kind != "f":
        data = data.astype(np.float64)
    bad = ~np.isfinite(data)
    if bad.any():
        raise TraceError("%s: data must be finite; %d non-finite values, the first at index %s"
                         % (where, int(bad.sum()), tuple(int(i) for i in np.argwhere(bad)[0])))
    T, n = data.shape[0], data.shape[-1]
    batch = data.shape[1] if data.ndim == 3 else 1
    node_ids = spec.get("node_ids")
    node_ids = np.arange(n, dtype=np.uint64) if node_ids is None else \
        _ids(node_ids, n, where + ".node_ids")
    if len(np.unique(node_ids)) != n:
        raise TraceError("%s.node_ids: ids must be unique" % where)
    step = _finite_number(spec.get("dt", dt), where + ".dt")
    if step <= 0:
        raise TraceError("%s.dt: must be positive, got %r" % (where, step))
    start = _finite_number(spec.get("start", 0.0), where + ".start")
    out = {"pop": pop, "n": n, "batch": batch, "layout":
           "time,example,neuron" if data.ndim == 3 else "time,neuron",
           "data": data.transpose(0, 2, 1).reshape(T, n * batch) if data.ndim == 3 else data,
           "node_ids": node_ids, "start": start, "dt": step, "stop": start + T * step}
    for k, default in (("units", "dimensionless"), ("time_units", time_units),
                       ("variable", None)):
        v = spec.get(k, default)
        if v is not None and not isinstance(v, str):
            raise TraceError("%s.%s: expected a string, got %r" % (where, k, v))
        out[k] = v
    return out


def _prepare_spikes(pop, value, time_units):
    where = _where("spikes", pop)
    escape(pop, "spikes")
    units = time_units
    if isinstance(value, dict):
        if "timestamps" not in value or "node_ids" not in value:
            raise TraceError("%s: expected (timestamps, node_ids) or a dict with 'timestamps' "
                             "and 'node_ids'" % where)
        ts, ids, units = value["timestamps"], value["node_ids"], value.get("units", time_units)
    else:
        try:
            ts, ids = value
        except (TypeError, ValueError):
            raise TraceError("%s: expected a pair (timestamps, node_ids)" % where) from None
    ts = _array(ts, where + ".timestamps", "iuf").astype(np.float64)
    if ts.ndim != 1:
        raise TraceError("%s.timestamps: expected a 1-D array, got shape %s" % (where, ts.shape))
    ids_arr = np.asarray(ids)
    if ids_arr.ndim != 1 or len(ids_arr) != len(ts):
        raise TraceError("%s: timestamps has %d entries but node_ids has shape %s; they must be "
                         "1-D and of the same length" % (where, len(ts), ids_arr.shape))
    ids_arr = _ids(ids_arr, len(ts), where + ".node_ids")
    if not np.all(np.isfinite(ts)):
        raise TraceError("%s.timestamps: must be finite" % where)
    if not isinstance(units, str):
        raise TraceError("%s.units: expected a string, got %r" % (where, units))
    order = np.argsort(ts, kind="stable")
    return {"pop": pop, "timestamps": ts[order], "node_ids": ids_arr[order], "units": units}


def _prepare_phases(phases):
    if isinstance(phases, dict) or isinstance(phases, (str, bytes)):
        raise TraceError("phases: expected a list of dicts with name, start, stop, beta")
    rows = []
    for i, ph in enumerate(phases):
        where = "phases[%d]" % i
        if isinstance(ph, dict):
            missing = {"name", "start", "stop", "beta"} - set(ph)
            if missing:
                raise TraceError("%s: missing %s" % (where, ", ".join(sorted(missing))))
            name, start, stop, beta = ph["name"], ph["start"], ph["stop"], ph["beta"]
        else:
            try:
                name, start, stop, beta = ph
            except (TypeError, ValueError):
                raise TraceError("%s: expected a dict (name, start, stop, beta) or a 4-tuple"
                                 % where) from None
        if not isinstance(name, str) or not name:
            raise TraceError("%s.name: expected a non-empty string, got %r" % (where, name))
        start = _finite_number(start, where + ".start")
        stop = _finite_number(stop, where + ".stop")
        beta = _finite_number(beta, where + ".beta")
        if stop < start:
            raise TraceError("%s: stop (%r) is before start (%r)" % (where, stop, start))
        rows.append((name, start, stop, beta))
    return rows


def _prepare_value(value, where):
    if isinstance(value, dict):
        return {k: _prepare_value(v, _where(where, k)) for k, v in _checked_keys(value, where)}
    if value is None:
        raise TraceError("%s: None cannot be stored" % where)
    if isinstance(value, str):
        return value
    arr = _array(value, where, "biufUS")
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    return arr


def _checked_keys(mapping, where):
    if not isinstance(mapping, dict):
        raise TraceError("%s: expected a dict, got %s" % (where, type(mapping).__name__))
    for k in mapping:
        escape(k, where)
    return mapping.items()


def _prepare_numeric_tree(mapping, where, depth):
    """``{key: array}`` (``depth`` levels of dicts above the arrays may be nested further)."""
    out = {}
    for k, v in _checked_keys(mapping, where):
        w = _where(where, k)
        if isinstance(v, dict):
            out[k] = _prepare_numeric_tree(v, w, depth - 1)
        elif depth > 1:
            raise TraceError("%s: expected a dict {param key: array}, got %s"
                             % (w, type(v).__name__))
        else:
            out[k] = _array(v, w)
    return out


def _prepare_training(training):
    out, n = {}, None
    for k, v in _checked_keys(training, "training"):
        w = _where("training", k)
        arr = _array(v, w)
        if arr.ndim == 0:
            raise TraceError("%s: expected a per-epoch array, got a scalar" % w)
        if n is not None and arr.shape[0] != n[1]:
            raise TraceError("%s: has %d epochs but training[%r] has %d; every training metric "
                             "needs one entry per epoch" % (w, arr.shape[0], n[0], n[1]))
        n = n or (k, arr.shape[0])
        out[k] = arr
    return out


def _attr_value(v, where):
    if isinstance(v, dict) or v is None:
        raise TraceError("%s: attributes are strings, numbers or flat arrays; put nested "
                         "data in a group (fidelity, groups)" % where)
    return v if isinstance(v, str) else _array(v, where, "biufUS")


def _prepare_attrs(attrs, where="attrs", reserved=RESERVED_ATTRS):
    out = {}
    for k, v in _checked_keys(attrs, where):
        w = _where(where, k)
        if k in reserved:
            raise TraceError("%s: the name is reserved (%s)" % (w, ", ".join(reserved)))
        out[k] = _attr_value(v, w)
    return out


def _prepare_groups(groups):
    out = {}
    for name, tree in _checked_keys(groups, "groups"):
        w = _where("groups", name)
        if name in GROUPS:
            raise TraceError("%s: %r is one of the file's own groups (%s); pass it as "
                             "write(%s=...)" % (w, name, ", ".join(GROUPS),
                                                "reports" if name == "report" else name))
        tree = _prepare_value(tree, w)
        if not isinstance(tree, dict):
            raise TraceError("%s: expected a dict of numbers, strings and arrays" % w)
        out[name] = tree
    return out


def _prepare_cost(report, where="cost"):
    """The cost report (:meth:`neurosim.hardware.cost.CostModel.report`) as the tree of the
    ``/cost`` group and the attributes of its nodes (``{hdf5 path: attrs}``)."""
    if not isinstance(report, dict):
        raise TraceError("%s: expected the cost report (a dict), got %s"
                         % (where, type(report).__name__))
    missing = {"per_example", "by_epoch", "table", "model"} - set(report)
    if missing:
        raise TraceError("%s: expected the cost report of neurosim.hardware.cost (per_example, "
                         "by_epoch, table, model); missing %s"
                         % (where, ", ".join(sorted(missing))))
    top = dict(_checked_keys(report["table"], _where(where, "table")))
    top.update({"model_" + k: v for k, v in _checked_keys(report["model"],
                                                        _where(where, "model"))})
    top["description"] = COST_DESCRIPTION
    node = {"cost": _prepare_attrs(top, where + ".attrs", reserved=("key",))}

    def tree(d, w, path):
        out = {}
        for k, v in _checked_keys(d, w):
            wk, pk = _where(w, k), path + "/" + escape(k, w)
            if isinstance(v, dict):
                out[k] = tree(v, wk, pk)
                if k == "energy_by_op_pj":
                    node[pk] = {"units": "pJ"}
            else:
                out[k] = _array(v, wk, "biuf").astype(np.int64 if k in COST_INTEGERS
                                                      else np.float64)
                if k in COST_UNITS:
                    node[pk] = {"units": COST_UNITS[k]}
        return out

    return {"per_example": tree(report["per_example"], _where(where, "per_example"),
                                "cost/per_example"),
            "per_epoch": tree(report["by_epoch"], _where(where, "by_epoch"),
                              "cost/per_epoch")}, node


def _tree_paths(tree, prefix, out):
    out.add(prefix)
    if isinstance(tree, dict):
        for k, v in tree.items():
            _tree_paths(v, prefix + "/" + escape(k, prefix), out)
    return out


def _prepare_node_attrs(node_attrs, plan):
    """``{path: {name: value}}`` -> ``{hdf5 path: attrs}``; every path names a group or
    dataset of the nested groups this call writes."""
    if not isinstance(node_attrs, dict):
        raise TraceError("node_attrs: expected a dict {path: {name: value}}, got %s"
                         % type(node_attrs).__name__)
    known = set()
    for name in ("weights", "gradients", "fidelity", "training", "cost"):
        if plan[name] is not None:
            _tree_paths(plan[name], name, known)
    for name, tree in (plan["groups"] or {}).items():
        _tree_paths(tree, escape(name, "groups"), known)
    out = {}
    for path, attrs in node_attrs.items():
        where = "node_attrs[%r]" % (path,)
        if isinstance(path, tuple) and path:
            h5 = "/".join(escape(k, where) for k in path)
        elif isinstance(path, str) and path.strip("/"):
            h5 = path.strip("/")
        else:
            raise TraceError("%s: expected an HDF5 path (\"second_phase/0\") or a tuple of "
                             "keys" % where)
        if h5 not in known:
            raise TraceError("%s: no such group or dataset among those written (weights, "
                             "gradients, fidelity, training, cost, groups)" % where)
        out.setdefault(h5, {}).update(_prepare_attrs(attrs, where, reserved=("key",)))
    return out


def _versions():
    out = {}
    for p in VERSION_PACKAGES:
        try:
            out[p + "_version"] = _metadata.version(p)
        except _metadata.PackageNotFoundError:
            out[p + "_version"] = "not installed"
    out["python_version"] = platform.python_version()
    out["hdf5_version"] = h5py.version.hdf5_version
    return out


# -- writing ----------------------------------------------------------------------------------
def _dataset(group, name, data, chunks=True):
    """A dataset: chunked and gzip-compressed unless 0-d."""
    if isinstance(data, str):
        return group.create_dataset(name, data=data, dtype=h5py.string_dtype())
    data = np.asarray(data)
    if data.dtype == object:
        return group.create_dataset(name, data=data, dtype=h5py.string_dtype(), chunks=chunks,
                                    **_GZIP)
    if data.ndim == 0:
        return group.create_dataset(name, data=data)
    return group.create_dataset(name, data=data, chunks=chunks, shuffle=True, **_GZIP)


def _plain(group, name, data):
    """A contiguous dataset without filters: what SONATA readers built without HDF5's deflate
    filter (libsonata's wheels) can read."""
    return group.create_dataset(name, data=np.asarray(data))


def _report_chunks(shape):
    """Chunks of at most 64k values: whole frames of up to 1024 columns."""
    T, cols = shape
    c = min(cols, 1024)
    return (max(1, min(T, 65536 // c)), c)


def _group(parent, key, where):
    """A subgroup named by ``key`` (escaped; the key kept in attribute ``key`` if changed)."""
    name = escape(key, where)
    g = parent.create_group(name, track_order=True)
    if name != key:
        g.attrs["key"] = key
    return g


def _write_tree(group, tree):
    for k, v in tree.items():
        if isinstance(v, dict):
            _write_tree(_group(group, k, group.name), v)
        else:
            name = escape(k, group.name)
            obj = _dataset(group, name, v)
            if name != k:
                obj.attrs["key"] = k


def _write_reports(f, reports):
    root = f.create_group("report", track_order=True)
    for r in reports:
        g = _group(root, r["pop"], "reports")
        g.attrs["layout"] = r["layout"]
        g.attrs["n_examples"] = np.int64(r["batch"])
        if r["variable"] is not None:
            g.attrs["variable"] = r["variable"]
        data = r["data"]
        single = data.astype(np.float32)            # SONATA's report data type
        d = _plain(g, "data", single)
        d.attrs["units"] = r["units"]
        if not np.array_equal(single, data):        # the values as written, beside it
            full = _dataset(g, FULL_PRECISION, data.astype(np.float64),
                            chunks=_report_chunks(data.shape))
            full.attrs["units"] = r["units"]
        m = g.create_group("mapping", track_order=True)
        ids = _plain(m, "node_ids", r["node_ids"])
        ids.attrs["sorted"] = np.int8(bool(np.all(np.diff(r["node_ids"].astype(np.int64)) > 0)))
        _plain(m, "index_pointers", np.arange(r["n"] + 1, dtype=np.uint64) * r["batch"])
        _plain(m, "element_ids", np.tile(np.arange(r["batch"], dtype=np.uint32), r["n"]))
        t = _plain(m, "time", np.array([r["start"], r["stop"], r["dt"]], dtype=np.float64))
        t.attrs["units"] = r["time_units"]


def _write_spikes(f, spikes):
    root = f.create_group("spikes", track_order=True)
    for s in spikes:
        g = _group(root, s["pop"], "spikes")
        g.attrs.create("sorting", 2, dtype=SORTING)
        _plain(g, "timestamps", s["timestamps"]).attrs["units"] = s["units"]
        _plain(g, "node_ids", s["node_ids"])


def _write_phases(f, rows, time_units):
    g = f.create_group("phases", track_order=True)
    _dataset(g, "name", np.array([r[0] for r in rows], dtype=object))
    for i, col in enumerate(("start", "stop", "beta"), start=1):
        d = _dataset(g, col, np.array([r[i] for r in rows], dtype=np.float64))
        if col != "beta":
            d.attrs["units"] = time_units


def _write_group(f, name, tree):
    _write_tree(_group(f, name, "groups"), tree)


def _set_attr(obj, name, value):
    if isinstance(value, np.ndarray) and value.dtype.kind in "US":
        value = value.astype(h5py.string_dtype())
    obj.attrs[name] = value


def write(path, *, reports=None, spikes=None, phases=None, weights=None, gradients=None,
          fidelity=None, training=None, cost=None, groups=None, node_attrs=None, circuit=None,
          attrs=None, dt=1.0, time_units="tau", extra=()):
    """Write a trace file (SONATA reports and spikes plus neurosim groups), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The target file. Its directory must exist. The file is written under a temporary
        name in that directory and renamed at the end (:func:`neurosim.atomic.atomic_path`);
        on any error nothing is left behind and a file already at ``path`` is untouched.
    reports : dict, optional
        ``{population: array}`` with arrays ``(time, n)`` or ``(time, batch, n)`` (all examples
        are kept, see :mod:`neurosim.traces.layout`), finite. A value may also be a dict with
        ``data`` and optional ``node_ids`` (default ``0..n-1``), ``start`` (default 0), ``dt``,
        ``units`` (default "dimensionless"), ``time_units``, ``variable``.
    spikes : dict, optional
        ``{population: (timestamps, node_ids)}`` (or a dict with those keys and ``units``);
        stored sorted by time (stable), ``sorting = by_time``.
    phases : list, optional
        Dicts (or 4-tuples) ``name, start, stop, beta``, e.g. free / nudged+ / nudged-.
    weights : dict, optional
        ``{projection key: array}`` (dicts may nest, e.g. snapshots per epoch).
    gradients : dict, optional
        ``{method: {param key: array}}``, e.g. ``{"ep": ..., "rbp": ..., "bptt": ...}``.
    fidelity : dict, optional
        Nested dicts of numbers, strings and arrays (numbers become 0-d datasets).
    training : dict, optional
        ``{metric: array}``, one entry per epoch (leading axis) for every metric.
    cost : dict, optional
        The cost report (:meth:`neurosim.hardware.cost.CostModel.report`), stored as the
        ``/cost`` group: ``per_example/<phase>/<count>`` (numbers), ``per_epoch/...`` (the
        report's ``by_epoch`` lists), units on the datasets, the table and the model
        settings (``model_<name>``) as attributes of ``/cost``.
    groups : dict, optional
        Further root groups, ``{name: nested dict of numbers, strings and arrays}`` (as
        ``fidelity``), e.g. ``theorem.h5``'s ``side_network``; the names of the groups above
        (report, spikes, phases, weights, gradients, fidelity, training, cost) are refused.
    node_attrs : dict, optional
        Attributes of groups and datasets written by this call inside ``weights``,
        ``gradients``, ``fidelity``, ``training``, ``cost`` or ``groups``:
        ``{path: {name: value}}`` with ``path`` the HDF5 path (``"second_phase/0"``, keys
        percent-encoded as in the file) or a tuple of keys (``("second_phase", "0")``);
        values as for ``attrs``.
    circuit : str, optional
        The circuit file (TOML text), stored as the root attribute ``circuit``.
    attrs : dict, optional
        Extra root attributes (strings, numbers, flat arrays); reserved names are refused.
    dt, time_units : float, str
        The report frame interval and the unit of every time (reports, spikes, phases):
        "tau" or "step" for the dimensionless reference engine, "ms" for Brian2 runs.
    extra : sequence of callables, optional
        Each is called with the open ``h5py.File`` after everything above is written, to add
        groups of its own inside the same atomic write. (Kept for callers that predate
        ``cost=`` and ``groups=``; what they write is read back only if it follows the layout.)

    Returns
    -------
    str
        ``path``.
    """
    if not isinstance(time_units, str) or not time_units:
        raise TraceError("time_units: expected a non-empty string, got %r" % (time_units,))
    dt = _finite_number(dt, "dt")
    if dt <= 0:
        raise TraceError("dt: must be positive, got %r" % dt)
    if circuit is not None and not isinstance(circuit, str):
        raise TraceError("circuit: expected the circuit file as text (str), got %s"
                         % type(circuit).__name__)
    plan = {
        "reports": [_prepare_report(p, v, dt, time_units)
                    for p, v in _checked_keys(reports, "reports")] if reports is not None else None,
        "spikes": [_prepare_spikes(p, v, time_units)
                   for p, v in _checked_keys(spikes, "spikes")] if spikes is not None else None,
        "phases": _prepare_phases(phases) if phases is not None else None,
        "weights": _prepare_numeric_tree(weights, "weights", 1) if weights is not None else None,
        "gradients": (_prepare_numeric_tree(gradients, "gradients", 2)
                      if gradients is not None else None),
        "fidelity": (_prepare_value(fidelity, "fidelity") if fidelity is not None else None),
        "training": _prepare_training(training) if training is not None else None,
        "cost": None, "groups": _prepare_groups(groups) if groups is not None else None,
        "node_attrs": {},
    }
    if plan["fidelity"] is not None and not isinstance(plan["fidelity"], dict):
        raise TraceError("fidelity: expected a dict of metrics")
    if cost is not None:
        plan["cost"], plan["node_attrs"] = _prepare_cost(cost)
    if node_attrs is not None:
        for h5, a in _prepare_node_attrs(node_attrs, plan).items():
            plan["node_attrs"].setdefault(h5, {}).update(a)
    user = _prepare_attrs(attrs) if attrs is not None else {}
    target = target_path(path)
    with atomic_path(target) as tmp:
        with h5py.File(tmp, "x", track_order=True) as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            f.attrs["magic"] = np.uint32(SONATA_MAGIC)
            f.attrs["version"] = np.array(SONATA_VERSION, dtype=np.uint32)
            f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            for k, v in _versions().items():
                f.attrs[k] = v
            if circuit is not None:
                f.attrs["circuit"] = circuit
            for k, v in user.items():
                _set_attr(f, k, v)
            _write_all(f, plan, time_units)
            for add in extra:
                add(f)
    return target


def _write_all(f, plan, time_units):
    if plan["reports"] is not None:
        _write_reports(f, plan["reports"])
    if plan["spikes"] is not None:
        _write_spikes(f, plan["spikes"])
    if plan["phases"] is not None:
        _write_phases(f, plan["phases"], time_units)
    for name in ("weights", "gradients", "fidelity", "training", "cost"):
        if plan[name] is not None:
            _write_group(f, name, plan[name])
    for name, tree in (plan["groups"] or {}).items():
        _write_group(f, name, tree)
    for h5, attrs in plan["node_attrs"].items():
        for k, v in attrs.items():
            _set_attr(f[h5], k, v)


def write_cost_group(f, report):
    """Write the ``/cost`` group of ``report`` (as :func:`write` with ``cost=``) into the open
    h5py file ``f``, replacing one already there."""
    tree, node = _prepare_cost(report)
    if "cost" in f:
        del f["cost"]
    _write_group(f, "cost", tree)
    for h5, attrs in node.items():
        for k, v in attrs.items():
            _set_attr(f[h5], k, v)
    return f["cost"]
