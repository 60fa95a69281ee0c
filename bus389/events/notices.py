"""The router's own notices (``routing_notice``): sealed notices and undeliverable-event notices.

No agency publishes one (the routing policy gives no agency the right): the router writes them straight
into an inbox. A SEALED notice tells the standing office that an event it may not read exists (type,
sender, times, case, recipients, deadline; no content), so that its counts, deadlines and correlation
on case references stay complete (plan II.9, III.3). An UNDELIVERABLE notice tells a sender that its
event went to the DLQ, and why: nothing a member publishes is lost without the sender being told.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from bus389.agencies import Agency
from bus389.events._base import ENUM_DEFAULTS, AvroEnum
from bus389.events._rules import OptEventId, OptInstant, OptText, Text
from bus389.events.meta import Event, Tlp

__all__ = ["WRITTEN_BY_THE_ROUTER", "NoticeKind", "RoutingNotice"]


class NoticeKind(AvroEnum):
    SEALED = "SEALED"
    UNDELIVERABLE = "UNDELIVERABLE"


ENUM_DEFAULTS[NoticeKind] = NoticeKind.SEALED


class RoutingNotice(Event):
    """A notice about another event, written by the router (see the module docstring)."""

    EVENT_TYPE: ClassVar[str] = "routing_notice"

    notice: NoticeKind
    about_event_id: OptEventId = None
    about_event_type: OptText = None
    about_sender: Agency
    about_sensitivity: Tlp | None = None
    about_occurred_at: OptInstant = None
    about_published_at: OptInstant = None
    recipients: list[Agency] = []
    deadline: OptInstant = None
    reason: OptText = None
    origin: Text

    @property
    def about_time(self) -> datetime | None:
        return self.about_occurred_at or self.about_published_at


WRITTEN_BY_THE_ROUTER = frozenset({RoutingNotice.EVENT_TYPE})
"""Event types only the router writes, straight into an inbox: no agency publishes or signs them."""
