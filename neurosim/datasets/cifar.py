"""CIFAR-10 and CIFAR-100, their binary versions: finding the files on the search path, reading
a batch, and the datasets they make."""
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

CIFAR100_TRAIN = "train.bin"
CIFAR100_TEST = "test.bin"
CIFAR100_SUBDIR = "cifar-100-binary"        # the directory the official archive unpacks to
CIFAR100_RECORD = 2 + 3 * 32 * 32           # a coarse and a fine label byte, then the pixels
# the 100 fine labels in label order (fine_label_names.txt of the archive)
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm")

# name -> (train files, test file, archive subdirectory, archive, label bytes, classes)
CIFAR_FORMATS = {
    "cifar-10": (CIFAR_TRAIN, CIFAR_TEST, CIFAR_SUBDIR, "cifar-10-binary.tar.gz", 1,
                 CIFAR_CLASSES),
    "cifar-100": ((CIFAR100_TRAIN,), CIFAR100_TEST, CIFAR100_SUBDIR, "cifar-100-binary.tar.gz",
                  2, CIFAR100_CLASSES),
}


def find_cifar_files(path=None, name="cifar-10"):
    """The binary files of ``name`` (``"cifar-10"``: five train batches and a test batch;
    ``"cifar-100"``: ``train.bin`` and ``test.bin``) as a dict ``"train"`` -> list of Paths,
    ``"test"`` -> Path, from the first directory of :func:`search_path` (each also looked at
    through the archive's subdirectory, ``cifar-10-batches-bin/`` or ``cifar-100-binary/``)
    that holds them all; :class:`DatasetNotFoundError` listing every place searched
    otherwise."""
    train, test, subdir, archive, _, _ = CIFAR_FORMATS[name]
    names = train + (test,)
    title = name.upper()
    looked, dirs = [], []
    for d in search_path(name, path):
        dirs += [d / subdir, d]
    for d in dirs:
        if not d.is_dir():
            looked.append("  %s  (no such directory)" % d)
            continue
        found = {n: find_file(d, n) for n in names}
        if all(found.values()):
            return {"train": [found[n] for n in train], "test": found[test]}
        have = [n for n, f in found.items() if f]
        looked.append("  %s  (%s)" % (d, "has only " + ", ".join(have) if have
                                      else "none of the %d files" % len(names)))
    raise DatasetNotFoundError(
        "%s not found: need the %d files of its binary version (%s, each plain or .gz)."
        "\nSearched%s:\n%s\n%s is not shipped with neurosim and has no Debian package: "
        "unpack the binary version's archive (%s, which holds %s/) into ./datasets/%s/, or "
        "set NEUROSIM_DATA to a directory holding it, or pass path=. (The python version's "
        "pickles are not read.)"
        % (title, len(names), ", ".join(names),
           " (path=%r)" % (os.fspath(path),) if path is not None else "", "\n".join(looked),
           title, archive, subdir, name))


def read_cifar_batch(path, name="cifar-10"):
    """Images ``(n, 3072)`` uint8 (channel by channel, row by row) and labels ``(n,)`` int64
    of one binary batch of ``name``: records of a label byte (CIFAR-100: a coarse then a fine
    label byte; the fine label is read) and 3,072 pixel bytes; a size that is not a whole
    number of records, or a label out of range, is a :class:`DatasetError` naming the file."""
    _, _, _, _, nlab, classes = CIFAR_FORMATS[name]
    record = nlab + 3 * 32 * 32
    buf = read_bytes(path)
    if not buf or len(buf) % record:
        raise DatasetError("%s: not a %s binary batch: %d bytes is not a whole number of "
                           "%d-byte records (%s, then 3 x 32 x 32 pixel bytes)"
                           % (path, name.upper(), len(buf), record,
                              "a label byte" if nlab == 1 else "a coarse and a fine label byte"))
    rec = np.frombuffer(buf, dtype=np.uint8).reshape(-1, record)
    labels = rec[:, nlab - 1].astype(np.int64)
    bad = np.flatnonzero(labels >= len(classes))
    if bad.size:
        raise DatasetError("%s: %d labels out of range 0..%d (first: label %d in record %d)"
                           % (path, bad.size, len(classes) - 1, labels[bad[0]], bad[0]))
    return rec[:, nlab:], labels


def cifar_dataset(name, opts):
    """CIFAR-10 or CIFAR-100 (fine labels) from its binary version: ``(Dataset, scale)`` for
    :func:`finish`."""
    classes = CIFAR_FORMATS[name][5]
    files = find_cifar_files(opts["path"], name)
    parts = [read_cifar_batch(f, name) for f in files["train"]]
    xtr = np.concatenate([p[0] for p in parts])
    ltr = np.concatenate([p[1] for p in parts])
    xte, lte = read_cifar_batch(files["test"], name)
    return Dataset(name, xtr, None, ltr, xte, None, lte, len(classes),
                   source=str(files["test"].parent), class_names=classes,
                   info={"files": [str(f) for f in files["train"]] + [str(files["test"])]},
                   image_shape=(3, 32, 32)), 255.0
