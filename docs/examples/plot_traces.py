"""
Writing and reading a trace file
================================

An engine's trajectories over one EP step (the free phase, then the +beta and -beta phases,
each from the free state) written with ``neurosim.traces.write`` -- SONATA reports per
population, the phases, and EP's and RBP's gradients -- into an HDF5 file in a temporary
folder, then read back with ``neurosim.traces.load``. The figure is drawn from the file
alone: the output population's three trajectories for one example.
"""
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import neurosim as ns
from neurosim import engines, traces

rng = np.random.default_rng(0)
x = rng.uniform(0, 1, (2, 16))
y = np.eye(4)[rng.integers(0, 4, 2)]
net = ns.layered([16, 12, 4], activation="logistic", dynamics="energy", seed=0)
engine = engines.build("reference", net, eps=0.5, free_steps=80, nudge_steps=40, beta=0.05,
                       variant="symmetric", clip=False)
run = engine.trajectories(x, y)       # states (steps, batch, n), phases in steps, the clock
dt, units = run["dt"], run["time_units"]
truth, _ = engine.ground_truth(x, y, 1e-8, "the batch")

path = os.path.join(tempfile.mkdtemp(), "traces.h5")
traces.write(path,
             reports={p: {"data": v, "dt": dt, "variable": "s"} for p, v in run["states"].items()},
             phases=[{"name": n, "start": a * dt, "stop": b * dt, "beta": beta}
                     for n, a, b, beta in run["phases"]],
             gradients={"ep": dict(engine.estimate(x, y)), "rbp": truth},
             dt=dt, time_units=units)

t = traces.load(path)                 # everything below comes from the file
out = t.reports["y"]
time, data = out["time"], out["data"]  # data: (time, example, unit)


def frames(phase):
    """The frames a phase computed: times in (start, stop]; each nudged phase starts from the
    free phase's last state, prepended here (the frame at ``start`` is the previous phase's
    last one)."""
    span = (time > phase["start"]) & (time <= phase["stop"])
    if phase["beta"] == 0:
        return time[time <= phase["stop"]], data[time <= phase["stop"]]
    s0 = data[time <= t.phases[0]["stop"]][-1]
    return np.r_[phase["start"], time[span]], np.concatenate([s0[None], data[span]])


fig, ax = plt.subplots(figsize=(7, 4))
for phase, color in zip(t.phases, ["black", "tab:green", "tab:red"]):
    tt, d = frames(phase)
    for unit in range(d.shape[2]):
        ax.plot(tt, d[:, 0, unit], color=color,
                label="%s (beta = %g)" % (phase["name"], phase["beta"]) if unit == 0 else None)
    ax.axvline(phase["start"], color="grey", lw=0.5)
ax.set_xlabel("time (%s), as stored in the file" % out["time_units"])
ax.set_ylabel("output unit state s_y, example 0")
ax.set_title("the output population's trajectories, read back from %s"
             % os.path.basename(path))
lo, hi = ax.get_ylim()
ax.set_ylim(lo - 0.25 * (hi - lo), hi)
ax.legend(loc="lower center", ncol=3, fontsize=9)
fig.tight_layout()

worst = max(float(np.max(np.abs(t.reports[p]["data"] - v))) for p, v in run["states"].items())
g = t.gradients
print("trace file: %d bytes; reports %s; phases %s"
      % (os.path.getsize(path), sorted(t.reports), [p["name"] for p in t.phases]))
print("largest difference between the states written and read back: %.1e" % worst)
print("cosine of the stored EP gradient to the stored RBP gradient: %.5f"
      % ns.fidelity.compare(g["ep"], g["rbp"])["cosine"])
last = ["%s %.1e" % (p["name"], np.max(np.abs(np.diff(frames(p)[1][-2:], axis=0))))
        for p in t.phases]
print("largest change of an output unit over the last step of each phase: %s" % ", ".join(last))
