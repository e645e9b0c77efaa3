"""The ground truth on the accelerator against the reference implementation: one fidelity batch
(50 training examples) of a circuit after a few training batches on the torch engine, the RBP
gradient at the fixed point polished from the engine's own free state, by the torch engine's
``ground_truth`` (Newton and CG on Jacobian-vector products, float64) and by the base class's
(the reference implementation, :mod:`neurosim.fixed_point` and :mod:`neurosim.rbp`).

    python benchmarks/bench_ground_truth.py [--circuit conv_fashion] [--warm 40]

Prints the seconds of each (the second of two calls) and the largest difference of the
gradients; saves them to ``benchmarks/results/ground_truth.json`` (``--out``)."""
import argparse
import time

import numpy as np

from neurosim import config, engines
from neurosim.engines.protocol import Engine
from neurosim.training.optimizer import Optimizer

import results

TABLES = [{"id": "ground_truth", "columns": [
    ["circuit", "circuit", "`{}`"], ["device", "device"],
    ["torch s", "torch_seconds", "**{:.3f}**"], ["reference s", "reference_seconds", "{:.3f}"],
    ["reference / torch", "reference_over_torch", "{:.1f}x"],
    ["Newton iterations", "newton_iterations"], ["residual", "residual", "{:.1e}"],
    ["largest difference (largest entry)", ["largest_difference", "largest_entry"],
     "{:.1e} ({:.1e})"]]}]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuit", default="fashion_mnist_784-500-10")
    ap.add_argument("--warm", type=int, default=40, help="training batches before measuring")
    ap.add_argument("--device", default="cpu")
    results.add_out_argument(ap, "ground_truth")
    a = ap.parse_args()
    rec = results.start("ground_truth", packages=("torch",))
    circuit = config.load(config.resolve(a.circuit))[0]
    net = config.build_network(circuit.network)
    settings = dict(engines.settings_of(circuit), device=a.device)
    eng = engines.build("torch", net, **settings)
    data = config.build_dataset(circuit.dataset, net.dtype)
    opt = Optimizer({k: 0.01 for k in net.params}, 0.9)
    for i in range(a.warm):
        eng.step(data.x_train[50 * i:50 * i + 50], data.y_train[50 * i:50 * i + 50], opt)
    x, y = data.x_train[:50], data.y_train[:50]
    state = eng.free_state(x)
    for _ in range(2):
        t = time.perf_counter()
        g, fp = eng.ground_truth(x, y, 1e-8, "bench", state=state)
        t_torch = time.perf_counter() - t
        t = time.perf_counter()
        want, _ = Engine.ground_truth(eng, x, y, 1e-8, "bench", state=state)
        t_ref = time.perf_counter() - t
    diff = max(float(np.max(np.abs(g[k] - want[k]))) for k in want)
    scale = max(float(np.max(np.abs(want[k]))) for k in want)
    print("%s: torch %.3f s (Newton iterations %d, residual %.1e), reference %.3f s; "
          "largest difference %.1e (largest entry %.1e)"
          % (a.circuit, t_torch, fp.newton_iterations, fp.residual, t_ref, diff, scale))
    rec.save({"circuit": a.circuit, "device": a.device, "torch_seconds": t_torch,
              "reference_seconds": t_ref, "reference_over_torch": t_ref / t_torch,
              "newton_iterations": fp.newton_iterations, "residual": fp.residual,
              "largest_difference": diff, "largest_entry": scale}, TABLES,
             settings={"warm": a.warm}, path=a.out)


if __name__ == "__main__":
    main()
