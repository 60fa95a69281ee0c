"""Signed events: salted per-field digests verify through redaction; every alteration is named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bus389.codec import decode_event, encode_event, encode_value
from bus389.errors import ConfigError, InputError
from bus389.events.parsing import build_event
from bus389.routing.redaction import redact
from bus389.signing.disclosure import (
    KID_HEADER,
    SD_HEADER,
    SIG_HEADER,
    Disclosure,
    leaves,
    sign_record,
    verify_record,
)
from bus389.signing.keys import KeyEntry, KeyRegistry, generate_key_file, load_signing_key

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2021, 1, 1, tzinfo=UTC)


def _record() -> tuple[dict, str]:
    line = (REPO_ROOT / "examples" / "suspect_seller.jsonl").read_text(encoding="utf-8").splitlines()[0]
    event = build_event("suspect_seller", "tax", json.loads(line))
    encoded = encode_event(event)
    decoded = decode_event(encoded.value, encoded.headers)
    return decoded.record, decoded.schema.ce_type


@pytest.fixture()
def key(tmp_path: Path):
    return generate_key_file(tmp_path / "tax.signing.pem")


@pytest.fixture()
def registry(key) -> KeyRegistry:
    return KeyRegistry([KeyEntry(key.kid, "tax", key.public_raw, T0)])


def _signed(key) -> tuple[dict, str, dict[str, bytes]]:
    record, ce_type = _record()
    return record, ce_type, dict(sign_record(record, ce_type, key))


def test_a_signed_event_verifies(key, registry) -> None:
    record, ce_type, headers = _signed(key)
    result = verify_record(record, ce_type, headers, registry, owner="tax")
    assert result.ok, result.describe()
    assert result.removed == ()
    assert result.owner == "tax"


def test_a_redacted_copy_verifies_and_names_what_was_removed(key, registry) -> None:
    record, ce_type, headers = _signed(key)
    paths = ("seller.phone", "seller.national_id")
    copy = redact(record, paths)
    sd = Disclosure.from_header(headers[SD_HEADER]).without(paths)
    headers = {**headers, SD_HEADER: sd.to_header()}
    result = verify_record(copy, ce_type, headers, registry)
    assert result.ok, result.describe()
    assert result.removed == ("seller.national_id", "seller.phone")
    allowed = verify_record(copy, ce_type, headers, registry, may_remove=lambda p: p == "seller.phone")
    assert allowed.reason == "field_removed"
    assert "seller.national_id" in allowed.detail


def test_a_redacted_copy_through_avro_still_verifies(key, registry) -> None:
    record, ce_type, headers = _signed(key)
    decoded = decode_event(encode_event(record).value)
    copy = decode_event(encode_value(redact(decoded.record, ["seller.address"]), decoded.schema)).record
    sd = Disclosure.from_header(headers[SD_HEADER]).without(["seller.address"])
    assert verify_record(copy, ce_type, {**headers, SD_HEADER: sd.to_header()}, registry).ok


@pytest.mark.parametrize(
    ("change", "reason", "named"),
    [
        (lambda r: r["seller"].__setitem__("name", "Người khác"), "field_altered", "seller.name"),
        (
            lambda r: r["accounts"][1].__setitem__("account", "0900000000"),
            "field_altered",
            "accounts[1].account",
        ),
        (lambda r: r["accounts"].pop(), "field_altered", "accounts[1]"),
        (lambda r: r.__setitem__("goods_imported", False), "field_altered", "goods_imported"),
        (
            lambda r: r["meta"].__setitem__("event_id", "00000000-0000-4000-8000-000000000000"),
            "bad_signature",
            "",
        ),
    ],
)
def test_every_alteration_is_refused_and_named(key, registry, change, reason, named) -> None:
    record, ce_type, headers = _signed(key)
    change(record)
    result = verify_record(record, ce_type, headers, registry)
    assert result.reason == reason
    assert named in result.detail


def test_a_value_nulled_without_dropping_its_salt_is_an_alteration(key, registry) -> None:
    record, ce_type, headers = _signed(key)
    result = verify_record(redact(record, ["seller.phone"]), ce_type, headers, registry)
    assert result.reason == "field_altered" and "seller.phone" in result.detail


def test_a_dropped_salt_with_the_value_kept_is_refused(key, registry) -> None:
    record, ce_type, headers = _signed(key)
    sd = Disclosure.from_header(headers[SD_HEADER]).without(["seller.phone"])
    result = verify_record(record, ce_type, {**headers, SD_HEADER: sd.to_header()}, registry)
    assert result.reason == "field_altered" and "seller.phone" in result.detail


def test_unsigned_incomplete_unknown_key_and_garbage(key, registry, tmp_path: Path) -> None:
    record, ce_type, headers = _signed(key)
    assert verify_record(record, ce_type, {}, registry).reason == "unsigned"
    partial = {k: v for k, v in headers.items() if k != SD_HEADER}
    assert verify_record(record, ce_type, partial, registry).reason == "bad_signature"
    other = generate_key_file(tmp_path / "other.pem")
    forged = dict(sign_record(record, ce_type, other))
    assert verify_record(record, ce_type, forged, registry).reason == "unknown_key"
    for name, junk in (
        (SD_HEADER, b"{not json"),
        (SIG_HEADER, b"!!"),
        (SD_HEADER, b'{"v":1,"d":{},"s":{"a":"AA"}}'),
    ):
        assert verify_record(record, ce_type, {**headers, name: junk}, registry).reason == "bad_signature"
    swapped = {**headers, SIG_HEADER: forged[SIG_HEADER]}
    assert verify_record(record, ce_type, swapped, registry).reason == "bad_signature"


def test_another_agencys_key_is_a_wrong_key(key, tmp_path: Path) -> None:
    record, ce_type, headers = _signed(key)
    registry = KeyRegistry([KeyEntry(key.kid, "police", key.public_raw, T0)])
    result = verify_record(record, ce_type, headers, registry)
    assert result.reason == "wrong_key" and "police" in result.detail
    mine = KeyRegistry([KeyEntry(key.kid, "tax", key.public_raw, T0)])
    assert verify_record(record, ce_type, headers, mine, owner="customs").reason == "wrong_key"


def test_rotation_keeps_old_signatures_and_revocation_refuses_later_ones(key, tmp_path: Path) -> None:
    record, ce_type, headers = _signed(key)
    signed_at = datetime.fromisoformat(record["meta"]["published_at"].isoformat())
    registry = KeyRegistry([KeyEntry(key.kid, "tax", key.public_raw, signed_at - timedelta(days=1))])
    new = generate_key_file(tmp_path / "new.pem")
    changed = registry.rotate("tax", new.public_raw, signed_at + timedelta(seconds=1))
    assert [e.kid for e in changed] == [key.kid, new.kid]
    assert verify_record(record, ce_type, headers, registry).ok
    assert registry.current("tax", signed_at + timedelta(seconds=2)) == [registry.get(new.kid)]
    early = KeyRegistry([KeyEntry(key.kid, "tax", key.public_raw, signed_at - timedelta(days=1))])
    early.rotate("tax", new.public_raw, signed_at - timedelta(seconds=1))
    assert verify_record(record, ce_type, headers, early).reason == "key_not_valid"
    revoked = KeyRegistry([KeyEntry(key.kid, "tax", key.public_raw, signed_at - timedelta(days=1))])
    revoked.revoke(key.kid, signed_at + timedelta(seconds=1))
    assert verify_record(record, ce_type, headers, revoked).ok
    late = verify_record(record, ce_type, headers, revoked, not_revoked_at=signed_at + timedelta(minutes=5))
    assert late.reason == "key_not_valid" and "revoked" in late.detail
    revoked.revoke(key.kid, signed_at - timedelta(seconds=1))
    assert verify_record(record, ce_type, headers, revoked).reason == "key_not_valid"


def test_key_files_are_private_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    key = generate_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_signing_key(path).kid == key.kid
    assert key.kid not in path.read_text() and "PRIVATE KEY" in path.read_text()
    assert "PRIVATE" not in repr(key)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_signing_key(path)
    (tmp_path / "bad.pem").write_text("nope")
    (tmp_path / "bad.pem").chmod(0o600)
    with pytest.raises(ConfigError, match="bad.pem"):
        load_signing_key(tmp_path / "bad.pem")


def test_registry_export_round_trips_and_bad_files_are_named(key, registry, tmp_path: Path) -> None:
    registry.revoke(key.kid, T0 + timedelta(days=3))
    again = KeyRegistry.from_text(registry.to_text())
    assert again.entries() == registry.entries()
    body = json.loads(registry.to_text())
    body["keys"][0]["kid"] = "0" * 32
    with pytest.raises(InputError, match="key 0: field 'kid'"):
        KeyRegistry.from_text(json.dumps(body), source="keys.json")
    with pytest.raises(InputError, match="keys.json: not JSON"):
        KeyRegistry.from_text("{", source="keys.json")


def test_leaves_cover_nested_lists_and_empty_containers() -> None:
    assert leaves({"a": {"b": 1, "c": []}, "d": [{"e": None}, {"e": "x"}], "f": {}}) == {
        "a.b": 1,
        "a.c": [],
        "d[0].e": None,
        "d[1].e": "x",
        "f": {},
    }


def test_header_text_that_is_not_a_path_or_key_id_is_refused_before_it_reaches_a_message(
    key, registry
) -> None:
    record, ce_type, headers = _signed(key)
    evil = {**headers, KID_HEADER: b"\x1b[2Jabc"}
    result = verify_record(record, ce_type, evil, registry)
    assert result.reason == "bad_signature" and "\x1b" not in result.describe()
    sd = Disclosure.from_header(headers[SD_HEADER])
    sd.digests["seller.\x1b[31mname"] = sd.digests["seller.name"]
    bad = {**headers, SD_HEADER: sd.to_header()}
    result = verify_record(record, ce_type, bad, registry)
    assert result.reason == "bad_signature" and "\x1b" not in result.describe()


def test_a_cut_or_padded_disclosure_header_is_refused(key, registry) -> None:
    record, ce_type, headers = _signed(key)
    sd = headers[SD_HEADER]
    for broken in (sd[:-1], sd + b"\x00", sd[:40], b"\x02" + sd[1:]):
        assert (
            verify_record(record, ce_type, {**headers, SD_HEADER: broken}, registry).reason == "bad_signature"
        )
