"""The flags of measurements that do not hold (neurosim.validity), from the numbers alone."""
from __future__ import annotations

import math

from neurosim import validity
from neurosim.validity import CHECK, INCOMPLETE, NOT_VALID


def log(n=10):
    return {"epoch_fraction": [i / 5 for i in range(n)], "cosine/all": [0.9] * n,
            "rbp_zero": [0.0] * n, "rbp_residual": [1e-12] * n, "free_distance": [1e-9] * n}


def test_a_clean_log_has_no_flag():
    assert validity.fidelity_flags(log()) == []
    assert validity.fidelity_flags({}) == [] and validity.fidelity_flags(None) == []


def test_each_failure_is_flagged_with_its_count():
    f = log()
    f["rbp_zero"][1] = 1.0
    f["cosine/all"][1] = math.nan           # undefined angle: counted as not drawn only
    f["cosine/all"][4] = math.nan           # a NaN of another cause
    f["free_distance"][6] = 0.2
    f["free_distance"][7] = math.nan        # not reported: no flag
    f["rbp_residual"][8] = math.inf
    flags = validity.fidelity_flags(f)
    assert [(x.target, x.label) for x in flags] == [("fidelity", INCOMPLETE)] + \
        [("fidelity", NOT_VALID)] * 3
    text = " | ".join(x.reason for x in flags)
    assert "1 of 10 fidelity batches not drawn" in text
    assert "1 of 10 fidelity batches gave a cosine that is not a number" in text
    assert "did not settle in 1 of 9 fidelity batches" in text and "0.2" in text
    assert "ground truth did not converge in 1 of 10" in text


def test_history_phases_and_spectral_radius():
    h = {"epoch": [1, 2, 3], "train_loss": [0.5, math.nan, 0.3], "test_loss": [0.5, 0.4, 0.3]}
    (flag,) = validity.history_flags(h)
    assert flag.target == "learning_curves" and "train loss is not a number in epoch 2" in \
        flag.reason
    assert validity.phase_flags({"unsettled_free_batches": 0}) == []
    (flag,) = validity.phase_flags({"unsettled_free_batches": 2, "unsettled_nudged_batches": 3,
                                    "batches": 50})
    assert flag.label == CHECK
    assert "the free phase in 2 (4.0 %) and a nudged phase in 3 (6.0 %) of 50 training batches" \
        in flag.reason
    assert validity.spectral_flag(0.98) is None and validity.spectral_flag(None) is None
    assert validity.spectral_flag(1.0).label == NOT_VALID
    assert validity.free_distance_flag([0.5], "fidelity_curve").reason.startswith(
        "the free phase did not settle (")
