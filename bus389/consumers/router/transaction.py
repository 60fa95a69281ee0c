"""One batch, one transaction: the copies, the audit records, the DLQ records and the consumer offsets
are committed together (KIP-447: with the consumer's group metadata, so a stale instance is fenced),
or nothing is. And the strikes: a batch that keeps failing for a reason of its own is retried one
event at a time, and an event that fails alone :data:`STRIKES` times goes to the DLQ as
``router_error``, so one event never stalls the router.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kafka import OffsetAndMetadata, TopicPartition

from bus389.agencies import Topics
from bus389.consumers.router.audit import Origin
from bus389.consumers.router.producer import RouterProducer
from bus389.consumers.router.records import Routed, dlq_record
from bus389.errors import BusError
from bus389.recovery import FailureKind, classify

__all__ = ["ROUTER_ERROR", "STRIKES", "Rebalanced", "Strikes", "poisonous", "struck_out", "transact"]

ROUTER_ERROR = "router_error"
STRIKES = 3
"""A batch that fails for a non-retriable reason is retried one event at a time; an event that fails
alone this many times goes to the DLQ as ``router_error``, so one event never stalls the router."""


class Rebalanced(BusError):
    """The group rebalanced while the batch was in hand: it is aborted and read again."""

    retriable = True


def poisonous(exc: BaseException) -> bool:
    """May the batch itself cause ``exc`` (not the broker, a leader change, a rebalance or a fencing)?"""
    return classify(exc) is FailureKind.REQUEST


def transact(
    out: RouterProducer,
    consumer: Any,
    batch: list[Any],
    *,
    route: Callable[[Any, datetime], Routed],
    rebalanced: threading.Event,
    routed: list[Routed] | None = None,
) -> tuple[list[Routed], float]:
    """Route ``batch`` (or write ``routed`` for it) in one transaction with its offsets.

    Returns what was written and when the commit started; raises on anything that was not committed.
    """
    received_at = datetime.now(UTC)
    offsets: dict[Any, Any] = {}
    for raw in batch:
        tp = TopicPartition(raw.topic, raw.partition)
        offsets[tp] = OffsetAndMetadata(raw.offset + 1, "", getattr(raw, "leader_epoch", -1) or -1)
    out.begin()
    results = routed if routed is not None else [route(raw, received_at) for raw in batch]
    producer = out.producer
    futures = [
        producer.send(o.topic, key=o.key, value=o.value, headers=o.headers)
        for r in results
        for o in r.outgoing
    ]
    out.call(lambda: producer.flush(), "flush")
    for future in futures:
        if future.failed():
            raise future.exception
    if rebalanced.is_set():
        raise Rebalanced("the group rebalanced during the batch")
    commit_started = time.monotonic()
    if out.config.transactions:
        out.commit(offsets, consumer.group_metadata())
    else:
        consumer.commit(offsets)
    return results, commit_started


class Strikes:
    """How many times each event failed alone, and how many batches are still read one event each."""

    def __init__(self, batch_max_events: int) -> None:
        self.batch_max_events = batch_max_events
        self.single_left = 0
        self._counts: dict[tuple[str, int, int], int] = {}

    @property
    def batch_limit(self) -> int:
        """The size of the next batch: one event while isolating a failure, else the configured size."""
        return 1 if self.single_left else self.batch_max_events

    def isolate(self) -> None:
        """A batch failed for a reason of its own: read the next ones one event at a time."""
        self.single_left = self.batch_max_events

    def strike(self, raw: Any) -> bool:
        """Count a failure of ``raw`` alone; True when it struck out (then it goes to the DLQ)."""
        key = (raw.topic, raw.partition, raw.offset)
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key] >= STRIKES

    def forget(self, raw: Any) -> None:
        self._counts.pop((raw.topic, raw.partition, raw.offset), None)

    def committed(self) -> None:
        self.single_left = max(0, self.single_left - 1)


def struck_out(topics: Topics, raw: Any, exc: BaseException) -> Routed:
    """What is written for an event that struck out: its DLQ record (``router_error``), nothing else."""
    detail = f"the router failed on this event {STRIKES} times: {type(exc).__name__}: {exc}"
    return Routed(
        origin=Origin(raw.topic, raw.partition, raw.offset),
        outgoing=(dlq_record(topics.dlq, raw, ROUTER_ERROR, detail),),
        dlq_reason=ROUTER_ERROR,
        dlq_detail=detail,
    )
