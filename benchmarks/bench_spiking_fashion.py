"""Fashion-MNIST through spikes: the throughput of the compiled whole-epoch spiking circuit
of a circuit file (default ``fashion_spiking``: 784-500-10 sigma-delta units, spiking
inputs), beside the reference engine's on the same examples, in one run:

    python benchmarks/bench_spiking_fashion.py [--circuit fashion_spiking] [--train 6000]
        [--test 2000] [--epochs 1] [--set KEY=VALUE ...] [--out FILE.json]

Per epoch it prints the wall seconds (the first includes the C++ build, printed apart),
training examples per second inside the compiled run (the binary's run, which also infers
the test set) and end to end, the spikes (events) per training example and the test
accuracy read from the output units' events; then the reference engine's examples per second
on the same training examples with the circuit's phases (one ``step`` per mini-batch). Saves
the per-epoch rows to ``benchmarks/results/spiking_fashion.json`` (``--out``)."""
import argparse
import time

import numpy as np

from neurosim import engines
from neurosim.commands.run import build_engine
from neurosim.config import build_dataset, build_network, load
from neurosim.training.optimizer import Optimizer, resolve_learning_rates

import results

TABLES = [{"id": "epochs", "rows": "epochs", "columns": [
    ["epoch", "epoch"], ["wall s", "wall_seconds", "{:.1f}"],
    ["C++ build s", "build_seconds", "{:.1f}"], ["run s", "run_seconds", "{:.1f}"],
    ["training ex/s in the run", "train_per_second_in_run", "**{:,.0f}**"],
    ["ex/s end to end", "per_second_end_to_end", "{:,.0f}"],
    ["events / training example", "spikes_per_example", "{:,.0f}"],
    ["test accuracy through spikes", "test_accuracy", "{:.2f} %", "percent"]]},
    {"id": "reference", "columns": [
        ["reference engine ex/s, same examples and phases", "reference_per_second", "{:,.0f}"],
        ["training examples", "train"], ["test examples", "test"]]}]
FORMATS = {"train_per_second_in_run": "{:,.0f}", "per_second_end_to_end": "{:,.0f}",
           "spikes_per_example": "{:,.0f}", "reference_per_second": "{:,.0f}",
           "test_accuracy": "{:.4f}", "build_seconds": "{:.0f}"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuit", default="fashion_spiking")
    ap.add_argument("--train", type=int, default=6000, help="training examples per epoch")
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    results.add_out_argument(ap, "spiking_fashion")
    a = ap.parse_args()
    rec = results.start("spiking_fashion", packages=("brian2",))
    circuit, _ = load(a.circuit, a.set + ["dataset.limit_train=%d" % a.train,
                                          "dataset.limit_test=%d" % a.test])
    net = build_network(circuit.network)
    data = build_dataset(circuit.dataset, net.dtype)
    engine = build_engine(circuit, net)
    lrs = resolve_learning_rates(net, circuit.learning.lr)
    B, s = circuit.train.batch_size, circuit.engine
    n_train = data.x_train.shape[0]
    print("%s through spikes: %d train / %d test, %s units, input drive %s, %d + %d + %d "
          "steps of eps %g, beta %g, batch %d (replicas)"
          % (circuit.name, n_train, data.x_test.shape[0], s.neuron, s.input_drive,
             s.free_steps, s.nudge_steps, s.nudge_steps, s.eps, circuit.learning.beta, B))
    rows = []
    try:
        for epoch in range(a.epochs):
            order = np.random.default_rng([0, epoch]).permutation(n_train)
            t0 = time.perf_counter()
            before = dict(engine.spikes)
            result = engine.train_epoch(data.x_train[order], data.y_train[order],
                                        np.ones(n_train), lrs, B, x_eval=data.x_test)
            wall = time.perf_counter() - t0
            st = engine.circuit.stats
            test_out = result.eval_outputs[net.outputs[0]]
            acc = float(np.mean(test_out.argmax(1) == data.labels_test))
            spikes = sum(engine.spikes[k] - before[k] for k in engine.spikes)
            row = dict(epoch=epoch + 1, wall_seconds=wall, build_seconds=st["seconds_build"],
                       run_seconds=st["seconds_run"],
                       train_per_second_in_run=n_train / st["seconds_run"],
                       per_second_end_to_end=n_train / wall,
                       spikes_per_example=spikes / n_train, test_accuracy=acc)
            rows.append(row)
            print("epoch %(epoch)d: %(wall_seconds).1f s (C++ build %(build_seconds).1f s, run "
                  "%(run_seconds).1f s); %(train_per_second_in_run).1f training ex/s in the run "
                  "(test set included), %(per_second_end_to_end).1f ex/s end to end; "
                  "%(spikes_per_example).0f spikes per training example; test accuracy "
                  "through spikes %(test_accuracy).4f" % row, flush=True)
    finally:
        engine.close()
    ref_net = build_network(circuit.network)
    ref = engines.build("reference", ref_net, eps=s.eps, free_steps=s.free_steps,
                        nudge_steps=s.nudge_steps, beta=circuit.learning.beta, clip=s.clip)
    opt = Optimizer(resolve_learning_rates(ref_net, circuit.learning.lr), 0.0)
    t0 = time.perf_counter()
    for b in range(0, n_train, B):
        ref.step(data.x_train[b:b + B], data.y_train[b:b + B], opt)
    ref_rate = n_train / (time.perf_counter() - t0)
    print("reference engine (numpy), same examples and phases: %.0f ex/s; spiking / reference "
          "%.3f" % (ref_rate, rows[-1]["train_per_second_in_run"] / ref_rate))
    rec.save({"circuit": circuit.name, "train": n_train, "test": int(data.x_test.shape[0]),
              "epochs": rows, "reference_per_second": ref_rate}, TABLES, FORMATS,
             settings={"circuit": a.circuit, "overrides": a.set, "epochs": a.epochs},
             path=a.out)


if __name__ == "__main__":
    main()
