"""The record router's signature check (verify_or_reject) and the registry refresh of the verifiers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bus389.agencies import Agency, Topics
from bus389.codec import decode_event, encode_event
from bus389.consumers.router.records import RecordRouter
from bus389.errors import BrokerError
from bus389.events.parsing import build_event
from bus389.routing.policy import load_policy
from bus389.settings import Settings
from bus389.signing.disclosure import SD_HEADER, SIGNING_HEADERS, Disclosure
from bus389.signing.events import EventSigner, ReaderVerifier, RouterVerifier, check_read, header_map
from bus389.signing.keys import KeyEntry, KeyRegistry, generate_key_file

REPO_ROOT = Path(__file__).resolve().parents[2]
TOPICS = Topics("u")
POLICY = load_policy(Settings().router.policy_path)
START = datetime.now(UTC) - timedelta(hours=1)


@dataclass
class Raw:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("keys")
    police, tax = generate_key_file(tmp / "police.pem"), generate_key_file(tmp / "tax.pem")
    registry = KeyRegistry(
        [
            KeyEntry(police.kid, "police", police.public_raw, START),
            KeyEntry(tax.kid, "tax", tax.public_raw, START),
        ]
    )
    return police, tax, registry


def _outbox_record(signer: EventSigner | None, source: str = "police", outbox: str = "police") -> Raw:
    line = (REPO_ROOT / "examples" / "suspect_seller.jsonl").read_text(encoding="utf-8").splitlines()[0]
    encoded = encode_event(build_event("suspect_seller", source, json.loads(line)))
    headers = signer.headers(encoded.value, encoded.headers) if signer else list(encoded.headers)
    return Raw(TOPICS.outbox(outbox), 0, 7, encoded.key, encoded.value, headers)


def _router(registry: KeyRegistry, *, require: bool) -> RecordRouter:
    return RecordRouter(TOPICS, POLICY, verifier=RouterVerifier(lambda: registry, require=require))


def test_a_signed_event_is_routed_and_each_copy_carries_the_proof_without_redacted_salts(keys) -> None:
    police, _, registry = keys
    routed = _router(registry, require=True).route(
        _outbox_record(EventSigner(police)), received_at=datetime.now(UTC)
    )
    assert routed.routed, routed.dlq_detail
    copies = {o.topic: o for o in routed.outgoing if o.topic != TOPICS.audit}
    ict = header_map(copies[TOPICS.inbox("ict")].headers)  # ICT gets no personal data (II.6)
    ms = header_map(copies[TOPICS.inbox("market_surveillance")].headers)
    assert ict["bus389_sig"] == ms["bus389_sig"]  # the router copies the signature, never re-signs
    assert "seller.phone" not in Disclosure.from_header(ict[SD_HEADER]).salts
    assert "seller.phone" in Disclosure.from_header(ms[SD_HEADER]).salts
    for topic, out in copies.items():
        result = check_read(TOPICS, topic, out.value, header_map(out.headers), registry, policy=POLICY)
        assert result.ok, (topic, result.describe())
    audit = next(o for o in routed.outgoing if o.topic == TOPICS.audit)
    assert not any(name in dict(audit.headers) for name in SIGNING_HEADERS)


def test_unsigned_passes_only_when_not_required_and_never_gains_a_signature(keys) -> None:
    _, _, registry = keys
    raw = _outbox_record(None)
    refused = _router(registry, require=True).route(raw, received_at=datetime.now(UTC))
    assert (refused.dlq_reason, refused.dlq_detail) == ("unsigned", "the event carries no signature")
    # the dead letter, and the sender told in its own inbox (the router's notice, unsigned: its own)
    assert [o.topic for o in refused.outgoing] == [TOPICS.dlq, TOPICS.inbox("police")]
    allowed = _router(registry, require=False).route(raw, received_at=datetime.now(UTC))
    assert allowed.routed
    assert all(SIGNING_HEADERS[0] not in dict(o.headers) for o in allowed.outgoing)


def test_a_present_signature_is_checked_even_when_not_required(keys) -> None:
    police, tax, registry = keys
    foreign = _outbox_record(EventSigner(police), source="tax", outbox="tax")
    result = _router(registry, require=False).route(foreign, received_at=datetime.now(UTC))
    assert result.dlq_reason == "wrong_key"
    assert "belongs to police, not tax" in result.dlq_detail
    forged = _outbox_record(EventSigner(police))
    forged.headers = [(n, v) for n, v in forged.headers if n != "bus389_sig"] + [("bus389_sig", b"A" * 88)]
    assert (
        _router(registry, require=False).route(forged, received_at=datetime.now(UTC)).dlq_reason
        == "bad_signature"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_router_reads_the_registry_again_for_an_unknown_key_and_keeps_it_when_a_reload_fails(
    keys,
) -> None:
    police, _, registry = keys
    loads: list[KeyRegistry | Exception] = [KeyRegistry(), registry, BrokerError("broker away")]
    calls = []

    def load() -> KeyRegistry:
        item = loads[min(len(calls), len(loads) - 1)]
        calls.append(item)
        if isinstance(item, Exception):
            raise item
        return item

    clock = Clock()
    verifier = RecordRouter(
        TOPICS, POLICY, verifier=RouterVerifier(load, require=True, refresh_s=30, clock=clock)
    )
    raw = _outbox_record(EventSigner(police))
    assert (
        verifier.route(raw, received_at=datetime.now(UTC)).dlq_reason == "unknown_key"
    )  # too soon to reload
    clock.now = 1.5
    assert verifier.route(raw, received_at=datetime.now(UTC)).routed  # unknown key: read again at once
    clock.now = 40.0
    assert verifier.route(raw, received_at=datetime.now(UTC)).routed  # the reload failed: the last one stays
    assert len(calls) == 3


def test_a_service_reads_the_registry_only_for_signed_copies_or_when_signatures_are_required(keys) -> None:
    police, _, registry = keys
    calls = []

    def load() -> KeyRegistry:
        calls.append(1)
        return registry

    raw = _outbox_record(None)
    decoded = decode_event(raw.value)
    relaxed = ReaderVerifier(load, reader=Agency.MARKET_SURVEILLANCE, require=False, policy=POLICY)
    assert relaxed.problem(decoded, header_map(raw.headers)) is None and calls == []
    strict = ReaderVerifier(load, reader=Agency.MARKET_SURVEILLANCE, require=True, policy=POLICY)
    problem = strict.problem(decoded, header_map(raw.headers))
    assert problem is not None and problem.reason == "unsigned" and calls == [1]
    signed = _outbox_record(EventSigner(police))
    assert strict.problem(decode_event(signed.value), header_map(signed.headers)) is None


def test_without_a_verifier_the_router_passes_the_signature_on_and_recipients_check_it(keys) -> None:
    police, tax, registry = keys
    plain = RecordRouter(TOPICS, POLICY)
    routed = plain.route(_outbox_record(EventSigner(police)), received_at=datetime.now(UTC))
    copies = {o.topic: o for o in routed.outgoing if o.topic != TOPICS.audit}
    for topic, out in copies.items():
        result = check_read(TOPICS, topic, out.value, header_map(out.headers), registry, policy=POLICY)
        assert result.ok, (topic, result.describe())
    # Unchecked means unchecked: a foreign key passes the router and the recipient refuses it.
    foreign = plain.route(_outbox_record(EventSigner(tax)), received_at=datetime.now(UTC))
    out = next(o for o in foreign.outgoing if o.topic == TOPICS.inbox("tax"))
    result = check_read(TOPICS, out.topic, out.value, header_map(out.headers), registry, policy=POLICY)
    assert result.reason == "wrong_key"


def test_a_service_that_cannot_read_the_registry_retries_instead_of_refusing(keys) -> None:
    police, _, registry = keys
    attempts: list[int] = []

    def load() -> KeyRegistry:
        attempts.append(1)
        if len(attempts) == 1:
            raise BrokerError("no topic u.keys (run `bus389 topics apply`)")
        return registry

    verifier = ReaderVerifier(load, reader=Agency.MARKET_SURVEILLANCE, require=True, policy=POLICY)
    signed = _outbox_record(EventSigner(police))
    with pytest.raises(BrokerError) as raised:
        verifier.problem(decode_event(signed.value), header_map(signed.headers))
    assert raised.value.retriable  # the shared loop retries it with backoff: the copy is not dropped
    assert verifier.problem(decode_event(signed.value), header_map(signed.headers)) is None
