"""Argument checks in one place: each returns the checked value or raises an error that
names the argument and says what was expected (:class:`~neurosim.errors.ArgumentError` by
default; a caller may name its own error class, e.g. a circuit's)."""
from __future__ import annotations

import numbers

import numpy as np

from .errors import ArgumentError


def integer(name, v, minimum=0, allow_none=False, what="", error=ArgumentError):
    """``v`` as an int ``>= minimum`` (None passes when ``allow_none``)."""
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise error("%s must be an integer >= %d%s%s, got %r"
                    % (name, minimum, " or None" if allow_none else "", what, v))
    return int(v)


def positive(name, v, what="", error=ArgumentError):
    """``v`` as a positive finite float."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v <= 0:
        raise error("%s%s must be a positive number, got %r" % (name, what, v))
    return float(v)


def nonnegative(name, v, what="", error=ArgumentError):
    """``v`` as a finite float ``>= 0``."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v < 0:
        raise error("%s%s must be a number >= 0, got %r" % (name, what, v))
    return float(v)


def nonzero(name, v, error=ArgumentError):
    """``v`` as a non-zero finite float (a nudging strength)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v == 0:
        raise error("%s must be a non-zero finite number, got %r" % (name, v))
    return float(v)


def choice(name, v, options, error=ArgumentError):
    """``v`` if it is one of ``options``."""
    if v not in options:
        raise error("%s must be one of %s, got %r" % (name, tuple(options), v))
    return v


__all__ = ["integer", "positive", "nonnegative", "nonzero", "choice"]
