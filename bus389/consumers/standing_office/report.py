"""The six-monthly report of plan III.3, computed from the standing office's store.

The members report to the standing office every six months (plan III.3); the report gathers, per
member agency, what the bus carried in the period, and what the committee must see across members.

Definitions (each figure of the rendered report follows one of these):

- **Period**: ``YYYY-H1`` is 1 January–30 June, ``YYYY-H2`` 1 July–31 December, in Vietnam's time
  (Asia/Ho_Chi_Minh). An event belongs to the period by ``meta.occurred_at``; a member is the event's
  ``meta.source``.
- **As of**: the report time or the end of the period, whichever is earlier. Answers (block results,
  case outcomes) count only if they came by then, so a report on a past period is the same whenever it
  is produced, and "unanswered past the deadline" means unanswered *at the end of the period*.
- **Domain-block requests**: those of the period, joined with the ``domain_block_result`` events whose
  ``meta.in_reply_to`` is the request. The time to result runs from the request's ``occurred_at`` to the
  first result's ``decided_at``; the outcome shown is the latest result's.
- **Undeclared-seller alerts**: ``tax_discrepancy`` events of the period, their count and the sums of
  ``undeclared_revenue_vnd`` and ``estimated_tax_owed_vnd``.
- **Cases referred**: ``case_referral`` events of the period, joined with ``case_outcome`` events of
  the same ``meta.case_ref`` (or whose ``meta.in_reply_to`` is the referral), with their fines and
  goods seized. Separately, the ``case_outcome`` events each member published in the period.
- **Missing periodic reports**: members (every agency but the standing office itself) with no
  ``periodic_report`` of kind ``SIX_MONTHLY`` whose ``period`` field is this period, filed any time up
  to the report time (they are due after the period ends).
- **Unanswered past the deadline**: requests of every event type named in
  ``settings.report.answer_deadline_days``, from this period or earlier, whose deadline
  (``occurred_at`` + days) passed before the as-of instant and that had no answer by then. A
  ``domain_block_request`` is answered by a ``domain_block_result`` in reply to it; a ``case_referral``
  by a ``case_outcome`` of its case (``case_ref``) or in reply to it; any other type (``complaint``)
  by any event in reply to it, or a ``case_referral``/``case_outcome`` of its case.
- **Correlation across time**: every key (see :mod:`.correlation`) of the period's events, matched
  against every event the store holds that carries it, whenever it occurred (up to the report time):
  listed when two or more different members reported it, each report marked as earlier than the
  period, in it, or later. A 2026 tax alert about 2021 revenue thus meets the 2021 police and customs
  reports on the same tax code, in the 2021 report and in the 2026 one.
- **Comparison**: the events by type, the undeclared-seller alerts and the undeclared revenue of this
  period and of the :data:`TREND_PERIODS` - 1 periods before it (the charts draw these figures).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bus389.agencies import REPORTING_MEMBERS, Agency
from bus389.consumers.standing_office.answers import Answers, result_time
from bus389.consumers.standing_office.correlation import CORRELATED_KINDS
from bus389.consumers.standing_office.period import VN_TZ, Period, due_at
from bus389.consumers.standing_office.report_model import (
    BlockRequestLine,
    CaseOutcomeLine,
    CorrelationGroup,
    CorrelationReport,
    MemberReport,
    OutcomesSummary,
    OverdueRequest,
    PeriodFigures,
    ReferralLine,
    SixMonthReport,
)
from bus389.consumers.standing_office.store import StandingOfficeStore, StoredEvent
from bus389.settings import ReportSettings

__all__ = [
    "VN_TZ",
    "BlockRequestLine",
    "CaseOutcomeLine",
    "CorrelationGroup",
    "CorrelationReport",
    "MemberReport",
    "OutcomesSummary",
    "OverdueRequest",
    "Period",
    "ReferralLine",
    "SixMonthReport",
    "TREND_PERIODS",
    "build_report",
    "event_summary",
    "outcome_line",
    "period_figures",
]

TREND_PERIODS = 4
"""How many periods the comparison shows, this one included (two years)."""


# --- helpers on stored records ------------------------------------------------------------------------


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _seller_name(record: Mapping[str, Any]) -> str | None:
    seller = record.get("seller")
    if isinstance(seller, Mapping):
        name = _str(seller.get("name"))
        tax_code = _str(seller.get("tax_code"))
        if name and tax_code:
            return f"{name} (MST {tax_code})"
        return name
    return None


def event_summary(record: Mapping[str, Any]) -> str:
    """One line saying what an event is about: its domains, else its summary, else its seller."""
    return (
        ", ".join(str(d) for d in record.get("domains") or [])
        or _str(record.get("summary"))
        or _seller_name(record)
        or ""
    )


def outcome_line(event: StoredEvent) -> CaseOutcomeLine:
    """A ``case_outcome`` event as a line of the report."""
    return _outcome_line(event)


def _normalised_period(value: Any) -> str:
    return re.sub(r"\s+", "", value).upper() if isinstance(value, str) else ""


def _outcome_line(event: StoredEvent) -> CaseOutcomeLine:
    record = event.record
    return CaseOutcomeLine(
        event_id=event.event_id,
        agency=event.source,
        outcome=str(record.get("outcome") or "OTHER"),
        decided_on=str(record.get("decided_on") or ""),
        fine_vnd=_int(record.get("fine_vnd")),
        goods_seized=_str(record.get("goods_seized")),
        goods_seized_value_vnd=_int(record.get("goods_seized_value_vnd")),
        decision_ref=_str(record.get("decision_ref")),
    )


# --- building ------------------------------------------------------------------------------------------


def build_report(
    store: StandingOfficeStore,
    period: Period,
    *,
    settings: ReportSettings | None = None,
    now: datetime | None = None,
) -> SixMonthReport:
    """Compute the six-monthly report for ``period`` from ``store`` (see the module's definitions)."""
    settings = settings or ReportSettings()
    generated_at = (now or datetime.now(UTC)).astimezone(UTC)
    as_of = min(generated_at, period.end.astimezone(UTC))
    deadlines = dict(settings.answer_deadline_days)

    in_period = store.events_between(period.start, period.end)
    older_requests = [
        e for e in store.events_of_types_before(deadlines, as_of) if e.occurred_at < period.start
    ]
    asking = {"domain_block_request", "case_referral", *deadlines}
    asked = [e for e in in_period if e.event_type in asking] + older_requests
    answers = Answers(
        store.replies((e.event_id for e in asked if e.owns_id), (e.case_ref for e in asked if e.case_ref)),
        as_of,
    )
    first_filed: dict[str, datetime] = {}
    six_monthly = _six_monthly_reports(store, period, generated_at, first_filed)
    due = due_at(period, settings.due_dates)

    by_member: dict[str, list[StoredEvent]] = defaultdict(list)
    for event in in_period:
        by_member[event.source].append(event)

    members = tuple(
        _member_report(agency, by_member.get(agency.value, []), answers, six_monthly.get(agency.value, []))
        for agency in Agency
    )
    missing = tuple(a for a in REPORTING_MEMBERS if not six_monthly.get(a.value))
    late = tuple(
        (a, first_filed[a.value])
        for a in REPORTING_MEMBERS
        if a.value in first_filed and first_filed[a.value] > due
    )
    overdue = _overdue(asked, answers, deadlines, as_of)
    correlations = _correlate(store, in_period, period, generated_at)
    trend = [period]
    while len(trend) < TREND_PERIODS:
        trend.insert(0, trend[0].previous())
    return SixMonthReport(
        period=period,
        generated_at=generated_at,
        as_of=as_of,
        members=members,
        missing_periodic_reports=missing,
        report_due=due,
        late_periodic_reports=late,
        overdue=overdue,
        correlations=correlations,
        deadlines=deadlines,
        trend=tuple(
            period_figures(store, p, events=in_period if p == period else None) for p in trend if p.year >= 1
        ),
    )


def period_figures(
    store: StandingOfficeStore, period: Period, *, events: list[StoredEvent] | None = None
) -> PeriodFigures:
    """The headline figures of ``period`` (``events``: its events when the caller already has them)."""
    if events is None:
        events = store.events_between(period.start, period.end)
    alerts = [e for e in events if e.event_type == "tax_discrepancy"]
    return PeriodFigures(
        label=period.label,
        events_by_type=dict(sorted(Counter(e.event_type for e in events).items())),
        tax_alerts=len(alerts),
        undeclared_revenue_vnd=sum(_int(e.record.get("undeclared_revenue_vnd")) for e in alerts),
    )


def _six_monthly_reports(
    store: StandingOfficeStore,
    period: Period,
    generated_at: datetime,
    first: dict[str, datetime] | None = None,
) -> dict[str, list[str]]:
    """Each member's six-monthly reports of ``period`` (ids); ``first`` gets when each member's came first."""
    filed: dict[str, list[str]] = defaultdict(list)
    for event in store.events_of_types_before(["periodic_report"], generated_at + timedelta(milliseconds=1)):
        record = event.record
        if record.get("report_kind") != "SIX_MONTHLY":
            continue
        if _normalised_period(record.get("period")) != period.label:
            continue
        filed[event.source].append(event.event_id)
        if first is not None and (event.source not in first or event.published_at < first[event.source]):
            first[event.source] = event.published_at
    return filed


def _member_report(
    agency: Agency, events: list[StoredEvent], answers: Answers, six_monthly: list[str]
) -> MemberReport:
    by_type = Counter(e.event_type for e in events)
    blocks: list[BlockRequestLine] = []
    referrals: list[ReferralLine] = []
    outcomes: list[CaseOutcomeLine] = []
    alerts = undeclared = owed = 0
    for event in events:
        record = event.record
        if event.event_type == "domain_block_request":
            blocks.append(_block_line(event, answers.block_results(event)))
        elif event.event_type == "tax_discrepancy":
            alerts += 1
            undeclared += _int(record.get("undeclared_revenue_vnd"))
            owed += _int(record.get("estimated_tax_owed_vnd"))
        elif event.event_type == "case_referral":
            referrals.append(
                ReferralLine(
                    event_id=event.event_id,
                    occurred_at=event.occurred_at,
                    case_ref=event.case_ref,
                    seller=_seller_name(record),
                    offences=tuple(s for s in record.get("suspected_offences") or [] if isinstance(s, str)),
                    outcomes=tuple(_outcome_line(o) for o in answers.case_outcomes(event)),
                )
            )
        elif event.event_type == "case_outcome":
            outcomes.append(_outcome_line(event))
    return MemberReport(
        agency=agency,
        events_by_type=dict(sorted(by_type.items())),
        block_requests=tuple(blocks),
        tax_alerts=alerts,
        undeclared_revenue_vnd=undeclared,
        tax_owed_vnd=owed,
        referrals=tuple(referrals),
        outcomes=OutcomesSummary(tuple(outcomes)),
        six_monthly_reports=tuple(six_monthly),
    )


def _block_line(request: StoredEvent, results: list[StoredEvent]) -> BlockRequestLine:
    record = request.record
    domains = tuple(d for d in record.get("domains") or [] if isinstance(d, str))
    urls = tuple(u for u in record.get("urls") or [] if isinstance(u, str))
    ips = tuple(i for i in record.get("ip_addresses") or [] if isinstance(i, str))
    first = results[0] if results else None
    latest = results[-1] if results else None
    answered_at = result_time(first) if first else None
    return BlockRequestLine(
        event_id=request.event_id,
        requester=request.source,
        occurred_at=request.occurred_at,
        domains=domains + urls + ips,
        action=str(record.get("action") or "UNKNOWN"),
        outcome=str(latest.record.get("outcome") or "UNKNOWN") if latest else None,
        result_event_id=latest.event_id if latest else None,
        answered_at=answered_at,
        time_to_result=max(timedelta(0), answered_at - request.occurred_at) if answered_at else None,
    )


def _overdue(
    asked: list[StoredEvent], answers: Answers, deadlines: Mapping[str, int], as_of: datetime
) -> tuple[OverdueRequest, ...]:
    lines = []
    for request in asked:
        days = deadlines.get(request.event_type)
        if days is None:
            continue
        deadline = request.occurred_at + timedelta(days=days)
        if deadline >= as_of or answers.is_answered(request):
            continue
        record = request.record
        summary = event_summary(record)
        lines.append(
            OverdueRequest(
                event_id=request.event_id,
                event_type=request.event_type,
                agency=request.source,
                occurred_at=request.occurred_at,
                deadline=deadline,
                overdue=as_of - deadline,
                summary=summary,
            )
        )
    return tuple(sorted(lines, key=lambda o: (o.agency, o.occurred_at, o.event_id)))


def _correlate(
    store: StandingOfficeStore, events: list[StoredEvent], period: Period, generated_at: datetime
) -> tuple[CorrelationGroup, ...]:
    keys = store.keys_of(e.key for e in events)
    wanted = {(k.kind, k.value) for ks in keys.values() for k in ks if k.kind in CORRELATED_KINDS}
    grouped: dict[tuple[str, str], list[CorrelationReport]] = defaultdict(list)
    for event, key in store.events_with_keys(wanted):
        if event.occurred_at > generated_at:
            continue
        grouped[(key.kind, key.value)].append(
            CorrelationReport(
                event.source,
                event.event_type,
                event.occurred_at,
                event.event_id,
                key.label,
                _when(event.occurred_at, period),
            )
        )
    groups = []
    for (kind, value), reports in grouped.items():
        agencies = sorted({r.agency for r in reports}, key=_agency_order)
        if len(agencies) < 2:
            continue
        reports.sort(key=lambda r: (r.occurred_at, r.event_id))
        groups.append(CorrelationGroup(kind, value, tuple(agencies), tuple(reports)))
    kind_order = {k: i for i, k in enumerate(CORRELATED_KINDS)}
    groups.sort(key=lambda g: (-len(g.agencies), kind_order[g.kind], g.value))
    return tuple(groups)


def _when(moment: datetime, period: Period) -> str:
    if moment < period.start:
        return "earlier"
    return "period" if moment < period.end else "later"


def _agency_order(code: str) -> tuple[int, str]:
    order = [a.value for a in Agency]
    return (order.index(code), code) if code in order else (len(order), code)
