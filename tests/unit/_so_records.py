"""Event records as the standing office receives them (Avro-decoded: UUIDs, aware datetimes, dates).

Built by hand, not through the pydantic models, so that the store and the report are tested on what
the wire can carry, including spellings the models would have normalised (NFD input).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

VN = timezone(timedelta(hours=7))


def vn(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    """An instant given in Vietnam time (UTC+7), returned in UTC as the decoder gives it."""
    return datetime(year, month, day, hour, minute, tzinfo=VN).astimezone(UTC)


def seller(
    name: str,
    *,
    tax_code: str | None = None,
    phone: str | None = None,
    national_id: str | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "tax_code": tax_code,
        "national_id": national_id,
        "phone": phone,
        "address": address,
        "province": "Quảng Ngãi",
    }


def account(platform: str, name: str, url: str | None = None) -> dict[str, Any]:
    return {"platform": platform, "account": name, "url": url}


def meta(
    event_type: str,
    source: str,
    occurred_at: datetime,
    *,
    case_ref: str | None = None,
    in_reply_to: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": uuid.UUID(event_id) if event_id else uuid.uuid4(),
        "event_type": event_type,
        "source": source,
        "occurred_at": occurred_at,
        "published_at": occurred_at + timedelta(minutes=1),
        "case_ref": case_ref,
        "in_reply_to": uuid.UUID(in_reply_to) if in_reply_to else None,
        "sensitivity": "AMBER",
        "urgency": "ROUTINE",
    }


def eid(record: dict[str, Any]) -> str:
    return str(record["meta"]["event_id"])


def suspect_seller(source: str, at: datetime, who: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "meta": meta("suspect_seller", source, at),
        "seller": who,
        "accounts": fields.pop("accounts", []),
        "goods": fields.pop("goods", "Giày thể thao giả nhãn hiệu"),
        "violation_kinds": ["COUNTERFEIT"],
        "evidence_urls": [],
        "domains": fields.pop("domains", []),
        "goods_imported": False,
        "border_area": False,
        "estimated_value_vnd": None,
        "summary": fields.pop("summary", "Bán hàng giả trên mạng"),
    }


def domain_block_request(source: str, at: datetime, domains: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "meta": meta("domain_block_request", source, at),
        "domains": domains,
        "urls": fields.pop("urls", []),
        "ip_addresses": [],
        "action": "BLOCK",
        "reason": "Kinh doanh hàng giả",
        "legal_basis": "Công văn 12/CAT-PC03",
        "violation_kinds": ["COUNTERFEIT"],
        "expires_at": None,
    }


def domain_block_result(
    request: dict[str, Any], outcome: str, decided_at: datetime, *, requester: str = "police"
) -> dict[str, Any]:
    domains = list(request["domains"])
    return {
        "meta": meta("domain_block_result", "ict", decided_at, in_reply_to=eid(request)),
        "requester": requester,
        "outcome": outcome,
        "blocked": domains if outcome == "BLOCKED" else [],
        "not_blocked": [] if outcome == "BLOCKED" else domains,
        "decided_at": decided_at,
        "providers_notified": ["VNPT", "Viettel"],
        "note": None,
    }


def tax_discrepancy(
    at: datetime, who: dict[str, Any], *, undeclared: int, owed: int, source: str = "tax"
) -> dict[str, Any]:
    return {
        "meta": meta("tax_discrepancy", source, at),
        "seller": who,
        "accounts": [],
        "period": "2021-H1",
        "estimated_revenue_vnd": undeclared + 100_000_000,
        "declared_revenue_vnd": 100_000_000,
        "undeclared_revenue_vnd": undeclared,
        "estimated_tax_owed_vnd": owed,
        "notes": None,
    }


def complaint(source: str, at: datetime, who: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    return {
        "meta": meta("complaint", source, at, case_ref=fields.pop("case_ref", None)),
        "kind": "COMPLAINT",
        "channel": "HOTLINE",
        "received_at": at,
        "complainant": {
            "full_name": "Phạm Thị Lan",
            "national_id": None,
            "phone": "0905111222",
            "address": None,
        },
        "seller": who,
        "accounts": fields.pop("accounts", []),
        "summary": fields.pop("summary", "Mua phải hàng giả"),
        "signs_of_crime": False,
    }


def case_referral(
    source: str, at: datetime, case_ref: str | None, who: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "meta": meta("case_referral", source, at, case_ref=case_ref),
        "seller": who,
        "accounts": [],
        "violation_kinds": ["COUNTERFEIT"],
        "suspected_offences": ["Điều 192 BLHS 2015"],
        "evidence_urls": [],
        "estimated_value_vnd": None,
        "summary": "Có dấu hiệu tội phạm sản xuất, buôn bán hàng giả",
    }


def case_outcome(
    source: str,
    at: datetime,
    case_ref: str | None,
    *,
    outcome: str = "ADMINISTRATIVE_SANCTION",
    fine: int = 0,
    goods: str | None = None,
    goods_value: int = 0,
    in_reply_to: str | None = None,
) -> dict[str, Any]:
    return {
        "meta": meta("case_outcome", source, at, case_ref=case_ref, in_reply_to=in_reply_to),
        "seller": None,
        "outcome": outcome,
        "violation_kinds": ["COUNTERFEIT"],
        "fine_vnd": fine,
        "goods_seized": goods,
        "goods_seized_value_vnd": goods_value,
        "decision_ref": "QĐ 45/QĐ-XPHC",
        "decided_on": at.astimezone(VN).date(),
        "public": False,
        "summary": "Xử phạt hành chính",
    }


def periodic_report(source: str, at: datetime, period: str, kind: str = "SIX_MONTHLY") -> dict[str, Any]:
    return {
        "meta": meta("periodic_report", source, at),
        "report_kind": kind,
        "period": period,
        "title": f"Báo cáo {period}",
        "body": "Kết quả thực hiện Kế hoạch 141/KH-UBND",
        "cases_detected": 3,
        "cases_handled": 2,
        "fines_vnd": 0,
        "goods_seized_value_vnd": 0,
        "tax_collected_vnd": 0,
        "domains_blocked": 0,
        "attachments": [],
    }


def law_gap_proposal(source: str, at: datetime) -> dict[str, Any]:
    return {
        "meta": meta("law_gap_proposal", source, at),
        "regulation": "Nghị định 52/2013/NĐ-CP",
        "article": None,
        "problem": "Chưa quy định trách nhiệm của sàn",
        "proposal": "Bổ sung trách nhiệm xác minh người bán",
    }
