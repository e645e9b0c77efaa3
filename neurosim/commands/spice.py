"""``neurosim spice CIRCUIT``: write the circuit's resistive network as an ngspice netlist
and, with ``--check``, solve it in ngspice and in neurosim and compare the node voltages
(exit status 0 when they agree, 1 when they do not; a missing ngspice is an error, 2).

The network is the circuit file's (``network.kind = "resistive"``), with its initial
conductances or, with ``--checkpoint``, those of a run's checkpoint; the input is the
dataset's first test example (``--example`` picks another)."""
from __future__ import annotations

import os


from .. import config, jsontext
from ..atomic import write_text
from ..errors import ConfigurationError
from ..resistive import ResistiveNetwork
from ..resistive.spice import check, find_ngspice, netlist
from ..config import build_dataset, build_network
from ..training.trainer import read_checkpoint


def _network(circuit, checkpoint):
    net = build_network(circuit.network, circuit.resistive.model_dump())
    if not isinstance(net, ResistiveNetwork):
        raise ConfigurationError("network.kind: neurosim spice exports resistive networks "
                                 "(network.kind = \"resistive\"), got %r" % circuit.network.kind)
    if checkpoint:
        _, z = read_checkpoint(checkpoint, training=False)   # a damaged file: one line naming it
        for k in net.params:
            if "param/" + k not in z or z["param/" + k].shape != net.params[k].shape:
                raise ConfigurationError("--checkpoint %s does not match the network (%r)"
                                         % (checkpoint, k))
            net.params[k][...] = z["param/" + k]
    return net


def main(args):
    circuit, _ = config.load(args.circuit, args.overrides)
    net = _network(circuit, args.checkpoint)
    data = build_dataset(circuit.dataset, "float64")
    if not 0 <= args.example < data.x_test.shape[0]:
        raise ConfigurationError("--example: expected 0 .. %d, got %d"
                                 % (data.x_test.shape[0] - 1, args.example))
    x = data.x_test[args.example]
    out = args.netlist or "%s.cir" % circuit.name
    write_text(out, netlist(net, x, title="neurosim %s, test example %d"
                                          % (circuit.name, args.example)))
    summary = {"netlist": os.path.abspath(out), "components": net.n_components}
    print("wrote %s (%d components: resistors and diodes)" % (out, net.n_components))
    status = 0
    if args.check:
        find_ngspice()
        c = check(net, x, rel_tol=args.rel_tol)
        summary.update(c.as_dict())
        print("ngspice vs neurosim on %d nodes (%s diodes): max |dV| %.3g V (%.3g relative); "
              "%s: %s" % (c.nodes, net.elements.diode, c.max_abs, c.max_rel, c.criterion,
                          "agree" if c.agree else "DISAGREE"))
        status = 0 if c.agree else 1
    if args.json:
        print(jsontext.dumps(summary))
    return status


__all__ = ["main"]
