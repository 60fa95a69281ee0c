"""The router on a real broker: the named flows reach exactly their members, poison and spoofs go to the DLQ
with their reasons while good events flow, replies find their original sender, the DLQ replays once."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _group_support import ForgetfulLeader, ForgetfulRange
from _router_support import (
    RouterThread,
    Sent,
    case_outcome,
    domain_block_request,
    domain_block_result,
    encode,
    headers,
    publish,
    read_inboxes,
    read_topic,
    router_settings,
    send_raw,
    suspect_seller,
    tax_discrepancy,
    wait_routed,
    wait_until,
)

from bus389 import metrics
from bus389.agencies import Agency
from bus389.codec import decode_value, encode_value
from bus389.consumers.router.dlq import read_dead_letters, replay
from bus389.kafka import make_producer
from bus389.schemas.catalog import load_catalog
from bus389.settings import KafkaClientSettings, RouterSettings, Settings

pytestmark = pytest.mark.integration

A = Agency
MS = Agency.MARKET_SURVEILLANCE


@pytest.fixture
def rsettings(make_settings: Callable[..., Settings], unique_group: Callable[..., str]) -> Settings:
    return router_settings(make_settings, unique_group)


def _who_got(inboxes: dict[Agency, list[Any]]) -> dict[str, set[Agency]]:
    got: dict[str, set[Agency]] = {}
    for agency, records in inboxes.items():
        for record in records:
            got.setdefault(headers(record)["ce_id"], set()).add(agency)
    return got


def _copy(inboxes: dict[Agency, list[Any]], agency: Agency, event_id: str) -> Any:
    (record,) = [r for r in inboxes[agency] if headers(r)["ce_id"] == event_id]
    return record


def test_the_three_named_flows_reach_exactly_their_members(rsettings: Settings) -> None:
    online = suspect_seller(A.POLICE, domains=["myphamxachtay-qn.vn"], goods_imported=True)
    marketplace = suspect_seller(A.TAX)
    islands = suspect_seller(A.CUSTOMS, border_area=True, sensitivity="GREEN")
    block = domain_block_request(A.POLICE)
    big = tax_discrepancy(150_000_000)
    small = tax_discrepancy(20_000_000)
    sent = publish(rsettings, [online, marketplace, islands, block, big, small])
    by_id = {s.event_id: s for s in sent}
    forged = suspect_seller(A.POLICE)  # a sender cannot forge the router's headers
    key, value, ce_headers = encode(forged)
    forged_headers = [*ce_headers, ("bus389_rule", b"forged"), ("bus389_redacted", b"seller.national_id")]
    send_raw(rsettings, rsettings.topics.outbox(A.POLICE), value, forged_headers, key=key)

    with RouterThread(rsettings):
        wait_routed(rsettings, audit=len(sent) + 1)
    inboxes = read_inboxes(rsettings)

    forged_copy = _copy(inboxes, A.TAX, str(forged.meta.event_id))
    assert [v for k, v in forged_copy.headers if k == "bus389_rule"] == [b"suspect_seller.tax"]
    # II.4: the tax office keeps the seller's whole record, the phone included: nothing is taken out
    assert [v for k, v in forged_copy.headers if k == "bus389_redacted"] == [b""]
    assert _who_got(inboxes).pop(str(forged.meta.event_id)) == {A.TAX, MS}
    for records in inboxes.values():
        records[:] = [r for r in records if headers(r)["ce_id"] != str(forged.meta.event_id)]

    expected = {
        str(online.meta.event_id): {MS, A.TAX, A.ICT, A.CUSTOMS},
        str(marketplace.meta.event_id): {A.POLICE, MS},
        str(islands.meta.event_id): {A.POLICE, MS, A.TAX, A.BORDER_GUARD},
        str(block.meta.event_id): {A.ICT, MS},
        str(big.meta.event_id): {MS, A.POLICE},
        str(small.meta.event_id): {MS},
    }
    assert _who_got(inboxes) == expected
    assert sum(len(records) for records in inboxes.values()) == sum(len(v) for v in expected.values())

    # The copy keeps the key and CloudEvents headers, and says which rule delivered it and from where.
    ict_copy = _copy(inboxes, A.ICT, str(online.meta.event_id))
    original: Sent = by_id[str(online.meta.event_id)]
    h = headers(ict_copy)
    assert ict_copy.key == original.key
    for name, value in original.headers:
        assert h[name] == value.decode()
    assert h["bus389_rule"] == "suspect_seller.ict"
    assert h["bus389_plan_section"] == "II.6"
    # The origin is the exact place the broker acknowledged for the original record.
    assert original.topic == rsettings.topics.outbox(A.POLICE) and original.offset >= 0
    assert h["bus389_origin"] == f"{original.topic}/{original.partition}/{original.offset}"
    # ICT does not see the seller's personal data; the standing office gets the original bytes.
    assert h["bus389_redacted"] == "seller.national_id,seller.phone,seller.address"
    seller = decode_value(ict_copy.value).record["seller"]
    assert (seller["national_id"], seller["phone"], seller["address"]) == (None, None, None)
    assert seller["name"] == "Cửa hàng Mỹ phẩm Thu Trang"
    ms_copy = _copy(inboxes, MS, str(online.meta.event_id))
    assert ms_copy.value == original.value and headers(ms_copy)["bus389_redacted"] == ""
    tax_copy = _copy(inboxes, A.TAX, str(online.meta.event_id))
    assert headers(tax_copy)["bus389_redacted"] == ""
    police_copy = _copy(inboxes, A.POLICE, str(big.meta.event_id))
    assert headers(police_copy)["bus389_rule"] == "tax_discrepancy.police"
    assert police_copy.value == by_id[str(big.meta.event_id)].value

    # One audit record per event, naming every delivery with its rule and plan section.
    audits = [decode_value(r.value).record for r in read_topic(rsettings, rsettings.topics.audit)]
    assert sorted(a["event_id"] for a in audits) == sorted([*expected, str(forged.meta.event_id)])
    audit = next(a for a in audits if a["event_id"] == str(online.meta.event_id))
    assert audit["sender"] == "police" and audit["event_type"] == "suspect_seller"
    assert {(d["recipient"], d["rule_id"], d["plan_section"]) for d in audit["deliveries"]} == {
        ("market_surveillance", "suspect_seller.market_surveillance", "II.9"),
        ("tax", "suspect_seller.tax", "II.4"),
        ("ict", "suspect_seller.ict", "II.6"),
        ("customs", "suspect_seller.customs", "II.3"),
    }
    assert [w["agency"] for w in audit["withheld"]] == ["police"]
    assert audit["received_at"] <= audit["routed_at"]
    assert read_topic(rsettings, rsettings.topics.dlq) == []


def _frame(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def test_poison_and_spoofs_go_to_the_dlq_and_good_events_flow(rsettings: Settings) -> None:
    police_outbox = rsettings.topics.outbox(A.POLICE)
    ce = [("ce_specversion", b"1.0"), ("ce_id", b"poison"), ("content-type", b"application/avro")]
    good = [suspect_seller(A.POLICE) for _ in range(4)]
    spoofed = suspect_seller(A.CUSTOMS)  # claims customs, written to the police outbox
    wrong_type = suspect_seller(A.POLICE)
    invalid = tax_discrepancy(10).to_avro()
    invalid["period"] = "2021-H3"  # Avro takes any string; the model does not
    orphan = case_outcome(A.POLICE, public=False, sensitivity="AMBER", in_reply_to=str(uuid.uuid4()))
    red_unnamed = case_outcome(A.POLICE, public=False, sensitivity="RED")  # names no one, no rule carries RED
    schema = load_catalog().latest("tax_discrepancy")

    spoof_before = _sample("bus389_spoof_attempts_total", claimed_source="customs", outbox="police")
    publish(rsettings, [good[0]])
    send_raw(rsettings, police_outbox, b"\x01garbage", ce)  # bad_magic_byte
    publish(rsettings, [good[1]])
    send_raw(rsettings, police_outbox, b"\x00\x00", ce)  # truncated_frame
    send_raw(rsettings, police_outbox, _frame(99_999, b"\x02"), ce)  # unknown_schema_id
    send_raw(rsettings, police_outbox, _frame(1, b"\xff\xff\xff\xff\xff\xff\xff"), ce)  # corrupt_body
    wrong = publish(rsettings, [wrong_type])[0]
    mismatched = [(k, b"vn.bcd389.tax_discrepancy.v1" if k == "ce_type" else v) for k, v in wrong.headers]
    send_raw(rsettings, police_outbox, wrong.value, mismatched, key=wrong.key)  # schema_mismatch
    send_raw(rsettings, rsettings.topics.outbox(A.TAX), encode_value(invalid, schema), ce)  # invalid_event
    publish(rsettings, [spoofed], outbox=A.POLICE)  # spoofed_source
    publish(rsettings, [good[2], orphan, red_unnamed, good[3]])  # unknown_original, no_route

    with RouterThread(rsettings):
        # wrong_type was also published as is (good): 5 routed, 9 dead letters
        wait_routed(rsettings, audit=5, dlq=9)
    letters = read_dead_letters(rsettings)
    by_reason = {letter.reason: letter for letter in letters}
    assert set(by_reason) == {
        "bad_magic_byte",
        "truncated_frame",
        "unknown_schema_id",
        "corrupt_body",
        "schema_mismatch",
        "invalid_event",
        "spoofed_source",
        "unknown_original",
        "no_route",
    }
    assert len(letters) == 9
    assert by_reason["bad_magic_byte"].value == b"\x01garbage"
    assert by_reason["truncated_frame"].value == b"\x00\x00"
    assert by_reason["invalid_event"].origin_topic == rsettings.topics.outbox(A.TAX)
    assert "period" in by_reason["invalid_event"].detail
    assert by_reason["spoofed_source"].header("ce_id") == str(spoofed.meta.event_id)
    assert "customs" in by_reason["spoofed_source"].detail
    assert by_reason["unknown_original"].header("ce_id") == str(orphan.meta.event_id)
    assert "RED" in by_reason["no_route"].detail
    for letter in letters:
        assert letter.origin_partition is not None and letter.origin_offset is not None
        assert letter.header("ce_specversion") == "1.0"  # the original headers are kept
    # Every origin is a real place in an outbox, holding exactly the bytes of the dead letter.
    outbox = {(r.topic, r.partition, r.offset): r.value for r in read_topic(rsettings, police_outbox)}
    outbox |= {
        (r.topic, r.partition, r.offset): r.value
        for r in read_topic(rsettings, rsettings.topics.outbox(A.TAX))
    }
    for letter in letters:
        assert outbox[(letter.origin_topic, letter.origin_partition, letter.origin_offset)] == letter.value

    inboxes = read_inboxes(rsettings)
    routed = _who_got(inboxes)
    for event in [*good, wrong_type]:
        assert routed[str(event.meta.event_id)] == {MS, A.TAX}
    assert str(spoofed.meta.event_id) not in routed
    # Every dead letter's sender is told, in its own inbox, which of its records went where and why.
    told = [decode_value(r.value).record for r in inboxes[A.POLICE] + inboxes[A.TAX]]
    notices = [n for n in told if n["meta"]["event_type"] == "routing_notice"]
    assert sorted(n["origin"] for n in notices) == sorted(
        f"{letter.origin_topic}/{letter.origin_partition}/{letter.origin_offset}" for letter in letters
    )
    assert all(n["notice"] == "UNDELIVERABLE" for n in notices)
    assert {n["about_event_id"] for n in notices} >= {
        str(orphan.meta.event_id),
        str(red_unnamed.meta.event_id),
    }
    assert (
        _sample("bus389_spoof_attempts_total", claimed_source="customs", outbox="police") == spoof_before + 1
    )


def _sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return float(value or 0.0)


def test_a_reply_goes_to_the_original_sender_known_from_the_audit_trail(rsettings: Settings) -> None:
    request = domain_block_request(A.CUSTOMS)
    publish(rsettings, [request])
    with RouterThread(rsettings):
        wait_routed(rsettings, audit=1)
    # A new router instance knows the request's sender only from the audit trail it reads at start.
    result = domain_block_result(str(request.meta.event_id), requester=A.POLICE)  # the field disagrees
    other = domain_block_result(
        str(uuid.uuid4()), requester=A.TAX
    )  # unknown request: the field never decides
    publish(rsettings, [result, other])
    with RouterThread(rsettings) as router:
        wait_routed(rsettings, audit=2, dlq=1)
        assert len(router.service.replies) >= 1
    got = _who_got(read_inboxes(rsettings))
    assert got[str(result.meta.event_id)] == {A.CUSTOMS, MS}
    assert str(other.meta.event_id) not in got
    (letter,) = read_dead_letters(rsettings, reason="unknown_original")
    assert letter.header("ce_id") == str(other.meta.event_id)
    copy = _copy(read_inboxes(rsettings), A.CUSTOMS, str(result.meta.event_id))
    assert headers(copy)["bus389_rule"] == "domain_block_result.requester"


def test_media_get_only_public_clear_outcomes(rsettings: Settings) -> None:
    public = case_outcome(A.CUSTOMS, public=True)
    green = case_outcome(A.CUSTOMS, public=True, sensitivity="GREEN")
    private = case_outcome(A.CUSTOMS, public=False)
    publish(rsettings, [public, green, private])
    with RouterThread(rsettings):
        wait_routed(rsettings, audit=3)
    inboxes = read_inboxes(rsettings)
    assert [headers(r)["ce_id"] for r in inboxes[A.MEDIA]] == [str(public.meta.event_id)]
    copy = inboxes[A.MEDIA][0]
    assert headers(copy)["bus389_redacted"] == "seller.national_id,seller.phone,seller.address"
    assert decode_value(copy.value).record["seller"]["phone"] is None
    assert len(inboxes[MS]) == 3


def test_dlq_replay_sends_a_fixed_letter_back_once(rsettings: Settings) -> None:
    request = domain_block_request(A.POLICE)
    reply = case_outcome(A.ICT, public=False, sensitivity="AMBER", in_reply_to=str(request.meta.event_id))
    publish(rsettings, [reply])  # the reply arrives before its original: unknown_original
    with RouterThread(rsettings):
        wait_routed(rsettings, audit=0, dlq=1)
        publish(rsettings, [request])
        wait_routed(rsettings, audit=1, dlq=1)
        (letter,) = read_dead_letters(rsettings, reason="unknown_original")
        assert not letter.replayed
        assert replay(rsettings, reason="unknown_original", dry_run=True).sent == [letter]
        report = replay(rsettings, reason="unknown_original")
        assert [sent.place for sent in report.sent] == [letter.place]
        assert replay(rsettings, reason="unknown_original").sent == []  # at most once
        wait_routed(rsettings, audit=2, dlq=1)
    got = _who_got(read_inboxes(rsettings))
    assert got[str(reply.meta.event_id)] == {A.POLICE, MS, A.TAX}  # II.4: outcomes to the tax office
    (listed,) = read_dead_letters(rsettings, reason="unknown_original")
    assert listed.replayed
    with pytest.raises(Exception, match="never replayed"):
        replay(rsettings, reason="spoofed_source")


def test_bus389_route_exits_0_on_sigterm(rsettings: Settings) -> None:
    event = suspect_seller(A.POLICE)
    publish(rsettings, [event])
    env = {
        **os.environ,
        "BUS389_BOOTSTRAP": rsettings.bootstrap,
        "BUS389_TOPIC_PREFIX": rsettings.topic_prefix,
        "BUS389_ROUTER__GROUP_ID": rsettings.router.group_id,
        "BUS389_ROUTER__TRANSACTIONAL_ID": rsettings.router.transactional_id,
        "BUS389_ROUTER__SESSION_TIMEOUT_MS": "6000",
    }
    command = [str(Path(sys.executable).with_name("bus389")), "route", "--metrics-port", "0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The audit record is committed: the process is in its loop with its SIGTERM handler set.
        wait_routed(rsettings, audit=1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "router: 1 event(s)" in err


def test_a_fenced_router_rebuilds_its_producer_and_loses_nothing(rsettings: Settings) -> None:
    first = [suspect_seller(A.CUSTOMS) for _ in range(10)]
    second = [suspect_seller(A.CUSTOMS) for _ in range(10)]
    publish(rsettings, first)
    with RouterThread(rsettings) as router:
        wait_routed(rsettings, audit=10)
        # Another instance takes the transactional id: the router's producer is fenced (a zombie now).
        usurper = make_producer(rsettings, transactional_id=rsettings.router.transactional_id)
        usurper.init_transactions()
        usurper.close()
        publish(rsettings, second)
        wait_routed(rsettings, audit=20)
        assert router.service.stats.producers_built >= 2
    seen: dict[tuple[str, Agency], int] = {}
    for agency, records in read_inboxes(rsettings).items():
        for record in records:
            pair = (headers(record)["ce_id"], agency)
            seen[pair] = seen.get(pair, 0) + 1
    expected = {(str(e.meta.event_id), a) for e in first + second for a in (A.POLICE, MS, A.TAX)}
    assert set(seen) == expected
    assert set(seen.values()) == {1}
    assert len(read_topic(rsettings, rsettings.topics.audit)) == 20


def test_without_transactions_the_router_still_routes(
    make_settings: Callable[..., Settings], unique_group: Callable[..., str]
) -> None:
    settings = router_settings(make_settings, unique_group, transactions=False)
    events = [suspect_seller(A.CUSTOMS) for _ in range(5)]
    publish(settings, events)
    with RouterThread(settings) as router:
        wait_routed(settings, audit=5)
        assert router.service.stats.producers_built == 1
    got = _who_got(read_inboxes(settings))
    assert all(got[str(e.meta.event_id)] == {A.POLICE, MS, A.TAX} for e in events)


def test_an_event_the_router_keeps_failing_on_goes_to_the_dlq(
    rsettings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault is injected through the router's test hook (``records.fault_hook``), at the record the
    test chose; the routing code itself runs unchanged for every record."""
    from bus389.consumers.router import records

    events = [suspect_seller(A.CUSTOMS) for _ in range(6)]
    cursed = str(events[2].meta.event_id)
    struck: list[int] = []

    def fault(raw: Any) -> None:
        if (raw.key or b"").decode() == cursed:
            struck.append(raw.offset)
            raise RuntimeError("a bug that only this event triggers")

    monkeypatch.setattr(records, "fault_hook", fault)
    publish(rsettings, events)
    with RouterThread(rsettings):
        wait_routed(rsettings, audit=5, dlq=1)
    assert struck, "the fault never fired: the scenario (an event the router fails on) was not reached"
    (letter,) = read_dead_letters(rsettings)
    assert letter.reason == "router_error"
    assert letter.header("ce_id") == cursed and "a bug that only this event triggers" in letter.detail
    got = _who_got(read_inboxes(rsettings))
    assert set(got) == {str(e.meta.event_id) for e in events} - {cursed}
    assert all(v == {A.POLICE, MS, A.TAX} for v in got.values())


def test_a_router_the_group_leader_gave_nothing_rejoins(
    make_settings: Callable[..., Settings], unique_group: Callable[..., str]
) -> None:
    """A forgetful leader (``_group_support``) joins the router's group first and gives nothing to
    either member; the router notices after ``kafka.unassigned_rejoin_s``, rejoins, and routes what
    lands on the partitions it then holds."""
    ident = unique_group("router")
    settings = make_settings(
        kafka=KafkaClientSettings(unassigned_rejoin_s=3.0),
        router=RouterSettings(group_id=ident, transactional_id=ident, session_timeout_ms=6000),
    )
    outbox = settings.topics.outbox(A.CUSTOMS)
    outboxes = settings.topics.all_outboxes()
    with ForgetfulLeader(settings, ident, outboxes) as leader:
        wait_until(lambda: len(leader.assignment()) == 3 * len(outboxes), 60, "the leader to take all")
        with RouterThread(settings) as router:
            # Deadlines for a loaded 2-core machine, where one rebalance can take a minute; the router may
            # also give up on an assignment still in progress before the leader's, and rejoin more than once.
            # ``forgot`` is set only by an assignment of two or more members: the router was in the group.
            wait_until(lambda: bool(ForgetfulRange.forgot), 180, "the leader to give nothing out")
            wait_until(lambda: router.service.stats.rejoins >= 1, 180, "the router to rejoin")
            wait_until(
                lambda: (
                    any(tp.topic == outbox for tp in leader.assignment())
                    and len(leader.assignment()) < 3 * len(outboxes)
                ),
                180,
                "the group to settle with both members",
            )
            theirs = {tp.partition for tp in leader.assignment() if tp.topic == outbox}
            ours = sorted(set(range(3)) - theirs)
            assert ours, "range gives each of two members part of every three-partition outbox"
            event = suspect_seller(A.CUSTOMS)
            publish(settings, [event], partition=ours[0])
            wait_routed(settings, audit=1)
            assert router.service.stats.rejoins >= 1
    got = _who_got(read_inboxes(settings))
    assert got == {str(event.meta.event_id): {A.POLICE, MS, A.TAX}}


def test_a_router_the_coordinator_dropped_while_it_held_partitions_rejoins(
    make_settings: Callable[..., Settings], unique_group: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """The router's consumer stops heartbeating while it holds every outbox partition (the fault a loaded
    machine caused: kafka-python 3.0 sent no heartbeat after a join). The coordinator removes the member
    when its session expires and the consumer, told nothing, keeps its partitions; the router notices at
    an idle poll after ``kafka.unassigned_rejoin_s``, rejoins with a new consumer, and routes."""
    ident = unique_group("router")
    settings = make_settings(
        kafka=KafkaClientSettings(unassigned_rejoin_s=3.0),
        router=RouterSettings(group_id=ident, transactional_id=ident, session_timeout_ms=6000),
    )
    every_partition = 3 * len(settings.topics.all_outboxes())
    caplog.set_level(logging.INFO)
    with RouterThread(settings) as router:
        member = router.service._member
        wait_until(
            lambda: member.consumer is not None and len(member.consumer.assignment()) == every_partition,
            180,
            "the router to hold every partition",
        )
        silent = member.consumer
        # The fault, in the library rather than in the code under test: its heartbeat loop ends.
        silent._coordinator._close_heartbeat()
        wait_until(lambda: member.consumer is not silent, 180, "the router to replace the dropped member")
        assert any("no longer lists this member" in r.getMessage() for r in caplog.records), (
            "the member was replaced for another reason than being dropped"
        )
        event = suspect_seller(A.CUSTOMS)
        publish(settings, [event])
        wait_routed(settings, audit=1, timeout_s=180)
        assert router.service.stats.rejoins >= 1
    got = _who_got(read_inboxes(settings))
    assert got == {str(event.meta.event_id): {A.POLICE, MS, A.TAX}}
