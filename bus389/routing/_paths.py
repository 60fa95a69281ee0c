"""Field paths of the routing policy (``seller.phone``, ``accounts[].platform``): syntax, lookup, schema.

A path is dot-separated field names; a name followed by ``[]`` steps into every item of an array.
:func:`values_at` resolves a path in a decoded event record (the Avro dict or the JSON dict: both use
the contract's field names and enum symbols as strings) and returns every value found, so that a
condition on ``accounts[].platform`` holds when any account matches. :func:`schema_paths` lists
every path an Avro record schema offers, with what kind of value lives there, so that the policy
loader can reject a rule that names a field no event has.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["PATH_PATTERN", "FieldInfo", "schema_paths", "split_path", "values_at"]

PATH_PATTERN = r"^[a-z_][a-z0-9_]*(\[\])?(\.[a-z_][a-z0-9_]*(\[\])?)*$"
_PATH = re.compile(PATH_PATTERN)


@dataclass(frozen=True)
class FieldInfo:
    """What a schema path holds: an Avro kind (``boolean``, ``long``, ``enum``, ``array``, ``record``,
    a logical type such as ``timestamp-millis``...), whether null is allowed, and enum symbols."""

    kind: str
    nullable: bool = False
    symbols: tuple[str, ...] = ()
    item_kind: str | None = None
    """For an array: the kind of its items."""

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "long", "float", "double")


@lru_cache(maxsize=1024)
def split_path(path: str) -> tuple[tuple[str, bool], ...]:
    """``accounts[].platform`` → ``(("accounts", True), ("platform", False))``; ValueError if malformed."""
    if not _PATH.match(path):
        raise ValueError(
            f"malformed field path {path!r} (expected e.g. 'seller.phone' or 'accounts[].platform')"
        )
    return tuple((part.removesuffix("[]"), part.endswith("[]")) for part in path.split("."))


def values_at(record: Mapping[str, Any], path: str) -> list[Any]:
    """Every value at ``path`` in ``record`` (none when a step is missing or null; leaves may be None)."""
    current: list[Any] = [record]
    for name, each in split_path(path):
        found: list[Any] = []
        for node in current:
            if not isinstance(node, Mapping) or name not in node:
                continue
            value = node[name]
            if each:
                if isinstance(value, list | tuple):
                    found.extend(value)
            else:
                found.append(value)
        current = found
    return current


def _named(schema: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, str):
        return named.get(schema, schema)
    if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
        named.setdefault(str(schema["name"]), schema)
        namespace = schema.get("namespace")
        if namespace and "." not in str(schema["name"]):
            named.setdefault(f"{namespace}.{schema['name']}", schema)
    return schema


def _kind(schema: Any, named: dict[str, Any]) -> tuple[str, bool, Any]:
    """(kind, nullable, the resolved non-null schema) of one field type."""
    schema = _named(schema, named)
    nullable = False
    if isinstance(schema, list):
        branches = [_named(branch, named) for branch in schema]
        nullable = "null" in branches
        rest = [branch for branch in branches if branch != "null"]
        schema = rest[0] if len(rest) == 1 else rest
        if isinstance(schema, list):
            return "union", nullable, schema
    if isinstance(schema, str):
        return schema, nullable, schema
    if isinstance(schema, dict):
        logical = schema.get("logicalType")
        kind = str(logical) if logical else str(schema.get("type"))
        if kind in ("uuid",):
            kind = "string"
        return kind, nullable, schema
    return "unknown", nullable, schema


def _walk(schema: Any, prefix: str, named: dict[str, Any], out: dict[str, FieldInfo]) -> None:
    for field in schema.get("fields", []):
        path = f"{prefix}{field['name']}"
        kind, nullable, resolved = _kind(field["type"], named)
        if kind == "record":
            out[path] = FieldInfo("record", nullable)
            _walk(resolved, path + ".", named, out)
        elif kind == "enum":
            out[path] = FieldInfo("enum", nullable, tuple(resolved.get("symbols", ())))
        elif kind == "array":
            item_kind, _, item = _kind(resolved.get("items"), named)
            out[path] = FieldInfo("array", nullable, item_kind=item_kind)
            if item_kind == "record":
                _walk(item, path + "[].", named, out)
            elif item_kind == "enum":
                out[path + "[]"] = FieldInfo("enum", False, tuple(item.get("symbols", ())))
            else:
                out[path + "[]"] = FieldInfo(item_kind, False)
        else:
            out[path] = FieldInfo(kind, nullable)


def schema_paths(parsed_schema: Mapping[str, Any]) -> dict[str, FieldInfo]:
    """Every field path of an Avro record schema (as fastavro parses it) and what it holds."""
    out: dict[str, FieldInfo] = {}
    named: dict[str, Any] = {}
    _named(dict(parsed_schema), named)
    _walk(parsed_schema, "", named, out)
    return out
