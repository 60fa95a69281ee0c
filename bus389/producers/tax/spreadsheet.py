"""Reading the tax office's spreadsheet (.xlsx or .csv) into rows of cells, and parsing its cells.

- ``.xlsx`` (and ``.xlsm``) are read with openpyxl in read-only, data-only mode: the values Excel saved,
  never formulas (a formula cell of a workbook no spreadsheet program has saved reads as empty). The
  first worksheet is read.
- ``.csv`` must be UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8"); the delimiter
  (comma, semicolon — Excel's choice under a Vietnamese locale — or tab) is taken from the header line.

The header row is the first of the first :data:`HEADER_SEARCH_ROWS` rows that names the most required
columns, so a title such as "DANH SÁCH NGƯỜI BÁN HÀNG ..." above the table is skipped. Rows whose cells
are all empty are skipped. A row's ``number`` is the row number the clerk sees in Excel (1-based,
counting the title and header rows), and is what every message about the row names.

Every file is bounded (``settings.input``): its size, its rows (counted while reading) and, for a
workbook, what its zip parts declare they expand to and their compression ratio, checked with
``zipfile`` before openpyxl parses anything. A malformed file (not a zip, a corrupt deflate stream,
bad XML) ends as an :class:`InputError` naming the file and, where known, the row: never a traceback.

Amounts of money are parsed by :func:`parse_vnd`: whole đồng, from numbers or text written the
Vietnamese way ("1.234.567", "1 234 567 đ", "1,5 tỷ") or the English way ("1,234,567").
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO

from bus389.errors import InputError
from bus389.producers.tax.headers import Column, HeaderMap, map_headers, required_found
from bus389.settings import InputSettings

__all__ = [
    "HEADER_SEARCH_ROWS",
    "CellError",
    "CellValue",
    "Row",
    "Table",
    "cell_text",
    "display_cell",
    "parse_vnd",
    "read_table",
]

CellValue = str | int | float | bool | datetime | date | time | None

HEADER_SEARCH_ROWS = 20
"""How many rows from the top may hold titles before the header row."""

_CSV_DELIMITERS = (",", ";", "\t")


class CellError(ValueError):
    """One cell's value is unusable; the message says why, in the clerk's terms."""


@dataclass(frozen=True)
class Row:
    """One data row: its spreadsheet row number and its cells, in file order (padded to the header)."""

    number: int
    cells: tuple[CellValue, ...]


@dataclass(frozen=True)
class Table:
    """A spreadsheet's header row, where the known columns are, and its non-empty data rows."""

    source: str
    headers: tuple[str, ...]
    """Every header cell as the file writes it (empty string for an empty cell)."""
    header_row: int
    columns: HeaderMap
    rows: tuple[Row, ...]

    def cell(self, row: Row, column: Column) -> CellValue:
        index = self.columns.get(column)
        if index is None or index >= len(row.cells):
            return None
        return row.cells[index]

    def header(self, column: Column) -> str:
        """The header of ``column`` as the file writes it."""
        return self.columns.header[column]


def _is_blank(value: CellValue) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


_RATIO_FLOOR = 10 * 1024 * 1024
"""Parts smaller than this expanded are not ratio-checked (a small, repetitive sheet compresses well)."""


def _check_file_size(path: Path, limits: InputSettings) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read ({exc.strerror})") from None
    if size > limits.max_bytes:
        raise InputError(
            f"{path.name}: {size:,} bytes, larger than {limits.max_bytes:,} (BUS389_INPUT__MAX_BYTES): "
            "not read; split the file"
        )


def _check_workbook_zip(path: Path, limits: InputSettings) -> None:
    """Refuse a workbook whose parts declare too much expanded data, or expand suspiciously far.

    The sizes come from the zip's central directory; ``zipfile`` (which openpyxl reads through) never
    expands a part past its declared size, so the declared total bounds what parsing can expand.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except zipfile.BadZipFile:
        raise InputError(f"{path.name}: not a readable .xlsx workbook (not a zip archive)") from None
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read ({exc.strerror})") from None
    total = sum(part.file_size for part in parts)
    if total > limits.max_expanded_bytes:
        raise InputError(
            f"{path.name}: the workbook expands to {total:,} bytes, more than {limits.max_expanded_bytes:,} "
            "(BUS389_INPUT__MAX_EXPANDED_BYTES): not read"
        )
    for part in parts:
        if part.file_size > _RATIO_FLOOR:
            ratio = part.file_size / max(part.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise InputError(
                    f"{path.name}: part {part.filename} expands {ratio:,.0f} times "
                    f"(more than {limits.max_compression_ratio}, BUS389_INPUT__MAX_COMPRESSION_RATIO): "
                    "a zip bomb, not read"
                )


def _too_many_rows(path: Path, limits: InputSettings) -> InputError:
    return InputError(
        f"{path.name}: more than {limits.max_rows:,} rows (BUS389_INPUT__MAX_ROWS): not read; split the file"
    )


def _read_xlsx(path: Path, limits: InputSettings) -> list[list[CellValue]]:
    # openpyxl is imported here: reading a CSV never pays for it.
    from openpyxl import load_workbook

    _check_workbook_zip(path, limits)
    try:
        # Our own handle, closed whatever happens: a part left open by a failed read would keep it open.
        with path.open("rb") as handle:
            return _read_workbook(handle, path, limits, load_workbook)
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read ({exc.strerror})") from None


def _read_workbook(
    handle: BinaryIO, path: Path, limits: InputSettings, load_workbook: Callable[..., Any]
) -> list[list[CellValue]]:
    rows: list[list[CellValue]] = []
    try:
        workbook = load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises anything (zlib, XML, KeyError) on a bad file
        raise InputError(f"{path.name}: not a readable .xlsx workbook ({_why(exc)})") from None
    if not workbook.worksheets:
        workbook.close()
        raise InputError(f"{path.name}: the workbook has no worksheet")
    try:
        _collect_rows(workbook.worksheets[0].iter_rows(values_only=True), rows, path, limits)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt part surfaces while the rows stream
        raise InputError(f"{path.name}: row {len(rows) + 1}: the workbook is damaged ({_why(exc)})") from None
    finally:
        workbook.close()
    return rows


def _collect_rows(
    source: Iterable[Sequence[CellValue]], rows: list[list[CellValue]], path: Path, limits: InputSettings
) -> None:
    """Append ``source``'s rows to ``rows``, stopping at the limit: the header row and ``max_rows`` more."""
    for values in source:
        if len(rows) > limits.max_rows:
            raise _too_many_rows(path, limits)
        rows.append(list(values))


def _why(exc: BaseException) -> str:
    """One line saying what broke, without a traceback."""
    text = " ".join(str(exc).split())[:200]
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _sniff_delimiter(text: str) -> str:
    """The delimiter of the header line: the candidate that occurs most often outside quotes."""
    for line in text.splitlines():
        if not line.strip():
            continue
        unquoted = re.sub(r'"[^"]*"', "", line)
        best = max(_CSV_DELIMITERS, key=unquoted.count)
        return best if unquoted.count(best) else ","
    return ","


def _read_csv(path: Path, limits: InputSettings) -> list[list[CellValue]]:
    _check_file_size(path, limits)
    try:
        with path.open("rb") as handle:
            # Never more than the limit, even from a file that grows while it is read.
            data = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read ({exc.strerror})") from exc
    if len(data) > limits.max_bytes:
        raise InputError(f"{path.name}: larger than {limits.max_bytes:,} bytes (BUS389_INPUT__MAX_BYTES)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f'{path.name}: not UTF-8 text at byte {exc.start} (in Excel, save as "CSV UTF-8")'
        ) from exc
    del data
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    records: list[list[CellValue]] = []
    try:
        _collect_rows(reader, records, path, limits)
    except csv.Error as exc:
        raise InputError(f"{path.name}: malformed CSV at line {reader.line_num}: {exc}") from exc
    return records


def read_table(path: Path, *, limits: InputSettings | None = None) -> Table:
    """Read ``path`` (.xlsx, .xlsm or .csv) and map its header row; :class:`InputError` if unusable.

    ``limits`` (``settings.input``; its defaults when None) bound the file's size, rows and expansion.

    A missing required column is reported by its canonical header and the variants accepted.
    """
    limits = limits if limits is not None else InputSettings()
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if suffix in (".xlsx", ".xlsm"):
        _check_file_size(path, limits)
        records = _read_xlsx(path, limits)
    elif suffix == ".csv":
        records = _read_csv(path, limits)
    elif suffix == ".xls":
        raise InputError(f"{path.name}: the old .xls format is not read; save it as .xlsx or CSV UTF-8")
    else:
        raise InputError(f"{path.name}: expected a .xlsx or .csv file")

    numbered = [(i + 1, record) for i, record in enumerate(records) if not all(map(_is_blank, record))]
    if not numbered:
        raise InputError(f"{path.name}: the file has no rows")
    head = numbered[:HEADER_SEARCH_ROWS]
    # max() keeps the first of equals: the topmost row naming the most required columns.
    header_at = max(range(len(head)), key=lambda i: required_found(head[i][1]))
    header_row, header_cells = head[header_at]
    columns = map_headers(header_cells, source=path.name)
    width = len(header_cells)
    rows = tuple(
        Row(number, tuple(record) + (None,) * (width - len(record)))
        for number, record in numbered[header_at + 1 :]
    )
    headers = tuple("" if cell is None else str(cell).strip() for cell in header_cells)
    return Table(path.name, headers, header_row, columns, rows)


def cell_text(value: CellValue) -> str | None:
    """A text cell's value with surrounding white space removed; None when empty.

    Numbers come back without a spurious ``.0`` (a tax code typed into a number cell reads as a float).
    The text itself is never altered otherwise: names come out exactly as the clerk typed them.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def display_cell(value: CellValue) -> str:
    """A cell as text for the rejected-rows file (empty for an empty cell)."""
    return cell_text(value) or ""


_UNITS = {
    "ty": 10**9,
    "tỷ": 10**9,
    "tỉ": 10**9,
    "trieu": 10**6,
    "triệu": 10**6,
    "tr": 10**6,
    "nghin": 10**3,
    "nghìn": 10**3,
    "ngan": 10**3,
    "ngàn": 10**3,
}
_CURRENCY = re.compile(r"(?:vnđ|vnd|đồng|dong|đ|₫)\.?$")
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009]+")
_PLAIN = re.compile(r"\d+")
_DOT_GROUPS = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")
_COMMA_GROUPS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACE_GROUPS = re.compile(r"\d{1,3}(?: \d{3})+(?:[.,]\d+)?")
_DECIMAL = re.compile(r"\d+[.,]\d+")


def _number_from_text(text: str, *, scaled: bool) -> Decimal | None:
    if _PLAIN.fullmatch(text):
        return Decimal(text)
    if _SPACE_GROUPS.fullmatch(text):
        text = text.replace(" ", "")
        return Decimal(text.replace(",", "."))
    if _DOT_GROUPS.fullmatch(text):
        return Decimal(text.replace(".", "").replace(",", "."))
    # With a unit, Vietnamese writes a decimal comma: "1,500 tỷ" is one and a half tỷ.
    if _COMMA_GROUPS.fullmatch(text) and not (scaled and text.count(",") == 1 and "." not in text):
        return Decimal(text.replace(",", ""))
    if _DECIMAL.fullmatch(text):
        return Decimal(text.replace(",", "."))
    return None


def parse_vnd(value: CellValue) -> int:
    """An amount in whole đồng from a cell; :class:`CellError` when it is not one.

    Accepted: integers; floats (rounded half up to the đồng: Excel shows them rounded); text with
    thousands separated by ".", "," or spaces ("1.234.567", "1,234,567", "1 234 567"), an optional
    decimal part ("1.234.567,5"), an optional currency mark ("đ", "₫", "đồng", "VNĐ", "VND") and an
    optional unit ("nghìn", "triệu", "tỷ": "1,5 tỷ" is 1 500 000 000). With one separator and three
    digits after it ("1.234", "1,234") the separator groups thousands, as both Vietnamese and English
    write; before a unit a lone comma is the Vietnamese decimal comma ("1,500 tỷ" is 1.5 tỷ).
    Negative amounts and empty cells are refused.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise CellError("required: the amount is empty")
    if isinstance(value, bool) or isinstance(value, date | time):
        raise CellError(f"not an amount of đồng: {display_cell(value)!r}")
    amount: Decimal
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CellError(f"not an amount of đồng: {value!r}")
        amount = Decimal(repr(value))
    else:
        original = value.strip()
        text = _SPACES.sub(" ", original.casefold()).strip()
        negative = text.startswith("-") or (text.startswith("(") and text.endswith(")"))
        text = text.strip("-()").strip()
        text = _CURRENCY.sub("", text).strip()
        multiplier = 1
        parts = text.rsplit(" ", 1)
        if len(parts) == 2 and parts[1] in _UNITS:
            multiplier = _UNITS[parts[1]]
            text = parts[0].strip()
        text = _CURRENCY.sub("", text).strip()
        number = _number_from_text(text, scaled=multiplier != 1)
        if number is None:
            raise CellError(f"not an amount of đồng: {original!r}")
        amount = -number * multiplier if negative else number * multiplier
    if amount < 0:
        raise CellError(f"must not be negative: {display_cell(value)!r}")
    try:
        return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation as exc:  # pragma: no cover - quantize of a huge exponent
        raise CellError(f"not an amount of đồng: {display_cell(value)!r}") from exc
