"""What the console shows of a topic: a background reader per (agency, topic) keeping its newest events.

Each mirror reads its topic from the beginning with :class:`~bus389.consumers.inbox_reader.TopicReader`
(``read_committed``, every partition assigned, no consumer group, nothing committed), as the agency the
topic belongs to, and keeps the newest ``keep`` events in memory. Pages list them newest first; the API
pages through them with a cursor of per-partition offsets, so a cursor stays valid across restarts.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bus389.consumers.inbox_reader import ConsumedEvent, TopicReader, jsonable
from bus389.errors import BusError, InputError
from bus389.settings import Settings

__all__ = ["Cursor", "MirroredEvent", "TopicMirror", "decode_cursor", "encode_cursor"]

log = logging.getLogger(__name__)

Cursor = dict[int, int]
"""partition → the next offset the reader has not seen."""


def encode_cursor(cursor: Cursor) -> str:
    text = json.dumps({str(p): o for p, o in sorted(cursor.items())}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> Cursor:
    """The cursor of ``text``; an :class:`InputError` for one the API never gave out."""
    if not text:
        return {}
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return {int(p): int(o) for p, o in dict(raw).items() if int(o) >= 0}
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InputError(
            "cursor: not a cursor this API gave (use next_cursor from the last answer)"
        ) from None


@dataclass(frozen=True)
class MirroredEvent:
    """One decoded event and where it was read."""

    partition: int
    offset: int
    event_type: str
    record: dict[str, Any]
    """As JSON (instants in ISO 8601, ids as text)."""
    headers: dict[str, str]

    @property
    def event_id(self) -> str:
        meta = self.record.get("meta")
        # An audit record names the event it is about at its top level.
        return str(meta.get("event_id", "") if isinstance(meta, dict) else self.record.get("event_id", ""))

    @classmethod
    def of(cls, item: ConsumedEvent) -> MirroredEvent:
        return cls(item.partition, item.offset, item.event_type, jsonable(item.record), dict(item.headers))


class TopicMirror:
    """The newest ``keep`` events of one topic, refreshed by a daemon thread until :meth:`stop`."""

    def __init__(
        self, settings: Settings, topic: str, *, keep: int, on_error: Callable[[str], None] | None = None
    ):
        self.settings = settings
        self.topic = topic
        self._events: deque[MirroredEvent] = deque(maxlen=keep)
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self.error: str | None = None
        self.caught_up = threading.Event()
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name=f"mirror {topic}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with TopicReader(
                    self.settings, self.topic, from_beginning=True, poll_timeout_ms=200
                ) as reader:
                    self.error = None
                    while not self._stop.is_set():
                        got = False
                        for item in reader.read(max_events=500, idle_timeout_s=0.5):
                            if isinstance(item, ConsumedEvent):
                                self._add(MirroredEvent.of(item))
                                got = True
                        if not got:
                            self.caught_up.set()
                return
            except BusError as exc:
                # A topic not created yet, a broker down, an ACL refusal: shown on the page, tried again.
                self.error = str(exc)
                self.caught_up.set()
                log.warning("reading %s: %s", self.topic, exc)
                with self._changed:
                    self._events.clear()
                self._stop.wait(2.0)

    def _add(self, event: MirroredEvent) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    def newest_first(self) -> list[MirroredEvent]:
        with self._changed:
            return list(reversed(self._events))

    def find(self, event_id: str) -> MirroredEvent | None:
        with self._changed:
            return next((e for e in self._events if e.event_id == event_id), None)

    def after(self, cursor: Cursor, *, limit: int, wait_s: float = 0.0) -> tuple[list[MirroredEvent], Cursor]:
        """The events past ``cursor`` (oldest first, at most ``limit``) and the cursor after them.

        Waits up to ``wait_s`` for one to arrive when there is none yet (long polling).
        """
        deadline = time.monotonic() + wait_s
        with self._changed:
            while True:
                found = [e for e in self._events if e.offset >= cursor.get(e.partition, 0)][:limit]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0 or self._stop.is_set():
                    break
                self._changed.wait(remaining)
        nxt = dict(cursor)
        for event in found:
            nxt[event.partition] = max(nxt.get(event.partition, 0), event.offset + 1)
        return found, nxt
