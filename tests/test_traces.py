"""HDF5 trace files (neurosim.traces): round trip, SONATA structure, compression, atomic
writes, errors that name the field, inspect, NWB export."""
from __future__ import annotations

import os
import sys

import h5py
import numpy as np
import pytest

import neurosim as ns
from neurosim import traces as tr
from neurosim.traces import writer as trace_writer
from neurosim.traces.nwb import to_nwb
from neurosim.traces import TraceError

CIRCUIT = '[network]\nsizes = [5, 4, 3]\nactivation = "logistic"\n'


def _engine_run():
    """Real traces from the reference engine: EP's nudged phase, EP / RBP / BPTT gradients."""
    net = ns.layered([5, 4, 3], activation="logistic", dynamics="energy", seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(3, 5)), rng.uniform(size=(3, 3))
    sp = ns.ep.second_phase(net, x, y, 1e-3, 0.1, 30)
    grads = {"ep": ns.ep.gradient(net, x, y, 1e-3, variant="symmetric"),
             "rbp": ns.rbp.gradient(net, x, y),
             "bptt": ns.rbp.gradient(net, x, y, method="bptt", steps=200)}
    return net, sp, grads


@pytest.fixture(scope="module")
def content():
    net, sp, grads = _engine_run()
    rng = np.random.default_rng(1)
    fid = ns.fidelity.compare(grads["ep"], grads["rbp"])
    fid["over_time"] = {"cosine": rng.uniform(size=30), "steps": np.arange(30)}
    fid["method"] = "symmetric"
    fid["valid"] = True
    fid["n_params"] = 4
    return dict(
        reports={"h1": sp.u["h1"],                                 # (time, batch, n)
                 "y": {"data": sp.states["y"][:, 0, :].astype(np.float32), "start": 2.5,
                       "dt": 0.5, "units": "rate", "node_ids": [7, 3, 9]}},
        spikes={"h1": (np.array([0.5, 1.0, 1.0, 2.25, 7.0]), np.array([3, 0, 2, 3, 1])),
                "y": (np.zeros(0), np.zeros(0, dtype=int))},      # a silent population
        phases=[{"name": "free", "start": 0.0, "stop": 10.0, "beta": 0.0},
                {"name": "nudged+", "start": 10.0, "stop": 20.0, "beta": 1e-3},
                {"name": "nudged-", "start": 20.0, "stop": 30.0, "beta": -1e-3}],
        weights={**net.params, "odd/key%": np.eye(2)},
        gradients=grads,
        fidelity=fid,
        training={"epoch": np.arange(4), "train_loss": np.array([0.9, 0.5, 0.3, 0.2]),
                  "test_accuracy": np.array([0.5, 0.7, 0.8, 0.85]),
                  "cosine:W:x->h1": np.array([0.99, 0.98, 0.995, 0.999]),
                  "seconds": np.array([1.5, 1.4, 1.4, 1.3])},
        circuit=CIRCUIT,
        attrs={"seed": 0, "engine": "reference", "betas": np.array([1e-3, -1e-3]),
               "tags": ["a", "b"]},
        dt=0.1,
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("traces") / "run.h5"
    assert tr.write(path, **content) == os.fspath(path)
    return path


def _assert_tree_equal(a, b, where=""):
    """Same keys, same values; arrays also the same dtype, scalars come back as Python scalars."""
    assert set(a) == set(b), where
    for k in a:
        w = where + "/" + k
        if isinstance(b[k], dict):
            _assert_tree_equal(a[k], b[k], w)
        elif isinstance(b[k], (str, bool, int, float, np.generic)):
            assert a[k] == b[k] and isinstance(a[k], (str, bool, int, float)), w
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=w)
            assert a[k].dtype == np.asarray(b[k]).dtype, w


# -- round trip -------------------------------------------------------------------------------
def test_round_trip_every_group(written, content):
    t = tr.load(written)
    u = content["reports"]["h1"]
    r = t.reports["h1"]
    assert r["data"].shape == u.shape and r["data"].dtype == np.float64
    np.testing.assert_array_equal(r["data"], u)                # exact
    np.testing.assert_array_equal(r["time"], 0.1 * np.arange(u.shape[0]))
    np.testing.assert_array_equal(r["node_ids"], np.arange(4))
    assert (r["start"], r["dt"], r["units"], r["time_units"]) == (0.0, 0.1, "dimensionless", "tau")
    assert r["stop"] == 0.1 * u.shape[0]
    y = t.reports["y"]
    np.testing.assert_array_equal(y["data"], content["reports"]["y"]["data"])
    assert y["data"].dtype == np.float32
    np.testing.assert_array_equal(y["time"], 2.5 + 0.5 * np.arange(y["data"].shape[0]))
    np.testing.assert_array_equal(y["node_ids"], [7, 3, 9])
    assert y["units"] == "rate"

    ts, ids = content["spikes"]["h1"]
    np.testing.assert_array_equal(t.spikes["h1"]["timestamps"], ts)
    np.testing.assert_array_equal(t.spikes["h1"]["node_ids"], ids)
    assert t.spikes["h1"]["sorting"] == "by_time" and t.spikes["h1"]["units"] == "tau"
    assert t.spikes["y"]["timestamps"].shape == (0,)

    assert t.phases == content["phases"]
    _assert_tree_equal(t.weights, content["weights"])
    assert "odd/key%" in t.weights and "W:x->h1" in t.weights
    _assert_tree_equal(t.gradients, content["gradients"])
    _assert_tree_equal(t.fidelity, content["fidelity"])
    assert t.fidelity["valid"] is True and t.fidelity["method"] == "symmetric"
    _assert_tree_equal(t.training, content["training"])
    assert list(t.training) == list(content["training"])       # order kept
    assert t.circuit == CIRCUIT
    assert t.attrs["seed"] == 0 and t.attrs["engine"] == "reference"
    np.testing.assert_array_equal(t.attrs["betas"], [1e-3, -1e-3])
    assert list(t.attrs["tags"]) == ["a", "b"]
    assert set(t.versions) == {"neurosim", "numpy", "h5py", "scipy", "python", "hdf5"}
    assert t.versions["neurosim"] == ns.__version__ and t.versions["numpy"] == np.__version__


def test_round_trip_of_a_2d_report_and_tuple_phases(tmp_path):
    data = np.random.default_rng(0).normal(size=(7, 5))
    path = tmp_path / "small.h5"
    tr.write(path, reports={"h": data}, phases=[("free", 0, 7, 0.0)], time_units="step")
    t = tr.load(path)
    assert t.reports["h"]["data"].shape == (7, 5)
    np.testing.assert_array_equal(t.reports["h"]["data"], data)
    np.testing.assert_array_equal(t.reports["h"]["element_ids"], np.zeros(5))
    assert t.phases == [{"name": "free", "start": 0.0, "stop": 7.0, "beta": 0.0}]
    assert t.spikes == {} and t.weights == {} and t.training == {} and t.circuit is None
    # a loaded report can be written again as it is
    tr.write(tmp_path / "again.h5", reports=t.reports)
    np.testing.assert_array_equal(tr.load(tmp_path / "again.h5").reports["h"]["data"], data)


def test_round_trip_of_snapshots_empty_phases_and_a_long_circuit(tmp_path):
    snaps = {"epoch_000": {"W:x->h1": np.ones((2, 3))}, "epoch_001": {"W:x->h1": np.zeros((2, 3))}}
    circuit = "# long\n" + "x = 1\n" * 40_000                        # > 64 KiB of text
    tr.write(tmp_path / "s.h5", weights=snaps, phases=[], circuit=circuit,
             fidelity={"names": ["W:x->h1", "b:h1"], ".": 1.5})
    t = tr.load(tmp_path / "s.h5")
    _assert_tree_equal(t.weights, snaps)
    assert t.phases == [] and t.circuit == circuit
    assert list(t.fidelity["names"]) == ["W:x->h1", "b:h1"] and t.fidelity["."] == 1.5


# -- SONATA structure -------------------------------------------------------------------------
def test_round_trip_of_generic_groups_and_node_attrs(tmp_path):
    """``groups=`` (any other root group, as theorem.h5 writes) and ``node_attrs=``
    (attributes of groups and datasets inside), read back by load and shown by inspect."""
    S = np.random.default_rng(0).normal(size=(6, 2, 3))
    groups = {"side_network": {"S": {"y": S}},
              "second_phase": {"0": {"beta": 1e-2, "u": {"y": -S}},
                               "1": {"beta": 1e-3, "u": {"y": -2 * S}}},
              "odd/name": {"label": "text", "flags": np.array([True, False])}}
    node_attrs = {"second_phase/0": {"beta": 1e-2}, ("second_phase", "1"): {"beta": 1e-3},
                  ("odd/name", "flags"): {"units": "bool"},
                  "fidelity/cosine": {"note": "vs rbp"}}
    path = tmp_path / "theorem-like.h5"
    tr.write(path, groups=groups, node_attrs=node_attrs, fidelity={"cosine": 0.5})
    t = tr.load(path)
    _assert_tree_equal(t.groups, groups)
    assert t.node_attrs == {"second_phase/0": {"beta": 1e-2}, "second_phase/1": {"beta": 1e-3},
                            "odd%2Fname/flags": {"units": "bool"},
                            "fidelity/cosine": {"note": "vs rbp"}}
    with h5py.File(path, "r") as f:
        assert f["second_phase/1"].attrs["beta"] == 1e-3
        np.testing.assert_array_equal(f["side_network/S/y"][()], S)
        assert f["odd%2Fname"].attrs["key"] == "odd/name"
    text = tr.inspect(path)
    assert "groups: side_network (1), second_phase (2), odd/name (2)" in text
    assert "second_phase/" in text and "  y  float64 (6, 2, 3)" in text


def test_sonata_report_and_spike_structure(written, content):
    u = content["reports"]["h1"]
    T, B, n = u.shape
    with h5py.File(written, "r") as f:
        assert int(f.attrs["magic"]) == 0x0A7A
        assert list(f.attrs["version"]) == [0, 1] and f.attrs["version"].dtype == np.uint32
        assert f.attrs["format"] == "neurosim-traces"
        g = f["report/h1"]
        assert g["data"].shape == (T, n * B) and g["data"].attrs["units"] == "dimensionless"
        m = g["mapping"]
        assert set(m) == {"node_ids", "index_pointers", "element_ids", "time"}
        assert m["node_ids"].dtype == np.uint64 and m["index_pointers"].dtype == np.uint64
        assert m["element_ids"].dtype == np.uint32
        ip = m["index_pointers"][()]
        assert len(ip) == n + 1 and ip[0] == 0 and ip[-1] == g["data"].shape[1]
        np.testing.assert_array_equal(m["element_ids"][()], np.tile(np.arange(B), n))
        data = g["data"][()]                # SONATA's float32; the float64 values beside it
        assert data.dtype == np.float32 and g["data_float64"].shape == data.shape
        for i in range(n):                  # SONATA: node i's values are data[:, ip[i]:ip[i+1]]
            np.testing.assert_array_equal(data[:, ip[i]:ip[i + 1]], u[:, :, i].astype(np.float32))
            np.testing.assert_array_equal(g["data_float64"][:, ip[i]:ip[i + 1]], u[:, :, i])
        np.testing.assert_array_equal(m["time"][()], [0.0, 0.1 * T, 0.1])
        assert m["time"].dtype == np.float64 and m["time"].attrs["units"] == "tau"
        assert int(m["node_ids"].attrs["sorted"]) == 1
        y = f["report/y/mapping"]
        np.testing.assert_array_equal(y["element_ids"][()], [0, 0, 0])   # point neurons
        np.testing.assert_array_equal(y["index_pointers"][()], [0, 1, 2, 3])
        assert int(y["node_ids"].attrs["sorted"]) == 0

        s = f["spikes/h1"]
        enum = h5py.check_enum_dtype(s.attrs.get_id("sorting").dtype)
        assert enum == {"none": 0, "by_id": 1, "by_time": 2}
        assert int(s.attrs["sorting"]) == enum["by_time"]
        assert s["timestamps"].dtype == np.float64 and s["node_ids"].dtype == np.uint64
        assert s["timestamps"].attrs["units"] == "tau"
        assert np.all(np.diff(s["timestamps"][()]) >= 0)

        ph = f["phases"]
        assert list(ph["name"].asstr()[()]) == ["free", "nudged+", "nudged-"]
        assert ph["start"].attrs["units"] == "tau"
        assert f["weights/odd%2Fkey%25"].attrs["key"] == "odd/key%"
        assert set(f["gradients"]) == {"ep", "rbp", "bptt"}


def test_spikes_are_sorted_by_time_with_units(tmp_path):
    path = tmp_path / "spikes.h5"
    tr.write(path, spikes={"exc": {"timestamps": [3.0, 1.0, 2.0, 1.0], "node_ids": [0, 1, 2, 3],
                                   "units": "ms"}})
    t = tr.load(path)
    np.testing.assert_array_equal(t.spikes["exc"]["timestamps"], [1.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(t.spikes["exc"]["node_ids"], [1, 3, 2, 0])   # stable
    with h5py.File(path, "r") as f:
        assert f["spikes/exc/timestamps"].attrs["units"] == "ms"


def test_datasets_are_gzip_compressed_except_the_sonata_ones(written):
    """SONATA datasets are contiguous and unfiltered (libsonata's wheels have no deflate
    filter); every other dataset is chunked and gzip-compressed."""
    seen = []

    def check(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim > 0:
            seen.append(name)
            sonata = name.startswith("spikes/") or (name.startswith("report/") and
                                                    not name.endswith("/data_float64"))
            if sonata:
                assert obj.chunks is None and obj.compression is None, name
            else:
                assert obj.chunks is not None and obj.compression == "gzip", name

    with h5py.File(written, "r") as f:
        f.visititems(check)
        assert f["report/h1/data_float64"].chunks[1] == f["report/h1/data"].shape[1]
    assert "report/h1/data" in seen and "spikes/h1/timestamps" in seen and len(seen) > 30


# -- atomic write -----------------------------------------------------------------------------
def test_successful_write_leaves_no_temporary_file(tmp_path):
    tr.write(tmp_path / "a.h5", reports={"h": np.ones((3, 2))})
    tr.write(tmp_path / "a.h5", reports={"h": np.zeros((4, 2))})      # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["a.h5"]
    assert tr.load(tmp_path / "a.h5").reports["h"]["data"].shape == (4, 2)


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()],
                         ids=["error", "interrupt"])
def test_failure_mid_write_keeps_the_existing_file(tmp_path, monkeypatch, exc):
    path = tmp_path / "run.h5"
    tr.write(path, reports={"h": np.ones((3, 2))}, attrs={"generation": 1})
    before = path.read_bytes()
    written_groups = []

    def boom(f, *args):
        written_groups.extend(f)          # the reports are already in the temporary file
        raise exc

    monkeypatch.setattr(trace_writer, "_write_spikes", boom)
    with pytest.raises(type(exc)):
        tr.write(path, reports={"h": np.zeros((5, 2))}, spikes={"h": ([1.0], [0])},
                 attrs={"generation": 2})
    assert written_groups == ["report"]
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["run.h5"]
    assert tr.load(path).attrs["generation"] == 1


# -- bad input --------------------------------------------------------------------------------
BAD = {
    "report_1d": (dict(reports={"h1": np.ones(5)}), r"reports\['h1'\].*2-D.*3-D"),
    "report_4d": (dict(reports={"h1": np.ones((2, 2, 2, 2))}), r"reports\['h1'\].*shape"),
    "report_nan": (dict(reports={"h1": np.array([[0.0, np.nan], [1.0, 2.0]])}),
                   r"reports\['h1'\].*finite.*\(0, 1\)"),
    "report_inf_3d": (dict(reports={"y": np.full((2, 1, 2), np.inf)}), r"reports\['y'\].*finite"),
    "report_text": (dict(reports={"h1": [["a", "b"]]}), r"reports\['h1'\].*numbers"),
    "report_node_ids": (dict(reports={"h1": {"data": np.ones((2, 3)), "node_ids": [0, 1]}}),
                        r"reports\['h1'\]\.node_ids.*3 ids"),
    "spikes_lengths": (dict(spikes={"h1": ([0.1, 0.2, 0.3], [0, 1])}),
                       r"spikes\['h1'\].*3 entries.*same length"),
    "spikes_negative_id": (dict(spikes={"h1": ([0.1], [-1])}), r"spikes\['h1'\]\.node_ids"),
    "spikes_not_pair": (dict(spikes={"h1": np.ones(3)}), r"spikes\['h1'\].*pair"),
    "phase_order": (dict(phases=[("free", 5.0, 1.0, 0.0)]), r"phases\[0\].*stop"),
    "phase_missing": (dict(phases=[{"name": "free", "start": 0}]), r"phases\[0\].*missing"),
    "training_lengths": (dict(training={"epoch": [0, 1, 2], "loss": [1.0, 2.0]}),
                         r"training\['loss'\].*2 epochs.*3"),
    "gradients_flat": (dict(gradients={"ep": np.ones(3)}), r"gradients\['ep'\].*dict"),
    "fidelity_none": (dict(fidelity={"a": {"b": None}}), r"fidelity\['a'\]\['b'\].*None"),
    "fidelity_object": (dict(fidelity={"a": object()}), r"fidelity\['a'\]"),
    "reserved_attr": (dict(attrs={"circuit": "x"}), r"attrs\['circuit'\].*reserved"),
    "circuit_bytes": (dict(circuit=b"[network]"), r"circuit.*text"),
    "dt": (dict(dt=0.0), r"dt.*positive"),
    "empty_key": (dict(weights={"": np.ones(2)}), r"weights.*non-empty"),
    "group_own_name": (dict(groups={"weights": {"a": 1}}), r"groups\['weights'\].*own groups"),
    "group_not_dict": (dict(groups={"g": np.ones(2)}), r"groups\['g'\].*dict"),
    "group_none": (dict(groups={"g": {"a": None}}), r"groups\['g'\]\['a'\].*None"),
    "node_attrs_unknown": (dict(groups={"g": {"a": 1}}, node_attrs={"g/b": {"x": 1}}),
                           r"node_attrs\['g/b'\].*no such group or dataset"),
    "node_attrs_key": (dict(groups={"g": {"a": 1}}, node_attrs={"g": {"key": "x"}}),
                       r"node_attrs\['g'\]\['key'\].*reserved"),
    "node_attrs_nested": (dict(groups={"g": {"a": 1}}, node_attrs={"g": {"x": {"y": 1}}}),
                          r"node_attrs\['g'\]\['x'\].*attributes are"),
    "cost_not_report": (dict(cost={"per_example": {}}), r"cost: .*missing by_epoch"),
}


@pytest.mark.parametrize("kwargs, match", list(BAD.values()), ids=list(BAD))
def test_bad_input_names_the_field_and_writes_nothing(tmp_path, kwargs, match):
    with pytest.raises(TraceError, match=match):
        tr.write(tmp_path / "bad.h5", **kwargs)
    assert os.listdir(tmp_path) == []


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(TraceError, match=r"path: directory .*nope.* does not exist"):
        tr.write(tmp_path / "nope" / "run.h5", reports={"h": np.ones((2, 2))})
    with pytest.raises(TraceError, match="is a directory"):
        tr.write(tmp_path, reports={"h": np.ones((2, 2))})


def test_reading_files_that_are_not_trace_files(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(TraceError, match="not a neurosim trace file.*not an HDF5 file"):
        tr.load(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.ones(3)
    with pytest.raises(TraceError, match="not a neurosim trace file.*'format'"):
        tr.load(other)
    with pytest.raises(TraceError, match="not a neurosim trace file"):
        tr.inspect(other)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        tr.load(tmp_path / "missing.h5")
    newer = tmp_path / "newer.h5"
    tr.write(newer, reports={"h": np.ones((2, 2))})
    with h5py.File(newer, "a") as f:
        f.attrs["format_version"] = tr.FORMAT_VERSION + 1
    with pytest.raises(TraceError, match="upgrade neurosim"):
        tr.load(newer)


# -- inspect ----------------------------------------------------------------------------------
def test_inspect_summarises_and_shows_the_tree(written, content):
    text = tr.inspect(written)
    T, B, n = content["reports"]["h1"].shape
    assert "reports: 2 population(s)" in text
    assert "h1" in text and "%d time steps x %d neurons x %d examples" % (T, n, B) in text
    assert "float64 (%d, %d)" % (T, n * B) in text                     # tree: dtype and shape
    assert "phases: free [0, 10) beta=0, nudged+" in text
    assert "training: 4 epochs; final:" in text and "test_accuracy 0.85" in text
    assert "spikes: h1 5 spikes, y 0 spikes" in text
    assert "gradients: ep (4 params), rbp (4 params), bptt (4 params)" in text
    assert "circuit: 3 lines of TOML" in text
    assert "neurosim %s" % ns.__version__ in text
    assert "mapping/" in text and "index_pointers  uint64 (%d,)" % (n + 1) in text


# -- NWB --------------------------------------------------------------------------------------
def test_nwb_export_validates(written, content, tmp_path):
    pynwb = pytest.importorskip("pynwb", reason="pynwb is absent (pip install 'neurosim[nwb]')")
    out = tmp_path / "run.nwb"
    assert to_nwb(written, out, validate=False) == os.fspath(out)
    assert sorted(os.listdir(tmp_path)) == ["run.nwb"]
    assert list(pynwb.validate(path=str(out))) == []
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert nwb.session_start_time.tzinfo is not None
        assert nwb.notes == CIRCUIT
        ts = nwb.processing["neurosim"]["h1"]
        np.testing.assert_array_equal(ts.data[()], content["reports"]["h1"])
        assert ts.rate == pytest.approx(10.0)
        y = nwb.processing["neurosim"]["y"]
        assert y.unit == "rate" and y.starting_time == 2.5
        units = nwb.units.to_dataframe()
        assert len(units) == 4 and set(units["population"]) == {"h1"}
        row = units[units["node_id"] == 3].iloc[0]
        np.testing.assert_array_equal(row["spike_times"], [0.5, 2.25])
        epochs = nwb.epochs.to_dataframe()
        assert list(epochs["beta"]) == [0.0, 1e-3, -1e-3]
        assert [list(t) for t in epochs["tags"]] == [["free"], ["nudged+"], ["nudged-"]]


def test_nwb_export_with_validation_and_ms_times(tmp_path):
    pytest.importorskip("pynwb", reason="pynwb is absent (pip install 'neurosim[nwb]')")
    src = tmp_path / "spiking.h5"
    tr.write(src, reports={"h": np.ones((4, 2))}, spikes={"h": ([2.0, 1.0], [1, 0])},
             phases=[("free", 0.0, 4.0, 0.0)], dt=0.5, time_units="ms")
    to_nwb(src, tmp_path / "spiking.nwb", identifier="abc")          # validates itself
    import pynwb
    with pynwb.NWBHDF5IO(str(tmp_path / "spiking.nwb"), "r") as io:
        nwb = io.read()
        assert nwb.identifier == "abc"
        assert nwb.processing["neurosim"]["h"].rate == pytest.approx(2000.0)
        assert nwb.epochs.to_dataframe()["stop_time"].iloc[0] == pytest.approx(4e-3)


def test_nwb_export_without_pynwb_says_how_to_install(written, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(ImportError, match=r'pip install "neurosim\[nwb\]"'):
        to_nwb(written, tmp_path / "x.nwb")
    assert os.listdir(tmp_path) == []


def test_libsonata_reads_every_report_and_spike_population(written, tmp_path):
    """The reference SONATA reader (libsonata, built without HDF5's deflate filter) reads the
    reports (float32 data, batched and unsorted node ids) and spikes (one population silent)
    as h5py does; the reader still gives the float64 values written."""
    pytest.importorskip("libsonata", reason="libsonata is absent (the test extra has it)")
    from conftest import check_with_libsonata
    assert check_with_libsonata(written) == 4
    path = tmp_path / "rounded.h5"
    data = np.linspace(0, 1, 21).reshape(7, 3) / 3
    tr.write(path, reports={"h": data}, spikes={"h": ([1 / 3, 0.1], [2, 0])})
    assert check_with_libsonata(path) == 2
    np.testing.assert_array_equal(tr.load(path).reports["h"]["data"], data)
