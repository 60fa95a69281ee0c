"""Attacks on what leaves the bus and what enters it, against the real services: the broker, the router,
the ICT service, Unbound loading the zone, and the ``bus389`` command in a subprocess.

- resolver instructions smuggled in a block request as RPZ trigger names (``1.0.0.0.0.rpz-ip``,
  ``ns.rpz-nsdname``), and a zone that a real parser refuses;
- the state's domains, the platforms' alternative domains and public suffixes asked to be blocked by a
  sender whose requests are auto-approved;
- control characters in identifiers, endless and oversized inputs, a zip-bomb workbook, formula cells and
  a planted link at the rejected-rows file.

Needs ``unbound``, ``dig`` and ``named-checkzone`` (``deploy/install-system-packages.sh``).
"""

from __future__ import annotations

import csv
import json
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _router_support import RouterThread, domain_block_request, publish, read_topic, wait_until
from test_ict_flow import ServiceThread, read_results, rpz_text
from test_unbound import ZONE, Answer, Unbound, _request

from bus389.agencies import Agency
from bus389.consumers.ict.blocklist import (
    BlockEntry,
    blocklist_files,
    install_zone,
    render_rpz,
    write_blocklist,
)
from bus389.consumers.ict.decisions import Decider
from bus389.consumers.ict.screening import TargetKind
from bus389.consumers.ict.store import open_store
from bus389.errors import ZoneCheckError
from bus389.settings import IctSettings, RouterSettings, Settings, StoreSettings

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]
TRIGGERS = ["1.0.0.0.0.rpz-ip", "ns1.example.vn.rpz-nsdname", "16.0.0.168.192.rpz-client-ip"]


@pytest.fixture
def bus(make_settings: Callable[..., Settings], unique_group: Callable[..., str], tmp_path: Path) -> Settings:
    """The router, the ICT service (auto-approving the police) and their stores, on this test's prefix."""
    ident = unique_group("router")
    return make_settings(
        router=RouterSettings(group_id=ident, transactional_id=ident, session_timeout_ms=6000),
        store=StoreSettings(ict_url=f"sqlite:///{tmp_path / 'ict.sqlite3'}"),
        ict=IctSettings(
            output_dir=tmp_path / "blocklist", rpz_zone=ZONE, auto_approve_senders=(Agency.POLICE,)
        ),
    )


@pytest.fixture
def resolver(tmp_path: Path, bus: Settings) -> Iterator[Callable[[], Unbound]]:
    """Starts Unbound on the ICT service's zone when asked (the zone must exist first)."""
    started: list[Unbound] = []

    def start() -> Unbound:
        workdir = tmp_path / "unbound"
        workdir.mkdir()
        server = Unbound(workdir, blocklist_files(bus.ict.output_dir, ZONE).rpz)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _result_for(settings: Settings, request_id: str) -> dict[str, object]:
    found: list[dict[str, object]] = []

    def answered() -> bool:
        found[:] = [r for r in read_results(settings, settle_s=0.5) if r["meta"]["in_reply_to"] == request_id]  # type: ignore[index]
        return bool(found)

    wait_until(answered, 90, f"the ICT result answering {request_id}")
    return found[0]


def test_rpz_triggers_in_a_block_request_never_reach_the_resolver(
    bus: Settings, resolver: Callable[[], Unbound]
) -> None:
    request = domain_block_request(Agency.POLICE, domains=[*TRIGGERS, "blocked.example.vn"])
    with RouterThread(bus), ServiceThread(bus):
        [sent] = publish(bus, [request])
        result = _result_for(bus, sent.event_id)
        wait_until(lambda: "blocked.example.vn CNAME ." in rpz_text(bus), 60, "the zone")
    assert result["outcome"] == "PARTIAL"
    assert result["blocked"] == ["blocked.example.vn"]
    assert result["not_blocked"] == TRIGGERS
    assert str(result["note"]).count("is an RPZ trigger") == 3
    zone = rpz_text(bus)
    assert "rpz-ip" not in zone and "rpz-nsdname" not in zone and "rpz-client-ip" not in zone

    unbound = resolver()
    # 45.77.10.40 is inside 0.0.0.0/1: had the trigger been written, every such answer would be NXDOMAIN.
    assert unbound.query("ok.example.vn") == Answer("NOERROR", ["A 45.77.10.40"])
    assert unbound.query("blocked.example.vn") == Answer("NXDOMAIN", [])


def test_the_writer_refuses_triggers_that_bypassed_screening_and_unbound_agrees(
    tmp_path: Path, bus: Settings, resolver: Callable[[], Unbound]
) -> None:
    entries = [
        BlockEntry(TargetKind.DOMAIN, name, "11111111-1111-4111-8111-111111111111", "police", "CV 1", 1, None)
        for name in [*TRIGGERS, "blocked.example.vn"]
    ]
    write_blocklist(entries, output_dir=bus.ict.output_dir, zone=ZONE, serial=1)
    unbound = resolver()
    assert unbound.query("ok.example.vn") == Answer("NOERROR", ["A 45.77.10.40"])
    assert unbound.query("blocked.example.vn") == Answer("NXDOMAIN", [])


def test_a_zone_the_parser_refuses_is_never_loaded_and_the_old_one_stays(
    bus: Settings, resolver: Callable[[], Unbound]
) -> None:
    with open_store(bus.store.ict_url) as store:
        decider = Decider(store, bus)
        request = _request("police", "BLOCK", domains=["blocked.example.vn"])
        decider.ingest(request, origin="test")
    path = blocklist_files(bus.ict.output_dir, ZONE).rpz
    entry = BlockEntry(TargetKind.DOMAIN, "blocked.example.vn", request.event_id, "police", "CV 1", 1, None)
    install_zone(path, render_rpz([entry], zone=ZONE, serial=1), ZONE)
    unbound = resolver()
    assert unbound.query("blocked.example.vn").status == "NXDOMAIN"

    # A zone Unbound would half-load or refuse: a record with an empty label, one with a bad type.
    broken = render_rpz([], zone=ZONE, serial=2) + "ok..example.vn CNAME .\nx CNAME\n"
    with pytest.raises(ZoneCheckError, match="old zone stays in force"):
        install_zone(path, broken, ZONE)
    unbound.reload()
    assert unbound.query("blocked.example.vn").status == "NXDOMAIN"  # still the old zone
    assert " 1 3600 600" in path.read_text()


def test_the_state_platforms_and_public_suffixes_are_not_blocked_even_when_auto_approved(
    bus: Settings, resolver: Callable[[], Unbound]
) -> None:
    names = ["chinhphu.vn", "baochinhphu.vn", "dichvucong.gov.vn", "fb.com", "m.facebook.com", "youtu.be",
             "shopee.com", "github.io", "blogspot.com", "com.vn"]  # fmt: skip
    request = domain_block_request(Agency.POLICE, domains=[*names, "blocked.example.vn"])
    with RouterThread(bus), ServiceThread(bus):
        [sent] = publish(bus, [request])
        result = _result_for(bus, sent.event_id)
    assert result["blocked"] == ["blocked.example.vn"]
    assert result["not_blocked"] == names
    note = str(result["note"])
    assert note.count("never-block list") == 7 and note.count("a public suffix") == 3
    unbound = resolver()
    assert unbound.query("blocked.example.vn").status == "NXDOMAIN"
    assert unbound.query("ok.example.vn").status == "NOERROR"


# --- what enters the bus ---------------------------------------------------------------------------------


def _env(settings: Settings) -> dict[str, str]:
    return {"BUS389_BOOTSTRAP": settings.bootstrap, "BUS389_TOPIC_PREFIX": settings.topic_prefix}


def test_control_characters_in_a_name_are_refused_before_anything_is_published(
    settings: Settings, bus389_cli: Cli, tmp_path: Path
) -> None:
    good = {
        "seller": {"name": "Cửa hàng Thu Trang"},
        "goods": "Mỹ phẩm",
        "summary": "Bán hàng giả\nnhiều lần",
    }
    bad = {**good, "seller": {"name": "Thu Trang\x1b[2J\x1b[1;1H\u202e"}}
    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps(good, ensure_ascii=False) + "\n" + json.dumps(bad, ensure_ascii=False) + "\n"
    )
    done = bus389_cli(
        "publish", "suspect_seller", "--as", "police", "--file", str(events), env=_env(settings)
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "\x1b" not in done.stderr and "\u202e" not in done.stderr
    assert f"{events}:2: seller.name: contains the control character U+001B" in done.stderr
    assert read_topic(settings, settings.topics.outbox(Agency.POLICE)) == []


def test_publish_of_an_endless_file_stops_at_the_limit(settings: Settings, bus389_cli: Cli) -> None:
    done = bus389_cli(
        "publish", "suspect_seller", "--as", "police", "--file", "/dev/zero", "--format", "jsonl",
        env={**_env(settings), "BUS389_INPUT__MAX_BYTES": "5000000"},
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: /dev/zero: larger than 5,000,000 bytes (BUS389_INPUT__MAX_BYTES): not read; split the file "
        "or raise the limit"
    )
    assert read_topic(settings, settings.topics.outbox(Agency.POLICE)) == []


def test_a_zip_bomb_workbook_is_refused_and_nothing_published(
    settings: Settings, bus389_cli: Cli, tmp_path: Path
) -> None:
    sample = Path(__file__).resolve().parents[2] / "examples" / "tax_undeclared_sellers.xlsx"
    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(sample.read_bytes())
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("xl/worksheets/sheet9.xml", "w", force_zip64=True) as part:
            chunk = b"<row><c><v>1</v></c></row>" * 40_000
            for _ in range(300_000_000 // len(chunk)):
                part.write(chunk)
    done = bus389_cli("tax", "publish-alerts", str(bomb), env=_env(settings))
    assert done.returncode == 1
    assert done.stderr.startswith("error: bomb.xlsx: the workbook expands to ")
    assert "Traceback" not in done.stderr
    assert read_topic(settings, settings.topics.outbox(Agency.TAX)) == []


def test_skip_invalid_writes_inert_cells_and_never_through_a_planted_link(
    settings: Settings, bus389_cli: Cli, tmp_path: Path
) -> None:
    sheet = tmp_path / "ban-ke.csv"
    sheet.write_text(
        "Mã số thuế;Tên người bán;Nền tảng;Tài khoản/URL;Doanh thu ước tính;Doanh thu đã kê khai;"
        "Kỳ tính thuế\n"
        "4300812345;Nguyễn Thị Hồng Nhung;Shopee;https://shopee.vn/x;1.845.600.000;420000000;Quý 3/2021\n"
        '12;=HYPERLINK("http://evil","Nhấn");Shopee;@SUM(1);-1;+1;Quý 3/2021\n',
        encoding="utf-8",
    )
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    for planted in ("ban-ke.rejected.csv", "ban-ke.rejected.csv.tmp"):
        (tmp_path / planted).symlink_to(victim)
    done = bus389_cli("tax", "publish-alerts", str(sheet), "--skip-invalid", env=_env(settings))
    assert done.returncode == 0, done.stdout + done.stderr
    assert victim.read_text() == "do not touch"
    rejected = tmp_path / "ban-ke.rejected.csv"
    assert not rejected.is_symlink()
    with rejected.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1][1:6] == ['\'=HYPERLINK("http://evil","Nhấn")', "Shopee", "'@SUM(1)", "'-1", "'+1"]
    assert len(read_topic(settings, settings.topics.outbox(Agency.TAX))) == 1
