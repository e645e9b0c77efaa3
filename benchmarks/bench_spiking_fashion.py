"""Fashion-MNIST 784-500-10 trained through spikes in one compiled run per epoch
(``SpikingTrainingCircuit``: mini-batches of 20 as replicas, the snapshot rule in the
synapses, test accuracy from the output spikes), beside the reference engine's rate, in one
run:

    python benchmarks/bench_spiking_fashion.py [--drive spikes|analog] [--train 2000]
        [--test 1000] [--epochs 1] [--steps 100]

It prints, per epoch, the wall seconds (the first includes the C++ build, printed apart),
training examples per second inside the compiled run and end to end, the spikes per
example, test accuracy through spikes, and the reference engine's examples per second on
the same examples (784-500-10, 20 + 4 Euler steps, float32). ``--drive spikes``: input
units fire at ``x * max_rate`` and their spikes drive the hidden currents (the dense input
projection costs one event per input spike and hidden unit); ``--drive analog``: the input
current ``sum w x`` is set once per example."""
import argparse
import time

import numpy as np

import neurosim as ns
from neurosim import engines
from neurosim.brian.spiking import trace_constants
from neurosim.brian.spiking_training import SpikingTrainingCircuit
from neurosim.training.optimizer import Optimizer, resolve_learning_rates


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drive", choices=("spikes", "analog"), default="spikes")
    ap.add_argument("--train", type=int, default=2000, help="training examples per epoch")
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100, help="steps per phase (free = nudge)")
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--lr", default="0.05,0.02")
    a = ap.parse_args()
    data = ns.datasets.load("fashion-mnist", limit_train=a.train, limit_test=a.test, seed=0)
    net = ns.layered([784, 500, 10], activation="hard_sigmoid", seed=0, dtype="float64")
    lr = [float(v) for v in a.lr.split(",")]
    lrs = resolve_learning_rates(net, lr)
    tau_fast, tau_slow = trace_constants(a.steps, 0.1)
    n_train, n_test = data.x_train.shape[0], data.x_test.shape[0]
    circuit = SpikingTrainingCircuit(net, n_train + n_test, batch_size=20, lrs=lrs,
                                     input_drive=a.drive, free_steps=a.steps,
                                     nudge_steps=a.steps, beta=a.beta, tau_fast=tau_fast,
                                     tau_slow=tau_slow, seed=0)
    print("Fashion-MNIST 784-500-10 through spikes: %d train / %d test, input drive %s, "
          "%d + %d + %d steps of 1 ms, beta %g, batch 20 (replicas)"
          % (n_train, n_test, a.drive, a.steps, a.steps, a.steps, a.beta))
    try:
        for epoch in range(a.epochs):
            order = np.random.default_rng([0, epoch]).permutation(n_train)
            x = np.concatenate([data.x_train[order], data.x_test])
            y = np.concatenate([data.y_train[order], np.zeros((n_test, 10))])
            t0 = time.perf_counter()
            circuit.train_epoch(x, y, n_train=n_train)
            wall = time.perf_counter() - t0
            out = circuit.outputs[net.outputs[0]]
            acc = float(np.mean(out[n_train:].argmax(1) == data.labels_test))
            st = circuit.stats
            spikes = sum(c["free"] + c["nudged"] for c in st["spikes"].values())
            print("epoch %d: %.1f s (C++ build %.1f s, run %.1f s); %.1f training ex/s in the "
                  "run (train + test examples %.1f ex/s), %.1f ex/s end to end; %.0f spikes "
                  "per example; test accuracy through spikes %.2f %%"
                  % (epoch + 1, wall, st["seconds_build"], st["seconds_run"],
                     n_train / st["seconds_run"], (n_train + n_test) / st["seconds_run"],
                     n_train / wall, spikes / (n_train + n_test), 100 * acc), flush=True)
    finally:
        circuit.close()
    ref_net = ns.layered([784, 500, 10], activation="hard_sigmoid", seed=0, dtype="float32")
    ref = engines.build("reference", ref_net, eps=0.5, free_steps=20, nudge_steps=4, beta=0.5)
    opt = Optimizer(resolve_learning_rates(ref_net, lr), 0.0)
    xs = data.x_train.astype(np.float32)
    ys = data.y_train.astype(np.float32)
    t0 = time.perf_counter()
    for b in range(0, n_train, 20):
        ref.step(xs[b:b + 20], ys[b:b + 20], opt)
    dt = time.perf_counter() - t0
    print("reference engine (numpy, 20 + 4 steps, float32), same examples: %.0f ex/s"
          % (n_train / dt))


if __name__ == "__main__":
    main()
