"""scikit-learn's 8x8 digits (UCI optical digits), split into train and test by class."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DatasetError
from .options import float_option

NO_SKLEARN = ("dataset 'digits' comes with scikit-learn, which is not installed: "
              "pip install scikit-learn")


def _stratified_split(labels, test_fraction, rng):
    """Indices ``(train, test)``: each class contributes ``round(test_fraction * n_c)`` tests."""
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(test_fraction * idx.size))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def digits_dataset(name, opts):
    """scikit-learn's 8x8 digits, split by class: ``(Dataset, scale)`` for :func:`finish`."""
    frac = float_option(opts, "test_fraction", 0.0, 1.0, lo_open=True, hi_open=True)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError(NO_SKLEARN) from None
    d = load_digits()
    x = np.asarray(d.data, dtype=np.float64)
    labels = np.asarray(d.target, dtype=np.int64)
    tr, te = _stratified_split(labels, frac, np.random.default_rng([opts["seed"], 1]))
    return Dataset("digits", x[tr], None, labels[tr], x[te], None, labels[te], 10,
                   source="scikit-learn %s (sklearn.datasets.load_digits, UCI optical digits)"
                   % _sklearn_version(), class_names=tuple(str(i) for i in range(10)),
                   info={"test_fraction": frac}, image_shape=(1, 8, 8)), 16.0


def digits_file():
    """The file scikit-learn reads its digits from (what :func:`~neurosim.datasets.verify`
    checks); a :class:`DatasetError` when scikit-learn is not installed."""
    try:
        import sklearn
    except ImportError:
        raise DatasetError(NO_SKLEARN) from None
    return Path(sklearn.__file__).parent / "datasets" / "data" / "digits.csv.gz"


def _sklearn_version():
    try:
        import sklearn
        return sklearn.__version__
    except ImportError:  # pragma: no cover
        return "?"
