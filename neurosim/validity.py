"""Whether a measurement holds: :class:`Flag` s computed from a run's own numbers (never from
the prose around them), which the HTML report and the figures show in red with their reason.

A flag names its ``target`` (``fidelity``: the fidelity figure and table; ``learning_curves``:
the learning curves and the per-epoch table; ``phases``: the phases of training;
``theorem``: the theorem figure; ``fidelity_curve``: the figure of ``neurosim fidelity``), a
``label`` (:data:`NOT_VALID`: the numbers do not measure what they say; :data:`INCOMPLETE`:
some batches are left out; :data:`CHECK`: some of the training's batches ran phases that did
not settle, which the figures do not show) and the ``reason`` in words."""
from __future__ import annotations

import math
from dataclasses import dataclass

NOT_VALID = "not valid"
INCOMPLETE = "incomplete"
CHECK = "check"

#: the largest ``max |s0 - s*|`` (units of the state, which lives in [0, 1]) at which the
#: engine's free state counts as the fixed point RBP linearises at
FREE_DISTANCE_LIMIT = 1e-3


@dataclass(frozen=True)
class Flag:
    """One reason a figure or table does not measure what it says."""

    target: str
    label: str
    reason: str

    def text(self):
        """``"not valid: <reason>"``."""
        return "%s: %s" % (self.label, self.reason)


def _floats(values):
    out = []
    for v in values or ():
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _bad(values):
    """Indices of the values that are not finite."""
    return [i for i, v in enumerate(_floats(values)) if not math.isfinite(v)]


def free_distance_flag(distances, target="fidelity"):
    """A flag where the engine's free state is farther than :data:`FREE_DISTANCE_LIMIT` from
    the fixed point (NaN: not reported, no flag), else None."""
    d = [v for v in _floats(distances) if not math.isnan(v)]
    far = [v for v in d if not v <= FREE_DISTANCE_LIMIT]
    if not far:
        return None
    where = "in %d of %d fidelity batches " % (len(far), len(d)) if len(d) > 1 else ""
    return Flag(target, NOT_VALID,
                "the free phase did not settle %s(the engine's free state is up to %.3g from "
                "the fixed point, limit %g): EP does not estimate RBP's gradient there"
                % (where, max(far), FREE_DISTANCE_LIMIT))


def fidelity_flags(fidelity):
    """The flags of a run's fidelity log (dict of lists, one entry per fidelity batch):
    batches not drawn because RBP's gradient was exactly 0, other NaN cosines, a free
    phase that did not settle, a ground truth whose residual is not finite."""
    f = fidelity or {}
    n = len(f.get("epoch_fraction", []))
    if not n:
        return []
    out = []
    zero = {i for i, z in enumerate(_floats(f.get("rbp_zero"))) if z == 1.0}
    if zero:
        out.append(Flag("fidelity", INCOMPLETE,
                        "%d of %d fidelity batches not drawn: RBP's gradient was exactly 0 "
                        "(every unit it could move pinned at a bound), so the angle is "
                        "undefined" % (len(zero), n)))
    nan = [i for i in _bad(f.get("cosine/all")) if i not in zero]
    if nan:
        out.append(Flag("fidelity", NOT_VALID,
                        "%d of %d fidelity batches gave a cosine that is not a number"
                        % (len(nan), n)))
    far = free_distance_flag(f.get("free_distance"))
    if far is not None:
        out.append(far)
    bad = _bad(f.get("rbp_residual"))
    if bad:
        out.append(Flag("fidelity", NOT_VALID,
                        "the ground truth did not converge in %d of %d fidelity batches (the "
                        "residual of RBP's fixed point is not finite)" % (len(bad), n)))
    return out


_HISTORY = (("train_loss", "train loss"), ("test_loss", "test loss"),
            ("train_accuracy", "train accuracy"), ("test_accuracy", "test accuracy"))


def history_flags(history):
    """A flag per per-epoch series (loss, accuracy) with values that are not finite."""
    h = history or {}
    epochs = list(h.get("epoch", []))
    out = []
    for key, name in _HISTORY:
        bad = _bad(h.get(key))
        if bad:
            which = [str(epochs[i]) if i < len(epochs) else str(i + 1) for i in bad]
            out.append(Flag("learning_curves", NOT_VALID,
                            "the %s is not a number in epoch%s %s" % (
                                name, "s" if len(which) > 1 else "", ", ".join(which))))
    return out


def phase_flags(summary):
    """A flag where phases stopped at their step cap with the projected step above
    ``engine.tol`` (the run summary's ``unsettled_free_batches``,
    ``unsettled_nudged_batches``)."""
    s = summary or {}
    free, nudged = s.get("unsettled_free_batches", 0), s.get("unsettled_nudged_batches", 0)
    if not (free or nudged):
        return []
    n = s.get("batches", 0) or 0

    def share(k):
        return "%d (%.1f %%)" % (k, 100.0 * k / n) if n else "%d" % k
    return [Flag("phases", CHECK,
                 "phases stopped at their step cap with the projected step above engine.tol: "
                 "the free phase in %s and a nudged phase in %s of %d training batches; those "
                 "batches' updates were taken away from a fixed point (raise engine.free_steps "
                 "/ engine.nudge_steps to settle them)" % (share(free), share(nudged), n))]


def spectral_flag(radius, target="theorem"):
    """A flag where the spectral radius of ``dG/ds`` is 1 or more (the side network does not
    decay), else None (also where it is unknown)."""
    if radius is None or not radius >= 1:
        return None
    return Flag(target, NOT_VALID,
                "the spectral radius of dG/ds is %.4f >= 1: RBP's side network does not "
                "decay, so it gives no gradient to compare with" % radius)


def of_target(flags, target):
    """The flags of one target."""
    return [f for f in flags if f.target == target]


__all__ = ["Flag", "NOT_VALID", "INCOMPLETE", "CHECK", "FREE_DISTANCE_LIMIT", "fidelity_flags",
           "history_flags", "phase_flags", "free_distance_flag", "spectral_flag", "of_target"]
