"""The ICT service: the ``ict`` inbox into the store, the blocklist files, the results through the outbox.

Delivery guarantees:

- **In**: the shared loop (:func:`~bus389.runtime.inbox_loop.run_inbox_service`) commits the offsets after
  :meth:`IctService.handle` returned, and ``handle`` has stored the event in one SQLite transaction,
  idempotent by event id: at-least-once into an idempotent store. What the routing policy sends ICT:
  a ``domain_block_request`` (stored with any decision taken at once), a ``suspect_seller`` (a lead for
  inspection, never blocked automatically: :mod:`bus389.consumers.ict.leads`), and any event answering one of
  ICT's own (``meta.in_reply_to``: a reply, kept as it came). A record that does not decode, whose meta
  disagrees with its schema, or of another type (the policy never sends one) is recorded in the
  store's ``rejected_events`` table, counted, and skipped.
- **Files**: between polls, :meth:`IctService.on_idle` lifts expired blocks and rewrites the blocklist
  files when the store says they changed (``bus389 ict approve`` in another process only writes the
  store). A result is published only once the files show its decision.
- **Out**: every decision left one encoded ``domain_block_result`` in the store's outbox table (a
  transactional outbox). The service publishes them in Kafka transactions (transactional id
  ``<prefix>.ict.results``: a second producer would fence the first, so a second instance on the same
  host stands by without one until it holds the lock, :mod:`bus389.instances`) and marks them sent
  after the commit.
  A crash between the Kafka commit and the store update is repaired at start-up, and so is a publish
  whose outcome is unknown (a commit that timed out may have gone through): before draining again, the
  service reads the ict outbox topic (``read_committed``, from the first record that can be a pending
  result, up to the end offsets) and marks every result already there as sent. Result event ids are
  UUIDv5 of (request, decision), so even a re-send would be the same event. The key is the request's
  ``case_ref`` when set, else the result's event id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bus389 import metrics
from bus389.agencies import Agency
from bus389.consumers.ict.blocklist import Refreshed, refresh_blocklist
from bus389.consumers.ict.decisions import BlockRequest, Decider, DecisionKind
from bus389.consumers.ict.leads import LEAD_TYPE, lead_row, reply_row
from bus389.consumers.ict.store import IctStore, OutboxRow, RejectedEventRow, RequestState, open_store
from bus389.errors import BrokerError, BusError, SchemaMismatchError, StoreError
from bus389.events.notices import RoutingNotice
from bus389.kafka import kafka_errors, open_transactional_producer
from bus389.recovery import FailureKind, classify, fatal_error, is_fenced
from bus389.runtime.inbox_loop import InboxMessage, run_inbox_service
from bus389.runtime.stop import StopFlag
from bus389.signing.events import EventSigner
from bus389.topic_scan import scan_topic

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = [
    "LEAD_TYPE",
    "REQUEST_TYPE",
    "SERVICE_NAME",
    "IctService",
    "group_id",
    "run_ict_service",
    "scan_published",
    "transactional_id",
]

log = logging.getLogger(__name__)

SERVICE_NAME = "ict"
REQUEST_TYPE = "domain_block_request"
NOTICE_TYPE = RoutingNotice.EVENT_TYPE
KEPT_TYPES = frozenset({"directive", "case_claim"})
"""Kept with the replies (the messages table): directions addressed to ICT (II.8, II.9) and claims on
sellers ICT received (I.2) answer nothing of ICT's own but are ICT's to read."""
_DRAIN_BATCH = 200
_FIRST_ANSWERS = (DecisionKind.BLOCKED, DecisionKind.REJECTED, DecisionKind.UNBLOCKED)
"""Decision kinds that are a request's first answer (what request-to-result time measures)."""
_SCAN_MARGIN_MS = 60_000
"""How far before the oldest unsent result the start-up scan begins (clock skew between hosts)."""


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def group_id(settings: Settings) -> str:
    """The consumer group ``settings.ict.group_id`` under the agency's identity prefix ``<prefix>.ict.``."""
    return settings.topics.agency_id(Agency.ICT, settings.ict.group_id)


def transactional_id(settings: Settings) -> str:
    """The results producer's transactional id: ``<topic_prefix>.ict.results`` (one writer at a time)."""
    return settings.topics.agency_id(Agency.ICT, "results")


def scan_published(
    settings: Settings, wanted: Iterable[str], *, since_ms: int | None, timeout_s: float
) -> dict[str, str]:
    """Which of the ``wanted`` event ids are already in the ict outbox (committed), with their positions.

    Reads every partition from the first offset at or after ``since_ms`` (the earliest still held when
    None or older) up to the end offsets taken at the start; matches on the ``ce_id`` header, so no
    record is decoded. Raises :class:`BrokerError` when the end is not reached within ``timeout_s``:
    the caller must not publish on a guess.
    """
    remaining = set(wanted)
    found: dict[str, str] = {}
    if not remaining:
        return found
    records = scan_topic(
        settings,
        settings.topics.outbox(Agency.ICT),
        timeout_s=timeout_s,
        since_ms=since_ms,
        timeout_hint="BUS389_ICT__OUTBOX_SCAN_TIMEOUT_S",
    )
    with closing(records):
        for record in records:
            headers = dict(record.headers or [])
            raw_id = headers.get("ce_id")
            event_id = raw_id.decode("utf-8", errors="replace") if raw_id else ""
            if event_id in remaining:
                remaining.discard(event_id)
                found[event_id] = f"{record.topic}/{record.partition}/{record.offset}"
                if not remaining:
                    break
    return found


class IctService:
    """The ICT service's handler, poison hook and idle pass over one store and one results producer.

    Use as a context manager: entering initialises the producer's transactions (fencing an older
    instance and aborting its open transaction), repairs the outbox (:meth:`reconcile`), rewrites the
    files if needed and publishes what is due; leaving publishes what is due again and closes.
    ``producer_factory`` (a producer whose ``init_transactions`` succeeded) and ``clock`` are for tests.
    """

    def __init__(
        self,
        settings: Settings,
        store: IctStore,
        *,
        clock: Callable[[], int] = _wall_clock_ms,
        producer_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.decider = Decider(store, settings, clock=clock)
        self.topic = settings.topics.outbox(Agency.ICT)
        self._signer = EventSigner.from_settings(settings, Agency.ICT.value)
        self.output_dir = Path(settings.ict.output_dir)
        self._producer_factory = producer_factory or (
            lambda: open_transactional_producer(settings, transactional_id(settings))
        )
        self._producer: Any = None
        self._unsure = True
        """A publish may have committed without the store knowing: reconcile before the next one."""
        self._postponed: tuple[str, float] | None = None
        self.last_refresh: Refreshed | None = None

    # --- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> IctService:
        self.start()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self.on_idle()
        finally:
            self.close()

    def start(self) -> None:
        self._ready_to_publish()
        self.on_idle()

    def _ready_to_publish(self) -> None:
        """Build the producer if there is none (fencing an older epoch, aborting what it left open),
        then reconcile the outbox if a publish may have gone through unnoticed."""
        if self._producer is None:
            with kafka_errors(bootstrap=self.settings.bootstrap):
                self._producer = self._producer_factory()
        if self._unsure:
            self.reconcile()
            self._unsure = False

    def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with kafka_errors():
                producer.close(timeout=10)

    # --- in ---------------------------------------------------------------------------------------------

    def handle(self, message: InboxMessage) -> None:
        """Store one inbox event; durable and idempotent (by event id) when it returns.

        A ``domain_block_request`` is stored with any decision due at once; a ``suspect_seller`` is
        kept as a lead (never blocked automatically); another event answering one of ICT's own
        (``meta.in_reply_to``), a directive or a case claim is kept as a reply. Raises
        :class:`SchemaMismatchError` (not retriable: the loop hands the record to :meth:`on_poison`)
        when the meta names another event type than the schema, or for an event of another type that
        answers nothing, and a retriable :class:`StoreError` when the database fails (the loop retries
        without committing).
        """
        schema_type = getattr(message.schema, "event_type", None)
        if schema_type and message.event_type != schema_type:
            raise SchemaMismatchError(
                f"meta.event_type {message.event_type!r} disagrees with the record's schema {schema_type!r}"
            )
        if message.event_type == REQUEST_TYPE:
            self._handle_request(message)
        elif message.event_type == LEAD_TYPE:
            self._handle_lead(message)
        elif message.meta.get("in_reply_to") or message.event_type in KEPT_TYPES:
            self._handle_reply(message)
        elif message.event_type == NOTICE_TYPE:
            # The router's notice about a record of ICT's own it could not even decode: nothing to
            # link it to in the store; the operator sees it in the log (and in the inbox topic).
            log.warning(
                "ict: the router could not deliver a record of ours: %s",
                message.record.get("reason"),
                extra={"event_id": message.event_id, "event_type": message.event_type},
            )
        else:
            raise SchemaMismatchError(
                f"the ict inbox carries {REQUEST_TYPE} and {LEAD_TYPE} events and replies to ICT's own "
                f"events, not a {message.event_type} that answers none"
            )

    def _handle_lead(self, message: InboxMessage) -> None:
        row = lead_row(
            message.record,
            rule=message.header("bus389_rule"),
            origin=f"{message.topic}/{message.partition}/{message.offset}",
            received_at=self.clock(),
        )
        with self.store.transaction():
            added = self.store.insert_lead(row)
        extra = {"event_id": row.event_id, "agency": row.sender, "service": SERVICE_NAME}
        if added:
            log.info(
                "lead %s from %s: %s (%d domain(s), %d account(s)) kept for inspection",
                row.event_id,
                row.sender,
                row.seller_name,
                len(row.domains),
                len(row.accounts),
                extra=extra,
            )
        else:
            log.info("lead %s again: already kept", row.event_id, extra=extra)

    def _handle_reply(self, message: InboxMessage) -> None:
        row = reply_row(
            message.record,
            rule=message.header("bus389_rule"),
            origin=f"{message.topic}/{message.partition}/{message.offset}",
            received_at=self.clock(),
        )
        with self.store.transaction():
            added = self.store.insert_reply(row)
        log.info(
            "%s %s from %s answering %s%s",
            row.event_type,
            row.event_id,
            row.sender,
            row.in_reply_to,
            "" if added else ": already kept",
            extra={"event_id": row.event_id, "agency": row.sender, "service": SERVICE_NAME},
        )

    def _handle_request(self, message: InboxMessage) -> None:
        request = BlockRequest.from_record(message.record)
        origin = f"{message.topic}/{message.partition}/{message.offset}"
        ingested = self.decider.ingest(request, origin=origin)
        extra = {"event_id": request.event_id, "agency": request.requester, "service": SERVICE_NAME}
        if ingested.duplicate:
            log.info(
                "request %s again (already %s): nothing to do", request.event_id, ingested.state, extra=extra
            )
        elif ingested.outcome is not None:
            log.info(
                "request %s from %s: %s at once",
                request.event_id,
                request.requester,
                ingested.outcome,
                extra=extra,
            )
        else:
            log.info(
                "request %s from %s: pending the operator", request.event_id, request.requester, extra=extra
            )

    def on_poison(self, raw: Any, error: BusError) -> None:
        """Record a record the loop could not use (undecodable, or not a request) and let it be skipped."""
        headers = {str(k): v for k, v in (getattr(raw, "headers", None) or []) if v is not None}

        def header(name: str) -> str | None:
            value = headers.get(name)
            return value.decode("utf-8", errors="replace") if value else None

        row = RejectedEventRow(
            topic=str(raw.topic),
            partition=int(raw.partition),
            offset=int(raw.offset),
            event_id=header("ce_id"),
            event_type=header("ce_type"),
            reason=str(getattr(error, "reason", type(error).__name__)),
            detail=str(error)[:2000],
            recorded_at=self.clock(),
        )
        backoff = 0.2
        for attempt in range(5):
            try:
                with self.store.transaction():
                    self.store.record_rejected_event(row)
                return
            except StoreError as exc:
                log.warning("cannot record poison record (attempt %d): %s", attempt + 1, exc)
                time.sleep(backoff)
                backoff *= 2
        log.error(
            "poison record %s/%s/%s (%s) skipped without being recorded in the store",
            row.topic,
            row.partition,
            row.offset,
            row.reason,
        )

    # --- between polls ----------------------------------------------------------------------------------

    def on_idle(self) -> None:
        """Expire, rewrite the files if they changed, publish due results, update the gauges.

        A transient failure (the store busy, a broker away, a leader change: see
        :func:`bus389.recovery.classify`) is logged and retried on the next pass, with a rebuilt
        producer if it broke; a fatal one (this instance fenced by another, an ACL or a setting) is
        raised and stops the service.
        """
        try:
            self.expire()
            self.last_refresh = self.refresh()
            self._ready_to_publish()
            self.drain()
        except BusError as exc:
            if is_fenced(exc):
                raise BrokerError(
                    f"ict: another ICT service took over the results (transactional id "
                    f"{transactional_id(self.settings)}) without this host's lock (another host or "
                    "BUS389_INSTANCES__LOCK_DIR): run the instances of one bus on one host, where a "
                    "second one stands by",
                    retriable=False,
                ) from exc
            kind = classify(exc)
            if kind is FailureKind.FATAL:
                raise fatal_error(SERVICE_NAME, "the results producer", exc) from exc
            if kind is not FailureKind.TRANSIENT:
                raise
            self._warn_postponed(exc)
        else:
            self._postponed = None
        self.update_gauges()

    def _warn_postponed(self, exc: BusError) -> None:
        # Between polls this runs twice a second: say it when it starts, then every half minute.
        text, now = str(exc), time.monotonic()
        if self._postponed is None or self._postponed[0] != text or now - self._postponed[1] > 30:
            log.warning("idle pass postponed (retrying): %s", exc, extra={"service": SERVICE_NAME})
            self._postponed = (text, now)

    def expire(self) -> list[str]:
        if not self.store.due_to_expire(self.clock()):
            return []
        expired = self.decider.expire_due()
        for request_id in expired:
            log.info("request %s expired: blocks lifted", request_id, extra={"event_id": request_id})
        return expired

    def refresh(self, *, force: bool = False) -> Refreshed:
        refreshed = refresh_blocklist(
            self.store, output_dir=self.output_dir, zone=self.settings.ict.rpz_zone, force=force
        )
        if refreshed.written:
            log.info(
                "blocklist written: serial %d, %d entries, in %s",
                refreshed.serial,
                refreshed.entries,
                self.output_dir,
                extra={"service": SERVICE_NAME},
            )
        return refreshed

    def drain(self) -> int:
        """Publish the results the files already show, in one Kafka transaction; returns how many."""
        if self._producer is None:
            raise RuntimeError("IctService.drain before start()")
        rows = self.store.unsent(up_to_seq=self.store.counter("written_seq"), limit=_DRAIN_BATCH)
        if not rows:
            return 0
        positions = self._publish(rows)
        sent_at = self.clock()
        with self.store.transaction():
            for row, position in zip(rows, positions, strict=True):
                self.store.mark_sent(row.event_id, sent_at, position)
        for row in rows:
            metrics.ICT_DECISIONS.labels(row.outcome.lower()).inc()
            if row.decision_kind in _FIRST_ANSWERS:
                metrics.ICT_REQUEST_TO_RESULT.observe(max(0.0, (sent_at - row.request_published_at) / 1000))
            log.info(
                "result %s (%s) for request %s published",
                row.event_id,
                row.outcome,
                row.request_id,
                extra={"event_id": row.event_id, "agency": row.requester, "service": SERVICE_NAME},
            )
        return len(rows)

    def _signed(self, row: OutboxRow) -> list[tuple[str, bytes]]:
        """The row's headers, plus the ICT's signature when a key is configured (:mod:`bus389.signing`)."""
        if self._signer is None:
            return list(row.headers)
        return self._signer.headers(row.value, row.headers)

    def _publish(self, rows: list[OutboxRow]) -> list[str]:
        producer = self._producer
        try:
            with kafka_errors(bootstrap=self.settings.bootstrap):
                producer.begin_transaction()
                futures = [
                    producer.send(self.topic, key=row.key, value=row.value, headers=self._signed(row))
                    for row in rows
                ]
                producer.commit_transaction()
                metadata = [future.get(timeout=30) for future in futures]
        except BrokerError as exc:
            # A commit that timed out may have gone through: look before publishing these again.
            self._unsure = True
            if not is_fenced(exc) and not self._abort():
                producer, self._producer = self._producer, None
                _close_quietly(producer)
            raise
        return [f"{m.topic}/{m.partition}/{m.offset}" for m in metadata]

    def _abort(self) -> bool:
        """Abort the open transaction; False when the producer cannot (it must be rebuilt)."""
        try:
            with kafka_errors():
                self._producer.abort_transaction()
        except BrokerError as exc:
            log.warning("could not abort the results transaction (%s): rebuilding the producer", exc)
            return False
        return True

    def reconcile(self) -> int:
        """Mark sent every unsent result already committed to the ict outbox; returns how many."""
        unsent = self.store.unsent(limit=1_000_000)
        if not unsent:
            return 0
        since = min(row.created_at for row in unsent) - _SCAN_MARGIN_MS
        found = scan_published(
            self.settings,
            (row.event_id for row in unsent),
            since_ms=since,
            timeout_s=self.settings.ict.outbox_scan_timeout_s,
        )
        if found:
            now = self.clock()
            with self.store.transaction():
                for event_id, position in found.items():
                    self.store.mark_sent(event_id, now, position)
            log.warning(
                "%d result(s) were published before a crash but not marked sent: marked now",
                len(found),
                extra={"service": SERVICE_NAME},
            )
        return len(found)

    def update_gauges(self) -> None:
        try:
            counts = self.store.count_by_state()
            oldest = self.store.oldest_pending_received_at()
        except StoreError as exc:
            log.warning("cannot read the store for the gauges: %s", exc)
            return
        for state in RequestState.ALL:
            metrics.ICT_REQUESTS.labels(state).set(counts.get(state, 0))
        age = 0.0 if oldest is None else max(0.0, (self.clock() - oldest) / 1000)
        metrics.ICT_OLDEST_PENDING.set(age)


def _close_quietly(producer: Any) -> None:
    try:
        producer.close(timeout=0)
    except Exception as exc:  # noqa: BLE001 - a broken producer is being thrown away
        log.warning("closing the results producer failed: %s", exc)


def run_ict_service(
    settings: Settings,
    *,
    stop: StopFlag | None = None,
    max_idle_polls: int | None = None,
    poll_timeout_ms: int = 500,
    clock: Callable[[], int] = _wall_clock_ms,
) -> None:
    """Run the ICT service until ``stop`` is set (SIGTERM) or ``max_idle_polls`` empty polls in a row.

    On stop the loop finishes the batch in hand and commits; the service then publishes what is due
    and closes the producer and the store.
    """
    store = open_store(settings.store.ict_url)
    try:
        with IctService(settings, store, clock=clock) as service:
            run_inbox_service(
                settings,
                agency=Agency.ICT,
                group_id=group_id(settings),
                handle=service.handle,
                on_poison=service.on_poison,
                on_idle=service.on_idle,
                stop=stop,
                max_idle_polls=max_idle_polls,
                poll_timeout_ms=poll_timeout_ms,
                service=SERVICE_NAME,
            )
    finally:
        store.close()
