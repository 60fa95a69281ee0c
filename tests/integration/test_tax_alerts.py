"""``bus389 tax publish-alerts`` end to end on a real broker: publish, re-publish, bad rows, --skip-invalid,
and an agency that publishes first under the ids it can work out (the README's attack row 69).

Each test has its own topic prefix (its own tax outbox) and its own 0600 alert-id key; the command runs
as a real subprocess and the outbox is read back ``read_committed`` and decoded with the codec.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from _router_support import RouterThread, publish, read_inboxes, router_settings, suspect_seller, wait_routed
from kafka import TopicPartition

from bus389.agencies import Agency
from bus389.codec import decode_value
from bus389.consumers.router.dlq import read_dead_letters
from bus389.events import build_event
from bus389.kafka import kafka_errors, make_consumer, make_producer
from bus389.producers.tax.alerts import alert_event_id
from bus389.producers.tax.dedup import published_event_ids
from bus389.producers.tax.id_key import AlertIdKey
from bus389.producers.tax.publish import prepare_alerts
from bus389.schemas.catalog import load_catalog
from bus389.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

SAMPLE_XLSX = REPO_ROOT / "examples" / "tax_undeclared_sellers.xlsx"
SAMPLE_CSV = REPO_ROOT / "examples" / "tax_undeclared_sellers.csv"
ALERTS_IN_SAMPLE = 11  # 12 rows, one with nothing undeclared

Cli = Callable[..., subprocess.CompletedProcess[str]]
KEY = "integration-test alert-id key of the tax office"
PUBLIC_NAMESPACE = uuid.UUID("5b6f0c1e-3d38-5c1a-9a57-38902021a389")
"""The namespace of the alert ids before they were keyed: public, so any agency could work them out."""


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The tax office's alert-id key for this test (0600), named by ``BUS389_TAX__ALERT_ID_KEY_FILE``."""
    path = tmp_path / "tax-alert-id.key"
    path.write_text(KEY + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return path


def _env(settings: Settings, key_file: Path) -> dict[str, str]:
    return {
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        "BUS389_TAX__ALERT_ID_KEY_FILE": str(key_file),
    }


def _outbox(settings: Settings) -> list[Any]:
    """Every committed record of the tax outbox, in partition and offset order."""
    topic = settings.topics.outbox(Agency.TAX)
    consumer = make_consumer(settings, group_id=None)
    records: list[Any] = []
    try:
        with kafka_errors():
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
            consumer.assign(partitions)
            end = consumer.end_offsets(partitions)
            consumer.seek_to_beginning(*partitions)
            for _ in range(60):
                if all(consumer.position(tp) >= end[tp] for tp in partitions):
                    break
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
    finally:
        consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _sample_rows() -> list[dict[str, str]]:
    """The sample's rows read with the csv module alone (not the code under test)."""
    with SAMPLE_CSV.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def _summary(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)


def test_publish_the_sample_then_again_publishes_no_duplicates(
    settings: Settings, bus389_cli: Cli, key_file: Path
) -> None:
    first = bus389_cli("tax", "publish-alerts", str(SAMPLE_XLSX), env=_env(settings, key_file))
    assert first.returncode == 0, first.stdout + first.stderr
    summary = _summary(first.stdout)
    assert summary["rows read"] == "12"
    assert summary["events published"] == str(ALERTS_IN_SAMPLE)
    assert summary["already published"] == "0"
    assert summary["skipped (no discrepancy)"] == "1"
    assert summary["rejected"] == "0"

    records = _outbox(settings)
    assert len(records) == ALERTS_IN_SAMPLE
    events = [decode_value(r.value).record for r in records]
    by_id = {e["meta"]["event_id"]: e for e in events}
    assert len(by_id) == ALERTS_IN_SAMPLE
    for record, event in zip(records, events, strict=True):
        headers = dict(record.headers)
        assert headers["ce_source"] == b"/bus389/tax"
        latest = load_catalog().latest("tax_discrepancy")
        assert headers["ce_type"] == f"vn.bcd389.tax_discrepancy.v{latest.version}".encode()
        assert headers["ce_id"] == event["meta"]["event_id"].encode()
        assert record.key == event["meta"]["event_id"].encode()
        assert event["meta"]["source"] == "tax"
        assert event["meta"]["sensitivity"] == "AMBER"

    published_rows = [row for row in _sample_rows() if row["Họ và tên"] != "Ngô Thị Thanh Trúc"]
    for row in published_rows:
        account = row["Tài khoản"].rstrip("/").rsplit("/", 1)[-1]
        # Found by its platform account (the last part of the row's account URL), so that the name is
        # then compared, not used to find the event.
        [event] = [e for e in events if [a["account"] for a in e["accounts"]] == [account]]
        # Byte for byte: the Vietnamese text on the topic is the text in the file.
        assert event["seller"]["name"].encode("utf-8") == row["Họ và tên"].encode("utf-8")
        assert event["seller"]["address"].encode("utf-8") == row["Địa chỉ"].encode("utf-8")
        assert event["notes"].encode("utf-8") == row["Ghi chú"].encode("utf-8")
        assert event["seller"]["tax_code"] == (row["MST"] or None)
        estimated = int(row["Doanh thu theo sàn (đồng)"].replace(".", ""))
        declared = int(row["Doanh thu kê khai (đồng)"].replace(".", ""))
        assert event["estimated_revenue_vnd"] == estimated
        assert event["declared_revenue_vnd"] == declared
        assert event["undeclared_revenue_vnd"] == estimated - declared
        undeclared = Decimal(estimated - declared)
        vat = (undeclared * Decimal("0.01")).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        pit = (undeclared * Decimal("0.005")).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        assert event["estimated_tax_owed_vnd"] == int(vat + pit)
        platform = event["accounts"][0]["platform"]
        expected_id = alert_event_id(KEY.encode(), row["MST"] or None, account, platform, event["period"])
        assert event["meta"]["event_id"] == expected_id
    khanh = next(e for e in events if e["seller"]["name"] == "Bùi Quốc Khánh")
    assert khanh["meta"]["urgency"] == "PRIORITY"

    again = bus389_cli("tax", "publish-alerts", str(SAMPLE_XLSX), env=_env(settings, key_file))
    assert again.returncode == 0, again.stdout + again.stderr
    assert _summary(again.stdout)["events published"] == "0"
    assert _summary(again.stdout)["already published"] == str(ALERTS_IN_SAMPLE)
    # The CSV export of the same sheet is the same alerts: nothing new either.
    as_csv = bus389_cli("tax", "publish-alerts", str(SAMPLE_CSV), env=_env(settings, key_file))
    assert as_csv.returncode == 0, as_csv.stdout + as_csv.stderr
    assert _summary(as_csv.stdout)["events published"] == "0"
    assert _summary(as_csv.stdout)["already published"] == str(ALERTS_IN_SAMPLE)
    assert len(_outbox(settings)) == ALERTS_IN_SAMPLE


def _sample_with_a_bad_row(tmp_path: Path) -> Path:
    path = tmp_path / "ds_thang_7.csv"
    shutil.copyfile(SAMPLE_CSV, path)
    text = path.read_text(encoding="utf-8-sig")
    assert ";Sendo;" in text
    path.write_text(text.replace(";Sendo;", ";Amazon;"), encoding="utf-8-sig")
    return path


def test_a_bad_row_publishes_nothing_then_skip_invalid_publishes_the_rest(
    settings: Settings, bus389_cli: Cli, tmp_path: Path, key_file: Path
) -> None:
    path = _sample_with_a_bad_row(tmp_path)
    blocked = bus389_cli("tax", "publish-alerts", str(path), env=_env(settings, key_file))
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "row 11, column \"Sàn TMĐT\": unknown platform 'Amazon'" in blocked.stderr
    assert _summary(blocked.stdout)["rejected"] == "1"
    assert _outbox(settings) == []
    assert not (tmp_path / "ds_thang_7.rejected.csv").exists()

    skipping = bus389_cli("tax", "publish-alerts", str(path), "--skip-invalid", env=_env(settings, key_file))
    assert skipping.returncode == 0, skipping.stdout + skipping.stderr
    summary = _summary(skipping.stdout)
    assert summary["events published"] == str(ALERTS_IN_SAMPLE - 1)
    assert summary["rejected"] == "1"
    rejected_file = tmp_path / "ds_thang_7.rejected.csv"
    assert summary["rejected rows written to"] == str(rejected_file)
    names = {decode_value(r.value).record["seller"]["name"] for r in _outbox(settings)}
    assert len(names) == ALERTS_IN_SAMPLE - 1
    assert "Đỗ Văn Hùng" not in names

    raw = rejected_file.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][-1] == "Lý do từ chối"
    assert len(rows) == 2
    assert rows[1][2] == "Đỗ Văn Hùng"
    assert rows[1][6] == "Amazon"

    # The clerk fixes the rejected file and publishes it: only that alert is new.
    fixed = tmp_path / "ds_thang_7_sua.csv"
    fixed.write_text(raw.decode("utf-8-sig").replace(",Amazon,", ",Sendo,"), encoding="utf-8-sig", newline="")
    last = bus389_cli("tax", "publish-alerts", str(fixed), env=_env(settings, key_file))
    assert last.returncode == 0, last.stdout + last.stderr
    assert _summary(last.stdout)["events published"] == "1"
    assert len(_outbox(settings)) == ALERTS_IN_SAMPLE


def test_an_aborted_transaction_does_not_count_as_published(
    settings: Settings, bus389_cli: Cli, key_file: Path
) -> None:
    """Dedup reads read_committed: an alert whose transaction was aborted is still to publish."""
    _, ready, _, _ = prepare_alerts(settings, SAMPLE_XLSX, id_key=AlertIdKey(KEY.encode()))
    first = ready[0].outgoing
    producer = make_producer(settings, transactional_id=f"{settings.topic_prefix}.tax.publish.aborted")
    try:
        with kafka_errors():
            producer.init_transactions()
            producer.begin_transaction()
            producer.send(
                settings.topics.outbox(Agency.TAX),
                key=first.encoded.key,
                value=first.encoded.value,
                headers=first.encoded.headers,
            ).get(timeout=30)
            producer.abort_transaction()
    finally:
        producer.close()
    assert published_event_ids(settings) == set()

    result = bus389_cli("tax", "publish-alerts", str(SAMPLE_XLSX), env=_env(settings, key_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert _summary(result.stdout)["events published"] == str(ALERTS_IN_SAMPLE)
    assert _summary(result.stdout)["already published"] == "0"
    assert first.event_id in published_event_ids(settings)


def _public_id(fields: dict[str, Any]) -> str:
    """The id another agency can work out from an alert's seller, platform and period alone: the
    formula before the key (uuid5 of public inputs)."""
    [account] = fields["accounts"]
    identity = fields["seller"]["tax_code"] or "account:" + account["account"].casefold()
    name = f"tax_discrepancy|{identity}|{account['platform']}|{fields['period']}"
    return str(uuid.uuid5(PUBLIC_NAMESPACE, name))


def test_an_agency_publishing_first_under_predictable_ids_takes_no_tax_alert(
    make_settings: Callable[..., Settings],
    unique_group: Callable[..., str],
    bus389_cli: Cli,
    key_file: Path,
) -> None:
    """Row 69: the police publish first under every id they can work out for the tax office's sheet
    (the formula that used public inputs only, and a guess at the key); the tax alerts still route."""
    rsettings = router_settings(make_settings, unique_group)
    guessed_key = AlertIdKey(b"the police's guess at the tax key, 32 chars+")
    ready = prepare_alerts(rsettings, SAMPLE_XLSX, id_key=guessed_key)[1]
    claims = [*(_public_id(r.alert.fields) for r in ready), *(r.event_id for r in ready)]
    assert len(set(claims)) == 2 * ALERTS_IN_SAMPLE
    squatters = [
        build_event(
            "suspect_seller",
            Agency.POLICE,
            {**suspect_seller(Agency.POLICE).to_json_dict(), "meta": {"sensitivity": "AMBER"}},
            event_id=claim,
        )
        for claim in claims
    ]
    with RouterThread(rsettings):
        publish(rsettings, squatters)
        wait_routed(rsettings, audit=len(squatters))
        result = bus389_cli("tax", "publish-alerts", str(SAMPLE_XLSX), env=_env(rsettings, key_file))
        assert result.returncode == 0, result.stdout + result.stderr
        assert _summary(result.stdout)["events published"] == str(ALERTS_IN_SAMPLE)
        wait_routed(rsettings, audit=len(squatters) + ALERTS_IN_SAMPLE)

    assert read_dead_letters(rsettings) == []  # no id_taken: the police could claim none of the tax ids
    alerts = [
        decode_value(r.value).record
        for r in read_inboxes(rsettings)[Agency.MARKET_SURVEILLANCE]
        if dict(r.headers)["ce_type"].startswith(b"vn.bcd389.tax_discrepancy.")
    ]
    assert len(alerts) == ALERTS_IN_SAMPLE
    assert {a["meta"]["source"] for a in alerts} == {"tax"}
    assert not {a["meta"]["event_id"] for a in alerts} & set(claims)
