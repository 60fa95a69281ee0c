"""The report's renderers: Vietnamese labels, Vietnamese money, CSV for Excel, HTML escaping."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from _so_records import (
    case_outcome,
    case_referral,
    domain_block_request,
    domain_block_result,
    seller,
    suspect_seller,
    tax_discrepancy,
    vn,
)

from bus389.agencies import AGENCY_INFO, Agency
from bus389.consumers.standing_office.render import format_duration, format_vnd, render
from bus389.consumers.standing_office.report import Period, SixMonthReport, build_report
from bus389.consumers.standing_office.store import StandingOfficeStore

HOSTILE = "Shop <script>alert('x')</script> & \"Hùng\" | Co"


@pytest.fixture
def report() -> Iterator[SixMonthReport]:
    with StandingOfficeStore.open("sqlite:///:memory:") as store:
        who = seller(HOSTILE, tax_code="0312345678")
        store.add_event(suspect_seller("police", vn(2021, 2, 1), who))
        store.add_event(tax_discrepancy(vn(2021, 2, 2), who, undeclared=1_234_567, owed=123_456))
        request = domain_block_request("police", vn(2021, 3, 1, 8), ["hangxachtay.vn"])
        store.add_event(request)
        store.add_event(domain_block_result(request, "BLOCKED", vn(2021, 3, 2, 10, 30)))
        store.add_event(
            case_referral("market_surveillance", vn(2021, 4, 1), "QLTT-9", seller("Đặng Thị Hoa"))
        )
        store.add_event(case_outcome("police", vn(2021, 4, 20), "QLTT-9", fine=15_000_000, goods="Giày giả"))
        store.add_event(domain_block_request("customs", vn(2021, 5, 1), ["khongtraloi.vn"]))
        yield build_report(store, Period.parse("2021-H1"), now=vn(2021, 7, 3))


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0, "0 ₫"),
        (999, "999 ₫"),
        (1_234_567, "1.234.567 ₫"),
        (1_000_000_000, "1.000.000.000 ₫"),
        (-5_000, "-5.000 ₫"),
    ],
)
def test_money_is_written_the_vietnamese_way(amount: int, text: str) -> None:
    assert format_vnd(amount) == text


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(seconds=30), "0 phút"),
        (timedelta(hours=26, minutes=30), "1 ngày 2 giờ 30 phút"),
        (timedelta(days=2), "2 ngày"),
        (timedelta(hours=5), "5 giờ"),
        (None, "—"),
    ],
)
def test_durations(span: timedelta | None, text: str) -> None:
    assert format_duration(span) == text


def test_markdown_has_vietnamese_labels_and_figures(report: SixMonthReport) -> None:
    text = render(report, "md")
    assert text.startswith("# Báo cáo sáu tháng 2021-H1\n")
    for label in (
        "Kỳ báo cáo: 01/01/2021 – 30/06/2021",
        "Số sự kiện theo loại",
        "| Cơ quan |",
        "Chi tiết theo cơ quan",
        "Yêu cầu chặn tên miền",
        "Thành viên chưa gửi báo cáo sáu tháng",
        "Yêu cầu quá hạn chưa được trả lời",
        "Đối chiếu thông tin giữa các cơ quan",
        AGENCY_INFO[Agency.POLICE].name_vi,
        AGENCY_INFO[Agency.TAX].name_vi,
        "1.234.567 ₫",  # undeclared revenue
        "123.456 ₫",  # tax owed
        "15.000.000 ₫",  # the fine of the referred case
        "Đã chặn",
        "1 ngày 2 giờ 30 phút",  # request to result
        "Xử phạt vi phạm hành chính",
        "Chưa có kết quả",
    ):
        assert label in text, label
    # the seller's name cannot break a table row or inject HTML into a rendered page
    assert "\\| Co" in text and "<script>" not in text


def test_markdown_tables_are_well_formed(report: SixMonthReport) -> None:
    lines = render(report, "md").splitlines()
    tables: list[list[str]] = []
    for i, line in enumerate(lines):
        if line.startswith("|"):
            if i == 0 or not lines[i - 1].startswith("|"):
                tables.append([])
            tables[-1].append(line)
    assert tables
    for table in tables:
        widths = {len(row.replace("\\|", "")) - len(row.replace("\\|", "").replace("|", "")) for row in table}
        assert len(widths) == 1, table


def test_csv_is_utf8_with_bom_and_keeps_money_as_integers(report: SixMonthReport) -> None:
    text = render(report, "csv")
    assert text.startswith("\ufeff")
    data = text.encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["Báo cáo sáu tháng 2021-H1"]
    header = next(r for r in rows if r[:1] == ["Số cảnh báo"])
    values = rows[rows.index(header) + 1]
    assert header == ["Số cảnh báo", "Doanh thu chưa kê khai (đồng)", "Số thuế ước tính phải nộp (đồng)"]
    assert values == ["1", "1234567", "123456"]
    assert any(HOSTILE in cell for row in rows for cell in row)  # CSV quotes, it does not alter


def test_html_escapes_everything_and_declares_utf8(report: SixMonthReport) -> None:
    text = render(report, "html")
    assert '<meta charset="utf-8">' in text and '<html lang="vi">' in text
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Hùng&quot;" in text

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.text: list[str] = []
            self.tags: set[str] = set()

        def handle_starttag(self, tag: str, attrs: object) -> None:
            self.tags.add(tag)

        def handle_data(self, data: str) -> None:
            self.text.append(data)

    parser = Collect()
    parser.feed(text)
    assert "script" not in parser.tags
    body = "".join(parser.text)
    assert HOSTILE in body  # unescaped back, the name is intact
    assert "Báo cáo sáu tháng 2021-H1" in body and "Số sự kiện theo loại" in body


def test_overdue_and_missing_reports_are_rendered(report: SixMonthReport) -> None:
    (overdue,) = report.overdue
    assert overdue.agency == "customs"
    for fmt in ("md", "csv", "html"):
        text = render(report, fmt)
        assert overdue.event_id in text
        assert AGENCY_INFO[Agency.MEDIA].name_vi in text  # filed no six-monthly report


def test_correlation_is_rendered_with_every_report(report: SixMonthReport) -> None:
    (group,) = [g for g in report.correlations if g.kind == "seller"]
    text = render(report, "md")
    assert "Người bán:" in text and "2 cơ quan báo cáo: Công an tỉnh, Cục Thuế tỉnh" in text
    for entry in group.reports:
        assert entry.event_id in text


def test_unknown_format_is_refused(report: SixMonthReport) -> None:
    with pytest.raises(ValueError, match="md, csv, html"):
        render(report, "pdf")


def test_report_ids_are_in_the_block_table(report: SixMonthReport) -> None:
    police = report.member(Agency.POLICE)
    (line,) = police.block_requests
    assert line.event_id in render(report, "html")
