"""Domain-block requests as the ICT service receives them (Avro-decoded records), and a fixed clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

T0 = 1_614_585_600_000
"""2021-03-01T08:00:00Z in epoch milliseconds: "now" in the unit tests."""
MINUTE = 60_000
DAY = 86_400_000


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def request_record(
    *,
    source: str = "police",
    action: str = "BLOCK",
    domains: list[str] | None = None,
    urls: list[str] | None = None,
    ip_addresses: list[str] | None = None,
    expires_at: int | None = None,
    event_id: str | None = None,
    case_ref: str | None = "VA-2021-017",
    legal_basis: str = "Công văn 12/CAT-PC03",
    sensitivity: str = "AMBER",
    urgency: str = "PRIORITY",
    published_at: int = T0 - 10 * MINUTE,
) -> dict[str, Any]:
    """A decoded ``domain_block_request`` record (timestamps as aware datetimes, as fastavro gives them)."""
    return {
        "meta": {
            "event_id": event_id or str(uuid.uuid4()),
            "event_type": "domain_block_request",
            "source": source,
            "occurred_at": at(published_at - MINUTE),
            "published_at": at(published_at),
            "case_ref": case_ref,
            "in_reply_to": None,
            "sensitivity": sensitivity,
            "urgency": urgency,
        },
        "domains": ["hang-gia.example.vn"] if domains is None else domains,
        "urls": urls or [],
        "ip_addresses": ip_addresses or [],
        "action": action,
        "reason": "Bán hàng giả mạo nhãn hiệu trên website",
        "legal_basis": legal_basis,
        "violation_kinds": ["COUNTERFEIT"],
        "expires_at": at(expires_at) if expires_at is not None else None,
    }


def _meta(event_type: str, source: str, published_at: int, **meta: Any) -> dict[str, Any]:
    return {
        "event_id": meta.pop("event_id", None) or str(uuid.uuid4()),
        "event_type": event_type,
        "source": source,
        "occurred_at": at(published_at - MINUTE),
        "published_at": at(published_at),
        "case_ref": meta.pop("case_ref", None),
        "in_reply_to": meta.pop("in_reply_to", None),
        "sensitivity": meta.pop("sensitivity", "AMBER"),
        "urgency": meta.pop("urgency", "ROUTINE"),
    }


def suspect_seller_record(
    *,
    source: str = "police",
    domains: list[str] | None = None,
    accounts: list[dict[str, Any]] | None = None,
    evidence_urls: list[str] | None = None,
    event_id: str | None = None,
    published_at: int = T0 - 10 * MINUTE,
) -> dict[str, Any]:
    """A decoded ``suspect_seller`` as the ict inbox carries it (personal data redacted by the router)."""
    return {
        "meta": _meta("suspect_seller", source, published_at, event_id=event_id, case_ref="VA-2021-031"),
        "seller": {
            "name": "Shop Mỹ phẩm Hàn Quốc Ngọc Trâm",
            "tax_code": "4300581296",
            "national_id": None,
            "phone": None,
            "address": None,
            "province": "Quảng Ngãi",
        },
        "accounts": [
            {
                "platform": "FACEBOOK",
                "account": "myphamngoctram",
                "url": "https://facebook.com/myphamngoctram",
            },
            {"platform": "SHOPEE", "account": "ngoctram.shop", "url": None},
        ]
        if accounts is None
        else accounts,
        "goods": "Mỹ phẩm giả mạo nhãn hiệu",
        "violation_kinds": ["COUNTERFEIT"],
        "evidence_urls": ["https://myphamngoctram.vn/san-pham/kem-trang-da"]
        if evidence_urls is None
        else evidence_urls,
        "domains": ["myphamngoctram.vn"] if domains is None else domains,
        "goods_imported": False,
        "border_area": False,
        "estimated_value_vnd": 150_000_000,
        "summary": "Bán mỹ phẩm giả trên website và Facebook",
    }


def law_gap_proposal_record(*, source: str = "police", in_reply_to: str | None = None) -> dict[str, Any]:
    return {
        "meta": _meta("law_gap_proposal", source, T0 - 10 * MINUTE, in_reply_to=in_reply_to),
        "regulation": "Nghị định 52/2013/NĐ-CP",
        "article": None,
        "problem": "Chưa quy định trách nhiệm của sàn với người bán ẩn danh",
        "proposal": "Bổ sung nghĩa vụ xác minh danh tính người bán",
    }


class Clock:
    """A settable clock in epoch milliseconds."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms
