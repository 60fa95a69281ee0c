"""Write the regression corpus of bad (and a few good) outbox records to ``tests/fuzz/corpus/``.

Each entry is one JSON file: the record (topic, key, value, headers; bytes in base64), the outcome it
must have, and why: what :func:`bus389.codec.decode_event` must say (``ok`` or the reason), what the
router must do (``routed`` or the DLQ reason), and the rule (the Avro spec, the codec's contract, the
event model, DOMAIN.md and the routing policy) that says so. The expectations are written by hand in
:data:`EXPECTED`, never recorded from the code: ``test_corpus.py`` replays every file against them.
Run again (and review the diff) after a deliberate change of the schemas or the policy:

    .venv/bin/python tests/fuzz/make_corpus.py

An input found by a fuzzer is added with :func:`save` and a row of :data:`EXPECTED` (or by hand, in
the same format).
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
    outbox_record,
    sample_event,
    sample_source,
    with_invalid_utf8,
    write_body,
    zigzag,
)

from bus389.agencies import Agency  # noqa: E402
from bus389.codec import encode_value  # noqa: E402
from bus389.schemas.catalog import load_catalog  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"

_CONTROL = "a valid {} built from the model's own sample, on its sender's outbox: the control"
_FRAME = "the wire format is magic byte 0 and a 4-byte big-endian schema id before the Avro body"
_EOF = "the Avro body ends before the record is complete"
_UTF8 = "an Avro string is UTF-8 (Avro spec); the codec refuses invalid UTF-8 rather than guess"
_LENGTH = "a string length beyond (or below) the bytes left is corrupt, refused before any allocation"
_RULES = "the bytes are type-correct Avro, but the event model's rules (bus389.events) refuse: {}"

EXPECTED: dict[str, tuple[str, str, str]] = {
    # name: (codec, router, why) — written from the rule, not from what the code does today.
    **{
        f"good_{t}": ("ok", "routed", _CONTROL.format(t))
        for t in (
            "case_outcome",
            "case_referral",
            "complaint",
            "domain_block_request",
            "law_gap_proposal",
            "periodic_report",
            "suspect_seller",
            "tax_discrepancy",
        )
    },  # fmt: skip
    "good_domain_block_result": (
        "ok",
        "routed",
        "a valid result from ict (its only publisher, II.6) answering a request the router saw",
    ),
    "empty_value": ("truncated_frame", "truncated_frame", f"zero bytes: not even the frame; {_FRAME}"),
    "tombstone": ("truncated_frame", "truncated_frame", "a null value carries no event: no frame at all"),
    "magic_only": ("truncated_frame", "truncated_frame", f"1 of 5 frame bytes; {_FRAME}"),
    "header_4_bytes": ("truncated_frame", "truncated_frame", f"4 of 5 frame bytes; {_FRAME}"),
    "header_no_body": ("corrupt_body", "corrupt_body", "a complete frame and an empty body: no record"),
    "magic_01": ("bad_magic_byte", "bad_magic_byte", _FRAME),
    "magic_ff": ("bad_magic_byte", "bad_magic_byte", _FRAME),
    "json_value": ("bad_magic_byte", "bad_magic_byte", f"'{{' is not the magic byte; {_FRAME}"),
    "schema_id_0": ("unknown_schema_id", "unknown_schema_id", "id 0 is not in the catalog"),
    "schema_id_max": ("unknown_schema_id", "unknown_schema_id", "id 2^32-1 is not in the catalog"),
    "schema_id_999": ("unknown_schema_id", "unknown_schema_id", "id 999 is not in the catalog"),
    "big_endian_confusion": (
        "unknown_schema_id",
        "unknown_schema_id",
        "id 1 written little-endian reads as 16777216 big-endian: not in the catalog",
    ),
    "cut_in_half": ("corrupt_body", "corrupt_body", _EOF),
    "cut_last_byte": ("corrupt_body", "corrupt_body", _EOF),
    "trailing_garbage": (
        "corrupt_body",
        "corrupt_body",
        "bytes left after a complete record: the frame holds exactly one record",
    ),
    "wrong_schema_with_headers": (
        "corrupt_body",
        "corrupt_body",
        "the body is read with the schema the frame names (tax_discrepancy) and does not parse as one",
    ),
    "wrong_schema_no_headers": (
        "corrupt_body",
        "corrupt_body",
        "the body is read with the schema the frame names (tax_discrepancy) and does not parse as one",
    ),
    "audit_body_in_an_outbox": (
        "corrupt_body",
        "corrupt_body",
        "a suspect seller's bytes do not parse as an audit record, the schema the frame names",
    ),
    "audit_record_in_an_outbox": (
        "ok",
        "invalid_event",
        "a well-formed audit record decodes, but the audit schema is not an event schema: no sender may "
        "publish the router's own records",
    ),
    "meta_type_lies": (
        "schema_mismatch",
        "schema_mismatch",
        "meta.event_type must name the type of the schema the frame names",
    ),
    "ce_type_lies": (
        "schema_mismatch",
        "schema_mismatch",
        "the ce_type header must name the type and version of the schema the frame names",
    ),
    "ce_type_invalid_utf8": (
        "schema_mismatch",
        "schema_mismatch",
        "a ce_type header that is not the schema's ce_type (here not even text) is a mismatch",
    ),
    "header_none": (
        "ok",
        "routed",
        "headers are not the event: a header without a value is kept as empty, the body is valid",
    ),
    "sender_forged_router_headers": (
        "ok",
        "routed",
        "bus389_* headers belong to the router: a sender's are dropped from the copies, the event is valid",
    ),
    **{f"invalid_utf8_{label}": ("corrupt_body", "corrupt_body", _UTF8) for label in ("ff", "c328")},
    "invalid_utf8_surrogate": ("corrupt_body", "corrupt_body", f"{_UTF8}; a UTF-16 surrogate is not UTF-8"),
    "invalid_utf8_overlong": ("corrupt_body", "corrupt_body", f"{_UTF8}; an overlong '/' is not UTF-8"),
    **{f"string_length_{label}": ("corrupt_body", "corrupt_body", _LENGTH) for label in ("2e62", "1e9")},
    "string_length_minus1": ("corrupt_body", "corrupt_body", "a negative string length is corrupt"),
    "varint_overlong": (
        "corrupt_body",
        "corrupt_body",
        "an Avro long is at most 10 bytes of varint, and ten 0xff never end",
    ),
    "array_count_2e62": (
        "corrupt_body",
        "corrupt_body",
        "an array claiming 2^62 items over a few bytes is corrupt, refused before any allocation",
    ),
    "array_count_minus_2e62": (
        "corrupt_body",
        "corrupt_body",
        "a negative block count claiming 2^62 items over a few bytes is corrupt",
    ),
    "union_branch_7": ("corrupt_body", "corrupt_body", "a union of 2 branches has no branch 7"),
    "union_branch_minus_1": (
        "corrupt_body",
        "corrupt_body",
        "a union has no branch -1 (Python indexing would silently read the last one)",
    ),
    "instant_overflow": (
        "corrupt_body",
        "corrupt_body",
        "a timestamp-millis beyond year 9999 is no date: the logical type cannot hold it",
    ),
    "date_overflow": (
        "corrupt_body",
        "corrupt_body",
        "a date 2^31-1 days after 1970 is no date: the logical type cannot hold it",
    ),
    "rules_bad_tax_code": ("ok", "invalid_event", _RULES.format("a tax code is 10 or 13 digits")),
    "rules_negative_amount": ("ok", "invalid_event", _RULES.format("money is never negative")),
    "rules_bad_domain": ("ok", "invalid_event", _RULES.format("a domain name has no spaces")),
    "rules_event_id_not_uuid": ("ok", "invalid_event", _RULES.format("meta.event_id is a UUID")),
    "rules_empty_seller_name": ("ok", "invalid_event", _RULES.format("a seller has a name")),
    "rules_bad_period": ("ok", "invalid_event", _RULES.format("a period is a year and H1 or H2")),
    "rules_bad_phone": ("ok", "invalid_event", _RULES.format("a phone number is digits")),
    "rules_nul_in_text": (
        "ok",
        "invalid_event",
        "identifiers and free text refuse NUL and other control characters (issue 12: nothing a sender "
        "types can act on a terminal or a parser)",
    ),
    "spoof": (
        "ok",
        "spoofed_source",
        "the outbox is the sender: a suspect seller claiming police, written to the tax outbox, is spoofed",
    ),
    "reply_to_nobody": (
        "ok",
        "unknown_original",
        "an answer goes only where the router's audit trail says the original came from; a typed "
        "requester field never addresses it (issue 12: answers only from those asked)",
    ),
    "red_block_request": (
        "ok",
        "routed",
        "ICT must act on every block request, at every sensitivity (II.6): the policy's "
        "domain_block_request.ict rule allows RED",
    ),
    "red_outcome_naming_no_one": (
        "ok",
        "no_route",
        "RED reaches only named recipients whose duties cover the type, or the addressees of rules "
        "allowing RED; a case outcome has neither, so no one may receive it (DOMAIN.md, Sensitivity)",
    ),
    "tax_alert_from_customs": (
        "ok",
        "not_permitted",
        "only the tax office may publish tax_discrepancy (II.4; the policy's rights)",
    ),
    "not_an_outbox": (
        "ok",
        "not_an_outbox",
        "the router reads outboxes only: a valid event from an inbox has no sender",
    ),
}
"""Every entry's expected outcome (codec, router) and why, written by hand."""


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def save(
    name: str,
    description: str,
    raw: FakeRecord,
    *,
    replies: dict[str, Agency] | None = None,
    known_issue: str = "",
) -> Path:
    """Write one entry with its hand-written expectation from :data:`EXPECTED` (a missing row fails).

    With ``known_issue`` the code does not do what the entry expects yet; the replay test expects that
    entry to fail (strictly) until the issue is fixed.
    """
    codec, router, why = EXPECTED[name]
    entry: dict[str, Any] = {
        "name": name,
        "description": description,
        "topic": raw.topic,
        "key": _b64(raw.key),
        "value": _b64(raw.value),
        "headers": [[k, _b64(v)] for k, v in raw.headers],
        "replies": {k: v.value for k, v in (replies or {}).items()},
        "codec": codec,
        "router": router,
        "why": why,
    }
    if known_issue:
        entry["known_issue"] = known_issue
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
        "a result answering a request the router never saw: dead-lettered, the typed requester never decides",
        outbox_record("domain_block_result"),
    )
    add(
        "red_block_request",
        "a RED domain block request: it reaches ICT, which must act on it at every sensitivity (II.6)",
        FakeRecord(
            TOPICS.outbox(Agency.MARKET_SURVEILLANCE),
            _record_bytes("domain_block_request", meta__sensitivity="RED"),
        ),
    )
    add(
        "red_outcome_naming_no_one",
        "a RED case outcome from customs that names no recipient",
        FakeRecord(
            TOPICS.outbox(Agency.CUSTOMS),
            _record_bytes("case_outcome", meta__sensitivity="RED", meta__source="customs"),
        ),
    )
    add(
        "tax_alert_from_customs",
        "a tax alert published by customs, which only the tax office may raise",
        FakeRecord(TOPICS.outbox(Agency.CUSTOMS), _record_bytes("tax_discrepancy", meta__source="customs")),
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
    unused = set(EXPECTED) - {p.stem for p in paths}
    assert not unused, f"expectations without an entry: {sorted(unused)}"
    for path in paths:
        entry = json.loads(path.read_text(encoding="utf-8"))
        print(f"{entry['name']:32} codec={entry['codec']:18} router={entry['router']}")
    print(f"{len(paths)} entries in {CORPUS}")
