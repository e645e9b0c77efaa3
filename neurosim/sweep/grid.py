"""The grid of a sweep (:mod:`neurosim.sweep`): value lists for dotted circuit keys, their
points and the runs they give.

The grid is the cartesian product of the value lists (``mode = "grid"``), or one key at a
time (``"one_at_a_time"``): the circuit as given, then each key over its values with the
other swept keys at the circuit's values (a run that repeats the circuit is run once) --
the design curves of a hardware study. Without ``--param`` the circuit's ``[sweep]``
section (``mode`` and ``params``) gives the grid, so a study file carries its sweep.

A run's id is ``<readable values>-<hash>``, the hash of its resolved circuit (every section
but ``output``), so the same arguments give the same ids whatever the order of the grid.

Value lists (``--param KEY=V1,V2,...``): values are separated by the commas that are not
inside brackets, braces or quotes, and each value is read like a ``--set`` value (TOML; a
bare word is a string): ``learning.beta=0.1,0.5``, ``hardware.preset=ideal,rram``,
``network.sizes=[64,32,10],[64,64,10]``, ``learning.lr=0.1,[0.1,0.05]``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re

from .report import fmt
from ..errors import NeurosimError


class SweepError(NeurosimError, ValueError):
    """Bad sweep arguments; the message names the argument and what was expected."""


def split_values(text, where="--param"):
    """Split ``text`` on the commas outside brackets, braces and quotes."""
    out, buf, depth, quote, escape = [], [], 0, None, False
    for ch in text:
        if quote:
            if escape:
                escape = False
            elif ch == "\\" and quote == '"':
                escape = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                raise SweepError("%s: unbalanced %r; expected KEY=V1,V2,... with lists like "
                                 "[64,32,10]" % (where, ch))
        elif ch == "," and depth == 0:
            out.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    if quote or depth:
        raise SweepError("%s: unclosed %s; expected KEY=V1,V2,... with lists like [64,32,10] "
                         "and strings like \"a,b\"" % (where, "quote" if quote else "bracket"))
    out.append("".join(buf).strip())
    return out


def parse_param(text):
    """``KEY=V1,V2,...`` -> ``(key, [values])`` (see the module docstring)."""
    where = "--param %s" % text
    if "=" not in text:
        raise SweepError("%s: expected KEY=V1,V2,... (e.g. --param learning.beta=0.1,0.5)"
                         % where)
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key or any(not part for part in key.split(".")):
        raise SweepError("%s: the key must be a dotted circuit path like learning.beta" % where)
    if not raw:
        raise SweepError("%s: empty list of values; expected KEY=V1,V2,..." % where)
    items = split_values(raw, where)
    for i, item in enumerate(items):
        if not item:
            raise SweepError("%s: value %d is empty; values are separated by commas outside "
                             "brackets and quotes" % (where, i + 1))
    from .. import config  # (imported lazily: pydantic)
    values = [config.parse_override("%s=%s" % (key, item))[1] for item in items]
    seen = set()
    for v in values:
        canon = json.dumps(v, sort_keys=True)
        if canon in seen:
            raise SweepError("%s: the value %s is repeated" % (where, fmt(v)))
        seen.add(canon)
    return key, values


def _params(params):
    """``["K=V1,V2", ...]``, ``{key: [values]}`` or ``[(key, [values])]`` -> list of pairs."""
    items = params.items() if isinstance(params, dict) else params
    out = []
    for p in items:
        if isinstance(p, str):
            key, values = parse_param(p)
        else:
            key, values = p[0], list(p[1])
            if not values:
                raise SweepError("--param %s: empty list of values" % key)
        if key in [k for k, _ in out]:
            raise SweepError("--param %s: given twice; give one list of values per key" % key)
        out.append((key, values))
    if not out:
        raise SweepError("--param: nothing to sweep; give at least one --param KEY=V1,V2,... "
                         "(or a [sweep] section with params in the circuit file)")
    return out


def _detail(err):
    """The bad fields of a config error (without the circuit's name and overrides)."""
    from .. import config
    return err.detail if isinstance(err, config.InvalidCircuitError) else str(err)


def _slug(point):
    parts = []
    for key, value in sorted(point):              # the id does not depend on --param order
        v = fmt(value).replace(", ", "-").replace(",", "-").strip("[]\"'")
        parts.append("%s=%s" % (key.rsplit(".", 1)[-1], v))
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", "_".join(parts))[:60].strip("_") or "run"


def resolve_circuit(circuit):
    """The absolute path of a circuit file or of a built-in circuit's name."""
    from .. import config
    path = config.resolve(circuit)
    if not os.path.exists(path):
        raise config.ConfigError("cannot read circuit file %r: no such file" % circuit)
    return os.path.abspath(path)


MODES = ("grid", "one_at_a_time")


def base_value(circuit, key):
    """The value of a dotted key in a validated circuit; an unset ``hardware`` field is its
    preset's value (None for other unset keys)."""
    node = circuit.model_dump(mode="json")
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if node is None and key.startswith("hardware."):
        from ..hardware.devices import device_from_section
        node = getattr(device_from_section(circuit.hardware), key.split(".", 1)[1], None)
    return node


def _points(grid, mode, base):
    """The grid points: the cartesian product, or one key at a time (the other keys at the
    base circuit's values, which are listed first in each key's curve)."""
    keys = [k for k, _ in grid]
    if mode == "grid":
        return [list(zip(keys, values)) for values in itertools.product(*[v for _, v in grid])]
    ref = {k: base_value(base, k) for k in keys}
    points = [[(k, ref[k]) for k in keys]]
    for key, values in grid:
        points += [[(k, v if k == key else ref[k]) for k in keys] for v in values]
    return points


def plan(circuit, params, overrides=(), mode=None):
    """Validate everything and list the runs: ``(base circuit, circuit path, grid, runs)``
    with ``grid`` a list of ``(key, [values])`` and ``runs`` a list of dicts; each run has
    ``id``, ``point`` (list of ``(key, value)``), ``label`` and ``overrides``. Without
    ``params`` the circuit's ``[sweep]`` section gives them; ``mode`` (default: the
    section's) is ``grid`` or ``one_at_a_time``."""
    from .. import config
    path = resolve_circuit(circuit)
    overrides = list(overrides)
    set_keys = {}
    for item in overrides:
        k, _ = config.parse_override(item) if isinstance(item, str) else item
        set_keys[k] = item
    base, _ = config.load(circuit, overrides)      # errors name the circuit as given
    if not params and base.sweep.params:
        params = {k: list(v) for k, v in base.sweep.params.items()}
    mode = mode or base.sweep.mode
    if mode not in MODES:
        raise SweepError("--mode: expected one of %s, got %r" % (list(MODES), mode))
    grid = _params(params)
    swept = [k for k, _ in grid]
    if mode == "one_at_a_time" and "hardware.preset" in swept and any(
            k.startswith("hardware.") and k != "hardware.preset" for k in swept):
        raise SweepError("--param hardware.preset: one key at a time holds the other device "
                         "keys at the base preset's values, so a preset's run would not be "
                         "that preset; sweep the presets in a grid of their own")
    for key, values in grid:
        if key in set_keys and mode == "grid":
            raise SweepError("--param %s: also given as --set %s; sweep it or set it, not both"
                             % (key, fmt(set_keys[key])))
        unknown = config.unknown_key(key)
        if unknown:
            raise SweepError("--param %s" % unknown)
        for v in values:
            try:
                config.load(path, overrides + [(key, v)])
            except config.ConfigError as e:
                raise SweepError("--param %s=%s: the value %s is not valid: %s" % (
                    key, ",".join(fmt(x) for x in values), fmt(v), _detail(e))) from None
    runs, ids = [], {}
    for point in _points(grid, mode, base):
        label = " ".join("%s=%s" % (k, fmt(v)) for k, v in point)
        try:
            circ, _ = config.load(path, overrides + point)
        except config.ConfigError as e:
            raise SweepError("grid point %s is not a valid circuit: %s" % (label, _detail(e))) \
                from None
        data = circ.model_dump(mode="json", exclude_none=True)
        data.pop("output", None)
        data.pop("sweep", None)
        digest = hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
        run_id = "%s-%s" % (_slug(point), digest)
        if run_id in ids:
            if mode == "one_at_a_time":       # a key's base value: the base run, once
                continue
            raise SweepError("grid points %s and %s give the same circuit" % (ids[run_id], label))
        ids[run_id] = label
        runs.append({"id": run_id, "point": point, "label": label,
                     "overrides": overrides + point})
    return base, path, grid, runs, mode


def describe(grid, mode):
    """The grid in words for the sweep's first line: ``2 learning.beta x 3 learning.lr``, or
    ``one at a time: ...``."""
    parts = ["%d %s" % (len(v), k) for k, v in grid]
    return " x ".join(parts) if mode == "grid" else "one at a time: " + ", ".join(parts)


__all__ = ["SweepError", "split_values", "parse_param", "resolve_circuit", "MODES", "base_value",
           "plan", "describe"]
