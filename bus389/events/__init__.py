"""The event models (pydantic): the ``.avsc`` contract plus the rules Avro cannot say.

A test proves every model matches its latest ``.avsc`` field for field. Models are frozen, refuse
unknown fields and store every string in Unicode NFC.
"""

from __future__ import annotations

from bus389.events._base import ENUM_DEFAULTS, AvroEnum, AvroType, BusModel
from bus389.events.audit import AuditRecord, Delivery, Withheld
from bus389.events.blocking import BlockAction, BlockOutcome, DomainBlockRequest, DomainBlockResult
from bus389.events.cases import (
    CaseOutcome,
    CaseOutcomeKind,
    CaseReferral,
    Complaint,
    ComplaintChannel,
    ComplaintKind,
)
from bus389.events.common import PERSONAL_DATA_FIELDS, Person, Platform, Seller, SellerAccount, ViolationKind
from bus389.events.coordination import CaseClaim, Directive, DirectiveKind
from bus389.events.inspections import InspectionFinding, InspectionResult
from bus389.events.meta import Event, EventMeta, Tlp, Urgency, new_meta
from bus389.events.notices import NoticeKind, RoutingNotice
from bus389.events.parsing import (
    EVENT_MODELS,
    USER_META_FIELDS,
    build_event,
    event_from_avro,
    model_for,
    parse_event,
    validation_problems,
)
from bus389.events.reports import CompiledReport, LawGapProposal, PeriodicReport, ReportKind
from bus389.events.sellers import SuspectSeller, TaxDiscrepancy

__all__ = [
    "InspectionResult",
    "InspectionFinding",
    "DirectiveKind",
    "Directive",
    "CompiledReport",
    "CaseClaim",
    "ENUM_DEFAULTS",
    "EVENT_MODELS",
    "PERSONAL_DATA_FIELDS",
    "USER_META_FIELDS",
    "AuditRecord",
    "AvroEnum",
    "AvroType",
    "BlockAction",
    "BlockOutcome",
    "BusModel",
    "CaseOutcome",
    "CaseOutcomeKind",
    "CaseReferral",
    "Complaint",
    "ComplaintChannel",
    "ComplaintKind",
    "Delivery",
    "DomainBlockRequest",
    "DomainBlockResult",
    "Event",
    "EventMeta",
    "LawGapProposal",
    "NoticeKind",
    "PeriodicReport",
    "Person",
    "Platform",
    "ReportKind",
    "RoutingNotice",
    "Seller",
    "SellerAccount",
    "SuspectSeller",
    "TaxDiscrepancy",
    "Tlp",
    "Urgency",
    "ViolationKind",
    "Withheld",
    "build_event",
    "event_from_avro",
    "model_for",
    "new_meta",
    "parse_event",
    "validation_problems",
]
