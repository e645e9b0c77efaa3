"""The conformance suite every engine passes (DESIGN.md, "Engines"): a class of checks that a
test file binds to engine cases, as diffrax parametrises its tests over every solver.

A :class:`Case` says how to build one engine on a small network, and how closely its estimate
must follow the numpy reference engine at the same settings: ``exact`` (a rate engine: the
largest difference), or ``cosine`` (a spiking engine: the least cosine), or, where the network
is not the reference's (a resistive network), ``own_truth``: the least cosine to its own RBP
gradient at its exact operating point. Checks: the estimate's keys and shapes, parameters left alone, agreement with the
reference (or its own ground truth), ``infer``'s shape and agreement, a three-nudge plan,
the same seed giving the same numbers and the same random signs, an exact checkpoint round
trip, an unknown or unused setting refused by its dotted field, and bad input refused with a
neurosim error."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pytest

from neurosim import engines
from neurosim.engines.protocol import Settings
from neurosim.engines.registry import SHARED
from neurosim.errors import ConfigurationError, NeurosimError
from neurosim.plan import batch_sign, batch_stream

from conftest import one_hot_batch, skip_network

#: the settings every rate case runs (hard sigmoid, clip, Euler; equal to the reference's)
RATE = dict(eps=0.5, free_steps=30, nudge_steps=6, clip=True, beta=0.2, variant="symmetric")
NUDGES = [-0.2, 0.1, 0.3]


batch = one_hot_batch


@dataclass
class Case:
    """One engine to check: ``build(net, **changes)`` makes it with the case's settings
    changed by ``changes``; ``network()`` the network it runs; ``exact``, ``cosine``,
    ``own_truth``: how it must follow the reference (module docstring; ``exact`` None when
    one of the others applies)."""

    id: str
    name: str
    settings: dict
    exact: float | None = 1e-8
    cosine: float | None = None
    own_truth: float | None = None
    network: callable = skip_network
    wrap: callable = None
    kwargs: dict = field(default_factory=dict)
    slow: bool = False      # each check builds a compiled circuit: run with -m slow

    def build(self, net, **changes):
        eng = engines.build(self.name, net, **self.kwargs, **dict(self.settings, **changes))
        return eng if self.wrap is None else self.wrap(eng)


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in b)


def _cosine(a, b):
    va = np.concatenate([np.ravel(a[k]) for k in sorted(b)])
    vb = np.concatenate([np.ravel(b[k]) for k in sorted(b)])
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


def _estimate(case, net, x, y, rng=None, **changes):
    eng = case.build(net, **changes)
    try:
        return eng.estimate(x, y, rng=rng), eng.infer(x)
    finally:
        eng.close()


def _reference(case):
    """The reference engine at the case's phase and learning settings."""
    shared = {k: v for k, v in case.settings.items() if k in SHARED + ("solver",)}
    return Case("reference", "reference", shared)


class Conformance:
    """The checks. A test file sets ``cases`` (a list of :class:`Case`) and subclasses this
    with ``pytestmark`` parametrising ``case`` over them (see :func:`parametrize`)."""

    def test_estimate_has_the_parameters_keys_and_leaves_them_alone(self, case):
        net = case.network()
        x, y = batch(net)
        before = {k: v.copy() for k, v in net.params.items()}
        g, _ = _estimate(case, net, x, y)
        assert set(g) == set(net.params)
        for k in net.params:
            assert np.shape(g[k]) == net.params[k].shape, k
            assert np.array_equal(before[k], net.params[k]), k
            assert np.all(np.isfinite(g[k])), k

    def test_estimate_follows_the_reference_or_its_own_ground_truth(self, case):
        net = case.network()
        x, y = batch(net)
        g, _ = _estimate(case, net, x, y)
        if case.own_truth is not None:  # its own system's RBP gradient at its operating point
            eng = case.build(net)
            truth, _ = eng.ground_truth(x, y, 1e-9, "conformance")
            eng.close()
            assert _cosine(g, truth) > case.own_truth
            return
        ref, _ = _estimate(_reference(case), net, x, y)
        if case.exact is not None:
            assert _max_diff(g, ref) < case.exact
        else:
            assert _cosine(g, ref) > case.cosine

    def test_infer_gives_output_rates_that_follow_the_reference(self, case):
        net = case.network()
        x, y = batch(net)
        _, out = _estimate(case, net, x, y)
        o = net.outputs[0]
        assert np.shape(out[o]) == (x.shape[0], net.sizes[o])
        if case.exact is not None:
            _, ref = _estimate(_reference(case), net, x, y)
            assert np.max(np.abs(out[o] - ref[o])) < case.exact

    def test_a_three_nudge_plan(self, case):
        """``learning.nudges`` with three strengths runs three nudged phases; a rate engine's
        estimate equals the reference engine's with the same plan."""
        net = case.network()
        x, y = batch(net)
        g, _ = _estimate(case, net, x, y, nudges=NUDGES)
        sym, _ = _estimate(case, net, x, y)
        assert set(g) == set(net.params) and _max_diff(g, sym) > 1e-9
        if case.exact is not None:
            ref, _ = _estimate(_reference(case), net, x, y, nudges=NUDGES)
            assert _max_diff(g, ref) < case.exact

    def test_the_same_seed_gives_the_same_numbers_and_signs(self, case):
        """Random-sign EP with the trainer's stream of batch (seed 3, epoch 1, batch 5): two
        engines give the same numbers, and the estimate is the one-sided one at the drawn
        sign (the reference's, for a rate engine)."""
        net = case.network()
        x, y = batch(net)
        a, _ = _estimate(case, net, x, y, rng=batch_stream(3, 1, 5), variant="random_sign")
        b, _ = _estimate(case, net, x, y, rng=batch_stream(3, 1, 5), variant="random_sign")
        assert _max_diff(a, b) == 0.0
        if case.exact is not None:
            beta = case.settings["beta"] * batch_sign(3, 1, 5)
            ref, _ = _estimate(_reference(case), net, x, y, beta=beta, variant="one_sided")
            assert _max_diff(a, ref) < case.exact

    def test_a_checkpoint_round_trip_is_exact(self, case):
        """An engine restored from another's ``state_dict`` gives the next estimate exactly
        as the original does."""
        net = case.network()
        x, y = batch(net)
        first = case.build(net)
        try:
            first.estimate(x, y)
            saved = {k: np.array(v) for k, v in first.state_dict().items()}
            want = first.estimate(x, y)
        finally:
            first.close()
        second = case.build(net)
        try:
            second.load_state_dict(saved)
            got = second.estimate(x, y)
        finally:
            second.close()
        assert _max_diff(got, want) == 0.0

    def test_an_unknown_or_unused_setting_is_refused_by_its_field(self, case):
        net = case.network()
        with pytest.raises(ConfigurationError, match="no_such_setting"):
            case.build(net, no_such_setting=1)
        cls = engines.registry.engine_class(case.name)
        unused = [f for f in dataclasses.fields(Settings)
                  if f.name not in SHARED and f.name not in cls.settings_used]
        if not unused:
            pytest.skip("the %s engine uses every setting" % case.name)
        f = unused[0]
        value = (not f.default) if isinstance(f.default, bool) else (
            f.default + 1 if isinstance(f.default, (int, float)) else "other")
        with pytest.raises(ConfigurationError, match=Settings.field_name(f.name).replace(
                ".", r"\.")):
            case.build(net, **{f.name: value})

    def test_bad_input_is_a_neurosim_error(self, case):
        net = case.network()
        x, y = batch(net)
        eng = case.build(net)
        try:
            with pytest.raises(NeurosimError):
                eng.estimate(x[:, :-1], y)
        finally:
            eng.close()


def parametrize(cases):
    """The ``pytestmark`` of a test class that runs :class:`Conformance` over ``cases``
    (test ids name the engine)."""
    return pytest.mark.parametrize("case", [
        pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in cases])
