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
    """``(equations, threshold, reset)`` of a unit's spike code (:data:`CODES`).
    ``common``: the Brian2 expression of a Poisson unit's common random number (e.g. a call of
    :mod:`neurosim.brian.counter_rng`'s ``crn_uniform``), the same uniform at step k of every
    phase of the example, instead of a fresh ``rand()``."""
    if neuron == "poisson":
        if common:
            return [], "%s < rho * spikes_per_step" % common, ""
        return [], "rand() < rho * spikes_per_step", ""
    if neuron == "if":
        # integrate-and-fire, no leak, reset by subtraction: a first-order sigma-delta
        # modulator of rho; its spike count over k steps is within 1 of k rho spikes_per_step
        return ["dv/dt = rho * max_rate : 1"], "v >= 1", "v -= 1"
    if neuron == "sigma_delta":
        # an event when rho has moved by delta since the last one, carrying the signed count
        # n of delta steps; q, the value the synapses have received, tracks rho within delta
        # (``sent`` counts the delta steps the events carried: sum |n|)
        return ["q : 1", "sent : 1", "n_ev = floor((rho - q) / delta + 0.5) : 1"], \
            "abs(rho - q) >= delta", "q += n_ev * delta\nsent += abs(n_ev)"
    # Euler LIF: v_{k+1} = v_k + a (mu - v_k), a = dt/tau_m, climbs from 0 to 1 in
    # log(mu/(mu-1)) / -log(1-a) steps; mu makes that 1 / (rho * spikes_per_step) steps.
    eqs = ["dv/dt = (mu - v) / tau_m : 1",
           "mu = 1 / (1 - (1 - lif_a) ** (1 / (spikes_per_step * clip(rho, 1e-9, 1)))) : 1"]
    return eqs, "v > 1", "v -= 1"


#: The spike codes: ``poisson`` (random), ``lif`` and ``if`` (deterministic rate codes: the
#: spike count carries the rate), ``sigma_delta`` (deterministic: each event carries the
#: change of the rate since the last one).
CODES = ("poisson", "lif", "if", "sigma_delta")


def graded(neuron):
    """True for codes whose events carry a signed count (sigma-delta): the synapses then
    hold ``sum w q_pre`` (no current decay) and the rule reads ``z = q``."""
    return neuron == "sigma_delta"


def encoder_state(neuron):
    """The encoder variables a restart from the free state restores (``v``, ``q``)."""
    return {"poisson": [], "lif": ["v"], "if": ["v"], "sigma_delta": ["q"]}[neuron]


def trace_equations(neuron):
    """``(equations, on-spike code)`` of the rate estimate ``z`` (and its derivative ``dz``)
    a unit keeps of its own spikes: the two filtered traces of :data:`TRACE_EQS`, or for a
    sigma-delta unit ``z = q``, the value its synapses have received (no derivative trace:
    its events are the changes)."""
    if graded(neuron):
        return ["z = q : 1"], ""
    return list(TRACE_EQS), TRACE_ON_SPIKE


def current_equation(neuron, var):
    """The synaptic current ``var`` of a population: an exponential trace of the spikes
    (``tau_syn``), or for sigma-delta inputs the held sum ``sum w q_pre``."""
    return "%s : 1" % var if graded(neuron) else "d%s/dt = -%s / tau_syn : 1" % (var, var)


def current_increment(neuron, var):
    """What a presynaptic event adds to the current ``var``: ``w / (max_rate tau_syn)`` per
    spike (so ``E[I] = sum w rho_pre``), or ``w n delta`` per sigma-delta event."""
    if graded(neuron):
        return "%s_post += w * n_ev_pre * delta" % var
    return "%s_post += w * syn_gain" % var


def event_rule(gate, data=False, scale=1.0):
    """The online rule of sigma-delta units, on their events: each event changes its unit's
    ``z = q`` by ``n delta``, so a synapse adds ``gate d[z_pre z_post]`` on the events of either
    unit (the presynaptic value counting an event of the same step, so that the sum telescopes
    to the snapshot rule's ``[z_pre z_post]`` exactly); ``data``: the presynaptic unit is an
    input read as its data ``x``, ``gate x d[z_post]``. ``gate``: the Brian2 expression of the
    phase's weight. Returns ``(on a presynaptic event or None, on a postsynaptic event)``."""
    k = "" if scale == 1.0 else "%r * " % scale
    if data:
        return None, "acc += %s%s * rho_pre * n_ev_post * delta" % (k, gate)
    sent = "(q_pre + int(abs(rho_pre - q_pre) >= delta) * n_ev_pre * delta)"
    return ("acc += %s%s * n_ev_pre * delta * q_post" % (k, gate),
            "acc += %s%s * %s * n_ev_post * delta" % (k, gate, sent))


def event_rule_bias(gate):
    """The bias's share of :func:`event_rule`, run on the unit's own event before the event
    moves ``q``."""
    return "acc_b += %s * n_ev * delta" % gate


__all__ = ["RHO", "DRHO", "rate_equations", "TRACE_EQS", "TRACE_ON_SPIKE", "encoder", "CODES",
           "graded", "encoder_state", "trace_equations", "current_equation",
           "current_increment", "event_rule", "event_rule_bias"]
