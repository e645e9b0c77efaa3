"""
EP's bias against the nudge strength
====================================

EP estimates RBP's gradient from nudged phases; how close it gets depends on the nudge
strength ``beta`` and on the plan of nudges. One-sided EP (``[0, beta]``) is biased to
first order in ``beta``, symmetric EP (``[+beta, -beta]``) to second order, and holomorphic
EP with ``points = 4`` complex nudges to fourth order. Here: a logistic 16-12-4 network on a
random batch of 8, each estimate's relative error against RBP's implicit gradient, with the
slopes fitted on a log-log scale.
"""
import matplotlib.pyplot as plt
import numpy as np

import neurosim as ns

rng = np.random.default_rng(0)
x = rng.uniform(0, 1, (8, 16))
y = np.eye(4)[rng.integers(0, 4, 8)]
net = ns.layered([16, 12, 4], activation="logistic", dynamics="energy", seed=0)

g_rbp = ns.rbp.gradient(net, x, y, method="implicit")     # the ground truth
betas = np.logspace(-3, -1, 7)
variants = ["one_sided", "symmetric", "holomorphic"]
errors = {v: [] for v in variants}
for beta in betas:
    for v in variants:
        g_ep = ns.ep.gradient(net, x, y, beta, variant=v, points=4)
        errors[v].append(ns.fidelity.compare(g_ep, g_rbp)["rel_error"])

# slopes fitted over the smaller half of the range, where the leading term dominates
small = betas <= 1e-2
fig, ax = plt.subplots(figsize=(6, 4))
for v, marker in zip(variants, "osd"):
    e = np.array(errors[v])
    slope = np.polyfit(np.log10(betas[small]), np.log10(e[small]), 1)[0]
    ax.loglog(betas, e, marker=marker, label="%s (slope %.2f)" % (v.replace("_", "-"), slope))
    print("%-12s relative error %.2e at beta = %g, %.2e at beta = %g; fitted slope %.2f"
          % (v, e[0], betas[0], e[-1], betas[-1], slope))
ax.set_xlabel("nudge strength beta")
ax.set_ylabel("relative error of EP against RBP")
ax.set_title("EP's bias: first, second and fourth order in beta")
ax.legend()
ax.grid(True, which="major", alpha=0.3)
fig.tight_layout()
