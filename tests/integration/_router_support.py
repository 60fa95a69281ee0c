"""Helpers of the router's integration tests: make and publish events, read topics whole, run the router."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from _wait import wait_for
from kafka.structs import TopicPartition

from bus389.agencies import Agency
from bus389.codec import encode_event
from bus389.consumers.router.service import RouterService, RouterStats
from bus389.events import Event, build_event
from bus389.kafka import make_consumer, make_producer
from bus389.runtime.stop import StopFlag
from bus389.settings import RouterSettings, Settings

SELLER = {
    "name": "Cửa hàng Mỹ phẩm Thu Trang",
    "tax_code": "4300123456",
    "national_id": "051190004321",
    "phone": "0905123456",
    "address": "24 Phan Đình Phùng, TP Quảng Ngãi",
    "province": "Quảng Ngãi",
}


def router_settings(
    make_settings: Callable[..., Settings], unique_group: Callable[..., str], **router: Any
) -> Settings:
    """Settings on this test's prefix with its own router group and transactional id."""
    ident = unique_group("router")
    fields = {"group_id": ident, "transactional_id": ident, "session_timeout_ms": 6000, **router}
    return make_settings(router=RouterSettings(**fields))


def suspect_seller(
    source: Agency, *, sensitivity: str = "AMBER", meta: dict[str, Any] | None = None, **fields: Any
) -> Event:
    data: dict[str, Any] = {
        "meta": {"sensitivity": sensitivity, **(meta or {})},
        "seller": dict(SELLER),
        "accounts": [{"platform": "SHOPEE", "account": "thutrang.cosmetics"}],
        "goods": "Mỹ phẩm nhập lậu",
        "violation_kinds": ["SMUGGLING"],
        "summary": "Bán mỹ phẩm không rõ nguồn gốc trên Shopee",
    }
    data.update(fields)
    return build_event("suspect_seller", source, data)


def domain_block_request(source: Agency, *, sensitivity: str = "AMBER", **fields: Any) -> Event:
    data: dict[str, Any] = {
        "meta": {"sensitivity": sensitivity, "urgency": "IMMEDIATE"},
        "domains": ["myphamxachtay-qn.vn"],
        "action": "BLOCK",
        "reason": "Bán hàng giả",
        "legal_basis": "15/QĐ-QLTT",
        "violation_kinds": ["COUNTERFEIT"],
    }
    data.update(fields)
    return build_event("domain_block_request", source, data)


def tax_discrepancy(owed: int, *, sensitivity: str = "AMBER", **fields: Any) -> Event:
    data: dict[str, Any] = {
        "meta": {"sensitivity": sensitivity},
        "seller": dict(SELLER),
        "accounts": [{"platform": "LAZADA", "account": "thutrang"}],
        "period": "2021-H1",
        "estimated_revenue_vnd": 3_000_000_000,
        "declared_revenue_vnd": 200_000_000,
        "undeclared_revenue_vnd": 2_800_000_000,
        "estimated_tax_owed_vnd": owed,
    }
    data.update(fields)
    return build_event("tax_discrepancy", Agency.TAX, data)


def domain_block_result(in_reply_to: str, requester: Agency, **fields: Any) -> Event:
    data: dict[str, Any] = {
        "meta": {"sensitivity": "AMBER", "in_reply_to": in_reply_to},
        "requester": requester.value,
        "outcome": "BLOCKED",
        "blocked": ["myphamxachtay-qn.vn"],
        "decided_at": "2021-05-02T09:00:00+07:00",
        "providers_notified": ["VNPT", "Viettel"],
    }
    data.update(fields)
    return build_event("domain_block_result", Agency.ICT, data)


def case_outcome(source: Agency, *, public: bool, sensitivity: str = "CLEAR", **meta: Any) -> Event:
    data: dict[str, Any] = {
        "meta": {"sensitivity": sensitivity, **meta},
        "seller": dict(SELLER),
        "outcome": "ADMINISTRATIVE_SANCTION",
        "violation_kinds": ["SMUGGLING"],
        "fine_vnd": 35_000_000,
        "decided_on": "2021-06-01",
        "public": public,
        "summary": "Xử phạt vi phạm hành chính",
    }
    return build_event("case_outcome", source, data)


@dataclass(frozen=True)
class Sent:
    """An event as published: its id, the bytes written and where (the partition and offset the broker
    acknowledged)."""

    event_id: str
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int = -1
    offset: int = -1


def encode(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    encoded = encode_event(event)
    return encoded.key, encoded.value, encoded.headers


def publish(
    settings: Settings, events: list[Event], *, outbox: Agency | None = None, partition: int | None = None
) -> list[Sent]:
    """Publish ``events`` to their source's outbox (or ``outbox``: a spoof), acknowledged by all replicas;
    to ``partition`` when given (else by key)."""
    sent: list[Sent] = []
    producer = make_producer(settings)
    try:
        futures = []
        for event in events:
            key, value, headers = encode(event)
            topic = settings.topics.outbox(outbox or Agency(event.meta.source))
            futures.append(producer.send(topic, key=key, value=value, headers=headers, partition=partition))
            sent.append(Sent(str(event.meta.event_id), topic, key, value, headers))
        producer.flush()
        for i, future in enumerate(futures):
            metadata = future.get(timeout=30)
            sent[i] = replace(sent[i], partition=metadata.partition, offset=metadata.offset)
    finally:
        producer.close()
    return sent


def send_raw(
    settings: Settings,
    topic: str,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
    key: bytes | None = None,
) -> None:
    producer = make_producer(settings)
    try:
        producer.send(
            topic, key=key if key is not None else uuid.uuid4().hex.encode(), value=value, headers=headers
        )
        producer.flush()
    finally:
        producer.close()


def read_topic(settings: Settings, topic: str, *, timeout_s: float = 30.0) -> list[Any]:
    """Every committed record of ``topic`` (read_committed, no group), up to the end offsets now."""
    consumer = make_consumer(settings, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        records: list[Any] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300, max_records=5000).values():
                records.extend(batch)
            remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}
        assert not remaining, f"could not read {topic} to its end within {timeout_s}s"
        return records
    finally:
        consumer.close()


def read_inboxes(settings: Settings) -> dict[Agency, list[Any]]:
    return {agency: read_topic(settings, settings.topics.inbox(agency)) for agency in Agency}


def headers(record: Any) -> dict[str, str]:
    return {k: (v or b"").decode("utf-8") for k, v in (record.headers or [])}


class RouterThread:
    """The router in this process, in a thread, until :meth:`stop` (as SIGTERM would)."""

    def __init__(self, settings: Settings) -> None:
        self.stop_flag = StopFlag()
        self.service = RouterService(settings, stop=self.stop_flag)
        self.stats: RouterStats | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="router-under-test", daemon=True)

    def _run(self) -> None:
        try:
            self.stats = self.service.run()
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def __enter__(self) -> RouterThread:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> RouterStats:
        self.stop_flag.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the router did not stop within 60 s"
        if self.error is not None:
            raise self.error
        assert self.stats is not None
        return self.stats


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait for ``condition`` (the shared :func:`_wait.wait_for`); fails the test naming ``what``."""
    wait_for(condition, timeout_s, what, interval_s=0.5)


def count(settings: Settings, topic: str) -> int:
    return len(read_topic(settings, topic))


def wait_routed(settings: Settings, *, audit: int, dlq: int = 0, timeout_s: float = 60.0) -> None:
    """Wait until the audit topic and the DLQ hold at least these many committed records."""
    wait_until(
        lambda: (
            count(settings, settings.topics.audit) >= audit and count(settings, settings.topics.dlq) >= dlq
        ),
        timeout_s,
        f"{audit} audit record(s) and {dlq} dead letter(s)",
    )
