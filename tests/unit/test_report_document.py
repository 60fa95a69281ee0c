"""The report as a Decree 30 Word document, its charts, the case reports and one entity's history.

The .docx is opened with python-docx and read part by part (header, title, body, charts, recipients,
signer); the CLI is driven through click's CliRunner for the errors a user meets.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from pathlib import Path

import docx
import pytest
from _report_docs import NOW, SIGNER_ENV, scenario_store
from _so_records import eid
from click.testing import CliRunner
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn

from bus389.cli.main import cli
from bus389.consumers.standing_office.charts import VIETNAMESE_LETTERS, charts_for
from bus389.consumers.standing_office.document import FONT, MOTTO, NATIONAL_TITLE, date_line
from bus389.consumers.standing_office.history import lookup_keys
from bus389.consumers.standing_office.output import report_output
from bus389.consumers.standing_office.period import Period
from bus389.consumers.standing_office.render import render_html
from bus389.consumers.standing_office.report import build_report
from bus389.consumers.standing_office.report_model import SixMonthReport
from bus389.consumers.standing_office.store import StandingOfficeStore
from bus389.errors import ConfigError, InputError
from bus389.settings import ReportSettings

PNG = b"\x89PNG\r\n\x1a\n"
SETTINGS = ReportSettings(
    signer_name="Nguyễn Văn An",
    signer_title="Phó Trưởng ban",
    signer_authority="KT. Trưởng ban",
    number_symbol="12/BC-BCĐ389",
    recipients=("Ban Chỉ đạo 389 quốc gia", "UBND tỉnh Quảng Ngãi", "Lưu: VT"),
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> SixMonthReport:
    url, _ = scenario_store(tmp_path_factory.mktemp("so") / "so.sqlite3")
    with StandingOfficeStore.open(url, create=False) as store:
        return build_report(store, Period.parse("2021-H1"), settings=SETTINGS, now=NOW)


@pytest.fixture(scope="module")
def document_bytes(report: SixMonthReport) -> bytes:
    return report_output(report, "docx", SETTINGS, stem="2021-H1").data


def _texts(cell: object) -> list[str]:
    return [p.text for p in cell.paragraphs if p.text]  # type: ignore[attr-defined]


def test_the_header_has_the_issuer_number_national_title_motto_place_and_date(document_bytes: bytes) -> None:
    document = docx.Document(io.BytesIO(document_bytes))
    header = document.tables[0]
    left, right = header.rows[0].cells
    assert _texts(left) == ["UBND TỈNH QUẢNG NGÃI", "BCĐ 389 TỈNH QUẢNG NGÃI", "Số: 12/BC-BCĐ389"]
    assert left.paragraphs[1].runs[0].bold  # the issuing body is bold
    assert _texts(right) == [NATIONAL_TITLE, MOTTO, "Quảng Ngãi, ngày 10 tháng 07 năm 2021"]
    assert right.paragraphs[0].runs[0].bold and right.paragraphs[1].runs[0].bold
    assert right.paragraphs[-1].runs[0].italic
    # the header table draws no borders
    assert 'w:val="nil"' in header._tbl.tblPr.xml


def test_the_title_body_recipients_and_signer(document_bytes: bytes) -> None:
    document = docx.Document(io.BytesIO(document_bytes))
    texts = [p.text for p in document.paragraphs]
    kind = texts.index("BÁO CÁO")
    title = document.paragraphs[kind]
    assert title.alignment == WD_ALIGN_PARAGRAPH.CENTER and title.runs[0].bold
    assert texts[kind + 1].endswith("6 tháng đầu năm 2021")
    for heading in (
        "1. Số sự kiện theo loại",
        "5. Đối chiếu thông tin giữa các cơ quan",
        "6. So sánh với các kỳ trước",
    ):
        assert heading in texts
    # the layout's own first heading is replaced by the document's title
    assert "Báo cáo sáu tháng 2021-H1" not in texts
    footer = document.tables[-1]
    left, right = footer.rows[0].cells
    assert _texts(left) == [
        "Nơi nhận:",
        "- Ban Chỉ đạo 389 quốc gia;",
        "- UBND tỉnh Quảng Ngãi;",
        "- Lưu: VT.",
    ]
    assert left.paragraphs[0].runs[0].bold and left.paragraphs[0].runs[0].italic
    assert _texts(right) == ["KT. TRƯỞNG BAN", "PHÓ TRƯỞNG BAN", "Nguyễn Văn An"]
    assert all(p.runs[0].bold for p in right.paragraphs if p.text)


def test_tables_carry_the_figures(document_bytes: bytes, report: SixMonthReport) -> None:
    document = docx.Document(io.BytesIO(document_bytes))
    by_type = document.tables[1]
    assert by_type.rows[0].cells[0].text == "Cơ quan"
    total = by_type.rows[-1].cells
    assert total[0].text == "Tổng cộng" and total[-1].text == str(report.events_total)
    every_cell = {c.text for t in document.tables for r in t.rows for c in r.cells}
    assert "1.730.000.000 ₫" in every_cell  # the tax office's undeclared revenue, written the Vietnamese way
    assert "Kỳ trước" in every_cell and "Sau kỳ" in every_cell  # the correlation across time


def test_a4_margins_and_times_new_roman_everywhere(document_bytes: bytes) -> None:
    document = docx.Document(io.BytesIO(document_bytes))
    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)
    assert (round(section.left_margin.mm), round(section.right_margin.mm)) == (30, 15)
    assert (round(section.top_margin.mm), round(section.bottom_margin.mm)) == (20, 20)
    xml = zipfile.ZipFile(io.BytesIO(document_bytes)).read("word/document.xml").decode("utf-8")
    assert "w:asciiTheme" not in xml
    # the styles the document uses name Times New Roman for every script, never the theme's font
    for name in ("Normal", "Heading 1", "Heading 2", "Heading 3", "Caption", "Table Grid"):
        fonts = document.styles[name].element.rPr.rFonts
        assert {fonts.get(qn(f"w:{a}")) for a in ("ascii", "hAnsi", "cs", "eastAsia")} == {FONT}, name
        assert fonts.get(qn("w:asciiTheme")) is None, name
    runs = [r for p in document.paragraphs for r in p.runs if r.text.strip()]
    assert runs and all(r.font.name == FONT for r in runs)


def test_vietnamese_is_written_nfc_byte_for_byte(document_bytes: bytes) -> None:
    xml = zipfile.ZipFile(io.BytesIO(document_bytes)).read("word/document.xml")
    for text in ("Nguyễn Văn Hùng", "NGUYỄN  VĂN  HÙNG", NATIONAL_TITLE, "Độc lập - Tự do - Hạnh phúc"):
        assert unicodedata.normalize("NFC", text).encode("utf-8") in xml
    assert unicodedata.normalize("NFD", "NGUYỄN").encode("utf-8") not in xml


def test_the_charts_are_in_the_document_and_the_html(document_bytes: bytes, report: SixMonthReport) -> None:
    charts = charts_for(report)
    assert [c.title.split(",")[0] for c in charts][:2] == [
        "Số sự kiện theo cơ quan và loại",
        "Yêu cầu chặn tên miền: kết quả và thời gian đến kết quả",
    ]
    assert len(charts) == 4 and all(c.png.startswith(PNG) for c in charts)
    document = docx.Document(io.BytesIO(document_bytes))
    assert len(document.inline_shapes) == 4
    captions = [p.text for p in document.paragraphs if p.text.startswith("Biểu đồ ")]
    assert captions == [f"Biểu đồ {i}. {c.title}" for i, c in enumerate(charts, start=1)]
    page = render_html(report, charts)
    assert page.count('<img src="data:image/png;base64,') == 4
    assert "http://" not in page and "https://" not in page  # nothing fetched


def test_no_chart_for_an_empty_period() -> None:
    with StandingOfficeStore.open("sqlite:///:memory:") as store:
        empty = build_report(store, Period.parse("2021-H1"), now=NOW)
    assert charts_for(empty) == []


def test_date_line_pads_day_and_month() -> None:
    assert date_line("Quảng Ngãi", NOW.replace(month=1, day=5)) == "Quảng Ngãi, ngày 05 tháng 01 năm 2021"


def test_a_document_without_a_signer_is_refused(report: SixMonthReport) -> None:
    with pytest.raises(ConfigError, match="BUS389_REPORT__SIGNER_NAME is not set"):
        report_output(report, "docx", ReportSettings(), stem="x")
    with pytest.raises(ConfigError, match="BUS389_REPORT__SIGNER_TITLE is not set"):
        report_output(report, "docx", ReportSettings(signer_name="A"), stem="x")


def test_the_vietnamese_letters_cover_the_alphabet() -> None:
    assert len(VIETNAMESE_LETTERS) == 89 and len(set(VIETNAMESE_LETTERS)) == 89


# --- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url, _ = scenario_store(tmp_path / "so.sqlite3")
    return {"BUS389_STORE__STANDING_OFFICE_URL": url, **SIGNER_ENV}


def test_docx_is_written_under_its_default_name(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "out"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(cli, ["report", "--period", "2021-H1", "--format", "docx"], env=env)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in cwd.iterdir()) == ["bao-cao-2021-H1.docx"]
    document = docx.Document(str(cwd / "bao-cao-2021-H1.docx"))
    assert document.tables[-1].rows[0].cells[1].paragraphs[-1].text == "Nguyễn Văn An"


def test_missing_signer_names_the_setting_and_writes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in env.items() if "SIGNER" not in k}
    out = tmp_path / "bao-cao.docx"
    result = CliRunner().invoke(
        cli, ["report", "--period", "2021-H1", "--format", "docx", "--out", str(out)], env=env
    )
    assert result.exit_code == 2
    assert "BUS389_REPORT__SIGNER_NAME is not set" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_a_future_period_is_refused(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["report", "--period", "2999-H1"], env=env)
    assert result.exit_code == 1
    assert "period 2999-H1 has not begun" in result.output


def test_a_document_for_a_period_without_events_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "bao-cao.docx"
    result = CliRunner().invoke(
        cli, ["report", "--period", "2019-H1", "--format", "docx", "--out", str(out)], env=env
    )
    assert result.exit_code == 1
    assert "period 2019-H1 has no event" in result.output
    assert not out.exists()
    # the text report of an empty period says so, and is still written
    result = CliRunner().invoke(cli, ["report", "--period", "2019-H1"], env=env)
    assert result.exit_code == 0 and "Không có sự kiện nào trong kỳ." in result.output


def test_rapid_report_of_a_case(env: dict[str, str], tmp_path: Path) -> None:
    _, scenario = scenario_store(tmp_path / "again.sqlite3")
    env = {**env, "BUS389_STORE__STANDING_OFFICE_URL": f"sqlite:///{tmp_path / 'again.sqlite3'}"}
    result = CliRunner().invoke(cli, ["report", "--kind", "rapid", "--case", "QLTT-2021-001"], env=env)
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith("# Báo cáo nhanh vụ việc QLTT-2021-001")
    assert eid(scenario.r1) in text and eid(scenario.out_r1) in text  # the referral and the police's outcome
    assert "Tình trạng: đã có kết quả xử lý" in text
    assert "15.000.000 ₫" in text
    # who the routing delivered the referral to, by the router's own decision
    referral_row = next(
        line for line in text.splitlines() if eid(scenario.r1) in line and "Chuyển giao" in line
    )
    assert "Công an tỉnh" in referral_row


def test_typical_case_must_be_closed(env: dict[str, str]) -> None:
    ok = CliRunner().invoke(cli, ["report", "--kind", "typical", "--case", "QLTT-2021-001"], env=env)
    assert ok.exit_code == 0 and ok.output.startswith("# Báo cáo vụ việc điển hình QLTT-2021-001")
    open_case = CliRunner().invoke(cli, ["report", "--kind", "typical", "--case", "BP-2020-07"], env=env)
    assert open_case.exit_code == 1 and "is not closed" in open_case.output
    unknown = CliRunner().invoke(cli, ["report", "--kind", "rapid", "--case", "NO-SUCH-CASE"], env=env)
    assert unknown.exit_code == 1 and "holds no event of this case" in unknown.output
    missing = CliRunner().invoke(cli, ["report", "--kind", "rapid"], env=env)
    assert missing.exit_code == 2 and "--case REF" in missing.output


def test_correlate_shows_the_whole_history_of_a_tax_code(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["report", "--correlate", "0312 345 678"], env=env)
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith("# Lịch sử báo cáo: 0312 345 678")
    # before, in and after 2021-H1, from the police, the tax office and the standing office
    for day in ("31/12/2020", "15/02/2021", "20/03/2021", "01/07/2021"):
        assert day in text
    assert "Công an tỉnh" in text and "Cục Thuế tỉnh" in text
    # Markdown: a sender's parentheses are escaped, so that no name can become a link
    assert "NGUYỄN  VĂN  HÙNG \\(MST 0312 345 678\\)" in text
    assert "Nguyễn Văn Hùng \\(MST 0312345678\\)" in text


def test_correlate_by_phone_and_domain(env: dict[str, str]) -> None:
    phone = CliRunner().invoke(cli, ["report", "--correlate", "+84 912 345 678"], env=env)
    assert phone.exit_code == 0 and "Số báo cáo: 4" in phone.output, phone.output
    domain = CliRunner().invoke(cli, ["report", "--correlate", "https://www.HangXachTay-Hung.vn/x"], env=env)
    assert domain.exit_code == 0 and "hangxachtay-hung.vn" in domain.output


@pytest.mark.parametrize("value", ["", "   ", "hello", "a\x1b[2Jb", "x" * 400])
def test_correlate_rejects_what_is_no_key(value: str) -> None:
    with pytest.raises(InputError, match="--correlate"):
        lookup_keys(value)


def test_lookup_keys_reads_each_kind() -> None:
    assert lookup_keys("0312345678") == [("tax_code", "0312345678"), ("phone", "0312345678")]
    assert lookup_keys("0312345678-001") == [("tax_code", "0312345678-001")]
    assert lookup_keys("shop.vn") == [("domain", "shop.vn")]


def test_send_options_go_after_send(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["report", "--period", "2021-H1", "send", "--to", "a@b.vn"], env=env)
    assert result.exit_code == 2 and "after `report send`" in result.output


def test_text_that_looks_like_markup_stays_text(tmp_path: Path) -> None:
    from _so_records import seller, suspect_seller, vn

    hostile = "<w:p><w:r><w:t>Giả mạo</w:t></w:r></w:p> & =cmd|'/C calc'!A0 <script>alert(1)</script>"
    with StandingOfficeStore.open("sqlite:///:memory:") as store:
        store.add_event(suspect_seller("police", vn(2021, 2, 1), seller(hostile, tax_code="0312345678")))
        store.add_event(suspect_seller("customs", vn(2021, 2, 2), seller(hostile, tax_code="0312345678")))
        model = build_report(store, Period.parse("2021-H1"), now=NOW)
    data = report_output(model, "docx", SETTINGS, stem="x").data
    document = docx.Document(io.BytesIO(data))
    cells = {c.text for t in document.tables for r in t.rows for c in r.cells}
    assert f"{hostile} (MST 0312345678)" in cells  # read back as the very text
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode("utf-8")
    assert "<w:t>Giả mạo</w:t>" not in xml and "&lt;w:p&gt;&lt;w:r&gt;&lt;w:t&gt;Giả mạo" in xml
    page = render_html(model, charts_for(model))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
