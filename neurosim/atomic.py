"""The one atomic-write helper: a file appears complete under its name or not at all, and
what was there before is kept until the new content is whole."""
from __future__ import annotations

import contextlib
import os
import uuid


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``
    (``os.replace``), on error it is removed and ``path`` is untouched."""
    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    tmp = "%s.tmp-%s%s" % (root, uuid.uuid4().hex[:8], ext)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return path


__all__ = ["atomic_path", "write_text"]
