"""Replies in the ICT store: events of other agencies answering ICT's own (``in_reply_to``), as they came."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bus389.consumers.ict.store._columns import SORTED_JSON_OBJECT, Table, stored_as
from bus389.consumers.ict.store.connection import StoreConnection

__all__ = ["REPLIES", "ReplyQueries", "ReplyRow"]


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
    record: dict[str, Any] = field(metadata=stored_as(SORTED_JSON_OBJECT))
    """The event as JSON (instants and dates in ISO 8601, ids as text)."""


REPLIES = Table("replies", ReplyRow)


class ReplyQueries(StoreConnection):
    """Keep replies once and list them."""

    def insert_reply(self, row: ReplyRow) -> bool:
        """Keep a reply; False (and nothing written) when its sender's event of that id is kept."""
        return self._insert(REPLIES.insert(REPLIES.values(row)))

    def replies(self) -> list[ReplyRow]:
        rows = self._read("SELECT * FROM replies ORDER BY received_at, event_id, rowid")
        return [REPLIES.load(r) for r in rows]
