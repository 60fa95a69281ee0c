"""The transactional outbox: each decision's ``domain_block_result``, written with the decision, sent later.

A result is encoded once when the decision is taken (in the same transaction) and published as is by
the service's drain, which marks it sent; ``needs_seq`` holds it back until the blocklist files show
the change it reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bus389.consumers.ict.store._columns import BLOB, HEADERS, JSON_OBJECT, Table, stored_as
from bus389.consumers.ict.store.connection import StoreConnection
from bus389.consumers.ict.store.requests import RequestKey, RequestRow

__all__ = ["OUTBOX", "OutboxQueries", "OutboxRow"]


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
    key: bytes = field(metadata=stored_as(BLOB))
    value: bytes = field(metadata=stored_as(BLOB))
    headers: list[tuple[str, bytes]] = field(metadata=stored_as(HEADERS))
    record: dict[str, Any] = field(metadata=stored_as(JSON_OBJECT))
    sent_at: int | None
    sent_position: str | None


OUTBOX = Table("outbox", OutboxRow)


class OutboxQueries(StoreConnection):
    """Add results, find the unsent ones, mark them sent."""

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
        # ``id`` is SQLite's; ``sent_at`` and ``sent_position`` are set by mark_sent.
        return self._insert(
            OUTBOX.insert(
                {
                    "event_id": event_id,
                    "request_id": request.event_id,
                    "decision_kind": decision_kind,
                    "outcome": outcome,
                    "requester": request.requester,
                    "request_published_at": request.published_at,
                    "needs_seq": needs_seq,
                    "created_at": created_at,
                    "key": key,
                    "value": value,
                    "headers": headers,
                    "record": record,
                }
            )
        )

    def unsent(self, *, up_to_seq: int | None = None, limit: int = 500) -> list[OutboxRow]:
        """Results not yet published, oldest first; with ``up_to_seq`` only those the files already show."""
        if up_to_seq is None:
            rows = self._read("SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?", (limit,))
        else:
            rows = self._read(
                "SELECT * FROM outbox WHERE sent_at IS NULL AND needs_seq <= ? ORDER BY id LIMIT ?",
                (up_to_seq, limit),
            )
        return [OUTBOX.load(r) for r in rows]

    def outbox(self, request: RequestKey | None = None) -> list[OutboxRow]:
        if request is None:
            rows = self._read("SELECT * FROM outbox ORDER BY id")
        else:
            rows = self._read(
                "SELECT * FROM outbox WHERE request_id = ? AND requester = ? ORDER BY id", request
            )
        return [OUTBOX.load(r) for r in rows]

    def mark_sent(self, event_id: str, sent_at: int, position: str) -> None:
        self._write(
            "UPDATE outbox SET sent_at = ?, sent_position = ? WHERE event_id = ? AND sent_at IS NULL",
            (sent_at, position, event_id),
        )
