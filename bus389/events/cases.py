"""Cases: a ``complaint`` from the public, a ``case_referral`` to the police, a ``case_outcome``."""

from __future__ import annotations

from typing import ClassVar

from bus389.events._base import ENUM_DEFAULTS, AvroEnum
from bus389.events._rules import Day, Instant, Money, OptMoney, OptText, Text, Url
from bus389.events.common import Person, Seller, SellerAccount, ViolationKind
from bus389.events.meta import Event

__all__ = [
    "CaseOutcome",
    "CaseOutcomeKind",
    "CaseReferral",
    "Complaint",
    "ComplaintChannel",
    "ComplaintKind",
]


class ComplaintKind(AvroEnum):
    """Kiến nghị (petition), khiếu nại (complaint), tố cáo (denunciation)."""

    PETITION = "PETITION"
    COMPLAINT = "COMPLAINT"
    DENUNCIATION = "DENUNCIATION"


class ComplaintChannel(AvroEnum):
    HOTLINE = "HOTLINE"
    EMAIL = "EMAIL"
    IN_PERSON = "IN_PERSON"
    ONLINE_PORTAL = "ONLINE_PORTAL"
    POST = "POST"
    OTHER = "OTHER"


class CaseOutcomeKind(AvroEnum):
    """How a case ended (Avro enum ``CaseOutcomeKind``: ``CaseOutcome`` is the event record's name)."""

    ADMINISTRATIVE_SANCTION = "ADMINISTRATIVE_SANCTION"
    CRIMINAL_PROSECUTION = "CRIMINAL_PROSECUTION"
    WARNING = "WARNING"
    NO_VIOLATION = "NO_VIOLATION"
    TRANSFERRED = "TRANSFERRED"
    OTHER = "OTHER"


ENUM_DEFAULTS[ComplaintKind] = ComplaintKind.COMPLAINT
ENUM_DEFAULTS[ComplaintChannel] = ComplaintChannel.OTHER
ENUM_DEFAULTS[CaseOutcomeKind] = CaseOutcomeKind.OTHER


class Complaint(Event):
    """A petition, complaint or denunciation received from the public (plan II.5, II.9)."""

    EVENT_TYPE: ClassVar[str] = "complaint"

    kind: ComplaintKind
    channel: ComplaintChannel
    received_at: Instant
    complainant: Person | None = None
    seller: Seller | None = None
    accounts: list[SellerAccount] = []
    summary: Text
    signs_of_crime: bool = False


class CaseReferral(Event):
    """A case with signs of crime handed to the police (plan II.1)."""

    EVENT_TYPE: ClassVar[str] = "case_referral"

    seller: Seller | None = None
    accounts: list[SellerAccount] = []
    violation_kinds: list[ViolationKind] = []
    suspected_offences: list[Text] = []
    evidence_urls: list[Url] = []
    estimated_value_vnd: OptMoney = None
    summary: Text


class CaseOutcome(Event):
    """A case handled: sanction, fine, goods seized (plan II.7, II.9); ``public``: the media may publish."""

    EVENT_TYPE: ClassVar[str] = "case_outcome"

    seller: Seller | None = None
    outcome: CaseOutcomeKind
    violation_kinds: list[ViolationKind] = []
    fine_vnd: Money = 0
    goods_seized: OptText = None
    goods_seized_value_vnd: Money = 0
    decision_ref: OptText = None
    decided_on: Day
    public: bool = False
    summary: Text
