"""The error hierarchy: every error neurosim raises on purpose derives from
:class:`NeurosimError`, so a caller (the CLI) can catch exactly these."""


class NeurosimError(Exception):
    """Base of every error neurosim raises on purpose."""


class ConfigurationError(NeurosimError, ValueError):
    """A setting or input does not fit (the message names the circuit-file field, as a dotted
    path, or the argument)."""


class ArgumentError(NeurosimError, ValueError):
    """A Python argument has the wrong type or value (the message names it)."""


class CorruptFileError(NeurosimError, ValueError):
    """A file neurosim reads (a checkpoint, a trace file) is truncated, corrupt or not of its
    kind (the message names the file)."""


class MissingDependencyError(NeurosimError, ImportError):
    """An optional package a feature needs is not installed (the message says how to install
    it)."""


class DivergedError(NeurosimError, ArithmeticError):
    """Training stopped because the loss or the parameters became non-finite (the message
    names the epoch and batch; the checkpoint keeps the last finite state)."""


__all__ = ["NeurosimError", "ConfigurationError", "ArgumentError", "CorruptFileError",
           "DivergedError", "MissingDependencyError"]
