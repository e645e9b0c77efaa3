"""CIFAR-10, its binary version: finding the six files on the search path, reading a batch, and
the dataset they make."""
from __future__ import annotations

import os

import numpy as np

from .dataset import Dataset
from .errors import DatasetError, DatasetNotFoundError
from .files import find_file, read_bytes, search_path

CIFAR_TRAIN = tuple("data_batch_%d.bin" % i for i in range(1, 6))
CIFAR_TEST = "test_batch.bin"
CIFAR_SUBDIR = "cifar-10-batches-bin"       # the directory the official archive unpacks to
CIFAR_RECORD = 1 + 3 * 32 * 32              # a label byte, then 1,024 bytes per channel (R, G, B)
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck")


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
        found = {n: find_file(d, n) for n in names}
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
    buf = read_bytes(path)
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


def cifar_dataset(name, opts):
    """CIFAR-10 from its binary version: ``(Dataset, scale)`` for :func:`finish`."""
    files = find_cifar_files(opts["path"])
    parts = [read_cifar_batch(f) for f in files["train"]]
    xtr = np.concatenate([p[0] for p in parts])
    ltr = np.concatenate([p[1] for p in parts])
    xte, lte = read_cifar_batch(files["test"])
    return Dataset(name, xtr, None, ltr, xte, None, lte, 10,
                   source=str(files["test"].parent), class_names=CIFAR_CLASSES,
                   info={"files": [str(f) for f in files["train"]] + [str(files["test"])]},
                   image_shape=(3, 32, 32)), 255.0
