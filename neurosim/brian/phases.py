"""The checked phase plan of a Brian2 circuit's EP step: :class:`neurosim.plan.Plan` with the
circuit's argument checks (a :class:`~neurosim.brian.device.CircuitError` names the bad
argument) and real nudges only (a circuit cannot run complex ones)."""
from __future__ import annotations

import numpy as np

from .. import checks
from ..errors import ArgumentError
from ..plan import VARIANTS, Plan
from .device import CircuitError


def circuit_plan(beta, variant, nudges, free_steps, nudge_steps):
    """The plan of ``nudges`` when given, else of ``beta`` and ``variant``, with ``free_steps``
    (>= 0) and ``nudge_steps`` (>= 1); unsigned (random sign: :meth:`Plan.for_batch`)."""
    if nudges is None or not len(nudges):
        nudges = None
        if variant not in VARIANTS:
            raise CircuitError("variant must be one of %s, got %r" % (VARIANTS, variant))
        if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)) \
                or not np.isfinite(beta) or beta == 0:
            raise CircuitError("beta must be a non-zero finite number, got %r" % (beta,))
    F = checks.integer("free_steps", free_steps, 0, error=CircuitError)
    K = checks.integer("nudge_steps", nudge_steps, 1, error=CircuitError)
    try:
        plan = Plan.of(beta, variant, nudges, free_steps=F, nudge_steps=K)
    except ArgumentError as e:
        raise CircuitError(str(e)) from None
    if plan.complex:
        raise CircuitError("%s: a Brian2 circuit runs real nudges (holomorphic EP runs complex "
                           "ones), got %r" % ("nudges" if nudges else "variant", plan.nudges))
    return plan


__all__ = ["circuit_plan"]
