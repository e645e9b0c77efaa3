"""Sphinx directives for the circuit-file reference, read from the package so the pages never
drift from it: ``circuit-fields`` (every section with its fields, types, defaults and limits,
from :mod:`neurosim.config.schema`) and ``shipped-circuits`` (every built-in circuit with the
first sentence of its file's header)."""
import inspect
import typing

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from neurosim import config
from neurosim.config.schema import Circuit


def type_text(annotation):
    """A field's type in words: the choices of a Literal, the inner type of an Optional."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join("``%r``" % a for a in args).replace("'", '"')
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return " or ".join(type_text(a) for a in inner) + " (optional)"
    if origin in (list, typing.List):
        return "list of %s" % (type_text(args[0]) if args else "values")
    if origin in (dict, typing.Dict):
        return "table"
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def default_text(field):
    """The default as TOML would write it, or "required"."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "``%s``" % str(value).lower()
    if isinstance(value, str):
        return '``"%s"``' % value
    return "``%r``" % (value,)


def limits_text(field):
    """The numeric limits pydantic checks (``> 0``, ``>= 0``, ...)."""
    out = []
    for m in field.metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="),
                           ("min_length", "length >=")):
            v = getattr(m, attr, None)
            if v is not None:
                out.append("%s %s" % (sign, v))
    return ", ".join(out)


class CircuitFields(SphinxDirective):
    """Render one subsection per circuit-file section: its docstring and a field table."""

    def run(self):
        lines = []
        for section, field in Circuit.model_fields.items():
            model = field.annotation
            if not hasattr(model, "model_fields"):
                continue
            lines += [".. rubric:: ``[%s]``" % section, ""]
            doc = inspect.cleandoc(model.__doc__ or "")
            lines += doc.splitlines() + [""]
            lines += [".. list-table::", "   :header-rows: 1", "   :widths: 20 40 20 20", "",
                      "   * - field", "     - type", "     - default", "     - limits"]
            for name, f in model.model_fields.items():
                lines += ["   * - ``%s``" % name, "     - %s" % type_text(f.annotation),
                          "     - %s" % default_text(f), "     - %s" % (limits_text(f) or "")]
            lines.append("")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="neurosim.config.schema"),
                                self.content_offset, container)
        return container.children


class ShippedCircuits(SphinxDirective):
    """A table of the built-in circuits: name and the first sentence of the header."""

    def run(self):
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 25 75", "",
                 "   * - circuit", "     - what it trains (the first sentence of its header)"]
        for name, summary in config.builtin_circuits():
            lines += ["   * - ``%s``" % name, "     - %s" % summary.replace("`", "``")]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="circuits/"), self.content_offset,
                                container)
        return container.children


def setup(app):
    app.add_directive("circuit-fields", CircuitFields)
    app.add_directive("shipped-circuits", ShippedCircuits)
    return {"parallel_read_safe": True}
