"""Inspection results (``inspection_result``): what an inspecting member found (plan II.6, II.9, I.1).

ICT inspects websites, social networks and domains "phối hợp với các lực lượng chức năng" (II.6); any
member that inspects may report one. The result goes back to the agency whose lead or request it
answers (``meta.in_reply_to``), to the standing office, and to the police when it finds signs of crime.
"""

from __future__ import annotations

from typing import ClassVar

from bus389.events._base import ENUM_DEFAULTS, AvroEnum
from bus389.events._rules import DomainName, Instant, Text
from bus389.events.common import SellerAccount, ViolationKind
from bus389.events.meta import Event

__all__ = ["InspectionFinding", "InspectionResult"]


class InspectionFinding(AvroEnum):
    VIOLATION_FOUND = "VIOLATION_FOUND"
    NO_VIOLATION = "NO_VIOLATION"
    INCONCLUSIVE = "INCONCLUSIVE"


ENUM_DEFAULTS[InspectionFinding] = InspectionFinding.INCONCLUSIVE


class InspectionResult(Event):
    """What an inspection found; ``meta.in_reply_to`` names the lead or request it answers, if any."""

    EVENT_TYPE: ClassVar[str] = "inspection_result"

    finding: InspectionFinding
    signs_of_crime: bool = False
    domains: list[DomainName] = []
    accounts: list[SellerAccount] = []
    violation_kinds: list[ViolationKind] = []
    inspected_at: Instant
    inspected_by: Text
    summary: Text
