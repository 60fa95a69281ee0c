"""The standing office end to end on the real broker: inbox → store → ``bus389 report``; restarts and replays.

Events are written straight into ``<prefix>.inbox.market_surveillance`` with the codec (as the router
would write them, router headers included), so this test needs only the broker and the service.
Further tests run the store and the report against a real PostgreSQL server started for them, and migrate
a PostgreSQL store of the first schema (keyed by event id alone) in place.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from _so_store_v1 import KEYS, MAILED, REQUEST_ID, RESULT_ID, ROWS, SELLER_NAME, write_v1_store
from _wait import wait_for
from click.testing import CliRunner

from bus389 import metrics
from bus389.agencies import Agency
from bus389.cli.main import cli
from bus389.codec import encode_event
from bus389.consumers.standing_office.report import Period, build_report
from bus389.consumers.standing_office.service import run_standing_office
from bus389.consumers.standing_office.store import SCHEMA_VERSION, StandingOfficeStore
from bus389.events import Event, build_event
from bus389.kafka import kafka_errors, make_producer
from bus389.runtime.stop import StopFlag
from bus389.settings import ReportSettings, Settings, StoreSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

BUS389 = str(Path(sys.executable).with_name("bus389"))
VN = timezone(timedelta(hours=7))
NOW = datetime(2021, 7, 10, tzinfo=VN)


def _at(month: int, day: int, hour: int = 9) -> str:
    return datetime(2021, month, day, hour, tzinfo=VN).isoformat()


def _events() -> dict[str, Event]:
    """Seven events of 2021-H1: one seller reported by police, tax and market surveillance; a block."""
    hung = {
        "name": "Nguyễn Văn Hùng",
        "tax_code": "0312345678",
        "phone": "0912 345 678",
        "province": "Quảng Ngãi",
    }
    request = build_event(
        "domain_block_request",
        "police",
        {
            "meta": {"occurred_at": _at(3, 1, 8)},
            "domains": ["hangxachtay-hung.vn"],
            "action": "BLOCK",
            "reason": "Website bán giày giả nhãn hiệu",
            "legal_basis": "Công văn 125/CAT-PC03",
            "violation_kinds": ["COUNTERFEIT"],
        },
    )
    return {
        "police_seller": build_event(
            "suspect_seller",
            "police",
            {
                "meta": {"occurred_at": _at(2, 1)},
                "seller": hung,
                "goods": "Giày thể thao giả nhãn hiệu",
                "violation_kinds": ["COUNTERFEIT"],
                "domains": ["hangxachtay-hung.vn"],
                "summary": "Bán giày giả nhãn hiệu qua website và Facebook",
            },
        ),
        "tax_alert": build_event(
            "tax_discrepancy",
            "tax",
            {
                "meta": {"occurred_at": _at(2, 15)},
                "seller": {"name": "NGUYỄN  VĂN HÙNG", "tax_code": "0312345678"},
                "period": "2021-H1",
                "estimated_revenue_vnd": 1_500_000_000,
                "declared_revenue_vnd": 250_000_000,
                "undeclared_revenue_vnd": 1_250_000_000,
                "estimated_tax_owed_vnd": 87_500_000,
            },
        ),
        "complaint": build_event(
            "complaint",
            "market_surveillance",
            {
                "meta": {"occurred_at": _at(3, 20)},
                "kind": "COMPLAINT",
                "channel": "HOTLINE",
                "received_at": _at(3, 20, 8),
                "complainant": {"full_name": "Phạm Thị Lan", "phone": "0905 111 222"},
                "seller": {"name": " nguyễn văn hùng ", "tax_code": "0312345678"},
                "summary": "Mua phải giày giả, người bán không đổi trả",
            },
        ),
        "block_request": request,
        "block_result": build_event(
            "domain_block_result",
            "ict",
            {
                "meta": {"occurred_at": _at(3, 2, 10), "in_reply_to": request.event_id},
                "requester": "police",
                "outcome": "BLOCKED",
                "blocked": ["hangxachtay-hung.vn"],
                "decided_at": _at(3, 2, 10),
                "providers_notified": ["VNPT Quảng Ngãi", "Viettel Quảng Ngãi"],
            },
        ),
        "police_report": build_event(
            "periodic_report",
            "police",
            {
                "meta": {"occurred_at": _at(7, 5)},
                "report_kind": "SIX_MONTHLY",
                "period": "2021-H1",
                "title": "Báo cáo 6 tháng đầu năm 2021",
                "body": "Kết quả thực hiện Kế hoạch 141/KH-UBND",
            },
        ),
        "customs_seller": build_event(
            "suspect_seller",
            "customs",
            {
                "meta": {"occurred_at": _at(4, 20)},
                "seller": {"name": "Trần Thị Mai", "tax_code": "0401234567"},
                "goods": "Mỹ phẩm nhập lậu",
                "goods_imported": True,
                "summary": "Bán mỹ phẩm không rõ nguồn gốc",
            },
        ),
    }


def _publish_to_inbox(settings: Settings, events: list[Event], poison: bytes) -> None:
    topic = settings.topics.inbox(Agency.MARKET_SURVEILLANCE)
    with kafka_errors():
        producer = make_producer(settings)
        try:
            for offset, event in enumerate(events):
                encoded = encode_event(event)
                redacted = b"complainant.phone" if event.event_type == "complaint" else b""
                headers = [
                    *encoded.headers,
                    ("bus389_rule", b"standing-office-all"),
                    ("bus389_plan_section", b"III.3"),
                    ("bus389_origin", f"{settings.topics.outbox(event.source)}/0/{offset}".encode()),
                    ("bus389_redacted", redacted),
                ]
                producer.send(topic, key=encoded.key, value=encoded.value, headers=headers)
            producer.send(topic, key=b"poison", value=poison, headers=[])
            producer.flush(timeout=30)
        finally:
            producer.close(timeout=10)


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for ``condition`` (the shared :func:`_wait.wait_for`); fails the test naming ``what``."""
    wait_for(condition, timeout, what, interval_s=0.25)


def _stored_total() -> float:
    total = 0.0
    for family in metrics.REGISTRY.collect():
        if family.name == "bus389_standing_office_events_stored":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def _run_in_thread(
    settings: Settings, **kwargs: Any
) -> tuple[threading.Thread, StopFlag, list[BaseException]]:
    stop = StopFlag()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_standing_office(settings, stop=stop, **kwargs)
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)

    thread = threading.Thread(target=target, name="standing-office", daemon=True)
    thread.start()
    return thread, stop, errors


def test_inbox_to_report_and_nothing_stored_twice(
    make_settings: Callable[..., Settings], unique_group: Callable[..., str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'standing_office.sqlite3'}"
    settings = make_settings(
        store=StoreSettings(standing_office_url=url),
        report=ReportSettings(group_id=unique_group("market_surveillance", "store")),
    )
    events = _events()
    _publish_to_inbox(settings, list(events.values()), poison=b"\x01\x00\x00\x00\x01not avro")

    stored_before = _stored_total()
    thread, stop, errors = _run_in_thread(settings)
    with StandingOfficeStore.open(url) as store:
        try:
            _wait_for(
                lambda: store.count_events() == len(events) and len(store.rejected()) == 1,
                120,
                "the service to store every event and reject the poison record",
            )
        finally:
            stop.set()
            thread.join(60)
        assert not thread.is_alive() and not errors, errors
        assert _stored_total() - stored_before == len(events)

        (rejected,) = store.rejected()
        assert rejected.reason == "bad_magic_byte"
        assert rejected.topic == settings.topics.inbox(Agency.MARKET_SURVEILLANCE)
        complaint = store.get(events["complaint"].event_id)
        assert complaint is not None
        assert complaint.redacted == ("complainant.phone",)
        assert complaint.headers["bus389_plan_section"] == "III.3"
        assert complaint.record["complainant"]["full_name"] == "Phạm Thị Lan"

        report = build_report(store, Period.parse("2021-H1"), now=NOW)
        police = report.member(Agency.POLICE)
        assert police.events_by_type == {"domain_block_request": 1, "suspect_seller": 1}
        assert police.six_monthly_reports == (events["police_report"].event_id,)
        (block,) = police.block_requests
        assert (block.outcome, block.time_to_result) == ("BLOCKED", timedelta(hours=26))
        tax = report.member(Agency.TAX)
        assert (tax.tax_alerts, tax.undeclared_revenue_vnd, tax.tax_owed_vnd) == (
            1,
            1_250_000_000,
            87_500_000,
        )
        seller_groups = [g for g in report.correlations if g.kind == "seller"]
        assert [(g.agencies, len(g.reports)) for g in seller_groups] == [
            (("police", "tax", "market_surveillance"), 3)
        ]

    # the report command, as the standing office runs it
    result = CliRunner().invoke(
        cli, ["report", "--period", "2021-H1"], env={"BUS389_STORE__STANDING_OFFICE_URL": url}
    )
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("# Báo cáo sáu tháng 2021-H1")
    assert "1.250.000.000 ₫" in text and "87.500.000 ₫" in text
    assert "3 cơ quan báo cáo: Công an tỉnh, Cục Thuế tỉnh, Cục Quản lý thị trường tỉnh" in text
    assert "Trần Thị Mai" not in text.split("## 5.")[1]  # reported by customs alone: no overlap
    html_out = tmp_path / "bao-cao.html"
    result = CliRunner().invoke(
        cli,
        ["report", "--period", "2021-H1", "--format", "html", "--out", str(html_out)],
        env={"BUS389_STORE__STANDING_OFFICE_URL": url},
    )
    assert result.exit_code == 0, result.output
    assert "Nguyễn Văn Hùng" in html_out.read_text(encoding="utf-8")

    # restart with the same group: the committed offsets mean nothing is read or stored again
    thread, stop, errors = _run_in_thread(settings, max_idle_polls=10)
    thread.join(120)
    assert not thread.is_alive() and not errors, errors
    with StandingOfficeStore.open(url) as store:
        assert store.count_events() == len(events)
        assert len(store.rejected()) == 1
    assert _stored_total() - stored_before == len(events)

    # a replay from the start (a new group, as after lost commits), as the real command in a
    # subprocess: every event is read again and nothing is stored twice; SIGTERM exits 0
    env = {
        **os.environ,
        "BUS389_BOOTSTRAP": settings.bootstrap,
        "BUS389_TOPIC_PREFIX": settings.topic_prefix,
        "BUS389_STORE__STANDING_OFFICE_URL": url,
        "BUS389_REPORT__GROUP_ID": unique_group("market_surveillance", "replay"),
    }
    process = subprocess.Popen(
        [BUS389, "serve", "standing-office", "--metrics-port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr or []], daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while sum("already stored" in line for line in seen) < len(events):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or process.poll() is not None:
                pytest.fail("the replay did not re-read every event:\n" + "".join(seen))
            try:
                seen.append(lines.get(timeout=min(remaining, 1.0)))
            except queue.Empty:
                continue
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, "".join(seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(10)
        if process.stderr is not None:
            process.stderr.close()
    assert not any(re.search(r"\bstored \w+ [0-9a-f-]{36} from", line) for line in seen), "".join(seen)
    with StandingOfficeStore.open(url) as store:
        assert store.count_events() == len(events)
        assert len(store.rejected()) == 1


# --- PostgreSQL -------------------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and Path(found).with_name("initdb").exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of its own on 127.0.0.1 (initdb into a temporary directory), stopped after."""
    bindir = _pg_bin()
    if bindir is None:
        # A required system package (deploy/install-system-packages.sh): missing is an install failure.
        pytest.fail(
            "PostgreSQL's server binaries are missing (Debian package 'postgresql'): "
            "run deploy/install-system-packages.sh"
        )
    # not under pytest's temporary directory: that one is private to this user, and root must hand the
    # data directory to the postgres user
    base = Path(tempfile.mkdtemp(prefix="bus389-pg-"))
    data, sockets, log = base / "data", base / "run", base / "server.log"
    sockets.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres user
        if shutil.which("runuser") is None:
            pytest.fail("running as root without runuser: cannot start PostgreSQL as another user")
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def pg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=120, check=False)

    init = pg(
        str(bindir / "initdb"), "-D", str(data), "-U", "bus389", "-A", "trust", "-E", "UTF8", "--no-locale"
    )
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"initdb failed: {init.stderr}")
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off"
    start = pg(
        str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"
    )
    if start.returncode != 0:
        detail = start.stderr + (log.read_text() if log.exists() else "")
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {detail}")
    try:
        yield f"postgresql://bus389@127.0.0.1:{port}/postgres"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_store_and_report_on_postgresql(postgres_url: str) -> None:
    events = _events()
    raw = events["customs_seller"].to_avro()
    raw["meta"] = {**raw["meta"], "event_id": "0b9d4c3e-8f6a-4c1e-9d2b-5a7e3f1c2b4d"}
    raw["seller"] = {**raw["seller"], "name": unicodedata.normalize("NFD", "Nguyễn Thị Ánh Tuyết")}
    with StandingOfficeStore.open(postgres_url) as store:
        assert store.dialect == "postgresql"
        for event in events.values():
            assert store.add_event(event.to_avro(), topic="inbox", partition=0, offset=1)
            assert not store.add_event(event.to_avro())  # idempotent by event id
        assert store.count_events() == len(events)
        assert store.add_rejected(topic="inbox", partition=0, offset=9, reason="corrupt_body", detail="x")
        assert not store.add_rejected(topic="inbox", partition=0, offset=9, reason="corrupt_body", detail="x")
        complaint = store.get(events["complaint"].event_id)
        assert complaint is not None
        assert complaint.record["complainant"]["full_name"] == "Phạm Thị Lan"
        assert store.add_event(raw)  # an NFD spelling, as another system might send it
        kept = store.get(raw["meta"]["event_id"])
        assert kept is not None
        assert kept.record["seller"]["name"] == raw["seller"]["name"]  # byte for byte, not normalised
        import psycopg

        with psycopg.connect(postgres_url) as conn:
            row = conn.execute(
                "SELECT convert_to(record, 'UTF8') FROM so_events WHERE event_id = %s",
                (raw["meta"]["event_id"],),
            ).fetchone()
        assert row is not None and raw["seller"]["name"].encode() in bytes(row[0])

    # reopening sees the same rows (the schema is created once, idempotently)
    with StandingOfficeStore.open(postgres_url) as store:
        report = build_report(store, Period.parse("2021-H1"), now=NOW)
        assert report.events_total == 7  # 6 of the 7 (the periodic report came in July) + the NFD one
        assert report.member(Agency.TAX).tax_owed_vnd == 87_500_000
        (block,) = report.member(Agency.POLICE).block_requests
        assert block.time_to_result == timedelta(hours=26)
        assert [g.agencies for g in report.correlations if g.kind == "seller"] == [
            ("police", "tax", "market_surveillance")
        ]

    result = CliRunner().invoke(
        cli,
        ["report", "--period", "2021-H1", "--format", "csv"],
        env={"BUS389_STORE__STANDING_OFFICE_URL": postgres_url},
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("\ufeffBáo cáo sáu tháng 2021-H1")
    assert "1250000000" in result.stdout


def test_a_postgresql_store_keyed_by_id_alone_is_migrated_in_place(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        write_v1_store(lambda sql, params: conn.execute(sql, params), placeholder="%s")
    with StandingOfficeStore.open(postgres_url) as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert store.count_events() == len(ROWS)
        request = store.get(REQUEST_ID)
        assert request is not None and (request.source, request.sender_rank, request.offset) == (
            "police",
            0,
            41,
        )
        assert request.record["seller"]["name"].encode() == SELLER_NAME.encode()
        assert [(k.kind, k.value) for k in store.keys_of([request.key])[request.key]] == [
            (kind, value) for _, kind, value, _ in KEYS
        ]
        assert [e.event_id for e in store.replies([REQUEST_ID], [])] == [RESULT_ID]
        assert store.get_meta(MAILED[0]) == MAILED[1]
        assert len(store.rejected()) == 1
        # Keyed by sender now: the same id from customs is a second event; a replay of either, nothing.
        squatter = _events()["customs_seller"].to_avro()
        squatter["meta"] = {**squatter["meta"], "event_id": REQUEST_ID}
        assert store.add_event(squatter)
        assert not store.add_event(squatter)
        assert [(e.source, e.sender_rank) for e in store.with_id(REQUEST_ID)] == [
            ("police", 0),
            ("customs", 1),
        ]
        kept = store.get(REQUEST_ID)
        assert kept is not None and kept.source == "police" and kept.event_type == "domain_block_request"
    with StandingOfficeStore.open(postgres_url) as again:  # reopening migrates nothing more
        assert again.count_events() == len(ROWS) + 1
    with psycopg.connect(postgres_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'so_%'")}
    assert tables == {"so_events", "so_event_keys", "so_rejected", "so_meta"}
