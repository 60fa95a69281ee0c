"""The records every benchmark uses: realistic events of every type, Vietnamese text included.

The templates are the shipped examples (``examples/<event_type>.jsonl``, what the demo publishes),
each with the agency that publishes that type in practice. A workload of N events cycles through
every template, giving each copy its own event id and its own case reference (so that keys, and with
them partitions, spread as in real traffic). Ids come from a seeded generator: a run is repeatable.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bus389.agencies import Agency
from bus389.codec import Encoded, encode_event
from bus389.events import EVENT_MODELS, build_event
from bus389.events.notices import WRITTEN_BY_THE_ROUTER

__all__ = [
    "PUBLISHER_OF",
    "BacklogEvent",
    "Template",
    "avro_records",
    "backlog",
    "backlog_of",
    "input_records",
    "inputs_of",
    "templates",
]

EXAMPLES_DIR = Path("examples")
"""The checkout's example files, the workload's seed events (``make bench`` runs from the checkout)."""

PUBLISHER_OF: dict[str, Agency] = {
    "suspect_seller": Agency.POLICE,
    "domain_block_request": Agency.MARKET_SURVEILLANCE,
    "tax_discrepancy": Agency.TAX,
    "domain_block_result": Agency.ICT,
    "complaint": Agency.INDUSTRY_TRADE,
    "case_referral": Agency.MARKET_SURVEILLANCE,
    "case_outcome": Agency.POLICE,
    "periodic_report": Agency.CUSTOMS,
    "law_gap_proposal": Agency.POLICE,
    "directive": Agency.MARKET_SURVEILLANCE,
    "case_claim": Agency.POLICE,
    "inspection_result": Agency.ICT,
    "compiled_report": Agency.MARKET_SURVEILLANCE,
}
"""Who publishes each type in the benchmarks (as in the demo and DOMAIN.md)."""
_RED_PUBLISHER: dict[str, Agency] = {"suspect_seller": Agency.MARKET_SURVEILLANCE}
"""A RED suspect seller from the police would reach nobody (RED goes to the police alone)."""


def _publisher(event_type: str, data: dict[str, Any]) -> Agency:
    meta = data.get("meta") or {}
    if meta.get("sensitivity") == "RED" and event_type in _RED_PUBLISHER:
        return _RED_PUBLISHER[event_type]
    return PUBLISHER_OF[event_type]


@dataclass(frozen=True)
class Template:
    """One example record: its type, its publisher and the publisher's input (fields + partial meta)."""

    event_type: str
    agency: Agency
    data: dict[str, Any]


@dataclass(frozen=True)
class BacklogEvent:
    """One encoded event ready for an outbox: the bytes the publisher would have written."""

    agency: Agency
    event_type: str
    event_id: str
    encoded: Encoded


def templates() -> list[Template]:
    """Every example record of every event type an agency publishes (fails loudly if one has none)."""
    found: list[Template] = []
    for event_type in EVENT_MODELS:
        if event_type in WRITTEN_BY_THE_ROUTER:
            continue
        path = EXAMPLES_DIR / f"{event_type}.jsonl"
        lines = [t for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
        if not lines:
            raise ValueError(f"{path} has no example record")
        for text in lines:
            data = json.loads(text)
            found.append(Template(event_type, _publisher(event_type, data), data))
    return found


def _ids(rng: random.Random) -> Iterator[str]:
    while True:
        yield str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _cycle(count: int) -> Iterator[tuple[int, Template]]:
    found = templates()
    for index in range(count):
        yield index, found[index % len(found)]


def _vary_meta(meta: dict[str, Any], index: int) -> dict[str, Any]:
    varied = dict(meta)
    if varied.get("case_ref"):
        varied["case_ref"] = f"{varied['case_ref']}-{index:06d}"
    return varied


def input_records(count: int) -> list[tuple[Template, dict[str, Any]]]:
    """``count`` publisher inputs (template, data) cycling through every type; varied case refs."""
    records: list[tuple[Template, dict[str, Any]]] = []
    for index, template in _cycle(count):
        data = copy.deepcopy(template.data)
        data["meta"] = _vary_meta(data.get("meta") or {}, index)
        records.append((template, data))
    return records


def inputs_of(event_type: str, agency: Agency, count: int) -> list[dict[str, Any]]:
    """``count`` publisher inputs of one type from one agency (its templates in turn, varied case refs)."""
    chosen = [t for t in templates() if t.event_type == event_type and t.agency == agency]
    if not chosen:
        raise ValueError(f"no example {event_type} published by {agency.value}")
    out: list[dict[str, Any]] = []
    for index in range(count):
        data = copy.deepcopy(chosen[index % len(chosen)].data)
        data["meta"] = _vary_meta(data.get("meta") or {}, index)
        out.append(data)
    return out


def backlog_of(event_type: str, agency: Agency, count: int) -> list[BacklogEvent]:
    """``count`` encoded events of one type from one agency (the latency probe's own traffic)."""
    events: list[BacklogEvent] = []
    for data in inputs_of(event_type, agency, count):
        event = build_event(event_type, agency, data)
        events.append(BacklogEvent(agency, event_type, event.event_id, encode_event(event)))
    return events


def avro_records(count: int, *, seed: int = 389, answers: bool = True) -> list[dict[str, Any]]:
    """``count`` Avro-ready event records (what the codec writes), every type, each its own id; without
    ``answers``, none that answers another event (``meta.in_reply_to``): the router delivers an answer
    only to the sender of an original it routed, which a backlog of fresh ids never has."""
    rng = random.Random(seed)
    ids = _ids(rng)
    built: dict[int, dict[str, Any]] = {}
    found = [t for t in templates() if answers or not (t.data.get("meta") or {}).get("in_reply_to")]
    records: list[dict[str, Any]] = []
    for index in range(count):
        slot = index % len(found)
        if slot not in built:
            template = found[slot]
            built[slot] = build_event(template.event_type, template.agency, template.data).to_avro()
        record = dict(built[slot])
        record["meta"] = _vary_meta(dict(record["meta"]), index)
        record["meta"]["event_id"] = next(ids)
        records.append(record)
    return records


def backlog(count: int, *, seed: int = 389) -> list[BacklogEvent]:
    """``count`` encoded events, each with the agency whose outbox it belongs in; all routable."""
    events: list[BacklogEvent] = []
    for record in avro_records(count, seed=seed, answers=False):
        meta = record["meta"]
        events.append(
            BacklogEvent(
                agency=Agency(meta["source"]),
                event_type=str(meta["event_type"]),
                event_id=str(meta["event_id"]),
                encoded=encode_event(record),
            )
        )
    return events
