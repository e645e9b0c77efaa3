"""Dataset loaders: digits, Fashion-MNIST/MNIST (IDX files on a search path), CIFAR-10 and
CIFAR-100 (their binary versions, from the user's files on the same search path), and the synthetic teacher,
xor and bars (a small image task).

Every loader returns a :class:`Dataset` with inputs in [0, 1] (``(n, n_features)``) and
one-hot targets (``(n, n_classes)``) for a train and a test split::

    ds = neurosim.datasets.load("fashion-mnist", limit_train=1000, seed=0)
    for x, y in ds.batches(32, np.random.default_rng(0)):
        ...

Image datasets say their ``(channels, height, width)`` in :attr:`Dataset.image_shape` (a row
of ``x`` is the image flattened channel by channel, row by row).

Nothing is ever downloaded. IDX and CIFAR files are found on :func:`search_path` (``$NEUROSIM_DATA``,
``./datasets/<name>/``, the repository's ``datasets/<name>/``, ``/usr/share/datasets/<name>/``);
``datasets/README.md`` gives the source, licence and SHA-256 of each dataset.

The package, one concept per module: :mod:`.dataset` (the :class:`Dataset` and its finishing),
:mod:`.options` (names and options), :mod:`.files` (the search path), :mod:`.idx`,
:mod:`.cifar`, :mod:`.digits`, :mod:`.synthetic` (the loaders) and :mod:`.checksums`.
"""
from __future__ import annotations

from .checksums import CHECKSUMS, verify
from .cifar import (CIFAR100_CLASSES, CIFAR100_RECORD, CIFAR100_SUBDIR, CIFAR100_TEST,
                    CIFAR100_TRAIN, CIFAR_CLASSES, CIFAR_RECORD, CIFAR_SUBDIR, CIFAR_TEST,
                    CIFAR_TRAIN, cifar_dataset, find_cifar_files, read_cifar_batch)
from .dataset import Dataset, finish
from .digits import digits_dataset
from .errors import DatasetError, DatasetNotFoundError
from .files import SYSTEM_DIR, search_path
from .idx import (FASHION_CLASSES, IDX_FILES, IMAGES_MAGIC, LABELS_MAGIC, find_idx_files,
                  idx_dataset, idx_shape, read_idx, read_idx_pair)
from .options import DATASETS, check_name, resolve_options
from .synthetic import (BARS_CLASSES, XOR_LABELS, XOR_X, bars, bars_dataset, teacher,
                        teacher_dataset, xor_dataset)

__all__ = ["DATASETS", "Dataset", "DatasetError", "DatasetNotFoundError", "available", "load",
           "verify", "search_path", "find_idx_files", "idx_shape", "read_idx", "read_idx_pair",
           "find_cifar_files", "read_cifar_batch", "teacher", "bars", "CHECKSUMS", "IDX_FILES",
           "IMAGES_MAGIC", "LABELS_MAGIC", "SYSTEM_DIR", "CIFAR_TRAIN", "CIFAR_TEST",
           "CIFAR_SUBDIR", "CIFAR_RECORD", "CIFAR_CLASSES", "CIFAR100_TRAIN", "CIFAR100_TEST",
           "CIFAR100_SUBDIR", "CIFAR100_RECORD", "CIFAR100_CLASSES", "BARS_CLASSES", "FASHION_CLASSES",
           "XOR_X", "XOR_LABELS"]

# name -> loader(name, options) -> (Dataset with raw inputs, the scale that maps them to [0, 1])
LOADERS = {"digits": digits_dataset, "fashion-mnist": idx_dataset, "mnist": idx_dataset,
           "cifar-10": cifar_dataset, "cifar-100": cifar_dataset, "teacher": teacher_dataset, "xor": xor_dataset,
           "bars": bars_dataset}


def available():
    """The dataset names :func:`load` accepts."""
    return list(DATASETS)


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
    * ``cifar-100``: ``path`` (a directory with ``train.bin`` and ``test.bin`` of CIFAR-100's
      binary version, or with a ``cifar-100/`` or ``cifar-100-binary/`` subdirectory holding
      them); the 100 fine labels.
    * ``bars``: ``size=8, n_train=1000, n_test=200, noise=0.1`` (see :func:`bars`).
    * ``teacher``: ``n_in=20, n_hidden=16, n_classes=4, n_train=1000, n_test=200, gain=1.0,
      n_reference=512`` (see :func:`teacher`).
    * ``xor``: ``repeat=1, jitter=0.0`` (see :func:`xor`).
    """
    opts = resolve_options(check_name(name), options)
    ds, scale = LOADERS[name](name, opts)
    return finish(ds, opts, scale)
