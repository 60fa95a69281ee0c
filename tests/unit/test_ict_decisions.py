"""Decisions on domain-block requests: approve, reject, partial, auto-approve, expire, unblock — and the
``domain_block_result`` each one leaves in the outbox (decoded with the real codec)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from _ict_records import DAY, MINUTE, T0, Clock, request_record

from bus389.agencies import Agency
from bus389.codec import decode_event
from bus389.consumers.ict._results import RESULT_NAMESPACE, result_event_id
from bus389.consumers.ict.blocklist import active_entries
from bus389.consumers.ict.decisions import BlockRequest, Decider
from bus389.consumers.ict.store import IctStore, RequestKey, RequestState, TargetState, open_store
from bus389.errors import InputError
from bus389.settings import IctSettings, Settings


@pytest.fixture
def store() -> Iterator[IctStore]:
    with open_store("sqlite:///:memory:") as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


def decider_for(store: IctStore, clock: Clock, **ict: Any) -> Decider:
    settings = Settings(ict=IctSettings(**ict)) if ict else Settings()
    return Decider(store, settings, clock=clock)


@pytest.fixture
def decider(store: IctStore, clock: Clock) -> Decider:
    return decider_for(store, clock, providers=("Viettel", "VNPT"))


def ingest(decider: Decider, **fields: Any) -> BlockRequest:
    request = BlockRequest.from_record(request_record(**fields))
    decider.ingest(request, origin="t.inbox.ict/0/0")
    return request


def results(store: IctStore, request: RequestKey | None = None) -> list[dict[str, Any]]:
    """The outbox's results, decoded from the exact bytes that will be published."""
    out = []
    for row in store.outbox(request):
        decoded = decode_event(row.value, row.headers, expected_type="domain_block_result")
        record = decoded.record
        headers = dict(row.headers)
        assert headers["ce_id"].decode() == record["meta"]["event_id"] == row.event_id
        assert headers["ce_source"] == b"/bus389/ict"
        out.append({**record, "_key": row.key, "_kind": row.decision_kind, "_needs_seq": row.needs_seq})
    return out


def blocked_targets(store: IctStore) -> list[str]:
    return sorted(e.target for e in active_entries(store))


# --- approve ----------------------------------------------------------------------------------------


def test_a_request_waits_for_the_operator_then_approval_blocks_it(
    store: IctStore, decider: Decider, clock: Clock
) -> None:
    request = ingest(decider, domains=["Hang-Gia.example.vn"], ip_addresses=["45.77.10.20"])
    assert store.request(request.key).state == RequestState.PENDING  # type: ignore[union-attr]
    assert store.outbox() == []
    assert blocked_targets(store) == []

    clock.advance(5 * MINUTE)
    row, outcome = decider.approve(request.event_id[:8], actor="op.nguyen", note="QĐ 45/QĐ-STTTT")
    assert outcome == "BLOCKED"
    assert blocked_targets(store) == ["45.77.10.20", "hang-gia.example.vn"]
    stored = store.request(request.key)
    assert stored is not None
    assert (stored.state, stored.decided_by, stored.decided_at) == ("approved", "op.nguyen", T0 + 5 * MINUTE)

    [result] = results(store)
    meta = result["meta"]
    assert meta["event_type"] == "domain_block_result"
    assert meta["source"] == "ict"
    assert meta["in_reply_to"] == request.event_id
    assert meta["case_ref"] == "VA-2021-017"
    assert meta["sensitivity"] == "AMBER"  # as restrictive as the request
    assert meta["urgency"] == "PRIORITY"
    assert result["_key"] == b"VA-2021-017"
    assert result["requester"] == "police"
    assert result["outcome"] == "BLOCKED"
    assert result["blocked"] == ["hang-gia.example.vn", "45.77.10.20"]
    assert result["not_blocked"] == []
    assert result["providers_notified"] == ["Viettel", "VNPT"]
    assert result["note"] == "QĐ 45/QĐ-STTTT"
    assert int(result["decided_at"].timestamp() * 1000) == T0 + 5 * MINUTE
    assert meta["event_id"] == str(uuid.uuid5(RESULT_NAMESPACE, f"{request.event_id}/police/blocked"))
    assert result["_needs_seq"] == store.counter("blocklist_seq") == 1


def test_result_ids_are_the_same_in_any_store(clock: Clock) -> None:
    request_id = str(uuid.uuid4())
    ids = []
    for _ in range(2):
        with open_store("sqlite:///:memory:") as s:
            d = decider_for(s, clock)
            ingest(d, event_id=request_id)
            d.approve(request_id, actor="op")
            ids.append(s.outbox()[0].event_id)
    assert ids[0] == ids[1] == result_event_id((request_id, "police"), "blocked")


def test_a_request_with_refused_items_is_partial(store: IctStore, decider: Decider) -> None:
    request = ingest(
        decider,
        domains=["hang-gia.example.vn", "shopee.vn"],
        urls=["https://hang-gia.example.vn/ao"],
        ip_addresses=["10.0.0.8", "45.77.10.20"],
    )
    _, outcome = decider.approve(request.event_id, actor="op")
    assert outcome == "PARTIAL"
    [result] = results(store)
    assert result["outcome"] == "PARTIAL"
    assert result["blocked"] == ["hang-gia.example.vn", "https://hang-gia.example.vn/ao", "45.77.10.20"]
    assert result["not_blocked"] == ["shopee.vn", "10.0.0.8"]
    assert "shopee.vn (on the never-block list (shopee.vn))" in result["note"]
    assert "10.0.0.8 (not a public address: private (RFC 1918))" in result["note"]


def test_a_request_cannot_be_decided_twice(store: IctStore, decider: Decider) -> None:
    request = ingest(decider)
    decider.approve(request.event_id, actor="op")
    with pytest.raises(InputError, match="it is approved"):
        decider.approve(request.event_id, actor="op")
    with pytest.raises(InputError, match="it is approved"):
        decider.reject(request.event_id, actor="op", reason="changed my mind")
    assert len(store.outbox()) == 1


# --- reject -----------------------------------------------------------------------------------------


def test_the_operator_rejects_with_a_reason(store: IctStore, decider: Decider) -> None:
    request = ingest(decider, domains=["hang-gia.example.vn"], urls=["https://hang-gia.example.vn/x"])
    with pytest.raises(InputError, match="needs a reason"):
        decider.reject(request.event_id, actor="op", reason="  ")
    decider.reject(request.event_id, actor="op", reason="Thiếu quyết định xử phạt")
    [result] = results(store)
    assert result["outcome"] == "REJECTED"
    assert result["blocked"] == []
    assert result["not_blocked"] == ["hang-gia.example.vn", "https://hang-gia.example.vn/x"]
    assert result["note"] == "Thiếu quyết định xử phạt"
    assert result["providers_notified"] == []
    assert [t.state for t in store.targets(request.key)] == [TargetState.REJECTED] * 2
    assert store.counter("blocklist_seq") == 0  # a rejection changes no file
    assert blocked_targets(store) == []


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"action": "UNKNOWN"}, "unknown action 'UNKNOWN'"),
        ({"domains": [], "urls": [], "ip_addresses": []}, "names no domain, URL or IP address"),
        (
            {"domains": ["gov.vn", "x.shopee.vn"], "ip_addresses": ["127.0.0.1"]},
            "nothing in the request can be acted on",
        ),
        ({"domains": ["bad..name"]}, "not a valid domain name"),
        ({"expires_at": T0 - DAY}, "is already past"),
        ({"expires_at": T0}, "is already past"),
    ],
)
def test_requests_that_cannot_be_acted_on_are_rejected_at_once(
    store: IctStore, decider: Decider, fields: dict[str, Any], reason: str
) -> None:
    request = ingest(decider, **fields)
    assert store.request(request.key).state == RequestState.REJECTED  # type: ignore[union-attr]
    [result] = results(store)
    assert result["outcome"] == "REJECTED"
    assert reason in result["note"]
    assert store.decisions(request.key)[0]["actor"] == "screening"


# --- auto-approve -----------------------------------------------------------------------------------


def test_requests_of_auto_approved_senders_are_blocked_on_arrival(store: IctStore, clock: Clock) -> None:
    decider = decider_for(store, clock, auto_approve_senders=(Agency.MARKET_SURVEILLANCE,))
    auto = ingest(decider, source="market_surveillance", domains=["a.example.vn", "gov.vn"])
    manual = ingest(decider, source="police", domains=["b.example.vn"])
    assert store.request(auto.key).state == RequestState.APPROVED  # type: ignore[union-attr]
    assert store.request(manual.key).state == RequestState.PENDING  # type: ignore[union-attr]
    [result] = results(store)
    assert (result["outcome"], result["requester"]) == ("PARTIAL", "market_surveillance")
    assert "approved automatically" in result["note"]
    assert store.decisions(auto.key)[0]["actor"] == "auto-approve"
    assert blocked_targets(store) == ["a.example.vn"]


# --- the other actions ------------------------------------------------------------------------------


def test_a_vn_domain_revocation_blocks_only_vn_domains(store: IctStore, decider: Decider) -> None:
    request = ingest(
        decider, action="REVOKE_VN_DOMAIN", domains=["hang-gia.example.vn", "hang-gia.example.com"]
    )
    _, outcome = decider.approve(request.event_id, actor="op")
    assert outcome == "PARTIAL"
    assert blocked_targets(store) == ["hang-gia.example.vn"]
    assert results(store)[0]["not_blocked"] == ["hang-gia.example.com"]


def test_a_licence_suspension_blocks_its_domains(store: IctStore, decider: Decider) -> None:
    request = ingest(decider, action="SUSPEND_LICENCE", domains=["hang-gia.example.vn"])
    assert decider.approve(request.event_id, actor="op")[1] == "BLOCKED"
    assert blocked_targets(store) == ["hang-gia.example.vn"]


# --- expiry -----------------------------------------------------------------------------------------


def test_an_approved_block_is_lifted_when_it_expires(store: IctStore, decider: Decider, clock: Clock) -> None:
    request = ingest(decider, domains=["hang-gia.example.vn"], expires_at=T0 + DAY)
    decider.approve(request.event_id, actor="op")
    assert "lapses at 2021-03-02T08:00:00Z" in results(store)[0]["note"]
    clock.advance(DAY - 1)
    assert decider.expire_due() == []
    assert blocked_targets(store) == ["hang-gia.example.vn"]
    seq = store.counter("blocklist_seq")

    clock.advance(1)
    assert decider.expire_due() == [request.event_id]
    assert decider.expire_due() == []  # once
    assert blocked_targets(store) == []
    assert store.request(request.key).state == RequestState.EXPIRED  # type: ignore[union-attr]
    assert store.counter("blocklist_seq") == seq + 1
    blocked, expired = results(store)
    assert blocked["outcome"] == "BLOCKED"
    assert expired["outcome"] == "EXPIRED"
    assert expired["meta"]["in_reply_to"] == request.event_id
    assert expired["blocked"] == ["hang-gia.example.vn"]  # what was lifted
    assert "lapsed at 2021-03-02T08:00:00Z" in expired["note"]
    assert expired["meta"]["event_id"] == result_event_id(request.key, "expired")


def test_a_request_still_pending_at_its_expiry_is_answered_expired(
    store: IctStore, decider: Decider, clock: Clock
) -> None:
    request = ingest(decider, expires_at=T0 + MINUTE)
    clock.advance(MINUTE)
    with pytest.raises(InputError, match="expired at"):
        decider.approve(request.event_id, actor="op")
    assert decider.expire_due() == [request.event_id]
    [result] = results(store)
    assert (result["outcome"], result["blocked"]) == ("EXPIRED", [])
    assert "before a decision" in result["note"]
    assert result["providers_notified"] == []
    assert store.counter("blocklist_seq") == 0


def test_expiry_keeps_a_domain_blocked_by_another_request(
    store: IctStore, decider: Decider, clock: Clock
) -> None:
    short = ingest(decider, domains=["hang-gia.example.vn"], expires_at=T0 + MINUTE)
    lasting = ingest(decider, source="customs", domains=["hang-gia.example.vn"])
    decider.approve(short.event_id, actor="op")
    decider.approve(lasting.event_id, actor="op")
    clock.advance(MINUTE)
    decider.expire_due()
    assert [(e.target, e.request_id) for e in active_entries(store)] == [
        ("hang-gia.example.vn", lasting.event_id)
    ]


# --- unblock ----------------------------------------------------------------------------------------


def test_a_requester_withdrawing_its_own_block_is_applied_at_once(
    store: IctStore, decider: Decider, clock: Clock
) -> None:
    block = ingest(decider, domains=["a.example.vn", "b.example.vn"], ip_addresses=["45.77.10.20"])
    decider.approve(block.event_id, actor="op")
    clock.advance(MINUTE)
    unblock = ingest(decider, action="UNBLOCK", domains=["a.example.vn"], ip_addresses=["45.77.10.20"])
    assert blocked_targets(store) == ["b.example.vn"]
    assert store.request(unblock.key).state == RequestState.APPROVED  # type: ignore[union-attr]
    assert store.request(block.key).state == RequestState.APPROVED  # type: ignore[union-attr]
    own = results(store, unblock.key)
    lifted = [r for r in results(store, block.key) if r["outcome"] == "UNBLOCKED"]
    assert [(r["outcome"], r["blocked"]) for r in own] == [("UNBLOCKED", ["a.example.vn", "45.77.10.20"])]
    assert own[0]["meta"]["in_reply_to"] == unblock.event_id
    assert [(r["blocked"], r["not_blocked"]) for r in lifted] == [
        (["a.example.vn", "45.77.10.20"], ["b.example.vn"])
    ]
    assert lifted[0]["meta"]["in_reply_to"] == block.event_id
    assert unblock.event_id in lifted[0]["note"]

    # Lifting the last item ends the block request.
    ingest(decider, action="UNBLOCK", domains=["b.example.vn"])
    assert blocked_targets(store) == []
    assert store.request(block.key).state == RequestState.UNBLOCKED  # type: ignore[union-attr]


def test_unblocking_another_agencys_block_waits_for_the_operator(store: IctStore, decider: Decider) -> None:
    block = ingest(decider, source="police", domains=["a.example.vn"])
    decider.approve(block.event_id, actor="op")
    unblock = ingest(decider, source="industry_trade", action="UNBLOCK", domains=["a.example.vn"])
    assert store.request(unblock.key).state == RequestState.PENDING  # type: ignore[union-attr]
    assert blocked_targets(store) == ["a.example.vn"]
    _, outcome = decider.approve(unblock.event_id, actor="op")
    assert outcome == "UNBLOCKED"
    assert blocked_targets(store) == []
    assert store.request(block.key).state == RequestState.UNBLOCKED  # type: ignore[union-attr]
    assert [r["outcome"] for r in results(store, block.key)] == ["BLOCKED", "UNBLOCKED"]


def test_unblock_lifts_every_request_blocking_the_name(store: IctStore, decider: Decider) -> None:
    first = ingest(decider, source="police", domains=["a.example.vn"])
    second = ingest(decider, source="police", domains=["a.example.vn", "c.example.vn"])
    decider.approve(first.event_id, actor="op")
    decider.approve(second.event_id, actor="op")
    ingest(decider, source="police", action="UNBLOCK", domains=["a.example.vn"])
    assert blocked_targets(store) == ["c.example.vn"]
    assert store.request(first.key).state == RequestState.UNBLOCKED  # type: ignore[union-attr]
    assert store.request(second.key).state == RequestState.APPROVED  # type: ignore[union-attr]


def test_unblocking_what_is_not_blocked_is_rejected(store: IctStore, decider: Decider) -> None:
    block = ingest(decider, domains=["example-parent.vn"])
    decider.approve(block.event_id, actor="op")
    # Exact names only: a name under a blocked domain is not itself a block to lift.
    unblock = ingest(decider, action="UNBLOCK", domains=["shop.example-parent.vn"])
    [result] = results(store, unblock.key)
    assert result["outcome"] == "REJECTED"
    assert "nothing to lift: shop.example-parent.vn" in result["note"]
    assert blocked_targets(store) == ["example-parent.vn"]


def test_an_unblocked_name_can_be_blocked_again(store: IctStore, decider: Decider) -> None:
    first = ingest(decider, domains=["a.example.vn"])
    decider.approve(first.event_id, actor="op")
    ingest(decider, action="UNBLOCK", domains=["a.example.vn"])
    again = ingest(decider, domains=["a.example.vn"])
    decider.approve(again.event_id, actor="op")
    assert [(e.target, e.request_id) for e in active_entries(store)] == [("a.example.vn", again.event_id)]


def test_results_wait_for_the_blocklist_change_they_announce(store: IctStore, decider: Decider) -> None:
    rejected = ingest(decider, domains=["gov.vn"])
    approved = ingest(decider)
    decider.approve(approved.event_id, actor="op")
    by_request = {row.request_id: row.needs_seq for row in store.outbox()}
    assert by_request[rejected.event_id] == 0  # nothing to write first
    assert by_request[approved.event_id] == 1
    assert store.unsent(up_to_seq=0) == [r for r in store.outbox() if r.request_id == rejected.event_id]
