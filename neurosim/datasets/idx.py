"""IDX files (MNIST, Fashion-MNIST): finding the four files on the search path, reading and
checking them, and the dataset they make."""
from __future__ import annotations

import functools
import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DatasetError, DatasetNotFoundError
from .files import find_file, read_bytes, search_path

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


def find_idx_files(name, path=None):
    """The four IDX files of ``name`` (dict role -> Path) in the first directory of
    :func:`search_path` that holds all four; :class:`DatasetNotFoundError` otherwise."""
    looked = []
    for d in search_path(name, path):
        if not d.is_dir():
            looked.append("  %s  (no such directory)" % d)
            continue
        found = {role: find_file(d, stem) for role, stem in IDX_FILES.items()}
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
    buf = read_bytes(path)
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


def idx_dataset(name, opts):
    """Fashion-MNIST or MNIST from its IDX files: ``(Dataset, scale)`` for :func:`finish`."""
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
