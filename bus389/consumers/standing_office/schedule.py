"""The standing-office service's schedule: mail the six-monthly report on its due date, once.

``settings.report.due_dates`` gives, per half, the ``MM-DD`` its report is due (H1's in the same year,
H2's in the next). From that day on, the service mails the most recent ended period's report to
``settings.report.send_to`` unless the store records it as sent (``so_meta``: ``report_sent:<period>``);
a service that was down on the due date sends it when it is back. A failure (the SMTP server refused,
the document could not be made) is logged and tried again at the next check; it never stops the
inbox. Off when ``send_to`` is empty.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from bus389 import metrics
from bus389.consumers.standing_office.delivery import SIX_MONTHLY, send_six_monthly
from bus389.consumers.standing_office.period import VN_TZ, Period, due_at
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.errors import BusError
from bus389.settings import Settings

__all__ = ["ReportSchedule", "due_at", "sent_key"]

log = logging.getLogger(__name__)


def sent_key(period: Period) -> str:
    return f"report_sent:{period.label}"


class ReportSchedule:
    """Checks, when asked, whether a six-monthly report is due and unsent, and sends it."""

    def __init__(self, settings: Settings, store: StandingOfficeStore) -> None:
        self.settings = settings
        self.store = store

    def due_period(self, now: datetime) -> Period | None:
        """The period whose report is due at ``now`` and not yet sent, if any."""
        local = now.astimezone(VN_TZ)
        current = Period(local.year, 1 if local.month <= 6 else 2)
        last = current.previous()
        if now < due_at(last, dict(self.settings.report.due_dates)):
            return None
        return None if self.store.get_meta(sent_key(last)) else last

    def check(self, now: datetime | None = None) -> Period | None:
        """Send the due report if there is one; the period sent, or None."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        recipients = self.settings.report.send_to
        if not recipients:
            return None
        period = self.due_period(now)
        if period is None:
            return None
        try:
            sent = send_six_monthly(self.store, period, self.settings, recipients, now=now)
        except BusError as exc:
            log.warning("the six-monthly report %s is due but was not sent: %s", period.label, exc)
            return None
        self.store.set_meta(sent_key(period), now.isoformat())
        log.info(
            "mailed the six-monthly report %s to %s (%s)",
            period.label,
            ", ".join(recipients),
            ", ".join(o.name for o in sent),
        )
        return period

    def restore_metrics(self, now: datetime | None = None) -> None:
        """Set the last-sent gauge from the store: what was mailed before this process started."""
        local = (now or datetime.now(UTC)).astimezone(VN_TZ)
        period = Period(local.year, 1 if local.month <= 6 else 2)
        for _ in range(4):  # the last two years
            period = period.previous()
            sent = self.store.get_meta(sent_key(period))
            if sent:
                try:
                    stamp = datetime.fromisoformat(sent).timestamp()
                except ValueError:
                    continue
                metrics.STANDING_OFFICE_REPORT_LAST_SENT.labels(SIX_MONTHLY).set(stamp)
                return

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Check now, then every ``interval_s``, until ``stop`` is set."""
        try:
            self.restore_metrics()
        except BusError as exc:
            log.warning("the report schedule could not read what was sent before: %s", exc)
        while True:
            try:
                self.check()
            except BusError as exc:  # the store or the settings failed: say so, try again later
                log.warning("the report schedule could not check what is due: %s", exc)
            if stop.wait(interval_s):
                return
