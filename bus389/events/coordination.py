"""Coordination between the members: ``directive`` (urge, remind, assign, deconflict) and ``case_claim``.

Plan II.9: the standing office "đôn đốc" (urges) the members; II.8: the other members act "theo phân
công phối hợp của Ban Chỉ đạo 389 tỉnh" (as the committee assigns). A directive names its addressees in
``meta.recipients`` (one member, several, or ``other_members``) and is closed by the addressee's answer
(any event whose ``meta.in_reply_to`` is the directive's id). Plan I.2: "tránh hiện tượng chồng chéo"
(avoid overlap): a ``case_claim`` says which agency leads on a seller or a case; the standing office
flags a second claim on the same identifiers at once (a ``DECONFLICT`` directive to both claimants).
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import model_validator

from bus389.events._base import ENUM_DEFAULTS, AvroEnum
from bus389.events._rules import DomainName, EventId, OptInstant, OptText, Text
from bus389.events.common import Seller, SellerAccount
from bus389.events.meta import Event

__all__ = ["CaseClaim", "Directive", "DirectiveKind"]


class DirectiveKind(AvroEnum):
    URGE = "URGE"
    REMIND = "REMIND"
    ASSIGN = "ASSIGN"
    DECONFLICT = "DECONFLICT"
    OTHER = "OTHER"


ENUM_DEFAULTS[DirectiveKind] = DirectiveKind.OTHER


class Directive(Event):
    """A direction from the committee or the standing office to the members named in ``meta.recipients``."""

    EVENT_TYPE: ClassVar[str] = "directive"

    kind: DirectiveKind
    subject: Text
    plan_section: Text
    due_at: OptInstant = None
    about_event_ids: list[EventId] = []
    note: OptText = None

    @model_validator(mode="after")
    def _names_its_addressees(self) -> Self:
        if not self.meta.recipients:
            raise ValueError("a directive names its addressees in meta.recipients (one member or more)")
        return self


class CaseClaim(Event):
    """Taken up by: the sender leads on this seller or case (plan I.2); identifiers as the correlation's."""

    EVENT_TYPE: ClassVar[str] = "case_claim"

    seller: Seller
    accounts: list[SellerAccount] = []
    domains: list[DomainName] = []
    goods_imported: bool = False
    border_area: bool = False
    basis: Text
    note: OptText = None
