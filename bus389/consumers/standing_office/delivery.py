"""Delivering the six-monthly report: checked, made, then mailed whole (``bus389 report send`` and the
service's schedule share this one path).

Order, so that nothing is half-sent: the recipients' addresses and the period are checked, the report is
computed, every attachment is made (the .docx, its PDF), the message is built; only then is the SMTP
server contacted (:func:`.mail.send_message`: every recipient accepted, or nothing). A sent report is
counted in ``bus389_reports_sent_total{kind}`` and stamps ``bus389_report_last_sent_timestamp_seconds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bus389 import metrics
from bus389.consumers.standing_office.mail import build_message, check_address, send_message
from bus389.consumers.standing_office.output import Output, mail_subject, report_output, text_summary
from bus389.consumers.standing_office.period import Period
from bus389.consumers.standing_office.report import build_report
from bus389.consumers.standing_office.report_model import SixMonthReport
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.errors import InputError
from bus389.settings import Settings

__all__ = ["SIX_MONTHLY", "check_not_empty", "check_reportable", "send_six_monthly"]

SIX_MONTHLY = "six-monthly"


def check_reportable(period: Period, now: datetime) -> None:
    """InputError for a period that has not begun (there is nothing to report on yet)."""
    if period.start > now:
        raise InputError(
            f"period {period.label} has not begun (it starts on {period.start.strftime('%d/%m/%Y')}): "
            "there is nothing to report yet"
        )


def check_not_empty(report: SixMonthReport) -> None:
    """InputError for a report with no event: an official document is not sent about nothing."""
    if report.events_total == 0:
        raise InputError(
            f"period {report.period.label} has no event in the standing office's store: no document is made "
            "or sent for it (check the period and BUS389_STORE__STANDING_OFFICE_URL)"
        )


def send_six_monthly(
    store: StandingOfficeStore,
    period: Period,
    settings: Settings,
    recipients: Sequence[str],
    *,
    formats: Sequence[str] = ("docx", "pdf"),
    number_symbol: str | None = None,
    now: datetime | None = None,
) -> list[Output]:
    """Mail the six-monthly report of ``period`` to ``recipients``; the attachments sent."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    addresses = [check_address(r) for r in recipients]
    if not addresses:
        raise InputError("give at least one recipient (--to ADDRESS)")
    check_reportable(period, now)
    report = build_report(store, period, settings=settings.report, now=now)
    check_not_empty(report)
    stem = period.label
    attachments = [
        report_output(report, fmt, settings.report, stem=stem, number_symbol=number_symbol) for fmt in formats
    ]
    message = build_message(
        sender=settings.mail.sender,
        recipients=addresses,
        subject=mail_subject(report),
        body=text_summary(report),
        attachments=attachments,
        now=now,
    )
    send_message(settings.mail, message)
    metrics.STANDING_OFFICE_REPORTS_SENT.labels(SIX_MONTHLY).inc()
    metrics.STANDING_OFFICE_REPORT_LAST_SENT.labels(SIX_MONTHLY).set(now.timestamp())
    return attachments
