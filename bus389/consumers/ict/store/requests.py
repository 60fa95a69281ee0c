"""Domain-block requests in the ICT store: the request as sent, as stored, and their queries.

:class:`RequestFields` is what a ``domain_block_request`` says; the service reads it from the record
(:class:`bus389.consumers.ict.decisions.BlockRequest`) and stores it as a :class:`RequestRow`, which adds
when and where it was received and its decision. The fields are the ``requests`` table's columns.
A request is identified by its :data:`RequestKey`, (event id, requester): another agency's request under
the same id is another request.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from bus389.consumers.ict.store._columns import JSON_OBJECT, JSON_TUPLE, Table, stored_as
from bus389.consumers.ict.store.connection import StoreConnection, like_prefix
from bus389.consumers.ict.store.states import RequestState

__all__ = ["REQUESTS", "RequestFields", "RequestKey", "RequestQueries", "RequestRow"]

RequestKey = tuple[str, str]
"""A request's identity in the store: (event id, requester)."""


@dataclass(frozen=True)
class RequestFields:
    """What a domain-block request says, as the ICT service keeps it."""

    event_id: str
    requester: str
    action: str
    reason: str
    legal_basis: str
    case_ref: str | None
    sensitivity: str
    urgency: str
    violation_kinds: tuple[str, ...] = field(metadata=stored_as(JSON_TUPLE))
    items: dict[str, list[str]] = field(metadata=stored_as(JSON_OBJECT))
    """The request's ``domains``, ``urls`` and ``ip_addresses`` exactly as sent."""
    occurred_at: int
    published_at: int
    expires_at: int | None

    @property
    def key(self) -> RequestKey:
        return (self.event_id, self.requester)

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.items.get("domains", ()))

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(self.items.get("urls", ()))

    @property
    def ip_addresses(self) -> tuple[str, ...]:
        return tuple(self.items.get("ip_addresses", ()))

    @property
    def all_items(self) -> list[str]:
        return [*self.domains, *self.urls, *self.ip_addresses]


@dataclass(frozen=True)
class RequestRow(RequestFields):
    """One domain-block request as stored."""

    received_at: int
    origin: str
    state: str
    decided_at: int | None
    decided_by: str | None
    note: str | None

    @classmethod
    def received(cls, request: RequestFields, *, origin: str, received_at: int) -> RequestRow:
        """``request`` as first stored: pending, not yet decided."""
        sent = {f.name: getattr(request, f.name) for f in fields(RequestFields)}
        return cls(
            **sent,
            received_at=received_at,
            origin=origin,
            state=RequestState.PENDING,
            decided_at=None,
            decided_by=None,
            note=None,
        )


REQUESTS = Table("requests", RequestRow)


class RequestQueries(StoreConnection):
    """Store, decide and find requests."""

    def insert_request(self, row: RequestRow) -> bool:
        """Insert a new request; False (and nothing written) when its requester already sent its id."""
        return self._insert(REQUESTS.insert(REQUESTS.values(row)))

    def set_request_state(
        self, key: RequestKey, state: str, *, decided_at: int, decided_by: str, note: str | None
    ) -> None:
        self._write(
            "UPDATE requests SET state = ?, decided_at = ?, decided_by = ?, note = ? "
            "WHERE event_id = ? AND requester = ?",
            (state, decided_at, decided_by, note, *key),
        )

    def request(self, key: RequestKey) -> RequestRow | None:
        rows = self._read("SELECT * FROM requests WHERE event_id = ? AND requester = ?", key)
        return REQUESTS.load(rows[0]) if rows else None

    def requests_with_id(self, event_id: str) -> list[RequestRow]:
        """Every requester's request under ``event_id``, in the order they were received (stored)."""
        rows = self._read(
            "SELECT * FROM requests WHERE event_id = ? ORDER BY received_at, rowid", (event_id,)
        )
        return [REQUESTS.load(r) for r in rows]

    def find_requests(self, id_prefix: str) -> list[RequestRow]:
        """Requests whose event id starts with ``id_prefix`` (operators type the first characters)."""
        rows = self._read(
            "SELECT * FROM requests WHERE event_id LIKE ? ESCAPE '\\' ORDER BY received_at, rowid LIMIT 10",
            (like_prefix(id_prefix),),
        )
        return [REQUESTS.load(r) for r in rows]

    def requests(self, state: str | None = None) -> list[RequestRow]:
        if state is None:
            rows = self._read("SELECT * FROM requests ORDER BY received_at, event_id, rowid")
        else:
            rows = self._read(
                "SELECT * FROM requests WHERE state = ? ORDER BY received_at, event_id, rowid", (state,)
            )
        return [REQUESTS.load(r) for r in rows]

    def due_to_expire(self, now_ms: int) -> list[RequestRow]:
        """Pending or approved block requests whose ``expires_at`` has passed."""
        rows = self._read(
            "SELECT * FROM requests WHERE state IN (?, ?) AND expires_at IS NOT NULL AND expires_at <= ? "
            "AND action != 'UNBLOCK' ORDER BY expires_at, event_id",
            (RequestState.PENDING, RequestState.APPROVED, now_ms),
        )
        return [REQUESTS.load(r) for r in rows]

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
