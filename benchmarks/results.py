"""Benchmark results as data: every ``benchmarks/bench_*.py`` writes what it measured to
``benchmarks/results/<name>.json`` through this module, and ``benchmarks/tables.py`` renders
those files into the Markdown tables of the READMEs. Benchmarks that time ``neurosim run``
call it through :func:`neurosim_run`.

    rec = results.start("default_run")          # the command line, UTC date, load, CPU clock
    ...                                          # measure
    rec.save(figures, tables=TABLES, formats={...}, settings={...}, path=args.out)

A result file (``LAYOUT`` 1) holds ``name``, ``command``, ``date`` (UTC, ISO 8601),
``seconds`` (the script's wall time), ``machine`` (platform, CPU, versions), ``load`` (load
average before and after, the cores other processes kept busy meanwhile), ``code`` (git
commit), ``settings`` (what was run), ``figures`` (what was measured, plain JSON), ``formats``
(display templates of single figures), ``tables`` (how ``tables.py`` renders them; the
specification is in that module's docstring) and ``notes``. Files are written atomically."""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
LAYOUT = 1
#: packages whose versions a result records when the benchmark imported them
PACKAGES = ("numpy", "scipy", "torch", "brian2")


def path_of(name):
    """The result file of benchmark ``name``."""
    return os.path.join(RESULTS, name + ".json")


def load(name_or_path):
    """A saved result (by benchmark name or file path) as a dict."""
    path = name_or_path if name_or_path.endswith(".json") else path_of(name_or_path)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def add_out_argument(parser, name):
    """Add ``--out FILE`` (default ``benchmarks/results/<name>.json``) to an argparse parser."""
    parser.add_argument("--out", default=None, metavar="FILE.json",
                        help="where to save the result (default benchmarks/results/%s.json)"
                        % name)


def cpu_model():
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_clock():
    """(wall s, busy CPU s of the whole machine or None, CPU s of this process and its
    waited-for children)."""
    busy = None
    try:
        with open("/proc/stat") as f:
            v = [int(u) for u in f.readline().split()[1:]]
        busy = (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    t = os.times()
    return time.perf_counter(), busy, t.user + t.system + t.children_user + t.children_system


def other_load(c0, c1):
    """Cores kept busy by other processes between two :func:`cpu_clock` readings (None where
    ``/proc/stat`` is unreadable)."""
    if c0[1] is None or c1[1] is None or c1[0] <= c0[0]:
        return None
    return max(0.0, ((c1[1] - c0[1]) - (c1[2] - c0[2])) / (c1[0] - c0[0]))


def loadavg():
    """The 1, 5 and 15 minute load averages (None where unavailable)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def versions(packages=()):
    """Python's version and those of :data:`PACKAGES` already imported, plus ``packages``
    (installed, imported or not)."""
    out = {"python": platform.python_version()}
    for p in PACKAGES + tuple(packages):
        if p in sys.modules or p in packages:
            try:
                out[p] = importlib.metadata.version(p)
            except importlib.metadata.PackageNotFoundError:
                out[p] = None
    return out


def machine(packages=()):
    """Where a benchmark ran: platform, CPU model, CPU count and package versions."""
    return {"platform": platform.platform(), "machine": platform.machine(),
            "cpu": cpu_model(), "cpus": os.cpu_count(), **versions(packages)}


def code_version():
    """The git commit of this checkout and whether its tracked code (``*.py``, ``*.toml``)
    differed from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "*.py",
                         "*.toml"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit or None, "dirty": dirty}


def command_line():
    """The command that runs this script, as typed from the repository root."""
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def neurosim_run(circuit=None, overrides=(), out=None):
    """``neurosim run CIRCUIT --json`` as a subprocess (output folder ``out``), exiting with
    its stderr on failure; its summary with ``wall_seconds`` added."""
    cmd = [sys.executable, "-m", "neurosim.cli", "run"] + ([circuit] if circuit else []) + [
        "--json", "--no-progress"] + (["--out", out] if out else [])
    for o in overrides:
        cmd += ["--set", o]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode:
        sys.exit("%s failed:\n%s" % (" ".join(cmd), r.stderr[-2000:]))
    return dict(json.loads(r.stdout.strip().splitlines()[-1]), wall_seconds=wall)


class Recorder:
    """One benchmark run: started by :func:`start`, written by :meth:`save`."""

    def __init__(self, name, packages=()):
        self.name, self.packages = name, tuple(packages)
        self.command = command_line()
        self.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.loadavg_before = loadavg()
        self.clock = cpu_clock()
        self.code = code_version()

    def document(self, figures, tables=(), formats=None, settings=None, notes=None):
        """The result as a dict in the common layout (what :meth:`save` writes)."""
        now = cpu_clock()
        other = other_load(self.clock, now)
        return {"layout": LAYOUT, "name": self.name, "command": self.command,
                "date": self.date, "seconds": round(now[0] - self.clock[0], 1),
                "machine": machine(self.packages),
                "load": {"loadavg_before": self.loadavg_before, "loadavg_after": loadavg(),
                         "other_cores": None if other is None else round(other, 2)},
                "code": self.code, "settings": settings or {}, "figures": figures,
                "formats": formats or {}, "tables": list(tables), "notes": notes}

    def save(self, figures, tables=(), formats=None, settings=None, notes=None, path=None):
        """Write the result atomically to ``path`` (default ``results/<name>.json``; the saved
        name is the file's stem); returns the path."""
        from neurosim.atomic import write_json
        path = path or path_of(self.name)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        doc = self.document(figures, tables, formats, settings, notes)
        doc["name"] = os.path.splitext(os.path.basename(path))[0]
        write_json(path, doc)
        print("result: %s" % os.path.relpath(path), flush=True)
        return path


def start(name, packages=()):
    """Start recording benchmark ``name`` (call first thing in ``main``); ``packages``: more
    package versions to record (e.g. ``("torch",)`` when the work runs in a subprocess)."""
    return Recorder(name, packages)


__all__ = ["LAYOUT", "PACKAGES", "RESULTS", "Recorder", "add_out_argument", "code_version",
           "command_line", "cpu_clock", "cpu_model", "load", "loadavg", "machine",
           "neurosim_run", "other_load", "path_of", "start", "versions"]
