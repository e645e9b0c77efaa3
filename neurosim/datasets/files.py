"""Where dataset files are found (:func:`search_path`: ``$NEUROSIM_DATA``, ``./datasets/``,
the repository's ``datasets/``, ``/usr/share/datasets/``) and how their bytes are read."""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

from .errors import DatasetError

SYSTEM_DIR = Path("/usr/share/datasets")


def _repo_dir():
    """The source checkout's ``datasets/`` directory, or None when installed elsewhere."""
    root = Path(__file__).resolve().parents[2]
    return root / "datasets" if (root / "pyproject.toml").is_file() else None


def search_path(name, path=None):
    """The directories searched for dataset ``name``'s IDX files, in order.

    ``path`` (if given) replaces the search: ``path/<name>/`` then ``path``. Otherwise each
    entry of ``$NEUROSIM_DATA`` (``os.pathsep``-separated; ``<dir>/<name>/`` then ``<dir>``),
    ``./datasets/<name>/``, the repository's ``datasets/<name>/`` (source checkouts only),
    then ``/usr/share/datasets/<name>/``.
    """
    if path is not None:
        p = Path(os.fspath(path)).expanduser()
        return [p / name, p]
    dirs = []
    for entry in os.environ.get("NEUROSIM_DATA", "").split(os.pathsep):
        if entry.strip():
            d = Path(entry.strip()).expanduser()
            dirs += [d / name, d]
    dirs.append(Path.cwd() / "datasets" / name)
    repo = _repo_dir()
    if repo is not None:
        dirs.append(repo / name)
    dirs.append(SYSTEM_DIR / name)
    out = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def find_file(directory, stem):
    """``directory/stem`` as plain, ``.gz`` or the ``train-images.idx3-ubyte`` spelling."""
    alt = stem.replace("-idx", ".idx")
    for fname in (stem, stem + ".gz", alt, alt + ".gz"):
        f = directory / fname
        if f.is_file():
            return f
    return None


def read_bytes(path):
    """The bytes of ``path`` (gunzipped for ``.gz``); a corrupt or unreadable file is a
    :class:`DatasetError` naming it."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DatasetError("%s: corrupt gzip file (%s)" % (path, exc)) from None
    except OSError as exc:
        raise DatasetError("%s: cannot read (%s)" % (path, exc)) from None
