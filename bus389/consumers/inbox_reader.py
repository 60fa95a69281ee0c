"""The generic reader of one bus topic (an agency's inbox or outbox, the DLQ, the audit log) as JSON lines.

Consumer semantics: ``read_committed``, so aborted and still-open transactions are never shown.
Without a consumer group the reader assigns itself every partition and starts at the beginning or the
end; it commits nothing, so it can be run again and again. With a group it resumes from the group's
committed offsets and commits an event's offset only after the caller has handled (printed) it:
at-least-once. A record that does not decode is reported as an error item and reading goes on.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from types import TracebackType
from typing import Any, Literal, TypeAlias
from uuid import UUID

from kafka.structs import OffsetAndMetadata, TopicPartition

from bus389.agencies import Agency
from bus389.codec import decode_event, rfc3339
from bus389.errors import CodecError, ConfigError
from bus389.kafka import kafka_errors, make_consumer
from bus389.settings import Settings
from bus389.topic_scan import TopicMissingError, topic_partitions

__all__ = [
    "TOPIC_KINDS",
    "ConsumedEvent",
    "ReadItem",
    "TopicKind",
    "TopicReader",
    "UndecodableRecord",
    "agency_group_id",
    "jsonable",
    "to_json_line",
    "topic_for",
]

TopicKind: TypeAlias = Literal["inbox", "outbox", "dlq", "audit"]
TOPIC_KINDS: tuple[TopicKind, ...] = ("inbox", "outbox", "dlq", "audit")


def topic_for(settings: Settings, agency: Agency, kind: TopicKind) -> str:
    """The topic an agency reads with ``--topic kind``."""
    topics = settings.topics
    if kind == "inbox":
        return topics.inbox(agency)
    if kind == "outbox":
        return topics.outbox(agency)
    if kind == "dlq":
        return topics.dlq
    return topics.audit


def agency_group_id(settings: Settings, agency: Agency, group: str) -> str:
    """A consumer group under the agency's identity prefix ``<prefix>.<agency>.`` (least privilege)."""
    return settings.topics.agency_id(agency, group)


def jsonable(value: Any) -> Any:
    """A decoded Avro value as JSON: instants in RFC 3339 UTC, dates ISO 8601, bytes base64."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="backslashreplace")


def _headers(raw: Any) -> dict[str, str]:
    return {str(name): _text(value) or "" for name, value in (raw or ())}


@dataclass(frozen=True)
class ConsumedEvent:
    """One decoded record and where it was read."""

    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    schema_id: int
    event_type: str
    record: dict[str, Any]
    value: bytes = b""
    """The record's bytes as read: ``bus389 verify`` checks the sender's signature against them."""

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "headers": self.headers,
            "schema_id": self.schema_id,
            "event_type": self.event_type,
            "event": jsonable(self.record),
            "value": base64.b64encode(self.value).decode("ascii"),
        }


@dataclass(frozen=True)
class UndecodableRecord:
    """A record that did not decode: its place, and why (``reason`` is the DLQ reason code)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    reason: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "headers": self.headers,
            "error": self.reason,
            "detail": self.detail,
        }


ReadItem: TypeAlias = ConsumedEvent | UndecodableRecord


def to_json_line(item: ReadItem, **extra: Any) -> str:
    """One item as one JSON line, Vietnamese text as is (``ensure_ascii=False``); ``extra`` members
    (such as ``signature``) are added."""
    return json.dumps({**item.to_json(), **extra}, ensure_ascii=False, separators=(",", ":"))


def _decode(message: Any) -> ReadItem:
    headers = _headers(message.headers)
    key = _text(message.key)
    try:
        decoded = decode_event(message.value, message.headers)
    except CodecError as exc:
        return UndecodableRecord(
            message.topic, message.partition, message.offset, key, headers, exc.reason, str(exc)
        )
    return ConsumedEvent(
        message.topic,
        message.partition,
        message.offset,
        key,
        headers,
        decoded.schema.schema_id,
        decoded.event_type,
        decoded.record,
        bytes(message.value or b""),
    )


class TopicReader:
    """Reads one topic, ``read_committed``; a context manager that commits what was handled and closes.

    Without ``group_id`` it assigns every partition itself (no offsets committed). With one it joins
    the group; a new group starts at the beginning when ``from_beginning`` else at the end.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        *,
        group_id: str | None = None,
        from_beginning: bool = False,
        poll_timeout_ms: int = 500,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.group_id = group_id
        self.from_beginning = from_beginning
        self.poll_timeout_ms = poll_timeout_ms
        self._consumer: Any = None
        self._handled: dict[TopicPartition, int] = {}

    def __enter__(self) -> TopicReader:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.close()

    def open(self) -> None:
        if self._consumer is not None:
            return
        reset = "earliest" if self.from_beginning else "latest"
        if self.group_id is not None:
            self._consumer = make_consumer(
                self.settings, group_id=self.group_id, topics=[self.topic], auto_offset_reset=reset
            )
            return
        consumer = make_consumer(self.settings, group_id=None, auto_offset_reset=reset)
        try:
            self._assign_all(consumer)
        except BaseException:
            consumer.close()
            raise
        self._consumer = consumer

    def _assign_all(self, consumer: Any) -> None:
        try:
            assigned = topic_partitions(consumer, self.settings, self.topic)
        except TopicMissingError as exc:
            raise ConfigError(str(exc)) from exc
        with kafka_errors(settings=self.settings):
            consumer.assign(assigned)
            if self.from_beginning:
                consumer.seek_to_beginning(*assigned)
            else:
                consumer.seek_to_end(*assigned)
                # Resolve the end offsets now, so that what is published from here on is read.
                for tp in assigned:
                    consumer.position(tp)

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with kafka_errors(settings=self.settings):
                consumer.close()

    def commit(self) -> None:
        """Commit the offsets of every item handed out and handled (group mode only)."""
        if self.group_id is None or self._consumer is None or not self._handled:
            return
        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self._handled.items()}
        with kafka_errors(settings=self.settings):
            self._consumer.commit(offsets)
        self._handled.clear()

    def read(self, *, max_events: int | None = None, idle_timeout_s: float = 5.0) -> Iterator[ReadItem]:
        """Yield items until ``max_events`` were handed out or ``idle_timeout_s`` passed without one.

        An item counts as handled when the caller asks for the next one; handled offsets are
        committed after each poll's batch (group mode), and on leaving the ``with`` block.
        """
        if self._consumer is None:
            raise ConfigError("the reader is not open")
        consumer = self._consumer
        count = 0
        # In group mode the clock starts once partitions are assigned (joining takes a few seconds).
        started: float | None = None if self.group_id is not None else time.monotonic()
        join_deadline = time.monotonic() + max(idle_timeout_s, 30.0)
        last = started
        while max_events is None or count < max_events:
            with kafka_errors(settings=self.settings):
                batches = consumer.poll(timeout_ms=self.poll_timeout_ms)
            now = time.monotonic()
            if started is None:
                if consumer.assignment():
                    started = last = now
                elif now > join_deadline:
                    return
            got_any = False
            for messages in batches.values():
                for message in messages:
                    if max_events is not None and count >= max_events:
                        break
                    item = _decode(message)
                    yield item
                    count += 1
                    got_any = True
                    self._handled[TopicPartition(message.topic, message.partition)] = message.offset + 1
            if got_any:
                last = time.monotonic()
                self.commit()
            elif last is not None and now - last >= idle_timeout_s:
                return
