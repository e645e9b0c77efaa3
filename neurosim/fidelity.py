"""How close an estimate is to a reference (docs/maths.md section 7), per parameter key, over all
parameters concatenated, and time-resolved over the nudged phase."""
from __future__ import annotations

import numpy as np
from .errors import ArgumentError

METRICS = ("cosine", "rel_error", "rel_rmse", "sign_agreement")


def _metrics(a, b):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb == 0 else 0.0)
    diff = float(np.linalg.norm(a - b))
    rel = diff / nb if nb > 0 else (0.0 if diff == 0 else float("inf"))
    denom = max(na * na, nb * nb)
    rmse = float(np.sqrt(diff * diff / denom)) if denom > 0 else 0.0
    big = np.abs(b) > 1e-3 * (np.max(np.abs(b)) if b.size else 0.0)
    sign = float(np.mean(np.sign(a[big]) == np.sign(b[big]))) if np.any(big) else 1.0
    return {"cosine": cos, "rel_error": rel, "rel_rmse": rmse, "sign_agreement": sign}


def _as_dict(v, name):
    if isinstance(v, dict):
        return v
    raise TypeError("%s must be a dict of arrays keyed like net.params, got %s"
                    % (name, type(v).__name__))


def compare(estimate, reference):
    """Fidelity of ``estimate`` to ``reference`` (dicts with the same keys and shapes).

    Returns ``{"cosine", "rel_error", "rel_rmse", "sign_agreement", "per_param": {key: {...}}}``;
    the top-level numbers are over all entries concatenated.
    """
    est, ref = _as_dict(estimate, "estimate"), _as_dict(reference, "reference")
    if set(est) != set(ref):
        raise ArgumentError("estimate and reference have different keys: %s vs %s"
                         % (sorted(est), sorted(ref)))
    keys = list(ref)
    for k in keys:
        if np.shape(est[k]) != np.shape(ref[k]):
            raise ArgumentError("shape mismatch for %r: %s vs %s" % (k, np.shape(est[k]),
                                                                  np.shape(ref[k])))
    out = _metrics(np.concatenate([np.ravel(est[k]) for k in keys]),
                   np.concatenate([np.ravel(ref[k]) for k in keys]))
    out["per_param"] = {k: _metrics(est[k], ref[k]) for k in keys}
    return out


def time_resolved(estimates, references, floor=1e-4):
    """Metrics at each time step of two series.

    ``estimates`` and ``references`` are either lists of dicts (``P_k``, ``Thetabar_k``) or
    dicts of arrays with time first (``u[pop]``, ``S[pop]``). Returns a dict metric ->
    array over k, plus ``"norm"`` (reference norm per k) and ``"valid"``: the steps where
    ``|ref_k| > floor * |ref_0|`` (docs/maths.md section 6; ``max_k |ref_k|`` when ``ref_0`` is
    zero, as for ``Thetabar_0``); below that, rounding in differences dominates.
    """
    if isinstance(estimates, dict):
        keys = list(references)
        steps = len(references[keys[0]])
        est = [{k: estimates[k][i] for k in keys} for i in range(steps)]
        ref = [{k: references[k][i] for k in keys} for i in range(steps)]
    else:
        est, ref = list(estimates), list(references)
        if len(est) != len(ref):
            raise ArgumentError("series lengths differ: %d vs %d" % (len(est), len(ref)))
    rows = [compare(e, r) for e, r in zip(est, ref)]
    out = {m: np.array([row[m] for row in rows]) for m in METRICS}
    norms = np.array([np.sqrt(sum(np.sum(np.asarray(v, np.float64) ** 2) for v in r.values()))
                      for r in ref])
    out["norm"] = norms
    base = norms[0] if norms.size and norms[0] > 0 else (norms.max() if norms.size else 0.0)
    out["valid"] = norms > floor * base
    return out


def negate(series):
    """``-series`` for a dict of arrays or a list of dicts (e.g. ``-Sbar``)."""
    if isinstance(series, dict):
        return {k: -np.asarray(v) for k, v in series.items()}
    return [{k: -np.asarray(v) for k, v in d.items()} for d in series]
