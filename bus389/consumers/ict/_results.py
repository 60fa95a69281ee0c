"""Building one ``domain_block_result`` event: its deterministic id, its record, its encoded frame."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bus389.agencies import Agency
from bus389.codec import encode_event
from bus389.consumers.ict.store import RequestKey, RequestRow

__all__ = ["RESULT_NAMESPACE", "BuiltResult", "build_result", "result_event_id"]

RESULT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:bus389:ict:domain_block_result")
"""UUIDv5 namespace of result event ids: one id per (request, decision kind), the same after a crash;
a request is its id and its requester."""

EVENT_TYPE = "domain_block_result"


def result_event_id(request: RequestKey, decision_kind: str) -> str:
    """The event id of the result of ``decision_kind`` on ``request`` (its id and requester; UUIDv5, stable).

    Two agencies' requests under one id get results of their own ids.
    """
    request_id, requester = request
    return str(uuid.uuid5(RESULT_NAMESPACE, f"{request_id}/{requester}/{decision_kind}"))


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True)
class BuiltResult:
    event_id: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    record_json: dict[str, Any]
    """The record with instants as epoch milliseconds (what the store keeps for display)."""


def build_result(
    request: RequestRow,
    *,
    decision_kind: str,
    outcome: str,
    blocked: Sequence[str],
    not_blocked: Sequence[str],
    decided_at: int,
    providers: Sequence[str],
    note: str | None,
) -> BuiltResult:
    """Encode the result answering ``request`` (``in_reply_to`` it, keyed and classified like it).

    The result inherits the request's ``case_ref`` (so it is keyed, and ordered, with its case), its
    TLP ``sensitivity`` and its ``urgency``. ``published_at`` is the decision time, fixed here, so a
    re-send after a crash is byte for byte the same event.
    """
    event_id = result_event_id(request.key, decision_kind)
    meta_json: dict[str, Any] = {
        "event_id": event_id,
        "event_type": EVENT_TYPE,
        "source": Agency.ICT.value,
        "occurred_at": decided_at,
        "published_at": decided_at,
        "case_ref": request.case_ref,
        "in_reply_to": request.event_id,
        "sensitivity": request.sensitivity,
        "urgency": request.urgency,
    }
    record_json: dict[str, Any] = {
        "meta": meta_json,
        "requester": request.requester,
        "outcome": outcome,
        "blocked": list(blocked),
        "not_blocked": list(not_blocked),
        "decided_at": decided_at,
        "providers_notified": list(providers),
        "note": note,
    }
    avro = dict(record_json)
    avro["meta"] = dict(meta_json, occurred_at=_dt(decided_at), published_at=_dt(decided_at))
    avro["decided_at"] = _dt(decided_at)
    encoded = encode_event(avro)
    return BuiltResult(
        event_id=event_id,
        key=encoded.key,
        value=encoded.value,
        headers=list(encoded.headers),
        record_json=record_json,
    )
