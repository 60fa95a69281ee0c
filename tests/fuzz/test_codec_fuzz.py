"""Fuzzing the codec: every byte string either decodes into a record or raises a typed CodecError.

Nothing else may escape (no IndexError, no UnicodeDecodeError, no MemoryError from a forged length),
and nothing may take long: a forged length or count must fail fast, not allocate or loop.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from _fuzz_inputs import (
    CODEC_REASONS,
    EVENT_TYPES,
    encoded_sample,
    entry_of,
    frame,
    known_ids,
    plausible_record,
    random_record,
    sample_event,
    with_invalid_utf8,
    write_body,
    zigzag,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bus389.codec import Decoded, decode_event, decode_value, encode_value, headers_dict
from bus389.errors import (
    BadMagicByteError,
    CodecError,
    CorruptBodyError,
    SchemaMismatchError,
    TruncatedFrameError,
    UnknownSchemaIdError,
)
from bus389.schemas.catalog import load_catalog

pytestmark = pytest.mark.timeout(180)

VALID = [encoded_sample(t).value for t in EVENT_TYPES]
HEADERS = {t: encoded_sample(t).headers for t in EVENT_TYPES}


def _outcome(value: bytes | None, headers: Any = None) -> Decoded | CodecError:
    """Decode; return the typed error instead of raising it. Anything else propagates (and fails)."""
    try:
        return decode_event(value, headers)
    except CodecError as exc:
        assert exc.reason in CODEC_REASONS, exc.reason
        assert str(exc), "a codec error must say what is wrong"
        return exc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
@example(b"")
@example(b"\x00")
@example(b"\x00\x00\x00\x00")
@example(b"\x00\x00\x00\x00\x01")
@example(b"\x01\x00\x00\x00\x01")
@example(b"\x00\xff\xff\xff\xff")
def test_random_bytes_never_escape_as_anything_but_a_codec_error(value: bytes) -> None:
    result = _outcome(value)
    if isinstance(result, Decoded):
        assert result.schema.schema_id in known_ids()


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_valid_frames(data: st.DataObject) -> None:
    original = bytearray(data.draw(st.sampled_from(VALID)))
    value = bytearray(original)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "cut", "dup"]))
        if not value:
            break
        at = data.draw(st.integers(0, len(value) - 1))
        if op == "flip":
            value[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            value[at] = data.draw(st.integers(0, 255))
        elif op == "insert":
            value[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del value[at : at + data.draw(st.integers(1, 16))]
        elif op == "cut":
            del value[at:]
        else:
            value[at:at] = value[at : at + data.draw(st.integers(1, 32))]
    result = _outcome(bytes(value))
    if len(value) < 5 and isinstance(result, CodecError):
        assert isinstance(result, TruncatedFrameError | BadMagicByteError)


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 4])
def test_every_cut_inside_the_header_is_a_truncated_frame(cut: int) -> None:
    with pytest.raises(TruncatedFrameError):
        decode_value(VALID[0][:cut])


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_cut_inside_the_body_is_corrupt(event_type: str) -> None:
    value = encoded_sample(event_type).value
    for cut in range(5, len(value)):
        with pytest.raises(CorruptBodyError):
            decode_value(value[:cut])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 255), st.sampled_from(VALID))
def test_any_other_magic_byte_is_refused(magic: int, value: bytes) -> None:
    with pytest.raises(BadMagicByteError):
        decode_value(bytes([magic]) + value[1:])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1).filter(lambda i: i not in known_ids()), st.sampled_from(VALID))
def test_unknown_schema_ids_are_named(schema_id: int, value: bytes) -> None:
    with pytest.raises(UnknownSchemaIdError) as info:
        decode_value(frame(schema_id, value[5:]))
    assert str(schema_id) in str(info.value)


@pytest.mark.parametrize("writer_type", EVENT_TYPES)
@pytest.mark.parametrize("framed_as", [*EVENT_TYPES, "audit"])
def test_valid_framing_over_the_wrong_schema(writer_type: str, framed_as: str) -> None:
    """A body written with one schema and framed with another's id: never a silent success as the frame."""
    body = encoded_sample(writer_type).value[5:]
    target = load_catalog().audit if framed_as == "audit" else entry_of(framed_as)
    value = frame(target.schema_id, body)
    result = _outcome(value, HEADERS[writer_type])
    if framed_as == writer_type:
        assert isinstance(result, Decoded)
        return
    # The ce_type header, meta.event_type or the body itself gives it away.
    assert isinstance(result, CodecError)
    assert isinstance(result, CorruptBodyError | SchemaMismatchError)
    # Without the header, the bytes may happen to decode as the other type, but never as the writer's
    # meta.event_type under another schema id.
    headerless = _outcome(value)
    if isinstance(headerless, Decoded):
        assert (
            headerless.meta.get("event_type") == headerless.schema.event_type
            or not headerless.schema.is_event
        )


@pytest.mark.parametrize(
    "bad",
    [b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"ab\x80cd"],
)
@pytest.mark.parametrize("event_type", ["suspect_seller", "complaint", "law_gap_proposal"])
def test_invalid_utf8_in_a_string_is_corrupt(event_type: str, bad: bytes) -> None:
    field_name = {"suspect_seller": "goods", "complaint": "summary", "law_gap_proposal": "problem"}[
        event_type
    ]
    with pytest.raises(CorruptBodyError):
        decode_value(with_invalid_utf8(event_type, field_name, bad))


@pytest.mark.parametrize("header", [b"\xff\xfe", b"vn.bcd389.suspect_seller.v1\x80", b""])
def test_invalid_utf8_in_the_ce_type_header_is_a_mismatch_not_a_crash(header: bytes) -> None:
    value = encoded_sample("suspect_seller").value
    with pytest.raises(SchemaMismatchError):
        decode_event(value, [("ce_type", header)])


@pytest.mark.parametrize(
    "length",
    [2**62, 2**63 - 1, 10**9, 2**31, -1, -(2**62), -(2**63)],
)
@pytest.mark.timeout(60)  # a decoder that believed the length would allocate or loop: caught here
def test_forged_string_lengths_fail_fast(length: int) -> None:
    """Refused as corrupt, without reading (or allocating) the claimed length: no hang, no MemoryError."""
    entry = entry_of("law_gap_proposal")  # first field: meta.event_id, a string
    value = frame(entry.schema_id, zigzag(length) + b"abc")
    with pytest.raises(CorruptBodyError):
        decode_value(value)


@pytest.mark.parametrize("count", [2**62, 10**9, -(2**62), -(10**9)])
@pytest.mark.timeout(60)  # a decoder that believed the count would allocate or loop: caught here
def test_forged_array_counts_fail_fast(count: int) -> None:
    """``evidence_urls`` claims billions of items (or a negative block) over a few bytes."""
    event = sample_event("suspect_seller")
    record = event.to_avro()
    record["evidence_urls"] = ["MARK"]
    entry = entry_of("suspect_seller")
    body = write_body(record, entry)
    needle = zigzag(1) + zigzag(4) + b"MARK" + b"\x00"
    assert body.count(needle) == 1
    forged = zigzag(count) + (zigzag(10) if count < 0 else b"") + zigzag(4) + b"MARK"
    value = frame(entry.schema_id, body.replace(needle, forged))
    with pytest.raises(CorruptBodyError):
        decode_value(value)


@pytest.mark.parametrize(
    "varint", [b"\xff" * 10, b"\xff" * 11 + b"\x01", b"\x80" * 40, b"\xff" * 9 + b"\x7f"]
)
def test_overlong_varints_are_corrupt(varint: bytes) -> None:
    entry = entry_of("law_gap_proposal")
    with pytest.raises(CorruptBodyError):
        decode_value(frame(entry.schema_id, varint + b"\x00" * 8))


@pytest.mark.parametrize("branch", [2, 3, 255, -1, -2, -3, 2**40, -(2**40)])
def test_union_branches_out_of_range_are_corrupt(branch: int) -> None:
    """``meta.case_ref`` is ["null", "string"]: any other branch index is a lie.

    -1 and -2 are the ones fastavro alone reads (Python indexing: the last branch, the first).
    """
    event = sample_event("law_gap_proposal")
    record = event.to_avro()
    record["meta"]["case_ref"] = "CASE-MARK"
    entry = entry_of("law_gap_proposal")
    body = write_body(record, entry)
    needle = zigzag(1) + zigzag(9) + b"CASE-MARK"
    assert body.count(needle) == 1
    with pytest.raises(CorruptBodyError) as raised:
        decode_value(frame(entry.schema_id, body.replace(needle, zigzag(branch) + zigzag(9) + b"CASE-MARK")))
    if branch == -1:  # the one fastavro reads (as the last branch); it refuses the others itself
        assert f"union branch index {branch} " in str(raised.value), raised.value


def _sensitivity_body(index_bytes: bytes) -> bytes:
    """law_gap_proposal whose ``meta.sensitivity`` (enum Tlp: CLEAR .. RED) is written as ``index_bytes``."""
    event = sample_event("law_gap_proposal")
    record = event.to_avro()
    # index 3, then urgency ROUTINE (index 0) and no recipients (an empty array): 0x06 0x00 0x00
    record["meta"]["sensitivity"] = "AMBER_STRICT"
    record["meta"]["urgency"] = "ROUTINE"
    record["meta"]["recipients"] = []
    entry = entry_of("law_gap_proposal")
    body = write_body(record, entry)
    needle = zigzag(3) + zigzag(0) + zigzag(0) + zigzag(len(record["regulation"].encode()))
    assert body.count(needle) == 1
    return frame(entry.schema_id, body.replace(needle, index_bytes + needle[1:]))


@pytest.mark.parametrize("index", [-1, -5, 5, 2**40])
def test_enum_indexes_out_of_range_are_corrupt(index: int) -> None:
    """-5 would read as CLEAR (fastavro counts from the end): a TLP level chosen by a negative index."""
    with pytest.raises(CorruptBodyError) as raised:
        decode_value(_sensitivity_body(zigzag(index)))
    if index < 0:  # the ones fastavro reads; the others it refuses itself
        assert f"enum index {index} " in str(raised.value), raised.value


def test_an_enum_index_in_range_decodes() -> None:
    assert decode_value(_sensitivity_body(zigzag(4))).record["meta"]["sensitivity"] == "RED"


@pytest.mark.parametrize("byte", [2, 3, 0x7F, 0xFF])
def test_a_boolean_byte_other_than_0_or_1_is_corrupt(byte: int) -> None:
    """fastavro reads any non-zero byte as true, Apache Avro's Java reader only 1: refuse the rest."""
    event = sample_event("complaint")
    record = event.to_avro()
    record["summary"] = "MARK"
    record["signs_of_crime"] = True
    entry = entry_of("complaint")
    body = write_body(record, entry)
    needle = zigzag(4) + b"MARK" + b"\x01"
    assert body.count(needle) == 1 and body.endswith(needle), "signs_of_crime is the last field"
    assert decode_value(frame(entry.schema_id, body)).record["signs_of_crime"] is True
    with pytest.raises(CorruptBodyError, match="boolean"):
        decode_value(frame(entry.schema_id, body[:-1] + bytes([byte])))


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        (zigzag(1) + zigzag(1) + b"A" + zigzag(1) + zigzag(0) + b"\x00", "second block"),
        (zigzag(-2) + zigzag(3) + zigzag(1) + b"A" + zigzag(0) + b"\x00", "byte size"),
        (zigzag(2) + zigzag(1) + b"A" + b"\x80\x00" + b"\x00", "overlong varint"),
    ],
    ids=["two-blocks", "negative-count-with-size", "overlong-length"],
)
def test_non_canonical_arrays_and_lengths_are_corrupt(blocks: bytes, problem: str) -> None:
    """Valid Avro that fastavro's writer never writes: the body would not re-encode to itself."""
    event = sample_event("suspect_seller")
    record = event.to_avro()
    record["evidence_urls"] = ["A", ""]
    entry = entry_of("suspect_seller")
    body = write_body(record, entry)
    needle = zigzag(2) + zigzag(1) + b"A" + zigzag(0) + b"\x00"
    assert body.count(needle) == 1
    value = frame(entry.schema_id, body.replace(needle, blocks))
    assert _decodes_in_fastavro(value) == ["A", ""], "fastavro alone reads these bytes"
    with pytest.raises(CorruptBodyError, match=problem):
        decode_value(value)


def _decodes_in_fastavro(value: bytes) -> Any:
    body = io.BytesIO(value)
    body.seek(5)
    return fastavro.schemaless_reader(body, entry_of("suspect_seller").reader_schema, None)["evidence_urls"]


@pytest.mark.parametrize("varint", [b"\xff" * 9 + b"\x7f", b"\xff" * 9 + b"\x03"], ids=["70-bits", "65-bits"])
def test_a_long_beyond_64_bits_is_corrupt(varint: bytes) -> None:
    """fastavro wraps a ten-byte varint past 64 bits (to -2**63 here); Apache Avro refuses it."""
    event = sample_event("suspect_seller")
    record = event.to_avro()
    record["estimated_value_vnd"] = 2**62 + 12345
    entry = entry_of("suspect_seller")
    body = write_body(record, entry)
    needle = zigzag(1) + zigzag(2**62 + 12345)
    assert body.count(needle) == 1
    forged = body.replace(needle, zigzag(1) + varint)
    reader = io.BytesIO(forged)
    assert fastavro.schemaless_reader(reader, entry.reader_schema, None)["estimated_value_vnd"] == -(2**63)
    with pytest.raises(CorruptBodyError, match="beyond 64 bits"):
        decode_value(frame(entry.schema_id, forged))


def _canonical_by_reencoding(value: bytes) -> bool:
    """The rule itself, slowly: fastavro decodes the body whole, and it re-encodes to the same bytes."""
    schema = load_catalog().by_id(int.from_bytes(value[1:5], "big"))
    body = io.BytesIO(value)
    body.seek(5)
    try:
        record = fastavro.schemaless_reader(body, schema.reader_schema, None)
    except Exception:
        return False
    if body.tell() != len(value) or not isinstance(record, dict):
        return False
    try:
        return encode_value(record, schema) == value
    except CodecError:
        return False


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_codec_accepts_a_body_exactly_when_it_re_encodes_to_itself(data: st.DataObject) -> None:
    """Differential: ``decode_value``'s fast check against re-encoding, on bodies mutated by a few bytes.

    Flipping the low bit of a byte turns union and enum indexes negative (0x02 -> 0x03 is 1 -> -2),
    booleans into 0x02/0x03 and lengths negative, so a good share of the mutants still decode in fastavro.
    """
    value = bytearray(data.draw(st.sampled_from(VALID)))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(5, len(value) - 1))
        op = data.draw(st.sampled_from(["low-bit", "set-small", "set", "insert", "delete"]))
        if op == "low-bit":
            value[at] ^= 1
        elif op == "set-small":
            value[at] = data.draw(st.integers(0, 9))
        elif op == "set":
            value[at] = data.draw(st.integers(0, 255))
        elif op == "insert":
            value[at:at] = data.draw(st.binary(min_size=1, max_size=3))
        elif len(value) > 6:
            del value[at]
    mutant = bytes(value)
    try:
        decode_value(mutant)
        accepted = True
    except CorruptBodyError:
        accepted = False
    assert accepted == _canonical_by_reencoding(mutant), mutant.hex()


@pytest.mark.parametrize("out_of_range", [2**62, -(2**62), 2**63 - 1])
def test_instants_beyond_what_python_can_hold_are_corrupt(out_of_range: int) -> None:
    event = sample_event("law_gap_proposal")
    record = event.to_avro()
    record["meta"]["occurred_at"] = out_of_range  # fastavro writes a raw long as is
    entry = entry_of("law_gap_proposal")
    with pytest.raises(CorruptBodyError):
        decode_value(frame(entry.schema_id, write_body(record, entry)))


@pytest.mark.timeout(120)  # bounded time: a quadratic decoder would hang here (speed: `make bench`)
def test_enormous_but_honest_strings_and_arrays_decode_in_bounded_time() -> None:
    """Big is not broken: a 2 MB string and a 100 000-item array decode (size limits are the broker's)."""
    event = sample_event("suspect_seller")
    record = event.to_avro()
    record["summary"] = "Hàng giả " * 200_000
    record["evidence_urls"] = [f"https://example.vn/{i}" for i in range(100_000)]
    entry = entry_of("suspect_seller")
    value = frame(entry.schema_id, write_body(record, entry))
    decoded = decode_event(value, HEADERS["suspect_seller"])
    assert decoded.record["evidence_urls"] == record["evidence_urls"]
    assert decoded.record["summary"] == record["summary"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(st.data())
def test_any_record_the_schema_admits_round_trips(data: st.DataObject) -> None:
    """Type-correct but rule-blind records: the codec decodes exactly what was written, or names why not."""
    event_type = data.draw(st.sampled_from(EVENT_TYPES))
    record = data.draw(random_record(event_type))
    entry = entry_of(event_type)
    value = frame(entry.schema_id, write_body(record, entry))
    result = _outcome(value)
    if isinstance(result, CodecError):
        # Only the type check of decode_event may refuse: meta.event_type disagrees with the schema.
        assert isinstance(result, SchemaMismatchError)
        assert record["meta"]["event_type"] != event_type
    else:
        assert result.record["meta"]["event_id"] == record["meta"]["event_id"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_bad_field_in_a_good_record_still_decodes(data: st.DataObject) -> None:
    event_type = data.draw(st.sampled_from(EVENT_TYPES))
    record = data.draw(plausible_record(event_type))
    entry = entry_of(event_type)
    result = _outcome(frame(entry.schema_id, write_body(record, entry)), HEADERS[event_type])
    if record["meta"]["event_type"] != event_type:
        # The one field drawn was meta.event_type itself: the type check refuses, naming the mismatch.
        assert isinstance(result, SchemaMismatchError), result
        return
    assert isinstance(result, Decoded), f"one bad field in a {event_type} did not decode: {result}"
    assert result.record["meta"]["event_id"] == record["meta"]["event_id"]
    assert result.schema.event_type == event_type


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=12), st.one_of(st.none(), st.binary(max_size=40))),
        max_size=8,
    )
)
def test_arbitrary_headers_never_crash(headers: list[tuple[str, bytes | None]]) -> None:
    result = _outcome(VALID[0], headers)
    given_type = headers_dict(headers).get("ce_type")
    if given_type is not None and given_type != b"vn.bcd389.case_outcome.v1":
        assert isinstance(result, SchemaMismatchError)
