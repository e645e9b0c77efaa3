"""Dataset loaders: digits, Fashion-MNIST/MNIST (IDX files on a search path), CIFAR-10 (its
binary version, from the user's files on the same search path), and the synthetic teacher,
xor and bars (a small image task).

Every loader returns a :class:`Dataset` with inputs in [0, 1] (``(n, n_features)``) and
one-hot targets (``(n, n_classes)``) for a train and a test split::

    ds = neurosim.datasets.load("fashion-mnist", limit_train=1000, seed=0)
    for x, y in ds.batches(32, np.random.default_rng(0)):
        ...

Image datasets say their ``(channels, height, width)`` in :attr:`Dataset.image_shape` (a row
of ``x`` is the image flattened channel by channel, row by row).

Nothing is ever downloaded. IDX and CIFAR-10 files are found on :func:`search_path` (``$NEUROSIM_DATA``,
``./datasets/<name>/``, the repository's ``datasets/<name>/``, ``/usr/share/datasets/<name>/``);
``datasets/README.md`` gives the source, licence and SHA-256 of each dataset.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from .errors import NeurosimError

DATASETS = ("digits", "fashion-mnist", "mnist", "cifar-10", "teacher", "xor", "bars")

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
SYSTEM_DIR = Path("/usr/share/datasets")
CIFAR_TRAIN = tuple("data_batch_%d.bin" % i for i in range(1, 6))
CIFAR_TEST = "test_batch.bin"
CIFAR_SUBDIR = "cifar-10-batches-bin"       # the directory the official archive unpacks to
CIFAR_RECORD = 1 + 3 * 32 * 32              # a label byte, then 1,024 bytes per channel (R, G, B)
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck")
BARS_CLASSES = ("horizontal", "vertical", "diagonal", "anti-diagonal")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")

# SHA-256 of the files as distributed (datasets/README.md).
CHECKSUMS = {
    "digits": {"digits.csv.gz": "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"},
    "fashion-mnist": {
        "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    },
}


class DatasetError(NeurosimError, ValueError):
    """A dataset name, option or file is wrong; the message says which and what was expected."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset's files are on none of the searched places (the message lists them all)."""


@dataclass
class Dataset:
    """Train and test splits: ``x_*`` in [0, 1] ``(n, n_features)``, ``y_*`` one-hot
    ``(n, n_classes)``, ``labels_*`` integer classes ``(n,)``; ``source`` says where the data
    came from and ``info`` holds loader details (files, seed, the teacher network, ...)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    labels_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels_test: np.ndarray
    n_classes: int
    source: str
    class_names: tuple = ()
    info: dict = field(default_factory=dict)
    image_shape: tuple = ()

    @property
    def n_features(self):
        return int(self.x_train.shape[1])

    @property
    def n_train(self):
        return int(self.x_train.shape[0])

    @property
    def n_test(self):
        return int(self.x_test.shape[0])

    def split(self, split="train"):
        """``(x, y, labels)`` of ``split`` ("train" or "test")."""
        if split not in ("train", "test"):
            raise DatasetError("split must be 'train' or 'test', got %r" % (split,))
        return (getattr(self, "x_" + split), getattr(self, "y_" + split),
                getattr(self, "labels_" + split))

    def batches(self, batch_size, rng=None, split="train", drop_last=False):
        """Yield ``(x, y)`` minibatches of ``split``, shuffled by ``rng``.

        ``rng`` is a ``numpy.random.Generator`` (each call draws a new permutation, so one
        seeded generator gives a reproducible sequence of epochs), an int seed (the same order
        every call) or None (no shuffling, source order). ``drop_last`` skips a short last batch.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise DatasetError("batch_size must be a positive integer, got %r" % (batch_size,))
        x, y, _ = self.split(split)
        n = x.shape[0]
        if rng is None:
            order = np.arange(n)
        elif isinstance(rng, np.random.Generator):
            order = rng.permutation(n)
        elif isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
            order = np.random.default_rng(int(rng)).permutation(n)
        else:
            raise DatasetError("rng must be a numpy.random.Generator, an int seed or None, got %r"
                               % (rng,))
        stop = n - n % batch_size if drop_last else n
        for i in range(0, stop, batch_size):
            idx = order[i:i + batch_size]
            yield x[idx], y[idx]

    def __repr__(self):
        return ("Dataset(%r: train %s, test %s, %d classes, from %s)"
                % (self.name, self.x_train.shape, self.x_test.shape, self.n_classes, self.source))


def available():
    """The dataset names :func:`load` accepts."""
    return list(DATASETS)


# -- options ------------------------------------------------------------------------------------
_COMMON = {"limit_train": None, "limit_test": None, "seed": 0, "dtype": "float64"}
_OPTIONS = {
    "digits": dict(_COMMON, test_fraction=0.2),
    "fashion-mnist": dict(_COMMON, path=None),
    "mnist": dict(_COMMON, path=None),
    "cifar-10": dict(_COMMON, path=None),
    "bars": dict(_COMMON, size=8, n_train=1000, n_test=200, noise=0.1),
    "teacher": dict(_COMMON, n_in=20, n_hidden=16, n_classes=4, n_train=1000, n_test=200,
                    gain=1.0, n_reference=512),
    "xor": dict(_COMMON, repeat=1, jitter=0.0),
}


def _int_option(opts, key, minimum, allow_none=False):
    v = opts[key]
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise DatasetError("option %s must be an integer >= %d%s, got %r"
                           % (key, minimum, " or None" if allow_none else "", v))
    return int(v)


def _float_option(opts, key, lo, hi, lo_open=False, hi_open=False):
    v = opts[key]
    ok = not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) \
        and np.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        raise DatasetError("option %s must be a number in %s%g, %g%s, got %r"
                           % (key, "(" if lo_open else "[", lo, hi, ")" if hi_open else "]", v))
    return float(v)


def _options(name, options):
    valid = _OPTIONS[name]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DatasetError("unknown option%s %s for dataset %r; its options are: %s"
                           % ("s" if len(unknown) > 1 else "", ", ".join(unknown), name,
                              ", ".join(sorted(valid))))
    opts = dict(valid, **options)
    _int_option(opts, "seed", 0)
    _int_option(opts, "limit_train", 1, allow_none=True)
    _int_option(opts, "limit_test", 1, allow_none=True)
    try:
        dt = np.dtype(opts["dtype"])
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise DatasetError("option dtype must be 'float32' or 'float64', got %r" % (opts["dtype"],))
    opts["dtype"] = dt
    return opts


# -- public entry points -----------------------------------------------------------------------
def load(name, **options):
    """Load dataset ``name`` (one of :data:`DATASETS`) as a :class:`Dataset`.

    Options of every dataset: ``limit_train``, ``limit_test`` (keep at most that many examples,
    a seeded random subset in source order), ``seed`` (split, subsets, synthetic draws) and
    ``dtype`` ("float64" or "float32"). Per dataset:

    * ``digits``: ``test_fraction=0.2`` (stratified seeded split of scikit-learn's 1797 digits).
    * ``fashion-mnist``, ``mnist``: ``path`` (a directory with the four IDX files, or with a
      ``<name>/`` subdirectory holding them; replaces the search path).
    * ``cifar-10``: ``path`` (a directory with the six files of CIFAR-10's binary version,
      ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``, or with a
      ``cifar-10/`` or ``cifar-10-batches-bin/`` subdirectory holding them).
    * ``bars``: ``size=8, n_train=1000, n_test=200, noise=0.1`` (see :func:`bars`).
    * ``teacher``: ``n_in=20, n_hidden=16, n_classes=4, n_train=1000, n_test=200, gain=1.0,
      n_reference=512`` (see :func:`teacher`).
    * ``xor``: ``repeat=1, jitter=0.0`` (see :func:`xor`).
    """
    if name not in DATASETS:
        raise DatasetError("unknown dataset %r; valid names are: %s" % (name, ", ".join(DATASETS)))
    opts = _options(name, options)
    loader = {"digits": _digits, "fashion-mnist": _idx_dataset, "mnist": _idx_dataset,
              "cifar-10": _cifar_dataset, "teacher": _teacher, "xor": _xor,
              "bars": _bars}[name]
    ds, scale = loader(name, opts)
    return _finish(ds, opts, scale)


def _one_hot(labels, n_classes, dtype):
    y = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    y[np.arange(labels.shape[0]), labels] = 1
    return y


def _subset(n, limit, rng):
    if limit is None or limit >= n:
        return None
    return np.sort(rng.choice(n, size=limit, replace=False))


def _finish(ds, opts, scale):
    """Apply the limits, then cast to ``dtype`` and divide by ``scale`` (after subsetting, so a
    limited Fashion-MNIST never holds the whole set as floats) and build one-hot targets."""
    rng = np.random.default_rng([opts["seed"], 7])
    for split in ("train", "test"):
        x = getattr(ds, "x_" + split)
        lab = getattr(ds, "labels_" + split)
        idx = _subset(x.shape[0], opts["limit_" + split], rng)
        if idx is not None:
            x, lab = x[idx], lab[idx]
        lab = np.ascontiguousarray(lab, dtype=np.int64)
        x = np.array(x, dtype=opts["dtype"], order="C")
        if scale != 1:
            x /= opts["dtype"].type(scale)
        setattr(ds, "x_" + split, x)
        setattr(ds, "labels_" + split, lab)
        setattr(ds, "y_" + split, _one_hot(lab, ds.n_classes, opts["dtype"]))
    ds.info.setdefault("seed", opts["seed"])
    return ds


# -- digits -------------------------------------------------------------------------------------
def _stratified_split(labels, test_fraction, rng):
    """Indices ``(train, test)``: each class contributes ``round(test_fraction * n_c)`` tests."""
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(test_fraction * idx.size))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _digits(name, opts):
    frac = _float_option(opts, "test_fraction", 0.0, 1.0, lo_open=True, hi_open=True)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError("dataset 'digits' comes with scikit-learn, which is not installed: "
                           "pip install scikit-learn") from None
    d = load_digits()
    x = np.asarray(d.data, dtype=np.float64)
    labels = np.asarray(d.target, dtype=np.int64)
    tr, te = _stratified_split(labels, frac, np.random.default_rng([opts["seed"], 1]))
    return Dataset("digits", x[tr], None, labels[tr], x[te], None, labels[te], 10,
                   source="scikit-learn %s (sklearn.datasets.load_digits, UCI optical digits)"
                   % _sklearn_version(), class_names=tuple(str(i) for i in range(10)),
                   info={"test_fraction": frac}, image_shape=(1, 8, 8)), 16.0


def _sklearn_version():
    try:
        import sklearn
        return sklearn.__version__
    except ImportError:  # pragma: no cover
        return "?"


# -- IDX files ----------------------------------------------------------------------------------
def _repo_dir():
    """The source checkout's ``datasets/`` directory, or None when installed elsewhere."""
    root = Path(__file__).resolve().parent.parent
    return root / "datasets" if (root / "pyproject.toml").is_file() else None


def search_path(name, path=None):
    """The directories searched for dataset ``name``'s IDX files, in order.

    ``path`` (if given) replaces the search: ``path/<name>/`` then ``path``. Otherwise each
    entry of ``$NEUROSIM_DATA`` (``os.pathsep``-separated; ``<dir>/<name>/`` then ``<dir>``),
    ``./datasets/<name>/``, the repository's ``datasets/<name>/`` (source checkouts only),
    then ``/usr/share/datasets/<name>/``.
    """
    if path is not None:
        p = Path(os.fspath(path)).expanduser()
        return [p / name, p]
    dirs = []
    for entry in os.environ.get("NEUROSIM_DATA", "").split(os.pathsep):
        if entry.strip():
            d = Path(entry.strip()).expanduser()
            dirs += [d / name, d]
    dirs.append(Path.cwd() / "datasets" / name)
    repo = _repo_dir()
    if repo is not None:
        dirs.append(repo / name)
    dirs.append(SYSTEM_DIR / name)
    out = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def _find_file(directory, stem):
    """``directory/stem`` as plain, ``.gz`` or the ``train-images.idx3-ubyte`` spelling."""
    alt = stem.replace("-idx", ".idx")
    for fname in (stem, stem + ".gz", alt, alt + ".gz"):
        f = directory / fname
        if f.is_file():
            return f
    return None


def find_idx_files(name, path=None):
    """The four IDX files of ``name`` (dict role -> Path) in the first directory of
    :func:`search_path` that holds all four; :class:`DatasetNotFoundError` otherwise."""
    looked = []
    for d in search_path(name, path):
        if not d.is_dir():
            looked.append("  %s  (no such directory)" % d)
            continue
        found = {role: _find_file(d, stem) for role, stem in IDX_FILES.items()}
        if all(found.values()):
            return found
        have = [IDX_FILES[r] for r, f in found.items() if f]
        looked.append("  %s  (%s)" % (d, "has only " + ", ".join(have) if have
                                      else "none of the four files"))
    raise DatasetNotFoundError(_missing_message(name, looked, path))


def _missing_message(name, looked, path):
    files = ", ".join(s + "[.gz]" for s in IDX_FILES.values())
    head = "%s not found: need the four IDX files %s.\nSearched%s:\n%s\n" % (
        "Fashion-MNIST" if name == "fashion-mnist" else "MNIST", files,
        " (path=%r)" % (os.fspath(path),) if path is not None else "", "\n".join(looked))
    if name == "fashion-mnist":
        how = ("To get it: apt-get install dataset-fashion-mnist (installs them in "
               "/usr/share/datasets/fashion-mnist/), or put the four IDX files in "
               "./datasets/fashion-mnist/, or set NEUROSIM_DATA to a directory holding them "
               "(or holding a fashion-mnist/ subdirectory).")
    else:
        how = ("MNIST is not shipped with neurosim and has no Debian package: put its four IDX "
               "files (%s, each plain or .gz) in ./datasets/mnist/, or set NEUROSIM_DATA to a "
               "directory holding them (or holding an mnist/ subdirectory), or pass path=."
               % ", ".join(IDX_FILES.values()))
    return head + how


def _read_bytes(path):
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DatasetError("%s: corrupt gzip file (%s)" % (path, exc)) from None
    except OSError as exc:
        raise DatasetError("%s: cannot read (%s)" % (path, exc)) from None


def _parse_header(path, buf, magic):
    kind = "image" if magic == IMAGES_MAGIC else "label"
    ndim_expected = magic & 0xFF
    if len(buf) < 4:
        raise DatasetError("%s: truncated IDX file (%d bytes, not even a magic number)"
                           % (path, len(buf)))
    (got,) = struct.unpack(">I", buf[:4])
    if got >> 8 != 0x000008:
        raise DatasetError("%s: wrong magic number 0x%08X; an IDX %s file (unsigned bytes) "
                           "starts with 0x%08X" % (path, got, kind, magic))
    ndim = got & 0xFF
    if ndim != ndim_expected:
        raise DatasetError("%s: wrong number of dimensions %d (magic 0x%08X); an IDX %s file "
                           "has %d (magic 0x%08X)" % (path, ndim, got, kind, ndim_expected, magic))
    end = 4 + 4 * ndim
    if len(buf) < end:
        raise DatasetError("%s: truncated IDX file (%d bytes, the header alone needs %d)"
                           % (path, len(buf), end))
    return tuple(int(v) for v in struct.unpack(">%dI" % ndim, buf[4:end])), end


def idx_shape(path, magic=IMAGES_MAGIC):
    """The shape an IDX file's header declares, reading only the header (cheap for ``.gz``)."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                buf = f.read(4 + 4 * (magic & 0xFF))
        else:
            with open(path, "rb") as f:
                buf = f.read(4 + 4 * (magic & 0xFF))
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DatasetError("%s: corrupt gzip file (%s)" % (path, exc)) from None
    return _parse_header(path, buf, magic)[0]


def read_idx(path, magic=IMAGES_MAGIC):
    """An IDX ubyte file as a read-only uint8 array of the header's shape (cached per file and
    modification time); every defect is a :class:`DatasetError` naming the file (bad gzip,
    magic, dimensions, size)."""
    path = Path(path)
    st = path.stat() if path.is_file() else None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size) if st else (str(path), 0, 0)
    return _read_idx_cached(key, magic)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(key, magic):
    path = Path(key[0])
    buf = _read_bytes(path)
    shape, start = _parse_header(path, buf, magic)
    need = int(np.prod(shape, dtype=np.int64))
    have = len(buf) - start
    if have < need:
        raise DatasetError("%s: truncated IDX file: the header declares shape %s (%d bytes of "
                           "data) but only %d bytes follow" % (path, shape, need, have))
    if have > need:
        raise DatasetError("%s: IDX file has %d unexpected bytes after the %d bytes of data "
                           "its header declares (shape %s)" % (path, have - need, need, shape))
    if shape[0] == 0:
        raise DatasetError("%s: IDX file holds no examples (shape %s)" % (path, shape))
    arr = np.frombuffer(buf, dtype=np.uint8, offset=start).reshape(shape)
    arr.flags.writeable = False
    return arr


def read_idx_pair(images_path, labels_path, n_classes=10):
    """Images ``(n, rows*cols)`` uint8 and labels ``(n,)`` int64 from an IDX pair, checking
    that the counts agree and every label is in ``0 .. n_classes-1``."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError("%s has %d images but %s has %d labels; the files do not belong "
                           "together" % (images_path, images.shape[0], labels_path,
                                         labels.shape[0]))
    bad = np.flatnonzero(labels >= n_classes)
    if bad.size:
        raise DatasetError("%s: %d labels out of range 0..%d (first: label %d at index %d)"
                           % (labels_path, bad.size, n_classes - 1, labels[bad[0]], bad[0]))
    return images.reshape(images.shape[0], -1), labels.astype(np.int64)


def _idx_dataset(name, opts):
    files = find_idx_files(name, opts["path"])
    xtr, ltr = read_idx_pair(files["train_images"], files["train_labels"])
    xte, lte = read_idx_pair(files["test_images"], files["test_labels"])
    if xtr.shape[1] != xte.shape[1]:
        raise DatasetError("%s has %d pixels per image but %s has %d; the files do not belong "
                           "together" % (files["train_images"], xtr.shape[1],
                                         files["test_images"], xte.shape[1]))
    classes = FASHION_CLASSES if name == "fashion-mnist" else tuple(str(i) for i in range(10))
    side = idx_shape(files["train_images"])[1:]
    return Dataset(name, xtr, None, ltr, xte, None, lte, 10,
                   source=str(files["train_images"].parent), class_names=classes,
                   info={"files": {k: str(v) for k, v in files.items()}},
                   image_shape=(1,) + tuple(side)), 255.0


# -- CIFAR-10 (binary version) ------------------------------------------------------------------
def find_cifar_files(path=None):
    """CIFAR-10's six binary files (dict ``"train"`` -> five Paths, ``"test"`` -> Path) in
    the first directory of :func:`search_path` (each also looked at through a
    ``cifar-10-batches-bin/`` subdirectory) that holds all six; :class:`DatasetNotFoundError`
    listing every place searched otherwise."""
    names = CIFAR_TRAIN + (CIFAR_TEST,)
    looked, dirs = [], []
    for d in search_path("cifar-10", path):
        dirs += [d / CIFAR_SUBDIR, d]
    for d in dirs:
        if not d.is_dir():
            looked.append("  %s  (no such directory)" % d)
            continue
        found = {n: _find_file(d, n) for n in names}
        if all(found.values()):
            return {"train": [found[n] for n in CIFAR_TRAIN], "test": found[CIFAR_TEST]}
        have = [n for n, f in found.items() if f]
        looked.append("  %s  (%s)" % (d, "has only " + ", ".join(have) if have
                                      else "none of the six files"))
    raise DatasetNotFoundError(
        "CIFAR-10 not found: need the six files of its binary version (%s, each plain or .gz)."
        "\nSearched%s:\n%s\nCIFAR-10 is not shipped with neurosim and has no Debian package: "
        "unpack the binary version's archive (cifar-10-binary.tar.gz, which holds "
        "cifar-10-batches-bin/) into ./datasets/cifar-10/, or set NEUROSIM_DATA to a directory "
        "holding it, or pass path=. (The python version's pickles are not read.)"
        % (", ".join(names), " (path=%r)" % (os.fspath(path),) if path is not None else "",
           "\n".join(looked)))


def read_cifar_batch(path):
    """Images ``(n, 3072)`` uint8 (channel by channel, row by row) and labels ``(n,)`` int64
    of one CIFAR-10 binary batch: records of a label byte and 3,072 pixel bytes; a size that
    is not a whole number of records, or a label above 9, is a :class:`DatasetError` naming
    the file."""
    buf = _read_bytes(path)
    if not buf or len(buf) % CIFAR_RECORD:
        raise DatasetError("%s: not a CIFAR-10 binary batch: %d bytes is not a whole number of "
                           "%d-byte records (a label byte, then 3 x 32 x 32 pixel bytes)"
                           % (path, len(buf), CIFAR_RECORD))
    rec = np.frombuffer(buf, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = rec[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise DatasetError("%s: %d labels out of range 0..9 (first: label %d in record %d)"
                           % (path, bad.size, labels[bad[0]], bad[0]))
    return rec[:, 1:], labels


def _cifar_dataset(name, opts):
    files = find_cifar_files(opts["path"])
    parts = [read_cifar_batch(f) for f in files["train"]]
    xtr = np.concatenate([p[0] for p in parts])
    ltr = np.concatenate([p[1] for p in parts])
    xte, lte = read_cifar_batch(files["test"])
    return Dataset(name, xtr, None, ltr, xte, None, lte, 10,
                   source=str(files["test"].parent), class_names=CIFAR_CLASSES,
                   info={"files": [str(f) for f in files["train"]] + [str(files["test"])]},
                   image_shape=(3, 32, 32)), 255.0


# -- synthetic ----------------------------------------------------------------------------------
def _balance_offsets(out, iters=500):
    """Offsets ``c`` such that ``argmax(out - c)`` puts about equally many rows in each class."""
    m, k = out.shape
    c = np.zeros(k)
    scale = float(np.std(out)) + 1e-12
    best_err, best = np.inf, c.copy()
    for it in range(iters):
        counts = np.bincount(np.argmax(out - c, axis=1), minlength=k)
        err = np.max(np.abs(counts - m / k))
        if err < best_err:
            best_err, best = err, c.copy()
            if err < 1:
                break
        c += (counts / m - 1.0 / k) * scale * 2.0 / (1.0 + it / 20.0)
    return best


def teacher(n_in=20, n_hidden=16, n_classes=4, n_train=1000, n_test=200, seed=0, gain=1.0,
            n_reference=512):
    """A controlled task: inputs uniform in [0, 1]^n_in, labelled by a fixed random network.

    The teacher is ``layered([n_in, n_hidden, n_classes], "logistic", seed=seed+1000,
    gain=gain)`` relaxed with ``relax(net, x, tol=1e-8)``; the label is
    ``argmax(output - offsets)``. The offsets are fitted once, on ``n_reference`` extra inputs,
    so that each class gets about ``1/n_classes`` of them (a raw argmax is badly unbalanced);
    the labelling is then one fixed function, independent of ``n_train``/``n_test``.
    Returns ``(x_train, labels_train, x_test, labels_test, info)``.
    """
    from .network import layered
    from .relax import relax
    rng = np.random.default_rng([seed, 2])
    x_ref = np.random.default_rng([seed, 3]).uniform(0.0, 1.0, (n_reference, n_in))
    x = rng.uniform(0.0, 1.0, (n_train + n_test, n_in))
    net = layered([n_in, n_hidden, n_classes], activation="logistic", seed=seed + 1000, gain=gain)
    res = relax(net, np.concatenate([x_ref, x]), tol=1e-8)
    out = res.state[net.outputs[0]]
    offsets = _balance_offsets(out[:n_reference])
    labels = np.argmax(out[n_reference:] - offsets, axis=1)
    info = {"teacher": net, "offsets": offsets, "relax_steps": int(res.steps)}
    return x[:n_train], labels[:n_train], x[n_train:], labels[n_train:], info


def _teacher(name, opts):
    sizes = {k: _int_option(opts, k, m) for k, m in
             (("n_in", 1), ("n_hidden", 1), ("n_classes", 2), ("n_train", 1), ("n_test", 1),
              ("n_reference", 2))}
    if sizes["n_reference"] < sizes["n_classes"]:
        raise DatasetError("option n_reference must be at least n_classes (%d), got %d"
                           % (sizes["n_classes"], sizes["n_reference"]))
    gain = opts["gain"]
    if isinstance(gain, bool) or not isinstance(gain, (int, float, np.integer, np.floating)) \
            or not np.isfinite(gain) or gain <= 0:
        raise DatasetError("option gain must be a positive number, got %r" % (gain,))
    xtr, ltr, xte, lte, info = teacher(seed=opts["seed"], gain=float(gain), **sizes)
    info.update(sizes, gain=float(gain))
    return Dataset("teacher", xtr, None, ltr, xte, None, lte, sizes["n_classes"],
                   source="synthetic: teacher network layered(%s, seed=%d, gain=%g)"
                   % ([sizes["n_in"], sizes["n_hidden"], sizes["n_classes"]],
                      opts["seed"] + 1000, gain),
                   class_names=tuple(str(i) for i in range(sizes["n_classes"])), info=info), 1.0


XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_LABELS = np.array([0, 1, 1, 0])


def _xor(name, opts):
    """The 4 XOR points. Train: the points repeated ``repeat`` times, each copy jittered by
    Gaussian noise of std ``jitter`` clipped to [0, 1]; test: the 4 clean points (so with
    the defaults train == test, as usual for XOR)."""
    repeat = _int_option(opts, "repeat", 1)
    jitter = _float_option(opts, "jitter", 0.0, 0.5)
    x = np.tile(XOR_X, (repeat, 1))
    if jitter > 0:
        rng = np.random.default_rng([opts["seed"], 4])
        x = np.clip(x + rng.normal(0.0, jitter, x.shape), 0.0, 1.0)
    return Dataset("xor", x, None, np.tile(XOR_LABELS, repeat), XOR_X.copy(), None,
                   XOR_LABELS.copy(), 2, source="synthetic: XOR truth table",
                   class_names=("0", "1"), info={"repeat": repeat, "jitter": jitter}), 1.0


def bars(size=8, n_train=1000, n_test=200, noise=0.1, seed=0):
    """A small image task for convolutional networks: ``size x size`` grey images, each one
    bar of ``size // 2 + 1`` bright pixels at a random place, horizontal, vertical, diagonal
    or anti-diagonal (the class), plus Gaussian pixel noise of std ``noise``, clipped to
    [0, 1]. The class does not depend on where the bar is (what convolutions share).
    Returns ``(x, labels)`` of ``n_train + n_test`` images, ``x`` ``(n, size * size)``."""
    rng = np.random.default_rng([seed, 5])
    n, L = n_train + n_test, size // 2 + 1
    labels = rng.integers(0, 4, n)
    x = np.zeros((n, size, size))
    k = np.arange(L)
    a = rng.integers(0, size, n)                # the row (or column) of a straight bar
    b = rng.integers(0, size - L + 1, n)        # where along it the bar starts
    c = rng.integers(0, size - L + 1, n)        # a diagonal's other offset
    for i in range(n):
        rows, cols = {0: (np.full(L, a[i]), b[i] + k), 1: (b[i] + k, np.full(L, a[i])),
                      2: (b[i] + k, c[i] + k), 3: (b[i] + k, c[i] + L - 1 - k)}[labels[i]]
        x[i, rows, cols] = 1.0
    x = np.clip(x + rng.normal(0.0, noise, x.shape), 0.0, 1.0) if noise > 0 else x
    return x.reshape(n, -1), labels


def _bars(name, opts):
    size = _int_option(opts, "size", 4)
    n_train, n_test = _int_option(opts, "n_train", 1), _int_option(opts, "n_test", 1)
    noise = _float_option(opts, "noise", 0.0, 1.0)
    x, labels = bars(size, n_train, n_test, noise, opts["seed"])
    return Dataset("bars", x[:n_train], None, labels[:n_train], x[n_train:], None,
                   labels[n_train:], 4, source="synthetic: bars %dx%d, noise %g"
                   % (size, size, noise), class_names=BARS_CLASSES,
                   info={"size": size, "noise": noise}, image_shape=(1, size, size)), 1.0


# -- checksums ----------------------------------------------------------------------------------
def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(name, path=None):
    """SHA-256 of the files ``load(name)`` would read, against the known checksums.

    Returns ``{file: {"sha256": ..., "expected": ... or None, "ok": bool or None}}`` (``ok`` is
    None where no checksum is known, e.g. MNIST or uncompressed copies).
    """
    if name not in DATASETS:
        raise DatasetError("unknown dataset %r; valid names are: %s" % (name, ", ".join(DATASETS)))
    if name in ("teacher", "xor", "bars"):
        raise DatasetError("dataset %r is synthetic: there are no files to verify" % name)
    if name == "digits":
        try:
            import sklearn
        except ImportError:
            raise DatasetError("dataset 'digits' comes with scikit-learn, which is not "
                               "installed: pip install scikit-learn") from None
        files = [Path(sklearn.__file__).parent / "datasets" / "data" / "digits.csv.gz"]
    else:
        files = list(find_idx_files(name, path).values()) if name != "cifar-10" else \
            [*find_cifar_files(path)["train"], find_cifar_files(path)["test"]]
    known = CHECKSUMS.get(name, {})
    out = {}
    for f in files:
        digest = _sha256(f)
        expected = known.get(f.name)
        out[str(f)] = {"sha256": digest, "expected": expected,
                       "ok": None if expected is None else digest == expected}
    return out
