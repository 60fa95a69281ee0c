"""The ICT store's rows are declared once: each dataclass is its table's columns, and the bytes it
writes are the ones the store always wrote (stores on disk stay readable both ways)."""

from __future__ import annotations

import sqlite3
from dataclasses import fields

import pytest
from _ict_records import T0, request_record

from bus389.consumers.ict.decisions import BlockRequest
from bus389.consumers.ict.store import (
    IctStore,
    LeadRow,
    RejectedEventRow,
    ReplyRow,
    RequestFields,
    RequestRow,
    open_store,
)
from bus389.consumers.ict.store._columns import Table
from bus389.consumers.ict.store.leads import LEADS
from bus389.consumers.ict.store.outbox import OUTBOX
from bus389.consumers.ict.store.rejected import REJECTED_EVENTS
from bus389.consumers.ict.store.replies import REPLIES
from bus389.consumers.ict.store.requests import REQUESTS
from bus389.consumers.ict.store.targets import TARGETS

_GENERATED = {"outbox": {"id"}, "rejected_events": {"id"}}
"""AUTOINCREMENT ids: OutboxRow reads its id; RejectedEventRow does not keep it."""


def _raw(store: IctStore, sql: str) -> sqlite3.Row:
    rows = store._read(sql)
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize(
    "table", [REQUESTS, TARGETS, OUTBOX, LEADS, REPLIES, REJECTED_EVENTS], ids=lambda t: t.name
)
def test_each_row_type_is_exactly_its_tables_columns(table: Table[object]) -> None:  # type: ignore[type-var]
    with open_store("sqlite:///:memory:") as store:
        schema = [r["name"] for r in store._read(f"PRAGMA table_info({table.name})")]
    fields_only = set(table.columns) - set(schema)
    assert not fields_only, f"{table.name}: fields without a column: {fields_only}"
    missing = set(schema) - set(table.columns) - {"id"}
    assert not missing, f"{table.name}: columns without a field: {missing}"
    assert ("id" in table.columns) == (table.name == "outbox")
    assert set(schema) - set(table.columns) <= _GENERATED.get(table.name, set())


def test_a_block_request_has_the_stored_requests_fields_and_keeps_them_all() -> None:
    assert [f.name for f in fields(BlockRequest)] == [f.name for f in fields(RequestFields)]
    request = BlockRequest.from_record(
        request_record(domains=["hàng-giả.vn"], urls=["https://x.vn/ả"], ip_addresses=["203.0.113.9"])
    )
    row = RequestRow.received(request, origin="t.inbox.ict/0/5", received_at=T0)
    for f in fields(RequestFields):
        assert getattr(row, f.name) == getattr(request, f.name), f.name
    assert (row.state, row.decided_at, row.decided_by, row.note) == ("pending", None, None, None)
    assert request.domains == ("hàng-giả.vn",)
    assert request.ip_addresses == ("203.0.113.9",)
    assert row.all_items == ["hàng-giả.vn", "https://x.vn/ả", "203.0.113.9"]


def test_a_request_is_stored_as_it_always_was_and_reads_back_equal() -> None:
    request = BlockRequest.from_record(request_record(event_id="E1", domains=["hàng-giả.vn"]))
    row = RequestRow.received(request, origin="o", received_at=T0)
    with open_store("sqlite:///:memory:") as store:
        with store.transaction():
            assert store.insert_request(row)
            assert not store.insert_request(row)
        raw = _raw(store, "SELECT violation_kinds, items, state FROM requests")
        assert raw["violation_kinds"] == '["COUNTERFEIT"]'
        assert raw["items"] == '{"domains": ["hàng-giả.vn"], "urls": [], "ip_addresses": []}'
        assert store.request(("e1", row.requester)) == row


def test_a_lead_keeps_vietnamese_as_utf8_and_violation_kinds_escaped() -> None:
    lead = LeadRow(
        event_id="l1",
        sender="market_surveillance",
        seller_name="Cửa hàng Ngọc",
        seller_tax_code=None,
        domains=("ngọc.vn",),
        accounts=({"platform": "ZALO", "account": "Ngọc", "url": None},),
        evidence_urls=("https://ngọc.vn/ả",),
        goods="Mỹ phẩm",
        violation_kinds=("COUNTERFEIT",),
        summary="",
        case_ref=None,
        sensitivity="AMBER",
        urgency="ROUTINE",
        rule="suspect_seller.ict",
        published_at=T0,
        received_at=T0,
        origin="o",
        state="new",
    )
    with open_store("sqlite:///:memory:") as store:
        with store.transaction():
            assert store.insert_lead(lead)
        raw = _raw(store, "SELECT domains, accounts, evidence_urls, violation_kinds FROM leads")
        assert tuple(raw) == (
            '["ngọc.vn"]',
            '[{"platform": "ZALO", "account": "Ngọc", "url": null}]',
            '["https://ngọc.vn/ả"]',
            '["COUNTERFEIT"]',
        )
        assert store.leads() == [lead]


def test_an_outbox_row_keeps_its_bytes_headers_and_record() -> None:
    request = RequestRow.received(
        BlockRequest.from_record(request_record(event_id="r1")), origin="o", received_at=T0
    )
    with open_store("sqlite:///:memory:") as store:
        with store.transaction():
            store.insert_request(request)
            kwargs = {
                "event_id": "x1",
                "request": request,
                "decision_kind": "blocked",
                "outcome": "BLOCKED",
                "needs_seq": 3,
                "created_at": T0,
                "key": b"r1",
                "value": b"\x00\x00\x00\x00\x01\xff",
                "headers": [("bus389_rule", "ả".encode()), ("x", b"")],
                "record": {"z": "Đã chặn", "a": 1},
            }
            assert store.insert_outbox(**kwargs)  # type: ignore[arg-type]
            assert not store.insert_outbox(**kwargs)  # type: ignore[arg-type]
        raw = _raw(store, "SELECT key, value, headers, record, sent_at FROM outbox")
        assert tuple(raw) == (
            b"r1",
            b"\x00\x00\x00\x00\x01\xff",
            '[["bus389_rule", "\\u1ea3"], ["x", ""]]',
            '{"z": "Đã chặn", "a": 1}',
            None,
        )
        [row] = store.outbox()
        assert (row.id, row.requester, row.request_published_at) == (1, "police", request.published_at)
        assert row.headers == [("bus389_rule", "ả".encode()), ("x", b"")]
        assert row.record == {"z": "Đã chặn", "a": 1}


def test_a_reply_record_is_kept_with_sorted_keys() -> None:
    reply = ReplyRow(
        "r1", "case_outcome", "police", "l1", None, "reply.original_sender", T0, T0, "o", {"z": "Kết", "a": 1}
    )
    with open_store("sqlite:///:memory:") as store:
        with store.transaction():
            assert store.insert_reply(reply)
        assert _raw(store, "SELECT record FROM replies")["record"] == '{"a": 1, "z": "Kết"}'
        assert store.replies() == [reply]


def test_a_column_the_row_type_does_not_have_is_refused() -> None:
    with pytest.raises(KeyError, match="no column note"):
        REJECTED_EVENTS.insert({"topic": "t", "note": "x"})
    row = RejectedEventRow("t", 0, 1, None, None, "r", "d", T0)
    sql, params = REJECTED_EVENTS.insert(REJECTED_EVENTS.values(row))
    assert sql.startswith('INSERT OR IGNORE INTO rejected_events ("topic", "partition", "offset"')
    assert params == ("t", 0, 1, None, None, "r", "d", T0)
