"""Reading a whole topic: every committed record from the beginning (or a time) to the end offsets.

The one scan behind the chaos checker, the router's reply index (the audit trail), ``bus389 dlq``, the
ICT and tax outbox de-duplication: a consumer without a group assigns every partition, takes the end
offsets first (the last stable offsets: the consumer reads ``read_committed``), and reads until each
partition reached its end, so records published meanwhile are not waited for. Nothing is committed.
The reader stops early by leaving the loop: the consumer is closed either way.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from kafka import TopicPartition

from bus389 import kafka as bus_kafka
from bus389.errors import BrokerError

__all__ = ["TopicMissingError", "scan_topic", "topic_partitions"]

_POLL_MS = 500


class TopicMissingError(BrokerError):
    """The topic is not in the metadata (not created yet, or not visible to this principal)."""


def topic_partitions(consumer: Any, settings: Any, topic: str, *, wait_s: float = 0.0) -> list[Any]:
    """Every partition of ``topic`` in the consumer's metadata, waiting up to ``wait_s`` for it to show.

    Raises :class:`TopicMissingError` (retriable: an administrator may create it) saying how to fix it.
    """
    deadline = time.monotonic() + wait_s
    while True:
        with bus_kafka.kafka_errors(bootstrap=settings.bootstrap):
            partitions = consumer.partitions_for_topic(topic) or set()
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        if time.monotonic() >= deadline:
            raise TopicMissingError(bus_kafka.missing_topic_message(settings, topic), retriable=True)
        time.sleep(0.5)  # a topic just created takes a moment to show in the metadata


def scan_topic(
    settings: Any,
    topic: str,
    *,
    timeout_s: float,
    since_ms: int | None = None,
    wait_for_topic_s: float = 0.0,
    timeout_hint: str = "",
    **consumer_options: Any,
) -> Generator[Any, None, None]:
    """Yield every committed record of ``topic`` up to the end offsets taken at the start.

    From the first offset at or after ``since_ms`` when given (the earliest still held when older),
    else from the beginning. Raises :class:`TopicMissingError` when the topic does not show within
    ``wait_for_topic_s``, and a retriable :class:`~bus389.errors.BrokerError` (with ``timeout_hint``,
    e.g. the setting that sets ``timeout_s``) when the end is not reached within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    with bus_kafka.kafka_errors(bootstrap=settings.bootstrap):
        consumer = bus_kafka.make_consumer(settings, group_id=None, **consumer_options)
    try:
        tps = topic_partitions(consumer, settings, topic, wait_s=wait_for_topic_s)
        with bus_kafka.kafka_errors(bootstrap=settings.bootstrap):
            consumer.assign(tps)
            end: dict[Any, int] = consumer.end_offsets(tps)
            start: dict[Any, int] = consumer.beginning_offsets(tps)
            if since_ms is not None:
                by_time = consumer.offsets_for_times({tp: max(0, since_ms) for tp in tps})
                for tp in tps:
                    hit = by_time.get(tp)
                    start[tp] = max(start[tp], hit.offset) if hit is not None else end[tp]
            for tp in tps:
                consumer.seek(tp, start[tp])
        remaining = {tp for tp in tps if start[tp] < end[tp]}
        while remaining:
            if time.monotonic() > deadline:
                with bus_kafka.kafka_errors(bootstrap=settings.bootstrap):
                    behind = ", ".join(
                        f"{tp.partition}@{consumer.position(tp)}/{end[tp]}"
                        for tp in sorted(remaining, key=lambda t: t.partition)
                    )
                hint = f" ({timeout_hint})" if timeout_hint else ""
                raise BrokerError(
                    f"could not read {topic} to its end within {timeout_s:.0f}s{hint} "
                    f"(partition@position/end: {behind})",
                    retriable=True,
                )
            with bus_kafka.kafka_errors(bootstrap=settings.bootstrap):
                batch = consumer.poll(timeout_ms=_POLL_MS)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < end[tp]:
                        yield record
            with bus_kafka.kafka_errors(bootstrap=settings.bootstrap):
                for tp in list(remaining):
                    if consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
                        consumer.pause(tp)
    finally:
        consumer.close()
