"""The bare fan-out loop of :mod:`bus389.bench.loops`, with confluent-kafka (librdkafka) instead of
kafka-python.

Reference only: what a user would pick for raw speed. Same batch (``batch_max_events`` records
gathered for at most ``batch_max_ms`` after the first), same fan-out plan, same delivery settings (idempotent,
``acks=all``, linger 5 ms, ``read_committed``), one transaction per batch with its offsets.
Needs the optional ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from bus389.bench.loops import FIRST_POLL_MS, LINGER_MS, BareLoopResult
from bus389.settings import Settings

__all__ = ["confluent_available", "confluent_config", "confluent_fanout_loop"]


def confluent_available() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return False
    return True


def confluent_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's names for the connection settings bus389 uses."""
    k = settings.kafka
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "client.id": "bus389-bench",
        "security.protocol": k.security_protocol.lower(),
    }
    if k.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        config["sasl.mechanism"] = k.sasl_mechanism or "SCRAM-SHA-512"
        config["sasl.username"] = k.username or ""
        config["sasl.password"] = k.password.get_secret_value() if k.password else ""
    if k.ssl_cafile is not None:
        config["ssl.ca.location"] = str(k.ssl_cafile)
    return config


_ROUTER_HEADERS: list[tuple[str, bytes]] = [
    ("bus389_rule", b"suspect_seller.market_surveillance"),
    ("bus389_plan_section", b"II.9"),
    ("bus389_origin", b"bus389.outbox.police/0/123456"),
    ("bus389_redacted", b""),
]


def confluent_fanout_loop(
    settings: Settings,
    plan: dict[bytes, tuple[str, ...]],
    *,
    target: int,
    transactional: bool = True,
    idle_timeout_s: float = 30.0,
) -> BareLoopResult:
    """Consume every outbox, fan out per ``plan``, one transaction per batch, until ``target`` events."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    router = settings.router
    group = f"{settings.topic_prefix}.confluent.{uuid.uuid4().hex[:8]}"
    base = confluent_config(settings)
    consumer = Consumer(
        {
            **base,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": router.session_timeout_ms,
        }
    )
    producer_config = {**base, "enable.idempotence": True, "acks": "all", "linger.ms": LINGER_MS}
    if transactional:
        producer_config["transactional.id"] = group
    producer = Producer(producer_config)
    if transactional:
        producer.init_transactions(30)
    consumer.subscribe(settings.topics.all_outboxes())
    result = BareLoopResult()
    limit = router.batch_max_events
    idle_since = time.monotonic()
    default = plan.get(b"*", ())
    try:
        while result.events < target:
            deadline: float | None = None
            batch: list[Any] = []
            while len(batch) < limit:
                if deadline is None:
                    timeout = FIRST_POLL_MS / 1000
                else:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        break
                got = consumer.consume(num_messages=limit - len(batch), timeout=timeout)
                batch.extend(m for m in got if m.error() is None)
                if not batch:
                    break
                if deadline is None:
                    deadline = time.monotonic() + router.batch_max_ms / 1000
            if not batch:
                if time.monotonic() - idle_since > idle_timeout_s:
                    raise TimeoutError(f"confluent loop: only {result.events} of {target} events arrived")
                continue
            idle_since = time.monotonic()
            if not result.first:
                result.first = time.perf_counter()
            offsets: dict[tuple[str, int], int] = {}
            if transactional:
                producer.begin_transaction()
            copies = 0
            for message in batch:
                headers = message.headers() or []
                ce_id = next((v for n, v in headers if n == "ce_id"), b"")
                copy_headers = [*headers, *_ROUTER_HEADERS]
                for topic in plan.get(ce_id, default):
                    producer.produce(topic, key=message.key(), value=message.value(), headers=copy_headers)
                    copies += 1
                producer.poll(0)
                offsets[(message.topic(), message.partition())] = message.offset() + 1
            tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            if transactional:
                producer.send_offsets_to_transaction(tps, consumer.consumer_group_metadata(), 30)
                producer.commit_transaction(30)
            else:
                producer.flush(30)
                consumer.commit(offsets=tps, asynchronous=False)
            result.last = time.perf_counter()
            result.events += len(batch)
            result.copies += copies
            result.batches += 1
            result.batch_ends.append((time.time(), len(batch)))
    finally:
        consumer.close()
        producer.flush(10)
    return result
