"""Publish benchmark: bus389's publishing path against a bare kafka-python producer, same bytes.

Lines (events/s, ratio bus389 ÷ bare kafka-python):

- publish a file: :func:`bus389.producers.publisher.publish_file` on N suspect-seller records (what
  ``bus389 publish`` does after reading the file: validate every record with pydantic, encode, check
  the outbox exists, open an idempotent ``acks=all`` transactional producer, send, wait for every
  acknowledgement, commit, close) against a bare transactional producer opened, fed the same
  pre-encoded keys, values and headers, flushed, committed and closed;
- publish, steady state: an open :class:`~bus389.producers.publisher.Publisher` given every event type in
  transactions of 500 events (validation and encoding included) against the same bare producer,
  already open, sending the pre-encoded events in transactions of 500.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from bus389.agencies import Agency
from bus389.bench.context import BenchContext
from bus389.bench.harness import Line, RoundTimer, interleaved, median, rate
from bus389.bench.loops import bare_producer
from bus389.bench.workload import input_records
from bus389.codec import Encoded, encode_event
from bus389.events import build_event
from bus389.settings import Settings

__all__ = ["NAME", "run"]

NAME = "publish"
STEADY_CHUNK = 500


def _bare_transaction(producer: Any, topic: str, encoded: Sequence[Encoded]) -> None:
    producer.begin_transaction()
    futures = [producer.send(topic, key=e.key, value=e.value, headers=e.headers) for e in encoded]
    producer.flush()
    for future in futures:
        future.get(timeout=60)
    producer.commit_transaction()


def _file_lines(ctx: BenchContext, settings: Settings) -> Line:
    from bus389.producers.publisher import publish_file
    from bus389.producers.readers import SourceRecord

    count = ctx.sizes.publish_events
    inputs = [(t, d) for t, d in input_records(count * 4) if t.event_type == "suspect_seller"][:count]
    records = [SourceRecord(i + 1, data) for i, (_, data) in enumerate(inputs)]
    encoded = [encode_event(build_event(t.event_type, t.agency, d)) for t, d in inputs]
    topic = settings.topics.outbox(Agency.POLICE)

    def bus389_round() -> float:
        with RoundTimer() as timer:
            report = publish_file(settings, "suspect_seller", Agency.POLICE, records, source="bench")
        return rate(report.count, timer.seconds)

    def bare_round() -> float:
        with RoundTimer() as timer:
            producer = bare_producer(
                settings, transactional_id=f"{settings.topic_prefix}.bare.{uuid.uuid4()}"
            )
            producer.init_transactions()
            _bare_transaction(producer, topic, encoded)
            producer.close(timeout=30)
        return rate(len(encoded), timer.seconds)

    figures = interleaved({"bus389": bus389_round, "baseline": bare_round}, rounds=ctx.sizes.rounds)
    return Line(
        benchmark=NAME,
        name=f"publish a file ({count} suspect_seller, 1 transaction)",
        value=median(figures["bus389"]),
        baseline=median(figures["baseline"]),
        baseline_name="bare kafka-python",
        rounds=figures,
        note="bus389: publish_file (validate, encode, topic check, open, send, acks, commit, close)",
        extra={"events": count},
    )


def _steady_line(ctx: BenchContext, settings: Settings) -> Line:
    from bus389.producers.publisher import Publisher, prepare_events
    from bus389.producers.readers import SourceRecord

    count = ctx.sizes.publish_events
    inputs = input_records(count)
    by_type: dict[tuple[str, Agency], list[SourceRecord]] = {}
    for index, (template, data) in enumerate(inputs):
        by_type.setdefault((template.event_type, template.agency), []).append(SourceRecord(index + 1, data))
    encoded = [encode_event(build_event(t.event_type, t.agency, d)) for t, d in inputs]
    topic = settings.topics.outbox(Agency.POLICE)

    publisher = Publisher(settings, Agency.POLICE)
    publisher.open()
    producer = bare_producer(settings, transactional_id=f"{settings.topic_prefix}.bare.{uuid.uuid4()}")
    producer.init_transactions()

    def bus389_round() -> float:
        sent = 0
        with RoundTimer() as timer:
            for (event_type, agency), records in by_type.items():
                events = prepare_events(event_type, agency, records, source="bench")
                for start in range(0, len(events), STEADY_CHUNK):
                    sent += publisher.publish(events[start : start + STEADY_CHUNK]).count
        return rate(sent, timer.seconds)

    def bare_round() -> float:
        with RoundTimer() as timer:
            for start in range(0, len(encoded), STEADY_CHUNK):
                _bare_transaction(producer, topic, encoded[start : start + STEADY_CHUNK])
        return rate(len(encoded), timer.seconds)

    try:
        figures = interleaved({"bus389": bus389_round, "baseline": bare_round}, rounds=ctx.sizes.rounds)
    finally:
        publisher.close()
        producer.close(timeout=30)
    return Line(
        benchmark=NAME,
        name=f"publish, steady ({STEADY_CHUNK}-event transactions, every type)",
        value=median(figures["bus389"]),
        baseline=median(figures["baseline"]),
        baseline_name="bare kafka-python",
        rounds=figures,
        note="bus389: prepare_events + Publisher.publish on an open publisher",
        extra={"events": count, "types": sorted({t for t, _ in by_type})},
    )


def run(ctx: BenchContext) -> list[Line]:
    lines: list[Line] = []
    steps: list[Callable[[BenchContext, Settings], Line]] = [_file_lines, _steady_line]
    with ctx.topics() as settings:
        for step in steps:
            lines.append(step(ctx, settings))
    return lines
