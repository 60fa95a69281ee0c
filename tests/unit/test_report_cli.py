"""``bus389 report`` through click's CliRunner: formats, --out written atomically, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from _so_records import seller, suspect_seller, tax_discrepancy, vn
from click.testing import CliRunner

from bus389.cli.main import cli
from bus389.consumers.standing_office.store import StandingOfficeStore


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'so.sqlite3'}"
    with StandingOfficeStore.open(url) as store:
        who = seller("Nguyễn Văn Hùng", tax_code="0312345678")
        store.add_event(suspect_seller("police", vn(2021, 2, 1), who))
        store.add_event(tax_discrepancy(vn(2021, 2, 2), who, undeclared=2_500_000, owed=175_000))
    return {"BUS389_STORE__STANDING_OFFICE_URL": url}


def test_markdown_to_stdout(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["report", "--period", "2021-H1"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Báo cáo sáu tháng 2021-H1")
    assert "2.500.000 ₫" in result.stdout and "175.000 ₫" in result.stdout
    assert "2 cơ quan báo cáo: Công an tỉnh, Cục Thuế tỉnh" in result.stdout


@pytest.mark.parametrize(
    ("fmt", "start"), [("html", b"<!DOCTYPE html>"), ("csv", b"\xef\xbb\xbf"), ("md", b"# ")]
)
def test_out_writes_the_file(env: dict[str, str], tmp_path: Path, fmt: str, start: bytes) -> None:
    out = tmp_path / "reports" / f"bao-cao.{fmt}"
    out.parent.mkdir()
    out.write_text("old report")
    result = CliRunner().invoke(
        cli, ["report", "--period", "2021-h1", "--format", fmt, "--out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    data = out.read_bytes()
    assert data.startswith(start)
    assert "Nguyễn Văn Hùng".encode() in data
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporary file left behind


@pytest.mark.parametrize("period", ["2021-H3", "2021", "2021-Q1", "H1"])
def test_a_malformed_period_exits_non_zero_with_a_clear_message(env: dict[str, str], period: str) -> None:
    result = CliRunner().invoke(cli, ["report", "--period", period], env=env)
    assert result.exit_code == 2
    assert "--period" in result.output and "YYYY-H1 (January–June)" in result.output
    assert "Traceback" not in result.output


def test_a_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    env = {"BUS389_STORE__STANDING_OFFICE_URL": f"sqlite:///{tmp_path / 'missing.sqlite3'}"}
    result = CliRunner().invoke(cli, ["report", "--period", "2021-H1"], env=env)
    assert result.exit_code == 1
    assert "no standing office store" in result.output
    assert not (tmp_path / "missing.sqlite3").exists()


def test_help_has_an_example() -> None:
    for args in (["report", "--help"], ["serve", "--help"], ["serve", "standing-office", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0
        assert "Example:" in result.output
