"""Who sent which event and who received it: the index behind replies and event-id ownership.

The router knows the sender of every event it routed (the outbox it came from, proven by the ACL),
and its audit trail records it. At start-up :func:`rebuild_from_audit` reads the audit topic from the
beginning, ``read_committed`` (only decisions whose transaction committed), up to its end; while
running, the router adds every event it routes, once its transaction commits. A reply goes back to the
original sender, and only from an agency that received the original; an event id belongs to the agency
that sent it first. A free-text or typed field never decides where a reply goes.

The index is held in memory, oldest entries dropped first beyond ``max_entries``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from contextlib import closing
from typing import TYPE_CHECKING, Any

from bus389.agencies import Agency
from bus389.codec import decode_value
from bus389.errors import BusError
from bus389.routing.decision import Original
from bus389.topic_scan import TopicMissingError, scan_topic

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = ["ReplyIndex", "rebuild_from_audit"]

log = logging.getLogger(__name__)


class ReplyIndex:
    """event id → who sent it and who received it; callable as a :data:`~bus389.routing.decision.ReplyLookup`.

    Two generations of plain dicts: new entries go to the current one; when it holds half of
    ``max_entries`` it becomes the previous one and the previous one is dropped, so at most
    ``max_entries`` are kept and the oldest go first, half at a time, at O(1) per event. A uuid event
    id is kept as its 16 bytes and its sender and recipients as one small int (the sender's ordinal and
    a bit per recipient): ≈ 100 bytes an entry.

    What the router routes in a transaction is *pending* until :meth:`commit`: an aborted batch is
    routed again, and its events must then not meet themselves as duplicates or taken ids
    (:meth:`discard` forgets them).
    """

    def __init__(self, max_entries: int = 5_000_000) -> None:
        self._generation = max(1, max_entries // 2)
        self._current: dict[bytes | str, int] = {}
        self._previous: dict[bytes | str, int] = {}
        self._pending: dict[bytes | str, int] = {}

    def __len__(self) -> int:
        """Committed entries held (an id recorded again after its generation turned over counts twice)."""
        return len(self._current) + len(self._previous)

    def __call__(self, event_id: str) -> Original | None:
        key = _compact(event_id)
        found = self._pending.get(key)
        if found is None:
            found = self._current.get(key)
        if found is None:
            found = self._previous.get(key)
        return None if found is None else _unpack(found)

    def record(self, event_id: str, sender: Agency, recipients: Iterable[Agency] = ()) -> None:
        """Note a routed event, pending until :meth:`commit`."""
        if event_id:
            self._pending[_compact(event_id)] = _pack(sender, recipients)

    def commit(self) -> None:
        """The pending events' transaction committed: keep them."""
        for key, packed in self._pending.items():
            if key not in self._current and len(self._current) >= self._generation:
                self._previous, self._current = self._current, {}
            self._current[key] = packed
        self._pending.clear()

    def discard(self) -> None:
        """The pending events' transaction did not commit: forget them (they are routed again)."""
        self._pending.clear()


_AGENCIES = tuple(Agency)
_ORDINAL = {agency: i for i, agency in enumerate(_AGENCIES)}
_SENDER_BITS = 5


def _pack(sender: Agency, recipients: Iterable[Agency]) -> int:
    mask = 0
    for recipient in recipients:
        mask |= 1 << _ORDINAL[recipient]
    return _ORDINAL[sender] | (mask << _SENDER_BITS)


def _unpack(packed: int) -> Original:
    mask = packed >> _SENDER_BITS
    return Original(
        _AGENCIES[packed & ((1 << _SENDER_BITS) - 1)],
        frozenset(a for i, a in enumerate(_AGENCIES) if mask & (1 << i)),
    )


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


def rebuild_from_audit(
    settings: Settings,
    index: ReplyIndex,
    *,
    timeout_s: float = 60.0,
    also: Callable[[Any], None] | None = None,
) -> int:
    """Fill ``index`` from the committed audit records; return how many were read. ``also`` is shown
    every record of the pass (the router finds its audit chains' heads in the same read).

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
                if also is not None:
                    also(raw)
                try:
                    audit = decode_value(raw.value).record
                    index.record(
                        str(audit["event_id"]),
                        Agency(audit["sender"]),
                        [Agency(d["recipient"]) for d in audit.get("deliveries") or ()],
                    )
                    read += 1
                    if read % 10_000 == 0:
                        index.commit()  # committed decisions (read_committed): no pending pile-up
                except (BusError, KeyError, ValueError) as exc:
                    log.warning(
                        "audit record %s/%d/%d skipped: %s", raw.topic, raw.partition, raw.offset, exc
                    )
        except TopicMissingError as exc:
            raise BusError(f"no audit topic {topic} (run `bus389 topics apply`)") from exc
    index.commit()  # the trail holds committed decisions only (read_committed)
    log.info("reply index: %d routed event(s) read back from %s", read, topic)
    return read
