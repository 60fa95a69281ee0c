"""Reports: ``periodic_report`` and ``law_gap_proposal`` to the standing office (plan III.3, II.1, II.6),
``compiled_report`` from it to the committee (II.9)."""

from __future__ import annotations

from typing import ClassVar

from bus389.agencies import Agency
from bus389.events._base import ENUM_DEFAULTS, AvroEnum
from bus389.events._rules import Count, Money, OptText, Period, Text
from bus389.events.meta import Event

__all__ = ["CompiledReport", "LawGapProposal", "PeriodicReport", "ReportKind"]


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


class CompiledReport(Event):
    """The standing office's compilation of the members' reports for the committee (plan II.9, III.3)."""

    EVENT_TYPE: ClassVar[str] = "compiled_report"

    period: Period
    title: Text
    body: Text
    events_seen: Count = 0
    cases_detected: Count = 0
    cases_handled: Count = 0
    fines_vnd: Money = 0
    goods_seized_value_vnd: Money = 0
    tax_collected_vnd: Money = 0
    domains_blocked: Count = 0
    members_reported: list[Agency] = []
    members_missing: list[Agency] = []
    overlaps: Count = 0
