"""From a circuit file's sections to the objects they describe: the network of ``[network]``
(a :class:`~neurosim.network.Network`, or a resistive network with ``[resistive]``'s
elements), the dataset of ``[dataset]``, and the check that the two fit."""
from __future__ import annotations

import networkx as nx
import numpy as np

from .. import datasets
from ..errors import ConfigurationError
from ..network import Network, layered


def build_network(section, elements=None):
    """A :class:`Network` from the ``[network]`` section, or for ``kind = "resistive"`` a
    :class:`~neurosim.resistive.ResistiveNetwork` with the ``[resistive]`` section's
    ``elements``."""
    if section.kind == "resistive":
        from ..resistive import resistive
        if section.sizes is None or section.skip:
            raise ConfigurationError("network.sizes: a resistive network is layered: give "
                                     "'sizes' (no 'skip', no explicit graph)")
        if section.readout != "state":
            raise ConfigurationError("network.readout: a resistive network reads its output "
                                     "node voltages ('state'), got %r" % section.readout)
        el = dict(elements or {})
        g_init = el.pop("g_init", 1.0)
        return resistive(section.sizes, seed=section.seed, g_init=g_init,
                         dtype=np.dtype(section.dtype).type, **el)
    kw = dict(activation=section.activation, dynamics=section.dynamics, seed=section.seed,
              dtype=section.dtype, gain=section.gain, asymmetry=section.asymmetry,
              readout=section.readout)
    if section.sizes is not None:
        return layered(section.sizes, skip=[tuple(p) for p in section.skip], **kw)
    g = nx.DiGraph()
    for p in section.populations:
        g.add_node(p.name, size=p.size, role=p.role,
                   **({} if p.shape is None else {"shape": tuple(p.shape)}))
    for e in section.projections:
        for end in (e.source, e.target):
            if end not in g:
                raise ConfigurationError("network.projections: %r is not a population (%s)"
                                         % (end, list(g.nodes)))
        conv = {} if e.kernel is None else dict(kernel=e.kernel, stride=e.stride,
                                                padding=e.padding, pool=e.pool,
                                                pooling=e.pooling)
        if e.kernel is None and (e.stride, e.padding, e.pool, e.pooling) != (1, 0, 1, "average"):
            raise ConfigurationError("network.projections: %s -> %s has stride, padding, pool "
                                     "or pooling but no kernel" % (e.source, e.target))
        g.add_edge(e.source, e.target, **conv, **({} if e.gain == 1.0 else {"gain": e.gain}))
    return Network.from_graph(g, **kw)


def build_dataset(section, dtype):
    """The dataset of the ``[dataset]`` section."""
    opts = {"seed": section.seed, "dtype": dtype}
    if section.limit_train:
        opts["limit_train"] = section.limit_train
    if section.limit_test:
        opts["limit_test"] = section.limit_test
    if section.path:
        opts["path"] = section.path
    return datasets.load(section.name, **opts)


def check_fit(net, data):
    """A ConfigurationError where the network's input or output population does not match
    the dataset's features or classes."""
    n_in = net.sizes[net.inputs[0]]
    n_out = net.sizes[net.outputs[0]]
    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise ConfigurationError("network: training needs exactly one input and one output "
                                 "population")
    if data.n_features != n_in:
        raise ConfigurationError("network: the input population has %d units but dataset %r has "
                                 "%d features" % (n_in, data.name, data.n_features))
    if data.n_classes != n_out:
        raise ConfigurationError("network: the output population has %d units but dataset %r has "
                                 "%d classes" % (n_out, data.name, data.n_classes))


__all__ = ["build_network", "build_dataset", "check_fit"]
