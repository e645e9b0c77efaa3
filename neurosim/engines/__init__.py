"""Engines: the protocol every engine offers (:mod:`.protocol`) and the registry that builds
them (:func:`build`, :func:`from_circuit`): ``reference`` (numpy), ``brian2-rate`` and
``brian2-spiking`` (Brian2 circuits), each optionally on devices (:mod:`.devices`)."""
from .protocol import Engine, EpochResult, Estimate, Settings, StepResult
from .registry import available, build, from_circuit, register, settings_of

__all__ = ["build", "register", "available", "from_circuit", "settings_of", "Engine", "Settings", "Estimate",
           "StepResult", "EpochResult"]
