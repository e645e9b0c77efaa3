"""
Three engines, one estimate
===========================

The same network, batch and phase plan through the numpy reference engine, the PyTorch
engine (where torch is installed) and the network compiled into a Brian2 rate circuit
(Brian2's runtime device: no C++ build) whose synapses accumulate the update themselves.
Each estimate is compared with RBP's gradient at the exact free fixed point (left: its
distance from it is EP's own bias at this ``beta`` and these step counts), and with the
reference engine's estimate (right: what one engine differs from another).
"""
import importlib.util

import matplotlib.pyplot as plt
import numpy as np

import neurosim as ns
from neurosim import engines

rng = np.random.default_rng(0)
x = rng.uniform(0, 1, (4, 16))
y = np.eye(4)[rng.integers(0, 4, 4)]
net = ns.layered([16, 12, 4], activation="logistic", dynamics="energy", seed=0)
plan = dict(eps=0.5, free_steps=60, nudge_steps=20, beta=0.05, variant="symmetric")

estimates = {}
reference = engines.build("reference", net, clip=False, **plan)
estimates["reference"] = dict(reference.estimate(x, y))
truth, fixed_point = reference.ground_truth(x, y, 1e-8, "the batch")   # RBP, exact fixed point
if importlib.util.find_spec("torch") is None:      # torch is optional
    print("torch is not installed: the torch engine is left out")
else:
    torch_engine = engines.build("torch", net, clip=False, device="cpu", **plan)
    estimates["torch"] = dict(torch_engine.estimate(x, y))
    torch_engine.close()
circuit = ns.brian.compile(net, model="rate", device="runtime", eps=plan["eps"], clip=False)
estimates["Brian2 rate circuit"] = circuit.ep_update(
    x, y, beta=plan["beta"], free_steps=plan["free_steps"], nudge_steps=plan["nudge_steps"],
    variant=plan["variant"])

names = list(estimates)
cosine = [ns.fidelity.compare(estimates[n], truth)["cosine"] for n in names]
others = names[1:]
differs = [ns.fidelity.compare(estimates[n], estimates["reference"])["rel_error"] for n in others]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
colors = plt.cm.tab10.colors[:len(names)]
ax1.bar(names, cosine, color=colors)
ax1.set_ylim(0, 1.15)
ax1.set_ylabel("cosine to RBP's gradient")
ax1.set_title("each engine's estimate vs RBP (beta = %g)" % plan["beta"])
for i, c in enumerate(cosine):
    ax1.text(i, c + 0.02, "%.6f" % c, ha="center", va="bottom")
ax2.bar(others, differs, color=colors[1:])
ax2.axhline(np.finfo(float).eps, color="grey", ls=":", label="float64 epsilon")
ax2.legend(loc="upper left")
ax2.set_yscale("log")
ax2.set_ylim(1e-17, 100 * max(differs))
ax2.set_ylabel("relative difference from the reference")
ax2.set_title("engine vs reference engine")
for ax in (ax1, ax2):
    ax.tick_params(axis="x", labelsize=8)
fig.tight_layout()

for n, c, d in zip(names, cosine, [0.0] + differs):
    print("%-20s cosine to RBP %.9f, relative difference from the reference engine %.1e"
          % (n, c, d))
