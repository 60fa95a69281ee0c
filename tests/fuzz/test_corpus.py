"""Replay the regression corpus (``tests/fuzz/corpus/*.json``): each input has the outcome it states.

Every entry states its expected outcome (codec, router) and why, written by hand from the rules
(``make_corpus.py``'s ``EXPECTED``), never recorded from the code. An entry marked ``known_issue`` is
expected to fail (strictly: when the issue is fixed the test says so, and the mark must go).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from _fuzz_inputs import RECEIVED, FakeRecord, check_invariants, new_router

from bus389.agencies import Agency
from bus389.codec import decode_event
from bus389.errors import CodecError

CORPUS = Path(__file__).resolve().parent / "corpus"
ENTRIES = sorted(CORPUS.glob("*.json"))


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _load(path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return entry


def _params() -> list[Any]:
    params = []
    for path in ENTRIES:
        entry = _load(path)
        marks = (
            [pytest.mark.xfail(strict=True, reason=entry["known_issue"])] if entry.get("known_issue") else []
        )
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def test_the_corpus_is_there_and_covers_every_reason() -> None:
    entries = [_load(p) for p in ENTRIES]
    assert len(entries) >= 50
    reasons = {e["router"] for e in entries}
    assert {
        "routed",
        "bad_magic_byte",
        "truncated_frame",
        "unknown_schema_id",
        "corrupt_body",
        "schema_mismatch",
        "invalid_event",
        "spoofed_source",
        "not_permitted",
        "no_route",
        "not_an_outbox",
    } <= reasons


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", _params())
def test_corpus_entry_keeps_its_outcome(path: Path) -> None:
    entry = _load(path)
    assert str(entry.get("why", "")).strip(), f"{path.name} does not say why it expects its outcome"
    raw = FakeRecord(
        topic=entry["topic"],
        value=_bytes(entry["value"]),
        headers=[(name, _bytes(value)) for name, value in entry["headers"]],
        key=_bytes(entry["key"]),
    )
    try:
        decode_event(raw.value, raw.headers)
        codec = "ok"
    except CodecError as exc:
        codec = exc.reason
    router = new_router()
    answering = router.topics.sender_of(raw.topic)
    for event_id, sender in entry.get("replies", {}).items():
        # the router routed event_id from sender to the agency now answering it
        router.replies.record(event_id, Agency(sender), [answering] if answering else [])
    router.replies.commit()
    routed = router.route(raw, received_at=RECEIVED, now=lambda: RECEIVED)
    check_invariants(raw, routed)
    assert (codec, "routed" if routed.routed else routed.dlq_reason) == (entry["codec"], entry["router"]), (
        f"{entry['description']}: expected because {entry['why']}"
    )
