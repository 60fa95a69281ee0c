"""Poison records of the ICT inbox: kept once by position, with why they could not be used."""

from __future__ import annotations

from dataclasses import dataclass

from bus389.consumers.ict.store._columns import Table
from bus389.consumers.ict.store.connection import StoreConnection

__all__ = ["REJECTED_EVENTS", "RejectedEventQueries", "RejectedEventRow"]


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


REJECTED_EVENTS = Table("rejected_events", RejectedEventRow)


class RejectedEventQueries(StoreConnection):
    """Record poison records and list them."""

    def record_rejected_event(self, row: RejectedEventRow) -> bool:
        """Record a poison record of the inbox once (by topic, partition, offset)."""
        return self._insert(REJECTED_EVENTS.insert(REJECTED_EVENTS.values(row)))

    def rejected_events(self) -> list[RejectedEventRow]:
        rows = self._read("SELECT * FROM rejected_events ORDER BY id")
        return [REJECTED_EVENTS.load(r) for r in rows]
