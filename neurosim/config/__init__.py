"""Circuit files: TOML descriptions of a network, its engine, learning rule, training run,
dataset, recording and output folder, validated with errors that name the field.

* :mod:`.schema` -- the sections (``network``, ``engine``, ``learning``, ``train``,
  ``dataset``, ``record``, ``output``, ``hardware``, ``cost``, ``sweep``, ``resistive``) and
  :class:`Circuit`;
* :mod:`.files` -- :func:`load` (a file or a built-in circuit by name), ``--set KEY=VALUE``
  overrides on the same dotted paths and the same validation, one-line errors naming each bad
  field with "did you mean", the built-in circuits and their summaries, :func:`to_toml`;
* :mod:`.build` -- what the sections describe: :func:`build_network`, :func:`build_dataset`,
  :func:`check_fit`.
"""
from .build import build_dataset, build_network, check_fit
from .files import (InvalidCircuitError, apply_overrides, blame_file, builtin_circuits,
                    builtin_dir, builtin_names, builtin_path, describe_source, load,
                    parse_override, resolve, suggestion, summary_line, to_toml, unknown_key,
                    validate)
from .schema import (Circuit, ConfigError, CostSection, DatasetSection, EngineSection,
                     HardwareSection, LearningSection, NetworkSection, OutputSection, Population,
                     Projection, RecordSection, ResistiveSection, SweepSection, TrainSection)

__all__ = ["load", "validate", "apply_overrides", "parse_override", "builtin_path", "resolve",
           "builtin_dir", "builtin_names", "builtin_circuits", "summary_line",
           "InvalidCircuitError",
           "to_toml", "suggestion", "unknown_key", "describe_source", "blame_file",
           "build_network", "build_dataset", "check_fit", "Circuit", "ConfigError",
           "NetworkSection", "EngineSection", "LearningSection", "TrainSection",
           "DatasetSection", "RecordSection", "OutputSection", "HardwareSection", "CostSection",
           "SweepSection", "ResistiveSection", "Population", "Projection"]
