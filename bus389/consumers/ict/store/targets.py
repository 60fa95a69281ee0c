"""The targets of a request (what screening accepted) and its refusals (what it did not), and the blocks.

A target is blocked when its request is approved, lifted by an UNBLOCK request, expired with its
request; the blocklist is every blocked target with its request (:meth:`TargetQueries.active_blocks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bus389.consumers.ict.store._columns import Table
from bus389.consumers.ict.store.connection import StoreConnection
from bus389.consumers.ict.store.requests import REQUESTS, RequestKey, RequestRow
from bus389.consumers.ict.store.states import TargetState

__all__ = ["TARGETS", "TargetQueries", "TargetRow"]


@dataclass(frozen=True)
class TargetRow:
    request_id: str
    requester: str
    position: int
    kind: str
    value: str
    state: str
    changed_at: int
    lifted_by: str | None

    @property
    def request_key(self) -> RequestKey:
        return (self.request_id, self.requester)


TARGETS = Table("targets", TargetRow)


class TargetQueries(StoreConnection):
    """Targets and refusals of requests, and the blocks they make."""

    def insert_target(
        self, request: RequestKey, position: int, kind: str, value: str, state: str, now: int
    ) -> None:
        self._write(
            "INSERT INTO targets (request_id, requester, position, kind, value, state, changed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*request, position, kind, value, state, now),
        )

    def insert_refusal(self, request: RequestKey, position: int, item: str, reason: str) -> None:
        self._write(
            "INSERT INTO refusals (request_id, requester, position, item, reason) VALUES (?, ?, ?, ?, ?)",
            (*request, position, item, reason),
        )

    def targets(self, request: RequestKey) -> list[TargetRow]:
        rows = self._read(
            "SELECT * FROM targets WHERE request_id = ? AND requester = ? ORDER BY position", request
        )
        return [TARGETS.load(r) for r in rows]

    def refusals(self, request: RequestKey) -> list[tuple[str, str]]:
        rows = self._read(
            "SELECT item, reason FROM refusals WHERE request_id = ? AND requester = ? ORDER BY position",
            request,
        )
        return [(r["item"], r["reason"]) for r in rows]

    def set_target_state(
        self,
        request: RequestKey,
        kind: str,
        value: str,
        state: str,
        now: int,
        *,
        lifted_by: str | None = None,
    ) -> None:
        self._write(
            "UPDATE targets SET state = ?, changed_at = ?, lifted_by = ? "
            "WHERE request_id = ? AND requester = ? AND kind = ? AND value = ?",
            (state, now, lifted_by, *request, kind, value),
        )

    def set_targets_state(self, request: RequestKey, from_states: Sequence[str], state: str, now: int) -> int:
        marks = ", ".join("?" for _ in from_states)
        cursor = self._write(
            "UPDATE targets SET state = ?, changed_at = ? "  # noqa: S608 - placeholders only
            f"WHERE request_id = ? AND requester = ? AND state IN ({marks})",
            (state, now, *request, *from_states),
        )
        return cursor.rowcount

    def blocking_targets(self, kind: str, value: str) -> list[TargetRow]:
        """Every blocked target row with this kind and value (one per request blocking it)."""
        rows = self._read(
            "SELECT * FROM targets WHERE kind = ? AND value = ? AND state = ? ORDER BY request_id, requester",
            (kind, value, TargetState.BLOCKED),
        )
        return [TARGETS.load(r) for r in rows]

    def active_blocks(self) -> list[tuple[TargetRow, RequestRow]]:
        """Every blocked target with its request: what the blocklist is made of."""
        # Columns are read by name and the target's come first: where both tables have one (``state``),
        # the request row carries the target's.
        rows = self._read(
            f"SELECT {TARGETS.column_list('t')}, r.* "  # noqa: S608 - column names from the dataclass
            "FROM targets AS t JOIN requests AS r ON r.event_id = t.request_id AND r.requester = t.requester "
            "WHERE t.state = ? ORDER BY t.kind, t.value, r.decided_at, r.event_id, r.requester",
            (TargetState.BLOCKED,),
        )
        return [(TARGETS.load(r), REQUESTS.load(r)) for r in rows]
