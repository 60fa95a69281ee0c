"""The router's notices as records: a sealed notice of a decision, an undeliverable notice of a dead letter.

Pure functions (no Kafka, no clock): the notice's times are the original event's, and its id is derived
from where the router read the original and who the notice is for, so that routing the same outbox
record again (after an aborted transaction) writes the same notice, which consumers keep once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from bus389.agencies import Agency
from bus389.events.notices import NoticeKind, RoutingNotice
from bus389.routing.decision import Decision

__all__ = ["NOTICE_NAMESPACE", "notice_id", "sealed_notice", "undeliverable_notice"]

NOTICE_NAMESPACE = uuid.UUID("7a3e1c52-389b-5c1e-9a8e-0c2f3d4b5a61")
"""uuid5 namespace of notice ids."""

_REASON_MAX = 2000


def notice_id(kind: NoticeKind, origin: str, recipient: Agency) -> str:
    """The id of the ``kind`` notice to ``recipient`` about the outbox record at ``origin``."""
    return str(uuid.uuid5(NOTICE_NAMESPACE, f"{kind.value}|{origin}|{recipient.value}"))


def _meta_of(record: Mapping[str, Any] | None) -> Mapping[str, Any]:
    meta = record.get("meta") if isinstance(record, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _deadline(record: Mapping[str, Any] | None) -> datetime | None:
    if not isinstance(record, Mapping):
        return None
    for name in ("deadline", "due_at", "due_date", "expires_at"):
        found = _time(record.get(name))
        if found is not None:
            return found
    return None


def _notice(
    kind: NoticeKind,
    *,
    recipient: Agency,
    sender: Agency,
    origin: str,
    record: Mapping[str, Any] | None,
    recipients: tuple[Agency, ...],
    reason: str | None,
) -> dict[str, Any]:
    meta = _meta_of(record)
    about_id = meta.get("event_id")
    about_id = str(about_id) if isinstance(about_id, str) and len(about_id) == 36 else None
    occurred = _time(meta.get("occurred_at"))
    published = _time(meta.get("published_at"))
    sensitivity = meta.get("sensitivity")
    if reason is not None:
        # The detail may quote the sender's bytes: nothing in it may act on whoever reads the notice.
        reason = "".join(ch if ch.isprintable() or ch in "\n\t" else "\ufffd" for ch in reason)
        if len(reason) > _REASON_MAX:
            reason = reason[: _REASON_MAX - 1] + "…"
    moment = published or occurred
    fields: dict[str, Any] = {
        "meta": {
            "event_id": notice_id(kind, origin, recipient),
            "event_type": RoutingNotice.EVENT_TYPE,
            "source": sender,
            "occurred_at": occurred or moment or datetime.fromtimestamp(0, UTC),
            "published_at": published or moment or datetime.fromtimestamp(0, UTC),
            "case_ref": meta.get("case_ref") if isinstance(meta.get("case_ref"), str) else None,
            # An undeliverable notice answers the sender's own event: its services keep it as a reply.
            "in_reply_to": about_id if kind is NoticeKind.UNDELIVERABLE else None,
            "sensitivity": "AMBER" if kind is NoticeKind.SEALED else "RED",
            "urgency": meta.get("urgency") if isinstance(meta.get("urgency"), str) else "ROUTINE",
            "recipients": [recipient],
        },
        "notice": kind,
        "about_event_id": about_id,
        "about_event_type": str(meta["event_type"]) if meta.get("event_type") else None,
        "about_sender": sender,
        "about_sensitivity": sensitivity if isinstance(sensitivity, str) else None,
        "about_occurred_at": occurred,
        "about_published_at": published,
        "recipients": list(recipients),
        "deadline": _deadline(record),
        "reason": reason,
        "origin": origin,
    }
    try:
        return RoutingNotice.model_validate(fields).to_avro()
    except ValidationError:
        # What the router read may be anything (that is why it is dead): a notice then says only what
        # the router knows for sure, never what the sender's bytes claim.
        epoch = datetime.fromtimestamp(0, UTC)
        fields["meta"] = {
            **fields["meta"],
            "occurred_at": epoch,
            "published_at": epoch,
            "case_ref": None,
            "in_reply_to": None,
            "urgency": "ROUTINE",
        }
        fields.update(
            about_event_id=None,
            about_event_type=None,
            about_sensitivity=None,
            about_occurred_at=None,
            about_published_at=None,
            deadline=None,
        )
        return RoutingNotice.model_validate(fields).to_avro()


def sealed_notice(
    decision: Decision, record: Mapping[str, Any], origin: str, recipient: Agency
) -> dict[str, Any]:
    """What ``recipient`` (the standing office) may know of an event it may not read: no content."""
    why = f"sensitivity {decision.sensitivity}"
    if decision.named:
        why += f", addressed to {', '.join(a.value for a in decision.named)}"
    if not decision.routed:
        why += f"; not delivered ({decision.dlq_reason})"
    return _notice(
        NoticeKind.SEALED,
        recipient=recipient,
        sender=decision.sender,
        origin=origin,
        record=record,
        recipients=decision.recipients,
        reason=why,
    )


def undeliverable_notice(
    sender: Agency, origin: str, reason: str, record: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The notice to ``sender`` that its record at ``origin`` went to the DLQ, and why."""
    return _notice(
        NoticeKind.UNDELIVERABLE,
        recipient=sender,
        sender=sender,
        origin=origin,
        record=record,
        recipients=(),
        reason=reason,
    )
