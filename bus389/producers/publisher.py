"""Publishing validated events to an agency's outbox, all or nothing, in Kafka transactions.

Delivery guarantee: a file is validated in full before anything is sent; then its events go to the
publishing agency's outbox (``<prefix>.outbox.<agency>``) through an idempotent, ``acks=all``,
transactional producer, in one transaction per file (or per chunk of
``settings.kafka.transaction_chunk_events`` events for a large file). A transaction is committed only
after every send was acknowledged; readers (``read_committed``) never see an aborted or open one.
The key is ``meta.case_ref`` or the event id (see :mod:`bus389.codec`), so a case keeps its order.
When a chunk fails, the chunks before it stay committed and :class:`~bus389.errors.PublishError`
says exactly which lines and event ids are on the topic and which are not. A commit that was sent but
not confirmed (a timeout, a coordinator that moved) is reported as such: its events may or may not be
on the topic, and are never called "not committed".
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from bus389.agencies import STANDING_OFFICE, Agency
from bus389.codec import Encoded, encode_event
from bus389.errors import (
    BrokerError,
    BusError,
    CodecError,
    ConfigError,
    InputError,
    InvalidRecordsError,
    PublishError,
    RecordError,
)
from bus389.events import EVENT_MODELS, Event, build_event, validation_problems
from bus389.kafka import (
    bounded_call,
    kafka_errors,
    make_admin,
    missing_topic_message,
    open_transactional_producer,
    retry_until,
)
from bus389.producers.readers import SourceRecord
from bus389.routing.decision import NO_ROUTE, NOT_PERMITTED, Original, decide
from bus389.routing.policy import Policy
from bus389.settings import Settings
from bus389.signing.events import EventSigner

log = logging.getLogger(__name__)

__all__ = [
    "ChunkReport",
    "OutgoingEvent",
    "PublishReport",
    "Publisher",
    "check_routes",
    "check_sizes",
    "prepare_events",
    "publish_file",
    "publish_transactional_id",
]


@dataclass(frozen=True)
class OutgoingEvent:
    """One validated event, encoded, with the input line it came from."""

    line: int
    event: Event
    encoded: Encoded

    @property
    def event_id(self) -> str:
        return str(self.event.meta.event_id)


@dataclass(frozen=True)
class ChunkReport:
    """The events of one transaction: input lines ``first_line``–``last_line`` and their ids."""

    first_line: int
    last_line: int
    event_ids: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.event_ids)

    def describe(self) -> str:
        lines = f"line {self.first_line}" if self.first_line == self.last_line else "lines "
        if self.first_line != self.last_line:
            lines += f"{self.first_line}-{self.last_line}"
        return f"{lines} ({self.count} events: {', '.join(self.event_ids)})"


@dataclass(frozen=True)
class PublishReport:
    """What a publish did: every event (line, id) and the transactions committed."""

    event_type: str
    agency: Agency
    topic: str
    source: str
    dry_run: bool
    events: tuple[OutgoingEvent, ...] = field(repr=False)
    committed: tuple[ChunkReport, ...] = ()
    transactional_id: str | None = None

    @property
    def count(self) -> int:
        """Events validated (dry run) or committed to the topic."""
        return len(self.events) if self.dry_run else sum(c.count for c in self.committed)

    def summary(self) -> str:
        if self.dry_run:
            where = f" in {self.source}" if self.source else ""
            return (
                f"dry run: {len(self.events)} valid {self.event_type} events{where}, "
                f"would be published to {self.topic} (nothing sent)"
            )
        return f"published {self.count} events of {self.event_type} to {self.topic}"


def _check_event_type(event_type: str) -> None:
    if event_type not in EVENT_MODELS:
        valid = ", ".join(sorted(EVENT_MODELS))
        raise InputError(f"unknown event type {event_type!r}: use one of {valid}")


def publish_transactional_id(settings: Settings, agency: Agency) -> str:
    """A fresh transactional id under the agency's identity prefix: ``<prefix>.<agency>.publish.<uuid4>``.

    Fresh per run, so two clerks publishing at once never fence each other.
    """
    return settings.topics.identity_prefix(agency) + f"publish.{uuid.uuid4()}"


def prepare_events(
    event_type: str, agency: Agency, records: Sequence[SourceRecord], *, source: str = ""
) -> list[OutgoingEvent]:
    """Validate and encode every record; raise one :class:`InvalidRecordsError` naming all bad ones.

    Nothing is sent here: either every record becomes an event, or the caller publishes nothing.
    """
    _check_event_type(event_type)
    if not records:
        raise InputError(f"{source or 'input'}: no records to publish")
    bad: list[RecordError] = []
    ready: list[OutgoingEvent] = []
    for record in records:
        try:
            event = build_event(event_type, agency, record.data)
            encoded = encode_event(event)
        except ValidationError as exc:
            bad.append(RecordError(record.line, validation_problems(exc), source=source))
            continue
        except CodecError as exc:
            bad.append(RecordError(record.line, [f"cannot be encoded: {exc}"], source=source))
            continue
        ready.append(OutgoingEvent(record.line, event, encoded))
    if bad:
        raise InvalidRecordsError(bad, source=source, note="nothing was published")
    return ready


_RECORD_OVERHEAD = 128
"""Bytes a record batch adds around one record (header, lengths, varints): a safe over-estimate."""


def _encoded_size(encoded: Encoded) -> int:
    headers = sum(len(name.encode("utf-8")) + len(value) for name, value in encoded.headers)
    return len(encoded.key) + len(encoded.value) + headers + _RECORD_OVERHEAD


def _check_sizes(events: Sequence[OutgoingEvent], limit: int, source: str) -> None:
    """Refuse, before sending anything, an event the brokers would refuse as too large."""
    bad = [
        RecordError(
            e.line,
            [
                f"(event): {_encoded_size(e.encoded)} bytes encoded, over the limit of {limit} bytes "
                "(settings kafka.max_message_bytes): shorten the text or split the event"
            ],
            source=source,
        )
        for e in events
        if _encoded_size(e.encoded) > limit
    ]
    if bad:
        raise InvalidRecordsError(bad, source=source, note="nothing was published")


def check_routes(
    events: Sequence[OutgoingEvent],
    sender: Agency,
    policy: Policy,
    *,
    source: str = "",
    allow_unrouted: bool = False,
) -> None:
    """Refuse the whole file when an event would reach no one or is not the sender's to say.

    The router's own :func:`~bus389.routing.decision.decide` with the policy the router reads: an event
    outside the sender's rights, or one the policy routes nowhere (a RED event that names no recipient
    a duty covers, say), is named with its line, the reason and what to change. A reply's route
    depends on the router's audit trail, which a publisher does not have: only its right is checked.
    """

    bad: list[RecordError] = []
    for item in events:
        record = item.event.to_avro()
        in_reply_to = item.event.meta.in_reply_to

        def lookup(event_id: str, asked: str | None = in_reply_to) -> Original | None:
            # The trail is the router's: a reply is taken as answering an event this sender received.
            return Original(STANDING_OFFICE, frozenset({sender})) if asked and event_id == asked else None

        decision = decide(sender, record, policy, lookup)
        if decision.dlq_reason == NOT_PERMITTED:
            bad.append(
                RecordError(item.line, [f"not yours to publish: {decision.dlq_detail}"], source=source)
            )
        elif decision.dlq_reason == NO_ROUTE and in_reply_to is None and not allow_unrouted:
            bad.append(
                RecordError(
                    item.line,
                    [
                        f"would reach no one: {decision.dlq_detail}; name the recipients in meta.recipients, "
                        "or lower meta.sensitivity (see `bus389 routes explain`), or publish it anyway with "
                        "--allow-unrouted (it then goes to the DLQ and you are told in your inbox)"
                    ],
                    source=source,
                )
            )
    if bad:
        raise InvalidRecordsError(bad, source=source, note="nothing was published")


def check_sizes(settings: Settings, events: Sequence[OutgoingEvent], source: str) -> None:
    """Refuse (:class:`InvalidRecordsError`) any event over ``settings.kafka.max_message_bytes``, as
    :func:`publish_file` does, for a caller that publishes through its own open :class:`Publisher`."""
    _check_sizes(events, settings.kafka.max_message_bytes, source)


def _chunks(events: Sequence[OutgoingEvent], size: int) -> Iterator[Sequence[OutgoingEvent]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def _chunk_report(chunk: Sequence[OutgoingEvent]) -> ChunkReport:
    return ChunkReport(chunk[0].line, chunk[-1].line, tuple(e.event_id for e in chunk))


def _count_published(agency: Agency, events: Sequence[OutgoingEvent]) -> None:
    """Count committed events (``bus389_events_published_total``), pushed when the publisher closes."""
    from bus389 import metrics

    for outgoing in events:
        metrics.EVENTS_PUBLISHED.labels(agency.value, outgoing.event.event_type).inc()


class Publisher:
    """A transactional producer writing to one agency's outbox; a context manager that closes it.

    Each :meth:`publish` call is one Kafka transaction: it sends the events, waits for every
    acknowledgement and commits. A failure before the commit aborts the transaction (nothing of it
    becomes visible to ``read_committed`` readers) and raises :class:`PublishError`; if the abort
    itself fails or times out, the producer is closed and not used again. A failure of the commit
    itself leaves the outcome unknown (``outcome_unknown``; the error's ``unconfirmed_event_ids``):
    the producer is closed, without an abort, and not used again.
    """

    def __init__(self, settings: Settings, agency: Agency, *, transactional_id: str | None = None) -> None:
        self.settings = settings
        self.agency = agency
        self.topic = settings.topics.outbox(agency)
        self.transactional_id = transactional_id or publish_transactional_id(settings, agency)
        self._producer: Any = None
        self._signer = EventSigner.from_settings(settings, agency.value)
        """Signs every event with the agency's key (``signing.key_file``); None: unsigned."""
        self._broken = False
        self.outcome_unknown = False
        """A commit was sent but not confirmed: its events may or may not be on the topic."""

    @property
    def _wait_s(self) -> float:
        k = self.settings.kafka
        return (k.delivery_timeout_ms + k.request_timeout_ms) / 1000

    def __enter__(self) -> Publisher:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Check the outbox exists, create the producer and register its transactional id.

        Registering fences any older holder of the id. Both steps are retried on retriable errors
        (a broker that just died, a transaction coordinator moving to another broker) until
        ``settings.kafka.delivery_timeout_ms`` has passed; when no bootstrap broker answers at all,
        the :class:`~bus389.errors.NoBrokerError` is raised at once.
        """
        if self._producer is not None:
            return
        deadline = time.monotonic() + self.settings.kafka.delivery_timeout_ms / 1000
        self._check_topic(deadline)
        self._producer = retry_until(
            deadline,
            "registering the transactional id",
            lambda attempt: open_transactional_producer(
                self.settings, self.transactional_id, attempt=attempt
            ),
        )

    def _check_topic(self, deadline: float) -> None:
        # Without this, a send to a missing topic blocks for max_block_ms and then says "metadata".
        # One admin client for every attempt: a broker that refused it is in reconnect backoff there,
        # so the next attempt asks another one (a fresh client could pick the dead broker again).
        admin: Any = None
        with contextlib.ExitStack() as closing:

            def list_topics(_attempt: int) -> bool:
                nonlocal admin
                if admin is None:
                    admin = closing.enter_context(make_admin(self.settings))
                with kafka_errors(settings=self.settings):
                    return self.topic in admin.list_topics()

            exists = retry_until(deadline, f"checking that {self.topic} exists", list_topics)
        if not exists:
            raise ConfigError(missing_topic_message(self.settings, self.topic))

    def _open_producer(self, attempt: int) -> Any:
        return open_transactional_producer(self.settings, self.transactional_id, attempt=attempt)

    def close(self) -> None:
        """Flush and close (a broken producer is closed without waiting); push or log the counts."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        from bus389 import metrics

        metrics.push_counts(self.settings, "bus389_publish", {"agency": self.agency.value})
        if self._broken:
            producer.close(timeout=0)
            return
        with kafka_errors(settings=self.settings):
            producer.flush(timeout=self._wait_s)
            producer.close(timeout=self._wait_s)

    def publish(self, events: Sequence[OutgoingEvent]) -> ChunkReport:
        """Send ``events`` in one transaction and commit it; return what was committed.

        Returns only after ``commit_transaction`` succeeded. Raises :class:`PublishError` otherwise:
        either nothing of this transaction committed (``uncommitted_event_ids``), or the commit was
        sent and not confirmed (``outcome_unknown``, ``unconfirmed_event_ids``: they may be on the topic).
        """
        if self._producer is None or self._broken:
            raise PublishError("the publisher is closed (a previous transaction could not be aborted)")
        producer = self._producer
        report = _chunk_report(events)
        try:
            self._send_all(producer, events)
        except BusError as exc:
            self._abort()
            raise PublishError(
                f"transaction aborted, nothing of it committed: {exc}",
                retriable=exc.retriable,
                uncommitted_event_ids=report.event_ids,
            ) from exc
        except BaseException:
            # Interrupted (Ctrl-C): abort now rather than leave an open transaction holding back
            # every read_committed reader of these partitions until the broker times it out.
            self._abort()
            raise
        try:
            with kafka_errors(settings=self.settings):
                bounded_call(producer.commit_transaction, self._wait_s, "commit_transaction")
        except BusError as exc:
            # Once EndTxn(commit) may have been sent, a failure of it (a request timeout, a coordinator
            # that moved, no answer at all) says nothing about the outcome: the coordinator may have
            # the commit and complete it later. Say so, never guess; and do not abort: an abort cannot
            # undo a commit the coordinator has, and its own failure would prove nothing either.
            self._broken = True
            self.outcome_unknown = True
            self.close()
            raise PublishError(
                f"commit not confirmed ({exc}): these events may or may not be on {self.topic}",
                unconfirmed_event_ids=report.event_ids,
            ) from exc
        except BaseException:
            # Interrupted while the commit is in flight: the outcome is just as unknown.
            self._broken = True
            self.outcome_unknown = True
            self.close()
            raise
        _count_published(self.agency, events)
        return report

    def _send_all(self, producer: Any, events: Sequence[OutgoingEvent]) -> None:
        """Begin a transaction, send every event and wait until each one is acknowledged."""
        with kafka_errors(settings=self.settings):
            producer.begin_transaction()
        futures = []
        for outgoing in events:
            encoded = outgoing.encoded
            headers = encoded.headers
            if self._signer is not None:
                headers = self._signer.headers(encoded.value, headers)
            try:
                with kafka_errors(settings=self.settings):
                    future = producer.send(self.topic, key=encoded.key, value=encoded.value, headers=headers)
            except BrokerError as exc:
                raise PublishError(
                    f"line {outgoing.line} (event {outgoing.event_id}) could not be sent: {exc}",
                    retriable=exc.retriable,
                ) from exc
            futures.append((outgoing, future))
        flush_error: BrokerError | None = None
        try:
            with kafka_errors(settings=self.settings):
                producer.flush(timeout=self._wait_s)
        except BrokerError as exc:
            flush_error = exc  # the futures below say which event failed, if they can
        for outgoing, future in futures:
            try:
                with kafka_errors(settings=self.settings):
                    future.get(timeout=self._wait_s)
            except BrokerError as exc:
                raise PublishError(
                    f"line {outgoing.line} (event {outgoing.event_id}) was not acknowledged: {exc}",
                    retriable=exc.retriable,
                ) from exc
        if flush_error is not None:
            raise flush_error

    def _abort(self) -> None:
        producer = self._producer
        if producer is None:
            return
        try:
            with kafka_errors(settings=self.settings):
                bounded_call(producer.abort_transaction, self._wait_s, "abort_transaction")
        except BusError:
            # A producer whose abort failed is in an unknown state: close it, never retry on it.
            # The broker aborts the open transaction itself when its timeout expires.
            self._broken = True
            self.close()


def publish_file(
    settings: Settings,
    event_type: str,
    agency: Agency | str,
    records: Sequence[SourceRecord],
    *,
    dry_run: bool = False,
    source: str = "",
    transactional_id: str | None = None,
    policy: Policy | None = None,
    allow_unrouted: bool = False,
) -> PublishReport:
    """Validate every record, then publish them all to ``agency``'s outbox (see the module docstring).

    With ``policy``, every event must also be the sender's to say and reach someone
    (:func:`check_routes`); without it the router alone decides.

    Raises :class:`InputError` (unknown agency or event type), :class:`InvalidRecordsError` (every bad
    record with its line and fields; nothing published) or :class:`PublishError` (says which chunks
    were committed before the failure and which were not).
    """
    sender = Agency.parse(agency)
    _check_event_type(event_type)
    events = prepare_events(event_type, sender, records, source=source)
    if policy is not None:
        check_routes(events, sender, policy, source=source, allow_unrouted=allow_unrouted)
    _check_sizes(events, settings.kafka.max_message_bytes, source)
    topic = settings.topics.outbox(sender)
    if dry_run:
        return PublishReport(event_type, sender, topic, source, True, tuple(events))
    chunks = list(_chunks(events, settings.kafka.transaction_chunk_events))
    committed: list[ChunkReport] = []
    # Errors while opening (no broker, no topic) pass through as they are: nothing was sent yet.
    with Publisher(settings, sender, transactional_id=transactional_id) as publisher:
        for chunk in chunks:
            try:
                committed.append(publisher.publish(chunk))
            except BusError as exc:
                raise _partial_failure(
                    exc,
                    committed,
                    chunks[len(committed) :],
                    topic,
                    unknown=publisher.outcome_unknown,
                    agency=sender,
                ) from exc
    return PublishReport(
        event_type, sender, topic, source, False, tuple(events), tuple(committed), publisher.transactional_id
    )


def _partial_failure(
    exc: BusError,
    committed: list[ChunkReport],
    remaining: Sequence[Sequence[OutgoingEvent]],
    topic: str,
    *,
    unknown: bool = False,
    agency: Agency | None = None,
) -> PublishError:
    """The error for a file whose publish stopped at ``remaining[0]``: what is on the topic, what is not.

    With ``unknown`` the commit of ``remaining[0]`` was sent but not confirmed: those events may or may
    not be on the topic (``unconfirmed_event_ids``), and the message says how to check before
    publishing them again (a re-run of the file gives its events new ids).
    """
    pending = [_chunk_report(c) for c in remaining]
    unconfirmed = pending[0] if unknown and pending else None
    not_sent = pending[1:] if unconfirmed is not None else pending
    head = "was not confirmed" if unconfirmed is not None else "failed"
    parts = [f"publishing to {topic} {head}: {exc}"]
    if committed:
        parts.append("committed (on the topic): " + "; ".join(c.describe() for c in committed))
    elif unconfirmed is None:
        parts.append("nothing was committed before the failure")
    if unconfirmed is not None:
        parts.append("commit not confirmed (check the topic): " + unconfirmed.describe())
    if not_sent:
        parts.append("not committed: " + "; ".join(c.describe() for c in not_sent))
    if unconfirmed is not None:
        reader = agency.value if agency is not None else "AGENCY"
        parts.append(
            f"to finish, publish again only the lines that are not on {topic}: look for the unconfirmed "
            f"event ids first (`bus389 consume --as {reader} --topic outbox --from-beginning`); publishing "
            "gives every event a new id, so an event published twice would be on the bus twice"
        )
    return PublishError(
        "\n".join(parts),
        retriable=exc.retriable and unconfirmed is None,
        committed_event_ids=tuple(i for c in committed for i in c.event_ids),
        uncommitted_event_ids=tuple(i for c in not_sent for i in c.event_ids),
        unconfirmed_event_ids=unconfirmed.event_ids if unconfirmed is not None else (),
    )
