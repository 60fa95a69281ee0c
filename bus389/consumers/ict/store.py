"""The ICT service's store: requests, their targets, decisions, the result outbox, the blocklist state,
and the leads and replies ICT keeps for its operator (see :mod:`bus389.consumers.ict.leads`).

SQLite by default (``settings.store.ict_url`` = ``sqlite:///relative/path`` or ``sqlite:////abs/path``),
in WAL mode with ``synchronous=FULL``: a committed transaction survives a crash, which is what lets the
service commit its Kafka offsets right after it. The service and the operator's commands open the same
file at the same time; every write is one ``BEGIN IMMEDIATE`` transaction (:meth:`IctStore.transaction`),
so they serialise on SQLite's write lock and wait for each other (``busy_timeout``) instead of failing.

The schema is migrated in code: ``PRAGMA user_version`` is the number of :data:`MIGRATIONS` applied.
All SQL of the ICT service lives in this module.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bus389.errors import ConfigError, StoreError
from bus389.logs import mask_secrets
from bus389.sqlite import connect_wal

__all__ = [
    "MIGRATIONS",
    "LeadRow",
    "LeadState",
    "OutboxRow",
    "RejectedEventRow",
    "ReplyRow",
    "RequestRow",
    "RequestState",
    "TargetRow",
    "TargetState",
    "IctStore",
    "open_store",
    "sqlite_path",
]


class RequestState:
    """The states of a request (stored as text)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNBLOCKED = "unblocked"
    ALL = (PENDING, APPROVED, REJECTED, EXPIRED, UNBLOCKED)


class TargetState:
    """The states of one target of a request (stored as text)."""

    ACCEPTED = "accepted"
    """Passed screening, waiting for the operator's decision."""
    BLOCKED = "blocked"
    REJECTED = "rejected"
    EXPIRED = "expired"
    LIFTED = "lifted"
    """Lifted by an UNBLOCK request (``lifted_by``)."""
    DONE = "done"
    """A target of an UNBLOCK request once the request was applied."""


MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE requests (
        event_id        TEXT PRIMARY KEY,
        requester       TEXT NOT NULL,
        action          TEXT NOT NULL,
        reason          TEXT NOT NULL,
        legal_basis     TEXT NOT NULL,
        case_ref        TEXT,
        sensitivity     TEXT NOT NULL,
        urgency         TEXT NOT NULL,
        violation_kinds TEXT NOT NULL,
        items           TEXT NOT NULL,
        occurred_at     INTEGER NOT NULL,
        published_at    INTEGER NOT NULL,
        expires_at      INTEGER,
        received_at     INTEGER NOT NULL,
        origin          TEXT NOT NULL,
        state           TEXT NOT NULL,
        decided_at      INTEGER,
        decided_by      TEXT,
        note            TEXT
    );
    CREATE INDEX requests_state ON requests (state, received_at);
    CREATE TABLE targets (
        request_id  TEXT NOT NULL REFERENCES requests (event_id),
        position    INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        value       TEXT NOT NULL,
        state       TEXT NOT NULL,
        changed_at  INTEGER NOT NULL,
        lifted_by   TEXT,
        PRIMARY KEY (request_id, kind, value)
    );
    CREATE INDEX targets_value ON targets (kind, value, state);
    CREATE TABLE refusals (
        request_id  TEXT NOT NULL REFERENCES requests (event_id),
        position    INTEGER NOT NULL,
        item        TEXT NOT NULL,
        reason      TEXT NOT NULL,
        PRIMARY KEY (request_id, position)
    );
    CREATE TABLE decisions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id  TEXT NOT NULL REFERENCES requests (event_id),
        kind        TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        decided_at  INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        note        TEXT,
        UNIQUE (request_id, kind)
    );
    CREATE TABLE outbox (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id      TEXT NOT NULL UNIQUE,
        request_id    TEXT NOT NULL REFERENCES requests (event_id),
        decision_kind TEXT NOT NULL,
        outcome       TEXT NOT NULL,
        requester     TEXT NOT NULL,
        request_published_at INTEGER NOT NULL,
        needs_seq     INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        key           BLOB NOT NULL,
        value         BLOB NOT NULL,
        headers       TEXT NOT NULL,
        record        TEXT NOT NULL,
        sent_at       INTEGER,
        sent_position TEXT
    );
    CREATE INDEX outbox_unsent ON outbox (sent_at, id);
    CREATE TABLE rejected_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        topic       TEXT NOT NULL,
        partition   INTEGER NOT NULL,
        "offset"    INTEGER NOT NULL,
        event_id    TEXT,
        event_type  TEXT,
        reason      TEXT NOT NULL,
        detail      TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        UNIQUE (topic, partition, "offset")
    );
    CREATE TABLE kv (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO kv (name, value) VALUES
        ('blocklist_seq', '0'), ('written_seq', '0'), ('serial', '0'), ('written_hash', '');
    """,
    # 2: suspect_seller leads for inspection (plan II.6) and replies to ICT's own events.
    """
    CREATE TABLE leads (
        event_id        TEXT PRIMARY KEY,
        sender          TEXT NOT NULL,
        seller_name     TEXT NOT NULL,
        seller_tax_code TEXT,
        domains         TEXT NOT NULL,
        accounts        TEXT NOT NULL,
        evidence_urls   TEXT NOT NULL,
        goods           TEXT NOT NULL,
        violation_kinds TEXT NOT NULL,
        summary         TEXT NOT NULL,
        case_ref        TEXT,
        sensitivity     TEXT NOT NULL,
        urgency         TEXT NOT NULL,
        rule            TEXT NOT NULL,
        published_at    INTEGER NOT NULL,
        received_at     INTEGER NOT NULL,
        origin          TEXT NOT NULL,
        state           TEXT NOT NULL,
        inspected_at    INTEGER,
        inspected_by    TEXT,
        note            TEXT
    );
    CREATE INDEX leads_state ON leads (state, received_at);
    CREATE TABLE replies (
        event_id     TEXT PRIMARY KEY,
        event_type   TEXT NOT NULL,
        sender       TEXT NOT NULL,
        in_reply_to  TEXT,
        case_ref     TEXT,
        rule         TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        received_at  INTEGER NOT NULL,
        origin       TEXT NOT NULL,
        record       TEXT NOT NULL
    );
    CREATE INDEX replies_received ON replies (received_at);
    """,
)
"""Schema migrations, applied in order; never edit one that has shipped, append a new one."""

_BUSY_TIMEOUT_MS = 30_000


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///path`` URL (``sqlite:////abs`` for an absolute path, ``:memory:``)."""
    head = "sqlite:///"
    if not url.startswith(head):
        scheme = url.split(":", 1)[0]
        raise ConfigError(
            "the ICT store needs a sqlite:/// URL (BUS389_STORE__ICT_URL), "
            f"not {scheme!r}: {mask_secrets(url)!r}"
        )
    path = url[len(head) :]
    if not path:
        raise ConfigError(f"the ICT store URL names no file: {url!r}")
    return path


class LeadState:
    """The states of a lead (stored as text)."""

    NEW = "new"
    """Not yet inspected: what `bus389 ict pending` counts."""
    INSPECTED = "inspected"
    ALL = (NEW, INSPECTED)


@dataclass(frozen=True)
class LeadRow:
    """One ``suspect_seller`` kept for ICT's inspection."""

    event_id: str
    sender: str
    seller_name: str
    seller_tax_code: str | None
    domains: tuple[str, ...]
    accounts: tuple[dict[str, str | None], ...]
    """Every account of the seller as sent: ``{"platform", "account", "url"}``."""
    evidence_urls: tuple[str, ...]
    goods: str
    violation_kinds: tuple[str, ...]
    summary: str
    case_ref: str | None
    sensitivity: str
    urgency: str
    rule: str
    """The routing rule that sent it here (the router's ``bus389_rule`` header), "" if none."""
    published_at: int
    received_at: int
    origin: str
    state: str
    inspected_at: int | None = None
    inspected_by: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ReplyRow:
    """One event that answers an ICT event (``in_reply_to``), kept as it came."""

    event_id: str
    event_type: str
    sender: str
    in_reply_to: str | None
    case_ref: str | None
    rule: str
    published_at: int
    received_at: int
    origin: str
    record: dict[str, Any]
    """The event as JSON (instants and dates in ISO 8601, ids as text)."""


@dataclass(frozen=True)
class RequestRow:
    """One domain-block request as stored."""

    event_id: str
    requester: str
    action: str
    reason: str
    legal_basis: str
    case_ref: str | None
    sensitivity: str
    urgency: str
    violation_kinds: tuple[str, ...]
    items: dict[str, list[str]]
    """The request's ``domains``, ``urls`` and ``ip_addresses`` exactly as sent."""
    occurred_at: int
    published_at: int
    expires_at: int | None
    received_at: int
    origin: str
    state: str
    decided_at: int | None
    decided_by: str | None
    note: str | None

    @property
    def all_items(self) -> list[str]:
        return [
            *self.items.get("domains", []),
            *self.items.get("urls", []),
            *self.items.get("ip_addresses", []),
        ]


@dataclass(frozen=True)
class TargetRow:
    request_id: str
    position: int
    kind: str
    value: str
    state: str
    changed_at: int
    lifted_by: str | None


@dataclass(frozen=True)
class OutboxRow:
    """One ``domain_block_result`` waiting to be (or already) published, encoded once, sent as is."""

    id: int
    event_id: str
    request_id: str
    decision_kind: str
    outcome: str
    requester: str
    request_published_at: int
    needs_seq: int
    created_at: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    record: dict[str, Any]
    sent_at: int | None
    sent_position: str | None


@dataclass(frozen=True)
class RejectedEventRow:
    topic: str
    partition: int
    offset: int
    event_id: str | None
    event_type: str | None
    reason: str
    detail: str
    recorded_at: int


def _request(row: sqlite3.Row) -> RequestRow:
    return RequestRow(
        event_id=row["event_id"],
        requester=row["requester"],
        action=row["action"],
        reason=row["reason"],
        legal_basis=row["legal_basis"],
        case_ref=row["case_ref"],
        sensitivity=row["sensitivity"],
        urgency=row["urgency"],
        violation_kinds=tuple(json.loads(row["violation_kinds"])),
        items=json.loads(row["items"]),
        occurred_at=row["occurred_at"],
        published_at=row["published_at"],
        expires_at=row["expires_at"],
        received_at=row["received_at"],
        origin=row["origin"],
        state=row["state"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
        note=row["note"],
    )


def _target(row: sqlite3.Row) -> TargetRow:
    return TargetRow(
        request_id=row["request_id"],
        position=row["position"],
        kind=row["kind"],
        value=row["value"],
        state=row["state"],
        changed_at=row["changed_at"],
        lifted_by=row["lifted_by"],
    )


def _lead(row: sqlite3.Row) -> LeadRow:
    return LeadRow(
        event_id=row["event_id"],
        sender=row["sender"],
        seller_name=row["seller_name"],
        seller_tax_code=row["seller_tax_code"],
        domains=tuple(json.loads(row["domains"])),
        accounts=tuple(json.loads(row["accounts"])),
        evidence_urls=tuple(json.loads(row["evidence_urls"])),
        goods=row["goods"],
        violation_kinds=tuple(json.loads(row["violation_kinds"])),
        summary=row["summary"],
        case_ref=row["case_ref"],
        sensitivity=row["sensitivity"],
        urgency=row["urgency"],
        rule=row["rule"],
        published_at=row["published_at"],
        received_at=row["received_at"],
        origin=row["origin"],
        state=row["state"],
        inspected_at=row["inspected_at"],
        inspected_by=row["inspected_by"],
        note=row["note"],
    )


def _reply(row: sqlite3.Row) -> ReplyRow:
    return ReplyRow(
        event_id=row["event_id"],
        event_type=row["event_type"],
        sender=row["sender"],
        in_reply_to=row["in_reply_to"],
        case_ref=row["case_ref"],
        rule=row["rule"],
        published_at=row["published_at"],
        received_at=row["received_at"],
        origin=row["origin"],
        record=json.loads(row["record"]),
    )


def _outbox(row: sqlite3.Row) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        event_id=row["event_id"],
        request_id=row["request_id"],
        decision_kind=row["decision_kind"],
        outcome=row["outcome"],
        requester=row["requester"],
        request_published_at=row["request_published_at"],
        needs_seq=row["needs_seq"],
        created_at=row["created_at"],
        key=bytes(row["key"]),
        value=bytes(row["value"]),
        headers=[(name, value.encode("utf-8")) for name, value in json.loads(row["headers"])],
        record=json.loads(row["record"]),
        sent_at=row["sent_at"],
        sent_position=row["sent_position"],
    )


class IctStore:
    """The ICT store on one SQLite connection; close it, or use it as a context manager.

    Reads may happen anywhere; writes only inside :meth:`transaction`.
    """

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._db = connection
        self.path = path
        self._in_transaction = False

    # --- lifecycle ------------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> IctStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this bus389 knows "
                f"({len(MIGRATIONS)}): upgrade bus389"
            )
        if current == len(MIGRATIONS):
            return
        with self.transaction():
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = self.schema_version
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in _statements(script):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[IctStore]:
        """One ``BEGIN IMMEDIATE`` transaction: committed when the block ends, rolled back on error."""
        if self._in_transaction:
            raise RuntimeError("nested ICT store transaction")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot begin a transaction: {exc}") from exc
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._in_transaction = False
            self._db.execute("ROLLBACK")
            raise
        self._in_transaction = False
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._db.execute("ROLLBACK")
            raise StoreError(f"{self.path}: commit failed: {exc}") from exc

    def _write(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        if not self._in_transaction:
            raise RuntimeError("ICT store write outside a transaction")
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    # --- counters ---------------------------------------------------------------------------------------

    def counter(self, name: str) -> int:
        rows = self._read("SELECT value FROM kv WHERE name = ?", (name,))
        return int(rows[0]["value"]) if rows else 0

    def text(self, name: str) -> str:
        rows = self._read("SELECT value FROM kv WHERE name = ?", (name,))
        return str(rows[0]["value"]) if rows else ""

    def set_value(self, name: str, value: int | str) -> None:
        self._write(
            "INSERT INTO kv (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, str(value)),
        )

    def bump_blocklist_seq(self) -> int:
        """Note that the blocklist changed; returns the new change number (results wait for it)."""
        seq = self.counter("blocklist_seq") + 1
        self.set_value("blocklist_seq", seq)
        return seq

    # --- requests ---------------------------------------------------------------------------------------

    def insert_request(self, row: RequestRow) -> bool:
        """Insert a new request; False (and nothing written) when its event id is already stored."""
        cursor = self._write(
            "INSERT OR IGNORE INTO requests (event_id, requester, action, reason, legal_basis, case_ref, "
            "sensitivity, urgency, violation_kinds, items, occurred_at, published_at, expires_at, "
            "received_at, origin, state, decided_at, decided_by, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.event_id,
                row.requester,
                row.action,
                row.reason,
                row.legal_basis,
                row.case_ref,
                row.sensitivity,
                row.urgency,
                json.dumps(list(row.violation_kinds)),
                json.dumps(row.items, ensure_ascii=False),
                row.occurred_at,
                row.published_at,
                row.expires_at,
                row.received_at,
                row.origin,
                row.state,
                row.decided_at,
                row.decided_by,
                row.note,
            ),
        )
        return cursor.rowcount == 1

    def set_request_state(
        self, event_id: str, state: str, *, decided_at: int, decided_by: str, note: str | None
    ) -> None:
        self._write(
            "UPDATE requests SET state = ?, decided_at = ?, decided_by = ?, note = ? WHERE event_id = ?",
            (state, decided_at, decided_by, note, event_id),
        )

    def request(self, event_id: str) -> RequestRow | None:
        rows = self._read("SELECT * FROM requests WHERE event_id = ?", (event_id,))
        return _request(rows[0]) if rows else None

    def find_requests(self, id_prefix: str) -> list[RequestRow]:
        """Requests whose event id starts with ``id_prefix`` (operators type the first characters)."""
        escaped = id_prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._read(
            "SELECT * FROM requests WHERE event_id LIKE ? ESCAPE '\\' ORDER BY received_at LIMIT 10",
            (escaped + "%",),
        )
        return [_request(r) for r in rows]

    def requests(self, state: str | None = None) -> list[RequestRow]:
        if state is None:
            rows = self._read("SELECT * FROM requests ORDER BY received_at, event_id")
        else:
            rows = self._read(
                "SELECT * FROM requests WHERE state = ? ORDER BY received_at, event_id", (state,)
            )
        return [_request(r) for r in rows]

    def due_to_expire(self, now_ms: int) -> list[RequestRow]:
        """Pending or approved block requests whose ``expires_at`` has passed."""
        rows = self._read(
            "SELECT * FROM requests WHERE state IN (?, ?) AND expires_at IS NOT NULL AND expires_at <= ? "
            "AND action != 'UNBLOCK' ORDER BY expires_at, event_id",
            (RequestState.PENDING, RequestState.APPROVED, now_ms),
        )
        return [_request(r) for r in rows]

    def count_by_state(self) -> dict[str, int]:
        counts = {state: 0 for state in RequestState.ALL}
        for row in self._read("SELECT state, COUNT(*) AS n FROM requests GROUP BY state"):
            counts[row["state"]] = int(row["n"])
        return counts

    def oldest_pending_received_at(self) -> int | None:
        rows = self._read(
            "SELECT MIN(received_at) AS t FROM requests WHERE state = ?", (RequestState.PENDING,)
        )
        value = rows[0]["t"] if rows else None
        return int(value) if value is not None else None

    # --- targets and refusals ---------------------------------------------------------------------------

    def insert_target(
        self, request_id: str, position: int, kind: str, value: str, state: str, now: int
    ) -> None:
        self._write(
            "INSERT INTO targets (request_id, position, kind, value, state, changed_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (request_id, position, kind, value, state, now),
        )

    def insert_refusal(self, request_id: str, position: int, item: str, reason: str) -> None:
        self._write(
            "INSERT INTO refusals (request_id, position, item, reason) VALUES (?, ?, ?, ?)",
            (request_id, position, item, reason),
        )

    def targets(self, request_id: str) -> list[TargetRow]:
        rows = self._read("SELECT * FROM targets WHERE request_id = ? ORDER BY position", (request_id,))
        return [_target(r) for r in rows]

    def refusals(self, request_id: str) -> list[tuple[str, str]]:
        rows = self._read(
            "SELECT item, reason FROM refusals WHERE request_id = ? ORDER BY position", (request_id,)
        )
        return [(r["item"], r["reason"]) for r in rows]

    def set_target_state(
        self,
        request_id: str,
        kind: str,
        value: str,
        state: str,
        now: int,
        *,
        lifted_by: str | None = None,
    ) -> None:
        self._write(
            "UPDATE targets SET state = ?, changed_at = ?, lifted_by = ? "
            "WHERE request_id = ? AND kind = ? AND value = ?",
            (state, now, lifted_by, request_id, kind, value),
        )

    def set_targets_state(self, request_id: str, from_states: Sequence[str], state: str, now: int) -> int:
        marks = ", ".join("?" for _ in from_states)
        cursor = self._write(
            f"UPDATE targets SET state = ?, changed_at = ? WHERE request_id = ? AND state IN ({marks})",  # noqa: S608
            (state, now, request_id, *from_states),
        )
        return cursor.rowcount

    def blocking_targets(self, kind: str, value: str) -> list[TargetRow]:
        """Every blocked target row with this kind and value (one per request blocking it)."""
        rows = self._read(
            "SELECT * FROM targets WHERE kind = ? AND value = ? AND state = ? ORDER BY request_id",
            (kind, value, TargetState.BLOCKED),
        )
        return [_target(r) for r in rows]

    def active_blocks(self) -> list[tuple[TargetRow, RequestRow]]:
        """Every blocked target with its request: what the blocklist is made of."""
        rows = self._read(
            "SELECT t.request_id, t.position, t.kind, t.value, t.state, t.changed_at, t.lifted_by, r.* "
            "FROM targets AS t JOIN requests AS r ON r.event_id = t.request_id "
            "WHERE t.state = ? ORDER BY t.kind, t.value, r.decided_at, r.event_id",
            (TargetState.BLOCKED,),
        )
        return [(_target(r), _request(r)) for r in rows]

    # --- decisions --------------------------------------------------------------------------------------

    def insert_decision(
        self, request_id: str, kind: str, outcome: str, decided_at: int, actor: str, note: str | None
    ) -> bool:
        cursor = self._write(
            "INSERT OR IGNORE INTO decisions (request_id, kind, outcome, decided_at, actor, note) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (request_id, kind, outcome, decided_at, actor, note),
        )
        return cursor.rowcount == 1

    def decisions(self, request_id: str) -> list[dict[str, Any]]:
        rows = self._read("SELECT * FROM decisions WHERE request_id = ? ORDER BY id", (request_id,))
        return [dict(r) for r in rows]

    # --- outbox -----------------------------------------------------------------------------------------

    def insert_outbox(
        self,
        *,
        event_id: str,
        request: RequestRow,
        decision_kind: str,
        outcome: str,
        needs_seq: int,
        created_at: int,
        key: bytes,
        value: bytes,
        headers: Sequence[tuple[str, bytes]],
        record: dict[str, Any],
    ) -> bool:
        cursor = self._write(
            "INSERT OR IGNORE INTO outbox (event_id, request_id, decision_kind, outcome, requester, "
            "request_published_at, needs_seq, created_at, key, value, headers, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                request.event_id,
                decision_kind,
                outcome,
                request.requester,
                request.published_at,
                needs_seq,
                created_at,
                key,
                value,
                json.dumps([(name, v.decode("utf-8")) for name, v in headers]),
                json.dumps(record, ensure_ascii=False),
            ),
        )
        return cursor.rowcount == 1

    def unsent(self, *, up_to_seq: int | None = None, limit: int = 500) -> list[OutboxRow]:
        """Results not yet published, oldest first; with ``up_to_seq`` only those the files already show."""
        if up_to_seq is None:
            rows = self._read("SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?", (limit,))
        else:
            rows = self._read(
                "SELECT * FROM outbox WHERE sent_at IS NULL AND needs_seq <= ? ORDER BY id LIMIT ?",
                (up_to_seq, limit),
            )
        return [_outbox(r) for r in rows]

    def outbox(self, request_id: str | None = None) -> list[OutboxRow]:
        if request_id is None:
            rows = self._read("SELECT * FROM outbox ORDER BY id")
        else:
            rows = self._read("SELECT * FROM outbox WHERE request_id = ? ORDER BY id", (request_id,))
        return [_outbox(r) for r in rows]

    def mark_sent(self, event_id: str, sent_at: int, position: str) -> None:
        self._write(
            "UPDATE outbox SET sent_at = ?, sent_position = ? WHERE event_id = ? AND sent_at IS NULL",
            (sent_at, position, event_id),
        )

    # --- leads and replies ------------------------------------------------------------------------------

    def insert_lead(self, row: LeadRow) -> bool:
        """Keep a new lead; False (and nothing written) when its event id is already stored."""
        cursor = self._write(
            "INSERT OR IGNORE INTO leads (event_id, sender, seller_name, seller_tax_code, domains, accounts, "
            "evidence_urls, goods, violation_kinds, summary, case_ref, sensitivity, urgency, rule, "
            "published_at, received_at, origin, state, inspected_at, inspected_by, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.event_id,
                row.sender,
                row.seller_name,
                row.seller_tax_code,
                json.dumps(list(row.domains), ensure_ascii=False),
                json.dumps(list(row.accounts), ensure_ascii=False),
                json.dumps(list(row.evidence_urls), ensure_ascii=False),
                row.goods,
                json.dumps(list(row.violation_kinds)),
                row.summary,
                row.case_ref,
                row.sensitivity,
                row.urgency,
                row.rule,
                row.published_at,
                row.received_at,
                row.origin,
                row.state,
                row.inspected_at,
                row.inspected_by,
                row.note,
            ),
        )
        return cursor.rowcount == 1

    def leads(self, state: str | None = None) -> list[LeadRow]:
        """Leads in the order they arrived; only those in ``state`` when given."""
        if state is None:
            rows = self._read("SELECT * FROM leads ORDER BY received_at, event_id")
        else:
            rows = self._read("SELECT * FROM leads WHERE state = ? ORDER BY received_at, event_id", (state,))
        return [_lead(r) for r in rows]

    def lead(self, event_id: str) -> LeadRow | None:
        rows = self._read("SELECT * FROM leads WHERE event_id = ?", (event_id,))
        return _lead(rows[0]) if rows else None

    def find_leads(self, id_prefix: str) -> list[LeadRow]:
        """Leads whose event id starts with ``id_prefix`` (operators type the first characters)."""
        escaped = id_prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._read(
            "SELECT * FROM leads WHERE event_id LIKE ? ESCAPE '\\' ORDER BY received_at LIMIT 10",
            (escaped + "%",),
        )
        return [_lead(r) for r in rows]

    def count_leads(self, state: str) -> int:
        rows = self._read("SELECT COUNT(*) AS n FROM leads WHERE state = ?", (state,))
        return int(rows[0]["n"]) if rows else 0

    def set_lead_inspected(
        self, event_id: str, *, inspected_at: int, inspected_by: str, note: str | None
    ) -> None:
        self._write(
            "UPDATE leads SET state = ?, inspected_at = ?, inspected_by = ?, note = ? WHERE event_id = ?",
            (LeadState.INSPECTED, inspected_at, inspected_by, note, event_id),
        )

    def insert_reply(self, row: ReplyRow) -> bool:
        """Keep a reply; False (and nothing written) when its event id is already stored."""
        cursor = self._write(
            "INSERT OR IGNORE INTO replies (event_id, event_type, sender, in_reply_to, case_ref, rule, "
            "published_at, received_at, origin, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.event_id,
                row.event_type,
                row.sender,
                row.in_reply_to,
                row.case_ref,
                row.rule,
                row.published_at,
                row.received_at,
                row.origin,
                json.dumps(row.record, ensure_ascii=False, sort_keys=True),
            ),
        )
        return cursor.rowcount == 1

    def replies(self) -> list[ReplyRow]:
        rows = self._read("SELECT * FROM replies ORDER BY received_at, event_id")
        return [_reply(r) for r in rows]

    # --- poison events ----------------------------------------------------------------------------------

    def record_rejected_event(self, row: RejectedEventRow) -> bool:
        """Record a poison record of the inbox once (by topic, partition, offset)."""
        cursor = self._write(
            'INSERT OR IGNORE INTO rejected_events (topic, partition, "offset", event_id, event_type, '
            "reason, detail, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.topic,
                row.partition,
                row.offset,
                row.event_id,
                row.event_type,
                row.reason,
                row.detail,
                row.recorded_at,
            ),
        )
        return cursor.rowcount == 1

    def rejected_events(self) -> list[RejectedEventRow]:
        rows = self._read("SELECT * FROM rejected_events ORDER BY id")
        return [
            RejectedEventRow(
                topic=r["topic"],
                partition=r["partition"],
                offset=r["offset"],
                event_id=r["event_id"],
                event_type=r["event_type"],
                reason=r["reason"],
                detail=r["detail"],
                recorded_at=r["recorded_at"],
            )
            for r in rows
        ]


def _statements(script: str) -> list[str]:
    # Migrations hold no semicolons inside literals, so a split is exact (and keeps each in the
    # surrounding transaction, which executescript would commit).
    return [s.strip() for s in script.split(";") if s.strip()]


def open_store(url: str) -> IctStore:
    """Open (creating the file and its folder if needed) and migrate the ICT store at ``url``."""
    path = sqlite_path(url)
    if path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the ICT store {path}: {exc}") from exc
    try:
        connection = connect_wal(path, timeout_s=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the ICT store {path}: {exc}") from exc
    store = IctStore(connection, path)
    try:
        store._migrate()
    except BaseException:
        store.close()
        raise
    return store
