"""The report's PDF: the Decree 30 document converted by a real LibreOffice, read back with poppler.

pdftotext proves the Vietnamese text is in the PDF as text (not pictures of it), pdffonts that the
font is Times New Roman or its metric twin, pdftoppm that the first page renders.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _report_docs import SIGNER_ENV, scenario_store
from click.testing import CliRunner

from bus389.cli.main import cli
from bus389.consumers.standing_office.document import MOTTO, NATIONAL_TITLE
from bus389.consumers.standing_office.pdf import docx_to_pdf
from bus389.errors import DocumentError

PNG = b"\x89PNG\r\n\x1a\n"


def _run(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, check=True, text=True).stdout


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("pdf")
    url, _ = scenario_store(work / "so.sqlite3")
    out = work / "bao-cao-2021-H1.pdf"
    env = {
        "BUS389_STORE__STANDING_OFFICE_URL": url,
        "BUS389_REPORT__NUMBER_SYMBOL": "12/BC-BCĐ389",
        **SIGNER_ENV,
    }
    result = CliRunner().invoke(
        cli, ["report", "--period", "2021-H1", "--format", "pdf", "--out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in work.iterdir()) == [
        "bao-cao-2021-H1.pdf",
        "so.sqlite3",
    ]  # no temporary left
    return out


def test_the_pdf_text_has_every_part_of_the_document(pdf: Path) -> None:
    text = _run("pdftotext", str(pdf), "-")
    flat = " ".join(text.split())
    for part in (
        NATIONAL_TITLE,
        MOTTO,
        "UBND TỈNH QUẢNG NGÃI",
        "BCĐ 389 TỈNH QUẢNG NGÃI",
        "Số: 12/BC-BCĐ389",
        "BÁO CÁO",
        "6 tháng đầu năm 2021",
        "1. Số sự kiện theo loại",
        "5. Đối chiếu thông tin giữa các cơ quan",
        "Nguyễn Văn Hùng",
        "1.730.000.000 ₫",
        "Nơi nhận:",
        "KT. TRƯỞNG BAN",
        "PHÓ TRƯỞNG BAN",
        "Nguyễn Văn An",
        "Biểu đồ 1.",
    ):
        assert part in flat, part


def test_the_pdf_uses_times_new_roman_or_its_metric_twin(pdf: Path) -> None:
    fonts = _run("pdffonts", str(pdf))
    names = [line.split()[0].split("+")[-1] for line in fonts.splitlines()[2:] if line.strip()]
    body = [n for n in names if not n.startswith("DejaVu")]  # the charts' text is in the PNGs, not fonts
    assert body and all(n.startswith(("TimesNewRoman", "LiberationSerif")) for n in body), names


def test_the_first_page_renders(pdf: Path, tmp_path: Path) -> None:
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf), str(tmp_path / "first")], check=True
    )
    data = (tmp_path / "first.png").read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000


def test_no_converter_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    url, _ = scenario_store(tmp_path / "so.sqlite3")
    out = tmp_path / "bao-cao.pdf"
    env = {"BUS389_STORE__STANDING_OFFICE_URL": url, "PATH": str(tmp_path / "empty-bin"), **SIGNER_ENV}
    result = CliRunner().invoke(
        cli, ["report", "--period", "2021-H1", "--format", "pdf", "--out", str(out)], env=env
    )
    assert result.exit_code == 5
    assert (
        "'soffice' (LibreOffice) is not installed" in result.output
        and "libreoffice-writer-nogui" in result.output
    )
    assert not out.exists()


def test_a_failing_converter_is_a_clear_error() -> None:
    with pytest.raises(DocumentError, match="false exited 1 without a PDF"):
        docx_to_pdf(b"PK\x03\x04", converter="false")
