"""Sweeps of many runs on Dask (:mod:`.runner`): their grid (:mod:`.grid`), index
(:mod:`.index`) and report (:mod:`.report`)."""
from .grid import MODES, SweepError, base_value, parse_param, plan, split_values
from .index import INDEX_COLUMNS, read_index, write_index
from .runner import run_one, run_sweep

__all__ = ["run_sweep", "plan", "base_value", "MODES", "parse_param", "split_values",
           "read_index", "write_index", "run_one", "SweepError", "INDEX_COLUMNS"]
