"""Directives followed up (plan II.9, "đôn đốc"): which directives are open, answered, overdue.

A directive (``directive`` event) names its addressees in ``meta.recipients``; an addressee answers it
with any event whose ``meta.in_reply_to`` is the directive's id (the router lets only an addressee, or
the sender, answer). A directive is closed when every addressee has answered; it is overdue when its
``due_at`` passed and an addressee has not. The standing office holds the directives it sent (its own
events come back to it, rule ``standing_office.all``) and those of the committee it received, with
the answers; ``bus389 so directives`` shows them and the gauge ``bus389_directives_overdue`` counts
the overdue ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bus389.consumers.standing_office.store import EventKey, StandingOfficeStore

__all__ = ["DIRECTIVE_TYPE", "DirectiveStatus", "follow_up", "statuses_in"]

DIRECTIVE_TYPE = "directive"


@dataclass(frozen=True)
class DirectiveStatus:
    """One directive and who has not answered it yet."""

    event_id: str
    source: str
    kind: str
    subject: str
    plan_section: str
    addressees: tuple[str, ...]
    due_at: datetime | None
    answered_by: tuple[str, ...]
    waiting_for: tuple[str, ...]
    overdue: bool

    @property
    def closed(self) -> bool:
        return not self.waiting_for


def _due(record: Mapping[str, Any]) -> datetime | None:
    value = record.get("due_at")
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def follow_up(
    directives: Iterable[tuple[str, str, Mapping[str, Any]]],
    answers: Iterable[tuple[str, str | None]],
    *,
    now: datetime,
) -> list[DirectiveStatus]:
    """The status of each directive ``(event_id, source, record)``, given answers ``(source, in_reply_to)``.

    An answer counts for the addressee that sent it; the sender's own follow-up does not close it.
    """
    answered: dict[str, set[str]] = {}
    for source, in_reply_to in answers:
        if in_reply_to:
            answered.setdefault(in_reply_to, set()).add(source)
    out: list[DirectiveStatus] = []
    for event_id, source, record in directives:
        meta = record.get("meta") if isinstance(record.get("meta"), Mapping) else {}
        addressees = tuple(str(a) for a in (meta or {}).get("recipients") or ())
        by = answered.get(event_id, set())
        waiting = tuple(a for a in addressees if a not in by)
        due = _due(record)
        out.append(
            DirectiveStatus(
                event_id=event_id,
                source=source,
                kind=str(record.get("kind") or ""),
                subject=str(record.get("subject") or ""),
                plan_section=str(record.get("plan_section") or ""),
                addressees=addressees,
                due_at=due,
                answered_by=tuple(a for a in addressees if a in by),
                waiting_for=waiting,
                overdue=bool(waiting) and due is not None and due < now,
            )
        )
    return out


def statuses_in(store: StandingOfficeStore, *, now: datetime) -> list[DirectiveStatus]:
    """Every directive the standing office holds, with its answers from the store, oldest first."""
    directives = store.events_of_types_before([DIRECTIVE_TYPE], now + timedelta(days=36500))
    # An answer names an id: it closes the id's first sender's directive, never another sender's
    # directive under the same id (that one is shown, unanswered).
    owners = [d for d in directives if d.owns_id]
    others = [d for d in directives if not d.owns_id]
    answers = [(a.source, a.in_reply_to) for a in store.replies([d.event_id for d in owners], [])]
    statuses: dict[EventKey, DirectiveStatus] = {}
    for group, given in ((owners, answers), (others, [])):
        found = follow_up(((d.event_id, d.source, d.record) for d in group), given, now=now)
        statuses.update(zip((d.key for d in group), found, strict=True))
    return [statuses[d.key] for d in directives]
