"""The tax office spreadsheet's Vietnamese column headers, their accepted variants, and header matching.

A header matches a column when the two are equal after :func:`header_key`: Unicode NFC, case folded,
accents and "đ" removed, anything in parentheses dropped (units such as "(đồng)" or "(VNĐ)") and
everything that is not a letter or digit removed. So "Mã số thuế", "MÃ SỐ THUẾ", "Ma so thue",
"Mã  số thuế (*)" and an NFD-encoded "Mã số thuế" are one header. Columns the office adds for its
own use ("STT", "Quận/Huyện", ...) are ignored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bus389.errors import InputError

__all__ = [
    "COLUMNS",
    "Column",
    "ColumnSpec",
    "HeaderMap",
    "header_key",
    "map_headers",
    "missing_columns_message",
    "required_found",
]


class Column(StrEnum):
    """The columns the tax office's spreadsheet carries (the value is the field it fills)."""

    TAX_CODE = "tax_code"
    SELLER_NAME = "seller_name"
    PLATFORM = "platform"
    ACCOUNT = "account"
    ESTIMATED_REVENUE = "estimated_revenue"
    DECLARED_REVENUE = "declared_revenue"
    PERIOD = "period"
    NATIONAL_ID = "national_id"
    PHONE = "phone"
    ADDRESS = "address"
    NOTES = "notes"


@dataclass(frozen=True)
class ColumnSpec:
    column: Column
    canonical: str
    """The header as the office's template writes it: what messages name."""
    variants: tuple[str, ...]
    """Other headers accepted for the column (the canonical one is accepted too)."""
    required: bool

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.canonical, *self.variants)


COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        Column.TAX_CODE,
        "Mã số thuế",
        ("MST", "Ma so thue", "Mã số thuế người bán", "Mã số thuế NNT", "Tax code"),
        required=True,
    ),
    ColumnSpec(
        Column.SELLER_NAME,
        "Tên người bán",
        ("Họ và tên", "Họ tên", "Tên NNT", "Tên người nộp thuế", "Tên cá nhân kinh doanh", "Seller name"),
        required=True,
    ),
    ColumnSpec(
        Column.PLATFORM,
        "Nền tảng",
        ("Sàn TMĐT", "Sàn thương mại điện tử", "Sàn", "Nền tảng số", "Platform"),
        required=True,
    ),
    ColumnSpec(
        Column.ACCOUNT,
        "Tài khoản/URL",
        ("Tài khoản", "Đường dẫn", "Tài khoản bán hàng", "Tên gian hàng", "URL", "Link", "Account"),
        required=True,
    ),
    ColumnSpec(
        Column.ESTIMATED_REVENUE,
        "Doanh thu ước tính",
        ("Doanh thu theo sàn", "Doanh thu từ sàn", "Doanh thu thực tế", "Estimated revenue"),
        required=True,
    ),
    ColumnSpec(
        Column.DECLARED_REVENUE,
        "Doanh thu đã kê khai",
        ("Doanh thu kê khai", "Doanh thu khai thuế", "Declared revenue"),
        required=True,
    ),
    ColumnSpec(
        Column.PERIOD,
        "Kỳ tính thuế",
        ("Kỳ", "Kỳ kê khai", "Kỳ thuế", "Period"),
        required=True,
    ),
    ColumnSpec(
        Column.NATIONAL_ID,
        "Số CCCD",
        ("CCCD", "Số CMND/CCCD", "CMND/CCCD", "Số định danh cá nhân", "Số định danh"),
        required=False,
    ),
    ColumnSpec(Column.PHONE, "Số điện thoại", ("SĐT", "Điện thoại", "Phone"), required=False),
    ColumnSpec(
        Column.ADDRESS,
        "Địa chỉ",
        ("Địa chỉ kinh doanh", "Địa chỉ liên hệ", "Address"),
        required=False,
    ),
    ColumnSpec(Column.NOTES, "Ghi chú", ("Notes",), required=False),
)

_SPEC_BY_COLUMN = {spec.column: spec for spec in COLUMNS}
_PARENTHESISED = re.compile(r"\([^)]*\)")


def header_key(text: str) -> str:
    """The comparison key of a header: case-, accent-, spacing-, punctuation- and NFC/NFD-insensitive."""
    text = _PARENTHESISED.sub("", unicodedata.normalize("NFC", text)).casefold()
    # "đ" has no decomposition: NFD would keep it, so it is mapped by hand.
    text = text.replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


_KEY_TO_COLUMN: dict[str, Column] = {}
for _spec in COLUMNS:
    for _name in _spec.accepted:
        _key = header_key(_name)
        if _KEY_TO_COLUMN.get(_key, _spec.column) is not _spec.column:
            raise RuntimeError(f"header variant {_name!r} is ambiguous")  # pragma: no cover
        _KEY_TO_COLUMN[_key] = _spec.column


@dataclass(frozen=True)
class HeaderMap:
    """Where each known column is in the file: its index and its header exactly as the file writes it."""

    index: dict[Column, int]
    header: dict[Column, str]

    def get(self, column: Column) -> int | None:
        return self.index.get(column)

    @property
    def missing(self) -> list[ColumnSpec]:
        return [spec for spec in COLUMNS if spec.required and spec.column not in self.index]


def _classify(headers: Sequence[object]) -> tuple[HeaderMap, list[str]]:
    index: dict[Column, int] = {}
    header: dict[Column, str] = {}
    duplicates: list[str] = []
    for i, raw in enumerate(headers):
        if raw is None:
            continue
        text = str(raw).strip()
        column = _KEY_TO_COLUMN.get(header_key(text))
        if column is None:
            continue
        if column in index:
            duplicates.append(
                f'columns "{header[column]}" and "{text}" are both '
                f'"{_SPEC_BY_COLUMN[column].canonical}": keep one'
            )
            continue
        index[column] = i
        header[column] = text
    return HeaderMap(index, header), duplicates


def required_found(headers: Sequence[object]) -> int:
    """How many required columns ``headers`` names: used to find the header row under a title."""
    found, _ = _classify(headers)
    return sum(1 for spec in COLUMNS if spec.required and spec.column in found.index)


def missing_columns_message(missing: Sequence[ColumnSpec]) -> str:
    """``missing column "Kỳ tính thuế" (accepted: "Kỳ tính thuế", "Kỳ", ...)``, one clause per column."""
    parts = []
    for spec in missing:
        accepted = ", ".join(f'"{name}"' for name in spec.accepted)
        parts.append(f'missing column "{spec.canonical}" (accepted: {accepted})')
    return "; ".join(parts)


def map_headers(headers: Sequence[object], *, source: str = "") -> HeaderMap:
    """Map a header row to the known columns; raise :class:`InputError` naming each missing one.

    The error names the missing column by its canonical header and lists the variants accepted, so a
    clerk can rename the column in the spreadsheet. Two columns matching the same field are an error
    too (which one would be meant is a guess).
    """
    found, duplicates = _classify(headers)
    problems = list(duplicates)
    if found.missing:
        problems.append(missing_columns_message(found.missing))
    if problems:
        where = f"{source}: " if source else ""
        raise InputError(where + "; ".join(problems))
    return found
