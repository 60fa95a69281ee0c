"""Evidence bundles, offline: a bundle holds; any changed byte is found and said precisely."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bus389.agencies import Agency, Topics
from bus389.codec import decode_event, encode_event
from bus389.consumers.router.audit_chain import AuditChain
from bus389.consumers.router.records import RecordRouter
from bus389.errors import InputError
from bus389.events.parsing import build_event
from bus389.evidence import _archive, build_bundle, select_audit_segment, verify_bundle
from bus389.routing.policy import load_policy
from bus389.settings import Settings
from bus389.signing.events import EventSigner, RouterVerifier
from bus389.signing.keys import KeyEntry, KeyRegistry, generate_key_file

REPO_ROOT = Path(__file__).resolve().parents[2]
TOPICS = Topics("ev")
CASE = "QNG-389-2021-0012"


@dataclass
class Raw:
    """A consumer record (the fields the router and the bundle read)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, KeyRegistry]:
    """Two police events routed to ICT (one of the case), through the real record router; ICT's copies have
    the seller's personal data removed (II.6)."""
    tmp = tmp_path_factory.mktemp("keys")
    start = datetime.now(UTC) - timedelta(minutes=1)
    police, router, ict = (generate_key_file(tmp / f"{n}.pem") for n in ("police", "router", "ict"))
    registry = KeyRegistry(
        KeyEntry(k.kid, owner, k.public_raw, start)
        for k, owner in ((police, "police"), (router, "router"), (ict, "ict"))
    )
    policy = load_policy(Settings().router.policy_path)
    chain = AuditChain(dict, key=router, head_every=1)
    rr = RecordRouter(TOPICS, policy, verifier=RouterVerifier(lambda: registry, require=True), chain=chain)
    line = (REPO_ROOT / "examples" / "suspect_seller.jsonl").read_text(encoding="utf-8").splitlines()[0]
    inbox: list[Raw] = []
    audit: list[Raw] = []
    for offset, case in enumerate((CASE, "OTHER-1")):
        data = json.loads(line)
        data["meta"]["case_ref"] = case
        encoded = encode_event(build_event("suspect_seller", "police", data))
        headers = EventSigner(police).headers(encoded.value, encoded.headers)
        raw = Raw(TOPICS.outbox("police"), 0, offset, encoded.key, encoded.value, headers)
        routed = rr.route(raw, received_at=datetime.now(UTC))
        assert routed.routed, routed.dlq_detail
        for out in routed.outgoing:
            target = (
                audit if out.topic == TOPICS.audit else inbox if out.topic == TOPICS.inbox("ict") else None
            )
            if target is not None:
                target.append(Raw(out.topic, 0, len(target), out.key, out.value, out.headers))
    events = [r for r in inbox if decode_event(r.value).meta["case_ref"] == CASE]
    ids = {dict(r.headers)["ce_id"].decode() for r in events}
    segment = select_audit_segment(audit, ids)
    data = build_bundle(
        case_ref=CASE,
        agency=Agency.ICT,
        prefix="ev",
        events=events,
        audit=segment,
        registry=registry,
        file_name="b.zip",
        key=ict,
    )
    return data, registry


def _check(data: bytes, **kwargs):
    return verify_bundle(data, source="b.zip", policy=load_policy(Settings().router.policy_path), **kwargs)


def test_a_bundle_holds_offline_with_the_redacted_copy_and_its_audit(bundle) -> None:
    data, registry = bundle
    report = _check(data, trusted=registry)
    assert report.holds, report.problems
    text = "\n".join(report.lines)
    assert "removed by redaction: seller.address, seller.national_id, seller.phone" in text
    assert "manifest: signed by ict" in text
    assert "1 record(s) in 1 chain(s), 1 head(s) signed by the router" in text
    members = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert members == ["bundle.json", "README.txt", "manifest.json", "manifest.sig"]
    readme = zipfile.ZipFile(io.BytesIO(data)).read("README.txt").decode("utf-8")
    assert "GÓI CHỨNG CỨ" in readme and CASE in readme


def test_every_changed_byte_is_found(bundle) -> None:
    data, registry = bundle
    for position in range(0, len(data), 37):
        changed = bytearray(data)
        changed[position] ^= 0x01
        try:
            report = _check(bytes(changed), trusted=registry)
        except InputError:
            continue  # the archive itself no longer reads: said in one line
        assert not report.holds, f"byte {position} changed and the bundle still holds"


def _edit(data: bytes, name: str, old: bytes, new: bytes) -> bytes:
    members = {
        i: zipfile.ZipFile(io.BytesIO(data)).read(i) for i in zipfile.ZipFile(io.BytesIO(data)).namelist()
    }
    assert old in members[name]
    members[name] = members[name].replace(old, new, 1)
    return _archive(members)


def test_a_changed_value_byte_names_the_member_and_the_field(bundle) -> None:
    data, registry = bundle
    bundle_json = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("bundle.json"))
    value = bundle_json["events"][0]["value"]
    import base64

    raw = bytearray(base64.b64decode(value))
    raw[raw.index("Lý Sơn".encode())] ^= 0x20  # one byte of the seller's address: "lý Sơn"
    edited = _edit(data, "bundle.json", value.encode(), base64.b64encode(bytes(raw)))
    problems = _check(edited, trusted=registry).problems
    assert "bundle.json: its SHA-256 is not the one in manifest.json (the file was changed)" in problems
    assert any("field_altered: field" in p and "differs from what the sender signed" in p for p in problems)


def test_swapped_keys_a_changed_readme_and_a_flipped_archive_byte_are_named(bundle, tmp_path: Path) -> None:
    data, registry = bundle
    readme = _edit(data, "README.txt", "GÓI".encode(), b"GOI")
    assert _check(readme).problems == [
        "README.txt: its SHA-256 is not the one in manifest.json (the file was changed)"
    ]
    other = KeyRegistry(list(registry.entries())[:1])
    problems = _check(data, trusted=other).problems
    assert any("not in the trusted key registry" in p for p in problems)
    flipped = bytearray(data)
    flipped[data.index(b'"case_ref"') + 2] ^= 0x01
    problems = _check(bytes(flipped), trusted=registry).problems
    assert problems[0] == "bundle.json: its CRC-32 does not match (its bytes were changed)"
    with pytest.raises(InputError, match="b.zip: not a bundle"):
        _check(b"not a zip at all")


def test_a_bundle_from_a_router_without_the_chain_holds_and_says_its_audit_is_not_linked(
    tmp_path: Path,
) -> None:
    police = generate_key_file(tmp_path / "police.pem")
    registry = KeyRegistry(
        [KeyEntry(police.kid, "police", police.public_raw, datetime.now(UTC) - timedelta(hours=1))]
    )
    rr = RecordRouter(TOPICS, load_policy(Settings().router.policy_path))  # no verifier, no chain
    line = (REPO_ROOT / "examples" / "suspect_seller.jsonl").read_text(encoding="utf-8").splitlines()[0]
    encoded = encode_event(build_event("suspect_seller", "police", json.loads(line)))
    headers = EventSigner(police).headers(encoded.value, encoded.headers)
    routed = rr.route(
        Raw(TOPICS.outbox("police"), 0, 0, encoded.key, encoded.value, headers), received_at=datetime.now(UTC)
    )
    copy = next(o for o in routed.outgoing if o.topic == TOPICS.inbox("ict"))
    audit = next(o for o in routed.outgoing if o.topic == TOPICS.audit)
    events = [Raw(copy.topic, 0, 0, copy.key, copy.value, copy.headers)]
    segment = select_audit_segment(
        [Raw(audit.topic, 0, 0, audit.key, audit.value, audit.headers)], {str(audit.key.decode())}
    )
    data = build_bundle(
        case_ref=CASE,
        agency=Agency.ICT,
        prefix="ev",
        events=events,
        audit=segment,
        registry=registry,
        file_name="b.zip",
        key=None,
    )
    report = _check(data)
    assert report.holds, report.problems
    assert "1 record(s) not linked (no chain: not tamper-evident)" in report.lines[-1]
    assert "manifest: not signed (no signing key where it was exported)" in report.lines
