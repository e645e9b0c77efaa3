"""What the ``neurosim`` command runs: ``run`` (training from a circuit file), ``theorem``,
``fidelity`` (and its spiking sweeps); ``sweep`` lives in :mod:`neurosim.sweep`."""
