"""Every registered engine (and the device wrapper around one) passes the conformance suite
(conformance_checks.Conformance); a registered engine without a case here fails
test_every_registered_engine_has_a_case."""
from __future__ import annotations


from neurosim import engines
from neurosim.engines.devices import HardwareEngine
from neurosim.hardware.devices import PRESETS
from neurosim.resistive import resistive

from conformance_checks import RATE, Case, Conformance, parametrize
from conftest import TORCH_DEVICE, conv_max_softmax_network

#: integrate-and-fire units (deterministic): cosine 0.88 to the reference on this network,
#: measured; Poisson units 0.55-0.83 per seed
SPIKING = dict(eps=0.1, free_steps=100, nudge_steps=100, beta=0.5, variant="symmetric", seed=1,
               neuron="lif")

CASES = [
    Case("reference", "reference", RATE),
    Case("reference-block", "reference", dict(RATE, solver="block")),
    Case("brian2-rate", "brian2-rate", RATE),
    Case("brian2-spiking", "brian2-spiking", SPIKING, exact=None, cosine=0.8),
    Case("resistive", "resistive", dict(beta=0.01, variant="symmetric"), exact=None,
         own_truth=0.999, network=lambda: resistive([5, 4, 3], seed=0)),
    Case("torch", "torch", dict(RATE, device=TORCH_DEVICE), exact=1e-9),
    Case("torch-block", "torch", dict(RATE, device=TORCH_DEVICE, solver="block"), exact=1e-9),
    Case("torch-conv-max-softmax", "torch", dict(RATE, device=TORCH_DEVICE, eps=0.2, beta=0.1),
         exact=1e-7, network=conv_max_softmax_network),
    Case("devices(reference, ideal)", "reference", RATE,
         wrap=lambda e: HardwareEngine(e, PRESETS["ideal"], seed=0)),
]


def test_every_registered_engine_has_a_case():
    builtin = {"reference", "brian2-rate", "brian2-spiking", "resistive", "torch"}
    assert builtin <= set(engines.available())
    assert builtin <= {c.name for c in CASES}


@parametrize(CASES)
class TestEnginesConform(Conformance):
    pass
