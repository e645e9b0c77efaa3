"""Circuit files: TOML descriptions of a network, its engine, learning rule, training run,
dataset, recording and output folder, validated with errors that name the field.

* :mod:`.schema` -- the sections (``network``, ``engine``, ``learning``, ``train``,
  ``dataset``, ``record``, ``output``, ``hardware``, ``cost``, ``sweep``, ``resistive``) and
  :class:`Circuit`;
* :mod:`.files` -- :func:`load` (a file or a built-in circuit by name), ``--set KEY=VALUE``
  overrides on the same dotted paths and the same validation, errors one line per field with
  "did you mean", :func:`to_toml`;
* :mod:`.build` -- what the sections describe: :func:`build_network`, :func:`build_dataset`,
  :func:`check_fit`.
"""
from .build import build_dataset, build_network, check_fit
from .files import (apply_overrides, blame_file, builtin_path, describe_source, load,
                    parse_override, resolve, suggestion, to_toml, unknown_key, validate)
from .schema import (Circuit, ConfigError, CostSection, DatasetSection, EngineSection,
                     HardwareSection, LearningSection, NetworkSection, OutputSection, Population,
                     Projection, RecordSection, ResistiveSection, SweepSection, TrainSection)

__all__ = ["load", "validate", "apply_overrides", "parse_override", "builtin_path", "resolve",
           "to_toml", "suggestion", "unknown_key", "describe_source", "blame_file",
           "build_network", "build_dataset", "check_fit", "Circuit", "ConfigError",
           "NetworkSection", "EngineSection", "LearningSection", "TrainSection",
           "DatasetSection", "RecordSection", "OutputSection", "HardwareSection", "CostSection",
           "SweepSection", "ResistiveSection", "Population", "Projection"]
