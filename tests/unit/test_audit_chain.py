"""The audit hash chain: links survive retries, every edit, insertion, reordering and removal is named."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from bus389.consumers.router.audit_chain import KID, SIG, SIGNED_AT, AuditChain, Head, heads_of, verify_chains
from bus389.signing.keys import KeyEntry, KeyRegistry, generate_key_file

T0 = datetime(2021, 1, 1, tzinfo=UTC)
SIGNED_HEAD = (SIG, KID, SIGNED_AT)


@dataclass(frozen=True)
class Rec:
    """An audit record as a consumer returns it (the fields the chain reads)."""

    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def _trail(chain: AuditChain, n: int, *, partition_of=lambda i: i % 2) -> list[Rec]:
    """``n`` audit records of the chain ``outbox.tax/0``, spread over two audit partitions."""
    recs: list[Rec] = []
    next_offset = {0: 0, 1: 0}
    for i in range(n):
        key, value = f"event-{i}".encode(), f"audit record {i}".encode()
        headers = chain.link("t.outbox.tax/0", i * 2, key, value)
        p = partition_of(i)
        recs.append(Rec(p, next_offset[p], key, value, headers))
        next_offset[p] += 1
    return recs


def _signed_chain(tmp_path: Path, **kwargs) -> tuple[AuditChain, KeyRegistry]:
    key = generate_key_file(tmp_path / "router.pem")
    registry = KeyRegistry([KeyEntry(key.kid, "router", key.public_raw, T0)])
    return AuditChain(dict, key=key, head_every=3, **kwargs), registry


def test_an_untouched_trail_holds_and_heads_are_signed(tmp_path: Path) -> None:
    chain, registry = _signed_chain(tmp_path)
    report = verify_chains(_trail(chain, 10), registry)
    assert report.holds, [f.describe() for f in report.findings]
    assert (report.records, report.chains) == (10, 1)
    assert report.signed_heads >= 3


def test_a_record_routed_again_after_an_abort_replaces_its_links(tmp_path: Path) -> None:
    chain, registry = _signed_chain(tmp_path)
    committed = _trail(chain, 3)
    chain.link("t.outbox.tax/0", 6, b"aborted", b"never committed")  # an aborted attempt
    chain.link("t.outbox.tax/0", 8, b"aborted", b"never committed")
    again = chain.link("t.outbox.tax/0", 6, b"event-3", b"audit record 3")
    trail = [*committed, Rec(1, 9, b"event-3", b"audit record 3", again)]
    assert verify_chains(trail, registry).holds


def test_heads_are_read_back_and_the_chain_continues(tmp_path: Path) -> None:
    first, registry = _signed_chain(tmp_path)
    trail = _trail(first, 4)
    later = AuditChain(lambda: heads_of(trail), key=first.key)
    headers = later.link("t.outbox.tax/0", 100, b"event-4", b"audit record 4")
    assert dict(headers)["bus389_chain_seq"] == b"4"
    assert verify_chains([*trail, Rec(0, 50, b"event-4", b"audit record 4", headers)], registry).holds
    assert heads_of(trail)["t.outbox.tax/0"] == Head(3, dict(trail[3].headers)["bus389_chain_hash"].decode())


def _kinds(trail: list[Rec], registry: KeyRegistry | None = None) -> list[tuple[str, str]]:
    return [(f.kind, f.where) for f in verify_chains(trail, registry).findings]


def test_an_altered_record_is_named(tmp_path: Path) -> None:
    chain, registry = _signed_chain(tmp_path)
    trail = _trail(chain, 6)
    trail[4] = replace(trail[4], value=trail[4].value.replace(b"4", b"5"))
    assert _kinds(trail, registry) == [("altered", "0/2")]


def test_a_removed_record_and_a_deleted_head_are_named(tmp_path: Path) -> None:
    chain, registry = _signed_chain(tmp_path)
    trail = _trail(chain, 6)
    assert _kinds([r for i, r in enumerate(trail) if i != 3], registry) == [("removed", "0/2")]
    # DeleteRecords on partition 0 up to offset 1: seq 0 is gone.
    assert _kinds(trail[1:], registry) == [("head_removed", "1/0")]


def test_inserted_and_reordered_records_are_named(tmp_path: Path) -> None:
    chain, registry = _signed_chain(tmp_path)
    trail = _trail(chain, 6)
    forged = replace(trail[2], offset=3, value=b"forged")
    assert ("inserted", "0/3") in _kinds([*trail, forged], registry)
    assert _kinds([*trail, Rec(0, 9, b"x", b"no chain link", [])], registry) == [("inserted", "0/9")]
    swapped = list(trail)
    swapped[0], swapped[2] = replace(trail[2], offset=0), replace(trail[0], offset=1)
    assert ("reordered", "0/1") in _kinds(swapped, registry)


def test_a_chain_rewritten_whole_is_caught_by_its_signed_heads(tmp_path: Path) -> None:
    chain, registry = _signed_chain(tmp_path)
    trail = _trail(chain, 6)
    # Someone with admin rights recomputes every hash after changing record 1, but cannot sign.
    forger = AuditChain(dict)
    rewritten = []
    for i, rec in enumerate(trail):
        value = b"rewritten" if i == 1 else rec.value
        headers = dict(forger.link("t.outbox.tax/0", i * 2, rec.key, value))
        headers.update({k: v for k, v in rec.headers if k in SIGNED_HEAD})  # the router's signatures kept
        rewritten.append(replace(rec, value=value, headers=list(headers.items())))
    assert [k for k, _ in _kinds(rewritten, registry)] == ["bad_head_signature"]
    # The same heads checked against another agency's key are refused too.
    wrong = KeyRegistry([replace(e, owner="police") for e in registry.entries()])
    assert [k for k, _ in _kinds(trail, wrong)] == ["bad_head_signature"]


def test_records_written_before_chaining_are_counted_not_flagged(tmp_path: Path) -> None:
    chain, registry = _signed_chain(tmp_path)
    old = [Rec(0, 0, b"a", b"legacy", []), Rec(1, 0, b"b", b"legacy", [])]
    trail = [*old, *(replace(r, offset=r.offset + 1) for r in _trail(chain, 4))]
    report = verify_chains(trail, registry)
    assert report.holds and report.unchained == 2


def test_a_partition_that_does_not_start_at_offset_0_lost_its_head(tmp_path: Path) -> None:
    chain, registry = _signed_chain(tmp_path)
    report = verify_chains(_trail(chain, 4), registry, starts={0: 0, 1: 7})
    assert [f.describe() for f in report.findings] == [
        "head_removed: chain *, record 1/7: offsets 0..6 of the partition deleted"
    ]


def test_after_forget_a_chain_continues_from_what_another_router_committed(tmp_path: Path) -> None:
    """A rebalance: the partition went to another router, which extended the chain; when it comes
    back, the first router must link to that router's last record, not to its own stale head."""
    mine, registry = _signed_chain(tmp_path)
    committed = _trail(mine, 3)  # offsets 0, 2, 4 routed here
    other = AuditChain(lambda: heads_of(committed), key=mine.key)
    theirs = other.link("t.outbox.tax/0", 6, b"event-3", b"audit record 3")  # routed by the other
    trail = [*committed, Rec(0, 10, b"event-3", b"audit record 3", theirs)]
    mine._load_heads = lambda: heads_of(trail)  # what the committed audit trail now holds
    mine.forget()
    assert not mine.loaded
    mine.load()
    back = mine.link("t.outbox.tax/0", 8, b"event-4", b"audit record 4")
    assert dict(back)["bus389_chain_seq"] == b"4"
    assert verify_chains([*trail, Rec(1, 11, b"event-4", b"audit record 4", back)], registry).holds


def test_without_forget_a_stale_head_breaks_the_chain_and_verify_says_so(tmp_path: Path) -> None:
    """Why the service forgets on a rebalance: linking to a stale head is caught as an insertion."""
    mine, registry = _signed_chain(tmp_path)
    committed = _trail(mine, 3)
    other = AuditChain(lambda: heads_of(committed), key=mine.key)
    theirs = other.link("t.outbox.tax/0", 6, b"event-3", b"audit record 3")
    stale = mine.link("t.outbox.tax/0", 8, b"event-4", b"audit record 4")
    trail = [
        *committed,
        Rec(0, 10, b"event-3", b"audit record 3", theirs),
        Rec(1, 11, b"event-4", b"x", stale),
    ]
    assert [f.kind for f in verify_chains(trail, registry).findings] == ["inserted"]
