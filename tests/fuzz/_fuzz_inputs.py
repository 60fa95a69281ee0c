"""Inputs of the fuzz suite: valid events of every type, damaged frames, and Avro-shaped random records.

The mutators work on bytes (what an agency can put on its outbox); :func:`avro_values` builds a
hypothesis strategy for *any* value an Avro schema admits, so that a record can be written that decodes
perfectly and still breaks every rule the pydantic models add (tax code format, domain syntax, amounts).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
from hypothesis import strategies as st

from bus389.agencies import Agency, Topics
from bus389.chaos.expectation import values_at
from bus389.codec import Encoded, decode_event, decode_value, encode_event
from bus389.consumers.router.records import DLQ_HEADERS, RecordRouter, Routed
from bus389.events import Event, build_event, event_from_avro
from bus389.routing.policy import Policy, load_policy
from bus389.schemas.catalog import SchemaEntry, load_catalog

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this test runs from (examples, deploy files)."""

PREFIX = "fuzz"
TOPICS = Topics(PREFIX)
NOW = datetime(2021, 7, 15, 2, 30, 12, 345000, tzinfo=UTC)

NOTICE_FIELDS = (
    "meta",
    "notice",
    "about_event_id",
    "about_event_type",
    "about_sender",
    "about_sensitivity",
    "about_occurred_at",
    "about_published_at",
    "recipients",
    "deadline",
    "reason",
    "origin",
)
ROUTER_REASONS = frozenset(
    {
        "bad_magic_byte",
        "truncated_frame",
        "unknown_schema_id",
        "corrupt_body",
        "schema_mismatch",
        "invalid_event",
        "spoofed_source",
        "not_permitted",
        "id_taken",
        "no_route",
        "unknown_original",
        "not_asked",
        "not_an_outbox",
    }
)
"""Every DLQ reason the router may give: the codec's five and the router's own."""

CODEC_REASONS = frozenset(
    {"bad_magic_byte", "truncated_frame", "unknown_schema_id", "corrupt_body", "schema_mismatch"}
)


def _seller(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Hộ kinh doanh Trần Văn Đức",
        "tax_code": "4300581296",
        "national_id": "051190000123",
        "phone": "0905172634",
        "address": "Thôn Phú Thọ, xã Nghĩa Hà, TP. Quảng Ngãi",
        "province": "Quảng Ngãi",
        **extra,
    }


_ACCOUNTS = [
    {"platform": "FACEBOOK", "account": "Đồng hồ xách tay Đức Trần", "url": None},
    {"platform": "SHOPEE", "account": "duc.tran.dongho", "url": "https://shopee.vn/duc.tran.dongho"},
]

SAMPLES: dict[str, tuple[Agency, dict[str, Any]]] = {
    "suspect_seller": (
        Agency.POLICE,
        {
            "meta": {"sensitivity": "AMBER", "case_ref": "QNG-389-2021-0042"},
            "seller": _seller(),
            "accounts": _ACCOUNTS,
            "goods": "Đồng hồ Thụy Sĩ giả nhãn hiệu",
            "violation_kinds": ["COUNTERFEIT", "SMUGGLING"],
            "evidence_urls": ["https://facebook.com/dongho.ductran/posts/1"],
            "domains": ["donghoxachtay-qn.vn"],
            "goods_imported": True,
            "border_area": True,
            "estimated_value_vnd": 420_000_000,
            "summary": "Rao bán đồng hồ giả qua mạng xã hội, giao hàng ở huyện đảo Lý Sơn.",
        },
    ),
    "domain_block_request": (
        Agency.MARKET_SURVEILLANCE,
        {
            "meta": {"sensitivity": "AMBER", "urgency": "IMMEDIATE"},
            "domains": ["donghoxachtay-qn.vn"],
            "urls": ["https://donghoxachtay-qn.vn/khuyen-mai"],
            "ip_addresses": ["198.51.100.7"],
            "action": "BLOCK",
            "reason": "Website bán hàng giả mạo nhãn hiệu.",
            "legal_basis": "Công văn 215/QLTT-NV",
            "violation_kinds": ["COUNTERFEIT"],
        },
    ),
    "tax_discrepancy": (
        Agency.TAX,
        {
            "meta": {"sensitivity": "AMBER"},
            "seller": _seller(),
            "accounts": _ACCOUNTS[1:],
            "period": "2021-H1",
            "estimated_revenue_vnd": 9_000_000_000,
            "declared_revenue_vnd": 1_000_000_000,
            "undeclared_revenue_vnd": 8_000_000_000,
            "estimated_tax_owed_vnd": 120_000_000,
            "notes": "Doanh thu ước tính từ dữ liệu sàn.",
        },
    ),
    "domain_block_result": (
        Agency.ICT,
        {
            "meta": {"sensitivity": "AMBER", "in_reply_to": "8f14e45f-ceea-4e7a-9a1b-2a0c9d3b7e51"},
            "requester": "market_surveillance",
            "outcome": "BLOCKED",
            "blocked": ["donghoxachtay-qn.vn"],
            "decided_at": "2021-07-16T10:45:00+07:00",
            "providers_notified": ["VNPT Quảng Ngãi"],
        },
    ),
    "complaint": (
        Agency.INDUSTRY_TRADE,
        {
            "meta": {"sensitivity": "GREEN"},
            "kind": "DENUNCIATION",
            "channel": "HOTLINE",
            "received_at": "2021-07-02T08:05:00+07:00",
            "complainant": {
                "full_name": "Lê Thị Bích Ngọc",
                "national_id": "051301002233",
                "phone": "02553822123",
                "address": "Tổ 5, phường Trần Phú",
            },
            "seller": _seller(tax_code=None),
            "accounts": _ACCOUNTS,
            "summary": "Mua đồng hồ qua Facebook, nghi hàng giả.",
            "signs_of_crime": True,
        },
    ),
    "case_referral": (
        Agency.CUSTOMS,
        {
            "meta": {"sensitivity": "RED", "case_ref": "QNG-389-2021-0042"},
            "seller": _seller(),
            "accounts": _ACCOUNTS,
            "violation_kinds": ["SMUGGLING"],
            "suspected_offences": ["Điều 188 BLHS 2015"],
            "summary": "Hàng nhập lậu trị giá trên 100 triệu đồng.",
        },
    ),
    "case_outcome": (
        Agency.MARKET_SURVEILLANCE,
        {
            "meta": {"sensitivity": "CLEAR"},
            "seller": _seller(national_id=None, phone=None, address=None),
            "outcome": "ADMINISTRATIVE_SANCTION",
            "violation_kinds": ["COUNTERFEIT"],
            "fine_vnd": 70_000_000,
            "decided_on": "2021-07-20",
            "public": True,
            "summary": "Xử phạt hành chính, tịch thu hàng giả.",
        },
    ),
    "periodic_report": (
        Agency.BORDER_GUARD,
        {
            "meta": {"sensitivity": "GREEN"},
            "report_kind": "SIX_MONTHLY",
            "period": "2021-H1",
            "title": "Báo cáo 6 tháng đầu năm 2021",
            "body": "Phát hiện 4 vụ trên địa bàn biên giới biển.",
            "cases_detected": 4,
        },
    ),
    "law_gap_proposal": (
        Agency.ICT,
        {
            "meta": {"sensitivity": "GREEN"},
            "regulation": "Nghị định 52/2013/NĐ-CP",
            "article": "Điều 27",
            "problem": "Sàn không phải cung cấp thông tin người bán.",
            "proposal": "Bổ sung nghĩa vụ cung cấp thông tin định kỳ.",
        },
    ),
}


def sample_event(event_type: str) -> Event:
    source, data = SAMPLES[event_type]
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bus389/fuzz/{event_type}"))
    return build_event(event_type, source, data, now=NOW, event_id=event_id)


def sample_source(event_type: str) -> Agency:
    return SAMPLES[event_type][0]


EVENT_TYPES = sorted(SAMPLES)


def encoded_sample(event_type: str) -> Encoded:
    return encode_event(sample_event(event_type))


@dataclass
class FakeRecord:
    """What kafka-python's ``ConsumerRecord`` offers the router."""

    topic: str
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    key: bytes | None = b"k"
    partition: int = 0
    offset: int = 0
    timestamp: int = 0


def outbox_record(event_type: str, *, value: bytes | None = None, **overrides: Any) -> FakeRecord:
    encoded = encoded_sample(event_type)
    fields: dict[str, Any] = {
        "topic": TOPICS.outbox(sample_source(event_type)),
        "value": encoded.value if value is None else value,
        "headers": list(encoded.headers),
        "key": encoded.key,
    }
    fields.update(overrides)
    return FakeRecord(**fields)


_POLICY: Policy | None = None


def policy() -> Policy:
    global _POLICY  # noqa: PLW0603 - parsed once for the whole suite
    if _POLICY is None:
        _POLICY = load_policy(REPO_ROOT / "bus389" / "routing" / "routing-policy.yaml")
    return _POLICY


def new_router() -> RecordRouter:
    return RecordRouter(TOPICS, policy())


# --- framing ---------------------------------------------------------------------------------------------


def frame(schema_id: int, body: bytes, *, magic: int = 0) -> bytes:
    return struct.pack(">BI", magic, schema_id & 0xFFFFFFFF) + body


def zigzag(n: int) -> bytes:
    """Avro's long encoding (zig-zag varint) of ``n``, for crafting lengths and counts by hand."""
    z = (n << 1) ^ (n >> 63) if -(2**63) <= n < 2**63 else n << 1
    out = bytearray()
    while True:
        byte = z & 0x7F
        z >>= 7
        if z:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def known_ids() -> set[int]:
    return {entry.schema_id for entry in load_catalog()}


def entry_of(event_type: str) -> SchemaEntry:
    return load_catalog().latest(event_type)


def write_body(record: Mapping[str, Any], schema: SchemaEntry) -> bytes:
    """The Avro body of ``record`` with ``schema``, without the frame and without any model check."""
    import io

    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema.parsed_schema, dict(record), strict_allow_default=True)
    return buffer.getvalue()


def with_invalid_utf8(event_type: str, field_name: str, bad: bytes) -> bytes:
    """A framed value of ``event_type`` whose string ``field_name`` holds ``bad`` (invalid UTF-8).

    The string is first written as a marker of the same byte length, then the marker's bytes are
    replaced, so the Avro length prefix stays right and only the UTF-8 is broken.
    """
    marker = "Q" * len(bad)
    event = sample_event(event_type)
    record = event.to_avro()
    record[field_name] = marker
    entry = entry_of(event_type)
    body = write_body(record, entry)
    needle = zigzag(len(bad)) + marker.encode()
    assert body.count(needle) == 1, "marker must be unique in the body"
    return frame(entry.schema_id, body.replace(needle, zigzag(len(bad)) + bad))


# --- Avro-shaped random values ------------------------------------------------------------------------

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
# Instants and dates a decoder can turn into Python objects; beyond them fastavro overflows (tested apart).
_MILLIS = (-62_135_596_800_000, 253_402_300_799_999)
_DAYS = (-719_162, 2_932_896)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)

_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "Nguyễn Thị Hồng Nhung",
            "Cửa hàng Mỹ phẩm",
            "e\u0301",  # NFD: the models store NFC
            "\u202e\u0000\ufeff",
            "xn--",
            "a" * 300,
            "..",
            "-bad-.vn",
            "http://[::1",
            "8.8.8.8/0",
            "::/0",
            "4300581296-9999",
            "not-a-uuid",
            "00000000-0000-0000-0000-000000000000",
            "2021-H3",
            "police",
        ]
    ),
)


def _named_map(schema: Any, named: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _named_map(branch, named)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed") and "name" in schema:
            named.setdefault(schema["name"], schema)
        if kind == "record":
            for f in schema.get("fields", []):
                _named_map(f["type"], named)
        elif kind == "array":
            _named_map(schema["items"], named)
        elif kind == "map":
            _named_map(schema["values"], named)
        elif isinstance(kind, dict | list):
            _named_map(kind, named)


def avro_values(
    schema: Any, *, named: dict[str, Any] | None = None, max_items: int = 3
) -> st.SearchStrategy[Any]:
    """A strategy for every value ``schema`` (fastavro-parsed) can encode: type-correct, rule-blind."""
    if named is None:
        named = {}
        _named_map(schema, named)
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):
        return st.one_of(*[avro_values(b, named=named, max_items=max_items) for b in schema])
    if isinstance(schema, str):
        return _primitive(schema)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "timestamp-millis":
        return st.integers(*_MILLIS).map(lambda ms: _EPOCH + timedelta(milliseconds=ms))
    if logical == "date":
        return st.integers(*_DAYS).map(lambda d: _EPOCH_DAY + timedelta(days=d))
    if logical == "uuid":
        return st.one_of(st.uuids().map(str), _text)
    if kind == "record":
        fields = {
            f["name"]: avro_values(f["type"], named=named, max_items=max_items) for f in schema["fields"]
        }
        return st.fixed_dictionaries(fields)
    if kind == "enum":
        return st.sampled_from(list(schema["symbols"]))
    if kind == "array":
        return st.lists(avro_values(schema["items"], named=named, max_items=max_items), max_size=max_items)
    if kind == "map":
        return st.dictionaries(_text, avro_values(schema["values"], named=named), max_size=max_items)
    if isinstance(kind, dict | list | str):
        return avro_values(kind, named=named, max_items=max_items)
    raise AssertionError(f"unexpected schema {schema!r}")


def _primitive(name: str) -> st.SearchStrategy[Any]:
    table: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
        "null": lambda: st.none(),
        "boolean": st.booleans,
        "int": lambda: st.integers(*_INT32),
        "long": lambda: st.one_of(st.integers(*_INT64), st.sampled_from([0, -1, 99_999_999, 100_000_000])),
        "float": lambda: st.floats(width=32),
        "double": lambda: st.floats(),
        "string": lambda: _text,
        "bytes": lambda: st.binary(max_size=20),
    }
    return table[name]()


def random_record(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    """Any record the schema of ``event_type`` admits (meta included), mostly breaking the models' rules."""
    return avro_values(entry_of(event_type).parsed_schema)  # type: ignore[no-any-return]


def plausible_record(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    """The sample's record with one top-level field (or one ``meta`` field) replaced by a random value."""
    entry = entry_of(event_type)
    base = sample_event(event_type).to_avro()
    fields = {f["name"]: f["type"] for f in entry.parsed_schema["fields"]}
    named: dict[str, Any] = {}
    _named_map(entry.parsed_schema, named)
    meta_schema = named["vn.bcd389.EventMeta"]
    meta_fields = {f["name"]: f["type"] for f in meta_schema["fields"]}

    def top(name: str) -> st.SearchStrategy[dict[str, Any]]:
        return avro_values(fields[name], named=named).map(lambda v: {**base, name: v})

    def in_meta(name: str) -> st.SearchStrategy[dict[str, Any]]:
        return avro_values(meta_fields[name], named=named).map(
            lambda v: {**base, "meta": {**base["meta"], name: v}}
        )

    choices = [top(n) for n in fields if n != "meta"] + [in_meta(n) for n in meta_fields]
    return st.one_of(*choices)


def agency_names() -> list[str]:
    return [a.value for a in Agency]


RECEIVED = datetime(2021, 7, 15, 3, 0, tzinfo=UTC)


def check_notices(raw: FakeRecord, routed: Routed, notices: list[Any]) -> None:
    """The router's notices: the sender told of a dead letter, the standing office sealed, no content."""
    sender = TOPICS.sender_of(raw.topic)
    want = []
    if not routed.routed and sender is not None:
        want.append((TOPICS.inbox(sender), "UNDELIVERABLE"))
    if routed.decision is not None:
        want += [(TOPICS.inbox(a), "SEALED") for a in routed.decision.sealed]
    got = []
    for notice in notices:
        decoded = decode_event(notice.value, notice.headers)
        assert decoded.event_type == "routing_notice"
        assert set(decoded.record) == set(NOTICE_FIELDS), "a notice carries no field of the event"
        got.append((notice.topic, decoded.record["notice"]))
    assert got == want


def check_invariants(raw: FakeRecord, routed: Routed) -> None:
    """What must hold of the router's answer to any record whatsoever."""
    assert isinstance(routed, Routed)
    assert (routed.origin.topic, routed.origin.partition, routed.origin.offset) == (
        raw.topic,
        raw.partition,
        raw.offset,
    )
    if not routed.routed:
        assert routed.dlq_reason in ROUTER_REASONS, routed.dlq_reason
        assert routed.dlq_detail
        letter, *notices = routed.outgoing
        check_notices(raw, routed, notices)
        assert letter.topic == TOPICS.dlq
        assert letter.value == raw.value and letter.key == raw.key, "the original bytes, untouched"
        headers = dict(letter.headers)
        assert headers["bus389_dlq_reason"] == routed.dlq_reason.encode()
        assert headers["bus389_origin_topic"] == raw.topic.encode()
        assert headers["bus389_origin_partition"] == str(raw.partition).encode()
        assert headers["bus389_origin_offset"] == str(raw.offset).encode()
        assert len(headers["bus389_dlq_detail"]) <= 8_000
        kept = [(k, v if v is not None else b"") for k, v in raw.headers if k not in DLQ_HEADERS]
        assert letter.headers[: len(kept)] == kept, "the sender's headers are kept as they were"
        return
    decision = routed.decision
    assert decision is not None
    if decision.duplicate:
        assert routed.outgoing == (), "a duplicate writes nothing"
        return
    assert decision.deliveries
    *copies, audit = routed.outgoing
    copies, sealed = copies[: routed.copies], copies[routed.copies :]
    check_notices(raw, routed, sealed)
    assert audit.topic == TOPICS.audit
    assert [c.topic for c in copies] == [TOPICS.inbox(d.recipient) for d in decision.deliveries]
    assert len({c.topic for c in copies}) == len(copies), "one copy per recipient"
    original = decode_event(raw.value, raw.headers)
    sender = TOPICS.sender_of(raw.topic)
    assert sender is not None and original.meta["source"] == sender.value
    event_from_avro(original.record)  # routed implies valid: the models accept it
    for copy, delivery in zip(copies, decision.deliveries, strict=True):
        headers = dict(copy.headers)
        for name in ("bus389_rule", "bus389_plan_section", "bus389_origin", "bus389_redacted"):
            assert [k for k, _ in copy.headers].count(name) == 1, f"{name}: the router's alone"
        assert headers["bus389_rule"] == delivery.rule_id.encode()
        assert headers["bus389_origin"] == f"{raw.topic}/{raw.partition}/{raw.offset}".encode()
        redacted = [p for p in headers["bus389_redacted"].decode().split(",") if p]
        assert redacted == list(delivery.redacted)
        got = decode_event(copy.value, copy.headers)
        assert got.event_id == original.event_id
        for path in redacted:
            assert all(v is None for v in values_at(got.record, path)), path
        if not redacted:
            assert copy.value == raw.value, "a copy with nothing taken out keeps the original bytes"
    record = decode_value(audit.value).record
    assert record["event_id"] == original.event_id
    assert [d["recipient"] for d in record["deliveries"]] == [d.recipient.value for d in decision.deliveries]
