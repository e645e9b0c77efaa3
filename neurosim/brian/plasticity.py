"""The local learning rules, as Brian2 code run once per time step after the state update.

Each synapse sees only its own neurons: their rate now (``rho``), at the previous step
(``rho_prev``) and at the end of the free phase (``rho0``, ``drho0``, ``u0``). The TimedArrays
``gate_ta`` (1 during nudged steps) and ``sign_ta`` (during nudged phase q the phase plan's
weight ``c_q`` of its observation, :attr:`neurosim.plan.Plan.weights`) say when and how to
accumulate.

* Energy mode (EP): ``acc += rho_pre rho_post - rho_prev_pre rho_prev_post``. The sum
  telescopes to ``[rho_a rho_b]_0^beta`` exactly, whatever the step (the clock-driven form
  ``rho_pre drho_post/dt`` is not exact under Euler with a hard clip).
* Vector-field mode: ``acc += rho0_pre drho0_post (u_post - u_prev_post)``: the presynaptic
  rate times the postsynaptic rate change (docs/maths.md section 4).
* Continual EP (energy mode): the weight itself moves by ``lr c`` (``c = 1/beta``, the
  weight of the plan ``[0, beta]``) times the same difference at every nudged step, and the
  dynamics use the moved weight.

Every phase restarts from the free state, so the sums are ``sum_q c_q [observation]_0^q``,
and the update read from the circuit is ``g = -acc``, averaged over the batch.
"""
from __future__ import annotations

GATE = "gate_ta(t) * sign_ta(t)"


def energy_rule(input_pre, scale=1.0, continual_lr=None):
    """``d/dt [rho_pre rho_post]`` in telescoping form; an input's rate does not change.
    ``continual_lr`` (= lr c): continual EP, the weight itself follows at every step."""
    k = "" if scale == 1.0 else "%r * " % scale
    if input_pre:
        delta = "%s%s * rho_pre * (rho_post - rho_prev_post)" % (k, GATE)
    else:
        delta = "%s%s * (rho_pre * rho_post - rho_prev_pre * rho_prev_post)" % (k, GATE)
    code = "acc += " + delta
    if continual_lr is not None:
        code += "\nw += %r * %s" % (float(continual_lr), delta)
    return code


def vector_field_rule(input_pre):
    """Presynaptic rate (at the free state) times the postsynaptic rate change."""
    pre = "rho_pre" if input_pre else "rho0_pre"
    return "acc += %s * %s * drho0_post * (u_post - u_prev_post)" % (GATE, pre)


def bias_rule(dynamics, continual_lr=None):
    """The bias's share: its own neuron's rate change (continual EP: the bias follows)."""
    if dynamics == "energy":
        code = "acc_b += %s * (rho - rho_prev)" % GATE
        if continual_lr is not None:
            code += "\nb += %r * %s * (rho - rho_prev)" % (float(continual_lr), GATE)
        return code
    return "acc_b += %s * drho0 * (u - u_prev)" % GATE
