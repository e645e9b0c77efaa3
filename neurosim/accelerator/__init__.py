"""The network maths on PyTorch tensors, for the accelerator engine
(:mod:`neurosim.engines.accelerator`, ``engine.name = "torch"``): the products of dense and
convolutional terms (:mod:`.products`), the network's rates, drives, readout and energy terms
(:mod:`.network`), the phases (:mod:`.dynamics`) and the EP estimate by automatic
differentiation (:mod:`.estimate`). Importing it imports torch."""
