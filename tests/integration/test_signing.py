"""Signed events on a real broker: the router verifies before routing, each recipient verifies its copy
through redaction, and every attack of issue 13 is refused with its reason.

The router here is the real :class:`RouterService` (it verifies with the key registry and chains its
audit records); the tampering router is a test double of :class:`RecordRouter`, put in its place through
``RouterService.record_router``, that rewrites or removes one field of one copy.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _router_support import (
    RouterThread,
    headers,
    read_topic,
    router_settings,
    suspect_seller,
    wait_routed,
)
from click.testing import CliRunner

from bus389.agencies import Agency
from bus389.cli.main import cli
from bus389.codec import decode_event, encode_event, encode_value
from bus389.consumers.router.records import Outgoing, RecordRouter, Routed
from bus389.consumers.router.service import RouterService
from bus389.events import Event
from bus389.producers.publisher import OutgoingEvent, Publisher
from bus389.routing.policy import load_policy
from bus389.routing.redaction import redact
from bus389.runtime.inbox_loop import run_inbox_service
from bus389.settings import Settings, SigningSettings
from bus389.signing.disclosure import SD_HEADER, Disclosure
from bus389.signing.events import check_read, header_map
from bus389.signing.registry_topic import issue_signing_key, read_registry, write_entries

pytestmark = pytest.mark.integration

A = Agency
MS = Agency.MARKET_SURVEILLANCE
ICT_WITHHELD = ("seller.address", "seller.national_id", "seller.phone")
"""What the policy withholds from ICT (II.6: it acts on domains and sites, not on persons)."""


class SigningRouter(RouterThread):
    def __init__(self, settings: Settings, record_router: type[RecordRouter] = RecordRouter) -> None:
        super().__init__(settings)
        self.service = RouterService(settings, stop=self.stop_flag)
        self.service.record_router = record_router


@pytest.fixture
def rsettings(make_settings: Callable[..., Settings], unique_group: Callable[..., str]) -> Settings:
    base = router_settings(make_settings, unique_group)
    return base.model_copy(update={"signing": SigningSettings(require=True, registry_refresh_s=1.0)})


@pytest.fixture
def keys(rsettings: Settings, tmp_path: Path) -> Callable[[str], Path]:
    """``keys("tax")`` issues (or rotates) that agency's key on this test's registry; returns its file."""

    def issue(owner: str) -> Path:
        path = tmp_path / f"{owner}.signing.pem"
        issue_signing_key(rsettings, owner, path)
        return path

    return issue


def as_signer(settings: Settings, key_file: Path | None) -> Settings:
    return settings.model_copy(update={"signing": settings.signing.model_copy(update={"key_file": key_file})})


def publish_signed(settings: Settings, key_file: Path | None, events: list[Event]) -> None:
    """Publish ``events`` with the real Publisher of their source, signing with ``key_file``."""
    agency = Agency(events[0].meta.source)
    with Publisher(as_signer(settings, key_file), agency) as publisher:
        publisher.publish([OutgoingEvent(i, e, encode_event(e)) for i, e in enumerate(events, start=1)])


def copy_of(settings: Settings, agency: Agency, event_id: str) -> Any:
    (record,) = [
        r for r in read_topic(settings, settings.topics.inbox(agency)) if headers(r)["ce_id"] == event_id
    ]
    return record


def check(settings: Settings, record: Any) -> Any:
    policy = load_policy(settings.router.policy_path)
    return check_read(
        settings.topics,
        record.topic,
        record.value,
        header_map(record.headers),
        read_registry(settings),
        policy=policy,
    )


def dead_letters(settings: Settings) -> dict[str, tuple[str, str]]:
    """Event id → (reason, detail) of every dead letter."""
    out = {}
    for record in read_topic(settings, settings.topics.dlq):
        h = headers(record)
        out[h.get("ce_id", "")] = (h["bus389_dlq_reason"], h["bus389_dlq_detail"])
    return out


def test_signed_events_verify_end_to_end_through_redaction(
    rsettings: Settings, keys: Any, tmp_path: Path
) -> None:
    police_key = keys("police")
    # a website: ICT receives it, without the seller's personal data (II.6)
    event = suspect_seller(A.POLICE, accounts=[{"platform": "WEBSITE", "account": "myphamxachtay-qn.vn"}])
    publish_signed(rsettings, police_key, [event])
    event_id = str(event.meta.event_id)
    with SigningRouter(rsettings):
        wait_routed(rsettings, audit=1)
    whole, ict = copy_of(rsettings, MS, event_id), copy_of(rsettings, A.ICT, event_id)
    full, redacted = check(rsettings, whole), check(rsettings, ict)
    assert full.ok and full.owner == "police" and full.removed == (), full.describe()
    assert redacted.ok and redacted.removed == tuple(sorted(ICT_WITHHELD)), redacted.describe()
    assert decode_event(ict.value).record["seller"]["phone"] is None

    # consume shows each copy's verification; verify FILE checks the export offline, byte by byte.
    env = {"BUS389_BOOTSTRAP": rsettings.bootstrap, "BUS389_TOPIC_PREFIX": rsettings.topic_prefix}
    runner = CliRunner()
    consumed = runner.invoke(cli, ["consume", "--as", "ict", "--from-beginning", "--timeout", "3"], env=env)
    assert consumed.exit_code == 0, consumed.output
    (line,) = [json.loads(x) for x in consumed.stdout.splitlines() if x.startswith("{")]
    assert line["signature"]["status"] == "verified"
    assert line["signature"]["signer"] == "police"
    assert line["signature"]["removed"] == sorted(ICT_WITHHELD)
    registry_file = tmp_path / "keys.json"
    exported = runner.invoke(cli, ["security", "keys", "export", "--out", str(registry_file)], env=env)
    assert exported.exit_code == 0, exported.output
    export = tmp_path / "ict.jsonl"
    export.write_text(consumed.stdout, encoding="utf-8")
    offline = {"BUS389_BOOTSTRAP": "127.0.0.1:1", "BUS389_TOPIC_PREFIX": rsettings.topic_prefix}
    ok = runner.invoke(cli, ["verify", str(export), "--keys", str(registry_file)], env=offline)
    assert ok.exit_code == 0, ok.output
    assert "1 verified, 0 failed" in ok.output
    value = bytearray(base64.b64decode(line["value"]))
    value[value.index(b"Shopee")] ^= 0x20  # one byte of the summary: "shopee"
    line["value"] = base64.b64encode(bytes(value)).decode()
    export.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    bad = runner.invoke(cli, ["verify", str(export), "--keys", str(registry_file)], env=offline)
    assert bad.exit_code == 1
    assert "field_altered: field summary differs from what the sender signed" in bad.output


def test_rotation_keeps_old_signatures_and_a_revoked_key_is_refused(rsettings: Settings, keys: Any) -> None:
    old_key = keys("tax")
    before = suspect_seller(A.TAX)
    publish_signed(rsettings, old_key, [before])
    kept = old_key.with_name("old.pem")
    kept.write_bytes(old_key.read_bytes())
    kept.chmod(0o600)
    new_key = keys("tax")  # rotation: the old key signs nothing from now on
    after, stale = suspect_seller(A.TAX), suspect_seller(A.TAX)
    publish_signed(rsettings, new_key, [after])
    publish_signed(rsettings, kept, [stale])
    with SigningRouter(rsettings) as router:
        wait_routed(rsettings, audit=2, dlq=1)
        registry = read_registry(rsettings)
        (current,) = registry.current("tax", datetime.now(UTC))
        write_entries(rsettings, [registry.revoke(current.kid, datetime.now(UTC))])
        revoked = suspect_seller(A.TAX)
        publish_signed(rsettings, new_key, [revoked])
        wait_routed(rsettings, audit=2, dlq=2)
        router.stop()
    letters = dead_letters(rsettings)
    assert letters[str(stale.meta.event_id)][0] == "key_not_valid"
    assert "rotated out" in letters[str(stale.meta.event_id)][1]
    assert letters[str(revoked.meta.event_id)][0] == "key_not_valid"
    assert "revoked" in letters[str(revoked.meta.event_id)][1]
    # The event signed before the rotation still verifies in the recipient's inbox.
    assert check(rsettings, copy_of(rsettings, A.POLICE, str(before.meta.event_id))).ok


def test_foreign_keys_replays_unsigned_and_altered_events_go_to_the_dlq(
    rsettings: Settings, keys: Any
) -> None:
    from _router_support import send_raw

    tax_key, police_key = keys("tax"), keys("police")
    foreign = suspect_seller(A.TAX)
    publish_signed(rsettings, police_key, [foreign])  # tax's outbox, police's key
    unsigned = suspect_seller(A.TAX)
    publish_signed(rsettings, None, [unsigned])
    good = suspect_seller(A.TAX)
    publish_signed(rsettings, tax_key, [good])
    (original,) = [
        r
        for r in read_topic(rsettings, rsettings.topics.outbox(A.TAX))
        if headers(r)["ce_id"] == str(good.meta.event_id)
    ]
    # A signed event replayed into another agency's outbox, byte for byte.
    send_raw(
        rsettings, rsettings.topics.outbox(A.POLICE), original.value, list(original.headers), original.key
    )
    # The same event with one field changed between the sender and the router.
    decoded = decode_event(original.value)
    changed = dict(decoded.record, goods="Hàng hợp pháp")
    send_raw(
        rsettings,
        rsettings.topics.outbox(A.TAX),
        encode_value(changed, decoded.schema),
        list(original.headers),
        original.key,
    )
    with SigningRouter(rsettings):
        wait_routed(rsettings, audit=1, dlq=4)
    reasons = [headers(r)["bus389_dlq_reason"] for r in read_topic(rsettings, rsettings.topics.dlq)]
    details = [headers(r)["bus389_dlq_detail"] for r in read_topic(rsettings, rsettings.topics.dlq)]
    assert sorted(reasons) == ["field_altered", "unsigned", "wrong_key", "wrong_key"], details
    assert any("belongs to police, not tax" in d for d in details)
    assert any("belongs to tax, not police" in d for d in details)
    assert any("field goods differs" in d for d in details)
    audit = read_topic(rsettings, rsettings.topics.audit)
    assert [headers(r)["ce_id"] for r in audit] == [str(good.meta.event_id)]


def _tamper(outgoing: Outgoing, mode: str) -> Outgoing:
    decoded = decode_event(outgoing.value, outgoing.headers)
    h = dict(outgoing.headers)
    if mode == "rewrite":
        record = dict(decoded.record, seller=dict(decoded.record["seller"], name="Người vô can"))
    else:  # remove a field the policy does not redact, and say it was redacted
        record = redact(decoded.record, ["seller.tax_code"])
        sd = Disclosure.from_header(h[SD_HEADER]).without(["seller.tax_code"])
        h[SD_HEADER] = sd.to_header()
        h["bus389_redacted"] = b",".join(x for x in [h["bus389_redacted"], b"seller.tax_code"] if x)
    return replace(outgoing, value=encode_value(record, decoded.schema), headers=list(h.items()))


def _tampering_router(mode: str, victim: Agency) -> type[RecordRouter]:
    class TamperingRouter(RecordRouter):
        def route(self, raw: Any, **kwargs: Any) -> Routed:
            routed = super().route(raw, **kwargs)
            out = tuple(
                _tamper(o, mode) if o.topic == self.topics.inbox(victim) else o for o in routed.outgoing
            )
            return replace(routed, outgoing=out)

    return TamperingRouter


@pytest.mark.parametrize(
    ("mode", "reason", "detail"),
    [
        ("rewrite", "field_altered", "field seller.name differs from what the sender signed"),
        ("remove", "field_removed", "field seller.tax_code was removed but may not be redacted"),
    ],
)
def test_a_tampering_router_is_caught_by_the_recipient(
    rsettings: Settings, keys: Any, unique_group: Callable[..., str], mode: str, reason: str, detail: str
) -> None:
    key_file = keys("police")  # before the event: its time must fall in the key's validity
    event = suspect_seller(A.POLICE)
    publish_signed(rsettings, key_file, [event])
    with SigningRouter(rsettings, _tampering_router(mode, A.TAX)):
        wait_routed(rsettings, audit=1)
    event_id = str(event.meta.event_id)
    result = check(rsettings, copy_of(rsettings, A.TAX, event_id))
    assert result.reason == reason
    assert result.detail == detail
    assert check(rsettings, copy_of(rsettings, MS, event_id)).ok
    # The agencies' services verify what they read: the tax office's never uses the tampered copy.
    for agency, handled_ids, refused in ((A.TAX, [], [reason]), (MS, [event_id], [])):
        handled: list[str] = []
        poisoned: list[str] = []
        run_inbox_service(
            rsettings,
            agency=agency,
            group_id=unique_group(agency.value),
            handle=lambda message, out=handled: out.append(message.event_id),
            on_poison=lambda _raw, exc, out=poisoned: out.append(str(getattr(exc, "reason", ""))),
            max_idle_polls=3,
        )
        assert (handled, poisoned) == (handled_ids, refused), agency


def test_keys_cli_issues_rotates_revokes_and_never_prints_the_private_key(
    rsettings: Settings, tmp_path: Path
) -> None:
    env = {"BUS389_BOOTSTRAP": rsettings.bootstrap, "BUS389_TOPIC_PREFIX": rsettings.topic_prefix}
    runner = CliRunner()
    key_file = tmp_path / "customs.pem"
    first = runner.invoke(cli, ["security", "keys", "issue", "customs", "--key-file", str(key_file)], env=env)
    assert first.exit_code == 0, first.output
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE" not in first.output and "created" in first.output
    second = runner.invoke(
        cli, ["security", "keys", "issue", "customs", "--key-file", str(key_file)], env=env
    )
    assert second.exit_code == 0 and "rotated (replaces" in second.output
    entries = read_registry(rsettings).entries()
    assert len(entries) == 2 and sum(e.not_after is None for e in entries) == 1
    current = next(e for e in entries if e.not_after is None)
    revoked = runner.invoke(cli, ["security", "keys", "revoke", current.kid], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert read_registry(rsettings).get(current.kid).revoked_at is not None  # type: ignore[union-attr]
    unknown = runner.invoke(cli, ["security", "keys", "revoke", "0" * 32], env=env)
    assert unknown.exit_code == 1 and "no key" in unknown.output
    nobody = runner.invoke(cli, ["security", "keys", "issue", "mayor", "--key-file", str(key_file)], env=env)
    assert nobody.exit_code == 2 and "cannot issue a signing key for 'mayor'" in nobody.output


def _audit_verify(settings: Settings) -> Any:
    env = {"BUS389_BOOTSTRAP": settings.bootstrap, "BUS389_TOPIC_PREFIX": settings.topic_prefix}
    return CliRunner().invoke(cli, ["audit", "verify"], env=env)


def test_the_audit_chain_holds_and_edits_insertions_and_deleted_heads_are_named(
    rsettings: Settings, keys: Any
) -> None:
    from kafka import TopicPartition

    from bus389.kafka import make_admin, make_producer

    police_key, router_key = keys("police"), keys("router")
    events = [suspect_seller(A.POLICE) for _ in range(6)]
    publish_signed(rsettings, police_key, events)
    router = as_signer(rsettings, router_key).model_copy(
        update={
            "signing": rsettings.signing.model_copy(update={"key_file": router_key, "audit_head_every": 2})
        }
    )
    with SigningRouter(router):
        wait_routed(rsettings, audit=6)
    holds = _audit_verify(rsettings)
    assert holds.exit_code == 0, holds.output
    assert "the audit chain holds: 6 audit record(s)" in holds.output
    assert "0 signed head(s)" not in holds.output

    audit = read_topic(rsettings, rsettings.topics.audit)
    by_partition: dict[int, list[Any]] = {}
    for record in audit:
        by_partition.setdefault(record.partition, []).append(record)
    partition, records = max(by_partition.items(), key=lambda item: len(item[1]))
    producer = make_producer(rsettings)
    try:
        # Inserted: a forged copy of a record, appended with its chain headers.
        forged = records[0]
        producer.send(
            rsettings.topics.audit,
            key=forged.key,
            value=forged.value + b"",
            headers=list(forged.headers),
            partition=partition,
        ).get(timeout=30)
    finally:
        producer.close()
    inserted = _audit_verify(rsettings)
    assert inserted.exit_code == 1
    assert "inserted: chain" in inserted.output and "a second record with seq" in inserted.output

    # Edited: the partition deleted with DeleteRecords and written again with one value changed.
    tp = TopicPartition(rsettings.topics.audit, partition)
    with make_admin(rsettings) as admin:
        admin.delete_records({tp: -1})
    producer = make_producer(rsettings)
    try:
        for i, record in enumerate(records):
            value = record.value.replace(b"police", b"custom") if i == len(records) - 1 else record.value
            producer.send(
                tp.topic, key=record.key, value=value, headers=list(record.headers), partition=partition
            )
        producer.flush()
    finally:
        producer.close()
    edited = _audit_verify(rsettings)
    assert edited.exit_code == 1
    assert "altered: chain" in edited.output, edited.output

    # Deleted head: DeleteRecords up to the first record that is the head of a chain.
    with make_admin(rsettings) as admin:
        admin.delete_records({tp: -1})
    gone = _audit_verify(rsettings)
    assert gone.exit_code == 1
    assert f"head_removed: chain *, record {partition}/" in gone.output, gone.output


def test_an_evidence_bundle_exported_from_the_broker_verifies_offline_and_names_a_changed_byte(
    rsettings: Settings, keys: Any, tmp_path: Path
) -> None:
    police_key, router_key, ict_key = keys("police"), keys("router"), keys("ict")
    case = "QNG-389-2021-0099"
    website = [{"platform": "WEBSITE", "account": "myphamxachtay-qn.vn"}]  # ICT receives them (II.6)
    events = [
        suspect_seller(A.POLICE, meta={"case_ref": case}, accounts=website),
        suspect_seller(A.POLICE, accounts=website),
    ]
    publish_signed(rsettings, police_key, events)
    router = rsettings.model_copy(
        update={
            "signing": rsettings.signing.model_copy(update={"key_file": router_key, "audit_head_every": 1})
        }
    )
    with SigningRouter(router):
        wait_routed(rsettings, audit=2)
    env = {
        "BUS389_BOOTSTRAP": rsettings.bootstrap,
        "BUS389_TOPIC_PREFIX": rsettings.topic_prefix,
        "BUS389_SIGNING__KEY_FILE": str(ict_key),
    }
    out = tmp_path / "evidence.zip"
    runner = CliRunner()
    exported = runner.invoke(
        cli, ["evidence", "export", "--case", case, "--as", "ict", "--out", str(out)], env=env
    )
    assert exported.exit_code == 0, exported.output
    assert f"1 event(s) and 1 audit record(s) of case {case}" in exported.output
    assert out.stat().st_mode & 0o777 == 0o600  # it holds personal data
    offline = {"BUS389_BOOTSTRAP": "127.0.0.1:1", "BUS389_TOPIC_PREFIX": "elsewhere"}
    holds = runner.invoke(cli, ["evidence", "verify", str(out)], env=offline)
    assert holds.exit_code == 0, holds.output
    assert "removed by redaction: seller.address, seller.national_id, seller.phone" in holds.output
    assert "manifest: signed by ict" in holds.output
    assert f"the evidence of case {case} received by ict holds" in holds.output
    data = bytearray(out.read_bytes())
    data[data.index(case.encode()) + 4] ^= 0x01
    out.write_bytes(bytes(data))
    broken = runner.invoke(cli, ["evidence", "verify", str(out)], env=offline)
    assert broken.exit_code == 1
    assert "FAILS: bundle.json: its CRC-32 does not match (its bytes were changed)" in broken.output
    assert "FAILS: bundle.json: its SHA-256 is not the one in manifest.json" in broken.output


def test_signed_end_to_end_the_market_surveillance_sees_the_ict_result_verified(
    rsettings: Settings, keys: Any, tmp_path: Path
) -> None:
    """The demo's flow, signed: a block request from the market surveillance, auto-approved by the ICT
    service (which signs its result), routed back; the requester's consume shows it verified."""
    import threading

    from _router_support import domain_block_request

    from bus389.consumers.ict.service import run_ict_service
    from bus389.runtime.stop import StopFlag
    from bus389.settings import IctSettings, StoreSettings

    ms_key, ict_key = keys("market_surveillance"), keys("ict")
    request = domain_block_request(MS)
    publish_signed(rsettings, ms_key, [request])
    ict = as_signer(rsettings, ict_key).model_copy(
        update={
            "store": StoreSettings(ict_url=f"sqlite:///{tmp_path / 'ict.sqlite3'}"),
            "ict": IctSettings(output_dir=tmp_path / "blocklist", auto_approve_senders=(MS,)),
        }
    )
    stop = StopFlag()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            run_ict_service(ict, stop=stop, poll_timeout_ms=200)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    service = threading.Thread(target=serve, daemon=True)
    with SigningRouter(rsettings):
        service.start()
        try:
            wait_routed(rsettings, audit=2)  # the request, then the ICT's result
        finally:
            stop.set()
            service.join(timeout=60)
    assert not errors, errors
    env = {"BUS389_BOOTSTRAP": rsettings.bootstrap, "BUS389_TOPIC_PREFIX": rsettings.topic_prefix}
    consumed = CliRunner().invoke(
        cli, ["consume", "--as", "market_surveillance", "--from-beginning", "--timeout", "3"], env=env
    )
    assert consumed.exit_code == 0, consumed.output
    lines = [json.loads(x) for x in consumed.stdout.splitlines() if x.startswith("{")]
    (result,) = [x for x in lines if x["event_type"] == "domain_block_result"]
    assert result["event"]["meta"]["in_reply_to"] == str(request.meta.event_id)
    assert result["signature"]["status"] == "verified", result["signature"]
    assert result["signature"]["signer"] == "ict"
