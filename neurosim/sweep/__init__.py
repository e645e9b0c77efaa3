"""Sweeps of many runs on Dask (:mod:`.runner`): their grid (:mod:`.grid`), index and
report (:mod:`.report`)."""
from .grid import MODES, SweepError, base_value, parse_param, plan, split_values
from .runner import INDEX_COLUMNS, read_index, run_one, run_sweep, write_index

__all__ = ["run_sweep", "plan", "base_value", "MODES", "parse_param", "split_values",
           "read_index", "write_index", "run_one", "SweepError", "INDEX_COLUMNS"]
