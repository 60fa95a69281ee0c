"""The shared loop of the agency services: read an inbox, hand each event over, commit after it is durable.

Delivery guarantee: at-least-once into a handler that is idempotent by event id, which makes it
effectively once. The loop commits a batch's offsets only after every ``handle`` call of that batch
returned, so a crash between a side effect and the commit replays the event, and the handler's
idempotency absorbs the replay. A poison record (one that does not decode) never stops the loop: it is
given to ``on_poison`` and skipped. Agency services cannot write the DLQ (least privilege), so the
service records the poison itself.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from bus389.agencies import Agency
from bus389.errors import BusError, CodecError

__all__ = ["InboxMessage", "StopFlag", "run_inbox_service"]

log = logging.getLogger(__name__)


class StopFlag:
    """Set by SIGTERM or SIGINT (once installed): the loop finishes the batch in hand, commits and returns."""

    def __init__(self) -> None:
        self._set = False

    @property
    def is_set(self) -> bool:
        return self._set

    def set(self, *_: object) -> None:
        self._set = True

    def install(self) -> StopFlag:
        def _handler(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s received: finishing the batch in hand", signal.Signals(signum).name)
            self._set = True

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)
        return self


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
) -> None:
    """Consume the inbox of ``agency`` as ``group_id`` until ``stop`` is set or enough idle polls pass.

    Commit point: after every ``handle`` of a polled batch returned. ``handle`` must have made its side
    effect durable and idempotent by event id. A ``BusError`` marked retriable from ``handle`` is retried
    with backoff without committing; any other ``BusError`` is treated as poison for that one record.
    """
    from bus389 import metrics
    from bus389.codec import decode_value
    from bus389.kafka import kafka_errors, make_consumer
    from bus389.lag import register_lag_collector

    stop = stop or StopFlag()
    service_name = service or agency.value
    topic = settings.topics.inbox(agency)
    idle_polls = 0
    with kafka_errors():
        consumer = make_consumer(settings, group_id=group_id, topics=[topic])
    register_lag_collector(settings, {group_id: [topic]})
    log.info("%s: reading %s as group %s", service_name, topic, group_id)
    try:
        while not stop.is_set:
            with kafka_errors():
                batch = consumer.poll(timeout_ms=poll_timeout_ms)
            if not batch:
                idle_polls += 1
                if on_idle is not None:
                    on_idle()
                if max_idle_polls is not None and idle_polls >= max_idle_polls:
                    break
                continue
            idle_polls = 0
            for records in batch.values():
                for raw in records:
                    _deliver(raw, decode_value, handle, on_poison, service_name, agency, metrics, stop)
            with kafka_errors():
                consumer.commit()
            if on_idle is not None:
                on_idle()
    finally:
        consumer.close(autocommit=False)
        log.info("%s: stopped", service_name)


def _deliver(
    raw: Any,
    decode_value: Callable[[bytes], Any],
    handle: Callable[[InboxMessage], None],
    on_poison: Callable[[Any, BusError], None] | None,
    service_name: str,
    agency: Agency,
    metrics: Any,
    stop: StopFlag,
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
