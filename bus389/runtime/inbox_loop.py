"""The shared loop of the agency services: read an inbox, hand each event over, commit after it is durable.

Delivery guarantee: at-least-once into a handler that is idempotent by event id, which makes it
effectively once. The loop commits a batch's offsets only after every ``handle`` call of that batch
returned, so a crash between a side effect and the commit replays the event, and the handler's
idempotency absorbs the replay. A poison record (one that does not decode) never stops the loop: it is
given to ``on_poison`` and skipped. Agency services cannot write the DLQ (least privilege), so the
service records the poison itself. A broker failure of a poll or a commit (a leader change, a broker
killed or paused) is waited out with backoff, never an exit: only an authorization or configuration
error ends the loop (see :mod:`bus389.recovery`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bus389 import kafka as bus_kafka
from bus389 import metrics
from bus389.agencies import Agency
from bus389.codec import decode_value
from bus389.errors import BrokerError, BusError, CodecError
from bus389.lag import register_lag_collector
from bus389.recovery import Backoff, FailureKind, classify, fatal_error, kafka_cause
from bus389.runtime.member import GroupMember
from bus389.runtime.stop import StopFlag
from bus389.urgency import in_urgency_order

if TYPE_CHECKING:
    from bus389.signing.events import ReaderVerifier

__all__ = ["InboxMessage", "run_inbox_service"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboxMessage:
    """One decoded record read from an inbox, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes]
    timestamp_ms: int
    """The inbox record's timestamp: when the router wrote this copy."""
    schema: Any
    record: dict[str, Any] = field(repr=False)

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.record["meta"]
        return meta

    @property
    def event_id(self) -> str:
        return str(self.meta["event_id"])

    @property
    def event_type(self) -> str:
        return str(self.meta["event_type"])

    @property
    def source(self) -> str:
        return str(self.meta["source"])

    def header(self, name: str) -> str:
        value = self.headers.get(name)
        return value.decode("utf-8", errors="replace") if value is not None else ""


def _headers(raw: Any) -> dict[str, bytes]:
    return {str(k): bytes(v) if v is not None else b"" for k, v in (raw or [])}


def run_inbox_service(
    settings: Any,
    *,
    agency: Agency,
    group_id: str,
    handle: Callable[[InboxMessage], None],
    on_poison: Callable[[Any, BusError], None] | None = None,
    on_idle: Callable[[], None] | None = None,
    stop: StopFlag | None = None,
    max_idle_polls: int | None = None,
    poll_timeout_ms: int = 500,
    service: str | None = None,
    consumer_factory: Callable[[], Any] | None = None,
) -> None:
    """Consume the inbox of ``agency`` as ``group_id`` until ``stop`` is set or enough idle polls pass.

    Commit point: after every ``handle`` of a polled batch returned. ``handle`` must have made its side
    effect durable and idempotent by event id. A ``BusError`` marked retriable from ``handle`` is retried
    with backoff without committing; any other ``BusError`` is treated as poison for that one record.

    A broker failure of ``poll`` or ``commit`` that is not an authorization or configuration error
    (see :mod:`bus389.recovery`: a leader change, a broker killed or paused, a rebalance) never ends the
    loop: it backs off and tries again, and re-creates the consumer when it was closed or keeps failing.
    A batch whose commit failed is committed with the next one, or read again by whoever owns its
    partitions next (the handlers are idempotent): never skipped. An authorization or configuration
    error raises a non-retriable :class:`~bus389.errors.BrokerError` saying what to fix.
    ``consumer_factory`` (tests) replaces :func:`bus389.kafka.make_consumer`.
    """
    from bus389.signing.events import ReaderVerifier

    stop = stop or StopFlag()
    verifier = ReaderVerifier.from_settings(settings, agency)
    service_name = service or agency.value
    topic = settings.topics.inbox(agency)
    inbox = _InboxConsumer(settings, group_id, topic, service_name, stop, consumer_factory)
    inbox.open()
    register_lag_collector(settings, {group_id: [topic]})
    log.info("%s: reading %s as group %s", service_name, topic, group_id)
    idle_polls = 0
    try:
        while not stop.is_set:
            batch = inbox.poll(poll_timeout_ms)
            if batch is None:  # the poll failed: backed off (and maybe re-created the consumer)
                continue
            if not batch:
                inbox.commit_pending()
                inbox.unstick()
                idle_polls += 1
                if on_idle is not None:
                    on_idle()
                if max_idle_polls is not None and idle_polls >= max_idle_polls:
                    break
                continue
            idle_polls = 0
            decoded = _Decoded(decode_value)
            polled = [raw for records in batch.values() for raw in records]
            for raw in in_urgency_order(polled, _case_key, decoded.urgency):
                _deliver(raw, decoded, handle, on_poison, service_name, agency, metrics, stop, verifier)
            inbox.handled()
            inbox.commit_pending()
            if on_idle is not None:
                on_idle()
        inbox.commit_pending(final=True)
    finally:
        inbox.close()
        log.info("%s: stopped", service_name)


_REBUILD_AFTER = 3
"""A consumer whose poll failed this many times in a row is replaced by a new one."""
_FINAL_COMMIT_ATTEMPTS = 4
"""Commit attempts when stopping; after them the batch is left to be read again (idempotent handlers)."""


class _InboxConsumer:
    """The loop's side of the group member: poll and commit that back off on broker failures, and
    what was handled but not committed yet; the member (:class:`~bus389.runtime.member.GroupMember`)
    replaces the consumer when it is broken or left without partitions."""

    def __init__(
        self,
        settings: Any,
        group_id: str,
        topic: str,
        service_name: str,
        stop: StopFlag,
        factory: Callable[[], Any] | None,
    ) -> None:
        self.settings = settings
        self.service_name = service_name
        self.stop = stop
        self.member = GroupMember(
            settings, group_id=group_id, topics=[topic], name=service_name, stop=stop, factory=factory
        )
        self.pending = False
        """Records were handled whose offsets are not committed yet."""
        self.poll_backoff = Backoff()
        self.commit_backoff = Backoff()

    @property
    def consumer(self) -> Any:
        return self.member.consumer

    def open(self) -> None:
        """The first consumer: a failure here ends the service (the settings are likely wrong)."""
        self.member.open()

    def _stopped(self) -> bool:
        return self.stop.is_set

    def _survive(self, exc: BrokerError, what: str, backoff: Backoff) -> None:
        """Raise a fatal failure; log a transient one and back off."""
        if classify(exc) is FailureKind.FATAL:
            raise fatal_error(self.service_name, what, exc) from exc
        log.warning(
            "%s: %s failed (%s); retrying in %.1fs",
            self.service_name,
            what,
            exc,
            backoff.upcoming,
            extra={"service": self.service_name},
        )
        backoff.wait(self._stopped)

    def poll(self, timeout_ms: int) -> dict[Any, list[Any]] | None:
        """The next batch ({} when idle), or None after a failed poll (backed off, maybe rebuilt)."""
        try:
            with bus_kafka.kafka_errors(bootstrap=self.settings.bootstrap):
                batch: dict[Any, list[Any]] = self.consumer.poll(timeout_ms=timeout_ms)
        except BrokerError as exc:
            self._survive(exc, "poll", self.poll_backoff)
            if _closed(exc) or self.poll_backoff.failures >= _REBUILD_AFTER:
                self.rebuild(f"poll failed {self.poll_backoff.failures} time(s) in a row")
            return None
        self.poll_backoff.reset()
        return batch

    def handled(self) -> None:
        self.pending = True

    def unstick(self) -> None:
        """Rebuild the consumer when the group left it without partitions (see
        :mod:`bus389.assignment_watch`); called between batches, when nothing is pending."""
        if self.pending:
            return
        why = self.member.stuck()
        if why is not None:
            self.rebuild(why)

    def commit_pending(self, *, final: bool = False) -> None:
        """Commit what was handled; on a transient failure leave it pending (next turn) and back off.

        ``final`` (stopping): a few attempts, then the batch is left to be read again on the next start.
        """
        attempts = _FINAL_COMMIT_ATTEMPTS if final else 1
        backoff = Backoff(0.5, 2.0) if final else self.commit_backoff
        for attempt in range(attempts):
            if not self.pending:
                return
            try:
                with bus_kafka.kafka_errors(bootstrap=self.settings.bootstrap):
                    self.consumer.commit()
            except BrokerError as exc:
                if classify(exc) is FailureKind.FATAL:
                    raise fatal_error(self.service_name, "the offset commit", exc) from exc
                last = attempt == attempts - 1
                log.warning(
                    "%s: commit failed (%s); %s",
                    self.service_name,
                    exc,
                    "the batch will be read again on the next start (the handlers are idempotent)"
                    if final and last
                    else "retrying (the batch stays uncommitted meanwhile)",
                    extra={"service": self.service_name},
                )
                if _closed(exc):
                    self.rebuild("the consumer was closed")
                    return
                if not (final and last):
                    # While running, a stop cuts the wait short (the final commit follows); when
                    # stopping, the waits are short already.
                    backoff.wait(lambda: self.stop.is_set and not final)
                continue
            self.pending = False
            self.commit_backoff.reset()

    def rebuild(self, why: str) -> None:
        """Replace the consumer; it resumes from the committed offsets (uncommitted batches come again)."""
        self.pending = False
        if self.member.replace(why):
            self.poll_backoff.reset()

    def close(self) -> None:
        self.member.close()


def _closed(exc: BaseException) -> bool:
    """Did the call fail because the consumer itself is closed (it must be re-created)?"""
    import kafka.errors as kerrors

    cause = kafka_cause(exc)
    return isinstance(cause, kerrors.IllegalStateError) and "closed" in str(cause).lower()


def _case_key(raw: Any) -> tuple[Any, ...] | None:
    """The order the router keeps: one key's records of one partition (None: a record of its own)."""
    return None if raw.key is None else (raw.topic, raw.partition, raw.key)


class _Decoded:
    """Each record of a batch decoded once: to order the batch by urgency, then to deliver it."""

    def __init__(self, decode_value: Callable[[bytes], Any]) -> None:
        self._decode = decode_value
        self._done: dict[int, Any] = {}

    def __call__(self, value: bytes) -> Any:
        found = self._done.get(id(value))
        if found is None:
            try:
                found = self._decode(value)
            except CodecError as exc:
                found = exc
            self._done[id(value)] = found
        if isinstance(found, CodecError):
            raise found
        return found

    def urgency(self, raw: Any) -> str | None:
        try:
            meta = self(raw.value).record.get("meta")
        except CodecError:
            return None
        return meta.get("urgency") if isinstance(meta, Mapping) else None


def _deliver(
    raw: Any,
    decode_value: Callable[[bytes], Any],
    handle: Callable[[InboxMessage], None],
    on_poison: Callable[[Any, BusError], None] | None,
    service_name: str,
    agency: Agency,
    metrics: Any,
    stop: StopFlag,
    verifier: ReaderVerifier | None = None,
) -> None:
    try:
        decoded = decode_value(raw.value)
        message = InboxMessage(
            topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
            key=raw.key,
            value=raw.value,
            headers=_headers(raw.headers),
            timestamp_ms=int(raw.timestamp),
            schema=decoded.schema,
            record=decoded.record,
        )
    except CodecError as exc:
        _poison(raw, exc, on_poison, service_name, metrics)
        return
    backoff = 0.5
    while True:
        try:
            # The sender's signature, through the router's redaction: a copy that fails it is never
            # used. A key registry that cannot be read now is retried like a failing handler.
            refused = verifier.problem(decoded, message.headers) if verifier is not None else None
            if refused is not None:
                _poison(raw, refused, on_poison, service_name, metrics)
                return
            handle(message)
        except BusError as exc:
            if exc.retriable and not stop.is_set:
                log.warning(
                    "%s: retrying event %s after: %s",
                    service_name,
                    message.event_id,
                    exc,
                    extra={"event_id": message.event_id},
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if exc.retriable:
                # Stopping: leave the batch uncommitted so that the next start retries it.
                raise
            _poison(raw, exc, on_poison, service_name, metrics)
            return
        break
    metrics.EVENTS_CONSUMED.labels(agency.value, message.event_type, service_name).inc()
    metrics.ROUTED_TO_HANDLED.labels(agency.value, message.event_type).observe(
        max(0.0, time.time() - message.timestamp_ms / 1000)
    )


def _poison(
    raw: Any,
    exc: BusError,
    on_poison: Callable[[Any, BusError], None] | None,
    service_name: str,
    metrics: Any,
) -> None:
    reason = getattr(exc, "reason", type(exc).__name__)
    log.warning(
        "%s: skipping poison record %s/%s/%s (%s): %s",
        service_name,
        raw.topic,
        raw.partition,
        raw.offset,
        reason,
        exc,
    )
    metrics.POISON_EVENTS.labels(service_name, reason).inc()
    if on_poison is not None:
        on_poison(raw, exc)
