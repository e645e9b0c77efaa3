"""NWB export of a neurosim trace file (optional extra ``nwb``: pynwb)."""
from __future__ import annotations

import datetime as _dt
import os
import uuid

import h5py
import numpy as np

from ..atomic import atomic_path
from ..errors import MissingDependencyError
from .layout import TraceError, target_path, to_str
from .reader import load

_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def to_nwb(h5_path, nwb_path, *, session_description=None, identifier=None,
           session_start_time=None, validate=True):
    """Export a trace file to NWB (needs pynwb: ``pip install "neurosim[nwb]"``).

    Reports become ``TimeSeries`` (one per population, data ``(time, n)`` or
    ``(time, batch, n)``) in the processing module ``neurosim``; spikes become the ``Units``
    table (one unit per spiking node, columns ``population`` and ``node_id``); phases become
    epochs tagged with their name (column ``beta``); per-epoch training metrics go to scratch.
    Times in "ms"/"s"/"us" are converted to seconds; dimensionless times ("tau", "step") are
    written as they are, so a rate of ``1/dt`` means frames per unit of tau (said in each
    series' ``comments``). The circuit text goes to ``notes``. Weights, gradients and
    fidelity stay in the HDF5 file. The NWB file is written atomically and, with
    ``validate=True``, checked with ``pynwb.validate``.
    """
    try:
        import pynwb
        from pynwb import NWBHDF5IO, NWBFile, ProcessingModule, TimeSeries
    except ImportError:
        raise MissingDependencyError(
            'cannot export %s to NWB: pynwb is not installed; pip install pynwb (or pip '
            'install "neurosim[nwb]"; from a clone of neurosim: pip install ".[nwb]")'
            % os.fspath(h5_path)) from None
    t = load(h5_path)
    if session_start_time is None:
        try:
            session_start_time = _dt.datetime.fromisoformat(t.attrs["created"])
        except (KeyError, ValueError, TypeError):
            session_start_time = _dt.datetime.now(_dt.timezone.utc)
    if session_start_time.tzinfo is None:
        raise TraceError("session_start_time: must be timezone-aware (e.g. "
                         "datetime.now(timezone.utc))")
    nwb = NWBFile(session_description=session_description or
                  "neurosim traces from %s" % os.path.basename(os.fspath(h5_path)),
                  identifier=identifier or str(uuid.uuid4()),
                  session_start_time=session_start_time,
                  notes=t.circuit or None,
                  was_generated_by=[[k, v] for k, v in t.versions.items()])

    def seconds(units):
        return _SECONDS.get(units, 1.0)

    if t.reports:
        mod = ProcessingModule(name="neurosim", description="neural activity traces (SONATA "
                               "reports of the neurosim trace file)")
        nwb.add_processing_module(mod)
        for pop, r in t.reports.items():
            scale = seconds(r["time_units"])
            note = "time in %s" % r["time_units"] + (
                "" if r["time_units"] in _SECONDS else
                " (dimensionless), written as seconds: rate = frames per %s" % r["time_units"])
            mod.add(TimeSeries(name=_nwb_name(pop), data=r["data"], unit=r["units"],
                               starting_time=r["start"] * scale, rate=1.0 / (r["dt"] * scale),
                               comments=note + _node_note(r["node_ids"]),
                               description="population %s, data %s" % (
                                   pop, "(time, batch, neuron)" if r["data"].ndim == 3
                                   else "(time, neuron)")))
    if t.spikes:
        nwb.add_unit_column(name="population", description="neurosim population")
        nwb.add_unit_column(name="node_id", description="SONATA node id in the population")
        for pop, s in t.spikes.items():
            scale = seconds(s["units"])
            order = np.lexsort((s["timestamps"], s["node_ids"]))
            ids, times = s["node_ids"][order], s["timestamps"][order] * scale
            cuts = np.flatnonzero(np.diff(ids)) + 1
            for nid, part in zip(ids[np.r_[0, cuts]] if len(ids) else [], np.split(times, cuts)):
                nwb.add_unit(spike_times=part, population=pop, node_id=int(nid))
    if t.phases:
        nwb.add_epoch_column(name="beta", description="nudging strength of the phase")
        scale = seconds(_phase_units(h5_path))
        for ph in t.phases:
            nwb.add_epoch(start_time=ph["start"] * scale, stop_time=ph["stop"] * scale,
                          tags=[ph["name"]], beta=ph["beta"])
    for k, v in t.training.items():
        nwb.add_scratch(np.asarray(v), name="training_" + _nwb_name(k),
                        description="per-epoch training metric %s" % k)
    with atomic_path(target_path(nwb_path, "nwb_path")) as tmp:
        with NWBHDF5IO(tmp, "w") as io:
            io.write(nwb)
        if validate:
            errors = pynwb.validate(path=tmp)
            if errors:
                raise TraceError("nwb_path: the exported file does not validate: %s"
                                 % "; ".join(str(e) for e in errors[:5]))
    return os.fspath(nwb_path)


def _nwb_name(key):
    """NWB names may not contain '/' or ':': percent-encode them (and '%')."""
    return key.replace("%", "%25").replace("/", "%2F").replace(":", "%3A")


def _node_note(node_ids):
    if np.array_equal(node_ids, np.arange(len(node_ids))):
        return "; node_ids 0..%d" % (len(node_ids) - 1)
    return "; node_ids %s" % " ".join(str(int(i)) for i in node_ids)


def _phase_units(path):
    with h5py.File(path, "r") as f:
        return to_str(f["phases/start"].attrs.get("units", "tau"))
