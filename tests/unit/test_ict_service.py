"""The ICT service without a broker: the handler, poison records, the idle pass and the outbox drain
(against a fake transactional producer that keeps what each transaction committed)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kafka.errors
import pytest
from _ict_records import (
    DAY,
    MINUTE,
    T0,
    Clock,
    law_gap_proposal_record,
    request_record,
    suspect_seller_record,
)

from bus389.agencies import Agency
from bus389.codec import decode_value, encode_event
from bus389.consumers.ict import service as service_module
from bus389.consumers.ict.blocklist import blocklist_files
from bus389.consumers.ict.decisions import BlockRequest, Decider
from bus389.consumers.ict.service import IctService, group_id, transactional_id
from bus389.consumers.ict.store import RequestState, open_store
from bus389.errors import BadMagicByteError, BrokerError, BusError, SchemaMismatchError
from bus389.runtime.inbox_loop import InboxMessage
from bus389.settings import IctSettings, Settings, StoreSettings


@dataclass
class Sent:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    rpz_at_send: str


@dataclass
class Meta:
    topic: str
    partition: int
    offset: int


class Future:
    def __init__(self, meta: Meta) -> None:
        self.meta = meta

    def get(self, timeout: float | None = None) -> Meta:
        return self.meta


@dataclass
class FakeProducer:
    """Just enough of a transactional KafkaProducer; ``fail_commit`` makes the next commit raise it."""

    rpz: Path
    committed: list[Sent] = field(default_factory=list)
    open: list[Sent] | None = None
    aborted: int = 0
    initialised: bool = False
    closed: bool = False
    fail_commit: Exception | None = None
    fail_after_commit: Exception | None = None
    """Raised by the next commit after it took effect (a commit whose answer was lost)."""
    fail_abort: Exception | None = None
    inits: int = 0

    def init_transactions(self) -> None:
        self.initialised = True
        self.inits += 1
        self.open = None  # a new epoch aborts what an older one left open

    def ready(self) -> FakeProducer:
        """The service's producer factory: a producer whose transactions are initialised."""
        self.init_transactions()
        return self

    def begin_transaction(self) -> None:
        assert self.initialised and self.open is None
        self.open = []

    def send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Future:
        assert self.open is not None, "send outside a transaction"
        rpz = self.rpz.read_text() if self.rpz.exists() else ""
        self.open.append(Sent(topic, key, value, headers, rpz))
        return Future(Meta(topic, 0, len(self.committed) + len(self.open) - 1))

    def commit_transaction(self) -> None:
        if self.fail_commit is not None:
            error, self.fail_commit = self.fail_commit, None
            raise error
        assert self.open is not None
        self.committed.extend(self.open)
        self.open = None
        if self.fail_after_commit is not None:
            error, self.fail_after_commit = self.fail_after_commit, None
            raise error

    def abort_transaction(self) -> None:
        if self.fail_abort is not None:
            error, self.fail_abort = self.fail_abort, None
            raise error
        self.open = None
        self.aborted += 1

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        topic_prefix="t_unit",
        store=StoreSettings(ict_url=f"sqlite:///{tmp_path / 'ict.sqlite3'}"),
        ict=IctSettings(output_dir=tmp_path / "blocklist", providers=("Viettel",)),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def producer(settings: Settings) -> FakeProducer:
    return FakeProducer(rpz=blocklist_files(settings.ict.output_dir, settings.ict.rpz_zone).rpz)


@pytest.fixture
def service(settings: Settings, clock: Clock, producer: FakeProducer) -> Iterator[IctService]:
    store = open_store(settings.store.ict_url)
    svc = IctService(settings, store, clock=clock, producer_factory=producer.ready)
    with svc:
        yield svc
    store.close()


def message(record: dict[str, Any], offset: int = 0) -> InboxMessage:
    encoded = encode_event(record)
    decoded = decode_value(encoded.value)
    return InboxMessage(
        topic="t_unit.inbox.ict",
        partition=0,
        offset=offset,
        key=encoded.key,
        value=encoded.value,
        headers=dict(encoded.headers),
        timestamp_ms=T0,
        schema=decoded.schema,
        record=decoded.record,
    )


@dataclass
class RawRecord:
    topic: str
    partition: int
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]]
    key: bytes | None = None
    timestamp: int = T0


def published(producer: FakeProducer) -> list[dict[str, Any]]:
    return [decode_value(s.value).record for s in producer.committed]


def test_identity_is_under_the_agency_prefix(settings: Settings) -> None:
    assert group_id(settings) == "t_unit.ict.blocklist"
    assert transactional_id(settings) == "t_unit.ict.results"
    own = Settings(topic_prefix="t_unit", ict=IctSettings(group_id="t_unit.ict.other"))
    assert group_id(own) == "t_unit.ict.other"


def test_start_writes_the_empty_files_and_initialises_transactions(
    service: IctService, settings: Settings, producer: FakeProducer
) -> None:
    files = blocklist_files(settings.ict.output_dir, settings.ict.rpz_zone)
    assert producer.initialised
    assert all(p.exists() for p in files.all())
    assert " SOA " in files.rpz.read_text()
    assert producer.committed == []


def test_a_request_is_stored_and_answered_only_after_the_files_show_it(
    service: IctService, producer: FakeProducer, clock: Clock
) -> None:
    record = request_record(domains=["hang-gia.example.vn", "x.gov.vn"])
    request_id = record["meta"]["event_id"]
    service.handle(message(record))
    service.handle(message(record, offset=1))  # redelivered: nothing new
    assert [r.state for r in service.store.requests()] == [RequestState.PENDING]
    service.on_idle()
    assert producer.committed == []  # nothing decided yet

    clock.advance(MINUTE)
    service.decider.approve(request_id, actor="op")
    service.on_idle()
    [sent] = producer.committed
    assert sent.topic == "t_unit.outbox.ict"
    assert "hang-gia.example.vn CNAME ." in sent.rpz_at_send  # the file was written before the send
    [result] = published(producer)
    assert (result["outcome"], result["meta"]["in_reply_to"]) == ("PARTIAL", request_id)
    assert result["providers_notified"] == ["Viettel"]
    assert service.store.unsent() == []
    service.on_idle()
    assert len(producer.committed) == 1  # sent once


def test_screened_out_requests_are_answered_without_the_operator(
    service: IctService, producer: FakeProducer
) -> None:
    service.handle(message(request_record(domains=["gov.vn"], ip_addresses=["192.168.1.1"])))
    service.handle(message(request_record(action="UNKNOWN")))
    service.on_idle()
    assert [r["outcome"] for r in published(producer)] == ["REJECTED", "REJECTED"]


def test_meta_disagreeing_with_its_schema_is_poison(service: IctService) -> None:
    record = request_record()
    record["meta"]["event_type"] = "law_gap_proposal"
    msg = message(request_record())
    wrong = InboxMessage(**{**msg.__dict__, "record": record})
    with pytest.raises(SchemaMismatchError) as caught:
        service.handle(wrong)
    assert not caught.value.retriable  # the loop hands it to on_poison instead of retrying
    raw = RawRecord(
        "t_unit.inbox.ict", 2, 11, b"x", [("ce_id", b"abc"), ("ce_type", b"vn.bcd389.law_gap_proposal.v1")]
    )
    service.on_poison(raw, caught.value)
    service.on_poison(raw, caught.value)  # redelivered after a crash: recorded once
    [row] = service.store.rejected_events()
    assert (row.topic, row.partition, row.offset) == ("t_unit.inbox.ict", 2, 11)
    assert (row.event_id, row.event_type, row.reason) == (
        "abc",
        "vn.bcd389.law_gap_proposal.v1",
        "schema_mismatch",
    )
    assert "disagrees with the record's schema 'domain_block_request'" in row.detail
    assert service.store.requests() == []


def test_an_event_of_another_type_that_answers_nothing_is_poison(service: IctService) -> None:
    with pytest.raises(SchemaMismatchError, match="not a law_gap_proposal that answers none"):
        service.handle(message(law_gap_proposal_record()))
    assert (service.store.requests(), service.store.leads(), service.store.replies()) == ([], [], [])


def test_undecodable_records_are_recorded_with_the_codec_reason(service: IctService) -> None:
    raw = RawRecord("t_unit.inbox.ict", 0, 3, b'{"json": true}', [])
    error: BusError = BadMagicByteError("first byte is 0x7b")
    service.on_poison(raw, error)
    [row] = service.store.rejected_events()
    assert (row.reason, row.event_id) == ("bad_magic_byte", None)


def test_expired_blocks_are_lifted_and_answered_on_the_idle_pass(
    service: IctService, producer: FakeProducer, settings: Settings, clock: Clock
) -> None:
    record = request_record(domains=["hang-gia.example.vn"], expires_at=T0 + DAY)
    service.handle(message(record))
    service.decider.approve(record["meta"]["event_id"], actor="op")
    service.on_idle()
    rpz = blocklist_files(settings.ict.output_dir, settings.ict.rpz_zone).rpz
    assert "hang-gia.example.vn CNAME ." in rpz.read_text()
    clock.advance(DAY)
    service.on_idle()
    assert "hang-gia.example.vn" not in rpz.read_text()
    assert [r["outcome"] for r in published(producer)] == ["BLOCKED", "EXPIRED"]
    assert "hang-gia.example.vn" not in producer.committed[-1].rpz_at_send


def scan_outbox(producer: FakeProducer, asked: list[set[str]]) -> Any:
    """A ``scan_published`` that looks in what ``producer`` committed (the ict outbox topic)."""

    def scan(settings: Settings, wanted: Any, *, since_ms: int | None, timeout_s: float) -> dict[str, str]:
        wanted = set(wanted)
        asked.append(wanted)
        there = {
            dict(s.headers)["ce_id"].decode(): f"t_unit.outbox.ict/0/{i}"
            for i, s in enumerate(producer.committed)
        }
        return {event_id: there[event_id] for event_id in wanted if event_id in there}

    return scan


def test_a_failed_commit_is_retried_with_the_same_events(
    service: IctService, producer: FakeProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[set[str]] = []
    monkeypatch.setattr(service_module, "scan_published", scan_outbox(producer, asked))
    service.handle(message(request_record(domains=["gov.vn"])))
    producer.fail_commit = kafka.errors.KafkaTimeoutError("commit timed out")
    service.on_idle()  # retriable: logged, postponed
    assert producer.committed == [] and producer.aborted == 1
    [unsent] = service.store.unsent()
    service.on_idle()
    assert asked == [{unsent.event_id}], "the outbox was looked at before publishing again"
    [sent] = producer.committed
    assert dict(sent.headers)["ce_id"].decode() == unsent.event_id
    assert sent.value == unsent.value


def test_a_commit_that_went_through_but_timed_out_is_not_published_twice(
    service: IctService, producer: FakeProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[set[str]] = []
    monkeypatch.setattr(service_module, "scan_published", scan_outbox(producer, asked))
    service.handle(message(request_record(domains=["gov.vn"])))
    producer.fail_after_commit = kafka.errors.KafkaTimeoutError("the answer to EndTxn was lost")
    service.on_idle()
    assert len(producer.committed) == 1 and len(service.store.unsent()) == 1
    service.on_idle()  # reconciles: the result is in the topic already
    assert len(producer.committed) == 1
    assert service.store.unsent() == []
    [row] = service.store.outbox()
    assert row.sent_position == "t_unit.outbox.ict/0/0"


def test_a_broker_error_kafka_calls_final_rebuilds_the_producer_and_goes_on(
    service: IctService, producer: FakeProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # During a broker kill the transaction coordinator leaves the metadata: kafka-python raises
    # UnknownBrokerIdError (not retriable by its flag), and the abort fails the same way.
    monkeypatch.setattr(service_module, "scan_published", scan_outbox(producer, []))
    service.handle(message(request_record(domains=["gov.vn"])))
    producer.fail_commit = kafka.errors.UnknownBrokerIdError(3)
    producer.fail_abort = kafka.errors.UnknownBrokerIdError(3)
    inits = producer.inits
    service.on_idle()  # not raised: postponed
    assert producer.committed == [] and producer.closed
    service.on_idle()
    assert producer.inits == inits + 1, "a new producer (a new epoch) was initialised"
    assert [r["outcome"] for r in published(producer)] == ["REJECTED"]
    assert service.store.unsent() == []


def test_an_acl_refusing_the_results_stops_the_service_with_a_clear_message(
    service: IctService, producer: FakeProducer
) -> None:
    service.handle(message(request_record(domains=["gov.vn"])))
    producer.fail_commit = kafka.errors.TopicAuthorizationFailedError()
    with pytest.raises(BrokerError, match="ict: Kafka refused the results producer for good") as caught:
        service.on_idle()
    assert not caught.value.retriable


def test_a_fenced_producer_stops_the_service(service: IctService, producer: FakeProducer) -> None:
    service.handle(message(request_record(domains=["gov.vn"])))
    producer.fail_commit = kafka.errors.ProducerFencedError()
    with pytest.raises(BrokerError, match="another ICT service took over the results") as caught:
        service.on_idle()
    assert not caught.value.retriable
    assert len(service.store.unsent()) == 1


def test_start_up_marks_results_already_in_the_outbox_topic_as_sent(
    settings: Settings, clock: Clock, producer: FakeProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A result was committed to Kafka but the crash came before the store noted it.
    request = BlockRequest.from_record(request_record(domains=["gov.vn"]))
    with open_store(settings.store.ict_url) as store:
        Decider(store, settings, clock=clock).ingest(request, origin="o")
        [row] = store.unsent()
    asked: dict[str, Any] = {}

    def fake_scan(s: Settings, wanted: Any, *, since_ms: int | None, timeout_s: float) -> dict[str, str]:
        asked.update(wanted=set(wanted), since_ms=since_ms, timeout_s=timeout_s)
        return {row.event_id: "t_unit.outbox.ict/1/42"}

    monkeypatch.setattr(service_module, "scan_published", fake_scan)
    with (
        open_store(settings.store.ict_url) as store,
        IctService(settings, store, clock=clock, producer_factory=producer.ready),
    ):
        [marked] = store.outbox()
    # From a margin before the oldest unsent result, for as long as the settings allow.
    margin = service_module._SCAN_MARGIN_MS
    assert margin > 0 and row.created_at == T0
    assert asked == {
        "wanted": {row.event_id},
        "since_ms": row.created_at - margin,
        "timeout_s": settings.ict.outbox_scan_timeout_s,
    }
    assert marked.sent_position == "t_unit.outbox.ict/1/42"
    assert producer.committed == []  # not published a second time
    assert marked.request_id == request.event_id


def test_a_suspect_seller_becomes_a_lead_for_inspection_not_a_rejected_event(
    service: IctService, producer: FakeProducer, clock: Clock
) -> None:
    record = suspect_seller_record()
    msg = message(record, offset=7)
    msg = InboxMessage(**{**msg.__dict__, "headers": {**msg.headers, "bus389_rule": b"suspect_seller.ict"}})
    service.handle(msg)
    service.handle(msg)  # redelivered: kept once
    [lead] = service.store.leads()
    assert lead.event_id == record["meta"]["event_id"]
    assert (lead.sender, lead.state, lead.rule) == ("police", "new", "suspect_seller.ict")
    assert lead.seller_name == "Shop Mỹ phẩm Hàn Quốc Ngọc Trâm"
    assert lead.domains == ("myphamngoctram.vn",)
    assert lead.accounts[0] == {
        "platform": "FACEBOOK",
        "account": "myphamngoctram",
        "url": "https://facebook.com/myphamngoctram",
    }
    assert lead.evidence_urls == ("https://myphamngoctram.vn/san-pham/kem-trang-da",)
    assert lead.received_at == clock.now and lead.published_at == T0 - 10 * MINUTE
    assert lead.origin == "t_unit.inbox.ict/0/7"
    assert service.store.rejected_events() == []
    assert service.store.count_leads("new") == 1


def test_a_lead_is_never_blocked_even_from_an_auto_approved_sender(
    settings: Settings, clock: Clock, producer: FakeProducer
) -> None:
    ict = settings.ict.model_copy(update={"auto_approve_senders": (Agency.POLICE,)})
    auto = settings.model_copy(update={"ict": ict})
    store = open_store(auto.store.ict_url)
    try:
        with IctService(auto, store, clock=clock, producer_factory=producer.ready) as svc:
            svc.handle(message(suspect_seller_record(source="police", domains=["myphamngoctram.vn"])))
            # The same sender's request, with a legal basis, is approved at once: the setting is live.
            svc.handle(message(request_record(source="police", domains=["hang-gia.example.vn"])))
            svc.on_idle()
            rpz = blocklist_files(auto.ict.output_dir, auto.ict.rpz_zone).rpz.read_text()
        assert "hang-gia.example.vn CNAME ." in rpz
        assert "myphamngoctram" not in rpz
        assert [t.value for t, _ in store.active_blocks()] == ["hang-gia.example.vn"]
        assert [r["blocked"] for r in published(producer)] == [["hang-gia.example.vn"]]
        assert [lead.state for lead in store.leads()] == ["new"]
    finally:
        store.close()


def test_an_answer_to_an_ict_event_is_kept_as_a_reply(service: IctService) -> None:
    ours = "6f1c2d3e-0000-4000-8000-000000000389"
    record = law_gap_proposal_record(source="market_surveillance", in_reply_to=ours)
    service.handle(message(record))
    service.handle(message(record))
    [reply] = service.store.replies()
    assert (reply.event_type, reply.sender, reply.in_reply_to) == (
        "law_gap_proposal",
        "market_surveillance",
        ours,
    )
    assert reply.record["regulation"] == "Nghị định 52/2013/NĐ-CP"
    assert reply.record["meta"]["published_at"].startswith("2021-03-01T07:50:00")
    assert service.store.rejected_events() == []
