"""Who may say what, and who is told: publishing rights, answers, event ids, named recipients and sealed
notices, each tried against the real router on a real broker (attacks of the README's rows 62-68).

Every expectation is written out here from the plan's duties (docs/duties.md and the policy's rights),
not computed with the router's own decision.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _router_support import (
    RouterThread,
    case_outcome,
    domain_block_request,
    domain_block_result,
    headers,
    publish,
    read_inboxes,
    read_topic,
    router_settings,
    suspect_seller,
    wait_routed,
    wait_until,
)

from bus389.agencies import Agency
from bus389.codec import decode_value
from bus389.consumers.router.dlq import read_dead_letters
from bus389.events import build_event
from bus389.settings import Settings

A = Agency
MS = Agency.MARKET_SURVEILLANCE
BUS389 = str(Path(sys.executable).with_name("bus389"))


@pytest.fixture
def rsettings(make_settings: Callable[..., Settings], unique_group: Callable[..., str]) -> Settings:
    return router_settings(make_settings, unique_group)


def _events(inbox: list[Any]) -> list[dict[str, Any]]:
    return [decode_value(r.value).record for r in inbox]


def _copies(inboxes: dict[Agency, list[Any]], event_id: str) -> set[Agency]:
    return {a for a, records in inboxes.items() for r in records if headers(r)["ce_id"] == event_id}


def _notices(inboxes: dict[Agency, list[Any]], agency: Agency, kind: str) -> list[dict[str, Any]]:
    return [
        e
        for e in _events(inboxes[agency])
        if e["meta"]["event_type"] == "routing_notice" and e["notice"] == kind
    ]


def test_forged_answers_and_stolen_ids_reach_no_inbox_and_change_nothing(rsettings: Settings) -> None:
    request = domain_block_request(A.CUSTOMS)
    seller = suspect_seller(A.CUSTOMS)
    publish(rsettings, [request, seller])
    with RouterThread(rsettings) as router:
        wait_routed(rsettings, audit=2)
        request_id, seller_id = str(request.meta.event_id), str(seller.meta.event_id)

        # 1. The police answer a block request as if they were ICT (II.6 gives the answer to ICT alone).
        forged = build_event(
            "domain_block_result",
            A.POLICE,
            {
                "meta": {"in_reply_to": request_id, "sensitivity": "AMBER"},
                "requester": "tax",
                "outcome": "BLOCKED",
                "blocked": ["myphamxachtay-qn.vn"],
                "decided_at": "2021-05-02T09:00:00+07:00",
            },
        )
        # 2. Industry and Trade answers the seller report it never received (police, MS, tax did).
        unasked = case_outcome(A.INDUSTRY_TRADE, public=False, sensitivity="AMBER", in_reply_to=seller_id)
        # 3. The tax office takes the customs report's id for an event of its own.
        stolen = build_event(
            "suspect_seller",
            A.TAX,
            {**suspect_seller(A.TAX).to_json_dict(), "meta": {"sensitivity": "AMBER"}},
            event_id=seller_id,
        )
        # 4. Customs sends its own report again (a retry): a duplicate, delivered once.
        publish(rsettings, [forged, unasked, stolen, seller])
        wait_routed(rsettings, audit=2, dlq=3)
        wait_until(
            lambda: router.service.stats.duplicates == 1, 60, "the retried report, seen as a duplicate"
        )
        # 5. The genuine answers still go where the trail says: to customs (from ICT, from the police).
        genuine = domain_block_result(request_id, requester=A.TAX)  # the typed field never decides
        outcome = case_outcome(A.POLICE, public=False, sensitivity="AMBER", in_reply_to=seller_id)
        publish(rsettings, [genuine, outcome])
        wait_routed(rsettings, audit=4, dlq=3)

    letters = {letter.header("ce_id"): letter.reason for letter in read_dead_letters(rsettings)}
    assert letters == {
        str(forged.meta.event_id): "not_permitted",
        str(unasked.meta.event_id): "not_asked",
        seller_id: "id_taken",
    }
    inboxes = read_inboxes(rsettings)
    assert _copies(inboxes, str(forged.meta.event_id)) == set()
    assert _copies(inboxes, str(unasked.meta.event_id)) == set()
    # The customs report reached police, MS, tax once each, and nothing of the tax office's copy did.
    copies = [
        (a, decode_value(r.value).record["meta"]["source"])
        for a, records in inboxes.items()
        for r in records
        if headers(r)["ce_id"] == seller_id
    ]
    assert sorted(copies) == sorted([(A.POLICE, "customs"), (MS, "customs"), (A.TAX, "customs")])
    assert _copies(inboxes, str(genuine.meta.event_id)) == {A.CUSTOMS, MS}
    assert _copies(inboxes, str(outcome.meta.event_id)) == {A.CUSTOMS, MS, A.TAX}  # II.4: tax, back-taxes
    # Each refused sender is told in its own inbox, with the reason.
    told = {
        (a, n["about_event_id"], n["reason"].split(":", 1)[0])
        for a in (A.POLICE, A.INDUSTRY_TRADE, A.TAX)
        for n in _notices(inboxes, a, "UNDELIVERABLE")
    }
    assert told == {
        (A.POLICE, str(forged.meta.event_id), "not_permitted"),
        (A.INDUSTRY_TRADE, str(unasked.meta.event_id), "not_asked"),
        (A.TAX, seller_id, "id_taken"),
    }
    audits = [decode_value(r.value).record for r in read_topic(rsettings, rsettings.topics.audit)]
    assert sorted(a["event_id"] for a in audits).count(seller_id) == 1, "the duplicate was audited again"


def test_red_events_reach_their_named_recipients_and_the_standing_office_a_sealed_notice(
    rsettings: Settings,
) -> None:
    # The police name customs and the standing office on an imported-goods seller (II.3, II.9).
    from_police = suspect_seller(
        A.POLICE,
        sensitivity="RED",
        meta={"recipients": ["customs", "market_surveillance"], "case_ref": "QNG-RED-1"},
        goods_imported=True,
    )
    # Customs names the police only (II.1): the standing office gets a sealed notice, no content.
    from_customs = suspect_seller(
        A.CUSTOMS, sensitivity="RED", meta={"recipients": ["police"], "case_ref": "QNG-RED-2"}
    )
    # A RED block request names no one: ICT must act on it all the same (II.6).
    red_request = domain_block_request(A.POLICE, sensitivity="RED")
    # A RED outcome names no one and no rule carries RED: dead-lettered, the sender told, MS sealed.
    nowhere = case_outcome(A.CUSTOMS, public=False, sensitivity="RED")
    publish(rsettings, [from_police, from_customs, red_request, nowhere])
    with RouterThread(rsettings):
        wait_routed(rsettings, audit=3, dlq=1)
    inboxes = read_inboxes(rsettings)
    assert _copies(inboxes, str(from_police.meta.event_id)) == {A.CUSTOMS, MS}
    assert _copies(inboxes, str(from_customs.meta.event_id)) == {A.POLICE}
    assert _copies(inboxes, str(red_request.meta.event_id)) == {A.ICT}
    assert _copies(inboxes, str(nowhere.meta.event_id)) == set()

    sealed = {n["about_event_id"]: n for n in _notices(inboxes, MS, "SEALED")}
    assert set(sealed) == {
        str(from_customs.meta.event_id),
        str(red_request.meta.event_id),
        str(nowhere.meta.event_id),
    }
    notice = sealed[str(from_customs.meta.event_id)]
    assert (notice["about_event_type"], notice["about_sender"], notice["meta"]["case_ref"]) == (
        "suspect_seller",
        "customs",
        "QNG-RED-2",
    )
    assert notice["recipients"] == ["police"]
    for record in inboxes[MS]:
        if decode_value(record.value).record["meta"]["event_type"] == "routing_notice":
            assert SELLER_NAME.encode("utf-8") not in record.value, "a sealed notice carries no content"
    assert any(SELLER_NAME.encode("utf-8") in r.value for r in inboxes[MS]), "the named copy does"
    (told,) = _notices(inboxes, A.CUSTOMS, "UNDELIVERABLE")
    assert told["about_event_id"] == str(nowhere.meta.event_id) and told["reason"].startswith("no_route")


SELLER_NAME = "Cửa hàng Mỹ phẩm Thu Trang"


def test_publish_refuses_what_would_reach_no_one_and_what_is_not_the_senders(
    rsettings: Settings, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "BUS389_BOOTSTRAP": rsettings.bootstrap,
        "BUS389_TOPIC_PREFIX": rsettings.topic_prefix,
    }
    red = tmp_path / "red.jsonl"
    line = suspect_seller(A.POLICE).to_json_dict()
    line["meta"] = {"sensitivity": "RED"}
    red.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    refused = subprocess.run(
        [BUS389, "publish", "suspect_seller", "--as", "police", "--file", str(red)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 1, refused.stderr
    assert f"{red}:1: would reach no one" in refused.stderr and "meta.recipients" in refused.stderr
    forged = subprocess.run(
        [BUS389, "publish", "tax_discrepancy", "--as", "customs", "--file", "examples/tax_discrepancy.jsonl"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert forged.returncode == 1
    assert "not yours to publish: customs may not publish tax_discrepancy" in forged.stderr
    assert read_topic(rsettings, rsettings.topics.outbox(A.POLICE)) == []
    assert read_topic(rsettings, rsettings.topics.outbox(A.CUSTOMS)) == []
    line["meta"]["recipients"] = ["market_surveillance"]
    red.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    named = subprocess.run(
        [BUS389, "publish", "suspect_seller", "--as", "police", "--file", str(red)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert named.returncode == 0, named.stderr
    (sent,) = read_topic(rsettings, rsettings.topics.outbox(A.POLICE))
    assert decode_value(sent.value).record["meta"]["recipients"] == ["market_surveillance"]
