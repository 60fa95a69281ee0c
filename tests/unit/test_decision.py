"""The routing decision with the default policy: every DOMAIN.md route, need-to-know, redaction, replies."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from bus389.agencies import Agency
from bus389.consumers.router.replies import ReplyIndex
from bus389.routing.decision import (
    ID_TAKEN,
    NO_ROUTE,
    NOT_ASKED,
    NOT_PERMITTED,
    SPOOFED_SOURCE,
    UNKNOWN_ORIGINAL,
    Decision,
    Original,
    decide,
)
from bus389.routing.policy import Policy, load_policy
from bus389.routing.redaction import redact
from bus389.settings import RouterSettings

A = Agency
MS = Agency.MARKET_SURVEILLANCE


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(RouterSettings().policy_path)


def _meta(event_type: str, source: Agency, **overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "source": source.value,
        "case_ref": None,
        "in_reply_to": None,
        "sensitivity": "AMBER",
        "urgency": "ROUTINE",
    }
    meta.update(overrides)
    return meta


def _seller(**overrides: Any) -> dict[str, Any]:
    seller = {
        "name": "Shop Hàng Xách Tay Quảng Ngãi",
        "tax_code": "4300123456",
        "national_id": "051090001234",
        "phone": "0905123456",
        "address": "12 Lê Lợi, TP Quảng Ngãi",
        "province": "Quảng Ngãi",
    }
    seller.update(overrides)
    return seller


def suspect_seller(
    source: Agency = A.POLICE, *, meta: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    record = {
        "meta": _meta("suspect_seller", source, **(meta or {})),
        "seller": _seller(),
        "accounts": [{"platform": "SHOPEE", "account": "hangxachtay.qn", "url": None}],
        "goods": "mỹ phẩm",
        "violation_kinds": ["COUNTERFEIT"],
        "evidence_urls": [],
        "domains": [],
        "goods_imported": False,
        "border_area": False,
        "estimated_value_vnd": None,
        "summary": "Bán mỹ phẩm giả",
    }
    record.update(fields)
    return record


def event(
    event_type: str, source: Agency, *, meta: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    record = {"meta": _meta(event_type, source, **(meta or {}))}
    record.update(fields)
    return record


def tax_discrepancy(owed: int, **meta: Any) -> dict[str, Any]:
    return event(
        "tax_discrepancy",
        A.TAX,
        meta=meta,
        seller=_seller(),
        accounts=[],
        period="2021-H1",
        estimated_revenue_vnd=5_000_000_000,
        declared_revenue_vnd=100_000_000,
        undeclared_revenue_vnd=4_900_000_000,
        estimated_tax_owed_vnd=owed,
        notes=None,
    )


def complaint(signs_of_crime: bool, **meta: Any) -> dict[str, Any]:
    return event(
        "complaint",
        A.INDUSTRY_TRADE,
        meta=meta,
        kind="DENUNCIATION",
        channel="HOTLINE",
        complainant={
            "full_name": "Nguyễn Thị Hoa",
            "national_id": "051190004321",
            "phone": "0914000111",
            "address": "Tư Nghĩa",
        },
        seller=_seller(),
        accounts=[],
        summary="Mua phải hàng giả",
        signs_of_crime=signs_of_crime,
    )


def no_replies(_event_id: str) -> Original | None:
    return None


def route(
    policy: Policy, record: dict[str, Any], sender: Agency | None = None, replies: Any = no_replies
) -> Decision:
    return decide(sender or Agency(record["meta"]["source"]), record, policy, replies)


def recipients(decision: Decision) -> set[Agency]:
    assert decision.routed, decision.dlq_detail
    return set(decision.recipients)


# -- the three named flows, and every route of DOMAIN.md ---------------------------------------------


def test_suspect_seller_on_a_marketplace_reaches_police_ms_tax_only(policy: Policy) -> None:
    decision = route(policy, suspect_seller(A.POLICE))
    assert recipients(decision) == {MS, A.TAX}  # police sent it
    decision = route(policy, suspect_seller(A.TAX))
    assert recipients(decision) == {A.POLICE, MS}
    by = {
        d.recipient: (d.rule_id, d.plan_section) for d in route(policy, suspect_seller(A.CUSTOMS)).deliveries
    }
    assert by == {
        A.POLICE: ("suspect_seller.police", "II.1"),
        MS: ("suspect_seller.market_surveillance", "II.9"),
        A.TAX: ("suspect_seller.tax", "II.4"),
    }


@pytest.mark.parametrize(
    ("fields", "reaches_ict"),
    [
        ({"domains": ["hangxachtay.vn"]}, True),
        ({"accounts": [{"platform": "WEBSITE", "account": "hangxachtay.vn", "url": None}]}, True),
        ({"accounts": [{"platform": "FACEBOOK", "account": "hxt.qn", "url": None}]}, True),
        (
            {
                "accounts": [
                    {"platform": "SHOPEE", "account": "a", "url": None},
                    {"platform": "ZALO", "account": "b", "url": None},
                ]
            },
            True,
        ),
        ({"accounts": [{"platform": "SHOPEE", "account": "a", "url": None}]}, False),
        ({"accounts": [], "domains": []}, False),
    ],
)
def test_suspect_seller_reaches_ict_with_a_domain_site_or_social_account(
    policy: Policy, fields: dict[str, Any], reaches_ict: bool
) -> None:
    decision = route(policy, suspect_seller(A.POLICE, **fields))
    assert (A.ICT in recipients(decision)) is reaches_ict
    if reaches_ict:
        delivery = decision.delivery_to(A.ICT)
        assert delivery is not None and (delivery.rule_id, delivery.plan_section) == (
            "suspect_seller.ict",
            "II.6",
        )


@pytest.mark.parametrize(("imported", "expected"), [(True, True), (False, False)])
def test_suspect_seller_reaches_customs_when_goods_are_imported(
    policy: Policy, imported: bool, expected: bool
) -> None:
    decision = route(policy, suspect_seller(A.POLICE, goods_imported=imported))
    assert (A.CUSTOMS in recipients(decision)) is expected
    if expected:
        assert decision.delivery_to(A.CUSTOMS).plan_section == "II.3"  # type: ignore[union-attr]


@pytest.mark.parametrize(("border", "expected"), [(True, True), (False, False)])
def test_suspect_seller_reaches_border_guard_in_the_border_area(
    policy: Policy, border: bool, expected: bool
) -> None:
    decision = route(policy, suspect_seller(A.POLICE, border_area=border))
    assert (A.BORDER_GUARD in recipients(decision)) is expected
    if expected:
        assert decision.delivery_to(A.BORDER_GUARD).plan_section == "II.2"  # type: ignore[union-attr]


def test_suspect_seller_with_every_flag(policy: Policy) -> None:
    record = suspect_seller(A.MARKET_SURVEILLANCE, domains=["x.vn"], goods_imported=True, border_area=True)
    assert recipients(route(policy, record)) == {A.POLICE, A.TAX, A.ICT, A.CUSTOMS, A.BORDER_GUARD, MS}


def test_domain_block_request_reaches_ict_and_ms_only(policy: Policy) -> None:
    record = event(
        "domain_block_request",
        A.POLICE,
        domains=["hangxachtay.vn"],
        urls=[],
        ip_addresses=[],
        action="BLOCK",
        reason="bán hàng giả",
        legal_basis="123/QĐ-CAT",
        violation_kinds=["COUNTERFEIT"],
        expires_at=None,
    )
    decision = route(policy, record)
    assert recipients(decision) == {A.ICT, MS}
    assert decision.delivery_to(A.ICT).plan_section == "II.6"  # type: ignore[union-attr]
    assert decision.delivery_to(MS).rule_id == "domain_block_request.market_surveillance"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("owed", "reaches_police"),
    [(100_000_000, True), (250_000_000, True), (99_999_999, False), (0, False)],
)
def test_tax_discrepancy_reaches_police_from_the_tax_evasion_threshold(
    policy: Policy, owed: int, reaches_police: bool
) -> None:
    # II.5 gives Industry and Trade no duty on tax alerts: the standing office and, above it, the police.
    expected = {MS} | ({A.POLICE} if reaches_police else set())
    assert recipients(route(policy, tax_discrepancy(owed))) == expected


def test_domain_block_result_goes_to_the_requester_from_the_audit_trail(policy: Policy) -> None:
    index = ReplyIndex()
    request_id = str(uuid.uuid4())
    index.record(request_id, A.CUSTOMS, [A.ICT, MS])
    index.commit()
    record = event(
        "domain_block_result",
        A.ICT,
        meta={"in_reply_to": request_id},
        requester="police",  # the trail wins over the field
        outcome="BLOCKED",
        blocked=["hangxachtay.vn"],
        not_blocked=[],
        providers_notified=["VNPT"],
        note=None,
    )
    decision = route(policy, record, replies=index)
    assert recipients(decision) == {A.CUSTOMS, MS}
    delivery = decision.delivery_to(A.CUSTOMS)
    assert delivery is not None and (delivery.rule_id, delivery.plan_section) == (
        "domain_block_result.requester",
        "II.6",
    )


def test_a_typed_requester_never_addresses_an_answer(policy: Policy) -> None:
    record = event(
        "domain_block_result",
        A.ICT,
        meta={"in_reply_to": str(uuid.uuid4())},
        requester="police",
        outcome="REJECTED",
        blocked=[],
        not_blocked=["x.vn"],
        providers_notified=[],
        note=None,
    )
    decision = route(policy, record)
    assert decision.dlq_reason == UNKNOWN_ORIGINAL
    assert not decision.deliveries


def test_a_reply_to_an_unknown_original_without_fallback_is_a_dead_letter(policy: Policy) -> None:
    record = event(
        "case_outcome",
        A.POLICE,
        meta={"in_reply_to": str(uuid.uuid4())},
        seller=None,
        outcome="WARNING",
        violation_kinds=[],
        public=False,
        summary="",
    )
    decision = route(policy, record)
    assert decision.dlq_reason == UNKNOWN_ORIGINAL
    assert record["meta"]["in_reply_to"] in decision.dlq_detail


def test_any_reply_goes_back_to_the_original_sender(policy: Policy) -> None:
    index = ReplyIndex()
    referral = str(uuid.uuid4())
    index.record(referral, A.CUSTOMS, [A.POLICE, MS])
    index.commit()
    record = event(
        "case_outcome",
        A.POLICE,
        meta={"in_reply_to": referral},
        seller=None,
        outcome="CRIMINAL_PROSECUTION",
        violation_kinds=["SMUGGLING"],
        public=False,
        summary="Khởi tố",
    )
    decision = route(policy, record, replies=index)
    assert recipients(decision) == {A.CUSTOMS, MS, A.TAX}
    assert decision.delivery_to(A.CUSTOMS).rule_id == "reply.original_sender"  # type: ignore[union-attr]


def test_a_reply_to_ones_own_event_is_not_echoed(policy: Policy) -> None:
    index = ReplyIndex()
    original = str(uuid.uuid4())
    index.record(original, A.POLICE, [MS])
    index.commit()
    record = event(
        "case_outcome",
        A.POLICE,
        meta={"in_reply_to": original},
        seller=None,
        outcome="WARNING",
        violation_kinds=[],
        public=False,
        summary="",
    )
    decision = route(policy, record, replies=index)
    assert recipients(decision) == {MS, A.TAX}  # II.4: the tax office collects back-taxes on outcomes
    assert [(w.agency, w.reason.split(":")[0]) for w in decision.withheld] == [(A.POLICE, "sender")]


@pytest.mark.parametrize(("signs", "reaches_police"), [(True, True), (False, False)])
def test_complaint_reaches_police_with_signs_of_crime(
    policy: Policy, signs: bool, reaches_police: bool
) -> None:
    expected = {MS} | ({A.POLICE} if reaches_police else set())
    assert recipients(route(policy, complaint(signs))) == expected


def test_case_referral_reaches_police_and_ms(policy: Policy) -> None:
    record = event(
        "case_referral",
        A.MARKET_SURVEILLANCE,
        seller=_seller(),
        accounts=[],
        violation_kinds=["SMUGGLING"],
        suspected_offences=["Điều 188 BLHS 2015"],
        evidence_urls=[],
        estimated_value_vnd=None,
        summary="",
    )
    decision = route(policy, record)
    assert recipients(decision) == {A.POLICE, MS}
    # the standing office sent it: its copy comes from the catch-all, which includes the sender
    assert decision.delivery_to(MS).rule_id == "standing_office.all"  # type: ignore[union-attr]
    record["meta"]["source"] = "customs"
    assert recipients(route(policy, record)) == {A.POLICE, MS}


def _outcome(public: bool, sensitivity: str = "CLEAR") -> dict[str, Any]:
    return event(
        "case_outcome",
        A.CUSTOMS,
        meta={"sensitivity": sensitivity},
        seller=_seller(),
        outcome="ADMINISTRATIVE_SANCTION",
        violation_kinds=["SMUGGLING"],
        fine_vnd=50_000_000,
        public=public,
        summary="Xử phạt",
    )


@pytest.mark.parametrize(("public", "reaches_media"), [(True, True), (False, False)])
def test_case_outcome_reaches_media_only_when_public(
    policy: Policy, public: bool, reaches_media: bool
) -> None:
    decision = route(policy, _outcome(public))
    # II.4: tax collects back-taxes; II.5 and II.7: Industry and Trade and the media publicise public cases
    public_copies = {A.MEDIA, A.INDUSTRY_TRADE} if reaches_media else set()
    assert recipients(decision) == {MS, A.TAX} | public_copies
    if reaches_media:
        assert decision.delivery_to(A.MEDIA).plan_section == "II.7"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("event_type", "fields"),
    [
        ("periodic_report", {"report_kind": "SIX_MONTHLY", "period": "2021-H1", "title": "t", "body": "b"}),
        ("law_gap_proposal", {"regulation": "NĐ 52/2013", "article": None, "problem": "p", "proposal": "q"}),
    ],
)
def test_reports_and_proposals_reach_the_standing_office_only(
    policy: Policy, event_type: str, fields: dict[str, Any]
) -> None:
    decision = route(policy, event(event_type, A.CUSTOMS, **fields))
    assert recipients(decision) == {MS}
    assert decision.deliveries[0].rule_id == f"{event_type}.market_surveillance"
    # the standing office's own go on to the committee (II.9: "báo cáo Ban Chỉ đạo 389 tỉnh")
    own = route(policy, event(event_type, MS, **fields))
    assert recipients(own) == {A.COMMITTEE, MS}
    assert own.delivery_to(A.COMMITTEE).rule_id == f"{event_type}.committee"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "event_type",
    [
        "suspect_seller",
        "domain_block_request",
        "tax_discrepancy",
        "domain_block_result",
        "complaint",
        "case_referral",
        "case_outcome",
        "periodic_report",
        "law_gap_proposal",
    ],
)
def test_the_standing_office_receives_every_event(policy: Policy, event_type: str) -> None:
    sender = A.CUSTOMS if event_type not in PUBLISHER else PUBLISHER[event_type]
    original = str(uuid.uuid4())
    index = ReplyIndex()
    index.record(original, A.CUSTOMS, [sender])
    index.commit()
    meta = {"in_reply_to": original} if event_type == "domain_block_result" else {}
    decision = route(policy, event(event_type, sender, meta=meta), replies=index)
    assert MS in recipients(decision)
    assert decision.sealed == ()


PUBLISHER = {"domain_block_result": A.ICT, "tax_discrepancy": A.TAX, "complaint": A.INDUSTRY_TRADE}


def test_the_standing_office_keeps_its_own_events_whatever_their_sensitivity(policy: Policy) -> None:
    for level in ("GREEN", "AMBER_STRICT", "RED"):
        decision = route(policy, suspect_seller(MS, meta={"sensitivity": level}))
        assert MS in recipients(decision), level
        assert decision.delivery_to(MS).rule_id == "standing_office.all"  # type: ignore[union-attr]
        assert decision.sealed == ()


def test_the_sender_never_gets_its_own_event_back(policy: Policy) -> None:
    decision = route(policy, tax_discrepancy(10))
    assert A.TAX not in decision.recipients
    decision = route(policy, suspect_seller(A.TAX))
    assert A.TAX not in decision.recipients
    assert any(w.agency == A.TAX and w.reason.startswith("sender") for w in decision.withheld)


# -- sender verification ---------------------------------------------------------------------------------


def test_a_spoofed_source_is_a_dead_letter(policy: Policy) -> None:
    record = suspect_seller(A.POLICE)
    decision = route(policy, record, sender=A.MEDIA)
    assert decision.dlq_reason == SPOOFED_SOURCE
    assert not decision.deliveries
    assert "'police'" in decision.dlq_detail and "media" in decision.dlq_detail


def test_the_matching_sender_is_not_a_spoof(policy: Policy) -> None:
    assert route(policy, suspect_seller(A.CUSTOMS), sender=A.CUSTOMS).routed


# -- who may say what (the policy's rights) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "sender", "fields"),
    [
        ("domain_block_result", A.POLICE, {"requester": "customs"}),  # only ICT answers block requests
        ("tax_discrepancy", A.CUSTOMS, {}),  # only the tax office raises tax alerts
        ("suspect_seller", A.MEDIA, {}),  # the media publish, they do not report sellers
        ("complaint", A.POLICE, {}),  # complaints are received by II.5 and II.9
        ("routing_notice", A.POLICE, {}),  # the router's own
        ("some_future_type", A.POLICE, {}),  # a type the policy gives no one
    ],
)
def test_an_event_outside_the_senders_rights_is_a_dead_letter(
    policy: Policy, event_type: str, sender: Agency, fields: dict[str, Any]
) -> None:
    decision = route(policy, event(event_type, sender, **fields))
    assert decision.dlq_reason == NOT_PERMITTED
    assert not decision.deliveries and decision.sealed == ()
    assert f"{sender.value} may not publish" in decision.dlq_detail


def test_an_answer_from_an_agency_that_was_not_asked_is_a_dead_letter(policy: Policy) -> None:
    index = ReplyIndex()
    request = str(uuid.uuid4())
    index.record(request, A.CUSTOMS, [A.ICT, MS])
    index.commit()
    answer = _outcome(False) | {
        "meta": {**_outcome(False)["meta"], "source": "police", "in_reply_to": request}
    }
    decision = route(policy, answer, replies=index)
    assert decision.dlq_reason == NOT_ASKED
    assert "police answers" in decision.dlq_detail and "never received" in decision.dlq_detail
    # the agency that received it may answer
    answer["meta"]["source"] = "ict"
    assert route(policy, answer, replies=index).routed


def test_an_event_id_belongs_to_its_first_sender(policy: Policy) -> None:
    index = ReplyIndex()
    first = suspect_seller(A.POLICE)
    index.record(first["meta"]["event_id"], A.POLICE, [MS, A.TAX])
    index.commit()
    stolen = suspect_seller(A.CUSTOMS)
    stolen["meta"]["event_id"] = first["meta"]["event_id"]
    decision = route(policy, stolen, replies=index)
    assert decision.dlq_reason == ID_TAKEN and decision.dead
    assert "already sent by police" in decision.dlq_detail
    again = route(policy, first, replies=index)
    assert again.duplicate and not again.dead and not again.deliveries


def test_an_aborted_batch_does_not_make_its_events_duplicates() -> None:
    index = ReplyIndex()
    event_id = str(uuid.uuid4())
    index.record(event_id, A.POLICE, [MS])
    assert index(event_id) is not None  # pending: seen inside its own batch
    index.discard()
    assert index(event_id) is None
    index.record(event_id, A.POLICE, [MS])
    index.commit()
    assert index(event_id) == Original(A.POLICE, frozenset({MS}))


# -- named recipients, sealed notices -------------------------------------------------------------------


def test_a_red_seller_reaches_exactly_the_named_recipients_its_duties_cover(policy: Policy) -> None:
    named = ["customs", "border_guard", "ict"]
    record = suspect_seller(A.POLICE, meta={"sensitivity": "RED", "recipients": named}, goods_imported=True)
    decision = route(policy, record)
    # border_guard: not in the border area (II.2); ict: no domain or social account (II.6)
    assert recipients(decision) == {A.CUSTOMS}
    reasons = {w.agency: w.reason for w in decision.withheld}
    assert "no duty of border_guard" in reasons[A.BORDER_GUARD]
    assert "addressed it to" in reasons[MS] and "addressed it to" in reasons[A.TAX]
    assert decision.sealed == (MS,)
    from_customs = suspect_seller(
        A.CUSTOMS, meta={"sensitivity": "RED", "recipients": ["police", "market_surveillance"]}
    )
    decision = route(policy, from_customs)
    assert recipients(decision) == {A.POLICE, MS}
    assert decision.sealed == ()


def test_a_red_event_naming_no_one_it_may_reach_is_dead_and_sealed(policy: Policy) -> None:
    decision = route(policy, suspect_seller(A.POLICE, meta={"sensitivity": "RED"}))
    assert decision.dlq_reason == NO_ROUTE and decision.dead
    assert decision.sealed == (MS,)


def test_amber_strict_named_recipients(policy: Policy) -> None:
    record = suspect_seller(A.CUSTOMS, meta={"sensitivity": "AMBER_STRICT", "recipients": ["tax"]})
    decision = route(policy, record)
    assert recipients(decision) == {A.TAX}
    assert decision.sealed == (MS,)


# -- sensitivity (TLP 2.0) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "media"),
    [("CLEAR", True), ("GREEN", False), ("AMBER", False), ("AMBER_STRICT", False), ("RED", False)],
)
def test_media_receive_clear_events_only(policy: Policy, level: str, media: bool) -> None:
    decision = route(policy, _outcome(True, level))
    assert (A.MEDIA in decision.recipients) is media
    if not media:
        (withheld,) = [w for w in decision.withheld if w.agency == A.MEDIA]
        assert withheld.reason.startswith(f"sensitivity {level}")


def test_red_reaches_only_recipients_of_rules_allowing_red(policy: Policy) -> None:
    record = suspect_seller(A.CUSTOMS, meta={"sensitivity": "RED"}, domains=["x.vn"], border_area=True)
    decision = route(policy, record)
    assert recipients(decision) == {A.POLICE}
    assert {w.agency for w in decision.withheld} == {MS, A.TAX, A.ICT, A.BORDER_GUARD}
    assert all("RED" in w.reason for w in decision.withheld)
    assert decision.sealed == (MS,)  # the standing office knows the case exists


def test_red_tax_discrepancy_reaches_its_addressees(policy: Policy) -> None:
    assert recipients(route(policy, tax_discrepancy(500_000_000, sensitivity="RED"))) == {A.POLICE, MS}
    assert recipients(route(policy, tax_discrepancy(1_000, sensitivity="RED"))) == {MS}


def test_red_with_no_rule_allowing_it_is_a_dead_letter(policy: Policy) -> None:
    record = _outcome(False, "RED")
    decision = route(policy, record)
    assert decision.dlq_reason == NO_ROUTE
    assert "RED" in decision.dlq_detail
    assert decision.sealed == (MS,)


def test_an_unknown_sensitivity_counts_as_red(policy: Policy) -> None:
    decision = route(policy, suspect_seller(A.CUSTOMS, meta={"sensitivity": "PURPLE"}))
    assert decision.sensitivity == "RED"
    assert recipients(decision) == {A.POLICE}


def test_amber_strict_stays_with_the_named_recipients(policy: Policy) -> None:
    request = event(
        "domain_block_request",
        A.POLICE,
        meta={"sensitivity": "AMBER_STRICT"},
        domains=["x.vn"],
        urls=[],
        ip_addresses=[],
        action="BLOCK",
        reason="r",
        legal_basis="1/QĐ",
        violation_kinds=[],
    )
    decision = route(policy, request)
    assert recipients(decision) == {A.ICT}  # the standing office's copy is a cc
    assert [w.agency for w in decision.withheld] == [MS]
    assert "AMBER_STRICT" in decision.withheld[0].reason
    # where the standing office is a named recipient, it receives AMBER_STRICT
    assert recipients(route(policy, suspect_seller(A.CUSTOMS, meta={"sensitivity": "AMBER_STRICT"}))) == {
        A.POLICE,
        MS,
        A.TAX,
    }


@pytest.mark.parametrize("level", ["CLEAR", "GREEN", "AMBER"])
def test_clear_green_amber_follow_the_routes(policy: Policy, level: str) -> None:
    decision = route(policy, suspect_seller(A.CUSTOMS, meta={"sensitivity": level}, domains=["x.vn"]))
    assert recipients(decision) == {A.POLICE, MS, A.TAX, A.ICT}
    assert decision.withheld == () or all(w.agency == A.CUSTOMS for w in decision.withheld)


# -- redaction of personal data ---------------------------------------------------------------------------


def test_redaction_per_recipient(policy: Policy) -> None:
    record = suspect_seller(A.CUSTOMS, domains=["x.vn"], border_area=True)
    decision = route(policy, record)
    redacted = {d.recipient: d.redacted for d in decision.deliveries}
    assert redacted[A.POLICE] == ()
    assert redacted[MS] == ()
    assert redacted[A.BORDER_GUARD] == ()
    assert redacted[A.TAX] == ()  # II.4: the sellers' records, the phone included
    assert redacted[A.ICT] == ("seller.national_id", "seller.phone", "seller.address")


def test_only_fields_holding_a_value_are_listed(policy: Policy) -> None:
    record = suspect_seller(A.CUSTOMS, domains=["x.vn"], seller=_seller(national_id=None, phone=None))
    assert route(policy, record).delivery_to(A.ICT).redacted == ("seller.address",)  # type: ignore[union-attr]


def test_media_never_see_personal_data(policy: Policy) -> None:
    delivery = route(policy, _outcome(True)).delivery_to(A.MEDIA)
    assert delivery is not None
    assert delivery.redacted == ("seller.national_id", "seller.phone", "seller.address")


def test_complainant_data_reaches_police_and_ms_only(policy: Policy) -> None:
    decision = route(policy, complaint(True))
    assert decision.delivery_to(A.POLICE).redacted == ()  # type: ignore[union-attr]
    assert decision.delivery_to(MS).redacted == ()  # type: ignore[union-attr]
    assert decision.delivery_to(A.INDUSTRY_TRADE) is None  # it sent it
    decision = route(policy, event("complaint", MS, complainant=complaint(False)["complainant"]))
    assert decision.delivery_to(MS).redacted == ()  # type: ignore[union-attr]
    # II.5: Industry and Trade settles complaints and answers the complainant: it sees who complained
    assert decision.delivery_to(A.INDUSTRY_TRADE).redacted == ()  # type: ignore[union-attr]


def test_redact_nulls_the_fields_and_keeps_the_original() -> None:
    record = suspect_seller(A.POLICE)
    copy = redact(record, ["seller.national_id", "seller.phone", "complainant.phone"])
    assert copy["seller"]["national_id"] is None and copy["seller"]["phone"] is None
    assert copy["seller"]["address"] == record["seller"]["address"]
    assert record["seller"]["national_id"] == "051090001234"  # the input is untouched
    assert "complainant" not in copy
    assert redact({"seller": None}, ["seller.phone"]) == {"seller": None}


def test_red_reaches_the_addressee_of_reports_and_complaints(policy: Policy) -> None:
    report = event("periodic_report", A.CUSTOMS, meta={"sensitivity": "RED"}, title="Báo cáo nhanh")
    assert recipients(route(policy, report)) == {MS}
    decision = route(policy, complaint(False, sensitivity="RED"))
    assert recipients(decision) == {MS}
    assert decision.delivery_to(MS).rule_id == "complaint.market_surveillance"  # type: ignore[union-attr]
    assert recipients(route(policy, complaint(True, sensitivity="RED"))) == {MS, A.POLICE}


def test_redact_steps_into_arrays_and_shares_nothing_it_changes() -> None:
    record = suspect_seller(
        A.POLICE,
        accounts=[
            {"platform": "WEBSITE", "account": "a", "url": "https://a.vn"},
            {"platform": "ZALO", "account": "b", "url": None},
        ],
    )
    copy = redact(record, ["accounts[].url", "seller.phone"])
    assert [a["url"] for a in copy["accounts"]] == [None, None]
    assert record["accounts"][0]["url"] == "https://a.vn"
    assert copy["accounts"][0]["account"] == "a"
    assert copy["seller"]["phone"] is None and record["seller"]["phone"] == "0905123456"
    assert copy["goods"] is record["goods"]


def test_the_reply_index_keeps_the_newest_entries_within_its_bound() -> None:
    index = ReplyIndex(max_entries=4)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for number, event_id in enumerate(ids[:3]):
        index.record(event_id, list(Agency)[number], [Agency.COMMITTEE])
        index.commit()
    senders = [o.sender if o else None for o in map(index, ids[:3])]
    assert senders == list(Agency)[:3], "a turned-over generation is still read"
    index.record(ids[3], Agency.TAX)
    index.commit()
    index.record(ids[4], Agency.ICT)  # the second turnover drops the first two
    index.commit()
    assert [o.sender if o else None for o in map(index, ids)] == [
        None,
        None,
        list(Agency)[2],
        Agency.TAX,
        Agency.ICT,
    ]
    assert index(ids[2]) == Original(list(Agency)[2], frozenset({Agency.COMMITTEE}))
    assert len(index) <= 4


def test_the_reply_index_takes_any_id_and_tells_uuid_spellings_apart() -> None:
    index = ReplyIndex()
    canonical = str(uuid.uuid4())
    index.record(canonical, Agency.POLICE, list(Agency))
    index.record("not-a-uuid", Agency.TAX)
    index.record("", Agency.ICT)  # ignored
    index.commit()
    assert index(canonical) == Original(Agency.POLICE, frozenset(Agency))
    assert index(canonical.upper()) is None, "only the exact id the router saw"
    assert index("not-a-uuid") == Original(Agency.TAX)
    assert index("") is None


def test_the_decision_as_json_carries_the_audit_record_s_names(policy: Policy) -> None:
    """One decision-to-JSON: ``routes explain --json`` and the audit record say the same thing."""
    from datetime import UTC, datetime

    from bus389.consumers.router.audit import Origin, build_audit_record

    decision = decide(A.POLICE, suspect_seller(domains=["x.vn"]), policy, no_replies)
    assert decision.routed and any(d.redacted for d in decision.deliveries)
    now = datetime.now(UTC)
    audit = build_audit_record(
        decision, schema_id=1, origin=Origin("o", 0, 0), received_at=now, routed_at=now
    )
    as_json = decision.to_json()
    assert as_json["deliveries"] == audit["deliveries"]
    assert as_json["withheld"] == audit["withheld"]
    assert {"recipient", "rule_id", "plan_section", "redacted_fields"} == set(as_json["deliveries"][0])
