"""The audit record of one routing decision (``schemas/audit/v1.avsc``): who got an event, under which rule.

One record per routed event, written to the audit topic in the same transaction as the inbox copies,
so the audit trail and the inboxes never disagree. Its key is the event id; the router also reads the
trail back at start-up to know the sender of every event it routed (see
:mod:`bus389.consumers.router.replies`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bus389.routing.decision import Decision

__all__ = ["Origin", "build_audit_record"]


@dataclass(frozen=True)
class Origin:
    """Where the router read an event: the outbox topic, partition and offset."""

    topic: str
    partition: int
    offset: int

    def header(self) -> str:
        """``topic/partition/offset``, the ``bus389_origin`` header (contract)."""
        return f"{self.topic}/{self.partition}/{self.offset}"


def build_audit_record(
    decision: Decision, *, schema_id: int, origin: Origin, received_at: datetime, routed_at: datetime
) -> dict[str, Any]:
    """The Avro-ready ``vn.bcd389.AuditRecord`` of a routed ``decision``."""
    return {
        "event_id": decision.event_id,
        "event_type": decision.event_type,
        "sender": decision.sender.value,
        "schema_id": schema_id,
        "origin_topic": origin.topic,
        "origin_partition": origin.partition,
        "origin_offset": origin.offset,
        "received_at": received_at,
        "routed_at": routed_at,
        "deliveries": [d.to_json() for d in decision.deliveries],
        "withheld": [w.to_json() for w in decision.withheld],
    }
