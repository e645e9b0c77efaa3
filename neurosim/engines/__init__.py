"""Engines: the protocol every engine offers (:mod:`.protocol`, with :func:`register`, the
decorator an engine class registers itself with) and the registry that builds them
(:func:`available`, :func:`build`, :func:`from_circuit`): ``reference`` (numpy),
``brian2-rate`` and ``brian2-spiking`` (Brian2 circuits), ``resistive`` (analog resistive
networks), each optionally on devices (:mod:`.devices`)."""
from .protocol import Engine, EpochResult, Estimate, Settings, StepResult, register
from .registry import available, build, engine_class, from_circuit, settings_of

__all__ = ["build", "register", "available", "engine_class", "from_circuit", "settings_of",
           "Engine", "Settings", "Estimate", "StepResult", "EpochResult"]
