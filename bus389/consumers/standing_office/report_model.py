"""The six-monthly report's model: the figures per member, the overdue requests and the correlations.

Plain frozen data computed by :mod:`.report` (whose docstring defines every figure) and rendered by
:mod:`.render` and :mod:`.document`; nothing here reads the store.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bus389.agencies import Agency
from bus389.consumers.standing_office.period import Period

__all__ = [
    "BlockRequestLine",
    "CaseOutcomeLine",
    "CorrelationGroup",
    "CorrelationReport",
    "MemberReport",
    "OutcomesSummary",
    "OverdueRequest",
    "PeriodFigures",
    "ReferralLine",
    "SixMonthReport",
]


@dataclass(frozen=True)
class BlockRequestLine:
    event_id: str
    requester: str
    occurred_at: datetime
    domains: tuple[str, ...]
    action: str
    outcome: str | None
    """The latest result's outcome as of the report; None when unanswered."""
    result_event_id: str | None
    answered_at: datetime | None
    time_to_result: timedelta | None


@dataclass(frozen=True)
class CaseOutcomeLine:
    event_id: str
    agency: str
    outcome: str
    decided_on: str
    fine_vnd: int
    goods_seized: str | None
    goods_seized_value_vnd: int
    decision_ref: str | None


@dataclass(frozen=True)
class ReferralLine:
    event_id: str
    occurred_at: datetime
    case_ref: str | None
    seller: str | None
    offences: tuple[str, ...]
    outcomes: tuple[CaseOutcomeLine, ...]

    @property
    def fine_vnd(self) -> int:
        return sum(o.fine_vnd for o in self.outcomes)

    @property
    def goods_seized_value_vnd(self) -> int:
        return sum(o.goods_seized_value_vnd for o in self.outcomes)


@dataclass(frozen=True)
class OutcomesSummary:
    """The ``case_outcome`` events one member published in the period."""

    lines: tuple[CaseOutcomeLine, ...] = ()

    @property
    def count(self) -> int:
        return len(self.lines)

    @property
    def fine_vnd(self) -> int:
        return sum(o.fine_vnd for o in self.lines)

    @property
    def goods_seized_value_vnd(self) -> int:
        return sum(o.goods_seized_value_vnd for o in self.lines)


@dataclass(frozen=True)
class MemberReport:
    agency: Agency
    events_by_type: dict[str, int]
    block_requests: tuple[BlockRequestLine, ...]
    tax_alerts: int
    undeclared_revenue_vnd: int
    tax_owed_vnd: int
    referrals: tuple[ReferralLine, ...]
    outcomes: OutcomesSummary
    six_monthly_reports: tuple[str, ...]
    """Event ids of this member's SIX_MONTHLY periodic reports for the period."""

    @property
    def events_total(self) -> int:
        return sum(self.events_by_type.values())

    @property
    def block_outcomes(self) -> dict[str, int]:
        counts = Counter(line.outcome or "" for line in self.block_requests)
        return dict(sorted(counts.items()))

    @property
    def time_to_result_median(self) -> timedelta | None:
        times = [line.time_to_result for line in self.block_requests if line.time_to_result is not None]
        if not times:
            return None
        return timedelta(seconds=statistics.median(t.total_seconds() for t in times))

    @property
    def time_to_result_max(self) -> timedelta | None:
        times = [line.time_to_result for line in self.block_requests if line.time_to_result is not None]
        return max(times) if times else None

    @property
    def referrals_with_outcome(self) -> int:
        return sum(1 for r in self.referrals if r.outcomes)

    @property
    def referral_fine_vnd(self) -> int:
        return sum(r.fine_vnd for r in self.referrals)

    @property
    def referral_goods_seized_value_vnd(self) -> int:
        return sum(r.goods_seized_value_vnd for r in self.referrals)

    @property
    def is_active(self) -> bool:
        return bool(self.events_total or self.six_monthly_reports)


@dataclass(frozen=True)
class OverdueRequest:
    event_id: str
    event_type: str
    agency: str
    occurred_at: datetime
    deadline: datetime
    overdue: timedelta
    """How long past the deadline at the as-of instant."""
    summary: str


@dataclass(frozen=True)
class CorrelationReport:
    """One report carrying a correlated key."""

    agency: str
    event_type: str
    occurred_at: datetime
    event_id: str
    label: str
    """How this report spelled it."""
    when: str = "period"
    """``earlier`` (before the period), ``period`` (in it) or ``later`` (after it, up to the report time)."""


@dataclass(frozen=True)
class CorrelationGroup:
    kind: str
    value: str
    agencies: tuple[str, ...]
    reports: tuple[CorrelationReport, ...]

    @property
    def label(self) -> str:
        """The first spelling reported (for a heading)."""
        return self.reports[0].label if self.reports else self.value


@dataclass(frozen=True)
class PeriodFigures:
    """The headline figures of one period, for the comparison with earlier periods (and its charts)."""

    label: str
    events_by_type: dict[str, int]
    tax_alerts: int
    undeclared_revenue_vnd: int

    @property
    def events_total(self) -> int:
        return sum(self.events_by_type.values())


@dataclass(frozen=True)
class SixMonthReport:
    period: Period
    generated_at: datetime
    as_of: datetime
    members: tuple[MemberReport, ...]
    missing_periodic_reports: tuple[Agency, ...]
    overdue: tuple[OverdueRequest, ...]
    correlations: tuple[CorrelationGroup, ...]
    deadlines: dict[str, int] = field(default_factory=dict)
    trend: tuple[PeriodFigures, ...] = ()
    """This period and the ones before it, oldest first (this period last)."""
    report_due: datetime | None = None
    """When the members' six-monthly reports of the period were due (``BUS389_REPORT__DUE_DATES``)."""
    late_periodic_reports: tuple[tuple[Agency, datetime], ...] = ()
    """Members whose six-monthly report came after ``report_due``, with when it came."""

    @property
    def previous(self) -> PeriodFigures | None:
        return self.trend[-2] if len(self.trend) >= 2 else None

    @property
    def events_total(self) -> int:
        return sum(m.events_total for m in self.members)

    @property
    def totals_by_type(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for member in self.members:
            totals.update(member.events_by_type)
        return dict(sorted(totals.items()))

    def member(self, agency: Agency | str) -> MemberReport:
        code = Agency(agency)
        for member in self.members:
            if member.agency == code:
                return member
        raise KeyError(code)
