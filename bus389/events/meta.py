"""The envelope every event carries (``EventMeta``), the ``Event`` base class, and ``new_meta``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import model_validator

from bus389.agencies import Agency
from bus389.events._base import ENUM_DEFAULTS, AvroEnum, BusModel
from bus389.events._rules import EventId, Instant, Name, OptEventId, OptName, to_utc_millis

__all__ = ["Event", "EventMeta", "Tlp", "Urgency", "new_meta"]


class Tlp(AvroEnum):
    """Traffic Light Protocol 2.0 (``meta.sensitivity``); the router enforces who may see what."""

    CLEAR = "CLEAR"
    GREEN = "GREEN"
    AMBER = "AMBER"
    AMBER_STRICT = "AMBER_STRICT"
    RED = "RED"


class Urgency(AvroEnum):
    ROUTINE = "ROUTINE"
    PRIORITY = "PRIORITY"
    IMMEDIATE = "IMMEDIATE"


ENUM_DEFAULTS[Tlp] = Tlp.RED
ENUM_DEFAULTS[Urgency] = Urgency.ROUTINE


class EventMeta(BusModel):
    """``vn.bcd389.EventMeta``: identity, type, sender, times, case, reply link, handling marks."""

    event_id: EventId
    event_type: Name
    source: Agency
    occurred_at: Instant
    published_at: Instant
    case_ref: OptName = None
    in_reply_to: OptEventId = None
    sensitivity: Tlp = Tlp.RED
    """Unless the publisher says otherwise an event is RED: fail closed."""
    urgency: Urgency = Urgency.ROUTINE
    recipients: list[Agency] = []
    """The agencies the sender addresses the event to: a RED or AMBER_STRICT event reaches only these
    (those whose duties cover its type); empty, the routes decide (schema v2; v1 events read as empty)."""

    @model_validator(mode="after")
    def _recipients_distinct(self) -> Self:
        if len(set(self.recipients)) != len(self.recipients):
            raise ValueError("meta.recipients names an agency twice")
        return self


class Event(BusModel):
    """Base of every event model: ``meta`` plus the type's own fields (see ``EVENT_MODELS``).

    ``to_avro()`` gives the record fastavro writes (aware UTC datetimes, dates, enum symbols as str);
    ``from_avro()`` takes a decoded record back; ``to_json_dict()`` is the JSON-safe form.
    """

    EVENT_TYPE: ClassVar[str] = ""

    meta: EventMeta

    @model_validator(mode="after")
    def _meta_names_this_type(self) -> Self:
        if self.meta.event_type != self.EVENT_TYPE:
            raise ValueError(
                f"meta.event_type is {self.meta.event_type!r} but this is a {self.EVENT_TYPE!r} event"
            )
        return self

    @property
    def event_id(self) -> str:
        return self.meta.event_id

    @property
    def event_type(self) -> str:
        return self.EVENT_TYPE

    @property
    def source(self) -> Agency:
        return self.meta.source

    def to_avro(self) -> dict[str, Any]:
        """The Avro-ready record: datetimes for timestamps, dates for dates, str for enums and uuids.

        Enum members stay members: they are ``StrEnum``s, so they are their symbols to fastavro and to
        any ``str`` code (a walk turning them into plain ``str`` cost five times the dump itself).
        """
        record: dict[str, Any] = self.model_dump(mode="python")
        return record

    @classmethod
    def from_avro(cls, record: Mapping[str, Any]) -> Self:
        """The event from a decoded record (every rule is checked again: a peer may be older or buggy)."""
        return cls.validate_nfc(record)

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-safe form: RFC 3339 times, ISO dates, enum symbols, null for absent optionals."""
        data: dict[str, Any] = self.model_dump(mode="json")
        return data


def new_meta(
    event_type: str,
    source: Agency | str,
    *,
    occurred_at: datetime | None = None,
    case_ref: str | None = None,
    in_reply_to: str | None = None,
    sensitivity: Tlp | str = Tlp.RED,
    urgency: Urgency | str = Urgency.ROUTINE,
    recipients: list[Agency] | list[str] | None = None,
    event_id: str | None = None,
    now: datetime | None = None,
) -> EventMeta:
    """A fresh envelope: a new uuid4 event id (unless given), ``published_at`` = now (UTC, ms),
    ``occurred_at`` defaulting to now."""
    published = to_utc_millis(now or datetime.now(UTC))
    return EventMeta.model_validate(
        {
            "event_id": event_id or str(uuid.uuid4()),
            "event_type": event_type,
            "source": source,
            "occurred_at": occurred_at or published,
            "published_at": published,
            "case_ref": case_ref,
            "in_reply_to": in_reply_to,
            "sensitivity": sensitivity,
            "urgency": urgency,
            "recipients": list(recipients or []),
        }
    )
