"""Circuit files on disk and on the command line: loading a TOML file (or a built-in circuit by
name), ``--set KEY=VALUE`` overrides on the same dotted paths, validation against the schema
(:mod:`neurosim.config.schema`) with a one-line error naming every bad field ("did you mean" for
unknown keys), the built-in circuits (``circuits/``) and the first sentence of their headers,
and writing a circuit back as TOML."""
from __future__ import annotations

import copy
import difflib
import os
import re
import typing
from importlib import resources

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from pydantic import BaseModel, ValidationError

from .schema import Circuit, ConfigError

def _path(loc):
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += "[%d]" % part
        else:
            out += ("." if out else "") + str(part)
    return out


def _format(err):
    """The bad fields of a pydantic ``ValidationError``, ``field: problem`` each, on one line."""
    lines = []
    for e in err.errors():
        loc = [p for p in e["loc"] if not (isinstance(p, str) and (p.startswith("function-")
                                                                    or p in ("float", "list[float]",
                                                                             "dict[str,float]")))]
        field = _path(loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + suggestion(loc)
        elif e["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = e["msg"].replace("Value error, ", "")
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg += " (got %r)" % (e["input"],)
            named = _FIELD.match(msg)      # a check that names its own field
            if named:
                field, msg = named.group(1), msg[named.end():]
        lines.append("%s: %s" % (field, msg))
    return " | ".join(dict.fromkeys(lines))


class InvalidCircuitError(ConfigError):
    """A circuit that fails validation: ``where`` names it (:func:`describe_source`) and
    ``detail`` gives its bad fields, ``field: problem`` each (``|`` between them)."""

    def __init__(self, where, detail):
        super().__init__(where, detail)
        self.where, self.detail = where, detail

    def __str__(self):
        return "%s: %s" % (self.where, self.detail)


def _model_in(annotation):
    """The section model inside a field's annotation (``Optional[X]``, ``List[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for a in typing.get_args(annotation):
        m = _model_in(a)
        if m is not None:
            return m
    return None


def _fields_at(parts):
    """The keys of the section at ``parts`` (dotted-path parts; list indices skipped), or
    None where that is not a section (a table of free keys, a value)."""
    model = Circuit
    for p in parts:
        if isinstance(p, int):
            continue
        field = model.model_fields.get(p)
        model = None if field is None else _model_in(field.annotation)
        if model is None:
            return None
    return list(model.model_fields)


def suggestion(loc):
    """``"; did you mean train.epochs?"`` for the unknown key at ``loc`` (a dotted path or its
    parts), else the keys its section takes, or ``""``."""
    parts = loc.split(".") if isinstance(loc, str) else list(loc)
    fields = _fields_at(parts[:-1]) if parts else None
    if not fields:
        return ""
    close = difflib.get_close_matches(str(parts[-1]), fields, n=1)
    if close:
        return "; did you mean %s?" % _path(parts[:-1] + close)
    return "; expected one of %s" % ", ".join(fields)


def unknown_key(key):
    """``"learning.bta: unknown key; did you mean learning.beta?"`` when the dotted ``key`` is
    not a circuit-file field, else None."""
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = _fields_at(parts[:i])
        if fields is None:
            return None
        if part not in fields:
            where = ".".join(parts[:i + 1])
            return "%s: unknown key%s" % (where, suggestion(parts[:i + 1]))
    return None


def _default_of(key):
    """The schema's default of the dotted ``key`` (None where it has none)."""
    *head, last = key.split(".")
    model = Circuit
    for p in head:
        field = model.model_fields.get(p)
        model = None if field is None else _model_in(field.annotation)
        if model is None:
            return None
    field = model.model_fields.get(last)
    return None if field is None or field.is_required() else field.default


def _cli_value(v):
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def _lookup(data, key):
    node = data
    for p in key.split("."):
        if not isinstance(node, dict) or p not in node:
            return None, False
        node = node[p]
    return node, True


def builtin_dir():
    """The folder of the circuit files shipped with neurosim (``circuits/``)."""
    try:
        base = resources.files("neurosim.circuits")     # installed: package data
    except ModuleNotFoundError:                         # run from a source checkout
        base = resources.files("neurosim").parent / "circuits"
    return base


def builtin_names():
    """The names of the built-in circuits (their files in ``circuits/``), sorted."""
    return sorted(f.name[:-5] for f in builtin_dir().iterdir() if f.name.endswith(".toml"))


def _builtin_name(path):
    """The built-in circuit a path is the file of, or None."""
    if path is None:
        return "default"
    here = os.path.dirname(os.path.abspath(str(path)))
    name = os.path.basename(str(path))
    if here == os.path.abspath(str(builtin_dir())) and name.endswith(".toml"):
        return name[:-5]
    return None


def describe_source(path):
    """How a message names a circuit: ``built-in circuit 'default'`` (from its name or its
    installed file; None is the default), else ``circuit file 'PATH'`` as the user gave it."""
    name = _builtin_name(path)
    if name is None and _is_name(str(path)):
        name = str(path)
    return "built-in circuit %r" % name if name is not None else "circuit file %r" % str(path)


def summary_line(text, width=None):
    """The first sentence of a circuit file's header comment (``text``: the file), its
    parentheses left out; cut to ``width`` characters after a whole clause (or else a word)."""
    lines = []
    for line in text.splitlines():
        if not line.lstrip().startswith("#"):
            break
        line = line.strip().lstrip("#").strip()
        if not line and lines:
            break
        lines.append(line)
    s, prev = " ".join(lines), None
    while prev != s:
        prev, s = s, re.sub(r"\s*\([^()]*\)", "", s)
    end = re.search(r"(?<!\bal)(?<!e\.g)(?<!i\.e)\.(\s|$)", s)
    s = re.sub(r"\s+", " ", s[:end.start()] if end else s).strip().rstrip(",;:")
    if width and len(s) > width:
        cuts = [m.start() for m in re.finditer(r"[:;]\s", s)
                if 4 * m.start() >= width and m.start() <= width]   # whole clauses that fit
        s = s[:cuts[-1]] if cuts else s[:width - 2].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return s


def builtin_circuits(width=None):
    """``[(name, summary)]`` of every built-in circuit: its header's first sentence
    (:func:`summary_line`)."""
    base = builtin_dir()
    return [(n, summary_line((base / (n + ".toml")).read_text(encoding="utf-8"), width))
            for n in builtin_names()]


_FIELD = re.compile(r"^([a-z_]+(?:\.[a-z_]+)+): ")


def blame_file(err, path, text, overrides=()):
    """``err`` (a :class:`ConfigError` whose message starts with a dotted field) with a note
    when that field's value comes from the circuit file ``path`` (its ``text``) rather than
    from ``overrides``: where it is set and how to override it."""
    msg = str(err)
    m = _FIELD.match(msg)
    if not m:
        return err
    key = m.group(1)
    given = {(parse_override(o)[0] if isinstance(o, str) else o[0]) for o in overrides}
    if key in given:
        return err
    try:
        value, present = _lookup(tomllib.loads(text), key)
    except tomllib.TOMLDecodeError:
        return err
    if not present:
        return err
    default = _default_of(key)
    fix = "--set %s=%s" % (key, _cli_value(default)) if default is not None \
        and default != value else "--set %s=VALUE" % key
    return ConfigError("%s (%s = %r is set in the %s, not on the command line; override it with "
                       "%s)" % (msg, key, value, describe_source(path), fix))


def parse_override(text):
    """``KEY=VALUE`` -> (dotted key, value); VALUE is read as TOML (``2``, ``0.5``, ``[1, 2]``,
    ``true``, ``"s"``), and a bare word is taken as a string."""
    if "=" not in text:
        raise ConfigError("override %r must look like KEY=VALUE (e.g. train.epochs=2)" % text)
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError("override %r: the key must be a dotted path like train.epochs" % text)
    try:
        value = tomllib.loads("v = %s" % raw)["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(data, overrides):
    """Set dotted keys in a nested dict (copied); unknown sections are caught by validation."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError("override %r: %r is not a section" % (key, part))
            node = nxt
        node[parts[-1]] = value
    return data


def validate(data, where="circuit"):
    """A dict -> :class:`Circuit`, or :class:`InvalidCircuitError` naming every bad field."""
    try:
        return Circuit.model_validate(data)
    except ValidationError as e:
        raise InvalidCircuitError(where, _format(e)) from None


def builtin_path(name="default"):
    """Path of a circuit file shipped with neurosim (``default``, ``theorem``, ...)."""
    p = builtin_dir() / (name if name.endswith(".toml") else name + ".toml")
    if not p.is_file():
        names = builtin_names()
        close = difflib.get_close_matches(name, names, n=1)
        raise ConfigError("no built-in circuit %r and no file of that name; %s" % (
            name, "did you mean %s?" % close[0] if close
            else "built-in circuits: %s" % ", ".join(names)))
    return str(p)


def resolve(path=None):
    """The file a circuit argument names: a path, or a built-in circuit's name (``None``: the
    built-in ``default``)."""
    if path is None:
        return builtin_path("default")
    if _is_name(path):
        return builtin_path(path)
    return path


def _is_name(path):
    """Whether a circuit argument is a built-in circuit's name rather than a file's path."""
    return not os.path.exists(path) and os.sep not in path and not path.endswith(".toml")


def _override_text(item):
    if isinstance(item, str):
        return item
    key, value = item
    return "%s=%s" % (key, _cli_value(value))


def load(path=None, overrides=()):
    """Read a circuit file (default: the built-in ``default``), apply overrides, validate.
    Errors name the circuit as given (:func:`describe_source`).

    Returns ``(circuit, text)``: the validated :class:`Circuit` and the file's text.
    """
    where = describe_source(path)
    path = resolve(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError("cannot read %s: %s" % (where, e.strerror)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError("%s is not valid TOML: %s" % (where, e)) from None
    data = apply_overrides(data, overrides)
    if overrides:
        where += " with overrides %s" % ", ".join(_override_text(o) for o in overrides)
    return validate(data, where), raw.decode("utf-8")


def to_toml(circuit):
    """The circuit as TOML text (the resolved configuration, overrides included)."""
    import tomli_w
    return tomli_w.dumps(circuit.model_dump(exclude_none=True))
