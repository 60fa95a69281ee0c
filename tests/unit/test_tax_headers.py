"""The tax spreadsheet's headers: canonical names, variants, insensitive matching, missing-column message."""

from __future__ import annotations

import unicodedata

import pytest

from bus389.errors import InputError
from bus389.producers.tax.headers import COLUMNS, Column, header_key, map_headers

CANONICAL = [
    "Mã số thuế",
    "Tên người bán",
    "Nền tảng",
    "Tài khoản/URL",
    "Doanh thu ước tính",
    "Doanh thu đã kê khai",
    "Kỳ tính thuế",
]


def test_canonical_headers_map_every_required_column() -> None:
    found = map_headers(["STT", *CANONICAL, "Số CCCD", "Số điện thoại", "Địa chỉ", "Ghi chú"])
    assert found.index[Column.TAX_CODE] == 1
    assert found.index[Column.PERIOD] == 7
    assert found.index[Column.NOTES] == 11
    assert found.header[Column.DECLARED_REVENUE] == "Doanh thu đã kê khai"
    assert found.missing == []


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("MST", Column.TAX_CODE),
        ("Ma so thue", Column.TAX_CODE),
        ("MÃ SỐ THUẾ", Column.TAX_CODE),
        ("Mã  số   thuế (*)", Column.TAX_CODE),
        ("Họ và tên", Column.SELLER_NAME),
        ("Tên NNT", Column.SELLER_NAME),
        ("Sàn TMĐT", Column.PLATFORM),
        ("san tmdt", Column.PLATFORM),
        ("Tài khoản", Column.ACCOUNT),
        ("Tài khoản / URL", Column.ACCOUNT),
        ("Đường dẫn", Column.ACCOUNT),
        ("Doanh thu theo sàn", Column.ESTIMATED_REVENUE),
        ("Doanh thu ước tính (đồng)", Column.ESTIMATED_REVENUE),
        ("Doanh thu ước tính (VNĐ)", Column.ESTIMATED_REVENUE),
        ("Doanh thu kê khai", Column.DECLARED_REVENUE),
        ("Kỳ", Column.PERIOD),
        ("SĐT", Column.PHONE),
        ("Số CMND/CCCD", Column.NATIONAL_ID),
    ],
)
def test_variants_are_accepted(header: str, column: Column) -> None:
    headers = [header if h_col == column else spec_header for h_col, spec_header in _required_headers()]
    if column not in dict(_required_headers()):
        headers.append(header)
    found = map_headers(headers)
    assert found.header[column] == header.strip()


def _required_headers() -> list[tuple[Column, str]]:
    return [(spec.column, spec.canonical) for spec in COLUMNS if spec.required]


def test_nfd_headers_match_nfc_ones() -> None:
    nfd = [unicodedata.normalize("NFD", h) for h in CANONICAL]
    assert nfd != CANONICAL  # the test means something only if the bytes differ
    found = map_headers(nfd)
    assert found.missing == []
    assert found.header[Column.SELLER_NAME] == nfd[1]  # kept as the file writes it


def test_header_key_ignores_case_accents_spacing_and_units() -> None:
    assert header_key("Doanh thu đã kê khai") == header_key("DOANH THU DA KE KHAI (đồng)")
    assert header_key("Tài khoản/URL") == "taikhoanurl"
    assert header_key("Kỳ") != header_key("Kỳ tính thuế")


def test_missing_header_is_named_with_its_variants() -> None:
    headers = [h for h in CANONICAL if h != "Doanh thu đã kê khai"]
    with pytest.raises(InputError) as caught:
        map_headers(headers, source="ds.xlsx")
    message = str(caught.value)
    assert message.startswith("ds.xlsx: ")
    assert 'missing column "Doanh thu đã kê khai"' in message
    assert '"Doanh thu kê khai"' in message  # an accepted variant is listed
    assert "Kỳ tính thuế" not in message  # present columns are not reported


def test_every_missing_header_is_reported_at_once() -> None:
    with pytest.raises(InputError) as caught:
        map_headers(["STT", "Tên người bán", "Ghi chú"])
    message = str(caught.value)
    for name in ("Mã số thuế", "Nền tảng", "Tài khoản/URL", "Doanh thu ước tính", "Kỳ tính thuế"):
        assert f'missing column "{name}"' in message
    assert 'missing column "Tên người bán"' not in message
    assert 'missing column "Ghi chú"' not in message  # optional


def test_two_columns_for_one_field_are_refused() -> None:
    with pytest.raises(InputError, match='columns "MST" and "Mã số thuế" are both "Mã số thuế"'):
        map_headers(["MST", *CANONICAL])


def test_optional_columns_may_be_absent_and_unknown_ones_are_ignored() -> None:
    found = map_headers([*CANONICAL, "Quận/Huyện", None, ""])
    assert found.get(Column.PHONE) is None
    assert found.get(Column.NOTES) is None
    assert len(found.index) == len(CANONICAL)
