"""Avro schema-resolution compatibility: Apache Avro's verdict, with the project's stricter rules, each named.

Can a reader schema read what a writer schema wrote? **Apache Avro decides**: its own checker,
``avro.compatibility.ReaderWriterCompatibilityChecker`` (the Python port of Java's ``SchemaCompatibility``),
runs on the two schemas with every type alias written as a full name — the specification and Java resolve
a relative alias in the type's own namespace, the port compares aliases as written. Java's refusal of a
reader field whose name and aliases match two writer fields (``ambiguous_field_alias``), which the port
lacks, is added. The rules Avro applies, in short:

* primitives match themselves, and the writer's type may be promoted: int → long, float, double;
  long → float, double; float → double; string ↔ bytes;
* a named type (record, enum, fixed) reads a writer type of the same short name, or whose full name is
  one of the reader's aliases; reader fields match writer fields by name or field alias; a reader field
  the writer lacks needs a default; writer fields the reader lacks are skipped;
* an enum reads every writer symbol unless it has a default; a fixed keeps its size;
* a writer union is readable if every branch is; a reader union reads a type if one branch does.

A walk over the two schemas explains each refusal by field (``field 'seller.email'``) and applies the
project's stricter rules on top (:mod:`bus389.schemas.rules`): full names stay stable, logical types and
decimal scale/precision do not change, aliases are unambiguous. The walk never overrules Avro: where
Apache's checker accepts, the walk adds only the project's rules.

:func:`schema_problems` judges one schema alone (it parses, its defaults fit, see
:mod:`bus389.schemas.defaults`); FULL_TRANSITIVE (what :func:`bus389.schemas.catalog.check_catalog`
requires) is: each new version reads every earlier one (backward) and every earlier one reads it (forward).
Every problem names its rule: ``[Avro rule type_mismatch]`` or ``[bus389 rule logical-type-stable]``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

import avro.errors
import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
)

from bus389.schemas.defaults import default_problems
from bus389.schemas.names import (
    NAMED,
    PRIMITIVES,
    NamedTypes,
    alias_collisions,
    describe,
    full_name,
    namespace_of,
    resolved_aliases,
    short_name,
    with_full_aliases,
)
from bus389.schemas.rules import (
    AVRO_AMBIGUOUS_FIELD_ALIAS,
    AVRO_FIXED_SIZE_MISMATCH,
    AVRO_INVALID_SCHEMA,
    AVRO_MISSING_ENUM_SYMBOLS,
    AVRO_MISSING_UNION_BRANCH,
    AVRO_NAME_MISMATCH,
    AVRO_READER_FIELD_MISSING_DEFAULT_VALUE,
    AVRO_TYPE_MISMATCH,
    PROJECT_DECIMAL,
    PROJECT_ENUM_DEFAULT,
    PROJECT_FULL_NAME,
    PROJECT_LOGICAL_TYPE,
    PROJECT_UNAMBIGUOUS_ALIASES,
    Problem,
    Rule,
)

__all__ = [
    "PRIMITIVES",
    "apache_problems",
    "full_compatibility_problems",
    "read_problems",
    "reader_problems",
    "schema_problems",
]

_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
_APACHE_RULES: dict[SchemaIncompatibilityType, Rule] = {
    SchemaIncompatibilityType.name_mismatch: AVRO_NAME_MISMATCH,
    SchemaIncompatibilityType.fixed_size_mismatch: AVRO_FIXED_SIZE_MISMATCH,
    SchemaIncompatibilityType.missing_enum_symbols: AVRO_MISSING_ENUM_SYMBOLS,
    SchemaIncompatibilityType.reader_field_missing_default_value: AVRO_READER_FIELD_MISSING_DEFAULT_VALUE,
    SchemaIncompatibilityType.type_mismatch: AVRO_TYPE_MISMATCH,
    SchemaIncompatibilityType.missing_union_branch: AVRO_MISSING_UNION_BRANCH,
}


class _InvalidSchema(Exception):
    """Apache Avro's parser refused a schema."""


def _parse(schema: Any) -> avro.schema.Schema:
    """The schema parsed by Apache Avro's Python implementation (its warnings are not ours to show)."""
    try:
        with warnings.catch_warnings():
            # An ignored logical type (e.g. a decimal without precision) is a warning there, as in Java.
            warnings.simplefilter("ignore")
            return avro.schema.parse(json.dumps(schema))
    except (
        avro.errors.AvroException,
        TypeError,
        ValueError,
        KeyError,
        AttributeError,
        RecursionError,
    ) as exc:
        cause: BaseException = exc
        # The parser wraps a nested type's error in "Type property <the whole type> not a valid schema".
        while isinstance(cause.__context__, avro.errors.AvroException):
            cause = cause.__context__
        text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        raise _InvalidSchema(text if len(text) <= 300 else text[:297] + "...") from exc


def schema_problems(schema: Any) -> list[Problem]:
    """Why ``schema`` (schema JSON) is not a sound schema on its own; empty if it is.

    Avro's parser must accept it, every default must fit its field's type (:mod:`bus389.schemas.defaults`),
    no alias may name two things, and every enum needs a default.
    """
    problems: list[Problem] = []
    try:
        _parse(schema)
    except _InvalidSchema as exc:
        problems.append(Problem(AVRO_INVALID_SCHEMA, f"invalid Avro schema: {exc}"))
    problems += default_problems(schema)
    problems += [Problem(PROJECT_UNAMBIGUOUS_ALIASES, message) for message in alias_collisions(schema)]
    problems += [
        Problem(
            PROJECT_ENUM_DEFAULT, f"enum {name} has no default (an old reader could not survive a new symbol)"
        )
        for name in _enums_without_default(schema)
    ]
    return problems


def _enums_without_default(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "enum" and "default" not in node:
            found.append(str(node.get("name")))
        for value in node.values():
            found += _enums_without_default(value)
    elif isinstance(node, list):
        for value in node:
            found += _enums_without_default(value)
    return found


def apache_problems(reader: Any, writer: Any) -> list[Problem]:
    """Apache Avro's own verdict on reading ``writer`` data with ``reader``: empty if compatible.

    Its messages are Apache's (``reader type: string not compatible with writer type: boolean``) with the
    location in the reader schema; :func:`read_problems` gives the same verdict with field names.
    """
    try:
        parsed_reader = _parse(with_full_aliases(reader))
        parsed_writer = _parse(with_full_aliases(writer))
    except _InvalidSchema as exc:
        return [Problem(AVRO_INVALID_SCHEMA, f"invalid Avro schema: {exc}")]
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(parsed_reader, parsed_writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    where = ", ".join(sorted(result.locations))
    rules = list(dict.fromkeys(_APACHE_RULES[kind] for kind in result.incompatibilities))
    message = "; ".join(sorted(result.messages))
    return [Problem(rule, f"Apache Avro at {where}: {message}") for rule in rules]


@dataclass(frozen=True)
class _Node:
    """One schema node with the namespace it was written in (for resolving names inside it)."""

    schema: Any
    namespace: str


class _Unresolvable(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _Walker:
    """Explains by field why a reader cannot read a writer, and applies the project's rules."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader_names = NamedTypes.of(reader)
        self.writer_names = NamedTypes.of(writer)
        self._in_progress: set[tuple[int, int]] = set()

    def _deref(self, node: _Node, names: NamedTypes) -> _Node:
        schema = node.schema
        if isinstance(schema, dict):
            inner = schema.get("type")
            if isinstance(inner, dict | list) or (
                isinstance(inner, str) and inner not in PRIMITIVES | NAMED | {"array", "map"}
            ):
                return self._deref(_Node(inner, node.namespace), names)
        if isinstance(schema, str) and schema not in PRIMITIVES:
            found = names.lookup(schema, node.namespace)
            if found is None:
                raise _Unresolvable(schema)
            return _Node(found[0], found[1])
        if isinstance(schema, dict) and schema.get("type") in NAMED:
            return _Node(schema, namespace_of(full_name(schema, node.namespace)))
        return node

    def check(self, reader: _Node, writer: _Node, path: str) -> list[Problem]:
        """Problems reading ``writer`` data with ``reader`` (empty when it can)."""
        try:
            reader = self._deref(reader, self.reader_names)
        except _Unresolvable as exc:
            return [
                Problem(
                    AVRO_INVALID_SCHEMA,
                    f"{_at(path)}: the reader's schema names an undefined type {exc.name!r}",
                )
            ]
        try:
            writer = self._deref(writer, self.writer_names)
        except _Unresolvable as exc:
            return [
                Problem(
                    AVRO_INVALID_SCHEMA,
                    f"{_at(path)}: the writer's schema names an undefined type {exc.name!r}",
                )
            ]
        r, w = reader.schema, writer.schema
        if isinstance(w, list):
            problems: list[Problem] = []
            for branch in w:
                problems += self.check(reader, _Node(branch, writer.namespace), path)
            return problems
        if isinstance(r, list):
            return self._reader_union(reader, writer, path)
        r_type, w_type = _type_of(r), _type_of(w)
        if r_type in PRIMITIVES and w_type in PRIMITIVES:
            if r_type != w_type and r_type not in _PROMOTIONS.get(w_type, frozenset()):
                return [
                    Problem(
                        AVRO_TYPE_MISMATCH,
                        f"{_at(path)}: type changed from {w_type} to {r_type}, which Avro cannot promote",
                    )
                ]
            return _logical_problems(r, w, path)
        if r_type != w_type:
            return [
                Problem(AVRO_TYPE_MISMATCH, f"{_at(path)}: type changed from {describe(w)} to {describe(r)}")
            ]
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

    def _reader_union(self, reader: _Node, writer: _Node, path: str) -> list[Problem]:
        results = [self.check(_Node(branch, reader.namespace), writer, path) for branch in reader.schema]
        if any(not found for found in results):
            return []
        undefined = [p for found in results for p in found if "names an undefined type" in p.message]
        if undefined:
            return undefined
        # Avro reads with a branch that it accepts: what stops it then is one of the project's rules.
        for found in results:
            if all(p.rule.is_project for p in found):
                return found
        # No branch reads it: explain with the branch of the same kind and name, if there is one.
        for branch, found in zip(reader.schema, results, strict=True):
            if self._same_kind(_Node(branch, reader.namespace), writer):
                return found
        return [
            Problem(
                AVRO_MISSING_UNION_BRANCH,
                f"{_at(path)}: no branch of the reader's union {describe(reader.schema)} "
                f"reads the writer's {describe(writer.schema)}",
            )
        ]

    def _same_kind(self, branch: _Node, writer: _Node) -> bool:
        try:
            node = self._deref(branch, self.reader_names)
        except _Unresolvable:
            return False
        r_type, w_type = _type_of(node.schema), _type_of(writer.schema)
        if r_type != w_type:
            return False
        return r_type not in NAMED or not _avro_name_problems(node, writer, "")

    def _names(self, reader: _Node, writer: _Node, path: str, kind: str) -> list[Problem]:
        problems = _avro_name_problems(reader, writer, path)
        if problems:
            return problems
        r_full = full_name(reader.schema, reader.namespace)
        w_full = full_name(writer.schema, writer.namespace)
        if r_full != w_full and w_full not in resolved_aliases(reader.schema, r_full):
            return [
                Problem(
                    PROJECT_FULL_NAME,
                    f"{_at(path)}: {kind} {r_full} reads {w_full} by its short name only "
                    f"(keep the full name, or add the alias {w_full})",
                )
            ]
        return []

    def _records(self, reader: _Node, writer: _Node, path: str) -> list[Problem]:
        r, w = reader.schema, writer.schema
        problems = self._names(reader, writer, path, "record")
        if any(not p.rule.is_project for p in problems):
            return problems
        writer_fields = {f["name"]: f for f in w.get("fields", [])}
        claimed: dict[str, str] = {}
        for r_field in r.get("fields", []):
            name = r_field["name"]
            where = f"{path}.{name}" if path else name
            # As Java's SchemaCompatibility.lookupWriterField: the name, then every alias, duplicates counted.
            matches = [name] if name in writer_fields else []
            matches += [a for a in r_field.get("aliases", []) if a in writer_fields]
            if len(matches) > 1:
                problems.append(
                    Problem(
                        AVRO_AMBIGUOUS_FIELD_ALIAS,
                        f"field '{where}' (name and aliases) matches several writer fields: "
                        + ", ".join(matches),
                    )
                )
                continue
            if not matches:
                if "default" not in r_field:
                    problems.append(
                        Problem(
                            AVRO_READER_FIELD_MISSING_DEFAULT_VALUE,
                            f"field '{where}' is missing from the writer's schema "
                            "and has no default in the reader's",
                        )
                    )
                continue
            w_field = writer_fields[matches[0]]
            if matches[0] in claimed:
                problems.append(
                    Problem(
                        PROJECT_UNAMBIGUOUS_ALIASES,
                        f"field '{where}' and field '{claimed[matches[0]]}' both read the writer's "
                        f"field '{matches[0]}'",
                    )
                )
            claimed[matches[0]] = name
            problems += self.check(
                _Node(r_field["type"], reader.namespace), _Node(w_field["type"], writer.namespace), where
            )
        return problems

    def _enums(self, reader: _Node, writer: _Node, path: str) -> list[Problem]:
        r, w = reader.schema, writer.schema
        problems = self._names(reader, writer, path, "enum")
        if any(not p.rule.is_project for p in problems):
            return problems
        symbols = set(r.get("symbols", []))
        if r.get("default") in symbols:
            return problems
        missing = [s for s in w.get("symbols", []) if s not in symbols]
        if missing:
            problems.append(
                Problem(
                    AVRO_MISSING_ENUM_SYMBOLS,
                    f"{_at(path)}: enum {r.get('name')} lacks the writer's symbols {', '.join(missing)} "
                    "and has no default",
                )
            )
        return problems

    def _fixed(self, reader: _Node, writer: _Node, path: str) -> list[Problem]:
        r, w = reader.schema, writer.schema
        problems = self._names(reader, writer, path, "fixed")
        if any(not p.rule.is_project for p in problems):
            return problems
        if r.get("size") != w.get("size"):
            return [
                *problems,
                Problem(
                    AVRO_FIXED_SIZE_MISMATCH,
                    f"{_at(path)}: fixed {r.get('name')} size changed "
                    f"from {w.get('size')} to {r.get('size')}",
                ),
            ]
        return problems + _logical_problems(r, w, path)


def _avro_name_problems(reader: _Node, writer: _Node, path: str) -> list[Problem]:
    """Avro's name rule: the same short name, or the writer's full name among the reader's aliases."""
    r, w = reader.schema, writer.schema
    r_full = full_name(r, reader.namespace)
    w_full = full_name(w, writer.namespace)
    if short_name(r_full) == short_name(w_full) or w_full in resolved_aliases(r, r_full):
        return []
    kind = _type_of(r)
    return [
        Problem(
            AVRO_NAME_MISMATCH,
            f"{_at(path)}: {kind} {r_full} cannot read {kind} {w_full} (names differ, and no alias of the "
            f"reader names {w_full})",
        )
    ]


def _at(path: str) -> str:
    return f"field '{path}'" if path else "the top-level record"


def _type_of(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        return str(schema.get("type"))
    return "union"


def _logical_problems(reader: Any, writer: Any, path: str) -> list[Problem]:
    r_logical = reader.get("logicalType") if isinstance(reader, dict) else None
    w_logical = writer.get("logicalType") if isinstance(writer, dict) else None
    if r_logical and w_logical and r_logical != w_logical:
        return [
            Problem(
                PROJECT_LOGICAL_TYPE, f"{_at(path)}: logical type changed from {w_logical} to {r_logical}"
            )
        ]
    if r_logical == w_logical == "decimal":
        for attr in ("scale", "precision"):
            if reader.get(attr, 0) != writer.get(attr, 0):
                return [
                    Problem(
                        PROJECT_DECIMAL,
                        f"{_at(path)}: decimal {attr} changed "
                        f"from {writer.get(attr, 0)} to {reader.get(attr, 0)}",
                    )
                ]
    return []


def read_problems(reader: Any, writer: Any) -> list[Problem]:
    """Why data written with ``writer`` cannot be read with ``reader`` (schema JSON), each with its rule.

    Empty if it can. Avro's part is Apache's verdict (explained by field where the walk can); the
    project's part is the rules Avro does not have.
    """
    explained = _Walker(reader, writer).check(_Node(reader, ""), _Node(writer, ""), "")
    project = [p for p in explained if p.rule.is_project]
    avro_explained = [p for p in explained if not p.rule.is_project]
    apache = apache_problems(reader, writer)
    if apache:
        avro_part = avro_explained or apache
    else:
        # Java refuses an ambiguous field alias outright; the Python port silently takes the name.
        avro_part = [p for p in avro_explained if p.rule is AVRO_AMBIGUOUS_FIELD_ALIAS]
    return list(dict.fromkeys([*avro_part, *project]))


def reader_problems(reader: Any, writer: Any) -> list[str]:
    """:func:`read_problems` as one-line messages, each ending with its rule."""
    return [str(problem) for problem in read_problems(reader, writer)]


def full_compatibility_problems(older: Any, newer: Any) -> list[str]:
    """Problems with ``newer`` being FULL compatible with ``older``: each must read the other's data."""
    problems = [f"the new version cannot read old data: {p}" for p in reader_problems(newer, older)]
    problems += [f"the old version cannot read new data: {p}" for p in reader_problems(older, newer)]
    return problems
