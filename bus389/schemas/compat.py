"""Avro schema-resolution compatibility: can a reader schema read what a writer schema wrote?

Follows the resolution rules of the Avro specification ("Schema Resolution"), as Schema Registry
applies them:

* primitives match themselves, and the writer's type may be promoted: int → long, float, double;
  long → float, double; float → double; string ↔ bytes;
* records match by (unqualified) name or a reader alias; reader fields are matched to writer fields
  by name or alias; a reader field the writer lacks needs a default; writer fields the reader lacks
  are skipped;
* enums match by name; every writer symbol must be a reader symbol unless the reader has a default;
* fixed match by name and size; arrays by items; maps by values;
* a writer union is readable if every branch is; a reader union reads a writer type if one branch does;
* logical types: reading the underlying type is fine, two different logical types on one field are
  not (e.g. ``timestamp-millis`` read as ``timestamp-micros``), nor are decimals of another scale.

FULL_TRANSITIVE (what :func:`bus389.schemas.catalog.check_catalog` requires) is: each new version reads every
earlier one (backward) and every earlier one reads it (forward).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PRIMITIVES",
    "full_compatibility_problems",
    "reader_problems",
]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


@dataclass
class _Names:
    """The named types one schema defines, by full name."""

    types: dict[str, dict[str, Any]] = field(default_factory=dict)

    def collect(self, node: Any, namespace: str) -> None:
        if isinstance(node, list):
            for branch in node:
                self.collect(branch, namespace)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind in _NAMED:
            full = _full_name(node, namespace)
            self.types.setdefault(full, node)
            inner = full.rpartition(".")[0]
            for child in node.get("fields", []) if kind in ("record", "error") else []:
                self.collect(child.get("type"), inner)
        elif kind == "array":
            self.collect(node.get("items"), namespace)
        elif kind == "map":
            self.collect(node.get("values"), namespace)
        elif isinstance(kind, dict | list):
            self.collect(kind, namespace)

    def lookup(self, name: str, namespace: str) -> tuple[dict[str, Any], str] | None:
        candidates = [name] if "." in name else [f"{namespace}.{name}" if namespace else name, name]
        for candidate in candidates:
            found = self.types.get(candidate)
            if found is not None:
                return found, candidate.rpartition(".")[0]
        return None


def _full_name(node: dict[str, Any], namespace: str) -> str:
    name = str(node.get("name", ""))
    if "." in name:
        return name
    own = node.get("namespace", namespace)
    return f"{own}.{name}" if own else name


def _short(name: str) -> str:
    return name.rpartition(".")[2]


@dataclass(frozen=True)
class _Node:
    """One schema node with the namespace it was written in (for resolving names inside it)."""

    schema: Any
    namespace: str


class _Checker:
    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader_names = _Names()
        self.writer_names = _Names()
        self.reader_names.collect(reader, "")
        self.writer_names.collect(writer, "")
        self.problems: list[str] = []
        self._in_progress: set[tuple[int, int]] = set()

    def _deref(self, node: _Node, names: _Names) -> _Node:
        schema = node.schema
        if isinstance(schema, dict):
            inner = schema.get("type")
            if isinstance(inner, dict | list) or (
                isinstance(inner, str) and inner not in PRIMITIVES | _NAMED | {"array", "map"}
            ):
                return self._deref(_Node(inner, node.namespace), names)
        if isinstance(schema, str) and schema not in PRIMITIVES:
            found = names.lookup(schema, node.namespace)
            if found is None:
                raise _Unresolvable(schema)
            return _Node(found[0], found[1])
        if isinstance(schema, dict) and schema.get("type") in _NAMED:
            full = _full_name(schema, node.namespace)
            return _Node(schema, full.rpartition(".")[0])
        return node

    def check(self, reader: _Node, writer: _Node, path: str) -> list[str]:
        """Problems reading ``writer`` data with ``reader`` (empty when it can)."""
        try:
            reader = self._deref(reader, self.reader_names)
        except _Unresolvable as exc:
            return [f"{_at(path)}: the reader's schema names an undefined type {exc.name!r}"]
        try:
            writer = self._deref(writer, self.writer_names)
        except _Unresolvable as exc:
            return [f"{_at(path)}: the writer's schema names an undefined type {exc.name!r}"]
        r, w = reader.schema, writer.schema
        if isinstance(w, list):
            problems: list[str] = []
            for branch in w:
                problems += self.check(reader, _Node(branch, writer.namespace), path)
            return problems
        if isinstance(r, list):
            undefined: list[str] = []
            for branch in r:
                found = self.check(_Node(branch, reader.namespace), writer, path)
                if not found:
                    return []
                undefined += [p for p in found if "names an undefined type" in p]
            if undefined:
                return undefined
            return [
                f"{_at(path)}: no branch of the reader's union {_describe(r)} "
                f"reads the writer's {_describe(w)}"
            ]
        r_type, w_type = _type_of(r), _type_of(w)
        if r_type != w_type and w_type not in PRIMITIVES | {"array", "map"} | _NAMED:
            return [f"{_at(path)}: unknown writer type {w_type!r}"]
        if r_type in PRIMITIVES and w_type in PRIMITIVES:
            if r_type != w_type and r_type not in _PROMOTIONS.get(w_type, frozenset()):
                return [f"{_at(path)}: type changed from {w_type} to {r_type}, which Avro cannot promote"]
            return _logical_problems(r, w, path)
        if r_type != w_type:
            return [f"{_at(path)}: type changed from {_describe(w)} to {_describe(r)}"]
        key = (id(r), id(w))
        if key in self._in_progress:
            return []  # a recursive type already being compared: assume it matches
        self._in_progress.add(key)
        try:
            if r_type in ("record", "error"):
                return self._records(reader, writer, path)
            if r_type == "enum":
                return self._enums(reader, writer, path)
            if r_type == "fixed":
                return self._fixed(reader, writer, path)
            if r_type == "array":
                return self.check(
                    _Node(r["items"], reader.namespace), _Node(w["items"], writer.namespace), f"{path}[]"
                )
            return self.check(
                _Node(r["values"], reader.namespace), _Node(w["values"], writer.namespace), f"{path}{{}}"
            )
        finally:
            self._in_progress.discard(key)

    def _same_name(self, reader: _Node, writer: _Node) -> bool:
        r, w = reader.schema, writer.schema
        w_full = _full_name(w, writer.namespace)
        if _short(str(r.get("name", ""))) == _short(w_full):
            return True
        aliases = {a if "." in a else f"{reader.namespace}.{a}".lstrip(".") for a in r.get("aliases", [])}
        return w_full in aliases or _short(w_full) in {_short(a) for a in aliases}

    def _records(self, reader: _Node, writer: _Node, path: str) -> list[str]:
        r, w = reader.schema, writer.schema
        if not self._same_name(reader, writer):
            return [f"{_at(path)}: record {r.get('name')} cannot read record {w.get('name')} (names differ)"]
        writer_fields = {f["name"]: f for f in w.get("fields", [])}
        problems: list[str] = []
        for r_field in r.get("fields", []):
            name = r_field["name"]
            where = f"{path}.{name}" if path else name
            w_field = writer_fields.get(name)
            if w_field is None:
                for alias in r_field.get("aliases", []):
                    w_field = writer_fields.get(alias)
                    if w_field is not None:
                        break
            if w_field is None:
                if "default" not in r_field:
                    problems.append(
                        f"field '{where}' is missing from the writer's schema "
                        "and has no default in the reader's"
                    )
                continue
            problems += self.check(
                _Node(r_field["type"], reader.namespace), _Node(w_field["type"], writer.namespace), where
            )
        return problems

    def _enums(self, reader: _Node, writer: _Node, path: str) -> list[str]:
        r, w = reader.schema, writer.schema
        if not self._same_name(reader, writer):
            return [f"{_at(path)}: enum {r.get('name')} cannot read enum {w.get('name')} (names differ)"]
        if "default" in r:
            return []
        missing = [s for s in w.get("symbols", []) if s not in set(r.get("symbols", []))]
        if missing:
            return [
                f"{_at(path)}: enum {r.get('name')} lacks the writer's symbols {', '.join(missing)} "
                "and has no default"
            ]
        return []

    def _fixed(self, reader: _Node, writer: _Node, path: str) -> list[str]:
        r, w = reader.schema, writer.schema
        if not self._same_name(reader, writer):
            return [f"{_at(path)}: fixed {r.get('name')} cannot read fixed {w.get('name')} (names differ)"]
        if r.get("size") != w.get("size"):
            return [
                f"{_at(path)}: fixed {r.get('name')} size changed from {w.get('size')} to {r.get('size')}"
            ]
        return _logical_problems(r, w, path)


class _Unresolvable(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _at(path: str) -> str:
    return f"field '{path}'" if path else "the top-level record"


def _type_of(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        return str(schema.get("type"))
    return "union"


def _describe(schema: Any) -> str:
    if isinstance(schema, list):
        return "[" + ", ".join(_describe(s) for s in schema) + "]"
    if isinstance(schema, dict):
        kind = str(schema.get("type"))
        if kind in _NAMED:
            return f"{kind} {schema.get('name')}"
        if kind == "array":
            return f"array<{_describe(schema.get('items'))}>"
        if kind == "map":
            return f"map<{_describe(schema.get('values'))}>"
        logical = schema.get("logicalType")
        return f"{kind} ({logical})" if logical else kind
    return str(schema)


def _logical_problems(reader: Any, writer: Any, path: str) -> list[str]:
    r_logical = reader.get("logicalType") if isinstance(reader, dict) else None
    w_logical = writer.get("logicalType") if isinstance(writer, dict) else None
    if r_logical and w_logical and r_logical != w_logical:
        return [f"{_at(path)}: logical type changed from {w_logical} to {r_logical}"]
    if r_logical == w_logical == "decimal":
        for attr in ("scale", "precision"):
            if reader.get(attr, 0) != writer.get(attr, 0):
                return [
                    f"{_at(path)}: decimal {attr} changed from {writer.get(attr, 0)} to {reader.get(attr, 0)}"
                ]
    return []


def reader_problems(reader: Any, writer: Any) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader`` (schema JSON); empty if it can."""
    checker = _Checker(reader, writer)
    return checker.check(_Node(reader, ""), _Node(writer, ""), "")


def full_compatibility_problems(older: Any, newer: Any) -> list[str]:
    """Problems with ``newer`` being FULL compatible with ``older``: each must read the other's data."""
    problems = [f"the new version cannot read old data: {p}" for p in reader_problems(newer, older)]
    problems += [f"the old version cannot read new data: {p}" for p in reader_problems(older, newer)]
    return problems
