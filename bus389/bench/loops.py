"""The raw baselines with kafka-python: a bare producer, the backlog filler and the bare fan-out loop.

The bare loop is the limit of this client library on this machine for the router's job: it polls a
batch the way the router does (at most ``batch_max_events`` records, gathered for at most
``batch_max_ms`` after the first one), writes the same number of records to the same topics (one
copy per recipient the routing policy names, plus one record to the audit topic) and, per batch,
either commits a Kafka transaction holding the copies and the consumer offsets (exactly-once) or
flushes and commits the offsets (at-least-once). It does no decoding, validation, decision,
redaction or audit encoding: the fan-out plan (which topics each event id goes to) is computed
beforehand with the router's own :func:`~bus389.routing.decision.decide`, and the copies are the
input bytes as they are.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition

from bus389.bench.workload import BacklogEvent
from bus389.kafka import client_config
from bus389.runtime.stop import StopFlag
from bus389.settings import Settings

__all__ = [
    "BareLoopResult",
    "bare_audit_topic",
    "bare_consumer",
    "bare_fanout_loop",
    "bare_producer",
    "create_bare_audit_topic",
    "fanout_plan",
    "fill_backlog",
    "poll_batch",
]

LINGER_MS = 5
"""The same linger as bus389's producers (see :mod:`bus389.kafka`)."""


def bare_producer(settings: Settings, *, transactional_id: str | None = None, **overrides: Any) -> Any:
    """A kafka-python producer with the settings bus389 uses: idempotent, ``acks=all``, linger 5 ms."""
    config = client_config(settings)
    config.update(
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        delivery_timeout_ms=settings.kafka.delivery_timeout_ms,
        max_request_size=settings.kafka.max_message_bytes,
    )
    if transactional_id is not None:
        config["transactional_id"] = transactional_id
    config.update(overrides)
    return KafkaProducer(**config)


def bare_consumer(settings: Settings, *, group_id: str | None, **overrides: Any) -> Any:
    """A kafka-python consumer as the router's: ``read_committed``, no auto-commit, from the earliest,
    the same fetch wait and fetch size."""
    config = client_config(settings)
    config.update(
        group_id=group_id,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.router.batch_max_events,
        session_timeout_ms=settings.router.session_timeout_ms,
        heartbeat_interval_ms=max(1000, settings.router.session_timeout_ms // 4),
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        max_partition_fetch_bytes=settings.kafka.max_partition_fetch_bytes,
    )
    config.update(overrides)
    return KafkaConsumer(**config)


def fill_backlog(settings: Settings, events: Sequence[BacklogEvent]) -> None:
    """Write ``events`` to their publishers' outboxes (idempotent, acked by every replica)."""
    producer = bare_producer(settings, linger_ms=20, batch_size=256 * 1024)
    try:
        topics = settings.topics
        for event in events:
            encoded = event.encoded
            producer.send(
                topics.outbox(event.agency), key=encoded.key, value=encoded.value, headers=encoded.headers
            )
        producer.flush(timeout=120)
    finally:
        producer.close(timeout=30)


def bare_audit_topic(settings: Settings) -> str:
    """Where the bare loop writes its audit stand-ins: not the audit topic, which the router reads back."""
    return f"{settings.topic_prefix}.bare_audit"


def create_bare_audit_topic(settings: Settings) -> None:
    """Create :func:`bare_audit_topic` like the audit topic (same partitions and replicas)."""
    from kafka.admin import NewTopic

    from bus389.kafka import kafka_errors, make_admin

    with make_admin(settings) as admin, kafka_errors(bootstrap=settings.bootstrap):
        admin.create_topics([NewTopic(bare_audit_topic(settings), settings.kafka.partitions, -1)])


def fanout_plan(settings: Settings, events: Sequence[BacklogEvent]) -> dict[bytes, tuple[str, ...]]:
    """event id (as in the ``ce_id`` header) → the topics the router writes for it (inboxes + audit).

    The audit copy goes to :func:`bare_audit_topic`; the dead letters (none in the benchmark
    workload) to the DLQ.
    """
    from bus389.codec import decode_value
    from bus389.consumers.router.replies import ReplyIndex
    from bus389.routing.decision import decide
    from bus389.routing.policy import load_policy

    policy = load_policy(settings.router.policy_path)
    replies = ReplyIndex()
    topics = settings.topics
    plan: dict[bytes, tuple[str, ...]] = {}
    for event in events:
        record = decode_value(event.encoded.value).record
        decision = decide(event.agency, record, policy, replies)
        if decision.routed:
            replies.record(event.event_id, event.agency)
            targets = (*(topics.inbox(r) for r in decision.recipients), bare_audit_topic(settings))
        else:
            targets = (topics.dlq,)
        plan[event.event_id.encode()] = targets
    return plan


@dataclass
class BareLoopResult:
    """What one run of a loop did, timed from the first non-empty batch to the last commit."""

    events: int = 0
    copies: int = 0
    batches: int = 0
    first: float = 0.0
    last: float = 0.0
    batch_ends: list[tuple[float, int]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.last - self.first


_ROUTER_HEADERS: list[tuple[str, bytes]] = [
    ("bus389_rule", b"suspect_seller.market_surveillance"),
    ("bus389_plan_section", b"II.9"),
    ("bus389_origin", b"bus389.outbox.police/0/123456"),
    ("bus389_redacted", b""),
]
"""Headers of the same size as the four the router adds to a copy, so the bytes moved are alike."""


def _ce_id(headers: Sequence[tuple[str, bytes]] | None) -> bytes:
    for name, value in headers or ():
        if name == "ce_id":
            return value
    return b""


FIRST_POLL_MS = 2_000
"""How long the first poll of a batch may wait for a record, as the router's (it returns at once when
records are there); the batch then gathers for at most ``batch_max_ms`` after its first record."""


def poll_batch(consumer: Any, limit: int, batch_max_ms: int) -> list[Any]:
    """At most ``limit`` records, gathered for at most ``batch_max_ms`` after the first (as the router)."""
    deadline: float | None = None
    batch: list[Any] = []
    while len(batch) < limit:
        if deadline is None:
            timeout_ms = FIRST_POLL_MS
        else:
            timeout_ms = int((deadline - time.monotonic()) * 1000)
            if timeout_ms <= 0:
                break
        for records in consumer.poll(timeout_ms=timeout_ms, max_records=limit - len(batch)).values():
            batch.extend(records)
        if not batch:
            break
        if deadline is None:
            deadline = time.monotonic() + batch_max_ms / 1000
    return batch


def bare_fanout_loop(
    settings: Settings,
    plan: dict[bytes, tuple[str, ...]],
    *,
    target: int | None,
    transactional: bool = True,
    idle_timeout_s: float = 30.0,
    stop: StopFlag | None = None,
    ready_file: Path | None = None,
    joined: threading.Event | None = None,
    consumer_overrides: dict[str, Any] | None = None,
) -> BareLoopResult:
    """Consume every outbox, fan out per ``plan``, commit per batch, until ``target`` events are done.

    Without a target it runs until ``stop`` is set (the latency benchmark); ``ready_file`` is touched
    and ``joined`` set once the group has assigned partitions. An event id missing from the plan
    gets ``plan[b"*"]``.
    """
    default = plan.get(b"*", ())
    router = settings.router
    group = f"{settings.topic_prefix}.bare.{uuid.uuid4().hex[:8]}"
    consumer = bare_consumer(settings, group_id=group, **(consumer_overrides or {}))
    producer = bare_producer(settings, transactional_id=group if transactional else None)
    if transactional:
        producer.init_transactions()
    consumer.subscribe(settings.topics.all_outboxes())
    result = BareLoopResult()
    limit = router.batch_max_events
    idle_since = time.monotonic()
    stop = stop or StopFlag()
    try:
        while (target is None or result.events < target) and not stop.is_set:
            batch = poll_batch(consumer, limit, router.batch_max_ms)
            if consumer.assignment():
                if joined is not None:
                    joined.set()
                if ready_file is not None:
                    ready_file.touch()
                    ready_file = None
            if not batch:
                if target is not None and time.monotonic() - idle_since > idle_timeout_s:
                    raise TimeoutError(f"bare loop: only {result.events} of {target} events arrived")
                continue
            idle_since = time.monotonic()
            if not result.first:
                result.first = time.perf_counter()
            offsets: dict[TopicPartition, OffsetAndMetadata] = {}
            for raw in batch:
                offsets[TopicPartition(raw.topic, raw.partition)] = OffsetAndMetadata(raw.offset + 1, "", -1)
            if transactional:
                producer.begin_transaction()
            copies = 0
            for raw in batch:
                copy_headers = [*raw.headers, *_ROUTER_HEADERS]
                for topic in plan.get(_ce_id(raw.headers), default):
                    producer.send(topic, key=raw.key, value=raw.value, headers=copy_headers)
                    copies += 1
            producer.flush()
            if transactional:
                producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
                producer.commit_transaction()
            else:
                consumer.commit(offsets)
            result.last = time.perf_counter()
            result.events += len(batch)
            result.copies += copies
            result.batches += 1
            result.batch_ends.append((time.time(), len(batch)))
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)
    return result
