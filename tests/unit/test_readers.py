"""Reading publisher input: JSON, JSON Lines and CSV, with exact line numbers and text kept as written."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from bus389.errors import InputError, RecordError
from bus389.producers.readers import MAX_DEPTH, SourceRecord, csv_shape, detect_format, read_records
from bus389.schemas.catalog import load_catalog

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

VI = "Nguyễn Văn Hùng — Thôn Đông, xã An Vĩnh, huyện Lý Sơn"


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path


def _schema(event_type: str) -> dict[str, Any]:
    return load_catalog().latest(event_type).schema_json


# --- format detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.json", "json"), ("a.JSONL", "jsonl"), ("a.ndjson", "jsonl"), ("b.csv", "csv")],
)
def test_format_comes_from_the_extension(name: str, expected: str) -> None:
    assert detect_format(name) == expected


def test_format_option_wins_over_the_extension() -> None:
    assert detect_format("data.txt", "csv") == "csv"


def test_unknown_extension_asks_for_format() -> None:
    with pytest.raises(InputError, match="--format"):
        detect_format("data.txt")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'[{"a": 1}, {"a": 2}]', [{"a": 1}, {"a": 2}]),
        (b'\xef\xbb\xbf  {"a": 1}\n{"a": 2}\n', [{"a": 1}, {"a": 2}]),
        (b'{\n  "a": 1\n}\n', [{"a": 1}]),
        (b"a,b\n1,x\n", [{"a": "1", "b": "x"}]),
        ("seller.name\nNguyễn\n".encode(), [{"seller": {"name": "Nguyễn"}}]),
    ],
)
def test_stdin_without_a_format_is_sniffed_from_its_first_bytes(raw: bytes, expected: list[Any]) -> None:
    assert [r.data for r in read_records("-", stdin=io.BytesIO(raw))] == expected


def test_jsonl_on_stdin_keeps_its_line_numbers() -> None:
    with pytest.raises(RecordError, match=r"<stdin>:3"):
        read_records("-", stdin=io.BytesIO(b'{"a": 1}\n{"a": 2}\n{"a": \n'))


def test_empty_stdin_is_an_input_error() -> None:
    with pytest.raises(InputError, match="empty"):
        read_records("-", stdin=io.BytesIO(b" \n"))


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_records(tmp_path / "nope.jsonl")


# --- JSON ---------------------------------------------------------------------------------------


def test_json_list_gives_each_object_its_starting_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "x.json",
        '[\n  {"a": 1},\n\n  {\n    "b": "' + VI + '"\n  },\n  {"c": [1, 2]}\n]\n',
    )
    records = read_records(path)
    assert records == [
        SourceRecord(2, {"a": 1}),
        SourceRecord(4, {"b": VI}),
        SourceRecord(7, {"c": [1, 2]}),
    ]


def test_json_single_object(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.json", '\n\n{"goods": "' + VI + '"}')
    assert read_records(path) == [SourceRecord(3, {"goods": VI})]


def test_json_empty_list_reads_nothing(tmp_path: Path) -> None:
    assert read_records(_write(tmp_path, "x.json", " [ ] ")) == []


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", '[\n  {"a": 1},\n  {"b": 2,, "c": 3}\n]\n')
    with pytest.raises(RecordError) as info:
        read_records(path)
    assert info.value.line == 3
    assert "column 11" in str(info.value)
    assert str(info.value).startswith(f"{path}:3: invalid JSON")


def test_json_list_missing_comma_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", '[\n {"a": 1}\n {"b": 2}\n]')
    with pytest.raises(RecordError) as info:
        read_records(path)
    assert info.value.line == 3


def test_json_element_that_is_not_an_object(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.json", '[\n {"a": 1},\n 42\n]')
    with pytest.raises(RecordError, match="expected a JSON object") as info:
        read_records(path)
    assert info.value.line == 3


def test_json_trailing_garbage(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.json", '{"a": 1}\n\n}')
    with pytest.raises(RecordError, match="extra data") as info:
        read_records(path)
    assert info.value.line == 3


def test_json_rejects_nan(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="NaN"):
        read_records(_write(tmp_path, "x.json", '{"a": NaN}'))


def _nested(levels: int) -> str:
    """A JSON object ``levels`` levels deep (the object is level 1): {"a": [[...]]}."""
    return '{"a": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


@pytest.mark.parametrize("name", ["x.json", "x.jsonl"])
def test_nesting_up_to_the_limit_reads(tmp_path: Path, name: str) -> None:
    [record] = read_records(_write(tmp_path, name, _nested(MAX_DEPTH) + "\n"))
    assert record.line == 1


# 65: one level too deep; 600: deep enough to crash the event models' NFC pass (RecursionError);
# 50 000: deep enough to crash json's own parser. Each is one clear error naming the line.
@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 600, 50_000])
@pytest.mark.parametrize("name", ["x.json", "x.jsonl"])
def test_nesting_beyond_the_limit_names_the_line(tmp_path: Path, name: str, levels: int) -> None:
    good = '{"b": 1}'
    text = (
        f"{good}\n{good}\n{_nested(levels)}\n"
        if name.endswith("l")
        else f"[{good},\n{good},\n{_nested(levels)}]"
    )
    with pytest.raises(RecordError) as raised:
        read_records(_write(tmp_path, name, text))
    assert raised.value.line == 3
    assert f"{name}:3: nested too deeply: more than {MAX_DEPTH} levels" in str(raised.value)


def test_csv_dotted_header_nesting_beyond_the_limit_names_the_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv", "b," + ".".join(["a"] * 600) + "\nok,\n1,2\n")
    with pytest.raises(RecordError, match=r"x\.csv:3: nested too deeply"):
        read_records(path)


# --- JSON Lines ----------------------------------------------------------------------------------


def test_jsonl_skips_blank_lines_and_keeps_exact_line_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.jsonl", '{"a": 1}\n\n   \n{"b": "' + VI + '"}\r\n{"c": 3}')
    assert read_records(path) == [
        SourceRecord(1, {"a": 1}),
        SourceRecord(4, {"b": VI}),
        SourceRecord(5, {"c": 3}),
    ]


def test_jsonl_does_not_split_on_unicode_line_separators(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.jsonl", '{"a": "x\u2028y\u0085z"}\n{"b": 1}\n')
    assert read_records(path) == [SourceRecord(1, {"a": "x\u2028y\u0085z"}), SourceRecord(2, {"b": 1})]


def test_malformed_jsonl_names_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.jsonl", '{"a": 1}\n\n{"b": tru}\n')
    with pytest.raises(RecordError) as info:
        read_records(path)
    assert info.value.line == 3
    assert "column 7" in str(info.value)


def test_stdin_reads_bytes(tmp_path: Path) -> None:
    records = read_records("-", fmt="jsonl", stdin=io.BytesIO(('{"x": "' + VI + '"}\n').encode()))
    assert records == [SourceRecord(1, {"x": VI})]


# --- encodings ------------------------------------------------------------------------------------


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    content = b'{"a": 1}\n{"b": 2}\n' + b'{"c": "Qu\xe1ng Ng\xe3i"}\n'
    path = _write(tmp_path, "latin.jsonl", content)
    with pytest.raises(RecordError, match="not valid UTF-8") as info:
        read_records(path)
    assert info.value.line == 3


def test_text_is_kept_byte_for_byte_without_normalisation(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", VI)
    assert decomposed != VI
    path = _write(tmp_path, "x.jsonl", '{"name": "' + decomposed + '"}\n')
    (record,) = read_records(path)
    assert record.data["name"] == decomposed
    assert record.data["name"].encode("utf-8") == decomposed.encode("utf-8")


def test_json_with_a_bom_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.json", b"\xef\xbb\xbf" + '{"a": "ý"}'.encode())
    assert read_records(path) == [SourceRecord(1, {"a": "ý"})]


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_with_excel_bom_and_dotted_headers(tmp_path: Path) -> None:
    content = "\ufeffseller.name,seller.tax_code,goods\r\n" + f'"{VI}",4300581296,"Mỹ phẩm; son môi"\r\n'
    path = _write(tmp_path, "x.csv", content)
    (record,) = read_records(path)
    assert record == SourceRecord(
        2, {"seller": {"name": VI, "tax_code": "4300581296"}, "goods": "Mỹ phẩm; son môi"}
    )


def test_csv_without_bom_and_without_schema_keeps_strings(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv", "a,b.c\n1,true\n")
    assert read_records(path) == [SourceRecord(2, {"a": "1", "b": {"c": "true"}})]


def test_csv_empty_cell_means_absent_and_blank_rows_are_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv", "seller.name,seller.phone,summary\n\nA,,s\n,,\nB,0905172634,\n")
    assert read_records(path) == [
        SourceRecord(3, {"seller": {"name": "A"}, "summary": "s"}),
        SourceRecord(5, {"seller": {"name": "B", "phone": "0905172634"}}),
    ]


def test_csv_line_numbers_count_multiline_cells(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv", 'summary,goods\n"dòng 1\ndòng 2",a\nx,b\n')
    records = read_records(path)
    assert [r.line for r in records] == [2, 4]
    assert records[0].data["summary"] == "dòng 1\ndòng 2"


def test_csv_uses_the_schema_for_arrays_numbers_and_booleans(tmp_path: Path) -> None:
    content = (
        "seller.name,accounts.platform,accounts.account,accounts.url,violation_kinds,domains,"
        "goods_imported,border_area,estimated_value_vnd,goods\n"
        "Tài,FACEBOOK;ZALO,Tài Lý Sơn;0915640273,https://www.facebook.com/tai;,"
        "SMUGGLING; PROHIBITED_GOODS,,true,có,48000000,thuốc lá; rượu\n"
    )
    path = _write(tmp_path, "x.csv", content)
    (record,) = read_records(path, schema=_schema("suspect_seller"))
    assert record.data == {
        "seller": {"name": "Tài"},
        "accounts": [
            {"platform": "FACEBOOK", "account": "Tài Lý Sơn", "url": "https://www.facebook.com/tai"},
            {"platform": "ZALO", "account": "0915640273"},
        ],
        "violation_kinds": ["SMUGGLING", "PROHIBITED_GOODS"],
        "goods_imported": True,
        "border_area": True,
        "estimated_value_vnd": 48000000,
        "goods": "thuốc lá; rượu",
    }


def test_csv_value_that_is_not_a_number_is_left_for_validation(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv", "estimated_value_vnd,border_area\nkhoảng 5 triệu,maybe\n")
    (record,) = read_records(path, schema=_schema("suspect_seller"))
    assert record.data == {"estimated_value_vnd": "khoảng 5 triệu", "border_area": "maybe"}


def test_csv_record_array_columns_must_have_equal_item_counts(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv", "accounts.platform,accounts.account\nSHOPEE;LAZADA,a\n")
    with pytest.raises(RecordError, match="different item counts") as info:
        read_records(path, schema=_schema("suspect_seller"))
    assert info.value.line == 2


def test_csv_repeated_or_conflicting_headers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="repeated"):
        read_records(_write(tmp_path, "a.csv", "goods,goods\nx,y\n"))
    with pytest.raises(RecordError, match="parent"):
        read_records(_write(tmp_path, "b.csv", "seller,seller.name\nx,y\n"))


def test_csv_row_longer_than_the_header(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="stray comma") as info:
        read_records(_write(tmp_path, "x.csv", "a,b\n1,2\n1,2,3\n"))
    assert info.value.line == 3


def test_csv_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv", b"a,b\n1,2\nQu\xe1ng,3\n")
    with pytest.raises(RecordError, match="UTF-8") as info:
        read_records(path)
    assert info.value.line == 3


def test_csv_shape_knows_every_array_of_every_event_type() -> None:
    shape = csv_shape(_schema("domain_block_request"))
    assert {path for path, col in shape.items() if col.array} == {
        "domains",
        "urls",
        "ip_addresses",
        "violation_kinds",
        "meta.recipients",
    }
    outcome = csv_shape(_schema("case_outcome"))
    assert outcome["fine_vnd"].kind == "int"
    assert outcome["public"].kind == "bool"
    assert outcome["decided_on"].kind == "string"  # a date: parsed by the model, not here
    assert outcome["meta.occurred_at"].kind == "string"


def test_example_csv_reads(tmp_path: Path) -> None:

    records = read_records(REPO_ROOT / "examples" / "suspect_seller.csv", schema=_schema("suspect_seller"))
    assert [r.line for r in records] == [2, 3, 4]
    assert records[0].data["accounts"][1] == {"platform": "ZALO", "account": "0915640273"}
    assert records[0].data["seller"]["address"] == "Thôn Tây, xã An Hải, huyện Lý Sơn"
