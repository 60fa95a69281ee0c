"""The wire format: framing, key, CloudEvents headers, round trips, typed decoding errors, independence."""

from __future__ import annotations

import io
import json
import struct
import unicodedata
import uuid
from datetime import UTC, date, datetime
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus389 import codec
from bus389.codec import Decoded, decode_event, decode_value, encode_event, encode_value, rfc3339
from bus389.errors import (
    BadMagicByteError,
    CodecError,
    CorruptBodyError,
    EncodeError,
    SchemaMismatchError,
    TruncatedFrameError,
    UnknownSchemaIdError,
)
from bus389.events import EVENT_MODELS, AuditRecord, Event, build_event, event_from_avro
from bus389.schemas.catalog import load_catalog

NOW = datetime(2021, 7, 15, 2, 30, 12, 345000, tzinfo=UTC)
NAME = "Nguyễn Thị Hồng Nhung"
ADDRESS = "Thôn Phú Thọ, xã Nghĩa Hà, TP. Quảng Ngãi"
REQUEST_ID = "8f14e45f-ceea-4e7a-9a1b-2a0c9d3b7e51"


def _seller(**extra: Any) -> dict[str, Any]:
    return {
        "name": NAME,
        "tax_code": "4300581296-001",
        "national_id": "051190000123",
        "phone": "0905 172 634",
        "address": ADDRESS,
        "province": "Quảng Ngãi",
        **extra,
    }


ACCOUNTS = [
    {"platform": "SHOPEE", "account": "hongnhung.mypham", "url": "https://shopee.vn/hongnhung.mypham"},
    {"platform": "FACEBOOK", "account": "Mỹ phẩm Hồng Nhung Quảng Ngãi", "url": None},
]

SAMPLES: dict[str, dict[str, Any]] = {
    "suspect_seller": {
        "meta": {"case_ref": "QNG-389-2021-0015", "sensitivity": "AMBER", "urgency": "PRIORITY"},
        "seller": _seller(),
        "accounts": ACCOUNTS,
        "goods": "Mỹ phẩm Hàn Quốc giả nhãn hiệu (Sulwhasoo, Whoo)",
        "violation_kinds": ["COUNTERFEIT", "IP_INFRINGEMENT"],
        "evidence_urls": ["https://shopee.vn/hongnhung.mypham/123456"],
        "domains": ["myphamhanquoc-qn.vn", "mỹphẩm.vn"],
        "goods_imported": True,
        "border_area": False,
        "estimated_value_vnd": 185_000_000,
        "summary": "Rao bán mỹ phẩm giả trên Shopee và Facebook, giao hàng tại TP. Quảng Ngãi.",
    },
    "domain_block_request": {
        "meta": {"case_ref": "QNG-389-2021-0015", "urgency": "IMMEDIATE"},
        "domains": ["myphamhanquoc-qn.vn"],
        "urls": ["https://sulwhasoo-chinhhang.com/khuyen-mai"],
        "ip_addresses": ["203.0.113.45", "2001:DB8:0:0::7"],
        "action": "BLOCK",
        "reason": "Website bán mỹ phẩm giả mạo nhãn hiệu, lừa dối người tiêu dùng.",
        "legal_basis": "Công văn số 215/QLTT-NV ngày 15/3/2021",
        "violation_kinds": ["COUNTERFEIT"],
        "expires_at": "2021-12-31T23:59:59+07:00",
    },
    "tax_discrepancy": {
        "meta": {"sensitivity": "AMBER_STRICT"},
        "seller": _seller(national_id=None),
        "accounts": ACCOUNTS[:1],
        "period": "2021-H1",
        "estimated_revenue_vnd": 2_350_000_000,
        "declared_revenue_vnd": 480_000_000,
        "undeclared_revenue_vnd": 1_870_000_000,
        "estimated_tax_owed_vnd": 93_500_000,
        "notes": "Doanh thu ước tính từ dữ liệu sàn Shopee quý I–II/2021.",
    },
    "domain_block_result": {
        "meta": {"in_reply_to": REQUEST_ID, "case_ref": "QNG-389-2021-0015", "sensitivity": "AMBER"},
        "requester": "market_surveillance",
        "outcome": "PARTIAL",
        "blocked": ["myphamhanquoc-qn.vn"],
        "not_blocked": ["sulwhasoo-chinhhang.com"],
        "decided_at": "2021-03-16T10:45:00+07:00",
        "providers_notified": ["VNPT Quảng Ngãi", "Viettel Quảng Ngãi"],
        "note": "Tên miền .com do nhà đăng ký nước ngoài quản lý; đã đề nghị Cục An toàn thông tin xử lý.",
    },
    "complaint": {
        "kind": "DENUNCIATION",
        "channel": "HOTLINE",
        "received_at": "2021-04-02T08:05:00+07:00",
        "complainant": {
            "full_name": "Trần Thị Bích Ngọc",
            "national_id": "051301002233",
            "phone": "+84 255 3822 123",
            "address": "Tổ 5, phường Trần Phú, TP. Quảng Ngãi",
        },
        "seller": _seller(tax_code=None),
        "accounts": ACCOUNTS,
        "summary": "Mua kem dưỡng da qua Facebook, sử dụng bị dị ứng; nghi hàng giả.",
        "signs_of_crime": True,
    },
    "case_referral": {
        "meta": {"case_ref": "QNG-389-2021-0015", "sensitivity": "RED"},
        "seller": _seller(),
        "accounts": ACCOUNTS,
        "violation_kinds": ["COUNTERFEIT", "TRADE_FRAUD"],
        "suspected_offences": ["Điều 192 BLHS 2015", "Điều 226 BLHS 2015"],
        "evidence_urls": ["https://shopee.vn/hongnhung.mypham/123456"],
        "estimated_value_vnd": 650_000_000,
        "summary": "Giá trị hàng giả tương đương hàng thật trên 30 triệu đồng: có dấu hiệu tội phạm.",
    },
    "case_outcome": {
        "meta": {"sensitivity": "CLEAR", "case_ref": "QNG-389-2021-0015"},
        "seller": _seller(national_id=None, phone=None, address=None),
        "outcome": "ADMINISTRATIVE_SANCTION",
        "violation_kinds": ["COUNTERFEIT"],
        "fine_vnd": 70_000_000,
        "goods_seized": "1.250 hộp mỹ phẩm giả",
        "goods_seized_value_vnd": 185_000_000,
        "decision_ref": "QĐ 45/QĐ-XPHC",
        "decided_on": "2021-05-20",
        "public": True,
        "summary": "Xử phạt hành chính và tịch thu toàn bộ hàng giả.",
    },
    "periodic_report": {
        "report_kind": "SIX_MONTHLY",
        "period": "2021-H1",
        "title": "Báo cáo 6 tháng đầu năm 2021 về chống buôn lậu trong thương mại điện tử",
        "body": "Trong 6 tháng đầu năm, lực lượng Quản lý thị trường đã phát hiện 42 vụ…",
        "cases_detected": 42,
        "cases_handled": 38,
        "fines_vnd": 1_250_000_000,
        "goods_seized_value_vnd": 3_400_000_000,
        "tax_collected_vnd": 2_100_000_000,
        "domains_blocked": 7,
        "attachments": ["PL01-thong-ke.xlsx", "https://example.gov.vn/bc/2021-h1.pdf"],
    },
    "law_gap_proposal": {
        "regulation": "Nghị định 52/2013/NĐ-CP về thương mại điện tử",
        "article": "Điều 27",
        "problem": "Chưa quy định trách nhiệm của sàn khi người bán không kê khai thuế.",
        "proposal": "Bổ sung nghĩa vụ cung cấp thông tin người bán cho cơ quan thuế định kỳ.",
    },
    "routing_notice": {
        "notice": "SEALED",
        "about_event_id": "0b7f3c2e-5d44-4e0f-9a51-3c2d1e0f9a88",
        "about_event_type": "case_referral",
        "about_sender": "customs",
        "about_sensitivity": "RED",
        "about_occurred_at": "2021-05-02T09:00:00+07:00",
        "recipients": ["police"],
        "reason": "sensitivity RED, addressed to police",
        "origin": "bus389.outbox.customs/1/42",
    },
    "directive": {
        "meta": {"recipients": ["police", "other_members"]},
        "kind": "URGE",
        "subject": "Đôn đốc gửi báo cáo 6 tháng",
        "plan_section": "II.9",
        "due_at": "2021-07-10T17:00:00+07:00",
        "about_event_ids": ["0b7f3c2e-5d44-4e0f-9a51-3c2d1e0f9a88"],
    },
    "case_claim": {
        "seller": {"name": "Cửa hàng Mỹ phẩm Thu Trang", "tax_code": "4300123456", "phone": "0905123456"},
        "accounts": [{"platform": "SHOPEE", "account": "thutrang.cosmetics"}],
        "domains": ["myphamxachtay-qn.vn"],
        "goods_imported": True,
        "basis": "Kế hoạch 141/KH-UBND mục II.1",
    },
    "inspection_result": {
        "finding": "VIOLATION_FOUND",
        "signs_of_crime": True,
        "domains": ["myphamxachtay-qn.vn"],
        "violation_kinds": ["COUNTERFEIT"],
        "inspected_at": "2021-05-02T09:00:00+07:00",
        "inspected_by": "Thanh tra Sở TT&TT",
        "summary": "Trang web bán hàng giả",
    },
    "compiled_report": {
        "period": "2021-H1",
        "title": "Báo cáo tổng hợp 6 tháng đầu năm 2021",
        "body": "Tổng hợp kết quả của các thành viên.",
        "events_seen": 12,
        "fines_vnd": 35_000_000,
        "members_reported": ["police", "customs"],
        "members_missing": ["media"],
    },
}
SOURCES = {
    "suspect_seller": "police",
    "domain_block_request": "market_surveillance",
    "tax_discrepancy": "tax",
    "domain_block_result": "ict",
    "complaint": "industry_trade",
    "case_referral": "market_surveillance",
    "case_outcome": "market_surveillance",
    "periodic_report": "customs",
    "law_gap_proposal": "ict",
    "routing_notice": "customs",
    "directive": "market_surveillance",
    "case_claim": "police",
    "inspection_result": "ict",
    "compiled_report": "market_surveillance",
}


def sample_event(event_type: str) -> Event:
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bus389/{event_type}"))
    return build_event(event_type, SOURCES[event_type], SAMPLES[event_type], now=NOW, event_id=event_id)


def test_samples_cover_every_event_type() -> None:
    assert sorted(SAMPLES) == sorted(EVENT_MODELS) == sorted(SOURCES)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_round_trip_is_exact(event_type: str) -> None:
    event = sample_event(event_type)
    encoded = encode_event(event)
    entry = load_catalog().latest(event_type)
    assert encoded.value[0] == 0
    assert encoded.value[1:5] == entry.schema_id.to_bytes(4, "big")

    decoded = decode_event(encoded.value, encoded.headers, expected_type=event_type)
    assert decoded.schema is entry
    assert decoded.record == event.to_avro()
    again = type(event).from_avro(decoded.record)
    assert again == event
    assert event_from_avro(decoded.record) == event
    assert encode_event(again).value == encoded.value  # byte for byte


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_enum_members_encode_as_their_plain_symbols(event_type: str) -> None:
    # to_avro keeps StrEnum members (no walk turning them into str): the bytes must be the same.
    record = sample_event(event_type).to_avro()
    plain = json.loads(json.dumps(record, default=str))  # every enum member a plain str, times as text
    schema = load_catalog().latest(event_type).parsed_schema

    def restore_times(original: Any, copy: Any) -> Any:
        if isinstance(original, dict):
            return {k: restore_times(v, copy[k]) for k, v in original.items()}
        if isinstance(original, list):
            return [restore_times(o, c) for o, c in zip(original, copy, strict=True)]
        return original if isinstance(original, datetime | date) else copy

    plain = restore_times(record, plain)
    assert any(type(v) is not str and isinstance(v, str) for v in _leaves(record)), "has enum members"
    assert all(type(v) is str for v in _leaves(plain) if isinstance(v, str))
    with_members, with_str = io.BytesIO(), io.BytesIO()
    fastavro.schemaless_writer(with_members, schema, record)
    fastavro.schemaless_writer(with_str, schema, plain)
    assert with_members.getvalue() == with_str.getvalue()


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_vietnamese_text_survives_byte_for_byte_in_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", NAME)
    assert decomposed.encode() != NAME.encode()
    data = {**SAMPLES["suspect_seller"], "seller": _seller(name=decomposed)}
    event = build_event("suspect_seller", "police", data, now=NOW)
    encoded = encode_event(event)
    nfc = unicodedata.normalize("NFC", NAME).encode("utf-8")
    assert nfc in encoded.value and ADDRESS.encode("utf-8") in encoded.value
    assert decomposed.encode("utf-8") not in encoded.value
    record = decode_value(encoded.value).record
    assert record["seller"]["name"].encode("utf-8") == nfc
    assert record["seller"]["address"] == ADDRESS
    assert record["goods"] == "Mỹ phẩm Hàn Quốc giả nhãn hiệu (Sulwhasoo, Whoo)"


def test_decoded_record_types() -> None:
    record = decode_value(encode_event(sample_event("case_outcome")).value).record
    meta = record["meta"]
    assert isinstance(meta["event_id"], str) and uuid.UUID(meta["event_id"])
    assert meta["published_at"] == NOW and meta["published_at"].tzinfo is not None
    assert record["decided_on"] == date(2021, 5, 20)
    assert meta["source"] == "market_surveillance" and type(meta["source"]) is str
    assert record["fine_vnd"] == 70_000_000


def test_audit_record_round_trip() -> None:
    catalog = load_catalog()
    audit = AuditRecord.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "suspect_seller",
            "sender": "police",
            "schema_id": 1,
            "origin_topic": "bus389.outbox.police",
            "origin_partition": 2,
            "origin_offset": 12_345_678_901,
            "received_at": NOW,
            "routed_at": NOW,
            "deliveries": [
                {
                    "recipient": "tax",
                    "rule_id": "suspect_seller.tax",
                    "plan_section": "II.4",
                    "redacted_fields": [],
                },
                {
                    "recipient": "ict",
                    "rule_id": "suspect_seller.ict",
                    "plan_section": "II.6",
                    "redacted_fields": ["seller.national_id", "seller.phone"],
                },
            ],
            "withheld": [{"agency": "media", "reason": "sensitivity AMBER"}],
        }
    )
    encoded = encode_event(audit, schema=catalog.audit)
    assert encoded.key == audit.event_id.encode()
    headers = dict(encoded.headers)
    assert headers["ce_source"] == b"/bus389/router"
    assert headers["ce_type"] == b"vn.bcd389.audit.v2"
    decoded = decode_event(encoded.value, encoded.headers)
    assert AuditRecord.from_avro(decoded.record) == audit
    assert decoded.event_id == audit.event_id


# ---------------------------------------------------------------- key and headers


def test_key_is_case_ref_else_event_id() -> None:
    with_case = sample_event("suspect_seller")
    assert encode_event(with_case).key == b"QNG-389-2021-0015"
    without = sample_event("periodic_report")
    assert without.meta.case_ref is None
    assert encode_event(without).key == without.event_id.encode()
    vietnamese = build_event(
        "law_gap_proposal", "ict", {**SAMPLES["law_gap_proposal"], "meta": {"case_ref": "Vụ-01"}}
    )
    assert encode_event(vietnamese).key == "Vụ-01".encode()


def test_cloudevents_headers() -> None:
    event = sample_event("tax_discrepancy")
    headers = encode_event(event).headers
    assert headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", event.event_id.encode()),
        ("ce_source", b"/bus389/tax"),
        ("ce_type", b"vn.bcd389.tax_discrepancy.v2"),
        ("ce_time", b"2021-07-15T02:30:12.345Z"),
        ("content-type", b"application/avro"),
    ]
    assert all(isinstance(v, bytes) for _, v in headers)


def test_rfc3339() -> None:
    assert rfc3339(datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2021-01-02T03:04:05.000Z"
    assert rfc3339(1_609_556_645_123) == "2021-01-02T03:04:05.123Z"


def test_encode_value_accepts_a_plain_record() -> None:
    event = sample_event("complaint")
    entry = load_catalog().latest("complaint")
    assert encode_value(event.to_avro(), entry) == encode_value(event, entry)


# ---------------------------------------------------------------- encoding errors


def test_encoding_a_record_that_does_not_fit_raises_encode_error() -> None:
    entry = load_catalog().latest("law_gap_proposal")
    good = sample_event("law_gap_proposal").to_avro()
    with pytest.raises(EncodeError, match="law_gap_proposal/v2"):
        encode_value({**good, "unknown": 1}, entry)
    missing = {k: v for k, v in good.items() if k != "problem"}
    with pytest.raises(EncodeError):
        encode_value(missing, entry)
    with pytest.raises(EncodeError):
        encode_value({**good, "problem": 42}, entry)
    with pytest.raises(EncodeError, match="explicit schema"):
        encode_event({"event_id": "x"})


def test_missing_defaulted_fields_are_filled_on_encode() -> None:
    entry = load_catalog().latest("law_gap_proposal")
    good = sample_event("law_gap_proposal").to_avro()
    del good["article"]
    record = decode_value(encode_value(good, entry)).record
    assert record["article"] is None


# ---------------------------------------------------------------- decoding errors


def _value(event_type: str = "complaint") -> bytes:
    return encode_event(sample_event(event_type)).value


@pytest.mark.parametrize("value", [b"", None, b"\x00", b"\x00\x00\x00\x01"])
def test_truncated_frame(value: bytes | None) -> None:
    with pytest.raises(TruncatedFrameError) as info:
        decode_value(value)
    assert info.value.reason == "truncated_frame"


@pytest.mark.parametrize("value", [b"\x01\x00\x00\x00\x05abc", b"{", b"\xff"])
def test_bad_magic_byte(value: bytes) -> None:
    with pytest.raises(BadMagicByteError, match="magic") as info:
        decode_value(value)
    assert info.value.reason == "bad_magic_byte"


def test_unknown_schema_id() -> None:
    value = b"\x00" + struct.pack(">I", 4242) + _value()[5:]
    with pytest.raises(UnknownSchemaIdError, match="4242") as info:
        decode_value(value)
    assert info.value.reason == "unknown_schema_id"


def test_truncated_body_is_corrupt() -> None:
    value = _value()
    for cut in (5, 6, len(value) // 2, len(value) - 1):
        with pytest.raises(CorruptBodyError) as info:
            decode_value(value[:cut])
        assert info.value.reason == "corrupt_body"


def test_trailing_garbage_is_corrupt() -> None:
    with pytest.raises(CorruptBodyError, match="3 bytes left over"):
        decode_value(_value() + b"\x00\x01\x02")


def test_invalid_utf8_is_corrupt() -> None:
    # law_gap_proposal: meta, then regulation (a string); poison the first byte of its text
    event = sample_event("law_gap_proposal")
    value = bytearray(encode_event(event).value)
    text = event.regulation.encode()
    at = bytes(value).index(text)
    value[at] = 0xFF
    with pytest.raises(CorruptBodyError, match="UnicodeDecodeError"):
        decode_value(bytes(value))


def test_enum_index_out_of_range_is_corrupt() -> None:
    entry = load_catalog().latest("law_gap_proposal")
    good = sample_event("law_gap_proposal").to_avro()
    value = bytearray(encode_value(good, entry))
    # the body starts with meta.event_id and meta.event_type (length-prefixed), then the source enum index
    event_id = good["meta"]["event_id"].encode()
    source_at = bytes(value).index(b"law_gap_proposal") + len(b"law_gap_proposal")
    assert bytes(value).index(event_id) < source_at
    value[source_at] = 0x7E  # zigzag 63: there are 10 agencies
    with pytest.raises(CorruptBodyError):
        decode_value(bytes(value))


def test_schema_mismatch_between_header_and_id() -> None:
    encoded = encode_event(sample_event("complaint"))
    headers = [(k, b"vn.bcd389.suspect_seller.v1" if k == "ce_type" else v) for k, v in encoded.headers]
    with pytest.raises(SchemaMismatchError, match="suspect_seller") as info:
        decode_event(encoded.value, headers)
    assert info.value.reason == "schema_mismatch"
    wrong_version = {**dict(encoded.headers), "ce_type": b"vn.bcd389.complaint.v1"}
    with pytest.raises(SchemaMismatchError):
        decode_event(encoded.value, wrong_version)
    assert decode_event(encoded.value, None).event_type == "complaint"  # no header: nothing to contradict


def test_schema_mismatch_with_meta_event_type_or_expectation() -> None:
    entry = load_catalog().latest("law_gap_proposal")
    record = sample_event("law_gap_proposal").to_avro()
    record["meta"]["event_type"] = "complaint"
    with pytest.raises(SchemaMismatchError, match="meta.event_type"):
        decode_event(encode_value(record, entry))
    with pytest.raises(SchemaMismatchError, match="expected a complaint"):
        decode_event(_value("law_gap_proposal"), expected_type="complaint")


def test_every_codec_error_is_a_codec_error_with_a_reason() -> None:
    reasons = {
        cls.reason
        for cls in (
            BadMagicByteError,
            TruncatedFrameError,
            UnknownSchemaIdError,
            CorruptBodyError,
            SchemaMismatchError,
        )
    }
    assert reasons == {
        "bad_magic_byte",
        "truncated_frame",
        "unknown_schema_id",
        "corrupt_body",
        "schema_mismatch",
    }


@settings(max_examples=300, deadline=None, database=None)
@given(st.data())
def test_no_raw_exception_escapes_on_damaged_bytes(data: st.DataObject) -> None:
    value = bytearray(_CORPUS[data.draw(st.integers(0, len(_CORPUS) - 1))])
    mode = data.draw(st.sampled_from(["flip", "cut", "random"]))
    if mode == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            value[data.draw(st.integers(5, len(value) - 1))] = data.draw(st.integers(0, 255))
    elif mode == "cut":
        value = value[: data.draw(st.integers(0, len(value)))]
    else:
        value = value[:5] + bytearray(data.draw(st.binary(max_size=80)))
    try:
        result = decode_event(bytes(value))
    except CodecError:
        return
    assert isinstance(result, Decoded)


_CORPUS = [encode_event(sample_event(t)).value for t in sorted(SAMPLES)]


def test_no_parse_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    load_catalog()

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("parse_schema called per message")

    monkeypatch.setattr(fastavro, "parse_schema", forbidden)
    monkeypatch.setattr(codec.fastavro, "parse_schema", forbidden)
    event = sample_event("suspect_seller")
    assert decode_event(encode_event(event).value).record == event.to_avro()


# ---------------------------------------------------------------- an independent Avro implementation


def _apache_avro_read(value: bytes, event_type: str) -> Any:
    import avro.io
    import avro.schema

    text = load_catalog().latest(event_type).path.read_text(encoding="utf-8")
    schema = avro.schema.parse(text)
    assert value[0] == 0
    (schema_id,) = struct.unpack(">I", value[1:5])
    assert schema_id == load_catalog().latest(event_type).schema_id
    decoder = avro.io.BinaryDecoder(io.BytesIO(value[5:]))
    return avro.io.DatumReader(schema).read(decoder)


def _plain(value: Any) -> Any:
    """JSON-comparable form: instants as epoch millis, dates as ISO, uuids as str."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_apache_avro_reads_our_bytes_from_the_avsc_alone(event_type: str) -> None:
    event = sample_event(event_type)
    theirs = _apache_avro_read(encode_event(event).value, event_type)
    assert _plain(theirs) == _plain(event.to_avro())
    assert json.dumps(_plain(theirs), ensure_ascii=False) == json.dumps(
        _plain(event.to_avro()), ensure_ascii=False
    )
