"""The dead-letter topic: reading what the router could not route, and replaying it to its outbox.

A dead letter is the original record (key, value, headers) plus ``bus389_dlq_reason``,
``bus389_dlq_detail`` and its origin (``bus389_origin_topic/partition/offset``). A replay sends the
original key, value and headers back to the origin outbox, and in the same transaction writes a
small marker to the DLQ (empty value, header ``bus389_dlq_replayed=<partition>/<offset>``), so a dead
letter is replayed at most once however often the command runs; ``list`` shows which were.

By default a replay first checks that each chosen letter now decodes and validates with the current
schemas and models (the cause is fixed) and leaves the others in place; ``as_is`` sends them all
unchecked. A ``spoofed_source`` letter is a security event and is never replayed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bus389.agencies import Topics
from bus389.errors import BusError, CodecError, InputError
from bus389.topic_scan import TopicMissingError, scan_topic

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = ["REPLAYED_HEADER", "DeadLetter", "ReplayReport", "read_dead_letters", "replay"]

REPLAYED_HEADER = "bus389_dlq_replayed"
_NEVER_REPLAYED = frozenset({"spoofed_source"})
_STRIPPED = (
    "bus389_dlq_reason",
    "bus389_dlq_detail",
    "bus389_origin_topic",
    "bus389_origin_partition",
    "bus389_origin_offset",
)


@dataclass(frozen=True)
class DeadLetter:
    """One record of the DLQ and what its headers say."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str
    detail: str
    origin_topic: str
    origin_partition: int | None
    origin_offset: int | None
    replayed: bool = False

    @property
    def place(self) -> str:
        return f"{self.partition}/{self.offset}"

    @property
    def origin(self) -> str:
        return f"{self.origin_topic}/{self.origin_partition}/{self.origin_offset}"

    def header(self, name: str) -> str:
        value = dict(self.headers).get(name)
        return value.decode("utf-8", errors="replace") if value is not None else ""

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if k not in _STRIPPED and k != REPLAYED_HEADER]


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _records(settings: Settings, timeout_s: float) -> Iterator[Any]:
    """Every committed record of the DLQ, from the beginning to the end offsets taken at the start."""
    records = scan_topic(settings, settings.topics.dlq, timeout_s=timeout_s)
    with closing(records):
        try:
            yield from records
        except TopicMissingError as exc:
            raise InputError(f"no DLQ topic {settings.topics.dlq} (run `bus389 topics apply`)") from exc


def read_dead_letters(
    settings: Settings, *, reason: str | None = None, timeout_s: float = 60.0
) -> list[DeadLetter]:
    """The dead letters (optionally of one ``reason``), in DLQ order, each marked if already replayed."""
    letters: list[DeadLetter] = []
    replayed: set[str] = set()
    for raw in _records(settings, timeout_s):
        headers = [(str(k), bytes(v) if v is not None else b"") for k, v in (raw.headers or [])]
        named = dict(headers)
        if REPLAYED_HEADER in named:
            replayed.add(named[REPLAYED_HEADER].decode("utf-8", errors="replace"))
            continue
        text = {k: v.decode("utf-8", errors="replace") for k, v in named.items()}
        letters.append(
            DeadLetter(
                partition=raw.partition,
                offset=raw.offset,
                key=raw.key,
                value=raw.value,
                headers=headers,
                reason=text.get("bus389_dlq_reason", ""),
                detail=text.get("bus389_dlq_detail", ""),
                origin_topic=text.get("bus389_origin_topic", ""),
                origin_partition=_int(text.get("bus389_origin_partition", "")),
                origin_offset=_int(text.get("bus389_origin_offset", "")),
            )
        )
    return [
        DeadLetter(**{**letter.__dict__, "replayed": letter.place in replayed})
        for letter in letters
        if reason is None or letter.reason == reason
    ]


@dataclass
class ReplayReport:
    """What a replay did: letters sent back, and letters left in place with why."""

    sent: list[DeadLetter] = field(default_factory=list)
    skipped: list[tuple[DeadLetter, str]] = field(default_factory=list)


def _still_failing(letter: DeadLetter) -> str | None:
    """Why ``letter`` would be a dead letter again at decode or validation, or None."""
    from pydantic import ValidationError

    from bus389.codec import decode_event
    from bus389.events import event_from_avro, validation_problems

    try:
        decoded = decode_event(letter.value, letter.original_headers())
        if not decoded.schema.is_event:
            return f"{decoded.schema.ref} is not an event schema"
        event_from_avro(decoded.record)
    except CodecError as exc:
        return f"{exc.reason}: {exc}"
    except ValidationError as exc:
        return "invalid_event: " + "; ".join(validation_problems(exc))
    except BusError as exc:
        return str(exc)
    return None


def replay(
    settings: Settings, *, reason: str, as_is: bool = False, dry_run: bool = False, timeout_s: float = 60.0
) -> ReplayReport:
    """Send the not-yet-replayed dead letters of ``reason`` back to their outbox, in one transaction."""
    from bus389.kafka import kafka_errors, open_transactional_producer, retry_until

    if reason in _NEVER_REPLAYED:
        raise InputError(f"{reason} letters are security events and are never replayed")
    topics: Topics = settings.topics
    report = ReplayReport()
    for letter in read_dead_letters(settings, reason=reason, timeout_s=timeout_s):
        if letter.replayed:
            continue
        if topics.sender_of(letter.origin_topic) is None:
            report.skipped.append((letter, f"origin {letter.origin_topic!r} is not an outbox"))
            continue
        problem = None if as_is else _still_failing(letter)
        if problem is not None:
            report.skipped.append((letter, problem))
            continue
        report.sent.append(letter)
    if dry_run or not report.sent:
        return report
    # One fixed id: a second replay running at the same time fences the first instead of doubling it.
    transactional_id = f"{settings.router.transactional_id}.dlq-replay"
    deadline = time.monotonic() + settings.kafka.delivery_timeout_ms / 1000
    producer = retry_until(
        deadline,
        "registering the replay's transactional id",
        lambda attempt: open_transactional_producer(settings, transactional_id, attempt=attempt),
    )
    with kafka_errors(bootstrap=settings.bootstrap):
        try:
            producer.begin_transaction()
            for letter in report.sent:
                producer.send(
                    letter.origin_topic, key=letter.key, value=letter.value, headers=letter.original_headers()
                )
                producer.send(
                    topics.dlq,
                    key=letter.key,
                    value=b"",
                    partition=letter.partition,
                    headers=[
                        (REPLAYED_HEADER, letter.place.encode()),
                        ("bus389_dlq_replayed_to", letter.origin_topic.encode("utf-8")),
                    ],
                )
            producer.commit_transaction()
        finally:
            producer.close(timeout=10)
    return report
