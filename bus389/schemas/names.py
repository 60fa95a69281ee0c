"""Avro names in schema JSON: full names, the named types a schema defines, aliases resolved as the spec says.

A name with a dot is a full name; one without takes the namespace of the schema that defines it (its own
``namespace`` attribute, else the enclosing one). An alias of a named type is resolved the same way,
against that type's own namespace (Avro specification, "Aliases"); a field alias is a plain field name.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "NAMED",
    "PRIMITIVES",
    "NamedTypes",
    "full_name",
    "namespace_of",
    "resolved_aliases",
    "short_name",
    "with_full_aliases",
]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})


def full_name(node: dict[str, Any], namespace: str) -> str:
    """The full name of the named type ``node`` defined inside ``namespace``."""
    name = str(node.get("name", ""))
    if "." in name:
        return name
    own = node.get("namespace", namespace)
    return f"{own}.{name}" if own else name


def namespace_of(full: str) -> str:
    """The namespace part of a full name (``""`` for the null namespace)."""
    return full.rpartition(".")[0]


def short_name(name: str) -> str:
    """The last part of a (full) name."""
    return name.rpartition(".")[2]


def resolved_aliases(node: dict[str, Any], full: str) -> list[str]:
    """The aliases of the named type ``node`` (full name ``full``) as full names, relative ones resolved
    in the type's own namespace."""
    own = namespace_of(full)
    aliases = node.get("aliases") or []
    if not isinstance(aliases, list):
        return []
    return [a if "." in a or not own else f"{own}.{a}" for a in aliases if isinstance(a, str)]


@dataclass
class NamedTypes:
    """The named types one schema defines, by full name, each with the namespace it was defined in."""

    types: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, schema: Any) -> NamedTypes:
        """Every named type defined anywhere in ``schema``."""
        names = cls()
        names.collect(schema, "")
        return names

    def collect(self, node: Any, namespace: str) -> None:
        """Add the named types defined in ``node`` (written inside ``namespace``)."""
        if isinstance(node, list):
            for branch in node:
                self.collect(branch, namespace)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind in NAMED:
            full = full_name(node, namespace)
            if full in self.types and self.types[full] is not node:
                self.duplicates.append(full)
            self.types.setdefault(full, node)
            for child in node.get("fields", []) if kind in ("record", "error") else []:
                if isinstance(child, dict):
                    self.collect(child.get("type"), namespace_of(full))
        elif kind == "array":
            self.collect(node.get("items"), namespace)
        elif kind == "map":
            self.collect(node.get("values"), namespace)
        elif isinstance(kind, dict | list):
            self.collect(kind, namespace)

    def lookup(self, name: str, namespace: str) -> tuple[dict[str, Any], str] | None:
        """The type a reference ``name`` written inside ``namespace`` means, and its own namespace."""
        candidates = [name] if "." in name else [f"{namespace}.{name}" if namespace else name, name]
        for candidate in candidates:
            found = self.types.get(candidate)
            if found is not None:
                return found, namespace_of(candidate)
        return None


def with_full_aliases(schema: Any) -> Any:
    """A copy of ``schema`` whose named types list their aliases as full names (fields untouched).

    Apache Avro's Python port compares a reader's aliases as written with the writer's full name, while
    the specification (and the Java implementation) resolve a relative alias in the type's namespace.
    """
    out = copy.deepcopy(schema)

    def walk(node: Any, namespace: str) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch, namespace)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind in NAMED:
            if "aliases" in node and isinstance(node["aliases"], list):
                node["aliases"] = resolved_aliases(node, full_name(node, namespace))
            inner = namespace_of(full_name(node, namespace))
            for child in node.get("fields", []) if kind in ("record", "error") else []:
                if isinstance(child, dict):
                    walk(child.get("type"), inner)
        elif kind == "array":
            walk(node.get("items"), namespace)
        elif kind == "map":
            walk(node.get("values"), namespace)
        elif isinstance(kind, dict | list):
            walk(kind, namespace)

    walk(out, "")
    return out


def describe(schema: Any) -> str:
    """A short description of a schema: ``string``, ``array<int>``, ``record Seller``, ``[null, long]``."""
    if isinstance(schema, list):
        return "[" + ", ".join(describe(s) for s in schema) + "]"
    if isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, dict | list):
            return describe(kind)
        kind = str(kind)
        if kind in NAMED:
            return f"{kind} {schema.get('name')}"
        if kind == "array":
            return f"array<{describe(schema.get('items'))}>"
        if kind == "map":
            return f"map<{describe(schema.get('values'))}>"
        logical = schema.get("logicalType")
        return f"{kind} ({logical})" if logical else kind
    return str(schema)


def alias_collisions(schema: Any) -> list[str]:
    """Aliases that name more than one thing in ``schema``: a field alias that is another field's name or
    alias in the same record, a type alias that is another named type's full name or alias."""
    names = NamedTypes.of(schema)
    problems: list[str] = []
    claimed: dict[str, str] = {full: full for full in names.types}
    for full, node in names.types.items():
        for alias in resolved_aliases(node, full):
            owner = claimed.get(alias)
            if owner is not None and owner != full:
                problems.append(f"type {full}: alias {alias} also names type {owner}")
            else:
                claimed[alias] = full
    for full, node in names.types.items():
        if node.get("type") not in ("record", "error"):
            continue
        fields = [f for f in node.get("fields", []) if isinstance(f, dict)]
        owners: dict[str, str] = {str(f.get("name")): str(f.get("name")) for f in fields}
        for f in fields:
            name = str(f.get("name"))
            aliases = f.get("aliases") or []
            for alias in aliases if isinstance(aliases, list) else []:
                owner = owners.get(alias)
                if owner is not None and owner != name:
                    problems.append(f"record {full}, field '{name}': alias {alias!r} also names '{owner}'")
                else:
                    owners[alias] = name
    return problems
