"""What the ICT department writes stays data: RPZ triggers refused, zones parsed before use, CSV inert,
public suffixes and the state's and platforms' domains never blockable.

``named-checkzone`` is the real parser (Debian's bind9-utils, installed by
``deploy/install-system-packages.sh``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from bus389 import metrics
from bus389.consumers.ict.blocklist import (
    BlockEntry,
    blocklist_files,
    check_zone,
    install_zone,
    render_csv,
    render_rpz,
    render_txt,
    unsafe_owner,
    write_blocklist,
)
from bus389.consumers.ict.screening import TargetKind, screen_domain, screen_targets, screen_url
from bus389.errors import ZoneCheckError
from bus389.settings import Settings

R1 = "11111111-1111-4111-8111-111111111111"
NEVER_BLOCK = Settings().ict.never_block
ZONE = "rpz.test"


def _entry(target: str, kind: TargetKind = TargetKind.DOMAIN, legal_basis: str = "CV 12") -> BlockEntry:
    return BlockEntry(kind, target, R1, "police", legal_basis, 1614585600000, None)


# --- RPZ triggers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "1.0.0.0.0.rpz-ip",  # 0.0.0.0/1: half the internet
        "8.0.0.0.10.rpz-ip",  # 10.0.0.0/8, which the IP screening refuses
        "ns.rpz-nsdname",  # every domain served by that name server
        "32.1.0.0.127.rpz-nsip",
        "24.0.2.0.192.rpz-client-ip",
        "x.rpz-future-trigger.example.vn",  # any label starting rpz-
        "RPZ-IP.example.vn",
    ],
)
def test_screening_refuses_rpz_trigger_names(name: str) -> None:
    with pytest.raises(ValueError, match="RPZ trigger"):
        screen_domain(name, NEVER_BLOCK)
    result = screen_targets(
        domains=[name], urls=[f"http://{name}/"], ip_addresses=[], never_block=NEVER_BLOCK
    )
    assert result.accepted == ()
    assert [r.item for r in result.refused] == [name, f"http://{name}/"]
    assert all("RPZ trigger" in r.reason for r in result.refused)


def test_a_name_merely_containing_rpz_is_blockable() -> None:
    assert screen_domain("shop-rpz-ip.example.vn", NEVER_BLOCK) == "shop-rpz-ip.example.vn"


def test_the_writer_leaves_out_trigger_names_that_bypassed_screening() -> None:
    entries = [
        _entry("1.0.0.0.0.rpz-ip"),
        _entry("ns.rpz-nsdname"),
        _entry("hang-gia.example.vn"),
        _entry("45.77.10.20", TargetKind.IP),
    ]
    assert unsafe_owner("1.0.0.0.0.rpz-ip") is not None
    assert unsafe_owner("Hang-Gia.example.vn") is not None  # not normalised: not written either
    assert unsafe_owner("hang-gia.example.vn") is None
    zone = render_rpz(entries, zone=ZONE, serial=7)
    owners = [line.split()[0] for line in zone.splitlines() if line.endswith("CNAME .")]
    assert owners == ["hang-gia.example.vn", "*.hang-gia.example.vn", "32.20.10.77.45.rpz-ip"]
    assert render_txt(entries) == "hang-gia.example.vn\n"


def test_write_blocklist_counts_and_logs_what_it_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = metrics.REGISTRY.get_sample_value("bus389_ict_zone_entries_refused_total") or 0.0
    files = write_blocklist(
        [_entry("1.0.0.0.0.rpz-ip"), _entry("hang-gia.example.vn")], output_dir=tmp_path, zone=ZONE, serial=3
    )
    assert "rpz-ip" not in files.rpz.read_text()
    assert metrics.REGISTRY.get_sample_value("bus389_ict_zone_entries_refused_total") == before + 1
    assert "left out of the RPZ zone" in caplog.text


# --- the zone is parsed before it replaces the old one --------------------------------------------------


def test_a_good_zone_passes_named_checkzone(tmp_path: Path) -> None:
    path = tmp_path / "z.zone"
    path.write_text(
        render_rpz([_entry("hang-gia.example.vn", legal_basis="QĐ\x1b[2J 45")], zone=ZONE, serial=1)
    )
    check_zone(path, ZONE)


def test_a_zone_that_fails_the_check_is_not_installed_and_the_old_one_stays(tmp_path: Path) -> None:
    files = write_blocklist([_entry("hang-gia.example.vn")], output_dir=tmp_path, zone=ZONE, serial=1)
    old = {path: path.read_bytes() for path in files.all()}
    failed_before = (
        metrics.REGISTRY.get_sample_value("bus389_ict_zone_checks_total", {"result": "failed"}) or 0.0
    )

    broken = render_rpz([_entry("hang-gia.example.vn")], zone=ZONE, serial=2) + "bad..name CNAME .\n"
    with pytest.raises(ZoneCheckError, match="old zone stays in force"):
        install_zone(files.rpz, broken, ZONE, before=((files.txt, b"new.example.vn\n"),))

    assert {path: path.read_bytes() for path in files.all()} == old  # nothing written, not even the txt
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files.all())  # no temp left
    failed = metrics.REGISTRY.get_sample_value("bus389_ict_zone_checks_total", {"result": "failed"})
    assert failed == failed_before + 1


def test_zone_comments_show_control_characters(tmp_path: Path) -> None:
    zone = render_rpz([_entry("hang-gia.example.vn", legal_basis="QĐ 45\x1b[2J\u202e")], zone=ZONE, serial=1)
    assert "\x1b" not in zone and "\u202e" not in zone
    assert "QĐ 45\\x1b[2J<U+202E>" in zone


# --- the CSV export -----------------------------------------------------------------------------------


def test_the_csv_export_neutralises_formulas() -> None:
    text = render_csv([_entry("hang-gia.example.vn", legal_basis='=HYPERLINK("http://evil","CV 12")')])
    [_, row] = list(csv.reader(io.StringIO(text)))
    assert row[-1] == '\'=HYPERLINK("http://evil","CV 12")'
    assert row[0] == "hang-gia.example.vn"


# --- the Public Suffix List and the never-block defaults -------------------------------------------------


@pytest.mark.parametrize(
    "suffix",
    ["github.io", "blogspot.com", "com.vn", "net.vn", "edu.vn", "co.uk", "herokuapp.com", "vercel.app"],
)
def test_a_public_suffix_is_never_blockable(suffix: str) -> None:
    with pytest.raises(ValueError, match="public suffix"):
        screen_domain(suffix, ())
    assert screen_domain(f"hang-gia.{suffix}", ()) == f"hang-gia.{suffix}"  # one tenant is


@pytest.mark.parametrize(
    "name",
    [
        "gov.vn",
        "quangngai.gov.vn",
        "dichvucong.gov.vn",
        "chinhphu.vn",
        "vpcp.chinhphu.vn",
        "baochinhphu.vn",
        "quochoi.vn",
        "fb.com",
        "fb.me",
        "m.facebook.com",
        "facebook.com",
        "youtu.be",
        "m.youtube.com",
        "zalo.me",
        "shopee.vn",
        "shopee.com",
        "tiki.vn",
        "lazada.vn",
        "sendo.vn",
        "tiktok.com",
        "vt.tiktok.com",
    ],
)
def test_the_state_and_the_platforms_are_never_blockable_by_default(name: str) -> None:
    with pytest.raises(ValueError, match="never-block"):
        screen_domain(name, NEVER_BLOCK)
    with pytest.raises(ValueError, match="never-block"):
        screen_url(f"https://{name}/shop/123", NEVER_BLOCK)


def test_an_operator_extends_the_list_with_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    extended = [*NEVER_BLOCK, "quangngai.vn"]
    monkeypatch.setenv("BUS389_ICT__NEVER_BLOCK", str(extended).replace("'", '"'))
    never_block = Settings().ict.never_block
    assert "quangngai.vn" in never_block and "gov.vn" in never_block
    with pytest.raises(ValueError, match="never-block"):
        screen_domain("www.quangngai.vn", never_block)


def test_blocklist_files_are_not_written_through_planted_links(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    files = blocklist_files(out, ZONE)
    for path in files.all():
        path.symlink_to(victim)
    write_blocklist([_entry("hang-gia.example.vn")], output_dir=out, zone=ZONE, serial=1)
    assert victim.read_text() == "keep me"
    assert all(not path.is_symlink() for path in files.all())
    assert "hang-gia.example.vn CNAME ." in files.rpz.read_text()
