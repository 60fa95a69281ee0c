"""Default values checked against their field's type: Avro's parser rule, then the project's stricter ones.

A reader fills a field the writer lacks with its default, so a default that is not a value of the field's
type is wrong data for every old record. Apache Avro's Java parser (``setValidateDefaults(true)``, the
default since 1.9) refuses such a schema; the Python implementations (``avro``, ``fastavro``) do not check,
hence this module. :func:`default_problems` reports, for every field default of a schema:

* Avro's ``invalid_default`` when Java's ``Schema.isValidDefault`` (Avro 1.12) refuses it: null for null,
  a boolean for boolean, an integral number in range for int and long, a number for float and double, a
  string for string, bytes, enum and fixed, an array/object whose elements/values fit, a record object
  whose every field has a fitting value or its own default, and for a union a value of any branch;
* the project's ``default-fits-type`` when Java accepts a string the type cannot hold: an enum default
  that is no symbol, a fixed default of the wrong length, a bytes or fixed default with a code point
  above 255 (the specification maps code points 0-255 to bytes), a float or double field's default
  written as a string (Java's parser reads ``"1.0"`` or ``"NaN"`` as a number; the spec wants one);
* the project's ``union-default-first-branch`` when a union default fits a later branch only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bus389.schemas.names import NAMED, PRIMITIVES, NamedTypes, describe, full_name, namespace_of
from bus389.schemas.rules import AVRO_INVALID_DEFAULT, PROJECT_DEFAULT_FITS, PROJECT_UNION_DEFAULT, Problem

__all__ = ["default_problems"]

_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)
_MISSING = object()
_BUILTIN = PRIMITIVES | NAMED | {"array", "map"}
# What Java's Double.parseDouble reads (decimal forms; its hexadecimal ones are left out).
_JAVA_DOUBLE = re.compile(r"^\s*[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?)\s*$")


class _Fits:
    """Does a JSON value fit a schema? ``any_branch``: Avro 1.12's union rule; ``exact``: strings checked."""

    def __init__(self, names: NamedTypes, *, any_branch: bool, exact: bool) -> None:
        self.names = names
        self.any_branch = any_branch
        self.exact = exact

    def __call__(self, schema: Any, value: Any, namespace: str) -> bool:
        if value is _MISSING:
            return False
        if isinstance(schema, list):
            if not schema:
                return False
            branches = schema if self.any_branch else schema[:1]
            return any(self(branch, value, namespace) for branch in branches)
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return self._primitive(schema, value)
            found = self.names.lookup(schema, namespace)
            if found is None:
                return False
            schema, namespace = found
        if not isinstance(schema, dict):
            return False
        kind = schema.get("type")
        if isinstance(kind, dict | list) or (isinstance(kind, str) and kind not in _BUILTIN):
            return self(kind, value, namespace)
        if kind in PRIMITIVES:
            return self._primitive(str(kind), value)
        if kind == "array":
            return isinstance(value, list) and all(self(schema.get("items"), v, namespace) for v in value)
        if kind == "map":
            values = schema.get("values")
            return isinstance(value, dict) and all(self(values, v, namespace) for v in value.values())
        if kind in ("enum", "fixed"):
            if not isinstance(value, str):
                return False
            if not self.exact:
                return True
            if kind == "enum":
                return value in (schema.get("symbols") or [])
            return len(value) == schema.get("size") and _byte_string(value)
        if kind in ("record", "error"):
            if not isinstance(value, dict):
                return False
            inner = namespace_of(full_name(schema, namespace))
            for f in schema.get("fields", []):
                name = f.get("name")
                # Java's rule: a sub-field the default object leaves out takes its own default.
                sub = value[name] if name in value else f.get("default", _MISSING)
                if not self(f.get("type"), sub, inner):
                    return False
            return True
        return False

    def _primitive(self, kind: str, value: Any) -> bool:
        if kind == "null":
            return value is None
        if kind == "boolean":
            return isinstance(value, bool)
        if kind in ("int", "long"):
            low, high = _INT_RANGE if kind == "int" else _LONG_RANGE
            return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        if kind in ("float", "double"):
            return isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "string":
            return isinstance(value, str)
        return isinstance(value, str) and (not self.exact or _byte_string(value))


def _byte_string(value: str) -> bool:
    return all(ord(c) <= 255 for c in value)


def default_problems(schema: Any) -> list[Problem]:
    """Every field default of ``schema`` (schema JSON) that is not a value of its field's type."""
    names = NamedTypes.of(schema)
    avro = _Fits(names, any_branch=True, exact=False)
    fits = _Fits(names, any_branch=True, exact=True)
    first = _Fits(names, any_branch=False, exact=True)
    problems: list[Problem] = []
    for full, node in names.types.items():
        if node.get("type") not in ("record", "error"):
            continue
        namespace = namespace_of(full)
        for f in node.get("fields", []):
            if not isinstance(f, dict) or "default" not in f:
                continue
            value, kind = f["default"], f.get("type")
            where = f"record {full}, field '{f.get('name')}': default {_show(value)}"
            if _is_floating(kind) and isinstance(value, str):
                # Java's parser reads a string default of a float or double field as a number ("NaN",
                # "1.0"); the specification wants a JSON number.
                rule = PROJECT_DEFAULT_FITS if _JAVA_DOUBLE.match(value) else AVRO_INVALID_DEFAULT
                problems.append(Problem(rule, f"{where} is a string, not a {describe(kind)} number"))
            elif not avro(kind, value, namespace):
                problems.append(Problem(AVRO_INVALID_DEFAULT, f"{where} is not a value of {describe(kind)}"))
            elif not fits(kind, value, namespace):
                problems.append(Problem(PROJECT_DEFAULT_FITS, f"{where} is not a value of {describe(kind)}"))
            elif not first(kind, value, namespace):
                problems.append(
                    Problem(
                        PROJECT_UNION_DEFAULT,
                        f"{where} fits a later union branch, not the first ({describe(_first(kind))})",
                    )
                )
    return problems


def _is_floating(schema: Any) -> bool:
    if isinstance(schema, dict):
        schema = schema.get("type")
    return schema in ("float", "double")


def _first(schema: Any) -> Any:
    if isinstance(schema, dict) and isinstance(schema.get("type"), list):
        schema = schema["type"]
    return schema[0] if isinstance(schema, list) and schema else schema


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."
