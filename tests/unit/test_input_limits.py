"""Bounded inputs: every input file has a size and a row limit checked while reading, workbooks are
checked before they are parsed, and a malformed file is one error line naming it, never a traceback."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from bus389.errors import InputError, RecordError
from bus389.producers.readers import read_records
from bus389.producers.tax.spreadsheet import read_table
from bus389.settings import InputSettings

HEADER = [
    "Mã số thuế",
    "Tên người bán",
    "Nền tảng",
    "Tài khoản/URL",
    "Doanh thu ước tính",
    "Doanh thu đã kê khai",
    "Kỳ tính thuế",
]
ROW = [
    "4300812345",
    "Nguyễn Thị Hồng Nhung",
    "Shopee",
    "https://shopee.vn/x",
    1845600000,
    420000000,
    "Quý 3/2021",
]
BUS389 = str(Path(sys.executable).with_name("bus389"))


def _workbook(path: Path, rows: int) -> Path:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(HEADER)
    for _ in range(rows):
        sheet.append(ROW)
    book.save(path)
    return path


# --- publish files --------------------------------------------------------------------------------------


def test_dev_zero_stops_at_the_size_limit_without_exhausting_memory() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(
            InputError, match=r"/dev/zero: larger than 1,048,576 bytes \(BUS389_INPUT__MAX_BYTES\)"
        ):
            read_records("/dev/zero", fmt="jsonl", max_bytes=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_standard_input_is_bounded_too() -> None:
    endless = io.BytesIO(b'{"a": 1}\n' * 300_000)
    with pytest.raises(InputError, match=r"<stdin>: larger than"):
        read_records("-", fmt="jsonl", stdin=endless, max_bytes=1024 * 1024)


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("jsonl", "".join('{"n": ' + str(i) + "}\n" for i in range(11))),
        ("json", "[" + ",\n".join('{"n": ' + str(i) + "}" for i in range(11)) + "]"),
        ("csv", "n\n" + "".join(f"{i}\n" for i in range(11))),
    ],
)
def test_the_row_limit_names_the_record_past_it(tmp_path: Path, fmt: str, body: str) -> None:
    path = tmp_path / f"events.{fmt}"
    path.write_text(body)
    assert len(read_records(path, max_rows=11)) == 11
    with pytest.raises(RecordError, match=r"more than 10 records \(BUS389_INPUT__MAX_ROWS\)") as caught:
        read_records(path, max_rows=10)
    assert caught.value.line == (12 if fmt == "csv" else 11)


def test_publish_of_dev_zero_is_a_one_line_error() -> None:
    done = subprocess.run(
        [BUS389, "publish", "suspect_seller", "--as", "police", "--file", "/dev/zero", "--format", "jsonl"],
        capture_output=True,
        text=True,
        env={"BUS389_INPUT__MAX_BYTES": "2000000", "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: /dev/zero: larger than 2,000,000 bytes (BUS389_INPUT__MAX_BYTES): not read; split the file "
        "or raise the limit"
    ]
    assert "Traceback" not in done.stderr


# --- the tax spreadsheet --------------------------------------------------------------------------------


def test_a_zip_bomb_workbook_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xlsx"
    _workbook(bomb, 1)
    # The same workbook with one more part: 300 MB of XML that deflates to ≈ 300 KB.
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("xl/worksheets/sheet2.xml", "w", force_zip64=True) as part:
            chunk = b"<row><c><v>1</v></c></row>" * 40_000
            for _ in range(300_000_000 // len(chunk)):
                part.write(chunk)
    assert bomb.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"bomb.xlsx: the workbook expands to [\d,]+ bytes, more than"):
            read_table(bomb)
        with pytest.raises(
            InputError, match=r"bomb.xlsx: part xl/worksheets/sheet2.xml expands [\d,]+ times"
        ):
            read_table(bomb, limits=InputSettings(max_expanded_bytes=10**9))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


def test_more_rows_than_the_limit_stop_the_read(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "big.xlsx", 100_001)
    with pytest.raises(InputError, match=r"big.xlsx: more than 100,000 rows \(BUS389_INPUT__MAX_ROWS\)"):
        read_table(path, limits=InputSettings(max_rows=100_000))
    csv_path = tmp_path / "big.csv"
    csv_path.write_text(",".join(HEADER) + "\n" + "4300812345,A,Shopee,x,1,1,2021\n" * 100_001)
    with pytest.raises(InputError, match=r"big.csv: more than 100,000 rows"):
        read_table(csv_path, limits=InputSettings(max_rows=100_000))


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "t.xlsx", 10)
    with pytest.raises(InputError, match=r"t.xlsx: [\d,]+ bytes, larger than 1,024"):
        read_table(path, limits=InputSettings(max_bytes=1024))


def _rewrite_part(
    source: Path, target: Path, name: str, change: bytes | None, *, corrupt: bool = False
) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item.filename)
            new.writestr(item, change if (item.filename == name and change is not None) else data)
    if corrupt:
        raw = bytearray(target.read_bytes())
        with zipfile.ZipFile(target) as archive:
            info = archive.getinfo(name)
        # Past the local header: scramble the middle of the deflate stream (sizes stay as declared).
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        for offset in range(start + 10, start + min(info.compress_size - 10, 200)):
            raw[offset] ^= 0x5A
        target.write_bytes(bytes(raw))
    return target


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad_xml", r"bad.xlsx: (row \d+: the workbook is damaged|not a readable .xlsx workbook) \("),
        ("corrupt_deflate", r"bad.xlsx: (row \d+: the workbook is damaged|not a readable .xlsx workbook) \("),
        ("not_a_zip", r"bad.xlsx: not a readable .xlsx workbook \(not a zip archive\)"),
        ("empty", r"bad.xlsx: not a readable .xlsx workbook \(not a zip archive\)"),
    ],
)
def test_malformed_workbooks_are_one_line_errors(tmp_path: Path, case: str, expected: str) -> None:
    good = _workbook(tmp_path / "good.xlsx", 50)
    bad = tmp_path / "bad.xlsx"
    sheet = "xl/worksheets/sheet1.xml"
    if case == "bad_xml":
        with zipfile.ZipFile(good) as archive:
            xml = archive.read(sheet)
        _rewrite_part(good, bad, sheet, xml[: len(xml) // 2] + b"<row><c></row>")
    elif case == "corrupt_deflate":
        _rewrite_part(good, bad, sheet, None, corrupt=True)
    elif case == "not_a_zip":
        bad.write_text("Mã số thuế,Tên người bán\n")
    else:
        bad.write_bytes(b"")
    with pytest.raises(InputError, match=expected) as caught:
        read_table(bad)
    assert "\n" not in str(caught.value)


def test_tax_publish_of_a_damaged_workbook_prints_no_traceback(tmp_path: Path) -> None:
    bad = _rewrite_part(
        _workbook(tmp_path / "good.xlsx", 50),
        tmp_path / "bad.xlsx",
        "xl/worksheets/sheet1.xml",
        None,
        corrupt=True,
    )
    done = subprocess.run(
        [BUS389, "tax", "publish-alerts", str(bad), "--dry-run"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: bad.xlsx: ")
