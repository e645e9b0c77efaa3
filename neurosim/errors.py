"""The error hierarchy: every error neurosim raises on purpose derives from
:class:`NeurosimError`, so a caller (the CLI) can catch exactly these."""


class NeurosimError(Exception):
    """Base of every error neurosim raises on purpose."""


class ConfigurationError(NeurosimError, ValueError):
    """A setting or input does not fit (the message names the circuit-file field, as a dotted
    path, or the argument)."""


class ArgumentError(NeurosimError, ValueError):
    """A Python argument has the wrong type or value (the message names it)."""


__all__ = ["NeurosimError", "ConfigurationError", "ArgumentError"]
