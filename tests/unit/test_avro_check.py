"""The canonical-encoding check on Avro schemas beyond bus389's own: every type, recursion, big enums.

The event schemas are covered through the codec (tests/fuzz/test_codec_fuzz.py, with a differential
test against re-encoding); here the checker must walk what fastavro writes for any schema to its exact
end, and refuse what fastavro reads but never writes.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

from bus389._avro_check import NonCanonicalError, canonical_checker

SYMBOLS = [f"S{n}" for n in range(100)]
SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "t.Everything",
        "fields": [
            {"name": "n", "type": "null"},
            {"name": "flag", "type": "boolean"},
            {"name": "small", "type": "int"},
            {"name": "big", "type": "long"},
            {"name": "f", "type": "float"},
            {"name": "d", "type": "double"},
            {"name": "raw", "type": "bytes"},
            {"name": "text", "type": "string"},
            {"name": "hash", "type": {"type": "fixed", "name": "t.Hash", "size": 4}},
            {"name": "again", "type": "t.Hash"},
            {"name": "many", "type": {"type": "enum", "name": "t.Many", "symbols": SYMBOLS}},
            {"name": "three", "type": ["null", "string", "t.Many"]},
            {"name": "tags", "type": {"type": "map", "values": {"type": "array", "items": "long"}}},
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {
                "name": "chain",
                "type": [
                    "null",
                    {
                        "type": "record",
                        "name": "t.Link",
                        "fields": [
                            {"name": "value", "type": "string"},
                            {"name": "next", "type": ["null", "t.Link"]},
                        ],
                    },
                ],
            },
        ],
    }
)


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "n": None,
        "flag": True,
        "small": -(2**31),
        "big": 2**63 - 1,
        "f": 1.5,
        "d": -2.25,
        "raw": b"\x00\xff" * 40,
        "text": "Quảng Ngãi " * 20,
        "hash": b"abcd",
        "again": b"wxyz",
        "many": "S99",
        "three": "S70",
        "tags": {"a": [1, -1, 2**40], "b": [], "c": list(range(70))},
        "day": 18_800,
        "chain": {"value": "1", "next": {"value": "2", "next": {"value": "3", "next": None}}},
    }
    record.update(changes)
    return record


def _write(record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SCHEMA, record)
    return buffer.getvalue()


CHECK = canonical_checker(SCHEMA)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"flag": False, "many": "S0", "three": None, "tags": {}, "chain": None, "text": "", "raw": b""},
        {"three": "x" * 10_000, "big": -(2**63), "small": 2**31 - 1},
        {"many": "S63", "three": "S64"},
    ],
)
def test_what_fastavro_writes_is_walked_to_its_exact_end(changes: dict[str, Any]) -> None:
    body = _write(_record(**changes))
    assert CHECK(body, 0) == len(body)
    prefix = b"\x00\x00\x00\x00\x07"
    assert CHECK(prefix + body, 5) == len(prefix) + len(body)


def test_a_recursive_record_is_walked() -> None:
    link: dict[str, Any] | None = None
    for n in range(200):
        link = {"value": str(n), "next": link}
    body = _write(_record(chain=link))
    assert CHECK(body, 0) == len(body)


def _forge(record: dict[str, Any], old: bytes, new: bytes) -> bytes:
    body = _write(record)
    assert body.count(old) == 1, (old, body)
    return body.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (b"\x02\x06S70", b"\x03\x06S70", "union branch index -2"),  # three: branch 1 (string) -> -2
        (b"\x02\x06S70", b"\x82\x00\x06S70", "overlong varint"),  # branch 1 in two bytes
        (b"\x02\x06S70", b"\x06\x06S70", "union branch index 3 at offset"),
        (b"\xc6\x01\x02\x06S70", b"\x01\x02\x06S70", "enum index -1 at offset"),  # many: S99 -> -1
        (b"\xc6\x01\x02\x06S70", b"\xc8\x01\x02\x06S70", "enum index 100 at offset"),
    ],
)
def test_indexes_fastavro_would_read_are_refused(old: bytes, new: bytes, problem: str) -> None:
    forged = _forge(_record(), old, new)
    with pytest.raises(NonCanonicalError, match=problem):
        CHECK(forged, 0)


def test_a_two_byte_enum_index_in_range_is_canonical() -> None:
    """S70 of 100 symbols is the two bytes 0x8c 0x01: not the one-byte fast path, still right."""
    body = _write(_record(many="S70"))
    assert b"\x8c\x01" in body
    assert CHECK(body, 0) == len(body)


def test_a_map_in_two_blocks_and_a_negative_string_length_are_refused() -> None:
    record = _record(tags={"a": [5]})
    one_block = b"\x02\x02a\x02\x0a\x00\x00"  # 1 entry: "a" -> [5]; end of array; end of map
    two_blocks = b"\x02\x02a\x02\x0a\x00\x02\x02b\x00\x00"
    with pytest.raises(NonCanonicalError, match="second block"):
        CHECK(_forge(record, one_block, two_blocks), 0)
    with pytest.raises(NonCanonicalError, match="negative length -1"):
        CHECK(_forge(record, one_block, b"\x02\x01a\x02\x0a\x00\x00"), 0)


@pytest.mark.parametrize(
    "varint",
    [
        b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
        b"\xff\x00",
        b"\xff" * 9 + b"\x7f",
        b"\xff" * 9 + b"\x02",
    ],
    ids=["eleven-bytes", "overlong", "70-bits", "65-bits"],
)
def test_long_varints_past_ten_bytes_or_64_bits_or_overlong_are_refused(varint: bytes) -> None:
    big = b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # 2**63 - 1, zigzag: ten bytes
    forged = _forge(_record(), b"\xff\xff\xff\x0f" + big, b"\xff\xff\xff\x0f" + varint)
    with pytest.raises(NonCanonicalError, match="varint"):
        CHECK(forged, 0)


def test_unknown_named_types_are_a_schema_error() -> None:
    with pytest.raises(ValueError, match="unknown Avro type 't.Nowhere'"):
        canonical_checker({"type": "record", "name": "t.R", "fields": [{"name": "x", "type": "t.Nowhere"}]})
