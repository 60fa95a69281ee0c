"""What ICT keeps besides block requests: ``suspect_seller`` leads to inspect, and answers to its own events.

Plan II.6 makes the ICT department inspect websites, social networks and .VN domains; the routing policy
sends it every ``suspect_seller`` whose seller has a domain, a website or a social-network account (rule
``suspect_seller.ict``). Such an event is a **lead**: kept for the operator's inspection, idempotent by
event id, and **never blocked automatically**, whatever ``BUS389_ICT__AUTO_APPROVE_SENDERS`` says:
blocking needs a ``domain_block_request`` with a legal basis, which the operator (or the agency that
holds one) sends after the inspection.

The reply rules of the policy (``reply.original_sender``, ``domain_block_result.requester``) can also
bring ICT an event of any type that answers one of its own (``meta.in_reply_to``), such as a
``case_outcome`` answering ICT's ``suspect_seller``: a **reply**, kept as it came for the operator to read.

When the operator records what an inspection found (``bus389 ict inspected --finding``), ICT answers
the lead with an ``inspection_result`` (:func:`inspection_result_for`): back to the agency that sent
the lead, to the standing office, and to the police when it found signs of crime (plan II.6, II.1).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from bus389.agencies import Agency
from bus389.consumers.ict.decisions import epoch_ms
from bus389.consumers.ict.store import LeadRow, LeadState, ReplyRow
from bus389.events import Event, build_event

__all__ = ["LEAD_TYPE", "inspection_result_for", "lead_row", "record_json", "reply_row"]

LEAD_TYPE = "suspect_seller"


def lead_row(record: Mapping[str, Any], *, rule: str, origin: str, received_at: int) -> LeadRow:
    """The lead of a decoded ``suspect_seller`` record (the codec has checked the types already)."""
    meta = record["meta"]
    seller = record.get("seller") or {}
    published_at = epoch_ms(meta["published_at"])
    assert published_at is not None  # noqa: S101 - required by the schema
    return LeadRow(
        event_id=str(meta["event_id"]).lower(),
        sender=str(meta["source"]),
        seller_name=str(seller.get("name") or ""),
        seller_tax_code=seller.get("tax_code"),
        domains=tuple(str(d) for d in record.get("domains") or ()),
        accounts=tuple(
            {
                "platform": str(a.get("platform") or "OTHER"),
                "account": str(a.get("account") or ""),
                "url": a.get("url"),
            }
            for a in record.get("accounts") or ()
        ),
        evidence_urls=tuple(str(u) for u in record.get("evidence_urls") or ()),
        goods=str(record.get("goods") or ""),
        violation_kinds=tuple(str(v) for v in record.get("violation_kinds") or ()),
        summary=str(record.get("summary") or ""),
        case_ref=meta.get("case_ref"),
        sensitivity=str(meta.get("sensitivity") or "RED"),
        urgency=str(meta.get("urgency") or "ROUTINE"),
        rule=rule,
        published_at=published_at,
        received_at=received_at,
        origin=origin,
        state=LeadState.NEW,
    )


def reply_row(record: Mapping[str, Any], *, rule: str, origin: str, received_at: int) -> ReplyRow:
    """The reply of any decoded event record."""
    meta = record["meta"]
    published_at = epoch_ms(meta["published_at"])
    assert published_at is not None  # noqa: S101 - required by the schema
    in_reply_to = meta.get("in_reply_to")
    return ReplyRow(
        event_id=str(meta["event_id"]).lower(),
        event_type=str(meta["event_type"]),
        sender=str(meta["source"]),
        in_reply_to=str(in_reply_to).lower() if in_reply_to else None,
        case_ref=meta.get("case_ref"),
        rule=rule,
        published_at=published_at,
        received_at=received_at,
        origin=origin,
        record=json.loads(record_json(record)),
    )


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def record_json(record: Mapping[str, Any]) -> str:
    """A decoded Avro record as JSON text (UTF-8 kept as is)."""
    return json.dumps(record, default=_json_default, ensure_ascii=False, sort_keys=True)


def inspection_result_for(
    lead: LeadRow,
    *,
    finding: str,
    signs_of_crime: bool,
    inspected_at: datetime,
    inspected_by: str,
    summary: str | None,
) -> Event:
    """ICT's ``inspection_result`` answering ``lead`` (its case, its sensitivity, what was inspected)."""
    data = {
        "meta": {
            "in_reply_to": lead.event_id,
            "case_ref": lead.case_ref,
            "sensitivity": lead.sensitivity,
            "urgency": "PRIORITY" if signs_of_crime else lead.urgency,
        },
        "finding": finding,
        "signs_of_crime": signs_of_crime,
        "domains": list(lead.domains),
        "accounts": [dict(a) for a in lead.accounts],
        "violation_kinds": list(lead.violation_kinds) if finding == "VIOLATION_FOUND" else [],
        "inspected_at": inspected_at,
        "inspected_by": inspected_by,
        "summary": summary or f"Kiểm tra {lead.seller_name}: {finding}",
    }
    return build_event("inspection_result", Agency.ICT, data)
