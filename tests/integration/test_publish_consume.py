"""Publish → consume on a real broker: every example round-trips, bad input leaves nothing, chunks commit
one by one, the real ``bus389`` command works, and a third-party Avro reader decodes the bytes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import pytest
from kafka.structs import TopicPartition

from bus389.agencies import Agency
from bus389.consumers.inbox_reader import ConsumedEvent, TopicReader, to_json_line
from bus389.errors import InvalidRecordsError, PublishError
from bus389.events import event_from_avro
from bus389.kafka import make_consumer
from bus389.producers.publisher import publish_file
from bus389.producers.readers import read_records
from bus389.schemas.catalog import load_catalog
from bus389.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

pytestmark = pytest.mark.integration

EXAMPLES = REPO_ROOT / "examples"
BUS389 = str(Path(sys.executable).with_name("bus389"))

PUBLISHER_OF = {
    "suspect_seller": Agency.POLICE,
    "domain_block_request": Agency.MARKET_SURVEILLANCE,
    "tax_discrepancy": Agency.TAX,
    "domain_block_result": Agency.ICT,
    "complaint": Agency.INDUSTRY_TRADE,
    "case_referral": Agency.MARKET_SURVEILLANCE,
    "case_outcome": Agency.MARKET_SURVEILLANCE,
    "periodic_report": Agency.CUSTOMS,
    "law_gap_proposal": Agency.ICT,
}


def _read_all(settings: Settings, topic: str, expected: int | None = None) -> list[ConsumedEvent]:
    """Every committed event of ``topic`` (no group): stops after ``expected`` or 3 idle seconds."""
    items = []
    with TopicReader(settings, topic, from_beginning=True) as reader:
        for item in reader.read(max_events=expected, idle_timeout_s=3.0):
            assert isinstance(item, ConsumedEvent), item
            items.append(item)
    return items


def _end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = make_consumer(settings, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _as_json_text(text: str) -> bytes:
    """How ``text`` appears inside a printed JSON line: UTF-8 as is, only quotes and controls escaped."""
    return json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8")


def test_every_example_round_trips(settings: Settings) -> None:
    sources = [(t, EXAMPLES / f"{t}.jsonl") for t in PUBLISHER_OF] + [
        ("suspect_seller", EXAMPLES / "suspect_seller.csv")
    ]
    published: dict[str, Any] = {}
    by_topic: dict[str, int] = {}
    catalog = load_catalog()
    for event_type, path in sources:
        agency = PUBLISHER_OF[event_type] if path.suffix == ".jsonl" else Agency.TAX
        records = read_records(path, schema=catalog.latest(event_type).schema_json)
        report = publish_file(settings, event_type, agency, records, source=str(path))
        assert report.count == len(records) == len(report.events)
        assert report.summary() == f"published {len(records)} events of {event_type} to {report.topic}"
        for outgoing, record in zip(report.events, records, strict=True):
            published[outgoing.event_id] = (outgoing.event, record.data)
        by_topic[report.topic] = by_topic.get(report.topic, 0) + len(records)

    seen = 0
    for topic, count in by_topic.items():
        consumed = _read_all(settings, topic, expected=count)
        assert len(consumed) == count, topic
        for item in consumed:
            event, raw = published[item.record["meta"]["event_id"]]
            # The decoded record is the published event, field for field.
            assert event_from_avro(item.record) == event
            assert item.schema_id == catalog.latest(event.event_type).schema_id
            assert item.key == (event.meta.case_ref or event.event_id)
            assert item.headers["ce_id"] == event.event_id
            assert item.headers["ce_source"] == f"/bus389/{event.source.value}"
            # Vietnamese text comes out byte for byte, also through the printed JSON line.
            line = to_json_line(item).encode("utf-8")
            printed = json.loads(line)["event"]
            for text in ("summary", "goods", "title", "body", "problem", "proposal", "reason", "note"):
                if isinstance(raw.get(text), str):
                    assert printed[text].encode("utf-8") == raw[text].encode("utf-8")
                    assert _as_json_text(raw[text]) in line
            for text in _strings(raw.get("seller", {})):
                if not text.isascii():
                    assert _as_json_text(text) in line
            seen += 1
    assert seen == len(published) == sum(by_topic.values())


def test_bad_input_publishes_nothing(settings: Settings, tmp_path: Path) -> None:
    lines = (EXAMPLES / "tax_discrepancy.jsonl").read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[2])
    bad["seller"]["tax_code"] = "43OO58l296"
    lines[2] = json.dumps(bad, ensure_ascii=False)
    path = tmp_path / "alerts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(InvalidRecordsError) as info:
        publish_file(settings, "tax_discrepancy", Agency.TAX, read_records(path), source=str(path))
    assert [r.line for r in info.value.records] == [3]
    assert f"{path}:3: seller.tax_code:" in str(info.value)

    topic = settings.topics.outbox(Agency.TAX)
    assert set(_end_offsets(settings, topic).values()) == {0}
    assert _read_all(settings, topic) == []


def test_chunks_commit_one_by_one_and_a_failed_chunk_is_reported(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # The topics accept at most 4 KiB a batch; the publisher is told 1 MiB, so it sends the big event
    # and the broker refuses it: a real failure in the middle of a file.
    make_settings(kafka={"max_message_bytes": 4096})
    settings = make_settings(apply=False, kafka={"transaction_chunk_events": 2})
    lines = (EXAMPLES / "suspect_seller.jsonl").read_text(encoding="utf-8").splitlines()
    big = json.loads(lines[3])
    big["summary"] = "Hàng giả " * 600
    lines[3] = json.dumps(big, ensure_ascii=False)
    path = tmp_path / "sellers.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = read_records(path)

    with pytest.raises(PublishError) as info:
        publish_file(settings, "suspect_seller", Agency.POLICE, records, source=str(path))
    error = info.value
    assert len(error.committed_event_ids) == 2
    assert len(error.uncommitted_event_ids) == 2
    message = str(error)
    assert "committed (on the topic): lines 1-2" in message
    assert "not committed: lines 3-4" in message
    assert "MessageSizeTooLarge" in message, message

    topic = settings.topics.outbox(Agency.POLICE)
    consumed = _read_all(settings, topic)
    assert sorted(item.record["meta"]["event_id"] for item in consumed) == sorted(error.committed_event_ids)

    # A file that fits publishes in two transactions of two events.
    path.write_text("\n".join(lines[:3]) + "\n" + lines[0] + "\n", encoding="utf-8")
    report = publish_file(settings, "suspect_seller", Agency.POLICE, read_records(path), source=str(path))
    assert [(c.first_line, c.last_line, c.count) for c in report.committed] == [(1, 2, 2), (3, 4, 2)]
    assert len(_read_all(settings, topic, expected=6)) == 6


def _bus389(settings: Settings, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The real ``bus389`` command on this test's broker and prefix; output kept as bytes."""
    env = {**os.environ, "BUS389_BOOTSTRAP": settings.bootstrap, "BUS389_TOPIC_PREFIX": settings.topic_prefix}
    return subprocess.run([BUS389, *args], capture_output=True, env=env, timeout=120, check=False)


@pytest.mark.parametrize(
    ("protocol", "question"),
    [
        ("SASL_PLAINTEXT", "are the credentials right?"),
        ("SSL", "is the CA right?"),
    ],
)
def test_a_secured_client_nobody_answers_is_asked_about_its_credentials(
    settings: Settings, protocol: str, question: str
) -> None:
    """The shared broker speaks plaintext: to a SASL or TLS client it is as good as a wrong password."""
    env = {
        "BUS389_KAFKA__SECURITY_PROTOCOL": protocol,
        "BUS389_KAFKA__USERNAME": "tax",
        "BUS389_KAFKA__PASSWORD": "guessed-0123456789",
        "BUS389_KAFKA__REQUEST_TIMEOUT_MS": "3000",
    }
    for args in (
        ("publish", "complaint", "--as", "industry_trade", "--file", str(EXAMPLES / "complaint.jsonl")),
        ("consume", "--as", "industry_trade", "--topic", "outbox", "--timeout", "1"),
    ):
        result = subprocess.run(
            [BUS389, *args],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "BUS389_BOOTSTRAP": settings.bootstrap,
                "BUS389_TOPIC_PREFIX": settings.topic_prefix,
                **env,
            },
            timeout=120,
            check=False,
        )
        assert result.returncode == 3, result.stderr
        where = f"{settings.bootstrap} ({protocol})"
        assert (
            result.stderr.strip()
            == f"error: no broker answered at {where} — is Kafka running, and {question}"
        )
        assert "guessed-0123456789" not in result.stdout + result.stderr


def test_a_missing_topic_is_named_by_publish_and_consume(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(apply=False)
    topic = settings.topics.outbox(Agency.INDUSTRY_TRADE)
    published = _bus389(
        settings,
        "publish",
        "complaint",
        "--as",
        "industry_trade",
        "--file",
        str(EXAMPLES / "complaint.jsonl"),
    )
    consumed = _bus389(settings, "consume", "--as", "industry_trade", "--topic", "outbox", "--timeout", "1")
    for result in (published, consumed):
        assert result.returncode == 2, result.stderr.decode()
        assert (
            f"error: topic {topic} does not exist (create it with `bus389 topics apply`)"
            in result.stderr.decode()
        )


def test_the_real_command_publishes_and_consumes(
    settings: Settings, unique_group: Callable[..., str]
) -> None:
    path = EXAMPLES / "complaint.jsonl"
    published = _bus389(settings, "publish", "complaint", "--as", "industry_trade", "--file", str(path))
    topic = settings.topics.outbox(Agency.INDUSTRY_TRADE)
    assert published.returncode == 0, published.stderr.decode()
    assert published.stdout.decode() == f"published 3 events of complaint to {topic}\n"

    group = unique_group("industry_trade", "consume")
    reading = ("consume", "--as", "industry_trade", "--topic", "outbox", "--group", group)
    consumed = _bus389(settings, *reading, "--from-beginning", "--max", "3", "--timeout", "10")
    assert consumed.returncode == 0, consumed.stderr.decode()
    out = consumed.stdout.splitlines()
    assert len(out) == 3
    summaries = {json.loads(line)["event"]["summary"] for line in out}
    originals = {json.loads(line)["summary"] for line in path.read_text(encoding="utf-8").splitlines()}
    assert summaries == originals
    for original in originals:  # printed as UTF-8, not as \u escapes
        assert original.encode("utf-8") in consumed.stdout
    first = json.loads(out[0])
    assert list(first) == [
        "topic",
        "partition",
        "offset",
        "key",
        "headers",
        "schema_id",
        "event_type",
        "event",
        "value",
        "signature",
    ]
    assert first["event"]["meta"]["published_at"].endswith("Z")
    # Published without a signing key: consume says so (the outbox is checked as the sender's).
    assert first["signature"] == {"status": "unsigned", "detail": "the event carries no signature"}

    # The group committed after printing: a second run of the same group finds nothing new.
    again = _bus389(settings, *reading, "--timeout", "2")
    assert again.returncode == 0, again.stderr.decode()
    assert again.stdout == b""
    assert "read 0 events" in again.stderr.decode()


def test_undecodable_record_is_reported_and_reading_goes_on(settings: Settings) -> None:
    topic = settings.topics.outbox(Agency.ICT)
    records = read_records(EXAMPLES / "law_gap_proposal.jsonl")
    report = publish_file(settings, "law_gap_proposal", Agency.ICT, records[:1])
    from bus389.kafka import make_producer

    producer = make_producer(settings)
    try:
        producer.send(topic, key=b"poison", value=b"\x01not avro", partition=0).get(timeout=30)
        producer.send(topic, key=b"poison", value=b"\x00\x00\x00\x03\xe7\xff", partition=0).get(timeout=30)
    finally:
        producer.close()
    publish_file(settings, "law_gap_proposal", Agency.ICT, records[1:2])

    seen: list[dict[str, Any]] = []
    with TopicReader(settings, topic, from_beginning=True) as reader:
        seen = [item.to_json() for item in reader.read(max_events=4, idle_timeout_s=5.0)]
    errors = sorted(item["error"] for item in seen if "error" in item)
    assert errors == ["bad_magic_byte", "unknown_schema_id"]
    events = [item for item in seen if "event" in item]
    assert len(events) == 2
    assert report.events[0].event_id in {e["event"]["meta"]["event_id"] for e in events}


def test_apache_avro_decodes_the_bytes_with_only_the_avsc(settings: Settings) -> None:
    path = EXAMPLES / "case_outcome.jsonl"
    report = publish_file(settings, "case_outcome", Agency.MARKET_SURVEILLANCE, read_records(path))
    expected: dict[str, Any] = {o.event_id: o.event for o in report.events}
    topic = report.topic

    consumer = make_consumer(settings, group_id=None, isolation_level="read_committed")
    values: list[bytes] = []
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        for _ in range(40):
            for batch in consumer.poll(timeout_ms=500).values():
                values.extend(m.value for m in batch)
            if len(values) >= len(expected):
                break
    finally:
        consumer.close()
    assert len(values) == len(expected)

    latest = load_catalog().latest("case_outcome")
    avsc = (
        REPO_ROOT / "bus389" / "schemas" / "case_outcome" / f"v{latest.version}.avsc"
    )  # the writer's schema
    schema = avro.schema.parse(avsc.read_text(encoding="utf-8"))
    reader = avro.io.DatumReader(schema)
    for value in values:
        assert value[0] == 0
        assert int.from_bytes(value[1:5], "big") == load_catalog().latest("case_outcome").schema_id
        body = io.BytesIO(value[5:])
        record: Any = reader.read(avro.io.BinaryDecoder(body))
        assert body.tell() == len(value) - 5  # nothing left over
        event = expected[record["meta"]["event_id"]]
        assert record["summary"] == event.summary
        # Byte for byte: the summary's NFC UTF-8 bytes are in the body as they were in the event.
        assert unicodedata.is_normalized("NFC", record["summary"])
        assert event.summary.encode("utf-8") in value[5:]
        assert record["meta"]["source"] == "market_surveillance"
        assert record["meta"]["occurred_at"] == event.meta.occurred_at
        assert record["decided_on"] == event.decided_on
        assert record["fine_vnd"] == event.fine_vnd
        assert record["public"] is event.public
