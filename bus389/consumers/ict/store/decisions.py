"""The decisions taken on requests, one per (request, kind): what makes taking one twice a no-op.

A request is its (event id, requester) (:data:`~.requests.RequestKey`)."""

from __future__ import annotations

from typing import Any

from bus389.consumers.ict.store.connection import StoreConnection
from bus389.consumers.ict.store.requests import RequestKey

__all__ = ["DecisionQueries"]


class DecisionQueries(StoreConnection):
    """Record a decision once, and list a request's decisions."""

    def insert_decision(
        self, request: RequestKey, kind: str, outcome: str, decided_at: int, actor: str, note: str | None
    ) -> bool:
        cursor = self._write(
            "INSERT OR IGNORE INTO decisions (request_id, requester, kind, outcome, decided_at, actor, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*request, kind, outcome, decided_at, actor, note),
        )
        return cursor.rowcount == 1

    def decisions(self, request: RequestKey) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT * FROM decisions WHERE request_id = ? AND requester = ? ORDER BY id", request
        )
        return [dict(r) for r in rows]
