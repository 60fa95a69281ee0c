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


class Clock:
    """A settable clock in epoch milliseconds."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms
