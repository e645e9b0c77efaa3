"""Circuit files on disk and on the command line: loading a TOML file (or a built-in circuit by
name), ``--set KEY=VALUE`` overrides on the same dotted paths, validation against the schema
(:mod:`neurosim.config.schema`) with one line per bad field, "did you mean" for unknown keys,
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


def _format(err, where):
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
    seen = list(dict.fromkeys(lines))
    return "%s: invalid circuit:\n  " % where + "\n  ".join(seen)


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
    parts), or ``""``."""
    parts = loc.split(".") if isinstance(loc, str) else list(loc)
    fields = _fields_at(parts[:-1]) if parts else None
    close = difflib.get_close_matches(str(parts[-1]), fields or [], n=1)
    return "; did you mean %s?" % _path(parts[:-1] + close) if close else ""


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


def describe_source(path):
    """How a message names a circuit file: the built-in ones by their name in ``circuits/``."""
    try:
        base = os.path.dirname(builtin_path("default"))
    except ConfigError:
        base = None
    if base and os.path.dirname(os.path.abspath(path)) == os.path.abspath(base):
        return "the built-in circuit file circuits/%s" % os.path.basename(path)
    return "circuit file %s" % path


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
    return ConfigError("%s (%s = %r is set in %s, not on the command line; override it with "
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
    """A dict -> :class:`Circuit`, or :class:`ConfigError` naming every bad field."""
    try:
        return Circuit.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(e, where)) from None


def builtin_path(name="default"):
    """Path of a circuit file shipped with neurosim (``default``, ``theorem``, ...)."""
    try:
        base = resources.files("neurosim.circuits")     # installed: package data
    except ModuleNotFoundError:                         # run from a source checkout
        base = resources.files("neurosim").parent / "circuits"
    p = base / (name if name.endswith(".toml") else name + ".toml")
    if not p.is_file():
        names = sorted(f.name[:-5] for f in base.iterdir() if f.name.endswith(".toml"))
        raise ConfigError("no built-in circuit %r; built-in circuits: %s" % (name, names))
    return str(p)


def resolve(path=None):
    """The file a circuit argument names: a path, or a built-in circuit's name (``None``: the
    built-in ``default``)."""
    if path is None:
        return builtin_path("default")
    if not os.path.exists(path) and os.sep not in path and not path.endswith(".toml"):
        return builtin_path(path)
    return path


def load(path=None, overrides=()):
    """Read a circuit file (default: the built-in ``default``), apply overrides, validate.

    Returns ``(circuit, text)``: the validated :class:`Circuit` and the file's text.
    """
    path = resolve(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError("cannot read circuit file %r: %s" % (path, e.strerror)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError("circuit file %r is not valid TOML: %s" % (path, e)) from None
    data = apply_overrides(data, overrides)
    where = "circuit file %r%s" % (path, " with overrides %s" % list(overrides) if overrides else "")
    return validate(data, where), raw.decode("utf-8")


def to_toml(circuit):
    """The circuit as TOML text (the resolved configuration, overrides included)."""
    import tomli_w
    return tomli_w.dumps(circuit.model_dump(exclude_none=True))
