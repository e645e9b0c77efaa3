"""
EP on a device crossbar: read noise and conductance levels
==========================================================

The reference engine with its weights in a crossbar of differential device pairs
(``engines.build(..., hardware={...})``). Left: each phase reads the crossbar with its own
read noise, so the contrast between phases picks up noise divided by ``beta`` -- a small
nudge is exact on ideal devices but the first to drown, a large one is robust but biased.
Right: devices with ``2^bits`` levels, programmed by whole pulses with stochastic rounding:
the cosine of the update the devices actually took in one SGD step. Each point is the mean
over a few device seeds (the band: their range), against RBP's gradient of the weights the
devices hold.
"""
import matplotlib.pyplot as plt
import numpy as np

import neurosim as ns
from neurosim import engines
from neurosim.training.optimizer import Optimizer, resolve_learning_rates

rng = np.random.default_rng(0)
x = rng.uniform(0, 1, (8, 16))
y = np.eye(4)[rng.integers(0, 4, 8)]
phases = dict(eps=0.5, free_steps=300, nudge_steps=100, tol=1e-9, clip=False,
              variant="symmetric")
seeds = range(4)


def engine(beta, hardware, seed):
    """A fresh logistic 16-12-4 network (the crossbar rounds the weights it is built from)."""
    net = ns.layered([16, 12, 4], activation="logistic", dynamics="energy", seed=0)
    return engines.build("reference", net, hardware=hardware, hardware_seed=seed, beta=beta,
                         **phases)


def cosine(estimate, eng):
    truth, _ = eng.ground_truth(x, y, 1e-8, "the batch")   # RBP at the devices' weights
    return ns.fidelity.compare(dict(estimate), truth)["cosine"]


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
noise = np.array([3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1])
for beta, color in zip([0.01, 0.1, 0.5], plt.cm.tab10.colors):
    clean = cosine(engine(beta, None, 0).estimate(x, y), engine(beta, None, 0))
    c = np.array([[cosine(e.estimate(x, y), e)
                   for e in (engine(beta, {"read_noise": r}, s) for s in seeds)] for r in noise])
    ax1.semilogx(noise, c.mean(1), "o-", color=color, label="beta = %g" % beta)
    ax1.fill_between(noise, c.min(1), c.max(1), color=color, alpha=0.15)
    ax1.axhline(clean, color=color, ls=":", lw=1)
    print("beta = %-4g cosine to RBP: %.4f without read noise; %s at read noise %s"
          % (beta, clean, ", ".join("%.3f" % v for v in c.mean(1)),
             ", ".join("%g" % r for r in noise)))
ax1.set_xlabel("read noise (std, relative to the conductance range)")
ax1.set_ylabel("cosine(EP estimate, RBP)")
ax1.set_title("read noise (dotted: noise-free devices)")
ax1.set_ylim(-0.3, 1.05)
ax1.legend()
ax1.grid(alpha=0.3)

bits = np.arange(2, 13, 2)
lr, beta = 0.1, 0.1
took, est = [], []
for b in bits:
    row_took, row_est = [], []
    for s in seeds:
        e = engine(beta, {"levels": 2 ** int(b)}, s)
        truth, _ = e.ground_truth(x, y, 1e-8, "the batch")     # before the step
        step = e.step(x, y, Optimizer(resolve_learning_rates(e.net, lr)), want_estimate=True)
        row_took.append(ns.fidelity.compare(step.applied, truth)["cosine"])
        row_est.append(ns.fidelity.compare(dict(step.estimate), truth)["cosine"])
    took.append(row_took)
    est.append(row_est)
took, est = np.array(took), np.array(est)
ax2.plot(bits, est.mean(1), "s--", color="grey", label="EP estimate at the devices' weights")
ax2.plot(bits, took.mean(1), "o-", color="tab:purple", label="update the devices took")
ax2.fill_between(bits, took.min(1), took.max(1), color="tab:purple", alpha=0.15)
ax2.set_xlabel("bits of conductance resolution (levels = 2^bits)")
ax2.set_ylabel("cosine to RBP")
ax2.set_title("one SGD step (lr = %g, beta = %g)" % (lr, beta))
ax2.set_ylim(-0.3, 1.05)
ax2.legend(loc="lower right")
ax2.grid(alpha=0.3)
fig.tight_layout()
print("update the devices took, cosine to RBP: %s at %s bits"
      % (", ".join("%.3f" % v for v in took.mean(1)), ", ".join(map(str, bits))))
