"""Leads in the ICT store: ``suspect_seller`` events kept for ICT's inspection (plan II.6).

How a lead is read from its event is :mod:`bus389.consumers.ict.leads`; here is how it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bus389.consumers.ict.store._columns import JSON_TUPLE, TEXT_TUPLE, Table, stored_as
from bus389.consumers.ict.store.connection import StoreConnection, like_prefix
from bus389.consumers.ict.store.states import LeadState

__all__ = ["LEADS", "LeadQueries", "LeadRow"]


@dataclass(frozen=True)
class LeadRow:
    """One ``suspect_seller`` kept for ICT's inspection."""

    event_id: str
    sender: str
    seller_name: str
    seller_tax_code: str | None
    domains: tuple[str, ...] = field(metadata=stored_as(TEXT_TUPLE))
    accounts: tuple[dict[str, str | None], ...] = field(metadata=stored_as(TEXT_TUPLE))
    """Every account of the seller as sent: ``{"platform", "account", "url"}``."""
    evidence_urls: tuple[str, ...] = field(metadata=stored_as(TEXT_TUPLE))
    goods: str
    violation_kinds: tuple[str, ...] = field(metadata=stored_as(JSON_TUPLE))
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


LEADS = Table("leads", LeadRow)


class LeadQueries(StoreConnection):
    """Keep leads once, list and find them, mark them inspected."""

    def insert_lead(self, row: LeadRow) -> bool:
        """Keep a new lead; False (and nothing written) when its sender's lead of that id is kept.

        Another sender's lead under the same id is kept beside it (a lead is (event id, sender)).
        """
        return self._insert(LEADS.insert(LEADS.values(row)))

    def leads(self, state: str | None = None) -> list[LeadRow]:
        """Leads in the order they arrived; only those in ``state`` when given."""
        if state is None:
            rows = self._read("SELECT * FROM leads ORDER BY received_at, event_id, rowid")
        else:
            rows = self._read(
                "SELECT * FROM leads WHERE state = ? ORDER BY received_at, event_id, rowid", (state,)
            )
        return [LEADS.load(r) for r in rows]

    def lead(self, event_id: str, sender: str) -> LeadRow | None:
        rows = self._read("SELECT * FROM leads WHERE event_id = ? AND sender = ?", (event_id, sender))
        return LEADS.load(rows[0]) if rows else None

    def find_leads(self, id_prefix: str) -> list[LeadRow]:
        """Leads whose event id starts with ``id_prefix`` (operators type the first characters)."""
        rows = self._read(
            "SELECT * FROM leads WHERE event_id LIKE ? ESCAPE '\\' ORDER BY received_at, rowid LIMIT 10",
            (like_prefix(id_prefix),),
        )
        return [LEADS.load(r) for r in rows]

    def count_leads(self, state: str) -> int:
        rows = self._read("SELECT COUNT(*) AS n FROM leads WHERE state = ?", (state,))
        return int(rows[0]["n"]) if rows else 0

    def set_lead_inspected(
        self, event_id: str, sender: str, *, inspected_at: int, inspected_by: str, note: str | None
    ) -> None:
        self._write(
            "UPDATE leads SET state = ?, inspected_at = ?, inspected_by = ?, note = ? "
            "WHERE event_id = ? AND sender = ?",
            (LeadState.INSPECTED, inspected_at, inspected_by, note, event_id, sender),
        )
