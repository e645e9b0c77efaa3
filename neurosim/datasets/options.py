"""The dataset names, the options each accepts, and the checks of option values."""
from __future__ import annotations

import numpy as np

from .errors import DatasetError

DATASETS = ("digits", "fashion-mnist", "mnist", "cifar-10", "cifar-100", "teacher", "xor", "bars")

# every dataset's options and their defaults
COMMON = {"limit_train": None, "limit_test": None, "seed": 0, "dtype": "float64"}
OPTIONS = {
    "digits": dict(COMMON, test_fraction=0.2),
    "fashion-mnist": dict(COMMON, path=None),
    "mnist": dict(COMMON, path=None),
    "cifar-10": dict(COMMON, path=None),
    "cifar-100": dict(COMMON, path=None),
    "bars": dict(COMMON, size=8, n_train=1000, n_test=200, noise=0.1),
    "teacher": dict(COMMON, n_in=20, n_hidden=16, n_classes=4, n_train=1000, n_test=200,
                    gain=1.0, n_reference=512),
    "xor": dict(COMMON, repeat=1, jitter=0.0),
}


def int_option(opts, key, minimum, allow_none=False):
    """``opts[key]`` as an int ``>= minimum`` (or None where allowed); a :class:`DatasetError`
    naming the option otherwise."""
    v = opts[key]
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise DatasetError("option %s must be an integer >= %d%s, got %r"
                           % (key, minimum, " or None" if allow_none else "", v))
    return int(v)


def float_option(opts, key, lo, hi, lo_open=False, hi_open=False):
    """``opts[key]`` as a finite float in the interval from ``lo`` to ``hi`` (each end open or
    closed); a :class:`DatasetError` naming the option otherwise."""
    v = opts[key]
    ok = not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) \
        and np.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        raise DatasetError("option %s must be a number in %s%g, %g%s, got %r"
                           % (key, "(" if lo_open else "[", lo, hi, ")" if hi_open else "]", v))
    return float(v)


def resolve_options(name, options):
    """Dataset ``name``'s options: its defaults updated by ``options``, an unknown option
    refused, the common ones checked and ``dtype`` made a numpy dtype."""
    valid = OPTIONS[name]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DatasetError("unknown option%s %s for dataset %r; its options are: %s"
                           % ("s" if len(unknown) > 1 else "", ", ".join(unknown), name,
                              ", ".join(sorted(valid))))
    opts = dict(valid, **options)
    int_option(opts, "seed", 0)
    int_option(opts, "limit_train", 1, allow_none=True)
    int_option(opts, "limit_test", 1, allow_none=True)
    try:
        dt = np.dtype(opts["dtype"])
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise DatasetError("option dtype must be 'float32' or 'float64', got %r" % (opts["dtype"],))
    opts["dtype"] = dt
    return opts


def check_name(name):
    """``name`` if it is one of :data:`DATASETS`; a :class:`DatasetError` listing them otherwise."""
    if name not in DATASETS:
        raise DatasetError("unknown dataset %r; valid names are: %s" % (name, ", ".join(DATASETS)))
    return name
