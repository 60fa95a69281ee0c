"""Write the regression corpus of bad (and a few good) outbox records to ``tests/fuzz/corpus/``.

Each entry is one JSON file: the record (topic, key, value, headers; bytes in base64) and the outcome
pinned for it: what :func:`bus389.codec.decode_event` says (``ok`` or the reason) and what the router
does (``routed`` or the DLQ reason). ``test_corpus.py`` replays every file. Run again (and review the
diff) after a deliberate change of the schemas or the policy:

    /tmp/venv/bin/python tests/fuzz/make_corpus.py

An input found by a fuzzer is added with :func:`save` (or by hand, in the same format).
"""

from __future__ import annotations

import base64
import json
import struct
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fuzz_inputs import (  # noqa: E402 - after the path set-up
    EVENT_TYPES,
    TOPICS,
    FakeRecord,
    entry_of,
    frame,
    new_router,
    outbox_record,
    sample_event,
    sample_source,
    with_invalid_utf8,
    write_body,
    zigzag,
)

from bus389.agencies import Agency  # noqa: E402
from bus389.codec import decode_event, encode_value  # noqa: E402
from bus389.errors import CodecError  # noqa: E402
from bus389.schemas.catalog import load_catalog  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def codec_outcome(raw: FakeRecord) -> str:
    try:
        decode_event(raw.value, raw.headers)
    except CodecError as exc:
        return exc.reason
    return "ok"


def router_outcome(raw: FakeRecord, *, replies: dict[str, Agency] | None = None) -> str:
    router = new_router()
    answering = router.topics.sender_of(raw.topic)
    for event_id, sender in (replies or {}).items():
        router.replies.record(event_id, sender, [answering] if answering else [])
    router.replies.commit()
    routed = router.route(raw, received_at=sample_event("law_gap_proposal").meta.published_at)
    return "routed" if routed.routed else str(routed.dlq_reason)


def save(
    name: str,
    description: str,
    raw: FakeRecord,
    *,
    replies: dict[str, Agency] | None = None,
    known_issue: str = "",
    right: tuple[str, str] | None = None,
) -> Path:
    """Write one entry, pinning today's outcomes.

    With ``known_issue``, ``right`` (codec, router) is pinned instead: what the code should do and does
    not do yet; the replay test expects that entry to fail until the issue is fixed.
    """
    entry: dict[str, Any] = {
        "name": name,
        "description": description,
        "topic": raw.topic,
        "key": _b64(raw.key),
        "value": _b64(raw.value),
        "headers": [[k, _b64(v)] for k, v in raw.headers],
        "replies": {k: v.value for k, v in (replies or {}).items()},
        "codec": codec_outcome(raw),
        "router": router_outcome(raw, replies=replies),
    }
    if known_issue:
        assert right is not None, "a known issue pins the right outcome"
        entry["known_issue"] = known_issue
        entry["codec"], entry["router"] = right
    CORPUS.mkdir(exist_ok=True)
    path = CORPUS / f"{name}.json"
    path.write_text(json.dumps(entry, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def _record_bytes(event_type: str, **changes: Any) -> bytes:
    record = sample_event(event_type).to_avro()
    for dotted, value in changes.items():
        node = record
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    entry = entry_of(event_type)
    return frame(entry.schema_id, write_body(record, entry))


def build() -> list[Path]:  # noqa: PLR0915 - one entry per line reads best
    written: list[Path] = []
    police = TOPICS.outbox(Agency.POLICE)
    seller = outbox_record("suspect_seller")
    sv = seller.value or b""

    def add(name: str, description: str, raw: FakeRecord, **kw: Any) -> None:
        written.append(save(name, description, raw, **kw))

    for event_type in EVENT_TYPES:
        replies = {}
        if event_type == "domain_block_result":
            replies = {str(sample_event(event_type).meta.in_reply_to): Agency.MARKET_SURVEILLANCE}
        add(
            f"good_{event_type}",
            f"a valid {event_type}: the control",
            outbox_record(event_type),
            replies=replies,
        )

    add("empty_value", "a zero-length value", FakeRecord(police, b""))
    add("tombstone", "a null value (a tombstone)", FakeRecord(police, None))
    add("magic_only", "the magic byte alone", FakeRecord(police, b"\x00"))
    add("header_4_bytes", "four of the five header bytes", FakeRecord(police, b"\x00\x00\x00\x00"))
    add(
        "header_no_body",
        "a complete header (schema 1) and no body",
        FakeRecord(police, b"\x00\x00\x00\x00\x01"),
    )
    add("magic_01", "magic byte 0x01", FakeRecord(police, b"\x01" + sv[1:], seller.headers))
    add("magic_ff", "magic byte 0xff", FakeRecord(police, b"\xff" + sv[1:], seller.headers))
    add(
        "json_value",
        "JSON instead of Avro",
        FakeRecord(police, b'{"meta": {"event_type": "suspect_seller"}}'),
    )
    add("schema_id_0", "schema id 0 (never assigned)", FakeRecord(police, frame(0, sv[5:])))
    add("schema_id_max", "schema id 2^32-1", FakeRecord(police, frame(2**32 - 1, sv[5:])))
    add("schema_id_999", "an id from the future", FakeRecord(police, frame(999, sv[5:]), seller.headers))
    add("cut_in_half", "a suspect seller cut in half", FakeRecord(police, sv[: len(sv) // 2], seller.headers))
    add(
        "cut_last_byte", "a suspect seller without its last byte", FakeRecord(police, sv[:-1], seller.headers)
    )
    add(
        "trailing_garbage",
        "a valid record with bytes after it",
        FakeRecord(police, sv + b"\x00\x01", seller.headers),
    )

    tax = entry_of("tax_discrepancy")
    add(
        "wrong_schema_with_headers",
        "a suspect seller's body framed as a tax discrepancy, with the suspect seller's ce_type",
        FakeRecord(police, frame(tax.schema_id, sv[5:]), seller.headers),
    )
    add(
        "wrong_schema_no_headers",
        "a suspect seller's body framed as a tax discrepancy, no headers",
        FakeRecord(police, frame(tax.schema_id, sv[5:])),
    )
    audit = load_catalog().audit
    add(
        "audit_body_in_an_outbox",
        "a suspect seller's body framed with the audit schema's id",
        FakeRecord(police, frame(audit.schema_id, sv[5:])),
    )
    when = sample_event("law_gap_proposal").meta.published_at
    audit_record = {
        "event_id": "8f14e45f-ceea-4e7a-9a1b-2a0c9d3b7e51",
        "event_type": "suspect_seller",
        "sender": "police",
        "schema_id": 1,
        "origin_topic": police,
        "origin_partition": 0,
        "origin_offset": 0,
        "received_at": when,
        "routed_at": when,
        "deliveries": [
            {"recipient": "tax", "rule_id": "forged", "plan_section": "II.4", "redacted_fields": []}
        ],
        "withheld": [],
    }
    add(
        "audit_record_in_an_outbox",
        "a well-formed audit record (the router's own schema) written to an outbox",
        FakeRecord(police, encode_value(audit_record, audit)),
    )
    add(
        "meta_type_lies",
        "a suspect seller whose meta.event_type says tax_discrepancy",
        FakeRecord(police, _record_bytes("suspect_seller", meta__event_type="tax_discrepancy")),
    )
    add(
        "ce_type_lies",
        "a valid suspect seller whose ce_type header names another type",
        FakeRecord(police, sv, [("ce_type", b"vn.bcd389.tax_discrepancy.v1")]),
    )
    add(
        "ce_type_invalid_utf8",
        "a ce_type header that is not UTF-8",
        FakeRecord(police, sv, [("ce_type", b"\xff\xfe\x00")]),
    )
    add("header_none", "a header without a value", FakeRecord(police, sv, [("ce_id", None), ("x", b"")]))
    add(
        "sender_forged_router_headers",
        "the sender sets bus389_rule and bus389_dlq_reason itself",
        FakeRecord(
            police, sv, [*seller.headers, ("bus389_rule", b"forged"), ("bus389_dlq_reason", b"forged")]
        ),
    )
    for bad, label in [
        (b"\xff", "ff"),
        (b"\xc3\x28", "c328"),
        (b"\xed\xa0\x80", "surrogate"),
        (b"\xc0\xaf", "overlong"),
    ]:
        add(
            f"invalid_utf8_{label}",
            f"the goods field holds invalid UTF-8 ({bad.hex()})",
            FakeRecord(police, with_invalid_utf8("suspect_seller", "goods", bad)),
        )
    first = entry_of("law_gap_proposal")
    ict = TOPICS.outbox(Agency.ICT)
    for length, label in [(2**62, "2e62"), (-1, "minus1"), (10**9, "1e9")]:
        add(
            f"string_length_{label}",
            f"the first string claims {length} bytes",
            FakeRecord(ict, frame(first.schema_id, zigzag(length) + b"abc")),
        )
    add(
        "varint_overlong", "a varint of ten 0xff bytes", FakeRecord(ict, frame(first.schema_id, b"\xff" * 10))
    )

    record = sample_event("suspect_seller").to_avro()
    record["evidence_urls"] = ["MARK"]
    body = write_body(record, entry_of("suspect_seller"))
    needle = zigzag(1) + zigzag(4) + b"MARK" + b"\x00"
    for count, label in [(2**62, "2e62"), (-(2**62), "minus_2e62")]:
        forged = zigzag(count) + (zigzag(10) if count < 0 else b"") + zigzag(4) + b"MARK"
        add(
            f"array_count_{label}",
            f"evidence_urls claims {count} items",
            FakeRecord(police, frame(entry_of("suspect_seller").schema_id, body.replace(needle, forged))),
        )

    record = sample_event("law_gap_proposal").to_avro()
    record["meta"]["case_ref"] = "CASE-MARK"
    body = write_body(record, first)
    needle = zigzag(1) + zigzag(9) + b"CASE-MARK"
    add(
        "union_branch_7",
        "meta.case_ref names union branch 7 of 2",
        FakeRecord(ict, frame(first.schema_id, body.replace(needle, zigzag(7) + zigzag(9) + b"CASE-MARK"))),
    )
    add(
        "union_branch_minus_1",
        "meta.case_ref names union branch -1 (Python would read it as the last branch)",
        FakeRecord(ict, frame(first.schema_id, body.replace(needle, zigzag(-1) + zigzag(9) + b"CASE-MARK"))),
    )

    add(
        "instant_overflow",
        "meta.occurred_at = 2^62 ms, beyond year 9999",
        FakeRecord(ict, _record_bytes("law_gap_proposal", meta__occurred_at=2**62)),
    )
    add(
        "date_overflow",
        "case_outcome.decided_on = 2^31-1 days",
        FakeRecord(
            TOPICS.outbox(Agency.MARKET_SURVEILLANCE), _record_bytes("case_outcome", decided_on=2**31 - 1)
        ),
    )
    rule_breakers: list[tuple[str, str, str, dict[str, Any]]] = [
        ("bad_tax_code", "suspect_seller", "seller.tax_code is not a tax code", {"seller__tax_code": "ABC"}),
        ("negative_amount", "tax_discrepancy", "a negative tax owed", {"estimated_tax_owed_vnd": -5}),
        ("bad_domain", "domain_block_request", "a domain with spaces", {"domains": ["không phải tên miền"]}),
        ("event_id_not_uuid", "law_gap_proposal", "meta.event_id is not a UUID", {"meta__event_id": "42"}),
        ("empty_seller_name", "suspect_seller", "the seller has no name", {"seller__name": ""}),
        ("bad_period", "tax_discrepancy", "period 2021-H3", {"period": "2021-H3"}),
        ("nul_in_text", "law_gap_proposal", "a NUL character in the proposal", {"proposal": "a\u0000b"}),
        ("bad_phone", "suspect_seller", "a phone number of letters", {"seller__phone": "call me"}),
    ]
    for name, event_type, description, changes in rule_breakers:
        add(
            f"rules_{name}",
            f"decodes, but {description}",
            FakeRecord(TOPICS.outbox(sample_source(event_type)), _record_bytes(event_type, **changes)),
        )
    add(
        "spoof",
        "a valid suspect seller (source police) written to the tax outbox",
        outbox_record("suspect_seller", topic=TOPICS.outbox(Agency.TAX)),
    )
    add(
        "reply_to_nobody",
        "a result answering a request the router never saw: the typed requester field decides",
        outbox_record("domain_block_result"),
    )
    add(
        "red_block_request",
        "a RED domain block request: no rule may carry RED to ict",
        FakeRecord(
            TOPICS.outbox(Agency.MARKET_SURVEILLANCE),
            _record_bytes("domain_block_request", meta__sensitivity="RED"),
        ),
    )
    add(
        "not_an_outbox",
        "a valid event read from an inbox topic",
        outbox_record("suspect_seller", topic=TOPICS.inbox(Agency.POLICE)),
    )
    add(
        "big_endian_confusion",
        "the schema id written little-endian",
        FakeRecord(police, b"\x00" + struct.pack("<I", 1) + sv[5:], seller.headers),
    )
    return written


if __name__ == "__main__":
    for stale in CORPUS.glob("*.json"):
        stale.unlink()
    paths = build()
    for path in paths:
        entry = json.loads(path.read_text(encoding="utf-8"))
        print(f"{entry['name']:32} codec={entry['codec']:18} router={entry['router']}")
    print(f"{len(paths)} entries in {CORPUS}")
