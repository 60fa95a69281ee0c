"""The ICT store: URLs, migrations, requests keyed by id and sender and idempotent, poison records,
transactions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from _ict_records import T0, Clock, request_record, suspect_seller_record

from bus389.consumers.ict.decisions import BlockRequest, Decider
from bus389.consumers.ict.leads import lead_row, reply_row
from bus389.consumers.ict.store import MIGRATIONS, RejectedEventRow, open_store, sqlite_path
from bus389.errors import ConfigError, InputError, StoreError
from bus389.settings import Settings


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///ict.sqlite3", "ict.sqlite3"),
        ("sqlite:////var/lib/bus389/ict.sqlite3", "/var/lib/bus389/ict.sqlite3"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize("url", ["postgresql://bus389@db/ict", "ict.sqlite3", "sqlite:///"])
def test_other_urls_are_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        sqlite_path(url)


def test_a_new_store_is_migrated_and_reopening_it_migrates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'ict.sqlite3'}"
    with open_store(url) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.counter("serial") == 0
    with open_store(url) as store:
        assert store.schema_version == len(MIGRATIONS)
    journal = sqlite3.connect(tmp_path / "sub" / "ict.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


def test_a_store_of_the_first_schema_gains_leads_and_replies_and_keeps_its_requests(tmp_path: Path) -> None:
    path = tmp_path / "ict.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO requests VALUES ('r1', 'police', 'BLOCK', 'x', 'CV 1', NULL, 'AMBER', 'ROUTINE', '[]', "
        "'{}', 0, 0, NULL, 0, 'o', 'pending', NULL, NULL, NULL)"
    )
    db.close()
    with open_store(f"sqlite:///{path}") as store:
        assert store.schema_version == len(MIGRATIONS) == 3
        assert [r.event_id for r in store.requests()] == ["r1"]
        record = suspect_seller_record()
        row = lead_row(record, rule="suspect_seller.ict", origin="t/0/1", received_at=T0)
        with store.transaction():
            assert store.insert_lead(row)
            assert not store.insert_lead(row)  # idempotent by event id
        assert store.leads() == [row]
        assert [lead.event_id for lead in store.find_leads(row.event_id[:6])] == [row.event_id]


def _schema_2_store(path: Path) -> None:
    """A store as bus389 left it at schema 2 (keyed by event id alone), with a row in every table."""
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:2]:
        for statement in script.split(";"):
            if statement.strip():
                db.execute(statement)
    db.execute("PRAGMA user_version = 2")
    db.executescript(
        """
        INSERT INTO requests VALUES ('r1', 'police', 'BLOCK', 'hàng giả', 'CV 1', 'VA-1', 'AMBER', 'ROUTINE',
            '["COUNTERFEIT"]', '{"domains": ["hang-gia.vn", "x.gov.vn"]}', 1, 2, NULL, 3, 'o/0/1', 'approved',
            4, 'op', 'QĐ 45');
        INSERT INTO targets VALUES ('r1', 0, 'domain', 'hang-gia.vn', 'blocked', 4, NULL);
        INSERT INTO refusals VALUES ('r1', 0, 'x.gov.vn', 'never-block');
        INSERT INTO decisions (request_id, kind, outcome, decided_at, actor, note)
            VALUES ('r1', 'blocked', 'BLOCKED', 4, 'op', 'QĐ 45');
        INSERT INTO outbox (event_id, request_id, decision_kind, outcome, requester, request_published_at,
            needs_seq, created_at, key, value, headers, record, sent_at, sent_position)
            VALUES ('res1', 'r1', 'blocked', 'BLOCKED', 'police', 2, 1, 4, X'6b', X'0001', '[]', '{}', 5,
                'p0@9');
        INSERT INTO leads VALUES ('l1', 'customs', 'Nguyễn Văn A', NULL, '["a.vn"]', '[]', '[]', 'mỹ phẩm',
            '[]', 'tóm tắt', NULL, 'AMBER', 'ROUTINE', 'rule', 1, 2, 'o/0/2', 'new', NULL, NULL, NULL);
        INSERT INTO replies
            VALUES ('p1', 'case_outcome', 'police', 'res1', NULL, 'rule', 1, 2, 'o/0/3', '{}');
        UPDATE kv SET value = '1' WHERE name = 'blocklist_seq';
        """
    )
    db.close()


def test_a_store_keyed_by_id_alone_is_migrated_to_id_and_sender_with_every_row_intact(tmp_path: Path) -> None:
    path = tmp_path / "ict.sqlite3"
    _schema_2_store(path)
    with open_store(f"sqlite:///{path}") as store:
        assert store.schema_version == len(MIGRATIONS) == 3
        [request] = store.requests()
        assert (request.key, request.state, request.note, request.decided_by) == (
            ("r1", "police"),
            "approved",
            "QĐ 45",
            "op",
        )
        assert request.reason.encode() == "hàng giả".encode()
        assert [(t.value, t.state, t.requester) for t in store.targets(request.key)] == [
            ("hang-gia.vn", "blocked", "police")
        ]
        assert store.refusals(request.key) == [("x.gov.vn", "never-block")]
        assert [(d["kind"], d["outcome"], d["requester"]) for d in store.decisions(request.key)] == [
            ("blocked", "BLOCKED", "police")
        ]
        [result] = store.outbox(request.key)
        assert (result.event_id, result.key, result.value, result.sent_position) == (
            "res1",
            b"k",
            b"\x00\x01",
            "p0@9",
        )
        assert [(b.value, r.event_id) for b, r in store.active_blocks()] == [("hang-gia.vn", "r1")]
        [lead] = store.leads()
        assert (lead.event_id, lead.sender, lead.seller_name) == ("l1", "customs", "Nguyễn Văn A")
        assert [(r.event_id, r.sender, r.in_reply_to) for r in store.replies()] == [("p1", "police", "res1")]
        assert store.counter("blocklist_seq") == 1
        with store.transaction():  # new decisions keep counting from the old ones
            assert store.insert_decision(request.key, "expired", "EXPIRED", 6, "expiry", None)
        assert [d["id"] for d in store.decisions(request.key)] == [1, 2]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    db.close()
    assert not [n for n in names if n.endswith("_v3")]
    assert {"requests_state", "targets_value", "outbox_unsent", "leads_state", "replies_received"} <= names


def test_the_same_id_from_two_senders_is_two_requests_and_a_replay_is_one() -> None:
    police = BlockRequest.from_record(request_record(domains=["hang-gia.example.vn"]))
    customs = BlockRequest.from_record(
        request_record(source="customs", event_id=police.event_id, domains=["khac.example.vn"])
    )
    with open_store("sqlite:///:memory:") as store:
        decider = Decider(store, Settings(), clock=Clock())
        assert not decider.ingest(police, origin="t.inbox.ict/0/1").duplicate
        assert not decider.ingest(customs, origin="t.inbox.ict/0/2").duplicate
        assert decider.ingest(police, origin="t.inbox.ict/0/1").duplicate
        assert decider.ingest(customs, origin="t.inbox.ict/0/2").duplicate
        assert [r.key for r in store.requests_with_id(police.event_id)] == [police.key, customs.key]
        assert [t.value for t in store.targets(police.key)] == ["hang-gia.example.vn"]  # not overwritten
        assert [t.value for t in store.targets(customs.key)] == ["khac.example.vn"]
        # An id alone no longer names one request: the operator says whose.
        with pytest.raises(InputError, match=r"sent by several agencies \(police, customs\): .*--from"):
            decider.approve(police.event_id, actor="op")
        row, outcome = decider.approve(police.event_id[:8], actor="op", requester="customs")
        assert (row.key, outcome) == (customs.key, "BLOCKED")
        stored = store.request(police.key)
        assert stored is not None and stored.state == "pending"
        [result] = store.outbox()
        assert (result.request_id, result.requester) == (police.event_id, "customs")
        assert result.record["meta"]["in_reply_to"] == police.event_id
        assert [b.value for b, _ in store.active_blocks()] == ["khac.example.vn"]
        decider.approve(police.event_id, actor="op", requester="police")
        assert len({r.event_id for r in store.outbox()}) == 2  # each request's result has its own id


def test_the_same_lead_or_reply_id_from_two_senders_is_kept_twice() -> None:
    first = suspect_seller_record()
    second = suspect_seller_record(source="customs", event_id=first["meta"]["event_id"])
    with open_store("sqlite:///:memory:") as store, store.transaction():
        rows = [lead_row(r, rule="suspect_seller.ict", origin="o", received_at=T0) for r in (first, second)]
        assert store.insert_lead(rows[0])
        assert store.insert_lead(rows[1])
        assert not store.insert_lead(rows[0])
        assert [(r.event_id, r.sender) for r in store.leads()] == [
            (rows[0].event_id, s) for s in ("police", "customs")
        ]
        assert store.lead(rows[0].event_id, "police") == rows[0]
        replies = [reply_row(r, rule="r", origin="o", received_at=T0) for r in (first, second)]
        assert store.insert_reply(replies[0])
        assert store.insert_reply(replies[1])
        assert not store.insert_reply(replies[1])
        assert len(store.replies()) == 2


def test_a_store_from_a_newer_bus389_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ict.sqlite3"
    open_store(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this bus389"):
        open_store(f"sqlite:///{path}")


def test_a_request_is_stored_once_however_often_it_arrives(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ict.sqlite3'}"
    record = request_record(domains=["hang-gia.example.vn", "x.gov.vn"])
    request = BlockRequest.from_record(record)
    with open_store(url) as store:
        decider = Decider(store, Settings(), clock=Clock())
        first = decider.ingest(request, origin="t.inbox.ict/0/5")
        again = decider.ingest(request, origin="t.inbox.ict/1/9")
    # A second process (a restarted service) sees it too.
    with open_store(url) as store:
        third = Decider(store, Settings(), clock=Clock()).ingest(request, origin="t.inbox.ict/0/5")
        assert [r.event_id for r in store.requests()] == [request.event_id]
        assert [t.value for t in store.targets(request.key)] == ["hang-gia.example.vn"]
        assert store.refusals(request.key) == [("x.gov.vn", "under gov.vn, which is on the never-block list")]
        stored = store.request(request.key)
    assert (first.duplicate, again.duplicate, third.duplicate) == (False, True, True)
    assert stored is not None
    assert stored.origin == "t.inbox.ict/0/5"
    assert stored.received_at == T0
    assert stored.items["domains"] == ["hang-gia.example.vn", "x.gov.vn"]
    assert stored.legal_basis == "Công văn 12/CAT-PC03"


def test_a_replayed_rejected_request_gets_no_second_result() -> None:
    request = BlockRequest.from_record(request_record(domains=["gov.vn"]))
    with open_store("sqlite:///:memory:") as store:
        decider = Decider(store, Settings(), clock=Clock())
        decider.ingest(request, origin="o")
        decider.ingest(request, origin="o")
        assert [row.outcome for row in store.outbox()] == ["REJECTED"]


def test_a_failed_transaction_leaves_nothing_behind() -> None:
    request = BlockRequest.from_record(request_record())
    with open_store("sqlite:///:memory:") as store:
        decider = Decider(store, Settings(), clock=Clock())
        original = store.insert_target

        def failing(*args: object, **kwargs: object) -> None:
            raise StoreError("disk full")

        store.insert_target = failing  # type: ignore[method-assign]
        with pytest.raises(StoreError):
            decider.ingest(request, origin="o")
        store.insert_target = original  # type: ignore[method-assign]
        assert store.requests() == []
        # The replay after the failure stores it (the offset was not committed, so it comes again).
        assert not decider.ingest(request, origin="o").duplicate
        assert len(store.requests()) == 1


def test_poison_records_are_kept_once_per_position() -> None:
    row = RejectedEventRow("t.inbox.ict", 0, 7, None, None, "bad_magic_byte", "first byte 0x7b", T0)
    with open_store("sqlite:///:memory:") as store:
        with store.transaction():
            assert store.record_rejected_event(row)
        with store.transaction():
            assert not store.record_rejected_event(row)
        assert store.rejected_events() == [row]


def test_writes_outside_a_transaction_are_a_bug() -> None:
    with open_store("sqlite:///:memory:") as store, pytest.raises(RuntimeError):
        store.set_value("serial", 1)


def test_operator_ids_resolve_by_prefix() -> None:
    ids = ["3f2a9c1e-0000-4000-8000-000000000001", "3f2a9c1e-0000-4000-8000-000000000002"]
    with open_store("sqlite:///:memory:") as store:
        decider = Decider(store, Settings(), clock=Clock())
        for event_id in ids:
            decider.ingest(BlockRequest.from_record(request_record(event_id=event_id)), origin="o")
        assert decider.resolve(ids[0]).event_id == ids[0]
        assert decider.resolve(ids[1].upper()).event_id == ids[1]
        with pytest.raises(InputError, match="several requests"):
            decider.resolve("3f2a9c1e")
        with pytest.raises(InputError, match="no request"):
            decider.resolve("ffff")
        with pytest.raises(InputError, match="at least the first 4"):
            decider.resolve("3f2")
        assert decider.resolve("3f2a9c1e-0000-4000-8000-000000000002").event_id == ids[1]
        # LIKE wildcards typed by an operator are literal characters.
        with pytest.raises(InputError, match="no request"):
            decider.resolve("3f2a%")
