"""Who sent which event: the index that sends a reply (``meta.in_reply_to``) back to the original sender.

The router knows the sender of every event it routed (the outbox it came from, proven by the ACL),
and its audit trail records it. At start-up :func:`rebuild_from_audit` reads the audit topic from the
beginning, ``read_committed`` (only decisions whose transaction committed), up to its end; while
running, the router adds every event it routes. A free-text field never decides where a reply goes.

The index is held in memory, oldest entries dropped first beyond ``max_entries``; an event routed in
a transaction that later aborts stays in it harmlessly, since the same event is routed again with the
same sender.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from bus389.agencies import Agency
from bus389.errors import BrokerError, BusError

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = ["ReplyIndex", "rebuild_from_audit"]

log = logging.getLogger(__name__)


class ReplyIndex:
    """event id → the agency that sent it; callable as a :data:`~bus389.routing.decision.ReplyLookup`.

    Two generations of plain dicts: new entries go to the current one; when it holds half of
    ``max_entries`` it becomes the previous one and the previous one is dropped, so at most
    ``max_entries`` are kept and the oldest go first, half at a time, at O(1) per event. A uuid event
    id is kept as its 16 bytes: ≈ 100 bytes an entry instead of ≈ 175 with text ids in an ``OrderedDict``.
    """

    def __init__(self, max_entries: int = 5_000_000) -> None:
        self._generation = max(1, max_entries // 2)
        self._current: dict[bytes | str, Agency] = {}
        self._previous: dict[bytes | str, Agency] = {}

    def __len__(self) -> int:
        """Entries held (an id recorded again after its generation turned over counts twice)."""
        return len(self._current) + len(self._previous)

    def __call__(self, event_id: str) -> Agency | None:
        key = _compact(event_id)
        found = self._current.get(key)
        return found if found is not None else self._previous.get(key)

    def record(self, event_id: str, sender: Agency) -> None:
        if not event_id:
            return
        key = _compact(event_id)
        if key not in self._current and len(self._current) >= self._generation:
            self._previous, self._current = self._current, {}
        self._current[key] = sender


def _compact(event_id: str) -> bytes | str:
    """A canonical uuid's 16 bytes; any other id as it is (ids are uuids, but the trail is not trusted)."""
    if len(event_id) == 36:
        try:
            parsed = uuid.UUID(event_id)
        except ValueError:
            return event_id
        if str(parsed) == event_id:
            return parsed.bytes
    return event_id


def rebuild_from_audit(settings: Settings, index: ReplyIndex, *, timeout_s: float = 60.0) -> int:
    """Fill ``index`` from the committed audit records; return how many were read.

    Reads every partition of the audit topic from the beginning to the end offsets taken at the start
    (the last stable offsets, since the consumer reads ``read_committed``). A record that does not
    decode is skipped with a warning: the trail is written by the router alone.
    """
    from kafka import TopicPartition

    from bus389.codec import decode_value
    from bus389.kafka import kafka_errors, make_consumer

    topic = settings.topics.audit
    read = 0
    with kafka_errors(bootstrap=settings.bootstrap):
        consumer = make_consumer(settings, group_id=None)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with kafka_errors(bootstrap=settings.bootstrap):
                partitions = consumer.partitions_for_topic(topic) or set()
            if partitions:
                break
            if time.monotonic() > deadline:
                raise BusError(f"no audit topic {topic} (run `bus389 topics apply`)")
            time.sleep(0.5)  # a topic just created may take a moment to show in the metadata
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        with kafka_errors(bootstrap=settings.bootstrap):
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends: dict[Any, int] = consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends.get(tp, 0) > 0}
        while remaining:
            if time.monotonic() > deadline:
                # A broker away, or a transaction still open on the trail: the caller may retry.
                raise BrokerError(
                    f"reading the audit trail {topic} took longer than {timeout_s:.0f}s", retriable=True
                )
            with kafka_errors(bootstrap=settings.bootstrap):
                batch = consumer.poll(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for raw in records:
                    try:
                        audit = decode_value(raw.value).record
                        index.record(str(audit["event_id"]), Agency(audit["sender"]))
                        read += 1
                    except (BusError, KeyError, ValueError) as exc:
                        log.warning(
                            "audit record %s/%d/%d skipped: %s", tp.topic, tp.partition, raw.offset, exc
                        )
            for tp in list(remaining):
                with kafka_errors(bootstrap=settings.bootstrap):
                    if consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
    finally:
        consumer.close()
    log.info("reply index: %d routed event(s) read back from %s", read, topic)
    return read
