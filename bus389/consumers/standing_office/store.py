"""The standing office's store: its inbox's events, keyed by event id and sender, in SQLite or PostgreSQL.

The URL chooses the database (``settings.store.standing_office_url``): ``sqlite:///relative/path``,
``sqlite:////absolute/path`` or ``sqlite:///:memory:`` (the default, embedded), or
``postgresql://user@host/db`` (psycopg 3: ``pip install -e '.[postgres]'`` in the checkout). The SQL is
written once for both; :class:`_Dialect` only changes the placeholder style.

Tables (prefixed ``so_`` so that a shared PostgreSQL database can hold other services' tables too):

- ``so_events``: one row per (event id, sender) — the meta columns (times as epoch milliseconds UTC),
  where the copy was read (topic, partition, offset, schema id), the router's redaction header, every
  header, the full record as JSON text (``ensure_ascii=False``: Vietnamese is stored byte for byte as
  UTF-8, never as ``\\u`` escapes; TEXT and not JSONB so that PostgreSQL keeps it exactly), and
  ``sender_rank``: 0 for the first sender stored under this id, 1 for a second, and so on.
- ``so_event_keys``: the correlation keys of each event (see :mod:`.correlation`).
- ``so_rejected``: inbox records the service could not use, by (topic, partition, offset), with the
  reason; the service skips them (an agency service cannot write the DLQ).
- ``so_meta``: ``schema_version`` (:data:`SCHEMA_VERSION`; an older store is migrated in place when
  opened, in one transaction) and what the service remembers (reports mailed).

Idempotency: inserting an event the same sender already stored under its id changes nothing and returns
False, so a replay after a crash (the service commits offsets only after the insert committed) stores
nothing twice. Another sender's event under the same id is a second event beside the first, never over
it. An id belongs to its first sender, as at the router: a lookup by id alone (:meth:`get`, the answers
``in_reply_to`` it) finds that sender's event (``sender_rank`` 0).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, cast
from uuid import UUID

from bus389.consumers.standing_office.correlation import CorrelationKey, extract_keys
from bus389.errors import ConfigError, InputError, StoreError
from bus389.logs import mask_secrets
from bus389.settings import IctSettings
from bus389.sqlite import connect_wal
from bus389.store_url import parse_store_url

__all__ = [
    "REDACTED_HEADER",
    "SCHEMA_VERSION",
    "EventKey",
    "RejectedRecord",
    "StandingOfficeStore",
    "StoredEvent",
    "UnusableEventError",
    "from_millis",
    "to_json_text",
    "to_millis",
]

REDACTED_HEADER = "bus389_redacted"
"""The router's header naming the fields it removed from this copy (comma-separated, empty if none)."""

SCHEMA_VERSION = 2
"""1: events keyed by id alone; 2: by (id, sender), with ``sender_rank``."""
_CHUNK = 500


def _events_table(name: str, *, if_not_exists: str = "") -> str:
    return f"""CREATE TABLE {if_not_exists}{name} (
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        source TEXT NOT NULL,
        occurred_at BIGINT NOT NULL,
        published_at BIGINT NOT NULL,
        case_ref TEXT,
        in_reply_to TEXT,
        sensitivity TEXT NOT NULL,
        urgency TEXT NOT NULL,
        schema_id INTEGER,
        src_topic TEXT,
        src_partition INTEGER,
        src_offset BIGINT,
        redacted TEXT NOT NULL,
        headers TEXT NOT NULL,
        stored_at BIGINT NOT NULL,
        record TEXT NOT NULL,
        sender_rank INTEGER NOT NULL,
        PRIMARY KEY (event_id, source)
    )"""


def _keys_table(name: str, events: str, *, if_not_exists: str = "") -> str:
    return f"""CREATE TABLE {if_not_exists}{name} (
        event_id TEXT NOT NULL,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        label TEXT NOT NULL,
        PRIMARY KEY (event_id, source, kind, value),
        FOREIGN KEY (event_id, source) REFERENCES {events} (event_id, source)
    )"""


_META_DDL = "CREATE TABLE IF NOT EXISTS so_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
_DDL = (
    _events_table("so_events", if_not_exists="IF NOT EXISTS "),
    "CREATE INDEX IF NOT EXISTS so_events_occurred ON so_events (occurred_at)",
    "CREATE INDEX IF NOT EXISTS so_events_type ON so_events (event_type, occurred_at)",
    "CREATE INDEX IF NOT EXISTS so_events_reply ON so_events (in_reply_to)",
    "CREATE INDEX IF NOT EXISTS so_events_case ON so_events (case_ref)",
    _keys_table("so_event_keys", "so_events", if_not_exists="IF NOT EXISTS "),
    "CREATE INDEX IF NOT EXISTS so_event_keys_value ON so_event_keys (kind, value)",
    """CREATE TABLE IF NOT EXISTS so_rejected (
        src_topic TEXT NOT NULL,
        src_partition INTEGER NOT NULL,
        src_offset BIGINT NOT NULL,
        event_id TEXT,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        rejected_at BIGINT NOT NULL,
        PRIMARY KEY (src_topic, src_partition, src_offset)
    )""",
    _META_DDL,
)

_EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "source",
    "occurred_at",
    "published_at",
    "case_ref",
    "in_reply_to",
    "sensitivity",
    "urgency",
    "schema_id",
    "src_topic",
    "src_partition",
    "src_offset",
    "redacted",
    "headers",
    "stored_at",
    "record",
    "sender_rank",
)
_V1_COLUMNS = ", ".join(_EVENT_COLUMNS[:-1])
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 1 → 2: the primary key (event_id) becomes (event_id, source); the keys reference both. Every
    # event of a version 1 store was the only one of its id: its sender is the id's first (rank 0).
    2: (
        _events_table("so_events_v2"),
        f"INSERT INTO so_events_v2 ({_V1_COLUMNS}, sender_rank) SELECT {_V1_COLUMNS}, 0 FROM so_events",  # noqa: S608
        _keys_table("so_event_keys_v2", "so_events_v2"),
        "INSERT INTO so_event_keys_v2 (event_id, source, kind, value, label) "
        "SELECT k.event_id, e.source, k.kind, k.value, k.label "
        "FROM so_event_keys k JOIN so_events e ON e.event_id = k.event_id",
        "DROP TABLE so_event_keys",
        "DROP TABLE so_events",
        "ALTER TABLE so_events_v2 RENAME TO so_events",
        "ALTER TABLE so_event_keys_v2 RENAME TO so_event_keys",
    ),
}
"""The statements that bring a store from the version before each key to it; the indexes follow
from :data:`_DDL`."""
_SELECT_EVENTS = f"SELECT {', '.join(_EVENT_COLUMNS)} FROM so_events"  # noqa: S608 (constant columns)
_ORDER = "occurred_at, event_id, source"
_SELECT_KEYED = (
    f"SELECT k.kind, k.value, k.label, {', '.join('e.' + c for c in _EVENT_COLUMNS)} "  # noqa: S608
    "FROM so_event_keys k JOIN so_events e ON e.event_id = k.event_id AND e.source = k.source"
)
EventKey = tuple[str, str]
"""An event's identity in the store: (event id, sender)."""


class UnusableEventError(InputError):
    """A record decoded but cannot be stored (no usable ``meta``): the service records it as rejected."""

    reason = "invalid_event"


# --- values ---------------------------------------------------------------------------------------------


def to_millis(value: Any) -> int:
    """Epoch milliseconds (UTC) of an instant given as an aware datetime, epoch ms or an ISO 8601 string."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not an instant")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    raise TypeError(f"not an instant: {value!r}")


def from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json_text(record: Mapping[str, Any]) -> str:
    """The record as JSON text: instants in RFC 3339 UTC, dates ISO, UUIDs as strings, UTF-8 kept as is."""
    return json.dumps(record, ensure_ascii=False, default=_jsonable, separators=(",", ":"))


@dataclass(frozen=True)
class StoredEvent:
    """One stored event: its meta columns and the record as JSON-decoded data.

    ``sender_rank`` is 0 for the first sender stored under this id (the id's owner, whose event the
    answers ``in_reply_to`` it answer), 1 for a second sender's event under the same id, and so on.
    """

    event_id: str
    event_type: str
    source: str
    occurred_at: datetime
    published_at: datetime
    case_ref: str | None
    in_reply_to: str | None
    sensitivity: str
    urgency: str
    schema_id: int | None
    topic: str | None
    partition: int | None
    offset: int | None
    redacted: tuple[str, ...]
    headers: dict[str, str]
    stored_at: datetime
    record_json: str = field(repr=False)
    sender_rank: int = 0

    @property
    def key(self) -> EventKey:
        """(event id, sender): what identifies the event in the store."""
        return (self.event_id, self.source)

    @property
    def owns_id(self) -> bool:
        """Whether this is the id's first sender's event (the one answers to the id refer to)."""
        return self.sender_rank == 0

    @property
    def record(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.record_json)
        return data


@dataclass(frozen=True)
class RejectedRecord:
    topic: str
    partition: int
    offset: int
    event_id: str | None
    reason: str
    detail: str
    rejected_at: datetime


def _event_from_row(row: Sequence[Any]) -> StoredEvent:
    redacted = str(row[13] or "")
    return StoredEvent(
        event_id=row[0],
        event_type=row[1],
        source=row[2],
        occurred_at=from_millis(int(row[3])),
        published_at=from_millis(int(row[4])),
        case_ref=row[5],
        in_reply_to=row[6],
        sensitivity=row[7],
        urgency=row[8],
        schema_id=row[9],
        topic=row[10],
        partition=row[11],
        offset=row[12],
        redacted=tuple(p for p in (s.strip() for s in redacted.split(",")) if p),
        headers=json.loads(row[14]),
        stored_at=from_millis(int(row[15])),
        record_json=row[16],
        sender_rank=int(row[17]),
    )


def _meta_row(record: Mapping[str, Any]) -> dict[str, Any]:
    meta = record.get("meta")
    if not isinstance(meta, Mapping):
        raise UnusableEventError("the record has no meta")
    try:
        row = {
            "event_id": str(meta["event_id"]),
            "event_type": str(meta["event_type"]),
            "source": str(meta["source"]),
            "occurred_at": to_millis(meta["occurred_at"]),
            "published_at": to_millis(meta["published_at"]),
            "case_ref": str(meta["case_ref"]) if meta.get("case_ref") is not None else None,
            "in_reply_to": str(meta["in_reply_to"]) if meta.get("in_reply_to") is not None else None,
            "sensitivity": str(meta.get("sensitivity") or "RED"),
            "urgency": str(meta.get("urgency") or "ROUTINE"),
        }
    except KeyError as exc:
        raise UnusableEventError(f"meta.{exc.args[0]} is missing") from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise UnusableEventError(f"meta has an unusable value: {exc}") from exc
    if not row["event_id"] or not row["event_type"]:
        raise UnusableEventError("meta.event_id and meta.event_type must not be empty")
    return row


# --- the database ---------------------------------------------------------------------------------------


class _Cursor(Protocol):
    rowcount: int

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class _Connection(Protocol):
    def cursor(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class _Dialect:
    """What differs between SQLite and PostgreSQL here: the placeholder, and how errors look."""

    name: str
    placeholder: str
    errors: tuple[type[BaseException], ...]

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def insert_ignore(self, table: str, columns: Sequence[str], conflict: Sequence[str]) -> str:
        """``INSERT … ON CONFLICT DO NOTHING`` (SQLite ≥ 3.24 and PostgreSQL ≥ 9.5 both speak it)."""
        marks = ", ".join("?" for _ in columns)
        return self.sql(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608 (constant names)
            f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
        )

    def upsert(self, table: str, columns: Sequence[str], conflict: Sequence[str]) -> str:
        marks = ", ".join("?" for _ in columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in conflict)
        return self.sql(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608 (constant names)
            f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
        )


def _connect(url: str, *, create: bool) -> tuple[_Connection, _Dialect]:
    parsed = parse_store_url(url, setting="BUS389_STORE__STANDING_OFFICE_URL")
    if parsed.kind == "sqlite":
        path = parsed.path
        if path != ":memory:":
            file = Path(path)
            if not create and not file.exists():
                raise StoreError(
                    f"no standing office store at {file}: start `bus389 serve standing-office` first "
                    "(or set BUS389_STORE__STANDING_OFFICE_URL)"
                )
            file.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = connect_wal(path, timeout_s=30.0)
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store {path}: {exc}") from exc
        return cast(_Connection, conn), _Dialect("sqlite", "?", (sqlite3.Error,))
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigError(
            "a postgresql:// store URL needs psycopg 3: pip install -e '.[postgres]' in the bus389 checkout"
        ) from exc
    try:
        pg = psycopg.connect(parsed.conninfo, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the PostgreSQL store: {mask_secrets(str(exc))}") from exc
    return cast(_Connection, pg), _Dialect("postgresql", "%s", (psycopg.Error,))


class StandingOfficeStore:
    """The standing office's events, idempotent by event id. Use as a context manager (closes)."""

    def __init__(
        self, conn: _Connection, dialect: _Dialect, *, ignore_domains: Iterable[str] | None = None
    ) -> None:
        self._conn = conn
        self._dialect = dialect
        self._ignore_domains = tuple(IctSettings().never_block if ignore_domains is None else ignore_domains)
        self._create_schema()

    @classmethod
    def open(
        cls, url: str, *, create: bool = True, ignore_domains: Iterable[str] | None = None
    ) -> StandingOfficeStore:
        """Open (and, with ``create``, make) the store at ``url``; ``ignore_domains`` are not keys."""
        conn, dialect = _connect(url, create=create)
        return cls(conn, dialect, ignore_domains=ignore_domains)

    @property
    def dialect(self) -> str:
        return self._dialect.name

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StandingOfficeStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------------------

    def _run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """Execute statements in one transaction; return each one's rowcount."""
        counts: list[int] = []
        try:
            cur = self._conn.cursor()
            for sql, params in statements:
                cur.execute(sql, tuple(params))
                counts.append(int(cur.rowcount))
            self._conn.commit()
        except self._dialect.errors as exc:
            self._rollback()
            raise StoreError(f"the standing office store ({self.dialect}) failed: {exc}") from exc
        return counts

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            cur = self._conn.cursor()
            cur.execute(self._dialect.sql(sql), tuple(params))
            rows = list(cur.fetchall())
            self._conn.commit()
        except self._dialect.errors as exc:
            self._rollback()
            raise StoreError(f"the standing office store ({self.dialect}) failed: {exc}") from exc
        return rows

    def _rollback(self) -> None:
        try:
            self._conn.rollback()
        except self._dialect.errors:
            pass  # the connection is broken; the original error is what the caller needs

    def _create_schema(self) -> None:
        """Create the tables, or migrate an older store in place: one transaction, under a write lock."""
        sqlite = self._dialect.name == "sqlite"
        try:
            cur = self._conn.cursor()
            if sqlite:
                # Taken before the version is read: a second process waits here, then finds it current.
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(_META_DDL)
            if not sqlite:
                cur.execute("LOCK TABLE so_meta IN SHARE ROW EXCLUSIVE MODE")
            cur.execute(self._dialect.sql("SELECT value FROM so_meta WHERE name = ?"), ("schema_version",))
            found = cur.fetchone()
            version = int(found[0]) if found else SCHEMA_VERSION
            if version <= SCHEMA_VERSION:
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[target]:
                        cur.execute(statement)
                for ddl in _DDL:
                    cur.execute(ddl)
                cur.execute(
                    self._dialect.upsert("so_meta", ("name", "value"), ("name",)),
                    ("schema_version", str(SCHEMA_VERSION)),
                )
                self._conn.commit()
        except self._dialect.errors as exc:
            self._rollback()
            raise StoreError(f"the standing office store ({self.dialect}) failed: {exc}") from exc
        except BaseException:
            self._rollback()
            raise
        if version > SCHEMA_VERSION:
            self._rollback()
            raise StoreError(
                f"the standing office store has schema version {version}, newer than this bus389 "
                f"knows ({SCHEMA_VERSION}): upgrade bus389"
            )

    # --- writing --------------------------------------------------------------------------------------

    def add_event(
        self,
        record: Mapping[str, Any],
        *,
        schema_id: int | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        headers: Mapping[str, bytes | str] | None = None,
    ) -> bool:
        """Store one event record (Avro-decoded or JSON form) with its keys; False if already stored.

        Already stored: its sender's event under its id is (a replay). Another sender's event under the
        same id stays as it was; this one is stored beside it, ranked after it (``sender_rank``).
        Durable when it returns (committed). Raises :class:`UnusableEventError` for a record without a
        usable ``meta`` and :class:`~bus389.errors.StoreError` (retriable) when the database fails.
        """
        row = _meta_row(record)
        text_headers = {
            str(k): v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)
            for k, v in (headers or {}).items()
        }
        try:
            record_text = to_json_text(record)
        except (TypeError, ValueError) as exc:
            raise UnusableEventError(f"the record cannot be stored as JSON: {exc}") from exc
        row.update(
            schema_id=schema_id,
            src_topic=topic,
            src_partition=partition,
            src_offset=offset,
            redacted=text_headers.get(REDACTED_HEADER, ""),
            headers=json.dumps(text_headers, ensure_ascii=False, sort_keys=True),
            stored_at=int(time.time() * 1000),
            record=record_text,
        )
        given = _EVENT_COLUMNS[:-1]
        # The rank is counted in the insert itself: the senders already stored under this id.
        insert = self._dialect.sql(
            f"INSERT INTO so_events ({', '.join(_EVENT_COLUMNS)}) "  # noqa: S608 (constant names)
            f"VALUES ({', '.join('?' for _ in given)}, (SELECT COUNT(*) FROM so_events WHERE event_id = ?)) "
            "ON CONFLICT (event_id, source) DO NOTHING"
        )
        keys = extract_keys(row["event_type"], record, ignore_domains=self._ignore_domains)
        key_sql = self._dialect.insert_ignore(
            "so_event_keys",
            ("event_id", "source", "kind", "value", "label"),
            ("event_id", "source", "kind", "value"),
        )
        statements: list[tuple[str, Sequence[Any]]] = [(insert, [*(row[c] for c in given), row["event_id"]])]
        statements += [(key_sql, (row["event_id"], row["source"], k.kind, k.value, k.label)) for k in keys]
        # The keys go in the same transaction; when the event was already stored they are no-ops too.
        counts = self._run(statements)
        return counts[0] == 1

    def add_rejected(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        reason: str,
        detail: str,
        event_id: str | None = None,
    ) -> bool:
        """Record an inbox record the service skips; False if that (topic, partition, offset) is known."""
        sql = self._dialect.insert_ignore(
            "so_rejected",
            ("src_topic", "src_partition", "src_offset", "event_id", "reason", "detail", "rejected_at"),
            ("src_topic", "src_partition", "src_offset"),
        )
        params = (topic, partition, offset, event_id, reason, detail, int(time.time() * 1000))
        return self._run([(sql, params)])[0] == 1

    def set_meta(self, name: str, value: str) -> None:
        """Remember ``name`` = ``value`` in ``so_meta`` (e.g. which six-monthly report was mailed)."""
        self._run([(self._dialect.upsert("so_meta", ("name", "value"), ("name",)), (name, value))])

    def get_meta(self, name: str) -> str | None:
        rows = self._query("SELECT value FROM so_meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    # --- reading --------------------------------------------------------------------------------------

    @property
    def ignore_domains(self) -> tuple[str, ...]:
        """The platforms' own domains, never a correlation key (the ICT ``never_block`` setting)."""
        return self._ignore_domains

    def count_events(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM so_events")[0][0])

    def get(self, event_id: str, source: str | None = None) -> StoredEvent | None:
        """The event ``source`` sent under ``event_id``; without ``source``, the id's first sender's."""
        if source is not None:
            rows = self._query(_SELECT_EVENTS + " WHERE event_id = ? AND source = ?", (event_id, source))
        else:
            rows = self._query(
                _SELECT_EVENTS + " WHERE event_id = ? ORDER BY sender_rank, stored_at, source", (event_id,)
            )
        return _event_from_row(rows[0]) if rows else None

    def with_id(self, event_id: str) -> list[StoredEvent]:
        """Every sender's event under ``event_id``, the id's first sender's first."""
        rows = self._query(
            _SELECT_EVENTS + " WHERE event_id = ? ORDER BY sender_rank, stored_at, source", (event_id,)
        )
        return [_event_from_row(r) for r in rows]

    def all_events(self) -> list[StoredEvent]:
        return [_event_from_row(r) for r in self._query(_SELECT_EVENTS + f" ORDER BY {_ORDER}")]

    def events_between(self, start: datetime, end: datetime) -> list[StoredEvent]:
        """Events with ``start <= meta.occurred_at < end``, oldest first."""
        rows = self._query(
            _SELECT_EVENTS + f" WHERE occurred_at >= ? AND occurred_at < ? ORDER BY {_ORDER}",
            (to_millis(start), to_millis(end)),
        )
        return [_event_from_row(r) for r in rows]

    def events_of_types_before(self, event_types: Iterable[str], end: datetime) -> list[StoredEvent]:
        """Events of the given types with ``meta.occurred_at < end``, oldest first."""
        types = sorted(set(event_types))
        if not types:
            return []
        marks = ", ".join("?" for _ in types)
        rows = self._query(
            _SELECT_EVENTS + f" WHERE event_type IN ({marks}) AND occurred_at < ? ORDER BY {_ORDER}",
            (*types, to_millis(end)),
        )
        return [_event_from_row(r) for r in rows]

    def replies(self, event_ids: Iterable[str], case_refs: Iterable[str]) -> list[StoredEvent]:
        """Events answering any of ``event_ids`` (``meta.in_reply_to``) or sharing one of ``case_refs``.

        An answer names an id, not a sender: it answers the id's first sender's event
        (:attr:`StoredEvent.owns_id`), as the router delivered it.
        """
        found: dict[EventKey, StoredEvent] = {}
        for column, values in (("in_reply_to", sorted(set(event_ids))), ("case_ref", sorted(set(case_refs)))):
            for chunk in _chunks(values):
                marks = ", ".join("?" for _ in chunk)
                rows = self._query(_SELECT_EVENTS + f" WHERE {column} IN ({marks})", chunk)
                for r in rows:
                    event = _event_from_row(r)
                    found[event.key] = event
        return sorted(found.values(), key=lambda e: (e.occurred_at, e.event_id, e.source))

    def keys_of(self, events: Iterable[EventKey]) -> dict[EventKey, list[CorrelationKey]]:
        """The correlation keys of the given events (by :attr:`StoredEvent.key`)."""
        wanted = set(events)
        keys: dict[EventKey, list[CorrelationKey]] = {}
        for chunk in _chunks(sorted({event_id for event_id, _ in wanted})):
            marks = ", ".join("?" for _ in chunk)
            rows = self._query(
                "SELECT event_id, source, kind, value, label FROM so_event_keys "  # noqa: S608 (placeholders only)
                f"WHERE event_id IN ({marks}) ORDER BY event_id, source, kind, value",
                chunk,
            )
            for event_id, source, kind, value, label in rows:
                if (event_id, source) in wanted:
                    keys.setdefault((event_id, source), []).append(CorrelationKey(kind, value, label))
        return keys

    def events_with_keys(self, keys: Iterable[tuple[str, str]]) -> list[tuple[StoredEvent, CorrelationKey]]:
        """Every stored event carrying one of ``keys`` (``(kind, normalised value)``), whenever it occurred.

        One pair per (event, key) found, oldest event first: the correlation across time.
        """
        wanted = sorted(set(keys))
        found: list[tuple[StoredEvent, CorrelationKey]] = []
        for kind in sorted({k for k, _ in wanted}):
            values = [v for k, v in wanted if k == kind]
            for chunk in _chunks(values):
                marks = ", ".join("?" for _ in chunk)
                rows = self._query(
                    _SELECT_KEYED + f" WHERE k.kind = ? AND k.value IN ({marks})",
                    (kind, *chunk),
                )
                found += [(_event_from_row(r[3:]), CorrelationKey(r[0], r[1], r[2])) for r in rows]
        return sorted(
            found, key=lambda pair: (pair[0].occurred_at, pair[0].event_id, pair[0].source, pair[1])
        )

    def rejected(self) -> list[RejectedRecord]:
        rows = self._query(
            "SELECT src_topic, src_partition, src_offset, event_id, reason, detail, rejected_at "
            "FROM so_rejected ORDER BY rejected_at, src_topic, src_partition, src_offset"
        )
        return [
            RejectedRecord(r[0], int(r[1]), int(r[2]), r[3], r[4], r[5], from_millis(int(r[6]))) for r in rows
        ]


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for i in range(0, len(values), _CHUNK):
        yield list(values[i : i + _CHUNK])
