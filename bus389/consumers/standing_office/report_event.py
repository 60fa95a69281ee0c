"""The six-monthly report as a ``compiled_report`` event for the committee (plan II.9, III.3).

Plan II.9: the standing office "Tổng hợp, báo cáo Ban Chỉ đạo 389 tỉnh"; III.3: every member sends it
its six-monthly report "để tổng hợp". :func:`compiled_report_fields` turns a
:class:`~bus389.consumers.standing_office.report.SixMonthReport` into the fields of a
``compiled_report`` event: the members' own figures (summed from their SIX_MONTHLY
``periodic_report`` records, each member's latest one), who reported and who did not, what the bus saw
and how many sellers two or more members reported. ``bus389 so compile`` prints them as one JSON line
for ``bus389 publish compiled_report --as market_surveillance``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bus389.consumers.standing_office.report import SixMonthReport
    from bus389.consumers.standing_office.store import StandingOfficeStore

__all__ = ["FIGURES", "compiled_report_fields"]

FIGURES = (
    "cases_detected",
    "cases_handled",
    "fines_vnd",
    "goods_seized_value_vnd",
    "tax_collected_vnd",
    "domains_blocked",
)
"""The figures a member's ``periodic_report`` carries and the compiled report sums."""


def _figure(record: Mapping[str, Any], name: str) -> int:
    value = record.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def compiled_report_fields(report: SixMonthReport, store: StandingOfficeStore) -> dict[str, Any]:
    """The ``compiled_report`` fields (no ``meta`` but its sensitivity) of ``report``, read from ``store``."""
    totals = dict.fromkeys(FIGURES, 0)
    lines: list[str] = []
    reported: list[str] = []
    for member in report.members:
        if not member.six_monthly_reports:
            continue
        stored = [store.get(event_id, member.agency.value) for event_id in member.six_monthly_reports]
        latest = max((e for e in stored if e is not None), key=lambda e: e.published_at, default=None)
        if latest is None:
            continue
        record = latest.record
        reported.append(member.agency.value)
        for name in FIGURES:
            totals[name] += _figure(record, name)
        figures = ", ".join(f"{name} {_figure(record, name)}" for name in FIGURES)
        lines.append(f"- {member.agency.value}: {record.get('title') or ''} ({figures})")
    missing = [a.value for a in report.missing_periodic_reports]
    body = "\n".join(
        [
            f"Tổng hợp kết quả thực hiện Kế hoạch 141/KH-UBND, kỳ {report.period.label}.",
            f"Báo cáo của các thành viên ({len(reported)}):",
            *lines,
            f"Chưa gửi báo cáo: {', '.join(missing) or 'không'}.",
            f"Sự kiện trên hệ thống trong kỳ: {report.events_total}; "
            f"đối tượng do hai thành viên trở lên báo cáo: {len(report.correlations)}.",
        ]
    )
    return {
        "meta": {"sensitivity": "AMBER", "urgency": "ROUTINE"},
        "period": report.period.label,
        "title": f"Báo cáo tổng hợp kỳ {report.period.label}",
        "body": body,
        "events_seen": report.events_total,
        **totals,
        "members_reported": reported,
        "members_missing": missing,
        "overlaps": len(report.correlations),
    }
