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
import uuid
from contextlib import closing
from typing import TYPE_CHECKING

from bus389.agencies import Agency
from bus389.codec import decode_value
from bus389.errors import BusError
from bus389.topic_scan import TopicMissingError, scan_topic

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
    topic = settings.topics.audit
    read = 0
    records = scan_topic(
        settings, topic, timeout_s=timeout_s, wait_for_topic_s=timeout_s, max_poll_records=5000
    )
    with closing(records):
        try:
            for raw in records:
                try:
                    audit = decode_value(raw.value).record
                    index.record(str(audit["event_id"]), Agency(audit["sender"]))
                    read += 1
                except (BusError, KeyError, ValueError) as exc:
                    log.warning(
                        "audit record %s/%d/%d skipped: %s", raw.topic, raw.partition, raw.offset, exc
                    )
        except TopicMissingError as exc:
            raise BusError(f"no audit topic {topic} (run `bus389 topics apply`)") from exc
    log.info("reply index: %d routed event(s) read back from %s", read, topic)
    return read
