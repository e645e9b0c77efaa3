"""The :class:`Dataset` every loader returns, and the finishing of a loaded dataset (limits,
dtype, scale, one-hot targets)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DatasetError


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


def _one_hot(labels, n_classes, dtype):
    y = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    y[np.arange(labels.shape[0]), labels] = 1
    return y


def _subset(n, limit, rng):
    if limit is None or limit >= n:
        return None
    return np.sort(rng.choice(n, size=limit, replace=False))


def finish(ds, opts, scale):
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
