"""Control characters refused by the models and shown inert by the CLI; files written without following
planted links and with the user's umask; every credential-bearing setting a secret."""

from __future__ import annotations

import json
import os
import stat
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from _ict_records import request_record
from _so_records import seller, suspect_seller, vn
from click.testing import CliRunner
from pydantic import ValidationError

from bus389.agencies import Agency
from bus389.atomic_files import write_file
from bus389.cli.main import cli
from bus389.config_file import load_config_values, stage_private_file
from bus389.consumers.ict.decisions import BlockRequest, Decider
from bus389.consumers.ict.store import open_store
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.errors import ConfigError, InputError
from bus389.events import build_event
from bus389.settings import Settings, StoreSettings

SELLER_EVENT: dict[str, Any] = {
    "seller": {"name": "Cửa hàng Hồng Nhung", "tax_code": "4300812345", "phone": "0912 345 678"},
    "accounts": [{"platform": "SHOPEE", "account": "hongnhung.shop"}],
    "goods": "Mỹ phẩm",
    "summary": "Bán mỹ phẩm giả",
    "domains": ["hong-nhung.example.vn"],
    "meta": {"case_ref": "VA-2021-017"},
}


def _with(path: tuple[str | int, ...], value: str) -> dict[str, Any]:
    data = json.loads(json.dumps(SELLER_EVENT))
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


# --- the models -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["\x00", "\x1b[2J", "\t", "\n", "\r", "\x7f", "\x85", "\x9b", "\u202e", "\u2066", "\u200f", "\u061c"],
)
@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("seller", "name"), "seller.name"),
        (("accounts", 0, "account"), "accounts.0.account"),
        (("meta", "case_ref"), "meta.case_ref"),
        (("seller", "tax_code"), "seller.tax_code"),
        (("seller", "phone"), "seller.phone"),
        (("domains", 0), "domains.0"),
    ],
)
def test_identifiers_refuse_every_control_character(
    path: tuple[str | int, ...], field: str, bad: str
) -> None:
    original = _value_at(path)
    with pytest.raises(ValidationError) as caught:
        build_event("suspect_seller", Agency.POLICE, _with(path, original[:4] + bad + original[4:]))
    [error] = caught.value.errors()
    assert ".".join(str(p) for p in error["loc"]) == field


def _value_at(path: tuple[str | int, ...]) -> str:
    target: Any = SELLER_EVENT
    for part in path:
        target = target[part]
    return str(target)


@pytest.mark.parametrize("bad", ["\x00", "\x1b[2J", "\x07", "\x9b", "\u202e", "\u2067"])
def test_free_text_refuses_controls_other_than_line_breaks(bad: str) -> None:
    with pytest.raises(ValidationError, match=r"summary\n.*control character U\+"):
        build_event("suspect_seller", Agency.POLICE, _with(("summary",), f"Bán{bad} hàng giả"))


def test_free_text_keeps_lines_and_tabs_and_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Bán hàng giả\n\tnhãn hiệu Việt Tiến\r\n")
    event = build_event("suspect_seller", Agency.POLICE, _with(("summary",), decomposed))
    assert event.summary == unicodedata.normalize("NFC", decomposed)  # type: ignore[attr-defined]
    name = unicodedata.normalize("NFD", "Nguyễn Thị Hồng Nhung")
    event = build_event("suspect_seller", Agency.POLICE, _with(("seller", "name"), name))
    assert event.seller.name == "Nguyễn Thị Hồng Nhung"  # type: ignore[attr-defined]


# --- the terminal ---------------------------------------------------------------------------------------


@pytest.fixture
def ict_env(tmp_path: Path) -> dict[str, str]:
    return {
        "BUS389_STORE__ICT_URL": f"sqlite:///{tmp_path / 'ict.sqlite3'}",
        "BUS389_ICT__OUTPUT_DIR": str(tmp_path / "blocklist"),
        "BUS389_ICT__RPZ_ZONE": "rpz.test",
    }


def test_ict_pending_shows_escape_sequences_and_fake_lines_inert(ict_env: dict[str, str]) -> None:
    # Straight into the store (as a record from an older version could be): the CLI is the last guard.
    record = request_record(legal_basis="CV 12\x1b[2J\x1b[H", case_ref="VA\u202e71")
    record["reason"] = "Bán hàng giả\n0 request(s)\x1b]0;owned\x07"
    settings = Settings(store=StoreSettings(ict_url=ict_env["BUS389_STORE__ICT_URL"]))
    with open_store(settings.store.ict_url) as store:
        Decider(store, settings).ingest(BlockRequest.from_record(record), origin="t/0/0")
    result = CliRunner().invoke(cli, ["ict", "pending"], env=ict_env, catch_exceptions=False)
    assert result.exit_code == 0
    out = result.stdout
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in out
    assert "legal basis: CV 12\\x1b[2J\\x1b[H" in out
    assert "reason: Bán hàng giả\\x0a0 request(s)\\x1b]0;owned\\x07" in out
    assert "case: VA<U+202E>71" in out
    assert out.splitlines()[-1] == "1 request(s)"

    result = CliRunner().invoke(cli, ["ict", "pending", "--json"], env=ict_env, catch_exceptions=False)
    [line] = result.stdout.splitlines()
    assert "\x1b" not in line and "\u202e" not in line
    assert json.loads(line)["reason"] == record["reason"]  # the data itself is unchanged


def test_report_on_a_terminal_shows_controls_and_escapes_markdown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'so.sqlite3'}"
    with StandingOfficeStore.open(url) as store:
        who = seller("[Bấm đây](http://evil.example) \x1b[2J")
        store.add_event(suspect_seller("police", vn(2021, 2, 1), who))
        store.add_event(suspect_seller("customs", vn(2021, 2, 3), who))
    env = {"BUS389_STORE__STANDING_OFFICE_URL": url}
    result = CliRunner().invoke(cli, ["report", "--period", "2021-H1"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert "](http" not in result.stdout
    assert "\\[Bấm đây\\]\\(http\\://evil.example\\) \\x1b\\[2J" in result.stdout

    result = CliRunner().invoke(cli, ["report", "--period", "2021-H1", "--format", "csv"], env=env)
    assert "\x1b" not in result.stdout


# --- files ----------------------------------------------------------------------------------------------


def test_report_out_replaces_a_planted_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'so.sqlite3'}"
    with StandingOfficeStore.open(url) as store:
        store.add_event(suspect_seller("police", vn(2021, 2, 1), seller("Nguyễn Văn Hùng")))
    victim = tmp_path / "victim.txt"
    victim.write_text("do not overwrite")
    out = tmp_path / "bao-cao.md"
    out.symlink_to(victim)
    env = {"BUS389_STORE__STANDING_OFFICE_URL": url}
    old_umask = os.umask(0o027)
    try:
        result = CliRunner().invoke(cli, ["report", "--period", "2021-H1", "--out", str(out)], env=env)
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "do not overwrite"
    assert not out.is_symlink()
    assert out.read_text(encoding="utf-8").startswith("# Báo cáo sáu tháng 2021-H1")
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # the umask, not a forced 0644


@pytest.mark.parametrize("case", ["folder", "under_a_file", "name_too_long"])
def test_report_out_path_errors_are_one_line(tmp_path: Path, case: str) -> None:
    url = f"sqlite:///{tmp_path / 'so.sqlite3'}"
    with StandingOfficeStore.open(url):
        pass
    if case == "folder":
        out = tmp_path / "a-folder"
        out.mkdir()
    elif case == "under_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "bao-cao.md"
    else:
        out = tmp_path / ("bao-cao-" + "x" * 300 + ".md")
    result = CliRunner().invoke(
        cli,
        ["report", "--period", "2021-H1", "--out", str(out)],
        env={"BUS389_STORE__STANDING_OFFICE_URL": url},
    )
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 4  # click's usage lines or one error line
    assert out.name[:50] in result.output


def test_write_file_never_follows_a_link_planted_at_a_temporary_name(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    # Every name the old code used (<name>.tmp) and a swarm of guesses: none is opened.
    (tmp_path / "out.csv.tmp").symlink_to(victim)
    write_file(tmp_path / "out.csv", b"a,b\r\n")
    assert victim.read_text() == "keep"
    assert (tmp_path / "out.csv").read_bytes() == b"a,b\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.csv.tmp", "victim"]


def test_private_staging_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        tmp = stage_private_file(tmp_path / "client.properties", "password=x\n")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
    with pytest.raises(InputError, match=r"cannot write .*missing/x: No such file or directory"):
        write_file(tmp_path / "missing" / "x", b"")


def test_the_tax_rejected_rows_file_is_not_written_through_a_link(tmp_path: Path) -> None:
    from bus389.producers.tax.id_key import AlertIdKey
    from bus389.producers.tax.publish import prepare_alerts, rejected_path, write_rejected

    sheet = tmp_path / "ban-ke.csv"
    sheet.write_text(
        "Mã số thuế,Tên người bán,Nền tảng,Tài khoản/URL,Doanh thu ước tính,Doanh thu đã kê khai,"
        "Kỳ tính thuế\n"
        '123,=HYPERLINK("http://evil";"x"),Shopee,x,-1,1,Quý 3/2021\n',
        encoding="utf-8",
    )
    table, _, _, rejected = prepare_alerts(Settings(), sheet, id_key=AlertIdKey(b"k" * 32))
    assert rejected
    victim = tmp_path / "victim"
    victim.write_text("keep")
    target = rejected_path(sheet)
    Path(str(target) + ".tmp").symlink_to(victim)
    target.symlink_to(victim)
    write_rejected(table, rejected, target)
    assert victim.read_text() == "keep"
    text = target.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "'-1" in text
    assert ",=HYPERLINK" not in text


# --- secrets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "BUS389_STORE__STANDING_OFFICE_URL=postgresql://bus389:S3cret-pw@db.local/bus389",
        "BUS389_STORE__ICT_URL='postgres://u:S3cret-pw@h/db'",
        "BUS389_METRICS__PUSHGATEWAY_URL=https://ops:S3cret-pw@push.local",
        "BUS389_KAFKA__PASSWORD=S3cret-pw",
    ],
)
def test_a_credential_in_a_readable_config_file_is_refused_without_echoing_it(
    tmp_path: Path, line: str
) -> None:
    config = tmp_path / "bus389.env"
    config.write_text(line + "\n")
    config.chmod(0o644)
    with pytest.raises(ConfigError, match=r"holds a password .* run `chmod 600") as caught:
        load_config_values(config)
    assert "S3cret-pw" not in str(caught.value)
    config.chmod(0o600)
    assert load_config_values(config)


def test_a_url_without_a_password_needs_no_0600(tmp_path: Path) -> None:
    config = tmp_path / "bus389.env"
    config.write_text("BUS389_STORE__STANDING_OFFICE_URL=postgresql://bus389@db.local/bus389\n")
    config.chmod(0o644)
    assert load_config_values(config) == {
        "store": {"standing_office_url": "postgresql://bus389@db.local/bus389"}
    }


def test_an_error_printing_a_store_url_masks_its_password(tmp_path: Path) -> None:
    env = {"BUS389_STORE__ICT_URL": "postgresql://bus389:S3cret-pw@db.local/ict"}
    result = CliRunner().invoke(cli, ["ict", "pending"], env=env)
    assert result.exit_code != 0
    assert "S3cret-pw" not in result.output
    assert "postgresql://bus389:***@db.local/ict" in result.output
    env = {"BUS389_STORE__STANDING_OFFICE_URL": "mysql://bus389:S3cret-pw@db.local/so"}
    result = CliRunner().invoke(cli, ["report", "--period", "2021-H1"], env=env)
    assert result.exit_code != 0
    assert "S3cret-pw" not in result.output and "mysql://bus389:***@db.local/so" in result.output
