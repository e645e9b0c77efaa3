"""
EP in a resistive network
=========================

A 16-20-4 analog resistive network: input voltage sources, conductances between layers,
diodes bounding each hidden node. Every phase is the circuit's DC operating point, the
nudge is a current ``beta (y - V_out)`` injected at the outputs, and each conductance learns
from the change of its own voltage drop. The figure: EP's relative error against the
circuit's own RBP gradient (implicit differentiation of Kirchhoff's law) over ``beta``, with
ideal diodes (hard bounds: a strong nudge moves nodes onto or off a bound, which adds to the
error) and with Shockley diodes (smooth). At the smallest ``beta`` the operating points'
solver tolerance, divided by ``beta``, sets a floor.
"""
import matplotlib.pyplot as plt
import numpy as np

import neurosim as ns
from neurosim import resistive as rs

rng = np.random.default_rng(0)
x = rng.uniform(0, 1, (8, 16))
y = np.eye(4)[rng.integers(0, 4, 8)]
betas = np.logspace(-5, -0.5, 10)

fig, ax = plt.subplots(figsize=(6.4, 4.2))
for diode, color in [("ideal", "tab:blue"), ("shockley", "tab:orange")]:
    net = rs.resistive([16, 20, 4], seed=0, diode=diode)
    free = rs.operating_point(net, x)                  # the free DC operating point
    g_rbp = rs.rbp_gradient(net, x, y, free)
    for variant, ls, marker in [("one_sided", "--", "o"), ("symmetric", "-", "s")]:
        err = np.array([ns.fidelity.compare(rs.ep_gradient(net, x, y, b, variant=variant,
                                                           free=free)[0], g_rbp)["rel_error"]
                        for b in betas])
        mid = (betas >= 1e-3) & (betas <= 1e-1)
        slope = np.polyfit(np.log10(betas[mid]), np.log10(err[mid]), 1)[0]
        ax.loglog(betas, err, ls=ls, marker=marker, color=color,
                  label="%s diodes, %s (slope %.2f)" % (diode, variant.replace("_", "-"), slope))
        print("%-8s diodes, %-9s: relative error %.1e at beta = %.0e, %.1e at beta = %.2f; "
              "slope %.2f for 1e-3 <= beta <= 0.1"
              % (diode, variant, err[0], betas[0], err[-1], betas[-1], slope))
    print("%-8s diodes: hidden nodes at a diode bound %.0f %%, KCL residual %.1e V"
          % (diode, 100 * free.pinned["h1"], free.residual))
ax.set_xlabel("nudge strength beta (output current beta (y - V_out))")
ax.set_ylabel("relative error of EP against RBP")
ax.set_title("EP in a resistive network, 16-20-4")
ax.legend(fontsize=8)
ax.grid(True, alpha=0.3)
fig.tight_layout()
