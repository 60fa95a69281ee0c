"""One entity's whole history in the store: every report of a tax code, domain or phone, whenever made.

``bus389 report --correlate VALUE`` reads VALUE as a tax code, a phone number and a domain, each
normalised as :mod:`.correlation` normalises the stored keys (so ``0312 345 678``, ``+84 912 345 678``
and ``https://www.Shop.vn/x`` find what was reported as ``0312345678``, ``0912.345.678`` and
``shop.vn``), and lists every stored event carrying it, oldest first, with the sellers' names as each
member wrote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bus389.consumers.standing_office.correlation import (
    CorrelationKey,
    normalise_domain,
    normalise_phone,
    normalise_tax_code,
)
from bus389.consumers.standing_office.render import (
    EVENT_TYPE_LABELS,
    KEY_KIND_LABELS,
    Block,
    Heading,
    ListBlock,
    Para,
    Table,
    agency_name,
    format_datetime,
)
from bus389.consumers.standing_office.report import event_summary
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.errors import InputError

__all__ = ["EntityHistory", "HistoryLine", "entity_history", "history_layout", "lookup_keys"]


@dataclass(frozen=True)
class HistoryLine:
    occurred_at: datetime
    agency: str
    event_type: str
    event_id: str
    key: CorrelationKey
    summary: str


@dataclass(frozen=True)
class EntityHistory:
    query: str
    keys: tuple[tuple[str, str], ...]
    """The (kind, normalised value) pairs looked up."""
    lines: tuple[HistoryLine, ...]
    sellers: tuple[str, ...]
    """Every spelling of a seller in those events, in order of first appearance."""


def lookup_keys(text: str) -> list[tuple[str, str]]:
    """The keys ``text`` may be: a tax code, a phone number, a domain (any that it can be)."""
    raw = text.strip()
    if not raw or len(raw) > 300 or any(ord(ch) < 32 for ch in raw):
        raise InputError(
            "--correlate: give a tax code, a domain or a phone number (one line, at most 300 characters)"
        )
    keys: list[tuple[str, str]] = []
    digits = re.sub(r"\D", "", raw)
    if re.fullmatch(r"[\d\s.\-]+", raw) and len(digits) in (10, 13):
        keys.append(("tax_code", normalise_tax_code(raw)))
    if re.fullmatch(r"\+?[\d\s.\-()]+", raw):
        phone = normalise_phone(raw)
        if phone and len(phone.lstrip("+")) <= 12:  # 13 digits is a branch's tax code, never a phone
            keys.append(("phone", phone))
    domain = normalise_domain(raw) if "." in raw and not re.fullmatch(r"[\d\s.\-+()]+", raw) else ""
    if domain and "." in domain:
        keys.append(("domain", domain))
    if not keys:
        raise InputError(f"--correlate {raw!r}: not a tax code, a domain or a phone number")
    return keys


def entity_history(store: StandingOfficeStore, text: str) -> EntityHistory:
    keys = lookup_keys(text)
    found = store.events_with_keys(keys)
    lines = tuple(
        HistoryLine(e.occurred_at, e.source, e.event_type, e.event_id, key, event_summary(e.record))
        for e, key in found
    )
    sellers: dict[str, None] = {}
    all_keys = store.keys_of((line.event_id, line.agency) for line in lines)
    for line in lines:
        for key in all_keys.get((line.event_id, line.agency), []):
            if key.kind == "seller":
                sellers.setdefault(key.label, None)
    return EntityHistory(text.strip(), tuple(keys), lines, tuple(sellers))


def history_layout(history: EntityHistory) -> list[Block]:
    looked = ", ".join(f"{KEY_KIND_LABELS.get(k, k)} {v}" for k, v in history.keys)
    blocks: list[Block] = [
        Heading(1, f"Lịch sử báo cáo: {history.query}"),
        Para(f"Tra cứu: {looked}. Mọi báo cáo đã lưu, không giới hạn kỳ."),
    ]
    if not history.lines:
        return [*blocks, Para("Không có báo cáo nào.")]
    agencies = sorted({line.agency for line in history.lines})
    blocks.append(
        ListBlock(
            (
                f"Số báo cáo: {len(history.lines)}",
                "Cơ quan báo cáo: " + ", ".join(agency_name(a) for a in agencies),
                "Người bán được ghi nhận: " + ("; ".join(history.sellers) or "—"),
            )
        )
    )
    blocks.append(
        Table(
            ("Thời gian", "Cơ quan", "Loại sự kiện", "Ghi nhận", "Nội dung", "Mã sự kiện"),
            tuple(
                (
                    format_datetime(line.occurred_at),
                    agency_name(line.agency),
                    EVENT_TYPE_LABELS.get(line.event_type, line.event_type),
                    line.key.label,
                    line.summary or "—",
                    line.event_id,
                )
                for line in history.lines
            ),
        )
    )
    return blocks
