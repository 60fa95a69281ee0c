"""The standing office's store and inbox handler: keyed by event id and sender, idempotent, migrated in place
from the schema keyed by id alone, Vietnamese kept byte for byte."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _so_records import (
    complaint,
    domain_block_request,
    domain_block_result,
    eid,
    seller,
    suspect_seller,
    tax_discrepancy,
    vn,
)
from _so_store_v1 import KEYS, MAILED, REJECTED, REQUEST_ID, RESULT_ID, ROWS, SELLER_NAME, write_v1_store

from bus389 import metrics
from bus389.consumers.standing_office.answers import Answers
from bus389.consumers.standing_office.service import StandingOfficeService, group_id
from bus389.consumers.standing_office.store import SCHEMA_VERSION, StandingOfficeStore, UnusableEventError
from bus389.errors import ConfigError, CorruptBodyError, StoreError
from bus389.runtime.inbox_loop import InboxMessage

NAME_NFD = unicodedata.normalize("NFD", "Nguyễn Thị Ánh Tuyết")
ADDRESS = "Số 12 đường Lê Lợi, phường Trần Hưng Đạo, TP Quảng Ngãi"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "so.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[StandingOfficeStore]:
    with StandingOfficeStore.open(f"sqlite:///{db}") as s:
        yield s


def _record() -> dict[str, Any]:
    return suspect_seller(
        "police",
        vn(2021, 3, 1),
        seller(NAME_NFD, tax_code="0312345678", phone="0912345678", address=ADDRESS),
        domains=["hangxachtay.vn"],
    )


def test_an_event_is_stored_once(store: StandingOfficeStore) -> None:
    record = _record()
    assert store.add_event(record, topic="t.inbox.market_surveillance", partition=1, offset=7, schema_id=1)
    assert not store.add_event(record, topic="t.inbox.market_surveillance", partition=2, offset=99)
    assert store.count_events() == 1
    stored = store.get(eid(record))
    assert stored is not None
    assert (stored.topic, stored.partition, stored.offset, stored.schema_id) == (
        "t.inbox.market_surveillance",
        1,
        7,
        1,
    )
    assert (
        len(store.keys_of([(eid(record), "police")])[(eid(record), "police")]) == 4
    )  # seller, tax, phone, domain


def test_meta_columns_and_the_full_record(store: StandingOfficeStore) -> None:
    record = _record()
    record["meta"]["case_ref"] = "QLTT-2021-001"
    store.add_event(record)
    stored = store.get(eid(record))
    assert stored is not None
    assert (stored.event_type, stored.source, stored.case_ref, stored.sensitivity) == (
        "suspect_seller",
        "police",
        "QLTT-2021-001",
        "AMBER",
    )
    assert stored.occurred_at == vn(2021, 3, 1)
    data = stored.record
    assert data["meta"]["occurred_at"] == "2021-03-01T02:00:00.000Z"
    assert data["meta"]["event_id"] == eid(record)
    assert data["seller"]["address"] == ADDRESS


def test_vietnamese_is_stored_byte_for_byte(store: StandingOfficeStore, db: Path) -> None:
    record = _record()
    store.add_event(record)
    stored = store.get(eid(record))
    assert stored is not None
    assert stored.record["seller"]["name"] == NAME_NFD  # not normalised, not escaped
    with sqlite3.connect(db) as raw:
        (blob,) = raw.execute("SELECT CAST(record AS BLOB) FROM so_events").fetchone()
    assert NAME_NFD.encode("utf-8") in blob
    assert ADDRESS.encode("utf-8") in blob
    assert b"\\u" not in blob


def test_the_store_survives_reopening(db: Path) -> None:
    record = _record()
    with StandingOfficeStore.open(f"sqlite:///{db}") as first:
        first.add_event(record)
    with StandingOfficeStore.open(f"sqlite:///{db}", create=False) as again:
        assert not again.add_event(record)
        assert again.count_events() == 1


def test_the_same_id_from_two_senders_is_two_events_neither_overwriting_the_other(
    store: StandingOfficeStore,
) -> None:
    first = _record()
    second = suspect_seller("tax", vn(2021, 3, 2), seller("Người khác", tax_code="4300812345"))
    second["meta"]["event_id"] = first["meta"]["event_id"]  # the id the police used, taken by tax
    assert store.add_event(first, topic="t.inbox.market_surveillance", partition=0, offset=1)
    assert store.add_event(second, topic="t.inbox.market_surveillance", partition=0, offset=2)
    # A duplicate from the same sender is stored once, whichever sender repeats itself.
    assert not store.add_event(first)
    assert not store.add_event(second)
    assert store.count_events() == 2
    event_id = eid(first)
    police, tax = store.with_id(event_id)
    assert (police.source, police.sender_rank, police.owns_id) == ("police", 0, True)
    assert (tax.source, tax.sender_rank, tax.owns_id) == ("tax", 1, False)
    assert police.record["seller"]["name"] == NAME_NFD  # the first sender's event, untouched
    assert tax.record["seller"]["name"] == "Người khác"
    assert (police.offset, tax.offset) == (1, 2)
    # A lookup by id alone finds the id's first sender's event, as the router gives the id to it.
    owner = store.get(event_id)
    assert owner is not None and owner.source == "police"
    other = store.get(event_id, "tax")
    assert other is not None and other.sender_rank == 1
    keys = store.keys_of([police.key, tax.key])
    assert {k.kind for k in keys[police.key]} == {"seller", "tax_code", "phone", "domain"}
    assert {(k.kind, k.value) for k in keys[tax.key]} >= {("tax_code", "4300812345")}
    assert not {(k.kind, k.value) for k in keys[tax.key]} & {("domain", "hangxachtay.vn")}
    found = store.events_with_keys([("domain", "hangxachtay.vn")])
    assert [(e.source, k.value) for e, k in found] == [("police", "hangxachtay.vn")]


def test_an_answer_to_a_shared_id_answers_the_first_senders_event(store: StandingOfficeStore) -> None:
    request = domain_block_request("police", vn(2021, 3, 1), ["hangxachtay.vn"])
    squatter = domain_block_request("customs", vn(2021, 3, 1, 10), ["khac.vn"])
    squatter["meta"]["event_id"] = request["meta"]["event_id"]
    result = domain_block_result(request, "BLOCKED", vn(2021, 3, 2))
    for record in (request, squatter, result):
        assert store.add_event(record)
    police, customs = store.with_id(eid(request))
    answers = Answers(store.replies([police.event_id], []), vn(2021, 7, 1))
    assert [e.event_id for e in answers.block_results(police)] == [eid(result)]
    assert answers.block_results(customs) == []
    assert not answers.is_answered(customs)


# --- migrating a store of the first schema -----------------------------------------------------------


def test_a_store_keyed_by_id_alone_is_migrated_in_place_with_its_rows_intact(db: Path) -> None:
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as old:
        write_v1_store(old.execute)
    with StandingOfficeStore.open(f"sqlite:///{db}", create=False) as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION) == "2"
        assert store.count_events() == len(ROWS)
        request = store.get(REQUEST_ID)
        assert request is not None
        assert (request.source, request.sender_rank, request.offset, request.schema_id) == (
            "police",
            0,
            41,
            3,
        )
        assert request.headers == {"bus389_rule": "dbr"}
        assert request.record["seller"]["name"].encode() == SELLER_NAME.encode()  # byte for byte
        result = store.get(RESULT_ID, "ict")
        assert result is not None and result.in_reply_to == REQUEST_ID
        assert [(k.kind, k.value, k.label) for k in store.keys_of([request.key])[request.key]] == [
            (kind, value, label) for _, kind, value, label in KEYS
        ]
        assert [(r.offset, r.reason) for r in store.rejected()] == [(REJECTED[2], REJECTED[4])]
        assert store.get_meta(MAILED[0]) == MAILED[1]
        assert [e.event_id for e in store.replies([REQUEST_ID], [])] == [RESULT_ID]
        # The migrated store keys by sender: another sender's event under the old id is a second one.
        squatter = domain_block_request(
            "customs",
            vn(2021, 3, 5),
            ["khac.vn"],
        )
        squatter["meta"]["event_id"] = REQUEST_ID
        assert store.add_event(squatter)
        assert [(e.source, e.sender_rank) for e in store.with_id(REQUEST_ID)] == [
            ("police", 0),
            ("customs", 1),
        ]
    with sqlite3.connect(db) as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert not {t for t in tables if t.endswith("_v2")}
    assert {"so_events_occurred", "so_events_reply", "so_events_case", "so_event_keys_value"} <= indexes
    # Opening it again migrates nothing more.
    with StandingOfficeStore.open(f"sqlite:///{db}") as again:
        assert again.count_events() == len(ROWS) + 1


def test_a_store_from_a_newer_bus389_is_refused(db: Path) -> None:
    with StandingOfficeStore.open(f"sqlite:///{db}") as store:
        store.set_meta("schema_version", "99")
    with pytest.raises(StoreError, match="schema version 99, newer than this bus389 knows"):
        StandingOfficeStore.open(f"sqlite:///{db}")


def test_rejected_records_are_kept_once(store: StandingOfficeStore) -> None:
    assert store.add_rejected(topic="t", partition=0, offset=3, reason="bad_magic_byte", detail="0x01")
    assert not store.add_rejected(topic="t", partition=0, offset=3, reason="bad_magic_byte", detail="0x01")
    (rejected,) = store.rejected()
    assert (rejected.offset, rejected.reason, rejected.detail) == (3, "bad_magic_byte", "0x01")


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"meta": None},
        {"meta": {"event_type": "complaint"}},
        {"meta": {"event_id": "x", "event_type": "complaint", "source": "tax", "occurred_at": "yesterday"}},
    ],
)
def test_a_record_without_usable_meta_is_refused(store: StandingOfficeStore, record: dict[str, Any]) -> None:
    with pytest.raises(UnusableEventError):
        store.add_event(record)
    assert store.count_events() == 0


def test_time_window_queries(store: StandingOfficeStore) -> None:
    inside = tax_discrepancy(vn(2021, 6, 30, 23, 59), seller("A"), undeclared=1, owed=1)
    outside = tax_discrepancy(vn(2021, 7, 1, 0, 0), seller("B"), undeclared=1, owed=1)
    store.add_event(inside)
    store.add_event(outside)
    found = store.events_between(vn(2021, 1, 1, 0), vn(2021, 7, 1, 0))
    assert [e.event_id for e in found] == [eid(inside)]


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://relative.db", "sqlite:///", "file.sqlite3"])
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        StandingOfficeStore.open(url)


def test_a_missing_store_is_not_created_for_reading(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="serve standing-office"):
        StandingOfficeStore.open(f"sqlite:///{tmp_path / 'none.sqlite3'}", create=False)
    assert not (tmp_path / "none.sqlite3").exists()


# --- the inbox handler --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Schema:
    schema_id: int
    event_type: str


@dataclass
class _Raw:
    topic: str
    partition: int
    offset: int
    headers: list[tuple[str, bytes]]


def _message(record: dict[str, Any], offset: int, redacted: str = "") -> InboxMessage:
    event_type = record["meta"]["event_type"]
    return InboxMessage(
        topic="p.inbox.market_surveillance",
        partition=0,
        offset=offset,
        key=None,
        value=b"",
        headers={
            "bus389_redacted": redacted.encode(),
            "bus389_rule": b"so-all",
            "ce_id": eid(record).encode(),
        },
        timestamp_ms=0,
        schema=_Schema(5 if event_type == "complaint" else 1, event_type),
        record=record,
    )


def _stored_count(event_type: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "bus389_standing_office_events_stored_total", {"event_type": event_type}
    )
    return value or 0.0


def test_handler_stores_with_redaction_header_and_counts_once(store: StandingOfficeStore) -> None:
    service = StandingOfficeService(store)
    record = complaint("industry_trade", vn(2021, 4, 1), seller("Hộ kinh doanh Bình An"))
    before = _stored_count("complaint")
    service.handle(_message(record, 10, redacted="complainant.national_id,complainant.phone"))
    service.handle(_message(record, 11, redacted="complainant.national_id,complainant.phone"))  # replay
    assert store.count_events() == 1
    assert _stored_count("complaint") == before + 1
    stored = store.get(eid(record))
    assert stored is not None
    assert stored.redacted == ("complainant.national_id", "complainant.phone")
    assert stored.headers["bus389_rule"] == "so-all"
    assert (stored.offset, stored.schema_id) == (10, 5)


def test_handler_refuses_a_record_whose_meta_names_another_type(store: StandingOfficeStore) -> None:
    record = _record()
    message = _message(record, 1)
    wrong = InboxMessage(**{**message.__dict__, "schema": _Schema(3, "tax_discrepancy")})
    with pytest.raises(UnusableEventError, match="disagrees"):
        StandingOfficeService(store).handle(wrong)
    assert store.count_events() == 0
    assert not UnusableEventError.retriable  # so the shared loop hands it to on_poison, never retries


def test_poison_records_go_to_the_rejected_table(store: StandingOfficeStore) -> None:
    service = StandingOfficeService(store)
    raw = _Raw("p.inbox.market_surveillance", 2, 41, [("ce_id", b"abc")])
    service.on_poison(raw, CorruptBodyError("body does not decode"))
    service.on_poison(raw, CorruptBodyError("body does not decode"))  # the same record again after a restart
    (rejected,) = store.rejected()
    assert (rejected.partition, rejected.offset, rejected.reason, rejected.event_id) == (
        2,
        41,
        "corrupt_body",
        "abc",
    )
    assert rejected.detail == "body does not decode"


def test_group_id_is_under_the_agency_prefix() -> None:
    from bus389.settings import ReportSettings, Settings

    assert group_id(Settings(topic_prefix="t_1234")) == "t_1234.market_surveillance.store"
    assert group_id(Settings()) == "bus389.market_surveillance.store"
    custom = Settings(topic_prefix="t_9", report=ReportSettings(group_id="t_9.market_surveillance.x1"))
    assert group_id(custom) == "t_9.market_surveillance.x1"
