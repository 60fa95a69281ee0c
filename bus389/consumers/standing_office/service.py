"""The standing office's inbox service: every event of the ``market_surveillance`` inbox into its store.

Plan III.3: the members report to the standing office (Cục Quản lý thị trường tỉnh), which aggregates.
Delivery guarantee: at-least-once from :func:`~bus389.runtime.inbox_loop.run_inbox_service` (offsets
committed only after :meth:`StandingOfficeService.handle` returned, i.e. after the event's row committed)
into a store that is idempotent by event id: effectively once. A replay stores nothing and counts nothing.

A record that does not decode, or decodes without a usable ``meta``, is poison: the service cannot
write the DLQ (least privilege), so it records the record's topic, partition, offset and reason in the
store's rejected table, counts it (``bus389_poison_events_total``, by the shared loop) and goes on.

With ``settings.report.send_to`` set, a second thread (its own store connection) mails the six-monthly
report on its due date (:mod:`.schedule`), counted in ``bus389_reports_sent_total{kind}``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from bus389 import metrics
from bus389.agencies import STANDING_OFFICE
from bus389.consumers.standing_office.store import StandingOfficeStore, UnusableEventError
from bus389.errors import BusError
from bus389.runtime.inbox_loop import InboxMessage, run_inbox_service
from bus389.runtime.stop import StopFlag

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = ["SERVICE_NAME", "StandingOfficeService", "group_id", "run_standing_office"]

log = logging.getLogger(__name__)

SERVICE_NAME = "standing-office"


def group_id(settings: Settings) -> str:
    """The group ``settings.report.group_id`` under the identity prefix ``<prefix>.market_surveillance.``."""
    return settings.topics.agency_id(STANDING_OFFICE, settings.report.group_id)


class StandingOfficeService:
    """The handler pair given to the shared inbox loop, over one open store."""

    def __init__(self, store: StandingOfficeStore) -> None:
        self.store = store

    def handle(self, message: InboxMessage) -> None:
        """Store ``message`` (with the router's redaction header); durable and idempotent when it returns.

        Raises :class:`~bus389.consumers.standing_office.store.UnusableEventError` (not retriable: the loop
        hands
        the record to :meth:`on_poison`) for a record without usable meta or whose meta names another
        event type than its schema, and :class:`~bus389.errors.StoreError` (retriable: the loop retries
        without committing) when the database fails.
        """
        schema_type = getattr(message.schema, "event_type", None)
        meta = message.record.get("meta")
        if isinstance(meta, dict) and schema_type and meta.get("event_type") != schema_type:
            raise UnusableEventError(
                f"meta.event_type {meta.get('event_type')!r} disagrees with schema {schema_type!r}"
            )
        stored = self.store.add_event(
            message.record,
            schema_id=getattr(message.schema, "schema_id", None),
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            headers=message.headers,
        )
        if stored:
            metrics.STANDING_OFFICE_EVENTS_STORED.labels(message.event_type).inc()
            log.info(
                "stored %s %s from %s",
                message.event_type,
                message.event_id,
                message.source,
                extra={
                    "event_id": message.event_id,
                    "event_type": message.event_type,
                    "agency": message.source,
                },
            )
        else:
            log.info(
                "already stored (a replay): %s",
                message.event_id,
                extra={"event_id": message.event_id, "event_type": message.event_type},
            )

    def on_poison(self, raw: Any, error: BusError) -> None:
        """Record a skipped inbox record (``raw`` is the consumer record) with the error's reason code."""
        reason = str(getattr(error, "reason", type(error).__name__))
        event_id = None
        header = dict(raw.headers or []).get("ce_id") if getattr(raw, "headers", None) else None
        if isinstance(header, bytes):
            event_id = header.decode("utf-8", errors="replace")
        self.store.add_rejected(
            topic=str(raw.topic),
            partition=int(raw.partition),
            offset=int(raw.offset),
            reason=reason,
            detail=str(error),
            event_id=event_id,
        )


def run_standing_office(
    settings: Settings,
    *,
    stop: StopFlag | None = None,
    max_idle_polls: int | None = None,
    poll_timeout_ms: int = 500,
) -> None:
    """Consume the standing office's inbox into the store at ``settings.store.standing_office_url``.

    Returns when ``stop`` is set (SIGTERM: the batch in hand is finished and committed) or after
    ``max_idle_polls`` empty polls.
    """
    schedule_stop = threading.Event()
    scheduler = _start_schedule(settings, schedule_stop)
    try:
        _run_inbox(settings, stop, max_idle_polls, poll_timeout_ms)
    finally:
        schedule_stop.set()
        if scheduler is not None:
            scheduler.join(timeout=settings.mail.timeout_s + 5)


def _start_schedule(settings: Settings, stop: threading.Event) -> threading.Thread | None:
    """The thread that mails the six-monthly report when due; None when no recipient is configured."""
    if not settings.report.send_to:
        return None
    from bus389.consumers.standing_office.schedule import ReportSchedule

    def run() -> None:
        with StandingOfficeStore.open(
            settings.store.standing_office_url, ignore_domains=settings.ict.never_block
        ) as store:
            ReportSchedule(settings, store).run(stop, settings.report.schedule_check_s)

    thread = threading.Thread(target=run, name="report-schedule", daemon=True)
    thread.start()
    log.info(
        "standing office: mailing the six-monthly report when due to %s", ", ".join(settings.report.send_to)
    )
    return thread


def _run_inbox(
    settings: Settings, stop: StopFlag | None, max_idle_polls: int | None, poll_timeout_ms: int
) -> None:
    with StandingOfficeStore.open(
        settings.store.standing_office_url, ignore_domains=settings.ict.never_block
    ) as store:
        service = StandingOfficeService(store)
        log.info("standing office: storing into a %s store", store.dialect)
        run_inbox_service(
            settings,
            agency=STANDING_OFFICE,
            group_id=group_id(settings),
            handle=service.handle,
            on_poison=service.on_poison,
            stop=stop,
            max_idle_polls=max_idle_polls,
            poll_timeout_ms=poll_timeout_ms,
            service=SERVICE_NAME,
        )
