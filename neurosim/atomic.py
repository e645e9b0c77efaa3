"""The one atomic-write helper: a file appears complete under its name or not at all, and
what was there before is kept until the new content is whole.

:func:`atomic_path` yields a temporary path in the target's directory; the caller writes the
file there (with any library: h5py, numpy, matplotlib, pynwb); on success it is flushed to
disk and renamed onto the target (``os.replace``, atomic on POSIX and Windows), on any error
(KeyboardInterrupt included) it is removed and the target is untouched. :func:`write_text`,
:func:`write_bytes` and :func:`write_json` are the usual cases.
"""
from __future__ import annotations

import contextlib
import os
import uuid


def temporary_name(path):
    """A fresh temporary name beside ``path``: ``<stem>.tmp-<random><ext>`` (the extension
    kept, for libraries that pick the format from it)."""
    root, ext = os.path.splitext(os.fspath(path))
    return "%s.tmp-%s%s" % (root, uuid.uuid4().hex[:8], ext)


@contextlib.contextmanager
def atomic_path(path, fsync=True):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``
    (``os.replace``; with ``fsync`` its content is flushed to disk first), on error it is
    removed and ``path`` is untouched."""
    path = os.fspath(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        if fsync and os.path.isfile(tmp):
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def write_text(path, text, newline=None):
    """Write ``text`` (UTF-8) to ``path`` atomically; ``newline`` as for :func:`open`
    (``""``: no translation, e.g. for CSV). Returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline=newline) as f:
            f.write(text)
    return path


def write_bytes(path, data):
    """Write ``data`` to ``path`` atomically. Returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def write_json(path, obj, indent=1, **kwargs):
    """Write ``obj`` as strict JSON (:func:`neurosim.jsontext.dumps`: NaN as ``null``) to
    ``path`` atomically; the object is serialised before anything is written. Returns
    ``path``."""
    from .jsontext import dumps
    return write_text(path, dumps(obj, indent=indent, **kwargs))


__all__ = ["atomic_path", "temporary_name", "write_text", "write_bytes", "write_json"]
