"""Sweeps of many runs on Dask (:mod:`.runner`), their index and report (:mod:`.report`)."""
from .runner import (INDEX_COLUMNS, MODES, SweepError, base_value, parse_param, plan,
                     read_index, run_one, run_sweep, split_values, write_index)

__all__ = ["run_sweep", "plan", "base_value", "MODES", "parse_param", "split_values",
           "read_index", "write_index", "run_one", "SweepError", "INDEX_COLUMNS"]
