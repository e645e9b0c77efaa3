"""MATH.md section 7 metrics on hand-made vectors, where every number is known in advance."""
from __future__ import annotations

import numpy as np
import pytest

from neurosim.fidelity import compare, negate, time_resolved


def one(a, b):
    """Metrics of two plain vectors (a single-key dict)."""
    m = compare({"w": np.asarray(a, float)}, {"w": np.asarray(b, float)})
    assert m["per_param"]["w"] == {k: m[k] for k in m["per_param"]["w"]}
    return m


def test_cosine():
    assert one([1, 0], [0, 1])["cosine"] == pytest.approx(0.0, abs=1e-15)
    assert one([1, 2, 3], [1, 2, 3])["cosine"] == pytest.approx(1.0, abs=1e-15)
    assert one([1, 2, 3], [-2, -4, -6])["cosine"] == pytest.approx(-1.0, abs=1e-15)
    assert one([1, 1], [1, 0])["cosine"] == pytest.approx(1 / np.sqrt(2), abs=1e-15)
    assert one([3, 4], [4, 3])["cosine"] == pytest.approx(24 / 25, abs=1e-15)


def test_relative_error_is_relative_to_the_reference():
    m = one([1, 2, 2], [1, 2, 3])            # |a - b| = 1, |b| = sqrt(14)
    assert m["rel_error"] == pytest.approx(1 / np.sqrt(14), rel=1e-14)
    assert one([2, 0], [1, 0])["rel_error"] == pytest.approx(1.0)
    assert one([0, 0], [1, 0])["rel_error"] == pytest.approx(1.0)
    assert one([1, 0], [2, 0])["rel_error"] == pytest.approx(0.5)   # not symmetric in a, b


def test_relative_rmse_ernoult_formula():
    """``sqrt(sum (a-b)^2 / max(sum a^2, sum b^2))`` (Ernoult et al. 2019)."""
    m = one([1, 2, 2], [1, 2, 3])            # diff^2 = 1, sum a^2 = 9, sum b^2 = 14
    assert m["rel_rmse"] == pytest.approx(np.sqrt(1 / 14), rel=1e-14)
    m = one([3, 4, 0], [0, 1, 0])            # diff^2 = 9 + 9 = 18, max(25, 1) = 25
    assert m["rel_rmse"] == pytest.approx(np.sqrt(18 / 25), rel=1e-14)
    assert m["rel_error"] == pytest.approx(np.sqrt(18), rel=1e-14)
    # symmetric in its arguments; opposite vectors of equal norm give 2
    assert one([0, 1, 0], [3, 4, 0])["rel_rmse"] == pytest.approx(np.sqrt(18 / 25), rel=1e-14)
    assert one([1, 0], [-1, 0])["rel_rmse"] == pytest.approx(2.0, rel=1e-14)
    assert one([2, 0], [1, 0])["rel_rmse"] == pytest.approx(0.5)


def test_sign_agreement_uses_the_threshold_on_the_reference():
    b = [1.0, -0.5, 1e-4, -2e-3, 5e-4]       # threshold 1e-3 * max|b| = 1e-3
    a = [1.0, 0.5, -1.0, -1.0, -7.0]         # agree, disagree, (ignored), agree, (ignored)
    assert one(a, b)["sign_agreement"] == pytest.approx(2 / 3)
    # the threshold scales with max|b|
    assert one(np.array(a) * 5, np.array(b) * 1e3)["sign_agreement"] == pytest.approx(2 / 3)
    assert one([1, 1, 1], [1, 1, 1])["sign_agreement"] == 1.0
    assert one([-1, -1, 2], [1, 1, 2])["sign_agreement"] == pytest.approx(1 / 3)
    # entries exactly zero in a count as disagreeing with a non-zero reference
    assert one([0.0, 1.0], [1.0, 1.0])["sign_agreement"] == pytest.approx(0.5)


def test_zero_vectors():
    m = one([0, 0], [0, 0])
    assert m["cosine"] == 1.0 and m["rel_error"] == 0.0 and m["rel_rmse"] == 0.0
    m = one([1, 0], [0, 0])
    assert m["cosine"] == 0.0 and m["rel_error"] == float("inf") and m["rel_rmse"] == 1.0


def test_per_param_keys_and_concatenation():
    est = {"W:x->h": np.array([[1.0, 2.0], [0.0, -1.0]]), "b:h": np.array([0.5, -0.5]),
           "b:y": np.array([3.0])}
    ref = {"W:x->h": np.array([[1.0, 1.0], [1.0, -1.0]]), "b:h": np.array([-0.5, -0.5]),
           "b:y": np.array([2.0])}
    m = compare(est, ref)
    assert set(m) == {"cosine", "rel_error", "rel_rmse", "sign_agreement", "per_param"}
    assert set(m["per_param"]) == set(ref)
    for k in ref:
        single = one(est[k], ref[k])
        assert m["per_param"][k] == {name: single[name] for name in m["per_param"][k]}
    a = np.concatenate([est[k].ravel() for k in ref])
    b = np.concatenate([ref[k].ravel() for k in ref])
    assert m["cosine"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert m["rel_error"] == pytest.approx(np.linalg.norm(a - b) / np.linalg.norm(b))
    assert m["sign_agreement"] == pytest.approx(5 / 7)
    # the key order of the dicts does not matter
    m2 = compare(dict(reversed(list(est.items()))), ref)
    assert all(m2[k] == pytest.approx(m[k]) for k in ("cosine", "rel_error", "rel_rmse"))


def test_compare_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="keys"):
        compare({"a": np.zeros(2)}, {"b": np.zeros(2)})
    with pytest.raises(ValueError, match="shape"):
        compare({"a": np.zeros(2)}, {"a": np.zeros(3)})
    with pytest.raises(TypeError, match="dict"):
        compare(np.zeros(2), {"a": np.zeros(2)})


def test_time_resolved_on_lists_of_dicts():
    ref = [{"w": np.array([1.0, 0.0])}, {"w": np.array([0.0, 2.0])}, {"w": np.array([1e-6, 0])}]
    est = [{"w": np.array([1.0, 0.0])}, {"w": np.array([2.0, 0.0])}, {"w": np.array([-1.0, 0])}]
    tr = time_resolved(est, ref)
    assert set(tr) >= {"cosine", "rel_error", "rel_rmse", "sign_agreement", "norm", "valid"}
    assert np.allclose(tr["cosine"], [1.0, 0.0, -1.0])
    assert np.allclose(tr["rel_error"], [0.0, np.sqrt(8) / 2, (1 + 1e-6) / 1e-6])
    assert np.allclose(tr["norm"], [1.0, 2.0, 1e-6])
    # valid: |ref_k| > 1e-4 max_k |ref_k| = 2e-4
    assert tr["valid"].tolist() == [True, True, False]
    assert time_resolved(est, ref, floor=1e-7)["valid"].tolist() == [True, True, True]
    with pytest.raises(ValueError, match="length"):
        time_resolved(est[:2], ref)


def test_time_resolved_on_dicts_of_time_major_arrays():
    """``u[pop]`` vs ``-S[pop]``: (steps, batch, n) arrays per population."""
    rng = np.random.default_rng(0)
    S = {"h": rng.normal(size=(4, 2, 3)), "y": rng.normal(size=(4, 2, 2))}
    u = negate(S)
    assert np.array_equal(u["h"], -S["h"])
    tr = time_resolved(u, negate(S))
    assert tr["cosine"].shape == (4,) and np.allclose(tr["cosine"], 1.0)
    assert np.allclose(tr["rel_error"], 0.0) and tr["valid"].all()
    norms = [np.sqrt(np.sum(S["h"][k] ** 2) + np.sum(S["y"][k] ** 2)) for k in range(4)]
    assert np.allclose(tr["norm"], norms)
    # a perturbation at one step shows up at that step only
    u2 = {p: v.copy() for p, v in u.items()}
    u2["y"][2] *= -1
    tr2 = time_resolved(u2, negate(S))
    assert np.allclose(tr2["cosine"][[0, 1, 3]], 1.0) and tr2["cosine"][2] < 1 - 1e-3
    tr3 = time_resolved(S, negate(S))
    assert np.allclose(tr3["cosine"], -1.0) and np.allclose(tr3["sign_agreement"], 0.0)


def test_negate_on_lists_of_dicts():
    series = [{"a": np.array([1.0, -2.0])}, {"a": np.array([0.0, 3.0])}]
    neg = negate(series)
    assert [n["a"].tolist() for n in neg] == [[-1.0, 2.0], [-0.0, -3.0]]
    assert series[0]["a"].tolist() == [1.0, -2.0]
