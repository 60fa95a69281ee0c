"""Reading the tax spreadsheet: .csv (BOM or not, "," or ";"), .xlsx, header rows, and amounts in đồng."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from bus389.errors import InputError
from bus389.producers.tax.headers import Column
from bus389.producers.tax.spreadsheet import CellError, parse_vnd, read_table

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

EXAMPLES = REPO_ROOT / "examples"
HEADER = (
    "Mã số thuế,Tên người bán,Nền tảng,Tài khoản/URL,Doanh thu ước tính,Doanh thu đã kê khai,Kỳ tính thuế"
)
ROW = '4300812345,Nguyễn Thị Hồng Nhung,Shopee,https://shopee.vn/x,"1.845.600.000",420000000,Quý 3/2021'


# --- amounts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "amount"),
    [
        (1234567, 1234567),
        (1234567.0, 1234567),
        (1234567.5, 1234568),  # half up: what Excel displays
        (1234567.49, 1234567),
        ("1234567", 1234567),
        ("1.234.567", 1234567),
        ("1,234,567", 1234567),
        ("1 234 567", 1234567),
        ("1 234 567 đ", 1234567),
        ("1\u00a0234\u00a0567\u00a0₫", 1234567),
        ("12.345.678 VNĐ", 12345678),
        ("12.345.678 đồng", 12345678),
        ("1.234.567,50", 1234568),
        ("1,234,567.40", 1234567),
        ("1.234", 1234),
        ("1,234", 1234),
        ("1,5 tỷ", 1_500_000_000),
        ("150 triệu", 150_000_000),
        ("2.500 tỷ", 2_500_000_000_000),
        ("0", 0),
        ("  420000000  ", 420_000_000),
    ],
)
def test_amounts_in_dong(cell: object, amount: int) -> None:
    assert parse_vnd(cell) == amount  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (None, "required"),
        ("   ", "required"),
        ("-1.000", "must not be negative"),
        ("(1.000)", "must not be negative"),
        (-5, "must not be negative"),
        ("abc", "not an amount of đồng: 'abc'"),
        ("1.23.4", "not an amount of đồng"),
        ("12,34,567", "not an amount of đồng"),
        (True, "not an amount of đồng"),
        (datetime(2021, 7, 1), "not an amount of đồng"),
        (float("nan"), "not an amount of đồng"),
    ],
)
def test_bad_amounts_say_why(cell: object, message: str) -> None:
    with pytest.raises(CellError, match=message.replace("(", r"\(")):
        parse_vnd(cell)  # type: ignore[arg-type]


# --- CSV ---------------------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str, *, bom: bool) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


@pytest.mark.parametrize("bom", [True, False])
def test_csv_with_or_without_bom(tmp_path: Path, bom: bool) -> None:
    table = read_table(_write(tmp_path, "ds.csv", f"{HEADER}\r\n{ROW}\r\n", bom=bom))
    assert table.headers[0] == "Mã số thuế"  # no BOM glued to the first header
    assert len(table.rows) == 1
    row = table.rows[0]
    assert row.number == 2
    assert table.cell(row, Column.SELLER_NAME) == "Nguyễn Thị Hồng Nhung"
    assert table.cell(row, Column.ESTIMATED_REVENUE) == "1.845.600.000"


def test_csv_with_semicolons(tmp_path: Path) -> None:
    header = HEADER.replace(",", ";")
    row = "4300812345;Trần Văn Đức;TikTok Shop;@duc;1.845.600,5;420.000.000;6 tháng đầu năm 2021"
    table = read_table(_write(tmp_path, "ds.csv", f"{header}\n{row}\n", bom=True))
    only = table.rows[0]
    assert table.cell(only, Column.PLATFORM) == "TikTok Shop"
    assert table.cell(only, Column.ESTIMATED_REVENUE) == "1.845.600,5"
    assert table.cell(only, Column.PERIOD) == "6 tháng đầu năm 2021"


def test_csv_not_utf8_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "ds.csv"
    path.write_bytes(f"{HEADER}\n{ROW}\n".encode("cp1258", errors="replace"))
    with pytest.raises(InputError, match='not UTF-8 .* save as "CSV UTF-8"'):
        read_table(path)


def test_blank_rows_are_skipped_and_row_numbers_are_the_files(tmp_path: Path) -> None:
    text = f"{HEADER}\n{ROW}\n,,,,,,\n\n{ROW.replace('Nhung', 'Nga')}\n"
    table = read_table(_write(tmp_path, "ds.csv", text, bom=False))
    assert [r.number for r in table.rows] == [2, 5]


def test_missing_column_in_a_csv_names_it(tmp_path: Path) -> None:
    header = HEADER.replace(",Kỳ tính thuế", "")
    with pytest.raises(
        InputError, match=r'ds\.csv: missing column "Kỳ tính thuế" \(accepted: "Kỳ tính thuế", "Kỳ"'
    ):
        read_table(_write(tmp_path, "ds.csv", f"{header}\n{ROW}\n", bom=False))


@pytest.mark.parametrize(
    ("name", "message"), [("ds.xls", "old .xls"), ("ds.txt", "expected a .xlsx or .csv")]
)
def test_other_formats_are_refused(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_table(_write(tmp_path, name, HEADER, bom=False))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_table(tmp_path / "nope.xlsx")


def test_corrupt_xlsx(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a readable .xlsx"):
        read_table(_write(tmp_path, "ds.xlsx", "this is not a zip", bom=False))


# --- XLSX --------------------------------------------------------------------------------------------


def test_shipped_xlsx_is_read_under_its_title() -> None:
    table = read_table(EXAMPLES / "tax_undeclared_sellers.xlsx")
    assert table.header_row == 4  # rows 1-2 title, row 3 empty
    assert len(table.rows) == 12
    first = table.rows[0]
    assert first.number == 5
    assert table.cell(first, Column.TAX_CODE) == "4300812345"
    assert table.cell(first, Column.SELLER_NAME) == "Nguyễn Thị Hồng Nhung"
    assert table.cell(first, Column.ESTIMATED_REVENUE) == 1_845_600_000  # a number cell
    assert table.header(Column.ESTIMATED_REVENUE) == "Doanh thu ước tính (đồng)"
    by_name = {table.cell(r, Column.SELLER_NAME): r for r in table.rows}
    assert table.cell(by_name["Võ Thị Kim Oanh"], Column.ESTIMATED_REVENUE) == "268.900.000 đ"
    assert table.cell(by_name["Đỗ Văn Hùng"], Column.PERIOD) == datetime(2021, 8, 1)


def test_shipped_csv_uses_header_variants() -> None:
    path = EXAMPLES / "tax_undeclared_sellers.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbfSTT;MST;")
    table = read_table(path)
    assert table.header(Column.TAX_CODE) == "MST"
    assert table.header(Column.PLATFORM) == "Sàn TMĐT"
    assert len(table.rows) == 12


def test_xlsx_values_as_excel_saved_them(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER.split(","))
    sheet.append([4300812345, "Lê Thị Thu Hà", "Facebook", "toilyson", "=1+1", 1.5e8, "Quý 3/2021"])
    path = tmp_path / "ds.xlsx"
    workbook.save(path)
    table = read_table(path)
    row = table.rows[0]
    assert table.cell(row, Column.TAX_CODE) == 4300812345
    # data_only: a formula that no spreadsheet program computed and saved has no value.
    assert table.cell(row, Column.ESTIMATED_REVENUE) is None
    assert table.cell(row, Column.DECLARED_REVENUE) == 1.5e8


def test_examples_are_what_the_script_writes(tmp_path: Path) -> None:
    script = REPO_ROOT / "tests" / "fixtures" / "make_tax_examples.py"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    shipped_csv = (EXAMPLES / "tax_undeclared_sellers.csv").read_bytes()
    assert (tmp_path / "tax_undeclared_sellers.csv").read_bytes() == shipped_csv

    def cells(path: Path) -> list[tuple[object, ...]]:
        workbook = load_workbook(path, read_only=True)
        try:
            return [tuple(r) for r in workbook.worksheets[0].iter_rows(values_only=True)]
        finally:
            workbook.close()

    assert cells(tmp_path / "tax_undeclared_sellers.xlsx") == cells(EXAMPLES / "tax_undeclared_sellers.xlsx")
