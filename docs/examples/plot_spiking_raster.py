"""
A sigma-delta spiking circuit and its events
============================================

A logistic 8-10-3 network compiled into a Brian2 spiking circuit of sigma-delta units:
a unit sends an event when its rate has moved by ``delta`` since its last one, and each
synapse learns from the rates its two units sent, sampled at the ends of the free, +beta
and -beta phases. Top: the events of one example, phase by phase. Bottom: the update the
synapses made against RBP's gradient at the exact fixed point, entry by entry,
with numpy EP's estimate at the same ``beta`` for comparison.
"""
import matplotlib.pyplot as plt
import numpy as np

import neurosim as ns

rng = np.random.default_rng(0)
x = rng.uniform(0, 1, (2, 8))
y = rng.uniform(0, 1, (2, 3))                # targets inside (0, 1): no output saturates
net = ns.layered([8, 10, 3], activation="logistic", dynamics="energy", seed=0)

beta, steps = 0.01, 300
circuit = ns.brian.compile(net, model="spiking", device="runtime", clip=False, seed=0)
g_spk = circuit.ep_update(x, y, beta=beta, free_steps=steps, nudge_steps=steps,
                          variant="symmetric")
g_ep = ns.ep.gradient(net, x, y, beta, variant="symmetric")
g_rbp = ns.rbp.gradient(net, x, y)

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 7), gridspec_kw={"height_ratios": [3, 2]})
table = circuit.spike_table()            # population -> (times in ms, node ids)
offset, ticks = 0, []
for pop, color in zip(["x", "h1", "y"], plt.cm.tab10.colors):
    t, node = table[pop]
    n = net.sizes[pop]
    first = node < n                      # example 0: nodes 0 .. n-1
    ax1.plot(t[first], offset + node[first], "|", color=color, ms=6, label=pop)
    ticks.append(offset + (n - 1) / 2)
    offset += n + 1
for phase, shade in zip(circuit.phases, ["none", "tab:green", "tab:red"]):
    if shade != "none":
        ax1.axvspan(phase["start"], phase["stop"], color=shade, alpha=0.08)
    ax1.text((phase["start"] + phase["stop"]) / 2, offset, "%s (beta = %g)"
             % (phase["name"], phase["beta"]), ha="center", va="bottom", fontsize=8)
ax1.set_ylim(-1, offset + 2)
ax1.set_yticks(ticks, ["x", "h1", "y"])
ax1.set_xlabel("time (ms)")
ax1.set_ylabel("population (one row per unit)")
ax1.set_title("events of example 0")

keys = list(g_rbp)
r = np.concatenate([np.ravel(g_rbp[k]) for k in keys])
ax2.plot(r, np.concatenate([np.ravel(g_ep[k]) for k in keys]), "o", mfc="none", ms=7,
         color="grey", label="numpy EP, beta = %g" % beta)
ax2.plot(r, np.concatenate([np.ravel(g_spk[k]) for k in keys]), ".", color="tab:blue",
         label="spiking circuit's update")
lim = np.max(np.abs(r)) * 1.1
ax2.plot([-lim, lim], [-lim, lim], "k:", lw=1)
ax2.set_xlabel("RBP's gradient (each weight and bias)")
ax2.set_ylabel("estimate")
ax2.set_title("the synapses' update against RBP")
ax2.legend()
fig.tight_layout()

events = sum(circuit.stats["spikes"].values())
print("events: %d for %d examples (%s), %d synaptic events"
      % (events, x.shape[0], ", ".join("%s %d" % kv for kv in circuit.stats["spikes"].items()),
         circuit.stats["synaptic_events"]))
print("cosine to RBP: spiking circuit %.5f, numpy EP %.5f; spiking vs numpy EP %.5f"
      % (ns.fidelity.compare(g_spk, g_rbp)["cosine"], ns.fidelity.compare(g_ep, g_rbp)["cosine"],
         ns.fidelity.compare(g_spk, g_ep)["cosine"]))
