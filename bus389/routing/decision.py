"""The routing decision: a pure function from (sender, event, policy, reply lookup) to who receives what.

No Kafka, no clock, no I/O: the service, ``bus389 routes explain``, the publishers' check before they
send and the tests all call :func:`decide` the same way. The decision says, for each recipient, the rule
and plan section that deliver the event and the personal fields redacted from its copy; who receives
only a sealed notice; for each agency a matching rule named but need-to-know held back, why; and, when
the event must not be routed at all, the DLQ reason.

Order of the checks (each failing one is a DLQ reason):

1. the sender (the outbox the event came from) must be ``meta.source`` (``spoofed_source``);
2. the policy's rights must let the sender publish the event type (``not_permitted``);
3. an event id belongs to the agency that sent it first (``id_taken``); the same sender sending the same
   id again is a duplicate, delivered once (``duplicate``, not routed and not a DLQ case);
4. a reply (``meta.in_reply_to``) must name an event the router routed (``unknown_original``) and come
   from an agency that received it or sent it (``not_asked``);
5. every matching rule's recipients are filtered by the sender rule (no echo unless ``include_sender``)
   and by sensitivity: the TLP 2.0 reading of :mod:`bus389.routing.policy`, and for RED and
   AMBER_STRICT events that name their recipients (``meta.recipients``) exactly the named agencies
   that a matching rule covers. A recipient reached by several rules is delivered under the first rule,
   in policy order, that allows it. An event with no recipient left goes to the DLQ as ``no_route``.

The standing office, which follows every case (II.9, III.3), receives a sealed notice of every routed or
unroutable event it gets no copy of (the router writes it; see :mod:`bus389.events.notices`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from bus389.agencies import STANDING_OFFICE, Agency
from bus389.routing.policy import ORIGINAL_SENDER, Policy, Rule
from bus389.routing.redaction import redactions_for

__all__ = [
    "DUPLICATE",
    "ID_TAKEN",
    "NOT_ASKED",
    "NOT_PERMITTED",
    "NO_ROUTE",
    "SPOOFED_SOURCE",
    "TLP_LEVELS",
    "UNKNOWN_ORIGINAL",
    "Decision",
    "Delivery",
    "Original",
    "ReplyLookup",
    "Withheld",
    "decide",
    "sensitivity_of",
]

SPOOFED_SOURCE = "spoofed_source"
NOT_PERMITTED = "not_permitted"
ID_TAKEN = "id_taken"
DUPLICATE = "duplicate"
UNKNOWN_ORIGINAL = "unknown_original"
NOT_ASKED = "not_asked"
NO_ROUTE = "no_route"

TLP_LEVELS = ("CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED")


class Original(NamedTuple):
    """What the router's audit trail says of an event it routed."""

    sender: Agency
    recipients: frozenset[Agency] = frozenset()


ReplyLookup = Callable[[str], Original | None]
"""event id → who sent it and who received it, or None when the router never routed that event."""


@dataclass(frozen=True)
class Delivery:
    """One copy to one recipient's inbox."""

    recipient: Agency
    rule_id: str
    plan_section: str
    redacted: tuple[str, ...] = ()
    """Personal fields set to null in this copy (only those that held a value)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, with the audit record's field names (``vn.bcd389.Delivery``: contract)."""
        return {
            "recipient": self.recipient.value,
            "rule_id": self.rule_id,
            "plan_section": self.plan_section,
            "redacted_fields": list(self.redacted),
        }


@dataclass(frozen=True)
class Withheld:
    """An agency a matching rule named that does not receive the event, and why."""

    agency: Agency
    reason: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, with the audit record's field names (``vn.bcd389.Withheld``: contract)."""
        return {"agency": self.agency.value, "reason": self.reason}


@dataclass(frozen=True)
class Decision:
    """Who receives an event, under which rule; or why it goes to the DLQ instead."""

    event_id: str
    event_type: str
    sender: Agency
    sensitivity: str
    deliveries: tuple[Delivery, ...] = ()
    withheld: tuple[Withheld, ...] = ()
    dlq_reason: str | None = None
    dlq_detail: str = ""
    matched_rules: tuple[str, ...] = field(default=())
    sealed: tuple[Agency, ...] = ()
    """Agencies that receive a sealed notice (type, sender, time, case, recipients; no content)."""
    named: tuple[Agency, ...] = ()
    """``meta.recipients``: the agencies the sender addressed the event to."""

    @property
    def routed(self) -> bool:
        return self.dlq_reason is None

    @property
    def duplicate(self) -> bool:
        """The sender already sent this id: delivered once, this copy is dropped (not a dead letter)."""
        return self.dlq_reason == DUPLICATE

    @property
    def dead(self) -> bool:
        """Goes to the DLQ (and the sender is told)."""
        return self.dlq_reason is not None and self.dlq_reason != DUPLICATE

    @property
    def recipients(self) -> tuple[Agency, ...]:
        return tuple(d.recipient for d in self.deliveries)

    def delivery_to(self, agency: Agency) -> Delivery | None:
        return next((d for d in self.deliveries if d.recipient == agency), None)

    def to_json(self) -> dict[str, Any]:
        """The decision as JSON-ready data (``bus389 routes explain --json``); its deliveries and
        withheld agencies are written exactly as the audit record carries them."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "sender": self.sender.value,
            "sensitivity": self.sensitivity,
            "dlq_reason": self.dlq_reason,
            "dlq_detail": self.dlq_detail or None,
            "deliveries": [d.to_json() for d in self.deliveries],
            "withheld": [w.to_json() for w in self.withheld],
            "named": [a.value for a in self.named],
            "sealed": [a.value for a in self.sealed],
        }


def sensitivity_of(record: Mapping[str, Any]) -> str:
    """``meta.sensitivity``; anything missing or unknown counts as RED (the most restrictive)."""
    meta = record.get("meta")
    value = meta.get("sensitivity") if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) and value in TLP_LEVELS else "RED"


def _sensitivity_block(
    rule: Rule, recipient: Agency, level: str, policy: Policy, named: frozenset[Agency]
) -> str | None:
    if recipient in policy.sensitivity.clear_only and level != "CLEAR":
        return f"sensitivity {level}: {recipient.value} receives CLEAR events only"
    if level in ("RED", "AMBER_STRICT") and named:
        if recipient in named:
            return None
        return f"sensitivity {level}: the sender addressed it to {_names(named)} only"
    if level == "RED" and not rule.allow_red:
        return (
            f"sensitivity RED: rule {rule.id!r} does not allow RED (name the recipients in meta.recipients)"
        )
    if level == "AMBER_STRICT" and not rule.carries_amber_strict:
        return f"sensitivity AMBER_STRICT: rule {rule.id!r} is a copy for information, not a named recipient"
    return None


def _names(agencies: frozenset[Agency] | tuple[Agency, ...]) -> str:
    return ", ".join(sorted(a.value for a in agencies))


def _agency(value: Any) -> Agency | None:
    try:
        return Agency(value)
    except ValueError:
        return None


def _named(meta: Mapping[str, Any]) -> tuple[Agency, ...]:
    named = meta.get("recipients") or ()
    found = (_agency(getattr(value, "value", value)) for value in named)
    return tuple(dict.fromkeys(a for a in found if a is not None))


def decide(sender: Agency, record: Mapping[str, Any], policy: Policy, replies: ReplyLookup) -> Decision:
    """Decide the recipients of ``record`` (a decoded event) that came from ``sender``'s outbox."""
    raw_meta = record.get("meta")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    event_type = str(meta.get("event_type", ""))
    level = sensitivity_of(record)
    named = _named(meta)
    base = Decision(
        event_id=str(meta.get("event_id", "")),
        event_type=event_type,
        sender=sender,
        sensitivity=level,
        named=named,
    )

    source = _agency(meta.get("source"))
    if source != sender:
        return replace(
            base,
            dlq_reason=SPOOFED_SOURCE,
            dlq_detail=(
                f"meta.source is {meta.get('source')!r} but the event came from the outbox of {sender.value}"
            ),
        )
    if not policy.may_publish(sender, event_type):
        right = policy.right_for(event_type)
        who = (
            _names(tuple(right.publishers)) if right and right.publishers else "no agency (the bus writes it)"
        )
        section = f" ({right.plan_section})" if right else ""
        return replace(
            base,
            dlq_reason=NOT_PERMITTED,
            dlq_detail=(
                f"{sender.value} may not publish {event_type or 'this event'}: "
                f"the plan gives it to {who}{section}"
            ),
        )
    earlier = replies(base.event_id) if base.event_id else None
    if earlier is not None:
        if earlier.sender != sender:
            return replace(
                base,
                dlq_reason=ID_TAKEN,
                dlq_detail=f"event id {base.event_id} was already sent by {earlier.sender.value}",
            )
        return replace(base, dlq_reason=DUPLICATE, dlq_detail=f"event id {base.event_id} was already routed")

    matching = [rule for rule in policy.rules_for(event_type) if rule.matches(event_type, record)]
    in_reply_to = str(meta.get("in_reply_to") or "") or None
    target: Agency | None = None
    if any(rule.replies for rule in matching):
        original = replies(in_reply_to) if in_reply_to else None
        if original is None:
            return replace(
                base,
                dlq_reason=UNKNOWN_ORIGINAL,
                dlq_detail=f"in_reply_to {in_reply_to!r} names no event the router has routed",
                matched_rules=tuple(r.id for r in matching),
            )
        if sender != original.sender and sender not in original.recipients:
            return replace(
                base,
                dlq_reason=NOT_ASKED,
                dlq_detail=(
                    f"{sender.value} answers {in_reply_to}, which it never received "
                    f"(sent by {original.sender.value} to {_names(original.recipients) or 'nobody'})"
                ),
                matched_rules=tuple(r.id for r in matching),
            )
        target = original.sender

    named_set = frozenset(named)
    deliveries: dict[Agency, Delivery] = {}
    withheld: dict[Agency, str] = {}
    covered: set[Agency] = set()
    for rule in matching:
        for ref in rule.recipients:
            recipient = target if ref == ORIGINAL_SENDER else Agency(ref)
            if recipient is None:
                continue
            covered.add(recipient)
            if recipient in deliveries:
                continue
            if recipient == sender and not rule.include_sender:
                withheld.setdefault(recipient, "sender: an agency does not receive its own event back")
                continue
            # The sender already holds what it wrote: its own copy is never held back by sensitivity.
            blocked = (
                None if recipient == sender else _sensitivity_block(rule, recipient, level, policy, named_set)
            )
            if blocked is not None:
                withheld.setdefault(recipient, blocked)
                continue
            deliveries[recipient] = Delivery(
                recipient=recipient,
                rule_id=rule.id,
                plan_section=rule.plan_section,
                redacted=redactions_for(record, policy, recipient),
            )
    for agency in named:
        if agency not in covered:
            withheld.setdefault(agency, f"named, but no duty of {agency.value} covers {event_type} here")
    kept = tuple(Withheld(agency, reason) for agency, reason in withheld.items() if agency not in deliveries)
    matched = tuple(r.id for r in matching)
    sealed = () if STANDING_OFFICE in deliveries or sender == STANDING_OFFICE else (STANDING_OFFICE,)
    if not deliveries:
        why = "; ".join(f"{w.agency.value}: {w.reason}" for w in kept) or "no rule matches"
        return replace(
            base,
            withheld=kept,
            dlq_reason=NO_ROUTE,
            dlq_detail=f"no recipient for {event_type or 'an event without a type'} ({why})",
            matched_rules=matched,
            sealed=sealed,
        )
    return replace(
        base, deliveries=tuple(deliveries.values()), withheld=kept, matched_rules=matched, sealed=sealed
    )
