"""Who answered which request, as of one instant: the joins behind the report's outcomes and deadlines.

A ``domain_block_request`` is answered by a ``domain_block_result`` in reply to it (its time is the
result's ``decided_at``); a ``case_referral`` by a ``case_outcome`` of its case (``case_ref``) or in reply
to it; any other request by any event in reply to it, or a ``case_referral``/``case_outcome`` of its
case. Answers that came after the as-of instant do not count (see :mod:`.report`). An answer names an
id: it answers the id's first sender's event (:attr:`~.store.StoredEvent.owns_id`), never another
sender's event under the same id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bus389.consumers.standing_office.store import StoredEvent, to_millis

__all__ = ["Answers", "result_time"]


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(to_millis(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def result_time(result: StoredEvent) -> datetime:
    return _instant(result.record.get("decided_at")) or result.occurred_at


class Answers:
    """Who answered what, as of one instant."""

    def __init__(self, replies: Iterable[StoredEvent], as_of: datetime) -> None:
        self.by_reply: dict[str, list[StoredEvent]] = defaultdict(list)
        self.by_case: dict[str, list[StoredEvent]] = defaultdict(list)
        for event in replies:
            if self._time(event) > as_of:
                continue
            if event.in_reply_to:
                self.by_reply[event.in_reply_to].append(event)
            if event.case_ref:
                self.by_case[event.case_ref].append(event)

    @staticmethod
    def _time(event: StoredEvent) -> datetime:
        return result_time(event) if event.event_type == "domain_block_result" else event.occurred_at

    def _in_reply(self, request: StoredEvent) -> list[StoredEvent]:
        return self.by_reply.get(request.event_id, []) if request.owns_id else []

    def block_results(self, request: StoredEvent) -> list[StoredEvent]:
        found = [e for e in self._in_reply(request) if e.event_type == "domain_block_result"]
        return sorted(found, key=lambda e: (result_time(e), e.event_id))

    def case_outcomes(self, referral: StoredEvent) -> list[StoredEvent]:
        found = {e.key: e for e in self._in_reply(referral) if e.event_type == "case_outcome"}
        if referral.case_ref:
            found.update(
                {e.key: e for e in self.by_case.get(referral.case_ref, []) if e.event_type == "case_outcome"}
            )
        return sorted(found.values(), key=lambda e: (e.occurred_at, e.event_id))

    def is_answered(self, request: StoredEvent) -> bool:
        if request.event_type == "domain_block_request":
            return bool(self.block_results(request))
        if request.event_type == "case_referral":
            return bool(self.case_outcomes(request))
        if any(e.key != request.key for e in self._in_reply(request)):
            return True
        if request.case_ref:
            return any(
                e.key != request.key and e.event_type in ("case_referral", "case_outcome")
                for e in self.by_case.get(request.case_ref, [])
            )
        return False
