"""The routing decision: a pure function from (sender, event, policy, reply lookup) to who receives what.

No Kafka, no clock, no I/O: the service, ``bus389 routes explain`` and the tests all call
:func:`decide` the same way. The decision says, for each recipient, the rule and plan section that
deliver the event and the personal fields redacted from its copy; for each agency a matching rule
named but need-to-know held back, why; and, when the event must not be routed at all, the DLQ reason.

Order of the checks: the sender (the outbox the event came from) must be ``meta.source``
(``spoofed_source``); a reply must resolve to its original sender (``unknown_original``); every
matching rule's recipients are then filtered by the sender rule (no echo unless ``include_sender``)
and by sensitivity (see :mod:`bus389.routing.policy` for the TLP 2.0 reading); a recipient reached
by several rules is delivered under the first rule, in policy order, that allows it. An event with no
recipient left goes to the DLQ as ``no_route``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bus389.agencies import Agency
from bus389.routing._paths import values_at
from bus389.routing.policy import ORIGINAL_SENDER, Policy, Rule
from bus389.routing.redaction import redactions_for

__all__ = [
    "NO_ROUTE",
    "SPOOFED_SOURCE",
    "TLP_LEVELS",
    "UNKNOWN_ORIGINAL",
    "Decision",
    "Delivery",
    "ReplyLookup",
    "Withheld",
    "decide",
    "sensitivity_of",
]

SPOOFED_SOURCE = "spoofed_source"
UNKNOWN_ORIGINAL = "unknown_original"
NO_ROUTE = "no_route"

TLP_LEVELS = ("CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED")

ReplyLookup = Callable[[str], Agency | None]
"""event id → the agency that sent it, or None when the router never routed that event."""


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

    @property
    def routed(self) -> bool:
        return self.dlq_reason is None

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
        }


def sensitivity_of(record: Mapping[str, Any]) -> str:
    """``meta.sensitivity``; anything missing or unknown counts as RED (the most restrictive)."""
    meta = record.get("meta")
    value = meta.get("sensitivity") if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) and value in TLP_LEVELS else "RED"


def _sensitivity_block(rule: Rule, recipient: Agency, level: str, policy: Policy) -> str | None:
    if recipient in policy.sensitivity.clear_only and level != "CLEAR":
        return f"sensitivity {level}: {recipient.value} receives CLEAR events only"
    if level == "RED" and not rule.allow_red:
        return f"sensitivity RED: rule {rule.id!r} does not allow RED"
    if level == "AMBER_STRICT" and not rule.carries_amber_strict:
        return f"sensitivity AMBER_STRICT: rule {rule.id!r} is a copy for information, not a named recipient"
    return None


def _agency(value: Any) -> Agency | None:
    try:
        return Agency(value)
    except ValueError:
        return None


def _reply_target(
    rules: list[Rule], record: Mapping[str, Any], in_reply_to: str | None, lookup: ReplyLookup
) -> Agency | None:
    """The original sender: from the router's own audit trail, else a rule's typed fallback field."""
    if in_reply_to:
        known = lookup(in_reply_to)
        if known is not None:
            return known
    for rule in rules:
        if rule.reply_fallback is None:
            continue
        for value in values_at(record, rule.reply_fallback):
            agency = _agency(value)
            if agency is not None:
                return agency
    return None


def decide(sender: Agency, record: Mapping[str, Any], policy: Policy, replies: ReplyLookup) -> Decision:
    """Decide the recipients of ``record`` (a decoded event) that came from ``sender``'s outbox."""
    raw_meta = record.get("meta")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    event_type = str(meta.get("event_type", ""))
    level = sensitivity_of(record)
    base = Decision(
        event_id=str(meta.get("event_id", "")), event_type=event_type, sender=sender, sensitivity=level
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

    matching = [rule for rule in policy.rules_for(event_type) if rule.matches(event_type, record)]
    in_reply_to = meta.get("in_reply_to") or None
    reply_rules = [rule for rule in matching if rule.replies]
    target = _reply_target(reply_rules, record, in_reply_to, replies) if reply_rules else None
    if reply_rules and target is None:
        return replace(
            base,
            dlq_reason=UNKNOWN_ORIGINAL,
            dlq_detail=(
                f"in_reply_to {in_reply_to!r} names no event the router has routed, and the event has no "
                "typed field naming the original sender"
            ),
            matched_rules=tuple(r.id for r in matching),
        )

    deliveries: dict[Agency, Delivery] = {}
    withheld: dict[Agency, str] = {}
    for rule in matching:
        for ref in rule.recipients:
            recipient = target if ref == ORIGINAL_SENDER else Agency(ref)
            if recipient is None or recipient in deliveries:
                continue
            if recipient == sender and not rule.include_sender:
                withheld.setdefault(recipient, "sender: an agency does not receive its own event back")
                continue
            blocked = _sensitivity_block(rule, recipient, level, policy)
            if blocked is not None:
                withheld.setdefault(recipient, blocked)
                continue
            deliveries[recipient] = Delivery(
                recipient=recipient,
                rule_id=rule.id,
                plan_section=rule.plan_section,
                redacted=redactions_for(record, policy, recipient),
            )
    kept = tuple(Withheld(agency, reason) for agency, reason in withheld.items() if agency not in deliveries)
    matched = tuple(r.id for r in matching)
    if not deliveries:
        why = "; ".join(f"{w.agency.value}: {w.reason}" for w in kept) or "no rule matches"
        return replace(
            base,
            withheld=kept,
            dlq_reason=NO_ROUTE,
            dlq_detail=f"no recipient for {event_type or 'an event without a type'} ({why})",
            matched_rules=matched,
        )
    return replace(base, deliveries=tuple(deliveries.values()), withheld=kept, matched_rules=matched)
