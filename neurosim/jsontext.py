"""Strict JSON out of neurosim: NaN and infinities become ``null`` (bare ``NaN`` tokens are not
JSON), numpy scalars and arrays become plain numbers and lists. Every JSON file and every
``--json`` line neurosim writes goes through :func:`dumps`."""
from __future__ import annotations

import json
import math

import numpy as np


def plain(obj):
    """``obj`` with non-finite floats as ``None`` and numpy values as Python ones."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def dumps(obj, **kwargs):
    """``json.dumps`` of :func:`plain` ``(obj)``, refusing anything that is not JSON."""
    return json.dumps(plain(obj), allow_nan=False, **kwargs)


__all__ = ["dumps", "plain"]
