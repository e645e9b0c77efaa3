"""
The theorem, neuron by neuron
=============================

During EP's nudged phase each neuron's temporal derivative ``u_k`` equals RBP's error
derivative ``-Sbar_k`` (the side network's state) at every step ``k`` (Scellier & Bengio
2019). Here: a logistic 16-12-4 network on a random batch, EP's second phase at
``beta = 1e-3`` beside RBP's side network, both with the Euler step ``eps = 0.1``.
"""
import matplotlib.pyplot as plt
import numpy as np

import neurosim as ns

rng = np.random.default_rng(0)
x = rng.uniform(0, 1, (4, 16))
y = np.eye(4)[rng.integers(0, 4, 4)]
net = ns.layered([16, 12, 4], activation="logistic", dynamics="energy", seed=0)

steps, eps, beta = 60, 0.1, 1e-3
phase = ns.ep.second_phase(net, x, y, beta, eps, steps)   # u[pop]: (steps, batch, n)
side = ns.rbp.side_network(net, x, y, eps, steps)         # S[pop]: (steps, batch, n)

fig, ax = plt.subplots(figsize=(6, 4))
k = np.arange(steps)
for unit, color in zip(range(4), plt.cm.tab10.colors):
    ax.plot(k, -side.S["h1"][:, 0, unit], color=color, lw=3, alpha=0.35)
    ax.plot(k, phase.u["h1"][:, 0, unit], color=color, ls="--")
ax.plot([], [], color="grey", lw=3, alpha=0.35, label="-Sbar_k: RBP side network")
ax.plot([], [], color="grey", ls="--", label="u_k: EP temporal derivative / beta")
ax.set_xlabel("step k of the nudged phase")
ax.set_ylabel("hidden unit h1[i], example 0")
ax.set_title("EP's temporal derivatives equal RBP's error derivatives")
ax.legend()
fig.tight_layout()

worst = max(np.max(np.abs(phase.u[p] + side.S[p])) / np.max(np.abs(side.S[p])) for p in side.S)
print("largest |u_k + Sbar_k| relative to max |Sbar_k| over all steps: %.2e" % worst)
