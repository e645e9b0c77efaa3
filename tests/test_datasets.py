"""Dataset loaders: IDX parsing (synthetic files, every corruption), the search path, the error
messages, digits, teacher, xor, and the real Fashion-MNIST when it is installed."""
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from neurosim import datasets as D

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


# -- synthetic IDX files ------------------------------------------------------------------------
def idx_bytes(arr, magic=None):
    arr = np.asarray(arr, dtype=np.uint8)
    magic = (0x00000800 | arr.ndim) if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(">%dI" % arr.ndim, *arr.shape) + arr.tobytes()


def write(path, data, gz):
    path = Path(str(path) + ".gz") if gz else Path(path)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_idx_dir(d, n_train=12, n_test=5, rows=3, cols=4, gz=False, seed=0):
    """Four small IDX files in ``d``; returns (dict role -> path, train images, train labels)."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    xtr = rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8)
    xtr[0, 0, 0], xtr[0, 0, 1] = 0, 255
    ltr = np.arange(n_train, dtype=np.uint8) % 10
    xte = rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8)
    lte = np.arange(n_test, dtype=np.uint8) % 10
    files = {}
    for role, arr in (("train_images", xtr), ("train_labels", ltr), ("test_images", xte),
                      ("test_labels", lte)):
        files[role] = write(d / D.IDX_FILES[role], idx_bytes(arr), gz)
    return files, xtr, ltr


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_idx_loader_on_synthetic_files(tmp_path, gz):
    files, xtr, ltr = make_idx_dir(tmp_path / "mnist", gz=gz)
    ds = D.load("mnist", path=tmp_path)
    assert ds.x_train.shape == (12, 12) and ds.x_test.shape == (5, 12)
    assert ds.y_train.shape == (12, 10) and ds.n_classes == 10
    np.testing.assert_array_equal(ds.x_train, xtr.reshape(12, -1) / 255.0)
    np.testing.assert_array_equal(ds.labels_train, ltr)
    np.testing.assert_array_equal(ds.y_train.argmax(1), ltr)
    assert ds.y_train.sum(1).tolist() == [1.0] * 12
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.x_train.dtype == np.float64
    assert ds.source == str(tmp_path / "mnist")
    # files directly in path (no <name>/ subdirectory), float32
    flat = D.load("mnist", path=tmp_path / "mnist", dtype="float32")
    assert flat.x_train.dtype == np.float32 and flat.y_train.dtype == np.float32
    np.testing.assert_allclose(flat.x_train, ds.x_train, rtol=1e-7)


def test_limits_are_deterministic_subsets(tmp_path):
    make_idx_dir(tmp_path / "mnist", n_train=40, n_test=20)
    full = D.load("mnist", path=tmp_path)
    a = D.load("mnist", path=tmp_path, limit_train=10, limit_test=3, seed=5)
    b = D.load("mnist", path=tmp_path, limit_train=10, limit_test=3, seed=5)
    c = D.load("mnist", path=tmp_path, limit_train=10, seed=6)
    assert a.x_train.shape == (10, 12) and a.x_test.shape == (3, 12)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    rows = {r.tobytes() for r in full.x_train}
    assert all(r.tobytes() in rows for r in a.x_train)
    big = D.load("mnist", path=tmp_path, limit_train=10_000)   # a limit is an upper bound
    assert big.n_train == 40


# -- corrupt files: each error names the file and the problem ------------------------------------
def _corrupt(tmp_path, role, data, gz=False, raw=False):
    files, _, _ = make_idx_dir(tmp_path / "mnist", gz=gz)
    files[role].unlink()
    target = tmp_path / "mnist" / D.IDX_FILES[role]
    if raw:
        target = Path(str(target) + ".gz")
        target.write_bytes(data)
    else:
        target = write(target, data, gz)
    with pytest.raises(D.DatasetError) as info:
        D.load("mnist", path=tmp_path)
    return target, str(info.value)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_wrong_magic(tmp_path, gz):
    img = np.zeros((12, 3, 4), np.uint8)
    f, msg = _corrupt(tmp_path, "train_images", idx_bytes(img, magic=0x12345603), gz)
    assert str(f) in msg and "magic" in msg and "0x00000803" in msg


def test_labels_file_where_images_expected(tmp_path):
    f, msg = _corrupt(tmp_path, "test_images", idx_bytes(np.zeros(5, np.uint8)))
    assert str(f) in msg and "dimensions" in msg and "0x00000801" in msg and "0x00000803" in msg


def test_wrong_dimensions_labels(tmp_path):
    f, msg = _corrupt(tmp_path, "train_labels", idx_bytes(np.zeros((12, 2), np.uint8)))
    assert str(f) in msg and "wrong number of dimensions 2" in msg and "0x00000801" in msg


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_truncated_data(tmp_path, gz):
    data = idx_bytes(np.zeros((12, 3, 4), np.uint8))[:-7]
    f, msg = _corrupt(tmp_path, "train_images", data, gz)
    assert str(f) in msg and "truncated" in msg
    assert "(12, 3, 4)" in msg and "only 137 bytes" in msg


def test_truncated_header(tmp_path):
    f, msg = _corrupt(tmp_path, "test_labels", struct.pack(">I", 0x801) + b"\x00\x00")
    assert str(f) in msg and "truncated" in msg and "header" in msg


def test_trailing_bytes(tmp_path):
    f, msg = _corrupt(tmp_path, "test_labels", idx_bytes(np.zeros(5, np.uint8)) + b"xx")
    assert str(f) in msg and "2 unexpected bytes" in msg


def test_count_mismatch(tmp_path):
    f, msg = _corrupt(tmp_path, "train_labels", idx_bytes(np.zeros(11, np.uint8)))
    assert str(f) in msg and "12 images" in msg and "11 labels" in msg
    assert str(tmp_path / "mnist" / D.IDX_FILES["train_images"]) in msg


def test_labels_out_of_range(tmp_path):
    lab = np.zeros(5, np.uint8)
    lab[3] = 42
    f, msg = _corrupt(tmp_path, "test_labels", idx_bytes(lab))
    assert str(f) in msg and "out of range 0..9" in msg and "label 42 at index 3" in msg


_NOISE = idx_bytes(np.random.default_rng(0).integers(0, 256, (12, 3, 4), dtype=np.uint8))


@pytest.mark.parametrize("data", [b"this is not gzip at all",
                                  gzip.compress(_NOISE)[:-20]], ids=["garbage", "cut"])
def test_corrupt_gzip(tmp_path, data):
    f, msg = _corrupt(tmp_path, "train_images", data, raw=True)
    assert str(f) in msg and "corrupt gzip" in msg


def test_bad_gzip_crc(tmp_path):
    data = bytearray(gzip.compress(idx_bytes(np.zeros((12, 3, 4), np.uint8))))
    data[-8] ^= 0xFF                                   # CRC32 of the payload
    f, msg = _corrupt(tmp_path, "train_images", bytes(data), raw=True)
    assert str(f) in msg and "corrupt gzip" in msg


def test_pixel_count_mismatch_between_splits(tmp_path):
    f, msg = _corrupt(tmp_path, "test_images", idx_bytes(np.zeros((5, 2, 2), np.uint8)))
    assert str(f) in msg and "pixels per image" in msg


def test_idx_shape_reads_header_only(tmp_path):
    files, _, _ = make_idx_dir(tmp_path, gz=True)
    assert D.idx_shape(files["train_images"]) == (12, 3, 4)
    assert D.idx_shape(files["test_labels"], D.LABELS_MAGIC) == (5,)


# -- search path --------------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("NEUROSIM_DATA", raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_search_path_order(clean_env, monkeypatch, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("NEUROSIM_DATA", os.pathsep.join([str(a), str(b)]))
    dirs = D.search_path("fashion-mnist")
    assert dirs[:5] == [a / "fashion-mnist", a, b / "fashion-mnist", b,
                        clean_env / "datasets" / "fashion-mnist"]
    assert dirs[-1] == Path("/usr/share/datasets/fashion-mnist")
    repo = Path(D.__file__).resolve().parents[2] / "datasets" / "fashion-mnist"
    assert repo in dirs


def test_neurosim_data_wins_over_cwd(clean_env, monkeypatch, tmp_path):
    make_idx_dir(clean_env / "datasets" / "mnist", n_train=7)
    cwd_ds = D.load("mnist")
    assert cwd_ds.n_train == 7 and cwd_ds.source == str(clean_env / "datasets" / "mnist")
    env = tmp_path / "env"
    make_idx_dir(env, n_train=9, gz=True)          # files directly in $NEUROSIM_DATA
    monkeypatch.setenv("NEUROSIM_DATA", str(env))
    ds = D.load("mnist")
    assert ds.n_train == 9 and ds.source == str(env)
    make_idx_dir(env / "mnist", n_train=8)         # <dir>/<name>/ before <dir>
    assert D.load("mnist").n_train == 8


def test_partial_directory_is_skipped_and_reported(clean_env, monkeypatch, tmp_path):
    files, _, _ = make_idx_dir(tmp_path / "env" / "mnist")
    files["test_labels"].unlink()
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "env"))
    with pytest.raises(D.DatasetNotFoundError) as info:
        D.load("mnist")
    msg = str(info.value)
    assert "has only train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images" in msg
    make_idx_dir(clean_env / "datasets" / "mnist", n_train=6)
    assert D.load("mnist").n_train == 6


def test_missing_fashion_mnist_message(clean_env, monkeypatch, tmp_path):
    monkeypatch.setattr(D.files, "SYSTEM_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "env"))
    with pytest.raises(D.DatasetNotFoundError) as info:
        D.load("fashion-mnist")
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
    assert "apt-get install dataset-fashion-mnist" in msg and "NEUROSIM_DATA" in msg
    for d in D.search_path("fashion-mnist"):
        assert str(d) in msg
    assert str(clean_env / "datasets" / "fashion-mnist") in msg
    assert all(s in msg for s in D.IDX_FILES.values())


def test_missing_mnist_message(clean_env, tmp_path):
    with pytest.raises(D.DatasetNotFoundError) as info:
        D.load("mnist", path=tmp_path / "empty")
    msg = str(info.value)
    assert str(tmp_path / "empty" / "mnist") in msg and str(tmp_path / "empty") in msg
    assert "./datasets/mnist/" in msg and all(s in msg for s in D.IDX_FILES.values())
    assert "apt-get" not in msg


# -- names and options --------------------------------------------------------------------------
def test_names_and_option_errors():
    assert D.available() == list(D.DATASETS)
    assert {"digits", "fashion-mnist", "mnist", "teacher", "xor"} <= set(D.available())
    with pytest.raises(D.DatasetError, match="valid names are: digits, fashion-mnist"):
        D.load("cifar")
    for kw, word in [({"limit_train": -1}, "limit_train"), ({"limit_test": 0}, "limit_test"),
                     ({"limit_train": 2.5}, "limit_train"), ({"seed": -3}, "seed"),
                     ({"test_fraction": 1.0}, "test_fraction"), ({"dtype": "int8"}, "dtype"),
                     ({"path": "/x"}, "path")]:
        with pytest.raises(D.DatasetError, match=word):
            D.load("digits", **kw)
    with pytest.raises(D.DatasetError, match="unknown option test_fraction.*fashion-mnist"):
        D.load("fashion-mnist", test_fraction=0.1)
    with pytest.raises(D.DatasetError, match="option n_classes"):
        D.load("teacher", n_classes=1)
    with pytest.raises(D.DatasetError, match="option jitter"):
        D.load("xor", jitter=-0.1)


def test_batches():
    ds = D.load("xor", repeat=5)
    got = list(ds.batches(6, np.random.default_rng(1)))
    assert [len(x) for x, _ in got] == [6, 6, 6, 2]
    again = list(ds.batches(6, np.random.default_rng(1)))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(got, again))
    xs = np.concatenate([x for x, _ in got])
    assert sorted(map(tuple, xs)) == sorted(map(tuple, ds.x_train))
    assert not np.array_equal(xs, ds.x_train)                       # shuffled
    rng = np.random.default_rng(2)
    e1 = np.concatenate([x for x, _ in ds.batches(20, rng)])
    e2 = np.concatenate([x for x, _ in ds.batches(20, rng)])
    assert not np.array_equal(e1, e2)                               # new order each epoch
    assert [len(x) for x, _ in ds.batches(6, 0, drop_last=True)] == [6, 6, 6]
    (x, y), = ds.batches(10, None, split="test")
    np.testing.assert_array_equal(x, ds.x_test)
    np.testing.assert_array_equal(y.argmax(1), ds.labels_test)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(D.DatasetError, match="batch_size"):
            next(ds.batches(bad))
    with pytest.raises(D.DatasetError, match="split"):
        next(ds.batches(2, split="valid"))
    with pytest.raises(D.DatasetError, match="rng"):
        next(ds.batches(2, rng="x"))


# -- digits -------------------------------------------------------------------------------------
def test_digits():
    ds = D.load("digits")
    assert ds.x_train.shape == (1438, 64) and ds.x_test.shape == (359, 64)
    assert ds.y_train.shape == (1438, 10) and ds.n_classes == 10
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    np.testing.assert_array_equal(ds.y_test.argmax(1), ds.labels_test)
    np.testing.assert_array_equal(ds.y_train.sum(1), 1.0)
    counts = np.bincount(ds.labels_test, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38                # stratified
    again = D.load("digits")
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    other = D.load("digits", seed=1, test_fraction=0.5, limit_train=100, dtype="float32")
    assert other.x_train.shape == (100, 64) and other.x_train.dtype == np.float32
    assert abs(other.n_test - 898) <= 5
    assert not np.array_equal(D.load("digits", seed=1).x_test, ds.x_test)


def test_digits_without_sklearn(monkeypatch):
    import builtins
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(D.DatasetError, match="pip install scikit-learn"):
        D.load("digits")


# -- synthetic ----------------------------------------------------------------------------------
def test_teacher():
    kw = dict(n_train=300, n_test=40, seed=3)
    ds = D.load("teacher", **kw)
    assert ds.x_train.shape == (300, 20) and ds.y_train.shape == (300, 4)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    np.testing.assert_array_equal(ds.y_train.argmax(1), ds.labels_train)
    counts = np.bincount(ds.labels_train, minlength=4)
    assert counts.min() >= 0.6 * 300 / 4, counts                   # balanced classes
    again = D.load("teacher", **kw)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    np.testing.assert_array_equal(ds.labels_test, again.labels_test)
    # the labels are the teacher's fixed function of the input, recomputable from info
    import neurosim as ns
    net = ds.info["teacher"]
    out = ns.relax(net, ds.x_test, tol=1e-8).state[net.outputs[0]]
    np.testing.assert_array_equal(np.argmax(out - ds.info["offsets"], 1), ds.labels_test)
    small = D.load("teacher", n_in=5, n_hidden=3, n_classes=3, n_train=30, n_test=10, seed=3)
    assert small.x_train.shape == (30, 5) and small.y_test.shape == (10, 3)
    assert not np.array_equal(D.load("teacher", n_train=30, n_test=10, seed=4).x_train,
                              ds.x_train[:30])


def test_xor():
    ds = D.load("xor")
    np.testing.assert_array_equal(ds.x_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(ds.labels_train, [0, 1, 1, 0])
    np.testing.assert_array_equal(ds.y_train, [[1, 0], [0, 1], [0, 1], [1, 0]])
    np.testing.assert_array_equal(ds.x_test, ds.x_train)
    j = D.load("xor", repeat=10, jitter=0.1, seed=2)
    assert j.x_train.shape == (40, 2) and j.x_test.shape == (4, 2)
    assert 0.0 <= j.x_train.min() and j.x_train.max() <= 1.0
    assert np.abs(j.x_train - np.tile(ds.x_train, (10, 1))).max() > 0
    np.testing.assert_array_equal(j.x_train, D.load("xor", repeat=10, jitter=0.1, seed=2).x_train)


def test_verify_synthetic_is_an_error():
    with pytest.raises(D.DatasetError, match="synthetic"):
        D.verify("xor")


# -- the real Fashion-MNIST ---------------------------------------------------------------------
needs_fashion = pytest.mark.skipif(
    not all((SYSTEM_FASHION / (s + ".gz")).is_file() for s in D.IDX_FILES.values()),
    reason="Fashion-MNIST not installed in /usr/share/datasets/fashion-mnist "
           "(apt-get install dataset-fashion-mnist)")


@needs_fashion
def test_real_fashion_mnist(clean_env):
    files = D.find_idx_files("fashion-mnist")
    assert files["train_images"].parent == SYSTEM_FASHION
    assert D.idx_shape(files["train_images"]) == (60000, 28, 28)
    assert D.idx_shape(files["test_images"]) == (10000, 28, 28)
    assert D.idx_shape(files["train_labels"], D.LABELS_MAGIC) == (60000,)
    ds = D.load("fashion-mnist", limit_train=500, limit_test=200, dtype="float32")
    assert ds.x_train.shape == (500, 784) and ds.x_test.shape == (200, 784)
    assert ds.x_train.dtype == np.float32 and ds.y_train.shape == (500, 10)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.x_train.max() > 0.9
    assert len(set(ds.labels_train.tolist())) == 10
    assert ds.class_names[9] == "Ankle boot" and ds.source == str(SYSTEM_FASHION)


@needs_fashion
def test_real_fashion_mnist_checksums(clean_env):
    res = D.verify("fashion-mnist")
    assert len(res) == 4 and all(r["ok"] for r in res.values()), res


# -- CIFAR-10 (binary version) and the bars image task -------------------------------------------
def _cifar_files(directory, n_train=3, n_test=2, label=None):
    """Six CIFAR-10 binary batches with known pixels: record r of a file has label r % 10
    (or ``label``) and pixel p = (r * 7 + p) % 256."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(D.CIFAR_TRAIN + (D.CIFAR_TEST,)):
        n = n_test if name == D.CIFAR_TEST else n_train
        recs = np.zeros((n, D.CIFAR_RECORD), np.uint8)
        for r in range(n):
            recs[r, 0] = (r + i) % 10 if label is None else label
            recs[r, 1:] = (r * 7 + np.arange(3072)) % 256
        (directory / name).write_bytes(recs.tobytes())
    return directory


def test_cifar10_binary_files_load_with_their_image_shape(tmp_path):
    _cifar_files(tmp_path / "cifar-10" / "cifar-10-batches-bin")
    ds = D.load("cifar-10", path=tmp_path)
    assert ds.x_train.shape == (15, 3072) and ds.x_test.shape == (2, 3072)
    assert ds.image_shape == (3, 32, 32) and ds.class_names[0] == "airplane"
    assert list(ds.labels_train[:4]) == [0, 1, 2, 1]      # record r of batch i: (r + i) % 10
    img = ds.x_test[1].reshape(3, 32, 32)                  # channel, row, column
    assert img[2, 31, 31] == pytest.approx(((7 + 3071) % 256) / 255.0)
    assert img.max() <= 1.0 and ds.y_train.shape == (15, 10)
    assert len(D.verify("cifar-10", path=tmp_path)) == 6


def test_cifar10_missing_or_damaged_files_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(D.DatasetNotFoundError, match="cifar-10-batches-bin") as e:
        D.load("cifar-10", path=tmp_path / "none")
    assert "pickles are not read" in str(e.value)
    d = _cifar_files(tmp_path / "c")
    (d / D.CIFAR_TEST).write_bytes(b"\x00" * 100)
    with pytest.raises(D.DatasetError, match="test_batch.bin: not a CIFAR-10 binary batch"):
        D.load("cifar-10", path=d)
    d = _cifar_files(tmp_path / "bad-label", label=12)
    with pytest.raises(D.DatasetError, match="labels out of range 0..9"):
        D.load("cifar-10", path=d)
    (tmp_path / "part").mkdir()
    (tmp_path / "part" / D.CIFAR_TEST).write_bytes(b"")
    with pytest.raises(D.DatasetNotFoundError, match="has only test_batch.bin"):
        D.load("cifar-10", path=tmp_path / "part")


def _cifar100_files(directory, n_train=4, n_test=3, fine=None):
    """CIFAR-100's train.bin and test.bin: record r has coarse label r % 20, fine label
    (r * 37) % 100 (or ``fine``) and pixel p = (r * 5 + p) % 256."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, n in ((D.CIFAR100_TRAIN, n_train), (D.CIFAR100_TEST, n_test)):
        recs = np.zeros((n, D.CIFAR100_RECORD), np.uint8)
        for r in range(n):
            recs[r, 0] = r % 20
            recs[r, 1] = (r * 37) % 100 if fine is None else fine
            recs[r, 2:] = (r * 5 + np.arange(3072)) % 256
        (directory / name).write_bytes(recs.tobytes())
    return directory


def test_cifar100_binary_files_load_with_fine_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path))      # found on the search path
    _cifar100_files(tmp_path / "cifar-100" / "cifar-100-binary")
    ds = D.load("cifar-100")
    assert ds.x_train.shape == (4, 3072) and ds.x_test.shape == (3, 3072)
    assert ds.n_classes == 100 and ds.y_train.shape == (4, 100) and ds.image_shape == (3, 32, 32)
    assert list(ds.labels_train) == [0, 37, 74, 11] and ds.class_names[37] == "house"
    img = ds.x_test[2].reshape(3, 32, 32)
    assert img[0, 0, 0] == pytest.approx(10 / 255.0)                    # not a label byte
    assert img[2, 31, 31] == pytest.approx(((10 + 3071) % 256) / 255.0)
    assert len(D.verify("cifar-100")) == 2
    assert "cifar-100" in D.available()


def test_cifar100_missing_or_damaged_files_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(D.DatasetNotFoundError) as e:
        D.load("cifar-100")
    first = str(e.value).splitlines()[0]
    assert first.startswith("CIFAR-100 not found") and "train.bin, test.bin" in first
    assert str(tmp_path / "nowhere" / "cifar-100" / "cifar-100-binary") in str(e.value)
    assert "cifar-100-binary.tar.gz" in str(e.value)
    d = _cifar100_files(tmp_path / "c")
    (d / D.CIFAR100_TEST).write_bytes(b"\x00" * D.CIFAR_RECORD * 2)     # CIFAR-10 records
    with pytest.raises(D.DatasetError, match="test.bin: not a CIFAR-100 binary batch"):
        D.load("cifar-100", path=d)
    d = _cifar100_files(tmp_path / "bad", fine=100)
    with pytest.raises(D.DatasetError, match="train.bin: 4 labels out of range 0..99"):
        D.load("cifar-100", path=d)
    (tmp_path / "part").mkdir()
    (tmp_path / "part" / D.CIFAR100_TRAIN).write_bytes(b"")
    with pytest.raises(D.DatasetNotFoundError, match="has only train.bin"):
        D.load("cifar-100", path=tmp_path / "part")


def test_bars_is_a_seeded_translation_invariant_image_task():
    a, b = D.load("bars", seed=3), D.load("bars", seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.image_shape == (1, 8, 8) and a.n_classes == 4 and a.x_train.shape == (1000, 64)
    assert np.all(np.bincount(a.labels_train, minlength=4) > 150)
    clean = D.load("bars", noise=0.0, n_train=40, n_test=4, size=6)
    assert np.all(clean.x_train.sum(axis=1) == 4)          # one bar of 6 // 2 + 1 pixels
    assert D.load("digits").image_shape == (1, 8, 8)
    with pytest.raises(D.DatasetError, match="option size must be an integer >= 4"):
        D.load("bars", size=2)
