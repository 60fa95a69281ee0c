"""Codec benchmark: bus389's encode and decode against bare fastavro on the same records.

Lines (events/s, median of the rounds, ratio bus389 ÷ bare fastavro):

- encode value: ``encode_value`` (Confluent frame + Avro) against ``fastavro.schemaless_writer`` on
  the same Avro-ready dicts with the same parsed schema;
- encode event: ``encode_event`` (value, key and the six CloudEvents headers, schema looked up by type);
- decode value: ``decode_value`` (unframe, schema by id, decode, checks) against
  ``fastavro.schemaless_reader`` on the same bodies, already unframed, with the same reader schema;
- decode event: ``decode_event`` (the above plus the ``ce_type`` and ``meta.event_type`` checks);
- the pydantic cost, separately: decode + ``event_from_avro`` (what the router does per event)
  against the bare decode, and ``build_event`` + ``encode_event`` (what the publisher does per input
  record) against the bare encode.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import fastavro

from bus389.bench.context import BenchContext
from bus389.bench.harness import Goal, Line, RoundTimer, interleaved, median, rate
from bus389.bench.workload import avro_records, input_records

__all__ = ["NAME", "run"]

NAME = "codec"
CODEC_GOAL = Goal(">=", 0.8, text="≥ 0.8 of bare fastavro")


def _timed(work: Callable[[], int]) -> Callable[[], float]:
    def one_round() -> float:
        with RoundTimer() as timer:
            done = work()
        return rate(done, timer.seconds)

    return one_round


def _line(
    name: str, figures: dict[str, list[float]], *, goal: Goal | None, note: str = "", **extra: Any
) -> Line:
    return Line(
        benchmark=NAME,
        name=name,
        value=median(figures["bus389"]),
        baseline=median(figures["baseline"]),
        baseline_name="bare fastavro",
        goal=goal,
        rounds=figures,
        note=note,
        extra=dict(extra),
    )


def run(ctx: BenchContext) -> list[Line]:
    from bus389.codec import HEADER_SIZE, decode_event, decode_value, encode_event, encode_value
    from bus389.events import build_event, event_from_avro
    from bus389.schemas.catalog import load_catalog

    catalog = load_catalog()
    count = ctx.sizes.codec_events
    rounds = max(7, ctx.sizes.rounds + 2)
    records = avro_records(count)
    schemas = [catalog.latest(str(r["meta"]["event_type"])) for r in records]
    pairs = list(zip(records, schemas, strict=True))
    encoded = [encode_event(r, schema=s) for r, s in pairs]
    values = [e.value for e in encoded]
    headers = [e.headers for e in encoded]
    bodies = [(v[HEADER_SIZE:], s.reader_schema) for v, s in zip(values, schemas, strict=True)]
    inputs = input_records(count)
    sizes = sorted(len(v) for v in values)

    def bare_encode() -> int:
        for record, schema in pairs:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, schema.parsed_schema, record)
            buffer.getvalue()
        return len(pairs)

    def bus_encode_value() -> int:
        for record, schema in pairs:
            encode_value(record, schema)
        return len(pairs)

    def bus_encode_event() -> int:
        for record in records:
            encode_event(record)
        return len(records)

    def bare_decode() -> int:
        for body, reader in bodies:
            fastavro.schemaless_reader(io.BytesIO(body), reader, None)
        return len(bodies)

    def bus_decode_value() -> int:
        for value in values:
            decode_value(value)
        return len(values)

    def bus_decode_event() -> int:
        for value, value_headers in zip(values, headers, strict=True):
            decode_event(value, value_headers)
        return len(values)

    def bus_decode_validate() -> int:
        for value, value_headers in zip(values, headers, strict=True):
            event_from_avro(decode_event(value, value_headers).record)
        return len(values)

    def bus_build_encode() -> int:
        for template, data in inputs:
            encode_event(build_event(template.event_type, template.agency, data))
        return len(inputs)

    lines: list[Line] = []
    figures = interleaved(
        {"bus389": _timed(bus_encode_value), "baseline": _timed(bare_encode)}, rounds=rounds
    )
    lines.append(
        _line(
            "encode value (frame + Avro)",
            figures,
            goal=CODEC_GOAL,
            events=count,
            value_bytes_median=sizes[len(sizes) // 2],
            value_bytes_max=sizes[-1],
        )
    )
    figures = interleaved(
        {"bus389": _timed(bus_encode_event), "baseline": _timed(bare_encode)}, rounds=rounds
    )
    lines.append(_line("encode event (value + key + CE headers)", figures, goal=CODEC_GOAL, events=count))
    figures = interleaved(
        {"bus389": _timed(bus_decode_value), "baseline": _timed(bare_decode)}, rounds=rounds
    )
    lines.append(_line("decode value (unframe + Avro + checks)", figures, goal=CODEC_GOAL, events=count))
    figures = interleaved(
        {"bus389": _timed(bus_decode_event), "baseline": _timed(bare_decode)}, rounds=rounds
    )
    lines.append(_line("decode event (+ ce_type/meta checks)", figures, goal=CODEC_GOAL, events=count))
    figures = interleaved(
        {"bus389": _timed(bus_decode_validate), "baseline": _timed(bare_decode)}, rounds=rounds
    )
    validate_us = 1e6 / median(figures["bus389"]) - 1e6 / median(figures["baseline"])
    lines.append(
        _line(
            "decode event + pydantic validation (router path)",
            figures,
            goal=None,
            note="the pydantic cost per event, against the bare decode",
            events=count,
            pydantic_us_per_event=validate_us,
        )
    )
    figures = interleaved(
        {"bus389": _timed(bus_build_encode), "baseline": _timed(bare_encode)}, rounds=rounds
    )
    build_us = 1e6 / median(figures["bus389"]) - 1e6 / median(figures["baseline"])
    lines.append(
        _line(
            "build_event + encode (publisher path, no Kafka)",
            figures,
            goal=None,
            note="validating the publisher's input with pydantic, against the bare encode",
            events=count,
            pydantic_us_per_event=build_us,
        )
    )
    return lines
