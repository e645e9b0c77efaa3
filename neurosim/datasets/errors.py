"""The errors of the dataset loaders."""
from __future__ import annotations

from ..errors import NeurosimError


class DatasetError(NeurosimError, ValueError):
    """A dataset name, option or file is wrong; the message says which and what was expected."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset's files are on none of the searched places (the message lists them all)."""
