"""The router's audit record (``vn.bcd389.AuditRecord``): one per routing decision, not an event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from bus389.agencies import Agency
from bus389.events._base import BusModel
from bus389.events._rules import Count, EventId, Instant, Long, Text

__all__ = ["AuditRecord", "Delivery", "Withheld"]


class Delivery(BusModel):
    """One copy written to a recipient's inbox, under one rule."""

    recipient: Agency
    rule_id: Text
    plan_section: Text
    redacted_fields: list[Text] = []


class Withheld(BusModel):
    """An agency a rule named that did not receive the event, and why."""

    agency: Agency
    reason: Text


class AuditRecord(BusModel):
    """Who received an event, under which rule and with what redacted, and who did not."""

    event_id: EventId
    event_type: Text
    sender: Agency
    schema_id: Count
    origin_topic: Text
    origin_partition: Count
    origin_offset: Long
    received_at: Instant
    routed_at: Instant
    deliveries: list[Delivery] = []
    withheld: list[Withheld] = []

    def to_avro(self) -> dict[str, Any]:
        """The Avro-ready record (aware UTC datetimes, agency codes as str)."""
        record: dict[str, Any] = self.model_dump(mode="python")
        record["sender"] = self.sender.value
        for delivery in record["deliveries"]:
            delivery["recipient"] = delivery["recipient"].value
        for withheld in record["withheld"]:
            withheld["agency"] = withheld["agency"].value
        return record

    @classmethod
    def from_avro(cls, record: Mapping[str, Any]) -> Self:
        return cls.validate_nfc(record)
