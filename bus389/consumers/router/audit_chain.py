"""The hash chain of the audit trail: each audit record linked to the previous one of its chain, heads signed.

A chain is the audit records of the events routed from one outbox partition (``<outbox>/<partition>``):
one router at a time owns that partition, so one writer at a time extends the chain, in the origin's
offset order. The chain travels in Kafka headers, so the audit record's Avro value (contract, v1) is
unchanged and its readers see nothing new:

- ``bus389_chain``: the chain id (the origin ``topic/partition``); ``bus389_chain_seq``: 0, 1, 2...;
- ``bus389_chain_prev``: the link hash of the record before (64 zeros for seq 0);
- ``bus389_chain_hash``: SHA-256 of the chain id, seq, previous hash, and the record's key and value;
- now and then (every ``audit_head_every`` records, or the first after ``audit_head_interval_s``) the
  router signs the head with its own key: ``bus389_chain_sig`` over (chain, seq, hash, signed_at), with
  ``bus389_chain_kid`` and ``bus389_chain_signed_at``.

:func:`verify_chains` re-computes every link and reports the first record altered, inserted,
reordered or removed, including records deleted from a partition's head (the audit topic is kept
forever, so a chain that does not start at seq 0 lost its head); a signed head proves the chain up to
it was not rewritten whole by someone who could recompute the hashes but not sign as the router.

Retries: an aborted transaction's records never become visible, and the router routes them again; a
record routed again (same origin offset or earlier) replaces every link from that offset on, so the
chain continues from what was committed. The heads are read from the audit topic when a chain is
first met (``load_heads``); after a rebalance the service must call :meth:`AuditChain.forget` so that
a partition another router advanced meanwhile is read again.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bus389.agencies import ROUTER
from bus389.signing.keys import KeyRegistry, SigningKey

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = [
    "CHAIN_HEADERS",
    "AuditChain",
    "ChainFinding",
    "ChainReport",
    "Head",
    "HeadTracker",
    "heads_of",
    "printable",
    "link_hash",
    "verify_audit_topic",
    "verify_chains",
]

GENESIS = "0" * 64
CHAIN, SEQ, PREV, HASH = "bus389_chain", "bus389_chain_seq", "bus389_chain_prev", "bus389_chain_hash"
SIG, KID, SIGNED_AT = "bus389_chain_sig", "bus389_chain_kid", "bus389_chain_signed_at"
CHAIN_HEADERS = (CHAIN, SEQ, PREV, HASH, SIG, KID, SIGNED_AT)


def link_hash(chain: str, seq: int, prev: str, key: bytes | None, value: bytes | None) -> str:
    """The link hash of one audit record (hex)."""
    h = hashlib.sha256(b"bus389-audit/1\n")
    for part in (chain.encode("utf-8"), str(seq).encode(), prev.encode("ascii")):
        h.update(len(part).to_bytes(4, "big") + part)
    h.update(hashlib.sha256(key or b"").digest())
    h.update(hashlib.sha256(value or b"").digest())
    return h.hexdigest()


def head_message(chain: str, seq: int, hash_: str, signed_at: str) -> bytes:
    return f"bus389-audit-head/1\n{chain}\n{seq}\n{hash_}\n{signed_at}".encode()


@dataclass(frozen=True)
class Head:
    """The last link of a chain: its seq and hash (and, in the router, the origin offset it records)."""

    seq: int
    hash: str
    origin_offset: int = -1


@dataclass
class _State:
    links: list[Head]
    signed_seq: int = -1
    signed_when: float = 0.0


class AuditChain:
    """The router's side: the chain headers of each new audit record (no Kafka I/O but ``load_heads``)."""

    def __init__(
        self,
        load_heads: Callable[[], Mapping[str, Head]],
        *,
        key: SigningKey | None = None,
        head_every: int = 100,
        head_interval_s: float = 30.0,
        clock: Callable[[], float] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        import time

        self._load_heads = load_heads
        self._heads: dict[str, Head] | None = None
        self._chains: dict[str, _State] = {}
        self.key = key
        self.head_every = head_every
        self.head_interval_s = head_interval_s
        self._clock = clock or time.monotonic
        self._now = now or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(cls, settings: Settings, *, heads: Mapping[str, Head] | None = None) -> AuditChain:
        """The router's chain: heads read from the audit topic, heads signed with the router's key
        (``signing.key_file``, or ``router.signing.pem`` in ``signing.key_dir``; issued by ``bus389
        security issue router``) when one is set."""
        from bus389.signing.events import signing_key_file
        from bus389.signing.keys import load_signing_key
        from bus389.signing.registry_topic import read_to_end

        path = signing_key_file(settings, ROUTER)
        chain = cls(
            lambda: heads_of(read_to_end(settings, settings.topics.audit)),
            key=load_signing_key(path) if path is not None else None,
            head_every=settings.signing.audit_head_every,
            head_interval_s=settings.signing.audit_head_interval_s,
        )
        if heads is not None:  # read with the rest of the trail at start-up: no second pass
            chain._heads = dict(heads)
        return chain

    @property
    def loaded(self) -> bool:
        """Are the heads known (else the next record, or :meth:`load`, reads them from the audit topic)?"""
        return self._heads is not None

    def load(self) -> None:
        """Read every chain's head now (the service does this between batches, retrying on failure)."""
        self._heads = dict(self._load_heads())
        self._chains.clear()

    def forget(self) -> None:
        """Drop what is known of every chain: the heads are read again (:meth:`load`, or the next record).

        After a rebalance, a rejoin or a failed batch: a partition this router gets (back) may have been
        advanced by another router meanwhile, and only the committed audit trail says how far."""
        self._heads = None
        self._chains.clear()

    def _state(self, chain: str) -> _State:
        state = self._chains.get(chain)
        if state is None:
            if self._heads is None:
                self._heads = dict(self._load_heads())
            head = self._heads.get(chain)
            state = _State([head] if head is not None else [])
            self._chains[chain] = state
        return state

    def link(
        self, chain: str, origin_offset: int, key: bytes | None, value: bytes
    ) -> list[tuple[str, bytes]]:
        """The chain headers of the audit record of the event at ``origin_offset`` of ``chain``."""
        state = self._state(chain)
        # Routed again after an abort: the links from this offset on were never committed.
        while state.links and state.links[-1].origin_offset >= origin_offset:
            state.links.pop()
        prev = state.links[-1] if state.links else None
        seq = prev.seq + 1 if prev else 0
        prev_hash = prev.hash if prev else GENESIS
        digest = link_hash(chain, seq, prev_hash, key, value)
        state.links.append(Head(seq, digest, origin_offset))
        del state.links[:-10_000]  # enough to step back over any uncommitted batch
        headers = [
            (CHAIN, chain.encode("utf-8")),
            (SEQ, str(seq).encode()),
            (PREV, prev_hash.encode()),
            (HASH, digest.encode()),
        ]
        if self.key is not None and self._head_due(state, seq):
            signed_at = self._now().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            signature = self.key.sign(head_message(chain, seq, digest, signed_at))
            headers += [
                (SIG, base64.urlsafe_b64encode(signature).rstrip(b"=")),
                (KID, self.key.kid.encode()),
                (SIGNED_AT, signed_at.encode()),
            ]
            state.signed_seq, state.signed_when = seq, self._clock()
        return headers

    def _head_due(self, state: _State, seq: int) -> bool:
        if seq <= state.signed_seq:
            return True  # routed again: sign again what was signed in the aborted attempt
        return (
            seq - state.signed_seq >= self.head_every
            or self._clock() - state.signed_when >= self.head_interval_s
        )


@dataclass(frozen=True)
class ChainFinding:
    """One problem of the audit trail, at the record where it shows (``partition/offset``)."""

    kind: str
    """``altered``, ``inserted``, ``reordered``, ``removed``, ``head_removed`` or ``bad_head_signature``."""
    chain: str
    where: str
    detail: str

    def describe(self) -> str:
        return f"{self.kind}: chain {self.chain}, record {self.where}: {self.detail}"


@dataclass
class ChainReport:
    """What :func:`verify_chains` found: the chains, records and signed heads checked, and the problems."""

    chains: int = 0
    records: int = 0
    signed_heads: int = 0
    unchained: int = 0
    """Records before the first linked one of their partition (written before chaining was on)."""
    findings: list[ChainFinding] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not self.findings


def _text(headers: Mapping[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("utf-8", errors="replace")


def printable(text: str) -> str:
    """``text`` with every control or other non-printable character escaped (output is data)."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def verify_chains(
    records: Iterable[Any],
    registry: KeyRegistry | None,
    *,
    starts: Mapping[int, int] | None = None,
    segment: bool = False,
) -> ChainReport:
    """Check the audit records (consumer records, each partition in offset order) link by link.

    Reports, per chain, the first problem found; a record with no chain headers is ``inserted``.
    With ``registry``, each signed head must verify with a key of ``router`` valid when it signed.
    ``starts``: each audit partition's first offset; the audit topic is kept forever, so a partition
    that does not start at 0 lost records to DeleteRecords (even a chain that vanished whole).
    ``segment``: the records are a contiguous part of each chain (an evidence bundle): each chain starts
    at its first record's seq and previous hash; a signed head after it ties it to the router.
    """
    report = ChainReport()
    for partition, start in sorted((starts or {}).items()):
        if start > 0:
            report.findings.append(
                ChainFinding(
                    "head_removed",
                    "*",
                    f"{partition}/{start}",
                    f"offsets 0..{start - 1} of the partition deleted",
                )
            )
    by_chain: dict[str, list[tuple[int, int, int, Mapping[str, bytes], Any]]] = {}
    last_seq_in_partition: dict[tuple[str, int], tuple[int, str]] = {}
    chained_partitions: set[int] = set()
    for raw in records:
        report.records += 1
        headers = {str(k): bytes(v or b"") for k, v in (raw.headers or ())}
        where = f"{raw.partition}/{raw.offset}"
        chain, seq_text = _text(headers, CHAIN), _text(headers, SEQ)
        if chain is None or seq_text is None or not seq_text.isdigit():
            if raw.partition in chained_partitions:
                report.findings.append(ChainFinding("inserted", "?", where, "a record with no chain link"))
            else:
                report.unchained += 1  # written before the router linked its audit records
            continue
        chained_partitions.add(raw.partition)
        seq = int(seq_text)
        key = (chain, raw.partition)
        before = last_seq_in_partition.get(key)
        if before is not None and before[0] > seq:
            report.findings.append(
                ChainFinding(
                    "reordered",
                    printable(chain),
                    where,
                    f"seq {seq} comes after seq {before[0]} (record {before[1]})",
                )
            )
        last_seq_in_partition[key] = (seq, where)
        by_chain.setdefault(chain, []).append((seq, raw.partition, raw.offset, headers, raw))
    for chain, items in sorted(by_chain.items()):
        report.chains += 1
        ordered = sorted(items, key=lambda i: (i[0], i[1], i[2]))
        finding = _check_chain(chain, ordered, registry, report, segment=segment)
        if finding is not None:
            report.findings.append(finding)
    return report


def verify_audit_topic(settings: Settings, registry: KeyRegistry | None = None) -> ChainReport:
    """:func:`verify_chains` on the whole audit topic of ``settings`` (``bus389 audit verify``, the end of
    a chaos run), with each partition's first offset so that records deleted from a head show; the key
    registry is ``registry``, else the one every service reads (``signing.registry_file`` or the topic)."""
    from bus389.signing.registry_topic import first_offsets, load_registry, read_to_end

    topic = settings.topics.audit
    return verify_chains(
        read_to_end(settings, topic),
        registry if registry is not None else load_registry(settings),
        starts=first_offsets(settings, topic),
    )


def _check_chain(
    chain: str,
    items: list[tuple[int, int, int, Mapping[str, bytes], Any]],
    registry: KeyRegistry | None,
    report: ChainReport,
    *,
    segment: bool = False,
) -> ChainFinding | None:
    shown = printable(chain)
    expected_seq, prev = 0, GENESIS
    if segment and items:
        expected_seq, prev = items[0][0], _text(items[0][3], PREV) or GENESIS
    for seq, partition, offset, headers, raw in items:
        where = f"{partition}/{offset}"
        if seq < expected_seq:
            return ChainFinding("inserted", shown, where, f"a second record with seq {seq}")
        if seq > expected_seq:
            kind = "head_removed" if expected_seq == 0 else "removed"
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
            return ChainFinding(kind, shown, where, f"seq {missing} missing before this record (seq {seq})")
        said_prev, said_hash = _text(headers, PREV), _text(headers, HASH)
        if said_prev != prev:
            return ChainFinding("inserted", shown, where, f"seq {seq} does not link to the record before it")
        digest = link_hash(chain, seq, prev, raw.key, raw.value)
        if said_hash != digest:
            return ChainFinding(
                "altered", shown, where, f"seq {seq}: its bytes no longer match its link hash"
            )
        if SIG in headers:
            problem = _check_head(chain, seq, digest, headers, registry)
            if problem is not None:
                return ChainFinding("bad_head_signature", shown, where, problem)
            report.signed_heads += 1
        expected_seq, prev = seq + 1, digest
    return None


def _check_head(
    chain: str, seq: int, digest: str, headers: Mapping[str, bytes], registry: KeyRegistry | None
) -> str | None:
    if registry is None:
        return None
    kid, signed_at = _text(headers, KID) or "", _text(headers, SIGNED_AT) or ""
    entry = registry.get(kid)
    if entry is None:
        return f"head seq {seq} is signed with unknown key {printable(kid)!r}"
    if entry.owner != ROUTER:
        return f"head seq {seq} is signed with a key of {entry.owner}, not the router's"
    try:
        moment = datetime.fromisoformat(signed_at.replace("Z", "+00:00"))
        signature = base64.urlsafe_b64decode(headers[SIG] + b"=" * (-len(headers[SIG]) % 4))
    except ValueError:
        return f"head seq {seq}: malformed signature headers"
    problem = entry.problem_at(moment)
    if problem is not None:
        return f"head seq {seq}: {problem}"
    if not entry.verify(signature, head_message(chain, seq, digest, signed_at)):
        return f"head seq {seq}: the router's signature does not verify"
    return None


class HeadTracker:
    """The head of every chain among the audit records it is shown (the highest seq seen), so that the
    pass that rebuilds the reply index also finds the heads (:meth:`see` as its per-record hook)."""

    def __init__(self) -> None:
        self.heads: dict[str, Head] = {}

    def see(self, raw: Any) -> None:
        headers = {str(k): bytes(v or b"") for k, v in (raw.headers or ())}
        chain, seq, digest = _text(headers, CHAIN), _text(headers, SEQ), _text(headers, HASH)
        if chain is None or seq is None or digest is None or not seq.isdigit():
            return
        if chain not in self.heads or int(seq) > self.heads[chain].seq:
            self.heads[chain] = Head(int(seq), digest)


def heads_of(records: Iterable[Any]) -> dict[str, Head]:
    """The head of every chain in ``records`` (the router's ``load_heads``: the highest seq seen)."""
    tracker = HeadTracker()
    for raw in records:
        tracker.see(raw)
    return tracker.heads
