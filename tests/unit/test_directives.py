"""Directives followed up (plan II.9): closed by every addressee's answer, overdue after the due date."""

from __future__ import annotations

from datetime import UTC, datetime

from bus389.consumers.standing_office.directives import follow_up

NOW = datetime(2021, 7, 11, tzinfo=UTC)


def _directive(due: str | None, *addressees: str) -> dict:
    return {
        "meta": {"recipients": list(addressees)},
        "kind": "REMIND",
        "subject": "Báo cáo",
        "plan_section": "III.3",
        "due_at": due,
    }


def test_overdue_only_when_the_due_date_passed_and_an_addressee_has_not_answered() -> None:
    directives = [
        ("d1", "market_surveillance", _directive("2021-07-10T10:00:00.000Z", "police", "tax")),
        ("d2", "market_surveillance", _directive("2021-07-10T10:00:00.000Z", "police")),
        ("d3", "committee", _directive("2021-07-20T10:00:00.000Z", "customs")),
        ("d4", "market_surveillance", _directive(None, "media")),
    ]
    answers = [("police", "d1"), ("police", "d2"), ("market_surveillance", "d1"), ("tax", None)]
    status = {s.event_id: s for s in follow_up(directives, answers, now=NOW)}
    assert (
        status["d1"].overdue
        and status["d1"].waiting_for == ("tax",)
        and status["d1"].answered_by == ("police",)
    )
    assert status["d2"].closed and not status["d2"].overdue
    assert not status["d3"].overdue and status["d3"].waiting_for == ("customs",)
    assert not status["d4"].overdue  # no due date: open, never overdue
