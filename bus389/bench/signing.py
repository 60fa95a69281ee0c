"""Signing benchmark: what signed events cost, same run, same records (issue 13's goal: each ≥ 0.75).

Lines (events/s, ratio signed ÷ unsigned):

- publish with signatures ÷ without: an open :class:`~bus389.producers.publisher.Publisher` with the
  police's signing key against one without, ``prepare_events`` + ``publish`` of the same suspect-seller
  records in transactions of 500 (signing decodes each encoded value, salts and hashes every leaf
  field, and signs once: an Ed25519 signature per event);
- router verifying ÷ not: :meth:`~bus389.consumers.router.records.RecordRouter.route` on the same
  signed outbox records with and without the verifier (no Kafka I/O, so the ratio is the CPU share:
  over a broker the share is smaller).

Where the time goes (suspect_seller, 30 leaf fields, one core of the shared dev machine): signing ≈ 170 µs
an event (decode the value 20, walk the leaves 18, 30 salted SHA-256 digests 32, Ed25519 36, the
``bus389_sd`` header the rest), verifying ≈ 250 µs (parse the header, 30 path checks, the leaves and
digests, Ed25519 verify 50): Python work per field, against ≈ 230 µs to validate, encode and publish an
unsigned event. The header adds ≈ 2.6 KB to a ≈ 0.6 KB value, which the producer and broker carry too.
Measured ratios (``--quick``, 2026-12-04): publish 0.33, router 0.34, below the 0.75 goal. Next steps:
digest only the fields the policy can redact plus one digest of the rest (30 → 7 digests), and
truncated 16-byte digests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bus389.agencies import Agency
from bus389.bench.context import BenchContext
from bus389.bench.harness import Goal, Line, RoundTimer, interleaved, median, rate
from bus389.bench.workload import input_records
from bus389.settings import Settings

__all__ = ["NAME", "run"]

NAME = "signing"
CHUNK = 500
GOAL = Goal(">=", 0.75, text="≥ 0.75 of unsigned")


@dataclass(frozen=True)
class _Raw:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def _publish_line(ctx: BenchContext, settings: Settings, key_file: Path) -> Line:
    from bus389.producers.publisher import Publisher, prepare_events
    from bus389.producers.readers import SourceRecord

    count = ctx.sizes.publish_events
    inputs = [
        (t, d)
        for t, d in input_records(count * 12)
        if t.event_type == "suspect_seller" and t.agency == Agency.POLICE
    ][:count]
    records = [SourceRecord(i + 1, data) for i, (_, data) in enumerate(inputs)]
    signed_settings = settings.model_copy(
        update={"signing": settings.signing.model_copy(update={"key_file": key_file})}
    )
    signed, unsigned = Publisher(signed_settings, Agency.POLICE), Publisher(settings, Agency.POLICE)
    signed.open()
    unsigned.open()

    def round_of(publisher: Publisher) -> float:
        sent = 0
        with RoundTimer() as timer:
            events = prepare_events("suspect_seller", Agency.POLICE, records, source="bench")
            for start in range(0, len(events), CHUNK):
                sent += publisher.publish(events[start : start + CHUNK]).count
        return rate(sent, timer.seconds)

    try:
        figures = interleaved(
            {"bus389": lambda: round_of(signed), "baseline": lambda: round_of(unsigned)},
            rounds=ctx.sizes.rounds,
        )
    finally:
        signed.close()
        unsigned.close()
    return Line(
        benchmark=NAME,
        name=f"publish with signatures ÷ without ({CHUNK}-event transactions)",
        value=median(figures["bus389"]),
        baseline=median(figures["baseline"]),
        baseline_name="unsigned",
        goal=GOAL,
        rounds=figures,
        note="prepare_events + Publisher.publish, police key (Ed25519, salted digest per field)",
        extra={"events": count},
    )


def _route_line(ctx: BenchContext, settings: Settings, key_file: Path) -> Line:
    from bus389.codec import encode_event
    from bus389.consumers.router.records import RecordRouter
    from bus389.events import build_event
    from bus389.routing.policy import load_policy
    from bus389.signing.events import EventSigner, RouterVerifier
    from bus389.signing.keys import KeyEntry, KeyRegistry, load_signing_key

    key = load_signing_key(key_file)
    registry = KeyRegistry(
        [KeyEntry(key.kid, Agency.POLICE.value, key.public_raw, datetime(2000, 1, 1, tzinfo=UTC))]
    )
    signer = EventSigner(key)
    count = ctx.sizes.publish_events
    inputs = [
        (t, d)
        for t, d in input_records(count * 12)
        if t.event_type == "suspect_seller" and t.agency == Agency.POLICE
    ][:count]
    topic = settings.topics.outbox(Agency.POLICE)
    raws: list[Any] = []
    for offset, (_, data) in enumerate(inputs):
        encoded = encode_event(build_event("suspect_seller", Agency.POLICE, data))
        headers = signer.headers(encoded.value, encoded.headers)
        raws.append(_Raw(topic, 0, offset, encoded.key, encoded.value, headers))
    policy = load_policy(settings.router.policy_path)
    verifying = RecordRouter(settings.topics, policy, verifier=RouterVerifier(lambda: registry, require=True))
    plain = RecordRouter(settings.topics, policy)

    def round_of(router: RecordRouter, records: Sequence[Any]) -> float:
        now = datetime.now(UTC)
        with RoundTimer() as timer:
            for raw in records:
                routed = router.route(raw, received_at=now)
                if not routed.routed:
                    raise RuntimeError(
                        f"a benchmark record was not routed: {routed.dlq_reason} {routed.dlq_detail}"
                    )
        return rate(len(records), timer.seconds)

    figures = interleaved(
        {"bus389": lambda: round_of(verifying, raws), "baseline": lambda: round_of(plain, raws)},
        rounds=ctx.sizes.rounds,
    )
    return Line(
        benchmark=NAME,
        name="router verifying ÷ not (RecordRouter.route, no Kafka I/O)",
        value=median(figures["bus389"]),
        baseline=median(figures["baseline"]),
        baseline_name="not verifying",
        goal=GOAL,
        rounds=figures,
        note="the CPU share of verification; over a broker the ratio is higher",
        extra={"events": count},
    )


def run(ctx: BenchContext) -> list[Line]:
    from bus389.signing.keys import generate_key_file

    with tempfile.TemporaryDirectory(prefix="bus389-bench-") as tmp, ctx.topics() as settings:
        key_file = Path(tmp) / "police.signing.pem"
        generate_key_file(key_file)
        return [_publish_line(ctx, settings, key_file), _route_line(ctx, settings, key_file)]
