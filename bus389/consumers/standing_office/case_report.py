"""The reports on one case (plan III.3): the rapid report of a case as it stands, and the typical case.

A *rapid* report (báo cáo nhanh) shows one case as the standing office knows it now: every stored event
of the case (``meta.case_ref``) from every member, every event in reply to one of them (transitively),
who the routing policy delivers each one to, and the outcomes. A *typical* case (vụ việc điển hình) is
the same account of a case the office holds up as an example; only a closed case (one with a
``case_outcome``) can be one.

Who received each event is what :func:`bus389.routing.decision.decide` says for it under the current
policy (the router's own rule, not a second one), from the copy the standing office stored: a field the
router withheld from that copy can only have narrowed the answer, never widened it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bus389.agencies import Agency
from bus389.consumers.standing_office.correlation import CORRELATED_KINDS, CorrelationKey
from bus389.consumers.standing_office.render import (
    CASE_OUTCOME_LABELS,
    EVENT_TYPE_LABELS,
    KEY_KIND_LABELS,
    Block,
    Heading,
    ListBlock,
    Money,
    Para,
    Table,
    agency_name,
    format_datetime,
)
from bus389.consumers.standing_office.report import event_summary, outcome_line
from bus389.consumers.standing_office.report_model import CaseOutcomeLine
from bus389.consumers.standing_office.store import EventKey, StandingOfficeStore, StoredEvent
from bus389.errors import InputError

__all__ = ["KINDS", "CaseEvent", "CaseReport", "Recipients", "build_case_report", "case_layout"]

KINDS = ("rapid", "typical")
KIND_TITLES = {"rapid": "Báo cáo nhanh vụ việc", "typical": "Báo cáo vụ việc điển hình"}
_MAX_HOPS = 50
"""Replies to replies are followed this deep at most (a chain longer than this is not a case)."""

Recipients = Callable[[StoredEvent], tuple[tuple[str, ...], str | None]]
"""An event → (the agencies the routing delivers it to, the DLQ reason when it routes nowhere)."""


@dataclass(frozen=True)
class CaseEvent:
    event_id: str
    event_type: str
    agency: str
    occurred_at: datetime
    summary: str
    in_reply_to: str | None
    recipients: tuple[str, ...]
    not_routed: str | None
    redacted: tuple[str, ...]


@dataclass(frozen=True)
class CaseReport:
    kind: str
    case_ref: str
    generated_at: datetime
    events: tuple[CaseEvent, ...]
    outcomes: tuple[CaseOutcomeLine, ...]
    keys: tuple[CorrelationKey, ...]

    @property
    def agencies(self) -> tuple[str, ...]:
        order = [a.value for a in Agency]
        found = {e.agency for e in self.events}
        return tuple(sorted(found, key=lambda c: order.index(c) if c in order else len(order)))

    @property
    def closed(self) -> bool:
        return bool(self.outcomes)

    @property
    def title(self) -> str:
        return f"{KIND_TITLES[self.kind]} {self.case_ref}"


def build_case_report(
    store: StandingOfficeStore,
    case_ref: str,
    kind: str,
    *,
    recipients: Recipients,
    now: datetime | None = None,
) -> CaseReport:
    """The report of ``kind`` on case ``case_ref``; InputError when the store has no such (closed) case."""
    if kind not in KINDS:
        raise InputError(f"unknown case report kind {kind!r}: choose one of {', '.join(KINDS)}")
    ref = case_ref.strip()
    if not ref:
        raise InputError("--case: give the case reference (meta.case_ref), e.g. QLTT-2021-014")
    found: dict[EventKey, StoredEvent] = {e.key: e for e in store.replies((), [ref])}
    if not found:
        raise InputError(
            f"case {ref!r}: the standing office's store holds no event of this case (meta.case_ref)"
        )
    for _ in range(_MAX_HOPS):
        # Answers name an id: they answer the id's first sender's event, never a later copy's.
        asked = {e.event_id for e in found.values() if e.owns_id}
        new = [e for e in store.replies(asked, ()) if e.key not in found]
        if not new:
            break
        found.update((e.key, e) for e in new)
    events = sorted(found.values(), key=lambda e: (e.occurred_at, e.event_id, e.source))
    outcomes = tuple(outcome_line(e) for e in events if e.event_type == "case_outcome")
    if kind == "typical" and not outcomes:
        raise InputError(
            f"case {ref!r} is not closed (no case_outcome yet): a typical case must be one the office "
            "closed; use --kind rapid for a case as it stands"
        )
    lines = []
    for event in events:
        to, dlq = recipients(event)
        lines.append(
            CaseEvent(
                event_id=event.event_id,
                event_type=event.event_type,
                agency=event.source,
                occurred_at=event.occurred_at,
                summary=event_summary(event.record),
                in_reply_to=event.in_reply_to,
                recipients=to,
                not_routed=dlq,
                redacted=event.redacted,
            )
        )
    keys = {
        (k.kind, k.value): k for ks in store.keys_of(found).values() for k in ks if k.kind in CORRELATED_KINDS
    }
    return CaseReport(
        kind=kind,
        case_ref=ref,
        generated_at=(now or datetime.now(UTC)).astimezone(UTC),
        events=tuple(lines),
        outcomes=outcomes,
        keys=tuple(sorted(keys.values())),
    )


def case_layout(report: CaseReport) -> list[Block]:
    """The case report as the blocks every renderer (Markdown, CSV, HTML, docx) writes."""
    status = "đã có kết quả xử lý" if report.closed else "đang xử lý, chưa có kết quả"
    blocks: list[Block] = [
        Heading(1, report.title),
        ListBlock(
            (
                f"Mã vụ việc: {report.case_ref}",
                f"Thời điểm lập báo cáo: {format_datetime(report.generated_at)}",
                f"Tình trạng: {status}",
                f"Số sự kiện: {len(report.events)}",
                "Cơ quan tham gia: " + ", ".join(agency_name(a) for a in report.agencies),
            )
        ),
        Heading(2, "1. Diễn biến vụ việc"),
        Table(
            (
                "Thời gian",
                "Cơ quan",
                "Loại sự kiện",
                "Nội dung",
                "Trả lời sự kiện",
                "Chuyển đến",
                "Mã sự kiện",
            ),
            tuple(
                (
                    format_datetime(e.occurred_at),
                    agency_name(e.agency),
                    EVENT_TYPE_LABELS.get(e.event_type, e.event_type),
                    e.summary or "—",
                    e.in_reply_to or "—",
                    ", ".join(agency_name(a) for a in e.recipients)
                    or (f"không chuyển ({e.not_routed})" if e.not_routed else "—"),
                    e.event_id,
                )
                for e in report.events
            ),
        ),
        Heading(2, "2. Kết quả xử lý"),
    ]
    if report.outcomes:
        blocks.append(
            Table(
                (
                    "Cơ quan",
                    "Ngày quyết định",
                    "Kết quả xử lý",
                    "Số quyết định",
                    "Tiền phạt",
                    "Giá trị hàng hóa",
                ),
                tuple(
                    (
                        agency_name(o.agency),
                        o.decided_on,
                        CASE_OUTCOME_LABELS.get(o.outcome, o.outcome),
                        o.decision_ref or "—",
                        Money(o.fine_vnd),
                        Money(o.goods_seized_value_vnd),
                    )
                    for o in report.outcomes
                ),
            )
        )
    else:
        blocks.append(Para("Chưa có kết quả xử lý."))
    blocks.append(Heading(2, "3. Người bán, mã số thuế, tên miền, số điện thoại liên quan"))
    if report.keys:
        blocks.append(
            Table(
                ("Loại", "Ghi nhận"),
                tuple((KEY_KIND_LABELS.get(k.kind, k.kind), k.label) for k in report.keys),
            )
        )
    else:
        blocks.append(Para("Không có."))
    return blocks
