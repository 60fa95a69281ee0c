"""Every duty of the plan that moves information (docs/duties.md), one test per row, through the REAL router.

The expected recipients are written out here from docs/duties.md, that is from the plan (Kế hoạch
141/KH-UBND), never computed with the policy or ``decide()``: the plan is the oracle. One router and one
topic prefix serve every row (module fixture); each row's test checks exactly which inboxes hold a copy
of its event, whether the standing office holds a sealed notice of it instead, and whether the event
went to the DLQ with an UNDELIVERABLE notice in its sender's inbox.

Answers (``meta.in_reply_to``) are published in a second phase, once their originals were routed.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _router_support import RouterThread, headers, publish, read_topic, wait_until

from bus389.agencies import Agency
from bus389.codec import decode_value
from bus389.events import Event, build_event
from bus389.kafka import kafka_errors, make_admin
from bus389.settings import RouterSettings, Settings
from bus389.topics import apply_topics

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
A = Agency
MS = Agency.MARKET_SURVEILLANCE
SELLER = {"name": "Cửa hàng Mỹ phẩm Thu Trang", "tax_code": "4300123456", "phone": "0905123456"}
SHOPEE = [{"platform": "SHOPEE", "account": "thutrang.cosmetics"}]


def example(event_type: str, line: int = 0, **changes: Any) -> dict[str, Any]:
    """Line ``line`` of examples/<event_type>.jsonl with ``changes`` (``meta`` merged), no reply link."""
    text = (REPO_ROOT / "examples" / f"{event_type}.jsonl").read_text(encoding="utf-8").splitlines()[line]
    data: dict[str, Any] = json.loads(text)
    data["meta"] = {k: v for k, v in data.get("meta", {}).items() if k != "in_reply_to"}
    data["meta"].update(changes.pop("meta", {}))
    data.update(copy.deepcopy(changes))
    return data


def seller_report(
    sensitivity: str = "AMBER", recipients: list[str] | None = None, **fields: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"sensitivity": sensitivity}
    if recipients is not None:
        meta["recipients"] = recipients
    changes: dict[str, Any] = {"seller": dict(SELLER), "accounts": SHOPEE, "domains": [], **fields}
    changes.setdefault("goods_imported", False)
    changes.setdefault("border_area", False)
    return example("suspect_seller", meta=meta, **changes)


@dataclass
class Row:
    """One row of docs/duties.md: the event a member publishes and who must receive it."""

    id: str
    section: str
    sender: Agency
    event_type: str
    data: dict[str, Any]
    receives: set[Agency]
    """Exactly the inboxes that hold a copy (the sender's own only where the plan keeps it: the
    standing office stores its own events)."""
    sealed: bool = False
    """The standing office holds a sealed notice (no content) instead of a copy."""
    dead: str | None = None
    """The DLQ reason; the sender is told in its own inbox (UNDELIVERABLE)."""
    answers: str | None = None
    """The row whose event this one answers (meta.in_reply_to), published after it was routed."""
    event: Event | None = field(default=None, repr=False)


ROWS = [
    # --- suspect_seller: every member that detects a violation shares it (I.2, II.1-II.9) ------------
    Row(
        "seller.police-tax-so",
        "II.1 II.4 II.9",
        A.CUSTOMS,
        "suspect_seller",
        seller_report(),
        {A.POLICE, A.TAX, MS},
    ),
    Row(
        "seller.ict-web",
        "II.6",
        A.POLICE,
        "suspect_seller",
        seller_report(
            domains=["myphamxachtay-qn.vn"], accounts=[{"platform": "FACEBOOK", "account": "thutrang.fb"}]
        ),
        {A.TAX, A.ICT, MS},
    ),
    Row(
        "seller.customs-imported",
        "II.3",
        A.TAX,
        "suspect_seller",
        seller_report(goods_imported=True),
        {A.POLICE, A.CUSTOMS, MS},
    ),
    Row(
        "seller.border",
        "II.2",
        MS,
        "suspect_seller",
        seller_report(border_area=True),
        {A.POLICE, A.TAX, A.BORDER_GUARD, MS},
    ),
    Row(
        "seller.red-police-named",
        "I.2 II.3 II.4",
        A.POLICE,
        "suspect_seller",
        seller_report("RED", ["customs", "tax"], goods_imported=True),
        {A.CUSTOMS, A.TAX},
        sealed=True,
    ),
    Row(
        "seller.red-customs-named",
        "I.2 II.1 II.2",
        A.CUSTOMS,
        "suspect_seller",
        seller_report("RED", ["police", "border_guard"], border_area=True),
        {A.POLICE, A.BORDER_GUARD},
        sealed=True,
    ),
    Row(
        "seller.red-nobody",
        "I.2",
        A.POLICE,
        "suspect_seller",
        seller_report("RED"),
        set(),
        sealed=True,
        dead="no_route",
    ),
    # --- domain_block_request / result (II.6) ---------------------------------------------------------
    Row(
        "block.request",
        "II.6 II.9",
        A.POLICE,
        "domain_block_request",
        example("domain_block_request", meta={"sensitivity": "AMBER"}),
        {A.ICT, MS},
    ),
    Row(
        "block.request-red",
        "II.6",
        A.CUSTOMS,
        "domain_block_request",
        example("domain_block_request", meta={"sensitivity": "RED"}),
        {A.ICT},
        sealed=True,
    ),
    Row(
        "block.result",
        "II.6 II.9",
        A.ICT,
        "domain_block_result",
        example("domain_block_result", requester="police", meta={"sensitivity": "AMBER"}),
        {A.POLICE, MS},
        answers="block.request",
    ),
    # --- tax_discrepancy (II.4, II.9, II.1) ----------------------------------------------------------------
    Row(
        "tax.alert",
        "II.4 II.9",
        A.TAX,
        "tax_discrepancy",
        example("tax_discrepancy", meta={"sensitivity": "AMBER"}, estimated_tax_owed_vnd=50_000_000),
        {MS},
    ),
    Row(
        "tax.alert-crime",
        "II.1",
        A.TAX,
        "tax_discrepancy",
        example("tax_discrepancy", meta={"sensitivity": "AMBER"}, estimated_tax_owed_vnd=150_000_000),
        {MS, A.POLICE},
    ),
    Row(
        "tax.alert-red",
        "II.9",
        A.TAX,
        "tax_discrepancy",
        example("tax_discrepancy", meta={"sensitivity": "RED"}, estimated_tax_owed_vnd=50_000_000),
        {MS},
    ),
    # --- complaint (II.5, II.9, II.1) ---
    Row(
        "complaint.to-so",
        "II.5 II.9",
        A.INDUSTRY_TRADE,
        "complaint",
        example("complaint", meta={"sensitivity": "AMBER"}, signs_of_crime=False),
        {MS},
    ),
    Row(
        "complaint.to-it",
        "II.5",
        MS,
        "complaint",
        example("complaint", meta={"sensitivity": "AMBER"}, signs_of_crime=False),
        {A.INDUSTRY_TRADE, MS},
    ),
    Row(
        "complaint.crime",
        "II.1",
        A.INDUSTRY_TRADE,
        "complaint",
        example("complaint", meta={"sensitivity": "RED"}, signs_of_crime=True),
        {MS, A.POLICE},
    ),
    # --- case_referral (II.1) ---
    Row(
        "referral",
        "II.1 II.9",
        A.TAX,
        "case_referral",
        example("case_referral", meta={"sensitivity": "AMBER"}),
        {A.POLICE, MS},
    ),
    Row(
        "referral.red",
        "II.1",
        A.CUSTOMS,
        "case_referral",
        example("case_referral", meta={"sensitivity": "RED"}),
        {A.POLICE},
        sealed=True,
    ),
    # --- case_outcome (III.3, II.4, II.5, II.7) ---
    Row(
        "outcome",
        "III.3 II.4",
        A.POLICE,
        "case_outcome",
        example("case_outcome", meta={"sensitivity": "AMBER"}, public=False),
        {MS, A.TAX},
    ),
    Row(
        "outcome.public",
        "II.5 II.7",
        A.POLICE,
        "case_outcome",
        example("case_outcome", meta={"sensitivity": "CLEAR"}, public=True),
        {MS, A.TAX, A.INDUSTRY_TRADE, A.MEDIA},
    ),
    # --- reports and proposals (III.3, II.9) ---
    Row("report.member", "III.3", A.CUSTOMS, "periodic_report", example("periodic_report"), {MS}),
    Row("report.so", "II.9", MS, "periodic_report", example("periodic_report"), {MS, A.COMMITTEE}),
    Row("proposal.member", "II.1", A.POLICE, "law_gap_proposal", example("law_gap_proposal"), {MS}),
    Row("proposal.so", "II.9", MS, "law_gap_proposal", example("law_gap_proposal"), {MS, A.COMMITTEE}),
    # --- directives (II.8, II.9) and their answers ---
    Row(
        "directive.so",
        "II.9",
        MS,
        "directive",
        example("directive", 1, meta={"recipients": ["police", "tax"]}),
        {A.POLICE, A.TAX, MS},
    ),
    Row(
        "directive.committee",
        "II.8",
        A.COMMITTEE,
        "directive",
        example("directive", 2),
        {A.OTHER_MEMBERS, MS},
    ),
    Row(
        "directive.answer",
        "II.9",
        A.POLICE,
        "periodic_report",
        example("periodic_report", report_kind="AD_HOC", title="Trả lời đôn đốc"),
        {MS},
        answers="directive.so",
    ),
    Row(
        "directive.not-permitted",
        "II.9",
        A.POLICE,
        "directive",
        example("directive", 1),
        set(),
        dead="not_permitted",
    ),
    # --- case_claim (I.2) ---
    Row("claim", "I.2", A.POLICE, "case_claim", example("case_claim", 0), {MS, A.TAX, A.CUSTOMS}),
    Row("claim.web", "I.2", A.CUSTOMS, "case_claim", example("case_claim", 1), {MS, A.POLICE, A.TAX, A.ICT}),
    # --- inspection_result (II.6, II.1) ---
    Row(
        "inspection.answer",
        "II.6 II.9",
        A.ICT,
        "inspection_result",
        example("inspection_result", 0),
        {A.POLICE, MS},
        answers="seller.ict-web",
    ),
    Row(
        "inspection.crime",
        "II.1",
        A.ICT,
        "inspection_result",
        example("inspection_result", 1),
        {MS, A.POLICE},
    ),
    # --- compiled_report (II.9) ---
    Row("compiled", "II.9", MS, "compiled_report", example("compiled_report"), {A.COMMITTEE, MS}),
    Row(
        "compiled.not-permitted",
        "II.9",
        A.POLICE,
        "compiled_report",
        example("compiled_report"),
        set(),
        dead="not_permitted",
    ),
]
BY_ID = {row.id: row for row in ROWS}


@dataclass
class Outcome:
    copies: dict[str, set[Agency]]
    sealed: set[str]
    undeliverable: dict[str, set[Agency]]
    dlq: dict[str, str]


def _decoded(record: Any) -> dict[str, Any]:
    return dict(decode_value(record.value).record)


def _collect(settings: Settings) -> Outcome:
    copies: dict[str, set[Agency]] = {}
    sealed: set[str] = set()
    undeliverable: dict[str, set[Agency]] = {}
    for agency in Agency:
        for record in read_topic(settings, settings.topics.inbox(agency)):
            data = _decoded(record)
            if data["meta"]["event_type"] == "routing_notice":
                about = str(data["about_event_id"])
                if data["notice"] == "SEALED":
                    assert agency == MS, f"a sealed notice reached {agency.value}"
                    sealed.add(about)
                else:
                    undeliverable.setdefault(about, set()).add(agency)
                continue
            copies.setdefault(headers(record)["ce_id"], set()).add(agency)
    dlq = {
        headers(r)["ce_id"]: headers(r)["bus389_dlq_reason"]
        for r in read_topic(settings, settings.topics.dlq)
    }
    return Outcome(copies, sealed, undeliverable, dlq)


def _arrived(settings: Settings, rows: list[Row]) -> bool:
    outcome = _collect(settings)
    for row in rows:
        assert row.event is not None
        event_id = row.event.event_id
        if row.dead and event_id not in outcome.undeliverable:
            return False
        if row.receives and not outcome.copies.get(event_id):
            return False
        if row.sealed and event_id not in outcome.sealed:
            return False
    return True


@pytest.fixture(scope="module")
def outcome(kafka_bootstrap: str) -> Iterator[Outcome]:
    prefix = f"t_{uuid.uuid4().hex[:8]}"
    ident = f"{prefix}.router.{uuid.uuid4().hex[:8]}"
    settings = Settings(
        bootstrap=kafka_bootstrap,
        topic_prefix=prefix,
        router=RouterSettings(group_id=ident, transactional_id=ident, session_timeout_ms=6000),
    )
    apply_topics(settings)
    try:
        with RouterThread(settings):
            for phase in (False, True):
                rows = [r for r in ROWS if (r.answers is not None) == phase]
                for row in rows:
                    data = copy.deepcopy(row.data)
                    if row.answers is not None:
                        original = BY_ID[row.answers].event
                        assert original is not None
                        data["meta"]["in_reply_to"] = original.event_id
                    row.event = build_event(row.event_type, row.sender, data)
                publish(settings, [r.event for r in rows if r.event is not None])
                wait_until(lambda rows=rows: _arrived(settings, rows), 90, f"phase {int(phase) + 1} routed")
        yield _collect(settings)
    finally:
        try:
            with make_admin(settings) as admin, kafka_errors(bootstrap=settings.bootstrap):
                admin.delete_topics([t for t in admin.list_topics() if t.startswith(prefix + ".")])
        except Exception:  # noqa: S110 - cleanup must never fail a test that passed
            pass


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_duty(row: Row, outcome: Outcome) -> None:
    assert row.event is not None
    event_id = row.event.event_id
    assert outcome.copies.get(event_id, set()) == row.receives, row.section
    assert (event_id in outcome.sealed) == row.sealed, "sealed notice to the standing office"
    if row.dead:
        assert outcome.dlq.get(event_id) == row.dead
        assert outcome.undeliverable.get(event_id) == {row.sender}, "the sender is told, and only it"
    else:
        assert event_id not in outcome.dlq and event_id not in outcome.undeliverable


def test_the_red_sellers_of_police_and_customs_reach_their_named_recipients_and_are_sealed_for_the_so(
    outcome: Outcome,
) -> None:
    police, customs = BY_ID["seller.red-police-named"], BY_ID["seller.red-customs-named"]
    assert police.event is not None and customs.event is not None
    assert outcome.copies[police.event.event_id] == {A.CUSTOMS, A.TAX}
    assert outcome.copies[customs.event.event_id] == {A.POLICE, A.BORDER_GUARD}
    assert {police.event.event_id, customs.event.event_id} <= outcome.sealed


def test_nothing_a_member_publishes_ends_in_the_dlq_without_its_sender_told(outcome: Outcome) -> None:
    assert outcome.dlq, "the table has rows that must end in the DLQ"
    for event_id in outcome.dlq:
        assert outcome.undeliverable.get(event_id), event_id
