"""What one outbox record becomes: inbox copies and an audit record, or a dead letter (no Kafka I/O).

:class:`RecordRouter` decodes the record (the codec's typed errors are DLQ reasons), validates it with
the event model (``invalid_event``), lets :func:`~bus389.routing.decision.decide` verify the sender, its
right to say it and its id, and choose the recipients, and builds the records to write: one copy per
recipient (the original bytes, or the event re-encoded with the redacted fields set to null), the
original key and headers plus the router's, a sealed notice to the standing office when it may not read
the event, and one audit record. It never raises on bad input: what cannot be routed becomes a dead
letter carrying the original bytes, the reason, a readable detail and the origin, and its sender is told
in its own inbox (an UNDELIVERABLE ``routing_notice``). A duplicate (the same sender, the same id) is
delivered once: the second copy writes nothing.

Signatures (:mod:`bus389.signing`): with a verifier set, :meth:`RecordRouter.verify_or_reject` checks the
sender's signature before any routing decision; each copy carries the sender's signature with the
salts of its redacted fields dropped (the router never re-signs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bus389.agencies import Agency, Topics
from bus389.consumers.router.audit import Origin, build_audit_record
from bus389.consumers.router.audit_chain import AuditChain
from bus389.consumers.router.replies import ReplyIndex
from bus389.errors import BusError, CodecError
from bus389.events.notices import RoutingNotice
from bus389.routing.decision import Decision, decide
from bus389.routing.notices import sealed_notice, undeliverable_notice
from bus389.routing.policy import Policy
from bus389.routing.redaction import redact
from bus389.signing.events import Proof, RouterVerifier, header_map

if TYPE_CHECKING:
    from bus389.codec import Decoded

__all__ = [
    "DLQ_HEADERS",
    "INVALID_EVENT",
    "NOT_AN_OUTBOX",
    "ROUTER_HEADERS",
    "Outgoing",
    "RecordRouter",
    "Routed",
    "dlq_record",
    "fault_hook",
    "headers_of",
]

INVALID_EVENT = "invalid_event"
NOT_AN_OUTBOX = "not_an_outbox"

ROUTER_HEADERS = ("bus389_rule", "bus389_plan_section", "bus389_origin", "bus389_redacted")
"""Headers the router adds to an inbox copy (contract). ``bus389_*`` names belong to the bus: a sender's
own headers with that prefix are dropped from the copies, so none can forge a rule or a redaction."""
DLQ_HEADERS = (
    "bus389_dlq_reason",
    "bus389_dlq_detail",
    "bus389_origin_topic",
    "bus389_origin_partition",
    "bus389_origin_offset",
)
_DETAIL_MAX = 2000

fault_hook: Callable[[Any], None] | None = None
"""Test hook (fault injection), None in production: called with each record before it is routed, so a
test running the router in its own process can make chosen records raise as an unexpected bug would and
check that the service strikes them to the DLQ (``router_error``) without touching the routing code.
Set it only in tests (e.g. ``monkeypatch.setattr(records, "fault_hook", ...)``); no setting or
environment variable turns it on."""


@dataclass(frozen=True)
class Outgoing:
    """One record to write: an inbox copy, an audit record or a dead letter."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Routed:
    """What one outbox record became."""

    origin: Origin
    outgoing: tuple[Outgoing, ...]
    decision: Decision | None = None
    dlq_reason: str | None = None
    dlq_detail: str = ""
    claimed_source: str = ""
    published_at: datetime | None = None
    copies: int = 0
    """Inbox copies of the event itself (notices and the audit record not counted)."""

    @property
    def routed(self) -> bool:
        return self.dlq_reason is None

    @property
    def duplicate(self) -> bool:
        return self.decision is not None and self.decision.duplicate


def _headers(raw: Iterable[tuple[str, bytes | None]] | None) -> list[tuple[str, bytes]]:
    return [(str(name), bytes(value) if value is not None else b"") for name, value in (raw or [])]


def dlq_record(dlq_topic: str, raw: Any, reason: str, detail: str) -> Outgoing:
    """The dead letter of ``raw``: its original key, value and headers, plus the reason and origin."""
    detail = detail if len(detail) <= _DETAIL_MAX else detail[: _DETAIL_MAX - 1] + "…"
    headers = [h for h in _headers(raw.headers) if h[0] not in DLQ_HEADERS]
    headers += [
        ("bus389_dlq_reason", reason.encode()),
        ("bus389_dlq_detail", detail.encode("utf-8")),
        ("bus389_origin_topic", str(raw.topic).encode("utf-8")),
        ("bus389_origin_partition", str(raw.partition).encode()),
        ("bus389_origin_offset", str(raw.offset).encode()),
    ]
    return Outgoing(dlq_topic, raw.key, raw.value, headers)


class RecordRouter:
    """Decode, validate, verify the sender, decide and build the records for one outbox record.

    Holds the policy and the reply index; records every routed event's sender in the index.
    """

    def __init__(
        self,
        topics: Topics,
        policy: Policy,
        replies: ReplyIndex | None = None,
        *,
        verifier: RouterVerifier | None = None,
        chain: AuditChain | None = None,
    ) -> None:
        from bus389.schemas.catalog import load_catalog

        self.topics = topics
        self.policy = policy
        self.replies = replies if replies is not None else ReplyIndex()
        self.verifier = verifier
        """Checks each event's signature before routing (:mod:`bus389.signing`); None: not checked."""
        self.chain = chain
        """Links each audit record to the previous one of its chain (:mod:`.audit_chain`); None: unlinked."""
        catalog = load_catalog()
        self._audit_schema = catalog.audit
        self._notice_schema = catalog.latest(RoutingNotice.EVENT_TYPE)

    def _dead(
        self,
        raw: Any,
        origin: Origin,
        reason: str,
        detail: str,
        *,
        record: Mapping[str, Any] | None = None,
        decision: Decision | None = None,
        **extra: Any,
    ) -> Routed:
        """A dead letter, the sender's notice of it, and the standing office's sealed notice if due."""
        outgoing = [dlq_record(self.topics.dlq, raw, reason, detail)]
        sender = self.topics.sender_of(raw.topic)
        if sender is not None:
            notice = undeliverable_notice(sender, origin.header(), f"{reason}: {detail}", record)
            outgoing.append(self._notice(self.topics.inbox(sender), raw.key, notice))
        if decision is not None and record is not None:
            outgoing += self._sealed(decision, record, origin, raw.key)
        return Routed(
            origin=origin,
            outgoing=tuple(outgoing),
            dlq_reason=reason,
            dlq_detail=detail,
            decision=decision,
            **extra,
        )

    def _sealed(
        self, decision: Decision, record: Mapping[str, Any], origin: Origin, key: bytes | None
    ) -> list[Outgoing]:
        """The sealed notices the decision owes (the standing office's, when it gets no copy)."""
        return [
            self._notice(
                self.topics.inbox(agency), key, sealed_notice(decision, record, origin.header(), agency)
            )
            for agency in decision.sealed
        ]

    def _notice(self, topic: str, key: bytes | None, notice: Mapping[str, Any]) -> Outgoing:
        from bus389.codec import encode_value, event_headers, event_key

        return Outgoing(
            topic,
            key if key is not None else event_key(notice),
            encode_value(notice, self._notice_schema),
            event_headers(notice, self._notice_schema),
        )

    def verify_or_reject(
        self,
        raw: Any,
        origin: Origin,
        sender: Agency,
        decoded: Decoded,
        headers: list[tuple[str, bytes]],
        received_at: datetime,
    ) -> Proof | Routed | None:
        """The sender's signature, checked before any routing decision (:mod:`bus389.signing`).

        A :class:`Proof` (copied into every inbox copy, minus the redacted fields' salts: the router
        never re-signs; with no verifier set, passed on unchecked), None for an unsigned event that may pass
        (``signing.require`` off), or the dead letter: ``unsigned``, ``bad_signature``,
        ``unknown_key``, ``key_not_valid`` (revoked, rotated out, not yet valid), ``wrong_key`` (the
        key is not the outbox agency's, or not the event source's) or ``field_altered``.
        """
        if self.verifier is None:
            return Proof.unchecked(header_map(headers))  # the recipients check it
        checked = self.verifier.check(sender, decoded, header_map(headers), received_at)
        if checked is None or isinstance(checked, Proof):
            return checked
        return self._dead(
            raw,
            origin,
            checked.reason or "bad_signature",
            checked.detail,
            claimed_source=str(decoded.meta.get("source", "")),
        )

    def route(self, raw: Any, *, received_at: datetime, now: Callable[[], datetime] | None = None) -> Routed:
        """The records ``raw`` (a consumer record of an outbox) turns into; never raises on bad input."""
        from bus389.codec import decode_event, encode_value, event_headers, event_key
        from bus389.events import event_from_avro, validation_problems

        if fault_hook is not None:
            fault_hook(raw)
        origin = Origin(raw.topic, raw.partition, raw.offset)
        sender = self.topics.sender_of(raw.topic)
        if sender is None:
            return self._dead(
                raw, origin, NOT_AN_OUTBOX, f"{raw.topic} is not an outbox of {self.topics.prefix}"
            )
        headers = _headers(raw.headers)
        try:
            decoded = decode_event(raw.value, headers)
        except CodecError as exc:
            return self._dead(raw, origin, exc.reason, str(exc))
        if not decoded.schema.is_event:
            return self._dead(raw, origin, INVALID_EVENT, f"{decoded.schema.ref} is not an event schema")
        record = decoded.record
        try:
            event_from_avro(record)
        except ValidationError as exc:
            return self._dead(raw, origin, INVALID_EVENT, "; ".join(validation_problems(exc)), record=record)
        except BusError as exc:
            return self._dead(raw, origin, INVALID_EVENT, str(exc), record=record)

        checked = self.verify_or_reject(raw, origin, sender, decoded, headers, received_at)
        if isinstance(checked, Routed):
            return checked
        published_at = decoded.meta.get("published_at")
        decision = decide(sender, record, self.policy, self.replies)
        extra: dict[str, Any] = {
            "decision": decision,
            "claimed_source": str(decoded.meta.get("source", "")),
            "published_at": published_at if isinstance(published_at, datetime) else None,
        }
        if decision.duplicate:
            return Routed(origin=origin, outgoing=(), **extra)
        if not decision.routed:
            return self._dead(
                raw,
                origin,
                decision.dlq_reason or "no_route",
                decision.dlq_detail,
                record=record,
                **extra,
            )

        key = raw.key if raw.key is not None else event_key(record)
        kept = [h for h in headers if not h[0].startswith("bus389_")]
        outgoing: list[Outgoing] = []
        for delivery in decision.deliveries:
            value = (
                raw.value
                if not delivery.redacted
                else encode_value(redact(record, delivery.redacted), decoded.schema)
            )
            copy_headers = [
                *kept,
                ("bus389_rule", delivery.rule_id.encode("utf-8")),
                ("bus389_plan_section", delivery.plan_section.encode("utf-8")),
                ("bus389_origin", origin.header().encode("utf-8")),
                ("bus389_redacted", ",".join(delivery.redacted).encode("utf-8")),
                *(checked.headers_for(delivery.redacted) if checked is not None else ()),
            ]
            outgoing.append(Outgoing(self.topics.inbox(delivery.recipient), key, value, copy_headers))
        copies = len(outgoing)
        outgoing += self._sealed(decision, record, origin, key)
        clock = now or (lambda: datetime.now(UTC))
        audit = build_audit_record(
            decision,
            schema_id=decoded.schema.schema_id,
            origin=origin,
            received_at=received_at,
            routed_at=clock(),
        )
        audit_key, audit_value = decision.event_id.encode("utf-8"), encode_value(audit, self._audit_schema)
        audit_headers = event_headers(audit, self._audit_schema)
        if self.chain is not None:
            audit_headers += self.chain.link(
                f"{origin.topic}/{origin.partition}", origin.offset, audit_key, audit_value
            )
        outgoing.append(Outgoing(self.topics.audit, audit_key, audit_value, audit_headers))
        self.replies.record(decision.event_id, sender, decision.recipients)
        return Routed(origin=origin, outgoing=tuple(outgoing), copies=copies, **extra)


def headers_of(
    raw_headers: Mapping[str, bytes] | Iterable[tuple[str, bytes | None]] | None,
) -> dict[str, str]:
    """Kafka headers as text (for the CLI and tests)."""
    items = raw_headers.items() if isinstance(raw_headers, Mapping) else (raw_headers or [])
    return {str(k): (v or b"").decode("utf-8", errors="replace") for k, v in items}
