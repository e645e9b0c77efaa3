"""The equations every Brian2 circuit shares, as data (strings Brian2's code generator checks):
the rate function and its derivative, the spiking neurons' rate traces and the spike encoders.

The rate circuits (:mod:`neurosim.brian.rate`, :mod:`neurosim.brian.training`) and the
spiking circuits (:mod:`neurosim.brian.spiking_build`, :mod:`neurosim.brian.spiking_training`)
all read them from here, so no circuit module imports another for its equations.
"""
from __future__ import annotations

#: ``rho(u)`` per activation (docs/maths.md section 2).
RHO = {"hard_sigmoid": "clip(u, 0, 1)", "logistic": "1 / (1 + exp(-4 * (u - 0.5)))"}
#: ``rho'(u)`` per activation (``rho`` a named variable of the same group).
DRHO = {"hard_sigmoid": "int(u >= 0) * int(u <= 1)", "logistic": "4 * rho * (1 - rho)"}


def rate_equations(activation, terms, nudge=""):
    """The Euler rate neuron of docs/maths.md section 2: ``du/dt = dudt`` with the force
    ``-u + rho'(u) (sum of the input currents + b)`` over ``tau``, ``nudge`` appended to the
    force (e.g. ``" - beta * (u - y)"``), the rate and its derivative as named variables.
    ``terms``: the names of the population's summed input currents."""
    return ["du/dt = dudt : 1",
            "dudt = (-u + drho * (%s)%s) / tau : Hz" % (" + ".join(list(terms) + ["b"]), nudge),
            "rho = %s : 1" % RHO[activation],
            "drho = %s : 1" % DRHO[activation]]


#: Each spiking neuron's two rate traces and the derivative estimate (see
#: :mod:`neurosim.brian.spiking`).
TRACE_EQS = ["dr_fast/dt = -r_fast / tau_fast : 1",
             "dr_slow/dt = -r_slow / tau_slow : 1",
             "z = (tau_slow * r_slow - tau_fast * r_fast) / (tau_slow - tau_fast) : 1",
             "dz = (r_fast - r_slow) / (tau_slow - tau_fast) : Hz"]
#: What a spike does to its own neuron's traces.
TRACE_ON_SPIKE = "r_fast += 1 / (max_rate * tau_fast)\nr_slow += 1 / (max_rate * tau_slow)"


def encoder(neuron, common=None):
    """``(equations, threshold, reset)`` of a unit that fires at ``rho * max_rate``.
    ``common``: the Brian2 expression of a Poisson unit's common random number (e.g. a call of
    :mod:`neurosim.brian.counter_rng`'s ``crn_uniform``), the same uniform at step k of every
    phase of the example, instead of a fresh ``rand()``."""
    if neuron == "poisson":
        if common:
            return [], "%s < rho * spikes_per_step" % common, ""
        return [], "rand() < rho * spikes_per_step", ""
    # Euler LIF: v_{k+1} = v_k + a (mu - v_k), a = dt/tau_m, climbs from 0 to 1 in
    # log(mu/(mu-1)) / -log(1-a) steps; mu makes that 1 / (rho * spikes_per_step) steps.
    eqs = ["dv/dt = (mu - v) / tau_m : 1",
           "mu = 1 / (1 - (1 - lif_a) ** (1 / (spikes_per_step * clip(rho, 1e-9, 1)))) : 1"]
    return eqs, "v > 1", "v -= 1"


__all__ = ["RHO", "DRHO", "rate_equations", "TRACE_EQS", "TRACE_ON_SPIKE", "encoder"]
