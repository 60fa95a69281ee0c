"""Reports to the standing office: ``periodic_report`` (plan III.3) and ``law_gap_proposal`` (II.1, II.6)."""

from __future__ import annotations

from typing import ClassVar

from bus389.events._base import ENUM_DEFAULTS, AvroEnum
from bus389.events._rules import Count, Money, OptText, Period, Text
from bus389.events.meta import Event

__all__ = ["LawGapProposal", "PeriodicReport", "ReportKind"]


class ReportKind(AvroEnum):
    SIX_MONTHLY = "SIX_MONTHLY"
    RAPID = "RAPID"
    AD_HOC = "AD_HOC"


ENUM_DEFAULTS[ReportKind] = ReportKind.AD_HOC


class PeriodicReport(Event):
    """A member's six-monthly, rapid or ad-hoc report (plan III.3)."""

    EVENT_TYPE: ClassVar[str] = "periodic_report"

    report_kind: ReportKind
    period: Period
    title: Text
    body: Text
    cases_detected: Count = 0
    cases_handled: Count = 0
    fines_vnd: Money = 0
    goods_seized_value_vnd: Money = 0
    tax_collected_vnd: Money = 0
    domains_blocked: Count = 0
    attachments: list[Text] = []


class LawGapProposal(Event):
    """A proposal to amend a regulation found lacking."""

    EVENT_TYPE: ClassVar[str] = "law_gap_proposal"

    regulation: Text
    article: OptText = None
    problem: Text
    proposal: Text
