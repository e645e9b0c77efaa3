"""Render saved benchmark results (``benchmarks/results/*.json``) into Markdown files.

    python benchmarks/tables.py            # rewrite the marked blocks of FILES
    python benchmarks/tables.py --check    # exit 1 when any block differs from its result
    python benchmarks/tables.py FILE.md    # other files instead of FILES

Markers (HTML comments, invisible on GitHub; files without markers are left alone; a marker
right after a backtick is code, not a marker):

* a block: ``<!-- results:NAME -->`` ... ``<!-- /results:NAME -->`` is replaced by a line
  saying how ``results/NAME.json`` was measured (command, date, seconds, load) and its tables;
  ``NAME#ID`` renders only the table whose ``id`` is ID.
* one figure: ``<!-- result:NAME.PATH -->97.77<!-- /result -->`` (on one line) is filled with
  the value at PATH in ``results/NAME.json``, formatted by the template after PATH
  (``<!-- result:NAME.PATH {:.2f} -->``), else by the file's ``formats`` entry for PATH or for
  its last key, else ``{:.4g}``.

A PATH is looked up in the result's ``figures`` (or, when its first key is not there, in the
whole file: ``date``, ``seconds``, ``settings.batch``, ...): keys joined by dots, ``[2]`` or
``[-1]`` an index, ``[key=value,key2=value2]`` the first list element with those values, e.g.
``cases[circuit=conv_fashion].ratio``.

A table (one entry of the result's ``tables``) is ``{"id", "title", "rows", "where",
"columns"}``: ``rows`` a PATH to a list of dicts (absent: one row, the figures), ``where``
keeps the rows with those values, ``columns`` a list of ``[head, path, template, transform]``
(the last two optional): ``path`` is looked up in the row, ``template`` is a
:meth:`str.format` template, ``transform`` one of :data:`TRANSFORMS`; a list of paths puts
several values in one cell, formatted together when the template has a field for each, else
each alone and joined by " / ". A missing or null value shows as "-", a list's items are
joined by ", "."""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import string
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
#: the Markdown files whose markers are rendered, relative to the repository root
FILES = ("benchmarks/README.md", "README.md", "docs/fidelity.md", "docs/spiking.md")
TRANSFORMS = {"percent": lambda v: 100.0 * v, "error_percent": lambda v: 100.0 * (1.0 - v),
              "milli": lambda v: 1e3 * v, "mega": lambda v: 1e-6 * v}
BLOCK = re.compile(r"(?<!`)<!-- results:(?P<name>[\w-]+(?:#[\w-]+)?) -->\n"
                   r".*?<!-- /results:(?P=name) -->", re.S)
INLINE = re.compile(r"(?<!`)<!-- result:(?P<name>[\w-]+)\.(?P<path>\S+?)"
                    r"(?: (?P<fmt>(?:(?!-->)[^\n])*?))? -->"
                    r"(?P<body>(?:(?!<!--)[^\n])*?)<!-- /result -->")
TOKEN = re.compile(r"\[(?P<select>[^\]]*)\]|(?P<key>[^.\[\]]+)")
INDEX = re.compile(r"-?\d+")
MISSING = object()


class ResultError(Exception):
    """A marker that cannot be rendered: no such result file, path or table."""


def read(name, results_dir=RESULTS):
    """The saved result ``name`` (``results_dir/NAME.json``) or None when there is none."""
    path = os.path.join(results_dir, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _same(value, want):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(want) == float(value)
        except ValueError:
            return False
    return str(value) == want


def lookup(obj, path):
    """The value at ``path`` (see the module docstring) in ``obj``, or :data:`MISSING`."""
    for m in TOKEN.finditer(path):
        key, select = m.group("key"), m.group("select")
        if isinstance(obj, list) and INDEX.fullmatch(key or ""):
            select, key = key, None
        if key is not None:
            if not isinstance(obj, dict) or key not in obj:
                return MISSING
            obj = obj[key]
        elif INDEX.fullmatch(select):
            if not isinstance(obj, list) or not -len(obj) <= int(select) < len(obj):
                return MISSING
            obj = obj[int(select)]
        else:
            want = dict(kv.split("=", 1) for kv in select.split(","))
            obj = next((e for e in obj if isinstance(e, dict) and all(
                k in e and _same(e[k], v) for k, v in want.items())), MISSING) \
                if isinstance(obj, list) else MISSING
            if obj is MISSING:
                return MISSING
    return obj


def figure(result, path):
    """The value at ``path`` in a result: in its figures, else in the whole file."""
    v = lookup(result.get("figures", {}), path)
    return lookup(result, path) if v is MISSING else v


def fmt(value, template=None, transform=None):
    """One value as text: ``-`` for null, a list's items joined by ", ", else
    ``template.format(value)``."""
    if isinstance(value, list):
        return ", ".join(fmt(v, template, transform) for v in value) or "-"
    if value is MISSING or value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if transform:
        value = TRANSFORMS[transform](value)
    if template is None:
        template = "{:.4g}" if isinstance(value, float) else "{}"
    return template.format(value)


def cell(values, template=None, transform=None):
    """A table cell of one or more values: a template with a field for each value formats
    them together, else each is formatted alone and they are joined by " / "."""
    fields = sum(1 for _, f, _, _ in string.Formatter().parse(template or "") if f is not None)
    if len(values) > 1 and fields == len(values) and all(
            v is not MISSING and v is not None for v in values):
        tr = TRANSFORMS[transform] if transform else (lambda v: v)
        return template.format(*[tr(v) for v in values])
    return " / ".join(fmt(v, template, transform) for v in values)


def table(spec, result):
    """One table of a result as Markdown lines."""
    rows = [result["figures"]] if "rows" not in spec else figure(result, spec["rows"])
    if rows is MISSING or not isinstance(rows, list):
        raise ResultError("%s: no list at %r" % (result.get("name"), spec.get("rows")))
    rows = [r for r in rows if all(k in r and _same(r[k], str(v))
                                   for k, v in spec.get("where", {}).items())]
    cols = [list(c) + [None] * (4 - len(c)) for c in spec["columns"]]
    out = ["| " + " | ".join(c[0] for c in cols) + " |", "|" + "---|" * len(cols)]
    found = [False] * len(cols)
    for r in rows:
        cells = []
        for j, (_, path, template, transform) in enumerate(cols):
            paths = path if isinstance(path, list) else [path]
            values = [lookup(r, p) for p in paths]
            found[j] |= any(v is not MISSING for v in values)
            cells.append(cell(values, template, transform))
        out.append("| " + " | ".join(cells) + " |")
    for ok, c in zip(found, cols):
        if rows and not ok:
            raise ResultError("%s: column %r: no row has %r" % (result.get("name"), c[0], c[1]))
    if spec.get("title"):
        out = ["**%s**" % spec["title"], ""] + out
    return out


def provenance(result, name):
    """The line above a block: how and when the result was measured."""
    load = result.get("load") or {}
    parts = []
    if load.get("note"):
        parts.append("load: %s" % load["note"])
    if load.get("loadavg_before") and load.get("loadavg_after"):
        parts.append("load average %.2f before, %.2f after"
                     % (load["loadavg_before"][0], load["loadavg_after"][0]))
    if load.get("other_cores") is not None:
        parts.append("other processes kept %.2f cores busy" % load["other_cores"])
    m = result.get("machine") or {}
    where = ", ".join(str(v) for v in (m.get("machine"), m.get("cpu"),
                                       m.get("cpus") and "%s CPUs" % m["cpus"]) if v)
    took = " in %.0f s" % result["seconds"] if result.get("seconds") else ""
    date = str(result.get("date", "?"))
    date = "%s %s UTC" % (date[:10], date[11:16]) if "T" in date else date
    line = "Measured %s by `%s`%s" % (date, result.get("command", "?"), took)
    return "%s (%s%s); `benchmarks/results/%s.json`." % (
        line, where, "; " + "; ".join(parts) if parts else "", name)


def render_result(result, name, tid=None):
    """A result as Markdown: the provenance line and its tables (only table ``tid``)."""
    specs = [s for s in result.get("tables", []) if not tid or s.get("id") == tid]
    if not specs:
        raise ResultError("%s: no table %r" % (name, tid or "at all"))
    lines = [provenance(result, name)]
    for s in specs:
        lines += [""] + table(s, result)
    if result.get("notes") and not tid:
        lines += ["", str(result["notes"])]
    return "\n".join(lines)


def block(key, results_dir=RESULTS):
    """The rendered content of block ``key`` (``NAME`` or ``NAME#ID``)."""
    name, _, tid = key.partition("#")
    result = read(name, results_dir)
    if result is None:
        return "No saved result: run the command above (it writes `benchmarks/results/%s.json`)." \
            % name
    return render_result(result, name, tid)


def render(text, results_dir=RESULTS):
    """``text`` with every marked block and figure rendered from the saved results."""
    def one_block(m):
        key = m.group("name")
        return "<!-- results:%s -->\n\n%s\n\n<!-- /results:%s -->" % (
            key, block(key, results_dir), key)

    def one_figure(m):
        name, path, template = m.group("name"), m.group("path"), m.group("fmt")
        result = read(name, results_dir)
        if result is None:
            raise ResultError("no saved result %r" % name)
        value = figure(result, path)
        if value is MISSING:
            raise ResultError("%s: no figure %r" % (name, path))
        formats = result.get("formats") or {}
        last = TOKEN.findall(path)[-1][1] if TOKEN.findall(path) else path
        template = template or formats.get(path) or formats.get(last)
        head = m.group(0)[:m.start("body") - m.start()]
        return "%s%s<!-- /result -->" % (head, fmt(value, template))

    return INLINE.sub(one_figure, BLOCK.sub(one_block, text))


def stale(path, results_dir=RESULTS):
    """The markers of file ``path`` whose content differs from the rendering (by name)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    new = render(text, results_dir)
    if new == text:
        return []
    fresh = {m.group(0) for m in list(BLOCK.finditer(new)) + list(INLINE.finditer(new))}
    return [m.group("name") + ("." + m.group("path") if "path" in m.groupdict() else "")
            for m in list(BLOCK.finditer(text)) + list(INLINE.finditer(text))
            if m.group(0) not in fresh]


def update(path, results_dir=RESULTS):
    """Rewrite the marked blocks and figures of ``path``; True when it changed."""
    from neurosim.atomic import write_text
    with open(path, encoding="utf-8") as f:
        text = f.read()
    new = render(text, results_dir)
    if new != text:
        write_text(path, new, newline="")
    return new != text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="Markdown files (default: %s)" % ", ".join(FILES))
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 when a block or figure is stale")
    a = ap.parse_args(argv)
    files = a.files or [os.path.join(ROOT, f) for f in FILES]
    bad = 0
    for path in files:
        if not os.path.exists(path):
            continue
        try:
            if a.check:
                names = stale(path)
                for n in names:
                    print("%s: stale: %s (run python benchmarks/tables.py)"
                          % (os.path.relpath(path), n))
                bad += len(names)
            elif update(path):
                print("updated %s" % os.path.relpath(path))
        except ResultError as e:
            print("%s: %s" % (os.path.relpath(path), e), file=sys.stderr)
            return 2
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
