"""Every Python example in the README and the documentation runs as written.

Each page's ``python`` code blocks run in order, as one script, in a fresh interpreter whose
working folder is a temporary one (what a block writes lands there), with the checkout and the
conformance checks (``tests`` and ``tests/conformance``, which docs/adding-an-engine.md imports) importable.
"""
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def python_blocks(page):
    """The ``python`` fenced blocks of a Markdown page, in order."""
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def test_the_pages_have_examples():
    with_code = [p.name for p in PAGES if python_blocks(p)]
    assert {"README.md", "networks.md", "engines.md", "adding-an-engine.md",
            "circuit-files.md"} <= set(with_code), with_code


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_examples_run_as_written(page, tmp_path):
    script = "\n\n".join(python_blocks(page))
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                           str(ROOT / "tests" / "conformance"),
                                           os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, "%s: the examples failed:\n%s" % (page.name, done.stderr[-3000:])
