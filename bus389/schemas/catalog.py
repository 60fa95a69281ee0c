"""The schema catalog: every ``.avsc`` parsed once, looked up by pinned id or by event type and version.

``schemas/ids.yaml`` pins one id per ``<event_type>/v<N>``; the file is ``schemas/<event_type>/v<N>.avsc``.
:func:`load_catalog` parses every file once per process (cached) and refuses an inconsistent catalog;
:func:`check_catalog` lists every problem instead, including FULL_TRANSITIVE incompatibilities between
versions of a type (see :mod:`bus389.schemas.compat`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
import yaml

from bus389.errors import SchemaCatalogError, UnknownEventTypeError, UnknownSchemaIdError
from bus389.schemas import SCHEMAS_DIR

__all__ = [
    "AUDIT",
    "CE_TYPE_PREFIX",
    "IDS_FILE",
    "NAMESPACE",
    "Catalog",
    "SchemaEntry",
    "check_catalog",
    "load_catalog",
    "record_name_for",
]

NAMESPACE = "vn.bcd389"
CE_TYPE_PREFIX = NAMESPACE
AUDIT = "audit"
"""The folder of the router's audit record: in the catalog, but not an event type."""
IDS_FILE = "ids.yaml"
_MAX_ID = 2**31 - 1
_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.avsc$")
_REF = re.compile(r"^([a-z][a-z0-9_]*)/v([1-9][0-9]*)$")


def record_name_for(event_type: str) -> str:
    """The Avro record name an event type's schema must have: ``suspect_seller`` → ``SuspectSeller``."""
    if event_type == AUDIT:
        return "AuditRecord"
    return "".join(part.capitalize() for part in event_type.split("_"))


@dataclass(frozen=True)
class SchemaEntry:
    """One version of one schema: its pinned id, where it lives, and its schema parsed once.

    ``parsed_schema`` is what the codec writes with; ``reader_schema`` is the same schema with the
    ``uuid`` logical type dropped, so that decoded records carry event ids as ``str`` (identical bytes).
    """

    schema_id: int
    event_type: str
    version: int
    path: Path
    parsed_schema: dict[str, Any] = field(compare=False, repr=False)
    reader_schema: dict[str, Any] = field(compare=False, repr=False)
    schema_json: dict[str, Any] = field(compare=False, repr=False)
    """The file's JSON as written (with docs), for compatibility checks and tools."""

    @property
    def full_name(self) -> str:
        """The record's full Avro name, e.g. ``vn.bcd389.SuspectSeller``."""
        name = str(self.schema_json.get("name", ""))
        namespace = self.schema_json.get("namespace")
        return name if "." in name or not namespace else f"{namespace}.{name}"

    @property
    def ce_type(self) -> str:
        """The CloudEvents ``ce_type`` of values written with this schema: ``vn.bcd389.<type>.v<N>``."""
        return f"{CE_TYPE_PREFIX}.{self.event_type}.v{self.version}"

    @property
    def ref(self) -> str:
        """``<event_type>/v<N>``, as in ``ids.yaml``."""
        return f"{self.event_type}/v{self.version}"

    @property
    def is_event(self) -> bool:
        """False for the router's audit record, True for every event type."""
        return self.event_type != AUDIT


class Catalog:
    """Every schema version of one ``schemas/`` folder; built by :func:`load_catalog`."""

    def __init__(self, directory: Path, entries: list[SchemaEntry]) -> None:
        self.directory = directory
        self._by_id = {e.schema_id: e for e in entries}
        self._by_type: dict[str, list[SchemaEntry]] = {}
        for entry in sorted(entries, key=lambda e: (e.event_type, e.version)):
            self._by_type.setdefault(entry.event_type, []).append(entry)
        self._by_ce_type = {e.ce_type: e for e in entries}

    def __iter__(self) -> Iterator[SchemaEntry]:
        return iter(sorted(self._by_id.values(), key=lambda e: e.schema_id))

    def __len__(self) -> int:
        return len(self._by_id)

    def by_id(self, schema_id: int) -> SchemaEntry:
        """The entry pinned to ``schema_id``; :class:`UnknownSchemaIdError` if none is."""
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise UnknownSchemaIdError(f"unknown schema id {schema_id}") from None

    def get(self, event_type: str, version: int) -> SchemaEntry:
        """One version of one type; :class:`UnknownEventTypeError` if there is no such version."""
        for entry in self.versions(event_type):
            if entry.version == version:
                return entry
        raise UnknownEventTypeError(f"no schema {event_type}/v{version}")

    def versions(self, event_type: str) -> list[SchemaEntry]:
        """Every version of ``event_type``, oldest first."""
        try:
            return list(self._by_type[event_type])
        except KeyError:
            known = ", ".join(self.event_types())
            raise UnknownEventTypeError(f"unknown event type {event_type!r} (known: {known})") from None

    def latest(self, event_type: str) -> SchemaEntry:
        """The newest version of ``event_type`` (what publishers write)."""
        return self.versions(event_type)[-1]

    def by_ce_type(self, ce_type: str) -> SchemaEntry | None:
        """The entry whose ``ce_type`` is ``ce_type``, or None."""
        return self._by_ce_type.get(ce_type)

    def event_types(self) -> list[str]:
        """The event types (every folder but the audit record's), sorted."""
        return sorted(t for t in self._by_type if t != AUDIT)

    @property
    def audit(self) -> SchemaEntry:
        """The newest version of the router's audit record."""
        return self.latest(AUDIT)


@dataclass
class _Scan:
    entries: list[SchemaEntry]
    problems: list[str]


class _DuplicateKeyLoader(yaml.SafeLoader):
    """A YAML loader that reports duplicate mapping keys (``safe_load`` keeps the last silently)."""

    duplicates: list[str]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                self.duplicates.append(
                    f"{IDS_FILE}: duplicate id {key} (line {key_node.start_mark.line + 1})"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_ids(directory: Path, problems: list[str]) -> dict[int, str]:
    path = directory / IDS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{IDS_FILE}: cannot read: {exc}")
        return {}
    loader = _DuplicateKeyLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        problems.append(f"{IDS_FILE}: invalid YAML: {exc}")
        return {}
    finally:
        loader.dispose()
    problems.extend(loader.duplicates)
    if not isinstance(data, dict) or not isinstance(data.get("ids"), dict):
        problems.append(f"{IDS_FILE}: needs a mapping 'ids' of id → <event_type>/v<N>")
        return {}
    ids: dict[int, str] = {}
    seen_refs: dict[str, int] = {}
    for raw_id, ref in data["ids"].items():
        if not isinstance(raw_id, int) or isinstance(raw_id, bool) or not 0 < raw_id <= _MAX_ID:
            problems.append(f"{IDS_FILE}: id {raw_id!r} is not an integer in 1..{_MAX_ID}")
            continue
        if not isinstance(ref, str) or not _REF.match(ref):
            problems.append(f"{IDS_FILE}: id {raw_id}: {ref!r} is not <event_type>/v<N>")
            continue
        if ref in seen_refs:
            problems.append(f"{IDS_FILE}: {ref} has two ids, {seen_refs[ref]} and {raw_id}")
            continue
        seen_refs[ref] = raw_id
        ids[raw_id] = ref
    retired = data.get("retired") or {}
    if not isinstance(retired, dict):
        problems.append(f"{IDS_FILE}: 'retired' must be a mapping of id → <event_type>/v<N>")
        retired = {}
    for raw_id in retired:
        if raw_id in ids:
            problems.append(f"{IDS_FILE}: id {raw_id} is retired and must not be reused (for {ids[raw_id]})")
    next_id = data.get("next_id")
    used = [*ids, *(r for r in retired if isinstance(r, int))]
    if next_id is not None and used and (not isinstance(next_id, int) or next_id <= max(used)):
        problems.append(f"{IDS_FILE}: next_id {next_id!r} must be above every id used ({max(used)})")
    return ids


def _strip_uuid(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strip_uuid(v) for k, v in node.items()}
        if out.get("logicalType") == "uuid" and out.get("type") == "string":
            del out["logicalType"]
        return out
    if isinstance(node, list):
        return [_strip_uuid(v) for v in node]
    return node


def _scan(directory: Path) -> _Scan:
    problems: list[str] = []
    ids = _read_ids(directory, problems)
    files: dict[str, Path] = {}
    for found in sorted(directory.glob("*/*.avsc")):
        match = _VERSION_FILE.match(found.name)
        if not match:
            problems.append(f"{found.relative_to(directory)}: file name must be v<N>.avsc")
            continue
        files[f"{found.parent.name}/v{match.group(1)}"] = found
    by_ref = {ref: schema_id for schema_id, ref in ids.items()}
    for ref in sorted(set(files) - set(by_ref)):
        problems.append(f"{ref}: {files[ref].relative_to(directory)} has no id in {IDS_FILE}")
    entries: list[SchemaEntry] = []
    for schema_id, ref in sorted(ids.items()):
        path = files.get(ref)
        if path is None:
            problems.append(f"{ref}: id {schema_id} in {IDS_FILE} has no file {ref}.avsc")
            continue
        event_type, version = ref.split("/v")
        try:
            schema_json = json.loads(path.read_text(encoding="utf-8"))
            parsed = fastavro.parse_schema(copy.deepcopy(schema_json))
            reader = fastavro.parse_schema(_strip_uuid(schema_json))
        except (
            OSError,
            ValueError,
            TypeError,
            KeyError,
            RecursionError,
            fastavro.schema.SchemaParseException,
        ) as exc:
            problems.append(f"{ref}: invalid schema file {path.name}: {exc}")
            continue
        if (
            not isinstance(schema_json, dict)
            or schema_json.get("type") != "record"
            or not isinstance(parsed, dict)
            or not isinstance(reader, dict)
        ):
            problems.append(f"{ref}: the top-level schema must be a record")
            continue
        entry = SchemaEntry(
            schema_id=schema_id,
            event_type=event_type,
            version=int(version),
            path=path,
            parsed_schema=parsed,
            reader_schema=reader,
            schema_json=schema_json,
        )
        expected = f"{NAMESPACE}.{record_name_for(event_type)}"
        if entry.full_name != expected:
            problems.append(
                f"{ref}: record name {entry.full_name} does not match event type (expected {expected})"
            )
        if entry.is_event and "meta" not in {f.get("name") for f in schema_json.get("fields", [])}:
            problems.append(f"{ref}: an event record needs the field 'meta'")
        entries.append(entry)
    return _Scan(entries, problems)


@lru_cache(maxsize=8)
def _load(directory: Path) -> Catalog:
    scan = _scan(directory)
    if scan.problems:
        raise SchemaCatalogError(f"schema catalog {directory} is inconsistent: " + "; ".join(scan.problems))
    return Catalog(directory, scan.entries)


def load_catalog(directory: Path | None = None) -> Catalog:
    """The catalog of ``directory`` (default: the shipped ``schemas/``), parsed once per process.

    Raises :class:`SchemaCatalogError` when a file cannot be parsed or the ids file disagrees with the
    files; does not run the (slower) compatibility check, which is :func:`check_catalog`'s job.
    """
    if directory is None:
        return _load(SCHEMAS_DIR)  # already resolved: no filesystem call on the hot path
    return _load(directory.resolve())


def check_catalog(directory: Path | None = None) -> list[str]:
    """Every problem of the catalog in ``directory`` (default: the shipped one); empty means sound.

    Checks ids (duplicates, ids without files, files without ids, reuse of retired ids), record names
    against event types, each schema on its own (Avro parses it, every default fits its type, no alias
    is ambiguous), that every enum has a default, and FULL_TRANSITIVE compatibility between every pair
    of versions of a type. Each problem of a schema names its rule, Avro's or the project's.
    """
    from bus389.schemas.compat import full_compatibility_problems, schema_problems

    scan = _scan((directory or SCHEMAS_DIR).resolve())
    problems = list(scan.problems)
    by_type: dict[str, list[SchemaEntry]] = {}
    for entry in sorted(scan.entries, key=lambda e: e.version):
        by_type.setdefault(entry.event_type, []).append(entry)
    for entry in sorted(scan.entries, key=lambda e: e.schema_id):
        for unsound in schema_problems(entry.schema_json):
            problems.append(f"{entry.ref}: {unsound}")
    for event_type, versions in sorted(by_type.items()):
        numbers = [e.version for e in versions]
        if numbers != list(range(1, len(numbers) + 1)):
            problems.append(f"{event_type}: versions {numbers} are not 1..{len(numbers)} without gaps")
        for i, newer in enumerate(versions):
            for older in versions[:i]:
                for problem in full_compatibility_problems(older.schema_json, newer.schema_json):
                    problems.append(f"{newer.ref} vs {older.ref}: {problem}")
    return problems
