"""neurosim.atomic, the one atomic-write helper: a file appears whole under its name or not
at all; a failure (an error or an interrupt) while writing keeps the previous file and leaves
no temporary file behind."""
import json
import os

import h5py
import numpy as np
import pytest

from neurosim import atomic, traces


def test_atomic_path_renames_on_success(tmp_path):
    path = tmp_path / "out.h5"
    with atomic.atomic_path(path) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".h5")
        assert not os.path.exists(path)            # nothing under the name until it is whole
        with h5py.File(tmp, "w") as f:
            f["x"] = np.arange(3)
    assert sorted(os.listdir(tmp_path)) == ["out.h5"]
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["x"][()], [0, 1, 2])


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()],
                         ids=["error", "interrupt"])
def test_failure_while_writing_keeps_the_previous_file(tmp_path, exc):
    path = tmp_path / "notes.txt"
    atomic.write_text(path, "first\n")
    with pytest.raises(type(exc)):
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half of the sec")
            raise exc
    assert path.read_text() == "first\n"
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_failure_before_anything_is_written_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        with atomic.atomic_path(tmp_path / "never.json"):
            raise ValueError("no")
    assert os.listdir(tmp_path) == []


def test_write_text_bytes_and_json(tmp_path):
    assert atomic.write_text(tmp_path / "a.csv", "x,y\r\n1,2\r\n", newline="") == \
        tmp_path / "a.csv"
    assert (tmp_path / "a.csv").read_bytes() == b"x,y\r\n1,2\r\n"
    atomic.write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    atomic.write_json(tmp_path / "c.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "c.json").read_text()) == {"a": [1, 2]}
    atomic.write_json(tmp_path / "c.json", {"a": 3})                     # replaced in place
    assert json.loads((tmp_path / "c.json").read_text()) == {"a": 3}
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "b.bin", "c.json"]


def test_unserialisable_json_keeps_the_previous_file(tmp_path):
    path = tmp_path / "result.json"
    atomic.write_json(path, {"ok": True})
    with pytest.raises(TypeError):
        atomic.write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": True}
    assert os.listdir(tmp_path) == ["result.json"]


def test_trace_writer_fails_through_the_same_helper(tmp_path):
    """traces.write (every HDF5 file neurosim writes) uses atomic_path: an error inside the
    write (here a failing ``extra`` writer) keeps the previous file and leaves no temporary."""
    path = tmp_path / "traces.h5"
    traces.write(path, training={"loss": [1.0, 0.5]}, attrs={"generation": 1})

    def boom(f):
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"):
        traces.write(path, training={"loss": [0.1]}, attrs={"generation": 2}, extra=[boom])
    assert traces.load(path).attrs["generation"] == 1
    assert os.listdir(tmp_path) == ["traces.h5"]


def test_write_json_writes_strict_json(tmp_path):
    """NaN and infinities (also numpy's, nested in lists and arrays) become null: bare NaN
    tokens are not JSON."""
    def refuse(token):
        raise ValueError(token)
    path = atomic.write_json(tmp_path / "m.json", {"a": float("nan"),
                                                   "b": [1.0, np.float32("inf")],
                                                   "c": np.array([np.nan, 2.0]),
                                                   "d": np.int64(3)})
    got = json.loads(open(path).read(), parse_constant=refuse)
    assert got == {"a": None, "b": [1.0, None], "c": [None, 2.0], "d": 3}
