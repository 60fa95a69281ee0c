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

Two duties act on what is stored: a ``case_claim`` sharing a tax code, domain, account or phone with an
earlier claim by another agency is flagged at once by a ``DECONFLICT`` directive to both claimants,
published through the standing office's own outbox before the claim is stored (plan I.2; see
:mod:`~bus389.consumers.standing_office.deconfliction`); and, when idle, the overdue directives are
counted in ``bus389_directives_overdue`` (II.9; see :mod:`~bus389.consumers.standing_office.directives`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bus389 import metrics
from bus389.agencies import STANDING_OFFICE
from bus389.consumers.standing_office.correlation import extract_keys
from bus389.consumers.standing_office.deconfliction import CLAIM_TYPE, deconflict_directive, find_conflicts
from bus389.consumers.standing_office.directives import statuses_in
from bus389.consumers.standing_office.store import StandingOfficeStore, UnusableEventError
from bus389.errors import BusError
from bus389.runtime.inbox_loop import InboxMessage, run_inbox_service
from bus389.runtime.stop import StopFlag

if TYPE_CHECKING:
    from bus389.events import Event
    from bus389.settings import Settings

__all__ = ["SERVICE_NAME", "StandingOfficeService", "group_id", "run_standing_office"]

log = logging.getLogger(__name__)

SERVICE_NAME = "standing-office"


def group_id(settings: Settings) -> str:
    """The group ``settings.report.group_id`` under the identity prefix ``<prefix>.market_surveillance.``."""
    return settings.topics.agency_id(STANDING_OFFICE, settings.report.group_id)


class StandingOfficeService:
    """The handler pair given to the shared inbox loop, over one open store."""

    def __init__(
        self,
        store: StandingOfficeStore,
        *,
        publish: Callable[[Event], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.publish = publish
        """Sends one event through the standing office's outbox (None: conflicts are only logged)."""
        self.clock = clock
        self._gauges_at = 0.0

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
        if message.event_type == CLAIM_TYPE:
            # Flag before storing: if the publish fails, the claim is not stored and the retry flags it
            # again (the same directive id: the router delivers it once).
            self._flag_conflicts(message)
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

    def _flag_conflicts(self, message: InboxMessage) -> None:
        keys = extract_keys(CLAIM_TYPE, message.record, ignore_domains=self.store.ignore_domains)
        matches = self.store.events_with_keys((k.kind, k.value) for k in keys)
        # one event per claim (several of its keys may match), oldest first, never the claim itself
        this = (message.event_id, message.source)
        earlier = list(
            {e.key: e for e, _ in matches if e.event_type == CLAIM_TYPE and e.key != this}.values()
        )
        known = self.store.keys_of([e.key for e in earlier])
        conflicts = find_conflicts(message.source, keys, ((e, known.get(e.key, [])) for e in earlier))
        first_time = self.store.get(message.event_id, message.source) is None
        for conflict in conflicts:
            directive = deconflict_directive(message.record, conflict, now=self.clock())
            extra = {"event_id": message.event_id, "event_type": message.event_type, "agency": message.source}
            if self.publish is None:
                log.warning(
                    "claim %s conflicts with %s (no outbox to flag it)",
                    message.event_id,
                    conflict.earlier_id,
                    extra=extra,
                )
                continue
            self.publish(directive)
            if first_time:
                metrics.CLAIM_CONFLICTS.inc()
            log.info(
                "claim %s by %s conflicts with claim %s by %s: DECONFLICT directive %s sent to both",
                message.event_id,
                message.source,
                conflict.earlier_id,
                conflict.earlier_source,
                directive.event_id,
                extra=extra,
            )

    def on_idle(self) -> None:
        """Count the overdue directives (at most every 10 s: a query over the directives held)."""
        if time.monotonic() - self._gauges_at < 10.0:
            return
        self._gauges_at = time.monotonic()
        overdue = [d for d in statuses_in(self.store, now=self.clock()) if d.overdue]
        metrics.DIRECTIVES_OVERDUE.set(len(overdue))

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
    outbox = _Outbox(settings)
    with (
        StandingOfficeStore.open(
            settings.store.standing_office_url, ignore_domains=settings.ict.never_block
        ) as store,
        outbox,
    ):
        service = StandingOfficeService(store, publish=outbox.send)
        log.info("standing office: storing into a %s store", store.dialect)
        run_inbox_service(
            settings,
            agency=STANDING_OFFICE,
            group_id=group_id(settings),
            handle=service.handle,
            on_poison=service.on_poison,
            on_idle=service.on_idle,
            stop=stop,
            max_idle_polls=max_idle_polls,
            poll_timeout_ms=poll_timeout_ms,
            service=SERVICE_NAME,
        )


class _Outbox:
    """The standing office's outbox, opened at the first event it sends (most runs send none).

    An idempotent ``acks=all`` producer, not a transaction: each event stands alone, its id is derived
    from what it answers, and the router delivers a repeated id once (same sender, same id).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: Any = None

    def send(self, event: Event) -> None:
        from bus389.codec import encode_event
        from bus389.kafka import kafka_errors, make_producer
        from bus389.signing.events import EventSigner

        encoded = encode_event(event)
        # Signed as every publisher signs, when keyed.
        signer = EventSigner.from_settings(self.settings, STANDING_OFFICE.value)
        headers = signer.headers(encoded.value, encoded.headers) if signer else list(encoded.headers)
        topic = self.settings.topics.outbox(STANDING_OFFICE)
        with kafka_errors(bootstrap=self.settings.bootstrap):
            if self._producer is None:
                self._producer = make_producer(self.settings)
            try:
                future = self._producer.send(topic, key=encoded.key, value=encoded.value, headers=headers)
                future.get(timeout=self.settings.kafka.delivery_timeout_ms / 1000)
            except Exception:
                self.close()  # a producer that failed a send is rebuilt for the retry
                raise

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=5)

    def __enter__(self) -> _Outbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
