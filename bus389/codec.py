"""The wire format (contract): Confluent framing with a pinned schema id, CloudEvents headers, the key.

A value is ``0x00``, the schema id as 4 bytes big-endian, then the record in Avro binary (fastavro,
schemaless). The key is UTF-8 ``meta.case_ref`` when set, else the event id, so that the events of one
case stay in one partition, in order. Headers follow the CloudEvents Kafka binding (binary mode).

Schemas come from :func:`bus389.schemas.catalog.load_catalog`, parsed once; nothing here parses per call.
Decoding never lets a third-party exception out: every failure is one of the typed
:class:`~bus389.errors.CodecError` subclasses, whose ``reason`` is the DLQ reason code.

A body must be the canonical encoding of its record, byte for byte what :func:`encode_value` writes
for it (checked by :mod:`bus389._avro_check`): fastavro alone would read a union branch index of -1
as the last branch, bytes that Apache Avro's reader refuses.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import fastavro
from fastavro.read import SchemaResolutionError

from bus389._avro_check import Checker, NonCanonicalError, canonical_checker
from bus389.errors import (
    BadMagicByteError,
    CorruptBodyError,
    EncodeError,
    SchemaMismatchError,
    TruncatedFrameError,
)
from bus389.schemas.catalog import Catalog, SchemaEntry, load_catalog

if TYPE_CHECKING:
    from bus389.events import AuditRecord, Event

__all__ = [
    "CE_SPECVERSION",
    "CONTENT_TYPE",
    "HEADER_SIZE",
    "MAGIC_BYTE",
    "Decoded",
    "Encoded",
    "decode_event",
    "decode_value",
    "encode_event",
    "encode_value",
    "event_headers",
    "event_key",
    "frame_schema_id",
    "headers_dict",
    "rfc3339",
]

MAGIC_BYTE = 0
HEADER_SIZE = 5
CE_SPECVERSION = "1.0"
CONTENT_TYPE = "application/avro"
_FRAME = struct.Struct(">bI")

# Everything fastavro's reader (C or pure Python) raises on bytes that are not a valid record.
_DECODE_FAILURES = (
    EOFError,
    ValueError,  # includes UnicodeDecodeError
    IndexError,
    KeyError,
    TypeError,
    OverflowError,
    MemoryError,
    RecursionError,
    struct.error,
)
_ENCODE_FAILURES = (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error)

_CHECKERS: dict[int, tuple[dict[str, Any], Checker]] = {}
"""The canonical-encoding check of each writer schema, compiled on first use (keyed by identity)."""


def _canonical_checker(schema: SchemaEntry) -> Checker:
    cached = _CHECKERS.get(id(schema.parsed_schema))
    if cached is None or cached[0] is not schema.parsed_schema:
        cached = (schema.parsed_schema, canonical_checker(schema.parsed_schema))
        _CHECKERS[id(schema.parsed_schema)] = cached
    return cached[1]


@dataclass(frozen=True)
class Encoded:
    """A framed value with its key and headers, ready for ``producer.send``."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Decoded:
    """A decoded value: the schema it was written with and the record.

    The record is Avro-ready: timestamps are aware UTC datetimes, dates are dates, enums and uuids str.
    """

    schema: SchemaEntry
    record: dict[str, Any]

    @property
    def event_type(self) -> str:
        return self.schema.event_type

    @property
    def meta(self) -> dict[str, Any]:
        """The event's ``meta`` (empty for the audit record, which has none)."""
        meta = self.record.get("meta")
        return meta if isinstance(meta, dict) else {}

    @property
    def event_id(self) -> str:
        return str(self.meta.get("event_id") or self.record.get("event_id") or "")


def rfc3339(moment: datetime | int) -> str:
    """RFC 3339 in UTC with milliseconds (``2021-07-01T08:30:00.000Z``); ints are epoch milliseconds."""
    if isinstance(moment, int):
        moment = datetime.fromtimestamp(moment / 1000, tz=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _catalog(catalog: Catalog | None) -> Catalog:
    return catalog if catalog is not None else load_catalog()


def _as_record(record: Mapping[str, Any] | Event | AuditRecord) -> Mapping[str, Any]:
    if isinstance(record, Mapping):
        return record
    return record.to_avro()


def encode_value(record: Mapping[str, Any] | Event | AuditRecord, schema: SchemaEntry) -> bytes:
    """Frame ``record`` (an Avro-ready dict or an event model) with ``schema``'s pinned id.

    Raises :class:`EncodeError` when the record does not fit the schema (unknown or missing field,
    wrong type).
    """
    buffer = io.BytesIO()
    buffer.write(_FRAME.pack(MAGIC_BYTE, schema.schema_id))
    try:
        fastavro.schemaless_writer(
            buffer, schema.parsed_schema, _as_record(record), strict_allow_default=True
        )
    except _ENCODE_FAILURES as exc:
        raise EncodeError(f"record does not fit {schema.ref} (schema id {schema.schema_id}): {exc}") from exc
    return buffer.getvalue()


def event_key(record: Mapping[str, Any]) -> bytes:
    """The Kafka key (contract): UTF-8 ``meta.case_ref`` when set, else the event id."""
    meta = record.get("meta")
    if isinstance(meta, Mapping):
        case_ref = meta.get("case_ref")
        return str(case_ref or meta["event_id"]).encode("utf-8")
    return str(record["event_id"]).encode("utf-8")


def event_headers(record: Mapping[str, Any], schema: SchemaEntry) -> list[tuple[str, bytes]]:
    """The CloudEvents binary-mode headers (contract) of ``record`` written with ``schema``.

    For the audit record (no ``meta``) the source is ``/bus389/router`` and the time is ``routed_at``.
    """
    meta = record.get("meta")
    if isinstance(meta, Mapping):
        event_id, source, time = meta["event_id"], meta["source"], meta["published_at"]
    else:
        event_id, source, time = record["event_id"], "router", record["routed_at"]
    source = getattr(source, "value", source)
    return [
        ("ce_specversion", CE_SPECVERSION.encode()),
        ("ce_id", str(event_id).encode("utf-8")),
        ("ce_source", f"/bus389/{source}".encode()),
        ("ce_type", schema.ce_type.encode("utf-8")),
        ("ce_time", rfc3339(time).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]


def encode_event(
    record: Mapping[str, Any] | Event | AuditRecord,
    *,
    schema: SchemaEntry | None = None,
    catalog: Catalog | None = None,
) -> Encoded:
    """Key, framed value and headers of one event (or audit record).

    ``schema`` defaults to the latest version of ``record["meta"]["event_type"]``.
    """
    avro = _as_record(record)
    if schema is None:
        meta = avro.get("meta")
        if not isinstance(meta, Mapping):
            raise EncodeError("a record without 'meta' needs an explicit schema")
        schema = _catalog(catalog).latest(str(meta["event_type"]))
    try:
        key = event_key(avro)
        headers = event_headers(avro, schema)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise EncodeError(f"record lacks what the key or headers need: {exc!r}") from exc
    return Encoded(key=key, value=encode_value(avro, schema), headers=headers)


def frame_schema_id(value: bytes | None) -> int:
    """The schema id of a framed value, checking only the 5-byte header."""
    if not value:
        raise TruncatedFrameError("empty value: no Confluent frame")
    if value[0] != MAGIC_BYTE:
        raise BadMagicByteError(f"first byte is 0x{value[0]:02x}, not the Confluent magic byte 0x00")
    if len(value) < HEADER_SIZE:
        raise TruncatedFrameError(f"value of {len(value)} bytes is shorter than the 5-byte frame header")
    _, schema_id = _FRAME.unpack_from(value)
    return int(schema_id)


def decode_value(value: bytes | None, *, catalog: Catalog | None = None, latest: bool = False) -> Decoded:
    """Unframe and decode ``value`` with the schema its id pins.

    With ``latest``, the record is resolved (Avro schema resolution) into the newest version of its
    type, which is what the event models describe: fields an older writer lacked get their defaults,
    fields a newer writer added are dropped, unknown enum symbols become the enum's default.
    ``Decoded.schema`` stays the writer's schema either way.

    Raises :class:`TruncatedFrameError`, :class:`BadMagicByteError`, :class:`UnknownSchemaIdError` or
    :class:`CorruptBodyError` (a body that does not decode, bytes left over after the record, or a body
    that decodes but is not the canonical encoding of its record, e.g. a union branch index of -1).
    """
    schema_id = frame_schema_id(value)
    value = value or b""
    found = _catalog(catalog)
    schema = found.by_id(schema_id)
    reader = found.latest(schema.event_type) if latest else schema
    body = io.BytesIO(value)
    body.seek(HEADER_SIZE)
    try:
        record = fastavro.schemaless_reader(
            body, schema.reader_schema, None if reader is schema else reader.reader_schema
        )
    except SchemaResolutionError as exc:
        raise SchemaMismatchError(f"{schema.ref} cannot be read as {reader.ref}: {exc}") from exc
    except _DECODE_FAILURES as exc:
        raise CorruptBodyError(
            f"body does not decode as {schema.ref} (schema id {schema_id}): {type(exc).__name__}: {exc}"
        ) from exc
    left = len(value) - body.tell()
    if left:
        raise CorruptBodyError(f"{left} bytes left over after a complete {schema.ref} record")
    if not isinstance(record, dict):
        raise CorruptBodyError(f"body of {schema.ref} did not decode to a record")
    try:
        _canonical_checker(schema)(value, HEADER_SIZE)
    except (NonCanonicalError, IndexError) as exc:
        raise CorruptBodyError(
            f"non-canonical encoding of {schema.ref} (schema id {schema_id}): {exc}"
        ) from exc
    return Decoded(schema=schema, record=record)


def headers_dict(
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None,
) -> dict[str, bytes]:
    """Kafka headers as a dict (the last value of a repeated name wins; None values are dropped)."""
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {name: value for name, value in items if value is not None}


def decode_event(
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None = None,
    *,
    expected_type: str | None = None,
    catalog: Catalog | None = None,
    latest: bool = False,
) -> Decoded:
    """:func:`decode_value`, then check that the bytes are the event the headers (and caller) say.

    Raises :class:`SchemaMismatchError` when the ``ce_type`` header names another type or version than
    the schema id, when ``meta.event_type`` disagrees with the schema, or when ``expected_type`` is
    given and differs. ``latest``: as in :func:`decode_value`.
    """
    decoded = decode_value(value, catalog=catalog, latest=latest)
    schema = decoded.schema
    ce_type = headers_dict(headers).get("ce_type")
    if ce_type is not None:
        said = ce_type.decode("utf-8", errors="replace")
        if said != schema.ce_type:
            raise SchemaMismatchError(
                f"ce_type header {said!r} does not match schema id {schema.schema_id} ({schema.ce_type})"
            )
    if schema.is_event:
        meta_type = decoded.meta.get("event_type")
        if meta_type != schema.event_type:
            raise SchemaMismatchError(
                f"meta.event_type {meta_type!r} does not match schema id {schema.schema_id} ({schema.ref})"
            )
    if expected_type is not None and expected_type != schema.event_type:
        raise SchemaMismatchError(f"expected a {expected_type} event, got {schema.ref}")
    return decoded
