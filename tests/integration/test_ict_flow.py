"""The ICT flow on the real broker: a domain_block_request in the ict inbox → the store → the operator's
decision (CLI) → the RPZ file → one domain_block_result in the ict outbox, exactly once across restarts
and a crash between the Kafka commit and the store update; duplicates, poison records, the allowlist,
expiry, a suspect_seller kept as a lead (never blocked), and the real ``bus389 serve ict`` under SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _wait import wait_for as shared_wait_for
from click.testing import CliRunner
from kafka.structs import TopicPartition

from bus389 import metrics
from bus389.agencies import Agency
from bus389.cli.main import cli
from bus389.codec import decode_value, encode_event
from bus389.consumers.ict.blocklist import blocklist_files
from bus389.consumers.ict.service import run_ict_service
from bus389.consumers.ict.store import RequestState, open_store, sqlite_path
from bus389.kafka import make_consumer, make_producer
from bus389.runtime.stop import StopFlag
from bus389.settings import IctSettings, Settings, StoreSettings

pytestmark = pytest.mark.integration

BUS389 = str(Path(sys.executable).with_name("bus389"))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def request_record(
    *,
    source: str = "market_surveillance",
    domains: list[str] | None = None,
    ip_addresses: list[str] | None = None,
    action: str = "BLOCK",
    expires_at: int | None = None,
    case_ref: str | None = None,
) -> dict[str, Any]:
    now = _now_ms()
    return {
        "meta": {
            "event_id": str(uuid.uuid4()),
            "event_type": "domain_block_request",
            "source": source,
            "occurred_at": _at(now - 60_000),
            "published_at": _at(now),
            "case_ref": case_ref,
            "in_reply_to": None,
            "sensitivity": "AMBER",
            "urgency": "PRIORITY",
        },
        "domains": ["hang-gia.example.vn"] if domains is None else domains,
        "urls": [],
        "ip_addresses": ip_addresses or [],
        "action": action,
        "reason": "Website bán mỹ phẩm giả mạo nhãn hiệu",
        "legal_basis": "Công văn 45/QLTT-NV",
        "violation_kinds": ["COUNTERFEIT"],
        "expires_at": _at(expires_at) if expires_at is not None else None,
    }


def put_in_inbox(settings: Settings, *items: dict[str, Any] | tuple[bytes, bytes]) -> None:
    """Write straight into the ict inbox (as the router would): records via the codec, or raw bytes."""
    producer = make_producer(settings)
    try:
        for item in items:
            if isinstance(item, tuple):
                key, value = item
                producer.send(settings.topics.inbox("ict"), key=key, value=value)
            else:
                encoded = encode_event(item)
                producer.send(
                    settings.topics.inbox("ict"),
                    key=encoded.key,
                    value=encoded.value,
                    headers=encoded.headers,
                )
        producer.flush(timeout=30)
    finally:
        producer.close()


def read_results(
    settings: Settings, *, settle_s: float = 2.0, timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every committed result in the ict outbox, read until ``settle_s`` passes without a new one."""
    topic = settings.topics.outbox("ict")
    consumer = make_consumer(settings, group_id=None)
    out: list[dict[str, Any]] = []
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < settle_s:
            batch = consumer.poll(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    decoded = decode_value(record.value)
                    headers = {k: v for k, v in record.headers}
                    out.append({**decoded.record, "_key": record.key, "_ce_id": headers["ce_id"].decode()})
                    quiet_since = time.monotonic()
    finally:
        consumer.close()
    return out


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Wait for ``check`` (the shared :func:`_wait.wait_for`); fails the test naming ``what``."""
    shared_wait_for(check, timeout_s, what)


class ServiceThread:
    """``run_ict_service`` in a thread, stopped with its StopFlag (what SIGTERM sets), or ending by itself
    after ``max_idle_polls`` empty polls in a row (start-up done, nothing left to read or publish)."""

    def __init__(self, settings: Settings, *, max_idle_polls: int | None = None) -> None:
        self.settings = settings
        self.max_idle_polls = max_idle_polls
        self.stop_flag = StopFlag()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            run_ict_service(
                self.settings, stop=self.stop_flag, poll_timeout_ms=200, max_idle_polls=self.max_idle_polls
            )
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> ServiceThread:
        self.thread.start()
        return self

    def idle_and_stopped(self) -> bool:
        """Has the service ended by itself after its idle polls (``max_idle_polls``)?"""
        return not self.thread.is_alive()

    def __exit__(self, *_: object) -> None:
        self.stop_flag.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the service did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def ict_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(
        store=StoreSettings(ict_url=f"sqlite:///{tmp_path / 'ict.sqlite3'}"),
        ict=IctSettings(
            output_dir=tmp_path / "blocklist", rpz_zone="rpz.test", providers=("Viettel", "VNPT")
        ),
    )


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        "BUS389_STORE__ICT_URL": settings.store.ict_url,
        "BUS389_ICT__OUTPUT_DIR": str(settings.ict.output_dir),
        "BUS389_ICT__RPZ_ZONE": settings.ict.rpz_zone,
        # The operator's commands and the service share the ICT settings (the result is built by
        # whichever process decides).
        "BUS389_ICT__PROVIDERS": json.dumps(list(settings.ict.providers)),
    }


def operator(settings: Settings, *args: str) -> str:
    result = CliRunner().invoke(cli, ["ict", *args], env=cli_env(settings), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def request_state(settings: Settings, request_id: str) -> str | None:
    with open_store(settings.store.ict_url) as store:
        [row] = store.requests_with_id(request_id) or [None]
        return row.state if row else None


def unsent(settings: Settings) -> int:
    with open_store(settings.store.ict_url) as store:
        return len(store.unsent())


def rpz_text(settings: Settings) -> str:
    path = blocklist_files(Path(settings.ict.output_dir), settings.ict.rpz_zone).rpz
    return path.read_text(encoding="utf-8") if path.exists() else ""


def decisions_total(decision: str) -> float:
    value = metrics.REGISTRY.get_sample_value("bus389_ict_decisions_total", {"decision": decision})
    return value or 0.0


@pytest.fixture
def running(ict_settings: Settings) -> Iterator[ServiceThread]:
    with ServiceThread(ict_settings) as service:
        yield service


def test_a_request_is_approved_blocked_and_answered_exactly_once(ict_settings: Settings) -> None:
    settings = ict_settings
    record = request_record(
        domains=["hang-gia.example.vn", "shop.shopee.vn"],
        ip_addresses=["45.77.10.20"],
        case_ref="QLTT-2021-88",
    )
    request_id = record["meta"]["event_id"]
    blocked_before = decisions_total("partial")
    put_in_inbox(settings, record, record)  # the same event twice (a producer retry, a replay)

    with ServiceThread(settings):
        wait_for(
            "the request to be stored", lambda: request_state(settings, request_id) == RequestState.PENDING
        )
        pending = operator(settings, "pending")
        assert request_id in pending
        assert "refused shop.shopee.vn: under shopee.vn" in pending

        out = operator(settings, "approve", request_id[:8], "--note", "QĐ 12/QĐ-STTTT")
        assert "PARTIAL" in out
        wait_for("the RPZ line", lambda: "hang-gia.example.vn CNAME ." in rpz_text(settings))
        wait_for("the result to be sent", lambda: unsent(settings) == 0)

    rpz = rpz_text(settings)
    assert (
        f"; event {request_id} from market_surveillance, Công văn 45/QLTT-NV\nhang-gia.example.vn CNAME .\n"
        in rpz
    )
    assert "*.hang-gia.example.vn CNAME ." in rpz
    assert "32.20.10.77.45.rpz-ip CNAME ." in rpz
    assert "shopee" not in rpz

    [result] = read_results(settings)
    assert result["meta"]["in_reply_to"] == request_id
    assert result["meta"]["source"] == "ict"
    assert result["_key"] == b"QLTT-2021-88"
    assert result["requester"] == "market_surveillance"
    assert result["outcome"] == "PARTIAL"
    assert result["blocked"] == ["hang-gia.example.vn", "45.77.10.20"]
    assert result["not_blocked"] == ["shop.shopee.vn"]
    assert result["providers_notified"] == ["Viettel", "VNPT"]
    assert "QĐ 12/QĐ-STTTT" in result["note"]
    assert decisions_total("partial") == blocked_before + 1

    with open_store(settings.store.ict_url) as store:
        assert len(store.requests()) == 1  # the duplicate was absorbed

    # A restart publishes nothing again: it starts, reconciles, and goes idle (three empty polls) and ends.
    with ServiceThread(settings, max_idle_polls=3) as restarted:
        wait_for("the restarted service to go idle and stop by itself", restarted.idle_and_stopped)
    assert [r["_ce_id"] for r in read_results(settings)] == [result["_ce_id"]]


def test_a_crash_after_the_kafka_commit_does_not_publish_twice(ict_settings: Settings) -> None:
    settings = ict_settings
    record = request_record(domains=["gov.vn"])  # rejected at once: a result without the operator
    put_in_inbox(settings, record)
    with ServiceThread(settings):
        wait_for(
            "the result to be sent",
            lambda: request_state(settings, record["meta"]["event_id"]) is not None and unsent(settings) == 0,
        )
    [result] = read_results(settings)
    assert result["outcome"] == "REJECTED"
    assert "on the never-block list" in result["note"]

    # The crash: Kafka committed the result, the store never heard (sent_at still empty).
    db = sqlite3.connect(sqlite_path(settings.store.ict_url))
    with db:
        db.execute("UPDATE outbox SET sent_at = NULL, sent_position = NULL")
    db.close()
    assert unsent(settings) == 1

    with ServiceThread(settings, max_idle_polls=3) as restarted:
        wait_for("the restarted service to go idle and stop by itself", restarted.idle_and_stopped)
    with open_store(settings.store.ict_url) as store:
        assert store.unsent() == []
        [row] = store.outbox()
        assert row.sent_position is not None and row.sent_position.startswith(
            f"{settings.topic_prefix}.outbox.ict/"
        )
    assert [r["_ce_id"] for r in read_results(settings)] == [result["_ce_id"]]


def test_poison_and_unexpected_events_are_recorded_and_skipped(ict_settings: Settings) -> None:
    settings = ict_settings
    wrong_type = {
        "meta": {**request_record()["meta"], "event_type": "law_gap_proposal"},
        "regulation": "Nghị định 52/2013/NĐ-CP",
        "article": None,
        "problem": "x",
        "proposal": "y",
    }
    good = request_record(domains=["ok.example.vn"])
    put_in_inbox(
        settings, (b"k", b'{"not": "avro"}'), (b"k", b"\x00\x00\x00\x7f\xffgarbage"), wrong_type, good
    )
    with ServiceThread(settings):
        wait_for(
            "the good request after the poison",
            lambda: request_state(settings, good["meta"]["event_id"]) is not None,
        )
        with open_store(settings.store.ict_url) as store:
            wait_for("three poison records", lambda: len(store.rejected_events()) == 3)
            reasons = [row.reason for row in store.rejected_events()]
    assert sorted(reasons) == ["bad_magic_byte", "schema_mismatch", "unknown_schema_id"]
    assert request_state(settings, good["meta"]["event_id"]) == RequestState.PENDING


def test_a_suspect_seller_in_the_inbox_becomes_a_lead_not_a_rejected_event(ict_settings: Settings) -> None:
    settings = ict_settings.model_copy(
        update={"ict": ict_settings.ict.model_copy(update={"auto_approve_senders": (Agency.POLICE,)})}
    )
    now = _now_ms()
    lead = {
        "meta": {
            **request_record()["meta"],
            "event_type": "suspect_seller",
            "source": "police",
            "published_at": _at(now),
        },
        "seller": {
            "name": "Shop Mỹ phẩm Ngọc Trâm",
            "tax_code": None,
            "national_id": None,
            "phone": None,
            "address": None,
            "province": "Quảng Ngãi",
        },
        "accounts": [
            {"platform": "WEBSITE", "account": "myphamngoctram.vn", "url": "https://myphamngoctram.vn"}
        ],
        "goods": "Mỹ phẩm giả",
        "violation_kinds": ["COUNTERFEIT"],
        "evidence_urls": ["https://myphamngoctram.vn/kem"],
        "domains": ["myphamngoctram.vn"],
        "goods_imported": False,
        "border_area": False,
        "estimated_value_vnd": None,
        "summary": "Website bán mỹ phẩm giả",
    }
    lead_id = lead["meta"]["event_id"]
    after = request_record(source="police", domains=["sau-lead.example.vn"])
    put_in_inbox(settings, lead, lead, after)  # the lead twice (a replay), then an auto-approved request

    def leads() -> list[Any]:
        with open_store(settings.store.ict_url) as store:
            return store.leads()

    with ServiceThread(settings):
        wait_for(
            "the request after the lead", lambda: unsent(settings) == 0 and "sau-lead" in rpz_text(settings)
        )
        wait_for("the lead", lambda: len(leads()) == 1)
    [kept] = leads()
    assert (kept.event_id, kept.sender, kept.state) == (lead_id, "police", "new")
    assert kept.domains == ("myphamngoctram.vn",)
    assert kept.evidence_urls == ("https://myphamngoctram.vn/kem",)
    assert kept.accounts[0]["url"] == "https://myphamngoctram.vn"
    with open_store(settings.store.ict_url) as store:
        assert store.rejected_events() == []
        assert [r.event_id for r in store.requests()] == [after["meta"]["event_id"]]
    assert "myphamngoctram" not in rpz_text(settings)  # never blocked automatically
    assert [r["meta"]["in_reply_to"] for r in read_results(settings)] == [after["meta"]["event_id"]]
    assert "1 new lead(s) to inspect" in operator(settings, "pending")
    assert lead_id in operator(settings, "leads")


def test_expiry_lifts_the_block_and_answers_expired(ict_settings: Settings) -> None:
    settings = ict_settings
    record = request_record(domains=["tam-thoi.example.vn"], expires_at=_now_ms() + 20_000)
    request_id = record["meta"]["event_id"]
    put_in_inbox(settings, record)
    with ServiceThread(settings):
        wait_for("the request", lambda: request_state(settings, request_id) == RequestState.PENDING)
        operator(settings, "approve", request_id)
        wait_for("the RPZ line", lambda: "tam-thoi.example.vn CNAME ." in rpz_text(settings))
        serial_blocked = rpz_text(settings)
        wait_for("the expiry", lambda: request_state(settings, request_id) == RequestState.EXPIRED, 60)
        wait_for("the line to go", lambda: "tam-thoi.example.vn" not in rpz_text(settings))
        wait_for("both results sent", lambda: unsent(settings) == 0)
    assert serial_blocked != rpz_text(settings)
    # Each result is keyed by its own event id, so the two may sit in different partitions: order them
    # by when they were published, not by where they were read.
    results = sorted(read_results(settings), key=lambda r: r["meta"]["published_at"])
    assert [(r["outcome"], r["meta"]["in_reply_to"]) for r in results] == [
        ("BLOCKED", request_id),
        ("EXPIRED", request_id),
    ]
    assert results[1]["blocked"] == ["tam-thoi.example.vn"]
    assert "lapsed" in results[1]["note"]


def test_the_real_command_auto_approves_and_exits_0_on_sigterm(ict_settings: Settings) -> None:
    settings = ict_settings
    env = {
        **os.environ,
        **cli_env(settings),
        "BUS389_ICT__AUTO_APPROVE_SENDERS": '["police"]',
    }
    record = request_record(source="police", domains=["tu-dong.example.vn"])
    put_in_inbox(settings, record)
    process = subprocess.Popen(
        [BUS389, "serve", "ict", "--metrics-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("the auto-approved block", lambda: "tu-dong.example.vn CNAME ." in rpz_text(settings))
        wait_for(
            "the result",
            lambda: (
                request_state(settings, record["meta"]["event_id"]) == RequestState.APPROVED
                and unsent(settings) == 0
            ),
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "metrics on http://" in stderr
    [result] = read_results(settings)
    assert (result["outcome"], result["providers_notified"]) == ("BLOCKED", ["Viettel", "VNPT"])
    assert "approved automatically" in result["note"]
